#!/usr/bin/env bash
# Local pepr-macvlan cluster: up [--nodes N] | down | status | exec <target> -- <cmd...> | logs.
# Thin entry point; the logic is TypeScript in hack/cluster/ (run with tsx). See --help.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PMV_CALLER_CWD="$PWD"
cd "$ROOT"

case "${1:-}" in
  -h|--help|help|"") ;;
  *)
    if [[ $(id -u) -ne 0 ]]; then
      echo "hack/cluster.sh: needs root (network namespaces, links, routes)" >&2
      exit 1
    fi
    ;;
esac
[[ -d node_modules/tsx ]] || bash hack/ensure-deps.sh
exec node --import tsx "$ROOT/hack/cluster/cli.ts" "$@"
