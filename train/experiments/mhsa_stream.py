"""Streaming step of the same-size self-attention variant (HarkModel with
arch="mhsa"), for the linear-vs-quadratic benchmark (benches/linear_vs_quadratic.py).

The batch model (train/model.py, MHSABlock) attends causally over the whole
utterance. Streamed, each chunk's queries attend to every key and value seen
so far, so each layer carries a key/value cache that grows by one row per
context frame (80 ms): the cost of a step and the memory carried grow with
the stream, which is what the benchmark shows next to WSM's constant state.

`MHSAStep` reuses the batch model's modules and weights (front end,
downsampler, each block's in_proj_weight/bias and out_proj, norms,
feed-forward, head); it adds no parameters. `export_mhsa_stream` writes it to
ONNX with a dynamic time dimension on the caches. This is a benchmark file,
not a contract v1 model (contract v1 fixes every shape): it carries no
`hark.contract_version` and the runtime would refuse it.

Shapes: H heads, Dh = d_model / H, P context frames seen before this chunk,
n = chunk_frames / (4 * downsample) new context frames per chunk. The caches
are [1, H, P, Dh] in, [1, H, P + n, Dh] out; a stream starts with P = 0.
"""

import io
import json
import math
import pathlib
import sys

import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import fbank as FB  # noqa: E402
from export import OPSET, TORCHSCRIPT_EXPORTER  # noqa: E402
from model import BLANK_ID, HarkModel, ModelConfig, count_params, gelu  # noqa: E402


def kv_specs(cfg: ModelConfig):
    """(input name, output name) of each layer's key and value caches, in call order."""
    out = []
    for i in range(cfg.num_layers):
        out += [(f"cache_l{i}_k", f"cache_l{i}_k_out"), (f"cache_l{i}_v", f"cache_l{i}_v_out")]
    return out


class MHSAStep(torch.nn.Module):
    """One streaming step of a HarkModel(arch="mhsa") over a chunk of
    `chunk_frames` feature frames, with the front end's conv state and a
    growing key/value cache per layer, all explicit."""

    def __init__(self, model: HarkModel, chunk_frames: int):
        super().__init__()
        cfg = model.cfg
        if cfg.arch != "mhsa":
            raise ValueError("MHSAStep needs a HarkModel with arch='mhsa'")
        if chunk_frames % cfg.chunk_multiple:
            raise ValueError(f"chunk_frames must be a multiple of {cfg.chunk_multiple}")
        self.model = model
        self.cfg = cfg
        self.chunk_frames = chunk_frames
        n = chunk_frames // cfg.chunk_multiple
        # Causal mask within the chunk (every cached key is in the past: no mask).
        self.register_buffer("chunk_mask", torch.triu(torch.full((n, n), float("-inf")), diagonal=1))

    def initial_state(self, batch: int = 1):
        """Conv states (fixed shape) then the empty key/value caches."""
        cfg = self.cfg
        conv = self.model.initial_state(batch)
        dh = cfg.d_model // cfg.heads
        caches = [torch.zeros(batch, cfg.heads, 0, dh) for _ in kv_specs(cfg)]
        return conv + caches

    def _attend(self, blk, y, k_cache, v_cache):
        attn = blk.attn
        b, d, h = y.shape[0], self.cfg.d_model, self.cfg.heads
        dh = d // h  # plain ints from the config: constants in the exported graph
        qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)  # [B, n, 3D]
        q, k, v = qkv.chunk(3, dim=2)

        def heads(t):
            return t.reshape(b, -1, h, dh).transpose(1, 2)  # [B, H, n, Dh]

        q, k, v = heads(q), heads(k), heads(v)
        q = q * (1.0 / math.sqrt(dh))
        k_all = torch.cat([k_cache, k], dim=2)  # [B, H, P+n, Dh]
        v_all = torch.cat([v_cache, v], dim=2)
        scores_past = torch.matmul(q, k_cache.transpose(2, 3))  # [B, H, n, P]
        scores_new = torch.matmul(q, k.transpose(2, 3)) + self.chunk_mask  # [B, H, n, n]
        p = torch.softmax(torch.cat([scores_past, scores_new], dim=3), dim=3)
        a = torch.matmul(p, v_all).transpose(1, 2).reshape(b, -1, d)
        return attn.out_proj(a), k_all, v_all

    def forward(self, feats, *state):
        """feats [B, chunk_frames, num_bins]; state as initial_state();
        returns (log_probs [B, chunk_frames/4, V], *new_state)."""
        m, cfg = self.model, self.cfg
        x = ((feats - m.feat_mean) / m.feat_std).transpose(1, 2)
        x, st1, st2 = m.subsample(x, state[0], state[1])
        x = m.down(x).transpose(1, 2)  # [B, n, D]
        caches = state[2:]
        new_caches = []
        for i, blk in enumerate(m.blocks):
            a, k_all, v_all = self._attend(blk, blk.norm1(x), caches[2 * i], caches[2 * i + 1])
            x = x + blk.drop(a)
            x = x + blk.drop(blk.ff2(blk.drop(gelu(blk.ff1(blk.norm2(x))))))
            new_caches += [k_all, v_all]
        logits = m.head(m.norm(x))
        b, n, _ = logits.shape
        logits = logits.reshape(b, n * cfg.downsample, len(cfg.vocab))
        return (F.log_softmax(logits, dim=-1), st1, st2, *new_caches)


def export_mhsa_stream(model: HarkModel, out_path, chunk_frames: int = 32, name: str = "hark-mhsa-stream",
                       training: str = ""):
    """Write the streaming MHSA step to ONNX (opset 13). Inputs: feats, the
    two conv states, then cache_l{i}_k / cache_l{i}_v with a dynamic time
    axis `past`; outputs log_probs, the conv states' *_out, then the caches'
    *_out with time `past + n`."""
    model = model.eval()
    step = MHSAStep(model, chunk_frames).eval()
    cfg = model.cfg
    conv_names = [n for n, _, _ in model.state_specs()]
    kv = kv_specs(cfg)
    in_names = ["feats"] + conv_names + [i for i, _ in kv]
    out_names = ["log_probs"] + [n + "_out" for n in conv_names] + [o for _, o in kv]
    # Trace with a non-empty cache so the graph is general; P = 0 runs too.
    dh = cfg.d_model // cfg.heads
    state = model.initial_state(1) + [torch.zeros(1, cfg.heads, 3, dh) for _ in kv]
    feats = torch.full((1, chunk_frames, cfg.num_bins), FB.PAD_FRAME_VALUE)
    dyn = {i: {2: "past"} for i, _ in kv}
    dyn.update({o: {2: "past_plus_chunk"} for _, o in kv})
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(step, (feats, *state), buf, input_names=in_names, output_names=out_names,
                          opset_version=OPSET, do_constant_folding=True, dynamic_axes=dyn, **TORCHSCRIPT_EXPORTER)
    import onnx

    proto = onnx.load_from_string(buf.getvalue())
    meta = {
        "hark.model_name": name,
        "hark.arch": "mhsa",
        "hark.benchmark_only": "streaming self-attention with a growing key/value cache; not a contract v1 file",
        "hark.num_params": str(count_params(model)),
        **FB.FBANK_METADATA,
        "hark.chunk_frames": str(chunk_frames),
        "hark.subsampling": str(cfg.subsampling),
        "hark.tokens": json.dumps(cfg.vocab),
        "hark.blank_id": str(BLANK_ID),
        "hark.states": json.dumps([{"input": n, "output": n + "_out", "shape": [1, *shape], "init": init}
                                   for n, shape, init in model.state_specs()]),
        "hark.kv_caches": json.dumps([{"input": i, "output": o, "shape": [1, cfg.heads, "past", dh]}
                                      for i, o in kv]),
        "hark.training": training,
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(proto)
    pathlib.Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))
    return proto
