"""Linear vs quadratic: the WSM model and the same-size self-attention
variant streamed over 10 s, 60 s and 600 s: per-chunk step latency and
memory over stream time.

    .venv/bin/python benches/linear_vs_quadratic.py [--seconds 10 60 600] [--wsm-model MODEL.onnx]

WSM is the contract model the runtime bundles (the file src/model.rs
embeds), or --wsm-model. Self-attention is
HarkModel(arch="mhsa") of the same size from train/model.py, random weights
(seed 0: a step's cost does not depend on the weight values), exported by
train/experiments/mhsa_stream.py with a key/value cache per layer that grows by one row
per 80 ms context frame. Both run in ONNX Runtime with one thread
(intra-op 1, inter-op 1, sequential), each model and stream in its own
process so that its resident set is its own, the two taking steps in
turn so that a busy machine slows both alike, on real log-mel features
(train/fbank.py on the bundled test audio tests/data/e2e/*.wav, looped),
chunk by chunk at the WSM model's chunk size, padded as
docs/model-contract.md says. Recorded per step: the time of session.run,
the process's VmRSS (/proc/self/status) and the bytes of the state tensors
carried to the next step (exact). A step's time is the CPU time of its
thread (with one intra-op thread ONNX Runtime computes on the calling
thread), immune to the scheduler on a shared machine; wall-clock is kept
too. Streams run --rounds times (default 3, 3, 1: the 600 s stream once),
and each step keeps the median over rounds.

Writes --out (JSON: per-stream summaries and per-10 s bins), --plot (PNG)
and prints the section of benches/RESULTS.md that compare.py writes
(`markdown_section`); --patch-results replaces that section in a RESULTS.md,
--from-json redraws and rewrites from an earlier measurement.
"""

import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
EDGE_S = 5.0  # "start" and "end" of a stream: its first and last 5 s of steps
BIN_S = 10.0  # latency/memory series: one point per 10 s of audio
MHSA_SEED = 0
SECTION_TITLE = "## 1. Linear vs quadratic (WSM vs self-attention, 10 / 60 / 600 s streams)"


# ---- worker: one model, one stream, in its own process ----------------------
def vmrss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def worker(model_path: str, feats_path: str, seconds: float) -> dict:
    """Stream the first `seconds` of the features through the model, one
    step per byte read from stdin, answering each with a byte on stdout (the
    parent runs two models in lockstep). Only numpy and onnxruntime are
    loaded here, so both models' processes carry the same baggage."""
    import onnxruntime as ort

    rss_start = vmrss_kib()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    chunk = int(meta["hark.chunk_frames"])
    pad_value = float(meta["hark.pad_frame_value"])
    if any(s["init"] != 0.0 for s in json.loads(meta["hark.states"])):
        raise SystemExit("this benchmark starts every state at 0")
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    state_names = [n for n in in_names if n != "feats"]
    # Every state input starts at zeros; a dynamic (named) axis starts empty.
    init = {i.name: np.zeros([d if isinstance(d, int) else 0 for d in i.shape], np.float32)
            for i in sess.get_inputs() if i.name != "feats"}
    # The features are read from the file chunk by chunk into one buffer, so
    # that the process holds no copy of the stream (its VmRSS is the model's).
    frames = int(round(seconds * 100))
    f = open(feats_path, "rb")
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype != np.float32 or len(shape) != 2 or shape[0] < frames:
        raise SystemExit(f"{feats_path}: expected at least {frames} float32 frames")
    bins = shape[1]
    buf = np.full((1, chunk, bins), pad_value, np.float32)
    sess.run(None, {"feats": buf, **init})  # warm-up on padding frames, not recorded
    rss_loaded = vmrss_kib()
    state = init
    cpu_ms, wall_ms, rss, state_bytes = [], [], [], []
    os.write(1, b"r")  # ready
    for i in range(0, frames, chunk):
        if os.read(0, 1) != b"s":
            raise SystemExit("worker: the parent went away")
        rows = min(chunk, frames - i)
        buf[0, :rows] = np.fromfile(f, np.float32, rows * bins).reshape(rows, bins)
        buf[0, rows:] = pad_value  # the last chunk is padded as the contract says
        inputs = {"feats": buf, **state}
        c, t = time.thread_time(), time.perf_counter()
        out = sess.run(None, inputs)
        wall_ms.append(1000 * (time.perf_counter() - t))
        cpu_ms.append(1000 * (time.thread_time() - c))
        res = dict(zip(out_names, out))
        state = {n: res[n + "_out"] for n in state_names}
        state_bytes.append(int(sum(v.nbytes for v in state.values())))
        rss.append(vmrss_kib())
        os.write(1, b"d")
    f.close()
    return {"model": model_path, "seconds": seconds, "chunk_frames": chunk, "chunk_ms": 10.0 * chunk,
            "rss_start_kib": rss_start, "rss_loaded_kib": rss_loaded, "step_cpu_ms": cpu_ms, "step_wall_ms": wall_ms,
            "rss_kib": rss,
            "state_bytes": state_bytes, "onnxruntime": ort.__version__}


# ---- parent: prepare, run the workers, summarize --------------------------
def machine() -> dict:
    cpu = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model", "Hardware")) and ":" in line:
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine()}


def stream_features(seconds: float, out: pathlib.Path):
    """Log-mel features of the bundled test audio looped to `seconds`."""
    sys.path.insert(0, str(ROOT / "train"))
    import fbank as FB
    from evalsets import load_audio

    wavs = sorted((ROOT / "tests" / "data" / "e2e").glob("*.wav"))
    one = np.concatenate([load_audio(w) for w in wavs])
    need = FB.FRAME_LENGTH_SAMPLES + int(round(seconds * 100)) * FB.FRAME_SHIFT_SAMPLES
    wave = np.tile(one, -(-need // one.size))[:need]
    np.save(out, FB.fbank(wave).numpy())
    return [str(w.relative_to(ROOT)) for w in wavs], one.size / FB.SAMPLE_RATE_HZ


def export_mhsa(chunk_frames: int, out: pathlib.Path) -> dict:
    sys.path[:0] = [str(ROOT / "train"), str(ROOT / "train" / "experiments")]
    import torch
    from mhsa_stream import export_mhsa_stream
    from model import HarkModel, ModelConfig, count_params

    torch.manual_seed(MHSA_SEED)
    cfg = ModelConfig(arch="mhsa")
    model = HarkModel(cfg).eval()
    export_mhsa_stream(model, out, chunk_frames=chunk_frames, name="hark-mhsa-stream-random",
                       training=f"untrained: random weights, seed {MHSA_SEED}")
    return {"params": count_params(model), "d_model": cfg.d_model, "layers": cfg.num_layers,
            "heads": cfg.heads, "ff_mult": cfg.ff_mult, "downsample": cfg.downsample}


def bundled_model() -> pathlib.Path:
    """The model file the runtime embeds (src/model.rs, include_bytes!)."""
    src = (ROOT / "src" / "model.rs").read_text()
    m = re.search(r'BUNDLED_MODEL: &\[u8\] = include_bytes!\("\.\./(models/[^"]+\.onnx)"\)', src)
    if not m:
        raise SystemExit("src/model.rs: no BUNDLED_MODEL include_bytes! line; pass --wsm-model")
    return ROOT / m.group(1)


def onnx_meta(path) -> dict:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def lockstep(models: dict, feats_path, seconds: float, steps: int, td: pathlib.Path) -> dict:
    """One round: each model in its own worker process, the two taking
    steps in turn (WSM's step i, attention's step i, ...), so that a busy
    machine slows both alike. Returns {name: the worker's record}."""
    procs, outs = {}, {}
    for name, path in models.items():
        outs[name] = td / f"{name}-{seconds}.json"
        procs[name] = subprocess.Popen(
            [PY, __file__, "--worker", path, "--feats", str(feats_path), "--worker-seconds", str(seconds),
             "--out", str(outs[name])],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        for p in procs.values():
            if p.stdout.read(1) != b"r":
                raise SystemExit(f"a worker failed to start: {p.args}")
        for _ in range(steps):
            for p in procs.values():
                p.stdin.write(b"s")
                p.stdin.flush()
                if p.stdout.read(1) != b"d":
                    raise SystemExit(f"a worker failed: {p.args}")
        for p in procs.values():
            p.stdin.close()
            if p.wait() != 0:
                raise SystemExit(f"a worker failed: {p.args}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    return {name: json.loads(outs[name].read_text()) for name in models}


def merge_rounds(runs: list) -> dict:
    """Per step: the median over rounds of the step times; memory from the
    round with the largest final VmRSS (state bytes are the same in every round)."""
    out = dict(max(runs, key=lambda r: r["rss_kib"][-1]))
    for key in ("step_cpu_ms", "step_wall_ms"):
        out[key] = [statistics.median(xs) for xs in zip(*(r[key] for r in runs))]
    return out


def p50(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(run: dict) -> dict:
    ms, wall, chunk_s = run["step_cpu_ms"], run["step_wall_ms"], run["chunk_ms"] / 1000
    edge = max(1, int(round(EDGE_S / chunk_s)))
    # One bin per BIN_S of audio, by the stream time at each step's start
    # (the last, padded step belongs to the last bin); the latency point sits
    # at the bin's middle, the memory point at its end (after its last step).
    seconds = float(run["seconds"])
    bins = []
    for b in range(int(np.ceil(seconds / BIN_S))):
        idx = [i for i in range(len(ms)) if b * BIN_S <= i * chunk_s < (b + 1) * BIN_S]
        end = min((b + 1) * BIN_S, seconds)
        bins.append({"t_mid_s": round((b * BIN_S + end) / 2, 3), "t_end_s": round(end, 3),
                     "step_cpu_ms_p50": round(p50([ms[i] for i in idx]), 4),
                     "step_wall_ms_p50": round(p50([wall[i] for i in idx]), 4),
                     "state_bytes": run["state_bytes"][idx[-1]], "rss_kib": run["rss_kib"][idx[-1]]})
    return {
        "seconds": run["seconds"], "steps": len(ms),
        "step_cpu_ms_p50_start": round(p50(ms[:edge]), 4), "step_cpu_ms_p50_end": round(p50(ms[-edge:]), 4),
        "step_wall_ms_p50_start": round(p50(wall[:edge]), 4), "step_wall_ms_p50_end": round(p50(wall[-edge:]), 4),
        "state_bytes_start": run["state_bytes"][0], "state_bytes_end": run["state_bytes"][-1],
        "state_bytes_max": max(run["state_bytes"]),
        "rss_kib_loaded": run["rss_loaded_kib"], "rss_kib_first": run["rss_kib"][0],
        "rss_kib_end": run["rss_kib"][-1], "rss_kib_max": max(run["rss_kib"]),
        "bins": bins,
    }


def measure(a) -> dict:
    wsm_path = pathlib.Path(a.wsm_model).resolve() if a.wsm_model else bundled_model()
    is_bundled = wsm_path == bundled_model().resolve()
    wsm_meta = onnx_meta(wsm_path)
    chunk = int(wsm_meta["hark.chunk_frames"])
    load_start, nice = os.getloadavg(), os.nice(0)
    if len(a.rounds) == 1:
        a.rounds = a.rounds * len(a.seconds)
    if len(a.rounds) != len(a.seconds):
        raise SystemExit("--rounds needs one count, or one per --seconds value")
    n_rounds = dict(zip(a.seconds, a.rounds))
    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        mhsa_path = td / "hark-mhsa-stream.onnx"
        mhsa_cfg = export_mhsa(chunk, mhsa_path)
        feats_path = td / "feats.npy"
        wavs, loop_s = stream_features(max(a.seconds), feats_path)
        models = {"wsm": str(wsm_path), "mhsa": str(mhsa_path)}
        runs = {name: {} for name in models}
        for seconds in a.seconds:
            steps = -(-int(round(seconds * 100)) // chunk)
            rounds = [lockstep(models, feats_path, seconds, steps, td) for _ in range(n_rounds[seconds])]
            for name in models:
                runs[name][str(seconds)] = summarize(merge_rounds([r[name] for r in rounds]))
                s = runs[name][str(seconds)]
                print(f"{name:4s} {seconds:5g} s: step p50 {s['step_cpu_ms_p50_start']:.3f} -> {s['step_cpu_ms_p50_end']:.3f} ms, "
                      f"state {s['state_bytes_end']} B, VmRSS {s['rss_kib_end'] / 1024:.0f} MB", flush=True)
        ort_version = rounds[0]["wsm"]["onnxruntime"]
    long = str(max(a.seconds))
    w, m = runs["wsm"][long], runs["mhsa"][long]
    return {
        "date": time.strftime("%Y-%m-%d"), "machine": machine(), "onnxruntime": ort_version,
        "rounds": {str(k): v for k, v in n_rounds.items()},
        "threads": "intra-op 1, inter-op 1, sequential", "nice": nice,
        "loadavg_1min": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
        "chunk_frames": chunk, "chunk_ms": 10.0 * chunk,
        "edge_s": EDGE_S, "bin_s": BIN_S, "audio": {"files": wavs, "loop_s": round(loop_s, 3)},
        "wsm": {"model": str(wsm_path.relative_to(ROOT)) if wsm_path.is_relative_to(ROOT) else str(wsm_path),
                "bundled": is_bundled, "params": int(wsm_meta["hark.num_params"]), "training": wsm_meta.get("hark.training", "")},
        "mhsa": {"model": "train/experiments/mhsa_stream.py export of HarkModel(arch='mhsa')",
                 "weights": f"random, seed {MHSA_SEED}", **mhsa_cfg},
        "runs": runs,
        "ratio_mhsa_over_wsm": {
            "seconds": max(a.seconds),
            "step_cpu_ms_p50_end": round(m["step_cpu_ms_p50_end"] / w["step_cpu_ms_p50_end"], 2),
            "step_wall_ms_p50_end": round(m["step_wall_ms_p50_end"] / w["step_wall_ms_p50_end"], 2),
            "state_bytes_end": round(m["state_bytes_end"] / w["state_bytes_end"], 1),
            "rss_kib_end": round(m["rss_kib_end"] / w["rss_kib_end"], 2),
        },
    }


# ---- report --------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def markdown_section(res: dict, plot: str = "linear_vs_quadratic.png") -> list:
    """The lines of benches/RESULTS.md section 1 (compare.py and a one-off
    regeneration call this, so both write the same text)."""
    m, r = res["machine"], res["ratio_mhsa_over_wsm"]
    seconds = sorted(res["runs"]["wsm"], key=float)
    long = seconds[-1]
    w, a = res["runs"]["wsm"][long], res["runs"]["mhsa"][long]
    wsm_flat = w["state_bytes_end"] == w["state_bytes_max"] == w["state_bytes_start"]
    growth_b_per_s = (a["state_bytes_end"] - a["state_bytes_start"]) / ((a["steps"] - 1) * res["chunk_ms"] / 1000)
    lines = [
        SECTION_TITLE,
        "",
        f"Measured by `.venv/bin/python benches/linear_vs_quadratic.py` on {res['date']}, {m['cpu']} "
        f"({m['cores']} cores, {m['arch']}); ONNX Runtime {res['onnxruntime']}, one thread ({res['threads']}), "
        f"each model and stream in its own process, the two stepping in turn, {res['chunk_ms']:.0f} ms chunks of real log-mel features "
        f"(the bundled test audio `tests/data/e2e/*.wav`, {res['audio']['loop_s']:.1f} s, looped).",
        f"WSM: `{res['wsm']['model']}` ("
        + (f"the model hark bundled on {res['date']}, " if res["wsm"].get("bundled") else "")
        + f"{res['wsm']['params'] / 1e6:.2f} M parameters). "
        f"Self-attention: `HarkModel(arch=\"mhsa\")` of the same size (d_model {res['mhsa']['d_model']}, "
        f"{res['mhsa']['layers']} layers, {res['mhsa']['heads']} heads, ff_mult {res['mhsa']['ff_mult']}, the same conv "
        f"front end and downsampler; {res['mhsa']['params'] / 1e6:.2f} M parameters) with **random weights** "
        "(a step's cost does not depend on their values), streamed with a growing key/value cache per layer "
        "(`train/experiments/mhsa_stream.py`, equal to the batch forward in `train/experiments/test_mhsa_stream.py`).",
        f"Step = the CPU time of one `session.run` on its thread (ONNX Runtime with one intra-op thread computes on "
        f"the calling thread), p50 over the first and the last {res['edge_s']:.0f} s of the stream (per step, the median of "
        f"{' / '.join(str(res['rounds'][s]) for s in sorted(res['rounds'], key=float))} rounds of the "
        f"{' / '.join(s for s in sorted(res['rounds'], key=float))} s streams). CPU time, not "
        f"wall-clock, because the machine was shared: 1-minute load average {res['loadavg_1min']['start']:.2f} at the "
        f"start on {m['cores']} cores, this run at nice {res['nice']}, so wall-clock steps measured the scheduler "
        "(they are in the JSON, `step_wall_ms_*`). State = bytes of the tensors carried to the next step (exact); "
        "VmRSS = the process's resident set after the last step (indicative: it includes Python, the runtime "
        "and the allocator's slack).",
        "",
        f"| model | stream | step p50, first {res['edge_s']:g} s | step p50, last {res['edge_s']:g} s | state carried at end | VmRSS at end |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (("wsm", "WSM"), ("mhsa", "self-attention")):
        for s in seconds:
            x = res["runs"][name][s]
            lines.append(f"| {label} | {float(s):g} s | {x['step_cpu_ms_p50_start']:.3f} ms | {x['step_cpu_ms_p50_end']:.3f} ms | "
                         f"{fmt_bytes(x['state_bytes_end'])} | {x['rss_kib_end'] / 1024:.0f} MB |")
    lines += [
        "",
        f"Self-attention / WSM at {float(long):g} s: step p50 (last {res['edge_s']:g} s) **{r['step_cpu_ms_p50_end']:.2f}**, "
        f"state carried **{r['state_bytes_end']:.0f}**, VmRSS **{r['rss_kib_end']:.2f}**.",
        f"Over the {float(long):g} s stream WSM's step goes from {w['step_cpu_ms_p50_start']:.3f} to "
        f"{w['step_cpu_ms_p50_end']:.3f} ms (x{w['step_cpu_ms_p50_end'] / w['step_cpu_ms_p50_start']:.2f}) and its state "
        + (f"stays {w['state_bytes_end']} bytes at every step" if wsm_flat else
           f"goes from {w['state_bytes_start']} to {w['state_bytes_end']} bytes")
        + f"; self-attention's step grows x{a['step_cpu_ms_p50_end'] / a['step_cpu_ms_p50_start']:.1f} and its cache by "
        f"{fmt_bytes(growth_b_per_s)} per second of audio.",
        "",
        f"![step CPU time, state carried and VmRSS over stream time, both models]({plot})",
        "",
    ]
    return lines


def plot(res: dict, path: pathlib.Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = sorted(res["runs"]["wsm"], key=float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    colors = {"wsm": "tab:blue", "mhsa": "tab:red"}
    labels = {"wsm": "WSM", "mhsa": "self-attention"}
    markers = ["o", "s", None]
    for name in ("wsm", "mhsa"):
        for k, s in enumerate(seconds):
            run = res["runs"][name][s]
            bins = run["bins"]
            t_mid = [b["t_mid_s"] for b in bins]
            t_end = [res["chunk_ms"] / 1000] + [b["t_end_s"] for b in bins]  # memory: after the first step, then per bin
            longest = s == seconds[-1]
            style = dict(color=colors[name], lw=1.6 if longest else 0, alpha=1 if longest else 0.7,
                         marker=None if longest else markers[k % 2], ms=6, mfc="none")
            lab = f"{labels[name]}, {float(s):g} s stream"
            axes[0].plot(t_mid, [b["step_cpu_ms_p50"] for b in bins], label=lab, **style)
            axes[1].plot(t_end, [run["state_bytes_start"] / 1e6] + [b["state_bytes"] / 1e6 for b in bins],
                         label=lab, **style)
            axes[2].plot(t_end, [run["rss_kib_first"] / 1024] + [b["rss_kib"] / 1024 for b in bins], label=lab, **style)
    axes[0].set_ylabel(f"step CPU time, p50 per {res['bin_s']:.0f} s (ms)")
    axes[1].set_ylabel("state carried between steps (MB)")
    w = res["runs"]["wsm"][seconds[-1]]
    axes[1].text(0.03, 0.93, f"WSM: {w['state_bytes_end']:,} bytes"
                 + (" at every step" if w["state_bytes_start"] == w["state_bytes_max"] == w["state_bytes_end"] else ""),
                 transform=axes[1].transAxes, color=colors["wsm"], fontsize=9, va="top")
    axes[2].set_ylabel("process VmRSS (MB)")
    for ax in axes:
        ax.set_xlabel("stream time (s)")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    m = res["machine"]
    fig.suptitle(f"WSM vs same-size self-attention, ONNX Runtime 1 thread, {res['chunk_ms']:.0f} ms chunks "
                 f"({m['cpu']}, {res['date']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def patch_results(path: pathlib.Path, section: list):
    """Replace section 1 of a RESULTS.md (up to the next `## ` heading)."""
    text = path.read_text()
    pat = re.compile(r"^## 1\. .*?(?=^## )", re.S | re.M)
    if not pat.search(text):
        raise SystemExit(f"{path}: no section '## 1.' followed by another section")
    path.write_text(pat.sub(lambda _: "\n".join(section) + "\n", text, count=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600], help="stream lengths (s)")
    ap.add_argument("--rounds", type=int, nargs="+", default=[3, 3, 1],
                    help="runs of each stream: one count, or one per --seconds value (per step, the median is kept)")
    ap.add_argument("--wsm-model", help="WSM contract model (default: the one src/model.rs bundles)")
    ap.add_argument("--out", default=str(ROOT / "benches" / "linear_vs_quadratic.json"), help="JSON results")
    ap.add_argument("--plot", default=str(ROOT / "benches" / "linear_vs_quadratic.png"), help="PNG plot")
    ap.add_argument("--from-json", help="skip measuring: redraw and rewrite from this earlier --out")
    ap.add_argument("--patch-results", help="replace section 1 of this RESULTS.md with the new text")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--feats", help=argparse.SUPPRESS)
    ap.add_argument("--worker-seconds", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        pathlib.Path(a.out).write_text(json.dumps(worker(a.worker, a.feats, a.worker_seconds)))
        return
    a.seconds = [int(s) if float(s).is_integer() else s for s in a.seconds]
    res = json.loads(pathlib.Path(a.from_json).read_text()) if a.from_json else measure(a)
    if not a.from_json:
        pathlib.Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    plot(res, pathlib.Path(a.plot))
    section = markdown_section(res, os.path.relpath(a.plot, ROOT / "benches"))
    if a.patch_results:
        patch_results(pathlib.Path(a.patch_results), section)
    print("\n".join(section))


if __name__ == "__main__":
    main()
