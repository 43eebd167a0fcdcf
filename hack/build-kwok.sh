#!/usr/bin/env bash
# Builds kwok (sigs.k8s.io/kwok, the controller that plays kubelet for fake Nodes and their pods),
# which `npm run bench:scale` runs as a host process against the local cluster, from its Go module
# at a pinned version into the same cache as hack/build-binaries.sh (~/.cache/pepr-macvlan/bin),
# never into the clone. Rebuilt only when the pin changes; under `nice -n 19`.
#   kwok v0.8.0  bin/kwok
#                peers/kwok-v0.8.0/stages/*.yaml  the module's "fast" stages (kustomize/stage/{node,pod}/fast
#                                  and node/heartbeat-with-lease): kwok does nothing without stages
# Usage: hack/build-kwok.sh [--print-path | --print-stages]
set -euo pipefail

KWOK_VERSION=v0.8.0
KWOK_MODULE=sigs.k8s.io/kwok

BUILD_TAG=kwok
source "$(dirname "$0")/build-common.sh"

STAGES="$CACHE_ROOT/peers/kwok-$KWOK_VERSION/stages"
if [[ "${1:-}" == "--print-path" ]]; then echo "$BIN/kwok"; exit 0; fi
if [[ "${1:-}" == "--print-stages" ]]; then echo "$STAGES"; exit 0; fi

# Shared with hack/build-binaries.sh and hack/build-peers.sh: all write below $BIN.
build_lock

copy_stages() {
  [[ -f "$STAGES/pod-ready.yaml" ]] && return
  local dir; dir=$(go mod download -json "$KWOK_MODULE@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$dir" ]] || { echo "go mod download gave no Dir for $KWOK_MODULE@$KWOK_VERSION" >&2; exit 1; }
  mkdir -p "$STAGES"
  local s="$dir/kustomize/stage"
  cp "$s"/node/fast/node-initialize.yaml "$s"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
     "$s"/pod/fast/pod-ready.yaml "$s"/pod/fast/pod-complete.yaml "$s"/pod/fast/pod-delete.yaml "$STAGES/"
  chmod u+w "$STAGES"/*.yaml
  log "kwok $KWOK_VERSION: stages in $STAGES"
}

copy_stages
if fresh kwok "$KWOK_VERSION"; then log "kwok $KWOK_VERSION cached"; exit 0; fi
start=$(date +%s)
log "kwok $KWOK_VERSION: downloading modules and compiling (a few minutes on 2 cores)"
# kwok's go.mod has no replace directives, so `go install` builds it as published.
GOBIN="$BIN" nice -n 19 go install -trimpath -ldflags "$LDFLAGS" "$KWOK_MODULE/cmd/kwok@$KWOK_VERSION"
mark kwok "$KWOK_VERSION"
log "kwok ready in $BIN ($(( $(date +%s) - start ))s)"
