#!/usr/bin/env bash
# Upstream side of the conformance harness.
#
#   upstream.sh dir     fetch (if needed) and print the module root of dapr/dapr@v1.18.3
#                       (read-only, in the Go module cache; holds upstream's .proto files)
#   upstream.sh src     print the writable, patched copy the binaries are built from
#   upstream.sh build   build whatever is missing and print the binary directory
#   upstream.sh cases   print every suite case as "name<TAB>uses<TAB>file" (uses: binaries
#                       the case's file starts, from its imports; "-" if none)
#
# Cache: ${DAPR_CONFORMANCE_CACHE:-$HOME/.cache/dapr-conformance}; Go's own module and
# build caches are the invoking user's (go env GOMODCACHE / GOCACHE).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Prints the module directory after checking the module hashes to the pinned h1 sum.
module_dir() {
  local json err sum dir
  mkdir -p "$CACHE"
  # Run outside any module so the repository's own files cannot influence resolution.
  json="$(cd "$CACHE" && gocmd mod download -json "$DAPR_MODULE@$DAPR_VERSION")" || true
  err="$(jq -r '.Error // empty' <<<"${json:-"{\"Error\":\"no output\"}"}")"
  [ -z "$err" ] || die "go mod download $DAPR_MODULE@$DAPR_VERSION: $err"
  sum="$(jq -r '.Sum' <<<"$json")"
  [ "$sum" = "$DAPR_SUM" ] || die "$DAPR_MODULE@$DAPR_VERSION hashes to $sum, expected $DAPR_SUM"
  dir="$(jq -r '.Dir' <<<"$json")"
  [ -f "$dir/go.mod" ] || die "module dir $dir has no go.mod"
  printf '%s\n' "$dir"
}

# Identity of the working copy: module hash + the patch script. The patch's own
# decisions are appended by make_src and are part of the binary key.
src_identity() {
  printf 'module %s@%s %s\npatch.sh %s\n' "$DAPR_MODULE" "$DAPR_VERSION" "$DAPR_SUM" \
    "$(sha256sum <"$HERE/patch.sh" | cut -c1-16)"
}

# Ensures $SRC_DIR is a patched writable copy of the module; prints its path.
make_src() {
  local stamp="$SRC_DIR/.conformance-patch" want dir tmp
  want="$(src_identity)"
  if [ -f "$stamp" ] && [ "$(head -n2 "$stamp")" = "$want" ]; then
    printf '%s\n' "$SRC_DIR"
    return
  fi
  dir="$(module_dir)"
  log "making writable copy of $DAPR_MODULE@$DAPR_VERSION in $SRC_DIR"
  tmp="$SRC_DIR.tmp"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$SRC_DIR")"
  cp -r "$dir" "$tmp"
  chmod -R u+w "$tmp"
  local patches
  patches="$(cd "$tmp" && bash "$HERE/patch.sh")" || die "patching the working copy failed"
  { printf '%s\n' "$want"; [ -z "$patches" ] || printf 'patch: %s\n' "${patches//$'\n'/$'\npatch: '}"; } \
    >"$tmp/.conformance-patch"
  [ -n "$patches" ] && while IFS= read -r p; do log "patch: $p"; done <<<"$patches"
  rm -rf "$SRC_DIR"
  mv "$tmp" "$SRC_DIR"
  printf '%s\n' "$SRC_DIR"
}

# Binary directory for this version + tags + patch + toolchain.
bin_dir() {
  local key
  key="$( { cat "$SRC_DIR/.conformance-patch"; echo "daprd-tags $DAPRD_TAGS"; echo "test-tags $TEST_TAGS";
            echo "cgo 0"; (cd "$SRC_DIR" && gocmd env GOVERSION GOOS GOARCH); } | sha256sum | cut -c1-16)"
  printf '%s\n' "$CACHE/bin/$DAPR_VERSION-$key"
}

build() {
  make_src >/dev/null
  local out missing=() name
  out="$(bin_dir)"
  mkdir -p "$out"
  cp "$SRC_DIR/.conformance-patch" "$out/PATCH"
  # UPSTREAM_NEED (set by run.sh from the selected cases) limits the build to what a run
  # uses; unset means everything.
  for name in ${UPSTREAM_NEED-daprd $SERVICES}; do
    [ -x "$out/$name" ] || missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    # One go build for all mains so packages compile once and both cores stay busy.
    # Upstream's suite builds every one of these with the daprd tags; so do we.
    local pkgs=() tmp="$out/.tmp-cmd"
    for name in "${missing[@]}"; do pkgs+=("./cmd/$name"); done
    rm -rf "$tmp"; mkdir -p "$tmp"
    log "building ${missing[*]} (upstream $DAPR_VERSION)"
    (cd "$SRC_DIR" && timed "go build ${missing[*]}" gocmd build -tags="$DAPRD_TAGS" -o "$tmp/" "${pkgs[@]}") \
      || die "building upstream binaries failed"
    for name in "${missing[@]}"; do mv -f "$tmp/$name" "$out/$name"; done
    rm -rf "$tmp"
  fi
  if [ ! -x "$out/integration.test" ]; then
    log "building integration.test (upstream $DAPR_VERSION)"
    (cd "$SRC_DIR" && timed "go test -c integration" gocmd test -c -tags="$TEST_TAGS" \
      -o "$out/integration.test.tmp" ./tests/integration) || die "building the integration test binary failed"
    mv -f "$out/integration.test.tmp" "$out/integration.test"
  fi
  cp "$(cases_file)" "$out/cases.tsv"
  # Keep one build per machine: older keys are dead weight (~700 MB each).
  local old
  for old in "$CACHE/bin/"*; do
    [ "$old" = "$out" ] || [ ! -d "$old" ] || { log "removing stale build $old"; rm -rf "$old"; }
  done
  printf '%s\n' "$out"
}

# The case list, computed once per working copy.
cases_file() {
  local f="$SRC_DIR/.conformance-cases.tsv"
  if [ ! -s "$f" ]; then
    list_cases >"$f.tmp" || die "could not list the suite's cases"
    [ -s "$f.tmp" ] || die "found no cases in the suite"
    mv -f "$f.tmp" "$f"
  fi
  printf '%s\n' "$f"
}

# Every registered case of the suite: the packages the test binary links (go list),
# their `suite.Register(new(T))` calls, named as suite.All names them: the package
# path below tests/integration/suite/, a slash, the type name.
list_cases() {
  local suite_prefix="$DAPR_MODULE/tests/integration/suite/"
  (cd "$SRC_DIR" && gocmd list -tags="$TEST_TAGS" -deps \
      -f '{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .GoFiles " "}}' ./tests/integration) |
  while IFS=$'\t' read -r pkg dir files; do
    case "$pkg" in "$suite_prefix"*) ;; *) continue ;; esac
    local rel="${pkg#"$suite_prefix"}" f
    for f in $files; do
      grep -q 'suite.Register(new(' "$dir/$f" || continue
      local uses
      uses="$(case_uses "$dir/$f")"
      grep -oE 'suite\.Register\(new\([A-Za-z0-9_]+\)\)' "$dir/$f" | sed -E 's/.*new\(([A-Za-z0-9_]+)\).*/\1/' |
        while read -r typ; do
          printf '%s/%s\t%s\t%s\n' "$rel" "$typ" "${uses:--}" "${dir#"$SRC_DIR"/}/$f"
        done
    done
  done | sort -u
}

# Binaries a case file starts, from the framework process packages it imports (the
# workflow helper starts placement and scheduler for daprd), plus the helper binaries
# it runs. A heuristic for reports: the suite itself decides what really runs.
case_uses() {
  local f="$1" uses=()
  local imports
  imports="$(grep -oE '"github.com/dapr/dapr/tests/integration/framework/process/[a-z]+"' "$f" | tr -d '"' | sed 's|.*/||' | sort -u)"
  local p
  for p in $imports; do
    case "$p" in
      daprd | sentry | placement | scheduler | operator | injector) uses+=("$p") ;;
      workflow) uses+=(daprd placement scheduler) ;;
      helm) uses+=(helmtemplate) ;;
    esac
  done
  grep -q 'EnvValue("mcpstdioserver")' "$f" && uses+=(mcpstdioserver)
  grep -q 'EnvValue("controllergen")' "$f" && uses+=(controllergen)
  grep -q 'EnvValue("helmtemplate")' "$f" && uses+=(helmtemplate)
  [ "${#uses[@]}" -gt 0 ] && printf '%s\n' "${uses[@]}" | sort -u | paste -sd, -
  return 0
}

main() {
  need_tool go
  need_tool jq jq
  case "${1:-}" in
    dir) module_dir ;;
    src) make_src ;;
    build) build ;;
    cases) make_src >/dev/null; cat "$(cases_file)" ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
