"""Synthesize the small WAV files committed for the runtime's end-to-end
tests and the README's sample, from voices held out of training
(make_corpus.HELD_OUT) and sentences written for this purpose (none is in
the training corpus; the script checks).

    python train/make_test_audio.py --out tests/data/e2e
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from textnorm import normalize  # noqa: E402

ITEMS = [
    ("flite", "rms", "", "please turn on the kitchen lights"),
    ("espeak", "en-029", "m3", "what is the weather like today"),
    ("festival", "ked_diphone", "", "set a timer for ten minutes"),
    ("flite", "rms", "", "the quick brown fox jumps over the lazy dog"),
    ("espeak", "en-029", "f2", "open the garage door and close the window"),
    ("festival", "ked_diphone", "", "call my sister tomorrow morning"),
]


def synth(engine, voice, variant, text, out):
    with tempfile.TemporaryDirectory() as td:
        raw = f"{td}/raw.wav"
        if engine == "espeak":
            subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}" if variant else voice, "-s", "160", "-w", raw, text], check=True)
        elif engine == "flite":
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", raw], check=True)
        else:
            subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", raw], input=text.encode(), check=True)
        subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", out, "pad", "0.3", "0.5"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/e2e")
    ap.add_argument("--corpus", default="data/corpus")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train_texts = set()
    man = pathlib.Path(a.corpus) / "train" / "manifest.jsonl"
    if man.exists():
        train_texts = {json.loads(x)["text"] for x in man.read_text().splitlines() if x.strip()}
    lines = []
    for i, (engine, voice, variant, text) in enumerate(ITEMS):
        assert normalize(text) == text
        if text in train_texts:
            raise SystemExit(f"'{text}' is in the training corpus")
        name = f"e2e-{i + 1}-{engine}-{voice.replace('_', '-')}.wav"
        synth(engine, voice, variant, text, str(out / name))
        lines.append(f"{name}\t{text}")
    (out / "expected.tsv").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
