//! Phrase-constrained CTC prefix beam search with rejection (`--phrases`).
//!
//! The same prefix search as `beam.rs`, without a language model, where
//! each prefix also carries its state in the phrase automaton
//! (`phrases.rs`): a frame extends a prefix only by tokens the automaton
//! allows from its state (a repeated token, which does not change the
//! prefix, always), so every prefix is the start of an allowed phrase. A
//! prefix ranks by log(pb + pnb), its acoustic log-probability summed over
//! its alignments, plus `token_bonus` per token: without it a prefix that
//! waits (blank) outranks one that spells what the grammar needs but the
//! model hears faintly, and the beam can end with no complete phrase. At
//! the end of an utterance the best prefix in an accepting state (ranked
//! the same way) is the command; its confidence uses the acoustic score
//! alone.
//!
//! Rejection: the search also sums, frame by frame, the log-probability of
//! the frame's most likely token (the best unconstrained path, which is
//! what the model would say with no grammar). The command's confidence is
//! exp((constrained - free) / tokens), the geometric mean per token of the
//! command's likelihood relative to the free path, clamped to 1: near 1
//! when the grammar agrees with what the model heard, small when the
//! grammar had to force tokens the model did not hear (out-of-grammar
//! speech, noise).
//!
//! Memory is fixed at construction: `beam` prefixes of at most
//! `max_tokens` tokens, twice, and one candidate per (beam, token); a
//! frame allocates nothing. Runs on the recognizer thread.

use std::sync::Arc;

use super::beam::{lse, mix, HASH_START};
use super::ctc::TimedToken;
use super::phrases::{Phrases, DEAD};

const NONE: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
struct Hyp {
    pb: f64,
    pnb: f64,
    last: usize,
    state: u32,
    /// Hash of the token sequence (candidates are merged on it).
    key: u64,
}

impl Hyp {
    fn root(state: u32) -> Self {
        Hyp {
            pb: 0.0,
            pnb: f64::NEG_INFINITY,
            last: NONE,
            state,
            key: HASH_START,
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
    ext: usize,
    hyp: Hyp,
}

/// The search's verdict on an utterance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// Whether the best prefix is a complete phrase (else nothing matched).
    pub complete: bool,
    /// Constrained and free log-probabilities of the utterance's frames.
    pub constrained: f64,
    pub free: f64,
    /// exp((constrained - free) / tokens), at most 1; 0 when not complete.
    pub confidence: f64,
}

#[derive(Debug)]
pub struct CommandSearch {
    phrases: Arc<Phrases>,
    beam: usize,
    token_bonus: f64,
    blank: usize,
    beams: Vec<Beam>,
    next: Vec<Beam>,
    live: usize,
    /// The beam `best` returns: 0 (the best ranked), or the final choice.
    chosen: usize,
    cands: Vec<Cand>,
    order: Vec<usize>,
    free: f64,
    /// Tokens that did not fit (only if an utterance outgrew the capacity).
    pub overflowed: u64,
}

impl CommandSearch {
    pub fn new(
        phrases: Arc<Phrases>,
        beam: usize,
        token_bonus: f64,
        vocab: usize,
        blank: usize,
        max_tokens: usize,
    ) -> Self {
        let beam = beam.max(1);
        let mk = || {
            (0..beam)
                .map(|_| Beam {
                    hyp: Hyp::root(0),
                    tokens: Vec::with_capacity(max_tokens),
                })
                .collect::<Vec<_>>()
        };
        let mut s = CommandSearch {
            beams: mk(),
            next: mk(),
            live: 1,
            chosen: 0,
            cands: Vec::with_capacity(beam * (vocab + 1)),
            order: Vec::with_capacity(beam * (vocab + 1)),
            free: 0.0,
            overflowed: 0,
            phrases,
            beam,
            token_bonus,
            blank,
        };
        s.reset();
        s
    }

    /// Start a new utterance: one empty prefix at the automaton's start.
    pub fn reset(&mut self) {
        self.live = 1;
        self.chosen = 0;
        self.free = 0.0;
        self.beams[0].hyp = Hyp::root(self.phrases.start());
        self.beams[0].tokens.clear();
    }

    /// The best prefix so far (for partials), or after `finalize` the
    /// utterance's choice.
    pub fn best(&self) -> &[TimedToken] {
        &self.beams[self.chosen].tokens
    }

    pub fn phrases(&self) -> &Arc<Phrases> {
        &self.phrases
    }

    /// Consume rows of `vocab` log-probabilities; the first row is output
    /// frame `first_frame` of the stream.
    pub fn accept(&mut self, log_probs: &[f32], vocab: usize, first_frame: u64) {
        for (i, row) in log_probs.chunks_exact(vocab).enumerate() {
            self.step(row, first_frame + i as u64);
        }
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
            Hyp {
                pb: f64::NEG_INFINITY,
                pnb: f64::NEG_INFINITY,
                last: ext,
                state: self.phrases.next(ph.state, ext),
                key,
            }
        };
        self.cands.push(Cand { parent, ext, hyp });
        self.cands.len() - 1
    }

    fn step(&mut self, row: &[f32], frame: u64) {
        self.free += row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) as f64;
        let p_blank = row[self.blank] as f64;
        self.cands.clear();
        let phrases = self.phrases.clone();
        for bi in 0..self.live {
            let b = self.beams[bi].hyp;
            let total = lse(b.pb, b.pnb);
            let same = self.get(bi, NONE);
            let h = &mut self.cands[same].hyp;
            h.pb = lse(h.pb, total + p_blank);
            if b.last != NONE {
                // the last token again, no blank between: the same prefix
                h.pnb = lse(h.pnb, b.pnb + row[b.last] as f64);
            }
            for &c in phrases.tokens_from(b.state) {
                let c = c as usize;
                let pc = row[c] as f64;
                let from = if c == b.last { b.pb } else { total };
                if from == f64::NEG_INFINITY {
                    continue;
                }
                debug_assert!(phrases.next(b.state, c) != DEAD);
                let e = self.get(bi, c);
                let h = &mut self.cands[e].hyp;
                h.pnb = lse(h.pnb, from + pc);
            }
        }
        self.order.clear();
        self.order.extend(0..self.cands.len());
        let (cands, beams, bonus) = (&self.cands, &self.beams, self.token_bonus);
        let score = |i: usize| {
            let c = &cands[i];
            let len = beams[c.parent].tokens.len() + usize::from(c.ext != NONE);
            lse(c.hyp.pb, c.hyp.pnb) + bonus * len as f64
        };
        self.order
            .sort_unstable_by(|a, b| score(*b).total_cmp(&score(*a)).then(a.cmp(b)));
        let live = self.beam.min(self.cands.len());
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

    /// End of the utterance: choose the best prefix that is a complete
    /// phrase, and score it against the free path. `best` returns the
    /// choice (empty when none is complete) until the next frame or `reset`.
    pub fn finalize(&mut self) -> Verdict {
        let mut best: Option<(f64, usize)> = None;
        for i in 0..self.live {
            let h = &self.beams[i].hyp;
            let n = self.beams[i].tokens.len();
            if !self.phrases.accepting(h.state) || n == 0 {
                continue;
            }
            let s = lse(h.pb, h.pnb) + self.token_bonus * n as f64;
            if best.is_none_or(|b| s > b.0) {
                best = Some((s, i));
            }
        }
        match best {
            Some((_, i)) => {
                let score = lse(self.beams[i].hyp.pb, self.beams[i].hyp.pnb);
                self.chosen = i;
                let n = self.beams[i].tokens.len().max(1) as f64;
                Verdict {
                    complete: true,
                    constrained: score,
                    free: self.free,
                    confidence: ((score - self.free) / n).min(0.0).exp(),
                }
            }
            None => {
                // no complete phrase: an empty choice
                self.live = 1;
                self.chosen = 0;
                self.beams[0].tokens.clear();
                self.beams[0].hyp = Hyp::root(self.phrases.start());
                Verdict {
                    complete: false,
                    constrained: f64::NEG_INFINITY,
                    free: self.free,
                    confidence: 0.0,
                }
            }
        }
    }
}
