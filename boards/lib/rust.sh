# The Rust toolchains the boards use.
#
# - Debian's rustc-web (with rust-web-src, the library sources) compiles
#   for the ARM targets with -Zbuild-std, because rustup cannot fetch
#   targets on these machines. RUSTC_BOOTSTRAP=1 lets the stable cargo and
#   rustc accept -Z flags.
# - cargo itself is the host's (rustup stable): Debian's rustc-web ships no
#   cargo.
# - Bare metal links with rust-lld from rustup's stable toolchain (Debian's
#   rustc-web ships none), or Debian's ld.lld as a fallback.
# shellcheck shell=bash

DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_RUSTDOC=/usr/bin/rustdoc

require_debian_rust() {
    apt_require rustc-web rust-web-src
    [[ -x $DEBIAN_RUSTC ]] || die "rustc-web is installed but $DEBIAN_RUSTC is missing"
    local src
    src="$($DEBIAN_RUSTC --print sysroot)/lib/rustlib/src/rust/library/core"
    [[ -d $src ]] || die "no library sources at $src: rust-web-src must match rustc-web ($($DEBIAN_RUSTC --version))"
    command -v cargo >/dev/null || die "no cargo on PATH (the host's rustup toolchain provides it)"
}

# Point cargo at Debian's compiler for a -Zbuild-std build.
use_debian_rust() {
    export RUSTC=$DEBIAN_RUSTC RUSTDOC=$DEBIAN_RUSTDOC RUSTC_BOOTSTRAP=1
    # A host-wide wrapper (sccache, clippy) would pair with the wrong rustc.
    unset RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER
}

# Print the path of an lld that links thumbv7em ELF files.
find_rust_lld() {
    local sysroot lld
    if command -v rustup >/dev/null; then
        sysroot=$(rustup run stable rustc --print sysroot 2>/dev/null || true)
        lld="$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
        if [[ -n $sysroot && -x $lld ]]; then
            printf '%s\n' "$lld"
            return
        fi
    fi
    if ! command -v ld.lld >/dev/null; then
        warn "no rust-lld in rustup's stable toolchain; using Debian's lld"
        apt_require lld
    fi
    command -v ld.lld || die "no linker for bare metal: neither rustup's rust-lld nor Debian's ld.lld"
}

# Cargo's per-target environment variable stem: aarch64-unknown-linux-gnu
# -> AARCH64_UNKNOWN_LINUX_GNU.
triple_var() {
    printf '%s' "$1" | tr 'a-z.-' 'A-Z__'
}
