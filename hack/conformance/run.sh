#!/usr/bin/env bash
# Runs upstream Dapr's integration suite (v1.18.3) against our control-plane binaries.
#
#   hack/conformance/run.sh [run]   prepare, then run the cases matching FOCUS (default)
#   hack/conformance/run.sh prepare fetch and build everything a run needs, run nothing
#   hack/conformance/run.sh list    print the cases matching FOCUS: name, binaries used
#   hack/conformance/run.sh dir     print upstream's module root (its .proto files live there)
#   hack/conformance/run.sh report  re-render the last run's report from its recorded events
#
# Environment:
#   FOCUS      regex over case names, e.g. '^(sentry|healthz)/' (default: every case)
#   OURS       comma list of services taken from this repo; the others are upstream's.
#              Unset: all of sentry,placement,scheduler,operator,injector. Empty: none,
#              the pure-upstream baseline. daprd is always upstream's.
#   PARALLEL   cases run at once (-test.parallel; default 4: on 2 cores the control-plane
#              cases spend most of their time waiting, 4 halves the wall time of 2)
#   TIMEOUT    limit of one run of the suite binary, a Go duration (default 60m; the two
#              unshare cases get a second run of their own, see SOLO_CASES)
#   DAPR_CONFORMANCE_CACHE   fetched module, working copy, built binaries
#                            (default $HOME/.cache/dapr-conformance)
#   DAPR_CONFORMANCE_USER    unprivileged user the suite runs as when invoked as root
#                            (default daprcf; created if missing)
#   DAPR_CONFORMANCE_RUNDIR  staged binaries, HOME and TMPDIR of a run (default /tmp/dapr-cf)
#   CONFORMANCE_OUT          results.json and per-case logs (default <repo>/target/conformance)
#   DAPR_INTEGRATION_LOGS    passed to the suite: "true" logs every process, not only failed cases
#
# Output: one line per case, log excerpts for failures, results.json, and a closing line
# "conformance: N passed, M failed, K skipped". Exits non-zero if any case failed, if a
# selected case never reported, or if the suite failed before its cases started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FOCUS="${FOCUS:-.*}"
OURS="${OURS-sentry,placement,scheduler,operator,injector}"
PARALLEL="${PARALLEL:-4}"
TIMEOUT="${TIMEOUT:-60m}"
RUN_USER="${DAPR_CONFORMANCE_USER:-daprcf}"
RUN_DIR="${DAPR_CONFORMANCE_RUNDIR:-/tmp/dapr-cf}"
OUT="${CONFORMANCE_OUT:-$REPO_ROOT/target/conformance}"
# Lines of a failed case's log shown inline; the whole log is in $OUT/logs/.
readonly EXCERPT_LINES=20

ours_list() { tr ',' ' ' <<<"$OURS" | xargs -n1 2>/dev/null | sort -u | xargs; }

check_ours() {
  local s
  for s in $(ours_list); do
    case " $SERVICES " in *" $s "*) ;; *) die "OURS: unknown service '$s' (known: $SERVICES)" ;; esac
  done
}

# Builds our services with cargo and prints their directory.
build_ours() {
  local ours args=() s target
  ours="$(ours_list)"
  [ -n "$ours" ] || return 0
  need_tool cargo
  for s in $ours; do args+=(-p "$s"); done
  log "building ours: $ours"
  (cd "$REPO_ROOT" && timed "cargo build --release $ours" cargo build --release --quiet "${args[@]}") >&2 \
    || die "cargo build of our binaries failed (OURS=$OURS); use OURS= for the upstream baseline"
  target="$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r '.target_directory')" \
    || target="$REPO_ROOT/target"
  for s in $ours; do [ -x "$target/release/$s" ] || die "cargo built no $target/release/$s"; done
  printf '%s\n' "$target/release"
}

prepare() {
  need_tool go
  need_tool jq jq
  check_ours
  CASES="$("$HERE/upstream.sh" cases)" || exit 1
  local need
  need="$(upstream_needed)"
  log "upstream binaries needed for this focus: ${need:-none}"
  UP_BIN="$(UPSTREAM_NEED="$need" timed "upstream prepare" "$HERE/upstream.sh" build)" || exit 1
  OURS_BIN="$(build_ours)" || exit 1
  log "upstream binaries: $UP_BIN"
  sed -n 's/^patch: /conformance: patch: /p' "$UP_BIN/PATCH" >&2
}

# Upstream binaries the selected cases start (from their "uses") that are not ours.
# "uses" is read from each case file's imports; a binary it misses is staged as a stub
# that fails loudly, so a wrong guess fails a case and never passes one.
upstream_needed() {
  local ours
  ours="$(ours_list)"
  select_cases | jq -r --arg ours "$ours" '
    ($ours | split(" ")) as $o
    | [.[] | select(.needs_helper == null) | .uses[]] | unique | .[]
    | select(. as $u | ["daprd","sentry","placement","scheduler","operator","injector"] | index($u))
    | select(. as $u | $o | index($u) | not)' | paste -sd' ' -
}

# Cases matching FOCUS as JSON: [{name, uses:[..], needs_helper: "name"|null}].
select_cases() {
  jq -R -s --arg focus "$FOCUS" --arg helpers "$HELPERS" '
    ($helpers | split(" ")) as $h
    | split("\n") | map(select(length > 0) | split("\t")
      | {name: .[0], uses: (if .[1] == "-" then [] else (.[1] | split(",")) end)})
    | map(select(.name | test($focus)))
    | map(. + {needs_helper: ([.uses[] | select(. as $u | $h | index($u))] | first)})
  ' <<<"$CASES"
}

ensure_user() {
  id -u "$RUN_USER" >/dev/null 2>&1 && return 0
  log "creating user $RUN_USER"
  useradd --system --no-create-home --home-dir "$RUN_DIR/home" --shell /usr/sbin/nologin "$RUN_USER" \
    || die "could not create user $RUN_USER"
}

# Hard-links (or copies) a binary into the run directory, where the run user can reach it.
stage() {
  ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"
  chmod 0755 "$2"
}

stage_run_dir() {
  local s
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR/bin" "$RUN_DIR/home" "$RUN_DIR/tmp"
  stage "$UP_BIN/integration.test" "$RUN_DIR/bin/integration.test"
  for s in daprd $SERVICES; do
    if [[ " $(ours_list) " == *" $s "* ]]; then
      stage "$OURS_BIN/$s" "$RUN_DIR/bin/$s"
    elif [ -x "$UP_BIN/$s" ]; then
      stage "$UP_BIN/$s" "$RUN_DIR/bin/$s"
    else
      # Not built for this focus: a stand-in that fails loudly if a case starts it anyway.
      install -m 0755 "$HERE/helper-unavailable.sh" "$RUN_DIR/bin/$s"
    fi
  done
  for s in $HELPERS; do install -m 0755 "$HERE/helper-unavailable.sh" "$RUN_DIR/bin/$s"; done
  # The fake API server serves upstream's CRDs, read from the source tree at run time.
  cp -r "$SRC_DIR/charts/dapr/crds" "$RUN_DIR/crds"
  chmod -R a+rX "$RUN_DIR/crds"
  chmod 0755 "$RUN_DIR" "$RUN_DIR/bin"
  if [ "$(id -u)" = 0 ]; then
    ensure_user
    chown -R "$RUN_USER:" "$RUN_DIR/home" "$RUN_DIR/tmp"
  fi
}

# Go durations like 90m / 1h / 300s to seconds, for the outer kill guard.
duration_seconds() {
  local total=0 rest="$1"
  while [[ "$rest" =~ ^([0-9]+)(h|ms|m|s|us|ns)(.*)$ ]]; do
    case "${BASH_REMATCH[2]}" in
      h) total=$(( total + BASH_REMATCH[1] * 3600 )) ;;
      m) total=$(( total + BASH_REMATCH[1] * 60 )) ;;
      s) total=$(( total + BASH_REMATCH[1] )) ;;
    esac
    rest="${BASH_REMATCH[3]}"
  done
  [ -z "$rest" ] || die "TIMEOUT '$1' is not a Go duration like 90m or 1h30m"
  echo "$total"
}

# Cases that re-run themselves in a user+mount namespace (`unshare`): their inner runs share
# the host's network namespace and all probe for ports from the same high base, so two of them
# at once collide (a daprd of one binds the scheduler port of the other). They run after the
# rest, one at a time.
readonly SOLO_CASES='^daprd/workflow/disk/diskfull(midrun)?$'

run_suite() {
  local selected="$1" names solo rest s rc=0
  names="$(jq -r '.[] | select(.needs_helper == null) | .name' "$selected")"
  solo="$(grep -E "$SOLO_CASES" <<<"$names" || true)"
  rest="$(grep -vE "$SOLO_CASES" <<<"$names" || true)"
  if [ -n "$rest" ]; then run_cases "$selected" "$rest" "$PARALLEL" || rc=$?; fi
  if [ -n "$solo" ]; then
    run_cases "$selected" "$solo" 1 || { s=$?; [ "$rc" != 0 ] || rc=$s; }
  fi
  return "$rc"
}

# One run of the suite binary over the cases named in $2 (one per line), $3 at once; its
# events are appended to $OUT/events.jsonl.
run_cases() {
  local selected="$1" names="$2" parallel="$3" regex env_vars=() s runner=() rc=0 guard
  rm -f "$RUN_DIR/pgid"
  # Exact names, so cases excluded here (helpers) cannot run through a looser FOCUS.
  # shellcheck disable=SC2001 # a character class, not a fixed string
  regex="^($(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$names" | paste -sd'|' -))\$"
  env_vars=(HOME="$RUN_DIR/home" TMPDIR="$RUN_DIR/tmp" PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            LANG=C.UTF-8 DAPR_INTEGRATION_CRD_DIRECTORY="$RUN_DIR/crds")
  # DAPR_INTEGRATION_LOGS=true makes the suite print every process's log, not only a failed case's.
  [ -n "${DAPR_INTEGRATION_LOGS:-}" ] && env_vars+=("DAPR_INTEGRATION_LOGS=$DAPR_INTEGRATION_LOGS")
  for s in daprd $SERVICES $HELPERS; do
    env_vars+=("DAPR_INTEGRATION_${s^^}_PATH=$RUN_DIR/bin/$s")
  done
  if [ "$(id -u)" = 0 ]; then
    runner=(setpriv --reuid="$(id -u "$RUN_USER")" --regid="$(id -g "$RUN_USER")" --init-groups --)
  fi
  guard=$(( $(duration_seconds "$TIMEOUT") + 180 ))

  local as_user
  as_user="$(id -un)"
  [ "$(id -u)" != 0 ] || as_user="$RUN_USER"
  log "running $(wc -l <<<"$names") cases as $as_user (parallel $parallel, timeout $TIMEOUT)"
  # setsid: the suite and every process it starts share one process group, so whatever
  # it leaves behind (a timed-out case's daprd, say) is ended with it.
  set +e
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  (cd "$RUN_DIR/home" && exec setsid --wait bash -c 'echo $$ >"$0"; exec "$@"' "$RUN_DIR/pgid" \
      timeout --kill-after=30s "$guard" "${runner[@]}" env -i "${env_vars[@]}" \
      "$RUN_DIR/bin/integration.test" -test.run '^Test_Integration$' -test.v=test2json -test.count=1 \
      -test.timeout "$TIMEOUT" -test.parallel "$parallel" -focus "$regex") 2>&1 |
    go tool test2json -t -p integration | tee -a "$OUT/events.jsonl" | progress "$selected"
  rc=${PIPESTATUS[0]}
  set -e
  if [ -s "$RUN_DIR/pgid" ]; then kill -- -"$(cat "$RUN_DIR/pgid")" 2>/dev/null || true; fi
  return "$rc"
}

# Prints a line to stderr as each selected case finishes.
progress() {
  jq -n --unbuffered -r --slurpfile sel "$1" '
    ($sel[0] | map({key: .name, value: true}) | from_entries) as $names
    | inputs
    | select(.Test != null and (.Action == "pass" or .Action == "fail" or .Action == "skip"))
    | (.Test | ltrimstr("Test_Integration/")) as $n
    | select($names[$n])
    | "  ... \(.Action) \($n) (\(.Elapsed)s)"' >&2 || true
}

# Splits the event stream into one log per case (and _suite.log for the rest).
write_logs() {
  local selected="$1"
  rm -rf "$OUT/logs"; mkdir -p "$OUT/logs"
  jq -n -r --slurpfile sel "$selected" '
    ($sel[0] | map({key: .name, value: true}) | from_entries) as $names
    | inputs
    | select(.Action == "output")
    | (if .Test == null then "_suite" else
         (.Test | ltrimstr("Test_Integration/") | split("/")) as $p
         | ([range($p | length; 0; -1) | $p[0:.] | join("/") | select($names[.])] | first) // "_suite"
       end) as $case
    | "\($case | gsub("/"; "__"))\t\(.Output | rtrimstr("\n"))"' "$OUT/events.jsonl" |
    sort -s -t $'\t' -k1,1 |
    awk -F'\t' -v dir="$OUT/logs" '$1 != last { if (f) close(f); last = $1; f = dir "/" $1 ".log" }
                                    { sub(/^[^\t]*\t/, ""); print >> f }'
}

# One record per selected case; a case with no final event of its own is a failure.
results() {
  local selected="$1"
  jq -n --slurpfile sel "$selected" --slurpfile run "$OUT/run.json" \
     --arg version "$DAPR_VERSION" --arg patch "$(sed -n 's/^patch: //p' "$OUT/PATCH")" '
    # With two runs of the suite binary (see run_suite) its own two entries appear twice: a
    # failure in either run wins.
    (reduce (inputs | select(.Test != null and (.Action == "pass" or .Action == "fail" or .Action == "skip")))
       as $e ({}; if (.[$e.Test].Action == "fail") and ($e.Test == "Test_Integration" or $e.Test == "Test_Integration/build_binaries")
                  then . else .[$e.Test] = $e end)) as $final
    | $run[0] as $r
    | ($r.ours | split(" ") | map(select(length > 0))) as $ourlist
    | [ $sel[0][] | . as $c | $final["Test_Integration/" + $c.name] as $e
        | { name: $c.name,
            status: (if $c.needs_helper then "skip" elif $e then $e.Action else "fail" end),
            seconds: (if $e then $e.Elapsed else 0 end),
            ours: $ourlist,
            uses: $c.uses }
          + (if $c.needs_helper then {reason: "needs \($c.needs_helper)"}
             elif $e == null then {reason: "never reported a result (suite aborted or timed out before it finished)"}
             else {} end) ] as $cases
    | { version: $version, patches: ($patch | split("\n") | map(select(length > 0))),
        focus: $r.focus, ours: $ourlist, started: $r.started, seconds: $r.seconds,
        suite: { exit_code: $r.suite_rc,
                 build_binaries: ($final["Test_Integration/build_binaries"].Action // "not run"),
                 status: ($final["Test_Integration"].Action // "did not finish") },
        summary: { passed: ([$cases[] | select(.status == "pass")] | length),
                   failed: ([$cases[] | select(.status == "fail")] | length),
                   skipped: ([$cases[] | select(.status == "skip")] | length) },
        cases: $cases }' "$OUT/events.jsonl"
}

excerpt() {
  local log="$1" lines
  [ -f "$log" ] || { echo "      (no output)"; return; }
  # The test's own lines (testify's Error Trace/Error blocks, t.Log, --- FAIL) first;
  # then the processes' error lines, which the framework dumps at cleanup of a failed
  # case through iowriter.go.
  local own proc n
  own="$(grep -vE 'iowriter\.go:[0-9]+:|^=== |--- PASS|setting up test case|running test case' "$log" |
         awk '/Error Trace:|panic:|--- FAIL/ && !start { start = NR - 1; if (start > 0) print prev }
              start { print } { prev = $0 }' |
         head -n $(( EXCERPT_LINES * 3 / 4 )))" || true
  n=$(( EXCERPT_LINES - $(grep -c . <<<"$own" || true) ))
  proc="$(grep -E 'iowriter\.go:[0-9]+:' "$log" |
          grep -iE 'level=(error|fatal)|"level":"(error|fatal)"|fatal|panic|not available in this harness' |
          head -n "$n")" || true
  lines="$(printf '%s\n%s\n' "$own" "$proc" | grep .)" \
    || lines="$(grep -vE '^=== ' "$log" | tail -n "$EXCERPT_LINES" | grep .)" \
    || lines="(no output before the suite stopped)"
  printf '      %s\n' "${lines//$'\n'/$'\n      '}"
}

report() {
  local res="$1" suite_rc="$2" name status seconds reason
  while IFS=$'\t' read -r name status seconds reason; do
    printf '%-4s %8ss  %s%s\n' "$status" "$seconds" "$name" "${reason:+  ($reason)}"
    if [ "$status" = fail ]; then excerpt "$OUT/logs/${name//\//__}.log"; fi
  done < <(jq -r '.cases[] | [.name, .status, (.seconds | tostring), (.reason // "")] | @tsv' "$res")

  local bb
  bb="$(jq -r '.suite.build_binaries' "$res")"
  if [ "$bb" != pass ]; then
    echo "conformance: the suite failed before its cases started ('build binaries' subtest: $bb, exit $suite_rc)"
    tail -n 30 "$OUT/logs/_suite.log" 2>/dev/null | sed 's/^/      /'
  elif [ "$suite_rc" != 0 ]; then
    # Failed cases explain themselves; say more only when the suite itself broke off.
    local why
    why="$(cat "$OUT/logs/"*.log 2>/dev/null | grep -m1 -E '^\s*panic: ' || true)"
    if [ -n "$why" ] || [ "$(jq '.summary.failed' "$res")" = 0 ]; then
      echo "conformance: the suite exited $suite_rc${why:+: ${why#"${why%%[! ]*}"}}"
    fi
  fi
  check_case_count
  jq -r '"conformance: \(.summary.passed) passed, \(.summary.failed) failed, \(.summary.skipped) skipped"' "$res"
}

# The suite logs how many cases it ran and skipped; their sum must be the number of
# cases we listed, or our list (and so the focus we pass) is out of step with the suite.
check_case_count() {
  local log="$OUT/logs/_suite.log" ran skipped listed
  [ -f "$log" ] || return 0
  # With a second run of the suite binary (see run_suite) the first run's pair still counts
  # every case the suite registers.
  ran="$(sed -n 's/.*execution time for \([0-9]*\) test cases.*/\1/p' "$log" | head -n1)"
  skipped="$(sed -n 's/.* \([0-9]*\) test cases were skipped due to focus.*/\1/p' "$log" | head -n1)"
  [ -n "$ran" ] || return 0
  listed="$(grep -c . <<<"$CASES" || true)"
  if [ -n "$CASES" ] && [ $(( ran + ${skipped:-0} )) != "$listed" ]; then
    echo "conformance: warning: the suite registers $(( ran + ${skipped:-0} )) cases, the harness listed $listed"
  fi
}

cmd_run() {
  duration_seconds "$TIMEOUT" >/dev/null
  prepare
  local selected runnable started start suite_rc=0
  mkdir -p "$OUT"
  rm -f "$OUT/results.json" "$OUT/run.json"
  # Case selections can exceed what one command-line argument may hold: keep them in a file.
  selected="$OUT/selected.json"
  select_cases >"$selected"
  [ "$(jq length "$selected")" -gt 0 ] || die "FOCUS '$FOCUS' matches no case (see: run.sh list)"
  runnable="$(jq '[.[] | select(.needs_helper == null)] | length' "$selected")"
  cp "$UP_BIN/PATCH" "$OUT/PATCH"
  cp "$UP_BIN/cases.tsv" "$OUT/cases.tsv"
  # One run per run directory: a second one would delete the first one's binaries.
  exec 9>"$RUN_DIR.lock"
  flock -n 9 || die "another run is using $RUN_DIR (set DAPR_CONFORMANCE_RUNDIR and CONFORMANCE_OUT to run beside it)"
  log "ours: ${OURS:-(none: upstream baseline)}"
  started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; start=$(date +%s)
  : >"$OUT/events.jsonl"
  if [ "$runnable" -gt 0 ]; then
    stage_run_dir
    run_suite "$selected" || suite_rc=$?
  fi
  jq -n --arg started "$started" --argjson seconds "$(( $(date +%s) - start ))" --argjson rc "$suite_rc" \
        --argjson runnable "$runnable" --arg ours "$(ours_list)" --arg focus "$FOCUS" \
        '{started: $started, seconds: $seconds, suite_rc: $rc, runnable: $runnable, ours: $ours, focus: $focus}' \
        >"$OUT/run.json"
  render
}

# Turns the recorded run in $OUT (events, selection, run.json) into logs, results.json
# and the report; `run.sh report` re-renders the last run without running anything.
render() {
  if [ ! -f "$OUT/run.json" ] || [ ! -f "$OUT/selected.json" ]; then die "no recorded run in $OUT"; fi
  local selected="$OUT/selected.json" suite_rc runnable seconds
  [ -n "${CASES:-}" ] || CASES="$(cat "$OUT/cases.tsv" 2>/dev/null || true)"
  suite_rc="$(jq '.suite_rc' "$OUT/run.json")"
  runnable="$(jq '.runnable' "$OUT/run.json")"
  seconds="$(jq '.seconds' "$OUT/run.json")"
  write_logs "$selected"
  results "$selected" >"$OUT/results.json"
  if [ "$runnable" -eq 0 ]; then
    # Nothing was handed to the suite; do not report its missing subtests as a failure.
    jq '.suite.build_binaries = "pass" | .suite.status = "not run"' "$OUT/results.json" >"$OUT/results.json.tmp"
    mv "$OUT/results.json.tmp" "$OUT/results.json"
  fi
  report "$OUT/results.json" "$suite_rc"
  log "results: $OUT/results.json, logs: $OUT/logs/ (${seconds}s)"
  local failed bb
  failed="$(jq '.summary.failed' "$OUT/results.json")"
  bb="$(jq -r '.suite.build_binaries' "$OUT/results.json")"
  [ "$failed" = 0 ] && [ "$bb" = pass ] && { [ "$suite_rc" = 0 ] || [ "$runnable" -eq 0 ]; }
}

case "${1:-run}" in
  run) cmd_run ;;
  report) need_tool jq jq; render ;;
  prepare) prepare; log "ready: upstream $UP_BIN${OURS_BIN:+, ours $OURS_BIN}" ;;
  list) need_tool jq jq; CASES="$("$HERE/upstream.sh" cases)"; select_cases | jq -r '.[] | "\(.name)\t\(.uses | join(","))\(if .needs_helper then "\tskipped (needs \(.needs_helper))" else "" end)"' ;;
  dir) exec "$HERE/upstream.sh" dir ;;
  -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) die "unknown command '$1' (run, prepare, list, dir, report)" ;;
esac
