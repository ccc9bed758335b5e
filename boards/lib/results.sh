# Reading cargo test output and recording each board's result.
# shellcheck shell=bash

# `sum_test_results LOG`: print "passed failed ignored binaries filtered"
# summed over every "test result:" line of a cargo test log.
sum_test_results() {
    awk '
        /^test result: / {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^passed;?$/) p += $(i - 1)
                if ($(i) ~ /^failed;?$/) f += $(i - 1)
                if ($(i) ~ /^ignored;?$/) g += $(i - 1)
                if ($(i) == "filtered") s += $(i - 1)
            }
            n++
        }
        END { printf "%d %d %d %d %d\n", p, f, g, n, s }' "$1"
}

# `judge_tests BOARD STATUS TIMING LOG...`: show the failures in the cargo
# test logs, add their counts to the run's totals, and record the board's
# verdict: PASS only if every cargo run exited 0 (STATUS), no test failed
# and some test binary ran. TIMING ends the summary line ("build 49 s,
# tests 138 s"). Returns non-zero unless PASS.
judge_tests() {
    local board=$1 status=$2 timing=$3
    shift 3
    grep -h -E '^(error|test .* FAILED|failures:|---- )|could not compile|panicked' "$@" >&2 || true
    local passed failed ignored binaries filtered
    read -r passed failed ignored binaries filtered < <(cat "$@" | sum_test_results /dev/stdin)
    local text="$passed passed, $failed failed, $ignored ignored"
    if ((filtered > 0)); then
        text+=", $filtered skipped under emulation"
    fi
    text+=" in $binaries test binaries; $timing"
    info "$board: $text (logs: $*)"
    record_counts "$passed" "$failed"
    if [[ $status -ne 0 || $failed -ne 0 || $binaries -eq 0 ]]; then
        record_result "$board" FAIL "$text"
        return 1
    fi
    record_result "$board" PASS "$text"
}

# `record_result BOARD STATUS TEXT`: one line in the run's summary file.
record_result() {
    printf '%-14s %-5s %s\n' "$1" "$2" "$3" >>"${BOARDS_SUMMARY:?boards/test sets BOARDS_SUMMARY}"
}

# `record_counts PASSED FAILED`: add to the run's test totals.
record_counts() {
    printf '%d %d\n' "$1" "$2" >>"${BOARDS_SUMMARY:?}.counts"
}

# Print "boards: N passed, M failed" over every board of the run: the plain
# closing line CI reads.
print_totals() {
    awk '{ p += $1; f += $2 } END { printf "boards: %d passed, %d failed\n", p, f }' \
        "${BOARDS_SUMMARY:?}.counts" 2>/dev/null || echo "boards: 0 passed, 0 failed"
}
