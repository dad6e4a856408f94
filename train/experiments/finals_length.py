"""How much audio to give Whisper tiny.en's encoder at an endpoint, and how to
stop its decoder: the dev-set measurement behind hark's finals pass
(results/whisper-finals/notes.md).

Whisper was trained on 30 s windows; padding a 2 s utterance to 30 s costs
15x the encoder compute, and with little padding the greedy decoder does not
stop. Each strategy here is run on the same clips through the exported
finals model (train/whisper_export.py, onnxruntime) with the same greedy
rules as the runtime (src/finals/):

    pad30        the utterance padded to 30 s, EOT ends the text
    padN         the utterance plus N seconds of silence
    +minM        and more silence where needed for M seconds in all
    +bound       at most 5 + 6 tokens per second of audio
    +repeat      a phrase repeated back to back is cut after its first
                 occurrence and decoding stops
    +repeat2     the same, with phrases of 2-3 tokens cut at their second
                 occurrence (not the third)
    +boundcut    when the bound stops the decoder, a suffix of 4 or more
                 tokens that already occurred is cut (a repeat in progress)
    +ts          timestamp mode: the decoder predicts segment times; a
                 timestamp past the end of the audio stops it

    python train/experiments/finals_length.py --manifest data/real/speechocean762/manifest.jsonl \\
        --split dev --finals models/whisper-tiny.en --out results/whisper-finals/length.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import whisper_encoder as W  # noqa: E402
import whisper_export as X  # noqa: E402
from whisper_export import repeat_cut  # noqa: E402
from evalsets import load_audio, read_jsonl  # noqa: E402
from textnorm import normalize  # noqa: E402
from wer import score  # noqa: E402

SECONDS_PER_TIMESTAMP = 0.02


class Greedy:
    def __init__(self, finals: X.OrtFinals, config: dict, bound: bool, repeat: bool, timestamps: bool,
                 short_period: int = 4, boundcut: bool = False):
        self.f, self.bound, self.repeat, self.ts = finals, bound, repeat, timestamps
        self.boundcut = boundcut
        self.short_period = short_period
        vocab = finals.table.shape[0]
        self.suppress = np.zeros(vocab, bool)
        self.suppress[config["suppress_ids"]] = True
        self.suppress[X.EOT + 1 : X.TIMESTAMP_BEGIN] = True  # SOT, languages, tasks, ...
        self.begin = np.zeros(vocab, bool)
        self.begin[config["suppress_ids_begin"]] = True

    def decode(self, mel: np.ndarray, seconds: float) -> list[int]:
        self.f.start(self.f.encode(mel[None]))
        limit = X.MAX_TOKENS // 2
        if self.bound:
            limit = min(limit, int(5 + 6 * seconds))
        prompt = [X.SOT] if self.ts else [X.SOT, X.NO_TIMESTAMPS]
        for t in prompt[:-1]:
            self.f.step(t)
        last, out = prompt[-1], []
        stopped = False
        while len([t for t in out if t < X.EOT]) < limit:
            logits = self.f.step(last).astype(np.float64)
            logits[self.suppress] = -np.inf
            text = [t for t in out if t < X.EOT]
            if not text:
                logits[self.begin] = -np.inf
            if not self.ts:
                logits[X.TIMESTAMP_BEGIN :] = -np.inf
            else:
                self.timestamp_rules(logits, out)
            tok = int(logits.argmax())
            if tok == X.EOT:
                stopped = True
                break
            if self.ts and tok >= X.TIMESTAMP_BEGIN and (tok - X.TIMESTAMP_BEGIN) * SECONDS_PER_TIMESTAMP > seconds:
                break
            out.append(tok)
            last = tok
            if self.repeat:
                text = [t for t in out if t < X.EOT]
                cut = repeat_cut(text, short_period=self.short_period)
                if cut is not None:
                    out = text[:cut]
                    stopped = True
                    break
        text = [t for t in out if t < X.EOT]
        if self.boundcut and not stopped:
            cut = bound_cut(text)
            if cut is not None:
                text = text[:cut]
        return text

    @staticmethod
    def timestamp_rules(logits: np.ndarray, out: list[int]) -> None:
        """OpenAI Whisper's timestamp rules, greedy: pairs of timestamps,
        non-decreasing, the first token a timestamp of at most 1 s, and a
        timestamp forced when their total probability beats any text token."""
        tb = X.TIMESTAMP_BEGIN
        last_ts = len(out) >= 1 and out[-1] >= tb
        prev_ts = len(out) < 2 or out[-2] >= tb
        if last_ts:
            if prev_ts:
                logits[tb:] = -np.inf
            else:
                logits[: X.EOT] = -np.inf
        stamps = [t for t in out if t >= tb]
        if stamps:
            floor = stamps[-1] + (0 if last_ts and not prev_ts else 1)
            logits[tb:floor] = -np.inf
        if not out:
            logits[: tb] = -np.inf
            logits[tb + 50 + 1 :] = -np.inf
        logp = logits - np.logaddexp.reduce(logits[np.isfinite(logits)])
        if np.logaddexp.reduce(logp[tb:]) > logp[:tb].max():
            logits[:tb] = -np.inf


def bound_cut(tokens: list[int], min_len: int = 4) -> int | None:
    """Length to cut `tokens` to when decoding stopped at the token bound in
    the middle of repeating itself: the longest suffix of at least `min_len`
    tokens that already occurred earlier, without overlapping it, is cut
    (e.g. "Please call. Please call" stopped before its second period).
    None when no such suffix exists. Not in the runtime: neutral on dev,
    where no utterance meets it (results/whisper-finals/notes.md)."""
    n = len(tokens)
    for length in range(n // 2, min_len - 1, -1):
        tail = tokens[n - length :]
        if any(tokens[j : j + length] == tail for j in range(0, n - 2 * length + 1)):
            return n - length
    return None


def detokenize(vocab: list[str], tokens: list[int]) -> str:
    table = {c: b for b, c in _bytes_to_unicode().items()}
    raw = bytes(table[c] for t in tokens for c in vocab[t])
    return raw.decode("utf-8", "replace")


def _bytes_to_unicode() -> dict[int, str]:
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def features(wave: np.ndarray, pad_s: float | None) -> np.ndarray:
    """Log-mel of the utterance plus `pad_s` seconds of silence (None: to 30 s)."""
    if pad_s is None:
        mel = W.log_mel(wave, padding=W.SAMPLE_RATE_HZ * 30).numpy()[:, :3000]
    else:
        mel = W.log_mel(wave, padding=int(W.SAMPLE_RATE_HZ * pad_s)).numpy()
        mel = mel[:, : min(3000, mel.shape[1] - mel.shape[1] % 2)]
    return mel


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=0, help="first N clips only")
    ap.add_argument("--finals", default="models/whisper-tiny.en")
    ap.add_argument("--strategies", default="pad30,pad1,pad1+bound+repeat,pad1+ts+bound+repeat,pad2+ts+bound+repeat")
    ap.add_argument("--out")
    args = ap.parse_args()
    finals_dir = pathlib.Path(args.finals)
    finals = X.OrtFinals({p: finals_dir / f"{p}.onnx" for p in ("encoder", "decoder")})
    model_dir = W.bundled_model_dir()
    config = json.loads((model_dir / "config.json").read_text())
    vocab = (model_dir / "vocabulary.txt").read_text().split("\n")
    root = pathlib.Path(args.manifest).parent.parent
    rows = [r for r in read_jsonl(args.manifest) if r["split"] == args.split and r.get("text")]
    if args.limit:
        rows = rows[: args.limit]
    waves = [load_audio(root / r["path"]) for r in rows]
    results = {}
    for name in args.strategies.split(","):
        parts = name.split("+")
        pad = None if parts[0] == "pad30" else float(parts[0][3:])
        least = next((float(p[3:]) for p in parts if p.startswith("min")), 0.0)
        g = Greedy(finals, config, "bound" in parts, "repeat" in parts or "repeat2" in parts, "ts" in parts,
                   short_period=2 if "repeat2" in parts else 4, boundcut="boundcut" in parts)
        pairs, frames, t0 = [], 0, time.perf_counter()
        for r, wave in zip(rows, waves):
            seconds = len(wave) / W.SAMPLE_RATE_HZ
            mel = features(wave, pad if pad is None else max(pad, least - seconds))
            frames += mel.shape[1]
            hyp = normalize(detokenize(vocab, g.decode(mel, len(wave) / W.SAMPLE_RATE_HZ)))
            pairs.append((r["text"], hyp))
        wer, words = score(pairs)
        results[name] = {"wer": round(wer, 4), "words": words, "clips": len(rows),
                         "mel_frames_per_clip": round(frames / len(rows), 1),
                         "seconds": round(time.perf_counter() - t0, 1)}
        print(name, results[name], flush=True)
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
