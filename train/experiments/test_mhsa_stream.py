"""The streaming self-attention step (train/experiments/mhsa_stream.py) equals the batch
MHSA forward of train/model.py, in PyTorch and exported to ONNX
(onnxruntime), and its key/value caches grow by one row per context frame.
"""

import pathlib
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
from evaluate import pad_to_chunks  # noqa: E402
from mhsa_stream import MHSAStep, export_mhsa_stream, kv_specs  # noqa: E402
from model import HarkModel, ModelConfig  # noqa: E402
from test_export import speechlike_feats  # noqa: E402


def small_mhsa(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="mhsa", d_conv=64, d_model=64, num_layers=3, heads=4, **kw)
    m = HarkModel(cfg)
    m.feat_mean.uniform_(5, 10)
    m.feat_std.uniform_(1, 3)
    return m.eval()


def batch_log_probs(model, padded):
    with torch.no_grad():
        return model(torch.from_numpy(padded)[None])[0][0].numpy()


@pytest.mark.parametrize("chunk,downsample", [(32, 2), (16, 2), (8, 1)])
def test_torch_streaming_equals_batch(chunk, downsample):
    model = small_mhsa(downsample=downsample)
    padded = pad_to_chunks(speechlike_feats(203), chunk)
    step = MHSAStep(model, chunk).eval()
    state = step.initial_state()
    outs = []
    with torch.no_grad():
        for i in range(0, padded.shape[0], chunk):
            out, *state = step(torch.from_numpy(padded[None, i : i + chunk]), *state)
            outs.append(out[0].numpy())
    streamed = np.concatenate(outs)
    whole = batch_log_probs(model, padded)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) < 1e-4
    frames = padded.shape[0] // model.cfg.chunk_multiple
    assert all(c.shape[2] == frames for c in state[2:])


def test_onnx_streaming_equals_batch_and_caches_grow(tmp_path):
    chunk = 32
    model = small_mhsa()
    path = tmp_path / "mhsa.onnx"
    export_mhsa_stream(model, path, chunk_frames=chunk, name="test-mhsa")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    kv = kv_specs(model.cfg)
    assert in_names[-len(kv):] == [i for i, _ in kv]
    padded = pad_to_chunks(speechlike_feats(203), chunk)
    state = [s.numpy() for s in MHSAStep(model, chunk).initial_state()]  # caches start empty (P = 0)
    outs = []
    n = chunk // model.cfg.chunk_multiple
    for j, i in enumerate(range(0, padded.shape[0], chunk)):
        res = sess.run(None, dict(zip(in_names, [padded[None, i : i + chunk], *state])))
        outs.append(res[0][0])
        state = res[1:]
        assert all(c.shape == (1, model.cfg.heads, (j + 1) * n, 16) for c in state[2:])
    assert out_names[0] == "log_probs"
    streamed = np.concatenate(outs)
    whole = batch_log_probs(model, padded)
    assert np.max(np.abs(streamed - whole)) < 1e-3
    assert (streamed.argmax(1) == whole.argmax(1)).mean() > 0.99
