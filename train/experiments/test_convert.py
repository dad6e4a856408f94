"""train/experiments/convert.py: the decoder loss that trains the converted
encoder, its targets, and the greedy finals read from given states."""

import pathlib
import sys

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import convert as C  # noqa: E402
import whisper_export as X  # noqa: E402


@pytest.fixture(scope="module")
def bundled():
    enc, dec, model_dir = X.load_bundled()
    return enc, dec, model_dir


def test_targets_are_written_as_whisper_writes_text():
    assert C.whisper_style("i think i'm late") == " I think I'm late."
    assert C.whisper_style("set the tray down") == " Set the tray down."
    assert C.whisper_style("") == ""


def test_targets_are_whisper_tokens_between_the_prompt_and_eot(bundled):
    _, _, model_dir = bundled
    tokens = C.Tokens(model_dir)
    ids = tokens.target("john can draw the horse")
    assert ids[:2] == [X.SOT, X.NO_TIMESTAMPS] and ids[-1] == X.EOT
    assert all(t < X.EOT for t in ids[2:-1])
    assert tokens.text(ids[2:-1]) == " John can draw the horse."


def test_batched_teacher_forcing_equals_the_reference_decoder_per_clip(bundled):
    """Padding in the batch (shorter token sequences, masked encoder frames)
    changes nothing of a clip's logits."""
    _, dec, model_dir = bundled
    tokens = C.Tokens(model_dir)
    g = torch.Generator().manual_seed(0)
    enc = torch.randn(2, 30, 384, generator=g)
    lens = torch.tensor([30, 17])
    seqs = [tokens.target("john can draw the horse"), tokens.target("yes")]
    t = max(len(s) for s in seqs)
    inp = torch.full((2, t), X.EOT, dtype=torch.long)
    for i, s in enumerate(seqs):
        inp[i, : len(s)] = torch.tensor(s)
    with torch.no_grad():
        batched = dec.forward_full(inp, enc, lens)
        for i, s in enumerate(seqs):
            ref = dec.forward_full(torch.tensor([s]), enc[i : i + 1, : lens[i]])[0]
            assert torch.allclose(batched[i, : len(s)], ref, atol=1e-3), i


def test_the_decoder_loss_trains_the_encoder_states_not_the_decoder(bundled):
    _, dec, model_dir = bundled
    for p in dec.parameters():
        p.requires_grad_(False)
    tokens = C.Tokens(model_dir)
    enc = torch.randn(2, 20, 384, requires_grad=True)
    loss = C.decoder_loss(dec, [tokens.target("hello there"), tokens.target("no")], enc, torch.tensor([20, 9]))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert enc.grad is not None and enc.grad[0].abs().sum() > 0
    assert enc.grad[1, 9:].abs().sum() == 0  # masked frames get no gradient
    assert all(p.grad is None for p in dec.parameters())


def test_greedy_finals_from_given_states_match_the_reference_decoder(bundled):
    """The torch decoder behind finals_length.Greedy's rules reads the
    unmodified encoder's states of real speech as greedy_reference does."""
    enc, dec, model_dir = bundled
    import whisper_encoder as W
    from evalsets import load_audio

    wave = load_audio(pathlib.Path("/usr/share/sounds/alsa/Front_Center.wav"))
    mel = W.log_mel(wave, padding=W.SAMPLE_RATE_HZ)[None]
    mel = mel[:, :, : mel.shape[2] - mel.shape[2] % 2]
    greedy = C.greedy_rules(dec, model_dir)
    with torch.no_grad():
        states = enc(mel)[0]
    got = greedy.decode(states, len(wave) / W.SAMPLE_RATE_HZ)
    assert C.Tokens(model_dir).text(got).lower().replace(",", "").strip(" .") == "front center"


def test_teacher_targets_are_the_pooled_layers_of_each_clip(tmp_path, bundled):
    enc, _, _ = bundled
    teacher = C.Teacher.__new__(C.Teacher)
    teacher.enc = enc
    rng = np.random.default_rng(0)
    lens = [40, 64]
    mel = rng.normal(-0.5, 0.3, (sum(lens), 80)).astype(np.float16)
    data = {"mel": mel, "moff": np.array([0, 40, 104]), "texts": ["a", "b"]}
    states, off = C.teacher_targets(data, teacher, 2, tmp_path / "t.npz")
    assert list(np.diff(off)) == [10, 16]  # mel frames / 2 (conv stride) / 2 (pooling)
    with torch.no_grad():
        layers = enc.block_outputs(torch.from_numpy(mel[40:].astype(np.float32)).T[None])
    want = torch.stack(layers, dim=2)[0].reshape(16, 2, 4, 384).mean(1)
    assert np.allclose(states[10:].astype(np.float32), want.numpy(), atol=2e-2)
    padded = C.teacher_batch((states, off), [0, 1])
    assert len(padded) == 4 and padded[0].shape == (2, 16, 384)
    assert padded[0][0, 10:].abs().sum() == 0
