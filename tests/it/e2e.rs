//! End to end with the bundled model: `hark transcribe --format tsv` on
//! committed WAVs synthesized from voices held out of training
//! (train/make_test_audio.py), scored against their scripts; `listen` on
//! an ALSA file PCM. (SIGTERM while speaking: `cli.rs`.)

use crate::util::{data, run, stderr, stdout};

/// Word error rate bound for these files. The model bundled now is an
/// undertrained checkpoint that does not meet it (models/README.md), so the
/// tests that read its words are ignored until the trained model lands
/// (issue 2); run them with `cargo test -- --ignored`.
const MAX_WER: f64 = 0.25;

fn edit_distance(a: &[&str], b: &[&str]) -> usize {
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

#[test]
#[ignore = "needs the trained model of issue 2: the bundled checkpoint is undertrained (models/README.md)"]
fn transcribe_tsv_meets_the_wer_bound_on_held_out_voices() {
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
    let (mut errors, mut words) = (0, 0);
    for ((_, want), (line, path)) in items.iter().zip(lines.iter().zip(&paths)) {
        let (file, got) = line.split_once('\t').expect("tsv line");
        assert_eq!(file, path);
        let r: Vec<&str> = want.split_whitespace().collect();
        let h: Vec<&str> = got.split_whitespace().collect();
        errors += edit_distance(&r, &h);
        words += r.len();
    }
    let wer = errors as f64 / words as f64;
    assert!(wer <= MAX_WER, "WER {wer:.3} > {MAX_WER}:\n{out}");
}

#[test]
#[ignore = "needs the trained model of issue 2: the bundled checkpoint is undertrained (models/README.md)"]
fn listen_on_an_alsa_file_pcm_transcribes_the_speech() {
    let (file, want) = expected().remove(3);
    let mut r = hound::WavReader::open(data(&format!("e2e/{file}"))).expect("wav");
    let mut audio: Vec<f32> = r
        .samples::<i16>()
        .map(|s| s.map(|v| v as f32 / 32768.0).unwrap_or(0.0))
        .collect();
    audio.extend(std::iter::repeat_n(0.0, 16000 * 2));
    let (code, out, err) = crate::listen::listen_on_raw(&audio, 4.0, &[]);
    assert_eq!(code, Some(0), "{err}");
    let finals: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["type"] == "final")
        .collect();
    assert!(!finals.is_empty(), "no final: {out}\n{err}");
    let text = finals[0]["text"].as_str().unwrap_or("");
    let r: Vec<&str> = want.split_whitespace().collect();
    let h: Vec<&str> = text.split_whitespace().collect();
    let wer = edit_distance(&r, &h) as f64 / r.len() as f64;
    assert!(wer <= MAX_WER.max(0.5), "{text:?} vs {want:?}");
}
