"""The attention masks of train/experiments/probe.py: which keys each query frame may see."""

import pathlib
import sys

import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import probe  # noqa: E402


def test_full_attention_has_no_mask():
    assert probe.attention_mask(7, "full") is None


def test_causal_window_sees_itself_and_the_frames_before():
    m = probe.attention_mask(6, "causal:3")
    for i in range(6):
        assert m[i].nonzero().flatten().tolist() == list(range(max(0, i - 2), i + 1))


def test_chunk_sees_its_whole_chunk_and_left_context():
    m = probe.attention_mask(10, "chunk:4:2")
    # frames 4..7 form the second chunk: they see 2..7 (two frames of left context, the chunk itself)
    for i in range(4, 8):
        assert m[i].nonzero().flatten().tolist() == list(range(2, 8))
    for i in range(0, 4):
        assert m[i].nonzero().flatten().tolist() == list(range(0, 4))
    assert m[9].nonzero().flatten().tolist() == list(range(6, 10))  # a short last chunk
    assert m.dtype == torch.bool


@pytest.mark.parametrize("spec", ["causal", "chunk:4", "window:3", "full:1"])
def test_bad_specs_are_refused(spec):
    with pytest.raises(SystemExit):
        probe.attention_mask(4, spec)


def test_last_layer_output_is_the_encoders_output():
    import whisper_encoder as WE

    torch.manual_seed(0)
    enc = WE.WhisperEncoder(n_mels=8, width=16, heads=2, layers=3, max_positions=50).eval()
    torch.nn.init.normal_(enc.positions)
    mel = torch.randn(8, 40)
    with torch.no_grad():
        outs = probe.layer_outputs(enc, mel, None, {1, 3})
        assert sorted(outs) == [1, 3]
        torch.testing.assert_close(outs[3], enc(mel.unsqueeze(0))[0])
        # an inner block is normalized per frame without parameters
        assert outs[1].shape == (20, 16)
        torch.testing.assert_close(outs[1].mean(-1), torch.zeros(20), atol=1e-5, rtol=0)
