#!/usr/bin/env bash
# Scheduler benchmark: our release scheduler against upstream's (dapr/dapr@v1.18.3) on loopback,
# same client (e2e bin `bench_scheduler`, see e2e/src/bench/scheduler.rs).
#
# Every measured run gets a fresh single-replica server with an empty embedded etcd, started the
# way upstream's integration harness starts one (plaintext, --workers=128, 100ms etcd batch
# interval, NAMESPACE=default); ready = /healthz answers 200 and ListJobs is not Unavailable.
# Runs per server:
#   schedule-c<N>    N workers loop ScheduleJob of distinct one-shot app jobs due in 1h
#                    (WARMUP unmeasured, then DURATION measured): req/s, p50/p99 latency;
#   trigger-oneshot  STREAMS WatchJobs streams for app `bench` (ack every trigger), then
#                    SCHEDULERS workers schedule JOBS one-shot jobs all due at one RFC 3339
#                    instant: due → last trigger, triggers/s (first → last), lateness p50/p99;
#   trigger-repeat   REMINDERS actor reminders, `@every 1s` × REPEATS, first due at one instant:
#                    triggers received (must be REMINDERS × REPEATS), triggers/s, lateness.
# The common due instant lies at least 2 s ahead, more when the run's schedule-c<max> rate says
# scheduling all jobs takes longer (so scheduling speed does not leak into trigger timing).
# Peak RSS (VmHWM) of the server is sampled after each run, before it is stopped with SIGTERM.
# A schedule level runs for a fixed time, so a faster server ends up holding more jobs; its RSS
# is also shown per job stored (peak minus idle RSS, over the jobs acknowledged in the level).
# Client and server share the machine's cores.
#
# Settings (env): CONFIGS=ours,upstream  CONCURRENCY=16,64  DURATION=5s  WARMUP=1s
#                 JOBS=20000  REMINDERS=2000  REPEATS=5  STREAMS=4  SCHEDULERS=64  CONNS=4
#                 PHASES=schedule,trigger-oneshot,trigger-repeat  TRIGGER_TIMEOUT=120s
#                 UPSTREAM_SCHEDULER=<path>  skip the conformance cache lookup
#                 OURS_SCHEDULER=<path>      bench this binary instead of target/release/scheduler
#                 OUT=target/bench/scheduler.json
# Output: a side-by-side table on stdout and the results JSON in $OUT. A run that fails is
# reported (with the server's log tail) and the script exits non-zero after the table.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
configs=${CONFIGS:-ours,upstream}
concurrency=${CONCURRENCY:-16,64}
duration=${DURATION:-5s}
warmup=${WARMUP:-1s}
jobs=${JOBS:-20000}
reminders=${REMINDERS:-2000}
repeats=${REPEATS:-5}
streams=${STREAMS:-4}
schedulers=${SCHEDULERS:-64}
conns=${CONNS:-4}
phases=${PHASES:-schedule,trigger-oneshot,trigger-repeat}
trigger_timeout=${TRIGGER_TIMEOUT:-120s}
out=${OUT:-"$root/target/bench/scheduler.json"}
# A server whose /healthz is not 200 by then is broken, not slow.
start_timeout_s=60

log() { printf 'bench-scheduler: %s\n' "$*" >&2; }
die() { printf 'bench-scheduler: error: %s\n' "$*" >&2; exit 1; }
for tool in curl jq; do command -v "$tool" >/dev/null || die "$tool is required"; done
case ",$configs," in *,ours,* | *,upstream,*) ;; *) die "CONFIGS must list ours and/or upstream" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-scheduler.XXXXXX")
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    log "server $server_pid still running 10 s after SIGTERM; killing"
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

want() { case ",$configs," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log "building the load generator (release)"
(cd "$root" && cargo build --release --quiet -p e2e --bin bench_scheduler)
bench="$root/target/release/bench_scheduler"

ours=${OURS_SCHEDULER:-"$root/target/release/scheduler"}
if want ours; then
  if [ -z "${OURS_SCHEDULER:-}" ]; then
    log "building our scheduler (release)"
    (cd "$root" && cargo build --release --quiet -p scheduler --bin scheduler)
  fi
  [ -x "$ours" ] || die "our scheduler not found at $ours"
fi

upstream=${UPSTREAM_SCHEDULER:-}
if want upstream; then
  if [ -z "$upstream" ]; then
    log "locating upstream's scheduler (conformance cache)"
    upstream_dir=$(UPSTREAM_NEED=scheduler "$root/hack/conformance/upstream.sh" build | tail -n1)
    upstream="$upstream_dir/scheduler"
  fi
  [ -x "$upstream" ] || die "upstream scheduler not found at $upstream"
fi

# A loopback port nothing listens on now and not handed out before in this run, below the
# kernel's ephemeral range (so outgoing connections do not take it between pick and bind).
picked=" "
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    case "$picked" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      picked="$picked$p "
      printf '%s\n' "$p"
      return 0
    fi
  done
  die "no free port found"
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# start_server BINARY DIR: starts a fresh single-replica scheduler and waits for /healthz 200.
# Sets $grpc_port; returns 1 (server stopped) if it did not come up.
start_server() {
  local bin=$1 dir=$2 healthz metrics client peer code=
  grpc_port=$(free_port); healthz=$(free_port); metrics=$(free_port)
  client=$(free_port); peer=$(free_port)
  rm -rf "$dir"
  mkdir -p "$dir/etcd" "$dir/identity"
  # The embedded etcd refuses a data dir others can read.
  chmod 0700 "$dir/etcd"
  NAMESPACE=default "$bin" --log-level=info --id=bench --port="$grpc_port" \
    --healthz-port="$healthz" --metrics-port="$metrics" --etcd-data-dir="$dir/etcd" \
    --etcd-client-port="$client" --listen-address=127.0.0.1 \
    --identity-directory-write="$dir/identity/tls" --etcd-backend-batch-interval=100ms \
    --workers=128 --etcd-initial-cluster="bench=http://127.0.0.1:$peer" >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 $((start_timeout_s * 10))); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$healthz/healthz" || true)
    [ "$code" = 200 ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$dir/server.log" >&2
  log "$bin: /healthz not 200 within ${start_timeout_s}s (last: ${code:-none})"
  stop_server
  return 1
}

failed=()
# run_one CONFIG RUN BENCH_ARGS...: fresh server, one bench run, RSS, stop.
# Writes $work/runs/CONFIG/RUN.json (the run's phase result plus RSS); returns 1 on failure.
run_one() {
  local config=$1 run=$2 bin dir attempt started=
  shift 2
  bin=$ours; [ "$config" = upstream ] && bin=$upstream
  dir="$work/$config-$run"
  for attempt in 1 2 3; do
    log "$config $run: starting $bin (attempt $attempt, load $(cut -d' ' -f1-3 /proc/loadavg))"
    if start_server "$bin" "$dir"; then started=1; break; fi
  done
  [ -n "$started" ] || { failed+=("$config $run: server did not start"); return 1; }
  local idle
  idle=$(status_kb "$server_pid" VmRSS)

  # An error message is what a failed run should show, not a backtrace.
  if ! RUST_LIB_BACKTRACE=0 "$bench" --label "$config" --addr "127.0.0.1:$grpc_port" --conns "$conns" \
    --duration "$duration" --warmup "$warmup" --jobs "$jobs" --reminders "$reminders" \
    --repeats "$repeats" --streams "$streams" --schedulers "$schedulers" \
    --trigger-timeout "$trigger_timeout" "$@" >"$dir/bench.json" 2>"$dir/bench.err"; then
    cat "$dir/bench.err" >&2
    log "$config $run: server log tail:"
    tail -n 20 "$dir/server.log" >&2
    failed+=("$config $run: $(grep -m1 '^Error' "$dir/bench.err" || tail -n1 "$dir/bench.err")")
    stop_server
    return 1
  fi
  cat "$dir/bench.err" >&2
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -n 20 "$dir/server.log" >&2
    failed+=("$config $run: server exited during the run")
    server_pid=
    return 1
  fi
  local hwm rss
  hwm=$(status_kb "$server_pid" VmHWM)
  rss=$(status_kb "$server_pid" VmRSS)
  stop_server
  mkdir -p "$work/runs/$config"
  jq --arg bin "$bin" --argjson hwm "$hwm" --argjson rss "$rss" --argjson idle "$idle" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '.phases[0] + {binary: $bin, peak_rss_kb: $hwm, end_rss_kb: $rss, idle_rss_kb: $idle, loadavg_after: $load}' \
    "$dir/bench.json" >"$work/runs/$config/$run.json"
}

want_phase() { case ",$phases," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
max_level=$(tr ',' '\n' <<<"$concurrency" | sort -n | tail -n1)

for config in ${configs//,/ }; do
  hint=()
  if want_phase schedule; then
    for c in ${concurrency//,/ }; do
      run_one "$config" "schedule-c$c" --phases schedule --concurrency "$c" || continue
      if [ "$c" = "$max_level" ]; then
        hint=(--schedule-rps-hint "$(jq '.rps' "$work/runs/$config/schedule-c$c.json")")
      fi
    done
  fi
  for run in trigger-oneshot trigger-repeat; do
    want_phase "$run" || continue
    run_one "$config" "$run" --phases "$run" "${hint[@]}" || true
  done
done

mkdir -p "$(dirname "$out")"
runs_json=$(
  for config in ours upstream; do
    for f in "$work/runs/$config"/*.json; do
      if [ -f "$f" ]; then
        jq -c --arg config "$config" --arg run "$(basename "$f" .json)" \
          '{config: $config, run: $run, result: .}' "$f"
      fi
    done
  done | jq -s 'reduce .[] as $r ({}; .[$r.config][$r.run] = $r.result)'
)
jq -n --argjson cores "$(nproc)" --argjson runs "$runs_json" \
  --argjson failed "$(printf '%s\n' "${failed[@]+"${failed[@]}"}" | jq -R . | jq -s 'map(select(. != ""))')" \
  --arg configs "$configs" --arg ours "$ours" --arg upstream "$upstream" \
  --arg duration "$duration" --arg warmup "$warmup" --argjson jobs "$jobs" \
  --argjson reminders "$reminders" --argjson repeats "$repeats" --argjson streams "$streams" \
  --argjson schedulers "$schedulers" --argjson conns "$conns" '
  def ratio(a; b): if a == null or b == null or b == 0 then null else ((a / b) * 1000 | round) / 1000 end;
  {
    date: (now | todate), cores: $cores, configs: ($configs | split(",")),
    binaries: {ours: $ours, upstream: $upstream},
    settings: {duration: $duration, warmup: $warmup, jobs: $jobs, reminders: $reminders,
               repeats: $repeats, streams: $streams, schedulers: $schedulers, connections: $conns},
    runs: $runs,
    failed: $failed,
    ratios_ours_over_upstream: (
      [($runs.ours // {} | keys[]), ($runs.upstream // {} | keys[])] | unique | map(. as $run |
        ($runs.ours[$run] // null) as $o | ($runs.upstream[$run] // null) as $u | {
          key: $run,
          value: {
            rps: ratio($o.rps; $u.rps), p50_ms: ratio($o.p50_ms; $u.p50_ms), p99_ms: ratio($o.p99_ms; $u.p99_ms),
            triggers_per_s: ratio($o.triggers_per_s; $u.triggers_per_s),
            last_trigger_ms: ratio($o.last_trigger_ms; $u.last_trigger_ms),
            lateness_p50_ms: ratio($o.lateness_ms.p50; $u.lateness_ms.p50),
            lateness_p99_ms: ratio($o.lateness_ms.p99; $u.lateness_ms.p99),
            peak_rss_kb: ratio($o.peak_rss_kb; $u.peak_rss_kb)
          } | with_entries(select(.value != null))
        }) | from_entries)
  }' >"$out"

jq -r '"scheduler: ours vs upstream dapr v1.18.3, single replica, plaintext, same client; \(.cores) cores shared by client and server"' "$out"
jq -r '.settings | "schedule: \(.duration) per level after \(.warmup) warm-up, \(.connections) HTTP/2 connections; triggers: \(.streams) WatchJobs streams, \(.schedulers) concurrent schedulers, \(.jobs) one-shot jobs, \(.reminders) reminders × \(.repeats)"' "$out"
printf '\n'
jq -r --arg levels "$concurrency" '
  def f: if . == null then "-" elif (. | type) == "string" then .
    elif (. | fabs) >= 100 then (round | tostring)
    elif (. | fabs) >= 1 then (. * 100 | round / 100 | tostring) else (. * 1000 | round / 1000 | tostring) end;
  def ratio(a; b): if a == null or b == null or b == 0 then null else ((a / b) * 100 | round) / 100 end;
  def mb: if . == null then null else . / 1024 end;
  . as $r |
  ([$levels | split(",")[] | . as $c |
     {name: "schedule c\($c) req/s", run: "schedule-c\($c)", get: ".rps"},
     {name: "schedule c\($c) p50 ms", run: "schedule-c\($c)", get: ".p50_ms"},
     {name: "schedule c\($c) p99 ms", run: "schedule-c\($c)", get: ".p99_ms"}] +
   [{name: "oneshot jobs scheduled", run: "trigger-oneshot", get: ".jobs"},
    {name: "oneshot schedule req/s", run: "trigger-oneshot", get: ".schedule_rps"},
    {name: "oneshot stored before due ms", run: "trigger-oneshot", get: ".scheduled_before_due_ms"},
    {name: "oneshot due→first trigger ms", run: "trigger-oneshot", get: ".first_trigger_ms"},
    {name: "oneshot due→last trigger ms", run: "trigger-oneshot", get: ".last_trigger_ms"},
    {name: "oneshot triggers/s", run: "trigger-oneshot", get: ".triggers_per_s"},
    {name: "oneshot lateness p50 ms", run: "trigger-oneshot", get: ".lateness_ms.p50"},
    {name: "oneshot lateness p99 ms", run: "trigger-oneshot", get: ".lateness_ms.p99"},
    {name: "oneshot triggers missing/extra", run: "trigger-oneshot", get: "missing"},
    {name: "repeat triggers received", run: "trigger-repeat", get: ".received_triggers"},
    {name: "repeat triggers expected", run: "trigger-repeat", get: ".expected_triggers"},
    {name: "repeat triggers/s", run: "trigger-repeat", get: ".triggers_per_s"},
    {name: "repeat last due→last trigger ms", run: "trigger-repeat", get: ".last_trigger_ms"},
    {name: "repeat lateness p50 ms", run: "trigger-repeat", get: ".lateness_ms.p50"},
    {name: "repeat lateness p99 ms", run: "trigger-repeat", get: ".lateness_ms.p99"},
    {name: "repeat triggers missing/extra", run: "trigger-repeat", get: "missing"}] +
   [$levels | split(",")[] | {name: "peak RSS MB schedule-c\(.)", run: "schedule-c\(.)", get: "rss"}] +
   [$levels | split(",")[] | {name: "jobs stored schedule-c\(.)", run: "schedule-c\(.)", get: ".stored_jobs"}] +
   [$levels | split(",")[] | {name: "RSS growth KB/job schedule-c\(.)", run: "schedule-c\(.)", get: "rss_per_job"}] +
   [{name: "peak RSS MB trigger-oneshot", run: "trigger-oneshot", get: "rss"},
    {name: "peak RSS MB trigger-repeat", run: "trigger-repeat", get: "rss"},
    {name: "errors", run: null, get: "errors"}]) as $rows |
  def cell($config; $row): ($r.runs[$config] // {}) as $c |
    if $row.get == "errors" then
      (if ($c | length) == 0 then null
       else [$c[] | (.errors // 0) + (.schedule_errors // 0)] | add end)
    else ($c[$row.run] // null) as $x |
      if $x == null then null
      elif $row.get == "rss" then ($x.peak_rss_kb | mb)
      elif $row.get == "rss_per_job" then
        (if ($x.stored_jobs // 0) == 0 then null
         else ($x.peak_rss_kb - $x.idle_rss_kb) / $x.stored_jobs end)
      elif $row.get == "missing" then "\($x.expected_triggers - $x.received_triggers)/\($x.extra_triggers)"
      else $x | getpath($row.get | ltrimstr(".") | split(".")) end
    end;
  (["metric", "ours", "upstream", "ours/upstream"] | @tsv),
  ($rows[] as $row | [cell("ours"; $row), cell("upstream"; $row)] as [$o, $u] |
    [$row.name, ($o | f), ($u | f),
     (if ($o | type) == "number" and ($u | type) == "number" and $row.get != "errors" then ratio($o; $u) | f else "" end)] | @tsv)
' "$out" | column -t -s $'\t'
printf '\nours/upstream: above 1 is better for req/s and triggers/s, below 1 is better for latency, lateness and RSS.\n'
printf 'repeat triggers/s is bounded by the schedule (reminders × repeats over (repeats − 1) s); lateness shows whether a server keeps up.\n'
jq -r '.runs | to_entries[] | .key as $c | .value | to_entries[] | select(.value.first_error != null) | "\($c) \(.key): first error: \(.value.first_error)"' "$out"
log "results: $out"
if [ "${#failed[@]}" -gt 0 ]; then
  for f in "${failed[@]}"; do log "failed: $f"; done
  exit 1
fi
