//! Bad input gets a clear error or a correct transcript, never a panic:
//! odd WAV files, broken models, missing metadata, empty stdin.

use std::io::Write;
use std::process::Stdio;

use prost::Message;

use crate::util::{
    hark, run, spawn_piped, speechlike, stderr, stdout, transcribe_tsv, tsv_text, write_wav,
};

fn assert_clean_failure(o: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line message expected: {err}"
    );
}

#[test]
fn truncated_wav_is_transcribed_up_to_the_cut_with_a_warning() {
    let dir = tempfile::tempdir().expect("tmp");
    let full = dir.path().join("full.wav");
    write_wav(&full, &speechlike(3.0, 16000, 1), 16000, 1, 16, false);
    let bytes = std::fs::read(&full).expect("read");
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1]).expect("write");
    let o = run(&["transcribe", cut.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}

#[test]
fn zero_length_wav_gives_an_empty_transcript() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("empty.wav");
    write_wav(&p, &[], 16000, 1, 16, false);
    let o = run(&["transcribe", "--format", "tsv", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\t\n", p.display()));
}

#[test]
fn empty_file_and_non_wav_bytes_are_input_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let empty = dir.path().join("zero.wav");
    std::fs::write(&empty, b"").expect("write");
    assert_clean_failure(
        &run(&["transcribe", empty.to_str().expect("utf8")]),
        2,
        "zero.wav",
    );
    let text = dir.path().join("notes.wav");
    std::fs::write(
        &text,
        b"this is not audio at all, just some text\n".repeat(20),
    )
    .expect("write");
    assert_clean_failure(
        &run(&["transcribe", text.to_str().expect("utf8")]),
        2,
        "not a readable WAV",
    );
    assert_clean_failure(
        &run(&["transcribe", "/nonexistent/x.wav"]),
        2,
        "no such file",
    );
}

#[test]
fn every_common_wav_format_gives_the_same_transcript() {
    let dir = tempfile::tempdir().expect("tmp");
    let audio = speechlike(4.0, 16000, 2);
    let reference = dir.path().join("ref.wav");
    write_wav(&reference, &audio, 16000, 1, 16, false);
    let want_text = transcribe_tsv(&reference);
    for (name, bits, float, channels) in [
        ("s8.wav", 8, false, 1),
        ("s24.wav", 24, false, 1),
        ("s32.wav", 32, false, 1),
        ("f32.wav", 32, true, 1),
        ("stereo.wav", 16, false, 2),
    ] {
        let p = dir.path().join(name);
        write_wav(&p, &audio, 16000, channels, bits, float);
        let got = transcribe_tsv(&p);
        // 8-bit quantization changes the audio a little; the others are exact or near
        if bits != 8 {
            assert_eq!(got, want_text, "{name}");
        }
    }
    // stereo 44.1 kHz: resampled and mixed down, runs to completion
    let audio44 = speechlike(4.0, 44100, 2);
    let p = dir.path().join("stereo44.wav");
    write_wav(&p, &audio44, 44100, 2, 16, false);
    let o = run(&["transcribe", "--format", "jsonl", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn model_cut_in_half_is_a_model_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("half.onnx");
    std::fs::write(
        &p,
        &hark::model::BUNDLED_MODEL[..hark::model::BUNDLED_MODEL.len() / 2],
    )
    .expect("write");
    let wav = dir.path().join("a.wav");
    write_wav(&wav, &speechlike(1.0, 16000, 1), 16000, 1, 16, false);
    let o = run(&[
        "transcribe",
        "--model",
        p.to_str().expect("utf8"),
        wav.to_str().expect("utf8"),
    ]);
    assert_clean_failure(&o, 2, "model");
    let o = run(&["model", p.to_str().expect("utf8")]);
    assert_clean_failure(&o, 2, "half.onnx");
}

#[test]
fn model_missing_a_metadata_key_names_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut proto, _) = hark::model::read_metadata(hark::model::BUNDLED_MODEL).expect("bundled");
    proto
        .metadata_props
        .retain(|p| p.key != "hark.chunk_frames");
    let p = dir.path().join("nokey.onnx");
    std::fs::write(&p, proto.encode_to_vec()).expect("write");
    let wav = dir.path().join("a.wav");
    write_wav(&wav, &speechlike(1.0, 16000, 1), 16000, 1, 16, false);
    let o = run(&[
        "transcribe",
        "--model",
        p.to_str().expect("utf8"),
        wav.to_str().expect("utf8"),
    ]);
    assert_clean_failure(&o, 2, "missing metadata key `hark.chunk_frames`");
}

#[test]
fn model_of_another_contract_version_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut proto, _) = hark::model::read_metadata(hark::model::BUNDLED_MODEL).expect("bundled");
    for p in proto.metadata_props.iter_mut() {
        if p.key == "hark.contract_version" {
            p.value = "99".into();
        }
    }
    let p = dir.path().join("v99.onnx");
    std::fs::write(&p, proto.encode_to_vec()).expect("write");
    assert_clean_failure(
        &run(&["model", p.to_str().expect("utf8")]),
        2,
        "contract version 99",
    );
}

#[test]
fn stdin_closed_immediately_gives_an_empty_transcript() {
    let o = hark()
        .args(["transcribe", "--format", "tsv", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-\t\n");
}

#[test]
fn raw_stdin_equals_the_same_audio_as_wav() {
    let dir = tempfile::tempdir().expect("tmp");
    let audio = speechlike(3.0, 16000, 4);
    let wav = dir.path().join("a.wav");
    write_wav(&wav, &audio, 16000, 1, 32, true);
    let from_wav = transcribe_tsv(&wav);
    let mut child = spawn_piped(&[
        "transcribe",
        "--format",
        "tsv",
        "--sample-format",
        "f32le",
        "--rate",
        "16000",
        "-",
    ]);
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tsv_text(&stdout(&o)), from_wav);
}

#[test]
fn a_wav_at_an_absurd_rate_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("one-hertz.wav");
    write_wav(&p, &speechlike(1.0, 16000, 1), 1, 1, 16, false);
    assert_clean_failure(
        &run(&["transcribe", p.to_str().expect("utf8")]),
        2,
        "one-hertz.wav: sample rate 1 Hz is not supported",
    );
}

#[test]
fn a_corrupt_or_mismatched_language_model_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let wav = dir.path().join("a.wav");
    write_wav(&wav, &speechlike(1.0, 16000, 1), 16000, 1, 16, false);
    let wav = wav.to_str().expect("utf8");
    let half = dir.path().join("half.bin");
    let lm = hark::decode::lm::BUNDLED_LM;
    std::fs::write(&half, &lm[..lm.len() / 2]).expect("write");
    let o = run(&["transcribe", "--lm", half.to_str().expect("utf8"), wav]);
    assert_clean_failure(&o, 2, "half.bin");
    let o = run(&["transcribe", "--lm", "/nonexistent/lm.bin", wav]);
    assert_clean_failure(&o, 2, "/nonexistent/lm.bin");
    // an LM without some of the model's characters: the symbol table of a
    // valid file with "z" renamed to "Z"
    let mut other = lm.to_vec();
    let at = other
        .windows(2)
        .position(|w| w == [1, b'z'])
        .expect("symbol z");
    other[at + 1] = b'Z';
    let p = dir.path().join("other.bin");
    std::fs::write(&p, &other).expect("write");
    let o = run(&["transcribe", "--lm", p.to_str().expect("utf8"), wav]);
    assert_clean_failure(&o, 2, "\"z\"");
    let o = run(&["transcribe", "--beam", "0", wav]);
    assert_clean_failure(&o, 2, "--beam");
}

/// `hark transcribe --format tsv -` with `bytes` on stdin and `extra` flags.
fn transcribe_stdin_tsv(bytes: Vec<u8>, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["transcribe", "--format", "tsv"];
    args.extend_from_slice(extra);
    args.push("-");
    let mut child = spawn_piped(&args);
    let mut stdin = child.stdin.take().expect("stdin");
    // hark may stop reading early (a refused header): a broken pipe is fine
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    o
}

// Regression: a WAV file piped into `transcribe -` was read as raw s16le,
// header included (and at the flags' rate, whatever the file's).
#[test]
fn a_wav_piped_into_stdin_is_read_as_wav() {
    let dir = tempfile::tempdir().expect("tmp");
    let audio44 = speechlike(3.0, 44100, 6);
    for (name, bits, float, channels) in [
        ("s16.wav", 16, false, 1),
        ("s24-stereo.wav", 24, false, 2),
        ("f32.wav", 32, true, 1),
    ] {
        let p = dir.path().join(name);
        write_wav(&p, &audio44, 44100, channels, bits, float);
        let want = transcribe_tsv(&p);
        let bytes = std::fs::read(&p).expect("read");
        let o = transcribe_stdin_tsv(bytes.clone(), &[]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert_eq!(tsv_text(&stdout(&o)), want, "{name}");
        assert!(stderr(&o).is_empty(), "{name}: {}", stderr(&o));
        // a writer that cannot seek (sox or arecord into a pipe) leaves a
        // placeholder length: read to the end, no truncation warning
        let mut streamed = bytes;
        let data = streamed
            .windows(4)
            .position(|w| w == b"data")
            .expect("data chunk");
        streamed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        streamed[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let o = transcribe_stdin_tsv(streamed, &[]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert_eq!(tsv_text(&stdout(&o)), want, "{name} streamed");
        assert!(stderr(&o).is_empty(), "{name}: {}", stderr(&o));
    }
    // compressed audio on stdin is named and refused
    let o = transcribe_stdin_tsv(b"fLaC\0\0\0\x22 and then some frames".to_vec(), &[]);
    assert_clean_failure(&o, 2, "FLAC");
}

#[test]
fn empty_inputs_are_named_not_silent() {
    // stdin from /dev/null: the (empty) transcript, and a warning
    let o = hark()
        .args(["transcribe", "--format", "tsv", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-\t\n");
    assert!(
        stderr(&o).contains("stdin: no audio: the input is empty"),
        "{}",
        stderr(&o)
    );
    // a zero-byte file says so
    let dir = tempfile::tempdir().expect("tmp");
    let empty = dir.path().join("zero.wav");
    std::fs::write(&empty, b"").expect("write");
    assert_clean_failure(
        &run(&["transcribe", empty.to_str().expect("utf8")]),
        2,
        "zero.wav: empty file (0 bytes)",
    );
    // a WAV header without samples: a warning
    let p = dir.path().join("header-only.wav");
    write_wav(&p, &[], 16000, 1, 16, false);
    let o = run(&["transcribe", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("no audio"), "{}", stderr(&o));
    // and the same header on stdin
    let o = transcribe_stdin_tsv(std::fs::read(&p).expect("read"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("no audio"), "{}", stderr(&o));
}

#[test]
fn a_wrong_sample_format_on_stdin_is_warned_about() {
    let audio = speechlike(2.0, 16000, 3);
    let f32le: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    let s16le = crate::listen::s16le(&audio);
    // floats read as 16-bit samples (the default --sample-format)
    let o = transcribe_stdin_tsv(f32le.clone(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not look like s16le") && stderr(&o).contains("f32le"),
        "{}",
        stderr(&o)
    );
    // 16-bit samples read as floats
    let o = transcribe_stdin_tsv(s16le.clone(), &["--sample-format", "f32le"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not look like f32le") && stderr(&o).contains("s16le"),
        "{}",
        stderr(&o)
    );
    // the right format: no warning
    for (bytes, fmt) in [(f32le, "f32le"), (s16le, "s16le")] {
        let o = transcribe_stdin_tsv(bytes, &["--sample-format", fmt]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{fmt}: {}", stderr(&o));
    }
}

/// Run sox (scripts/test.sh installs it) with `args`.
fn sox(args: &[&str]) {
    let o = std::process::Command::new("sox")
        .args(args)
        .output()
        .expect("sox is needed for this test (scripts/test.sh installs it)");
    assert!(o.status.success(), "sox {args:?}: {}", stderr(&o));
}

// A-law and mu-law WAVs (telephony recordings) used to be refused as "not
// a readable WAV file" without naming the encoding; they are decoded now,
// to the same samples sox decodes them to. An encoding hark does not read
// is named.
#[test]
fn alaw_and_mulaw_wavs_are_decoded_and_other_encodings_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("src.wav");
    write_wav(&src, &speechlike(3.0, 8000, 8), 8000, 1, 16, false);
    let s = |p: &std::path::Path| p.to_str().expect("utf8").to_string();
    for enc in ["a-law", "u-law"] {
        let coded = dir.path().join(format!("{enc}.wav"));
        sox(&[&s(&src), "-e", enc, &s(&coded)]);
        let linear = dir.path().join(format!("{enc}-decoded.wav"));
        sox(&[&s(&coded), "-e", "signed", "-b", "16", &s(&linear)]);
        let want = transcribe_tsv(&linear);
        let o = run(&["transcribe", "--format", "tsv", &s(&coded)]);
        assert_eq!(o.status.code(), Some(0), "{enc}: {}", stderr(&o));
        assert_eq!(tsv_text(&stdout(&o)), want, "{enc}");
        let o = transcribe_stdin_tsv(std::fs::read(&coded).expect("read"), &[]);
        assert_eq!(o.status.code(), Some(0), "{enc}: {}", stderr(&o));
        assert_eq!(tsv_text(&stdout(&o)), want, "{enc} on stdin");
    }
    let adpcm = dir.path().join("adpcm.wav");
    sox(&[&s(&src), "-e", "ms-adpcm", &s(&adpcm)]);
    assert_clean_failure(&run(&["transcribe", &s(&adpcm)]), 2, "Microsoft ADPCM");
}

// Regression: `transcribe a.wav missing.wav b.wav` stopped at the missing
// file, so what came after it was never transcribed.
#[test]
fn a_missing_file_among_several_is_reported_and_the_others_transcribed() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = dir.path().join("a.wav");
    let b = dir.path().join("b.wav");
    write_wav(&a, &speechlike(2.0, 16000, 1), 16000, 1, 16, false);
    write_wav(&b, &speechlike(2.0, 16000, 2), 16000, 1, 16, false);
    let (a, b) = (a.to_str().expect("utf8"), b.to_str().expect("utf8"));
    let want_a = format!("{a}\t{}\n", transcribe_tsv(a.as_ref()));
    let want_b = format!("{b}\t{}\n", transcribe_tsv(b.as_ref()));
    let missing = "/nonexistent/missing.wav";
    for (files, want) in [
        (vec![missing, a, b], format!("{want_a}{want_b}")),
        (vec![a, missing, b], format!("{want_a}{want_b}")),
        (vec![a, b, missing], format!("{want_a}{want_b}")),
        (vec![b, missing, missing], want_b.clone()),
    ] {
        let mut args = vec!["transcribe", "--format", "tsv"];
        args.extend_from_slice(&files);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{files:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), want, "{files:?}");
        let err = stderr(&o);
        let missing_count = files.iter().filter(|f| **f == missing).count();
        assert_eq!(err.lines().count(), missing_count, "{files:?}: {err}");
        assert!(
            err.lines()
                .all(|l| l == format!("hark: input: {missing}: no such file")),
            "{err}"
        );
    }
}
