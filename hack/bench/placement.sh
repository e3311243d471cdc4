#!/usr/bin/env bash
# Placement benchmark: our release placement against upstream's (dapr/dapr@v1.18.3) on loopback.
#
# For each stream count N (fresh server each time, single node, plaintext, as upstream's
# integration harness starts it) the load generator (e2e bin `bench_placement`) connects N
# simulated daprds that all host one actor type and ack every phase, waits for the round that
# includes them all, then measures REPEATS times: one host joins (time until every stream got
# UNLOCK for the new round) and the same host leaves (likewise). Peak RSS (VmHWM) of the server
# is sampled before it is stopped with SIGINT.
#
# Settings (env): STREAMS=100,1000,5000  REPEATS=5  ROUND_TIMEOUT=300s
#                 UPSTREAM_PLACEMENT=<path>  skip the conformance cache lookup
#                 OURS_PLACEMENT=<path>      bench this binary instead of target/release/placement
#                 OUT=target/bench/placement.json
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
streams=${STREAMS:-100,1000,5000}
repeats=${REPEATS:-5}
round_timeout=${ROUND_TIMEOUT:-300s}
out=${OUT:-"$root/target/bench/placement.json"}

log() { printf 'bench-placement: %s\n' "$*" >&2; }
die() { printf 'bench-placement: error: %s\n' "$*" >&2; exit 1; }
for tool in curl jq; do command -v "$tool" >/dev/null || die "$tool is required"; done
# Every simulated daprd is a socket on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-placement.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

log "building our placement and the load generator (release)"
(cd "$root" && cargo build --release --quiet -p placement && cargo build --release --quiet -p e2e --bin bench_placement)
ours=${OURS_PLACEMENT:-"$root/target/release/placement"}
bench="$root/target/release/bench_placement"

if [ -n "${UPSTREAM_PLACEMENT:-}" ]; then
  upstream=$UPSTREAM_PLACEMENT
else
  log "locating upstream's placement (conformance cache)"
  upstream_dir=$(UPSTREAM_NEED=placement "$root/hack/conformance/upstream.sh" build | tail -n1)
  upstream="$upstream_dir/placement"
fi
[ -x "$upstream" ] || die "upstream placement not found at $upstream"

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

# run_one LABEL BINARY N: start, wait for leadership, bench, sample RSS, stop. Writes $work/LABEL-N.json.
run_one() {
  local label=$1 bin=$2 n=$3 dir="$work/$1-$3"
  local port healthz metrics raft ok=
  mkdir -p "$dir"
  port=$(free_port); healthz=$(free_port); metrics=$(free_port); raft=$(free_port)
  log "$label N=$n: starting $bin (grpc :$port)"
  "$bin" --log-level=info --id=bench --port="$port" --listen-address=127.0.0.1 \
    --healthz-port="$healthz" --healthz-listen-address=127.0.0.1 \
    --metrics-port="$metrics" --metrics-listen-address=127.0.0.1 \
    --initial-cluster="bench=127.0.0.1:$raft" --tls-enabled=false --metadata-enabled=true \
    --disseminate-timeout=300s >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if curl -s "http://127.0.0.1:$metrics/metrics" | grep -q '^dapr_placement_leader_status 1'; then
      ok=1; break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ok" ] || { tail -n 20 "$dir/server.log" >&2; die "$label did not become leader"; }
  local idle_rss
  idle_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")

  "$bench" --label "$label" --addr "127.0.0.1:$port" --streams "$n" --repeats "$repeats" \
    --round-timeout "$round_timeout" >"$dir/bench.json" \
    || { tail -n 30 "$dir/server.log" >&2; die "$label: load generator failed"; }

  local hwm
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
  kill -INT "$server_pid"
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  jq --arg bin "$bin" --argjson hwm "$hwm" --argjson idle "$idle_rss" \
    '. + {binary: $bin, idle_rss_kb: $idle, peak_rss_kb: $hwm}' "$dir/bench.json" >"$work/$label-$n.json"
}

for n in ${streams//,/ }; do
  run_one ours "$ours" "$n"
  run_one upstream "$upstream" "$n"
done

mkdir -p "$(dirname "$out")"
jq -n --argjson cores "$(nproc)" '
  def ratio(a; b): if b == 0 then null else ((a / b) * 1000 | round) / 1000 end;
  [inputs] as $all |
  ($all | map(select(.label == "ours"))) as $o |
  ($all | map(select(.label == "upstream"))) as $u |
  {
    date: (now | todate), cores: $cores,
    runs: [ range(0; $o | length) as $i | $o[$i] as $a | $u[$i] as $b | {
      streams: $a.streams, ours: $a, upstream: $b,
      join_speedup: ratio($b.join_ms.p50; $a.join_ms.p50),
      leave_speedup: ratio($b.leave_ms.p50; $a.leave_ms.p50),
      peak_rss_ours_over_upstream: ratio($a.peak_rss_kb; $b.peak_rss_kb)
    } ]
  }' $(for n in ${streams//,/ }; do printf '%s %s ' "$work/ours-$n.json" "$work/upstream-$n.json"; done) >"$out"

jq -r '"placement rounds, single node, plaintext, \(.cores) cores; p50 of each side, speedup = upstream / ours\n"' "$out"
jq -r '
  def f1: . * 10 | round / 10 | tostring;
  (["N", "join ours ms", "join up ms", "x join", "leave ours ms", "leave up ms", "x leave", "peak MB ours", "peak MB up", "x RSS"] | @tsv),
  ( .runs[] | [ (.streams | tostring), (.ours.join_ms.p50 | f1), (.upstream.join_ms.p50 | f1), (.join_speedup | tostring),
      (.ours.leave_ms.p50 | f1), (.upstream.leave_ms.p50 | f1), (.leave_speedup | tostring),
      (.ours.peak_rss_kb / 1024 | f1), (.upstream.peak_rss_kb / 1024 | f1), (.peak_rss_ours_over_upstream | tostring) ] | @tsv )
' "$out" | column -t -s $'\t'
log "results: $out"
