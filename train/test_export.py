"""Export tests: the ONNX file run chunk by chunk (onnxruntime) equals the
whole-utterance PyTorch forward; the file carries the whole contract; WSM
state does not grow with the stream; the shipped model follows the contract;
an exported file's weights load back into the model for fine-tuning.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fbank as FB  # noqa: E402
from evalsets import SHIPPED_MODEL  # noqa: E402
from evaluate import Recognizer, pad_to_chunks  # noqa: E402
from export import export, weights_from_onnx  # noqa: E402
from model import HarkModel, ModelConfig  # noqa: E402

SHIPPED = HERE.parent / SHIPPED_MODEL

REQUIRED_KEYS = [
    "hark.contract_version", "hark.model_name", "hark.arch", "hark.num_params",
    "hark.macs_per_second", "hark.sample_rate_hz", "hark.input_kind",
    "hark.fbank.num_bins", "hark.fbank.frame_length_samples", "hark.fbank.frame_shift_samples",
    "hark.fbank.fft_size", "hark.fbank.window", "hark.fbank.preemphasis",
    "hark.fbank.remove_dc_offset", "hark.fbank.dither", "hark.fbank.snip_edges",
    "hark.fbank.low_freq_hz", "hark.fbank.high_freq_hz", "hark.fbank.use_power",
    "hark.fbank.log_floor", "hark.fbank.sample_scale", "hark.chunk_frames",
    "hark.chunk_shift_frames", "hark.left_context_frames", "hark.subsampling",
    "hark.pad_frame_value", "hark.token_kind", "hark.tokens", "hark.blank_id",
    "hark.states", "hark.reset_on_endpoint", "hark.training",
]


def small_model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(d_conv=64, d_model=64, num_layers=3, window=5, **kw)
    m = HarkModel(cfg)
    # non-trivial normalization so the baked constants are exercised
    m.feat_mean.uniform_(5, 10)
    m.feat_std.uniform_(1, 3)
    return m.eval()


def speechlike_feats(frames, seed=1):
    rng = np.random.default_rng(seed)
    wave = 0.1 * rng.standard_normal(FB.FRAME_LENGTH_SAMPLES + (frames - 1) * FB.FRAME_SHIFT_SAMPLES)
    wave *= np.sin(np.linspace(0, 20, wave.size)) ** 2  # loudness changes
    return FB.fbank(wave).numpy()


def run_onnx_streaming(path, feats):
    return Recognizer(path).log_probs(feats)


def metadata(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize("chunk", [8, 16, 32, 64])
def test_streaming_onnx_equals_whole_utterance_torch(tmp_path, chunk):
    model = small_model()
    path = tmp_path / "m.onnx"
    export(model, path, chunk_frames=chunk, name="test")
    feats = speechlike_feats(203)  # not a multiple of any chunk size
    streamed = run_onnx_streaming(path, feats)
    with torch.no_grad():
        whole = model(torch.from_numpy(pad_to_chunks(feats, chunk))[None])[0][0].numpy()
    assert streamed.shape == whole.shape == (pad_to_chunks(feats, chunk).shape[0] // 4, len(model.cfg.vocab))
    assert np.max(np.abs(streamed - whole)) < 1e-3
    assert (streamed.argmax(1) == whole.argmax(1)).mean() > 0.99


@pytest.mark.parametrize("downsample,conv_kernel", [(1, 5), (1, 0), (2, 0)])
def test_other_variants_stream_too(tmp_path, downsample, conv_kernel):
    # without the downsampler and/or without the per-block causal conv
    model = small_model(downsample=downsample, conv_kernel=conv_kernel)
    path = tmp_path / "m.onnx"
    export(model, path, chunk_frames=16, name="test-variant")
    feats = speechlike_feats(100)
    streamed = run_onnx_streaming(path, feats)
    with torch.no_grad():
        whole = model(torch.from_numpy(pad_to_chunks(feats, 16))[None])[0][0].numpy()
    assert np.max(np.abs(streamed - whole)) < 1e-3


@pytest.mark.parametrize("chunk", [32, 64])
def test_chunk_summaries_stream_and_look_ahead_only_within_their_chunk(tmp_path, chunk):
    model = small_model(summary_chunk=4)  # groups of 4 context frames: the 320 ms chunk
    path = tmp_path / "m.onnx"
    export(model, path, chunk_frames=chunk, name="test-chunked")
    feats = speechlike_feats(203)
    streamed = run_onnx_streaming(path, feats)
    with torch.no_grad():
        whole = model(torch.from_numpy(pad_to_chunks(feats, chunk))[None])[0][0].numpy()
    assert np.max(np.abs(streamed - whole)) < 1e-3
    # a change in feature frames 80-87 (context frame 10, third of the group
    # 8-11) reaches output frames of context frames 8 and 9, not 7
    x = torch.from_numpy(pad_to_chunks(feats, 32))[None]
    y = x.clone()
    y[0, 80:88] += 3.0
    with torch.no_grad():
        a, b = model(x)[0][0], model(y)[0][0]
    diff = (a - b).abs().amax(1)  # per 40 ms output frame; context frame j -> outputs 2j, 2j+1
    assert float(diff[: 2 * 8].max()) < 1e-6
    assert float(diff[2 * 8 : 2 * 10].max()) > 1e-4


def test_chunk_summaries_refuse_a_chunk_that_splits_a_group(tmp_path):
    with pytest.raises(SystemExit, match="multiple of 32"):
        export(small_model(summary_chunk=4), tmp_path / "m.onnx", chunk_frames=16, name="test")


def test_every_contract_key_is_present_and_parses(tmp_path):
    model = small_model()
    path = tmp_path / "m.onnx"
    export(model, path, chunk_frames=32, name="test")
    meta = metadata(path)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    assert not missing
    assert meta["hark.contract_version"] == "1"
    tokens = json.loads(meta["hark.tokens"])
    assert tokens[int(meta["hark.blank_id"])] == "<blk>"
    g = onnx.load(str(path)).graph
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in g.input}
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in g.output}
    assert inputs["feats"] == [1, 32, 80]
    assert outputs["log_probs"] == [1, 8, len(tokens)]
    for s in json.loads(meta["hark.states"]):
        assert inputs[s["input"]] == s["shape"]
        assert outputs[s["output"]] == s["shape"]
    assert float(meta["hark.pad_frame_value"]) == pytest.approx(np.log(float(meta["hark.fbank.log_floor"])), abs=1e-5)


def test_wsm_state_size_is_constant_over_ten_minutes():
    """10 minutes of input at 320 ms chunks: the state tensors keep their
    shapes and stay finite; only the running sum/count grow in value."""
    model = small_model()
    chunk = 32
    state = model.initial_state(1)
    shapes = [tuple(s.shape) for s in state]
    rng = np.random.default_rng(3)
    steps = 10 * 60 * 100 // chunk
    base = torch.from_numpy(speechlike_feats(chunk * 8))
    with torch.no_grad():
        for i in range(steps):
            j = rng.integers(0, 8) * chunk
            out, *state = model(base[None, j : j + chunk], *state)
    assert [tuple(s.shape) for s in state] == shapes
    assert all(torch.isfinite(s).all() for s in state)
    assert torch.isfinite(out).all()
    counts = [s for (name, _, _), s in zip(model.state_specs(), state) if name.endswith("_count")]
    assert all(float(c) == steps * chunk / 8 for c in counts)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model")
def test_shipped_model_follows_the_contract():
    meta = metadata(SHIPPED)
    assert not [k for k in REQUIRED_KEYS if k not in meta]
    assert SHIPPED.stat().st_size < 20 * 1024 * 1024
    feats = speechlike_feats(100)
    streamed = run_onnx_streaming(SHIPPED, feats)
    assert np.isfinite(streamed).all()


@pytest.mark.parametrize("fp16", [False, True])
def test_weights_load_back_from_an_exported_file(tmp_path, fp16):
    trained = small_model(seed=0)
    path = tmp_path / "m.onnx"
    export(trained, path, 16, fp16=fp16)
    fresh = small_model(seed=7)
    assert weights_from_onnx(fresh, path) == len(trained.state_dict())
    for name, w in trained.state_dict().items():
        got = fresh.state_dict()[name]
        if fp16 and w.numel() >= 1024:  # stored as float16
            w = w.half().float()
        assert torch.equal(got, w), name
    feats = speechlike_feats(203)
    with torch.no_grad():
        whole = fresh(torch.from_numpy(pad_to_chunks(feats, 16))[None])[0][0].numpy()
    assert np.max(np.abs(run_onnx_streaming(path, feats) - whole)) < 1e-3


def test_weights_from_a_file_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "m.onnx"
    export(small_model(seed=0), path, 16)
    with pytest.raises(ValueError):
        weights_from_onnx(small_model(seed=0, conv_kernel=0), path)


def test_checkpoints_average_weight_by_weight_and_only_within_one_architecture(tmp_path):
    from export import average_checkpoints
    from model import config_dict

    paths = []
    for seed, kw in ((0, {}), (1, {}), (2, {"conv_kernel": 0})):
        m = small_model(seed=seed, **kw)
        paths.append(tmp_path / f"{seed}.pt")
        torch.save({"config": config_dict(m.cfg), "model": m.state_dict(), "training": f"run {seed}"}, paths[-1])
    avg, training = average_checkpoints(paths[:2])
    a, b = small_model(seed=0).state_dict(), small_model(seed=1).state_dict()
    for name, w in avg.state_dict().items():
        assert torch.allclose(w, (a[name] + b[name]) / 2), name
    assert "2 checkpoints" in training and "run 0" in training and "run 1" in training
    with pytest.raises(SystemExit, match="different architectures"):
        average_checkpoints([paths[0], paths[2]])
