//! The recognizer's hot path, one piece at a time, at the bundled model's
//! real shapes (one 320 ms chunk unless said otherwise):
//! - ring: the capture thread pushing one ALSA period and the recognizer
//!   popping it;
//! - fbank: a chunk's worth of 16 kHz samples into log-mel frames;
//! - model step: one chunk through the tract plan, state carried;
//! - ctc: decoding the chunks' log-probabilities, greedy and with the
//!   bundled character LM's beam search (the default).
//!
//! `cargo bench` (release settings, see `[profile.bench]`). The whole
//! recognizer on real audio is `hark bench`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

use hark::audio::ring::{Ring, RingItem, RingStats};
use hark::decode::beam::BeamSearch;
use hark::decode::ctc::CtcState;
use hark::decode::lm::CharLm;
use hark::frontend::Fbank;
use hark::model::Model;

/// A period as ALSA hands it over at 16 kHz mono (20 ms).
const PERIOD: usize = 320;

fn speechlike(n: usize) -> Vec<f32> {
    // deterministic, speech-band, with loudness changes: no RNG crate needed
    (0..n)
        .map(|i| {
            let t = i as f32 / 16000.0;
            let env = (t * 3.0).sin().abs();
            env * (0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 1370.0 * t).sin())
        })
        .collect()
}

fn ring(c: &mut Criterion) {
    let mut ring = Ring::new();
    let stats = RingStats::default();
    let (mut writer, mut reader) = ring.split(&stats);
    let period: Vec<i16> = speechlike(PERIOD)
        .iter()
        .map(|s| (s * 32767.0) as i16)
        .collect();
    let mut buf = vec![0i16; PERIOD];
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(PERIOD as u64));
    g.bench_function("push+pop one 20 ms period", |b| {
        b.iter(|| {
            assert!(writer.push(black_box(&period)));
            let mut got = 0;
            let popped = reader.read(&mut buf, 1, |item| {
                if let RingItem::Samples(s) = item {
                    got += s.len();
                }
                Ok(())
            });
            assert_eq!(popped.ok(), Some(PERIOD));
            black_box(got)
        })
    });
    g.finish();
}

fn bundled() -> std::sync::Arc<Model> {
    Model::load_bundled().expect("the bundled model loads")
}

/// 4 s of speech-like audio as the model's feature chunks.
fn feature_chunks(model: &Model) -> Vec<Vec<f32>> {
    let info = &model.info;
    let mut fb = Fbank::new(info.fbank().expect("the bundled model takes fbank frames"));
    let mut feats = Vec::new();
    fb.accept(&speechlike(16000 * 4), |f| feats.extend_from_slice(f));
    feats
        .chunks_exact(info.chunk_frames * info.frame_dim())
        .map(<[f32]>::to_vec)
        .collect()
}

fn fbank(c: &mut Criterion) {
    let model = bundled();
    let cfg = model
        .info
        .fbank()
        .expect("the bundled model takes fbank frames");
    let samples = speechlike(model.info.chunk_frames * cfg.frame_shift_samples);
    let mut fb = Fbank::new(cfg);
    // steady state: the window overlap of the previous chunk is pending
    fb.accept(&speechlike(cfg.frame_length_samples), |_| {});
    let mut g = c.benchmark_group("fbank");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("one chunk of samples", |b| {
        b.iter(|| {
            let mut frames = 0;
            fb.accept(black_box(&samples), |f| {
                black_box(f);
                frames += 1;
            });
            frames
        })
    });
    g.finish();
}

fn model_step(c: &mut Criterion) {
    let model = bundled();
    let info = &model.info;
    let chunks = feature_chunks(&model);
    let out_frames = info.chunk_frames / info.subsampling;
    let mut log_probs = vec![0.0f32; out_frames * info.tokens.len()];
    let mut state = model.initial_state();
    let mut k = 0;
    let mut g = c.benchmark_group("model");
    g.bench_function(
        format!("step ({} ms chunk, state carried)", info.chunk_ms()),
        |b| {
            b.iter(|| {
                model
                    .step(
                        black_box(&chunks[k % chunks.len()]),
                        &mut state,
                        &mut log_probs,
                    )
                    .expect("step");
                k += 1;
                black_box(log_probs[0])
            })
        },
    );
    g.finish();
}

fn ctc(c: &mut Criterion) {
    let model = bundled();
    let info = &model.info;
    let vocab = info.tokens.len();
    let out_frames = info.chunk_frames / info.subsampling;
    // log-probs of a real chunk sequence, so the argmax paths are realistic
    let mut state = model.initial_state();
    let mut lp = vec![0.0f32; out_frames * vocab];
    let mut all = Vec::new();
    for chunk in feature_chunks(&model) {
        model.step(&chunk, &mut state, &mut lp).expect("step");
        all.push(lp.clone());
    }
    let mut g = c.benchmark_group("ctc");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("greedy decode, 4 s of chunks (throughput in chunks)", |b| {
        b.iter_batched_ref(
            || CtcState::new(info.blank_id, 512),
            |dec| {
                for chunk in &all {
                    black_box(dec.accept(black_box(chunk), vocab));
                }
            },
            BatchSize::SmallInput,
        )
    });
    let lm = std::sync::Arc::new(CharLm::bundled().expect("bundled LM"));
    let tuning = lm.tuning;
    g.bench_function(
        "LM beam search (the bundled LM's beam), 4 s of chunks (throughput in chunks)",
        |b| {
            b.iter_batched_ref(
                || {
                    BeamSearch::new(lm.clone(), tuning, &info.tokens, info.blank_id, 512)
                        .expect("beam")
                },
                |dec| {
                    for (i, chunk) in all.iter().enumerate() {
                        dec.accept(black_box(chunk), vocab, (i * out_frames) as u64);
                    }
                    dec.finalize();
                    black_box(dec.best().len())
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, ring, fbank, model_step, ctc);
criterion_main!(benches);
