//! Streaming equals batch: the same audio fed in random piece sizes gives
//! exactly the same events as feeding it whole, at 16 kHz and through the
//! resampler.

use hark::recognizer::Recognizer;
use hark::stream::{Event, StreamConfig};
use rand::{Rng, SeedableRng};

use crate::util::{model, speechlike};

fn run(samples: &[f32], rate: u32, pieces: Option<u64>) -> Vec<Event> {
    let cfg = StreamConfig {
        partials: true,
        ..StreamConfig::default()
    };
    let mut rec = Recognizer::new(model(), rate, cfg).expect("recognizer");
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

fn strip(events: Vec<Event>) -> Vec<(hark::stream::EventKind, String, i64, i64)> {
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
    let audio = speechlike(12.0, 16000, 3);
    let whole = strip(run(&audio, 16000, None));
    for seed in 0..4 {
        assert_eq!(strip(run(&audio, 16000, Some(seed))), whole, "seed {seed}");
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
