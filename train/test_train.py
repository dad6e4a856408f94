"""Training-side helpers that change what the model sees, and the training
loop end to end on a tiny corpus."""

import json
import pathlib
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from evalsets import write_jsonl  # noqa: E402
from train import add_noise, freq_warp, gain, pad_arrays, spec_augment, tempo  # noqa: E402


def test_warp_of_one_is_identity():
    x = torch.randn(2, 7, 80)
    assert torch.allclose(freq_warp(x.clone(), [1.0, 1.0]), x, atol=1e-6)


def test_warp_keeps_ends_and_moves_the_middle():
    ramp = torch.arange(80, dtype=torch.float32).expand(1, 3, 80).clone()
    for a in (0.88, 1.12):
        y = freq_warp(ramp.clone(), [a])[0, 0]
        assert y[0] == 0 and y[-1] == 79
        # a ramp reads back the position it sampled: alpha * j below the knee
        assert abs(float(y[40]) - a * 40) < 1e-4
        assert bool((y[1:] >= y[:-1]).all())  # monotonic: no bins swap places


def test_tempo_of_one_is_identity():
    f = np.random.default_rng(0).standard_normal((53, 80)).astype(np.float16)
    assert np.allclose(tempo(f, 1.0), f.astype(np.float32))


def test_tempo_changes_the_length_and_keeps_the_ends():
    # a ramp over time stays a ramp: frames are read at evenly spaced times
    f = np.repeat(np.arange(100, dtype=np.float32)[:, None], 80, axis=1)
    for rate, frames in ((1.1, 91), (0.9, 111), (2.0, 50)):
        g = tempo(f, rate)
        assert g.shape == (frames, 80)
        assert g[0, 0] == 0 and g[-1, 0] == 99
        assert np.allclose(np.diff(g[:, 0]), 99 / (frames - 1), atol=1e-4)


def test_noise_raises_quiet_frames_more_than_loud_ones():
    # log-mel energies: a loud frame (0) and digital silence (-16) per bin
    f = np.array([[0.0] * 80, [-16.0] * 80] * 20, dtype=np.float32)
    g = add_noise(f, 20.0, np.random.default_rng(0))
    assert g.shape == f.shape
    assert bool((g >= f).all())  # power is only ever added
    loud, quiet = g[0::2] - f[0::2], g[1::2] - f[1::2]
    assert float(loud.mean()) < 0.1 < float(quiet.mean())


def test_gain_matches_features_of_the_scaled_waveform():
    import fbank as FB

    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    wave[4000:8000] = 0.0  # digital silence stays silence
    loud = FB.fbank(wave).numpy().astype(np.float16)
    quiet = FB.fbank(0.1 * wave).numpy()  # 20 dB quieter
    g = gain(loud, -20.0)
    assert g.shape == loud.shape
    assert np.allclose(g, quiet, atol=0.02)
    assert np.allclose(gain(loud, 0.0), loud.astype(np.float32))


def test_specaug_none_leaves_the_features_alone_and_mild_masks_some():
    import random

    x = torch.randn(2, 400, 80)
    assert torch.equal(spec_augment(x.clone(), [400, 300], random.Random(0), "none"), x)
    masked = spec_augment(x.clone(), [400, 300], random.Random(0), "mild")
    assert not torch.equal(masked, x)


def test_padding_covers_each_stretched_clip():
    x, out_lens = pad_arrays([np.zeros((50, 80), np.float32), np.ones((13, 80), np.float32)], 8)
    assert x.shape == (2, 56, 80)
    assert out_lens.tolist() == [14, 4]
    assert bool((x[1, :13] == 1).all()) and bool((x[1, 13:] != 1).all())


def test_a_grown_model_computes_what_the_small_one_did():
    from model import HarkModel, ModelConfig, grow_from

    torch.manual_seed(0)
    small = HarkModel(ModelConfig(num_layers=3)).eval()
    for p in small.parameters():  # nothing left at its initial zero
        p.data += 0.01 * torch.randn_like(p)
    big = HarkModel(ModelConfig(num_layers=7)).eval()
    assert grow_from(big, small.state_dict()) == 4
    x = torch.randn(2, 64, 80)
    with torch.no_grad():
        assert torch.allclose(big(x)[0], small(x)[0], atol=1e-5)
        # the old blocks sit at 0, 2, 4; the new ones still learn
        assert torch.equal(big.blocks[2].ff1.weight, small.blocks[1].ff1.weight)
    assert big.blocks[1].combine.weight.abs().sum() == 0


def _tiny_corpus(root):
    """A corpus of a few short noise clips with texts, as make_corpus.py/mix.py lay it out."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("dev", 2)):
        (root / split / "wav").mkdir(parents=True)
        rows = []
        for i in range(n):
            path = f"{split}/wav/{i}.wav"
            sf.write(root / path, (0.1 * rng.standard_normal(8000 + 1600 * i)).astype(np.float32), 16000)
            rows.append({"path": path, "text": ["yes", "no", "go left"][i % 3]})
        write_jsonl(root / split / "manifest.jsonl", rows)
    return root


def test_training_runs_resumes_and_refuses_a_missing_gpu(tmp_path, monkeypatch):
    import train as T

    corpus, run = _tiny_corpus(tmp_path / "corpus"), tmp_path / "run"
    args = ["train.py", "--corpus", str(corpus), "--run", str(run), "--d-model", "32", "--layers", "2",
            "--warmup", "1", "--eval-every", "2", "--threads", "1", "--specaug", "strong", "--tempo", "0.1", "--inter-ctc", "0.3"]
    monkeypatch.setattr(sys, "argv", args + ["--steps", "2"])
    T.main()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    start = next(x for x in log if x["msg"] == "start")
    assert start["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert [x["step"] for x in log if x["msg"] == "dev"] == [2]
    assert (run / "last.pt").exists() and (run / "best.pt").exists()
    # the same command with more steps continues from last.pt
    monkeypatch.setattr(sys, "argv", args + ["--steps", "4"])
    T.main()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert any(x["msg"] == "resumed at step 2" for x in log)
    assert [x["step"] for x in log if x["msg"] == "dev"] == [2, 4]
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=False)["step"] == 4
    assert start["config"]["dropout"] == 0.1
    # no regularization at all: no masks, no dropout, recorded in the config
    monkeypatch.setattr(sys, "argv", [a if a != "strong" else "none" for a in args]
                        + ["--run", str(tmp_path / "plain"), "--steps", "2", "--dropout", "0"])
    T.main()
    log = [json.loads(x) for x in (tmp_path / "plain" / "log.jsonl").read_text().splitlines()]
    assert next(x for x in log if x["msg"] == "start")["config"]["dropout"] == 0.0
    if not torch.cuda.is_available():
        monkeypatch.setattr(sys, "argv", args + ["--steps", "6", "--device", "cuda"])
        with pytest.raises(SystemExit, match="no CUDA device"):
            T.main()
