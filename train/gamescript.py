"""Snap the teacher's transcripts of the Flight of the Amazon Queen clips to
the game's own dialogue text, so that what trains is what the actors read
rather than what Whisper heard.

    python train/gamescript.py data/real/queen/manifest.jsonl \\
        --queen DIR/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c

The text is in the same archive as the audio (../shared/DATA-SOURCES.md):
the `*.DOG` (dialogue), `*.CUT` (cutscenes) and `*.JAS` (everything else
Joe says) entries of queen.1c hold length-prefixed strings, with `*NN`
codes for who speaks, where and when a new speech bubble starts. A clip may hold a whole line or a part of one (`...P1`, `...P2`), so
each clip's teacher transcript (train/pseudolabel.py, which must have run)
is aligned against every candidate line with free start and end in the line
(the best-matching span of words), candidates being the lines that share
the most of its words. When the teacher's words differ from the best span
on at most --max-disagreement of the span's words, the span becomes the
clip's text (label "script"); otherwise the clip keeps the teacher's
decision (label "none": its transcript, kept when its mean word probability
is >= --min-prob). Rerunning starts again from the teacher's fields.

Adds `script`, `script_agreement` to each labelled clip and a "script"
summary (how many clips matched, their mean agreement) to pseudolabel.json.
"""

import argparse
import json
import math
import pathlib
import re
import sys
from collections import Counter, defaultdict

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evalsets import read_jsonl  # noqa: E402
from pseudolabel import decide, save_labels  # noqa: E402
from realdata import queen_entries  # noqa: E402
from textnorm import normalize  # noqa: E402
from wer import edit_distance  # noqa: E402

# who speaks, where they look, when a new speech bubble starts
CODE = re.compile(r"\*(?:F[LRBF]|AO|WT|XY|DT|[0-9][0-9])|\*F(?=\*)")
STAGE = re.compile(r"\([^)]*\)")  # (sigh)


def script_lines(queen_1c: pathlib.Path) -> list:
    """Every distinct text of the game's dialogue (.DOG), cutscene (.CUT) and
    Joe's own (.JAS) entries, normalized, with the codes and stage directions
    taken out (at least two words). A string's length byte, when printable,
    reads as text glued to its first word ("FIf we", "*HI got", "jBut"), and
    nothing marks it: so each piece between codes also comes without its
    first one and two characters, and the alignment picks the variant that
    fits."""
    data, entries = queen_entries(queen_1c)
    lines = {}

    def add(text):
        text = normalize(STAGE.sub(" ", text))
        if len(text.split()) >= 2:
            lines.setdefault(text, None)

    for name, offset, size in entries:
        if not name.endswith((".DOG", ".JAS", ".CUT")):
            continue
        blob = data[offset:offset + size]
        for run in re.findall(rb"[\x20-\x7e]{4,}", blob):
            pieces = CODE.split(run.decode("ascii"))
            add(" ".join(pieces))
            for piece in pieces:
                for cut in range(3):
                    add(piece[cut:])
    return list(lines)


def span_distance(hyp: list, ref: list):
    """(edit distance, start, end) of the span ref[start:end] closest to hyp:
    word edit distance with free start and end in ref."""
    n, m = len(hyp), len(ref)
    # prev[j]: (distance, start) aligning hyp[:i] to a span of ref ending at j
    prev = [(0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0)] * (m + 1)
        for j in range(1, m + 1):
            sub = (prev[j - 1][0] + (hyp[i - 1] != ref[j - 1]), prev[j - 1][1])
            dele = (prev[j][0] + 1, prev[j][1])  # a hyp word not in ref
            ins = (cur[j - 1][0] + 1, cur[j - 1][1])  # a ref word the hyp lacks
            cur[j] = min(sub, dele, ins)
        prev = cur
    end = min(range(m + 1), key=lambda j: (prev[j][0], -(j - prev[j][1])))
    return prev[end][0], prev[end][1], end


class Script:
    def __init__(self, lines: list):
        self.lines = [line.split() for line in lines]
        self.index = defaultdict(set)
        for k, words in enumerate(self.lines):
            for w in set(words):
                self.index[w].add(k)
        self.idf = {w: math.log(len(self.lines) / len(ks)) for w, ks in self.index.items()}

    def unglue(self, span: list, hyp: list) -> list:
        """A rare span word that is a teacher's word with one or two
        characters before it ("ubut", "ohowdy") is that word with a length
        byte glued on: take the teacher's word."""
        heard = set(hyp)
        out = []
        for w in span:
            if w not in heard and len(self.index.get(w, ())) <= 3:
                w = next((w[k:] for k in (1, 2) if w[k:] in heard), w)
            out.append(w)
        return out

    def best_span(self, hyp: list, candidates: int = 12):
        """(agreement, span text) of the span of a line closest to hyp, or
        (0.0, "") when no line shares a word with it. Agreement is 1 - the
        teacher's word error rate against the span."""
        votes = Counter()
        for w in sorted(set(hyp)):
            for k in self.index.get(w, ()):
                votes[k] += self.idf[w]
        best, best_key = (0.0, ""), None
        # candidates in a fixed order (string hashing differs between runs)
        for k, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:candidates]:
            _, start, end = span_distance(hyp, self.lines[k])
            span = self.unglue(self.lines[k][start:end], hyp)
            agreement = 1.0 - edit_distance(span, hyp) / max(1, len(span))
            # ties: the longer span, then the one with fewer words seen in
            # one line only (a glued length byte makes such words)
            key = (agreement, len(span), -sum(len(self.index.get(w, ())) <= 1 for w in span))
            if best_key is None or key > best_key:
                best, best_key = (agreement, " ".join(span)), key
        return best if best_key and best_key[1] else (0.0, "")


def snap(rows: list, script: Script, max_dis: float, min_prob: float) -> dict:
    matched = []
    for it in rows:
        if "teacher" not in it:
            continue
        hyp = it["teacher"].split()
        agreement, span = script.best_span(hyp) if hyp else (0.0, "")
        it["script"], it["script_agreement"] = span, round(agreement, 3)
        if span and 1.0 - agreement <= max_dis:
            it["label"], it["text"] = "script", span
            it["keep"], it["keep_why"] = True, f"teacher vs game script WER {1.0 - agreement:.2f}"
            matched.append(agreement)
        else:
            it["label"], it["text"] = "none", None
            it["keep"], it["keep_why"] = decide(it, max_dis, min_prob)
    labelled = sum("teacher" in r for r in rows)
    return {"lines": len(script.lines), "labelled": labelled, "matched": len(matched),
            "matched_share": round(len(matched) / max(1, labelled), 3),
            "mean_agreement_of_matched": round(sum(matched) / max(1, len(matched)), 3),
            "exact": sum(a == 1.0 for a in matched), "max_disagreement": max_dis}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="data/real/queen/manifest.jsonl, labelled by pseudolabel.py")
    ap.add_argument("--queen", required=True, help="the game's queen.1c")
    ap.add_argument("--max-disagreement", type=float, default=0.25)
    ap.add_argument("--min-prob", type=float, default=0.6, help="as pseudolabel.py, for clips the script lacks")
    a = ap.parse_args(argv)
    manifest = pathlib.Path(a.manifest)
    rows = read_jsonl(manifest)
    script = Script(script_lines(pathlib.Path(a.queen)))
    stats = snap(rows, script, a.max_disagreement, a.min_prob)
    print(json.dumps(save_labels(manifest, rows, script=stats)))


if __name__ == "__main__":
    main()
