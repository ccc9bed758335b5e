# Build the guest: the static aarch64 torture program (with the toolchain
# of boards/aarch64-linux: Debian's rustc and -Zbuild-std, linked by
# aarch64-linux-gnu-gcc with +crt-static), and one initramfs per filesystem
# (busybox-static, the torture program, the init script and the kernel
# modules that filesystem needs, dependencies first).
# shellcheck shell=bash

PC_DIR="$BOARDS_DIR/powercut"

# Build the torture program; print the binary's path.
pc_build_torture() {
    (
        load_board aarch64-linux
        # shellcheck disable=SC2086
        apt_require $BOARD_APT_PACKAGES
        require_debian_rust
        use_debian_rust
        local var
        var=$(triple_var "$BOARD_TRIPLE")
        export CARGO_TARGET_DIR="$PC_TARGET/torture"
        export "CARGO_TARGET_${var}_LINKER=$BOARD_LINKER"
        export "CARGO_TARGET_${var}_RUSTFLAGS=$BOARD_RUSTFLAGS"
        [[ $BOARD_RUSTFLAGS == *crt-static* ]] || die "boards/aarch64-linux/board.env lost +crt-static: the initramfs has no C library"
        mkdir -p "$CARGO_TARGET_DIR"
        local log="$CARGO_TARGET_DIR/build.log"
        info "building the torture program for $BOARD_TRIPLE ($($RUSTC --version), static)"
        (cd "$PC_DIR/torture" && cargo build --release --locked -Zbuild-std=std,panic_abort --target "$BOARD_TRIPLE") >"$log" 2>&1 ||
            { grep -E -A 12 '^error' "$log" | head -n 60 >&2 || tail -n 40 "$log" >&2; die "torture build failed (log: $log)"; }
        local bin="$CARGO_TARGET_DIR/$BOARD_TRIPLE/release/torture"
        if aarch64-linux-gnu-readelf -l "$bin" | grep -q 'program interpreter'; then
            die "$bin is linked dynamically: the initramfs has no C library"
        fi
        printf '%s\n' "$bin"
    )
}

# The modules each filesystem needs beyond the closure of `depends=`:
# checksum algorithms the kernel asks the crypto API for by name at mount
# time (no modprobe in the guest to load them on demand).
pc_fs_modules() {
    case $1 in
    ext4) echo crc32c_generic ext4 ;;
    xfs) echo crc32c_generic xfs ;;
    btrfs) echo crc32c_generic xxhash_generic blake2b_generic btrfs ;;
    f2fs) echo crc32_generic f2fs ;;
    vfat) echo vfat nls_cp437 nls_ascii nls_utf8 ;;
    *) die "no module list for filesystem $1" ;;
    esac
}

# `pc_initramfs FS TORTURE BUSYBOX KERNEL_DIR OUT`: write the initramfs
# for FS to OUT (a gzip'ed newc cpio archive).
pc_initramfs() {
    local fs=$1 torture=$2 busybox=$3 kdir=$4 out=$5
    local moddir root list applet rel
    moddir=$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    [[ -n $moddir ]] || die "no lib/modules/<version> in $kdir"
    root=$(mktemp -d "$PC_TARGET/initramfs.XXXXXX")
    mkdir -p "$root"/{bin,dev,proc,sys,mnt,modules}
    cp "$busybox" "$root/bin/busybox"
    for applet in sh mount umount insmod sleep cat poweroff sync echo mkdir ls dmesg; do
        ln -s busybox "$root/bin/$applet"
    done
    cp "$torture" "$root/bin/torture"
    cp "$PC_DIR/init" "$root/init"
    chmod 755 "$root/init" "$root/bin/torture"
    # shellcheck disable=SC2046
    list=$(python3 "$PC_DIR/lib/modules.py" "$moddir" virtio_mmio virtio_blk $(pc_fs_modules "$fs")) ||
        die "cannot work out the modules for $fs"
    : >"$root/modules/order"
    while read -r rel; do
        cp "$moddir/$rel" "$root/modules/"
        basename "$rel" >>"$root/modules/order"
    done <<<"$list"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet | gzip -1) >"$out.tmp" ||
        die "cpio of the $fs initramfs failed"
    mv "$out.tmp" "$out"
    rm -rf "$root"
}
