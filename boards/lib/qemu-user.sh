# qemu-user from Debian 13 (trixie), unpacked into the cache rather than
# installed. Debian 12's qemu-user 7.2 now and then deadlocks in a child
# that a multithreaded guest forked (a futex wait before the exec): the CLI
# tests, which spawn many processes from many threads, hung in 1 of 3 runs
# under 7.2 and in none of 4 under 10.0. Trixie's qemu-user binaries are
# static, so they run on this Debian 12 machine with no libraries. A
# private apt state in the cache lists trixie's amd64 packages only; the
# machine's own apt is not touched. If that fails, Debian 12's qemu-user is
# installed instead, with a warning.
# shellcheck shell=bash

QEMU_USER_DIR="$CACHE_DIR/qemu-user"
QEMU_USER_APT="$CACHE_DIR/apt-trixie"
QEMU_USER_SUITE="http://deb.debian.org/debian trixie main"

qemu_user_apt() {
    apt-get -qq \
        -o "Dir::Etc::SourceList=$QEMU_USER_APT/sources.list" \
        -o "Dir::Etc::SourceParts=/dev/null" \
        -o "Dir::State::Lists=$QEMU_USER_APT/lists" \
        -o "Dir::Cache=$QEMU_USER_APT/cache" \
        -o "Dir::State::status=$QEMU_USER_APT/status" \
        "$@"
}

# Fetch trixie's qemu-user into $QEMU_USER_DIR; non-zero if it cannot.
fetch_qemu_user() {
    mkdir -p "$QEMU_USER_APT/lists/partial" "$QEMU_USER_APT/cache/archives/partial" "$QEMU_USER_APT/debs"
    printf 'deb %s\n' "$QEMU_USER_SUITE" >"$QEMU_USER_APT/sources.list"
    : >"$QEMU_USER_APT/status"
    info "fetching qemu-user from Debian 13 into $QEMU_USER_DIR (apt-get download + dpkg -x)"
    qemu_user_apt update >"$QEMU_USER_APT/update.log" 2>&1 || return 1
    rm -f "$QEMU_USER_APT"/debs/qemu-user_*.deb
    (cd "$QEMU_USER_APT/debs" && qemu_user_apt download qemu-user >/dev/null 2>&1) || return 1
    rm -rf "$QEMU_USER_DIR"
    dpkg -x "$QEMU_USER_APT"/debs/qemu-user_*.deb "$QEMU_USER_DIR" || return 1
}

# `qemu_user NAME` (qemu-aarch64, qemu-arm): print the path of a working
# emulator of that name.
qemu_user() {
    local name=$1 bin="$QEMU_USER_DIR/usr/bin/$1"
    if [[ ! -x $bin ]] && ! fetch_qemu_user; then
        warn "could not fetch Debian 13's qemu-user (log: $QEMU_USER_APT/update.log); using Debian 12's, whose forks may hang"
        apt_require qemu-user >&2
        command -v "$name" || die "$name not found after installing qemu-user"
        return
    fi
    "$bin" --version >/dev/null 2>&1 || die "$bin does not run"
    printf '%s\n' "$bin"
}
