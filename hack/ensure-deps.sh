#!/usr/bin/env bash
# Installs the npm dependencies when node_modules is missing or older than package-lock.json.
# A node_modules that is a symlink (worktrees sharing one install) is never reinstalled from here:
# `npm ci` through the link empties the shared directory under every checkout that uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -L node_modules ]]; then
  if [[ ! -f node_modules/.package-lock.json ]]; then
    echo "[deps] node_modules links to $(readlink node_modules), which has no installed packages:" >&2
    echo "[deps] run npm ci in the checkout that owns it, not through the link" >&2
    exit 1
  fi
  exit 0
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[deps] installing npm packages (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
fi
