"""Normalize English text to what is spoken: lowercase letters, apostrophes
inside words and single spaces (the model's character set). Numbers become
words. Used for training transcripts and for evaluation references alike.
"""

import re

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
           "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    for value, name in SCALES:
        if n >= value:
            head = number_words(n // value) + " " + name
            return head if n % value == 0 else head + " " + number_words(n % value)
    raise ValueError(n)


def year_words(n: int) -> str:
    """1984 -> nineteen eighty four; 2005 -> two thousand five; 1900 -> nineteen hundred."""
    if 2000 <= n < 2010 or n % 1000 == 0:
        return number_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_words(hi) + " hundred"
    return number_words(hi) + (" oh " + ONES[lo] if lo < 10 else " " + number_words(lo))


def ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in ORDINAL:
        words[-1] = ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _num(m: re.Match) -> str:
    s = m.group(0)
    digits = s.replace(",", "")
    if re.fullmatch(r"\d+(st|nd|rd|th)", digits):
        return " " + ordinal_words(int(re.sub(r"\D", "", digits))) + " "
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return " " + number_words(int(whole or 0)) + " point " + " ".join(ONES[int(d)] for d in frac) + " "
    n = int(digits)
    if len(digits) == 4 and 1100 <= n <= 2099 and "," not in s:
        return " " + year_words(n) + " "
    if n >= 10**12:
        return " " + " ".join(ONES[int(d)] for d in digits) + " "
    return " " + number_words(n) + " "


SYMBOLS = [("&", " and "), ("%", " percent "), ("+", " plus "), ("=", " equals "), ("@", " at ")]


def normalize(text: str) -> str:
    t = text.lower()
    t = t.replace("\u2019", "'").replace("`", "'")
    t = re.sub(r"\$(\d[\d,]*)", lambda m: m.group(1) + " dollars", t)
    for sym, word in SYMBOLS:
        t = t.replace(sym, word)
    t = re.sub(r"\d+(?:,\d{3})*(?:\.\d+)?(?:st|nd|rd|th)?", _num, t)
    t = re.sub(r"[^a-z' ]+", " ", t)
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)  # apostrophes only inside words
    return " ".join(t.split())


def is_clean(text: str) -> bool:
    return bool(text) and re.fullmatch(r"[a-z' ]+", text) is not None


# Whisper writes titles abbreviated ("Mr."); the references spell them out.
SPOKEN = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def spoken(text: str) -> str:
    """A normalized hypothesis with Whisper's abbreviated titles spelled out
    as the references say them (used on every engine's hypotheses alike)."""
    return " ".join(SPOKEN.get(w, w) for w in text.split())
