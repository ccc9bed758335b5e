# Reading cargo test output and recording each board's result.
# shellcheck shell=bash

# `sum_test_results LOG`: print "passed failed ignored binaries" summed
# over every "test result:" line of a cargo test log.
sum_test_results() {
    awk '
        /^test result: / {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^passed;?$/) p += $(i - 1)
                if ($(i) ~ /^failed;?$/) f += $(i - 1)
                if ($(i) ~ /^ignored;?$/) g += $(i - 1)
            }
            n++
        }
        END { printf "%d %d %d %d\n", p, f, g, n }' "$1"
}

# `record_result BOARD STATUS TEXT`: one line in the run's summary file.
record_result() {
    mkdir -p "$TARGET_ROOT"
    printf '%-14s %-5s %s\n' "$1" "$2" "$3" >>"$TARGET_ROOT/summary.txt"
}
