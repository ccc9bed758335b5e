# The host board: the workspace tests with the host's own toolchain.
# shellcheck shell=bash

run_host_board() {
    local board=$BOARD_NAME log status=0
    export CARGO_TARGET_DIR="$TARGET_ROOT/$board"
    unset FSATOMIC_TEST_RUNNER
    mkdir -p "$CARGO_TARGET_DIR"
    log="$CARGO_TARGET_DIR/test.log"
    local cargo_args=(--workspace)
    [[ ${BOARDS_RELEASE:-0} == 1 ]] && cargo_args+=(--release)
    info "$board: building and running the workspace tests ($(rustc --version))"
    local t0 t1
    t0=$(date +%s)
    (cd "$REPO_DIR" && cargo test "${cargo_args[@]}" --no-fail-fast) >"$log" 2>&1 || status=$?
    t1=$(date +%s)
    grep -E '^(error|test .* FAILED)|could not compile|panicked' "$log" >&2 || true
    local passed failed ignored binaries
    read -r passed failed ignored binaries < <(sum_test_results "$log")
    local text="$passed passed, $failed failed, $ignored ignored in $binaries test binaries; build and tests $((t1 - t0)) s"
    info "$board: $text (log: $log)"
    if [[ $status -ne 0 || $failed -ne 0 || $binaries -eq 0 ]]; then
        record_result "$board" FAIL "$text"
        return 1
    fi
    record_result "$board" PASS "$text"
}
