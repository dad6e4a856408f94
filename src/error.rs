//! Typed errors of the library. The kind says whether retrying can help:
//! configuration and input errors (exit code 2) will fail the same way
//! again, so systemd must not restart on them; runtime errors (exit 1) may
//! pass. `main` maps them to exit codes.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HarkError {
    /// Bad flags or configuration values.
    #[error("configuration: {0}")]
    Config(String),
    /// Unreadable, corrupt or unsupported input audio.
    #[error("input: {0}")]
    Input(String),
    /// Missing, corrupt or incompatible model file.
    #[error("model: {0}")]
    Model(String),
    /// Audio device that cannot be opened or configured.
    #[error("audio device: {0}")]
    Device(String),
    /// A failure while running that may not repeat (I/O, inference).
    #[error("{0}")]
    Runtime(String),
    /// The transcript's reader went away (closed pipe): a normal end.
    #[error("output closed")]
    OutputClosed,
}

impl HarkError {
    /// Process exit code: 2 for errors that a restart cannot fix, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            HarkError::Runtime(_) => 1,
            HarkError::OutputClosed => 0,
            _ => 2,
        }
    }
}

pub type Result<T> = std::result::Result<T, HarkError>;
