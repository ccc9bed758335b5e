# The host board: the workspace tests with the host's own toolchain.
# shellcheck shell=bash

run_host_board() {
    local board=$BOARD_NAME log status=0
    export CARGO_TARGET_DIR="$TARGET_ROOT/$board"
    unset FSATOMIC_TEST_RUNNER
    mkdir -p "$CARGO_TARGET_DIR"
    log="$CARGO_TARGET_DIR/test.log"
    local checks_args
    read -r -a checks_args <<<"$(profile_args)"
    local cargo_args=(--workspace ${checks_args[@]+"${checks_args[@]}"})
    info "$board: building and running the workspace tests ($(rustc --version))"
    local t0 t1
    t0=$(date +%s)
    (cd "$REPO_DIR" && cargo test "${cargo_args[@]}" --no-fail-fast) >"$log" 2>&1 || status=$?
    local checks_log="$CARGO_TARGET_DIR/checks.log"
    export BOARD_POINTER_BITS=64
    (cd "$BOARDS_DIR/linux-checks" && cargo test ${checks_args[@]+"${checks_args[@]}"} --no-fail-fast) >"$checks_log" 2>&1 || status=$?
    t1=$(date +%s)
    judge_tests "$board" "$status" "build and tests $((t1 - t0)) s" "$log" "$checks_log"
}
