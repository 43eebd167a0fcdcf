#!/usr/bin/env bash
# Builds the peers `npm run bench:peer` compares pepr-macvlan with, from their Go modules at pinned
# versions, into the same cache as hack/build-binaries.sh (~/.cache/pepr-macvlan/bin), never into
# the clone. A binary is rebuilt only when its pin changes.
#   whereabouts v0.9.2  bin/cni/whereabouts        the IPAM CNI binary (next to the standard
#                                                   plugins: Multus delegates from that directory,
#                                                   and every kubelet node links it into its CNI bin dir)
#                       bin/whereabouts-controlloop its reconciler (ip-control-loop)
#                       peers/whereabouts-v0.9.2/doc/crds  its CRDs, applied by the benchmark
# `go install` refuses Whereabouts (its go.mod has a replace directive), so the module's source
# (`go mod download -json` gives its Dir) is copied to a writable folder and built there as the
# main module (design.md §7). Builds run under `nice -n 19`.
# Usage: hack/build-peers.sh [--print-dir]
set -euo pipefail

WHEREABOUTS_VERSION=v0.9.2
WHEREABOUTS_MODULE=github.com/k8snetworkplumbingwg/whereabouts

BUILD_TAG=peers
source "$(dirname "$0")/build-common.sh"
PEERS="$CACHE_ROOT/peers"
mkdir -p "$BIN/cni" "$PEERS"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$PEERS/whereabouts-$WHEREABOUTS_VERSION"; exit 0; fi

# Shared with hack/build-binaries.sh: both write below $BIN.
build_lock

build_whereabouts() {
  local v="$WHEREABOUTS_VERSION" src="$PEERS/whereabouts-$WHEREABOUTS_VERSION"
  if fresh cni/whereabouts "$v" && fresh whereabouts-controlloop "$v" && [[ -d "$src/doc/crds" ]]; then
    log "whereabouts $v cached"; return
  fi
  log "whereabouts $v: downloading the module"
  local dir; dir=$(go mod download -json "$WHEREABOUTS_MODULE@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$dir" ]] || { echo "go mod download gave no Dir for $WHEREABOUTS_MODULE@$v" >&2; exit 1; }
  rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
  local pkg="$WHEREABOUTS_MODULE/pkg/version"
  local ld="$LDFLAGS -X $pkg.Version=$v -X $pkg.GitSHA=module -X $pkg.GitTreeState=clean"
  cd "$src"
  log "whereabouts $v: compiling the CNI binary (about 2.5 min on 2 cores)"
  nice -n 19 go build -trimpath -ldflags "$ld" -o "$BIN/cni/whereabouts" ./cmd/whereabouts.go
  mark cni/whereabouts "$v"
  log "whereabouts $v: compiling the reconciler (cmd/controlloop)"
  nice -n 19 go build -trimpath -ldflags "$ld" -o "$BIN/whereabouts-controlloop" ./cmd/controlloop
  mark whereabouts-controlloop "$v"
  cd - >/dev/null
}

start=$(date +%s)
build_whereabouts
log "peers ready in $BIN ($(( $(date +%s) - start ))s)"
