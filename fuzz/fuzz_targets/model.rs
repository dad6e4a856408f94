//! The model loader. First byte even: contract metadata: the rest is text,
//! `key=value` lines laid over the bundled model's metadata (a line without
//! `=` removes that key; a first byte of 2 mod 4 starts from no metadata),
//! validated by `ModelInfo::from_metadata`; what passes builds the
//! filterbank and resampler the runtime would build from it and feeds them
//! a little audio. First byte odd: the rest is an ONNX file for `read_info`
//! and, when its metadata passes, `Model::load_bytes` (tract) and a
//! recognizer that runs it on a short clip.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use hark::audio::resample::ToModelRate;
use hark::backend::Backend;
use hark::frontend::Fbank;
use hark::model::{read_info, read_metadata, Model, ModelInfo, BUNDLED_MODEL};
use hark::recognizer::Recognizer;
use hark::stream::StreamConfig;
use libfuzzer_sys::fuzz_target;

fn bundled_meta() -> &'static HashMap<String, String> {
    static META: OnceLock<HashMap<String, String>> = OnceLock::new();
    META.get_or_init(|| read_metadata(BUNDLED_MODEL).expect("bundled model").1)
}

fn metadata(mode: u8, text: &[u8]) {
    let mut meta = if mode & 2 == 0 {
        bundled_meta().clone()
    } else {
        HashMap::new()
    };
    for line in String::from_utf8_lossy(text).lines() {
        match line.split_once('=') {
            Some((k, v)) => meta.insert(k.to_string(), v.to_string()),
            None => meta.remove(line),
        };
    }
    let Ok(info) = ModelInfo::from_metadata(&meta) else {
        return;
    };
    let _ = (
        info.chunk_ms(),
        info.input_shape(),
        info.output_frame_samples(),
    );
    // what stream.rs and recognizer.rs build from the metadata
    let audio: Vec<f32> = (0..2000)
        .map(|i| ((i * 37 % 200) as f32 - 100.0) / 128.0)
        .collect();
    if let Some(cfg) = info.fbank() {
        let mut fbank = Fbank::new(cfg);
        for chunk in audio.chunks(7).chain(audio.chunks(401)) {
            fbank.accept(chunk, |frame| assert_eq!(frame.len(), cfg.num_bins));
        }
    }
    if let Ok(mut rs) = ToModelRate::new(16_000, info.sample_rate_hz()) {
        let _ = rs.process(&audio, |_| Ok(()));
        let _ = rs.finish(|_| Ok(()));
    }
}

fn onnx(bytes: &[u8]) {
    if read_info(bytes, "fuzz.onnx").is_err() {
        return;
    }
    let Ok(model) = Model::load_bytes(bytes, "fuzz.onnx", Backend::Cpu) else {
        return;
    };
    let Ok(mut rec) = Recognizer::new(model, 16_000, StreamConfig::default()) else {
        return;
    };
    let audio = vec![0.01f32; 3_000];
    for chunk in audio.chunks(999) {
        if rec.push(chunk).is_err() {
            return;
        }
    }
    let _ = rec.finish();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        metadata(mode, rest);
    } else {
        onnx(rest);
    }
});
