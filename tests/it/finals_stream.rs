//! `--finals stream` (issue 37): the converted streaming encoder's log-mel
//! against the Python reference, its output the same however the audio is
//! pushed, and the decoder's final from it through the binary.

use std::sync::{Arc, OnceLock};

use hark::finals::mel::N_MELS;
use hark::finals::stream::StreamEncoder;
use hark::finals::{EncoderMode, FinalsModel};
use hark::stream::{EventKind, Pass, StreamConfig};

use crate::util::{data, model, run, stderr, stdout, wav_samples};

fn stream_model() -> Arc<FinalsModel> {
    static F: OnceLock<Arc<FinalsModel>> = OnceLock::new();
    F.get_or_init(|| {
        FinalsModel::load(None, EncoderMode::Stream).expect("bundled streaming finals model loads")
    })
    .clone()
}

fn vectors() -> serde_json::Value {
    // train/test_whisper_export.py writes and checks it with
    // train/whisper_encoder.py log_mel
    let text = std::fs::read_to_string(data("whisper_mel_vectors.json")).expect("vectors");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn the_streaming_log_mel_matches_the_python_reference() {
    let v = vectors();
    let samples: Vec<f32> = serde_json::from_value(v["samples"].clone()).expect("samples");
    let floor = v["stream_floor"].as_f64().expect("floor") as f32;
    let pad = v["stream_pad_samples"].as_u64().expect("pad") as usize;
    let want: Vec<f32> = serde_json::from_value(v["stream_mel"].clone()).expect("mel");
    let m = stream_model();
    let info = &m.stream.as_ref().expect("streaming encoder").info;
    assert_eq!(info.mel_floor, floor, "the vectors' floor is the model's");
    assert_eq!(info.pad_samples, pad, "the vectors' padding is the model's");
    let mut enc = StreamEncoder::new(m.clone(), 16000 * 5).expect("encoder");
    for piece in samples.chunks(777) {
        enc.accept(piece).expect("accept");
    }
    enc.finish().expect("finish");
    let got = enc.log_mel();
    let frames = want.len() / N_MELS;
    assert_eq!(got.len(), want.len());
    // want is [80, frames], got [frames][80]
    let mut worst = 0.0f32;
    for t in 0..frames {
        for b in 0..N_MELS {
            worst = worst.max((got[t * N_MELS + b] - want[b * frames + t]).abs());
        }
    }
    assert!(worst < 1e-3, "largest difference {worst}");
}

fn encoded(samples: &[f32], piece: usize) -> (Vec<usize>, Vec<f32>) {
    let mut enc = StreamEncoder::new(stream_model(), 16000 * 10).expect("encoder");
    for p in samples.chunks(piece) {
        enc.accept(p).expect("accept");
    }
    let (cross, _) = enc.finish().expect("finish");
    let values = cross
        .try_as_plain_ram()
        .expect("plain")
        .as_slice::<f32>()
        .expect("f32")
        .to_vec();
    (cross.shape().to_vec(), values)
}

#[test]
fn the_streaming_encoder_gives_the_same_states_however_the_audio_is_pushed() {
    let audio = wav_samples("e2e/e2e-4-flite-rms.wav");
    let (shape, whole) = encoded(&audio, audio.len());
    // the audio (4.2 s) and the 1 s padding, 20 ms frames, the count made even
    assert_eq!(shape[3], (audio.len() + 16000) / 160 / 2);
    for piece in [160, 1000, 5120, 7919] {
        let (s, v) = encoded(&audio, piece);
        assert_eq!(s, shape);
        assert!(v == whole, "pushed {piece} samples at a time");
    }
}

#[test]
fn an_utterance_longer_than_the_buffers_is_cut_not_overrun() {
    let audio = wav_samples("e2e/e2e-4-flite-rms.wav");
    let mut enc = StreamEncoder::new(stream_model(), 16000 * 2).expect("encoder");
    let max = enc.max_samples();
    assert!(max >= 32000, "{max}");
    enc.accept(&audio).expect("accept");
    assert_eq!(enc.samples(), audio.len());
    let (cross, seconds) = enc.finish().expect("finish");
    assert_eq!(seconds, audio.len() as f64 / 16000.0);
    // only what the buffers hold was read, padding included
    assert!(
        cross.shape()[3] <= (max + 16000 + 160) / 320,
        "{:?}",
        cross.shape()
    );
}

#[test]
fn stream_finals_are_written_by_the_decoder_on_the_streamed_states() {
    let audio = wav_samples("e2e/e2e-4-flite-rms.wav");
    let cfg = StreamConfig {
        finals: Some(stream_model()),
        ..crate::util::config(&model(), false, true)
    };
    let finals = crate::finals::finals(&audio, cfg);
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(finals[0].1, Pass::WhisperStream);
    let text = finals[0].0.to_lowercase();
    for w in ["quick", "brown", "fox", "lazy", "dog"] {
        assert!(text.contains(w), "{text}");
    }
}

#[test]
fn bench_says_the_stream_finals_do_not_encode_again() {
    let o = run(&["bench", "--finals", "stream", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json report");
    assert_eq!(report["final_pass"], "whisper-stream");
    assert_eq!(report["final_reencode"], false);
    assert_eq!(report["final_pass_ms"]["count"], 1, "{report}");
    let o = run(&["bench", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json report");
    assert_eq!(report["final_reencode"], true);
}

#[test]
fn stream_finals_refuse_phrases_and_overlong_utterances_in_one_line() {
    let sample = data("e2e/e2e-4-flite-rms.wav");
    let sample = sample.to_str().expect("utf8");
    let phrases = data("phrases/home.txt");
    for args in [
        vec![
            "transcribe",
            "--finals",
            "stream",
            "--phrases",
            phrases.to_str().expect("utf8"),
            sample,
        ],
        vec![
            "transcribe",
            "--finals",
            "stream",
            "--max-utterance-ms",
            "60000",
            sample,
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
}

// The streaming encoder's state is its bounded cache and the utterance's
// buffers, sized once: minutes of speech and pauses (an utterance, its
// stream final and a reset every few seconds) leave the thread's live
// allocations where the first minute left them.
#[test]
fn minutes_of_stream_finals_do_not_grow_memory() {
    let mut minute = crate::util::speech_with_pauses();
    minute.extend(crate::util::speechlike(
        60.0 - minute.len() as f64 / 16000.0,
        16000,
        9,
    ));
    let cfg = StreamConfig {
        finals: Some(stream_model()),
        ..crate::util::config(&model(), true, true)
    };
    let mut rec = hark::recognizer::Recognizer::new(model(), 16000, cfg).expect("recognizer");
    let mut finals = 0;
    let mut feed = |rec: &mut hark::recognizer::Recognizer| {
        for piece in minute.chunks(1600) {
            finals += rec
                .push(piece)
                .expect("push")
                .filter(|e| e.kind == EventKind::Final && e.pass == Pass::WhisperStream)
                .count();
        }
    };
    feed(&mut rec); // warm-up: tract's first allocations, the buffers
    let base = crate::live();
    let mut after = Vec::new();
    for _ in 0..3 {
        feed(&mut rec);
        after.push(crate::live());
    }
    assert!(finals >= 4 * 4, "{finals} stream finals in 4 minutes");
    for (i, (allocs, bytes)) in after.iter().enumerate() {
        assert!(
            allocs - base.0 <= 4 && bytes - base.1 <= 64 * 1024,
            "minute {}: live allocations {} -> {allocs}, bytes {} -> {bytes}",
            i + 2,
            base.0,
            base.1
        );
    }
}

#[test]
fn a_missing_truncated_or_foreign_streaming_encoder_is_exit_2_in_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let sample = data("e2e/e2e-4-flite-rms.wav");
    let shipped = crate::util::repo().join("models/whisper-tiny.en");
    std::fs::copy(
        shipped.join("decoder.onnx"),
        dir.path().join("decoder.onnx"),
    )
    .expect("copy");
    let check = |needle: &str| {
        let o = crate::util::hark()
            .args(["transcribe", "--finals", "stream", "--finals-model"])
            .arg(dir.path())
            .arg(&sample)
            .output()
            .expect("run");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
        assert_eq!(stdout(&o), "");
    };
    check("cannot read");
    let stream = std::fs::read(shipped.join("stream.onnx")).expect("stream.onnx");
    std::fs::write(dir.path().join("stream.onnx"), &stream[..stream.len() / 3]).expect("write");
    check("stream.onnx");
    // Whisper's own encoder has no streaming contract
    std::fs::copy(shipped.join("encoder.onnx"), dir.path().join("stream.onnx")).expect("copy");
    check("hark.stream.contract_version");
}
