# A Windows board under Wine: cross-build with Debian's rustc, -Zbuild-std
# and mingw-w64, and run the core's and fsatomic-std's tests, and
# boards/windows-checks, under wine64.
#
# Rust's std (1.78 and later) imports ProcessPrng from
# bcryptprimitives.dll, which Wine 8 lacks: every Rust program then fails
# to load (c0000135). boards/x86_64-windows/bcryptprimitives.c is a shim
# over RtlGenRandom; it is built with mingw and put into the Wine prefix's
# system32, which boards/test keeps in target-boards/x86_64-windows/.
# shellcheck shell=bash

run_wine_board() {
    local board=$BOARD_NAME triple=$BOARD_TRIPLE var out
    var=$(triple_var "$triple")
    # shellcheck disable=SC2086
    apt_require $BOARD_APT_PACKAGES
    require_debian_rust
    use_debian_rust
    command -v "$BOARD_LINKER" >/dev/null || die "$BOARD_LINKER not found after installing gcc-mingw-w64-x86-64"
    [[ -x $BOARD_RUNNER ]] || die "$BOARD_RUNNER not found after installing wine64"
    out="$TARGET_ROOT/$board"
    mkdir -p "$out"
    export CARGO_TARGET_DIR=$out
    export "CARGO_TARGET_${var}_LINKER=$BOARD_LINKER"
    export "CARGO_TARGET_${var}_RUNNER=$BOARD_RUNNER"
    export WINEPREFIX="$out/wineprefix" WINEDEBUG=-all
    unset FSATOMIC_TEST_RUNNER

    info "$board: the bcryptprimitives.dll shim and the Wine prefix"
    "${BOARD_LINKER%-posix}" -O2 -shared -o "$out/bcryptprimitives.dll" \
        "$BOARDS_DIR/$board/bcryptprimitives.c" "$BOARDS_DIR/$board/bcryptprimitives.def" -ladvapi32 ||
        die "building the bcryptprimitives.dll shim failed"
    if [[ ! -d $WINEPREFIX/drive_c/windows/system32 ]]; then
        timeout 300 "$BOARD_RUNNER" wineboot --init >/dev/null 2>&1 || true
        [[ -d $WINEPREFIX/drive_c/windows/system32 ]] || die "wineboot did not make a prefix in $WINEPREFIX"
    fi
    cp "$out/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"

    local profile_args pkg
    read -r -a profile_args <<<"$(profile_args)"
    local cargo_args=(-Zbuild-std=std,panic_unwind --target "$triple" "${profile_args[@]}")
    local packages=()
    for pkg in $BOARD_PACKAGES; do
        packages+=(-p "$pkg")
    done
    local log="$out/test.log" checks_log="$out/checks.log" t0 t1 status=0
    info "$board: building and running the tests of ${BOARD_PACKAGES// /, } and boards/windows-checks under Wine ($("$BOARD_RUNNER" --version 2>/dev/null))"
    t0=$(date +%s)
    (cd "$REPO_DIR" && cargo test "${cargo_args[@]}" "${packages[@]}" --no-fail-fast) >"$log" 2>&1 || status=$?
    (cd "$BOARDS_DIR/windows-checks" && cargo test "${cargo_args[@]}" --no-fail-fast) >"$checks_log" 2>&1 || status=$?
    t1=$(date +%s)
    judge_tests "$board" "$status" "build and tests $((t1 - t0)) s" "$log" "$checks_log"
}
