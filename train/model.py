"""hark's streaming acoustic model: causal conv subsampling, a learned sequence
downsampler, Windowed SummaryMixing (WSM) context blocks and a CTC head.

Every module takes its streaming state explicitly and returns the new state,
so one code path serves training (a whole utterance from the initial state)
and export (one fixed-size chunk per call, docs/model-contract.md). The
forward pass over a whole utterance equals the chunked one exactly, up to
float rounding; test_export.py checks it.

Shapes: B batch, T feature frames (10 ms), T/4 frames after subsampling
(40 ms), N = T/(4*ds) frames in the context layers (80 ms with ds=2).

SummaryMixing (Parcollet et al., "SummaryMixing: a linear-complexity
alternative to self-attention for speech recognition and understanding") and
its windowed variant are re-implemented here from their equations:
    h_t = c([f(x_t), mean_{u<=t} s(x_u), mean_{t-W<u<=t} s(x_u)])
with f, s linear+GELU and c linear; the global mean is causal (a running sum
and count carried as state), the window mean covers the last W frames
(the last W-1 values of s carried as state). The means are order-blind, and
the conv front end sees only ~110 ms, so f gets local order from a causal
depthwise convolution over the last K frames (K=5, 400 ms at 80 ms; the
last K-1 inputs carried as state), as the papers' Conformer-style variants
pair SummaryMixing with a convolution module.
"""

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

TOKENS = ["<blk>", " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
BLANK_ID = 0


@dataclass
class ModelConfig:
    arch: str = "wsm"  # "wsm" or "mhsa" (same-size self-attention variant)
    num_bins: int = 80
    d_conv: int = 256
    d_model: int = 256
    num_layers: int = 6
    ff_mult: int = 3
    window: int = 12  # WSM window in context frames (12 x 80 ms ~ 1 s)
    conv_kernel: int = 5  # causal depthwise conv before the local branch (0: none)
    downsample: int = 2  # 1: no downsampler; 2: 40 ms -> 80 ms
    # WSM summaries per group of this many context frames (0: causal, frame
    # by frame): every frame of a group reads the summaries up to the group's
    # last frame, so it hears the rest of its group. 4 (320 ms at 80 ms) is
    # the runtime's chunk: lookahead within the chunk, no added latency.
    summary_chunk: int = 0
    heads: int = 4  # mhsa only
    dropout: float = 0.1
    vocab: list = field(default_factory=lambda: list(TOKENS))

    @property
    def subsampling(self) -> int:
        return 4  # output frames are 40 ms in both variants

    @property
    def context_frames(self) -> int:
        """Feature frames (10 ms) per context frame of the WSM blocks."""
        return 4 * self.downsample

    @property
    def chunk_multiple(self) -> int:
        """Feature frames that every input length (training batch, exported
        chunk) is a multiple of: a context frame, or a whole summary group."""
        return self.context_frames * max(1, self.summary_chunk)


def gelu(x):
    return F.gelu(x)


class CausalConvSubsampling(nn.Module):
    """Two causal stride-2 convolutions (10 ms -> 40 ms) with explicit state:
    each keeps the last input frame of the previous chunk (kernel 3, stride 2)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conv1 = nn.Conv1d(cfg.num_bins, cfg.d_conv, 3, stride=2)
        self.conv2 = nn.Conv1d(cfg.d_conv, cfg.d_conv, 3, stride=2)

    def forward(self, x, st1, st2):
        # x [B, C_in, T]; st1 [B, C_in, 1]; st2 [B, d_conv, 1]
        x1 = torch.cat([st1, x], dim=2)
        y1 = gelu(self.conv1(x1))
        x2 = torch.cat([st2, y1], dim=2)
        y2 = gelu(self.conv2(x2))
        return y2, x[:, :, -1:], y1[:, :, -1:]


def ctc_head(width: int, vocab: int, hidden: int = 0) -> nn.Module:
    """A CTC output layer over `width` features: linear (hidden 0), or an MLP
    with `hidden` units (GELU, dropout 0.1)."""
    if not hidden:
        return nn.Linear(width, vocab)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, vocab))


def causal_depthwise(conv: nn.Conv1d, s_conv, y):
    """A causal depthwise convolution over time with explicit state: y [B, N, D]
    and s_conv [B, K-1, D] (the K-1 inputs before y) -> (out [B, N, D], new
    s_conv)."""
    yc = torch.cat([s_conv, y], dim=1)  # [B, K-1+N, D]
    k = conv.kernel_size[0]
    return conv(yc.transpose(1, 2)).transpose(1, 2), yc[:, -(k - 1) :, :]


def causal_summaries(s, s_sum, s_count, s_win, window: int, chunk: int = 0):
    """SummaryMixing's two summaries of a chunk of summary vectors s [B, N, D]
    given the state before it (s_sum [B, 1, D] and s_count [B, 1, 1]: sum
    and number of all earlier frames; s_win [B, W-1, D]: the last W-1
    earlier vectors, zeros at stream start). Returns (causal global mean
    [B, N, D], mean over the last W frames [B, N, D] (fewer at stream start:
    the divisor counts the real frames), new s_sum, new s_count, new s_win).
    Sums are matmuls with triangular / band masks, so the same ops run in
    training and in the exported chunk.

    chunk > 0 (N a multiple of it): every frame gets the summaries of the
    last frame of its group of `chunk` frames (the masks' rows say which
    frame each row sums up to), so a frame also sees the rest of its chunk.
    Streaming in steps of whole groups adds no latency (the runtime waits
    for the whole chunk anyway) and equals the batch forward; the state is
    the same."""
    n, w = s.shape[1], window
    rows = torch.arange(n, device=s.device).view(-1, 1)  # the frame each output row summarizes up to
    if chunk:
        rows = torch.div(rows, chunk, rounding_mode="floor") * chunk + (chunk - 1)
    tri = (torch.arange(n, device=s.device).view(1, -1) <= rows).to(s.dtype)
    total = s_sum + torch.matmul(tri, s)
    count = s_count + (rows + 1).to(s.dtype).view(1, n, 1)
    ext = torch.cat([s_win, s], dim=1)  # [B, W-1+N, D]
    idx = torch.arange(n + w - 1, device=s.device).view(1, -1)
    band = ((idx >= rows) & (idx <= rows + w - 1)).to(s.dtype)  # [N, W-1+N]
    wmean = torch.matmul(band, ext) / torch.clamp(count, max=float(w))
    return total / count, wmean, total[:, -1:, :], s_count + float(n), ext[:, -(w - 1) :, :]


class WSMBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.window = cfg.window
        self.summary_chunk = cfg.summary_chunk
        self.norm1 = nn.LayerNorm(d)
        self.kernel = cfg.conv_kernel
        if self.kernel:
            self.dwconv = nn.Conv1d(d, d, self.kernel, groups=d)
        self.local = nn.Linear(d, d)
        self.summary = nn.Linear(d, d)
        self.combine = nn.Linear(3 * d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, cfg.ff_mult * d)
        self.ff2 = nn.Linear(cfg.ff_mult * d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, s_sum, s_count, s_win, s_conv=None):
        # x [B, N, D]; s_sum [B, 1, D]; s_count [B, 1, 1]; s_win [B, W-1, D];
        # s_conv [B, K-1, D] (the last K-1 normalized inputs) when K > 0
        y = self.norm1(x)
        if self.kernel:
            yconv, new_conv = causal_depthwise(self.dwconv, s_conv, y)
            f = gelu(self.local(yconv))
        else:
            f = gelu(self.local(y))
        s = gelu(self.summary(y))
        g, wmean, *summary_state = causal_summaries(s, s_sum, s_count, s_win, self.window, self.summary_chunk)
        h = self.combine(torch.cat([f, g, wmean], dim=2))
        x = x + self.drop(h)
        x = x + self.drop(self.ff2(self.drop(gelu(self.ff1(self.norm2(x))))))
        out = [x, *summary_state]
        return out + [new_conv] if self.kernel else out


class MHSABlock(nn.Module):
    """Same-size causal self-attention block (batch form only; its streaming
    export needs a growing key/value cache and belongs to the benchmarks)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, cfg.ff_mult * d)
        self.ff2 = nn.Linear(cfg.ff_mult * d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        n = x.shape[1]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool, device=x.device), diagonal=1)
        y = self.norm1(x)
        a, _ = self.attn(y, y, y, attn_mask=mask, need_weights=False)
        x = x + self.drop(a)
        return x + self.drop(self.ff2(self.drop(gelu(self.ff1(self.norm2(x))))))


class HarkModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Global feature normalization, set from training data statistics.
        self.register_buffer("feat_mean", torch.zeros(cfg.num_bins))
        self.register_buffer("feat_std", torch.ones(cfg.num_bins))
        self.subsample = CausalConvSubsampling(cfg)
        if cfg.downsample == 1:
            self.down = nn.Conv1d(cfg.d_conv, cfg.d_model, 1)
        else:
            self.down = nn.Conv1d(cfg.d_conv, cfg.d_model, cfg.downsample, stride=cfg.downsample)
        block = WSMBlock if cfg.arch == "wsm" else MHSABlock
        self.blocks = nn.ModuleList([block(cfg) for _ in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(cfg.d_model)
        # Upsample back to 40 ms for character CTC: each context frame emits
        # `downsample` output frames.
        self.head = nn.Linear(cfg.d_model, cfg.downsample * len(cfg.vocab))

    # ---- state -------------------------------------------------------------
    def state_specs(self):
        """(name, shape without batch, init) of every state tensor, in call order."""
        cfg = self.cfg
        specs = [
            ("state_conv1", (cfg.num_bins, 1), 0.0),
            ("state_conv2", (cfg.d_conv, 1), 0.0),
        ]
        if cfg.arch == "wsm":
            for i in range(cfg.num_layers):
                specs += [
                    (f"state_l{i}_sum", (1, cfg.d_model), 0.0),
                    (f"state_l{i}_count", (1, 1), 0.0),
                    (f"state_l{i}_win", (cfg.window - 1, cfg.d_model), 0.0),
                ]
                if cfg.conv_kernel:
                    specs.append((f"state_l{i}_conv", (cfg.conv_kernel - 1, cfg.d_model), 0.0))
        return specs

    def initial_state(self, batch: int = 1):
        return [torch.full((batch, *shape), init) for _, shape, init in self.state_specs()]

    # ---- forward -----------------------------------------------------------
    def forward(self, feats, *state):
        """feats [B, T, num_bins] (T a multiple of chunk_multiple); returns
        (log_probs [B, T/4, V], *new_state)."""
        cfg = self.cfg
        if not state:
            state = self.initial_state(feats.shape[0])
        x = ((feats - self.feat_mean) / self.feat_std).transpose(1, 2)
        x, st1, st2 = self.subsample(x, state[0], state[1])
        x = self.down(x).transpose(1, 2)  # [B, N, D]
        new_state = [st1, st2]
        if cfg.arch == "wsm":
            k = 4 if cfg.conv_kernel else 3  # state tensors per block
            for i, blk in enumerate(self.blocks):
                x, *st = blk(x, *state[2 + k * i : 2 + k * (i + 1)])
                new_state += st
        else:
            for blk in self.blocks:
                x = blk(x)
        logits = self.head(self.norm(x))  # [B, N, ds*V]
        b, n, _ = logits.shape
        logits = logits.reshape(b, n * cfg.downsample, len(cfg.vocab))
        return (F.log_softmax(logits, dim=-1), *new_state)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_second(cfg: ModelConfig) -> int:
    """Multiply-accumulates per second of audio (matmuls and convolutions)."""
    fps_in = 100
    d, c, v = cfg.d_model, cfg.d_conv, len(cfg.vocab)
    macs = cfg.num_bins * c * 3 * fps_in / 2  # conv1 at 50 fps
    macs += c * c * 3 * fps_in / 4  # conv2 at 25 fps
    ctx_fps = fps_in / 4 / cfg.downsample
    macs += c * d * cfg.downsample * ctx_fps
    if cfg.arch == "wsm":
        # local, summary, combiner, feed-forward; the window/global means are
        # O(W*D) additions per frame when computed incrementally.
        per_frame = d * d * 2 + 3 * d * d + 2 * cfg.ff_mult * d * d + cfg.window * d
        per_frame += cfg.conv_kernel * d
    else:
        per_frame = 4 * d * d + 2 * cfg.ff_mult * d * d  # + attention, grows with length
    macs += per_frame * cfg.num_layers * ctx_fps
    macs += d * cfg.downsample * v * ctx_fps
    return int(macs)


def config_dict(cfg: ModelConfig) -> dict:
    return asdict(cfg)


def grow_from(model: "HarkModel", state: dict) -> int:
    """Load `state`, the state dict of a WSM model like `model` but with
    fewer blocks, into `model`, so that `model` computes exactly what the
    smaller one does: block i of the small model becomes block i * step
    (step = ratio of block counts, rounded down), and every block in
    between is a new one whose two residual branches (its combiner and
    second feed-forward layer) start at zero, so it passes its input
    through unchanged until training moves it. Returns the number of new
    blocks."""
    small = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    big = len(model.blocks)
    if model.cfg.arch != "wsm" or small > big:
        raise ValueError(f"cannot grow {small} blocks into {big} ({model.cfg.arch})")
    step = big // small
    where = {i: i * step for i in range(small)}
    own = model.state_dict()
    for k, v in state.items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            k = f"blocks.{where[int(i)]}.{rest}"
        if k not in own or own[k].shape != v.shape:
            raise ValueError(f"{k}: not in the grown model, or of another shape")
        own[k] = v
    new = [j for j in range(big) if j not in where.values()]
    for j in new:
        for name in ("combine", "ff2"):
            own[f"blocks.{j}.{name}.weight"] = torch.zeros_like(own[f"blocks.{j}.{name}.weight"])
            own[f"blocks.{j}.{name}.bias"] = torch.zeros_like(own[f"blocks.{j}.{name}.bias"])
    model.load_state_dict(own)
    return len(new)
