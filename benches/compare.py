"""Run the comparisons that exist so far and write benches/RESULTS.md.

    cargo build --release && .venv/bin/python benches/compare.py

It needs the synthetic corpus in data/corpus (`.venv/bin/python
train/make_corpus.py --out data/corpus --hours 10 --seed 1234 --jobs 2`,
~25 min on 2 cores) for the synthetic WER columns and the downsampling probes.

1. Linear vs quadratic: benches/linear_vs_quadratic.py (WSM vs the same-size
   self-attention variant streamed with a key/value cache, 10/60/600 s;
   also writes benches/linear_vs_quadratic.json and .png).
2. Downsampling on/off: benches/downsampling.py (the model with and without
   the downsampler, same short training; trains them first when
   train/runs/ds1 or ds2 lacks its final checkpoint, ~15 min each).
3. Engine: benches/engines.py (tract vs ONNX Runtime, same chunks).
4. Peers: train/peers.py (Whisper tiny.en, pocketsphinx) next to hark's own
   WER (train/evaluate.py on the bundled model) on the same audio.
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(ROOT / "benches"))
from downsampling import section as downsampling_section  # noqa: E402
from linear_vs_quadratic import markdown_section as linear_vs_quadratic_section  # noqa: E402


def run_json(args, out: pathlib.Path) -> dict:
    subprocess.run([PY, *args, "--out", str(out)], check=True, cwd=ROOT)
    return json.loads(out.read_text())


def main():
    lvq = run_json(["benches/linear_vs_quadratic.py"], ROOT / "benches" / "linear_vs_quadratic.json")
    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        ds = run_json(["benches/downsampling.py"], td / "downsampling.json")
        engines = run_json(["benches/engines.py", "--rounds", "5"], td / "engines.json")
        peers = run_json(["train/peers.py", "--max-synthetic", "100"], td / "peers.json")
        hark = run_json(["train/evaluate.py", "--max-synthetic", "100"],
                        td / "hark.json")
    bench = json.loads(subprocess.run([str(ROOT / "target/release/hark"), "bench", "--format", "json"],
                                      check=True, capture_output=True, text=True).stdout)
    m = engines["machine"]
    lines = [
        "# hark benchmark results",
        "",
        f"Written by `.venv/bin/python benches/compare.py` (after `cargo build --release`) on "
        f"{time.strftime('%Y-%m-%d')}, {m['cpu']} ({m['cores']} cores, {m['arch']}). Ratios measured in one "
        "run carry the conclusions; absolute times are indicative (a shared machine).",
        "",
        *linear_vs_quadratic_section(lvq),
        *downsampling_section(ds),
        "## 3. Engine: tract (hark) vs ONNX Runtime",
        "",
        f"The bundled model's step on the same {engines['chunks_per_round']} chunks of {engines['chunk_ms']:.0f} ms "
        f"({engines['files']} files), one thread each, {engines['rounds']} alternating rounds (`benches/engines.py`).",
        "",
        "| engine | model step p50, median of rounds |",
        "| --- | --- |",
        f"| tract 0.23 (hark, `chunk_ms_model`) | {sorted(engines['tract_step_ms_p50_per_round'])[engines['rounds'] // 2]:.3f} ms |",
        f"| ONNX Runtime (`session.run`) | {sorted(engines['onnxruntime_step_ms_p50_per_round'])[engines['rounds'] // 2]:.3f} ms |",
        "",
        f"ONNX Runtime / tract: **{engines['onnxruntime_over_tract']:.2f}**.",
        "",
        "## 4. Peers on the same audio",
        "",
        "Real recordings from Debian packages (pocketsphinx-testdata, alsa-utils; evaluation only) and the",
        "synthetic held-out voices (test_clean). One thread each; RTF = compute / audio time; final latency =",
        "end of an utterance's audio to its final text; memory = peak resident set of the engine's process.",
        "",
        "| engine | test_clean WER | real WER | real RTF | final latency (real, mean) | peak memory |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, res in peers["engines"].items():
        s, r = res["sets"].get("synthetic-test_clean", {}), res["sets"]["real-all"]
        lines.append(f"| {name} | {100 * s.get('wer', float('nan')):.1f}% | {100 * r['wer']:.1f}% | {r['rtf']:.3f} | "
                     f"{r['mean_final_latency_ms']:.0f} ms | {res['vmhwm_mb']:.0f} MB |")
    hs = hark["sets"]
    lines += [
        f"| hark ({bench['model']}, release binary) | {100 * hs['synthetic-test_clean']['wer']:.1f}% | "
        f"{100 * hs['real-all']['wer']:.1f}% | {bench['real_time_factor']:.4f} (bundled sample) | "
        f"{bench['endpoint_to_final_ms']['p50']:.0f} ms (incl. {bench['endpoint_silence_ms']} ms endpoint silence) | "
        f"{bench['peak_rss_kib'] / 1024:.0f} MB |",
        "",
        "hark's bundled model is trained on 8.8 h of synthetic speech only and is not yet a usable recognizer",
        "(results/HISTORY.md): its WER is far behind the peers'; its cost figures are what the design buys.",
        "",
    ]
    (ROOT / "benches" / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
