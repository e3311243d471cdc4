#!/usr/bin/env bash
# Adapts the writable copy of upstream's module (the current directory) so that it
# builds from what the Go module proxy serves. Each change is made only when the
# pinned dependency cannot be fetched, and prints one line describing what it did;
# those lines become part of the build cache key and are shown in every report.
#
# The hash of this file is part of the key too: editing it rebuilds everything.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Fallback for github.com/dapr/durabletask-go when the version upstream pins is refused
# by the proxy: the newest release it serves that still builds daprd v1.18.3.
readonly DURABLETASK_FALLBACK="v0.12.1"

fetchable() { gocmd mod download "$1" >/dev/null 2>&1; }

# pulsar pubsub: upstream's go.mod replaces apache/pulsar-client-go with a fork
# version the proxy refuses. The component is only registered by one file of
# cmd/daprd, and no integration case uses pulsar, so dropping that file is enough.
pulsar_repl="$(gocmd mod edit -json | jq -r '.Replace[]? | select(.Old.Path == "github.com/apache/pulsar-client-go") | "\(.New.Path)@\(.New.Version)"')"
if [ -n "$pulsar_repl" ] && ! fetchable "$pulsar_repl"; then
  rm -f cmd/daprd/components/pubsub_pulsar.go cmd/daprd/components/pubsub_pulsar_test.go
  echo "dropped pulsar pubsub component ($pulsar_repl not served by the module proxy)"
fi

# durabletask-go: daprd's workflow engine. Replace only if the pinned version is refused.
dt_req="$(gocmd mod edit -json | jq -r '.Require[] | select(.Path == "github.com/dapr/durabletask-go") | .Version')"
if [ -n "$dt_req" ] && ! fetchable "github.com/dapr/durabletask-go@$dt_req"; then
  gocmd mod edit -replace "github.com/dapr/durabletask-go=github.com/dapr/durabletask-go@$DURABLETASK_FALLBACK"
  gocmd mod download github.com/dapr/durabletask-go >/dev/null
  echo "replaced github.com/dapr/durabletask-go $dt_req with $DURABLETASK_FALLBACK ($dt_req not served by the module proxy)"
fi
