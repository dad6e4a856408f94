"""The evaluation audio shared by train/evaluate.py and train/peers.py: the
real recordings that ship in Debian packages (evaluation only, never
training or tuning) with their normalized references, and audio loading
through sox; and the reader of a corpus split's manifest, which every
script under train/ uses. Kept free of torch and onnx so that a peer engine measured in
its own process carries only what it needs.
"""

import gzip
import json
import pathlib
import re
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from textnorm import normalize  # noqa: E402

# The bundled acoustic model, relative to the repository root (src/model.rs
# embeds the same file): the default of every script that reads it.
SHIPPED_MODEL = "models/hark-wsm-v21.onnx"
# The bundled language model, likewise (src/decode/lm.rs embeds it).
SHIPPED_LM = "models/hark-charlm7.bin"

PS = pathlib.Path("/usr/share/pocketsphinx/test/data")
ALSA = pathlib.Path("/usr/share/sounds/alsa")
CODEC2 = pathlib.Path("/usr/share/codec2/raw/speech_orig_16k.wav")
# Debian asterisk-core-sounds-en-wav (the prompts, 8 kHz) and asterisk-core-sounds-en (their text)
ASTERISK = pathlib.Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = pathlib.Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def manifest_path(corpus, split: str) -> pathlib.Path:
    return pathlib.Path(corpus) / split / "manifest.jsonl"


def write_jsonl(path, rows) -> None:
    """Write a JSON-lines manifest, one dict per line, whole or not at all
    (a temporary file beside it, then renamed over it)."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def read_jsonl(path) -> list:
    """One dict per non-empty line of a JSON-lines manifest."""
    return [json.loads(x) for x in pathlib.Path(path).read_text().splitlines() if x.strip()]


def read_manifest(corpus, split: str) -> list:
    """The clips of a corpus split (train, dev, test_clean) as make_corpus.py
    wrote them: one dict per clip (path relative to the corpus, text, ...)."""
    return read_jsonl(manifest_path(corpus, split))


def voice_set(split: str, item: dict) -> str:
    """The per-voice set name of a synthetic clip, e.g. "synthetic-test_clean/espeak-en-029"
    (an espeak voice's variants, "en-029+klatt3", count as one voice)."""
    return f"synthetic-{split}/{item['engine']}-{item['voice'].split('+')[0]}"


# The sets real_recordings() yields: the packaged recordings, scored together as
# "real-all" by evaluate.py and peers.py (speechocean762 and the Asterisk prompts
# are sets of their own, kept out of it so that figure stays comparable).
PACKAGED_SETS = ("pocketsphinx-librivox", "pocketsphinx-cards", "pocketsphinx-goforward",
                 "alsa-utils", "codec2")


def real_recordings():
    """(set, path, reference or None) for the Debian-packaged recordings; every set is
    one of PACKAGED_SETS."""
    out = []
    for tr, folder in ((PS / "librivox" / "transcription", "librivox"), (PS / "cards" / "cards.transcription", "cards")):
        if not tr.exists():
            continue
        for line in tr.read_text().splitlines():
            if "(" not in line:
                continue
            text, fid = line.rsplit("(", 1)
            text = text.replace("<s>", "").replace("</s>", "").strip()
            out.append((f"pocketsphinx-{folder}", PS / folder / (fid.strip(" )") + ".wav"), normalize(text)))
    if (PS / "goforward.raw").exists():
        out.append(("pocketsphinx-goforward", PS / "goforward.raw", "go forward ten meters"))
    for wav in sorted(ALSA.glob("*.wav")):
        if wav.stem != "Noise":
            out.append(("alsa-utils", wav, wav.stem.replace("_", " ").lower()))
    if CODEC2.exists():
        out.append(("codec2", CODEC2, None))  # no published transcript: output only
    return out


def prompt_text(text: str) -> str:
    """The spoken words of an Asterisk prompt's published text: its notes ("[ascending
    tones]", "(1 second of silence)", "<beep>", "dash [-]") removed, the keys * and #
    read as star and pound, then normalized; "" when nothing spoken is left."""
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>", " ", text)
    return normalize(text.replace("*", " star ").replace("#", " pound "))


def asterisk_prompts(sounds=ASTERISK, text=ASTERISK_TEXT):
    """(set, path, reference) for the Asterisk voice prompts: Allison Smith, one native
    US English speaker, 8 kHz telephone audio, CC BY-SA 3.0 (evaluation only, never
    training or tuning). The reference is the prompt's line in core-sounds-en.txt
    ("name: text", names with a folder such as digits/1); prompts with nothing spoken
    (tones, silence) or without a file are left out; [] without the packages."""
    sounds, text = pathlib.Path(sounds), pathlib.Path(text)
    if not (sounds.is_dir() and text.exists()):
        return []
    out = []
    for line in gzip.decompress(text.read_bytes()).decode("utf-8", "replace").splitlines():
        name, sep, said = line.partition(":")
        if not sep or line.startswith(";") or " " in name.strip():
            continue
        ref, wav = prompt_text(said), sounds / (name.strip() + ".wav")
        if ref and wav.exists():
            out.append(("asterisk-prompts", wav, ref))
    return sorted(out, key=lambda r: str(r[1]))


REAL_DIR = pathlib.Path("data/real")
SPEECHOCEAN_EVERY = 5  # every 5th utterance of speechocean762 test: 500 of 2,500, all 125 speakers


def speechocean_test(real_dir=REAL_DIR, every: int = SPEECHOCEAN_EVERY):
    """(set, path, reference) for speechocean762's `test` split as train/realdata.py
    imported it (every `every`-th utterance; its speakers never train); [] before the import."""
    m = pathlib.Path(real_dir) / "speechocean762" / "manifest.jsonl"
    if not m.exists():
        return []
    test = [r for r in read_jsonl(m) if r["split"] == "test"]
    return [("speechocean762-test", pathlib.Path(real_dir) / r["path"], r["text"]) for r in test[::every]]


def load_audio(path: pathlib.Path) -> np.ndarray:
    src = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1"] if path.suffix == ".raw" else []
    raw = subprocess.run(
        ["sox", *src, str(path), "-t", "raw", "-r", "16000", "-e", "float", "-b", "32", "-c", "1", "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32)
