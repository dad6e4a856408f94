"""Bring real recorded speech in for training: one source at a time, from a
local clone (or unpacked package) of where it is published, converted to
16 kHz mono 16-bit WAV with a manifest of text, speaker, source and licence.
Nothing of it is committed to the project; this script rebuilds it.

    python train/realdata.py speechocean762 PATH/speechocean762 --out data/real
    python train/realdata.py fsdd PATH/free-spoken-digit-dataset --out data/real
    python train/realdata.py ljspeech PATH/lj_speech_dataset_part_1 --out data/real
    python train/realdata.py wakeword PATH/wake-word-benchmark --out data/real
    python train/realdata.py s2i PATH/speech-to-intent-benchmark --out data/real
    python train/realdata.py queen PATH/queen.1c --out data/real
    python train/realdata.py sky PATH/beneath-a-steel-sky --out data/real

PATH is a `git clone` of the GitHub repository (a folder holding the
folders named in SOURCES), or for the two Debian games the game data file
(`dpkg-deb -x flight-of-the-amazon-queen_*.deb DIR`, then
DIR/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c; the sky folder
holds sky.dnr and sky.dsk).

Each source writes <out>/<source>/manifest.jsonl, one clip per line:
  path      the WAV, relative to <out>
  text      normalized transcript (train/textnorm.py), or null where the
            source has none (train/pseudolabel.py fills `teacher` then)
  label     where the text comes from: "human" (a transcript), "name" (the
            folder or file name says what was said), "script" (game script,
            to be matched), "slots" (only intent slots), "none"
  speaker, source, licence, seconds, split ("train", "dev" or "test")
  band      "wide", "narrow" (the recording has nothing above ~5.5 kHz)
            or "limited:<Hz>": a wide-band training clip low-passed at
            <Hz>, drawn per clip from the seed, so that bandwidth does not
            tell real narrow-band clips from the rest
Splits: speechocean762 keeps its own train/test (125 speakers each), with
12 train speakers held out as dev; the wake-word and speech-to-intent audio
carry no speaker ids, so 20% of their clips (by a hash of the file name)
are held out as test for the command benchmark; FSDD holds out speaker
"theo" (test); LJ Speech and the games are train only.
Resumable: a converted WAV that exists is not converted again.
"""

import argparse
import hashlib
import json
import pathlib
import random
import re
import struct
import subprocess
import sys
import tempfile
from multiprocessing import Pool

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evalsets import write_jsonl  # noqa: E402
from textnorm import normalize  # noqa: E402

SAMPLE_RATE_HZ = 16000
LIMITED_SHARE = 0.3  # share of wide-band training clips low-passed at import
LIMIT_HZ = (4000, 5500)

SOURCES = {
    "speechocean762": ("GitHub jimbozhang/speechocean762 (WAVE, train, test)",
                       "free for commercial and non-commercial use (its README); Apache-2.0 (the authors' dataset card)"),
    "fsdd": ("GitHub Jakobovski/free-spoken-digit-dataset (recordings)", "CC BY-SA 4.0"),
    "ljspeech": ("GitHub PrernaSocity/lj_speech_dataset_part_1 (LJSpeech-1.1: LJ001-0001 to LJ002-0200)",
                 "public domain"),
    "wakeword": ("GitHub Picovoice/wake-word-benchmark (audio)", "Apache-2.0"),
    "s2i": ("GitHub Picovoice/speech-to-intent-benchmark (data/speech/clean, data/label)", "Apache-2.0"),
    "queen": ("Debian flight-of-the-amazon-queen 1.0.0-9 (queen.1c)",
              "freeware: copying, redistribution and modification allowed, selling forbidden"),
    "sky": ("Debian beneath-a-steel-sky 0.0372-8 (sky.dnr, sky.dsk)",
            "freeware: copying, redistribution and modification allowed, selling forbidden"),
}


def unit(name: str) -> float:
    """A stable number in [0, 1) from a name (for splits and band-limiting)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 2**32


def band_for(clip_id: str, split: str, narrow: bool, seed: int) -> str:
    if narrow:
        return "narrow"
    if split != "train":
        return "wide"
    rng = random.Random(f"{seed}:{clip_id}")
    if rng.random() < LIMITED_SHARE:
        return f"limited:{rng.randrange(LIMIT_HZ[0], LIMIT_HZ[1] + 1, 100)}"
    return "wide"


def convert(job) -> float:
    """sox the input (a path, or raw bytes with their sox type args) to 16 kHz
    mono s16 WAV; return the duration in seconds."""
    src, src_args, dst, band = job
    dst = pathlib.Path(dst)
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.wav")
        effects = ["remix", "-", "rate", "-v", str(SAMPLE_RATE_HZ)]
        if band.startswith("limited:"):
            effects += ["sinc", f"-{band.split(':')[1]}"]
        cmd = ["sox", "-V1", *src_args, str(src), "-b", "16", "-e", "signed", str(tmp), *effects]
        subprocess.run(cmd, check=True, capture_output=True)
        tmp.replace(dst)
    out = subprocess.run(["soxi", "-D", str(dst)], check=True, capture_output=True, text=True).stdout
    return float(out)


def write_source(out: pathlib.Path, source: str, clips: list, jobs: int, seed: int):
    """clips: dicts with id, src, src_args, text, label, speaker, split, narrow (and extras)."""
    where, licence = SOURCES[source]
    todo = []
    for c in clips:
        c["band"] = band_for(c["id"], c["split"], c.pop("narrow", False), seed)
        c["path"] = f"{source}/wav/{c['id']}.wav"
        todo.append((c.pop("src"), c.pop("src_args", []), out / c["path"], c["band"]))
    with Pool(jobs) as pool:
        durations = pool.map(convert, todo, chunksize=16)
    rows = []
    for c, d in zip(clips, durations):
        c.pop("id")
        rows.append({"path": c.pop("path"), "text": c.pop("text"), "label": c.pop("label"),
                     "speaker": c.pop("speaker"), "source": source, "licence": licence,
                     "seconds": round(d, 3), "split": c.pop("split"), "band": c.pop("band"), **c})
    (out / source).mkdir(parents=True, exist_ok=True)
    write_jsonl(out / source / "manifest.jsonl", rows)
    hours = {s: round(sum(r["seconds"] for r in rows if r["split"] == s) / 3600, 3) for s in ("train", "dev", "test")}
    print(json.dumps({"source": source, "from": where, "clips": len(rows), "hours": hours}))


# ---------------------------------------------------------------- sources ----
def speechocean762(root: pathlib.Path):
    clips = []
    dev_speakers = None
    for part in ("train", "test"):
        text = dict(line.split(maxsplit=1) for line in (root / part / "text").read_text().splitlines() if line.strip())
        wav = dict(line.split(maxsplit=1) for line in (root / part / "wav.scp").read_text().splitlines() if line.strip())
        spk = dict(line.split() for line in (root / part / "utt2spk").read_text().splitlines() if line.strip())
        if part == "train":
            speakers = sorted(set(spk.values()))
            dev_speakers = set(random.Random(762).sample(speakers, 12))
        for utt in sorted(text):
            split = part if part == "test" else ("dev" if spk[utt] in dev_speakers else "train")
            clips.append({"id": utt, "src": root / wav[utt].strip(), "text": normalize(text[utt]), "label": "human",
                          "speaker": f"speechocean762-{spk[utt]}", "split": split})
    return clips


def fsdd(root: pathlib.Path):
    clips = []
    for f in sorted((root / "recordings").glob("*.wav")):
        digit, speaker, _ = f.stem.split("_")
        clips.append({"id": f.stem, "src": f, "text": normalize(digit), "label": "name", "speaker": f"fsdd-{speaker}",
                      "split": "test" if speaker == "theo" else "train", "narrow": True})
    return clips


def ljspeech(root: pathlib.Path):
    base = root / "LJSpeech-1.1"
    clips = []
    for line in (base / "metadata.csv").read_text().splitlines():
        parts = line.split("|")
        f = base / "wavs" / f"{parts[0]}.wav"
        if len(parts) == 3 and f.exists():
            clips.append({"id": parts[0], "src": f, "text": normalize(parts[2]), "label": "human",
                          "speaker": "ljspeech-lj", "split": "train"})
    return clips


def wakeword(root: pathlib.Path, per_phrase: int = 150):
    """Six phrases many times over: small doses (per_phrase clips each)."""
    clips = []
    for folder in sorted(p for p in (root / "audio").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.flac")) + sorted(folder.glob("*.wav"))
        for f in files:
            cid = f"{folder.name.replace(' ', '_')}-{f.stem}"
            split = "test" if unit(cid) < 0.2 else "train"
            clips.append({"id": cid, "src": f, "text": normalize(folder.name), "label": "name",
                          "speaker": "wakeword-unknown", "split": split})
    rng = random.Random(2293)
    train = [c for c in clips if c["split"] == "train"]
    by_phrase = {}
    for c in train:
        by_phrase.setdefault(c["text"], []).append(c)
    keep = {id(c) for group in by_phrase.values() for c in rng.sample(group, min(per_phrase, len(group)))}
    return [c for c in clips if c["split"] == "test" or id(c) in keep]


def s2i(root: pathlib.Path):
    labels = json.loads((root / "data" / "label" / "label.json").read_text())
    clips = []
    for f in sorted((root / "data" / "speech" / "clean").glob("*.wav")):
        lab = labels.get(f.name)
        if lab is None:
            continue
        slots = {k: normalize(v) for k, v in lab.get("slots", {}).items()}
        clips.append({"id": f.stem, "src": f, "text": None, "label": "slots", "speaker": "s2i-unknown",
                      "split": "test" if unit(f.stem) < 0.2 else "train", "intent": lab.get("intent"), "slots": slots})
    return clips


def queen_entries(path: pathlib.Path):
    """(name, offset, size) of each entry of a queen.1c resource table."""
    data = path.read_bytes()
    if data[:4] != b"QTBL":
        raise SystemExit(f"{path}: not a queen.1c resource file (no QTBL magic)")
    count = struct.unpack(">H", data[13:15])[0]
    entries = []
    for i in range(count):
        e = data[15 + 21 * i: 15 + 21 * (i + 1)]
        name = e[:12].rstrip(b"\0").decode("latin-1")
        offset, size = struct.unpack(">II", e[13:21])
        entries.append((name, offset, size))
    return data, entries


def sox_formats() -> set:
    """The audio file formats this machine's sox reads and writes."""
    out = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("AUDIO FILE FORMATS:")), "")
    return set(line.split(":", 1)[-1].split())


def queen(path: pathlib.Path, tmp: pathlib.Path):
    data, entries = queen_entries(path)
    if "mp3" not in sox_formats():
        raise SystemExit("queen: the game's speech is MP3, and this sox cannot read MP3: "
                         "install Debian's libsox-fmt-mp3 (apt-get install libsox-fmt-mp3)")
    clips = []
    for name, offset, size in entries:
        if not name.endswith(".SB"):
            continue
        mp3 = tmp / (name.replace(".SB", ".mp3"))
        mp3.write_bytes(data[offset:offset + size])
        clips.append({"id": name[:-3], "src": mp3, "text": None, "label": "none",
                      "speaker": "queen-" + (re.sub(r"[0-9]", "", name[:-3]) or "x"), "split": "train",
                      "narrow": True})
    return clips


def sky(root: pathlib.Path, tmp: pathlib.Path):
    dnr = (root / "sky.dnr").read_bytes()
    dsk = (root / "sky.dsk").read_bytes()
    count = struct.unpack("<I", dnr[:4])[0]
    clips = []
    for i in range(count):
        e = dnr[4 + 8 * i: 12 + 8 * i]
        num = struct.unpack("<H", e[:2])[0]
        off = int.from_bytes(e[2:5], "little")
        flags = int.from_bytes(e[5:8], "little")
        if not 50000 <= num <= 55999 or flags & (1 << 23):
            continue
        if off & (1 << 23):
            off = (off & 0x7FFFFF) << 4
        size = flags & 0x3FFFFF
        pcm = dsk[off + 22: off + size]
        if len(pcm) < 11025 // 4:  # under a quarter second: no words
            continue
        raw = tmp / f"{num}.u8"
        raw.write_bytes(pcm)
        clips.append({"id": str(num), "src": raw, "src_args": ["-t", "raw", "-r", "11025", "-e", "unsigned",
                                                                "-b", "8", "-c", "1"],
                      "text": None, "label": "none", "speaker": "sky-unknown", "split": "train", "narrow": True})
    return clips


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", choices=sorted(SOURCES))
    ap.add_argument("path", help="the clone / unpacked package (see above)")
    ap.add_argument("--out", default="data/real")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--per-phrase", type=int, default=150,
                    help="wakeword: training clips kept per phrase (of the 80%% not held out)")
    a = ap.parse_args()
    out, root = pathlib.Path(a.out), pathlib.Path(a.path)
    if not root.exists():
        raise SystemExit(f"{root}: not found")
    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        clips = {"speechocean762": lambda: speechocean762(root), "fsdd": lambda: fsdd(root),
                 "ljspeech": lambda: ljspeech(root), "wakeword": lambda: wakeword(root, a.per_phrase), "s2i": lambda: s2i(root),
                 "queen": lambda: queen(root, td), "sky": lambda: sky(root, td)}[a.source]()
        write_source(out, a.source, clips, a.jobs, a.seed)


if __name__ == "__main__":
    main()
