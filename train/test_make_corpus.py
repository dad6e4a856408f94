"""Corpus plan tests: Kokoro items are an addition that leaves every other
item of the plan as it was, its held-out voice never reaches training, and
its test set does not change with the hours asked for; espeak-ng's IPA comes
out in Kokoro's phoneme symbols."""

import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_corpus as mc  # noqa: E402


@pytest.fixture
def texts(monkeypatch):
    # the Debian text packages are not a test dependency: numbered sentences stand in
    monkeypatch.setattr(mc, "sentences", lambda: iter(f"sentence number {i}" for i in range(3000)))


def plan(hours=0.5, kokoro_hours=0.0):
    return mc.make_plan(1234, hours, True, kokoro_hours)[0]


def test_kokoro_items_leave_the_rest_of_the_plan_alone(texts):
    without = plan()
    with_kokoro = plan(kokoro_hours=0.2)
    assert with_kokoro[: len(without)] == without
    added = with_kokoro[len(without):]
    assert added and all(it["engine"] == "kokoro" for it in added)
    assert sum(it["split"] == "train" for it in added) == int(0.2 * 3600 / 4)


def test_the_held_out_kokoro_voice_is_only_in_its_test_set(texts):
    items = [it for it in plan(kokoro_hours=0.2) if it["engine"] == "kokoro"]
    train = [it for it in items if it["split"] == "train"]
    test = [it for it in items if it["split"] == "test_kokoro"]
    assert len(test) == 100
    for it in train:
        assert mc.KOKORO_HELD_OUT not in it["params"]["mix"]
        assert abs(sum(it["params"]["mix"].values()) - 1) < 1e-3
    assert all(it["params"]["mix"] == {mc.KOKORO_HELD_OUT: 1.0} and it["aug"].keys() == {"pad", "gain_db"}
               for it in test)
    train_texts = {it["text"] for it in plan(kokoro_hours=0.2) if it["split"] == "train"}
    assert not train_texts & {it["text"] for it in test}


def test_the_kokoro_test_set_does_not_change_with_the_hours(texts):
    def test_set(h):
        return [it for it in plan(kokoro_hours=h) if it["split"] == "test_kokoro"]

    assert test_set(0.1) == test_set(0.3)
    assert not [it for it in plan() if it["split"] == "test_kokoro"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_phonemes_use_kokoro_symbols():
    p = mc.kokoro_phonemes("go by day, said joe", "en-us")
    assert {"O", "I", "A", "ʤ"} <= set(p)
    assert "oʊ" not in p and "aɪ" not in p and "eɪ" not in p and "dʒ" not in p
