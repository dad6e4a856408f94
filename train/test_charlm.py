"""Tests for the character LM + CTC prefix beam search (train/charlm.py),
the reference for the runtime's decoder. Fast, and need neither the corpus nor a model."""

import itertools
import math
import struct
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from charlm import EOS, BinLM, CharLM, beam_search  # noqa: E402
from train import greedy  # noqa: E402

TOKENS = ["<blk>", " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
BLANK = 0
SENTS = ["the cat sat on the mat", "a cat and a hat", "the cat can't see the cap",
         "my cat is black", "he sat on a mat"]


def make_lm(order=4):
    return CharLM.train(SENTS, order, TOKENS[1:])


@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_next_symbol_distribution_sums_to_one(order):
    lm = make_lm(order)
    assert lm.symbols[-1] == EOS and len(lm.symbols) == len(TOKENS)
    for ctx in ["", "t", "the c", "the cat sat on the", "zzq", "x'y", "a"]:
        p = np.exp(lm.log_dist(ctx))
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert (p > 0).all()


def test_lm_prefers_seen_text_and_roundtrips(tmp_path):
    lm = make_lm(4)
    assert lm.sentence_logprob("the cat sat") > lm.sentence_logprob("the kat sat")
    dist = np.exp(lm.log_dist("the ca"))
    assert lm.symbols[int(dist.argmax())] == "t"
    for name in ("lm.json", "lm.json.gz"):
        lm.save(tmp_path / name)
        back = CharLM.load(tmp_path / name)
        for ctx in ["", "the c", "my cat is black"]:
            np.testing.assert_allclose(back.log_dist(ctx), lm.log_dist(ctx))


def peaky_log_probs(rng, frames, vocab, margin=12.0):
    """Random CTC-like output: one clearly best token per frame. (On flat
    distributions a width-1 prefix search may rightly differ from best path,
    because it sums over alignments; real CTC output is peaky like this.)"""
    logits = rng.normal(size=(frames, vocab))
    best = rng.integers(0, vocab, size=frames)
    best[rng.random(frames) < 0.4] = BLANK
    logits[np.arange(frames), best] += margin
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def test_beam1_without_lm_equals_greedy():
    rng = np.random.default_rng(0)
    lm = make_lm(4)
    for _ in range(50):
        lp = peaky_log_probs(rng, int(rng.integers(1, 60)), len(TOKENS))
        want = greedy(lp, TOKENS, BLANK)
        assert beam_search(lp, TOKENS, BLANK, None, 0.0, 0.0, beam=1) == want
        assert beam_search(lp, TOKENS, BLANK, lm, 0.0, 0.0, beam=1) == want


def test_wide_beam_finds_most_probable_labelling():
    """Without an LM and with no pruning, a beam as wide as all prefixes
    returns the labelling with the highest total CTC probability."""
    tokens, rng = ["<blk>", "a", "b"], np.random.default_rng(1)
    for _ in range(20):
        frames = 5
        lp = np.log(rng.dirichlet(np.ones(3), size=frames))
        total = {}
        for path in itertools.product(range(3), repeat=frames):
            out, prev = [], 0
            for t in path:
                if t != prev and t != 0:
                    out.append(tokens[t])
                prev = t
            s = "".join(out)
            total[s] = np.logaddexp(total.get(s, -math.inf), sum(lp[i, t] for i, t in enumerate(path)))
        want = max(total, key=total.get)
        assert beam_search(lp, tokens, 0, None, 0.0, 0.0, beam=1000, prune=math.inf) == want


def frames_for(spec):
    """Log-probs with one frame per entry of spec (a dict token -> prob,
    rest of the mass spread), each followed by a blank frame."""
    rows = []
    for probs in spec:
        for p in (probs, {"<blk>": 0.97}):
            row = np.full(len(TOKENS), 1e-4)
            for tok, v in p.items():
                row[TOKENS.index(tok)] = v
            rows.append(np.log(row / row.sum()))
    return np.array(rows)


def test_lm_steers_non_word_to_word():
    lm = make_lm(5)
    spec = [{c: 0.97} for c in "the "] + [{"k": 0.6, "c": 0.37}] + [{c: 0.97} for c in "at sat"]
    lp = frames_for(spec)
    assert greedy(lp, TOKENS, BLANK) == "the kat sat"
    assert beam_search(lp, TOKENS, BLANK, None, 0.0, 0.0, beam=8) == "the kat sat"
    assert beam_search(lp, TOKENS, BLANK, lm, 0.8, 0.0, beam=8) == "the cat sat"


def test_repeats_collapse_unless_blank_separates():
    lp = np.log(np.array([[0.01, 0.99], [0.01, 0.99], [0.99, 0.01], [0.01, 0.99]]))
    assert beam_search(lp, ["<blk>", "o"], 0, None, 0.0, 0.0, beam=4) == "oo"
    lp = np.log(np.array([[0.01, 0.99], [0.01, 0.99], [0.01, 0.99]]))
    assert beam_search(lp, ["<blk>", "o"], 0, None, 0.0, 0.0, beam=4) == "o"


@pytest.mark.parametrize("order", [1, 3, 6])
def test_binary_export_gives_the_same_probabilities(tmp_path, order):
    """The runtime's backoff tables (read back by BinLM, the Python mirror of
    src/decode/lm.rs) reproduce the interpolated KN model to float32."""
    lm = make_lm(order)
    path = tmp_path / "lm.bin"
    lm.export_bin(path, alpha=0.7, beta=0.25, beam=5, prune=9.0)
    back = BinLM.load(path)
    assert (back.order, back.symbols, back.beam) == (order, lm.symbols, 5)
    assert (back.alpha, back.beta, back.prune) == pytest.approx((0.7, 0.25, 9.0))
    for text in ["", "t", "the c", "the cat sat on the", "zzq", "x'y", "my cat is black "]:
        for s in range(len(lm.symbols)):
            assert back.logp(text, s) == pytest.approx(lm.logp(text, s), abs=2e-6)
    rng = np.random.default_rng(3)
    for _ in range(10):
        lp = peaky_log_probs(rng, 40, len(TOKENS), margin=3.0)
        assert beam_search(lp, TOKENS, BLANK, back, 0.7, 0.25, beam=5) == \
            beam_search(lp, TOKENS, BLANK, lm, 0.7, 0.25, beam=5)


def test_binary_export_rejects_bad_files(tmp_path):
    lm = make_lm(3)
    path = tmp_path / "lm.bin"
    lm.export_bin(path, 1.0, 0.5, 8, 10.0)
    blob = path.read_bytes()
    for bad in (b"nonsense" + blob[8:], blob + b"\0", blob[: len(blob) // 2]):
        with pytest.raises((ValueError, struct.error)):
            BinLM(bad)


def test_new_settings_leave_the_ngrams_alone(tmp_path):
    """charlm.py settings / lm_tune.py rewrite only alpha, beta, beam and prune."""
    from charlm import with_settings

    lm = make_lm(3)
    path = tmp_path / "lm.bin"
    lm.export_bin(path, 1.0, 0.5, 8, 10.0)
    blob = path.read_bytes()
    new = BinLM(with_settings(blob, 0.25, 2.0, 4, 7.5))
    assert (new.alpha, new.beta, new.beam, new.prune) == (0.25, 2.0, 4, 7.5)
    old = BinLM(blob)
    for text in ["", "the c", "zzq"]:
        for s in range(len(lm.symbols)):
            assert new.logp(text, s) == old.logp(text, s)
    assert len(with_settings(blob, 0.25, 2.0, 4, 7.5)) == len(blob)
