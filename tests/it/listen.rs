//! Real ALSA without a sound card: a capture PCM defined in an ALSA config
//! file (the `file` plugin reading a raw file, over a `null` slave) drives
//! `hark listen`; and a device that does not exist is a clean exit 2.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{hark, stderr, stdout};

/// Write an ALSA config that includes the system configuration and adds
/// `pcm.harktest`, capturing s16le mono 16 kHz from `raw`.
pub fn alsa_config(dir: &Path, raw: &Path) -> std::path::PathBuf {
    let conf = dir.join("asound.conf");
    let text = format!(
        "</usr/share/alsa/alsa.conf>\n\
         pcm.harktest {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n}}\n",
        raw.display()
    );
    std::fs::write(&conf, text).expect("write conf");
    conf
}

/// The PCMs that tests open inside this process (not by running the
/// binary): each is a file PCM reading `<name>.raw` in one shared folder.
const IN_PROCESS_PCMS: [&str; 2] = ["harkalloc", "harksoak"];

/// The input file of the in-process capture PCM `name` (s16le mono
/// 16 kHz, read when the PCM is opened). alsa-lib reads its configuration
/// once per process, so one file defines every in-process PCM, and
/// ALSA_CONFIG_PATH is set once, before the first of them is opened.
pub fn in_process_pcm_input(name: &str) -> std::path::PathBuf {
    use std::sync::OnceLock;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    assert!(
        IN_PROCESS_PCMS.contains(&name),
        "{name} is not in IN_PROCESS_PCMS"
    );
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let mut text = String::from("</usr/share/alsa/alsa.conf>\n");
        for pcm in IN_PROCESS_PCMS {
            text.push_str(&format!(
                "pcm.{pcm} {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n}}\n",
                dir.path().join(format!("{pcm}.raw")).display()
            ));
        }
        let conf = dir.path().join("asound.conf");
        std::fs::write(&conf, text).expect("write conf");
        std::env::set_var("ALSA_CONFIG_PATH", &conf);
        dir
    });
    dir.path().join(format!("{name}.raw"))
}

/// Write `raw` as the input of the in-process capture PCM `name` and
/// return the PCM's name.
pub fn in_process_pcm(name: &str, raw: &[u8]) -> String {
    std::fs::write(in_process_pcm_input(name), raw).expect("write raw");
    name.to_string()
}

pub fn s16le(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect()
}

/// Run `hark listen` on a raw s16le mono 16 kHz file; SIGTERM after `secs`.
pub fn listen_on_raw(samples: &[f32], secs: f64, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let raw = dir.path().join("speech.raw");
    std::fs::write(&raw, s16le(samples)).expect("write raw");
    let conf = alsa_config(dir.path(), &raw);
    let child = hark()
        .args(["listen", "--device", "harktest", "--format", "jsonl"])
        .args(extra)
        .env("ALSA_CONFIG_PATH", &conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs_f64(secs));
    crate::util::sigterm(child.id());
    let o = child.wait_with_output().expect("wait");
    (o.status.code(), stdout(&o), stderr(&o))
}

#[test]
fn nonexistent_device_is_exit_2_with_a_clear_message() {
    let o = hark()
        .args(["listen", "--device", "hw:CARD=NoSuchCard,DEV=0"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    // Regression: alsa-lib's own `ALSA lib ...` lines came first; its error
    // handler is silenced now, so hark's line is the only one.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("hark: ") && err.contains("NoSuchCard") && err.contains("cannot open"),
        "{err}"
    );
}

/// The ALSA PCM config that defines `pcm.harktest` as the `null` plugin
/// (captures silence as fast as it is read).
fn null_config(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        "</usr/share/alsa/alsa.conf>\npcm.harktest {\n  type null\n}\n",
    )
    .expect("write conf");
    conf
}

// Regression: on a source that delivers audio faster than real time (no
// sound card clock), the ring overran all the time, and hark printed one
// overrun warning every 5 s, finals with gaps of hundreds of thousands of
// seconds, and at the end an empty final carrying the last gap.
#[test]
fn an_unpaced_source_is_reported_once_and_gives_no_empty_final() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = null_config(dir.path());
    for format in ["jsonl", "text"] {
        let child = hark()
            .args(["listen", "--device", "harktest", "--format", format])
            // the capture path only: no finals model to load in the 6 s
            .args(["--finals", "ctc"])
            .env("ALSA_CONFIG_PATH", &conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_secs(6));
        crate::util::sigterm(child.id());
        let o = child.wait_with_output().expect("wait");
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{err}");
        // silence: no transcript at all, and certainly no empty line
        assert_eq!(out, "", "{format}: {err}");
        let reports: Vec<&str> = err.lines().filter(|l| l.contains("not paced")).collect();
        assert_eq!(reports.len(), 1, "{err}");
        assert!(reports[0].contains("`harktest`"), "{err}");
        assert!(!err.contains("overrun"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The events of `hark transcribe --partials --format jsonl` on the same
/// samples as raw s16le on stdin.
fn transcribe_raw(samples: &[f32]) -> String {
    let mut child = crate::util::spawn_transcribe_stdin_with("s16le", &["--finals", "ctc"]);
    let bytes = s16le(samples);
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

/// (type, text, start, end) of every event that ends by `until_s`.
fn events_until(jsonl: &str, until_s: f64) -> Vec<(String, String, f64, f64)> {
    crate::util::jsonl_events(jsonl)
        .iter()
        .filter(|v| v["end"].as_f64().unwrap_or(f64::MAX) <= until_s)
        .map(crate::util::event_fields)
        .collect()
}

// Regression: ring overruns used to be added to the stream time when they
// were noticed, not where they happened, so every timestamp after the
// first overrun was wrong (the file plugin is not paced and overruns the
// ring at once).
#[test]
fn listen_on_an_alsa_file_pcm_gives_the_same_events_as_transcribe() {
    let mut audio = crate::util::wav_samples("e2e/e2e-4-flite-rms.wav");
    audio.extend(std::iter::repeat_n(0.0, 16000 * 2));
    let total_s = audio.len() as f64 / 16000.0;
    // the streaming pass's events (the finals pass has its own test:
    // finals::a_wav_file_stdin_and_an_alsa_capture_device_give_the_same_finals)
    let (code, out, err) = listen_on_raw(&audio, 3.0, &["--partials", "--finals", "ctc"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // after the file, the plugin repeats its last period (silence) very
    // fast: compare everything that the file itself decides, i.e. events
    // ending at least one chunk (plus a frame) before its end
    let until = total_s - crate::util::model().info.chunk_ms() / 1000.0 - 0.05;
    let want = events_until(&transcribe_raw(&audio), until);
    let got = events_until(&out, until);
    assert!(
        want.iter().any(|e| e.0 == "final"),
        "the model gives no final on this speech: {want:?}"
    );
    assert_eq!(got, want, "listen:\n{out}\nstderr:\n{err}");
    // the unpaced source is reported once, not as overruns; after the
    // file, nothing is stamped later than the audio read could reach
    assert_eq!(
        err.lines().filter(|l| l.contains("not paced")).count(),
        1,
        "{err}"
    );
    assert!(!err.contains("overrun"), "{err}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        assert!(v.get("gap_ms").is_none(), "{line}");
        if v["type"] == "final" {
            assert_ne!(v["text"], "", "{line}");
        }
    }
}

// The capture thread allocates its period buffer before its loop and
// nothing in it. `capture_loop` runs here, in this process, on the ALSA
// file PCM (not paced: thousands of periods a second, and the ring
// overruns), and its thread's allocator calls are counted.
#[test]
fn the_capture_loop_does_not_allocate() {
    use hark::audio::alsa::{capture_loop, open_capture};
    use hark::audio::ring::{Ring, RingStats};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let mut audio = crate::util::speechlike(2.0, 16000, 5);
    audio.extend(std::iter::repeat_n(0.0, 1600));
    let pcm = in_process_pcm("harkalloc", &s16le(&audio));
    let cap = open_capture(&pcm, 16000).expect("open the file PCM");
    assert_eq!((cap.rate, cap.channels), (16000, 1));
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut writer, mut reader) = ring.split(&stats);
    let (stop, failed) = (AtomicBool::new(false), AtomicBool::new(false));
    let calls = std::thread::scope(|s| {
        let (stats, stop, failed) = (&stats, &stop, &failed);
        let capture = s.spawn(move || {
            let before = crate::alloc_calls();
            capture_loop(&cap, &mut writer, stats, stop, failed);
            crate::alloc_calls() - before
        });
        let mut buf = vec![0i16; 4096];
        let start = Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(1500) {
            let _ = reader.read(&mut buf, 1, |_| Ok(())).expect("read");
        }
        stop.store(true, Ordering::Release);
        capture.join().expect("capture thread")
    });
    let periods = (stats.pushed_samples.load(Ordering::Relaxed)
        + stats.dropped_samples.load(Ordering::Relaxed))
        / 320;
    assert!(!failed.load(Ordering::Relaxed));
    assert!(periods > 1000, "only {periods} periods captured");
    assert!(calls <= 2, "{calls} allocations for {periods} periods");
}

// `hark devices` on a machine without a sound card listed ALSA's plugins
// (`null`, `pulse`, ...) as if they were microphones, and said nothing
// else. The kernel's own list of PCMs (/proc/asound/pcm) is the reference.
#[test]
fn devices_says_when_there_is_no_capture_hardware() {
    let o = crate::util::run(&["devices"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let capture = std::fs::read_to_string("/proc/asound/pcm")
        .map(|pcms| pcms.lines().any(|l| l.contains("capture")))
        .unwrap_or(false);
    if capture {
        assert!(!err.contains("no capture hardware"), "{err}");
    } else {
        assert!(err.contains("no capture hardware"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!err.contains("ALSA lib"), "{err}");
}
