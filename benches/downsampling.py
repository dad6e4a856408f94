"""Comparison 2: the WSM model with and without the input-sequence downsampler.

    cargo build --release && .venv/bin/python benches/downsampling.py --out /tmp/ds.json

Two models differ only in `--downsample` (1: the context layers run at the
conv front end's 40 ms; 2: a stride-2 convolution halves the sequence to
80 ms before them) and get the same short training: the same command, seed,
steps and data (the "probe" below). For each it reports MACs per second of
audio (from the exported file), the release binary's measured model-step
latency and real-time factor (`hark bench --model`, one thread, on the e2e
test files), training time, and WER/CER on the synthetic held-out voices and
the real recordings (train/evaluate.py).

Training runs only when a run directory lacks its final checkpoint
(`train/runs/ds1`, `train/runs/ds2`; resumable; here ds2 took 13 minutes on
2 quiet cores, ds1 33 minutes sharing them with other work). Both models are short probes, far from converged: their WER is a
like-for-like comparison, not the product's accuracy.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
PROBE = ["--steps", "2000", "--curriculum-steps", "1500", "--eval-every", "500", "--lr", "1e-3",
         "--warmup", "100", "--seed", "1234"]
BENCH_FILES = sorted(str(p) for p in (ROOT / "tests/data/e2e").glob("*.wav"))


def log_rows(run: pathlib.Path) -> list:
    path = run / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def train(ds: int, run: pathlib.Path, corpus: str):
    if any(r["msg"] == "done" for r in log_rows(run)):
        return
    subprocess.run([PY, "train/train.py", "--corpus", corpus, "--run", str(run), "--downsample", str(ds), *PROBE],
                   check=True, cwd=ROOT)


def measure(ds: int, run: pathlib.Path, corpus: str, max_synthetic: int, td: pathlib.Path) -> dict:
    rows = log_rows(run)
    done = next(r for r in rows if r["msg"] == "done")
    last_dev = [r for r in rows if r["msg"] == "dev"][-1]
    model = td / f"ds{ds}.onnx"
    # The final checkpoint: both models at the same step.
    subprocess.run([PY, "train/export.py", "--ckpt", str(run / "last.pt"), "--out", str(model),
                    "--name", f"hark-wsm-ds{ds}-probe"], check=True, cwd=ROOT)
    bench = json.loads(subprocess.run(
        [str(ROOT / "target/release/hark"), "bench", "--model", str(model), "--format", "json",
         *BENCH_FILES], check=True, capture_output=True, text=True, cwd=ROOT).stdout)
    ev = td / f"ds{ds}.json"
    subprocess.run([PY, "train/evaluate.py", "--model", str(model), "--corpus", corpus, "--max-synthetic",
                    str(max_synthetic), "--out", str(ev)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    sets = json.loads(ev.read_text())["sets"]
    return {
        "downsample": ds,
        "run": str(run),
        "steps": last_dev["step"],
        "train_minutes": done["minutes"],
        "dev_cer_at_end": last_dev["cer"],
        "macs_per_second": bench["model_macs_per_second"],
        "chunk_ms_model": bench["chunk_ms_model"],
        "real_time_factor": bench["real_time_factor"],
        "peak_rss_kib": bench["peak_rss_kib"],
        "machine": bench["machine"],
        "sets": {k: sets[k] for k in ("synthetic-test_clean", "real-all") if k in sets},
    }


def section(res: dict) -> list:
    """The Markdown of comparison 2 in benches/RESULTS.md."""
    by = {r["downsample"]: r for r in res["models"]}
    lines = [
        "## 2. Downsampling on/off",
        "",
        "The same WSM model with the context layers at 40 ms (`--downsample 1`) and at 80 ms behind a stride-2",
        f"downsampler (`--downsample 2`), each trained with the same short probe (`train/train.py {' '.join(PROBE)}`)",
        "and measured by `benches/downsampling.py`: MACs from the exported file, model-step latency and RTF from",
        "`hark bench --model` (release, one thread, the e2e test files), WER/CER from `train/evaluate.py`. Both",
        "are short probes, far from converged: the WER columns compare the two, they are not hark's accuracy.",
        "(Training wall-clock is in the JSON only: the two runs did not share the machine equally.)",
        "",
        "| context rate | MMAC per s of audio | model step p50 / p99 | RTF | training | dev CER | test_clean WER / CER | real WER / CER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ds in sorted(by):
        r = by[ds]
        s, real = r["sets"].get("synthetic-test_clean", {}), r["sets"].get("real-all", {})
        lines.append(
            f"| {40 * ds} ms (ds={ds}) | {r['macs_per_second'] / 1e6:.1f} | {r['chunk_ms_model']['p50']:.2f} / "
            f"{r['chunk_ms_model']['p99']:.2f} ms | {r['real_time_factor']:.4f} | {r['steps']} steps | {100 * r['dev_cer_at_end']:.1f}% | {100 * s.get('wer', float('nan')):.1f}% / "
            f"{100 * s.get('cer', float('nan')):.1f}% | {100 * real.get('wer', float('nan')):.1f}% / "
            f"{100 * real.get('cer', float('nan')):.1f}% |")
    if 1 in by and 2 in by:
        a, b = by[1], by[2]
        lines += [
            "",
            f"Downsampler on / off: MACs **{b['macs_per_second'] / a['macs_per_second']:.2f}x**, model step p50 "
            f"**{b['chunk_ms_model']['p50'] / a['chunk_ms_model']['p50']:.2f}x** (measured in one run).",
        ]
    lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--runs", default="train/runs", help="holds ds1/ and ds2/ (trained here when missing)")
    ap.add_argument("--max-synthetic", type=int, default=100)
    ap.add_argument("--out", required=True, help="results as JSON")
    a = ap.parse_args()
    runs = ROOT / a.runs
    models = []
    with tempfile.TemporaryDirectory() as td:
        for ds in (1, 2):
            run = runs / f"ds{ds}"
            train(ds, run, a.corpus)
            models.append(measure(ds, run, a.corpus, a.max_synthetic, pathlib.Path(td)))
    res = {"probe": PROBE, "models": models}
    pathlib.Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print("\n".join(section(res)))


if __name__ == "__main__":
    main()
