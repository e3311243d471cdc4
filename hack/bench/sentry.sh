#!/usr/bin/env bash
# Sentry benchmark: our release sentry against upstream's (dapr/dapr@v1.18.3) on loopback.
#
# Each server is started in turn, standalone, as upstream's integration harness starts it: a
# fresh issuer-credentials dir (it generates its own Ed25519 CA) and an empty config file. The
# load generator (e2e bin `bench_sentry`) then calls CA/SignCertificate with the insecure
# validator at each concurrency level, one HTTP/2 connection per worker. After the runs the
# server's peak RSS (VmHWM) is sampled and it is stopped with SIGINT.
#
# Settings (env): LEVELS=1,16,64  DURATION=5s  WARMUP=500ms  MAX_REQUESTS=500000
#                 SETTLE=3 (s of log silence after healthy before loading)  SETTLE_MAX=20
#                 UPSTREAM_SENTRY=<path>   skip the conformance cache lookup
#                 OURS_SENTRY=<path>       bench this binary (or wrapper) instead of target/release/sentry
#                 OUT=target/bench/sentry.json
# Output: a side-by-side table on stdout and the results JSON in $OUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
levels=${LEVELS:-1,16,64}
duration=${DURATION:-5s}
warmup=${WARMUP:-500ms}
max_requests=${MAX_REQUESTS:-500000}
out=${OUT:-"$root/target/bench/sentry.json"}
settle=${SETTLE:-3}
settle_max=${SETTLE_MAX:-20}

log() { printf 'bench-sentry: %s\n' "$*" >&2; }
die() { printf 'bench-sentry: error: %s\n' "$*" >&2; exit 1; }
for tool in curl jq; do command -v "$tool" >/dev/null || die "$tool is required"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-sentry.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

log "building our sentry and the load generator (release)"
(cd "$root" && cargo build --release --quiet -p sentry && cargo build --release --quiet -p e2e --bin bench_sentry)
ours=${OURS_SENTRY:-"$root/target/release/sentry"}
bench="$root/target/release/bench_sentry"

if [ -n "${UPSTREAM_SENTRY:-}" ]; then
  upstream=$UPSTREAM_SENTRY
else
  log "locating upstream's sentry (conformance cache)"
  upstream_dir=$(UPSTREAM_NEED=sentry "$root/hack/conformance/upstream.sh" build | tail -n1)
  upstream="$upstream_dir/sentry"
fi
[ -x "$upstream" ] || die "upstream sentry not found at $upstream"

# A loopback port nothing listens on now (bash's /dev/tcp connect fails => free) and not handed
# out before in this run. Another process can still take it before the server binds: run_one
# retries the start on a fresh set of ports.
picked=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    case "$picked" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      picked="$picked$p "
      printf '%s\n' "$p"
      return 0
    fi
  done
  die "no free port found"
}

# run_one LABEL BINARY: start, wait healthy, bench, sample RSS, stop. Writes $work/LABEL.json.
run_one() {
  local label=$1 bin=$2 dir="$work/$1"
  local port healthz metrics attempt ok=
  for attempt in 1 2 3; do
    port=$(free_port); healthz=$(free_port); metrics=$(free_port)
    rm -rf "$dir"; mkdir -p "$dir/creds"
    : >"$dir/config.yaml"
    log "$label: starting $bin (grpc :$port, healthz :$healthz, attempt $attempt)"
    "$bin" "-port=$port" "-healthz-port=$healthz" "-metrics-port=$metrics" \
      -listen-address=127.0.0.1 -healthz-listen-address=127.0.0.1 -metrics-listen-address=127.0.0.1 \
      "-issuer-credentials=$dir/creds" "-config=$dir/config.yaml" >"$dir/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$healthz/healthz" || true)" = 200 ]; then
        ok=1; break
      fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -z "$ok" ] || break
    tail -n 5 "$dir/server.log" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  done
  [ -n "$ok" ] || die "$label did not become healthy"
  # Settle: upstream reloads its freshly generated issuer credentials a few times in the first
  # seconds (its dir watcher sees its own writes; listener closed => "connection refused"), so
  # wait until the server log has been quiet for $settle s, at most $settle_max s.
  local size last_size=-1 quiet=0 waited=0
  while [ "$quiet" -lt "$((settle * 10))" ] && [ "$waited" -lt "$((settle_max * 10))" ]; do
    size=$(stat -c %s "$dir/server.log")
    if [ "$size" = "$last_size" ]; then quiet=$((quiet + 1)); else quiet=0; last_size=$size; fi
    sleep 0.1; waited=$((waited + 1))
  done
  log "$label: settled after $((waited / 10)).$((waited % 10)) s ($(grep -ci 'credentials changed' "$dir/server.log" || true) credential reloads logged)"
  local idle_rss
  idle_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")

  "$bench" --label "$label" --addr "127.0.0.1:$port" --ca "$dir/creds/ca.crt" \
    --concurrency "$levels" --duration "$duration" --warmup "$warmup" \
    --max-requests "$max_requests" >"$dir/bench.json" \
    || { tail -n 30 "$dir/server.log" >&2; die "$label: load generator failed"; }

  local hwm rss
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
  kill -INT "$server_pid"
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    log "$label: still running 10 s after SIGINT; killing"
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  jq --arg bin "$bin" --argjson hwm "$hwm" --argjson rss "$rss" --argjson idle "$idle_rss" \
    '. + {binary: $bin, idle_rss_kb: $idle, peak_rss_kb: $hwm, end_rss_kb: $rss}' \
    "$dir/bench.json" >"$work/$label.json"
}

run_one ours "$ours"
run_one upstream "$upstream"

mkdir -p "$(dirname "$out")"
jq -n --argjson cores "$(nproc)" --slurpfile o "$work/ours.json" --slurpfile u "$work/upstream.json" '
  def ratio(a; b): if b == 0 then null else ((a / b) * 1000 | round) / 1000 end;
  ($o[0]) as $o | ($u[0]) as $u |
  {
    date: (now | todate),
    cores: $cores,
    ours: $o, upstream: $u,
    ratios: {
      levels: [ range(0; $o.levels | length) as $i | $o.levels[$i] as $a | $u.levels[$i] as $b | {
        concurrency: $a.concurrency,
        throughput_ours_over_upstream: ratio($a.rps; $b.rps),
        p50_ours_over_upstream: ratio($a.p50_ms; $b.p50_ms),
        p99_ours_over_upstream: ratio($a.p99_ms; $b.p99_ms)
      } ],
      peak_rss_ours_over_upstream: ratio($o.peak_rss_kb; $u.peak_rss_kb),
      idle_rss_ours_over_upstream: ratio($o.idle_rss_kb; $u.idle_rss_kb)
    }
  }' >"$out"

jq -r '"sentry SignCertificate, insecure validator, \(.ours.connection_model); \(.ours.duration_s) s per level, \(.cores) cores\n"' "$out"
jq -r '
  def f1: . * 10 | round / 10 | tostring;
  def f3: . * 1000 | round / 1000 | tostring;
  . as $r |
  (["conc", "ours req/s", "upstream req/s", "x thr", "ours p50 ms", "up p50 ms", "ours p99 ms", "up p99 ms", "x p99", "errors o/u"] | @tsv),
  ( range(0; $r.ours.levels | length) as $i | $r.ours.levels[$i] as $a | $r.upstream.levels[$i] as $b |
    $r.ratios.levels[$i] as $x |
    [ ($a.concurrency | tostring), ($a.rps | f1), ($b.rps | f1), ($x.throughput_ours_over_upstream | tostring),
      ($a.p50_ms | f3), ($b.p50_ms | f3), ($a.p99_ms | f3), ($b.p99_ms | f3),
      ($x.p99_ours_over_upstream | tostring), "\($a.errors)/\($b.errors)" ] | @tsv )
' "$out" | column -t -s $'\t'
jq -r '
  def f1: . * 10 | round / 10 | tostring;
  . as $r |
  "\nRSS (MB)   idle ours \($r.ours.idle_rss_kb / 1024 | f1)  upstream \($r.upstream.idle_rss_kb / 1024 | f1)  |  peak (VmHWM) ours \($r.ours.peak_rss_kb / 1024 | f1)  upstream \($r.upstream.peak_rss_kb / 1024 | f1)  x \($r.ratios.peak_rss_ours_over_upstream)"
' "$out"
log "results: $out"
