//! hark's entry point: flags -> validated config -> run; SIGINT/SIGTERM
//! stop the input and flush the last utterance; errors map to exit codes
//! (0 ok or closed stdout, 1 runtime failure, 2 bad configuration, input
//! or model, so that systemd does not restart a hopeless unit).

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use hark::audio::stdin::{RawFormat, RawSource};
use hark::audio::wav::WavSource;
use hark::audio::SampleSource;
use hark::backend::Backend;
use hark::bench::BenchAudio;
use hark::cli::{BenchFormat, Cli, Command, ModelArgs, SampleFormatArg};
use hark::error::{HarkError, Result};
use hark::model::{read_info, Model, ModelInfo, BUNDLED_MODEL, BUNDLED_MODEL_NAME};
use hark::output::{Format, Output};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("HARK_LOG", "warn"))
        .format_timestamp(None)
        .init();
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
        Ok(()) => 0,
        Err(HarkError::OutputClosed) => 0,
        Err(e) => {
            // not eprintln!: it panics when stderr is closed
            let _ = writeln!(std::io::stderr(), "hark: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
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

fn run(cli: Cli, stop: &AtomicBool) -> Result<()> {
    match cli.command {
        Command::Transcribe(a) => {
            let cfg = hark::config::stream_config(&a.decode)?;
            log::info!("config: {cfg:?}");
            if a.format == Format::Tsv && a.decode.partials {
                return Err(HarkError::Config(
                    "--partials cannot be used with --format tsv".into(),
                ));
            }
            let model = load_model(&a.model)?;
            let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model.info)?;
            let stdout = std::io::stdout().lock();
            let mut out = Output::new(std::io::BufWriter::new(stdout), a.format);
            for file in &a.files {
                let label = file.display().to_string();
                let mut source: Box<dyn SampleSource> = if label == "-" {
                    let fmt = match a.sample_format {
                        SampleFormatArg::S16le => RawFormat::S16Le,
                        SampleFormatArg::F32le => RawFormat::F32Le,
                    };
                    Box::new(RawSource::new(
                        std::io::stdin().lock(),
                        a.rate,
                        a.channels as usize,
                        fmt,
                    )?)
                } else {
                    Box::new(WavSource::open(file)?)
                };
                let multi = a.files.len() > 1;
                hark::recognizer::run_source(&model, source.as_mut(), cfg.clone(), stop, |ev| {
                    out.event(ev, multi.then_some(label.as_str()))
                        .map_err(HarkError::from)
                })
                .map_err(|e| match e {
                    HarkError::Input(m) if !m.starts_with(&label) => {
                        HarkError::Input(format!("{label}: {m}"))
                    }
                    other => other,
                })?;
                out.end_file(&label).map_err(HarkError::from)?;
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
            out.into_inner().flush().map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => HarkError::OutputClosed,
                _ => HarkError::Runtime(format!("writing output: {e}")),
            })
        }
        Command::Listen(a) => {
            if a.format == Format::Tsv {
                return Err(HarkError::Config(
                    "listen writes text or jsonl, not tsv".into(),
                ));
            }
            let cfg = hark::config::stream_config(&a.decode)?;
            log::info!("config: {cfg:?}");
            let model = load_model(&a.model)?;
            let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model.info)?;
            let stdout = std::io::stdout().lock();
            let mut out = Output::new(stdout, a.format);
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
            if report.dropped_samples > 0 || report.xruns > 0 {
                log::warn!(
                    "capture ended with {} dropped samples and {} xruns",
                    report.dropped_samples,
                    report.xruns
                );
            }
            Ok(())
        }
        Command::Bench(a) => {
            let cfg = hark::config::stream_config(&a.decode)?;
            let audio = if a.files.is_empty() {
                vec![BenchAudio::bundled()?]
            } else {
                a.files
                    .iter()
                    .map(|f| {
                        let label = f.display().to_string();
                        BenchAudio::read(label, &mut WavSource::open(f)?)
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            let load = || {
                let model = load_model(&a.model)?;
                let cfg = hark::config::decoding(cfg, &a.phrases, &a.decode, &model.info)?;
                Ok((model, cfg))
            };
            let report = hark::bench::run(load, &audio, a.chunk_ms, a.threads)?;
            let mut o = std::io::stdout().lock();
            match a.format {
                BenchFormat::Table => hark::bench::write_table(&report, &mut o),
                BenchFormat::Json => serde_json::to_writer_pretty(&mut o, &report)
                    .map_err(std::io::Error::other)
                    .and_then(|_| writeln!(o)),
            }
            .map_err(|_| HarkError::OutputClosed)
        }
        Command::Devices => {
            let devices = hark::audio::alsa::list_capture_devices()?;
            let mut o = std::io::stdout().lock();
            for (name, desc) in devices {
                writeln!(o, "{name}\t{desc}").map_err(|_| HarkError::OutputClosed)?;
            }
            Ok(())
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
                .map_err(|_| HarkError::OutputClosed)
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
