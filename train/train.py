"""Train the streaming WSM-CTC model on a corpus: the synthetic one of
make_corpus.py, or synthetic and real speech together (train/mix.py). On
the CPU, or on a CUDA GPU when PyTorch sees one (--device auto; every
shipped model so far was trained on 2 CPU cores, the GPU path has not been
run on a GPU yet).

    python train/train.py --corpus data/corpus --run train/runs/wsm --steps 6000

Features are computed once per split with train/fbank.py and cached as
float16 under <corpus>/feats/. Training is resumable: rerunning the same
command continues from <run>/last.pt (model, optimizer, step, RNG state).
Every --eval-every steps it logs loss and greedy-CTC WER/CER on the dev set
to <run>/log.jsonl and keeps the best checkpoint as <run>/best.pt.
"""

import argparse
import json
import math
import pathlib
import random
import sys
import time
from multiprocessing import Pool

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fbank as FB  # noqa: E402
from evalsets import manifest_path, read_manifest  # noqa: E402
from model import BLANK_ID, HarkModel, ModelConfig, config_dict, count_params  # noqa: E402
from wer import edit_distance  # noqa: E402


# ---------------------------------------------------------------- data ----
def _features(path):
    torch.set_num_threads(1)
    wave, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != FB.SAMPLE_RATE_HZ:
        raise SystemExit(f"{path}: {sr} Hz, corpus must be 16 kHz")
    return FB.fbank(wave[:, 0]).numpy().astype(np.float16)


def load_split(corpus: pathlib.Path, split: str, log=print):
    """Return (feats float16 [total, 80], offsets, texts) for one split, cached."""
    cache = corpus / "feats" / f"{split}.npz"
    manifest = manifest_path(corpus, split)
    items = read_manifest(corpus, split)
    if cache.exists() and cache.stat().st_mtime >= manifest.stat().st_mtime:
        z = np.load(cache, allow_pickle=False)
        if len(z["offsets"]) == len(items) + 1:
            return z["feats"], z["offsets"], [it["text"] for it in items]
    log(f"computing features for {split}: {len(items)} utterances")
    chunks, offsets, t0 = [], [0], time.time()
    with Pool(2) as pool:
        paths = [str(corpus / it["path"]) for it in items]
        for i, f in enumerate(pool.imap(_features, paths, chunksize=32)):
            chunks.append(f)
            offsets.append(offsets[-1] + f.shape[0])
            if i % 2000 == 0 and i:
                log(f"  {i}/{len(items)} ({time.time() - t0:.0f} s)")
    feats = np.concatenate(chunks) if chunks else np.zeros((0, FB.NUM_BINS), np.float16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, feats=feats, offsets=np.array(offsets, dtype=np.int64))
    return feats, np.array(offsets), [it["text"] for it in items]


def lr_schedule(lr: float, warmup: int, steps: int, floor: float):
    """step -> learning rate: linear warmup, then a cosine down to floor * lr at `steps`."""

    def lr_at(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        p = (step - warmup) / max(1, steps - warmup)
        return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))

    return lr_at


def open_run(run_dir):
    """(run directory, created if needed; log(msg, **fields)): each log call
    prints one JSON line and appends it to <run>/log.jsonl."""
    run = pathlib.Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    logf = open(run / "log.jsonl", "a")

    def log(msg, **kv):
        line = json.dumps({"time": time.strftime("%H:%M:%S"), "msg": msg, **kv})
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    return run, log


def encode(text: str, vocab: list) -> list:
    index = {t: i for i, t in enumerate(vocab)}
    return [index[c] for c in text if c in index]


def pad_batch(feats, offsets, ids, multiple):
    return pad_arrays([feats[offsets[i] : offsets[i + 1]] for i in ids], multiple)


def pad_arrays(arrays, multiple):
    """([B, T, F] features padded to a multiple of `multiple` frames, output
    frames covering each utterance) for a list of [T_i, F] feature arrays."""
    lens = [len(a) for a in arrays]
    tmax = -(-max(lens) // multiple) * multiple
    x = np.full((len(arrays), tmax, FB.NUM_BINS), FB.PAD_FRAME_VALUE, dtype=np.float32)
    for b, a in enumerate(arrays):
        x[b, : lens[b]] = a
    # output frames covering each utterance, after padding to the chunk multiple
    out_lens = [-(-n // multiple) * multiple // 4 for n in lens]
    return torch.from_numpy(x), torch.tensor(out_lens)


def tempo(f, rate):
    """Features of the same utterance spoken `rate` times as fast (tempo
    perturbation in the feature domain): frames resampled along time by
    linear interpolation, each frame's spectrum unchanged."""
    n = len(f)
    m = max(1, int(round(n / rate)))
    pos = np.linspace(0, n - 1, m, dtype=np.float32)
    lo = pos.astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None]
    return f[lo].astype(np.float32) * (1 - w) + f[hi].astype(np.float32) * w


SPECAUG = {
    # (widest frequency mask in bins, frames of speech per time mask, widest time mask in frames)
    "mild": (15, 200, 20),  # two frequency masks, ~5% of the frames
    "strong": (27, 100, 30),  # two wider frequency masks, ~15% of the frames
    "none": None,  # no masks
}


def spec_augment(x, lens_frames, rng, policy="mild"):
    """Two frequency masks and time masks, as SPECAUG[policy] says ("none": x unchanged)."""
    if SPECAUG[policy] is None:
        return x
    max_f, per_mask, max_t = SPECAUG[policy]
    b, t, f = x.shape
    for i in range(b):
        for _ in range(2):
            w = rng.randint(0, max_f)
            s = rng.randint(0, f - w)
            x[i, :, s : s + w] = x[i].mean()
        n = int(lens_frames[i])
        for _ in range(max(1, n // per_mask)):
            w = rng.randint(0, min(max_t, max(1, n // 20)))
            s = rng.randint(0, max(1, n - w))
            x[i, s : s + w, :] = x[i].mean()
    return x


def freq_warp(x, alphas):
    """Vocal-tract-length-style warp of each utterance's mel axis: bin j reads
    bin alpha*j (linear interpolation) up to 85% of the axis, then a straight
    line to the top bin, so both ends stay fixed. x: [B, T, F], alphas: B floats."""
    f = x.shape[2]
    j = torch.arange(f, dtype=torch.float32)
    knee = 0.85 * (f - 1)
    for i, a in enumerate(alphas):
        top = a * knee
        pos = torch.where(j <= knee, a * j, top + (f - 1 - top) * (j - knee) / (f - 1 - knee)).clamp(0, f - 1)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=f - 1)
        w = pos - lo
        x[i] = x[i][:, lo] * (1 - w) + x[i][:, hi] * w
    return x


def add_noise(f, snr_db, rng_np):
    """Features of the clip with stationary noise added in the power domain:
    a per-bin noise floor `snr_db` below the clip's mean log-mel energy in
    that bin, with a random spectral tilt and frame-to-frame jitter
    (features are natural-log mel energies)."""
    f = f.astype(np.float32)
    bins = f.shape[1]
    floor = f.mean(0) - snr_db * math.log(10) / 10
    tilt = rng_np.uniform(-1.5, 1.5) * np.linspace(-1, 1, bins, dtype=np.float32)
    noise = floor + tilt + rng_np.normal(0, 0.5, f.shape).astype(np.float32)
    return np.logaddexp(f, noise)


def gain(f, db):
    """Features of the clip recorded `db` decibels louder (negative: quieter):
    a constant added to every log-mel energy, clamped at the log floor, and
    frames at the floor (digital silence) left there."""
    f = f.astype(np.float32)
    floor = math.log(FB.LOG_FLOOR)
    shifted = np.maximum(f + db * math.log(10) / 10, floor)
    return np.where(f <= floor + 0.01, f, shifted)  # 0.01: features are stored as float16


def make_batches(offsets, max_frames, rng, max_len_frames=2000, min_len_frames=8, allowed=None):
    lens = np.diff(offsets)
    ids = [i for i in range(len(lens))
           if min_len_frames <= lens[i] <= max_len_frames and (allowed is None or i in allowed)]
    ids.sort(key=lambda i: (lens[i], rng.random()))
    batches, cur, cur_max = [], [], 0
    for i in ids:
        m = max(cur_max, lens[i])
        if cur and m * (len(cur) + 1) > max_frames:
            batches.append(cur)
            cur, m = [], lens[i]
        cur.append(i)
        cur_max = m
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


# ------------------------------------------------------- distillation ----
def load_teacher(path, clips: int, context_frames: int, log=print) -> dict:
    """The states file of train/experiments/teacher_states.py, checked against
    the training split (one run of frames per clip, in manifest order) and the
    model's context frame (`context_frames` fbank frames of 10 ms; the
    teacher's frames are 20 ms, averaged `pool` at a time)."""
    z = np.load(path)
    missing = {"states", "offsets", "mean", "std", "pool"} - set(z.files)
    if missing:
        raise SystemExit(f"{path}: not a teacher states file (no {sorted(missing)})")
    t = {k: z[k] for k in ("states", "offsets", "mean", "std")}
    if len(t["offsets"]) != clips + 1:
        raise SystemExit(f"{path}: states for {len(t['offsets']) - 1} clips, the training split has {clips}: "
                         "rerun teacher_states.py on this corpus")
    if 2 * int(z["pool"]) != context_frames:
        raise SystemExit(f"{path}: states of {20 * int(z['pool'])} ms, the model's blocks run at "
                         f"{10 * context_frames} ms: rerun teacher_states.py with --pool {context_frames // 2}")
    log(f"teacher states: {len(t['states'])} frames x {t['states'].shape[1]} from {path}")
    return t


def teacher_frames(teacher: dict, i: int) -> np.ndarray:
    """Clip i's teacher states, standardized per dimension (float32 [frames, dims])."""
    s = teacher["states"][teacher["offsets"][i] : teacher["offsets"][i + 1]].astype(np.float32)
    return (s - teacher["mean"]) / teacher["std"]


def distill_loss(pred, goals, delay: int, device):
    """Mean squared error between pred [B, N, D] (the mapped hidden states)
    and each clip's standardized teacher states, student frame j against
    teacher frame j - delay, over the frames both have."""
    total, count = pred.new_zeros(()), 0
    for b, g in enumerate(goals):
        n = min(pred.shape[1], len(g) + delay) - delay
        if n <= 0:
            continue
        t = torch.from_numpy(np.ascontiguousarray(g[:n])).to(device)
        total = total + ((pred[b, delay : delay + n] - t) ** 2).sum()
        count += n * pred.shape[2]
    return total / max(count, 1)


# ------------------------------------------------------------ decoding ----
def greedy(log_probs, vocab, blank=BLANK_ID):
    """Greedy CTC over [frames, tokens] log-probs (numpy or torch): best token
    per frame, repeats collapsed, blanks dropped, spaces normalized."""
    text, prev = [], blank
    for t in log_probs.argmax(-1).tolist():
        if t != prev and t != blank:
            text.append(vocab[t])
        prev = t
    return " ".join("".join(text).split())


def score(model, texts, lengths, batch, vocab, max_utts=400):
    """Greedy-CTC WER and CER of the first `max_utts` utterances, in batches
    of 16 of similar length; `batch(ids)` returns (features, output lengths)."""
    n = min(len(texts), max_utts)
    werr = wtot = cerr = ctot = 0
    hyps = []
    model.eval()
    with torch.no_grad():
        order = sorted(range(n), key=lambda i: lengths[i])
        for k in range(0, n, 16):
            ids = order[k : k + 16]
            x, out_lens = batch(ids)
            lp = model(x.to(next(model.parameters()).device))[0].cpu()
            for b, i in enumerate(ids):
                hyp, ref = greedy(lp[b][: int(out_lens[b])], vocab), texts[i]
                werr += edit_distance(ref.split(), hyp.split())
                wtot += len(ref.split())
                cerr += edit_distance(list(ref), list(hyp))
                ctot += len(ref)
                hyps.append((ref, hyp))
    model.train()
    return werr / max(wtot, 1), cerr / max(ctot, 1), hyps


def evaluate(model, data, vocab, multiple, max_utts=400):
    feats, offsets, texts = data
    return score(model, texts, np.diff(offsets), lambda ids: pad_batch(feats, offsets, ids, multiple), vocab, max_utts)


# ---------------------------------------------------------------- main ----
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--run", default="train/runs/wsm")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch-frames", type=int, default=24000, help="padded feature frames per batch")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where the model trains: auto takes the GPU when PyTorch sees one (CUDA), else the CPU")
    ap.add_argument("--arch", default="wsm", choices=["wsm", "mhsa"])
    ap.add_argument("--downsample", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--conv-kernel", type=int, default=5, help="causal depthwise conv per block (0: none)")
    ap.add_argument("--curriculum-steps", type=int, default=0,
                    help="first steps on clean clips of at most --curriculum-max-frames, small batches")
    ap.add_argument("--warp", type=float, default=0.0,
                    help="per-utterance mel-axis warp factor drawn from 1 +- this (0: off)")
    ap.add_argument("--inter-ctc", type=float, default=0.0, metavar="WEIGHT",
                    help="intermediate CTC: this share of the loss is CTC on the middle block's output, read "
                         "through the model's own norm and head (training only; the exported model is unchanged)")
    ap.add_argument("--distill", metavar="NPZ",
                    help="Whisper encoder states of every training clip (train/experiments/teacher_states.py): "
                         "a linear map of one block's output learns to predict them, beside CTC")
    ap.add_argument("--distill-weight", type=float, default=10.0,
                    help="weight of the distillation loss (mean squared error of standardized states, per "
                         "frame and dimension) against CTC's (summed per utterance)")
    ap.add_argument("--distill-layer", type=int, default=0,
                    help="the block (1-based) whose output is mapped to the teacher's states (0: two thirds deep)")
    ap.add_argument("--distill-delay", type=int, default=1,
                    help="context frames the student lags the teacher (it hears no future, the teacher all of it)")
    ap.add_argument("--specaug", default="mild", choices=sorted(SPECAUG),
                    help="SpecAugment policy: mild (~5%% of frames masked, every model up to v12), strong (~15%%) "
                         "or none")
    ap.add_argument("--dropout", type=float, default=0.1, help="dropout in every block (training only)")
    ap.add_argument("--summary-chunk", type=int, default=0, metavar="FRAMES",
                    help="WSM summaries per group of FRAMES context frames (4: the runtime's 320 ms chunk, so a frame "
                         "hears the rest of its chunk at no added latency; 0: causal); the exported chunk must be a "
                         "multiple of the group")
    ap.add_argument("--tempo", type=float, default=0.0,
                    help="per-utterance speaking-rate factor drawn from 1 +- this, applied to the features (0: off)")
    ap.add_argument("--noise-snr", type=float, nargs=2, metavar=("LOW_DB", "HIGH_DB"),
                    help="add stationary noise to half the clips at an SNR drawn from LOW..HIGH dB (features)")
    ap.add_argument("--gain-db", type=float, nargs=2, metavar=("LOW_DB", "HIGH_DB"),
                    help="record every clip at a level changed by a gain drawn from LOW..HIGH dB (features; e.g. "
                         "-20 10 for microphones quieter than the training data)")
    ap.add_argument("--init-onnx", help="start from the weights of this exported model of the same architecture "
                                        "(fine-tuning a shipped model); a resumed run ignores it")
    ap.add_argument("--init-ckpt", help="start from the model in this training checkpoint (e.g. <run>/last.pt): "
                                        "the same architecture, or fewer WSM blocks than --layers, the extra "
                                        "blocks starting as identities (model.grow_from); a resumed run ignores it")
    ap.add_argument("--skip-engines", default="", help="comma-separated TTS engines whose training clips to leave out")
    ap.add_argument("--curriculum-max-frames", type=int, default=400)
    ap.add_argument("--curriculum-batch-frames", type=int, default=8000)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device here (a CPU-only build, or no GPU); "
                         "use --device auto or cpu")
    device = torch.device("cuda" if a.device != "cpu" and torch.cuda.is_available() else "cpu")
    run, log = open_run(a.run)

    corpus = pathlib.Path(a.corpus)
    train = load_split(corpus, "train", log)
    dev = load_split(corpus, "dev", log)

    cfg = ModelConfig(arch=a.arch, downsample=a.downsample, d_model=a.d_model, d_conv=a.d_model, num_layers=a.layers,
                      conv_kernel=a.conv_kernel, dropout=a.dropout, summary_chunk=a.summary_chunk)
    torch.manual_seed(a.seed)
    model = HarkModel(cfg)
    if a.init_ckpt:
        from model import grow_from

        log(f"initialized from {a.init_ckpt}: "
            f"{grow_from(model, torch.load(a.init_ckpt, map_location='cpu', weights_only=False)['model'])} new blocks")
    elif a.init_onnx:
        from export import weights_from_onnx

        log(f"initialized from {a.init_onnx}: {weights_from_onnx(model, a.init_onnx)} tensors")
    else:
        # global normalization from the training features
        sample = train[0][:: max(1, len(train[0]) // 200000)].astype(np.float32)
        model.feat_mean.copy_(torch.from_numpy(sample.mean(0)))
        model.feat_std.copy_(torch.from_numpy(sample.std(0) + 1e-3))
    train_items = read_manifest(corpus, "train")  # per clip, in the order of train's features
    skip = {e for e in a.skip_engines.split(",") if e}
    allowed = None
    if skip:
        allowed = {i for i, it in enumerate(train_items) if it.get("engine") not in skip}
        log(f"leaving out the {len(train[2]) - len(allowed)} training clips of {sorted(skip)}")
    teacher = None
    if a.distill:
        teacher = load_teacher(a.distill, len(train[2]), cfg.context_frames, log)
        proj = torch.nn.Linear(cfg.d_model, teacher["states"].shape[1])
        proj.to(device)
    model.to(device)
    params = list(model.parameters()) + (list(proj.parameters()) if teacher else [])
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)

    lr_at = lr_schedule(a.lr, a.warmup, a.steps, floor=0.02)

    step, best, epoch, pos = 0, float("inf"), 0, 0
    rng = random.Random(a.seed)
    if (run / "last.pt").exists():
        ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        if teacher:
            proj.load_state_dict(ck["distill_proj"])
        opt.load_state_dict(ck["opt"])
        step, best, epoch, pos = ck["step"], ck["best"], ck["epoch"], ck["pos"]
        rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"])
        log(f"resumed at step {step}")
    n_used = len(train[2]) if allowed is None else len(allowed)
    hours = (len(train[0]) if allowed is None else sum(int(train[1][i + 1] - train[1][i]) for i in allowed)) / 360000
    training = (
        f"corpus {corpus} ({n_used} utterances, {hours:.1f} h); command: python train/train.py "
        + " ".join(sys.argv[1:])
    )
    log("start", params=count_params(model), config=config_dict(cfg), training=training, device=str(device))

    def save(name):
        torch.save({
            "model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
            "epoch": epoch, "pos": pos, "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "config": config_dict(cfg), "training": training,
            "distill_proj": proj.state_dict() if teacher else None,
        }, run / (name + ".tmp"))
        (run / (name + ".tmp")).replace(run / name)

    feats, offsets, texts = train
    targets = [encode(t, cfg.vocab) for t in texts]
    middle = {}  # block outputs kept by hooks while training, by name

    def keep_output(block: int, name: str):
        """Keep block `block`'s (0-based) output as middle[name] on every forward."""
        def hook(module, args, out):
            middle[name] = out[0] if isinstance(out, (tuple, list)) else out

        model.blocks[block].register_forward_hook(hook)

    if a.inter_ctc > 0:
        keep_output(len(model.blocks) // 2 - 1, "x")  # the middle block
    if teacher:
        layer = a.distill_layer or max(1, round(len(model.blocks) * 2 / 3))
        if not 1 <= layer <= len(model.blocks):
            raise SystemExit(f"--distill-layer {layer}: the model has blocks 1 to {len(model.blocks)}")
        log("distill", file=a.distill, layer=layer, weight=a.distill_weight, delay=a.distill_delay,
            frames=len(teacher["states"]), dims=teacher["states"].shape[1])
        keep_output(layer - 1, "h")

    def ctc(lp, tg, out_lens):
        return F.ctc_loss(
            lp.transpose(0, 1), torch.tensor([t for s in tg for t in s], device=device), out_lens.to(device),
            torch.tensor([len(s) for s in tg], device=device), blank=BLANK_ID, reduction="sum", zero_infinity=True,
        ) / len(tg)
    model.train()
    t0, seen_frames, loss_avg, distill_avg = time.time(), 0, None, None

    def one_step(ids, phase):
        nonlocal step, seen_frames, loss_avg, distill_avg, best
        clips = [feats[offsets[i] : offsets[i + 1]] for i in ids]
        goals = [teacher_frames(teacher, i) for i in ids] if teacher else None
        if a.tempo > 0:
            rates = [rng.uniform(1 - a.tempo, 1 + a.tempo) for _ in ids]
            clips = [tempo(c, r) for c, r in zip(clips, rates)]
            if teacher:
                goals = [tempo(g, r) for g, r in zip(goals, rates)]
        if a.noise_snr:
            lo, hi = a.noise_snr
            noise_rng = np.random.default_rng(rng.randrange(1 << 30))
            clips = [add_noise(c, rng.uniform(lo, hi), noise_rng) if rng.random() < 0.5 else c for c in clips]
        if a.gain_db:
            lo, hi = a.gain_db
            clips = [gain(c, rng.uniform(lo, hi)) for c in clips]
        x, out_lens = pad_arrays(clips, cfg.chunk_multiple)
        if a.warp > 0:
            x = freq_warp(x, [rng.uniform(1 - a.warp, 1 + a.warp) for _ in ids])
        x = spec_augment(x, [len(c) for c in clips], rng, a.specaug)
        tg = [targets[i] for i in ids]
        lp = model(x.to(device))[0]
        loss = ctc(lp, tg, out_lens)
        if a.inter_ctc > 0:
            mid = model.head(model.norm(middle.pop("x")))
            mid = F.log_softmax(mid.reshape(lp.shape), dim=-1)
            loss = (1 - a.inter_ctc) * loss + a.inter_ctc * ctc(mid, tg, out_lens)
        if teacher:
            dl = distill_loss(proj(middle.pop("h")), goals, a.distill_delay, device)
            loss = loss + a.distill_weight * dl
            distill_avg = dl.item() if distill_avg is None else 0.98 * distill_avg + 0.02 * dl.item()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        seen_frames += sum(int(offsets[i + 1] - offsets[i]) for i in ids)
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if step % 50 == 0:
            el = time.time() - t0
            extra = {"distill": round(distill_avg, 4)} if teacher else {}
            log("train", step=step, phase=phase, epoch=epoch, loss=round(loss_avg, 3), lr=round(lr_at(step), 6),
                audio_x_realtime=round(seen_frames / 100 / el, 1), **extra)
        if step % a.eval_every == 0 or step == a.steps:
            wer, cer, hyps = evaluate(model, dev, cfg.vocab, cfg.chunk_multiple)
            if wer < best:
                best = wer
                save("best.pt")
            save("last.pt")
            log("dev", step=step, wer=round(wer, 4), cer=round(cer, 4), best=round(best, 4),
                examples=hyps[:3:1] + hyps[-2:])

    # Curriculum: CTC from scratch leaves its blank plateau far sooner on
    # clean, short clips in small batches (measured: 2.9 -> 2.2 nats per
    # character in 300 such steps, where full batches of everything stayed
    # at 2.9 for 1,600 steps). Each curriculum step's batch is drawn from
    # the seed and the step number, so a resumed run continues exactly.
    if step < a.curriculum_steps:
        augmented = [bool(it.get("aug")) for it in train_items]
        lens = np.diff(offsets)
        easy = [i for i in range(len(lens)) if not augmented[i] and 8 <= lens[i] <= a.curriculum_max_frames
                and (allowed is None or i in allowed)]
        easy_batches = make_batches(offsets, a.curriculum_batch_frames, random.Random(a.seed),
                                    max_len_frames=a.curriculum_max_frames, allowed=set(easy))
        log("curriculum", clips=len(easy), batches=len(easy_batches), until_step=a.curriculum_steps)
        while step < min(a.curriculum_steps, a.steps):
            pick = random.Random(a.seed * 100003 + step).randrange(len(easy_batches))
            one_step(easy_batches[pick], "curriculum")
    while step < a.steps:
        batches = make_batches(offsets, a.batch_frames, random.Random(a.seed + epoch), allowed=allowed)
        for bi, ids in enumerate(batches):
            if step >= a.steps:
                break
            if bi < pos:  # resuming inside this epoch: batches are re-derived from the seed
                continue
            pos = bi + 1
            one_step(ids, "all")
        epoch, pos = epoch + 1, 0
    save("last.pt")
    log("done", step=step, best_dev_wer=best, minutes=round((time.time() - t0) / 60, 1))


if __name__ == "__main__":
    main()
