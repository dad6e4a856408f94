//! Endpoint rules: a pure function of the decoder state and a few settings.
//!
//! 1. Speech then silence: at least one token was decoded and the last
//!    `trailing_silence_ms` of output were all blank -> final.
//! 2. Maximum length: the utterance reached `max_utterance_ms` -> final
//!    (with whatever was decoded, possibly nothing).
//! 3. Long silence: no token for `max_utterance_ms` -> silent reset
//!    (no output), so that a model that resets its state at endpoints sees
//!    utterance-sized contexts even when nobody speaks.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointConfig {
    pub trailing_silence_ms: u32,
    pub max_utterance_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            trailing_silence_ms: 800,
            max_utterance_ms: 20_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Emit a final transcript and start a new utterance.
    Final,
    /// Start a new utterance without output (nothing was said).
    Reset,
}

/// Decide whether the current utterance ends here.
pub fn detect(
    cfg: &EndpointConfig,
    frame_ms: f64,
    utterance_frames: u64,
    trailing_blank_frames: u64,
    has_tokens: bool,
) -> Option<Endpoint> {
    let utt_ms = utterance_frames as f64 * frame_ms;
    let silence_ms = trailing_blank_frames as f64 * frame_ms;
    if has_tokens && silence_ms >= cfg.trailing_silence_ms as f64 {
        return Some(Endpoint::Final);
    }
    if utt_ms >= cfg.max_utterance_ms as f64 {
        return Some(if has_tokens {
            Endpoint::Final
        } else {
            Endpoint::Reset
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: EndpointConfig = EndpointConfig {
        trailing_silence_ms: 800,
        max_utterance_ms: 10_000,
    };

    #[test]
    fn silence_after_speech_is_final() {
        assert_eq!(detect(&C, 40.0, 100, 20, true), Some(Endpoint::Final));
        assert_eq!(detect(&C, 40.0, 100, 19, true), None);
    }

    #[test]
    fn silence_without_speech_is_not_final() {
        assert_eq!(detect(&C, 40.0, 100, 100, false), None);
        assert_eq!(detect(&C, 40.0, 250, 250, false), Some(Endpoint::Reset));
    }

    #[test]
    fn max_length_forces_a_final() {
        assert_eq!(detect(&C, 40.0, 250, 0, true), Some(Endpoint::Final));
    }
}
