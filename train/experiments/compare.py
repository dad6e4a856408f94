"""One table for issue 4: hark's models next to Whisper tiny.en and
pocketsphinx on the same audio, with model sizes and compute.

    python train/experiments/compare.py --peers results/eval-peers-2026-11-29.json \
        --hark "hark-wsm-v3 + LM (bundled)" results/eval-hark-wsm-v3-by-voice.json models/hark-wsm-v3.onnx \
        --hark "student, conv5" results/eval-student-conv5-lm.json .dev/models/student-conv5.onnx

Scores come from stored results: train/evaluate.py's JSON for a hark model
(run through `hark` with `--hark`, so they are what the binary prints) and
train/peers.py's JSON for the peers; nothing is decoded again here. Sizes
are of the files as shipped; parameters and multiply-adds per second of
audio come from a hark model's own metadata (`hark.num_params`,
`hark.macs_per_second`), and for Whisper tiny.en from its weights: the
encoder's multiply-adds are counted by running the rebuilt encoder
(train/whisper_encoder.py) over one 30 s window under torch's FLOP
counter; the decoder's are estimated from its layer shapes per output
token. pocketsphinx is a GMM-HMM recognizer: no multiply-add count is given.
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/

REAL = "real-all"
SYNTH = "synthetic-test_clean"


def hark_row(label: str, eval_json: str, onnx_path: str) -> dict:
    import onnx

    meta = {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
    sets = json.loads(pathlib.Path(eval_json).read_text())["sets"]
    chunk_ms = int(meta["hark.chunk_frames"]) * int(meta["hark.fbank.frame_shift_samples"]) * 1000 // int(
        meta["hark.sample_rate_hz"])
    return {
        "engine": label,
        "kind": f"streaming, {chunk_ms} ms chunks",
        "params": int(meta["hark.num_params"]),
        "size_mb": pathlib.Path(onnx_path).stat().st_size / 1e6,
        "macs": f"{int(meta['hark.macs_per_second']) / 1e6:.0f} M",
        "synth": sets[SYNTH]["wer"],
        "real": sets[REAL]["wer"],
    }


def whisper_compute() -> tuple[int, float, str]:
    """(parameters, model.bin size in MB, multiply-adds described)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import ct2
    import whisper_encoder as WE

    path = WE.bundled_model_dir() / "model.bin"
    weights = ct2.load_variables(path, with_aliases=False)
    params = sum(a.size for a in weights.values())
    enc = WE.load_bundled_encoder().eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        enc(torch.zeros(1, 80, 3000))  # 30 s of 80-bin log-mel at 10 ms
    enc_macs = fc.get_total_flops() / 2
    d, layers, frames = 384, 4, 1500
    vocab = weights["decoder/embeddings/weight"].shape[0]
    # Per output token: self-attention (q, k, v, o) and cross-attention
    # (q, o) projections, the feed-forward pair, attention over 1,500 encoder
    # frames, and the output projection onto the vocabulary.
    per_token = layers * (6 * d * d + 2 * d * 4 * d + 2 * frames * d) + d * vocab
    cross_kv = layers * 2 * d * d * frames  # once per 30 s window
    text = (f"{enc_macs / 30 / 1e6:.0f} M (encoder, a full 30 s window; shorter audio is padded to 30 s) "
            f"+ {cross_kv / 30 / 1e6:.0f} M (decoder cross-attention keys/values) "
            f"+ {per_token / 1e6:.0f} M per output token")
    return params, path.stat().st_size / 1e6, text


def peer_rows(peers_json: str) -> list[dict]:
    engines = json.loads(pathlib.Path(peers_json).read_text())["engines"]
    rows = []
    if "whisper-tiny.en" in engines:
        params, size, macs = whisper_compute()
        sets = engines["whisper-tiny.en"]["sets"]
        rows.append({"peer": "whisper", "engine": "Whisper tiny.en (faster-whisper, int8, greedy; the teacher)",
                     "kind": "non-streaming (whole utterance)", "params": params, "size_mb": size,
                     "macs": macs, "synth": sets[SYNTH]["wer"], "real": sets[REAL]["wer"]})
    if "pocketsphinx" in engines:
        import pocketsphinx

        model = pathlib.Path(pocketsphinx.get_model_path()) / "en-us"
        size = sum(f.stat().st_size for f in model.rglob("*") if f.is_file())
        sets = engines["pocketsphinx"]["sets"]
        rows.append({"peer": "pocketsphinx", "engine": "pocketsphinx 5 (bundled en-us model)", "kind": "streaming, 320 ms pieces",
                     "params": None, "size_mb": size / 1e6,
                     "macs": "n/a (GMM-HMM)", "synth": sets[SYNTH]["wer"], "real": sets[REAL]["wer"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| engine | kind | parameters | size as shipped | multiply-adds per second of audio "
             "| test_clean WER (877 words) | real recordings WER (112 words) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        params = f"{r['params'] / 1e6:.1f} M" if r["params"] else "n/a"
        lines.append(f"| {r['engine']} | {r['kind']} | {params} | {r['size_mb']:.1f} MB | {r['macs']} "
                     f"| {100 * r['synth']:.1f}% | {100 * r['real']:.1f}% |")
    return "\n".join(lines)


def target(rows: list[dict]) -> str:
    by = {r["peer"]: r["real"] for r in rows if "peer" in r}
    if set(by) != {"whisper", "pocketsphinx"}:
        return ""
    half, twice = by["pocketsphinx"] / 2, 2 * by["whisper"]
    return (f"Issue-4 target on the real recordings: at most half of pocketsphinx's WER "
            f"({100 * half:.1f}%) and within 2x of Whisper tiny.en's ({100 * twice:.1f}%), "
            f"i.e. {100 * min(half, twice):.1f}% or less.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", help="train/peers.py results (JSON)")
    ap.add_argument("--hark", nargs=3, action="append", default=[], metavar=("LABEL", "EVAL_JSON", "ONNX"),
                    help="a hark model: its label, train/evaluate.py results and the model file")
    a = ap.parse_args(argv)
    rows = [hark_row(*h) for h in a.hark]
    if a.peers:
        rows += peer_rows(a.peers)
    print(table(rows))
    line = target(rows)
    if line:
        print()
        print(line)


if __name__ == "__main__":
    main()
