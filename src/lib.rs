//! hark: an on-device streaming speech recognizer. The binary (`main.rs`)
//! is a thin shell over this library so that tests and benches drive the
//! same code. See docs/model-contract.md for the model file it runs.

pub mod audio;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod decode;
pub mod error;
pub mod finals;
pub mod frontend;
pub mod listen;
pub mod mem;
pub mod model;
pub mod notify;
pub mod output;
pub mod recognizer;
pub mod stream;
