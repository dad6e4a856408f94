//! The finals pass: at each endpoint the utterance is read once more by
//! Whisper tiny.en (encoder, then greedy decoding with its attention
//! decoder) and that text is the final; the streaming CTC pass keeps
//! printing the partials. The model is two ONNX files written by
//! `train/whisper_export.py` (docs/model-contract.md, "The finals model"),
//! embedded in the binary or read from `--finals-model DIR`.
//!
//! `FinalsModel` is loaded once and shared read-only (`Arc`); each stream
//! owns a `FinalsPass`, whose buffers (the utterance's log-mel, the decoder's
//! key/value cache, the tokens) are sized once from the longest window and
//! the token bound. Runs on the recognizer thread, at endpoints only.

pub mod grammar;
pub mod mel;
pub mod stream;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::error::{HarkError, Result};
use mel::{WhisperMel, HOP_SAMPLES, N_MELS, SAMPLE_RATE_HZ};

pub const FINALS_CONTRACT_VERSION: u32 = 2;
/// The decoder's output projection, stored as the int8 embedding table
/// ([vocab, width]) that the runtime looks tokens up in, in place
/// (train/whisper_export.py `OUT_PROJ`).
const OUT_PROJ: &str = "out_proj";

/// The bundled finals model: Whisper tiny.en, int8 weights (MIT licence).
pub static BUNDLED_ENCODER: &[u8] = include_bytes!("../../models/whisper-tiny.en/encoder.onnx");
pub static BUNDLED_DECODER: &[u8] = include_bytes!("../../models/whisper-tiny.en/decoder.onnx");
/// The converted streaming encoder (train/experiments/stream_export.py),
/// read by `--finals stream` instead of `encoder.onnx`.
pub static BUNDLED_STREAM: &[u8] = include_bytes!("../../models/whisper-tiny.en/stream.onnx");

/// How the decoder gets the utterance's encoder states at an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderMode {
    /// Whisper's encoder reads the utterance again (`encoder.onnx`).
    Reencode,
    /// The converted encoder computed them chunk by chunk as the audio
    /// came (`stream.onnx`, `stream::StreamEncoder`).
    Stream,
}

impl EncoderMode {
    /// The encoder's file in a finals model directory.
    pub fn file(self) -> &'static str {
        match self {
            EncoderMode::Reencode => "encoder.onnx",
            EncoderMode::Stream => "stream.onnx",
        }
    }

    /// The encoder's bytes embedded in the binary.
    fn bundled(self) -> &'static [u8] {
        match self {
            EncoderMode::Reencode => BUNDLED_ENCODER,
            EncoderMode::Stream => BUNDLED_STREAM,
        }
    }
}
pub const BUNDLED_NAME: &str = "bundled:whisper-tiny.en";

/// Audio appended to an utterance before the encoder, in samples: chosen
/// on the dev set (results/whisper-finals/notes.md).
pub const PAD_SAMPLES: usize = SAMPLE_RATE_HZ as usize;
/// The token bound: at most this many plus `TOKENS_PER_SECOND` per second
/// of audio.
pub const BASE_TOKENS: usize = 5;
pub const TOKENS_PER_SECOND: f64 = 6.0;
/// No text when the no-speech probability after the start token exceeds
/// this and the text's mean log-probability is below `LOGPROB_THRESHOLD`
/// (faster-whisper's defaults).
pub const NO_SPEECH_THRESHOLD: f32 = 0.6;
pub const LOGPROB_THRESHOLD: f32 = -1.0;
/// The token bound for `seconds` of audio.
fn token_limit(seconds: f64) -> usize {
    BASE_TOKENS + (TOKENS_PER_SECOND * seconds) as usize
}

/// Decoder positions one window can use: the prompt and the token bound
/// of the longest window (within the model's positions).
fn max_positions(info: &FinalsInfo) -> usize {
    let longest = (info.window_samples() - PAD_SAMPLES) as f64 / SAMPLE_RATE_HZ as f64;
    (2 + token_limit(longest)).min(info.max_tokens)
}

/// How far back from the window's limit a long utterance may be split.
const SPLIT_SEARCH_SAMPLES: usize = 5 * SAMPLE_RATE_HZ as usize;
/// The quietest stretch of this length is where a long utterance is split.
const SPLIT_WINDOW_SAMPLES: usize = SAMPLE_RATE_HZ as usize / 10;

/// What the decoder file declares (`hark.finals.*` metadata).
#[derive(Clone, Debug)]
pub struct FinalsInfo {
    pub name: String,
    pub weights: String,
    pub layers: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub max_tokens: usize,
    pub max_mel_frames: usize,
    pub vocab_size: usize,
    pub sot: u32,
    pub eot: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    pub no_speech: u32,
}

impl FinalsInfo {
    /// The embedding width.
    pub fn width(&self) -> usize {
        self.heads * self.head_dim
    }
    /// Samples of one window of the encoder (30 s for Whisper).
    pub fn window_samples(&self) -> usize {
        self.max_mel_frames * HOP_SAMPLES
    }
}

pub struct FinalsModel {
    pub info: FinalsInfo,
    pub source: String,
    /// Bytes of the two files.
    pub file_bytes: usize,
    /// Whisper's encoder (`EncoderMode::Reencode`), or the streaming one.
    encoder: Option<Box<dyn Runnable>>,
    pub stream: Option<stream::StreamModel>,
    pub mode: EncoderMode,
    decoder: Box<dyn Runnable>,
    /// The embedding table, int8, [vocab, width], with one scale per
    /// token: for the bundled model, the bytes inside the binary, read in
    /// place (a lookup faults in one page).
    embed_q: Cow<'static, [u8]>,
    embed_scale: Vec<f32>,
    /// Each token's bytes (byte-level BPE undone); empty for special tokens.
    token_bytes: Vec<Vec<u8>>,
    /// Tokens never emitted.
    suppress: Vec<bool>,
    /// Tokens not emitted as the first token of a text.
    suppress_begin: Vec<u32>,
}

impl std::fmt::Debug for FinalsModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalsModel")
            .field("source", &self.source)
            .field("info", &self.info)
            .finish()
    }
}

struct Meta<'a>(&'a HashMap<String, String>, &'a str);

impl Meta<'_> {
    fn get(&self, k: &str) -> Result<&str> {
        self.0
            .get(k)
            .map(|s| s.as_str())
            .ok_or_else(|| HarkError::Model(format!("{}: missing metadata key `{k}`", self.1)))
    }
    fn parse<T: std::str::FromStr>(&self, k: &str) -> Result<T> {
        let v = self.get(k)?;
        v.trim().parse().map_err(|_| {
            HarkError::Model(format!(
                "{}: metadata key `{k}`: cannot parse `{v}`",
                self.1
            ))
        })
    }
    fn json<T: serde::de::DeserializeOwned>(&self, k: &str) -> Result<T> {
        serde_json::from_str(self.get(k)?)
            .map_err(|e| HarkError::Model(format!("{}: metadata key `{k}`: {e}", self.1)))
    }
}

fn decode_proto(bytes: &[u8], source: &str) -> Result<(ModelProto, HashMap<String, String>)> {
    let (proto, meta) = crate::model::read_metadata(bytes)
        .map_err(|e| HarkError::Model(format!("{source}: {}", inner(e))))?;
    let m = Meta(&meta, source);
    let version: u32 = m.parse("hark.finals.contract_version")?;
    if version != FINALS_CONTRACT_VERSION {
        return Err(HarkError::Model(format!(
            "{source}: finals contract version {version}, this hark reads version {FINALS_CONTRACT_VERSION}"
        )));
    }
    Ok((proto, meta))
}

fn inner(e: HarkError) -> String {
    match e {
        HarkError::Model(m) => m,
        other => other.to_string(),
    }
}

/// GPT-2's byte-level alphabet: the character each byte is written as.
fn byte_alphabet() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for (b, c) in out.iter_mut().enumerate() {
        let b8 = b as u32;
        let printable = (0x21..=0x7e).contains(&b8)
            || (0xa1..=0xac).contains(&b8)
            || (0xae..=0xff).contains(&b8);
        *c = if printable {
            char::from_u32(b8).unwrap_or('\0')
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\0');
            n += 1;
            c
        };
    }
    out
}

/// Token strings (byte-level BPE) to bytes; special tokens (`<|...|>`)
/// to nothing.
fn token_bytes(vocab: &[String]) -> Vec<Vec<u8>> {
    let alphabet = byte_alphabet();
    let back: HashMap<char, u8> = alphabet
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect();
    vocab
        .iter()
        .map(|t| {
            if t.starts_with("<|") && t.ends_with("|>") {
                return Vec::new();
            }
            t.chars().filter_map(|c| back.get(&c).copied()).collect()
        })
        .collect()
}

/// Replace each int8 weight that the graph rebuilds as
/// `Mul(Cast(W.q), W.scale)` (train/whisper_export.py `store_weights`) by the
/// float32 weight itself, so that tract sees a constant: it does not fold
/// that pair itself, and would dequantize every weight at every step.
fn fold_int8_weights(proto: &mut ModelProto, source: &str) -> Result<()> {
    use tract_onnx::pb::TensorProto;
    const FLOAT: i32 = 1;
    const INT8: i32 = 3;
    let bad = |what: String| HarkError::Model(format!("{source}: {what}"));
    let Some(graph) = proto.graph.as_mut() else {
        return Err(bad("no graph".into()));
    };
    let mut inits: HashMap<String, TensorProto> = graph
        .initializer
        .drain(..)
        .map(|t| (t.name.clone(), t))
        .collect();
    let casts: HashMap<String, String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Cast" && n.input.len() == 1 && n.output.len() == 1)
        .filter(|n| inits.get(&n.input[0]).is_some_and(|t| t.data_type == INT8))
        .map(|n| (n.output[0].clone(), n.input[0].clone()))
        .collect();
    let mut folded = std::collections::HashSet::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in graph.node.drain(..) {
        let pair = (node.op_type == "Mul" && node.input.len() == 2 && node.output.len() == 1)
            .then(|| {
                casts
                    .get(&node.input[0])
                    .map(|q| (q.clone(), node.input[1].clone()))
            })
            .flatten();
        let Some((q_name, s_name)) = pair else {
            keep.push(node);
            continue;
        };
        let (Some(q), Some(s)) = (inits.get(&q_name), inits.get(&s_name)) else {
            return Err(bad(format!("int8 weight `{q_name}` without its scale")));
        };
        let dims: Vec<usize> = q.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n: usize = dims.iter().product();
        if dims.len() != 2
            || q.raw_data.len() != n
            || s.data_type != FLOAT
            || s.raw_data.len() % 4 != 0
        {
            return Err(bad(format!("int8 weight `{q_name}` is malformed")));
        }
        let scales: Vec<f32> = s
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // one scale per row ([rows, 1]) or per column ([1, cols])
        let per_row = s.dims == [dims[0] as i64, 1] && scales.len() == dims[0];
        let per_col = s.dims == [1, dims[1] as i64] && scales.len() == dims[1];
        if !per_row && !per_col {
            return Err(bad(format!(
                "int8 weight `{q_name}`: scales of shape {:?}",
                s.dims
            )));
        }
        let mut raw = Vec::with_capacity(4 * n);
        for (i, &b) in q.raw_data.iter().enumerate() {
            let scale = if per_row {
                scales[i / dims[1]]
            } else {
                scales[i % dims[1]]
            };
            raw.extend_from_slice(&((b as i8) as f32 * scale).to_le_bytes());
        }
        let w = TensorProto {
            name: node.output[0].clone(),
            dims: q.dims.clone(),
            data_type: FLOAT,
            raw_data: raw,
            ..Default::default()
        };
        folded.insert(q_name);
        folded.insert(s_name);
        inits.insert(w.name.clone(), w);
    }
    // the Cast nodes whose outputs were all folded go too
    let used: std::collections::HashSet<String> =
        keep.iter().flat_map(|n| n.input.iter().cloned()).collect();
    keep.retain(|n| {
        !(n.op_type == "Cast" && casts.contains_key(&n.output[0]) && !used.contains(&n.output[0]))
    });
    graph.node = keep;
    let used: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    graph.initializer = inits
        .into_values()
        .filter(|t| !folded.contains(&t.name) || used.contains(&t.name))
        .collect();
    Ok(())
}

/// An encoder's metadata `m` (of file `name`) says Whisper's 80-bin
/// log-mel at 16 kHz, the features src/finals/mel.rs computes.
fn check_features(m: &Meta<'_>, name: &str) -> Result<()> {
    if m.get("hark.finals.n_mels")? != N_MELS.to_string()
        || m.get("hark.finals.sample_rate_hz")? != SAMPLE_RATE_HZ.to_string()
        || m.get("hark.finals.hop_samples")? != HOP_SAMPLES.to_string()
        || m.get("hark.finals.n_fft")? != mel::N_FFT.to_string()
    {
        return Err(HarkError::Model(format!(
            "{name}: features other than Whisper's 80-bin log-mel at 16 kHz"
        )));
    }
    Ok(())
}

fn initializer<'a>(proto: &'a ModelProto, name: &str) -> Option<&'a tract_onnx::pb::TensorProto> {
    proto
        .graph
        .as_ref()?
        .initializer
        .iter()
        .find(|t| t.name == name)
}

/// A runnable plan of one part. The embedded bytes a part came from (if
/// any) are handed back first: the parsed copy holds the weights now.
fn plan(
    proto: ModelProto,
    name: &str,
    embedded: Option<&'static [u8]>,
) -> Result<Box<dyn Runnable>> {
    let ctx = |e: TractError| HarkError::Model(format!("{name}: {e:#}"));
    if let Some(bytes) = embedded {
        crate::mem::release_embedded(bytes);
    }
    let model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .map_err(ctx)?;
    drop(proto);
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(ctx)?;
    Ok(Box::new(plan))
}

/// The length-delimited fields of one protobuf message, as (field number,
/// bytes); other fields are skipped. None ends the walk early on bytes that
/// are not a message.
fn length_delimited(mut buf: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    std::iter::from_fn(move || loop {
        if buf.is_empty() {
            return None;
        }
        let (tag, wire) = decode_key(&mut buf).ok()?;
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
            }
            WireType::SixtyFourBit => buf = buf.get(8..)?,
            WireType::ThirtyTwoBit => buf = buf.get(4..)?,
            WireType::LengthDelimited => {
                let n = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let value = buf.get(..n)?;
                buf = buf.get(n..)?;
                return Some((tag, value));
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    })
}

/// Where the `raw_data` of initializer `name` lies inside the ONNX file
/// `model` (ModelProto.graph = 7, GraphProto.initializer = 5,
/// TensorProto.name = 8, TensorProto.raw_data = 9), so that a weight can be
/// read in place rather than copied.
fn raw_initializer<'a>(model: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let graph = length_delimited(model).find(|&(t, _)| t == 7)?.1;
    length_delimited(graph)
        .filter(|&(t, _)| t == 5)
        .find_map(|(_, tensor)| {
            let (mut named, mut raw) = (false, None);
            for (t, value) in length_delimited(tensor) {
                match t {
                    8 => named = value == name.as_bytes(),
                    9 => raw = Some(value),
                    _ => {}
                }
            }
            raw.filter(|_| named)
        })
}

impl FinalsModel {
    /// The bundled model, or the two files in `dir`: the decoder and the
    /// encoder `mode` reads with.
    pub fn load(dir: Option<&Path>, mode: EncoderMode) -> Result<Arc<FinalsModel>> {
        match dir {
            None => Self::load_bytes(mode.bundled(), BUNDLED_DECODER, BUNDLED_NAME, mode),
            Some(d) => {
                let read = |name: &str| {
                    let p = d.join(name);
                    std::fs::read(&p).map_err(|e| {
                        HarkError::Model(format!("finals model: cannot read {}: {e}", p.display()))
                    })
                };
                let (enc, dec) = (read(mode.file())?, read("decoder.onnx")?);
                Self::load_bytes(&enc, &dec, &d.display().to_string(), mode)
            }
        }
    }

    /// The model from the bytes of its decoder and of the encoder `mode`
    /// reads with (`encoder.onnx` or `stream.onnx`).
    pub fn load_bytes(
        encoder: &[u8],
        decoder: &[u8],
        source: &str,
        mode: EncoderMode,
    ) -> Result<Arc<FinalsModel>> {
        let enc_name = format!("{source}/{}", mode.file());
        let dec_name = format!("{source}/decoder.onnx");
        let bundled =
            std::ptr::eq(encoder, mode.bundled()) && std::ptr::eq(decoder, BUNDLED_DECODER);
        // One file at a time, each file's parsed copy dropped before tract
        // optimizes it: the peak is one part's weights twice, not four times.
        let (mut dec_proto, dec_meta) = decode_proto(decoder, &dec_name)?;
        let m = Meta(&dec_meta, &dec_name);
        let info = FinalsInfo {
            name: m.get("hark.finals.model_name")?.to_string(),
            weights: m.get("hark.finals.weights")?.to_string(),
            layers: m.parse("hark.finals.layers")?,
            heads: m.parse("hark.finals.heads")?,
            head_dim: m.parse("hark.finals.head_dim")?,
            max_tokens: m.parse("hark.finals.max_tokens")?,
            max_mel_frames: m.parse("hark.finals.max_mel_frames")?,
            vocab_size: m.parse("hark.finals.vocab_size")?,
            sot: m.parse("hark.finals.sot")?,
            eot: m.parse("hark.finals.eot")?,
            no_timestamps: m.parse("hark.finals.no_timestamps")?,
            timestamp_begin: m.parse("hark.finals.timestamp_begin")?,
            no_speech: m.parse("hark.finals.no_speech")?,
        };
        let vocab: Vec<String> = m.json("hark.finals.vocabulary")?;
        let suppress_ids: Vec<u32> = m.json("hark.finals.suppress")?;
        let suppress_begin: Vec<u32> = m.json("hark.finals.suppress_begin")?;
        let v = info.vocab_size;
        let sane = vocab.len() == v
            && [
                info.sot,
                info.eot,
                info.no_timestamps,
                info.timestamp_begin,
                info.no_speech,
            ]
            .iter()
            .all(|&t| (t as usize) < v)
            && info.eot < info.sot
            && info.sot < info.timestamp_begin
            && suppress_ids
                .iter()
                .chain(&suppress_begin)
                .all(|&t| (t as usize) < v)
            && (1..=64).contains(&info.layers)
            && (1..=64).contains(&info.heads)
            && (1..=1024).contains(&info.head_dim)
            && (2..=4096).contains(&info.max_tokens)
            && (2..=30_000).contains(&info.max_mel_frames);
        if !sane {
            return Err(HarkError::Model(format!(
                "{dec_name}: inconsistent finals metadata: {info:?}"
            )));
        }
        if info.weights != "int8" {
            return Err(HarkError::Model(format!(
                "{dec_name}: weights `{}` (this hark runs int8 finals models: train/whisper_export.py --weights int8)",
                info.weights
            )));
        }
        let embed_scale = Self::embedding_scales(&dec_proto, &info, &dec_name)?;
        let table = raw_initializer(decoder, &format!("{OUT_PROJ}.q"))
            .filter(|t| t.len() == v * info.width())
            .ok_or_else(|| {
                HarkError::Model(format!("{dec_name}: embedding table not found in place"))
            })?;
        let embed_q = if bundled {
            // the same bytes, borrowed for the life of the program
            let at = table.as_ptr() as usize - decoder.as_ptr() as usize;
            let table = &BUNDLED_DECODER[at..at + table.len()];
            crate::mem::read_randomly(table);
            Cow::Borrowed(table)
        } else {
            Cow::Owned(table.to_vec())
        };
        fold_int8_weights(&mut dec_proto, &dec_name)?;
        let decoder_plan = plan(dec_proto, &dec_name, bundled.then_some(BUNDLED_DECODER))?;
        crate::mem::log_resident("finals model: decoder plan ready");

        let (encoder_plan, stream) = match mode {
            EncoderMode::Reencode => (
                Some(Self::load_encoder(encoder, &enc_name, &m, source, bundled)?),
                None,
            ),
            EncoderMode::Stream => {
                let s = stream::StreamModel::load(
                    encoder,
                    &enc_name,
                    &info,
                    bundled.then_some(BUNDLED_STREAM),
                )?;
                (None, Some(s))
            }
        };
        crate::mem::log_resident("finals model: plans ready");

        let mut suppress = vec![false; v];
        for &t in &suppress_ids {
            suppress[t as usize] = true;
        }
        // SOT, the language and task tokens, no-speech, no-timestamps: never text
        for s in &mut suppress[info.eot as usize + 1..info.timestamp_begin as usize] {
            *s = true;
        }
        Ok(Arc::new(FinalsModel {
            source: source.to_string(),
            file_bytes: encoder.len() + decoder.len(),
            encoder: encoder_plan,
            stream,
            mode,
            decoder: decoder_plan,
            embed_q,
            embed_scale,
            token_bytes: token_bytes(&vocab),
            suppress,
            suppress_begin,
            info,
        }))
    }

    /// Whisper's encoder, checked against the decoder's metadata `m`.
    fn load_encoder(
        encoder: &[u8],
        enc_name: &str,
        m: &Meta<'_>,
        source: &str,
        bundled: bool,
    ) -> Result<Box<dyn Runnable>> {
        let (mut enc_proto, enc_meta) = decode_proto(encoder, enc_name)?;
        let em = Meta(&enc_meta, enc_name);
        for key in ["layers", "heads", "head_dim", "max_mel_frames"] {
            let k = format!("hark.finals.{key}");
            if em.get(&k)? != m.get(&k)? {
                return Err(HarkError::Model(format!(
                    "{source}: encoder and decoder disagree on `{k}`"
                )));
            }
        }
        check_features(&em, enc_name)?;
        fold_int8_weights(&mut enc_proto, enc_name)?;
        plan(enc_proto, enc_name, bundled.then_some(BUNDLED_ENCODER))
    }

    /// The per-token scales of the embedding table, after checking the
    /// table's shape ([vocab, width]) in the parsed decoder.
    fn embedding_scales(proto: &ModelProto, info: &FinalsInfo, name: &str) -> Result<Vec<f32>> {
        let bad = |what: &str| HarkError::Model(format!("{name}: {what}"));
        let q = initializer(proto, &format!("{OUT_PROJ}.q"))
            .ok_or_else(|| bad("no int8 embedding table (`out_proj.q`)"))?;
        let s = initializer(proto, &format!("{OUT_PROJ}.scale"))
            .ok_or_else(|| bad("no embedding scales (`out_proj.scale`)"))?;
        let (w, v) = (info.width(), info.vocab_size);
        if q.dims != [v as i64, w as i64] || q.raw_data.len() != w * v {
            return Err(bad("embedding table of the wrong shape"));
        }
        if s.dims != [1, v as i64] || s.raw_data.len() != 4 * v {
            return Err(bad("embedding scales of the wrong shape"));
        }
        Ok(s.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The UTF-8 text of `tokens` (text tokens; special ones write nothing).
    pub fn detokenize(&self, tokens: &[u32], out: &mut Vec<u8>) {
        for &t in tokens {
            if let Some(b) = self.token_bytes.get(t as usize) {
                out.extend_from_slice(b);
            }
        }
    }
}

/// Where a long utterance is cut into windows the encoder takes: cut
/// points (sample offsets, increasing, exclusive of 0 and `len`), each at the
/// quietest `SPLIT_WINDOW_SAMPLES` within `SPLIT_SEARCH_SAMPLES` before the
/// window's limit. The pieces between them cover `len` with nothing
/// dropped or read twice.
pub fn split_points(samples: &[f32], max_piece: usize, out: &mut Vec<usize>) {
    out.clear();
    let mut start = 0;
    let step = SPLIT_WINDOW_SAMPLES / 2;
    while samples.len() - start > max_piece {
        let limit = start + max_piece;
        let lo = limit.saturating_sub(SPLIT_SEARCH_SAMPLES).max(start + step);
        let mut best = (f32::INFINITY, limit);
        let mut at = lo;
        while at + SPLIT_WINDOW_SAMPLES <= limit {
            let e: f32 = samples[at..at + SPLIT_WINDOW_SAMPLES]
                .iter()
                .map(|x| x * x)
                .sum();
            if e < best.0 {
                best = (e, at + SPLIT_WINDOW_SAMPLES / 2);
            }
            at += step;
        }
        out.push(best.1);
        start = best.1;
    }
}

/// The outcome of decoding one utterance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalText {
    pub text: String,
    /// Text tokens decoded (after any cut), over all windows.
    pub tokens: usize,
    /// Whether a window hit the token bound, or a repetition was cut.
    pub bounded: bool,
    pub repeat_cut: bool,
    /// Windows the no-speech rule emptied.
    pub no_speech: usize,
}

/// One stream's finals state: buffers sized once from the longest window.
pub struct FinalsPass {
    model: Arc<FinalsModel>,
    mel: WhisperMel,
    mel_buf: Vec<f32>,
    /// The self-attention keys and values so far, [L, 2, H, slots, Dh]:
    /// slots for the longest window's token bound.
    cache: Vec<f32>,
    slots: usize,
    tokens: Vec<u32>,
    /// Each greedy token's log-probability, and EOT's at each step.
    token_logprobs: Vec<f64>,
    eot_logprobs: Vec<f64>,
    logits: Vec<f32>,
    embedding: Vec<f32>,
    bytes: Vec<u8>,
    cuts: Vec<usize>,
    /// The phrase search's hypotheses (`command`): allocated on its first
    /// use, then reused.
    beam: Option<BeamBuffers>,
}

/// One hypothesis of the phrase search: its score (log-likelihood so
/// far), automaton state, last token, whether that was punctuation, and
/// its tokens (in `BeamBuffers::tokens`).
#[derive(Clone, Copy, Debug)]
struct Hyp {
    score: f64,
    state: u32,
    last: u32,
    punct: bool,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    score: f64,
    parent: usize,
    token: u32,
    state: u32,
    punct: bool,
}

/// The phrase search's buffers, sized once for `width` hypotheses: a
/// key/value cache and the tokens of each, twice (the next step's
/// hypotheses are written beside the current ones, then swapped).
struct BeamBuffers {
    width: usize,
    caches: Vec<Vec<f32>>,
    next_caches: Vec<Vec<f32>>,
    tokens: Vec<Vec<u32>>,
    next_tokens: Vec<Vec<u32>>,
    live: Vec<Hyp>,
    next_live: Vec<Hyp>,
    cands: Vec<Cand>,
    best: Vec<u32>,
}

impl BeamBuffers {
    fn new(width: usize, cache_len: usize, slots: usize) -> Self {
        let caches = || (0..width).map(|_| vec![0.0; cache_len]).collect();
        let tokens = || (0..width).map(|_| Vec::with_capacity(slots)).collect();
        BeamBuffers {
            width,
            caches: caches(),
            next_caches: caches(),
            tokens: tokens(),
            next_tokens: tokens(),
            live: Vec::with_capacity(width),
            next_live: Vec::with_capacity(width),
            cands: Vec::with_capacity(width * (width + 1)),
            best: Vec::with_capacity(slots),
        }
    }
}

/// A command read by the decoder (`FinalsPass::command`).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandFinal {
    /// The best complete phrase's words (lowercase, no punctuation), or
    /// None when the search found no complete phrase.
    pub words: Option<String>,
    /// exp(phrase - free), per token, at most 1 (0 with no phrase).
    pub confidence: f64,
    /// The free greedy final: what the decoder heard without the phrases.
    pub heard: String,
}

/// What a greedy decode of one window found.
struct Greedy {
    /// Log-probability of every choice made, EOT included.
    total: f64,
    /// Log-probability of the tokens kept (a repeat cut off and EOT not
    /// counted).
    kept: f64,
    /// Log-probability of EOT right after the kept tokens (None when the
    /// token bound stopped the decoder there).
    end: Option<f64>,
    hit_bound: bool,
    repeat_cut: bool,
}

impl FinalsPass {
    pub fn new(model: Arc<FinalsModel>) -> Result<Self> {
        let i = &model.info;
        let slots = max_positions(i);
        let cache_len = i.layers * 2 * i.heads * slots * i.head_dim;
        Ok(FinalsPass {
            mel: WhisperMel::new(),
            mel_buf: vec![0.0; N_MELS * i.max_mel_frames],
            cache: vec![0.0; cache_len],
            slots,
            tokens: Vec::with_capacity(slots),
            token_logprobs: Vec::with_capacity(slots),
            eot_logprobs: Vec::with_capacity(slots),
            logits: vec![0.0; i.vocab_size],
            embedding: vec![0.0; i.width()],
            bytes: Vec::with_capacity(4 * slots),
            cuts: Vec::with_capacity(64),
            beam: None,
            model,
        })
    }

    pub fn model(&self) -> &Arc<FinalsModel> {
        &self.model
    }

    /// Transcribe one utterance (16 kHz samples): split into windows the
    /// encoder takes, each padded with silence, encoded and decoded.
    pub fn transcribe(&mut self, samples: &[f32]) -> Result<FinalText> {
        let max_piece = self.model.info.window_samples() - PAD_SAMPLES;
        let mut cuts = std::mem::take(&mut self.cuts);
        split_points(samples, max_piece, &mut cuts);
        let mut out = FinalText::default();
        self.bytes.clear();
        let mut start = 0;
        for end in cuts.iter().copied().chain([samples.len()]) {
            self.window(&samples[start..end], &mut out)?;
            start = end;
        }
        self.cuts = cuts;
        out.text = String::from_utf8_lossy(&self.bytes).trim().to_string();
        self.release_memory();
        Ok(out)
    }

    /// Transcribe one utterance from the decoder's cross-attention keys
    /// and values that the streaming encoder computed for it
    /// (`stream::StreamEncoder::finish`): the decoder only.
    pub fn transcribe_encoded(&mut self, cross: &Arc<Tensor>, seconds: f64) -> Result<FinalText> {
        let mut out = FinalText::default();
        self.bytes.clear();
        let frames = cross.shape().get(3).copied().unwrap_or(0);
        self.decode_window(cross, seconds, frames, std::time::Duration::ZERO, &mut out)?;
        out.text = String::from_utf8_lossy(&self.bytes).trim().to_string();
        self.release_memory();
        Ok(out)
    }

    fn window(&mut self, samples: &[f32], out: &mut FinalText) -> Result<()> {
        let t0 = std::time::Instant::now();
        let (cross, frames) = self.encode(samples)?;
        let seconds = samples.len() as f64 / SAMPLE_RATE_HZ as f64;
        self.decode_window(&cross, seconds, frames, t0.elapsed(), out)
    }

    /// Greedy decoding of one window's `cross` keys/values (`seconds` of
    /// audio, `frames` encoder or mel frames, for the log), its text
    /// appended to `self.bytes`.
    fn decode_window(
        &mut self,
        cross: &Arc<Tensor>,
        seconds: f64,
        frames: usize,
        t_enc: std::time::Duration,
        out: &mut FinalText,
    ) -> Result<()> {
        let model = self.model.clone();
        let t0 = std::time::Instant::now();
        let no_speech = self.prompt(cross)?;
        let g = self.greedy(cross, token_limit(seconds))?;
        out.bounded |= g.hit_bound;
        out.repeat_cut |= g.repeat_cut;
        log::debug!(
            "finals window: {seconds:.2} s, {frames} frames, encoder {:.1} ms, {} tokens {:.1} ms",
            t_enc.as_secs_f64() * 1e3,
            self.tokens.len(),
            t0.elapsed().as_secs_f64() * 1e3
        );
        let mean_logprob = g.total / (self.tokens.len() + 1) as f64;
        if no_speech > NO_SPEECH_THRESHOLD && mean_logprob < LOGPROB_THRESHOLD as f64 {
            out.no_speech += 1;
            self.tokens.clear();
        }
        out.tokens += self.tokens.len();
        if !self.bytes.is_empty() && !self.tokens.is_empty() {
            self.bytes.push(b' ');
        }
        model.detokenize(&self.tokens, &mut self.bytes);
        Ok(())
    }

    /// The log-mel of one window (`samples`, within the encoder's frames)
    /// through the encoder: the cross-attention keys and values.
    fn encode(&mut self, samples: &[f32]) -> Result<(Arc<Tensor>, usize)> {
        let run = |e: TractError| HarkError::Runtime(format!("finals pass failed: {e:#}"));
        let info = &self.model.info;
        // a window shorter than the STFT reflection needs is padded further
        let pad = PAD_SAMPLES.max(mel::N_FFT + HOP_SAMPLES - samples.len().min(mel::N_FFT));
        if WhisperMel::frames(samples.len(), pad) > info.max_mel_frames {
            return Err(HarkError::Runtime(
                "finals window longer than the encoder's".into(),
            ));
        }
        let frames = self.mel.compute(samples, pad, &mut self.mel_buf);
        let mel = Tensor::from_shape(&[1, N_MELS, frames], &self.mel_buf[..N_MELS * frames])
            .map_err(run)?;
        let encoder = self.model.encoder.as_ref().ok_or_else(|| {
            HarkError::Runtime("this finals model reads with its streaming encoder".into())
        })?;
        let mut enc = encoder.run(tvec![mel.into()]).map_err(run)?;
        let cross = enc
            .pop()
            .ok_or_else(|| HarkError::Runtime("finals encoder returned nothing".into()))?
            .into_arc_tensor();
        Ok((cross, frames))
    }

    /// The start token through the decoder (cache slot 0): the
    /// no-speech probability.
    fn prompt(&mut self, cross: &Arc<Tensor>) -> Result<f32> {
        let mut cache = std::mem::take(&mut self.cache);
        let r = self.step(&mut cache, self.model.info.sot, 0, cross);
        self.cache = cache;
        r?;
        Ok(softmax_at(&self.logits, self.model.info.no_speech as usize))
    }

    /// Greedy decoding after `prompt`, into `self.tokens`: at most
    /// `limit` text tokens, a repeat cut after its first occurrence.
    fn greedy(&mut self, cross: &Arc<Tensor>, limit: usize) -> Result<Greedy> {
        let info = self.model.info.clone();
        let limit = limit.min(self.slots - 2);
        self.tokens.clear();
        let mut g = Greedy {
            total: 0.0,
            kept: 0.0,
            end: None,
            hit_bound: true,
            repeat_cut: false,
        };
        let mut cache = std::mem::take(&mut self.cache);
        let mut last = info.no_timestamps;
        let mut kept = std::mem::take(&mut self.token_logprobs);
        kept.clear();
        let mut ends = std::mem::take(&mut self.eot_logprobs);
        ends.clear();
        let result = (|| -> Result<()> {
            while self.tokens.len() < limit {
                self.step(&mut cache, last, 1 + self.tokens.len(), cross)?;
                let tok = self.choose(self.tokens.is_empty(), &info);
                let lp = log_softmax_at(&self.logits, tok as usize) as f64;
                ends.push(log_softmax_at(&self.logits, info.eot as usize) as f64);
                g.total += lp;
                if tok == info.eot {
                    g.hit_bound = false;
                    break;
                }
                self.tokens.push(tok);
                kept.push(lp);
                last = tok;
                if let Some(cut) = repeat_cut(&self.tokens) {
                    self.tokens.truncate(cut);
                    g.repeat_cut = true;
                    g.hit_bound = false;
                    break;
                }
            }
            Ok(())
        })();
        self.cache = cache;
        g.kept = kept[..self.tokens.len().min(kept.len())].iter().sum();
        g.end = ends.get(self.tokens.len()).copied();
        self.token_logprobs = kept;
        self.eot_logprobs = ends;
        result?;
        Ok(g)
    }

    /// Read one command (16 kHz samples) with the decoder: the free greedy
    /// final, then a beam search of `width` hypotheses over the tokens
    /// `grammar` allows. The best complete phrase (ranked by its
    /// log-likelihood, the end of text included) is the command. Its
    /// confidence is exp(phrase - free) per token, at most 1, where each
    /// side is scored as a text that ends there: the free final with EOT
    /// after the tokens it kept (a repeat cut off, the decoder often does
    /// not want to stop with 1 s of padding), the phrase with its EOT. A
    /// phrase that stops while the speech goes on (a sentence read as four
    /// digits) pays for its EOT. None for an utterance longer than one
    /// window (the grammar search's verdict stands then).
    pub fn command(
        &mut self,
        samples: &[f32],
        grammar: &grammar::TokenGrammar,
        width: usize,
    ) -> Result<Option<CommandFinal>> {
        if samples.len() > self.model.info.window_samples() - PAD_SAMPLES {
            return Ok(None);
        }
        let (cross, _) = self.encode(samples)?;
        let seconds = samples.len() as f64 / SAMPLE_RATE_HZ as f64;
        self.prompt(&cross)?;
        let limit = token_limit(seconds).min(self.slots - 2);
        let g = self.greedy(&cross, limit)?;
        let free_mean = (g.kept + g.end.unwrap_or(0.0)) / (self.tokens.len() + 1) as f64;
        self.bytes.clear();
        self.model.detokenize(&self.tokens, &mut self.bytes);
        let heard = String::from_utf8_lossy(&self.bytes).trim().to_string();
        let best = self.phrase_search(&cross, grammar, width.max(1), limit)?;
        let out = match best {
            Some(score) => {
                let b = self.beam.as_ref().map_or(&[][..], |b| &b.best[..]);
                let n = (b.len() + 1) as f64;
                self.bytes.clear();
                self.model.detokenize(b, &mut self.bytes);
                CommandFinal {
                    words: Some(grammar::command_words(&String::from_utf8_lossy(
                        &self.bytes,
                    ))),
                    confidence: (score / n - free_mean).min(0.0).exp(),
                    heard,
                }
            }
            None => CommandFinal {
                words: None,
                confidence: 0.0,
                heard,
            },
        };
        self.release_memory();
        Ok(Some(out))
    }

    /// The beam search of `command`, after `prompt` (cache slot 0 holds
    /// the start token): the best complete phrase's log-likelihood (EOT
    /// included), its tokens in `beam.best`.
    fn phrase_search(
        &mut self,
        cross: &Arc<Tensor>,
        grammar: &grammar::TokenGrammar,
        width: usize,
        limit: usize,
    ) -> Result<Option<f64>> {
        let info = self.model.info.clone();
        let (rows, dh, slots) = (info.layers * 2 * info.heads, info.head_dim, self.slots);
        let mut b = match self.beam.take() {
            Some(b) if b.width == width => b,
            _ => BeamBuffers::new(width, self.cache.len(), slots),
        };
        // every hypothesis starts from the prompt's slot 0
        for r in 0..rows {
            let at = r * slots * dh;
            b.caches[0][at..at + dh].copy_from_slice(&self.cache[at..at + dh]);
        }
        b.live.clear();
        b.tokens[0].clear();
        b.best.clear();
        b.live.push(Hyp {
            score: 0.0,
            state: grammar.start(),
            last: info.no_timestamps,
            punct: false,
            len: 0,
        });
        let mut done: Option<f64> = None;
        let result = (|| -> Result<()> {
            for _ in 0..limit {
                b.cands.clear();
                for (i, h) in b.live.iter().enumerate() {
                    self.step(&mut b.caches[i], h.last, 1 + h.len, cross)?;
                    let first = h.len == 0;
                    let lse = self.allowed_lse(first, &info);
                    if grammar.accepting(h.state) {
                        let eot = (self.logits[info.eot as usize] - lse) as f64;
                        if done.is_none_or(|d| h.score + eot > d) {
                            done = Some(h.score + eot);
                            b.best.clear();
                            b.best.extend_from_slice(&b.tokens[i]);
                        }
                    }
                    // this hypothesis' best `width` continuations
                    let from = b.cands.len();
                    let mut offer = |token: u32, state: u32, punct: bool| {
                        let t = token as usize;
                        if !self.may_write(t, first) {
                            return;
                        }
                        let score = h.score + (self.logits[t] - lse) as f64;
                        let mine = &mut b.cands[from..];
                        if mine.len() == width {
                            let worst = mine
                                .iter_mut()
                                .min_by(|a, c| a.score.total_cmp(&c.score))
                                .filter(|w| w.score < score);
                            if let Some(w) = worst {
                                *w = Cand {
                                    score,
                                    parent: i,
                                    token,
                                    state,
                                    punct,
                                };
                            }
                        } else {
                            b.cands.push(Cand {
                                score,
                                parent: i,
                                token,
                                state,
                                punct,
                            });
                        }
                    };
                    for &(token, state) in grammar.edges(h.state) {
                        offer(token, state, false);
                    }
                    if grammar.pause(h.state) && !h.punct {
                        for &token in grammar.punctuation() {
                            offer(token, h.state, true);
                        }
                    }
                }
                b.cands.sort_by(|a, c| c.score.total_cmp(&a.score));
                b.next_live.clear();
                for c in b.cands.iter().take(width) {
                    if done.is_some_and(|d| c.score <= d) {
                        break;
                    }
                    let j = b.next_live.len();
                    let parent = b.live[c.parent];
                    // the parent's filled slots, and the token
                    let filled = 2 + parent.len;
                    for r in 0..rows {
                        let at = r * slots * dh;
                        let (src, dst) = (&b.caches[c.parent], &mut b.next_caches[j]);
                        dst[at..at + filled * dh].copy_from_slice(&src[at..at + filled * dh]);
                    }
                    let (src, dst) = (&b.tokens[c.parent], &mut b.next_tokens[j]);
                    dst.clear();
                    dst.extend_from_slice(src);
                    dst.push(c.token);
                    b.next_live.push(Hyp {
                        score: c.score,
                        state: c.state,
                        last: c.token,
                        punct: c.punct,
                        len: parent.len + 1,
                    });
                }
                std::mem::swap(&mut b.live, &mut b.next_live);
                std::mem::swap(&mut b.caches, &mut b.next_caches);
                std::mem::swap(&mut b.tokens, &mut b.next_tokens);
                if b.live.is_empty() {
                    break;
                }
            }
            Ok(())
        })();
        self.beam = Some(b);
        result.map(|()| done)
    }

    /// log of the summed probability of the tokens the decoder may write
    /// next (Whisper's suppressions, no timestamps).
    fn allowed_lse(&self, first: bool, info: &FinalsInfo) -> f32 {
        let ts = info.timestamp_begin as usize;
        let allowed = || (0..ts).filter(|&t| self.may_write(t, first));
        let max = allowed()
            .map(|t| self.logits[t])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = allowed().map(|t| (self.logits[t] - max).exp()).sum();
        max + sum.ln()
    }

    /// Greedy choice over the last logits, with Whisper's suppressions.
    fn choose(&self, first: bool, info: &FinalsInfo) -> u32 {
        let ts = info.timestamp_begin as usize;
        let mut best = (f32::NEG_INFINITY, info.eot);
        for (t, &l) in self.logits[..ts].iter().enumerate() {
            if l > best.0 && self.may_write(t, first) {
                best = (l, t as u32);
            }
        }
        best.1
    }

    /// Whether the decoder may write token `t` (a text token or EOT) next;
    /// `first`: as the first token of a text. Whisper's suppressions.
    fn may_write(&self, t: usize, first: bool) -> bool {
        !(self.model.suppress[t] || first && self.model.suppress_begin.contains(&(t as u32)))
    }

    /// The embedding rows an utterance read go back to the page cache,
    /// and freed memory to the system.
    fn release_memory(&self) {
        if let Cow::Borrowed(table) = &self.model.embed_q {
            crate::mem::release_embedded(table);
        }
        crate::mem::return_freed_memory();
    }

    /// One decoder step: `token` at `position`; the logits into
    /// `self.logits`, its keys and values into `cache` ([L, 2, H, slots,
    /// Dh], its first `position` slots filled).
    fn step(
        &mut self,
        cache: &mut [f32],
        token: u32,
        position: usize,
        cross: &Arc<Tensor>,
    ) -> Result<()> {
        if position >= self.slots {
            return Err(HarkError::Runtime("finals decoder past its cache".into()));
        }
        let run = |e: TractError| HarkError::Runtime(format!("finals decoder failed: {e:#}"));
        let info = &self.model.info;
        let (w, v) = (info.width(), info.vocab_size);
        let t = token as usize;
        let scale = self.model.embed_scale[t];
        let row = &self.model.embed_q[t * w..(t + 1) * w];
        for (e, &q) in self.embedding.iter_mut().zip(row) {
            *e = q as i8 as f32 * scale;
        }
        let embedding = Tensor::from_shape(&[1, w], &self.embedding).map_err(run)?;
        let pos = Tensor::from_shape(&[1], &[position as i64]).map_err(run)?;
        let (rows, dh, slots) = (info.layers * 2 * info.heads, info.head_dim, self.slots);
        // the filled slots of each cache row, copied once into the input
        let mut past =
            Tensor::zero::<f32>(&[info.layers, 2, info.heads, position, dh]).map_err(run)?;
        if position > 0 {
            let mut view = past.try_as_plain_ram_mut().map_err(run)?;
            let dst = view.as_slice_mut::<f32>().map_err(run)?;
            for (d, row) in dst
                .chunks_exact_mut(position * dh)
                .zip(cache.chunks_exact(slots * dh))
            {
                d.copy_from_slice(&row[..position * dh]);
            }
        }
        let inputs = tvec![
            embedding.into(),
            pos.into(),
            past.into(),
            TValue::from_const(cross.clone()),
        ];
        let t0 = std::time::Instant::now();
        let outs = self.model.decoder.run(inputs).map_err(run)?;
        log::trace!("decoder run {:.2} ms", t0.elapsed().as_secs_f64() * 1e3);
        let [logits, new_kv] = &outs[..] else {
            return Err(HarkError::Runtime(
                "finals decoder returned the wrong number of outputs".into(),
            ));
        };
        let l = logits.try_as_plain_ram().map_err(run)?;
        let l = l.as_slice::<f32>().map_err(run)?;
        if l.len() != v {
            return Err(HarkError::Runtime("finals logits of the wrong size".into()));
        }
        self.logits.copy_from_slice(l);
        let new = new_kv.try_as_plain_ram().map_err(run)?;
        let new = new.as_slice::<f32>().map_err(run)?;
        if new.len() != rows * dh {
            return Err(HarkError::Runtime(
                "finals keys/values of the wrong size".into(),
            ));
        }
        for (row, chunk) in new.chunks_exact(dh).enumerate() {
            let at = row * slots * dh + position * dh;
            cache[at..at + dh].copy_from_slice(chunk);
        }
        Ok(())
    }
}

fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
}

fn log_softmax_at(x: &[f32], i: usize) -> f32 {
    x[i] - log_sum_exp(x)
}

fn softmax_at(x: &[f32], i: usize) -> f32 {
    log_softmax_at(x, i).exp()
}

/// Length to cut `tokens` to when they end in a phrase repeated back to
/// back: a period of fewer than 4 tokens seen 3 times, or a longer one
/// seen twice, is cut after its first occurrence ("no no" survives).
pub fn repeat_cut(tokens: &[u32]) -> Option<usize> {
    const MAX_PERIOD: usize = 32;
    let n = tokens.len();
    for p in 1..=MAX_PERIOD.min(n / 2) {
        let need = if p < 4 { 3 } else { 2 };
        if n < need * p {
            continue;
        }
        let tail = &tokens[n - p..];
        if (1..need).all(|r| &tokens[n - (r + 1) * p..n - r * p] == tail) {
            return Some(n - (need - 1) * p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_cut_after_the_first_occurrence() {
        assert_eq!(repeat_cut(&[1, 2, 3, 4, 5, 2, 3, 4, 5]), Some(5));
        assert_eq!(repeat_cut(&[9, 7, 7, 7]), Some(2));
        assert_eq!(repeat_cut(&[9, 7, 7]), None);
        assert_eq!(repeat_cut(&[1, 2, 3]), None);
    }

    #[test]
    fn long_utterances_split_at_the_quietest_point_and_drop_nothing() {
        let rate = SAMPLE_RATE_HZ as usize;
        // 70 s of tone with a quiet gap at 26 s and at 52 s
        let mut s: Vec<f32> = (0..70 * rate)
            .map(|i| (i as f32 * 0.05).sin() * 0.5)
            .collect();
        for gap in [26 * rate, 52 * rate] {
            s[gap..gap + rate / 5].iter_mut().for_each(|x| *x = 0.0);
        }
        let mut cuts = Vec::new();
        split_points(&s, 29 * rate, &mut cuts);
        assert_eq!(cuts.len(), 2);
        assert!(
            cuts[0] > 26 * rate && cuts[0] < 26 * rate + rate / 5,
            "{cuts:?}"
        );
        assert!(
            cuts[1] > 52 * rate && cuts[1] < 52 * rate + rate / 5,
            "{cuts:?}"
        );
        let mut start = 0;
        for end in cuts.iter().copied().chain([s.len()]) {
            assert!(end > start && end - start <= 29 * rate);
            start = end;
        }
        split_points(&s[..20 * rate], 29 * rate, &mut cuts);
        assert!(cuts.is_empty());
    }

    #[test]
    fn the_byte_alphabet_is_a_bijection() {
        let a = byte_alphabet();
        let set: std::collections::HashSet<char> = a.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(a[b'a' as usize], 'a');
        assert_eq!(a[b' ' as usize], 'Ġ');
    }
}
