"""A local wav2vec2 / HuBERT / WavLM checkpoint made streaming and cheap:
the generic SSL path of issue 4 (train/experiments/student.py does the same for Whisper).

    python train/experiments/ssl_convert.py train --checkpoint ~/models/wav2vec2-base-960h \\
        --corpus data/corpus --run train/runs/ssl --replace-layers 4 --downsample 2 --minutes 60
    python train/experiments/ssl_convert.py export --ckpt train/runs/ssl/best.pt --out models/hark-ssl.onnx

`--checkpoint` is a Hugging Face checkpoint directory on disk (config.json +
weights, optionally preprocessor_config.json); nothing is downloaded. The
student reads raw 16 kHz samples (contract input kind `waveform`,
docs/model-contract.md) and streams with constant-size explicit state. What
streams how:

- waveform normalization: the feature extractor's per-utterance zero-mean /
  unit-variance normalization (`do_normalize`) needs the whole utterance, so
  the student applies one fixed affine instead, `(x - mean) * scale`, with the
  mean of the training clips' means and 1 / the mean of their standard
  deviations (estimated on training audio at conversion, then constant).
  The teacher keeps its own per-utterance normalization;
- CNN feature extractor: the same convolutions, made causal. Layer i keeps
  the last L_i inputs of the previous chunk as state, with L_i chosen in
  [kernel - stride, kernel) so that the student's output frame j is exactly
  the pretrained stack's frame j - d (d = 1 frame, 20 ms, for the usual
  (10,3,3,3,3,2,2)/(5,2,2,2,2,2,2) stack; test_ssl_convert checks it);
- a group-norm first conv layer (`feat_extract_norm == "group"`, the base
  models) normalizes each channel over the whole utterance: not streamable.
  It becomes a fixed per-channel normalization whose mean and variance are
  the averages of the per-utterance statistics on training audio; its
  affine (the pretrained GroupNorm weight and bias) is trained. Layer-norm
  variants (per frame) stream as they are;
- the convolutional positional embedding (kernel ~128 frames, centred:
  ~1.3 s of lookahead) becomes causal by keeping only its taps for the
  current and past frames (K//2 + 1 of K; the future half is dropped), with
  the last K//2 inputs as state. It keeps its pretrained past half and
  is trained, since it lost its future half (replacing it outright would
  throw away the only positional signal the layers were trained with).
  HuBERT's optional batch norm in front of it is the frozen (eval) affine;
- WavLM's gated relative position bias is kept: within a causal window of M
  frames the relative distance r = 0..M-1 takes M values, so the bias is a
  fixed [heads, M] table (from the pretrained bucket embedding) gated per
  frame exactly as WavLM gates it (distances count context frames: with
  `--downsample 2` one step is 40 ms where WavLM learned 20 ms);
- a downsampler (`--downsample 2`: stride-2 convolution, initialised as the
  mean of its inputs) on the sequence entering the transformer layers:
  20 ms -> 40 ms frames;
- the top k transformer layers (`--replace-layers k`): self-attention
  replaced by causal Windowed SummaryMixing (student.py's WSMLayer without
  its own norm, since the pretrained layer's norms stay where they were; like
  it, train/model.py's WSMBlock equations without the GELUs and depthwise
  conv, so that it starts as "uniform attention over the past / the last W
  frames / this frame"): local and summary branches start from the
  attention's value projection, the combiner from its output projection; the
  layer's feed-forward and norms are kept;
- the lower L-k layers keep their pretrained attention, run causally over a
  sliding window of the last M frames (`--attn-window M`, at the context
  rate, the current frame included): the keys and values of the last M-1
  frames, and a 0/1 "slot holds a real frame" mask (all 0 at stream start),
  are the state;
- a character CTC head (train/model.py's TOKENS) on the last layer (after the
  final layer norm for the pre-LN "stable" variant).

Training (selective fine-tuning): the WSM mixers, every norm, the causal
positional convolution, the downsampler and the head learn; the convolutions,
the feature projection, the kept attention and every feed-forward stay as
pretrained. Losses: CTC on the synthetic corpus's transcripts plus
distillation of each layer's output against the frozen, unmodified teacher's
(aligned to the student's frames, mean-pooled by the downsampling factor and
delayed by one student frame; student.py's distill_loss). Resumable from
<run>/last.pt; logs to <run>/log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import random
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
from export import contract_metadata, write_step  # noqa: E402
from model import BLANK_ID, TOKENS, causal_summaries, count_params  # noqa: E402
from student import distill_loop, distill_loss  # noqa: E402
from evalsets import read_manifest  # noqa: E402
from train import encode, lr_schedule, make_batches, open_run, score  # noqa: E402

SAMPLE_RATE_HZ = 16000
SUPPORTED = ("wav2vec2", "hubert", "wavlm")
ACTIVATIONS = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


@dataclass
class SSLConfig:
    arch: str = "wsm-ssl"
    model_type: str = "wav2vec2"
    # CNN feature extractor
    conv_dim: list = field(default_factory=lambda: [512] * 7)
    conv_kernel: list = field(default_factory=lambda: [10, 3, 3, 3, 3, 2, 2])
    conv_stride: list = field(default_factory=lambda: [5, 2, 2, 2, 2, 2, 2])
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    feat_act: str = "gelu"
    proj_layer_norm: bool = True
    # transformer
    width: int = 768
    heads: int = 12
    ffn: int = 3072
    act: str = "gelu"
    eps: float = 1e-5
    layers: int = 12
    stable_layer_norm: bool = False
    pos_kernel: int = 128
    pos_groups: int = 16
    pos_batch_norm: bool = False  # HuBERT's conv_pos_batch_norm
    rel_position_bias: bool = False  # WavLM
    adapter_dim: int = 0  # wav2vec2 MMS attention adapters (0: none)
    # conversion
    replace_layers: int = 4
    downsample: int = 2
    attn_window: int = 50  # frames each kept attention layer sees, itself included
    wsm_window: int = 25  # WSM window in context frames
    do_normalize: bool = True
    vocab: list = field(default_factory=lambda: list(TOKENS))
    source: str = ""

    @property
    def conv_stride_total(self) -> int:
        return math.prod(self.conv_stride)

    @property
    def samples_per_output_frame(self) -> int:
        return self.conv_stride_total * self.downsample

    @property
    def chunk_multiple(self) -> int:
        return self.samples_per_output_frame

    @property
    def kept_layers(self) -> int:
        return self.layers - self.replace_layers

    @property
    def pos_past(self) -> int:
        return self.pos_kernel // 2

    def conv_plan(self):
        """[(state length L_i, delay d_i)] per conv layer: with the last L_i
        inputs carried over, the causal layer's output j is the pretrained
        layer's output j - d_i, and a chunk of n * stride inputs gives n outputs."""
        plan, d_in = [], 0
        for k, s in zip(self.conv_kernel, self.conv_stride):
            d = -(-(k - s + d_in) // s)  # smallest delay with L >= k - s
            plan.append((d * s - d_in, d))
            d_in = d
        return plan

    @property
    def conv_delay_frames(self) -> int:
        return self.conv_plan()[-1][1]


def read_preprocessor(ckpt_dir: pathlib.Path) -> dict:
    p = ckpt_dir / "preprocessor_config.json"
    return json.loads(p.read_text()) if p.exists() else {}


def config_from_hf(hf, ckpt_dir, replace_layers, downsample, attn_window, wsm_window) -> SSLConfig:
    """Check that a transformers config is one this conversion handles; refuse clearly otherwise."""
    where = f"{ckpt_dir}"
    mt = getattr(hf, "model_type", None)
    if mt not in SUPPORTED:
        raise SystemExit(f"{where}: model_type `{mt}` is not supported; hark converts only "
                         f"{', '.join(SUPPORTED)} checkpoints (waveform input, CNN feature extractor, "
                         "convolutional positional embedding, post- or pre-LN attention layers)")
    pre = read_preprocessor(pathlib.Path(ckpt_dir))
    sr = int(pre.get("sampling_rate", SAMPLE_RATE_HZ))
    if sr != SAMPLE_RATE_HZ:
        raise SystemExit(f"{where}: trained on {sr} Hz audio; hark streams 16 kHz only")
    if hf.feat_extract_norm not in ("group", "layer"):
        raise SystemExit(f"{where}: feat_extract_norm `{hf.feat_extract_norm}` is neither `group` nor `layer`")
    if getattr(hf, "add_adapter", False):
        raise SystemExit(f"{where}: add_adapter (a strided convolution adapter after the encoder) is not "
                         "supported: it is not part of the causal conversion")
    for name in (hf.feat_extract_activation, hf.hidden_act):
        if name not in ACTIVATIONS:
            raise SystemExit(f"{where}: activation `{name}` is not supported ({', '.join(ACTIVATIONS)})")
    if any(k < s for k, s in zip(hf.conv_kernel, hf.conv_stride)):
        raise SystemExit(f"{where}: a conv layer with kernel < stride skips samples; not supported")
    if not 0 <= replace_layers <= hf.num_hidden_layers:
        raise SystemExit(f"--replace-layers must be in 0..{hf.num_hidden_layers} (the model's layers)")
    if downsample not in (1, 2):
        raise SystemExit("--downsample must be 1 or 2")
    if attn_window < 2 or wsm_window < 2:
        raise SystemExit("--attn-window and --wsm-window must be at least 2 frames")
    return SSLConfig(
        model_type=mt,
        conv_dim=list(hf.conv_dim), conv_kernel=list(hf.conv_kernel), conv_stride=list(hf.conv_stride),
        conv_bias=bool(hf.conv_bias), feat_extract_norm=hf.feat_extract_norm,
        feat_act=hf.feat_extract_activation, proj_layer_norm=bool(getattr(hf, "feat_proj_layer_norm", True)),
        width=hf.hidden_size, heads=hf.num_attention_heads, ffn=hf.intermediate_size, act=hf.hidden_act,
        eps=float(hf.layer_norm_eps), layers=hf.num_hidden_layers,
        stable_layer_norm=bool(hf.do_stable_layer_norm), pos_kernel=hf.num_conv_pos_embeddings,
        pos_groups=hf.num_conv_pos_embedding_groups, pos_batch_norm=bool(getattr(hf, "conv_pos_batch_norm", False)),
        rel_position_bias=mt == "wavlm", adapter_dim=int(getattr(hf, "adapter_attn_dim", None) or 0),
        replace_layers=replace_layers, downsample=downsample, attn_window=attn_window, wsm_window=wsm_window,
        do_normalize=bool(pre.get("do_normalize", True)), source=str(ckpt_dir),
    )


def load_pretrained(ckpt_dir):
    """(transformers config, base model) from a local checkpoint directory, refusing unsupported types
    before any weights are read."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    ckpt_dir = pathlib.Path(ckpt_dir)
    if not (ckpt_dir / "config.json").exists():
        raise SystemExit(f"{ckpt_dir}: no config.json; --checkpoint must be a local Hugging Face checkpoint dir")
    hf = AutoConfig.from_pretrained(ckpt_dir, local_files_only=True)
    if getattr(hf, "model_type", None) not in SUPPORTED:
        config_from_hf(hf, ckpt_dir, 0, 1, 2, 2)  # raises the clear message
    model = AutoModel.from_pretrained(ckpt_dir, local_files_only=True, attn_implementation="eager")
    return hf, model.eval()


# ------------------------------------------------------------------ modules --
class FixedChannelNorm(nn.Module):
    """GroupNorm(C groups, C channels) with the per-utterance statistics replaced
    by fixed ones: (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):  # [B, C, T]
        scale = self.weight * torch.rsqrt(self.var + self.eps)
        return x * scale.view(1, -1, 1) + (self.bias - self.mean * scale).view(1, -1, 1)


class WindowedAttention(nn.Module):
    """The pretrained multi-head self-attention, causal over the last `window`
    frames (the current one included). State: keys and values of the last
    window-1 frames and a 0/1 mask of which of those slots hold real frames.
    With `rel_bias`, WavLM's gated relative position bias over that window."""

    def __init__(self, width: int, heads: int, window: int, rel_bias: bool = False):
        super().__init__()
        self.heads, self.window = heads, window
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)
        self.rel_bias = rel_bias
        if rel_bias:
            self.gru_rel_pos_linear = nn.Linear(width // heads, 8)
            self.gru_rel_pos_const = nn.Parameter(torch.ones(1, heads, 1, 1))
            self.register_buffer("rel_table", torch.zeros(heads, window))  # [h, r]: key r frames back

    @torch.no_grad()
    def init_from(self, att, rel_source=None):
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            getattr(self, name).load_state_dict(getattr(att, name).state_dict())
        if self.rel_bias:
            self.gru_rel_pos_linear.load_state_dict(att.gru_rel_pos_linear.state_dict())
            self.gru_rel_pos_const.copy_(att.gru_rel_pos_const)
            rel = -torch.arange(self.window)  # key position - query position
            buckets = rel_source._relative_positions_bucket(rel)
            self.rel_table.copy_(rel_source.rel_attn_embed(buckets).T)

    def forward(self, x, s_k, s_v, s_valid):
        # x [B, N, D]; s_k, s_v [B, M-1, D]; s_valid [B, M-1, 1]
        b, n, d = x.shape
        h, m = self.heads, self.window
        hd = d // h
        k = torch.cat([s_k, self.k_proj(x)], dim=1)  # [B, M-1+N, D]
        v = torch.cat([s_v, self.v_proj(x)], dim=1)
        valid = torch.cat([s_valid, torch.ones_like(x[:, :, :1])], dim=1)  # [B, M-1+N, 1]
        q = self.q_proj(x).view(b, n, h, hd).transpose(1, 2) * hd**-0.5
        kh = k.view(b, n + m - 1, h, hd).permute(0, 2, 3, 1)
        vh = v.view(b, n + m - 1, h, hd).transpose(1, 2)
        scores = torch.matmul(q, kh)  # [B, H, N, M-1+N]
        rows = torch.arange(n, device=x.device).view(-1, 1)
        slots = torch.arange(n + m - 1, device=x.device).view(1, -1)
        back = rows + (m - 1) - slots  # how many frames before the query each slot is
        if self.rel_bias:
            # WavLM: gate from the per-head input, times the bias of the distance
            g = self.gru_rel_pos_linear(x.view(b, n, h, hd).transpose(1, 2))  # [B, H, N, 8]
            g = torch.sigmoid(g.view(b, h, n, 2, 4).sum(-1))
            gate = g[..., :1] * (g[..., 1:] * self.gru_rel_pos_const - 1.0) + 2.0  # [B, H, N, 1]
            scores = scores + gate * self.rel_table[:, back.clamp(0, m - 1)].unsqueeze(0)
        allowed = ((back >= 0) & (back < m)).view(1, 1, n, n + m - 1) & (valid.view(b, 1, 1, -1) > 0.5)
        scores = torch.where(allowed, scores, torch.full_like(scores, -1e9))
        a = torch.matmul(torch.softmax(scores, dim=-1), vh)  # [B, H, N, hd]
        out = self.out_proj(a.transpose(1, 2).reshape(b, n, d))
        keep = m - 1
        return out, k[:, -keep:], v[:, -keep:], valid[:, -keep:]


class WSMMixer(nn.Module):
    """Causal Windowed SummaryMixing in place of self-attention (student.py's
    WSMLayer without its own norm):
    h_t = c([f(y_t), mean_{u<=t} s(y_u), mean_{t-W<u<=t} s(y_u)]).
    State: running sum and count of s, and the last W-1 values of s."""

    def __init__(self, width: int, window: int):
        super().__init__()
        self.window = window
        self.local = nn.Linear(width, width)
        self.summary = nn.Linear(width, width)
        self.combine = nn.Linear(3 * width, width)

    @torch.no_grad()
    def init_from_attention(self, att, mix=(0.2, 0.3, 0.5)):
        for lin in (self.local, self.summary):
            lin.load_state_dict(att.v_proj.state_dict())
        self.combine.weight.copy_(torch.cat([att.out_proj.weight * m for m in mix], dim=1))
        self.combine.bias.copy_(att.out_proj.bias)

    def forward(self, y, s_sum, s_count, s_win):
        g, wmean, *state = causal_summaries(self.summary(y), s_sum, s_count, s_win, self.window)
        return (self.combine(torch.cat([self.local(y), g, wmean], dim=2)), *state)


class StreamLayer(nn.Module):
    """One pretrained transformer layer with its attention swapped for a
    streaming mixer; post-LN (wav2vec2 base) or pre-LN ("stable") as the
    checkpoint was."""

    def __init__(self, cfg: SSLConfig, mixer: nn.Module):
        super().__init__()
        d = cfg.width
        self.stable = cfg.stable_layer_norm
        self.act = ACTIVATIONS[cfg.act]
        self.mixer = mixer
        self.layer_norm = nn.LayerNorm(d, eps=cfg.eps)
        self.ff_in = nn.Linear(d, cfg.ffn)
        self.ff_out = nn.Linear(cfg.ffn, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=cfg.eps)
        if cfg.adapter_dim:
            self.adapter = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.adapter_dim), nn.ReLU(),
                                         nn.Linear(cfg.adapter_dim, d))
        else:
            self.adapter = None

    @torch.no_grad()
    def init_from(self, layer):
        self.layer_norm.load_state_dict(layer.layer_norm.state_dict())
        self.final_layer_norm.load_state_dict(layer.final_layer_norm.state_dict())
        self.ff_in.load_state_dict(layer.feed_forward.intermediate_dense.state_dict())
        self.ff_out.load_state_dict(layer.feed_forward.output_dense.state_dict())
        if self.adapter is not None:
            a = layer.adapter_layer
            for dst, src in zip((self.adapter[0], self.adapter[1], self.adapter[3]), (a.norm, a.linear_1, a.linear_2)):
                dst.load_state_dict(src.state_dict())

    def ff(self, x):
        return self.ff_out(self.act(self.ff_in(x)))

    def forward(self, x, *state):
        if self.stable:
            h, *st = self.mixer(self.layer_norm(x), *state)
            x = x + h
            x = x + self.ff(self.final_layer_norm(x))
            if self.adapter is not None:
                x = x + self.adapter(x)
        else:
            h, *st = self.mixer(x, *state)
            x = self.layer_norm(x + h)
            x = self.final_layer_norm(x + self.ff(x))
        return x, st


class SSLStudent(nn.Module):
    def __init__(self, cfg: SSLConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.feat_act = ACTIVATIONS[cfg.feat_act]
        self.register_buffer("wave_mean", torch.zeros(1))
        self.register_buffer("wave_scale", torch.ones(1))
        dims = [1] + list(cfg.conv_dim)
        self.convs = nn.ModuleList(
            nn.Conv1d(dims[i], dims[i + 1], k, stride=s, bias=cfg.conv_bias)
            for i, (k, s) in enumerate(zip(cfg.conv_kernel, cfg.conv_stride))
        )
        if cfg.feat_extract_norm == "layer":
            self.conv_norms = nn.ModuleList(nn.LayerNorm(c) for c in cfg.conv_dim)
        else:
            self.conv_norms = nn.ModuleList([FixedChannelNorm(cfg.conv_dim[0])])
        self.proj_norm = nn.LayerNorm(cfg.conv_dim[-1], eps=cfg.eps) if cfg.proj_layer_norm else None
        self.proj = nn.Linear(cfg.conv_dim[-1], d)
        if cfg.pos_batch_norm:
            self.register_buffer("pos_bn_scale", torch.ones(d))
            self.register_buffer("pos_bn_shift", torch.zeros(d))
        self.pos_conv = nn.Conv1d(d, d, cfg.pos_past + 1, groups=cfg.pos_groups)
        self.enc_norm = nn.LayerNorm(d, eps=cfg.eps)
        self.down = nn.Conv1d(d, d, cfg.downsample, stride=cfg.downsample) if cfg.downsample > 1 else None
        layers = []
        for i in range(cfg.layers):
            if i < cfg.kept_layers:
                mixer = WindowedAttention(d, cfg.heads, cfg.attn_window, cfg.rel_position_bias)
            else:
                mixer = WSMMixer(d, cfg.wsm_window)
            layers.append(StreamLayer(cfg, mixer))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(d, len(cfg.vocab))

    # ---- conversion ----------------------------------------------------------
    @torch.no_grad()
    def init_from_teacher(self, hf_model):
        cfg = self.cfg
        fe = hf_model.feature_extractor.conv_layers
        for conv, src in zip(self.convs, fe):
            conv.load_state_dict(src.conv.state_dict())
        if cfg.feat_extract_norm == "layer":
            for norm, src in zip(self.conv_norms, fe):
                norm.load_state_dict(src.layer_norm.state_dict())
        else:
            self.conv_norms[0].weight.copy_(fe[0].layer_norm.weight)
            self.conv_norms[0].bias.copy_(fe[0].layer_norm.bias)
        fp = hf_model.feature_projection
        if self.proj_norm is not None:
            self.proj_norm.load_state_dict(fp.layer_norm.state_dict())
        self.proj.load_state_dict(fp.projection.state_dict())
        pe = hf_model.encoder.pos_conv_embed
        # taps for offsets -K//2 .. 0; with the old nn.utils.weight_norm (transformers on torch 1.13)
        # `weight` is only computed in a forward hook, from weight_g and weight_v
        w = torch._weight_norm(pe.conv.weight_v, pe.conv.weight_g, 2) if hasattr(pe.conv, "weight_v") else pe.conv.weight
        self.pos_conv.weight.copy_(w[:, :, : cfg.pos_past + 1])
        self.pos_conv.bias.copy_(pe.conv.bias)
        if cfg.pos_batch_norm:
            bn = pe.batch_norm
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            self.pos_bn_scale.copy_(scale)
            self.pos_bn_shift.copy_(bn.bias - bn.running_mean * scale)
        self.enc_norm.load_state_dict(hf_model.encoder.layer_norm.state_dict())
        if self.down is not None:
            eye = torch.eye(cfg.width) / cfg.downsample
            self.down.weight.copy_(eye.unsqueeze(2).repeat(1, 1, cfg.downsample))
            self.down.bias.zero_()
        src_layers = hf_model.encoder.layers
        for i, (layer, src) in enumerate(zip(self.layers, src_layers)):
            layer.init_from(src)
            if isinstance(layer.mixer, WSMMixer):
                layer.mixer.init_from_attention(src.attention)
            else:
                layer.mixer.init_from(src.attention, src_layers[0].attention if cfg.rel_position_bias else None)

    @torch.no_grad()
    def estimate_input_statistics(self, waves):
        """Fixed stand-ins for what the pretrained model computed per utterance:
        the waveform normalization and the group-norm statistics."""
        cfg = self.cfg
        if cfg.do_normalize:
            self.wave_mean.fill_(float(np.mean([w.mean() for w in waves])))
            self.wave_scale.fill_(1.0 / float(np.mean([np.sqrt(w.var() + 1e-7) for w in waves])))
        if cfg.feat_extract_norm == "group":
            means, variances = [], []
            for w in waves:
                x = (torch.as_tensor(w, dtype=torch.float32) - self.wave_mean) * self.wave_scale
                y = self.convs[0](x.view(1, 1, -1))[0]  # [C, T]
                means.append(y.mean(1))
                variances.append(y.var(1, unbiased=False))
            self.conv_norms[0].mean.copy_(torch.stack(means).mean(0))
            self.conv_norms[0].var.copy_(torch.stack(variances).mean(0))

    def trainable_names(self):
        """Selective fine-tuning: WSM mixers, norms, causal positional conv, downsampler, head."""
        keep = ("pos_conv.", "down.", "head.")
        wsm = tuple(f"layers.{i}.mixer." for i in range(self.cfg.kept_layers, self.cfg.layers))
        return [n for n, _ in self.named_parameters() if n.startswith(keep + wsm) or "norm" in n]

    # ---- state ---------------------------------------------------------------
    def state_specs(self):
        cfg, d = self.cfg, self.cfg.width
        dims = [1] + list(cfg.conv_dim)
        specs = [(f"state_conv{i}", (dims[i], L), 0.0) for i, (L, _) in enumerate(cfg.conv_plan()) if L]
        if cfg.pos_past:
            specs.append(("state_pos", (d, cfg.pos_past), 0.0))
        for i in range(cfg.layers):
            if i < cfg.kept_layers:
                m = cfg.attn_window - 1
                specs += [(f"state_l{i}_k", (m, d), 0.0), (f"state_l{i}_v", (m, d), 0.0),
                          (f"state_l{i}_valid", (m, 1), 0.0)]
            else:
                specs += [(f"state_l{i}_sum", (1, d), 0.0), (f"state_l{i}_count", (1, 1), 0.0),
                          (f"state_l{i}_win", (cfg.wsm_window - 1, d), 0.0)]
        return specs

    def initial_state(self, batch: int = 1):
        dev = self.head.weight.device
        return [torch.full((batch, *shape), init, device=dev) for _, shape, init in self.state_specs()]

    # ---- forward -------------------------------------------------------------
    def conv_features(self, audio, conv_states):
        """The causal CNN feature extractor: audio [B, S] -> ([B, S / stride, C],
        new conv states); frame j is the pretrained extractor's frame j - d."""
        cfg = self.cfg
        st, new = iter(conv_states), []
        x = ((audio - self.wave_mean) * self.wave_scale).unsqueeze(1)  # [B, 1, S]
        for i, ((L, _), conv) in enumerate(zip(cfg.conv_plan(), self.convs)):
            if L:
                x = torch.cat([next(st), x], dim=2)
                new.append(x[:, :, -L:])
            x = conv(x)
            if cfg.feat_extract_norm == "layer":
                x = self.conv_norms[i](x.transpose(1, 2)).transpose(1, 2)
            elif i == 0:
                x = self.conv_norms[0](x)
            x = self.feat_act(x)
        return x.transpose(1, 2), new

    def forward(self, audio, *state, hidden=False):
        """audio [B, S] samples in [-1, 1) (S a multiple of samples_per_output_frame)
        -> (log_probs [B, S / samples_per_output_frame, V], *new_state); with
        hidden=True also each layer's output [B, N, width]."""
        cfg = self.cfg
        if not state:
            state = self.initial_state(audio.shape[0])
        n_conv = sum(1 for L, _ in cfg.conv_plan() if L)
        x, new = self.conv_features(audio, state[:n_conv])
        st = iter(state[n_conv:])
        if self.proj_norm is not None:
            x = self.proj_norm(x)
        x = self.proj(x)
        p = x.transpose(1, 2)
        if cfg.pos_batch_norm:
            p = p * self.pos_bn_scale.view(1, -1, 1) + self.pos_bn_shift.view(1, -1, 1)
        if cfg.pos_past:
            p = torch.cat([next(st), p], dim=2)
            new.append(p[:, :, -cfg.pos_past :])
        x = x + self.feat_act(self.pos_conv(p)).transpose(1, 2)
        if not cfg.stable_layer_norm:
            x = self.enc_norm(x)
        if self.down is not None:
            x = self.down(x.transpose(1, 2)).transpose(1, 2)
        outs = []
        for layer in self.layers:
            x, s = layer(x, next(st), next(st), next(st))
            new += s
            outs.append(x)
        if cfg.stable_layer_norm:
            x = self.enc_norm(x)
        lp = F.log_softmax(self.head(x), dim=-1)
        if hidden:
            return (lp, *new), outs
        return (lp, *new)

    def macs_per_second(self) -> int:
        cfg, d = self.cfg, self.cfg.width
        macs, rate, dims = 0.0, float(SAMPLE_RATE_HZ), [1] + list(cfg.conv_dim)
        for i, (k, s) in enumerate(zip(cfg.conv_kernel, cfg.conv_stride)):
            rate /= s
            macs += dims[i] * dims[i + 1] * k * rate
        macs += cfg.conv_dim[-1] * d * rate + d * (d // cfg.pos_groups) * (cfg.pos_past + 1) * rate
        ctx = rate / cfg.downsample
        macs += d * d * cfg.downsample * ctx if cfg.downsample > 1 else 0
        attn = 4 * d * d + 2 * cfg.attn_window * d
        wsm = 5 * d * d + 2 * cfg.wsm_window * d
        macs += (cfg.kept_layers * attn + cfg.replace_layers * wsm + cfg.layers * 2 * d * cfg.ffn) * ctx
        macs += d * len(cfg.vocab) * ctx
        return int(macs)


def build_student(ckpt_dir, replace_layers, downsample=2, attn_window=50, wsm_window=25):
    """(student initialised from the checkpoint, frozen HF teacher, SSLConfig)."""
    hf, teacher = load_pretrained(ckpt_dir)
    cfg = config_from_hf(hf, ckpt_dir, replace_layers, downsample, attn_window, wsm_window)
    student = SSLStudent(cfg)
    student.init_from_teacher(teacher)
    return student.eval(), teacher, cfg


def load_student(path) -> SSLStudent:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = SSLStudent(SSLConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model.eval()


# ------------------------------------------------------------------ export ---
def waveform_metadata(model: SSLStudent, chunk_samples: int) -> dict:
    """The keys of a waveform model that steps over `chunk_samples` samples."""
    return {
        "hark.sample_rate_hz": str(SAMPLE_RATE_HZ),
        "hark.input_kind": "waveform",
        "hark.chunk_samples": str(chunk_samples),
        "hark.samples_per_output_frame": str(model.cfg.samples_per_output_frame),
    }


def export(model: SSLStudent, out_path, chunk_samples: int, name: str = "hark-ssl", training: str = "",
           fp16: bool = False):
    """One ONNX file, input kind `waveform` (docs/model-contract.md)."""
    cfg = model.cfg
    if chunk_samples <= 0 or chunk_samples % cfg.chunk_multiple:
        raise SystemExit(f"chunk_samples must be a positive multiple of {cfg.chunk_multiple} "
                         f"(samples per output frame)")
    model = model.eval()
    meta = contract_metadata(model, name, training, waveform_metadata(model, chunk_samples))
    return write_step(model, "audio", torch.zeros(1, chunk_samples), meta, out_path, fp16)


def pad_samples(wave: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad samples to whole chunks (at least one), as the contract's end of stream does."""
    n = max(1, -(-len(wave) // multiple)) * multiple
    out = np.zeros(n, np.float32)
    out[: len(wave)] = wave
    return out


def onnx_log_probs(path, wave: np.ndarray) -> np.ndarray:
    """Run a waveform contract file as the runtime must: states from `init`,
    `chunk_samples` per call, the last chunk zero-padded; -> [frames, tokens]."""
    import onnx
    import onnxruntime as ort

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    if meta["hark.input_kind"] != "waveform":
        raise SystemExit(f"{path}: input kind {meta['hark.input_kind']}, not waveform")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    chunk, states = int(meta["hark.chunk_samples"]), json.loads(meta["hark.states"])
    names = [o.name for o in sess.get_outputs()]
    cur = {s["input"]: np.full(s["shape"], s["init"], np.float32) for s in states}
    padded, outs = pad_samples(wave, chunk), []
    for i in range(0, len(padded), chunk):
        res = dict(zip(names, sess.run(None, {"audio": padded[None, i : i + chunk], **cur})))
        outs.append(res["log_probs"][0])
        cur = {s["input"]: res[s["output"]] for s in states}
    return np.concatenate(outs)


# ------------------------------------------------------------------ teacher --
class Teacher:
    """The frozen, unmodified pretrained model: each layer's output for a padded batch."""

    def __init__(self, hf_model, do_normalize: bool):
        self.model = hf_model.eval()
        self.do_normalize = do_normalize
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._outs = []
        for layer in self.model.encoder.layers:
            layer.register_forward_hook(lambda mod, inp, out: self._outs.append(out[0] if isinstance(out, tuple) else out))

    @torch.no_grad()
    def layers(self, waves, device="cpu"):
        n = max(len(w) for w in waves)
        x = np.zeros((len(waves), n), np.float32)
        mask = np.zeros((len(waves), n), np.int64)
        for b, w in enumerate(waves):
            if self.do_normalize:  # Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm
                w = (w - w.mean()) / np.sqrt(w.var() + 1e-7)
            x[b, : len(w)] = w
            mask[b, : len(w)] = 1
        self._outs = []
        self.model(torch.from_numpy(x).to(device), attention_mask=torch.from_numpy(mask).to(device))
        return list(self._outs)


def teacher_targets(t_layers, delay_frames: int):
    """Teacher frame j sits at the student's conv frame j + delay_frames."""
    return [F.pad(t, (0, 0, delay_frames, 0)) for t in t_layers]


# -------------------------------------------------------------------- data ---
def load_split(corpus: pathlib.Path, split: str, limit=None):
    """(wav paths, texts, lengths in samples) of a corpus split."""
    items = read_manifest(corpus, split)
    if limit:
        items = items[:limit]
    paths = [corpus / it["path"] for it in items]
    lens = [int(round(it["duration_s"] * SAMPLE_RATE_HZ)) if "duration_s" in it else sf.info(str(p)).frames
            for it, p in zip(items, paths)]
    return paths, [it["text"] for it in items], lens


def read_wave(path) -> np.ndarray:
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE_HZ:
        raise SystemExit(f"{path}: {sr} Hz, the corpus must be 16 kHz")
    return wave[:, 0]


def student_batch(waves, multiple, device="cpu"):
    """Zero-padded [B, S] (S a multiple of `multiple`) and output frames per item."""
    n = -(-max(len(w) for w in waves) // multiple) * multiple
    x = np.zeros((len(waves), n), np.float32)
    for b, w in enumerate(waves):
        x[b, : len(w)] = w
    return torch.from_numpy(x).to(device), torch.tensor([-(-len(w) // multiple) for w in waves])


def ms_units(lens):
    """Lengths in 10 ms units, as offsets for train.make_batches."""
    return np.concatenate([[0], np.cumsum([max(1, n // 160) for n in lens])]).astype(np.int64)


# -------------------------------------------------------------------- train --
def train_main(a):
    torch.set_num_threads(a.threads)
    run, log = open_run(a.run)

    corpus = pathlib.Path(a.corpus)
    train = load_split(corpus, "train", a.limit)
    dev = load_split(corpus, "dev", a.limit)
    torch.manual_seed(a.seed)
    model, hf_model, cfg = build_student(a.checkpoint, a.replace_layers, a.downsample, a.attn_window, a.wsm_window)
    resumed = (run / "last.pt").exists()
    if resumed:
        ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        saved = {k: v for k, v in ck["config"].items() if k != "source"}
        if saved != {k: v for k, v in asdict(cfg).items() if k != "source"}:
            raise SystemExit(f"{run} holds a different conversion ({ck['config']}); use another --run")
        model.load_state_dict(ck["model"])
    else:
        model.estimate_input_statistics([read_wave(p) for p in train[0][: a.stats_clips]])
    device = torch.device(a.device)
    model.to(device)
    teacher = Teacher(hf_model.to(device), cfg.do_normalize)
    names = set(model.trainable_names())
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    params = [p for n, p in model.named_parameters() if n in names]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)

    lr_at = lr_schedule(a.lr, a.warmup, a.steps, floor=0.05)

    st = {"step": 0, "best": float("inf"), "epoch": 0, "pos": 0}
    rng = random.Random(a.seed)
    if resumed:
        opt.load_state_dict(ck["opt"])
        st = {k: ck[k] for k in st}
        rng.setstate(ck["rng"])
        log(f"resumed at step {st['step']}")
    n_train, n_total = sum(p.numel() for p in params), count_params(model)
    hours = sum(train[2]) / SAMPLE_RATE_HZ / 3600
    training = (
        f"converted from the {cfg.model_type} checkpoint {pathlib.Path(a.checkpoint).name} (top "
        f"{cfg.replace_layers} of {cfg.layers} attention layers -> WSM, downsample {cfg.downsample}); trained "
        f"{n_train} of {n_total} parameters on the synthetic corpus {corpus} ({len(train[1])} clips, "
        f"{hours:.1f} h); command: python train/experiments/ssl_convert.py " + " ".join(a.argv)
    )
    log("start", params=n_total, trainable=n_train, frozen=n_total - n_train, config=asdict(cfg),
        wave_mean=float(model.wave_mean), wave_scale=float(model.wave_scale), training=training)

    def save(name):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **st, "rng": rng.getstate(),
                    "config": asdict(cfg), "training": training, "trainable": n_train}, run / (name + ".tmp"))
        (run / (name + ".tmp")).replace(run / name)

    def evaluate():
        def batch(ids):
            x, out_lens = student_batch([read_wave(dev[0][i]) for i in ids], cfg.chunk_multiple, device)
            return x, out_lens
        return score(model, dev[1], dev[2], batch, cfg.vocab, a.eval_utts)

    targets = [encode(t, cfg.vocab) for t in train[1]]
    offsets = ms_units(train[2])

    def losses(ids):
        waves = [read_wave(train[0][i]) for i in ids]
        x, out_lens = student_batch(waves, cfg.chunk_multiple, device)
        t_layers = teacher_targets(teacher.layers(waves, device), cfg.conv_delay_frames)
        (lp, *_), s_layers = model(x, hidden=True)
        tg = [targets[i] for i in ids]
        ctc = F.ctc_loss(lp.transpose(0, 1).cpu(), torch.tensor([t for s in tg for t in s], dtype=torch.long),
                         out_lens, torch.tensor([len(s) for s in tg]), blank=BLANK_ID, zero_infinity=True)
        dist = distill_loss([s.cpu() for s in s_layers], [t.cpu() for t in t_layers], out_lens, cfg.downsample,
                            delay=a.distill_delay)
        return ctc, dist, sum(len(w) for w in waves) / SAMPLE_RATE_HZ

    model.train()
    distill_loop(
        st, opt, params, lr_at, steps=a.steps, minutes=a.minutes, eval_every=a.eval_every, log_every=a.log_every,
        distill_weight=a.distill_weight,
        epoch_batches=lambda epoch: make_batches(offsets, int(a.batch_seconds * 100), random.Random(a.seed + epoch),
                                                 max_len_frames=int(a.max_seconds * 100), min_len_frames=10),
        losses=losses, evaluate=evaluate, save=save, log=log)


def export_main(a):
    model = load_student(a.ckpt)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    export(model, a.out, a.chunk_samples, a.name, ck.get("training", ""), fp16=a.fp16)
    size = pathlib.Path(a.out).stat().st_size
    print(f"wrote {a.out}: {size / 1e6:.1f} MB, {count_params(model)} params "
          f"({ck.get('trainable', '?')} trained), {model.macs_per_second() / 1e6:.1f} MMAC/s, "
          f"chunk {a.chunk_samples} samples = {1000 * a.chunk_samples / SAMPLE_RATE_HZ:.0f} ms, "
          f"{model.cfg.samples_per_output_frame} samples per output frame")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="convert a checkpoint and fine-tune the student")
    t.add_argument("--checkpoint", required=True, help="local Hugging Face wav2vec2/hubert/wavlm checkpoint dir")
    t.add_argument("--corpus", default="data/corpus")
    t.add_argument("--run", default="train/runs/ssl")
    t.add_argument("--replace-layers", type=int, default=4, help="top attention layers replaced by WSM")
    t.add_argument("--downsample", type=int, default=2, help="1: context layers at 20 ms; 2: at 40 ms")
    t.add_argument("--attn-window", type=int, default=50,
                   help="frames (context rate, current included) each kept attention layer sees")
    t.add_argument("--wsm-window", type=int, default=25, help="WSM window in context frames")
    t.add_argument("--minutes", type=float, default=60, help="training time budget (wall clock, this run)")
    t.add_argument("--steps", type=int, default=4000, help="schedule length (the budget may end it first)")
    t.add_argument("--batch-seconds", type=float, default=60, help="audio per batch (padded), seconds")
    t.add_argument("--max-seconds", type=float, default=15, help="longest training clip used, seconds")
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--distill-weight", type=float, default=1.0)
    t.add_argument("--distill-delay", type=int, default=1, help="student frames the teacher targets are delayed by")
    t.add_argument("--stats-clips", type=int, default=200, help="training clips for the fixed normalizations")
    t.add_argument("--eval-every", type=int, default=200)
    t.add_argument("--eval-utts", type=int, default=400)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--limit", type=int, default=0, help="use only the first N clips of each split (smoke runs)")
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="cpu", help="cpu, cuda, ... (the student and the teacher)")
    e = sub.add_parser("export", help="export a trained student to one ONNX contract file")
    e.add_argument("--ckpt", required=True, help="a student checkpoint (<run>/best.pt or last.pt)")
    e.add_argument("--out", required=True)
    e.add_argument("--chunk-samples", type=int, default=5120,
                   help="samples per model step (a multiple of samples per output frame; 5120 = 320 ms)")
    e.add_argument("--name", default="hark-ssl")
    e.add_argument("--fp16", action="store_true", help="store weights as float16 (computed in float32)")
    a = ap.parse_args(argv)
    a.argv = argv
    if a.cmd == "train":
        train_main(a)
    else:
        export_main(a)


if __name__ == "__main__":
    main()
