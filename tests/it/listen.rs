//! Real ALSA without a sound card: a capture PCM defined in an ALSA config
//! file (the `file` plugin reading a raw file, over a `null` slave) drives
//! `hark listen`; and a device that does not exist is a clean exit 2.

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

/// Run `hark listen` on a raw s16le mono 16 kHz file; SIGTERM after `secs`.
pub fn listen_on_raw(samples: &[f32], secs: f64, extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let raw = dir.path().join("speech.raw");
    let bytes: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect();
    std::fs::write(&raw, bytes).expect("write raw");
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
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
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
    // alsa-lib prints its own diagnostics first; hark's one line comes last
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with("hark: ") && last.contains("NoSuchCard") && last.contains("cannot open"),
        "{err}"
    );
}

#[test]
fn listen_runs_on_an_alsa_file_pcm_and_stops_cleanly_on_sigterm() {
    let mut audio = crate::util::speechlike(3.0, 16000, 11);
    audio.extend(std::iter::repeat_n(0.0, 16000 * 2));
    let (code, _out, err) = listen_on_raw(&audio, 3.0, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
