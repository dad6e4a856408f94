//! Waveform-input models (`hark.input_kind = waveform`, the SSL conversion
//! of train/experiments/ssl_convert.py): a tiny untrained one written by
//! train/experiments/make_test_waveform_model.py, with the log-probabilities
//! onnxruntime computes for a reference signal. hark must load it, compute
//! the same numbers chunk by chunk (the last chunk zero-padded), stream it
//! the same way in any piece sizes, and describe it in `hark model`.

use hark::backend::Backend;
use hark::model::{Input, Model};
use tract_onnx::pb::ModelProto;

use crate::streaming::{run_model, strip};
use crate::util::{data, run, speechlike, stderr, stdout};

fn tiny() -> std::sync::Arc<Model> {
    Model::load_path(&data("waveform/tiny-wav2vec2-wsm.onnx"), Backend::Cpu)
        .expect("the waveform test model loads")
}

#[test]
fn model_steps_match_onnxruntime_on_the_reference_signal() {
    let model = tiny();
    let info = &model.info;
    assert_eq!(info.input, Input::Waveform);
    assert_eq!(info.frame_dim(), 1);
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data("waveform/reference.json")).expect("reference.json"),
    )
    .expect("reference json");
    let f = |v: &serde_json::Value| v.as_f64().expect("number") as f32;
    let wave: Vec<f32> = r["wave"].as_array().expect("wave").iter().map(f).collect();
    let want: Vec<Vec<f32>> = r["log_probs"]
        .as_array()
        .expect("log_probs")
        .iter()
        .map(|row| row.as_array().expect("row").iter().map(f).collect())
        .collect();

    let chunk = info.chunk_frames;
    let rows_per_chunk = chunk / info.subsampling;
    let vocab = info.tokens.len();
    let mut padded = wave.clone();
    padded.resize(wave.len().div_ceil(chunk) * chunk, 0.0);
    let mut state = model.initial_state();
    let mut lp = vec![0.0; rows_per_chunk * vocab];
    let mut got = Vec::new();
    for c in padded.chunks(chunk) {
        model.step(c, &mut state, &mut lp).expect("step");
        got.extend(lp.chunks(vocab).map(<[f32]>::to_vec));
    }
    assert_eq!(got.len(), want.len(), "output frames");
    let worst = got
        .iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "log-probs differ from onnxruntime by {worst}");
}

#[test]
fn random_piece_sizes_give_the_batch_result() {
    let model = tiny();
    let audio = speechlike(3.0, 16000, 5);
    let whole = strip(run_model(model.clone(), &audio, 16000, None));
    assert!(!whole.is_empty(), "no events at all");
    for seed in 0..3 {
        assert_eq!(
            strip(run_model(model.clone(), &audio, 16000, Some(seed))),
            whole,
            "seed {seed}"
        );
    }
    // Through the resampler too (44.1 kHz input).
    let audio = speechlike(2.0, 44100, 6);
    let whole = strip(run_model(model.clone(), &audio, 44100, None));
    assert_eq!(strip(run_model(model, &audio, 44100, Some(9))), whole);
}

#[test]
fn hark_model_and_transcribe_accept_a_waveform_model() {
    let path = data("waveform/tiny-wav2vec2-wsm.onnx");
    let path = path.to_str().expect("utf8 path");
    let o = run(&["model", path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("input:           waveform, 16000 Hz"), "{out}");
    assert!(out.contains("1280 samples (80 ms) per step"), "{out}");
    let wav = data("e2e/e2e-1-flite-rms.wav");
    let o = run(&[
        "transcribe",
        "--model",
        path,
        "--format",
        "tsv",
        wav.to_str().expect("utf8 path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
}

/// The waveform test model with its metadata edited by `edit`, written to
/// `dir`; `hark model` on it must fail with exit 2 naming `why`.
fn refused_when(edit: impl Fn(&mut ModelProto), why: &str) {
    let bytes = std::fs::read(data("waveform/tiny-wav2vec2-wsm.onnx")).expect("model");
    let (mut proto, _) = hark::model::read_metadata(&bytes).expect("metadata");
    edit(&mut proto);
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("edited.onnx");
    std::fs::write(&p, prost::Message::encode_to_vec(&proto)).expect("write");
    let o = run(&["model", p.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(why), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn set(proto: &mut ModelProto, key: &str, value: &str) {
    for p in proto.metadata_props.iter_mut().filter(|p| p.key == key) {
        p.value = value.into();
    }
}

#[test]
fn bad_waveform_metadata_is_a_clear_error() {
    refused_when(
        |m| m.metadata_props.retain(|p| p.key != "hark.chunk_samples"),
        "missing metadata key `hark.chunk_samples`",
    );
    refused_when(
        |m| set(m, "hark.samples_per_output_frame", "300"),
        "unsupported chunking",
    );
    refused_when(
        |m| set(m, "hark.input_kind", "spectrogram"),
        "input kind `spectrogram` is not supported",
    );
}

#[test]
fn hark_bench_measures_a_waveform_model() {
    let model = data("waveform/tiny-wav2vec2-wsm.onnx");
    let wav = data("e2e/e2e-1-flite-rms.wav");
    let (model, wav) = (
        model.to_str().expect("utf8 path"),
        wav.to_str().expect("utf8 path"),
    );
    let o = run(&["bench", "--model", model, "--format", "json", wav]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json report");
    assert_eq!(r["model"], model);
    assert_eq!(r["chunk_ms"], 80.0);
    // Every chunk of the file and of the silence bench appends after it
    // (the endpoint silence plus one chunk) is run, the last one padded,
    // and timed.
    let audio_ms = r["audio_s"].as_f64().expect("audio_s") * 1000.0;
    let tail_ms = r["endpoint_silence_ms"].as_f64().expect("endpoint silence") + 80.0;
    let chunks = ((audio_ms + tail_ms) / 80.0).ceil() as u64;
    assert_eq!(r["chunk_ms_model"]["count"].as_u64(), Some(chunks), "{r}");
    assert!(r["real_time_factor"].as_f64().expect("rtf") > 0.0);
}
