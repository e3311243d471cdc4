#!/usr/bin/env bash
# Starts the self-hosted control plane from this repo's release binaries: placement on 50005,
# scheduler on 50006 (embedded storage under $DATA_DIR), sentry on 50001 when MTLS=1.
# No Kubernetes, no containers. Ctrl-C stops everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release"
data_dir=${DATA_DIR:-"$root/.dapr-local"}
mtls=${MTLS:-0}
log_level=${LOG_LEVEL:-info}
mkdir -p "$data_dir/scheduler" "$data_dir/sentry" "$data_dir/logs"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

start() {
  local name=$1; shift
  echo "starting $name: $*"
  "$bin/$name" "$@" >"$data_dir/logs/$name.log" 2>&1 &
  pids+=($!)
}

wait_healthy() {
  local name=$1 port=$2
  for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      echo "$name is healthy (healthz :$port, log $data_dir/logs/$name.log)"
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not become healthy; last log lines:" >&2
  tail -n 20 "$data_dir/logs/$name.log" >&2
  return 1
}

tls_args=()
if [ "$mtls" = 1 ]; then
  touch "$data_dir/sentry/config.yaml"
  start sentry --port 50001 --healthz-port 58082 --metrics-port 59092 \
    --issuer-credentials "$data_dir/sentry" --config "$data_dir/sentry/config.yaml" \
    --log-level "$log_level"
  wait_healthy sentry 58082
  tls_args=(--tls-enabled --trust-anchors-file "$data_dir/sentry/ca.crt" --sentry-address localhost:50001)
fi

start placement --port 50005 --healthz-port 58080 --metrics-port 59090 \
  --log-level "$log_level" "${tls_args[@]}"
start scheduler --port 50006 --healthz-port 58081 --metrics-port 59091 \
  --etcd-data-dir "$data_dir/scheduler" --etcd-client-port 52379 \
  --log-level "$log_level" "${tls_args[@]}"
wait_healthy placement 58080
wait_healthy scheduler 58081

cat <<MSG

Control plane running (data in $data_dir). Connect daprd with:
  daprd --app-id myapp --placement-host-address localhost:50005 --scheduler-host-address localhost:50006$( [ "$mtls" = 1 ] && printf ' \\\n    --enable-mtls --sentry-address localhost:50001  # with DAPR_TRUST_ANCHORS="$(cat %s)"' "$data_dir/sentry/ca.crt")

Status: sentry, placement and the scheduler (jobs, actor reminders, workflow timers, with its
embedded etcd-compatible store) are running; the operator and injector only matter in Kubernetes.
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "a control-plane process exited; stopping the others" >&2
exit 1
