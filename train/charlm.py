"""A character n-gram language model and CTC prefix beam search: the
reference for the runtime's decoder (src/decode/beam.rs, src/decode/lm.rs),
which reads the binary form that `export` writes and must reproduce
`beam_search` here exactly (`vectors` writes the test vectors that check it).

    python train/charlm.py build --corpus data/mix --plan-seed 1234 --order 7 --out data/charlm7.json
    python train/charlm.py eval --model models/hark-wsm-v21.onnx --lm data/charlm7.json \\
        --split dev --max 200 --alpha 0,0.5,1 --beta 0,1 --beam 8 [--real]
    python train/charlm.py export --lm data/charlm7.json --out models/hark-charlm7.bin \\
        --alpha 1.0 --beta 1.5 --beam 32 --prune 10
    python train/charlm.py vectors tests/data/e2e/*.wav

The LM is trained ONLY on training-side text: the `text` fields of the
training manifest (data/corpus/train/manifest.jsonl, or data/mix's, which
adds the real training clips' transcripts), and with `--plan-seed SEED`
every sentence make_corpus.py keeps for training with that seed (the
sentences it did not synthesize too; never its 600 held-out dev/test
sentences). Never dev/test texts, nor the evaluation recordings'
transcripts. Duplicate sentences count once.

Language model: interpolated modified Kneser-Ney (Chen & Goodman, three
discounts per order) over the model's non-blank tokens plus an end symbol.
A sentence is "^" + text + "$": one start symbol, which is only ever
context, and the end symbol "$", which is predicted like a character.
N-grams that begin with "^" keep raw counts at every order (nothing can
precede them); other lower-order n-grams use continuation counts. The file
holds only the raw highest-order counts (contexts padded with order-1 "^");
everything else is derived on load.

Decoding: standard CTC prefix beam search (p_blank / p_nonblank per prefix,
repeats collapse unless a blank separates them). The acoustic log-probs are
kept pure per prefix; the LM score depends only on the prefix's text, so the
ranking score is

    log(p_blank + p_nonblank) + alpha * log P_LM(text) + beta * len(text)

where `text` is the prefix with runs of spaces collapsed and leading spaces
dropped, so the insertion bonus beta is PER CHARACTER that enters the LM
text (letters, apostrophes and word-separating spaces). A space that starts
the text or follows a space costs nothing. When the audio ends, every beam
is scored with the end symbol: a trailing space is taken back and
P_LM("$" | text without it) is added, so the final LM score is exactly
log P_LM(normalized text + "$"). Per frame, only tokens whose log-prob is
within `prune` of that frame's best are tried (blank always is).
"""

import argparse
import gzip
import itertools
import json
import math
import pathlib
import struct
import sys
import time
from collections import Counter, defaultdict

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evalsets import SHIPPED_LM, SHIPPED_MODEL, read_manifest  # noqa: E402
from train import greedy  # noqa: E402

BOS, EOS = "^", "$"
NEG_INF = -math.inf


def normalize_text(text: str) -> str:
    return " ".join(text.split())


class CharLM:
    """Interpolated modified Kneser-Ney character n-gram LM."""

    def __init__(self, order: int, symbols, raw_counts: dict):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order = order
        self.symbols = list(symbols)  # predicted symbols: characters, then EOS
        if EOS not in self.symbols:
            self.symbols.append(EOS)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.raw = dict(raw_counts)  # padded order-grams -> count
        self._derive()
        self._cache = {}

    # -- training and persistence ---------------------------------------
    @classmethod
    def train(cls, sentences, order: int = 6, symbols=None):
        raw = Counter()
        seen = set()
        for s in sentences:
            text = normalize_text(s)
            if not text:
                continue
            seen.update(text)
            seq = BOS * (order - 1) + text + EOS
            for i in range(order - 1, len(seq)):
                raw[seq[i - order + 1 : i + 1]] += 1
        if symbols is None:
            symbols = sorted(seen)
        bad = seen - set(symbols)
        if bad:
            raise ValueError(f"training text has symbols outside the LM vocabulary: {sorted(bad)}")
        if BOS in symbols:
            raise ValueError(f"{BOS!r} is reserved for the sentence start")
        return cls(order, [s for s in symbols if s != EOS], raw)

    def save(self, path):
        path = pathlib.Path(path)
        data = {"kind": "hark-charlm counts", "order": self.order,
                "bos": BOS, "eos": EOS, "symbols": self.symbols,
                "counts": dict(sorted(self.raw.items()))}
        blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        path.write_bytes(gzip.compress(blob, 9) if path.suffix == ".gz" else blob)

    @classmethod
    def load(cls, path):
        path = pathlib.Path(path)
        blob = path.read_bytes()
        if path.suffix == ".gz":
            blob = gzip.decompress(blob)
        data = json.loads(blob)
        assert data["bos"] == BOS and data["eos"] == EOS
        return cls(data["order"], data["symbols"], data["counts"])

    # -- Kneser-Ney statistics ------------------------------------------
    def _derive(self):
        n = self.order
        # counts[k]: n-gram of length k -> KN count (raw for the highest order and
        # for n-grams starting with BOS; continuation counts otherwise).
        counts = [None] + [defaultdict(int) for _ in range(n)]
        for g, c in self.raw.items():
            if len(g) != n:
                raise ValueError(f"bad n-gram {g!r} for order {n}")
            for k in range(1, n + 1):
                s = g[n - k :]
                if s[0] == BOS:
                    if k >= 2 and s[1] == BOS:
                        continue  # the same n-gram as a shorter one with one BOS
                    if k == 1:
                        continue  # BOS is never predicted
                    counts[k][s] += c
                elif k == n:
                    counts[k][s] += c
        # continuation counts: distinct left neighbours of each non-BOS n-gram
        for k in range(n - 1, 0, -1):
            longer = set()
            for g in self.raw:
                s = g[n - k - 1 :]  # left symbol + the k-gram
                if s[1] == BOS:
                    continue
                longer.add(s)
            for s in longer:
                counts[k][s[1:]] += 1
        # discounts per order from the count-of-counts
        self.discounts = [None]
        for k in range(1, n + 1):
            coc = Counter(c for c in counts[k].values() if c <= 4)
            n1, n2, n3, n4 = (coc.get(i, 0) for i in (1, 2, 3, 4))
            if min(n1, n2, n3, n4) == 0:
                d = (0.5, 1.0, 1.5)
            else:
                y = n1 / (n1 + 2 * n2)
                d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            self.discounts.append(tuple(min(max(x, 0.05), i + 1.0) for i, x in enumerate(d)))
        # per context: (symbol indices, KN counts) for each order
        # (made into arrays when a context is first queried)
        self.ctx = [None] + [defaultdict(list) for _ in range(n)]
        for k in range(1, n + 1):
            for s, c in counts[k].items():
                self.ctx[k][s[:-1]].append((self.index[s[-1]], c))
        self.num_ngrams = sum(len(counts[k]) for k in range(1, n + 1))

    def _dist(self, h: str) -> np.ndarray:
        """P(. | h) over self.symbols, h already canonical (at most one leading
        BOS, at most order-1 long)."""
        k = len(h) + 1
        if k == 1:
            lower = np.full(len(self.symbols), 1.0 / len(self.symbols))
        else:
            lower = self._dist_cached(h[1:])  # "^ab" -> "ab", "^" -> ""
        pairs = self.ctx[k].get(h)
        if not pairs:
            return lower
        idx = np.array([q[0] for q in pairs], dtype=np.int64)
        cnt = np.array([q[1] for q in pairs], dtype=np.float64)
        d1, d2, d3 = self.discounts[k]
        disc = np.where(cnt >= 3, d3, np.where(cnt >= 2, d2, d1))
        total = cnt.sum()
        gamma = disc.sum() / total
        p = gamma * lower
        p[idx] += (cnt - disc) / total
        return p

    def _dist_cached(self, h: str) -> np.ndarray:
        p = self._cache.get(h)
        if p is None:
            p = self._cache[h] = self._dist(h)
        return p

    def context(self, text: str) -> str:
        """The canonical LM context for a (normalized) sentence prefix."""
        return (BOS + text)[-(self.order - 1):] if self.order > 1 else ""

    def log_dist(self, text: str) -> np.ndarray:
        """Natural-log P(next symbol | sentence prefix) over self.symbols."""
        h = self.context(text)
        key = ("log", h)
        p = self._cache.get(key)
        if p is None:
            with np.errstate(divide="ignore"):
                p = self._cache[key] = np.log(self._dist_cached(h))
        return p

    def logp(self, text: str, sym: int) -> float:
        """Natural-log P(symbol index `sym` | sentence prefix `text`)."""
        return float(self.log_dist(text)[sym])

    def sentence_logprob(self, text: str) -> float:
        text = normalize_text(text)
        lp = 0.0
        for i, ch in enumerate(text + EOS):
            lp += self.log_dist(text[:i])[self.index[ch]]
        return lp


    # -- the runtime's binary form ---------------------------------------
    def export_bin(self, path, alpha: float, beta: float, beam: int, prune: float):
        """Write the LM in backoff form for the Rust decoder (format in
        `BinLM`'s docstring), with the decoding settings it was tuned with."""
        n, v = self.order, len(self.symbols)
        if v > MAX_SYMBOLS or n > MAX_ORDER:
            raise ValueError(f"binary LM holds at most {MAX_SYMBOLS} symbols and order {MAX_ORDER}")
        out = bytearray(MAGIC)
        out += struct.pack("<III", BIN_VERSION, n, v)
        for sym in self.symbols:
            b = sym.encode()
            out += struct.pack("<B", len(b)) + b
        out += struct.pack("<ffIf", alpha, beta, beam, prune)
        for k in range(1, n + 1):
            rows = []
            for h, pairs in self.ctx[k].items():
                d1, d2, d3 = self.discounts[k]
                cnt = np.array([q[1] for q in pairs], dtype=np.float64)
                disc = np.where(cnt >= 3, d3, np.where(cnt >= 2, d2, d1))
                gamma = disc.sum() / cnt.sum()
                dist = self._dist_cached(h)
                syms = sorted(q[0] for q in pairs)
                rows.append((self._key(h), math.log(gamma), syms, [math.log(dist[i]) for i in syms]))
            rows.sort()
            starts = np.cumsum([0] + [len(r[2]) for r in rows])
            out += struct.pack("<II", len(rows), int(starts[-1]))
            out += np.array([r[0] for r in rows], dtype="<u4").tobytes()
            out += np.array([r[1] for r in rows], dtype="<f4").tobytes()
            out += starts.astype("<u4").tobytes()
            out += np.array([i for r in rows for i in r[2]], dtype="u1").tobytes()
            out += np.array([x for r in rows for x in r[3]], dtype="<f4").tobytes()
        pathlib.Path(path).write_bytes(bytes(out))

    def _key(self, h: str) -> int:
        return context_key([len(self.symbols) if ch == BOS else self.index[ch] for ch in h])


MAGIC, BIN_VERSION, MAX_SYMBOLS, MAX_ORDER = b"HARKCLM1", 1, 30, 7


def context_key(ids) -> int:
    """A context (symbol ids, BOS = number of symbols) as one integer: base-32
    digits id + 1, oldest first, so dropping the oldest symbol is `key % 32**(len-1)`."""
    key = 0
    for i in ids:
        key = key * 32 + i + 1
    return key


class BinLM:
    """The LM as the runtime reads it (src/decode/lm.rs), for checking the
    export and for producing the Rust decoder's test vectors.

    Little-endian: magic "HARKCLM1"; u32 version, order, number of symbols V;
    V x (u8 length, UTF-8 text), the end symbol last; f32 alpha, f32 beta,
    u32 beam, f32 prune (the tuned decoding settings); then for each order
    k = 1..order: u32 contexts C, u32 entries E; C x u32 context key (sorted,
    `context_key` of the k-1 context symbols, BOS = V); C x f32 log backoff;
    (C+1) x u32 first entry of each context; E x u8 symbol (sorted within a
    context); E x f32 log-prob. log P(w | h) is the entry of (h, w) if there
    is one, else log backoff(h) (0 if h has no row) + log P(w | h without its
    oldest symbol), down to log(1/V) below the empty context."""

    def __init__(self, blob: bytes):
        if blob[:8] != MAGIC:
            raise ValueError("not a hark character LM")
        pos = 8
        version, self.order, v = struct.unpack_from("<III", blob, pos)
        pos += 12
        if version != BIN_VERSION:
            raise ValueError(f"LM format version {version}, expected {BIN_VERSION}")
        self.symbols = []
        for _ in range(v):
            ln = blob[pos]
            self.symbols.append(blob[pos + 1 : pos + 1 + ln].decode())
            pos += 1 + ln
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.alpha, self.beta, self.beam, self.prune = struct.unpack_from("<ffIf", blob, pos)
        pos += 16
        self.tables = [None]
        for _ in range(self.order):
            c, e = struct.unpack_from("<II", blob, pos)
            pos += 8
            keys = np.frombuffer(blob, "<u4", c, pos); pos += 4 * c  # noqa: E702
            bo = np.frombuffer(blob, "<f4", c, pos); pos += 4 * c  # noqa: E702
            starts = np.frombuffer(blob, "<u4", c + 1, pos); pos += 4 * (c + 1)  # noqa: E702
            syms = np.frombuffer(blob, "u1", e, pos); pos += e  # noqa: E702
            lps = np.frombuffer(blob, "<f4", e, pos); pos += 4 * e  # noqa: E702
            self.tables.append((keys, bo, starts, syms, lps))
        if pos != len(blob):
            raise ValueError("trailing bytes after the LM tables")

    @classmethod
    def load(cls, path):
        return cls(pathlib.Path(path).read_bytes())

    def logp(self, text: str, sym: int) -> float:
        h = (BOS + text)[-(self.order - 1):] if self.order > 1 else ""
        ids = [len(self.symbols) if ch == BOS else self.index[ch] for ch in h]
        acc = 0.0
        for start in range(len(ids) + 1):
            ctx = ids[start:]
            keys, bo, starts, syms, lps = self.tables[len(ctx) + 1]
            j = int(np.searchsorted(keys, context_key(ctx)))
            if j < len(keys) and keys[j] == context_key(ctx):
                a, b = int(starts[j]), int(starts[j + 1])
                m = a + int(np.searchsorted(syms[a:b], sym))
                if m < b and syms[m] == sym:
                    return acc + float(lps[m])
                acc += float(bo[j])
        return acc + math.log(1.0 / len(self.symbols))


# -- decoding --------------------------------------------------------------
class _Beam:
    __slots__ = ("pb", "pnb", "last", "text", "lm", "lm_trim")

    def __init__(self, pb, pnb, last, text, lm, lm_trim):
        self.pb, self.pnb, self.last = pb, pnb, last
        self.text, self.lm, self.lm_trim = text, lm, lm_trim


def _lse(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def beam_search(log_probs: np.ndarray, tokens, blank: int, lm=None, alpha: float = 0.5,
                beta: float = 1.0, beam: int = 8, prune: float = 10.0) -> str:
    """CTC prefix beam search with an optional character LM (see the module
    docstring for the scoring). `log_probs` is [frames, tokens], natural log."""
    use_lm = lm is not None and alpha != 0.0
    space = " "
    lm_idx = [lm.index.get(t) if lm is not None else None for t in tokens]
    if use_lm:
        missing = [t for i, t in enumerate(tokens) if i != blank and lm_idx[i] is None]
        if missing:
            raise ValueError(f"tokens missing from the LM: {missing}")

    def extend(b: _Beam, tok: int):
        """(text, lm, lm_trim) after appending token `tok` to beam b."""
        ch = tokens[tok]
        if ch == space and (not b.text or b.text[-1] == space):
            return b.text, b.lm, b.lm_trim
        lm_score = b.lm + (lm.logp(b.text, lm_idx[tok]) if use_lm else 0.0)
        trim = b.lm if ch == space else lm_score
        return b.text + ch, lm_score, trim

    def rank(b: _Beam) -> float:
        return _lse(b.pb, b.pnb) + alpha * b.lm + beta * len(b.text)

    # prefixes keyed by their raw collapsed token sequence
    beams = {(): _Beam(0.0, NEG_INF, None, "", 0.0, 0.0)}
    for frame in np.asarray(log_probs, dtype=np.float64):
        best = frame.max()
        cands = [int(c) for c in np.nonzero(frame >= best - prune)[0] if c != blank]
        p_blank = float(frame[blank])
        nxt = {}

        def get(key, parent, tok):
            b = nxt.get(key)
            if b is None:
                if tok is None:
                    b = _Beam(NEG_INF, NEG_INF, parent.last, parent.text, parent.lm, parent.lm_trim)
                else:
                    text, lm_score, trim = extend(parent, tok)
                    b = _Beam(NEG_INF, NEG_INF, tok, text, lm_score, trim)
                nxt[key] = b
            return b

        for key, b in beams.items():
            total = _lse(b.pb, b.pnb)
            same = get(key, b, None)
            same.pb = _lse(same.pb, total + p_blank)
            for c in cands:
                pc = float(frame[c])
                if c == b.last:
                    same.pnb = _lse(same.pnb, b.pnb + pc)  # repeat collapses
                    if b.pb != NEG_INF:
                        ext = get(key + (c,), b, c)
                        ext.pnb = _lse(ext.pnb, b.pb + pc)  # blank-separated repeat
                else:
                    ext = get(key + (c,), b, c)
                    ext.pnb = _lse(ext.pnb, total + pc)
        beams = dict(sorted(nxt.items(), key=lambda kv: rank(kv[1]), reverse=True)[:beam])

    # sentence end: score "$" after the text with any trailing space taken back
    finals = {}
    for b in beams.values():
        text = b.text.rstrip(space)
        lm_score = b.lm_trim if b.text.endswith(space) else b.lm
        if use_lm:
            lm_score += lm.logp(text, lm.index[EOS])
        ac = _lse(b.pb, b.pnb)
        if text in finals:
            finals[text] = (_lse(finals[text][0], ac), lm_score)
        else:
            finals[text] = (ac, lm_score)
    best = max(finals.items(), key=lambda kv: kv[1][0] + alpha * kv[1][1] + beta * len(kv[0]))
    return best[0]


# -- command line --------------------------------------------------------------
def train_sentences(corpus: pathlib.Path):
    """The training split's texts only (never dev/test_clean/real)."""
    return [it["text"] for it in read_manifest(corpus, "train")]


def plan_sentences(seed: int) -> list:
    """Every sentence make_corpus.py's plan keeps for training with this seed (its
    held-out dev/test sentences excluded), whether or not it was synthesized."""
    import make_corpus

    return make_corpus.training_texts(seed)


def cmd_build(a):
    sents = train_sentences(pathlib.Path(a.corpus))
    if a.plan_seed is not None:
        sents += plan_sentences(a.plan_seed)
    sents = list(dict.fromkeys(sents))
    symbols = [" ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    if a.model:
        from evaluate import Recognizer
        rec = Recognizer(a.model)
        symbols = [t for i, t in enumerate(rec.tokens) if i != rec.blank]
    t = time.perf_counter()
    lm = CharLM.train(sents, a.order, symbols)
    lm.save(a.out)
    size = pathlib.Path(a.out).stat().st_size
    print(f"{len(sents)} training sentences, order {a.order}, {len(lm.raw)} stored {a.order}-grams, "
          f"{lm.num_ngrams} n-grams of all orders, {size / 1e6:.2f} MB at {a.out}, "
          f"{time.perf_counter() - t:.1f} s")


def settings_offset(blob: bytes) -> int:
    """Byte offset of the f32 alpha, f32 beta, u32 beam, f32 prune of a binary LM."""
    BinLM(blob)  # validates magic and version
    v = struct.unpack_from("<I", blob, 16)[0]
    pos = 20
    for _ in range(v):
        pos += 1 + blob[pos]
    return pos


def with_settings(blob: bytes, alpha: float, beta: float, beam: int, prune: float) -> bytes:
    """The same binary LM with other tuned decoding settings (the n-grams untouched)."""
    pos = settings_offset(blob)
    return blob[:pos] + struct.pack("<ffIf", alpha, beta, beam, prune) + blob[pos + 16:]


def cmd_settings(a):
    blob = pathlib.Path(a.lm).read_bytes()
    lm = BinLM(blob)
    alpha = lm.alpha if a.alpha is None else a.alpha
    beta = lm.beta if a.beta is None else a.beta
    beam = lm.beam if a.beam is None else a.beam
    prune = lm.prune if a.prune is None else a.prune
    pathlib.Path(a.out).write_bytes(with_settings(blob, alpha, beta, beam, prune))
    print(f"{a.out}: alpha {alpha} beta {beta} beam {beam} prune {prune}")


def floats(s: str):
    return [float(x) for x in s.split(",") if x.strip()]


def cmd_eval(a):
    from evaluate import Recognizer
    import fbank as FB
    from evalsets import load_audio, real_recordings
    from wer import char_error_rate, score

    rec = Recognizer(a.model)
    t = time.perf_counter()
    lm = BinLM.load(a.lm) if a.lm.endswith(".bin") else CharLM.load(a.lm)
    print(f"LM {a.lm} "
          f"({pathlib.Path(a.lm).stat().st_size / 1e6:.2f} MB, order {lm.order}, loaded in "
          f"{time.perf_counter() - t:.1f} s)")
    sets = {}
    if a.split != "none":
        corpus = pathlib.Path(a.corpus)
        items = read_manifest(corpus, a.split)[: a.max]
        sets[f"{a.split}({len(items)})"] = [(it["text"], corpus / it["path"]) for it in items]
    if a.real:
        real = [(ref, path) for _, path, ref in real_recordings() if ref is not None]
        sets[f"real({len(real)})"] = real
    # log-probs cached in memory for the whole run (the grid reuses them)
    cache = {}
    for name, clips in sets.items():
        for ref, path in clips:
            wave = load_audio(path)
            cache[path] = (rec.log_probs(FB.fbank(wave).numpy()), len(wave) / 16000)
    grid = list(itertools.product(floats(a.alpha), floats(a.beta)))
    results = []
    for name, clips in sets.items():
        audio_s = sum(cache[p][1] for _, p in clips)
        g_rows = [(ref, greedy(cache[p][0], rec.tokens, rec.blank)) for ref, p in clips]
        gw, words = score(g_rows)
        gc = char_error_rate(g_rows)
        print(f"\n{name}: {words} words, {audio_s:.0f} s audio; greedy WER {100 * gw:.2f}% CER {100 * gc:.2f}%")
        print(f"{'alpha':>6s} {'beta':>6s} {'beam':>4s} {'WER':>7s} {'CER':>7s} {'ms/s audio':>10s}")
        for alpha, beta in grid:
            t = time.perf_counter()
            rows = [(ref, beam_search(cache[p][0], rec.tokens, rec.blank, lm, alpha, beta, a.beam, a.prune))
                    for ref, p in clips]
            dt = time.perf_counter() - t
            w, _ = score(rows)
            c = char_error_rate(rows)
            print(f"{alpha:6.2f} {beta:6.2f} {a.beam:4d} {100 * w:6.2f}% {100 * c:6.2f}% "
                  f"{1000 * dt / audio_s:10.1f}", flush=True)
            results.append({"set": name, "alpha": alpha, "beta": beta, "beam": a.beam, "wer": w, "cer": c,
                            "greedy_wer": gw, "greedy_cer": gc, "words": words,
                            "decode_ms_per_audio_s": 1000 * dt / audio_s})
            if a.show:
                for (ref, hyp), (_, ghyp) in zip(rows, g_rows):
                    if hyp != ghyp:
                        print(f"   REF {ref}\n   GRD {ghyp}\n   LM  {hyp}")
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps({"note": "python decoder (the runtime's reference), tuning grid",
                                                   "model": a.model, "lm": a.lm, "results": results}, indent=1))


def cmd_vectors(a):
    """Test vectors for the Rust beam search (tests/it/beam.rs): the model's
    log-probs for some WAV files (rounded to 4 decimals, then read as
    float32 on both sides) and what `beam_search` with the binary LM makes of
    them under a few settings."""
    from evaluate import Recognizer
    import fbank as FB
    from evalsets import load_audio

    rec = Recognizer(a.model)
    lm = BinLM.load(a.lm)
    settings = [(lm.alpha, lm.beta, lm.beam, lm.prune), (0.5, 1.0, 3, 10.0), (2.0, 0.0, 16, 6.0)]
    items = []
    for path in a.wav:
        wave = load_audio(pathlib.Path(path))
        # 4 decimals as float64 (what the JSON holds), then float32 as the Rust side reads it
        rounded = [[round(float(x), 4) for x in row] for row in rec.log_probs(FB.fbank(wave).numpy())]
        lp = np.array(rounded, dtype=np.float64).astype(np.float32)
        out = [{"alpha": al, "beta": be, "beam": bm, "prune": pr,
                "text": beam_search(lp, rec.tokens, rec.blank, lm, al, be, bm, pr)}
               for al, be, bm, pr in settings]
        items.append({"file": pathlib.Path(path).name, "greedy": greedy(lp, rec.tokens, rec.blank),
                      "log_probs": rounded, "decoded": out})
        print(path, [o["text"] for o in out])
    pathlib.Path(a.out).write_text(json.dumps({"model": a.model, "lm": a.lm, "tokens": rec.tokens,
                                               "blank": rec.blank, "items": items}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train the character LM on the training texts only")
    b.add_argument("--corpus", default="data/corpus")
    b.add_argument("--order", type=int, default=6)
    b.add_argument("--out", required=True, help="LM file (.json, or .json.gz compressed)")
    b.add_argument("--model", help="take the LM symbols from this model's hark.tokens")
    b.add_argument("--plan-seed", type=int, help="also every training sentence of make_corpus.py's plan with this seed")
    x = sub.add_parser("export", help="write the LM in the runtime's binary form, with its tuned settings")
    x.add_argument("--lm", required=True, help="LM built by `build`")
    x.add_argument("--out", required=True, help=f"binary LM ({SHIPPED_LM} is the bundled one)")
    x.add_argument("--alpha", type=float, default=1.0)
    x.add_argument("--beta", type=float, default=1.0)
    x.add_argument("--beam", type=int, default=16)
    x.add_argument("--prune", type=float, default=10.0)
    st = sub.add_parser("settings", help="copy a binary LM with other decoding settings (no rebuild)")
    st.add_argument("--lm", required=True)
    st.add_argument("--out", required=True)
    st.add_argument("--alpha", type=float)
    st.add_argument("--beta", type=float)
    st.add_argument("--beam", type=int)
    st.add_argument("--prune", type=float)
    v = sub.add_parser("vectors", help="write test vectors for the Rust beam search")
    v.add_argument("--model", default=SHIPPED_MODEL)
    v.add_argument("--lm", default=SHIPPED_LM)
    v.add_argument("--out", default="tests/data/beam_vectors.json")
    v.add_argument("wav", nargs="+")
    e = sub.add_parser("eval", help="greedy vs beam+LM WER/CER over an alpha x beta grid (tuning on dev)")
    e.add_argument("--model", default=SHIPPED_MODEL)
    e.add_argument("--lm", required=True)
    e.add_argument("--corpus", default="data/corpus")
    e.add_argument("--split", default="dev", help="dev, test_clean, or none")
    e.add_argument("--max", type=int, default=None, help="first N clips of the split")
    e.add_argument("--real", action="store_true", help="also score the real recordings that have a reference")
    e.add_argument("--alpha", default="0.5", help="LM weight; a comma list makes a grid with --beta")
    e.add_argument("--beta", default="1.0", help="per-character insertion bonus; comma list allowed")
    e.add_argument("--grid", action="store_true", help="shorthand for a default alpha x beta grid")
    e.add_argument("--beam", type=int, default=8)
    e.add_argument("--prune", type=float, default=10.0,
                   help="skip tokens whose frame log-prob is this far below the frame's best")
    e.add_argument("--show", action="store_true", help="print the utterances where the LM changed the output")
    e.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    if a.cmd == "build":
        cmd_build(a)
    elif a.cmd == "settings":
        cmd_settings(a)
    elif a.cmd == "vectors":
        cmd_vectors(a)
    elif a.cmd == "export":
        t = time.perf_counter()
        CharLM.load(a.lm).export_bin(a.out, a.alpha, a.beta, a.beam, a.prune)
        print(f"{a.out}: {pathlib.Path(a.out).stat().st_size / 1e6:.2f} MB, alpha {a.alpha} beta {a.beta} "
              f"beam {a.beam} prune {a.prune}, {time.perf_counter() - t:.1f} s")
    else:
        if a.grid:
            a.alpha, a.beta = "0,0.25,0.5,0.75,1.0", "0,0.5,1.0,1.5,2.0"
        cmd_eval(a)


if __name__ == "__main__":
    main()
