//! Soak, test-sized (issue 22): minutes of audio through the binary and
//! through the capture path, checking that nothing is lost, duplicated or
//! grows. The hour-long runs and their figures are in docs/reliability.md.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::listen::s16le;
use crate::util::{hark, speech_with_pauses, stderr};

/// A soak length from the environment (the long runs of
/// docs/reliability.md), or the test-sized default.
fn soak_setting(var: &str, default: f64) -> f64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The test speech with its pauses, padded with silence to a whole number
/// of model chunks, so that every repetition meets the chunks alike.
fn chunk_aligned_period() -> Vec<f32> {
    let chunk_samples = (crate::util::model().info.chunk_ms() * 16.0).round() as usize;
    let mut period = speech_with_pauses();
    let pad = (chunk_samples - period.len() % chunk_samples) % chunk_samples;
    period.extend(std::iter::repeat_n(0.0, pad));
    period
}

/// Resident memory of process `pid` in KiB (VmRSS), if it still runs.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Memory is flat: the highest VmRSS sampled after the warm-up window
/// `warm` (seconds) is at most 2 MiB above the highest during it. Returns
/// both peaks (KiB) for the report.
fn assert_rss_flat(samples: &[(f64, u64)], warm: std::ops::Range<f64>) -> (u64, u64) {
    let peak =
        |keep: &dyn Fn(f64) -> bool| samples.iter().filter(|(t, _)| keep(*t)).map(|x| x.1).max();
    let late = peak(&|t| t >= warm.end).expect("samples after the warm-up");
    let warm = peak(&|t| warm.contains(&t)).expect("samples in the warm-up window");
    assert!(
        late <= warm + 2048,
        "VmRSS grew from {warm} KiB (warm-up) to {late} KiB"
    );
    (warm, late)
}

/// `hark listen --format jsonl` on `pcm.harktest` of the ALSA config
/// `conf`, logging at info level, with stdout and stderr piped.
fn spawn_listen(conf: &std::path::Path, extra: &[&str]) -> std::process::Child {
    hark()
        .args(["listen", "--device", "harktest", "--format", "jsonl"])
        // the streaming pass's memory (the finals pass allocates its
        // per-utterance buffers once, but tract's per-call ones reach
        // their high-water mark only with the longest utterance)
        .args(["--finals", "ctc"])
        .args(extra)
        .env("ALSA_CONFIG_PATH", conf)
        .env("HARK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark listen")
}

/// A final event: (text, start, end).
fn finals(jsonl: &str) -> Vec<(String, f64, f64)> {
    crate::util::jsonl_events(jsonl)
        .iter()
        .filter(|v| v["type"] == "final")
        .map(|v| {
            let (_, text, start, end) = crate::util::event_fields(v);
            (text, start, end)
        })
        .collect()
}

// The same 26 s of speech and pauses, padded to a whole number of model
// chunks, repeated for about 8 minutes and piped into `transcribe -` as
// fast as hark reads it. Every endpoint resets the model state, so from
// the second repetition on (the first starts from the initial state, not
// from silence after a reset) each repetition must give the same finals,
// shifted by the period: one missing, doubled or reordered event breaks
// the equality. VmRSS, sampled while it runs, must stay flat after the
// first minute.
#[test]
fn minutes_through_transcribe_repeat_their_finals_and_keep_memory_flat() {
    let period = chunk_aligned_period();
    let period_s = period.len() as f64 / 16000.0;
    let minutes = soak_setting("HARK_SOAK_MINUTES", 8.0);
    let reps = (minutes * 60.0 / period_s).ceil() as usize;
    let bytes = s16le(&period);

    let mut child = hark()
        .args([
            "transcribe",
            "--format",
            "jsonl",
            "--sample-format",
            "s16le",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let done = AtomicBool::new(false);
    // (seconds of audio written when sampled, VmRSS KiB)
    let fed_s = std::sync::atomic::AtomicU64::new(0);
    let (samples, o) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = vm_rss_kib(pid) {
                    samples.push((fed_s.load(Ordering::Relaxed), kib));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        let writer = s.spawn(|| {
            for i in 0..reps {
                stdin.write_all(&bytes)?;
                fed_s.store(((i + 1) as f64 * period_s) as u64, Ordering::Relaxed);
            }
            drop(stdin);
            Ok::<(), std::io::Error>(())
        });
        let o = child.wait_with_output().expect("wait");
        writer.join().expect("writer").expect("write stdin");
        done.store(true, Ordering::Relaxed);
        (sampler.join().expect("sampler"), o)
    });
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "a clean run prints nothing on stderr");

    let all = finals(&String::from_utf8_lossy(&o.stdout));
    assert!(all.iter().all(|f| !f.0.is_empty()), "an empty final");
    let rep_of = |f: &(String, f64, f64)| (f.1 / period_s) as usize;
    let of_rep = |k: usize| -> Vec<(String, f64, f64)> {
        all.iter()
            .filter(|f| rep_of(f) == k)
            .map(|f| {
                let shift = k as f64 * period_s;
                (f.0.clone(), f.1 - shift, f.2 - shift)
            })
            .collect()
    };
    let second = of_rep(1);
    assert!(
        second.len() >= crate::util::e2e_wav_names().len() / 2,
        "too few finals per repetition to compare: {second:?}"
    );
    for k in 2..reps {
        let got = of_rep(k);
        assert_eq!(
            got.len(),
            second.len(),
            "repetition {k}: {got:?} vs {second:?}"
        );
        for (g, w) in got.iter().zip(&second) {
            assert_eq!(g.0, w.0, "repetition {k}");
            assert!(
                (g.1 - w.1).abs() < 1e-3 && (g.2 - w.2).abs() < 1e-3,
                "repetition {k}: {g:?} vs {w:?}"
            );
        }
    }

    // memory: the highest VmRSS after the first minute of audio against
    // the highest over the rest. 2 MiB is ~1 KiB per model chunk over 8
    // minutes: a leak of one small buffer per chunk fails it.
    let samples: Vec<(f64, u64)> = samples.iter().map(|&(t, k)| (t as f64, k)).collect();
    let (warm, late) = assert_rss_flat(&samples, 60.0..120.0);
    eprintln!(
        "soak: {reps} x {period_s:.2} s, {} finals, VmRSS second minute {warm} KiB, later max {late} KiB",
        all.len()
    );
}

// The capture path under overruns: the ALSA file PCM reads a named pipe
// that a thread here writes at 20 times real time, with samples that each
// say where they are in the stream; the reader keeps up, but stalls three
// times for 1.5 s (30 s of audio, more than the ring's 16 s). Every sample the reader gets must be
// the one at its stream position counted with the gaps: nothing lost
// that is not counted, nothing duplicated or reordered, and the gaps
// add up to the dropped-sample counter.
#[test]
fn capture_under_overruns_accounts_for_every_sample() {
    use hark::audio::alsa::{capture_loop, open_capture};
    use hark::audio::ring::{Ring, RingItem, RingStats, RING_SAMPLES};

    // about 4 minutes of 16 kHz mono: far more than the ring holds
    let total: usize = 16000 * 240;
    let pattern = |i: u64| (i % 65_521) as i16;
    let raw: Vec<u8> = (0..total as u64)
        .flat_map(|i| pattern(i).to_le_bytes())
        .collect();
    let fifo = crate::listen::in_process_pcm_input("harksoak");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        // blocks until the PCM opens the pipe
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo)?;
        let start = Instant::now();
        for (i, piece) in raw.chunks(3200).enumerate() {
            w.write_all(piece)?;
            // 20 x real time: 1,600 samples every 5 ms
            let due = Duration::from_millis(5 * (i as u64 + 1));
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    });
    let cap = open_capture("harksoak", 16000).expect("open the file PCM");
    assert_eq!((cap.rate, cap.channels), (16000, 1));
    let period = cap.period_frames as u64;
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut writer, mut reader) = ring.split(&stats);
    let (stop, failed) = (AtomicBool::new(false), AtomicBool::new(false));

    let mut pos: u64 = 0; // stream position of the next sample the reader gets
    let mut gaps: Vec<u64> = Vec::new();
    let mut wrong: Option<(u64, i16)> = None;
    std::thread::scope(|s| {
        let (stats, stop, failed) = (&stats, &stop, &failed);
        let capture = s.spawn(move || capture_loop(&cap, &mut writer, stats, stop, failed));
        let mut buf = vec![0i16; 4096];
        let start = Instant::now();
        let mut stalls = 0;
        // read until the stream is through (the plugin then repeats its
        // last period), stalling a quarter of the way through and so on
        while pos < total as u64 && start.elapsed() < Duration::from_secs(120) {
            if stalls < 3 && pos > (stalls + 1) * total as u64 / 4 {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(1500));
            }
            reader
                .read(&mut buf, 1, |item| {
                    match item {
                        RingItem::Gap(n) => {
                            gaps.push(n);
                            pos += n;
                        }
                        RingItem::Samples(got) => {
                            for &v in got {
                                if pos < total as u64 && v != pattern(pos) && wrong.is_none() {
                                    wrong = Some((pos, v));
                                }
                                pos += 1;
                            }
                        }
                    }
                    Ok(())
                })
                .expect("read");
        }
        stop.store(true, Ordering::Release);
        capture.join().expect("capture thread");
        // what the capture thread pushed before it stopped
        while reader
            .read(&mut buf, 1, |item| {
                match item {
                    RingItem::Gap(n) => {
                        gaps.push(n);
                        pos += n
                    }
                    RingItem::Samples(got) => pos += got.len() as u64,
                }
                Ok(())
            })
            .expect("read")
            > 0
        {}
    });
    feeder.join().expect("feeder").expect("write the pipe");
    assert!(!failed.load(Ordering::Relaxed));
    assert!(pos >= total as u64, "the file was not read through: {pos}");
    assert_eq!(wrong, None, "a sample out of place: (position, value)");
    let dropped = stats.dropped_samples.load(Ordering::Relaxed);
    let pushed = stats.pushed_samples.load(Ordering::Relaxed);
    eprintln!(
        "soak: {pushed} samples pushed, {dropped} dropped in {} gaps",
        gaps.len()
    );
    assert!(gaps.len() >= 3, "the stalls caused no overrun: {gaps:?}");
    assert!(
        pushed > 2 * RING_SAMPLES as u64,
        "too few samples checked: {pushed}"
    );
    assert_eq!(gaps.iter().sum::<u64>(), dropped, "gaps vs dropped counter");
    assert_eq!(pushed + dropped, pos, "every sample is pushed or counted");
    assert!(
        gaps.iter().all(|g| g % period == 0),
        "whole periods: {gaps:?}"
    );
}

// `hark listen` on the ALSA file PCM (not paced: it overruns the ring all
// the time) reading speech and pauses, while whoever reads hark's output
// stalls for 2 s after every 5 lines (hark then blocks on the full pipe and
// the ring overruns more). It must keep running with flat memory, give no
// empty or overlapping finals, report the unpaced source once and, on
// SIGTERM, exit 0 saying how much audio it could not recognize.
#[test]
fn listen_with_overruns_and_a_stalled_reader_keeps_going() {
    use std::io::{BufRead, BufReader};
    let wall_s = soak_setting("HARK_SOAK_LISTEN_S", 40.0);
    let period = chunk_aligned_period();
    let mut audio = Vec::new();
    while audio.len() < 16000 * 600 {
        audio.extend_from_slice(&period);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let raw = dir.path().join("speech.raw");
    std::fs::write(&raw, s16le(&audio)).expect("write raw");
    let conf = crate::listen::alsa_config(dir.path(), &raw);
    let mut child = spawn_listen(&conf, &[]);
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let start = Instant::now();
    let (lines, rss) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.push(line);
                if lines.len() % 5 == 0 {
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
            lines
        });
        let mut rss = Vec::new();
        while start.elapsed().as_secs_f64() < wall_s {
            if let Some(kib) = vm_rss_kib(pid) {
                rss.push((start.elapsed().as_secs_f64(), kib));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        crate::util::sigterm(pid);
        (reader.join().expect("reader"), rss)
    });
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("is not paced").count(), 1, "{err}");
    assert!(err.contains("were not recognized"), "{err}");
    let finals = finals(&lines.join("\n"));
    assert!(!finals.is_empty(), "no final in {wall_s} s: {err}");
    let mut last_end = 0.0;
    for (text, start, end) in &finals {
        assert!(!text.is_empty(), "an empty final");
        assert!(*start >= last_end - 1e-6 && end >= start, "{finals:?}");
        last_end = *end;
    }
    // memory after the first quarter of the run against the rest
    let (warm, late) = assert_rss_flat(&rss, wall_s / 8.0..wall_s / 4.0);
    eprintln!(
        "soak: listen {wall_s} s, {} finals, VmRSS {warm} KiB early, later max {late} KiB",
        finals.len()
    );
}

// Overruns on a paced source, with every dropped sample accounted for.
// The ALSA file PCM reads a named pipe that this test writes in real time,
// so hark sees a source that keeps time like a sound card; once, the test
// writes 22 s of audio at once (more than the ring's 16 s), so the ring
// overruns. Every sample dropped must come back as a gap: the gaps of
// the events add up to the dropped samples that hark reports, and the
// finals after the overrun are stamped where their speech is in the
// stream (as if nothing had been lost), not seconds early.
#[test]
fn listen_on_a_paced_source_marks_every_dropped_sample_as_a_gap() {
    let period = chunk_aligned_period();
    let period_s = period.len() as f64 / 16000.0;
    let burst_at_s = 30.0;
    let burst_s = 22.0;
    let total_s = soak_setting("HARK_SOAK_PACED_S", burst_at_s + burst_s + 20.0);
    let stream: Vec<u8> = {
        let n = (total_s * 16000.0) as usize;
        let samples: Vec<f32> = period.iter().copied().cycle().take(n).collect();
        s16le(&samples)
    };
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("speech.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let conf = crate::listen::alsa_config(dir.path(), &fifo);
    let mut child = spawn_listen(&conf, &["--partials"]);
    let pid = child.id();
    let (out_pipe, err_pipe) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    // real time, 100 ms at a time, but the burst in one write (the
    // source stays within the pacing check's allowance, twice real time)
    // After the stream, silence in real time until hark has stopped: a
    // closed pipe would make the PCM repeat its last period at full speed.
    let (streamed, stop_writing) = (AtomicBool::new(false), AtomicBool::new(false));
    let terminating = AtomicBool::new(false);
    let (written, o, rss) = std::thread::scope(|s| {
        // hark's output is read as it comes. Regression: an hour-long run
        // left it unread, the pipe filled (64 KiB) and blocked hark's
        // writes, a stall this test does not mean to make.
        let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
            s.spawn(move || {
                let mut v = Vec::new();
                let _ = pipe.read_to_end(&mut v);
                v
            })
        };
        let (out_reader, err_reader) = (drain(Box::new(out_pipe)), drain(Box::new(err_pipe)));
        let writer = s.spawn(|| -> std::io::Result<()> {
            // blocks until the PCM opens the pipe
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo)?;
            let start = Instant::now();
            let (step, burst_from, burst_to) = (
                3200,
                (burst_at_s * 32000.0) as usize,
                ((burst_at_s + burst_s) * 32000.0) as usize,
            );
            let silence = vec![0u8; step];
            let mut sent = 0;
            while !stop_writing.load(Ordering::Relaxed) {
                let end = if sent == burst_from {
                    burst_to
                } else {
                    sent + step
                };
                let piece = stream.get(sent..end).unwrap_or(&silence);
                if sent >= stream.len() {
                    streamed.store(true, Ordering::Relaxed);
                }
                if let Err(e) = w.write_all(piece) {
                    // hark closes the pipe when it stops
                    return if terminating.load(Ordering::Relaxed) {
                        Ok(())
                    } else {
                        Err(e)
                    };
                }
                sent = end;
                // after the burst, real time again from where it left off
                let ahead = if sent >= burst_to {
                    burst_to - burst_from
                } else {
                    0
                };
                let due = Duration::from_secs_f64((sent - ahead) as f64 / 32000.0);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        });
        let began = Instant::now();
        let mut rss = Vec::new();
        while !streamed.load(Ordering::Relaxed) && !writer.is_finished() {
            if let Some(kib) = vm_rss_kib(pid) {
                rss.push((began.elapsed().as_secs_f64(), kib));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // the last audio goes through, then SIGTERM
        std::thread::sleep(Duration::from_secs(2));
        // Regression: the writer met the closed pipe before it was told
        // hark was stopping, and failed the test after an hour's run.
        terminating.store(true, Ordering::Relaxed);
        crate::util::sigterm(pid);
        let status = child.wait().expect("wait");
        stop_writing.store(true, Ordering::Relaxed);
        let o = std::process::Output {
            status,
            stdout: out_reader.join().expect("stdout reader"),
            stderr: err_reader.join().expect("stderr reader"),
        };
        (writer.join().expect("writer"), o, rss)
    });
    written.expect("write the pipe");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("not paced"), "{err}");
    let dropped: u64 = err
        .lines()
        .filter(|l| l.contains("capture ended with"))
        .find_map(|l| l.split("s of audio dropped (").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-samples report: {err}"));
    assert!(
        dropped > 16000,
        "the burst dropped only {dropped} samples: {err}"
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let gap_ms: f64 = events.iter().filter_map(|v| v["gap_ms"].as_f64()).sum();
    assert!(
        (gap_ms * 16.0 - dropped as f64).abs() < 1.0,
        "gaps {gap_ms} ms vs {dropped} samples dropped"
    );
    // finals before the burst say where the speech is in a period; those
    // that start after the burst and the utterance it cut must agree
    let finals: Vec<(f64, f64)> = finals(&String::from_utf8_lossy(&o.stdout))
        .into_iter()
        .map(|(_, start, end)| (start, end))
        .collect();
    let phase = |t: f64| t.rem_euclid(period_s);
    let before: Vec<f64> = finals
        .iter()
        .filter(|f| f.1 < burst_at_s - 1.0)
        .map(|f| phase(f.0))
        .collect();
    let after: Vec<f64> = finals
        .iter()
        .filter(|f| f.0 > burst_at_s + burst_s + 5.0)
        .map(|f| phase(f.0))
        .collect();
    assert!(before.len() >= 2 && after.len() >= 2, "finals {finals:?}");
    for t in &after {
        let off = before
            .iter()
            .map(|b| (b - t).abs().min(period_s - (b - t).abs()))
            .fold(f64::MAX, f64::min);
        assert!(
            off < 0.5,
            "a final {off:.2} s off after the overrun: {finals:?}"
        );
    }
    // memory: VmRSS after the first eighth of the run against the rest
    // (the burst fills the ring, 512 KiB, for the first time)
    let wall_s = rss.last().map(|x| x.0).unwrap_or(0.0);
    let (warm, late) = assert_rss_flat(&rss, wall_s / 8.0..wall_s / 4.0);
    eprintln!(
        "soak: paced listen {total_s:.0} s, {dropped} samples dropped = {gap_ms:.1} ms of gaps, {} finals, VmRSS {warm} KiB early, later max {late} KiB",
        finals.len()
    );
}
