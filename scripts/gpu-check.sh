#!/bin/bash
# The checks behind the figures of docs/gpu.md, for a machine with an NVIDIA GPU.
#
#   scripts/gpu-check.sh HARK OUTDIR BENCH_WAV [WAV...]
#
# HARK: a hark binary built with `--features cuda` or `--features cuda13`.
# Prints the backend each --backend choice comes to; transcribes the WAVs
# (the committed e2e files are added) on the GPU with an empty kernel cache,
# again with it warm, and on the CPU, and says whether the transcripts are
# identical (with the LM and with --no-lm); then `hark bench` on BENCH_WAV
# with each backend. Everything is also written to OUTDIR. HARK_MODEL=PATH
# runs another model than the bundled one.
set -u
if [ $# -lt 3 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
hark=$1 out=$2 bench_wav=$3
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
wavs=("$here"/tests/data/e2e/*.wav "$@")
mkdir -p "$out"
model=() model_path=() # `hark model` takes the path as its argument
if [ -n "${HARK_MODEL:-}" ]; then
    model=(--model "$HARK_MODEL") model_path=("$HARK_MODEL")
fi
exec > >(tee "$out/log.txt") 2>&1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
for b in auto cuda cpu; do
    echo "== hark model --backend $b"
    "$hark" model "${model_path[@]}" --backend "$b" | grep '^backend:'
done
if ! "$hark" model "${model_path[@]}" --backend cuda >/dev/null 2>&1; then
    echo "--backend cuda is not usable here (see above); nothing more to check"
    exit 1
fi

# A private kernel cache, empty at first, so the first run shows the
# compile time a fresh install pays.
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
seconds() { # seconds COMMAND... : run it, print its wall time
    local t0=$EPOCHREALTIME
    "$@"
    echo "took $(awk "BEGIN { print $EPOCHREALTIME - $t0 }") s" >&2
}
for run in cold warm; do
    echo "== transcribe --backend cuda, $run kernel cache"
    seconds "$hark" transcribe "${model[@]}" --backend cuda --format tsv "${wavs[@]}" >"$out/cuda.tsv"
done
echo "kernel cache: $(du -sh "$XDG_CACHE_HOME" | cut -f1)"
"$hark" transcribe "${model[@]}" --backend cpu --format tsv "${wavs[@]}" >"$out/cpu.tsv"
"$hark" transcribe --no-lm "${model[@]}" --backend cuda --format tsv "${wavs[@]}" >"$out/cuda-nolm.tsv"
"$hark" transcribe --no-lm "${model[@]}" --backend cpu --format tsv "${wavs[@]}" >"$out/cpu-nolm.tsv"
for v in "" -nolm; do
    if cmp -s "$out/cpu$v.tsv" "$out/cuda$v.tsv"; then
        echo "transcripts${v:+ ($v)}: identical on ${#wavs[@]} files"
    else
        echo "transcripts${v:+ ($v)}: differ"
        diff "$out/cpu$v.tsv" "$out/cuda$v.tsv"
    fi
done
for b in cuda cpu; do
    echo "== hark bench --backend $b $bench_wav"
    "$hark" bench "${model[@]}" --backend "$b" --format table "$bench_wav" | tee "$out/bench-$b.txt"
done
rm -rf "$XDG_CACHE_HOME"
