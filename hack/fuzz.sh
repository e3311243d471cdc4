#!/usr/bin/env bash
# Runs every sentry fuzz target (sentry/fuzz, cargo-fuzz + libFuzzer) for a while each.
#
#   hack/fuzz.sh [seconds-per-target] [target...]
#
# Needs a nightly toolchain and `cargo install cargo-fuzz`. Environment:
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default `none`: the code under test is safe Rust, the
#                   bugs we look for are panics, and ASan halves the executions; use `address`
#                   to also check the C/asm in ring)
#   FUZZ_PARALLEL   targets run at once (default 1)
#   FUZZ_RSS_MB     libFuzzer -rss_limit_mb (default 2048)
# The growing corpus is sentry/fuzz/corpus/<target> (seeded from sentry/fuzz/seeds/<target>),
# crashes land in sentry/fuzz/artifacts/<target>, logs in sentry/fuzz/logs/<target>.log.
set -euo pipefail

secs="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/sentry/fuzz"
sanitizer="${FUZZ_SANITIZER:-none}"
parallel="${FUZZ_PARALLEL:-1}"
rss="${FUZZ_RSS_MB:-2048}"

cd "$root/sentry"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s "$sanitizer"
mkdir -p "$fuzz/logs"

run() {
    local t="$1"
    mkdir -p "$fuzz/corpus/$t"
    local seeds=()
    [ -d "$fuzz/seeds/$t" ] && seeds=("$fuzz/seeds/$t")
    # The first corpus directory is the one libFuzzer writes to; the seeds stay read-only.
    if cargo +nightly fuzz run -s "$sanitizer" "$t" "$fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb="$rss" -print_final_stats=1 \
        >"$fuzz/logs/$t.log" 2>&1; then
        echo "$t: ok"
    else
        echo "$t: FAILED (see sentry/fuzz/logs/$t.log and sentry/fuzz/artifacts/$t)"
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^Done [0-9]+ runs' "$fuzz/logs/$t.log" \
        | sed "s/^/  $t: /" || true
}

status=0
running=0
for t in "${targets[@]}"; do
    run "$t" >"$fuzz/logs/$t.summary" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
done
wait || status=1
for t in "${targets[@]}"; do
    cat "$fuzz/logs/$t.summary"
    grep -q FAILED "$fuzz/logs/$t.summary" && status=1
done
exit "$status"
