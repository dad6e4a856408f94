//! Loads a contract model (docs/model-contract.md): reads and validates every
//! `hark.*` metadata key, then builds the tract plan with the concrete chunk
//! shapes for the chosen backend (`backend.rs`: the CPU, or tract-cuda).
//! The `Model` is read-only and shared behind an `Arc` by every stream;
//! loading allocates, running a step allocates only tract's per-call
//! tensors (freed at once).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::backend::{one_line, Backend, BackendChoice};
use crate::error::{HarkError, Result};

pub const CONTRACT_VERSION: u32 = 1;

const MAX_CHUNK_FRAMES: usize = 10_000;
const MAX_CHUNK_SAMPLES: usize = 480_000;
const MAX_BINS: usize = 1_024;
const MAX_FFT_SIZE: usize = 1 << 16;
const MAX_TOKENS: usize = 1 << 20;
const MAX_STATE_ELEMENTS: usize = 1 << 26;

/// The bundled default model, embedded so the binary is one file to copy.
pub static BUNDLED_MODEL: &[u8] = include_bytes!("../models/hark-wsm-v21.onnx");
pub const BUNDLED_MODEL_NAME: &str = "bundled:hark-wsm-v21.onnx";

#[derive(Clone, Debug, PartialEq)]
pub struct FbankConfig {
    pub sample_rate_hz: u32,
    pub num_bins: usize,
    pub frame_length_samples: usize,
    pub frame_shift_samples: usize,
    pub fft_size: usize,
    pub preemphasis: f32,
    pub remove_dc_offset: bool,
    pub low_freq_hz: f64,
    pub high_freq_hz: f64,
    pub use_power: bool,
    pub log_floor: f32,
    pub sample_scale: f32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StateSpec {
    pub input: String,
    pub output: String,
    pub shape: Vec<usize>,
    pub init: f32,
}

/// What the graph's first input takes (`hark.input_kind`).
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// `feats`: log-mel filterbank frames computed by the runtime.
    Fbank(FbankConfig),
    /// `audio`: raw samples in [-1, 1) at the model rate.
    Waveform,
}

/// Everything the model file declares about itself. For a waveform model
/// a "frame" is one sample: `chunk_frames` is `hark.chunk_samples` and
/// `subsampling` is `hark.samples_per_output_frame`, so chunk assembly,
/// padding and timing are the same code for both input kinds.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub contract_version: u32,
    pub name: String,
    pub arch: String,
    pub num_params: u64,
    pub macs_per_second: u64,
    pub input: Input,
    pub sample_rate: u32,
    pub chunk_frames: usize,
    pub chunk_shift_frames: usize,
    pub left_context_frames: usize,
    pub subsampling: usize,
    pub pad_frame_value: f32,
    pub token_kind: String,
    pub tokens: Vec<String>,
    pub blank_id: usize,
    pub states: Vec<StateSpec>,
    pub reset_on_endpoint: bool,
    pub training: String,
}

impl ModelInfo {
    pub fn sample_rate_hz(&self) -> u32 {
        self.sample_rate
    }
    /// The filterbank settings of an fbank model.
    pub fn fbank(&self) -> Option<&FbankConfig> {
        match &self.input {
            Input::Fbank(f) => Some(f),
            Input::Waveform => None,
        }
    }
    /// Values per input frame: mel bins, or 1 (a sample).
    pub fn frame_dim(&self) -> usize {
        self.fbank().map_or(1, |f| f.num_bins)
    }
    /// Samples the input advances per frame.
    pub fn frame_shift_samples(&self) -> usize {
        self.fbank().map_or(1, |f| f.frame_shift_samples)
    }
    /// The graph's input name and shape for one step.
    pub fn input_name(&self) -> &'static str {
        match self.input {
            Input::Fbank(_) => "feats",
            Input::Waveform => "audio",
        }
    }
    pub fn input_shape(&self) -> Vec<usize> {
        match &self.input {
            Input::Fbank(f) => vec![1, self.chunk_frames, f.num_bins],
            Input::Waveform => vec![1, self.chunk_frames],
        }
    }
    /// Duration of one output frame in samples at the model rate.
    pub fn output_frame_samples(&self) -> usize {
        self.subsampling * self.frame_shift_samples()
    }
    pub fn chunk_ms(&self) -> f64 {
        self.chunk_frames as f64 * self.frame_shift_samples() as f64 * 1000.0
            / self.sample_rate as f64
    }

    /// Parse and validate the metadata of a contract model.
    pub fn from_metadata(meta: &HashMap<String, String>) -> Result<Self> {
        let m = Meta(meta);
        let contract_version: u32 = m.parse("hark.contract_version")?;
        if contract_version != CONTRACT_VERSION {
            return Err(HarkError::Model(format!(
                "model declares contract version {contract_version}, this hark reads version {CONTRACT_VERSION}"
            )));
        }
        let sample_rate: u32 = m.parse("hark.sample_rate_hz")?;
        // the rates the resampler converts to (a header field sizes its FFT)
        let rates = crate::audio::resample::MIN_RATE_HZ..=crate::audio::resample::MAX_RATE_HZ;
        if !rates.contains(&sample_rate) {
            return Err(HarkError::Model(format!(
                "sample rate {sample_rate} Hz (models run at {} to {} Hz)",
                rates.start(),
                rates.end()
            )));
        }
        let input = match m.get("hark.input_kind")? {
            "fbank" => Input::Fbank(Self::fbank_from_metadata(&m, sample_rate)?),
            "waveform" => Input::Waveform,
            other => {
                return Err(HarkError::Model(format!(
                    "input kind `{other}` is not supported (only `fbank` and `waveform`)"
                )))
            }
        };
        let tokens: Vec<String> = serde_json::from_str(m.get("hark.tokens")?)
            .map_err(|e| HarkError::Model(format!("metadata key `hark.tokens`: {e}")))?;
        let states: Vec<StateSpec> = serde_json::from_str(m.get("hark.states")?)
            .map_err(|e| HarkError::Model(format!("metadata key `hark.states`: {e}")))?;
        // (chunk, shift, left context, subsampling, pad value) in frames;
        // a waveform model's frame is one sample, padded with silence.
        let chunking = match input {
            Input::Fbank(_) => (
                m.parse::<usize>("hark.chunk_frames")?,
                m.parse::<usize>("hark.chunk_shift_frames")?,
                m.parse::<usize>("hark.left_context_frames")?,
                m.parse::<usize>("hark.subsampling")?,
                m.parse::<f64>("hark.pad_frame_value")? as f32,
            ),
            Input::Waveform => {
                let chunk = m.parse::<usize>("hark.chunk_samples")?;
                (
                    chunk,
                    chunk,
                    0,
                    m.parse::<usize>("hark.samples_per_output_frame")?,
                    0.0,
                )
            }
        };
        let info = ModelInfo {
            contract_version,
            name: m.get("hark.model_name")?.to_string(),
            arch: m.get("hark.arch")?.to_string(),
            num_params: m.parse("hark.num_params")?,
            macs_per_second: m.parse("hark.macs_per_second")?,
            chunk_frames: chunking.0,
            chunk_shift_frames: chunking.1,
            left_context_frames: chunking.2,
            subsampling: chunking.3,
            pad_frame_value: chunking.4,
            input,
            sample_rate,
            token_kind: m.get("hark.token_kind")?.to_string(),
            tokens,
            blank_id: m.parse::<usize>("hark.blank_id")?,
            states,
            reset_on_endpoint: m.parse::<bool>("hark.reset_on_endpoint")?,
            training: m.get("hark.training")?.to_string(),
        };
        if info.chunk_frames == 0
            || info.subsampling == 0
            || !info.chunk_frames.is_multiple_of(info.subsampling)
            || info.chunk_shift_frames != info.chunk_frames
            || info.left_context_frames != 0
        {
            return Err(HarkError::Model(format!(
                "unsupported chunking: chunk {} shift {} left context {} subsampling {}",
                info.chunk_frames,
                info.chunk_shift_frames,
                info.left_context_frames,
                info.subsampling
            )));
        }
        // Bounds that no sane model exceeds, so a corrupt file cannot make
        // the runtime allocate without limit.
        let (max_chunk, fft_size) = match &info.input {
            Input::Fbank(f) => (MAX_CHUNK_FRAMES, f.fft_size),
            Input::Waveform => (MAX_CHUNK_SAMPLES, 0),
        };
        if info.chunk_frames > max_chunk
            || info.frame_dim() > MAX_BINS
            || fft_size > MAX_FFT_SIZE
            || info.tokens.len() > MAX_TOKENS
        {
            return Err(HarkError::Model(format!(
                "implausible sizes: chunk {} frames, {} values per frame, fft {fft_size}, {} tokens",
                info.chunk_frames,
                info.frame_dim(),
                info.tokens.len()
            )));
        }
        for s in &info.states {
            let elems = s
                .shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n > 0 && n <= MAX_STATE_ELEMENTS);
            if elems.is_none() || !s.init.is_finite() {
                return Err(HarkError::Model(format!(
                    "metadata key `hark.states`: state `{}` has shape {:?} and init {}",
                    s.input, s.shape, s.init
                )));
            }
        }
        if info.blank_id >= info.tokens.len() {
            return Err(HarkError::Model(format!(
                "blank id {} outside the {}-token table",
                info.blank_id,
                info.tokens.len()
            )));
        }
        if info.token_kind != "char" {
            return Err(HarkError::Model(format!(
                "token kind `{}` is not supported (only `char`)",
                info.token_kind
            )));
        }
        Ok(info)
    }

    /// The `hark.fbank.*` keys of an fbank model.
    fn fbank_from_metadata(m: &Meta, sample_rate: u32) -> Result<FbankConfig> {
        let window = m.get("hark.fbank.window")?;
        if window != "povey" {
            return Err(HarkError::Model(format!(
                "fbank window `{window}` is not supported"
            )));
        }
        if m.parse::<f64>("hark.fbank.dither")? != 0.0
            || !m.parse::<bool>("hark.fbank.snip_edges")?
        {
            return Err(HarkError::Model(
                "only dither=0 and snip_edges=true fbanks are supported".into(),
            ));
        }
        let fbank = FbankConfig {
            sample_rate_hz: sample_rate,
            num_bins: m.parse::<usize>("hark.fbank.num_bins")?,
            frame_length_samples: m.parse::<usize>("hark.fbank.frame_length_samples")?,
            frame_shift_samples: m.parse::<usize>("hark.fbank.frame_shift_samples")?,
            fft_size: m.parse::<usize>("hark.fbank.fft_size")?,
            preemphasis: m.parse::<f64>("hark.fbank.preemphasis")? as f32,
            remove_dc_offset: m.parse::<bool>("hark.fbank.remove_dc_offset")?,
            low_freq_hz: m.parse::<f64>("hark.fbank.low_freq_hz")?,
            high_freq_hz: m.parse::<f64>("hark.fbank.high_freq_hz")?,
            use_power: m.parse::<bool>("hark.fbank.use_power")?,
            log_floor: m.parse::<f64>("hark.fbank.log_floor")? as f32,
            sample_scale: m.parse::<f64>("hark.fbank.sample_scale")? as f32,
        };
        // A shift longer than the frame would skip samples that have not
        // arrived (and an unbounded one sizes a buffer): found by fuzzing.
        let finite = [
            fbank.preemphasis as f64,
            fbank.low_freq_hz,
            fbank.high_freq_hz,
            fbank.log_floor as f64,
            fbank.sample_scale as f64,
        ]
        .iter()
        .all(|x| x.is_finite());
        if fbank.frame_length_samples == 0
            || fbank.frame_shift_samples == 0
            || fbank.frame_shift_samples > fbank.frame_length_samples
            || !finite
            || fbank.fft_size < fbank.frame_length_samples
            || !fbank.fft_size.is_power_of_two()
            || fbank.num_bins == 0
            || fbank.high_freq_hz <= fbank.low_freq_hz
        {
            return Err(HarkError::Model(format!(
                "inconsistent fbank settings: {fbank:?}"
            )));
        }
        Ok(fbank)
    }
}

/// Contract metadata with errors that name the key.
struct Meta<'a>(&'a HashMap<String, String>);

impl Meta<'_> {
    fn get(&self, k: &str) -> Result<&str> {
        self.0
            .get(k)
            .map(|s| s.as_str())
            .ok_or_else(|| HarkError::Model(format!("missing metadata key `{k}`")))
    }

    fn parse<T: std::str::FromStr>(&self, k: &str) -> Result<T> {
        let v = self.get(k)?;
        v.trim()
            .parse()
            .map_err(|_| HarkError::Model(format!("metadata key `{k}`: cannot parse `{v}`")))
    }
}

/// A loaded model: its declared facts and the optimized plan.
pub struct Model {
    pub info: ModelInfo,
    /// Where it came from (a path or the bundled name).
    pub source: String,
    pub file_bytes: usize,
    /// Where the plan runs.
    pub backend: Backend,
    plan: Box<dyn Runnable>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("source", &self.source)
            .field("backend", &self.backend)
            .field("info", &self.info)
            .finish()
    }
}

/// Read only the metadata of an ONNX file (for `hark model`).
pub fn read_metadata(bytes: &[u8]) -> Result<(ModelProto, HashMap<String, String>)> {
    // Decoded from the slice itself: tract's reader would first copy the
    // whole file into a buffer of its own (a transient copy of every weight).
    let proto = <ModelProto as prost::Message>::decode(bytes).map_err(|e| {
        HarkError::Model(format!(
            "not a readable ONNX model (corrupt or truncated?): {e}"
        ))
    })?;
    let meta = proto
        .metadata_props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    Ok((proto, meta))
}

/// Parse an ONNX file and validate its contract metadata; errors name
/// `source` (a path or the bundled name).
pub fn read_info(bytes: &[u8], source: &str) -> Result<(ModelProto, ModelInfo)> {
    let named = |e: HarkError| match e {
        HarkError::Model(m) => HarkError::Model(format!("{source}: {m}")),
        other => other,
    };
    let (proto, meta) = read_metadata(bytes).map_err(named)?;
    let info = ModelInfo::from_metadata(&meta).map_err(named)?;
    if let Some(name) = proto.graph.as_ref().and_then(dangling_output) {
        return Err(HarkError::Model(format!(
            "{source}: graph output `{name}` is not a value of its graph (corrupt model?)"
        )));
    }
    Ok((proto, info))
}

/// A graph output (of the graph or of a subgraph in a node's attributes)
/// that names no input, initializer or node input/output of its graph.
/// tract's ONNX reader indexes a map by such a name and panics (found by
/// fuzzing: a model file bit-flip aborts the process), so it is refused
/// before tract sees it.
fn dangling_output(graph: &tract_onnx::pb::GraphProto) -> Option<String> {
    let mut names: std::collections::HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    for node in &graph.node {
        names.extend(node.input.iter().chain(&node.output).map(String::as_str));
        for a in &node.attribute {
            if let Some(bad) = a.g.iter().chain(&a.graphs).find_map(dangling_output) {
                return Some(bad);
            }
        }
    }
    graph
        .output
        .iter()
        .find(|o| o.name.is_empty() || !names.contains(o.name.as_str()))
        .map(|o| o.name.clone())
}

/// The plan on tract-cuda's runtime: it moves the ops it supports to the
/// GPU (the rest stay on the CPU), optimizes, and uploads the weights.
#[cfg(feature = "gpu")]
fn cuda_plan(typed: TypedModel) -> TractResult<Box<dyn Runnable>> {
    // Registered by tract-cuda (linked through `backend.rs`); its `check`
    // is the probe that `backend::resolve` has already passed.
    let rt = runtime_for_name("cuda")?
        .ok_or_else(|| TractError::msg("tract-cuda's runtime is not registered"))?;
    rt.prepare(typed)
}

#[cfg(not(feature = "gpu"))]
fn cuda_plan(_: TypedModel) -> TractResult<Box<dyn Runnable>> {
    Err(TractError::msg(crate::backend::NO_CUDA))
}

impl Model {
    /// The model at `path` (the bundled one without it) on the backend
    /// `choice` comes to on this machine. Under `auto`, a CUDA plan that
    /// cannot be built falls back to the CPU with one warning saying why.
    pub fn load(path: Option<&std::path::Path>, choice: BackendChoice) -> Result<Arc<Model>> {
        let load = |backend| match path {
            Some(p) => Self::load_path(p, backend),
            None => Self::load_bytes(BUNDLED_MODEL, BUNDLED_MODEL_NAME, backend),
        };
        let backend = crate::backend::resolve(choice)?;
        let model = match load(backend) {
            Err(HarkError::Model(why))
                if backend == Backend::Cuda && choice == BackendChoice::Auto =>
            {
                log::warn!("backend: running on the CPU: {why}");
                load(Backend::Cpu)
            }
            other => other,
        }?;
        log::info!("model {} on {}", model.source, model.backend.describe());
        Ok(model)
    }

    pub fn load_path(path: &std::path::Path, backend: Backend) -> Result<Arc<Model>> {
        let bytes = std::fs::read(path)
            .map_err(|e| HarkError::Model(format!("cannot read {}: {e}", path.display())))?;
        let source = path.display().to_string();
        let (proto, info) = read_info(&bytes, &source)?;
        let file_bytes = bytes.len();
        // the decoded protobuf holds its own copy of the weights
        drop(bytes);
        Self::load_proto(proto, info, &source, file_bytes, backend)
    }

    /// The bundled model on the CPU.
    pub fn load_bundled() -> Result<Arc<Model>> {
        Self::load_bytes(BUNDLED_MODEL, BUNDLED_MODEL_NAME, Backend::Cpu)
    }

    /// Build the plan for `backend`, which `backend::resolve` has found
    /// usable. A CUDA plan that tract-cuda cannot build is a model error.
    pub fn load_bytes(bytes: &[u8], source: &str, backend: Backend) -> Result<Arc<Model>> {
        crate::mem::log_resident("model load: start");
        let (proto, info) = read_info(bytes, source)?;
        // The decoded protobuf holds its own copy of every weight: the
        // bundled file's pages can go now (peak memory, issue 22).
        if std::ptr::eq(bytes, BUNDLED_MODEL) {
            crate::mem::release_embedded(BUNDLED_MODEL);
        }
        Self::load_proto(proto, info, source, bytes.len(), backend)
    }

    /// Build the plan from a decoded model file of `file_bytes` bytes.
    fn load_proto(
        proto: ModelProto,
        info: ModelInfo,
        source: &str,
        file_bytes: usize,
        backend: Backend,
    ) -> Result<Arc<Model>> {
        let rss = crate::mem::log_resident;
        rss("model load: protobuf decoded");
        let ctx = |e: TractError| HarkError::Model(format!("{source}: {e:#}"));
        let mut model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(ctx)?;
        // The graph now holds its own copy of the weights: the decoded
        // protobuf goes before they are expanded to f32.
        drop(proto);
        rss("model load: graph built");
        let mut inputs = vec![info.input_name().to_string()];
        inputs.extend(info.states.iter().map(|s| s.input.clone()));
        let mut outputs = vec!["log_probs".to_string()];
        outputs.extend(info.states.iter().map(|s| s.output.clone()));
        model.set_input_names(&inputs).map_err(ctx)?;
        model.select_outputs_by_name(&outputs).map_err(ctx)?;
        model
            .set_input_fact(0, f32::fact(info.input_shape()).into())
            .map_err(ctx)?;
        for (i, s) in info.states.iter().enumerate() {
            model
                .set_input_fact(i + 1, f32::fact(&s.shape).into())
                .map_err(ctx)?;
        }
        // Decluttered, not yet optimized: the CPU plan optimizes it for
        // tract's CPU kernels, tract-cuda first moves its ops to the GPU.
        let typed = model
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(ctx)?;
        rss("model load: decluttered");
        // The graph must produce what the metadata promises.
        let out = typed.output_fact(0).map_err(ctx)?;
        let expect = [1, info.chunk_frames / info.subsampling, info.tokens.len()];
        let got: Vec<Option<i64>> = out.shape.iter().map(|d| d.to_i64().ok()).collect();
        if got != expect.iter().map(|&d| Some(d as i64)).collect::<Vec<_>>() {
            return Err(HarkError::Model(format!(
                "{source}: log_probs has shape {:?}, metadata implies {expect:?}",
                out.shape
            )));
        }
        let plan: Box<dyn Runnable> = match backend {
            Backend::Cpu => Box::new(
                typed
                    .into_optimized()
                    .and_then(|m| m.into_runnable())
                    .map_err(ctx)?,
            ),
            Backend::Cuda => cuda_plan(typed).map_err(|e| {
                HarkError::Model(format!(
                    "{source}: cannot build the CUDA plan: {}",
                    one_line(&format!("{e:#}"))
                ))
            })?,
        };
        rss("model load: plan ready");
        Ok(Arc::new(Model {
            info,
            source: source.to_string(),
            file_bytes,
            backend,
            plan,
        }))
    }

    /// Initial state tensors, in input order.
    pub fn initial_state(&self) -> Vec<Tensor> {
        self.info
            .states
            .iter()
            .map(|s| {
                let n: usize = s.shape.iter().product();
                // Shapes come from validated metadata and were accepted by the graph.
                Tensor::from_shape(&s.shape, &vec![s.init; n])
                    .unwrap_or_else(|_| Tensor::zero::<f32>(&[0]).unwrap_or_default())
            })
            .collect()
    }

    /// Run one chunk: `feats` is chunk_frames * frame_dim values (fbank
    /// frames, or samples for a waveform model); `state` is
    /// replaced by the new state; `log_probs` receives
    /// (chunk_frames / subsampling) * num_tokens values.
    pub fn step(&self, feats: &[f32], state: &mut [Tensor], log_probs: &mut [f32]) -> Result<()> {
        let info = &self.info;
        let run = |e: TractError| HarkError::Runtime(format!("model step failed: {e:#}"));
        let x = Tensor::from_shape(&info.input_shape(), feats).map_err(run)?;
        let mut inputs: TVec<TValue> = tvec![x.into()];
        for s in state.iter_mut() {
            inputs.push(std::mem::take(s).into());
        }
        let mut outs = self.plan.run(inputs).map_err(run)?;
        if outs.len() != state.len() + 1 {
            return Err(HarkError::Runtime(
                "model returned the wrong number of outputs".into(),
            ));
        }
        for (dst, src) in state.iter_mut().zip(outs.drain(1..)) {
            *dst = src.into_tensor();
        }
        let view = outs[0].try_as_plain_ram().map_err(run)?;
        let lp = view.as_slice::<f32>().map_err(run)?;
        if lp.len() != log_probs.len() {
            return Err(HarkError::Runtime(
                "log_probs has an unexpected size".into(),
            ));
        }
        log_probs.copy_from_slice(lp);
        Ok(())
    }
}
