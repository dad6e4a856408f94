"""Export the converted streaming encoder (issue 37: convert.py's chunked
attention student) as the graph hark runs once per 320 ms chunk, so that at
an endpoint the decoder reads what the stream already computed.

    python train/experiments/stream_export.py --checkpoint train/runs/convert-attn-stream/best.pt \
        --out models/whisper-tiny.en/stream.onnx

stream.onnx  with n = the checkpoint's chunk (encoder frames of 20 ms; 16
             is 320 ms): mel [1, 80, 2n + 3]: the streamable log-mel (fixed
             floor, `hark.stream.mel_floor`) of frames 2nc-2 .. 2nc+2n of
             chunk c (two frames before the chunk, its 2n, one after: the
             two convolutions' reach), first [1] (1.0 for the utterance's
             first chunk: the frames before it are the convolutions' zero
             padding), position [1] int64 (nc: the chunk's first encoder
             frame), valid [1] int64 (the chunk's real frames, n but in the
             last),
             cache [L, 2, H, C, Dh] (the keys and values of the C <= left
             encoder frames before the chunk, each layer's self-attention)
             -> cross_kv [L, 2, H, n, Dh] (the decoder's cross-attention keys
             and values of the chunk's frames: the runtime appends the first
             `valid` to the utterance's), new_kv [L, 2, H, n, Dh] (the
             chunk's self-attention keys and values, for the cache).

The decoder is the finals model's decoder.onnx, unchanged. The chunk loop of
`stream_cross_kv` is the reference the export is checked against, and it
equals convert.ChunkedWhisper over the whole utterance (its mask: a frame
sees its chunk and at most `left` frames before it) followed by the
decoder's cross projection (test_stream_export.py).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import whisper_encoder as W  # noqa: E402
import whisper_export as X  # noqa: E402

STREAM_CONTRACT_VERSION = 1
CHUNK = 16  # encoder frames (20 ms) per chunk unless the checkpoint says: 320 ms
MEL_BEFORE, MEL_AFTER = 2, 1  # mel frames of context either side of a chunk's


def mel_in(chunk: int) -> int:
    """Mel frames a chunk of `chunk` encoder frames reads."""
    return MEL_BEFORE + 2 * chunk + MEL_AFTER
SAMPLE = HERE.parent.parent / "tests" / "data" / "e2e" / "e2e-4-flite-rms.wav"  # the bundled sample (README, command 1)


class StreamChunk(nn.Module):
    """One chunk of the converted encoder, with its key/value cache as
    explicit input and output (the module docstring's contract)."""

    def __init__(self, enc: W.WhisperEncoder, decoder: X.WhisperDecoder, chunk: int = CHUNK):
        super().__init__()
        self.enc, self.decoder, self.chunk = enc, decoder, chunk

    def forward(self, mel, first, position, valid, cache):
        keep = 1.0 - first
        # frame 32c-1 is conv1's zero padding at the utterance's start
        mel = torch.cat([mel[:, :, :1], mel[:, :, 1:2] * keep, mel[:, :, 2:]], dim=2)
        x = F.gelu(F.conv1d(mel, self.enc.conv1.weight, self.enc.conv1.bias))  # conv1 frames 32c-1 .. 32c+31
        # conv1's frame 32c-1 is conv2's zero padding at the utterance's start
        x = torch.cat([x[:, :, :1] * keep, x[:, :, 1:]], dim=2)
        x = F.gelu(F.conv1d(x, self.enc.conv2.weight, self.enc.conv2.bias, stride=2)).transpose(1, 2)
        n = self.chunk
        steps = torch.arange(n, dtype=torch.int64)
        x = x + self.enc.positions.index_select(0, position + steps)  # [1, n, d]
        keys = torch.arange(n, dtype=torch.int64)
        # the cache's keys are all visible; the chunk's own up to `valid`
        mask = torch.cat([torch.ones(cache.shape[3], dtype=torch.bool), keys < valid]).view(1, 1, 1, -1)
        new = []
        for i, b in enumerate(self.enc.blocks):
            d = x.shape[2]
            q, k, v = b.qkv(b.attn_ln(x)).split(d, dim=-1)
            q, k, v = (z.view(1, n, b.heads, d // b.heads).transpose(1, 2) for z in (q, k, v))
            new.append(torch.stack([k[0], v[0]]))
            k = torch.cat([cache[i, 0].unsqueeze(0), k], dim=2)
            v = torch.cat([cache[i, 1].unsqueeze(0), v], dim=2)
            a = W.attention(q, k, v, mask)
            x = x + b.out(a.transpose(1, 2).reshape(1, n, d))
            x = x + b.fc2(F.gelu(b.fc1(b.mlp_ln(x))))
        states = self.enc.ln_post(x)
        return self.decoder.cross_kv(states), torch.stack(new)


def chunk_inputs(mel: torch.Tensor, c: int, chunk: int = CHUNK) -> torch.Tensor:
    """Mel frames 2nc-2 .. 2nc+2n of `mel` [1, 80, Tm] (n = chunk): zeros
    outside it (the convolutions' padding past the end; the two before the
    first chunk are masked by `first`)."""
    lo, hi = 2 * chunk * c - MEL_BEFORE, 2 * chunk * (c + 1) + MEL_AFTER
    out = torch.zeros(1, mel.shape[1], mel_in(chunk))
    a, b = max(lo, 0), min(hi, mel.shape[2])
    if b > a:
        out[:, :, a - lo : b - lo] = mel[:, :, a:b]
    return out


def cache_shape(enc: W.WhisperEncoder) -> tuple[int, int, int]:
    """(layers, heads, head width) of the encoder's key/value cache."""
    heads = enc.blocks[0].heads
    return len(enc.blocks), heads, enc.ln_post.normalized_shape[0] // heads


def stream_cross_kv(step, mel: torch.Tensor, left: int, shape: tuple[int, int, int],
                    chunk: int = CHUNK) -> torch.Tensor:
    """The runtime's chunk loop over a whole utterance's streamable log-mel
    [1, 80, Tm] (Tm even): the cross-attention keys/values [L, 2, H, S, Dh]
    of its S = Tm/2 encoder frames. `step` is StreamChunk or OrtStep;
    `shape` is cache_shape's; `chunk` the encoder frames per chunk."""
    frames = mel.shape[2] // 2
    L, H, dh = shape
    out, cache = [], torch.zeros(L, 2, H, 0, dh)
    for c in range((frames + chunk - 1) // chunk):
        valid = min(chunk, frames - chunk * c)
        cross, new = step(chunk_inputs(mel, c, chunk), torch.tensor([1.0 if c == 0 else 0.0]),
                          torch.tensor([chunk * c]), torch.tensor([valid]), cache)
        out.append(cross[:, :, :, :valid])
        cache = torch.cat([cache, new], dim=3)[:, :, :, -left:] if left else cache[:, :, :, :0]
    return torch.cat(out, dim=3)


def load_student(checkpoint: pathlib.Path | None):
    """(convert.ChunkedWhisper with the checkpoint's weights, or Whisper's
    own untrained, the decoder, the checkpoint dict or {}, Whisper's model
    folder)."""
    import convert

    enc, decoder, model_dir = X.load_bundled()
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False) if checkpoint else {}
    if ck and ck.get("student") != "attention":
        raise SystemExit(f"{checkpoint}: not a chunked attention student (convert.py --student attention)")
    chunk = int(ck["config"]["chunk"]) if ck else CHUNK
    model = convert.ChunkedWhisper(enc, chunk=chunk, left=int(ck.get("left", 100)))
    if ck:
        model.load_state_dict(ck["model"])
    model.eval()
    return model, decoder, ck, model_dir


class OrtStep:
    """stream.onnx through onnxruntime, called as StreamChunk is."""

    def __init__(self, path: pathlib.Path):
        import onnxruntime as ort

        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, mel, first, position, valid, cache):
        feeds = {"mel": mel.numpy(), "first": first.numpy().astype(np.float32), "position": position.numpy(),
                 "valid": valid.numpy(), "cache": cache.numpy().astype(np.float32)}
        cross, new = self.sess.run(None, feeds)
        return torch.from_numpy(cross), torch.from_numpy(new)


def export(checkpoint: pathlib.Path | None, out: pathlib.Path, weights: str = "int8", check: bool = True) -> dict:
    import onnx

    import convert

    model, decoder, ck, model_dir = load_student(checkpoint)
    if ck and ck.get("mel") != "stream":
        raise SystemExit(f"{checkpoint}: trained on Whisper's clip-floored log-mel; the stream needs --mel stream")
    step = StreamChunk(model.enc, decoder, model.chunk)
    L, H, dh = cache_shape(model.enc)
    args = (torch.randn(1, 80, mel_in(model.chunk)), torch.tensor([0.0]), torch.tensor([2 * model.chunk]),
            torch.tensor([model.chunk]), torch.randn(L, 2, H, 7, dh))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".f32")
    X._export(step, args, tmp, ["mel", "first", "position", "valid", "cache"], ["cross_kv", "new_kv"],
              {"cache": {3: "C"}})
    graph = X.store_weights(onnx.load(str(tmp)), weights)
    tmp.unlink()
    meta = X.metadata(model_dir, decoder, weights, "stream")
    meta.update({
        "hark.stream.contract_version": str(STREAM_CONTRACT_VERSION),
        "hark.stream.chunk_frames": str(model.chunk),
        "hark.stream.left_frames": str(model.left),
        "hark.stream.mel_floor": repr(float(ck.get("mel_floor", convert.STREAM_MEL_FLOOR))),
        "hark.stream.mel_before": str(MEL_BEFORE),
        "hark.stream.mel_after": str(MEL_AFTER),
        "hark.stream.max_frames": str(model.enc.positions.shape[0]),
        "hark.stream.pad_seconds": repr(convert.PAD_S),
        "hark.stream.training": str(ck.get("training", "untrained: Whisper tiny.en's own encoder weights")),
        "hark.stream.step": str(ck.get("step", 0)),
    })
    for k, v in meta.items():
        graph.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))
    result = {"path": str(out), "bytes": out.stat().st_size}
    if check:
        result["check"] = check_export(out, model, decoder, ck, atol=0.01 if weights == "float32" else 0.1)
    return result


def check_export(path: pathlib.Path, model, decoder, ck, atol: float) -> dict:
    """The exported chunk loop against the whole-utterance torch student on
    a real recording: largest difference relative to the largest value."""
    import convert

    from evalsets import load_audio

    wave = load_audio(SAMPLE)
    floor = float(ck.get("mel_floor", convert.STREAM_MEL_FLOOR))
    mel = utterance_mel(wave, floor)
    got = stream_cross_kv(OrtStep(path), mel, model.left, cache_shape(model.enc), model.chunk)
    with torch.no_grad():
        _, states, _, _ = model(mel, [mel.shape[2]])
        want = decoder.cross_kv(states)
    # the largest difference relative to the largest value (int8 weights and
    # activations move single values most), and the RMS relative to the RMS
    err = float((got - want).abs().max() / want.abs().max())
    rms = float((got - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt())
    if rms > atol / 2 or err > 2 * atol:
        raise SystemExit(f"{path}: chunk loop differs from the whole-utterance student by {err:.3f} at most, "
                         f"{rms:.3f} RMS (limits {2 * atol}, {atol / 2})")
    return {"relative_error": round(err, 5), "relative_rms": round(rms, 5), "frames": int(want.shape[3])}


def utterance_mel(wave: np.ndarray, floor: float) -> torch.Tensor:
    """The streamable log-mel of an utterance as the student trained on it
    (convert._features): 1 s of silence after it, an even frame count ->
    [1, 80, Tm]."""
    import convert

    w = np.concatenate([np.asarray(wave, np.float32), np.zeros(int(convert.PAD_S * 16000), np.float32)])
    mel = W.log_mel(w, floor=floor)
    return mel[:, : mel.shape[1] - mel.shape[1] % 2].unsqueeze(0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=pathlib.Path, help="convert.py's best.pt (--student attention --mel stream)")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("models/whisper-tiny.en/stream.onnx"))
    ap.add_argument("--weights", choices=X.WEIGHTS, default="int8")
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args(argv)
    print(export(a.checkpoint, a.out, a.weights, check=not a.no_check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
