"""The finals pass beside faster-whisper tiny.en on the same audio (issue 36):
time from the endpoint to the final text by utterance length, real-time
factor, peak memory. Writes a JSON file and its section of benches/RESULTS.md.

    cargo build --release && .venv/bin/python benches/finals.py \\
        --out results/whisper-finals/bench-finals.json

The audio: real utterances of 1 to 10 s, evaluation-only recordings
(speechocean762 `test` once train/realdata.py has imported it, the Asterisk
voice prompts when asterisk-core-sounds-en-wav is installed): for each
target length 1, 2, ..., 10 s, the `--per-length` clips nearest to it.

- hark: one `hark bench --format json` over all the clips (default
  settings: WSM partials, Whisper tiny.en finals; one thread). Its
  `final_pass_ms` per file is the time from the endpoint's decision to the
  final text; RTF counts both passes; peak RSS is the bench process's.
- hark `--finals stream` (issue 37): the same, the decoder reading the
  converted streaming encoder's states, so its final pass is the last
  chunks and the decoder only.
- faster-whisper tiny.en (the same weights, CTranslate2 int8, greedy, one
  thread, in its own process): it starts when the utterance's audio has
  ended, so its time to the final is its whole transcription.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "train"))
from evalsets import asterisk_prompts, load_audio, speechocean_test  # noqa: E402

LENGTHS_S = range(1, 11)
BEGIN, END = "<!-- finals.py: begin -->", "<!-- finals.py: end -->"


def pick(per_length: int) -> list:
    """(target length, path, seconds) for the clips nearest each target length."""
    pool = []
    for _, path, _ in speechocean_test(every=1) + asterisk_prompts():
        with wave.open(str(path)) as w:
            pool.append((w.getnframes() / w.getframerate(), path))
    out, used = [], set()
    for target in LENGTHS_S:
        near = sorted((abs(s - target), str(p), s) for s, p in pool if str(p) not in used)[:per_length]
        for _, p, s in near:
            used.add(p)
            out.append((target, p, s))
    return out


def write_wav(path: pathlib.Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def percentiles(v: list) -> dict:
    """Nearest-rank p50 and p95, as hark bench computes them."""
    v = sorted(v)
    at = lambda p: v[min(len(v), max(1, int(np.ceil(p / 100 * len(v))))) - 1]  # noqa: E731
    return {"n": len(v), "p50": round(at(50), 1), "p95": round(at(95), 1)}


def faster_whisper_child(files: list) -> dict:
    """Run in its own process: faster-whisper tiny.en over `files`."""
    from peers import whisper_engine, vmhwm_mb

    t = time.perf_counter()
    run = whisper_engine("whisper-tiny.en")
    load_s = time.perf_counter() - t
    rows = []
    for f in files:
        samples = load_audio(pathlib.Path(f))
        text, compute, _ = run(samples)
        rows.append({"file": f, "audio_s": len(samples) / 16000, "ms": 1000 * compute, "text": text.strip()})
    return {"load_s": load_s, "vmhwm_mb": vmhwm_mb(), "files": rows}


def by_length(clips: list, ms_of: dict) -> dict:
    rows = {}
    for target, _, _ in clips:
        rows.setdefault(target, [])
    for (target, _, _), ms in zip(clips, ms_of):
        rows[target].extend(ms)
    return {str(t): percentiles(v) for t, v in rows.items() if v}


def section(r: dict) -> str:
    h, fw = r["hark"], r["faster_whisper"]
    st = r.get("hark_stream")
    lines = [
        BEGIN,
        "## The finals pass beside faster-whisper tiny.en (issue 36)",
        "",
        f"Written by `benches/finals.py` on {r['date']}, {h['machine']['cpu']} ({h['machine']['cores']} cores), "
        f"one thread each, on {r['clips']} real utterances ({r['per_length']} per target length; speechocean762 "
        "`test` and the Asterisk prompts, evaluation only). hark: default settings (WSM partials, Whisper "
        "tiny.en finals, int8 weights, integer matrix products in tract); its time is from the endpoint's "
        "decision to the final text (`final_pass_ms` of `hark bench --format json`). faster-whisper: the "
        "same Whisper tiny.en weights (CTranslate2 int8, greedy, no VAD), which can only start once the "
        "utterance has ended, so its time is the whole transcription.",
        "",
        "| utterance length | hark final pass p50 / p95 | hark `--finals stream` p50 / p95 "
        "| faster-whisper tiny.en p50 / p95 |",
        "| --- | --- | --- | --- |",
    ]
    cell = lambda p: f"{p['p50']:.0f} / {p['p95']:.0f} ms" if p else "-"  # noqa: E731
    for t in map(str, LENGTHS_S):
        a, b = h["final_pass_by_length"].get(t), fw["by_length"].get(t)
        c = st["final_pass_by_length"].get(t) if st else None
        lines.append(f"| {t} s | {cell(a)} | {cell(c)} | {cell(b)} |")
    sv = lambda k, f: f(st[k]) if st else "not run"  # noqa: E731
    st5 = f"{st['final_pass_by_length']['5']['p95']:.0f} ms" if st else "not run"
    lines += [
        "",
        "| | hark (both passes) | hark `--finals stream` | faster-whisper tiny.en | target (issue 36 / 37) |",
        "| --- | --- | --- | --- | --- |",
        f"| real-time factor, one thread | {h['real_time_factor']:.3f} | "
        f"{sv('real_time_factor', lambda v: f'{v:.3f}')} | {fw['real_time_factor']:.3f} | under 0.1 / 0.08 |",
        f"| peak resident memory | {h['peak_rss_mib']:.0f} MiB | {sv('peak_rss_mib', lambda v: f'{v:.0f} MiB')} | "
        f"{fw['vmhwm_mib']:.0f} MiB (Python process) | under 160 MiB |",
        f"| binary / model files | {h['binary_mb']:.1f} MB binary, models embedded | (the same binary) | "
        f"{fw['model_mb']:.1f} MB model.bin | |",
        f"| p95 for 5 s utterances | {h['final_pass_by_length']['5']['p95']:.0f} ms | "
        f"{st5} | "
        f"{fw['by_length']['5']['p95']:.0f} ms | under 400 / 100 ms |",
        "",
        f"The figures: `{r['out']}`.",
        END,
    ]
    return "\n".join(lines)


def update_results(text: str, path: pathlib.Path) -> None:
    old = path.read_text() if path.exists() else "# hark benchmark results\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hark", default=str(ROOT / "target/release/hark"))
    ap.add_argument("--per-length", type=int, default=8)
    ap.add_argument("--out", default="results/whisper-finals/bench-finals.json")
    ap.add_argument("--results", default=str(ROOT / "benches/RESULTS.md"))
    ap.add_argument("--no-stream", action="store_true", help="not hark --finals stream")
    ap.add_argument("--faster-whisper-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.faster_whisper_child:
        files = json.loads(pathlib.Path(a.faster_whisper_child).read_text())
        print(json.dumps(faster_whisper_child(files)))
        return
    clips = pick(a.per_length)
    if not clips:
        sys.exit("no audio: import speechocean762 (train/realdata.py) or install asterisk-core-sounds-en-wav")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, (target, path, _) in enumerate(clips):
            f = pathlib.Path(tmp) / f"{i:03d}-{target}s.wav"
            write_wav(f, load_audio(pathlib.Path(path)))
            files.append(str(f))
        bench = json.loads(subprocess.run([a.hark, "bench", "--format", "json", *files], check=True,
                                          capture_output=True, text=True).stdout)
        stream = None
        if not a.no_stream:
            stream = json.loads(subprocess.run([a.hark, "bench", "--finals", "stream", "--format", "json", *files],
                                               check=True, capture_output=True, text=True).stdout)
        listing = pathlib.Path(tmp) / "files.json"
        listing.write_text(json.dumps(files))
        fw = json.loads(subprocess.run([sys.executable, __file__, "--faster-whisper-child", str(listing)],
                                       check=True, capture_output=True, text=True, cwd=ROOT).stdout)
    hark_ms = [f["final_pass_ms"] for f in bench["files"]]
    fw_ms = [[f["ms"]] for f in fw["files"]]
    from pseudolabel import teacher_dir

    model_bin = teacher_dir("tiny.en", ROOT / "data/teachers") / "model.bin"
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "out": a.out,
        "clips": len(clips),
        "per_length": a.per_length,
        "audio": [{"target_s": t, "source": str(p), "seconds": round(s, 2)} for t, p, s in clips],
        "hark": {
            "machine": bench["machine"],
            "final_pass_by_length": by_length(clips, hark_ms),
            "finals_missing": sum(1 for m in hark_ms if not m),
            "real_time_factor": bench["real_time_factor"],
            "peak_rss_mib": bench["peak_rss_kib"] / 1024,
            "binary_mb": bench["binary_bytes"] / 1e6,
            "bench": {k: v for k, v in bench.items() if k != "files"},
        },
        "hark_stream": stream and {
            "final_pass_by_length": by_length(clips, [f["final_pass_ms"] for f in stream["files"]]),
            "finals_missing": sum(1 for f in stream["files"] if not f["final_pass_ms"]),
            "real_time_factor": stream["real_time_factor"],
            "peak_rss_mib": stream["peak_rss_kib"] / 1024,
            "bench": {k: v for k, v in stream.items() if k != "files"},
        },
        "faster_whisper": {
            "by_length": by_length(clips, fw_ms),
            "real_time_factor": sum(f["ms"] for f in fw["files"]) / 1000 / sum(f["audio_s"] for f in fw["files"]),
            "vmhwm_mib": fw["vmhwm_mb"],
            "load_s": fw["load_s"],
            "model_mb": model_bin.stat().st_size / 1e6,
        },
    }
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    text = section(result)
    update_results(text, pathlib.Path(a.results))
    print(text)


if __name__ == "__main__":
    main()
