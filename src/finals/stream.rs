//! The converted streaming encoder (issue 37): Whisper tiny.en's encoder
//! with its attention masked to 320 ms chunks and a bounded left context,
//! trained through the frozen decoder (train/experiments/convert.py), run
//! chunk by chunk while the person speaks (`stream.onnx`, written by
//! train/experiments/stream_export.py; docs/model-contract.md, "The
//! streaming encoder"). Each chunk leaves the decoder's cross-attention
//! keys and values of its frames in a buffer, so at an endpoint the final
//! costs only the decoder: nothing is encoded again.
//!
//! Input: the streamable log-mel (Whisper's, with a fixed floor instead of
//! the utterance's max - 8) of the utterance's audio from its start, then
//! the silence the model trained with. Every buffer is sized once, for the
//! longest utterance the positions allow; nothing grows with the stream.

use std::sync::Arc;

use tract_onnx::prelude::*;

use super::mel::{WhisperMel, HOP_SAMPLES, N_FFT, N_MELS, SAMPLE_RATE_HZ};
use super::{FinalsInfo, FinalsModel};
use crate::error::{HarkError, Result};

pub const STREAM_CONTRACT_VERSION: u32 = 1;

/// The streaming encoder's settings, from its metadata (`hark.stream.*`).
#[derive(Clone, Debug)]
pub struct StreamInfo {
    /// Encoder frames (20 ms) per chunk.
    pub chunk_frames: usize,
    /// Encoder frames of left context each chunk attends to.
    pub left_frames: usize,
    /// The log-mel's fixed floor (log10 of the mel power).
    pub mel_floor: f32,
    /// Mel frames (10 ms) of context before and after a chunk's own.
    pub mel_before: usize,
    pub mel_after: usize,
    /// Encoder frames an utterance may have (the position table).
    pub max_frames: usize,
    /// Silence after the utterance, as in training.
    pub pad_samples: usize,
    /// What the metadata says of its training.
    pub training: String,
}

impl StreamInfo {
    fn mel_per_chunk(&self) -> usize {
        2 * self.chunk_frames
    }
    fn mel_in(&self) -> usize {
        self.mel_before + self.mel_per_chunk() + self.mel_after
    }
    /// Encoder frames an utterance's chunks may fill (whole chunks).
    fn frame_capacity(&self) -> usize {
        self.max_frames / self.chunk_frames * self.chunk_frames
    }
    /// The longest utterance (16 kHz samples) the encoder's positions allow.
    pub fn max_samples(&self) -> usize {
        max_samples_for(self.frame_capacity(), self.pad_samples)
    }
}

/// The longest utterance whose log-mel, `pad` samples of silence after it,
/// has at most `frames` encoder frames.
fn max_samples_for(frames: usize, pad: usize) -> usize {
    (2 * frames * HOP_SAMPLES).saturating_sub(pad + HOP_SAMPLES)
}

pub struct StreamModel {
    pub info: StreamInfo,
    plan: Box<dyn Runnable>,
}

impl StreamModel {
    /// The streaming encoder from `bytes` (checked against the decoder's
    /// sizes in `finals`).
    pub(super) fn load(
        bytes: &[u8],
        name: &str,
        finals: &FinalsInfo,
        embedded: Option<&'static [u8]>,
    ) -> Result<StreamModel> {
        let (mut proto, meta) = super::decode_proto(bytes, name)?;
        let m = super::Meta(&meta, name);
        let version: u32 = m.parse("hark.stream.contract_version")?;
        if version != STREAM_CONTRACT_VERSION {
            return Err(HarkError::Model(format!(
                "{name}: streaming encoder contract version {version}, this hark reads version {STREAM_CONTRACT_VERSION}"
            )));
        }
        for key in ["layers", "heads", "head_dim"] {
            let k = format!("hark.finals.{key}");
            let want = match key {
                "layers" => finals.layers,
                "heads" => finals.heads,
                _ => finals.head_dim,
            };
            if m.parse::<usize>(&k)? != want {
                return Err(HarkError::Model(format!(
                    "{name}: the streaming encoder and the decoder disagree on `{k}`"
                )));
            }
        }
        super::check_features(&m, name)?;
        let pad_s: f64 = m.parse("hark.stream.pad_seconds")?;
        let info = StreamInfo {
            chunk_frames: m.parse("hark.stream.chunk_frames")?,
            left_frames: m.parse("hark.stream.left_frames")?,
            mel_floor: m.parse("hark.stream.mel_floor")?,
            mel_before: m.parse("hark.stream.mel_before")?,
            mel_after: m.parse("hark.stream.mel_after")?,
            max_frames: m.parse("hark.stream.max_frames")?,
            pad_samples: (pad_s * SAMPLE_RATE_HZ as f64).round() as usize,
            training: m.get("hark.stream.training")?.to_string(),
        };
        let sane = (1..=256).contains(&info.chunk_frames)
            && info.left_frames <= 4096
            && info.mel_floor.is_finite()
            && info.mel_before == 2
            && info.mel_after == 1
            && (info.chunk_frames..=30_000).contains(&info.max_frames)
            && (0.0..=5.0).contains(&pad_s);
        if !sane {
            return Err(HarkError::Model(format!(
                "{name}: inconsistent streaming encoder metadata: {info:?}"
            )));
        }
        super::fold_int8_weights(&mut proto, name)?;
        let plan = super::plan(proto, name, embedded)?;
        Ok(StreamModel { info, plan })
    }
}

/// One stream's converted encoder: the utterance's audio, log-mel and
/// keys/values so far.
pub struct StreamEncoder {
    model: Arc<FinalsModel>,
    /// The model's `stream.info`, kept here: every chunk reads it.
    info: StreamInfo,
    mel: WhisperMel,
    /// The utterance's samples since `reset` (at most `max_samples`).
    audio: Vec<f32>,
    /// Its log-mel so far, frame by frame ([frames][N_MELS]).
    mel_frames: Vec<f32>,
    frames_done: usize,
    chunks_done: usize,
    chunk_in: Vec<f32>,
    /// Each layer's self-attention keys and values of the last
    /// `left_frames` frames: rows [L, 2, H] of (left + chunk) x Dh.
    cache: Vec<f32>,
    cache_len: usize,
    /// The decoder's cross-attention keys and values of the utterance's
    /// encoder frames, frame by frame ([frames][L, 2, H][Dh]): reserved
    /// once, filled by appending, so that only what an utterance uses is
    /// ever touched.
    cross: Vec<f32>,
    /// Samples the utterance had past `max_samples` (not read).
    dropped: usize,
    /// Encoder frames the buffers hold (whole chunks), and the longest
    /// utterance (16 kHz samples) whose padded log-mel fits in them.
    frame_cap: usize,
    max_samples: usize,
}

impl StreamEncoder {
    /// Buffers for utterances of up to `max_utterance` samples (16 kHz),
    /// within the encoder's positions.
    pub fn new(model: Arc<FinalsModel>, max_utterance: usize) -> Result<Self> {
        let s = match &model.stream {
            Some(s) => s.info.clone(),
            None => {
                return Err(HarkError::Config(
                    "the finals model has no streaming encoder (stream.onnx)".into(),
                ))
            }
        };
        let f = &model.info;
        let rows = f.layers * 2 * f.heads;
        let want = (max_utterance + s.pad_samples) / HOP_SAMPLES / 2 + 1;
        let frame_cap = want.div_ceil(s.chunk_frames) * s.chunk_frames;
        let frame_cap = frame_cap.min(s.frame_capacity());
        let max_samples = max_samples_for(frame_cap, s.pad_samples);
        let mel_cap = 2 * frame_cap + s.mel_after + 1;
        Ok(StreamEncoder {
            mel: WhisperMel::new(),
            audio: Vec::with_capacity(max_samples),
            mel_frames: vec![0.0; mel_cap * N_MELS],
            frames_done: 0,
            chunks_done: 0,
            chunk_in: vec![0.0; N_MELS * s.mel_in()],
            cache: vec![0.0; rows * (s.left_frames + s.chunk_frames) * f.head_dim],
            cache_len: 0,
            cross: Vec::with_capacity(rows * frame_cap * f.head_dim),
            dropped: 0,
            frame_cap,
            max_samples,
            info: s,
            model,
        })
    }

    /// Rows of a key/value tensor ([L, 2, H]) and their width (Dh).
    fn rows(&self) -> (usize, usize) {
        let f = &self.model.info;
        (f.layers * 2 * f.heads, f.head_dim)
    }

    /// Encoder frames in `cross`.
    fn cross_frames(&self) -> usize {
        let (rows, dh) = self.rows();
        self.cross.len() / (rows * dh)
    }

    /// The longest utterance this encoder reads, in 16 kHz samples.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Start a new utterance.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.frames_done = 0;
        self.chunks_done = 0;
        self.cache_len = 0;
        self.cross.clear();
        self.dropped = 0;
    }

    /// The utterance's log-mel so far, [frames][N_MELS] (after `finish`:
    /// all of it, the padding included).
    pub fn log_mel(&self) -> &[f32] {
        &self.mel_frames[..self.frames_done * N_MELS]
    }

    /// Samples of the utterance so far.
    pub fn samples(&self) -> usize {
        self.audio.len() + self.dropped
    }

    /// More of the utterance (16 kHz): its log-mel frames and every chunk
    /// they complete are computed now.
    pub fn accept(&mut self, samples: &[f32]) -> Result<()> {
        let room = self.max_samples() - self.audio.len();
        let take = samples.len().min(room);
        self.audio.extend_from_slice(&samples[..take]);
        self.dropped += samples.len() - take;
        // a frame is complete when its whole window is inside the audio
        let n = self.audio.len();
        let mut t = self.frames_done;
        while t * HOP_SAMPLES + N_FFT / 2 <= n {
            self.mel_frame(t);
            t += 1;
        }
        self.frames_done = t;
        let (per, after) = (self.info.mel_per_chunk(), self.info.mel_after);
        while (self.chunks_done + 1) * per + after <= self.frames_done {
            self.run_chunk(None)?;
        }
        Ok(())
    }

    /// The utterance's end: the training's silence after it, the last
    /// chunks, and the decoder's cross-attention keys and values of every
    /// frame, [L, 2, H, S, Dh] (S encoder frames); with the seconds of
    /// audio read. `reset` starts the next utterance.
    pub fn finish(&mut self) -> Result<(Arc<Tensor>, f64)> {
        let run = |e: TractError| HarkError::Runtime(format!("streaming encoder: {e:#}"));
        let n = self.audio.len();
        // Whisper's frame count for the padded audio, made even
        let total = (n + self.info.pad_samples) / HOP_SAMPLES;
        let total = total - total % 2;
        for t in self.frames_done..total {
            self.mel_frame(t);
        }
        self.frames_done = total;
        let (frames, chunk) = (total / 2, self.info.chunk_frames);
        while self.chunks_done * chunk < frames {
            let valid = (frames - self.chunks_done * chunk).min(chunk);
            self.run_chunk(Some((total, valid)))?;
        }
        let f = &self.model.info;
        let (rows, dh) = self.rows();
        let s = self.cross_frames();
        if s == 0 {
            return Err(HarkError::Runtime(
                "streaming encoder: an empty utterance".into(),
            ));
        }
        let mut cross = Tensor::zero::<f32>(&[f.layers, 2, f.heads, s, dh]).map_err(run)?;
        {
            let mut view = cross.try_as_plain_ram_mut().map_err(run)?;
            let dst = view.as_slice_mut::<f32>().map_err(run)?;
            for (r, d) in dst.chunks_exact_mut(s * dh).enumerate().take(rows) {
                for (t, frame) in d.chunks_exact_mut(dh).enumerate() {
                    let at = (t * rows + r) * dh;
                    frame.copy_from_slice(&self.cross[at..at + dh]);
                }
            }
        }
        let seconds = self.samples() as f64 / SAMPLE_RATE_HZ as f64;
        if self.dropped > 0 {
            log::warn!(
                "streaming encoder: {:.1} s of the utterance past its {:.1} s were not read",
                self.dropped as f64 / SAMPLE_RATE_HZ as f64,
                self.max_samples() as f64 / SAMPLE_RATE_HZ as f64
            );
        }
        Ok((cross.into_arc_tensor(), seconds))
    }

    /// Log-mel frame `t` of the utterance (reflected at its start, zeros
    /// past its audio: the padding), with the fixed floor.
    fn mel_frame(&mut self, t: usize) {
        let floor = self.info.mel_floor;
        let audio = &self.audio;
        let at = |i: isize| -> f32 {
            let j = i.unsigned_abs();
            audio.get(j).copied().unwrap_or(0.0)
        };
        let start = (t * HOP_SAMPLES) as isize - (N_FFT / 2) as isize;
        let out = &mut self.mel_frames[t * N_MELS..(t + 1) * N_MELS];
        self.mel.frame_log10(at, start, |m, v| {
            out[m] = (v.max(floor) + 4.0) / 4.0;
        });
    }

    /// The next chunk through the encoder; `last` = (the utterance's mel
    /// frames, the chunk's real encoder frames) for the final one.
    fn run_chunk(&mut self, last: Option<(usize, usize)>) -> Result<()> {
        let run = |e: TractError| HarkError::Runtime(format!("streaming encoder: {e:#}"));
        let (rows, dh) = self.rows();
        let (layers, heads) = (self.model.info.layers, self.model.info.heads);
        let (chunk, left) = (self.info.chunk_frames, self.info.left_frames);
        let c = self.chunks_done;
        let (mel_total, valid) = last.unwrap_or((usize::MAX, chunk));
        let width = self.info.mel_in();
        let lo = (c * self.info.mel_per_chunk()) as isize - self.info.mel_before as isize;
        for k in 0..width {
            let t = lo + k as isize;
            let inside = t >= 0 && (t as usize) < mel_total.min(self.frames_done);
            for m in 0..N_MELS {
                // before the first chunk: masked by `first`; past the end:
                // the convolution's zero padding
                self.chunk_in[m * width + k] = match inside {
                    true => self.mel_frames[t as usize * N_MELS + m],
                    false => 0.0,
                };
            }
        }
        let mel = Tensor::from_shape(&[1, N_MELS, width], &self.chunk_in).map_err(run)?;
        let first = Tensor::from_shape(&[1], &[if c == 0 { 1.0f32 } else { 0.0 }]).map_err(run)?;
        let position = Tensor::from_shape(&[1], &[(c * chunk) as i64]).map_err(run)?;
        let valid_t = Tensor::from_shape(&[1], &[valid as i64]).map_err(run)?;
        let slot = (left + chunk) * dh;
        let cl = self.cache_len;
        let mut cache = Tensor::zero::<f32>(&[layers, 2, heads, cl, dh]).map_err(run)?;
        if cl > 0 {
            let mut view = cache.try_as_plain_ram_mut().map_err(run)?;
            let dst = view.as_slice_mut::<f32>().map_err(run)?;
            for (r, d) in dst.chunks_exact_mut(cl * dh).enumerate() {
                d.copy_from_slice(&self.cache[r * slot..r * slot + cl * dh]);
            }
        }
        let plan = match &self.model.stream {
            Some(s) => &s.plan,
            None => unreachable!("StreamEncoder without a streaming encoder"),
        };
        let outs = plan
            .run(tvec![
                mel.into(),
                first.into(),
                position.into(),
                valid_t.into(),
                cache.into()
            ])
            .map_err(run)?;
        let [cross, new_kv] = &outs[..] else {
            return Err(HarkError::Runtime(
                "streaming encoder returned the wrong number of outputs".into(),
            ));
        };
        let cross = cross.try_as_plain_ram().map_err(run)?;
        let cross = cross.as_slice::<f32>().map_err(run)?;
        let new = new_kv.try_as_plain_ram().map_err(run)?;
        let new = new.as_slice::<f32>().map_err(run)?;
        if cross.len() != rows * chunk * dh || new.len() != rows * chunk * dh {
            return Err(HarkError::Runtime(
                "streaming encoder outputs of the wrong size".into(),
            ));
        }
        if self.cross_frames() + valid > self.frame_cap {
            return Err(HarkError::Runtime(
                "streaming encoder past its frames".into(),
            ));
        }
        for t in 0..valid {
            for r in 0..rows {
                let at = (r * chunk + t) * dh;
                self.cross.extend_from_slice(&cross[at..at + dh]);
            }
        }
        for r in 0..rows {
            // the cache: this chunk's keys/values after the kept ones,
            // then only the last `left_frames`
            let row = &mut self.cache[r * slot..(r + 1) * slot];
            row[cl * dh..(cl + chunk) * dh]
                .copy_from_slice(&new[r * chunk * dh..(r + 1) * chunk * dh]);
            let keep = (cl + chunk).min(left);
            row.copy_within((cl + chunk - keep) * dh..(cl + chunk) * dh, 0);
        }
        self.cache_len = (cl + chunk).min(left);
        self.chunks_done += 1;
        Ok(())
    }
}
