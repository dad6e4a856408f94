//! Streaming equals batch: the same audio fed in random piece sizes gives
//! exactly the same events as feeding it whole, at 16 kHz and through the
//! resampler.

use std::sync::Arc;

use hark::model::Model;
use hark::recognizer::Recognizer;
use hark::stream::{Event, StreamConfig};
use rand::{Rng, SeedableRng};

use crate::util::{model, speechlike};

/// Events of `samples` through a fresh recognizer for `model` with its
/// default decoding: whole, or in random piece sizes drawn from `pieces`
/// (a seed).
pub(crate) fn run_model(
    model: Arc<Model>,
    samples: &[f32],
    rate: u32,
    pieces: Option<u64>,
) -> Vec<Event> {
    let cfg = crate::util::config(&model, true, true);
    run_config(model, cfg, samples, rate, pieces)
}

fn run_config(
    model: Arc<Model>,
    cfg: StreamConfig,
    samples: &[f32],
    rate: u32,
    pieces: Option<u64>,
) -> Vec<Event> {
    let mut rec = Recognizer::new(model, rate, cfg).expect("recognizer");
    let mut events = Vec::new();
    match pieces {
        None => events.extend(rec.push(samples).expect("push")),
        Some(seed) => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut pos = 0;
            while pos < samples.len() {
                let n = rng.random_range(1..4000).min(samples.len() - pos);
                events.extend(rec.push(&samples[pos..pos + n]).expect("push"));
                pos += n;
            }
        }
    }
    events.extend(rec.finish().expect("finish"));
    events
}

fn run(samples: &[f32], rate: u32, pieces: Option<u64>) -> Vec<Event> {
    run_model(model(), samples, rate, pieces)
}

pub(crate) fn strip(events: Vec<Event>) -> Vec<(hark::stream::EventKind, String, i64, i64)> {
    events
        .into_iter()
        .map(|e| {
            (
                e.kind,
                e.text,
                (e.start_s * 1000.0).round() as i64,
                (e.end_s * 1000.0).round() as i64,
            )
        })
        .collect()
}

#[test]
fn random_piece_sizes_give_the_batch_result() {
    let mut audio = crate::util::speech_with_pauses();
    audio.extend(speechlike(6.0, 16000, 3));
    // with the LM beam search (the default) and greedy (--no-lm)
    for lm in [true, false] {
        let cfg = crate::util::config(&model(), true, lm);
        let run = |pieces| strip(run_config(model(), cfg.clone(), &audio, 16000, pieces));
        let whole = run(None);
        assert!(
            whole
                .iter()
                .filter(|e| e.0 == hark::stream::EventKind::Final && !e.1.is_empty())
                .count()
                >= 2,
            "the comparison needs decoded utterances: {whole:?}"
        );
        for seed in 0..3 {
            assert_eq!(run(Some(seed)), whole, "lm {lm}, seed {seed}");
        }
    }
}

#[test]
fn random_piece_sizes_through_the_resampler_give_the_batch_result() {
    let audio = speechlike(6.0, 44100, 5);
    let whole = strip(run(&audio, 44100, None));
    for seed in 0..3 {
        assert_eq!(strip(run(&audio, 44100, Some(seed))), whole, "seed {seed}");
    }
}

#[test]
fn resampled_input_keeps_its_duration() {
    // the last event ends within one chunk of the audio's end
    let audio = speechlike(5.0, 8000, 1);
    let cfg = StreamConfig::default();
    let mut rec = Recognizer::new(model(), 8000, cfg).expect("recognizer");
    let _ = rec.push(&audio).expect("push").count();
    let _ = rec.finish().expect("finish").count();
    let info = &model().info;
    let chunks = rec.stream().chunks_run() as f64;
    let covered_s = chunks * info.chunk_ms() / 1000.0;
    assert!(
        (covered_s - 5.0).abs() <= info.chunk_ms() / 1000.0 + 0.03,
        "covered {covered_s} s"
    );
}

#[test]
fn a_gap_is_reported_once_and_counts_as_elapsed_time() {
    let audio = crate::util::wav_samples("e2e/e2e-4-flite-rms.wav");
    let split = 5120 * 2; // two chunks of 16 kHz audio
    let whole = run(&audio, 16000, None);
    let cfg = StreamConfig {
        partials: true,
        ..StreamConfig::default()
    };
    let mut rec = Recognizer::new(model(), 16000, cfg).expect("recognizer");
    let mut events: Vec<Event> = rec.push(&audio[..split]).expect("push").collect();
    let before = events.len();
    rec.note_gap(16000, 16000); // one second lost, e.g. a ring overrun
    events.extend(rec.push(&audio[split..]).expect("push"));
    events.extend(rec.finish().expect("finish"));
    // what came before the gap is untouched
    assert_eq!(
        strip(events[..before].to_vec()),
        strip(whole[..before].to_vec())
    );
    let gaps: Vec<f64> = events.iter().map(|e| e.gap_ms).collect();
    assert_eq!(
        gaps.iter().filter(|g| **g > 0.0).count(),
        1,
        "reported once: {gaps:?}"
    );
    assert_eq!(events[before].gap_ms, 1000.0);
    let end = events.last().map(|e| e.end_s).unwrap_or(0.0);
    let duration = audio.len() as f64 / 16000.0 + 1.0;
    assert!(
        (end - duration).abs() <= model().info.chunk_ms() / 1000.0,
        "last event ends at {end}, audio and gap last {duration}"
    );
}

#[test]
fn a_gap_shows_in_jsonl_and_text() {
    let ev = Event {
        kind: hark::stream::EventKind::Final,
        text: "set a timer".into(),
        start_s: 1.2345,
        end_s: 2.5,
        latency_ms: 3.21,
        gap_ms: 250.0,
        speech_end_s: Some(2.1),
        command: None,
        pass: hark::stream::Pass::Ctc,
    };
    let mut out = hark::output::Output::new(Vec::new(), hark::output::Format::Jsonl);
    out.event(&ev, None).expect("write");
    let line = String::from_utf8(out.into_inner()).expect("utf8");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json");
    assert_eq!(v["type"], "final");
    assert_eq!(v["text"], "set a timer");
    assert_eq!(v["start"], 1.235);
    assert_eq!(v["end"], 2.5);
    assert_eq!(v["latency_ms"], 3.21);
    assert_eq!(v["gap_ms"], 250.0);
    let mut out = hark::output::Output::new(Vec::new(), hark::output::Format::Text);
    out.event(&ev, None).expect("write");
    assert_eq!(
        String::from_utf8(out.into_inner()).expect("utf8"),
        "[gap 250 ms] set a timer\n"
    );
}
