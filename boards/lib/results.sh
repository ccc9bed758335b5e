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
