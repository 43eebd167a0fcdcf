#!/usr/bin/env bash
# Builds kwok (sigs.k8s.io/kwok, the controller that plays kubelet for fake Nodes and their pods),
# which `npm run bench:scale` runs as a host process against the local cluster, from its Go module
# at a pinned version into the same cache as hack/build-binaries.sh (~/.cache/pepr-macvlan/bin),
# never into the clone. Rebuilt only when the pin changes; under `nice -n 19`.
#   kwok v0.8.0  bin/kwok
# Usage: hack/build-kwok.sh [--print-path]
set -euo pipefail

KWOK_VERSION=v0.8.0
KWOK_MODULE=sigs.k8s.io/kwok

BUILD_TAG=kwok
source "$(dirname "$0")/build-common.sh"

if [[ "${1:-}" == "--print-path" ]]; then echo "$BIN/kwok"; exit 0; fi

# Shared with hack/build-binaries.sh and hack/build-peers.sh: all write below $BIN.
build_lock

if fresh kwok "$KWOK_VERSION"; then log "kwok $KWOK_VERSION cached"; exit 0; fi
start=$(date +%s)
log "kwok $KWOK_VERSION: downloading modules and compiling (a few minutes on 2 cores)"
# kwok's go.mod has no replace directives, so `go install` builds it as published.
GOBIN="$BIN" nice -n 19 go install -trimpath -ldflags "$LDFLAGS" "$KWOK_MODULE/cmd/kwok@$KWOK_VERSION"
mark kwok "$KWOK_VERSION"
log "kwok ready in $BIN ($(( $(date +%s) - start ))s)"
