"""The same contract model in tract (hark) and in ONNX Runtime, one thread
each, on the same chunks: per-chunk model-step latency and their ratio.

    .venv/bin/python benches/engines.py [--model models/hark-wsm-v21.onnx] [--rounds 5] [WAV...]

tract's figures come from the release binary's own timing of each model
step (`target/release/hark bench --format json`, field chunk_ms_model);
ONNX Runtime's from timing each `session.run` on the same files' chunks
(fbank by train/fbank.py, padded as the contract says, state carried).
The two alternate, round by round, so that a busy machine slows both
alike; the ratio of medians measured in one run is the result, absolute
times are indicative. Build first: `cargo build --release`.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "train"))
import fbank as FB  # noqa: E402
from evalsets import SHIPPED_MODEL, load_audio  # noqa: E402
from evaluate import Recognizer  # noqa: E402


def ort_step_ms(rec: Recognizer, feats_list) -> list:
    """Milliseconds of every session.run over the files, state carried per file."""
    times = []
    for feats in feats_list:
        rec.log_probs(feats, step_ms=times)
    return times


def tract_step_ms(binary: pathlib.Path, model: str, wavs) -> dict:
    out = subprocess.run([str(binary), "bench", "--model", model, "--format", "json", *map(str, wavs)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / SHIPPED_MODEL))
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "hark"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("wavs", nargs="*")
    a = ap.parse_args()
    wavs = [pathlib.Path(w) for w in a.wavs] or sorted((ROOT / "tests" / "data" / "e2e").glob("*.wav"))
    feats = [FB.fbank(load_audio(w)).numpy() for w in wavs]
    rec = Recognizer(a.model)
    ort_all, tract_p50, chunks = [], [], 0
    for _ in range(a.rounds):
        t = tract_step_ms(pathlib.Path(a.binary), a.model, wavs)
        tract_p50.append(t["chunk_ms_model"]["p50"])
        chunks = t["chunk_ms_model"]["count"]
        ort = ort_step_ms(rec, feats)
        ort_all.append(statistics.median(ort))
    res = {
        "model": a.model, "files": len(wavs), "chunks_per_round": chunks, "rounds": a.rounds,
        "chunk_ms": t["chunk_ms"], "machine": t["machine"], "date": time.strftime("%Y-%m-%d"),
        "tract_step_ms_p50_per_round": [round(x, 3) for x in tract_p50],
        "onnxruntime_step_ms_p50_per_round": [round(x, 3) for x in ort_all],
        "onnxruntime_over_tract": round(statistics.median(ort_all) / statistics.median(tract_p50), 3),
    }
    print(f"{a.model}: {len(wavs)} files, {chunks} chunks of {t['chunk_ms']:.0f} ms per round, {a.rounds} rounds")
    print(f"model step p50, median of rounds: tract {statistics.median(tract_p50):.3f} ms, "
          f"onnxruntime {statistics.median(ort_all):.3f} ms, ratio ort/tract {res['onnxruntime_over_tract']:.2f}")
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
