//! Greedy CTC decoding with per-token times. The state is explicit and
//! carried across chunks; its token buffer is allocated once with the
//! capacity of the longest utterance the endpoint rules allow, so decoding
//! never allocates in steady state.

/// A decoded token and the output frame (stream-absolute) where it was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedToken {
    pub id: usize,
    pub frame: u64,
}

#[derive(Debug)]
pub struct CtcState {
    blank_id: usize,
    /// Last frame's best token (blank included), for collapsing repeats.
    prev: usize,
    /// Tokens of the current utterance.
    pub tokens: Vec<TimedToken>,
    /// Output frames seen in the stream so far.
    pub frame: u64,
    /// Output frames since the last non-blank token (or the utterance start).
    pub trailing_blanks: u64,
    /// First output frame of the current utterance.
    pub utterance_start: u64,
    /// Frames whose tokens did not fit (only if an utterance outgrew the capacity).
    pub overflowed: u64,
}

impl CtcState {
    pub fn new(blank_id: usize, max_tokens: usize) -> Self {
        CtcState {
            blank_id,
            prev: blank_id,
            tokens: Vec::with_capacity(max_tokens),
            frame: 0,
            trailing_blanks: 0,
            utterance_start: 0,
            overflowed: 0,
        }
    }

    /// Consume `frames` rows of `vocab` log-probabilities. Returns true if a
    /// new token was emitted.
    pub fn accept(&mut self, log_probs: &[f32], vocab: usize) -> bool {
        let mut changed = false;
        for row in log_probs.chunks_exact(vocab) {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            if best != self.blank_id && best != self.prev {
                if self.tokens.len() < self.tokens.capacity() {
                    self.tokens.push(TimedToken {
                        id: best,
                        frame: self.frame,
                    });
                } else {
                    self.overflowed += 1;
                }
                changed = true;
            }
            if best == self.blank_id {
                self.trailing_blanks += 1;
            } else {
                self.trailing_blanks = 0;
            }
            self.prev = best;
            self.frame += 1;
        }
        changed
    }

    /// Frames in the current utterance.
    pub fn utterance_frames(&self) -> u64 {
        self.frame - self.utterance_start
    }

    /// Start a new utterance at the current frame (keeps the capacity).
    pub fn start_utterance(&mut self) {
        self.tokens.clear();
        self.prev = self.blank_id;
        self.trailing_blanks = 0;
        self.utterance_start = self.frame;
    }
}
