#!/usr/bin/env bash
# CI entry for the boards, called by .ci/run: install what a fresh Debian 12
# machine lacks, then build, test and run every cross board, and print the
# cortex-m4 size and stack figures so that growth shows in every CI log.
#
#   bash boards/ci.sh              aarch64-linux armv7-linux cortex-m4
#   BOARDS_CI="cortex-m4" bash boards/ci.sh
#
# The host board (x86_64-linux) is left out by default: .ci/run already runs
# the host's test suite. Exit status 0 only if every board passed; the last
# line is "boards: N passed, M failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a boards <<<"${BOARDS_CI:-aarch64-linux armv7-linux cortex-m4}"

start=$(date +%s)
status=0
"$here/test" "${boards[@]}" || status=$?
printf '==> boards/ci.sh: %d s for %s\n' "$(($(date +%s) - start))" "${boards[*]}" >&2
exit "$status"
