# Sourced by hack/build-binaries.sh and hack/build-peers.sh: the binary cache outside the clone
# (~/.cache/pepr-macvlan/bin, or $PEPR_MACVLAN_CACHE), one build at a time, and version stamps so
# a binary is rebuilt only when its pin changes. Set BUILD_TAG (the log prefix) before sourcing.
CACHE_ROOT="${PEPR_MACVLAN_CACHE:-$HOME/.cache/pepr-macvlan}"
BIN="$CACHE_ROOT/bin"
mkdir -p "$BIN"

# One build at a time: a second run waits, then finds everything cached.
build_lock() {
  exec 9>"$CACHE_ROOT/.build.lock"
  if ! flock -n 9; then
    echo "[$BUILD_TAG] another build is running; waiting for it to finish" >&2
    flock 9
  fi
}

export GOFLAGS=-buildvcs=false CGO_ENABLED=0
LDFLAGS="-s -w"
log() { printf '\033[1m[%s %s]\033[0m %s\n' "$BUILD_TAG" "$(date +%H:%M:%S)" "$*"; }
stamp() { echo "$BIN/.${1//\//_}.version"; }
fresh() { [[ -x "$BIN/$1" && "$(cat "$(stamp "$1")" 2>/dev/null)" == "$2" ]]; }
mark() { echo "$2" > "$(stamp "$1")"; }
