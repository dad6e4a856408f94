//! Decoding: CTC over the model's log-probabilities, the token table, and
//! the endpoint rules. All run on the recognizer thread.

pub mod beam;
pub mod command;
pub mod ctc;
pub mod endpoint;
pub mod lm;
pub mod phrases;
pub mod tokens;
