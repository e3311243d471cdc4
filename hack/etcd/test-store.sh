#!/usr/bin/env bash
# Runs the etcd-semantics suite (crates/etcd-store/tests/semantics*.rs) against a real etcd
# v3.5.30 and then against our store, each a fresh single node on loopback. The same assertions
# must hold on both; exits non-zero if any run fails.
#
#   hack/etcd/test-store.sh
#
# Per server: start it in a temp dir on free ports with a small space quota, wait until
# `etcdctl endpoint health` passes, run the main suite (`--test semantics`, parallel tests), then
# the quota test (`--test semantics_quota`, which fills the database and so runs last), then an
# etcdctl smoke test (put/get/del with prefix, lease grant/list/revoke, watch, endpoint status,
# member list, alarm list, defrag) whose transcript is printed; stop it. Last, the scheduler's
# external-etcd auth test (scheduler/tests/external_etcd_auth.rs) runs on the real etcd binaries.
#
# Environment:
#   OURS_ETCD_CMD   command line that starts our server in the foreground; `{port}` (client
#                   port), `{peer_port}`, `{dir}` (an empty data dir), `{quota}` (bytes) and
#                   `{max_txn_ops}` are substituted. Unset: our run is skipped, with a message.
#   ETCD_QUOTA      the space quota for both servers, bytes (default 16 MiB: the quota test fills
#                   it with 1 MiB puts, so small is quick)
#   CARGO           cargo binary (default cargo); CARGO_TEST_ARGS extra args after `--`
#   DAPR_ETCD_CACHE where hack/etcd/build.sh keeps the etcd binaries
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CARGO="${CARGO:-cargo}"
QUOTA="${ETCD_QUOTA:-$((16 << 20))}"
# etcd's default --max-txn-ops, passed explicitly to both servers (the scheduler's own default
# is 10000) so the suite can check the limit.
MAX_TXN_OPS=128
# A server that is not healthy by then is broken, not slow.
HEALTH_TIMEOUT_S=60

log() { printf 'test-store: %s\n' "$*" >&2; }

BIN_DIR="$("$HERE/build.sh")"
ETCDCTL="$BIN_DIR/etcdctl"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SERVER_PID=""
WATCH_PID=""
WORK=""
stop_server() {
  if [ -n "$WATCH_PID" ]; then
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
  WATCH_PID=""
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  WORK=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Compile both test binaries before any server runs, so no server waits on the compiler.
log "building the suite"
(cd "$REPO_ROOT" && "$CARGO" test -p dapr-etcd-store --test semantics --test semantics_quota --no-run)

# run_suite <flavor> <command line> <client port>: starts the server, runs both suites.
run_suite() {
  local flavor="$1" cmd="$2" port="$3" endpoint rc=0 start extra
  read -ra extra <<<"${CARGO_TEST_ARGS:-}"
  endpoint="http://127.0.0.1:$port"
  log "$flavor: starting: $cmd"
  # exec: the recorded pid is the server itself, so stop_server signals the server.
  bash -c "exec $cmd" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  start=$(date +%s)
  until "$ETCDCTL" --endpoints="$endpoint" --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "$flavor: server exited before becoming healthy; its log:"
      tail -n 40 "$WORK/server.log" >&2
      return 1
    fi
    if [ $(( $(date +%s) - start )) -ge "$HEALTH_TIMEOUT_S" ]; then
      log "$flavor: not healthy after ${HEALTH_TIMEOUT_S}s; its log:"
      tail -n 40 "$WORK/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "$flavor: healthy at $endpoint (quota $QUOTA bytes)"
  for suite in semantics semantics_quota; do
    log "$flavor: cargo test --test $suite"
    (cd "$REPO_ROOT" && ETCD_ENDPOINT="$endpoint" ETCD_FLAVOR="$flavor" ETCD_QUOTA_BYTES="$QUOTA" \
      ETCD_MAX_TXN_OPS="$MAX_TXN_OPS" \
      "$CARGO" test -q -p dapr-etcd-store --test "$suite" -- "${extra[@]}") || rc=1
  done
  etcdctl_smoke "$flavor" "$endpoint" || rc=1
  return "$rc"
}

# etcdctl_smoke <flavor> <endpoint>: what the issue's acceptance drives through etcdctl (get/put/del
# with prefix, lease grant/list/revoke, endpoint status, alarm list, defrag, member list, watch),
# each checked on its output. Prints a transcript.
etcdctl_smoke() {
  local flavor="$1" endpoint="$2" out lease
  ctl() { "$ETCDCTL" --endpoints="$endpoint" --command-timeout=5s "$@"; }
  expect() { # expect <description> <want> <got>
    if [ "$2" != "$3" ]; then
      log "$flavor: etcdctl $1: want $(printf '%q' "$2"), got $(printf '%q' "$3")"
      return 1
    fi
  }
  log "$flavor: etcdctl smoke test"
  ctl put smoke/a 1 >/dev/null && ctl put smoke/b 2 >/dev/null && ctl put smoke0 outside >/dev/null || return 1
  out="$(ctl get --prefix smoke/)" || return 1
  expect "get --prefix" $'smoke/a\n1\nsmoke/b\n2' "$out" || return 1
  out="$(ctl get --prefix --keys-only --limit 1 smoke/)" || return 1
  expect "get --keys-only --limit" "smoke/a" "$(printf '%s' "$out" | sed '/^$/d')" || return 1
  # etcdctl itself in the background (not the ctl function, whose subshell would hide its pid).
  "$ETCDCTL" --endpoints="$endpoint" watch --prefix smoke/ >"$WORK/watch.out" 2>&1 &
  WATCH_PID=$!
  sleep 1
  out="$(ctl del --prefix smoke/)" || return 1
  expect "del --prefix" "2" "$out" || return 1
  lease="$(ctl lease grant 60 | awk '/granted with TTL/ { print $2 }')" || return 1
  [ -n "$lease" ] || { log "$flavor: etcdctl lease grant printed no id"; return 1; }
  ctl put --lease="$lease" smoke/leased v >/dev/null || return 1
  ctl lease list | grep -qx "$lease" || { log "$flavor: etcdctl lease list lacks $lease"; return 1; }
  out="$(ctl lease revoke "$lease")" || return 1
  expect "lease revoke" "lease $lease revoked" "$out" || return 1
  expect "get after revoke" "" "$(ctl get smoke/leased)" || return 1
  sleep 0.5
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
  # A delete prints an empty value line (the last one is eaten by $(...)).
  expect "watch --prefix" $'DELETE\nsmoke/a\n\nDELETE\nsmoke/b\n\nPUT\nsmoke/leased\nv\nDELETE\nsmoke/leased' \
    "$(cat "$WORK/watch.out")" || return 1
  ctl endpoint status -w table || return 1
  ctl endpoint status -w json | grep -q '"version":"3.5.' || { log "$flavor: endpoint status: no 3.5 version"; return 1; }
  ctl member list || return 1
  expect "alarm list" "" "$(ctl alarm list)" || return 1
  ctl defrag || return 1
  ctl del smoke0 >/dev/null || return 1
}

failed=()

# Real etcd, as the scheduler embeds it: default heartbeat/election (so the same minimum lease
# TTL), one member, the quota under test.
WORK="$(mktemp -d -t dapr-etcd-semantics.XXXXXX)"
port="$(free_port)"
peer_port="$(free_port)"
etcd_cmd="$BIN_DIR/etcd --name semantics --data-dir $WORK/data \
--listen-client-urls http://127.0.0.1:$port --advertise-client-urls http://127.0.0.1:$port \
--listen-peer-urls http://127.0.0.1:$peer_port --initial-advertise-peer-urls http://127.0.0.1:$peer_port \
--initial-cluster semantics=http://127.0.0.1:$peer_port --initial-cluster-state new \
--quota-backend-bytes $QUOTA --max-txn-ops $MAX_TXN_OPS --log-level warn"
run_suite etcd "$etcd_cmd" "$port" || failed+=(etcd)
stop_server

if [ -z "${OURS_ETCD_CMD:-}" ]; then
  log "ours: skipped: OURS_ETCD_CMD is not set (a command line with {port}, {peer_port}, {dir}, {quota}, {max_txn_ops})"
else
  WORK="$(mktemp -d -t dapr-etcd-semantics.XXXXXX)"
  port="$(free_port)"
  peer_port="$(free_port)"
  ours_cmd="${OURS_ETCD_CMD//\{port\}/$port}"
  ours_cmd="${ours_cmd//\{peer_port\}/$peer_port}"
  ours_cmd="${ours_cmd//\{dir\}/$WORK/data}"
  ours_cmd="${ours_cmd//\{quota\}/$QUOTA}"
  ours_cmd="${ours_cmd//\{max_txn_ops\}/$MAX_TXN_OPS}"
  mkdir -p "$WORK/data"
  run_suite ours "$ours_cmd" "$port" || failed+=(ours)
  stop_server
fi

# The scheduler against this real etcd with auth on: it must renew a token etcd stops accepting
# (the test starts and stops its own etcd from these binaries).
log "scheduler on external etcd with auth: cargo test -p scheduler --test external_etcd_auth"
(cd "$REPO_ROOT" && DAPR_TEST_ETCD_BIN_DIR="$BIN_DIR" \
  "$CARGO" test -q -p scheduler --test external_etcd_auth) || failed+=(scheduler-auth)

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED on: ${failed[*]}"
  exit 1
fi
log "passed"
