//! One recognition stream: fbank -> chunk assembly -> model step with
//! explicit state -> CTC -> endpointing -> events. Owns every buffer it
//! needs, allocated once in `new`; `push` and `finish` allocate only the
//! `Event`s they return (the text of each transcript). Runs on the
//! recognizer thread; the `Model` is shared read-only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tract_onnx::prelude::Tensor;

use crate::decode::beam::BeamSearch;
use crate::decode::command::{CommandSearch, Verdict};
use crate::decode::ctc::{CtcState, TimedToken};
use crate::decode::endpoint::{detect, Endpoint, EndpointConfig};
use crate::decode::lm::{CharLm, Tuning};
use crate::decode::phrases::{Match, Phrases, Slot};
use crate::decode::tokens::Tokens;
use crate::error::Result;
use crate::finals::grammar::TokenGrammar;
use crate::finals::stream::StreamEncoder;
use crate::finals::{FinalsModel, FinalsPass};
use crate::frontend::Fbank;
use crate::model::Model;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Partial,
    Final,
}

/// A transcript event. Times are seconds from the start of the stream at
/// the model's sample rate (dropped input counts as elapsed time).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub text: String,
    /// Start of the first token (or of the utterance when it has none).
    pub start_s: f64,
    /// End of the audio this event covers.
    pub end_s: f64,
    /// Time from the arrival of the audio that completed this event to its creation.
    pub latency_ms: f64,
    /// Input lost (ring overrun) since the previous event, in milliseconds.
    pub gap_ms: f64,
    /// End of the last token's output frame (the end of speech for a final),
    /// when the event has tokens.
    pub speech_end_s: Option<f64>,
    /// With `--phrases`, on a final: the command (its text is the event's
    /// text) or why it was rejected (the event's text is then empty).
    pub command: Option<Command>,
    /// Which pass wrote the text: the streaming CTC pass (every partial,
    /// and finals with `--finals ctc` or `--phrases`) or Whisper.
    pub pass: Pass,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pass {
    #[default]
    Ctc,
    Whisper,
    /// Whisper's decoder on the streaming encoder's states (`--finals stream`).
    WhisperStream,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Ctc => "ctc",
            Pass::Whisper => "whisper",
            Pass::WhisperStream => "whisper-stream",
        }
    }
}

/// The verdict of phrase-constrained decoding on one utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Confidence reached the `--reject` threshold.
    pub accepted: bool,
    /// The phrase as written in the file, when a complete phrase was decoded.
    pub phrase: Option<String>,
    pub slots: Vec<Slot>,
    /// exp((constrained - free) / tokens), in [0, 1] (see decode/command.rs).
    pub confidence: f64,
    /// The best complete phrase decoded (the event's text when accepted).
    pub best: String,
    /// What the model heard without the phrases (greedy decoding).
    pub heard: String,
}

impl Command {
    /// The verdict on `best` (matched to its phrase, if complete): accepted
    /// when it matched and `confidence` reaches `reject`.
    fn new(
        matched: Option<Match>,
        confidence: f64,
        reject: f64,
        best: String,
        heard: String,
    ) -> Self {
        Command {
            accepted: matched.is_some() && confidence >= reject,
            slots: matched
                .as_ref()
                .map(|m| m.slots.clone())
                .unwrap_or_default(),
            phrase: matched.map(|m| m.phrase),
            confidence,
            best,
            heard,
        }
    }
}

/// Compute spent in model steps and in CTC decoding plus endpointing since
/// the last `Stream::take_timing` (for `hark bench`).
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTiming {
    pub steps: u32,
    pub model: Duration,
    pub decode: Duration,
    /// Finals passes run, and their time (endpoint to final text).
    pub finals: u32,
    pub finals_time: Duration,
    /// Seconds of audio the finals passes read.
    pub finals_audio_s: f64,
}

/// A language model and the beam search settings to decode with it.
#[derive(Clone, Debug)]
pub struct LmDecoding {
    pub lm: Arc<CharLm>,
    pub tuning: Tuning,
}

/// Phrase-constrained decoding (`--phrases`) and its rejection threshold.
#[derive(Clone, Debug)]
pub struct CommandDecoding {
    pub phrases: Arc<Phrases>,
    pub beam: usize,
    /// Added to a prefix's rank per token (see decode/command.rs).
    pub token_bonus: f64,
    /// Commands whose confidence is below this are rejected.
    pub reject: f64,
    /// Read each command with the finals decoder in this grammar (the
    /// stream's `finals` model), with a beam this wide; None: the CTC
    /// grammar search's verdict is the command.
    pub decoder: Option<Arc<TokenGrammar>>,
    pub decoder_beam: usize,
}

#[derive(Clone, Debug, Default)]
pub struct StreamConfig {
    pub endpoint: EndpointConfig,
    pub partials: bool,
    /// Beam search with this language model; greedy decoding when None.
    pub lm: Option<LmDecoding>,
    /// Decode only these phrases (the LM is not used then).
    pub commands: Option<CommandDecoding>,
    /// Write finals with this Whisper model (not with `commands`).
    pub finals: Option<Arc<FinalsModel>>,
}

/// The stream's recent audio at the model rate, for the finals pass: a
/// ring holding the longest utterance, allocated once.
struct History {
    ring: Vec<f32>,
    /// Samples pushed since the stream began.
    total: u64,
    /// The utterance, copied out of the ring (same capacity).
    utterance: Vec<f32>,
}

impl History {
    fn new(capacity: usize) -> Self {
        History {
            ring: vec![0.0; capacity.max(1)],
            total: 0,
            utterance: Vec::with_capacity(capacity.max(1)),
        }
    }

    fn push(&mut self, samples: &[f32]) {
        let cap = self.ring.len();
        let tail = if samples.len() > cap {
            &samples[samples.len() - cap..]
        } else {
            samples
        };
        self.total += (samples.len() - tail.len()) as u64;
        for &x in tail {
            self.ring[(self.total % cap as u64) as usize] = x;
            self.total += 1;
        }
    }

    /// Copy samples [start, end) (stream positions, clamped to what the
    /// ring still holds) into `self.utterance`.
    fn take(&mut self, start: u64, end: u64) -> &[f32] {
        let cap = self.ring.len() as u64;
        let end = end.min(self.total);
        let start = start.max(self.total.saturating_sub(cap)).min(end);
        self.utterance.clear();
        for i in start..end {
            self.utterance.push(self.ring[(i % cap) as usize]);
        }
        &self.utterance
    }
}

/// Speech before the first token that the finals pass still reads (the
/// CTC pass's first token comes late on some onsets), in seconds.
const FINALS_LEAD_S: f64 = 0.5;

struct Core {
    model: Arc<Model>,
    cfg: StreamConfig,
    tokens: Tokens,
    feats: Vec<f32>,
    fill: usize,
    state: Vec<Tensor>,
    log_probs: Vec<f32>,
    /// Greedy CTC: the transcript without an LM, and always the
    /// frame-level blank/speech counts that the endpoint rules read.
    ctc: CtcState,
    beam: Option<BeamSearch>,
    command: Option<CommandSearch>,
    text: String,
    last_partial: String,
    frame_s: f64,
    sample_rate: f64,
    gap_samples_total: u64,
    gap_samples_pending: u64,
    arrival: Instant,
    error: Option<crate::error::HarkError>,
    chunks_run: u64,
    timing: StepTiming,
    finals: Option<FinalsPass>,
    /// `--finals stream`: the converted encoder, fed as the utterance goes.
    converted: Option<Converted>,
    history: History,
    output_frame_samples: u64,
}

/// The streaming encoder of `--finals stream` and where in the stream its
/// utterance is: it starts FINALS_LEAD_S before the utterance's first
/// token (read back from the history then) and is fed up to the streaming
/// pass's frame after every chunk, so that at the endpoint only the
/// decoder is left to run.
struct Converted {
    enc: StreamEncoder,
    /// The utterance's first sample (stream samples at the model rate),
    /// once it has a token.
    start: Option<u64>,
    /// Samples fed so far, up to (exclusive).
    fed: u64,
}

/// Samples to model input frames: the filterbank, or, for a waveform
/// model, each sample as a one-value frame.
enum Frontend {
    Fbank(Box<Fbank>),
    Waveform,
}

impl Frontend {
    fn new(info: &crate::model::ModelInfo) -> Self {
        match info.fbank() {
            Some(f) => Frontend::Fbank(Box::new(Fbank::new(f))),
            None => Frontend::Waveform,
        }
    }

    fn accept(&mut self, samples: &[f32], on_frame: impl FnMut(&[f32])) {
        match self {
            Frontend::Fbank(f) => f.accept(samples, on_frame),
            Frontend::Waveform => samples.chunks(1).for_each(on_frame),
        }
    }

    fn reset(&mut self) {
        if let Frontend::Fbank(f) = self {
            f.reset();
        }
    }
}

pub struct Stream {
    frontend: Frontend,
    core: Core,
}

impl Stream {
    pub fn new(model: Arc<Model>, cfg: StreamConfig) -> Result<Self> {
        let info = &model.info;
        let frame_s = info.output_frame_samples() as f64 / info.sample_rate_hz() as f64;
        let max_frames = (cfg.endpoint.max_utterance_ms as f64 / 1000.0 / frame_s).ceil() as usize;
        let out_frames = info.chunk_frames / info.subsampling;
        let beam = match &cfg.lm {
            Some(d) => Some(BeamSearch::new(
                d.lm.clone(),
                d.tuning,
                &info.tokens,
                info.blank_id,
                max_frames + out_frames,
            )?),
            None => None,
        };
        let command = cfg.commands.as_ref().map(|c| {
            CommandSearch::new(
                c.phrases.clone(),
                c.beam,
                c.token_bonus,
                info.tokens.len(),
                info.blank_id,
                max_frames + out_frames,
            )
        });
        let finals = match &cfg.finals {
            Some(f) => {
                if info.sample_rate_hz() != crate::finals::mel::SAMPLE_RATE_HZ {
                    return Err(crate::error::HarkError::Config(format!(
                        "--finals whisper needs a {} Hz model; {} runs at {} Hz",
                        crate::finals::mel::SAMPLE_RATE_HZ,
                        model.source,
                        info.sample_rate_hz()
                    )));
                }
                Some(FinalsPass::new(f.clone())?)
            }
            None => None,
        };
        let history_samples = match finals {
            Some(_) => {
                let utt =
                    cfg.endpoint.max_utterance_ms as usize * info.sample_rate_hz() as usize / 1000;
                let chunk = info.chunk_frames * info.frame_shift_samples();
                utt + 2 * chunk + info.sample_rate_hz() as usize
            }
            None => 0,
        };
        let converted = match &cfg.finals {
            Some(f) if f.mode == crate::finals::EncoderMode::Stream => Some(Converted {
                // the utterance starts up to FINALS_LEAD_S before its first
                // token, and a chunk can overshoot the maximum
                enc: StreamEncoder::new(
                    f.clone(),
                    ((cfg.endpoint.max_utterance_ms as f64 / 1000.0 + FINALS_LEAD_S)
                        * info.sample_rate_hz() as f64) as usize
                        + info.chunk_frames * info.frame_shift_samples(),
                )?,
                start: None,
                fed: 0,
            }),
            _ => None,
        };
        let core = Core {
            finals,
            converted,
            history: History::new(history_samples),
            output_frame_samples: info.output_frame_samples() as u64,
            tokens: Tokens::new(info.tokens.clone(), info.blank_id),
            feats: vec![0.0; info.chunk_frames * info.frame_dim()],
            fill: 0,
            state: model.initial_state(),
            log_probs: vec![0.0; out_frames * info.tokens.len()],
            // a chunk can overshoot the maximum length by one chunk
            ctc: CtcState::new(info.blank_id, max_frames + out_frames),
            beam,
            command,
            text: String::with_capacity(4 * (max_frames + out_frames)),
            last_partial: String::with_capacity(4 * (max_frames + out_frames)),
            frame_s,
            sample_rate: info.sample_rate_hz() as f64,
            gap_samples_total: 0,
            gap_samples_pending: 0,
            arrival: Instant::now(),
            error: None,
            chunks_run: 0,
            timing: StepTiming::default(),
            cfg,
            model: model.clone(),
        };
        Ok(Stream {
            frontend: Frontend::new(&model.info),
            core,
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.core.model
    }

    /// Model steps run so far.
    pub fn chunks_run(&self) -> u64 {
        self.core.chunks_run
    }

    /// Model and decoding time since the last call; resets the counters.
    pub fn take_timing(&mut self) -> StepTiming {
        std::mem::take(&mut self.core.timing)
    }

    /// Record input lost before the next samples (e.g. a ring overrun).
    pub fn note_gap(&mut self, samples_at_model_rate: u64) {
        self.core.gap_samples_total += samples_at_model_rate;
        self.core.gap_samples_pending += samples_at_model_rate;
    }

    /// Feed mono samples at the model's sample rate; events are appended.
    pub fn push(&mut self, samples: &[f32], events: &mut Vec<Event>) -> Result<()> {
        self.push_arrived(samples, Instant::now(), events)
    }

    /// `push`, for samples whose last one arrived at `arrival` (earlier
    /// than now when they waited in a queue); event latencies count from it.
    pub fn push_arrived(
        &mut self,
        samples: &[f32],
        arrival: Instant,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        self.core.arrival = arrival;
        if self.core.finals.is_some() {
            self.core.history.push(samples);
        }
        let core = &mut self.core;
        self.frontend
            .accept(samples, |frame| core.on_frame(frame, events));
        match self.core.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// End of stream: run the last partial chunk (padded as the contract
    /// says) and emit the final transcript of the open utterance.
    pub fn finish(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let core = &mut self.core;
        if core.fill > 0 {
            let bins = core.model.info.frame_dim();
            let pad = core.model.info.pad_frame_value;
            core.feats[core.fill * bins..]
                .iter_mut()
                .for_each(|x| *x = pad);
            core.fill = 0;
            core.run_chunk(events)?;
        }
        core.end_utterance(events);
        core.reset_model_state();
        self.frontend.reset();
        match core.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Core {
    fn on_frame(&mut self, frame: &[f32], events: &mut Vec<Event>) {
        if self.error.is_some() {
            return;
        }
        let bins = frame.len();
        self.feats[self.fill * bins..(self.fill + 1) * bins].copy_from_slice(frame);
        self.fill += 1;
        if self.fill == self.model.info.chunk_frames {
            self.fill = 0;
            if let Err(e) = self.run_chunk(events) {
                self.error = Some(e);
            }
        }
    }

    fn time_s(&self, frame: u64) -> f64 {
        frame as f64 * self.frame_s + self.gap_samples_total as f64 / self.sample_rate
    }

    /// The current utterance's tokens: the best beam's (the final choice
    /// after `finalize`) with an LM, the greedy ones without.
    fn current(&self) -> &[TimedToken] {
        match (&self.command, &self.beam) {
            (Some(c), _) => c.best(),
            (None, Some(b)) => b.best(),
            (None, None) => &self.ctc.tokens,
        }
    }

    fn render_current(&mut self) {
        let ids = match (&self.command, &self.beam) {
            (Some(c), _) => c.best(),
            (None, Some(b)) => b.best(),
            (None, None) => &self.ctc.tokens[..],
        };
        self.tokens.render(ids.iter().map(|t| t.id), &mut self.text);
    }

    fn event(&mut self, kind: EventKind, text: String) -> Event {
        let tokens = self.current();
        let start = tokens
            .first()
            .map(|t| t.frame)
            .unwrap_or(self.ctc.utterance_start);
        let speech_end = tokens.last().map(|t| self.time_s(t.frame + 1));
        let ev = Event {
            kind,
            text,
            start_s: self.time_s(start),
            end_s: self.time_s(self.ctc.frame),
            latency_ms: self.arrival.elapsed().as_secs_f64() * 1000.0,
            gap_ms: self.gap_samples_pending as f64 * 1000.0 / self.sample_rate,
            speech_end_s: speech_end,
            command: None,
            pass: Pass::Ctc,
        };
        self.gap_samples_pending = 0;
        ev
    }

    fn run_chunk(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let t0 = Instant::now();
        self.model
            .step(&self.feats, &mut self.state, &mut self.log_probs)?;
        let t1 = Instant::now();
        self.chunks_run += 1;
        let result = self.decode_chunk(events);
        self.timing.steps += 1;
        self.timing.model += t1 - t0;
        self.timing.decode += t1.elapsed();
        result
    }

    fn decode_chunk(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let vocab = self.tokens.len();
        let first_frame = self.ctc.frame;
        let mut changed = self.ctc.accept(&self.log_probs, vocab);
        self.feed_converted()?;
        if let Some(b) = &mut self.beam {
            b.accept(&self.log_probs, vocab, first_frame);
            changed = true; // the best beam can change without a new greedy token
        }
        if let Some(c) = &mut self.command {
            c.accept(&self.log_probs, vocab, first_frame);
            changed = true;
        }
        if self.cfg.partials && changed {
            self.render_current();
            if self.text != self.last_partial && !self.text.is_empty() {
                self.last_partial.clear();
                self.last_partial.push_str(&self.text);
                let text = self.text.clone();
                let ev = self.event(EventKind::Partial, text);
                events.push(ev);
            }
        }
        match detect(
            &self.cfg.endpoint,
            self.frame_s * 1000.0,
            self.ctc.utterance_frames(),
            self.ctc.trailing_blanks,
            !self.ctc.tokens.is_empty(),
        ) {
            Some(Endpoint::Final) => {
                self.end_utterance(events);
                if self.model.info.reset_on_endpoint {
                    self.reset_model_state();
                }
            }
            Some(Endpoint::Reset) => {
                self.start_utterance();
                if self.model.info.reset_on_endpoint {
                    self.reset_model_state();
                }
            }
            None => {}
        }
        Ok(())
    }

    /// `--finals stream`: the utterance's audio up to the streaming pass's
    /// frame into the converted encoder (from FINALS_LEAD_S before its
    /// first token, once it has one).
    fn feed_converted(&mut self) -> Result<()> {
        let Some(c) = &mut self.converted else {
            return Ok(());
        };
        let ofs = self.output_frame_samples;
        let start = match c.start {
            Some(s) => s,
            None => {
                let Some(first) = self.ctc.tokens.first() else {
                    return Ok(());
                };
                let lead = (FINALS_LEAD_S * self.sample_rate) as u64;
                let s = (first.frame * ofs)
                    .saturating_sub(lead)
                    .max(self.ctc.utterance_start * ofs);
                c.start = Some(s);
                c.fed = s;
                s
            }
        };
        debug_assert!(start <= c.fed);
        let end = self.ctc.frame * ofs;
        if end > c.fed {
            let audio = self.history.take(c.fed, end);
            c.enc.accept(audio)?;
            c.fed = end;
        }
        Ok(())
    }

    fn start_utterance(&mut self) {
        if let Some(c) = &mut self.converted {
            c.enc.reset();
            c.start = None;
        }
        self.ctc.start_utterance();
        if let Some(b) = &mut self.beam {
            b.reset();
        }
        if let Some(c) = &mut self.command {
            c.reset();
        }
    }

    fn end_utterance(&mut self, events: &mut Vec<Event>) {
        if let Some(c) = &mut self.command {
            let verdict = c.finalize();
            self.render_current();
            let heard = !self.ctc.tokens.is_empty();
            if heard || verdict.complete {
                let (command, pass) = match self.decoder_command() {
                    Some(command) => (command, Pass::Whisper),
                    None => (self.command_verdict(verdict), Pass::Ctc),
                };
                let text = match command.accepted {
                    true => command.best.clone(),
                    false => String::new(),
                };
                let mut ev = self.event(EventKind::Final, text);
                ev.command = Some(command);
                ev.pass = pass;
                events.push(ev);
            }
            self.last_partial.clear();
            self.start_utterance();
            return;
        }
        if let Some(b) = &mut self.beam {
            b.finalize();
        }
        self.render_current();
        // never an empty final (a gap still pending at the end of input is
        // only in `listen`'s closing report)
        if !self.text.is_empty() {
            let (text, pass) = match self.finals_text() {
                Some(t) if self.converted.is_some() => (t, Pass::WhisperStream),
                Some(t) => (t, Pass::Whisper),
                None => (self.text.clone(), Pass::Ctc),
            };
            if !text.is_empty() {
                let mut ev = self.event(EventKind::Final, text);
                ev.pass = pass;
                events.push(ev);
            }
        }
        self.last_partial.clear();
        self.start_utterance();
    }

    /// The command of the utterance just decoded (allocates its strings,
    /// once per utterance).
    fn command_verdict(&self, v: Verdict) -> Command {
        let matched = match v.complete {
            true => self
                .command
                .as_ref()
                .and_then(|c| c.phrases().matches(&self.text)),
            false => None,
        };
        let reject = self.cfg.commands.as_ref().map_or(0.0, |c| c.reject);
        let mut heard = String::new();
        self.tokens
            .render(self.ctc.tokens.iter().map(|t| t.id), &mut heard);
        Command::new(matched, v.confidence, reject, self.text.clone(), heard)
    }

    /// The utterance's audio for the finals pass: from a little before its
    /// first token to the endpoint.
    fn utterance_audio(&mut self) -> &[f32] {
        let ofs = self.output_frame_samples;
        let lead = (FINALS_LEAD_S * self.sample_rate) as u64;
        let first = self
            .current()
            .first()
            .map_or(self.ctc.utterance_start, |t| t.frame);
        let start = (first * ofs)
            .saturating_sub(lead)
            .max(self.ctc.utterance_start * ofs);
        let end = self.ctc.frame * ofs;
        self.history.take(start, end)
    }

    /// The finals pass over the utterance's audio; None without a finals
    /// model. An error is kept for `push` to return, and the CTC text
    /// stands.
    fn finals_text(&mut self) -> Option<String> {
        let t0 = Instant::now();
        if self.converted.is_some() {
            return self.converted_text(t0);
        }
        let mut finals = self.finals.take()?;
        let rate = self.sample_rate;
        let audio = self.utterance_audio();
        let seconds = audio.len() as f64 / rate;
        let result = finals.transcribe(audio);
        self.finals = Some(finals);
        match result {
            Ok(f) => {
                self.count_finals(t0, seconds);
                Some(f.text)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// `--finals stream`: the decoder reading what the converted encoder
    /// computed for the utterance (its last chunks and the padding first).
    fn converted_text(&mut self, t0: Instant) -> Option<String> {
        let c = self.converted.as_mut()?;
        c.start?;
        let finals = self.finals.as_mut()?;
        let result = c.enc.finish().and_then(|(cross, seconds)| {
            Ok((finals.transcribe_encoded(&cross, seconds)?, seconds))
        });
        c.enc.reset();
        c.start = None;
        match result {
            Ok((f, seconds)) => {
                self.count_finals(t0, seconds);
                Some(f.text)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// The command as the finals decoder reads it (`CommandDecoding::decoder`);
    /// None without one, for an utterance longer than its window, or on an
    /// error (kept for `push` to return; the CTC verdict stands).
    fn decoder_command(&mut self) -> Option<Command> {
        let cd = self.cfg.commands.clone()?;
        let grammar = cd.decoder.as_ref()?;
        let mut finals = self.finals.take()?;
        let t0 = Instant::now();
        let rate = self.sample_rate;
        let audio = self.utterance_audio();
        let seconds = audio.len() as f64 / rate;
        let result = finals.command(audio, grammar, cd.decoder_beam);
        self.finals = Some(finals);
        let read = match result {
            Ok(r) => r?,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        self.count_finals(t0, seconds);
        let matched = read
            .words
            .as_deref()
            .and_then(|w| grammar.phrases().matches(w));
        Some(Command::new(
            matched,
            read.confidence,
            cd.reject,
            read.words.unwrap_or_default(),
            read.heard,
        ))
    }

    fn count_finals(&mut self, t0: Instant, seconds: f64) {
        self.timing.finals += 1;
        self.timing.finals_time += t0.elapsed();
        self.timing.finals_audio_s += seconds;
    }

    fn reset_model_state(&mut self) {
        // one tensor per state replaced (the old ones are freed): bounded, at endpoints only
        self.state = self.model.initial_state();
    }
}
