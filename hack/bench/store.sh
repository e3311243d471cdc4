#!/usr/bin/env bash
# Store benchmark: our etcd-compatible store (`dapr-etcd`) against a real etcd v3.5.30 (the
# version dapr v1.18.3 embeds), single node and 3-node clusters, on loopback, same client.
#
# Each configuration starts fresh members in a new temp data dir (all under one work dir, so on
# the same filesystem), with default durability on both sides: etcd fdatasyncs its Raft WAL per
# Ready batch before acknowledging (its bbolt backend commits in the background); ours
# fdatasyncs its Raft WAL once per group-committed batch before acknowledging (the MVCC state is
# in memory, snapshotted with fsync). Once every client port accepts connections the load
# generator (e2e bin `bench_store`) runs its phases: sequential puts, concurrent puts,
# concurrent compare-and-put txns, linearizable single-key gets and 100-key prefix ranges (see
# e2e/src/bench/store.rs). Then each member's peak RSS (VmHWM) is sampled and the members are
# stopped with SIGTERM.
#
# Every configuration runs REPEATS times, the configurations interleaved (ours-1, etcd-1, ...,
# then again), and each figure reported is the median of its runs: on a shared 2-core VM single
# runs of the same binary vary by +-15 %. The per-run req/s are kept in the JSON (`runs_rps`).
#
# Settings (env): CONFIGS=ours-1,etcd-1,ours-3,etcd-3  REPEATS=3  DURATION=5s  WARMUP=1s  CONCURRENCY=64
#                 CONNS_PER_ENDPOINT=2  VALUE_SIZE=256  RANGE_KEYS=100  MAX_REQUESTS=1000000
#                 UPSTREAM_ETCD=<path>   real etcd binary (default: hack/etcd/build.sh's)
#                 OURS_ETCD=<path>       our binary (default: target/release/dapr-etcd)
#                 OUT=target/bench/store.json
# Output: a side-by-side table on stdout and the results JSON in $OUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
configs=${CONFIGS:-ours-1,etcd-1,ours-3,etcd-3}
repeats=${REPEATS:-3}
duration=${DURATION:-5s}
warmup=${WARMUP:-1s}
concurrency=${CONCURRENCY:-64}
conns=${CONNS_PER_ENDPOINT:-2}
value_size=${VALUE_SIZE:-256}
range_keys=${RANGE_KEYS:-100}
max_requests=${MAX_REQUESTS:-1000000}
out=${OUT:-"$root/target/bench/store.json"}
# A member whose client port is not open by then is broken, not slow.
start_timeout_s=60

log() { printf 'bench-store: %s\n' "$*" >&2; }
die() { printf 'bench-store: error: %s\n' "$*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is required"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-store.XXXXXX")
pids=()
stop_members() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "member $pid still running 10 s after SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_members
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building our dapr-etcd and the load generator (release)"
(cd "$root" && cargo build --release --quiet -p dapr-etcd-store --bin dapr-etcd &&
  cargo build --release --quiet -p e2e --bin bench_store)
ours=${OURS_ETCD:-"$root/target/release/dapr-etcd"}
bench="$root/target/release/bench_store"
[ -x "$ours" ] || die "our dapr-etcd not found at $ours"

if [ -n "${UPSTREAM_ETCD:-}" ]; then
  etcd=$UPSTREAM_ETCD
else
  log "locating etcd v3.5.30 (hack/etcd/build.sh)"
  etcd="$("$root/hack/etcd/build.sh" | tail -n1)/etcd"
fi
[ -x "$etcd" ] || die "etcd not found at $etcd"

# A loopback port nothing listens on now and not handed out before in this run, below the
# kernel's ephemeral range (so outgoing connections do not take it between pick and bind; when
# something else does, start_members fails and run_one retries on fresh ports).
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

# start_members FLAVOR N DIR: starts N fresh members on new ports and waits until every client
# port accepts connections. Sets $endpoints; returns 1 (members stopped) if one did not come up.
start_members() {
  local flavor=$1 n=$2 dir=$3 bin i url cluster=""
  local -a client peer
  case "$flavor" in ours) bin=$ours ;; etcd) bin=$etcd ;; *) die "unknown flavor $flavor" ;; esac
  endpoints=""
  for i in $(seq 1 "$n"); do
    client[i]=$(free_port); peer[i]=$(free_port)
    cluster="$cluster${cluster:+,}n$i=http://127.0.0.1:${peer[i]}"
    endpoints="$endpoints${endpoints:+,}http://127.0.0.1:${client[i]}"
  done
  rm -rf "$dir"
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/n$i"
    url="http://127.0.0.1:${client[i]}"
    if [ "$flavor" = ours ]; then
      "$bin" --name "n$i" --data-dir "$dir/n$i/data" --listen-client-urls "$url" \
        --initial-cluster "$cluster" --log-level warn >"$dir/n$i/server.log" 2>&1 &
    else
      "$bin" --name "n$i" --data-dir "$dir/n$i/data" --listen-client-urls "$url" \
        --advertise-client-urls "$url" --listen-peer-urls "http://127.0.0.1:${peer[i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${peer[i]}" --initial-cluster "$cluster" \
        --initial-cluster-state new --initial-cluster-token "bench-$flavor-$n" \
        --log-level warn >"$dir/n$i/server.log" 2>&1 &
    fi
    pids+=("$!")
  done
  for i in $(seq 1 "$n"); do
    local open=
    for _ in $(seq 1 $((start_timeout_s * 10))); do
      if (exec 3<>"/dev/tcp/127.0.0.1/${client[i]}") 2>/dev/null; then open=1; break; fi
      kill -0 "${pids[i - 1]}" 2>/dev/null || break
      sleep 0.1
    done
    if [ -z "$open" ]; then
      tail -n 3 "$dir/n$i/server.log" >&2
      log "$flavor-$n: member n$i did not open its client port"
      stop_members
      return 1
    fi
  done
}

# run_one FLAVOR N REP: start N members, bench, sample RSS, stop. Writes
# $work/runs/FLAVOR-N.REP.json.
run_one() {
  local flavor=$1 n=$2 rep=$3 label="$1-$2" dir="$work/$1-$2"
  local i attempt started='' load_before load_after bin=$ours
  if [ "$flavor" = etcd ]; then bin=$etcd; fi
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  for attempt in 1 2 3; do
    log "$label: starting $n member(s) of $flavor (attempt $attempt, load $load_before)"
    if start_members "$flavor" "$n" "$dir"; then started=1; break; fi
  done
  [ -n "$started" ] || die "$label: members did not start"
  sleep 1
  local idle=()
  for i in $(seq 1 "$n"); do idle+=("$(status_kb "${pids[i - 1]}" VmRSS)"); done

  "$bench" --label "$label" --endpoints "$endpoints" --conns-per-endpoint "$conns" \
    --concurrency "$concurrency" --value-size "$value_size" --range-keys "$range_keys" \
    --duration "$duration" --warmup "$warmup" --max-requests "$max_requests" >"$dir/bench.json" \
    || { for i in $(seq 1 "$n"); do tail -n 20 "$dir/n$i/server.log" >&2; done; die "$label: load generator failed"; }

  local hwm=() rss=()
  for i in $(seq 1 "$n"); do
    kill -0 "${pids[i - 1]}" 2>/dev/null || { tail -n 20 "$dir/n$i/server.log" >&2; die "$label: member n$i exited during the run"; }
    hwm+=("$(status_kb "${pids[i - 1]}" VmHWM)")
    rss+=("$(status_kb "${pids[i - 1]}" VmRSS)")
  done
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  stop_members
  local disk
  disk=$(du -sk "$dir" | cut -f1)
  jq --arg flavor "$flavor" --argjson nodes "$n" --arg bin "$bin" \
    --arg load_before "$load_before" --arg load_after "$load_after" --argjson disk "$disk" \
    --argjson hwm "$(printf '%s\n' "${hwm[@]}" | jq -s .)" \
    --argjson rss "$(printf '%s\n' "${rss[@]}" | jq -s .)" \
    --argjson idle "$(printf '%s\n' "${idle[@]}" | jq -s .)" '
    . + {flavor: $flavor, nodes: $nodes, binary: $bin, data_dir_kb: $disk,
         loadavg_before: $load_before, loadavg_after: $load_after,
         rss: {peak_kb: $hwm, end_kb: $rss, idle_kb: $idle,
               peak_sum_kb: ($hwm | add), peak_max_kb: ($hwm | max), idle_sum_kb: ($idle | add)}}' \
    "$dir/bench.json" >"$work/runs/$label.$rep.json"
  log "$label: run $rep of $repeats done (load $load_after)"
}

mkdir -p "$work/runs"
for rep in $(seq 1 "$repeats"); do
  for config in ${configs//,/ }; do
    run_one "${config%-*}" "${config##*-}" "$rep"
  done
done

# One document per configuration: the first run's, with every phase figure and RSS figure
# replaced by the median over the runs.
for config in ${configs//,/ }; do
  jq -s '
    def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
      else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    . as $runs | $runs[0] + {
      repeats: ($runs | length),
      phases: [$runs[0].phases[] | .phase as $p |
        ([$runs[] | .phases[] | select(.phase == $p)]) as $same |
        . + {rps: ($same | map(.rps) | median), p50_ms: ($same | map(.p50_ms) | median),
             p99_ms: ($same | map(.p99_ms) | median), errors: ($same | map(.errors) | add),
             runs_rps: ($same | map(.rps))}],
      rss: ($runs[0].rss + {
        peak_sum_kb: ($runs | map(.rss.peak_sum_kb) | median),
        peak_max_kb: ($runs | map(.rss.peak_max_kb) | median),
        idle_sum_kb: ($runs | map(.rss.idle_sum_kb) | median)})
    }' "$work/runs/$config".*.json >"$work/$config.json"
done

mkdir -p "$(dirname "$out")"
jq -n --argjson cores "$(nproc)" --arg fs "$(df --output=fstype "$work" | tail -n1)" --arg tmp "$work" \
  --arg etcd_version "$("$etcd" --version | awk '/^etcd Version/ {print $3}')" '
  def ratio(a; b): if a == null or b == null or b == 0 then null else ((a / b) * 1000 | round) / 1000 end;
  def phase($c; $p): ($c.phases // []) | map(select(.phase == $p)) | first;
  def metric($c; $m): if $c == null then null
    elif $m.phase then (phase($c; $m.phase) // {})[$m.field]
    else $c.rss[$m.field] end;
  [
    {key: "put-seq.rps", phase: "put-seq", field: "rps"},
    {key: "put-seq.p50_ms", phase: "put-seq", field: "p50_ms"},
    {key: "put-seq.p99_ms", phase: "put-seq", field: "p99_ms"},
    {key: "put-concurrent.rps", phase: "put-concurrent", field: "rps"},
    {key: "put-concurrent.p50_ms", phase: "put-concurrent", field: "p50_ms"},
    {key: "put-concurrent.p99_ms", phase: "put-concurrent", field: "p99_ms"},
    {key: "txn.rps", phase: "txn", field: "rps"},
    {key: "txn.p50_ms", phase: "txn", field: "p50_ms"},
    {key: "txn.p99_ms", phase: "txn", field: "p99_ms"},
    {key: "get.rps", phase: "get", field: "rps"},
    {key: "get.p50_ms", phase: "get", field: "p50_ms"},
    {key: "get.p99_ms", phase: "get", field: "p99_ms"},
    {key: "range.rps", phase: "range", field: "rps"},
    {key: "range.p50_ms", phase: "range", field: "p50_ms"},
    {key: "range.p99_ms", phase: "range", field: "p99_ms"},
    {key: "rss.peak_sum_kb", phase: null, field: "peak_sum_kb"},
    {key: "rss.peak_max_kb", phase: null, field: "peak_max_kb"},
    {key: "rss.idle_sum_kb", phase: null, field: "idle_sum_kb"}
  ] as $metrics |
  [inputs] as $runs |
  ($runs | map({key: .label, value: .}) | from_entries) as $by |
  {
    date: (now | todate), cores: $cores, filesystem: $fs, work_dir: $tmp, etcd_version: $etcd_version,
    durability: "both fdatasync their Raft WAL before acknowledging a write, one sync per batch of concurrent writes (etcd: per Raft Ready; ours: per group commit); defaults otherwise",
    runs: $by,
    ratios_ours_over_etcd: (
      [1, 3] | map(tostring) | map(. as $n | {
        key: "nodes-\($n)",
        value: ($metrics | map({key: .key, value: ratio(metric($by["ours-\($n)"]; .); metric($by["etcd-\($n)"]; .))}) | from_entries)
      }) | from_entries)
  }' "$work"/*.json >"$out"

jq -r --arg v "$value_size" --arg d "$duration" --arg c "$conns" '"etcd v3 KV: ours (dapr-etcd) vs etcd \(.etcd_version), same client; \(.cores) cores; data dirs on \(.filesystem); \($v) B values, \($d) per phase, \($c) HTTP/2 connection(s) per endpoint"' "$out"
jq -r '"durability: \(.durability)"' "$out"
printf 'each figure: the median of %s run(s) per configuration, configurations interleaved\n' "$repeats"
jq -r '.runs[] | "  \(.label): load avg before \(.loadavg_before), after \(.loadavg_after); leader \(.members | map(select(.is_leader)) | first | .endpoint // "?")"' "$out"
printf '\n'
jq -r --arg conc "$concurrency" --arg keys "$range_keys" '
  def f: if . == null then "-" elif . >= 100 then (round | tostring)
    elif . >= 1 then (. * 100 | round / 100 | tostring) else (. * 1000 | round / 1000 | tostring) end;
  def phase($c; $p): ($c.phases // []) | map(select(.phase == $p)) | first;
  def metric($c; $m): if $c == null then null
    elif $m.phase then (phase($c; $m.phase) // {})[$m.field]
    else ($c.rss[$m.field] // null) | if . == null then null else . / 1024 end end;
  . as $r |
  [
    {name: "put seq req/s", phase: "put-seq", field: "rps"},
    {name: "put seq p50 ms", phase: "put-seq", field: "p50_ms"},
    {name: "put seq p99 ms", phase: "put-seq", field: "p99_ms"},
    {name: "put c\($conc) req/s", phase: "put-concurrent", field: "rps"},
    {name: "put c\($conc) p50 ms", phase: "put-concurrent", field: "p50_ms"},
    {name: "put c\($conc) p99 ms", phase: "put-concurrent", field: "p99_ms"},
    {name: "txn c\($conc) req/s", phase: "txn", field: "rps"},
    {name: "txn c\($conc) p50 ms", phase: "txn", field: "p50_ms"},
    {name: "txn c\($conc) p99 ms", phase: "txn", field: "p99_ms"},
    {name: "get c1 req/s", phase: "get", field: "rps"},
    {name: "get c1 p50 ms", phase: "get", field: "p50_ms"},
    {name: "get c1 p99 ms", phase: "get", field: "p99_ms"},
    {name: "range\($keys) c1 p50 ms", phase: "range", field: "p50_ms"},
    {name: "range\($keys) c1 p99 ms", phase: "range", field: "p99_ms"},
    {name: "peak RSS MB (sum)", phase: null, field: "peak_sum_kb"},
    {name: "peak RSS MB (max member)", phase: null, field: "peak_max_kb"},
    {name: "idle RSS MB (sum)", phase: null, field: "idle_sum_kb"},
    {name: "errors", phase: "errors", field: null}
  ] as $rows |
  def cell($n; $row): $r.runs["\($n)"] as $c |
    if $row.phase == "errors" then (if $c == null then null else ($c.phases | map(.errors) | add) end)
    else metric($c; $row) end;
  def ratio(a; b): if a == null or b == null or b == 0 then null else ((a / b) * 100 | round) / 100 end;
  (["metric", "ours-1", "etcd-1", "x1", "ours-3", "etcd-3", "x3"] | @tsv),
  ($rows[] as $row |
    [cell("ours-1"; $row), cell("etcd-1"; $row), cell("ours-3"; $row), cell("etcd-3"; $row)] as [$o1, $e1, $o3, $e3] |
    [$row.name, ($o1 | f), ($e1 | f),
     (if $row.phase == "errors" then "" else (ratio($o1; $e1) | f) end),
     ($o3 | f), ($e3 | f),
     (if $row.phase == "errors" then "" else (ratio($o3; $e3) | f) end)] | @tsv)
' "$out" | column -t -s $'\t'
printf '\nx = ours / etcd: above 1 is better for req/s, below 1 is better for latency and RSS.\n'
jq -r '.runs[] | .label as $l | .phases[] | select(.phase == "put-concurrent" or .phase == "txn") | "\($l) \(.phase) req/s per run: \(.runs_rps | map(round) | join(", "))"' "$out"
jq -r '.runs[] | .label as $l | .phases[] | select(.first_error != null) | "\($l) \(.phase): \(.errors) errors, first: \(.first_error)"' "$out"
log "results: $out"
