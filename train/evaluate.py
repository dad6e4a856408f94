"""Measure a contract model's WER: synthetic held-out voices and real
recordings that ship in Debian packages (evaluation only, never training).

    python train/evaluate.py --model models/hark-wsm-v21.onnx --out results/eval-hark-wsm-v21.json
    python train/evaluate.py --hark target/release/hark --out results/eval-hark-runtime.json

By default the model runs as the runtime runs it, in Python: fbank
(train/fbank.py), then chunk by chunk through onnxruntime with explicit
state (docs/model-contract.md), then greedy CTC. With `--hark BINARY` each
clip goes through the runtime itself instead (`hark transcribe --format
tsv`, with its default LM beam search, endpointing and all; `--hark-args`
adds flags such as --no-lm). Real recordings are converted to 16 kHz mono
with sox first in both cases. The real sets: the packaged recordings
(also together as real-all), speechocean762 `test` once
train/realdata.py has imported it, and the Asterisk voice prompts when
asterisk-core-sounds-en-wav is installed (evalsets.asterisk_prompts).
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fbank as FB  # noqa: E402
from evalsets import (SHIPPED_MODEL, asterisk_prompts, load_audio, manifest_path, read_manifest,  # noqa: E402
                      real_recordings, speechocean_test, voice_set)
from train import greedy  # noqa: E402
from textnorm import normalize, spoken  # noqa: E402
from wer import char_error_rate, score  # noqa: E402

def pad_to_chunks(feats: np.ndarray, chunk: int, pad_value: float = FB.PAD_FRAME_VALUE) -> np.ndarray:
    """Pad feature frames to whole chunks (at least one) with padding frames."""
    n = feats.shape[0]
    total = max(1, -(-n // chunk)) * chunk
    out = np.full((total, feats.shape[1]), pad_value, dtype=np.float32)
    out[:n] = feats
    return out


class Recognizer:
    def __init__(self, path):
        self.meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.chunk = int(self.meta["hark.chunk_frames"])
        self.states = json.loads(self.meta["hark.states"])
        self.tokens = json.loads(self.meta["hark.tokens"])
        self.blank = int(self.meta["hark.blank_id"])
        self.out_names = [o.name for o in self.sess.get_outputs()]

    def log_probs(self, feats: np.ndarray, step_ms=None) -> np.ndarray:
        """Run feature frames chunk by chunk from the initial state, padded
        as the contract says; returns [output frames, tokens]. With a list
        `step_ms`, each step's `session.run` time is appended to it."""
        padded = pad_to_chunks(feats, self.chunk, float(self.meta["hark.pad_frame_value"]))
        cur = {s["input"]: np.full(s["shape"], s["init"], np.float32) for s in self.states}
        outs = []
        for i in range(0, padded.shape[0], self.chunk):
            inputs = {"feats": padded[None, i : i + self.chunk], **cur}
            t = time.perf_counter()
            res = dict(zip(self.out_names, self.sess.run(None, inputs)))
            if step_ms is not None:
                step_ms.append(1000 * (time.perf_counter() - t))
            outs.append(res["log_probs"][0])
            cur = {s["input"]: res[s["output"]] for s in self.states}
        return np.concatenate(outs)

    def transcribe(self, wave: np.ndarray) -> str:
        return greedy(self.log_probs(FB.fbank(wave).numpy()), self.tokens, self.blank)


class HarkRecognizer:
    """The `hark` binary as a recognizer, on 16-bit 16 kHz WAVs of the clips:
    `transcribe` runs one `hark transcribe` per clip, `transcribe_many` one
    per 100 clips (each file is its own stream; the models load once, which
    with the Whisper finals model takes ~1.5 s). Hypotheses are normalized
    as the references are (Whisper's finals are cased and punctuated), and
    abbreviated titles spelled out as for the peers (textnorm.spoken)."""

    BATCH = 100

    def __init__(self, binary, model, extra_args=""):
        self.cmd = [str(binary), "transcribe", "--format", "tsv", "--model", str(model), *extra_args.split()]
        self.tmp = tempfile.TemporaryDirectory()

    def _write(self, wave: np.ndarray, name: str) -> pathlib.Path:
        import wave as wavmod
        path = pathlib.Path(self.tmp.name) / name
        pcm = (np.clip(wave, -1.0, 32767 / 32768) * 32768).astype("<i2")
        with wavmod.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(FB.SAMPLE_RATE_HZ)
            w.writeframes(pcm.tobytes())
        return path

    def transcribe(self, wave: np.ndarray) -> str:
        return self.transcribe_many([wave])[0]

    def transcribe_many(self, waves) -> list:
        out = []
        for at in range(0, len(waves), self.BATCH):
            paths = [self._write(w, f"clip{at + i:05d}.wav") for i, w in enumerate(waves[at : at + self.BATCH])]
            text = subprocess.run([*self.cmd, *map(str, paths)], check=True, capture_output=True, text=True).stdout
            lines = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
            out.extend(spoken(normalize(lines.get(str(p), ""))) for p in paths)
        return out


# Training voices for the generalization check: (engine, voice).
SEEN_VOICES = [("espeak", "en-us"), ("flite", "slt"), ("flite", "awb")]


def synthesize(engine: str, voice: str, text: str, out: pathlib.Path) -> np.ndarray:
    raw = out.with_suffix(".tts.wav")
    if engine == "espeak":
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    else:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
    return load_audio(raw)


def generalization_sets(rec, corpus: pathlib.Path, n: int) -> dict:
    """Where the errors come from: clean training clips (voices and sentences
    seen in training) and held-out test sentences spoken by training voices
    (voices seen, sentences not), next to the held-out voices' sets."""
    train = read_manifest(corpus, "train")
    clean = [it for it in train if not it.get("aug")]
    step = max(1, len(clean) // n)
    rows = {"train-clips-clean": [(it["text"], rec.transcribe(load_audio(corpus / it["path"])))
                                  for it in clean[::step][:n]]}
    test = read_manifest(corpus, "test_clean")[: max(1, n // len(SEEN_VOICES))]
    with tempfile.TemporaryDirectory() as td:
        for engine, voice in SEEN_VOICES:
            for k, it in enumerate(test):
                wave = synthesize(engine, voice, it["text"], pathlib.Path(td) / f"{engine}-{voice}-{k}.wav")
                rows.setdefault("train-voices-heldout-sentences", []).append((it["text"], rec.transcribe(wave)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=SHIPPED_MODEL)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--max-synthetic", type=int, default=400)
    ap.add_argument("--generalization", type=int, default=0, metavar="N",
                    help="also score N clean training clips and N held-out sentences spoken by training "
                         "voices (espeak en-us, flite slt and awb), to separate voice from sentence errors")
    ap.add_argument("--hark", metavar="BINARY", help="transcribe through this hark binary instead of onnxruntime")
    ap.add_argument("--real-data", default="data/real", help="train/realdata.py's output (for speechocean762 test)")
    ap.add_argument("--speechocean-every", type=int, default=5, help="score every N-th speechocean762 test clip")
    ap.add_argument("--no-asterisk", action="store_true",
                    help="leave out the Asterisk voice prompts (551 clips, 25 min; scored when installed)")
    ap.add_argument("--hark-args", default="", help="extra flags for `hark transcribe` (e.g. --no-lm)")
    a = ap.parse_args()
    rec = HarkRecognizer(a.hark, a.model, a.hark_args) if a.hark else Recognizer(a.model)
    results = {"model": a.model, "decoder": f"hark {a.hark_args}".strip() if a.hark else "python greedy",
               "sets": {}, "utterances": []}
    by_set = {}

    corpus = pathlib.Path(a.corpus)
    for split in ("test_clean", "dev", "test_kokoro"):
        if not manifest_path(corpus, split).exists():
            continue
        items = read_manifest(corpus, split)[: a.max_synthetic]
        for it in items:
            hyp = rec.transcribe(load_audio(corpus / it["path"]))
            by_set.setdefault(f"synthetic-{split}", []).append((it["text"], hyp))
            if split == "test_clean":  # and per held-out voice
                by_set.setdefault(voice_set(split, it), []).append((it["text"], hyp))
    if a.generalization:
        by_set.update(generalization_sets(rec, corpus, a.generalization))
    prompts = [] if a.no_asterisk else asterisk_prompts()
    clips = speechocean_test(a.real_data, a.speechocean_every) + prompts
    many = getattr(rec, "transcribe_many", lambda ws: [rec.transcribe(w) for w in ws])
    for (name, path, ref), hyp in zip(clips, many([load_audio(p) for _, p, _ in clips])):
        results["utterances"].append({"set": name, "file": str(path), "ref": ref, "hyp": hyp})
        by_set.setdefault(name, []).append((ref, hyp))
    packaged = real_recordings()
    for (name, path, ref), hyp in zip(packaged, many([load_audio(p) for _, p, _ in packaged])):
        results["utterances"].append({"set": name, "file": str(path), "ref": ref, "hyp": hyp})
        if ref is not None:
            by_set.setdefault(name, []).append((ref, hyp))
            by_set.setdefault("real-all", []).append((ref, hyp))
        print(f"{name}\t{path.name}\tREF: {ref}\n\t\tHYP: {hyp}")
    for name, rows in by_set.items():
        w, words = score(rows)
        results["sets"][name] = {"wer": round(w, 4), "cer": round(char_error_rate(rows), 4), "words": words,
                                 "utterances": len(rows)}
    print(f"{'set':44s} {'utts':>5s} {'words':>6s} {'WER':>7s} {'CER':>7s}")
    for name, r in results["sets"].items():
        print(f"{name:44s} {r['utterances']:5d} {r['words']:6d} {100 * r['wer']:6.1f}% {100 * r['cer']:6.1f}%")
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
