//! hark's entry point: flags -> validated config -> run; SIGINT/SIGTERM
//! stop the input and flush the last utterance; errors map to exit codes
//! (0 ok or closed stdout, 1 runtime failure, 2 bad configuration, input
//! or model, so that systemd does not restart a hopeless unit).

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use hark::audio::stdin::{RawFormat, RawSource, RawSpec};
use hark::audio::SampleSource;
use hark::backend::Backend;
use hark::bench::BenchAudio;
use hark::cli::{BenchFormat, Cli, Command, ModelArgs, SampleFormatArg, TranscribeArgs};
use hark::error::{HarkError, Result};
use hark::model::{read_info, Model, ModelInfo, BUNDLED_MODEL, BUNDLED_MODEL_NAME};
use hark::output::{Format, Output};

fn main() {
    hark::mem::tune_allocator();
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("HARK_LOG", "warn"))
        .format_timestamp(None)
        .init();
    hark::audio::alsa::quiet_library_errors();
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone())
            .and_then(|_| interrupt_blocking_calls_on(sig))
        {
            let _ = writeln!(
                std::io::stderr(),
                "hark: cannot install signal handler: {e}"
            );
            std::process::exit(1);
        }
    }
    let code = match run(cli, &stop) {
        Ok(Done::Ok) => 0,
        // each was reported when it was met
        Ok(Done::InputsFailed) => 2,
        Err(HarkError::OutputClosed) => 0,
        Err(e) => {
            report(&e);
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// How a run that did not fail ended.
enum Done {
    Ok,
    /// Some of several inputs could not be read (each reported), the
    /// others were transcribed: exit 2, as for one bad input.
    InputsFailed,
}

/// An error as its one line on stderr.
fn report(e: &HarkError) {
    // not eprintln!: it panics when stderr is closed
    let _ = writeln!(std::io::stderr(), "hark: {e}");
}

fn with_label(label: &str, m: String) -> String {
    if m.starts_with(label) {
        m
    } else {
        format!("{label}: {m}")
    }
}

/// `-` (stdin: WAV when it starts with a WAV header, raw PCM as the flags
/// say otherwise) or a WAV file.
fn open_input(file: &std::path::Path, a: &TranscribeArgs) -> Result<Box<dyn SampleSource>> {
    if file.as_os_str() != "-" {
        return hark::audio::wav::open(file);
    }
    let format = match a.sample_format {
        SampleFormatArg::S16le => RawFormat::S16Le,
        SampleFormatArg::F32le => RawFormat::F32Le,
    };
    let spec = RawSpec {
        rate: a.rate,
        channels: a.channels as usize,
        format,
    };
    Ok(Box::new(RawSource::detect(
        std::io::stdin().lock(),
        "stdin",
        spec,
    )?))
}

/// Make `sig` interrupt blocking system calls (EINTR) instead of restarting
/// them, so that a stop signal also ends a read of stdin that is waiting
/// for data (`transcribe -` from a stalled pipe) and the open utterance is
/// flushed. Reads and writes that must go on retry EINTR themselves.
fn interrupt_blocking_calls_on(sig: i32) -> std::io::Result<()> {
    // SAFETY: reads back the action signal-hook has just installed and
    // writes it again with SA_RESTART cleared; both pointers are valid for
    // the calls and no other thread exists yet.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut act) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // sa_flags and SA_RESTART have different integer types per target
        fn clear<T: std::ops::BitAnd<Output = T> + std::ops::Not<Output = T>>(v: T, bit: T) -> T {
            v & !bit
        }
        act.sa_flags = clear(act.sa_flags, libc::SA_RESTART as _);
        if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn load_model(args: &ModelArgs) -> Result<Arc<Model>> {
    Model::load(args.model.as_deref(), args.backend.backend)
}

fn run(cli: Cli, stop: &AtomicBool) -> Result<Done> {
    match cli.command {
        Command::Transcribe(a) => {
            let cfg = hark::config::stream_config(&a.decode, a.partials)?;
            log::info!("config: {cfg:?}");
            if a.format == Format::Tsv && a.partials {
                return Err(HarkError::Config(
                    "--partials cannot be used with --format tsv".into(),
                ));
            }
            let model = load_model(&a.model)?;
            let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model)?;
            let stdout = std::io::stdout().lock();
            let mut out = Output::new(std::io::BufWriter::new(stdout), a.format);
            let multi = a.files.len() > 1;
            // An input that cannot be read is reported (one line) and the
            // others are transcribed; the exit code is 2 at the end.
            let mut failed = 0usize;
            for file in &a.files {
                let label = file.display().to_string();
                let transcribed = open_input(file, &a).and_then(|mut source| {
                    hark::recognizer::run_source(&model, source.as_mut(), cfg.clone(), stop, |ev| {
                        out.event(ev, multi.then_some(label.as_str()))
                            .map_err(HarkError::from)
                    })
                });
                match transcribed {
                    Ok(()) => out.end_file(&label).map_err(HarkError::from)?,
                    Err(HarkError::Input(m)) if multi => {
                        failed += 1;
                        // the transcripts before it go out first
                        out.flush().map_err(HarkError::from)?;
                        report(&HarkError::Input(with_label(&label, m)));
                    }
                    Err(HarkError::Input(m)) => {
                        return Err(HarkError::Input(with_label(&label, m)))
                    }
                    Err(e) => return Err(e),
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
            out.into_inner().flush().map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => HarkError::OutputClosed,
                _ => HarkError::Runtime(format!("writing output: {e}")),
            })?;
            if failed > 0 {
                return Ok(Done::InputsFailed);
            }
            Ok(Done::Ok)
        }
        Command::Listen(a) => {
            let cfg = hark::config::stream_config(&a.decode, a.partials)?;
            log::info!("config: {cfg:?}");
            let model = load_model(&a.model)?;
            let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model)?;
            let stdout = std::io::stdout().lock();
            let mut out = Output::new(stdout, a.format.into());
            let report = hark::listen::listen(
                &model,
                &a.device,
                cfg,
                stop,
                |rate, ch| {
                    let status = format!(
                        "listening: model {} on `{}` ({rate} Hz, {ch} ch)",
                        model.info.name, a.device
                    );
                    log::info!("{status}");
                    hark::notify::ready(&status);
                },
                |ev| out.event(ev, None).map_err(HarkError::from),
            )?;
            let frames = report.dropped_samples / report.device_channels.max(1) as u64;
            let dropped_s = frames as f64 / report.device_rate.max(1) as f64;
            if report.unpaced {
                log::info!(
                    "capture ended: {dropped_s:.1} s of the unpaced source's audio were not recognized"
                );
            } else if report.dropped_samples > 0 || report.xruns > 0 {
                log::warn!(
                    "capture ended with {dropped_s:.1} s of audio dropped ({} samples) and {} xruns",
                    report.dropped_samples,
                    report.xruns
                );
            }
            Ok(Done::Ok)
        }
        Command::Bench(a) => {
            let cfg = hark::config::stream_config(&a.decode, true)?;
            // every file's header checked before the model loads; each
            // file's audio read only when its turn comes
            for f in &a.files {
                hark::audio::wav::open(f)?;
            }
            let read = |i: usize| match a.files.get(i) {
                None => BenchAudio::bundled(),
                Some(f) => {
                    BenchAudio::read(f.display().to_string(), hark::audio::wav::open(f)?.as_mut())
                }
            };
            let load = || {
                let model = load_model(&a.model)?;
                let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model)?;
                Ok((model, cfg))
            };
            let report = hark::bench::run(load, a.files.len().max(1), read, a.chunk_ms)?;
            let mut o = std::io::stdout().lock();
            match a.format {
                BenchFormat::Table => hark::bench::write_table(&report, &mut o),
                BenchFormat::Json => serde_json::to_writer_pretty(&mut o, &report)
                    .map_err(std::io::Error::other)
                    .and_then(|_| writeln!(o)),
            }
            .map_err(|_| HarkError::OutputClosed)?;
            Ok(Done::Ok)
        }
        Command::Devices => {
            let list = hark::audio::alsa::list_capture_devices()?;
            let mut o = std::io::stdout().lock();
            for (name, desc) in &list.devices {
                writeln!(o, "{name}\t{desc}").map_err(|_| HarkError::OutputClosed)?;
            }
            if list.hardware == 0 {
                let cards = match list.cards {
                    0 => "ALSA finds no sound card".to_string(),
                    n => format!("none of the {n} sound card(s) ALSA finds can capture"),
                };
                log::warn!(
                    "no capture hardware: {cards}; {} (`null` captures silence, and `listen` needs a microphone)",
                    if list.devices.is_empty() {
                        "no capture PCM is defined either"
                    } else {
                        "the PCMs listed are software plugins"
                    }
                );
            }
            Ok(Done::Ok)
        }
        Command::Model { path, backend } => {
            let (bytes, source) = match &path {
                Some(p) => (
                    std::borrow::Cow::Owned(std::fs::read(p).map_err(|e| {
                        HarkError::Model(format!("cannot read {}: {e}", p.display()))
                    })?),
                    p.display().to_string(),
                ),
                None => (
                    std::borrow::Cow::Borrowed(BUNDLED_MODEL),
                    BUNDLED_MODEL_NAME.to_string(),
                ),
            };
            let (_, info) = read_info(&bytes, &source)?;
            let backend = hark::backend::resolve(backend.backend)?;
            let bundled = hark::decode::lm::CharLm::bundled()?;
            let lm_fits = info
                .tokens
                .iter()
                .enumerate()
                .all(|(i, t)| i == info.blank_id || bundled.symbol(t).is_some());
            let lm = lm_fits.then_some(&bundled);
            print_model(&source, bytes.len(), &info, backend, lm)
                .map_err(|_| HarkError::OutputClosed)?;
            Ok(Done::Ok)
        }
    }
}

fn print_model(
    source: &str,
    bytes: usize,
    i: &ModelInfo,
    backend: Backend,
    lm: Option<&hark::decode::lm::CharLm>,
) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "file:            {source} ({:.1} MB)",
        bytes as f64 / 1e6
    )?;
    writeln!(o, "name:            {} ({})", i.name, i.arch)?;
    writeln!(o, "contract:        version {}", i.contract_version)?;
    writeln!(
        o,
        "parameters:      {} ({:.1} M)",
        i.num_params,
        i.num_params as f64 / 1e6
    )?;
    writeln!(
        o,
        "compute:         {:.1} M multiply-adds per second of audio",
        i.macs_per_second as f64 / 1e6
    )?;
    let frame_ms = i.output_frame_samples() as f64 * 1000.0 / i.sample_rate_hz() as f64;
    match i.fbank() {
        Some(f) => {
            writeln!(
                o,
                "input:           fbank, {} Hz, {} bins, {} / {} samples frame / shift, fft {}",
                f.sample_rate_hz,
                f.num_bins,
                f.frame_length_samples,
                f.frame_shift_samples,
                f.fft_size
            )?;
            writeln!(
                o,
                "chunking:        {} frames ({:.0} ms) per step, left context {}, subsampling {} ({frame_ms:.0} ms output frames)",
                i.chunk_frames,
                i.chunk_ms(),
                i.left_context_frames,
                i.subsampling,
            )?;
        }
        None => {
            writeln!(o, "input:           waveform, {} Hz", i.sample_rate_hz())?;
            writeln!(
                o,
                "chunking:        {} samples ({:.0} ms) per step, {} samples ({frame_ms:.0} ms) per output frame",
                i.chunk_frames,
                i.chunk_ms(),
                i.subsampling,
            )?;
        }
    }
    writeln!(
        o,
        "vocabulary:      {} {} tokens, blank id {}",
        i.tokens.len(),
        i.token_kind,
        i.blank_id
    )?;
    match lm {
        Some(lm) => writeln!(
            o,
            "decoding:        beam {} with {}, character {}-gram, LM weight {}, bonus {} per character (--no-lm: greedy)",
            lm.tuning.beam,
            lm.source,
            lm.order(),
            lm.tuning.alpha,
            lm.tuning.beta
        )?,
        None => writeln!(
            o,
            "decoding:        greedy (the bundled LM does not cover these tokens)"
        )?,
    }
    let state_floats: usize = i
        .states
        .iter()
        .map(|s| s.shape.iter().product::<usize>())
        .sum();
    writeln!(
        o,
        "state:           {} tensors, {} floats ({:.1} KiB), reset on endpoint: {}",
        i.states.len(),
        state_floats,
        state_floats as f64 * 4.0 / 1024.0,
        i.reset_on_endpoint
    )?;
    writeln!(o, "training:        {}", i.training)?;
    writeln!(o, "backend:         {}", backend.describe())?;
    Ok(())
}
