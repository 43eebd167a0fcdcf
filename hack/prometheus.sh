#!/usr/bin/env bash
# Prometheus for the scrape test (test/integration/prometheus.test.ts): the binary of Debian's
# `prometheus` package, fetched with apt-get from the mirror apt is set up for (as `hack/cluster.sh
# prereqs` installs its packages) and unpacked into the binary cache outside the clone
# (~/.cache/pepr-macvlan/bin/prometheus, hack/build-common.sh). The package is only unpacked, never
# installed: no service is started, no dependency (its web UI's JavaScript) pulled in.
# Fetched again only when the cached binary is missing or PROMETHEUS_DEB_VERSION names another one.
# Usage: hack/prometheus.sh [--print-path]
set -euo pipefail

BUILD_TAG=prometheus
source "$(dirname "$0")/build-common.sh"
TARGET="$BIN/prometheus"

if [[ "${1:-}" == "--print-path" ]]; then echo "$TARGET"; exit 0; fi

cached="$(cat "$(stamp prometheus)" 2>/dev/null || true)"
if [[ -x "$TARGET" && -n "$cached" && ( -z "${PROMETHEUS_DEB_VERSION:-}" || "$cached" == "$PROMETHEUS_DEB_VERSION" ) ]]; then
  log "prometheus $cached cached"; exit 0
fi

build_lock
export DEBIAN_FRONTEND=noninteractive
candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)' || true; }
want="${PROMETHEUS_DEB_VERSION:-$(candidate)}"
if [[ -z "$want" ]]; then
  log "apt has no list of Debian's packages yet: apt-get update"
  apt-get update -qq
  want="${PROMETHEUS_DEB_VERSION:-$(candidate)}"
fi
[[ -n "$want" ]] || { echo "[prometheus] Debian's package list has no prometheus" >&2; exit 1; }

log "prometheus $want: downloading Debian's package and unpacking its binary"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# apt-get download writes into the current directory; _apt cannot write into a root-owned mktemp dir.
(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "prometheus=$want")
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
install -m 0755 "$tmp/root/usr/bin/prometheus" "$TARGET.new"
mv "$TARGET.new" "$TARGET"
mark prometheus "$want"
log "prometheus $want ready: $("$TARGET" --version 2>&1 | head -1)"
