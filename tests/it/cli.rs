//! The command line: exit codes, `hark model`, a closed stdout pipe, and
//! SIGTERM mid-utterance flushing the final transcript.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{hark, run, speechlike, stderr, stdout, write_wav};

#[test]
fn bad_flags_exit_2() {
    assert_eq!(run(&["transcribe"]).status.code(), Some(2));
    assert_eq!(
        run(&["transcribe", "--format", "xml", "a.wav"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    let o = run(&["transcribe", "--endpoint-silence-ms", "5", "a.wav"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--endpoint-silence-ms"),
        "{}",
        stderr(&o)
    );
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn model_prints_what_the_bundled_model_declares() {
    let o = run(&["model"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    let info = &crate::util::model().info;
    assert!(
        s.contains(&format!(
            "contract:        version {}",
            info.contract_version
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!("{} char tokens", info.tokens.len())),
        "{s}"
    );
    assert!(s.contains(&info.name), "{s}");
}

#[test]
fn missing_model_file_is_a_model_error() {
    let o = run(&["transcribe", "--model", "/nonexistent/m.onnx", "x.wav"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/m.onnx"), "{}", stderr(&o));
}

#[test]
fn closed_stdout_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("tmp");
    let wav = dir.path().join("a.wav");
    write_wav(&wav, &speechlike(20.0, 16000, 7), 16000, 1, 16, false);
    let path = wav.to_str().expect("utf8").to_string();
    let files: Vec<&str> = std::iter::repeat_n(path.as_str(), 40).collect();
    let mut child = hark()
        .args(["transcribe", "--format", "tsv"])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 1];
    let mut out = child.stdout.take().expect("stdout");
    let _ = out.read(&mut first);
    drop(out); // the reader goes away
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

/// Feed raw PCM on stdin, keep the pipe open, send SIGTERM, and return
/// hark's exit code and stdout.
pub fn sigterm_after(audio: &[f32], extra_args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = hark()
        .args([
            "transcribe",
            "--format",
            "jsonl",
            "--sample-format",
            "f32le",
            "-",
        ])
        .args(extra_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    stdin.write_all(&bytes).expect("write");
    stdin.flush().expect("flush");
    // give hark time to consume what was written (it runs much faster than real time)
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    // SIGTERM sets the stop flag; closing stdin unblocks a pending read
    drop(stdin);
    let o = child.wait_with_output().expect("wait");
    assert!(start.elapsed() < Duration::from_secs(30));
    (o.status.code(), stdout(&o), stderr(&o))
}

#[test]
fn sigterm_exits_0_after_flushing() {
    let (code, _out, err) = sigterm_after(&speechlike(3.0, 16000, 3), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
