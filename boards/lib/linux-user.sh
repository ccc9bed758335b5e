# A Linux board under qemu-user: cross-build the workspace's tests with
# Debian's rustc and -Zbuild-std, and run them through qemu.
#
# Panic strategy: the tests need unwinding (#[should_panic], a failing test
# must not abort the whole binary), so std is built with panic_unwind:
# -Zbuild-std=std,panic_unwind. (-Zbuild-std=std,panic_abort with
# -Zpanic-abort-tests also works, but runs every test in its own process,
# which under qemu costs an emulator start per test.)
#
# Child processes: a test that spawns an ARM binary (the `fsatomic` CLI)
# cannot exec it directly — binfmt_misc is not registered on these machines
# — so boards/test exports FSATOMIC_TEST_RUNNER (e.g. "qemu-aarch64"), which
# the CLI tests put in front of the binary. QEMU_LD_PREFIX and QEMU_CPU are
# exported rather than passed as flags, so that every qemu started below
# (the test binaries, and the children they run) finds the target's
# libraries and emulates the board's CPU.
# shellcheck shell=bash

run_linux_user_board() {
    local board=$BOARD_NAME triple=$BOARD_TRIPLE var log
    var=$(triple_var "$triple")
    # shellcheck disable=SC2086
    apt_require $BOARD_APT_PACKAGES
    require_debian_rust
    use_debian_rust
    command -v "$BOARD_LINKER" >/dev/null || die "$BOARD_LINKER not found after installing $BOARD_APT_PACKAGES"
    command -v "$BOARD_RUNNER" >/dev/null || die "$BOARD_RUNNER not found after installing qemu-user"
    [[ -d $BOARD_SYSROOT/lib ]] || die "no target libraries in $BOARD_SYSROOT (libc6-dev cross package)"

    export CARGO_TARGET_DIR="$TARGET_ROOT/$board"
    export "CARGO_TARGET_${var}_LINKER=$BOARD_LINKER"
    export "CARGO_TARGET_${var}_RUNNER=$BOARD_RUNNER"
    export "CARGO_TARGET_${var}_RUSTFLAGS=$BOARD_RUSTFLAGS"
    export QEMU_LD_PREFIX=$BOARD_SYSROOT QEMU_CPU=$BOARD_CPU
    export FSATOMIC_TEST_RUNNER=$BOARD_RUNNER

    local cargo_args=(-Zbuild-std=std,panic_unwind --target "$triple" --workspace)
    [[ ${BOARDS_RELEASE:-0} == 1 ]] && cargo_args+=(--release)
    local test_args=()
    local skip
    for skip in ${BOARD_TEST_SKIP:-}; do
        test_args+=(--skip "$skip")
    done

    mkdir -p "$CARGO_TARGET_DIR"
    log="$CARGO_TARGET_DIR/test.log"
    info "$board: building the workspace tests for $triple ($($RUSTC --version), $BOARD_LINKER)"
    local t0 t1 t2 status=0
    t0=$(date +%s)
    if ! (cd "$REPO_DIR" && cargo test "${cargo_args[@]}" --no-run) >"$log.build" 2>&1; then
        grep -E -A 12 '^error' "$log.build" | head -n 80 >&2 || tail -n 40 "$log.build" >&2
        record_result "$board" FAIL "build failed (log: $log.build)"
        return 1
    fi
    t1=$(date +%s)
    info "$board: running the tests under $BOARD_RUNNER (QEMU_CPU=$QEMU_CPU)"
    (cd "$REPO_DIR" && cargo test "${cargo_args[@]}" --no-fail-fast -- "${test_args[@]}") >"$log" 2>&1 || status=$?
    t2=$(date +%s)
    grep -E '^(test .* FAILED|failures:|---- )|panicked' "$log" >&2 || true
    local passed failed ignored binaries
    read -r passed failed ignored binaries < <(sum_test_results "$log")
    local text="$passed passed, $failed failed, $ignored ignored in $binaries test binaries; build $((t1 - t0)) s, tests $((t2 - t1)) s"
    info "$board: $text (log: $log)"
    if [[ $status -ne 0 || $failed -ne 0 || $binaries -eq 0 ]]; then
        record_result "$board" FAIL "$text"
        return 1
    fi
    record_result "$board" PASS "$text"
}
