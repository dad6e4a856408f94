"""The model card's accuracy table: WER (and CER for hark) per evaluation
set, for hark models and the peers, on the same audio.

    python train/scorecard.py --run --hark target/release/hark --model models/hark-wsm-v21.onnx \
        --out-dir results/v12
    python train/scorecard.py --out-dir results/v12     # the table again, from the stored results

With --run it measures first, each step writing its JSON into --out-dir:
`train/evaluate.py --hark BINARY` with default settings (hark-lm.json:
Whisper tiny.en finals, CTC + LM partials) and with `--finals ctc`
(hark-ctc.json: the CTC pass with its LM writes the finals too) and with
`--finals stream` (hark-stream.json: Whisper's decoder on the converted
streaming encoder's states, issue 37; --no-stream skips it), then
`train/peers.py` for Whisper tiny.en, Whisper base and pocketsphinx
(peers.json; `--engines` picks some). A results directory from before the
finals pass may hold hark-greedy.json (`--no-lm`) instead; it is shown. Without --run it only
reads those files. The sets: speechocean762 `test` (every 5th utterance,
speakers never trained on), the real recordings packaged in Debian
(pocketsphinx-testdata, alsa-utils: the dev set, never trained on), and
the synthetic held-out voices (test_clean), and the Asterisk voice prompts
(one native speaker, 8 kHz; when asterisk-core-sounds-en-wav is installed).
The table is printed as
Markdown and written to <out-dir>/scorecard.md.
"""

import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SETS = [("speechocean762-test", "speechocean762 test"), ("real-all", "packaged real recordings"),
        ("synthetic-test_clean", "synthetic held-out voices"), ("asterisk-prompts", "Asterisk voice prompts")]
PEERS = [("whisper-base", "Whisper base (faster-whisper int8, greedy)"),
         ("whisper-tiny.en", "Whisper tiny.en (faster-whisper int8, greedy)"),
         ("pocketsphinx", "pocketsphinx 5 (en-us, streaming)")]


def cell(s: dict | None, cer: bool) -> str:
    if not s:
        return "not run"
    text = f"{100 * s['wer']:.1f}%"
    return text + (f" / {100 * s['cer']:.1f}%" if cer and "cer" in s else "")


def peer_sets(peers: list) -> dict:
    """engine -> its per-set figures, over several peers.py results (a later file's
    set replaces an earlier one's: e.g. a run of one new set beside the full run)."""
    out = {}
    for p in peers:
        if p.exists():
            for key, res in json.loads(p.read_text())["engines"].items():
                out.setdefault(key, {}).update(res["sets"])
    return out


def table(out_dir: pathlib.Path, label: str, peers: list) -> str:
    head = "| engine | " + " | ".join(f"{name}: WER / CER" for _, name in SETS) + " |"
    lines = [head, "|" + " --- |" * (len(SETS) + 1)]
    words = {}
    runs = (("hark-lm.json", f"{label} (default)"), ("hark-stream.json", f"{label}, --finals stream"),
            ("hark-ctc.json", f"{label}, --finals ctc"), ("hark-greedy.json", f"{label}, --no-lm"))
    for fname, name in runs:
        p = out_dir / fname
        if p.exists():
            sets = json.loads(p.read_text())["sets"]
            words.update({k: sets[k]["words"] for k, _ in SETS if k in sets})
            lines.append(f"| {name} | " + " | ".join(cell(sets.get(k), True) for k, _ in SETS) + " |")
    engines = peer_sets(peers)
    for key, name in PEERS:
        if key in engines:
            sets = engines[key]
            lines.append(f"| {name} | " + " | ".join(cell(sets.get(k), False) for k, _ in SETS) + " |")
    default = out_dir / "hark-lm.json"
    tiny = engines.get("whisper-tiny.en")
    if default.exists() and tiny:
        sets = json.loads(default.read_text())["sets"]
        ratio = lambda k: (f"{sets[k]['wer'] / tiny[k]['wer']:.2f}"  # noqa: E731
                           if k in sets and tiny.get(k, {}).get("wer") else "-")
        lines.append(f"| {label} (default) / Whisper tiny.en, WER | " + " | ".join(ratio(k) for k, _ in SETS) + " |")
    stream = out_dir / "hark-stream.json"
    if default.exists() and stream.exists():
        base, st = (json.loads(f.read_text())["sets"] for f in (default, stream))
        ratio = lambda k: (f"{st[k]['wer'] / base[k]['wer']:.2f}"  # noqa: E731
                           if k in st and base.get(k, {}).get("wer") else "-")
        lines.append(f"| {label}, --finals stream / default, WER | " + " | ".join(ratio(k) for k, _ in SETS) + " |")
    lines.append("")
    lines.append("Words per set: " + ", ".join(f"{name} {words.get(k, '?')}" for k, name in SETS) + ".")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run", action="store_true", help="measure first (evaluate.py twice, peers.py)")
    ap.add_argument("--hark", default="target/release/hark")
    ap.add_argument("--model", help="the model for hark (default: the one embedded in the binary)")
    ap.add_argument("--label", default="hark")
    ap.add_argument("--max-synthetic", type=int, default=100)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--no-stream", action="store_true", help="with --run: not the --finals stream run")
    ap.add_argument("--only-stream", action="store_true", help="with --run: only the --finals stream run")
    ap.add_argument("--engines", help="the peers to run (peers.py --engines), e.g. whisper-tiny.en,pocketsphinx")
    ap.add_argument("--peers", nargs="+", help="the peers' results to show (default: <out-dir>/peers.json); the "
                                               "peers do not depend on hark's model, so another model's run serves; "
                                               "with several files, a later one's sets replace an earlier one's")
    a = ap.parse_args()
    out = pathlib.Path(a.out_dir)
    peers = [pathlib.Path(p) for p in a.peers] if a.peers else [out / "peers.json"]
    out.mkdir(parents=True, exist_ok=True)
    if a.run:
        py = sys.executable
        model = ["--model", a.model] if a.model else []
        runs = [("hark-lm.json", []), ("hark-ctc.json", ["--hark-args=--finals ctc"])]
        runs = [] if a.only_stream else runs
        if not a.no_stream:
            runs.append(("hark-stream.json", ["--hark-args=--finals stream"]))
        for fname, extra in runs:
            subprocess.run([py, str(HERE / "evaluate.py"), "--hark", a.hark, *model, *extra,
                            "--max-synthetic", str(a.max_synthetic), "--out", str(out / fname)], check=True)
        if not a.skip_peers:
            engines = ["--engines", a.engines] if a.engines else []
            subprocess.run([py, str(HERE / "peers.py"), "--max-synthetic", str(a.max_synthetic), *engines,
                            "--out", str(peers[-1])], check=True)
    text = table(out, a.label, peers)
    (out / "scorecard.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
