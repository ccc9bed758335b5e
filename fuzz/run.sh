#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 20: the CI smoke run).
#
#   fuzz/run.sh            # smoke: 4 targets x 20 s
#   fuzz/run.sh 3600       # long run: one hour per target
#   fuzz/run.sh 600 ops_powercuts   # one target
#
# Installs cargo-fuzz (nightly toolchain) if it is missing. Builds into
# $CARGO_TARGET_DIR/fuzz if CARGO_TARGET_DIR is set, else fuzz/target.
# A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# and, once fixed, commit it to fuzz/regressions/<target>/: every run starts
# from those inputs (a second corpus directory, never written to).
#
# FUZZ_SEED=N fixes libFuzzer's seed (CI sets it, so that a failure there
# reproduces here with the same command); unset, each run draws its own.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(load_json load_framed json_pretty ops_powercuts)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi

target_dir=()
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target_dir=(--target-dir "$CARGO_TARGET_DIR/fuzz")
fi

for t in "${targets[@]}"; do
    dict=()
    case "$t" in
        load_json | json_pretty) dict=(-dict=fuzz/json.dict) ;;
    esac
    max_len=4096
    [ "$t" = ops_powercuts ] && max_len=256
    mkdir -p "fuzz/corpus/$t"
    seeds=()
    [ -d "fuzz/regressions/$t" ] && seeds=("fuzz/regressions/$t")
    seed=()
    [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
    echo "== $t: ${secs} s"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run "${target_dir[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 \
        -print_final_stats=1 "${seed[@]}" "${dict[@]}" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAILED: $t"
        exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units|cov: .*corp" "$log" | tail -n 2
    rm -f "$log"
done
