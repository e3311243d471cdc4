# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings below are read by the scripts that source this
# Shared settings and helpers for the conformance harness. Sourced, never run.
#
# The harness runs upstream Dapr's own integration suite (tests/integration) against
# our binaries. Upstream's source is fetched with the Go toolchain from the module
# proxy into a cache outside the repository and never copied into the repository.

set -euo pipefail

# The upstream release we are a drop-in for, and its go.sum-style hash: the fetched
# module must hash to exactly this or nothing is built from it.
readonly DAPR_VERSION="v1.18.3"
readonly DAPR_MODULE="github.com/dapr/dapr"
readonly DAPR_SUM="h1:iVTqJHRfJlUfiSyhJH4c1mJZ+4PH3cf/QwJcAJL2ROo="

# daprd build tags: the ones the suite itself builds daprd with
# (tests/integration/framework/binary/binary.go), so prebuilt binaries behave the same.
readonly DAPRD_TAGS="stablecomponents,state_etcd,crypto_localstorage,middleware_http_routeralias,conversation_echo,state_spiffeprobe"
# The test binary is built like upstream's `make test-integration` builds it.
readonly TEST_TAGS="integration"

# Control-plane services; each can be ours or upstream's.
readonly SERVICES="sentry placement scheduler operator injector"
# Helper binaries whose sources are not part of the module (see helper-unavailable.sh).
readonly HELPERS="helmtemplate mcpstdioserver controllergen"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${DAPR_CONFORMANCE_CACHE:-$HOME/.cache/dapr-conformance}"
SRC_DIR="$CACHE/src/dapr@$DAPR_VERSION"

log() { printf 'conformance: %s\n' "$*" >&2; }
die() { printf 'conformance: error: %s\n' "$*" >&2; exit 1; }

# go with the settings every harness step uses: no cgo (like the suite's own builds),
# module graph resolved from go.mod as patched, no VCS stamping of the cache copy.
# GOTOOLCHAIN is left alone: an older local go fetches the go.mod's toolchain from the proxy.
gocmd() {
  CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" go "$@"
}

need_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -n "${2:-}" ]; then
    log "installing $2 (needed: $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
    command -v "$1" >/dev/null 2>&1 && return 0
  fi
  die "'$1' is required${2:+ (Debian package $2)}"
}

# Wall-clock seconds of a step, printed to stderr as "step: N s".
timed() {
  local label="$1" start rc=0
  shift
  start=$(date +%s)
  "$@" || rc=$?
  log "$label: $(( $(date +%s) - start )) s"
  return "$rc"
}
