#!/usr/bin/env bash
# Regenerate the measured parts of docs/performance.md (tables between the
# GENERATED markers) and the plots in docs/perf/, in one run:
#
#   tests/benches/report.sh [--quick] [--dir DIR] [--no-companion]
#
# First runs the allocation test (its per-path counts go into the
# Footprint section), then the full comparison on DIR (default: a
# temporary directory in the target directory, on the working tree's
# filesystem). Takes a few minutes; --quick takes seconds and is only a
# smoke run (too few samples to conclude anything).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-bench}"
mkdir -p "$CARGO_TARGET_DIR"
log="$CARGO_TARGET_DIR/alloc-test.log"
if ! cargo test -p fsatomic-testkit --test alloc -- --nocapture --test-threads=1 >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
cargo bench -p fsatomic-testkit --bench compare -- --write-docs --alloc-log "$log" "$@"
