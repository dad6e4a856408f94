//! CTC prefix beam search with the character language model, streaming:
//! the beams are carried across chunks, a partial is the best beam so far,
//! and a final scores each beam's sentence end. It reproduces
//! `beam_search` in train/charlm.py step for step (the test vectors in
//! tests/data/beam_vectors.json check that):
//!
//! - a prefix is the collapsed token sequence; each keeps the
//!   log-probability of its alignments ending in blank (`pb`) and in its
//!   last token (`pnb`); a repeated token extends the prefix only after a
//!   blank;
//! - per frame, only tokens within `prune` of the frame's best are tried;
//! - a prefix ranks by log(pb + pnb) + alpha * log P_LM(text) + beta *
//!   len(text), where `text` is the prefix with runs of spaces collapsed
//!   and leading spaces dropped, so beta is a bonus per character;
//! - at the end of an utterance a trailing space is taken back, the LM's
//!   end-of-sentence probability is added, beams with the same text are
//!   merged, and the best wins.
//!
//! Memory is fixed at construction: `beam` prefixes of at most
//! `max_tokens` tokens, twice (current and next), and one candidate per
//! (beam, token); a frame allocates nothing.

use std::sync::Arc;

use super::ctc::TimedToken;
use super::lm::{CharLm, Tuning, MAX_ORDER};
use crate::error::{HarkError, Result};

const NONE: usize = usize::MAX;
const NO_SYM: u8 = u8::MAX;
/// Start of a prefix's hash (FNV-1a offset basis); `mix` folds in a token.
/// Shared with the phrase-constrained search (`command.rs`).
pub(super) const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

pub(super) fn mix(h: u64, v: usize) -> u64 {
    (h ^ (v as u64).wrapping_add(1)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// log(exp(a) + exp(b)), exact at -inf.
pub(super) fn lse(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    a.max(b) + (-(a - b).abs()).exp().ln_1p()
}

/// A prefix's scores and LM state (its tokens live beside it).
#[derive(Clone, Copy, Debug)]
struct Hyp {
    pb: f64,
    pnb: f64,
    /// Last token of the prefix, NONE for the empty prefix.
    last: usize,
    /// log P_LM(text), and the same before a trailing space.
    lm: f64,
    lm_trim: f64,
    /// Characters in `text` (a trailing space included).
    text_len: u32,
    /// The last (at most `order`) LM symbols of `text`, oldest first.
    hist: [u8; MAX_ORDER],
    hist_len: u8,
    /// Hash of the raw token sequence (candidates are merged on it).
    key: u64,
    /// Hash of `text`, and of `text` without a trailing space.
    text_hash: u64,
    trim_hash: u64,
}

impl Hyp {
    fn root() -> Self {
        Hyp {
            pb: 0.0,
            pnb: f64::NEG_INFINITY,
            last: NONE,
            lm: 0.0,
            lm_trim: 0.0,
            text_len: 0,
            hist: [0; MAX_ORDER],
            hist_len: 0,
            key: HASH_START,
            text_hash: HASH_START,
            trim_hash: HASH_START,
        }
    }
}

#[derive(Debug)]
struct Beam {
    hyp: Hyp,
    tokens: Vec<TimedToken>,
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    parent: usize,
    /// Token appended to the parent's prefix, NONE when it is the same prefix.
    ext: usize,
    hyp: Hyp,
    rank: f64,
}

#[derive(Debug)]
pub struct BeamSearch {
    lm: Arc<CharLm>,
    tuning: Tuning,
    blank: usize,
    /// Token id -> LM symbol (NO_SYM for blank).
    sym: Vec<u8>,
    space: Option<u8>,
    beams: Vec<Beam>,
    next: Vec<Beam>,
    live: usize,
    /// The beam `best` returns: 0 (the best ranked), or the final choice.
    chosen: usize,
    cands: Vec<Cand>,
    order: Vec<usize>,
    tried: Vec<usize>,
    finals: Vec<(f64, f64, u32, u64, usize)>,
    /// Tokens that did not fit (only if an utterance outgrew the capacity).
    pub overflowed: u64,
}

impl BeamSearch {
    /// `tokens` is the model's vocabulary; every token but blank must be a
    /// symbol of the LM.
    pub fn new(
        lm: Arc<CharLm>,
        tuning: Tuning,
        tokens: &[String],
        blank: usize,
        max_tokens: usize,
    ) -> Result<Self> {
        let mut sym = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if i == blank {
                sym.push(NO_SYM);
                continue;
            }
            match lm.symbol(t) {
                Some(s) => sym.push(s),
                None => {
                    return Err(HarkError::Config(format!(
                        "language model {} has no symbol for the model's token {t:?}",
                        lm.source
                    )))
                }
            }
        }
        if tuning.beam == 0 || tuning.beam > 256 {
            return Err(HarkError::Config("--beam must be between 1 and 256".into()));
        }
        let mk = || {
            (0..tuning.beam)
                .map(|_| Beam {
                    hyp: Hyp::root(),
                    tokens: Vec::with_capacity(max_tokens),
                })
                .collect::<Vec<_>>()
        };
        let per_frame = tuning.beam * tokens.len();
        let mut s = BeamSearch {
            space: lm.symbol(" "),
            lm,
            tuning,
            blank,
            sym,
            beams: mk(),
            next: mk(),
            live: 1,
            chosen: 0,
            cands: Vec::with_capacity(per_frame),
            order: Vec::with_capacity(per_frame),
            tried: Vec::with_capacity(tokens.len()),
            finals: Vec::with_capacity(tuning.beam),
            overflowed: 0,
        };
        s.reset();
        Ok(s)
    }

    /// Start a new utterance: one empty prefix.
    pub fn reset(&mut self) {
        self.live = 1;
        self.chosen = 0;
        self.beams[0].hyp = Hyp::root();
        self.beams[0].tokens.clear();
    }

    /// The best prefix so far (for partials), or after `finalize` the
    /// utterance's final choice.
    pub fn best(&self) -> &[TimedToken] {
        &self.beams[self.chosen].tokens
    }

    /// Consume rows of `vocab` log-probabilities; the first row is output
    /// frame `first_frame` of the stream.
    pub fn accept(&mut self, log_probs: &[f32], vocab: usize, first_frame: u64) {
        for (i, row) in log_probs.chunks_exact(vocab).enumerate() {
            self.step(row, first_frame + i as u64);
        }
    }

    /// The canonical LM context of a prefix's text (`trim`: without its
    /// trailing space) into `out`; returns its length.
    fn context(&self, h: &Hyp, trim: bool, out: &mut [u8; MAX_ORDER]) -> usize {
        let n = self.lm.order() - 1;
        let (len, hist_len) = if trim {
            (h.text_len as usize - 1, h.hist_len as usize - 1)
        } else {
            (h.text_len as usize, h.hist_len as usize)
        };
        if len >= n {
            out[..n].copy_from_slice(&h.hist[hist_len - n..hist_len]);
            n
        } else {
            // the whole text is in `hist`: sentence start + text
            out[0] = self.lm.bos();
            out[1..=hist_len].copy_from_slice(&h.hist[..hist_len]);
            hist_len + 1
        }
    }

    fn ends_in_space(&self, h: &Hyp) -> bool {
        h.hist_len > 0 && Some(h.hist[h.hist_len as usize - 1]) == self.space
    }

    /// The prefix `parent` + token `tok`, scores not yet set.
    fn extend(&self, parent: &Hyp, tok: usize) -> Hyp {
        let s = self.sym[tok];
        let mut h = Hyp {
            pb: f64::NEG_INFINITY,
            pnb: f64::NEG_INFINITY,
            last: tok,
            key: mix(parent.key, tok),
            ..*parent
        };
        let is_space = Some(s) == self.space;
        if is_space && (parent.text_len == 0 || self.ends_in_space(parent)) {
            return h; // leading or repeated space: same text
        }
        let mut ctx = [0u8; MAX_ORDER];
        let n = self.context(parent, false, &mut ctx);
        h.lm = parent.lm + self.lm.logp(&ctx[..n], s);
        h.text_hash = mix(parent.text_hash, s as usize);
        (h.lm_trim, h.trim_hash) = if is_space {
            (parent.lm, parent.text_hash)
        } else {
            (h.lm, h.text_hash)
        };
        h.text_len += 1;
        let order = self.lm.order();
        if (h.hist_len as usize) < order {
            h.hist[h.hist_len as usize] = s;
            h.hist_len += 1;
        } else {
            h.hist.copy_within(1..order, 0);
            h.hist[order - 1] = s;
        }
        h
    }

    fn token_at(&self, parent: usize, ext: usize, i: usize) -> usize {
        let t = &self.beams[parent].tokens;
        if i < t.len() {
            t[i].id
        } else {
            ext
        }
    }

    fn seq_len(&self, parent: usize, ext: usize) -> usize {
        self.beams[parent].tokens.len() + usize::from(ext != NONE)
    }

    /// Index of the candidate for prefix `parent` (+ `ext`), created if new.
    fn get(&mut self, parent: usize, ext: usize) -> usize {
        let ph = self.beams[parent].hyp;
        let key = if ext == NONE {
            ph.key
        } else {
            mix(ph.key, ext)
        };
        let len = self.seq_len(parent, ext);
        for (i, c) in self.cands.iter().enumerate() {
            if c.hyp.key == key
                && self.seq_len(c.parent, c.ext) == len
                && (0..len)
                    .all(|j| self.token_at(c.parent, c.ext, j) == self.token_at(parent, ext, j))
            {
                return i;
            }
        }
        let hyp = if ext == NONE {
            Hyp {
                pb: f64::NEG_INFINITY,
                pnb: f64::NEG_INFINITY,
                ..ph
            }
        } else {
            self.extend(&ph, ext)
        };
        self.cands.push(Cand {
            parent,
            ext,
            hyp,
            rank: 0.0,
        });
        self.cands.len() - 1
    }

    fn step(&mut self, row: &[f32], frame: u64) {
        let best = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) as f64;
        self.tried.clear();
        for (c, v) in row.iter().enumerate() {
            if c != self.blank && *v as f64 >= best - self.tuning.prune {
                self.tried.push(c);
            }
        }
        let p_blank = row[self.blank] as f64;
        self.cands.clear();
        for bi in 0..self.live {
            let b = self.beams[bi].hyp;
            let total = lse(b.pb, b.pnb);
            let same = self.get(bi, NONE);
            self.cands[same].hyp.pb = lse(self.cands[same].hyp.pb, total + p_blank);
            for k in 0..self.tried.len() {
                let c = self.tried[k];
                let pc = row[c] as f64;
                if c == b.last {
                    let h = &mut self.cands[same].hyp;
                    h.pnb = lse(h.pnb, b.pnb + pc);
                    if b.pb != f64::NEG_INFINITY {
                        let e = self.get(bi, c);
                        let h = &mut self.cands[e].hyp;
                        h.pnb = lse(h.pnb, b.pb + pc);
                    }
                } else {
                    let e = self.get(bi, c);
                    let h = &mut self.cands[e].hyp;
                    h.pnb = lse(h.pnb, total + pc);
                }
            }
        }
        let (alpha, beta) = (self.tuning.alpha, self.tuning.beta);
        for c in self.cands.iter_mut() {
            let h = &c.hyp;
            c.rank = lse(h.pb, h.pnb) + alpha * h.lm + beta * h.text_len as f64;
        }
        self.order.clear();
        self.order.extend(0..self.cands.len());
        let cands = &self.cands;
        // best first; ties keep creation order (as Python's stable sort)
        self.order
            .sort_unstable_by(|a, b| cands[*b].rank.total_cmp(&cands[*a].rank).then(a.cmp(b)));
        let live = self.tuning.beam.min(self.cands.len());
        for slot in 0..live {
            let c = self.cands[self.order[slot]];
            let (src, dst) = (&self.beams[c.parent], &mut self.next[slot]);
            dst.hyp = c.hyp;
            dst.tokens.clear();
            dst.tokens.extend_from_slice(&src.tokens);
            if c.ext != NONE {
                if dst.tokens.len() < dst.tokens.capacity() {
                    dst.tokens.push(TimedToken { id: c.ext, frame });
                } else {
                    self.overflowed += 1;
                }
            }
        }
        std::mem::swap(&mut self.beams, &mut self.next);
        self.live = live;
        self.chosen = 0;
    }

    /// End of the utterance: score each prefix's sentence end and choose
    /// the best; `best` returns it until the next frame or `reset`.
    pub fn finalize(&mut self) {
        self.finals.clear();
        let eos = self.lm.eos();
        for i in 0..self.live {
            let h = self.beams[i].hyp;
            let trim = self.ends_in_space(&h);
            let (mut lm, len, hash) = if trim {
                (h.lm_trim, h.text_len - 1, h.trim_hash)
            } else {
                (h.lm, h.text_len, h.text_hash)
            };
            let mut ctx = [0u8; MAX_ORDER];
            let n = self.context(&h, trim, &mut ctx);
            lm += self.lm.logp(&ctx[..n], eos);
            let ac = lse(h.pb, h.pnb);
            match self.finals.iter_mut().find(|f| f.2 == len && f.3 == hash) {
                Some(f) => f.0 = lse(f.0, ac),
                None => self.finals.push((ac, lm, len, hash, i)),
            }
        }
        let (alpha, beta) = (self.tuning.alpha, self.tuning.beta);
        let mut best = (f64::NEG_INFINITY, 0);
        for f in &self.finals {
            let score = f.0 + alpha * f.1 + beta * f.2 as f64;
            if score > best.0 {
                best = (score, f.4);
            }
        }
        self.chosen = best.1;
    }
}
