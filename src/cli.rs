//! Command-line flags (clap). Units are in the flag names and help texts;
//! `config.rs` turns them into one validated configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::BackendChoice;
use crate::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "hark",
    version,
    about = "On-device streaming speech recognizer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Transcribe WAV files, or raw PCM on stdin (`-`).
    Transcribe(TranscribeArgs),
    /// Transcribe live audio from an ALSA capture device until SIGINT/SIGTERM.
    Listen(ListenArgs),
    /// List ALSA capture devices.
    Devices,
    /// Measure load time, per-chunk latency, real-time factor and memory.
    Bench(BenchArgs),
    /// Print what a model file declares (the bundled model without PATH)
    /// and the backend it would run on.
    Model {
        /// Model file (ONNX with hark contract metadata).
        path: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Where the model runs: `cpu`; `cuda`, the NVIDIA GPU (needs a binary
    /// built with `--features cuda` for CUDA 12.6 or `--features cuda13`
    /// for CUDA 13, and a working driver; else exit 2); `auto`, the GPU
    /// when usable and the CPU otherwise.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto, long_help = BACKEND_LONG_HELP)]
    pub backend: BackendChoice,
}

/// `--help` for `--backend`: also says what this binary was built with.
macro_rules! backend_help {
    ($built:literal) => {
        concat!(
            "Where the model runs: `cpu`; `cuda`, the NVIDIA GPU (needs a binary built with ",
            "`--features cuda` for CUDA 12.6 or `--features cuda13` for CUDA 13, and a working ",
            "driver; else exit 2); `auto`, the GPU when usable and the CPU otherwise. ",
            "This binary: ",
            $built
        )
    };
}

#[cfg(feature = "cuda13")]
const BACKEND_LONG_HELP: &str = backend_help!("built with `cuda13` (CUDA 13).");
#[cfg(all(feature = "cuda", not(feature = "cuda13")))]
const BACKEND_LONG_HELP: &str = backend_help!("built with `cuda` (CUDA 12.6).");
#[cfg(not(any(feature = "cuda", feature = "cuda13")))]
const BACKEND_LONG_HELP: &str =
    backend_help!("CPU only (built without `cuda` or `cuda13`), so `auto` is `cpu`.");

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model file (ONNX, hark contract); the bundled model when omitted.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Trailing silence after speech that ends an utterance, in milliseconds.
    #[arg(long, default_value_t = 800)]
    pub endpoint_silence_ms: u32,
    /// Longest utterance before a final is forced, in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    pub max_utterance_ms: u32,
    /// Character language model for the beam search (`train/charlm.py
    /// export`); the bundled one when omitted.
    #[arg(long, conflicts_with = "no_lm")]
    pub lm: Option<PathBuf>,
    /// Decode greedily, without a language model (faster, more word errors).
    #[arg(long)]
    pub no_lm: bool,
    /// Which pass writes each final: `whisper`, Whisper tiny.en reading the
    /// utterance again at its endpoint (the partials stay the streaming
    /// pass's); `stream`, Whisper tiny.en's decoder reading the states a
    /// converted streaming encoder computed chunk by chunk as the audio came
    /// (nothing encoded again at the endpoint; experimental, issue 37); or
    /// `ctc`, the streaming pass's own text (no second pass).
    /// With --phrases the grammar search writes them.
    #[arg(long, value_enum, default_value_t = FinalsChoice::Whisper)]
    pub finals: FinalsChoice,
    /// The finals model: a directory with `decoder.onnx` and `encoder.onnx`
    /// (`train/whisper_export.py`; `stream.onnx` for `--finals stream`,
    /// `train/experiments/stream_export.py`); the bundled Whisper tiny.en
    /// when omitted.
    #[arg(long, value_name = "DIR")]
    pub finals_model: Option<PathBuf>,
    /// Beam width of the LM beam search [default: the LM file's tuned
    /// width; 32 for the bundled LM, `hark model` prints it].
    #[arg(long, conflicts_with = "no_lm")]
    pub beam: Option<usize>,
}

/// Voice commands: decoding constrained to a phrase file.
#[derive(Args, Debug, Clone, Default)]
pub struct PhraseArgs {
    /// Decode only the phrases in FILE (voice commands): one per line,
    /// `(a|b)` a choice, `[word]` optional, `{number}` a number slot
    /// ("twenty five" -> 25). Finals become `command` events, or
    /// `rejected` ones (not printed in text format). The LM is not used;
    /// `--beam` sets the search's width (default 16).
    #[arg(long, value_name = "FILE", conflicts_with = "lm")]
    pub phrases: Option<PathBuf>,
    /// With --phrases: reject a command whose confidence (0 to 1) is below
    /// this [default: 0.25, tuned on real recordings: benches/RESULTS.md].
    #[arg(long, value_name = "CONFIDENCE", requires = "phrases")]
    pub reject: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FinalsChoice {
    Whisper,
    Stream,
    Ctc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SampleFormatArg {
    S16le,
    F32le,
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Also print partial hypotheses while speech goes on (text: on stderr).
    #[arg(long)]
    pub partials: bool,
    #[command(flatten)]
    pub phrases: PhraseArgs,
    /// Output format: text (one line per utterance), jsonl, or tsv (FILE<TAB>TRANSCRIPT).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Sample rate of raw PCM on stdin, in Hz.
    #[arg(long, default_value_t = 16000)]
    pub rate: u32,
    /// Channels of raw PCM on stdin (interleaved).
    #[arg(long, default_value_t = 1)]
    pub channels: u16,
    /// Sample format of raw PCM on stdin.
    #[arg(long, value_enum, default_value_t = SampleFormatArg::S16le)]
    pub sample_format: SampleFormatArg,
    /// WAV files; `-` reads stdin: a WAV stream when it starts with a WAV
    /// header, raw PCM as --rate/--channels/--sample-format say otherwise.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListenArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Also print partial hypotheses while speech goes on (text: on stderr).
    #[arg(long)]
    pub partials: bool,
    #[command(flatten)]
    pub phrases: PhraseArgs,
    /// ALSA capture device (see `hark devices`).
    #[arg(long, default_value = "default")]
    pub device: String,
    /// Output format: text (one line per utterance) or jsonl.
    #[arg(long, value_enum, default_value_t = ListenFormat::Text)]
    pub format: ListenFormat,
}

/// `listen`'s output formats (TSV is one line per file: `transcribe` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListenFormat {
    Text,
    Jsonl,
}

impl From<ListenFormat> for Format {
    fn from(f: ListenFormat) -> Format {
        match f {
            ListenFormat::Text => Format::Text,
            ListenFormat::Jsonl => Format::Jsonl,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Endpoint rules and decoding, as for listen (partials are always
    /// measured; the model runs on one thread).
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[command(flatten)]
    pub phrases: PhraseArgs,
    /// Audio delivered per push, in milliseconds, as a sound card's period;
    /// the model's chunk size when omitted.
    #[arg(long)]
    pub chunk_ms: Option<u32>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,
    /// WAV files; the sample embedded in the binary when none are given.
    pub files: Vec<PathBuf>,
}
