"""Text normalization: what the model is trained to write."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from textnorm import is_clean, normalize, number_words, ordinal_words, year_words  # noqa: E402


def test_numbers_become_words():
    assert number_words(0) == "zero"
    assert number_words(42) == "forty two"
    assert number_words(1005) == "one thousand five"
    assert number_words(2_300_017) == "two million three hundred thousand seventeen"
    assert ordinal_words(21) == "twenty first"
    assert ordinal_words(12) == "twelfth"
    assert year_words(1984) == "nineteen eighty four"
    assert year_words(2005) == "two thousand five"
    assert year_words(1905) == "nineteen oh five"


def test_sentences_are_spoken_forms():
    assert normalize("In 1984, he paid $5,000 for the 3rd car & 2.5% of it.") == (
        "in nineteen eighty four he paid five thousand dollars for the third car and two point five percent of it"
    )
    assert normalize("Don't PANIC!  \"It's\" fine...") == "don't panic it's fine"
    assert normalize("'quoted' words") == "quoted words"


def test_output_alphabet():
    for s in ["Hello, World!", "C-3PO & R2-D2", "100% sure: 7 days"]:
        assert is_clean(normalize(s))
    assert not is_clean("caf\u00e9")
    assert not is_clean("")
