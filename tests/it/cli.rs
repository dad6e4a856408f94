//! The command line: exit codes, `hark model`, a closed stdout pipe, and
//! SIGTERM while speaking flushing the final transcript.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{hark, run, spawn_transcribe_stdin, speechlike, stderr, stdout, write_wav};

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

/// Speech from a committed file without its leading and trailing silence,
/// as f32le bytes.
fn speech_f32le() -> Vec<u8> {
    let audio = crate::util::wav_samples("e2e/e2e-4-flite-rms.wav");
    let first = audio.iter().position(|v| v.abs() > 0.02).unwrap_or(0);
    let last = audio
        .iter()
        .rposition(|v| v.abs() > 0.02)
        .unwrap_or(audio.len());
    audio[first..last]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect()
}

// SIGTERM while someone is speaking: hark stops reading, runs the open
// chunk and prints the final of the open utterance before it exits 0. The
// writer keeps streaming speech (as a live `arecord | hark transcribe -`
// would) until hark has exited, so the stop comes from the signal, not
// from the end of the input. Greedy, the final extends the last partial;
// with the LM beam search (the default) the final may revise the partial's
// words, so it is checked to cover at least the partial's audio.
#[test]
fn sigterm_while_speaking_prints_the_final_of_the_open_utterance() {
    // the streaming pass's own greedy final extends its last partial; the
    // Whisper final (the default) is another reading of the same audio
    sigterm_while_speaking(&["--no-lm", "--finals", "ctc"]);
    sigterm_while_speaking(&[]);
}

fn sigterm_while_speaking(extra: &[&str]) {
    let greedy = extra.contains(&"--no-lm");
    let mut child = crate::util::spawn_transcribe_stdin_with("f32le", extra);
    let speech = speech_f32le();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // about twice real time: 100 ms of audio every 50 ms, looping, for
        // at most 60 s; ends when hark goes away (broken pipe)
        let start = Instant::now();
        let piece = 1600 * 4;
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(60) {
            for chunk in speech.chunks(piece) {
                if stdin.write_all(chunk).is_err() {
                    return sent;
                }
                sent += chunk.len() as u64;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        sent
    });
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    // wait for a partial: speech is being decoded
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => {
                let partial = l.contains("\"type\":\"partial\"");
                lines.push(l);
                if partial && lines.len() >= 2 {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    assert!(crate::util::sigterm(child.id()));
    let status = child.wait().expect("wait");
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    let sent = writer.join().expect("writer");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let last_partial = events
        .iter()
        .rposition(|e| e["type"] == "partial")
        .unwrap_or_else(|| panic!("no partial before SIGTERM: {lines:?}\n{err}"));
    let final_after = events[last_partial..]
        .iter()
        .find(|e| e["type"] == "final")
        .unwrap_or_else(|| panic!("no final after the last partial: {lines:?}"));
    let partial_text = events[last_partial]["text"].as_str().unwrap_or("");
    let final_text = final_after["text"].as_str().unwrap_or("");
    assert!(!final_text.is_empty(), "empty final after {partial_text:?}");
    if greedy {
        assert!(
            final_text.starts_with(partial_text),
            "final {final_text:?} does not extend partial {partial_text:?}"
        );
    }
    let end = |e: &serde_json::Value| e["end"].as_f64().unwrap_or(f64::NAN);
    assert!(
        end(final_after) >= end(&events[last_partial]),
        "final {final_after} ends before partial {}",
        events[last_partial]
    );
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some("final".into())
    );
    // hark stopped on the signal while the input was still flowing
    let streamed_s = sent as f64 / 4.0 / 16000.0;
    let end_s = events.last().and_then(|e| e["end"].as_f64()).unwrap_or(0.0);
    assert!(streamed_s < 55.0, "the writer ran out before SIGTERM");
    assert!(end_s <= streamed_s + 0.5, "{end_s} > {streamed_s}");
}

// Regression: SIGTERM was not seen while `transcribe -` waited on a stalled
// pipe (the interrupted read was restarted), so hark hung until the writer
// closed its end.
#[test]
fn sigterm_ends_a_read_of_a_stalled_stdin_and_flushes() {
    let mut child = spawn_transcribe_stdin("f32le");
    let speech = speech_f32le();
    let mut stdin = child.stdin.take().expect("stdin");
    // two thirds of the sentence, then the pipe stays open with no data
    let cut = speech.len() * 2 / 3 / 4 * 4;
    stdin.write_all(&speech[..cut]).expect("write");
    stdin.flush().expect("flush");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !lines.iter().any(|l: &String| l.contains("partial")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    // let hark consume the rest of what was written and block in read
    std::thread::sleep(Duration::from_millis(500));
    assert!(crate::util::sigterm(child.id()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    let status = status.unwrap_or_else(|| panic!("hark ignored SIGTERM on a stalled stdin"));
    assert_eq!(status.code(), Some(0), "{err}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let last = events.last().expect("events");
    assert_eq!(last["type"], "final", "{lines:?}");
    // The final is the open utterance flushed: it covers at least the audio
    // the last partial covered and says something. Its words may differ from
    // that partial's: the LM beam search scores the end of sentence at the
    // final and may revise the last words (docs/usage.md, "Output formats").
    let partial_end = events
        .iter()
        .rev()
        .find(|e| e["type"] == "partial")
        .and_then(|e| e["end"].as_f64())
        .unwrap_or(0.0);
    assert!(
        last["end"].as_f64().unwrap_or(0.0) >= partial_end,
        "{lines:?}"
    );
    assert!(
        !last["text"].as_str().unwrap_or("").trim().is_empty(),
        "{lines:?}"
    );
}

/// `hark SUB --help`.
fn help(sub: &str) -> String {
    let o = run(&[sub, "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

// The README's usage block and `--help` drifted apart (`listen --format`
// offered tsv, `bench --threads` accepted only 1, `bench --partials` did
// nothing). Every flag the README's usage block names is in that
// subcommand's help, and the formats each offers are the same.
#[test]
fn the_readme_usage_block_agrees_with_the_help() {
    let readme = std::fs::read_to_string(crate::util::repo().join("README.md")).expect("README");
    let block = readme
        .split("## Usage")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("a code block under ## Usage");
    let mut seen = 0;
    for line in block.lines().filter(|l| l.starts_with("hark ")) {
        let sub = line.split_whitespace().nth(1).expect("subcommand");
        let h = help(sub);
        for flag in line
            .split(|c: char| c.is_whitespace() || "[]|".contains(c))
            .filter(|w| w.starts_with("--"))
        {
            assert!(
                h.contains(flag),
                "README: `{line}`: {flag} is not in `hark {sub} --help`"
            );
        }
        if let Some(formats) = line.split("--format ").nth(1) {
            let formats = formats.split(']').next().unwrap_or("");
            let offered = h
                .lines()
                .skip_while(|l| !l.contains("--format"))
                .find(|l| l.contains("possible values"))
                .unwrap_or_else(|| panic!("`hark {sub} --help` lists no --format values"));
            for f in formats.split('|') {
                assert!(offered.contains(f), "{sub}: README offers {f}: {offered}");
            }
            let n = offered.matches(',').count() + 1;
            assert_eq!(
                formats.split('|').count(),
                n,
                "{sub}: README {formats} vs {offered}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 5, "usage block: {block}");
    let bench = help("bench");
    assert!(
        !bench.contains("--threads") && !bench.contains("--partials"),
        "{bench}"
    );
    assert!(!help("listen").contains("tsv"), "{}", help("listen"));
    // --backend names both GPU builds and says what this one is
    let h = help("transcribe");
    assert!(h.contains("cuda13") && h.contains("This binary:"), "{h}");
    // the bundled LM's beam width, stated in the help as in the README
    let beam = hark::decode::lm::CharLm::bundled().expect("LM").tuning.beam;
    assert!(h.contains(&format!("{beam} for the bundled LM")), "{h}");
    assert!(
        readme.contains(&format!("beam {beam}")),
        "README and beam {beam}"
    );
}

#[test]
fn hark_log_info_reports_the_language_model_in_use() {
    let wav = crate::util::data("e2e/e2e-4-flite-rms.wav");
    let wav = wav.to_str().expect("utf8");
    let lm = hark::decode::lm::CharLm::bundled().expect("LM");
    for (extra, want) in [
        (
            vec![],
            format!(
                "decoding: beam {} with language model {} (character {}-gram",
                lm.tuning.beam,
                lm.source,
                lm.order()
            ),
        ),
        (
            vec!["--beam", "4"],
            format!(
                "decoding: beam 4 (--beam) with language model {}",
                lm.source
            ),
        ),
        (
            vec!["--no-lm"],
            "decoding: greedy, no language model (--no-lm)".to_string(),
        ),
    ] {
        let o = hark()
            .args(["transcribe"])
            .args(&extra)
            .arg(wav)
            .env("HARK_LOG", "info")
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).contains(&want), "{extra:?}: {}", stderr(&o));
    }
}
