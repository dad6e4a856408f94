"""The ceiling of issue 4's recipe: a CTC head trained on the synthetic corpus
on top of Whisper tiny.en's own encoder, frozen and unmodified (full
bidirectional attention over the whole clip, not streaming).

The converted student (train/experiments/student.py) keeps Whisper's convolutions and
feed-forward layers, replaces its attention by causal WSM, and learns its
character head from synthetic speech only. Two things can limit it on real
speech: what the conversion loses, and what a head learned from synthetic
speech can read out of even the original encoder. This measures the second
on its own: if a head on the *unmodified* encoder is poor on real recordings,
no conversion of it will be better. `--attention` (both commands) runs the
same frozen weights with every attention layer masked, to see what limited
context alone costs before any retraining: `causal:N` lets each 20 ms frame
see itself and the N-1 frames before it; `chunk:C:L` lets it see its whole
chunk of C frames (bidirectional inside it, as a chunked streaming encoder
would) and the L frames before the chunk. `--norm utterance` normalizes each
clip's encoder output to zero mean and unit variance per dimension before the
head (a check on speaker/channel mismatch). `--layer N` reads an inner block's
output instead of the last one's (does a lower layer, less shaped by Whisper's
decoder, generalize better from synthetic to real speech?).

    python train/experiments/probe.py features --corpus data/corpus --train-clips 12000
    python train/experiments/probe.py train --head mlp --minutes 15 --out results/eval-probe-whisper.json

`features` runs the frozen encoder once per clip (no 30 s padding, as the
student's teacher runs it) and caches the last layer's output (float16) under
<corpus>/feats/probe-*.npz for the first N training clips, the dev and
test_clean splits and the real recordings (evaluation only); with
--kokoro-clips M, also the first M Kokoro training clips (a set of their
own; `train --with-kokoro` adds them) and the test_kokoro split. `train` fits a
head (linear, or a 2-layer MLP) with CTC, then scores greedy and with the
bundled character LM (models/hark-charlm7.bin, its stored beam settings).
Nothing here is shipped; it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import charlm  # noqa: E402
import evalsets  # noqa: E402
import whisper_encoder as WE  # noqa: E402
from model import BLANK_ID, TOKENS, ctc_head  # noqa: E402
from train import encode, greedy, make_batches  # noqa: E402
from wer import char_error_rate, score  # noqa: E402

SETS = ("train", "dev", "test_clean", "real", "train_kokoro", "test_kokoro")


def cache_path(corpus: pathlib.Path, name: str, attention: str = "full", layer: int = 4) -> pathlib.Path:
    tag = "" if attention == "full" else attention.replace(":", "-") + "-"
    if layer != 4:
        tag += f"l{layer}-"
    return corpus / "feats" / f"probe-{tag}{name}.npz"


def layer_outputs(enc, mel: torch.Tensor, mask, layers) -> dict:
    """{layer: [frames, width]} for the requested blocks (1-based). The last
    block's output goes through the encoder's own final norm, as Whisper's
    decoder reads it; an inner block's residual stream through a layer norm
    without parameters (its scale varies from block to block)."""
    blocks = enc.block_outputs(mel.unsqueeze(0), mask)
    return {k: (enc.ln_post(x) if k == len(blocks) else F.layer_norm(x, x.shape[-1:]))[0]
            for k, x in enumerate(blocks, start=1) if k in layers}


def attention_mask(frames: int, attention: str):
    """None for full attention, else [frames, frames], True where query i may attend to key j."""
    kind, *args = attention.split(":")
    i = torch.arange(frames).view(-1, 1)
    j = torch.arange(frames).view(1, -1)
    if kind == "full" and not args:
        return None
    if kind == "causal" and len(args) == 1:
        return (j <= i) & (j > i - int(args[0]))
    if kind == "chunk" and len(args) == 2:
        c, left = int(args[0]), int(args[1])
        start = (i // c) * c
        return (j < start + c) & (j >= start - left)
    raise SystemExit(f"--attention {attention!r}: expected full, causal:N or chunk:C:L")


def clips(corpus: pathlib.Path, name: str, limit: int):
    """(label, path, reference) of one set; the real recordings without a reference are left out."""
    if name == "real":
        return [(s, p, r) for s, p, r in evalsets.real_recordings() if r is not None]
    split = "train" if name.startswith("train") else name
    if not evalsets.manifest_path(corpus, split).exists():
        return []
    items = evalsets.read_manifest(corpus, split)
    if name == "train":  # the Kokoro clips are a set of their own
        items = [it for it in items if it.get("engine") != "kokoro"]
    elif name == "train_kokoro":
        items = [it for it in items if it.get("engine") == "kokoro"]
    return [(name, corpus / it["path"], it["text"]) for it in items[:limit]]


def read_wave(path: pathlib.Path) -> np.ndarray:
    if path.suffix == ".wav":
        w, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr == 16000:
            return w[:, 0]
    return evalsets.load_audio(path).copy()  # writable, as torch wants


@torch.no_grad()
def cmd_features(a):
    torch.set_num_threads(a.threads)
    corpus = pathlib.Path(a.corpus)
    enc = WE.load_bundled_encoder().eval()
    limits = {"train": a.train_clips, "dev": a.dev_clips, "test_clean": 10**9, "real": 0,
              "train_kokoro": a.kokoro_clips, "test_kokoro": 10**9}
    layers = sorted({int(x) for x in a.layer.split(",")})
    if not layers or not set(layers) <= set(range(1, len(enc.blocks) + 1)):
        raise SystemExit(f"--layer {a.layer!r}: expected blocks among 1..{len(enc.blocks)}")
    for name in SETS:
        outs = {k: cache_path(corpus, name, a.attention, k) for k in layers}
        if all(o.exists() for o in outs.values()) and not a.force:
            print(f"{', '.join(map(str, outs.values()))} exist", flush=True)
            continue
        items = clips(corpus, name, limits[name])
        if not items:
            continue
        t0, seconds, feats, offsets = time.time(), 0.0, {k: [] for k in layers}, [0]
        for i, (_, path, _) in enumerate(items):
            w = read_wave(path)
            seconds += len(w) / 16000
            mel = WE.log_mel(w, padding=WE.HOP)
            if mel.shape[1] > 3000:  # the encoder holds 1500 positions (30 s)
                raise SystemExit(f"{path}: longer than Whisper's 30 s; the probe scores whole clips only")
            mask = attention_mask((mel.shape[1] + 1) // 2, a.attention)
            hs = layer_outputs(enc, mel, mask, layers)
            for k, h in hs.items():
                feats[k].append(h.numpy().astype(np.float16))
            offsets.append(offsets[-1] + len(hs[layers[0]]))
            if i % 1000 == 0:
                print(f"{name}: {i}/{len(items)} clips, {seconds / max(time.time() - t0, 1e-9):.0f}x real time",
                      flush=True)
        for k, out in outs.items():
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez(out, feats=np.concatenate(feats[k]), offsets=np.array(offsets, np.int64),
                     texts=np.array([r for _, _, r in items]), labels=np.array([s for s, _, _ in items]))
            print(f"{name}: {len(items)} clips, {seconds / 3600:.2f} h in {time.time() - t0:.0f} s -> {out}",
                  flush=True)


class Head(nn.Module):
    def __init__(self, kind: str, width: int = 384, hidden: int = 1024, vocab: int = len(TOKENS)):
        super().__init__()
        if kind not in ("linear", "mlp"):
            raise SystemExit(f"unknown head {kind!r}")
        self.net = ctc_head(width, vocab, hidden if kind == "mlp" else 0)

    def forward(self, x):
        return F.log_softmax(self.net(x), dim=-1)


def load_set(corpus, name, attention="full", norm="none", layer=4):
    z = np.load(cache_path(corpus, name, attention, layer), allow_pickle=False)
    feats, offsets = z["feats"], z["offsets"]
    if norm == "utterance":
        feats = feats.astype(np.float32)
        for a, b in zip(offsets[:-1], offsets[1:]):
            seg = feats[a:b]
            feats[a:b] = (seg - seg.mean(0)) / (seg.std(0) + 1e-3)
        feats = feats.astype(np.float16)
    return feats, offsets, [str(t) for t in z["texts"]], [str(s) for s in z["labels"]]


def pad(feats, offsets, ids):
    lens = [int(offsets[i + 1] - offsets[i]) for i in ids]
    x = np.zeros((len(ids), max(lens), feats.shape[1]), np.float32)
    for b, i in enumerate(ids):
        x[b, : lens[b]] = feats[offsets[i] : offsets[i + 1]]
    return torch.from_numpy(x), torch.tensor(lens)


def summarize(rows):
    """(label, ref, hyp) rows -> {label: {wer, cer, words}} plus 'all'."""
    out = {}
    for label in sorted({r[0] for r in rows}) + ["all"]:
        sel = [(r, h) for s, r, h in rows if label in ("all", s)]
        wer, words = score(sel)
        out[label] = {"wer": round(wer, 4), "cer": round(char_error_rate(sel), 4), "words": words}
    return out


@torch.no_grad()
def decode_set(head, data, lm=None, max_utts=10**9):
    """Runs the head once per utterance and decodes greedy and, with an LM,
    with its beam search too -> ({"greedy": summary[, "lm": summary]}, rows
    of the best decoding: LM if given, else greedy)."""
    feats, offsets, texts, labels = data
    head.eval()
    greedy_rows, lm_rows = [], []
    for i in range(min(len(texts), max_utts)):
        lp = head(torch.from_numpy(feats[offsets[i] : offsets[i + 1]].astype(np.float32))).numpy()
        greedy_rows.append((labels[i], texts[i], greedy(lp, TOKENS)))
        if lm is not None:
            hyp = charlm.beam_search(lp, TOKENS, BLANK_ID, lm, alpha=lm.alpha, beta=lm.beta, beam=lm.beam,
                                     prune=lm.prune)
            lm_rows.append((labels[i], texts[i], hyp))
    head.train()
    out = {"greedy": summarize(greedy_rows)}
    if lm is not None:
        out["lm"] = summarize(lm_rows)
    return out, lm_rows if lm is not None else greedy_rows


def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    corpus = pathlib.Path(a.corpus)
    train = load_set(corpus, "train", a.attention, a.norm, a.layer)
    if a.with_kokoro:
        kk = load_set(corpus, "train_kokoro", a.attention, a.norm, a.layer)
        train = (np.concatenate([train[0], kk[0]]), np.concatenate([train[1], kk[1][1:] + train[1][-1]]),
                 train[2] + kk[2], train[3] + kk[3])
    dev = load_set(corpus, "dev", a.attention, a.norm, a.layer)
    head = Head(a.head)
    opt = torch.optim.AdamW(head.parameters(), lr=a.lr, weight_decay=1e-2)
    ctc = nn.CTCLoss(blank=BLANK_ID, zero_infinity=True)
    feats, offsets, texts, _ = train
    targets = [torch.tensor(encode(t, TOKENS)) for t in texts]
    t0, step, epoch = time.time(), 0, 0
    deadline = t0 + a.minutes * 60
    log = []
    while time.time() < deadline and epoch < a.epochs:
        for ids in make_batches(offsets, a.batch_frames, rng, max_len_frames=10**9, min_len_frames=0):
            if time.time() > deadline:
                break
            x, lens = pad(feats, offsets, ids)
            x = x + a.noise * torch.randn_like(x)  # feature noise: a little regularization
            lp = head(x).transpose(0, 1)
            tg = [targets[i] for i in ids]
            loss = ctc(lp, torch.cat(tg), lens, torch.tensor([len(t) for t in tg]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        epoch += 1
        res, _ = decode_set(head, dev, max_utts=400)
        log.append({"epoch": epoch, "step": step, "loss": round(loss.item(), 3),
                    "dev_greedy": res["greedy"]["all"], "minutes": round((time.time() - t0) / 60, 1)})
        print(json.dumps(log[-1]), flush=True)
    lm = charlm.BinLM.load(a.lm)
    results = {}
    names = ["dev", "test_clean", "real"] + (["test_kokoro"] if cache_path(corpus, "test_kokoro", a.attention, a.layer).exists()
                                              else [])
    for name in names:
        data = dev if name == "dev" else load_set(corpus, name, a.attention, a.norm, a.layer)
        res, rows = decode_set(head, data, lm, max_utts=150 if name == "dev" else 10**9)
        results[name] = {**res, "examples": rows[:3]}
        print(name, json.dumps({k: v["all"] for k, v in res.items()}), flush=True)
    out = {"what": "CTC head on the frozen, unmodified Whisper tiny.en encoder (bidirectional, whole clip); "
                   "trained on synthetic speech only", "command": " ".join(sys.argv),
           "head": a.head, "attention": a.attention, "layer": a.layer, "norm": a.norm, "with_kokoro": a.with_kokoro,
           "head_parameters": sum(p.numel() for p in head.parameters()),
           "train_clips": len(texts), "train_hours": round(int(offsets[-1]) / 50 / 3600, 2),
           "log": log, "results": results}
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {a.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features")
    f.add_argument("--corpus", default="data/corpus")
    f.add_argument("--train-clips", type=int, default=12000)
    f.add_argument("--dev-clips", type=int, default=400)
    f.add_argument("--kokoro-clips", type=int, default=0, help="also cache this many of the Kokoro training clips")
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--force", action="store_true")
    f.add_argument("--attention", default="full", help="full (as trained), causal:N or chunk:C:L (20 ms frames)")
    f.add_argument("--layer", default="4", help="cache these encoder blocks' outputs (comma list of 1-4; 4 = last)")
    t = sub.add_parser("train")
    t.add_argument("--corpus", default="data/corpus")
    t.add_argument("--head", choices=("linear", "mlp"), default="mlp")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--minutes", type=float, default=15)
    t.add_argument("--batch-frames", type=int, default=20000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--noise", type=float, default=0.0)
    t.add_argument("--lm", default=str(HERE.parent.parent / evalsets.SHIPPED_LM))
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--attention", default="full", help="use the features made with this --attention")
    t.add_argument("--layer", type=int, default=4, help="use the features of this encoder block (1-4)")
    t.add_argument("--norm", choices=("none", "utterance"), default="none")
    t.add_argument("--with-kokoro", action="store_true", help="train on the cached Kokoro clips too")
    t.add_argument("--out")
    a = ap.parse_args()
    {"features": cmd_features, "train": cmd_train}[a.cmd](a)


if __name__ == "__main__":
    main()
