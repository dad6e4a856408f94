"""Word/character error rate helpers shared by training and evaluation."""


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance between two sequences (substitutions, insertions, deletions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def score(rows):
    """Corpus WER of (reference, hypothesis) pairs and the reference word count."""
    errs = sum(edit_distance(r.split(), h.split()) for r, h in rows)
    words = sum(len(r.split()) for r, _ in rows)
    return errs / max(words, 1), words


def char_error_rate(rows) -> float:
    """Corpus CER of (reference, hypothesis) pairs, spaces included."""
    errs = sum(edit_distance(list(r), list(h)) for r, h in rows)
    return errs / max(sum(len(r) for r, _ in rows), 1)
