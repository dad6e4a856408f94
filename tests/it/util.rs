//! Shared helpers: the bundled model, synthetic audio, running the binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use hark::cli::DecodeArgs;
use hark::model::Model;
use hark::stream::StreamConfig;

/// The configuration `hark` runs `model` with by default (the bundled LM
/// when it covers the model's tokens), or with `--no-lm` when `lm` is false.
pub fn config(model: &Model, partials: bool, lm: bool) -> StreamConfig {
    let d = DecodeArgs {
        endpoint_silence_ms: 800,
        max_utterance_ms: 20_000,
        lm: None,
        no_lm: !lm,
        beam: None,
        finals: hark::cli::FinalsChoice::Ctc,
        finals_model: None,
    };
    let cfg = hark::config::stream_config(&d, partials).expect("default config");
    StreamConfig {
        lm: hark::config::language_model(&d, &model.info).expect("bundled LM"),
        ..cfg
    }
}

pub fn model() -> Arc<Model> {
    static M: OnceLock<Arc<Model>> = OnceLock::new();
    M.get_or_init(|| Model::load_bundled().expect("bundled model loads"))
        .clone()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(name: &str) -> PathBuf {
    repo().join("tests").join("data").join(name)
}

/// Deterministic speech-like test signal: harmonic tones with syllable-rate
/// loudness changes and pauses, in [-1, 1).
pub fn speechlike(seconds: f64, rate: u32, seed: u64) -> Vec<f32> {
    let n = (seconds * rate as f64) as usize;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    };
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let f0 = 110.0 + 40.0 * (t * 0.7 + seed as f64).sin();
            let env = (t * 4.0 * std::f64::consts::PI).sin().abs()
                * if (t as u64 + seed).is_multiple_of(3) {
                    0.05
                } else {
                    1.0
                };
            let v: f64 = (1..6)
                .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                .sum();
            (0.2 * env * v + 0.01 * noise()) as f32
        })
        .collect()
}

/// Mono 16-bit samples of a committed test WAV, as f32 in [-1, 1).
pub fn wav_samples(name: &str) -> Vec<f32> {
    let mut r = hound::WavReader::open(data(name)).expect("test wav");
    r.samples::<i16>()
        .map(|s| s.map(|v| v as f32 / 32768.0).unwrap_or(0.0))
        .collect()
}

/// The committed e2e speech files' names (under tests/data/e2e), sorted.
pub fn e2e_wav_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data("e2e"))
        .expect("e2e dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    names.sort();
    names
}

/// All committed e2e speech files, each followed by a second of silence
/// (about 26 s: utterances, endpoints, partials and finals).
pub fn speech_with_pauses() -> Vec<f32> {
    let mut audio = Vec::new();
    for n in e2e_wav_names() {
        audio.extend(wav_samples(&format!("e2e/{n}")));
        audio.extend(std::iter::repeat_n(0.0, 16000));
    }
    audio
}

pub fn write_wav(path: &Path, samples: &[f32], rate: u32, channels: u16, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        for _ in 0..channels {
            if float {
                w.write_sample(s).expect("write");
            } else {
                let max = ((1i64 << (bits - 1)) - 1) as f32;
                let v = (s.clamp(-1.0, 1.0) * max).round() as i32;
                if bits == 8 {
                    w.write_sample(v as i8).expect("write");
                } else {
                    w.write_sample(v).expect("write");
                }
            }
        }
    }
    w.finalize().expect("finalize");
}

pub fn hark() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hark"));
    c.env_remove("HARK_LOG");
    c
}

pub fn run(args: &[&str]) -> Output {
    hark()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hark")
}

/// Start hark with stdin, stdout and stderr piped.
pub fn spawn_piped(args: &[&str]) -> Child {
    hark()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark")
}

/// `hark transcribe --format jsonl --partials` on raw PCM from stdin.
pub fn spawn_transcribe_stdin(sample_format: &str) -> Child {
    spawn_transcribe_stdin_with(sample_format, &[])
}

/// `spawn_transcribe_stdin` with extra flags.
pub fn spawn_transcribe_stdin_with(sample_format: &str, extra: &[&str]) -> Child {
    let mut args = vec![
        "transcribe",
        "--format",
        "jsonl",
        "--partials",
        "--sample-format",
        sample_format,
    ];
    args.extend_from_slice(extra);
    args.push("-");
    spawn_piped(&args)
}

/// The transcript field of `hark transcribe --format tsv FILE` (exit 0 checked).
pub fn transcribe_tsv(path: &Path) -> String {
    let o = run(&[
        "transcribe",
        "--format",
        "tsv",
        path.to_str().expect("utf8"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}: {}",
        path.display(),
        stderr(&o)
    );
    tsv_text(&stdout(&o)).to_string()
}

/// The transcript field of one TSV line (`FILE<TAB>TRANSCRIPT\n`).
pub fn tsv_text(line: &str) -> &str {
    line.split('\t').nth(1).unwrap_or("").trim_end_matches('\n')
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Send SIGTERM to process `pid`, as `systemctl stop` does. Through
/// kill(2) rather than a `kill` program: a minimal system (a fresh Debian
/// container) has no procps. Returns whether the signal was delivered.
pub fn sigterm(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

/// Every line of hark's jsonl output, parsed.
pub fn jsonl_events(jsonl: &str) -> Vec<serde_json::Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .collect()
}

/// (type, text, start, end) of one event; a missing field reads as "" or -1.
pub fn event_fields(v: &serde_json::Value) -> (String, String, f64, f64) {
    (
        v["type"].as_str().unwrap_or("").to_string(),
        v["text"].as_str().unwrap_or("").to_string(),
        v["start"].as_f64().unwrap_or(-1.0),
        v["end"].as_f64().unwrap_or(-1.0),
    )
}
