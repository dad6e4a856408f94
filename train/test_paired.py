"""train/paired.py: the paired comparison of two evaluation runs."""

import json

import pytest

from paired import compare, utterances


def write(tmp_path, name, hyps):
    rows = [{"set": "s", "file": f"f{i}.wav", "ref": "one two three", "hyp": h} for i, h in enumerate(hyps)]
    rows.append({"set": "other", "file": "x.wav", "ref": "a", "hyp": "b"})
    p = tmp_path / name
    p.write_text(json.dumps({"utterances": rows}))
    return p


def test_counts_and_bootstrap_when_b_is_better_or_equal_everywhere(tmp_path):
    a = utterances(write(tmp_path, "a.json", ["one two", "one two three", "two three", "x y z"]), "s")
    b = utterances(write(tmp_path, "b.json", ["one two three", "one two three", "one two three", "x y z"]), "s")
    r = compare(a, b, resamples=200)
    assert (r["utterances"], r["words"]) == (4, 12)
    assert (r["errors_a"], r["errors_b"]) == (5, 3)
    assert (r["b_better"], r["b_worse"]) == (2, 0)
    # a resample without either improved utterance ties, which is not "ahead"
    assert 150 < r["b_ahead_in"] <= 200


def test_identical_runs_are_never_ahead_and_the_order_matters(tmp_path):
    a = utterances(write(tmp_path, "a.json", ["one", "one two three"]), "s")
    b = utterances(write(tmp_path, "b.json", ["one two three", "one"]), "s")
    assert compare(a, a, resamples=50)["b_ahead_in"] == 0
    r = compare(a, b, resamples=50)
    assert (r["b_better"], r["b_worse"]) == (1, 1)


def test_only_shared_utterances_count_and_none_is_an_error(tmp_path):
    a = utterances(write(tmp_path, "a.json", ["one", "two", "three"]), "s")
    b = {k: v for k, v in a.items() if k != "f0.wav"}
    assert compare(a, b, resamples=10)["utterances"] == 2
    with pytest.raises(ValueError, match="no utterance"):
        compare(a, utterances(write(tmp_path, "c.json", []), "s"))
