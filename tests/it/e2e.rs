//! End to end with the bundled model: `hark transcribe --format tsv` on
//! committed WAVs synthesized from voices held out of training
//! (train/make_test_audio.py), scored against their scripts; `listen` on
//! an ALSA file PCM. (SIGTERM while speaking: `cli.rs`.)

use crate::util::{data, run, stderr, stdout};

pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1)
                .min(cur[j] + 1)
                .min(prev[j] + usize::from(x != y));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn expected() -> Vec<(String, String)> {
    std::fs::read_to_string(data("e2e/expected.tsv"))
        .expect("expected.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

/// (word errors, reference words, character errors, reference characters)
/// of `hark transcribe --format tsv` on the committed files.
fn transcribe_all_and_score() -> (usize, usize, usize, usize, String) {
    let items = expected();
    let paths: Vec<String> = items
        .iter()
        .map(|(f, _)| data(&format!("e2e/{f}")).display().to_string())
        .collect();
    let mut args = vec!["transcribe", "--format", "tsv"];
    args.extend(paths.iter().map(|s| s.as_str()));
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), items.len(), "{out}");
    let (mut errors, mut words, mut char_errors, mut chars) = (0, 0, 0, 0);
    for ((_, want), (line, path)) in items.iter().zip(lines.iter().zip(&paths)) {
        let (file, got) = line.split_once('\t').expect("tsv line");
        assert_eq!(file, path);
        let r: Vec<&str> = want.split_whitespace().collect();
        let h: Vec<&str> = got.split_whitespace().collect();
        errors += edit_distance(&r, &h);
        words += r.len();
        // Characters of the space-joined words, spaces included.
        let rc: Vec<char> = r.join(" ").chars().collect();
        let hc: Vec<char> = h.join(" ").chars().collect();
        char_errors += edit_distance(&rc, &hc);
        chars += rc.len();
    }
    (errors, words, char_errors, chars, out)
}

/// Character error rate bound the bundled model meets on these files with
/// its default decoding (hark-wsm-v21 with the 7-gram LM at beam 32
/// measured 0.273 here, x86-64; v20 0.283; v12 and v9 0.302; v9 with the 6-gram at beam 16
/// 0.288; v4 0.312, v3 0.288): far from usable, but a broken front
/// end, chunking or decoder drives it towards 1.0.
const MAX_CER: f64 = 0.35;

/// Word error rate bound the bundled model and LM meet on these files
/// (hark-wsm-v21 measured 0.500 with the 7-gram LM at beam 32, v20 0.525, v12 0.550; v9 0.575
/// with it and 0.550 with the 6-gram at beam 16; v4 0.600, v3 0.575): a guard
/// against a regression of the model, front end or decoder. Issue 2's target
/// of 0.10 on held-out synthetic voices is not met by any model here,
/// Whisper tiny.en included (results/HISTORY.md), so it is no test.
const MAX_WER: f64 = 0.65;

#[test]
fn transcribe_tsv_meets_the_wer_and_cer_bounds_on_held_out_voices() {
    let (errors, words, char_errors, chars, out) = transcribe_all_and_score();
    let wer = errors as f64 / words as f64;
    assert!(wer <= MAX_WER, "WER {wer:.3} > {MAX_WER}:\n{out}");
    let cer = char_errors as f64 / chars as f64;
    assert!(cer <= MAX_CER, "CER {cer:.3} > {MAX_CER}:\n{out}");
}

#[test]
fn listen_on_an_alsa_file_pcm_transcribes_the_speech() {
    let (file, want) = expected().remove(3);
    let mut r = hound::WavReader::open(data(&format!("e2e/{file}"))).expect("wav");
    let mut audio: Vec<f32> = r
        .samples::<i16>()
        .map(|s| s.map(|v| v as f32 / 32768.0).unwrap_or(0.0))
        .collect();
    audio.extend(std::iter::repeat_n(0.0, 16000 * 2));
    let (code, out, err) = crate::listen::listen_on_raw(&audio, 8.0, &[]);
    assert_eq!(code, Some(0), "{err}");
    let finals: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["type"] == "final")
        .collect();
    assert!(!finals.is_empty(), "no final: {out}\n{err}");
    let text = finals[0]["text"].as_str().unwrap_or("");
    // The same character error bound as `transcribe` (which measured 0.256
    // on this file with v3): listen goes through ALSA, the ring and the
    // endpointer.
    let r: Vec<char> = want.chars().collect();
    let h: Vec<char> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    let cer = edit_distance(&r, &h) as f64 / r.len() as f64;
    assert!(cer <= MAX_CER, "CER {cer:.3}: {text:?} vs {want:?}");
}
