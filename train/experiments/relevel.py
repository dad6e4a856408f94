"""A copy of one split of a corpus recorded at another level: every clip
scaled by a fixed gain (16-bit PCM, clipped at full scale), with the same
manifest, so `lm_tune.py --corpus OUT` (or `evaluate`-style scoring) reads
it through the runtime exactly as it reads the original.

    python train/experiments/relevel.py --corpus data/mix3 --split dev --gain-db -20 --out data/mix3-m20
    python train/experiments/relevel.py --corpus data/mix3 --split train --measure 600   # levels only

It measures how much a model's accuracy depends on the input level (hark
does no gain control of its own): speech from a microphone further away,
or at a lower capture setting, arrives quieter than the training data
(`--measure` gives the training data's levels).
"""

import argparse
import json
import pathlib
import random
import sys

import numpy as np
import soundfile as sf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from evalsets import manifest_path, read_manifest, write_jsonl  # noqa: E402


def relevel(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """The waveform `gain_db` decibels louder (negative: quieter), clipped to [-1, 1]."""
    return np.clip(wave * 10 ** (gain_db / 20), -1.0, 1.0)


FRAME = 320  # 20 ms at the corpus's 16 kHz


def levels(wave: np.ndarray):
    """(active level, peak) in dBFS: the mean power of the loudest half of
    the 20 ms frames, and the largest sample's magnitude."""
    n = len(wave) // FRAME * FRAME
    power = np.sort((wave[:n].reshape(-1, FRAME).astype(np.float64) ** 2).mean(1))
    active = 10 * np.log10(power[len(power) // 2 :].mean() + 1e-12)
    return float(active), float(20 * np.log10(np.abs(wave).max() + 1e-12))


def measure(corpus: pathlib.Path, split: str, clips: int, seed: int = 1) -> dict:
    """Quartiles of the levels of `clips` clips drawn at random from the split."""
    items = read_manifest(corpus, split)
    rows = []
    for it in random.Random(seed).sample(items, min(clips, len(items))):
        wave, _ = sf.read(corpus / it["path"], dtype="float32", always_2d=True)
        if len(wave) >= FRAME:  # at least one frame
            rows.append(levels(wave[:, 0]))
    q = lambda k: [round(float(x), 1) for x in np.percentile([r[k] for r in rows], [25, 50, 75])]  # noqa: E731
    return {"clips": len(rows), "active_dbfs_q25_q50_q75": q(0), "peak_dbfs_q25_q50_q75": q(1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--gain-db", type=float)
    ap.add_argument("--out")
    ap.add_argument("--measure", type=int, metavar="N", help="only print the levels of N random clips of the split")
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(pathlib.Path(a.corpus), a.split, a.measure)))
        return
    if a.gain_db is None or not a.out:
        ap.error("--gain-db and --out are needed to write a copy")
    corpus, out = pathlib.Path(a.corpus), pathlib.Path(a.out)
    rows = []
    for i, it in enumerate(read_manifest(corpus, a.split)):
        wave, sr = sf.read(corpus / it["path"], dtype="float32", always_2d=True)
        rel = pathlib.Path(a.split) / "wav" / f"{i:06d}.wav"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(out / rel, relevel(wave[:, 0], a.gain_db), sr, subtype="PCM_16")
        rows.append({**it, "path": str(rel), "gain_db": a.gain_db})
    write_jsonl(manifest_path(out, a.split), rows)
    print(json.dumps({"clips": len(rows), "out": str(out), "gain_db": a.gain_db}))


if __name__ == "__main__":
    main()
