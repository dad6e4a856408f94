#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one
# after the other, niced, and print libFuzzer's final counts per target.
# Nightly only for fuzzing: the main build stays on stable.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 wav lm
#
# Installs cargo-fuzz when missing; seeds fuzz/corpus/<target>/ from
# fuzz/seeds.py when a corpus is missing; logs go to fuzz/logs/<target>.log
# and crashes to fuzz/artifacts/<target>/. A header field that asks for a
# huge allocation fails the run through -malloc_limit_mb. Exits non-zero
# when any target found something. Results: docs/reliability.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(wav stdin_pcm model lm resample)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

# per target: largest input (bytes) and the largest single allocation (MiB)
# that counts as a finding. The model target loads ONNX graphs in tract.
declare -A MAX_LEN=([wav]=65536 [stdin_pcm]=65536 [model]=16384 [lm]=65536 [resample]=4096)
declare -A MALLOC_MB=([wav]=64 [stdin_pcm]=64 [model]=256 [lm]=64 [resample]=128)

# -a: debug assertions (integer overflow checks) in the fuzzed code
nice -n 10 cargo +nightly fuzz build -a

mkdir -p fuzz/logs
failed=()
for t in "${TARGETS[@]}"; do
    if [ ! -d "fuzz/corpus/$t" ]; then
        python3 fuzz/seeds.py
    fi
    echo "== $t: ${SECONDS_EACH}s"
    if ! nice -n 10 cargo +nightly fuzz run -a "$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$t]}" \
        -rss_limit_mb=2048 -malloc_limit_mb="${MALLOC_MB[$t]}" -timeout=20 \
        -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1; then
        failed+=("$t")
    fi
    # libFuzzer's last status line and final stats: runs, exec/s, cov, ft, corpus
    grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "fuzz/logs/$t.log" || true
    echo "   corpus: $(find "fuzz/corpus/$t" -type f | wc -l) files"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]} (see fuzz/logs/ and fuzz/artifacts/)" >&2
    exit 1
fi
