//! `hark bench`: the real recognizer path (resampler, fbank, model steps,
//! CTC, endpointing) run over audio as fast as the engine allows, with the
//! latencies it would have had in real time.
//!
//! Audio is pushed in periods of `period_ms` (as a sound card delivers it).
//! A period "arrives" at its end time in the stream; the engine starts on it
//! when both it has arrived and the previous period is done, and finishes
//! after the compute time actually measured for it. An event's latency is
//! its finish time minus the arrival of the period that completed it, as
//! `hark listen` reports it; endpoint-to-final latency counts from the end
//! of the last token's output frame to the final being ready. Each file is
//! followed by silence (endpoint silence plus one chunk) so that its last
//! utterance ends at an endpoint, as it would on a live stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::SampleSource;
use crate::backend::Backend;
use crate::error::{HarkError, Result};
use crate::finals::EncoderMode;
use crate::model::Model;
use crate::recognizer::Recognizer;
use crate::stream::{EventKind, Pass, StreamConfig};

/// Audio used when `hark bench` gets no file: held-out synthetic speech
/// (flite voice rms, not in the training data), 16 kHz mono.
pub const BUNDLED_SAMPLE: &[u8] = include_bytes!("../tests/data/e2e/e2e-4-flite-rms.wav");
pub const BUNDLED_SAMPLE_NAME: &str = "<bundled sample e2e-4-flite-rms.wav>";

/// Mono audio at its own rate, with a label for the report.
pub struct BenchAudio {
    pub label: String,
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl BenchAudio {
    /// The whole of a source, read into memory before timing starts.
    pub fn read(label: String, source: &mut dyn SampleSource) -> Result<Self> {
        let mut samples = Vec::new();
        let mut buf = vec![0.0f32; 8192];
        loop {
            let n = source.read(&mut buf)?;
            if n == 0 {
                break;
            }
            samples.extend_from_slice(&buf[..n]);
        }
        Ok(BenchAudio {
            label,
            samples,
            rate: source.rate(),
        })
    }

    /// The sample embedded in the binary.
    pub fn bundled() -> Result<Self> {
        let bad = |e: hound::Error| HarkError::Input(format!("{BUNDLED_SAMPLE_NAME}: {e}"));
        let mut r = hound::WavReader::new(std::io::Cursor::new(BUNDLED_SAMPLE)).map_err(bad)?;
        let spec = r.spec();
        if spec.channels != 1 || spec.bits_per_sample != 16 {
            return Err(HarkError::Input(format!(
                "{BUNDLED_SAMPLE_NAME}: expected 16-bit mono"
            )));
        }
        let samples = r
            .samples::<i16>()
            .map(|s| s.map(|s| s as f32 / 32768.0))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(bad)?;
        Ok(BenchAudio {
            label: BUNDLED_SAMPLE_NAME.into(),
            samples,
            rate: spec.sample_rate,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (milliseconds); `None` when empty.
    pub fn of(mut v: Vec<f64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Some(Percentiles {
            count: v.len(),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: at(100.0),
        })
    }
}

/// The final pass's time for the utterances whose audio (as the pass read
/// it) lasted `from_s` to `to_s` seconds (`to_s` null: no upper bound).
#[derive(Clone, Debug, Serialize)]
pub struct LengthBucket {
    pub from_s: f64,
    pub to_s: Option<f64>,
    pub ms: Percentiles,
}

/// Bucket edges for `final_pass_ms_by_length`, seconds.
const LENGTH_EDGES_S: [f64; 6] = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0];

fn by_length(v: &[(f64, f64)]) -> Vec<LengthBucket> {
    LENGTH_EDGES_S
        .iter()
        .enumerate()
        .filter_map(|(i, &from_s)| {
            let to_s = LENGTH_EDGES_S.get(i + 1).copied();
            let ms = v
                .iter()
                .filter(|(s, _)| *s >= from_s && to_s.is_none_or(|t| *s < t))
                .map(|(_, ms)| *ms)
                .collect();
            Percentiles::of(ms).map(|ms| LengthBucket { from_s, to_s, ms })
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub arch: &'static str,
    pub backend: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileResult {
    pub file: String,
    pub audio_s: f64,
    pub transcript: String,
    /// Each final pass's time in this file, ms.
    pub final_pass_ms: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub binary_bytes: Option<u64>,
    pub model: String,
    pub model_bytes: usize,
    pub model_macs_per_second: u64,
    pub chunk_ms: f64,
    pub period_ms: u32,
    /// Inference threads: tract runs the model on the calling thread.
    pub threads: usize,
    pub load_ms: f64,
    pub audio_s: f64,
    /// Every stage's compute on one thread, the finals pass included.
    pub compute_s: f64,
    /// compute_s per second of audio: both passes together with Whisper finals.
    pub real_time_factor: f64,
    /// 1 / real_time_factor: streams one core keeps up with (one thread).
    pub streams_per_core: f64,
    /// Compute per period that ran a model step: what a chunk costs.
    pub chunk_ms_total: Option<Percentiles>,
    /// Per model step: the model alone.
    pub chunk_ms_model: Option<Percentiles>,
    /// Per model step: CTC decoding and endpointing.
    pub chunk_ms_decode: Option<Percentiles>,
    /// Per period: resampling, fbank and chunk assembly.
    pub period_ms_frontend: Option<Percentiles>,
    pub partial_latency_ms: Option<Percentiles>,
    pub final_latency_ms: Option<Percentiles>,
    /// End of the last token to the final being printed (includes the
    /// endpoint silence the rule waits for).
    pub endpoint_to_final_ms: Option<Percentiles>,
    pub endpoint_silence_ms: u32,
    /// Stream time at which the first partial was printed, and where its
    /// first token starts in the audio.
    pub first_partial_at_s: Option<f64>,
    pub first_partial_token_s: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// Which pass wrote the finals: "whisper", "whisper-stream" or "ctc".
    pub final_pass: &'static str,
    /// Whether the final pass encodes the utterance again (Whisper's own
    /// encoder) rather than reading the states the streaming encoder
    /// computed as the audio came (`--finals stream`).
    pub final_reencode: bool,
    pub finals_model: Option<String>,
    pub finals_model_bytes: Option<usize>,
    /// Per final: the Whisper pass alone (encoder and decoder), from the
    /// endpoint's decision to its text (included in endpoint_to_final_ms).
    pub final_pass_ms: Option<Percentiles>,
    /// The same by the length of the audio each final pass read.
    pub final_pass_ms_by_length: Vec<LengthBucket>,
    /// Seconds of audio the final passes read, over all finals.
    pub final_pass_audio_s: f64,
    pub files: Vec<FileResult>,
}

/// Load the model and its decoding configuration (timed together: the
/// language model is part of start-up) and run `files` inputs through a
/// fresh stream each; `read(i)` gives the i-th, read just before its run
/// (untimed), so that one input at a time is in memory and the peak RSS
/// is the recognizer's, not the size of the whole benchmark's audio.
pub fn run(
    load: impl FnOnce() -> Result<(Arc<Model>, StreamConfig)>,
    files: usize,
    mut read: impl FnMut(usize) -> Result<BenchAudio>,
    period_ms: Option<u32>,
) -> Result<BenchReport> {
    let t = Instant::now();
    let (model, cfg) = load()?;
    let load_ms = ms(t.elapsed());
    let chunk_ms = model.info.chunk_ms();
    let period_ms = period_ms.unwrap_or(chunk_ms.round() as u32);
    if period_ms == 0 || period_ms > 10_000 {
        return Err(HarkError::Config(
            "--chunk-ms must be between 1 and 10000".into(),
        ));
    }
    let cfg = StreamConfig {
        partials: true,
        ..cfg
    };
    let mut acc = Acc::default();
    let mut results = Vec::with_capacity(files);
    for i in 0..files {
        let a = read(i)?;
        results.push(run_file(
            &model,
            &a,
            cfg.clone(),
            period_ms,
            chunk_ms,
            &mut acc,
        )?);
    }
    let files = results;
    let audio_s: f64 = files.iter().map(|f| f.audio_s).sum();
    let rtf = acc.compute_s / audio_s.max(1e-9);
    Ok(BenchReport {
        machine: machine(model.backend),
        binary_bytes: std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| m.len())
            .ok(),
        model: model.source.clone(),
        model_bytes: model.file_bytes,
        model_macs_per_second: model.info.macs_per_second,
        chunk_ms,
        period_ms,
        threads: 1,
        load_ms,
        audio_s,
        compute_s: acc.compute_s,
        real_time_factor: rtf,
        streams_per_core: 1.0 / rtf.max(1e-12),
        chunk_ms_total: Percentiles::of(acc.chunk_total),
        chunk_ms_model: Percentiles::of(acc.model),
        chunk_ms_decode: Percentiles::of(acc.decode),
        period_ms_frontend: Percentiles::of(acc.frontend),
        partial_latency_ms: Percentiles::of(acc.partial),
        final_latency_ms: Percentiles::of(acc.final_),
        endpoint_to_final_ms: Percentiles::of(acc.endpoint_to_final),
        endpoint_silence_ms: cfg.endpoint.trailing_silence_ms,
        first_partial_at_s: acc.first_partial.map(|p| p.0),
        first_partial_token_s: acc.first_partial.map(|p| p.1),
        peak_rss_kib: peak_rss_kib(),
        final_pass: match cfg.finals.as_ref().map(|f| f.mode) {
            Some(EncoderMode::Reencode) => Pass::Whisper.name(),
            Some(EncoderMode::Stream) => Pass::WhisperStream.name(),
            None => Pass::Ctc.name(),
        },
        final_reencode: cfg
            .finals
            .as_ref()
            .is_some_and(|f| f.mode == EncoderMode::Reencode),
        finals_model: cfg.finals.as_ref().map(|f| f.source.clone()),
        finals_model_bytes: cfg.finals.as_ref().map(|f| f.file_bytes),
        final_pass_ms_by_length: by_length(&acc.final_pass_by_length),
        final_pass_ms: Percentiles::of(acc.final_pass),
        final_pass_audio_s: acc.final_pass_audio_s,
        files,
    })
}

#[derive(Default)]
struct Acc {
    compute_s: f64,
    chunk_total: Vec<f64>,
    model: Vec<f64>,
    decode: Vec<f64>,
    frontend: Vec<f64>,
    partial: Vec<f64>,
    final_: Vec<f64>,
    endpoint_to_final: Vec<f64>,
    first_partial: Option<(f64, f64)>,
    final_pass: Vec<f64>,
    /// (seconds of audio read, ms) per final pass
    final_pass_by_length: Vec<(f64, f64)>,
    final_pass_audio_s: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run_file(
    model: &Arc<Model>,
    a: &BenchAudio,
    cfg: StreamConfig,
    period_ms: u32,
    chunk_ms: f64,
    acc: &mut Acc,
) -> Result<FileResult> {
    let tail_ms = cfg.endpoint.trailing_silence_ms;
    let mut rec = Recognizer::new(model.clone(), a.rate, cfg)?;
    let period = (a.rate as u64 * period_ms as u64 / 1000).max(1) as usize;
    let tail_s = (tail_ms as f64 + chunk_ms) / 1000.0;
    let silence = vec![0.0f32; (tail_s * a.rate as f64).ceil() as usize];
    let mut input = a.samples.iter().chain(silence.iter()).copied();
    let total = a.samples.len() + silence.len();
    let mut buf = Vec::with_capacity(period);
    let mut pushed = 0usize;
    // stream time (s) at which the engine is done with what it was given
    let mut free_at = 0.0f64;
    let mut transcript = String::new();
    let mut events = Vec::new();
    let mut final_pass_ms = Vec::new();
    loop {
        buf.clear();
        buf.extend(input.by_ref().take(period));
        let last = buf.is_empty();
        let t = Instant::now();
        if last {
            events.extend(rec.finish()?);
        } else {
            events.extend(rec.push(&buf)?);
        }
        let compute = t.elapsed();
        let timing = rec.take_timing();
        pushed += buf.len();
        acc.compute_s += compute.as_secs_f64();
        let arrival = pushed as f64 / a.rate as f64;
        let finish = arrival.max(free_at) + compute.as_secs_f64();
        free_at = finish;
        let step_ms = ms(timing.model + timing.decode + timing.finals_time);
        acc.frontend.push((ms(compute) - step_ms).max(0.0));
        if timing.finals > 0 {
            let n = timing.finals as f64;
            let each = ms(timing.finals_time) / n;
            acc.final_pass.push(each);
            final_pass_ms.extend(std::iter::repeat_n(each, timing.finals as usize));
            acc.final_pass_by_length
                .push((timing.finals_audio_s / n, each));
            acc.final_pass_audio_s += timing.finals_audio_s;
        }
        if timing.steps > 0 {
            acc.chunk_total.push(ms(compute));
            let n = timing.steps as f64;
            acc.model.push(ms(timing.model) / n);
            acc.decode.push(ms(timing.decode) / n);
        }
        for ev in events.drain(..) {
            let latency = (finish - arrival) * 1000.0;
            match ev.kind {
                EventKind::Partial => {
                    acc.partial.push(latency);
                    if acc.first_partial.is_none() {
                        acc.first_partial = Some((finish, ev.start_s));
                    }
                }
                EventKind::Final => {
                    acc.final_.push(latency);
                    if let (false, Some(end)) = (last, ev.speech_end_s) {
                        acc.endpoint_to_final.push((finish - end) * 1000.0);
                    }
                    if !ev.text.is_empty() {
                        if !transcript.is_empty() {
                            transcript.push(' ');
                        }
                        transcript.push_str(&ev.text);
                    }
                }
            }
        }
        if last {
            break;
        }
    }
    debug_assert_eq!(pushed, total);
    Ok(FileResult {
        file: a.label.clone(),
        audio_s: a.samples.len() as f64 / a.rate as f64,
        transcript,
        final_pass_ms,
    })
}

fn machine(backend: Backend) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        arch: std::env::consts::ARCH,
        backend: backend.describe().into(),
    }
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The report as a human-readable table.
pub fn write_table(r: &BenchReport, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let m = &r.machine;
    writeln!(
        w,
        "machine      {} ({} cores, {}), {}",
        m.cpu, m.cores, m.arch, m.backend
    )?;
    if let Some(b) = r.binary_bytes {
        writeln!(w, "binary       {:.1} MB", b as f64 / 1e6)?;
    }
    writeln!(
        w,
        "model        {} ({:.1} MB, {:.1} M MAC per second of audio)",
        r.model,
        r.model_bytes as f64 / 1e6,
        r.model_macs_per_second as f64 / 1e6
    )?;
    writeln!(
        w,
        "load         {:.1} ms (parse, optimize, plan)",
        r.load_ms
    )?;
    writeln!(
        w,
        "audio        {:.1} s in {} file(s), {} ms periods, {:.0} ms model chunks",
        r.audio_s,
        r.files.len(),
        r.period_ms,
        r.chunk_ms
    )?;
    writeln!(
        w,
        "speed        RTF {:.4} ({:.1} s compute), {:.0} real-time streams per core",
        r.real_time_factor, r.compute_s, r.streams_per_core
    )?;
    writeln!(
        w,
        "{:<26}{:>8}{:>9}{:>9}{:>9}{:>9}",
        "latency (ms)", "n", "p50", "p95", "p99", "max"
    )?;
    let rows = [
        ("chunk compute, total", &r.chunk_ms_total),
        ("  model step", &r.chunk_ms_model),
        ("  decode + endpoint", &r.chunk_ms_decode),
        ("  frontend, per period", &r.period_ms_frontend),
        ("partial", &r.partial_latency_ms),
        ("final", &r.final_latency_ms),
        ("end of speech -> final", &r.endpoint_to_final_ms),
        ("  final pass (whisper)", &r.final_pass_ms),
    ];
    for (name, p) in rows {
        match p {
            Some(p) => writeln!(
                w,
                "{name:<26}{:>8}{:>9.3}{:>9.3}{:>9.3}{:>9.3}",
                p.count, p.p50, p.p95, p.p99, p.max
            )?,
            None => writeln!(w, "{name:<26}{:>8}", 0)?,
        }
    }
    for b in &r.final_pass_ms_by_length {
        let p = &b.ms;
        let name = match b.to_s {
            Some(t) => format!("    {:.0}-{:.0} s of audio", b.from_s, t),
            None => format!("    {:.0} s of audio or more", b.from_s),
        };
        writeln!(
            w,
            "{name:<26}{:>8}{:>9.3}{:>9.3}{:>9.3}{:>9.3}",
            p.count, p.p50, p.p95, p.p99, p.max
        )?;
    }
    writeln!(
        w,
        "             (end of speech -> final includes the {} ms endpoint silence)",
        r.endpoint_silence_ms
    )?;
    if let (Some(at), Some(tok)) = (r.first_partial_at_s, r.first_partial_token_s) {
        writeln!(
            w,
            "first partial printed at {at:.3} s of stream time (its first token starts at {tok:.3} s)"
        )?;
    }
    if let Some(kib) = r.peak_rss_kib {
        writeln!(
            w,
            "peak memory  {:.1} MiB resident (VmHWM)",
            kib as f64 / 1024.0
        )?;
    }
    for f in &r.files {
        writeln!(w, "{}\t{:.2} s\t{}", f.file, f.audio_s, f.transcript)?;
    }
    Ok(())
}
