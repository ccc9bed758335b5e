# Shared by every boards/ script: paths, messages, timing.
# shellcheck shell=bash

BOARDS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "$BOARDS_DIR/.." && pwd)"
CACHE_DIR="${BOARDS_CACHE:-$BOARDS_DIR/.cache}"
TARGET_ROOT="${BOARDS_TARGET_DIR:-$REPO_DIR/target-boards}"
export BOARDS_DIR REPO_DIR CACHE_DIR TARGET_ROOT

info() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# `timed LABEL CMD...`: run CMD, then print how long it took.
timed() {
    local label=$1 start end status=0
    shift
    start=$(date +%s)
    "$@" || status=$?
    end=$(date +%s)
    info "$label: $((end - start)) s (exit $status)"
    return "$status"
}

# Load boards/<board>/board.env into BOARD_* variables.
load_board() {
    local board=$1 env="$BOARDS_DIR/$1/board.env"
    [[ -f $env ]] || die "no board '$board' (no $env); boards: $(list_boards | tr '\n' ' ')"
    # shellcheck source=/dev/null
    source "$env"
    [[ ${BOARD_NAME:-} == "$board" ]] || die "$env: BOARD_NAME is '${BOARD_NAME:-}', expected '$board'"
}

list_boards() {
    local d
    for d in "$BOARDS_DIR"/*/board.env; do
        basename "$(dirname "$d")"
    done
}
