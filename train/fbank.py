"""Kaldi-compatible log-mel filterbank used for training (contract v1).

This module owns the exact feature definition of docs/model-contract.md.
The Rust runtime (src/frontend.rs) reproduces it; `test_fbank.py` checks
this implementation against kaldi-native-fbank and writes the test vectors
the Rust side checks against. Pure functions, CPU, no state.
"""

import math

import numpy as np
import torch

SAMPLE_RATE_HZ = 16000
NUM_BINS = 80
FRAME_LENGTH_SAMPLES = 400
FRAME_SHIFT_SAMPLES = 160
FFT_SIZE = 512
PREEMPHASIS = 0.97
LOW_FREQ_HZ = 20.0
HIGH_FREQ_HZ = 8000.0
LOG_FLOOR = float(np.finfo(np.float32).eps)  # 1.1920929e-07
SAMPLE_SCALE = 32768.0
PAD_FRAME_VALUE = math.log(LOG_FLOOR)  # fbank of digital silence

FBANK_METADATA = {
    "hark.sample_rate_hz": str(SAMPLE_RATE_HZ),
    "hark.input_kind": "fbank",
    "hark.fbank.num_bins": str(NUM_BINS),
    "hark.fbank.frame_length_samples": str(FRAME_LENGTH_SAMPLES),
    "hark.fbank.frame_shift_samples": str(FRAME_SHIFT_SAMPLES),
    "hark.fbank.fft_size": str(FFT_SIZE),
    "hark.fbank.window": "povey",
    "hark.fbank.preemphasis": repr(PREEMPHASIS),
    "hark.fbank.remove_dc_offset": "true",
    "hark.fbank.dither": "0",
    "hark.fbank.snip_edges": "true",
    "hark.fbank.low_freq_hz": repr(LOW_FREQ_HZ).rstrip("0").rstrip("."),
    "hark.fbank.high_freq_hz": repr(HIGH_FREQ_HZ).rstrip("0").rstrip("."),
    "hark.fbank.use_power": "true",
    "hark.fbank.log_floor": "1.1920929e-07",
    "hark.fbank.sample_scale": "32768",
    "hark.pad_frame_value": f"{PAD_FRAME_VALUE:.6f}",
}


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """Kaldi's triangular mel filters, shape [FFT_SIZE // 2 + 1, NUM_BINS]."""
    n_fft_bins = FFT_SIZE // 2
    mel_low, mel_high = _mel(LOW_FREQ_HZ), _mel(HIGH_FREQ_HZ)
    delta = (mel_high - mel_low) / (NUM_BINS + 1)
    fft_mel = _mel(np.arange(n_fft_bins + 1) * SAMPLE_RATE_HZ / FFT_SIZE)
    w = np.zeros((n_fft_bins + 1, NUM_BINS), dtype=np.float64)
    for m in range(NUM_BINS):
        left = mel_low + m * delta
        center = left + delta
        right = center + delta
        up = (fft_mel - left) / (center - left)
        down = (right - fft_mel) / (right - center)
        tri = np.where(fft_mel <= center, up, down)
        inside = (fft_mel > left) & (fft_mel < right)
        w[:, m] = np.where(inside, tri, 0.0)
    return w.astype(np.float32)


def povey_window() -> np.ndarray:
    n = np.arange(FRAME_LENGTH_SAMPLES, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / (FRAME_LENGTH_SAMPLES - 1))
    return (hann**0.85).astype(np.float32)


_MEL = torch.from_numpy(mel_matrix())
_WINDOW = torch.from_numpy(povey_window())


def num_frames(num_samples: int) -> int:
    if num_samples < FRAME_LENGTH_SAMPLES:
        return 0
    return 1 + (num_samples - FRAME_LENGTH_SAMPLES) // FRAME_SHIFT_SAMPLES


def fbank(wave) -> torch.Tensor:
    """Log-mel features of a mono 16 kHz waveform in [-1, 1).

    Returns [num_frames, NUM_BINS] float32 (float64 arithmetic inside so the
    result is a reference for the float32 runtime).
    """
    x = torch.as_tensor(np.asarray(wave, dtype=np.float64)) * SAMPLE_SCALE
    n = num_frames(x.shape[0])
    if n == 0:
        return torch.zeros((0, NUM_BINS), dtype=torch.float32)
    frames = x.unfold(0, FRAME_LENGTH_SAMPLES, FRAME_SHIFT_SAMPLES)[:n].clone()
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - PREEMPHASIS * prev
    frames = frames * _WINDOW.double()
    spec = torch.fft.rfft(frames, n=FFT_SIZE, dim=1)
    power = spec.real**2 + spec.imag**2
    mel = power @ _MEL.double()
    return torch.log(torch.clamp(mel, min=LOG_FLOOR)).float()
