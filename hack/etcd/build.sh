#!/usr/bin/env bash
# Builds a real etcd server pinned to the version dapr v1.18.3 embeds, plus etcdctl, and prints
# the directory holding them. Idempotent: a second run with both binaries present only prints.
#
#   hack/etcd/build.sh            -> ${DAPR_ETCD_CACHE:-$HOME/.cache/dapr-etcd}/v3.5.30
#
# etcd's own modules carry `replace ../api` directives, so `go install module@version` refuses
# them; instead one throwaway module per binary under the cache holds a one-line main
# (etcdmain.Main / ctlv3.MustStart, exactly what etcd's and etcdctl's main packages call) and
# requires the pinned module from the Go module proxy. Nothing is written into the repository.
set -euo pipefail

# dapr v1.18.3's go.mod pins go.etcd.io/etcd/{server,client}/v3 at this version.
readonly ETCD_VERSION="v3.5.30"
# The module proxy does not serve go.etcd.io/etcd/etcdctl/v3 at v3.5.30 (403 "not available");
# the nearest served 3.5 patch release. etcdctl is only a client of the same v3 API.
readonly ETCDCTL_VERSION="v3.5.33"

CACHE="${DAPR_ETCD_CACHE:-$HOME/.cache/dapr-etcd}"
BIN_DIR="$CACHE/$ETCD_VERSION"
MOD_DIR="$CACHE/src-$ETCD_VERSION"

log() { printf 'etcd-build: %s\n' "$*" >&2; }

if [ -x "$BIN_DIR/etcd" ] && [ -x "$BIN_DIR/etcdctl" ]; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: go is required"; exit 1; }

# build_binary <output> <module> <version> <main.go body after `package main`>
# One throwaway module per binary, so etcdctl's newer pin cannot lift the server's through MVS.
build_binary() {
  local out="$1" module="$2" version="$3" body="$4" dir got
  [ -x "$out" ] && return 0
  dir="$MOD_DIR/$(basename "$out")"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'module dapr-etcd-build\n\ngo 1.23\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
  printf 'package main\n\n%s\n' "$body" >"$dir/main.go"
  log "building $out from $module $version"
  # No `go mod tidy`: it also resolves the tests of dependencies, which hits an ambiguous
  # cloud.google.com/go import in etcdctl's graph. `-mod=mod` adds just what the build needs.
  (cd "$dir" && go build -trimpath -o "$out.tmp" .)
  # Never another version than the pin. (Read from go.mod: the proxy serves the .mod and .zip of
  # etcd v3.5.30 but refuses its .info, which `go list -m` would ask for.)
  got="$(awk -v m="$module" '$1 == m || ($1 == "require" && $2 == m) { print $NF }' "$dir/go.mod")"
  [ "$got" = "$version" ] || { log "error: $module resolved to '$got', want $version"; exit 1; }
  mv "$out.tmp" "$out"
}

export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
mkdir -p "$BIN_DIR"
# etcd's server main (go.etcd.io/etcd/v3's main.go calls the same function).
build_binary "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" '
import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'
# etcdctl's v3 main (what etcdctl's main.go runs when ETCDCTL_API is unset or 3).
build_binary "$BIN_DIR/etcdctl" go.etcd.io/etcd/etcdctl/v3 "$ETCDCTL_VERSION" '
import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }'

"$BIN_DIR/etcd" --version >&2
"$BIN_DIR/etcdctl" version >&2
printf '%s\n' "$BIN_DIR"
