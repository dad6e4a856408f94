//! The Rust fbank reproduces the training features (contract v1): vectors
//! written by train/test_fbank.py from kaldi-native-fbank.

use hark::frontend::Fbank;

use crate::util::{data, model};

#[test]
fn fbank_matches_training_reference_vectors() {
    let text = std::fs::read_to_string(data("fbank_vectors.json")).expect("vectors file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let wave: Vec<f32> = serde_json::from_value(v["waveform"].clone()).expect("waveform");
    let expected: Vec<Vec<f32>> = serde_json::from_value(v["frames"].clone()).expect("frames");
    let mut fb = Fbank::new(model().info.fbank().expect("an fbank model"));
    let mut got = Vec::new();
    // odd piece sizes: frames must not depend on how samples arrive
    for piece in wave.chunks(137) {
        fb.accept(piece, |f| got.push(f.to_vec()));
    }
    assert_eq!(got.len(), expected.len());
    let mut worst_loud = 0.0f32;
    let mut worst_quiet = 0.0f32;
    for (g, e) in got.iter().zip(&expected) {
        for (a, b) in g.iter().zip(e) {
            let d = (a - b).abs();
            if *b > 5.0 {
                worst_loud = worst_loud.max(d);
            } else {
                worst_quiet = worst_quiet.max(d);
            }
        }
    }
    // same tolerance as train/test_fbank.py: float32 rounding dominates quiet bins
    assert!(worst_loud < 2e-3, "loud bins differ by {worst_loud}");
    assert!(worst_quiet < 2e-2, "quiet bins differ by {worst_quiet}");
}

#[test]
fn digital_silence_gives_the_pad_value() {
    let info = &model().info;
    let mut fb = Fbank::new(info.fbank().expect("an fbank model"));
    let mut frames = 0;
    fb.accept(&vec![0.0; 1600], |f| {
        frames += 1;
        assert!(f.iter().all(|v| (v - info.pad_frame_value).abs() < 1e-4));
    });
    assert_eq!(frames, 8);
}
