"""How well a training checkpoint fits each source: greedy-CTC WER and CER
on a sample of its own training clips (clean: no SpecAugment, no warp) and
on the dev clips, per source of the corpus's manifest. A source whose
training clips score like its held-out ones is under-fitted; a wide gap is
over-fitting.

    python train/experiments/fit_by_source.py --ckpt train/runs/v6/last.pt --corpus data/mix
"""

import argparse
import collections
import pathlib
import random
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import train as T  # noqa: E402
from evalsets import read_manifest  # noqa: E402
from export import load_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="a train.py checkpoint (last.pt / best.pt)")
    ap.add_argument("--corpus", default="data/mix")
    ap.add_argument("--per-source", type=int, default=60, help="clips per source and split (a fixed random draw)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_checkpoint(a.ckpt)
    cfg = model.cfg
    corpus = pathlib.Path(a.corpus)
    print("split source clips WER CER")
    for split in ["train", "dev"]:
        feats, offsets, texts = T.load_split(corpus, split, lambda *_, **__: None)
        by = collections.defaultdict(list)
        for i, item in enumerate(read_manifest(corpus, split)):
            by[item.get("source") or item.get("engine") or "?"].append(i)
        for source, ids in sorted(by.items()):
            random.Random(0).shuffle(ids)
            ids = ids[: a.per_source]
            wer, cer, _ = T.score(model, [texts[i] for i in ids], [int(offsets[i + 1] - offsets[i]) for i in ids],
                                  lambda b: T.pad_batch(feats, offsets, [ids[j] for j in b], cfg.chunk_multiple),
                                  cfg.vocab, len(ids))
            print(f"{split} {source} {len(ids)} {100 * wer:.1f}% {100 * cer:.1f}%", flush=True)


if __name__ == "__main__":
    main()
