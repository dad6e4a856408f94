"""Paired comparison of two evaluation runs on the same utterances: which
model makes fewer word errors, utterance by utterance, and how sure that
is (a bootstrap over utterances).

    python train/paired.py results/lm7/hark-lm.json results/v12/hark-lm.json \
        --set speechocean762-test

A and B are `train/evaluate.py --out` files. Only utterances present in
both (same set, same file) count. Prints, and with --out writes as JSON:
each run's word errors, on how many utterances B has fewer and more
errors than A, and in how many of --resamples bootstrap resamples (the
utterances drawn with replacement) B's total is lower than A's.
"""

import argparse
import json
import pathlib
import random
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from wer import edit_distance  # noqa: E402


def utterances(path, set_name: str) -> dict:
    """file -> (reference, hypothesis) of one evaluate.py result's set."""
    rows = json.loads(pathlib.Path(path).read_text())["utterances"]
    return {u["file"]: (u["ref"], u["hyp"]) for u in rows if u["set"] == set_name}


def compare(a: dict, b: dict, resamples: int = 2000, seed: int = 0) -> dict:
    keys = sorted(set(a) & set(b))
    if not keys:
        raise ValueError("no utterance is in both runs")
    ea = [edit_distance(a[k][0].split(), a[k][1].split()) for k in keys]
    eb = [edit_distance(b[k][0].split(), b[k][1].split()) for k in keys]
    words = sum(len(a[k][0].split()) for k in keys)
    rng = random.Random(seed)
    b_ahead = 0
    for _ in range(resamples):
        idx = [rng.randrange(len(keys)) for _ in keys]
        if sum(eb[i] for i in idx) < sum(ea[i] for i in idx):
            b_ahead += 1
    return {
        "utterances": len(keys),
        "words": words,
        "errors_a": sum(ea),
        "errors_b": sum(eb),
        "b_better": sum(y < x for x, y in zip(ea, eb)),
        "b_worse": sum(y > x for x, y in zip(ea, eb)),
        "resamples": resamples,
        "b_ahead_in": b_ahead,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="evaluate.py result (the baseline)")
    ap.add_argument("b", help="evaluate.py result (the candidate)")
    ap.add_argument("--set", default="speechocean762-test", help="the set's name in the results' utterances")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    r = compare(utterances(a.a, a.set), utterances(a.b, a.set), a.resamples, a.seed)
    print(f"{a.set}: {r['utterances']} utterances, {r['words']} words; word errors A {r['errors_a']}, "
          f"B {r['errors_b']}; B fewer on {r['b_better']}, more on {r['b_worse']}; "
          f"B ahead in {r['b_ahead_in']} of {r['resamples']} bootstrap resamples")
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps({"a": a.a, "b": a.b, "set": a.set, **r}, indent=1) + "\n")


if __name__ == "__main__":
    main()
