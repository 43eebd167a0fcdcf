#!/usr/bin/env bash
# Builds the local cluster's binaries from their Go modules at pinned versions and caches them
# outside the clone, in ~/.cache/pepr-macvlan/<pins>/bin. A binary is rebuilt only when its pin changes.
# Usage: hack/build-binaries.sh [--print-dir | --helm]
set -euo pipefail

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
MULTUS_VERSION=v4.3.0
CNI_PLUGINS_VERSION=v1.7.1
COREDNS_VERSION=v1.15.0
HELM_VERSION=v3.22.0

BUILD_TAG=build
source "$(dirname "$0")/build-common.sh"
WORK="$CACHE_ROOT/build"
mkdir -p "$WORK"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$BIN"; exit 0; fi
# Only helm (the chart's unit test needs no cluster binaries): hack/build-binaries.sh --helm
ONLY_HELM=0; [[ "${1:-}" == "--helm" ]] && ONLY_HELM=1

# The scratch modules under $WORK would otherwise be deleted under a running build.
build_lock

# A throwaway module per project, so upstream replace directives cannot break `go install`.
scratch() { # dir module version
  local dir="$WORK/$1"; rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && go mod init "scratch/$1" >/dev/null 2>&1 && go mod edit -require="$2@$3")
  echo "$dir"
}

build_etcd() {
  fresh etcd "$ETCD_VERSION" && { log "etcd $ETCD_VERSION cached"; return; }
  log "etcd $ETCD_VERSION: downloading modules and compiling (about 2 min)"
  local d; d=$(scratch etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  (cd "$d" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 \
   && go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  mark etcd "$ETCD_VERSION"
}

build_kubernetes() {
  local want="$K8S_VERSION"
  if fresh kube-apiserver "$want" && fresh kube-controller-manager "$want" && fresh kube-scheduler "$want" \
     && fresh kubectl "$want" && fresh kubelet "$want" && fresh kube-proxy "$want"; then log "kubernetes $want cached"; return; fi
  log "kubernetes $want: resolving staging modules"
  local d="$WORK/kubernetes"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  go mod init scratch/kubernetes >/dev/null 2>&1
  local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$want" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # k8s.io/kubernetes points its staging modules at ./staging; use their published v0.x twins instead.
  local staging="v0${want#v1}"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
  go mod edit -require="k8s.io/kubernetes@$want"
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
  log "kubernetes $want: downloading modules (several hundred MB on a cold machine)"
  go mod tidy >/dev/null 2>&1 || go mod tidy
  local v="k8s.io/component-base/version" minor; minor=$(echo "$want" | cut -d. -f2)
  local kl="$LDFLAGS -X $v.gitVersion=$want -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  kl="$kl -X k8s.io/client-go/pkg/version.gitVersion=$want -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    fresh "$cmd" "$want" && continue
    log "kubernetes $want: compiling $cmd (a cold build of the first one takes 10-15 min on 2 cores)"
    local pkg="k8s.io/kubernetes/cmd/$cmd"
    go build -trimpath -ldflags "$kl" -o "$BIN/$cmd" "$pkg"
    mark "$cmd" "$want"
  done
  cd - >/dev/null
}

build_multus() {
  fresh multus "$MULTUS_VERSION" && { log "multus $MULTUS_VERSION cached"; return; }
  log "multus $MULTUS_VERSION (thin plugin): compiling"
  local d; d=$(scratch multus gopkg.in/k8snetworkplumbingwg/multus-cni.v4 "$MULTUS_VERSION")
  (cd "$d" && printf '//go:build tools\npackage tools\nimport _ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"\n' > tools.go \
   && go mod tidy >/dev/null 2>&1 && go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/multus" gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus)
  mark multus "$MULTUS_VERSION"
}

build_coredns() {
  fresh coredns "$COREDNS_VERSION" && { log "coredns $COREDNS_VERSION cached"; return; }
  log "coredns $COREDNS_VERSION: downloading modules and compiling (4-9 min on 2 cores)"
  local d; d=$(scratch coredns github.com/coredns/coredns "$COREDNS_VERSION")
  (cd "$d" && printf '//go:build tools\npackage tools\nimport _ "github.com/coredns/coredns"\n' > tools.go \
   && go mod tidy >/dev/null 2>&1 \
   && go build -trimpath -ldflags "$LDFLAGS -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
        -o "$BIN/coredns" github.com/coredns/coredns)
  mark coredns "$COREDNS_VERSION"
}

# Helm v3, for the chart tests (test/unit/chart.test.ts lints and renders, test/integration/helm.test.ts
# installs, upgrades and uninstalls).
build_helm() {
  fresh helm "$HELM_VERSION" && { log "helm $HELM_VERSION cached"; return; }
  log "helm $HELM_VERSION: downloading modules and compiling (3-6 min on 2 cores)"
  local d; d=$(scratch helm helm.sh/helm/v3 "$HELM_VERSION")
  (cd "$d" && printf '//go:build tools\npackage tools\nimport _ "helm.sh/helm/v3/cmd/helm"\n' > tools.go \
   && go mod tidy >/dev/null 2>&1 \
   && go build -trimpath -ldflags "$LDFLAGS -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        -o "$BIN/helm" helm.sh/helm/v3/cmd/helm)
  mark helm "$HELM_VERSION"
}

build_cni_plugins() {
  local all=(macvlan static bridge host-local loopback)
  local ok=1; for p in "${all[@]}"; do fresh "cni/$p" "$CNI_PLUGINS_VERSION" || ok=0; done
  [[ $ok == 1 ]] && { log "CNI plugins $CNI_PLUGINS_VERSION cached"; return; }
  log "CNI plugins $CNI_PLUGINS_VERSION: compiling ${all[*]}"
  mkdir -p "$BIN/cni"
  local d; d=$(scratch cni-plugins github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION")
  (cd "$d" && printf '//go:build tools\npackage tools\nimport (\n _ "github.com/containernetworking/plugins/plugins/main/macvlan"\n _ "github.com/containernetworking/plugins/plugins/main/bridge"\n _ "github.com/containernetworking/plugins/plugins/main/loopback"\n _ "github.com/containernetworking/plugins/plugins/ipam/static"\n _ "github.com/containernetworking/plugins/plugins/ipam/host-local"\n)\n' > tools.go \
   && go mod tidy >/dev/null 2>&1
   for p in macvlan bridge loopback; do go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/cni/$p" "github.com/containernetworking/plugins/plugins/main/$p"; done
   for p in static host-local; do go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/cni/$p" "github.com/containernetworking/plugins/plugins/ipam/$p"; done)
  for p in "${all[@]}"; do mark "cni/$p" "$CNI_PLUGINS_VERSION"; done
}

# Our own chained CNI plugin (cni/reply-route): source-based routing for a dual-NIC pod's eth0.
# Rebuilt when its sources change; the agent image ships it and installs it on real nodes.
build_reply_plugin() {
  local src; src="$(cd "$(dirname "$0")/../cni" && pwd)"
  local sum; sum=$(cat "$src/go.mod" "$src/go.sum" "$src"/reply-route/*.go | sha256sum | cut -c1-16)
  fresh cni/pepr-macvlan-reply "$sum" && { log "pepr-macvlan-reply $sum cached"; return; }
  log "pepr-macvlan-reply: compiling cni/reply-route"
  mkdir -p "$BIN/cni"
  (cd "$src" && go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/cni/pepr-macvlan-reply" ./reply-route)
  mark cni/pepr-macvlan-reply "$sum"
}

start=$(date +%s)
if [[ $ONLY_HELM == 1 ]]; then build_helm; exit 0; fi
build_cni_plugins
build_reply_plugin
build_multus
build_etcd
build_kubernetes
build_coredns
build_helm
log "all binaries ready in $BIN ($(( $(date +%s) - start ))s)"
