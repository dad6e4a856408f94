"""Tune the bundled LM's decoding settings for a model, through the runtime:
LM weight (alpha) and per-character bonus (beta) over a grid, scored by
`hark transcribe` itself (one process per setting over every clip) on a
corpus's dev split: data/mix's holds synthetic held-out voices and real
speakers held out of training (speechocean762), never an evaluation set.

    python train/lm_tune.py --hark target/release/hark --model models/hark-wsm-v21.onnx \
        --lm data/charlm7.bin --alpha 0.75,1.0,1.25 --beta 1.0,1.5 --beam 32 --out results/lm7/lm-tune.json

Each setting is written into a copy of the LM (`charlm.with_settings`: the
n-grams untouched); the best by dev WER is printed, to be written into the
shipped file with `python train/charlm.py settings`.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from charlm import BinLM, with_settings  # noqa: E402
from evalsets import read_manifest  # noqa: E402
from wer import char_error_rate, score  # noqa: E402


def transcribe(hark: str, model: str, lm: pathlib.Path, paths: list) -> dict:
    out = subprocess.run([hark, "transcribe", "--format", "tsv", "--model", model, "--lm", str(lm), *map(str, paths)],
                         check=True, capture_output=True, text=True).stdout
    hyps = {}
    for line in out.splitlines():
        f, _, text = line.partition("\t")
        hyps[f] = text
    return hyps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hark", default="target/release/hark")
    ap.add_argument("--model", required=True)
    ap.add_argument("--lm", required=True, help="binary LM (charlm.py export)")
    ap.add_argument("--corpus", default="data/mix")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--alpha", default="0.5,0.75,1.0")
    ap.add_argument("--beta", default="0.5,1.0,1.5")
    ap.add_argument("--beam", type=int, default=16)
    ap.add_argument("--out")
    a = ap.parse_args()
    corpus = pathlib.Path(a.corpus)
    items = read_manifest(corpus, a.split)
    paths = [(corpus / it["path"]).resolve() for it in items]
    groups = {}
    for it, p in zip(items, paths):
        kind = "synthetic" if it.get("source", "synthetic").startswith("synthetic") else "real"
        groups.setdefault(kind, []).append((it["text"], str(p)))
    blob = pathlib.Path(a.lm).read_bytes()
    prune = BinLM(blob).prune
    results = []
    with tempfile.TemporaryDirectory() as td:
        lm = pathlib.Path(td) / "lm.bin"
        for alpha in [float(x) for x in a.alpha.split(",")]:
            for beta in [float(x) for x in a.beta.split(",")]:
                lm.write_bytes(with_settings(blob, alpha, beta, a.beam, prune))
                hyps = transcribe(a.hark, a.model, lm, paths)
                row = {"alpha": alpha, "beta": beta, "beam": a.beam}
                for kind, rows in [("all", [r for g in groups.values() for r in g]), *groups.items()]:
                    pairs = [(ref, hyps.get(p, "")) for ref, p in rows]
                    w, words = score(pairs)
                    row[kind] = {"wer": round(w, 4), "cer": round(char_error_rate(pairs), 4), "words": words}
                results.append(row)
                print(json.dumps(row), flush=True)
    best = min(results, key=lambda r: r["all"]["wer"])
    print("best:", json.dumps(best))
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps({"model": a.model, "lm": a.lm, "split": f"{a.corpus}/{a.split}",
                                                   "grid": results, "best": best}, indent=1) + "\n")


if __name__ == "__main__":
    main()
