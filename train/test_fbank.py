"""The training fbank matches kaldi-native-fbank, and the Rust test vectors are current.

Regenerating the vectors: `python train/test_fbank.py --write` (they are
derived from a fixed seed, so the file only changes when the features do).
"""

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import fbank as F  # noqa: E402

VECTORS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "fbank_vectors.json"


def reference(wave: np.ndarray) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = F.SAMPLE_RATE_HZ
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.preemph_coeff = F.PREEMPHASIS
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.mel_opts.num_bins = F.NUM_BINS
    opts.mel_opts.low_freq = F.LOW_FREQ_HZ
    opts.mel_opts.high_freq = 0.0  # Nyquist
    opts.use_energy = False
    opts.use_power = True
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(F.SAMPLE_RATE_HZ, (wave * F.SAMPLE_SCALE).astype(np.float32).tolist())
    fb.input_finished()
    return np.array([fb.get_frame(i) for i in range(fb.num_frames_ready)], dtype=np.float32)


def reference_signal(seed: int = 7, seconds: float = 0.6) -> np.ndarray:
    """Chirp + harmonics + noise + a stretch of digital silence: covers the log floor."""
    rng = np.random.default_rng(seed)
    n = int(F.SAMPLE_RATE_HZ * seconds)
    t = np.arange(n) / F.SAMPLE_RATE_HZ
    x = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t)
    x += 0.1 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(n)
    x[: n // 3] += 0.05  # DC offset, removed per frame
    x[n // 2 : n // 2 + 1200] = 0.0
    return x.astype(np.float32).astype(np.float64)


def test_matches_kaldi_native_fbank():
    for seed in range(3):
        wave = reference_signal(seed)
        ours = F.fbank(wave).numpy()
        ref = reference(wave)
        assert ours.shape == ref.shape == (F.num_frames(len(wave)), F.NUM_BINS)
        # Log-mel values. kaldi-native-fbank runs in float32, so bins whose
        # energy is tiny next to the frame's (log value < 5, i.e. < 150 in
        # int16-scaled power) carry its rounding error; speech sits at 5..25.
        diff = np.abs(ours - ref)
        loud = ref > 5.0
        assert np.max(diff[loud]) < 2e-3, np.max(diff[loud])
        assert np.max(diff[~loud], initial=0.0) < 2e-2, np.max(diff[~loud])


def test_digital_silence_is_the_pad_value():
    ours = F.fbank(np.zeros(800)).numpy()
    assert np.allclose(ours, F.PAD_FRAME_VALUE, atol=1e-5)


def test_frame_count_snip_edges():
    assert F.num_frames(399) == 0
    assert F.num_frames(400) == 1
    assert F.num_frames(559) == 1
    assert F.num_frames(560) == 2


def vectors() -> dict:
    wave = reference_signal(11, seconds=0.5)
    return {
        "description": "contract v1 fbank test vectors: waveform in [-1,1) at 16 kHz; "
        "frames from kaldi-native-fbank (reference) and from train/fbank.py",
        "sample_rate": F.SAMPLE_RATE_HZ,
        "num_bins": F.NUM_BINS,
        "waveform": [float(v) for v in wave.astype(np.float32)],
        "frames": reference(wave).round(5).tolist(),
        "frames_train": F.fbank(wave).numpy().round(5).tolist(),
    }


def test_vectors_file_is_current():
    stored = json.loads(VECTORS.read_text())
    fresh = vectors()
    assert stored["waveform"] == fresh["waveform"]
    assert np.allclose(stored["frames"], fresh["frames"], atol=1e-4)


if __name__ == "__main__" and "--write" in sys.argv:
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps(vectors()))
    print("wrote", VECTORS)
