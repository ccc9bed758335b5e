# qemu-system-arm, unpacked into the cache rather than installed: Debian
# 12's qemu-system-* packages conflict with the newer qemu-utils these
# machines carry (installing them would remove it). `apt-get download` and
# `dpkg -x` unpack the binary; its shared libraries are ordinary packages
# and are installed with apt.
# shellcheck shell=bash

QEMU_SYSTEM_DIR="$CACHE_DIR/qemu-system-arm"

# Print the path of a working qemu-system-arm, fetching it if needed.
qemu_system_arm() {
    local bin="$QEMU_SYSTEM_DIR/usr/bin/qemu-system-arm"
    if [[ -n ${QEMU_SYSTEM_ARM:-} ]]; then
        "$QEMU_SYSTEM_ARM" --version >/dev/null 2>&1 || die "QEMU_SYSTEM_ARM=$QEMU_SYSTEM_ARM does not run"
        printf '%s\n' "$QEMU_SYSTEM_ARM"
        return
    fi
    if [[ ! -x $bin ]]; then
        apt_update_once
        info "fetching qemu-system-arm into $QEMU_SYSTEM_DIR (apt-get download + dpkg -x)"
        local debs="$CACHE_DIR/debs"
        mkdir -p "$debs"
        rm -f "$debs"/qemu-system-arm_*.deb
        (cd "$debs" && apt-get download qemu-system-arm >/dev/null 2>&1) ||
            die "apt-get download qemu-system-arm failed: Debian has no qemu-system-arm for this machine"
        rm -rf "$QEMU_SYSTEM_DIR"
        dpkg -x "$debs"/qemu-system-arm_*.deb "$QEMU_SYSTEM_DIR" || die "dpkg -x of qemu-system-arm failed"
    fi
    # Its libraries: the Depends of the package, minus qemu's own packages.
    local libs
    libs=$(apt-cache depends qemu-system-arm 2>/dev/null | awk '/^  Depends: [^<]/{print $2}' | grep -v '^qemu-' || true)
    if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
        [[ -n $libs ]] || die "qemu-system-arm misses libraries and apt-cache knows none: $(ldd "$bin" | grep 'not found' | tr '\n' ' ')"
        # shellcheck disable=SC2086
        apt_require $libs
    fi
    "$bin" --version >/dev/null 2>&1 || die "$bin does not run: $(ldd "$bin" 2>&1 | grep 'not found' | tr '\n' ' ')"
    printf '%s\n' "$bin"
}
