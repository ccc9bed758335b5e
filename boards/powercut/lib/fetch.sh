# What the power-cut board needs, fetched from Debian's packages into
# boards/.cache/powercut/ (git-ignored):
#
# - the host's tools: mkfs and fsck for every filesystem (e2fsprogs,
#   xfsprogs, btrfs-progs, f2fs-tools, dosfstools), cpio, and the aarch64
#   cross toolchain of boards/aarch64-linux (installed with apt);
# - qemu-system-aarch64: Debian 12's qemu-system-arm package, unpacked by
#   boards/lib/qemu-system.sh (installing it would remove the newer
#   qemu-utils these machines carry);
# - the guest's kernel and busybox: Debian's arm64 packages, which an amd64
#   machine's apt does not list. Rather than `dpkg --add-architecture arm64`
#   (a change to the whole machine's apt, and every later `apt-get update`
#   would fetch arm64 lists), a private apt state in the cache lists only
#   arm64, and `apt-get download` + `dpkg -x` unpack the packages there.
#   Nothing is installed.
# shellcheck shell=bash

PC_CACHE="$CACHE_DIR/powercut"
PC_APT="$PC_CACHE/apt-arm64"
PC_DEBS="$PC_CACHE/debs"
PC_KERNEL_PKG_DIR="$PC_CACHE/kernel"
PC_BUSYBOX_DIR="$PC_CACHE/busybox"
PC_HOST_PACKAGES="e2fsprogs xfsprogs btrfs-progs f2fs-tools dosfstools cpio python3"

# apt-get / apt-cache against the private arm64 state.
pc_apt_opts() {
    printf '%s\n' \
        -o "Dir::State::Lists=$PC_APT/lists" \
        -o "Dir::Cache=$PC_APT/cache" \
        -o "Dir::State::status=$PC_APT/status" \
        -o "APT::Architecture=arm64" \
        -o "APT::Architectures::=arm64" \
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
}

pc_apt_update() {
    # Fetchers run in $(...) subshells: a stamp, not a variable, says the
    # lists are fresh (within the hour).
    [[ -n $(find "$PC_APT/updated" -mmin -60 2>/dev/null) ]] && return 0
    mkdir -p "$PC_APT/lists/partial" "$PC_APT/cache/archives/partial"
    : >"$PC_APT/status"
    info "apt-get update of the arm64 package lists (private state in $PC_APT)"
    local opts
    mapfile -t opts < <(pc_apt_opts)
    apt-get -qq "${opts[@]}" update >"$PC_APT/update.log" 2>&1 ||
        die "apt-get update for arm64 failed (log: $PC_APT/update.log); the machine's sources must serve Debian 12's arm64 packages"
    touch "$PC_APT/updated"
}

# `pc_apt_download PKG DIR`: download the arm64 package PKG into DIR and
# print the .deb's path.
pc_apt_download() {
    local pkg=$1 dir=$2 opts
    mapfile -t opts < <(pc_apt_opts)
    mkdir -p "$dir"
    (cd "$dir" && apt-get -qq "${opts[@]}" download "$pkg:arm64" >/dev/null 2>"$dir/download.err") ||
        die "apt-get download $pkg:arm64 failed: $(cat "$dir/download.err")"
    local deb
    deb=$(find "$dir" -maxdepth 1 -name "${pkg}_*_arm64.deb" | sort | tail -n 1)
    [[ -n $deb ]] || die "apt-get download $pkg:arm64 left no .deb in $dir"
    printf '%s\n' "$deb"
}

# The name of the kernel package linux-image-arm64 currently points at
# (linux-image-6.1.0-NN-arm64).
pc_kernel_package() {
    local opts
    mapfile -t opts < <(pc_apt_opts)
    apt-cache "${opts[@]}" depends linux-image-arm64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}

# Unpack the kernel package (once) and print the folder it is in. A kernel
# already unpacked is reused, so a run never waits on the network.
pc_fetch_kernel() {
    local stamp="$PC_KERNEL_PKG_DIR/.package"
    if [[ ! -f $stamp ]]; then
        pc_apt_update
        local pkg deb
        pkg=$(pc_kernel_package)
        [[ -n $pkg ]] || die "apt-cache knows no linux-image-*-arm64 behind linux-image-arm64"
        info "fetching $pkg (arm64) into $PC_KERNEL_PKG_DIR (apt-get download + dpkg -x)"
        rm -f "$PC_DEBS"/linux-image-*_arm64.deb
        deb=$(pc_apt_download "$pkg" "$PC_DEBS")
        rm -rf "$PC_KERNEL_PKG_DIR"
        dpkg -x "$deb" "$PC_KERNEL_PKG_DIR" || die "dpkg -x $deb failed"
        printf '%s\n' "$(basename "$deb")" >"$stamp"
    fi
    printf '%s\n' "$PC_KERNEL_PKG_DIR"
}

# Unpack busybox-static for arm64 (once); print the binary's path.
pc_fetch_busybox() {
    local bin="$PC_BUSYBOX_DIR/bin/busybox"
    if [[ ! -x $bin ]]; then
        pc_apt_update
        info "fetching busybox-static (arm64) into $PC_BUSYBOX_DIR"
        rm -f "$PC_DEBS"/busybox-static_*_arm64.deb
        local deb
        deb=$(pc_apt_download busybox-static "$PC_DEBS")
        rm -rf "$PC_BUSYBOX_DIR"
        dpkg -x "$deb" "$PC_BUSYBOX_DIR" || die "dpkg -x $deb failed"
        [[ -x $bin ]] || die "$deb holds no bin/busybox"
    fi
    printf '%s\n' "$bin"
}

# Print the path of qemu-system-aarch64 (from boards/lib/qemu-system.sh's
# unpacked qemu-system-arm package, which ships both emulators).
pc_qemu() {
    if [[ -n ${QEMU_SYSTEM_AARCH64:-} ]]; then
        "$QEMU_SYSTEM_AARCH64" --version >/dev/null 2>&1 || die "QEMU_SYSTEM_AARCH64=$QEMU_SYSTEM_AARCH64 does not run"
        printf '%s\n' "$QEMU_SYSTEM_AARCH64"
        return
    fi
    local arm bin
    arm=$(qemu_system_arm)
    bin="$(dirname "$arm")/qemu-system-aarch64"
    [[ -x $bin ]] || die "the qemu-system-arm package unpacked at $(dirname "$arm") has no qemu-system-aarch64"
    "$bin" --version >/dev/null 2>&1 || die "$bin does not run"
    printf '%s\n' "$bin"
}
