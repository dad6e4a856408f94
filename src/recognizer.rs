//! The recognizer pipeline from any sample source to transcript events:
//! mono samples at the source rate -> rate conversion -> `Stream`. Used by
//! `transcribe` (files, stdin) and by `listen` (the ALSA ring consumer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::audio::resample::ToModelRate;
use crate::audio::SampleSource;
use crate::error::Result;
use crate::model::Model;
use crate::stream::{Event, Stream, StreamConfig};

pub struct Recognizer {
    resampler: ToModelRate,
    stream: Stream,
    events: Vec<Event>,
}

impl Recognizer {
    pub fn new(model: Arc<Model>, input_rate: u32, cfg: StreamConfig) -> Result<Self> {
        let resampler = ToModelRate::new(input_rate, model.info.sample_rate_hz())?;
        Ok(Recognizer {
            resampler,
            stream: Stream::new(model, cfg)?,
            events: Vec::with_capacity(16),
        })
    }

    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Model and decoding time since the last call (see `Stream::take_timing`).
    pub fn take_timing(&mut self) -> crate::stream::StepTiming {
        self.stream.take_timing()
    }

    /// Input lost upstream, in samples at the input rate.
    pub fn note_gap(&mut self, samples: u64, input_rate: u32) {
        let model_rate = self.stream.model().info.sample_rate_hz() as u64;
        self.stream
            .note_gap(samples * model_rate / input_rate.max(1) as u64);
    }

    /// Feed mono samples at the input rate; returns the events they completed.
    pub fn push(&mut self, samples: &[f32]) -> Result<std::vec::Drain<'_, Event>> {
        self.push_arrived(samples, Instant::now())
    }

    /// `push`, for samples whose last one arrived at `arrival` (e.g. they
    /// waited in the capture ring); event latencies count from it.
    pub fn push_arrived(
        &mut self,
        samples: &[f32],
        arrival: Instant,
    ) -> Result<std::vec::Drain<'_, Event>> {
        let Recognizer {
            resampler,
            stream,
            events,
        } = self;
        resampler.process(samples, |s| stream.push_arrived(s, arrival, events))?;
        Ok(self.events.drain(..))
    }

    /// End of input: flush everything; returns the last events.
    pub fn finish(&mut self) -> Result<std::vec::Drain<'_, Event>> {
        let Recognizer {
            resampler,
            stream,
            events,
        } = self;
        resampler.finish(|s| stream.push(s, events))?;
        stream.finish(events)?;
        Ok(self.events.drain(..))
    }
}

/// Run a whole source through a fresh recognizer, calling `on_event` for
/// each event. Stops early (and still flushes) when `stop` is set.
pub fn run_source(
    model: &Arc<Model>,
    source: &mut dyn SampleSource,
    cfg: StreamConfig,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&Event) -> Result<()>,
) -> Result<()> {
    let mut rec = Recognizer::new(model.clone(), source.rate(), cfg)?;
    let mut buf = vec![0.0f32; 4096];
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for ev in rec.push(&buf[..n])? {
            on_event(&ev)?;
        }
    }
    for ev in rec.finish()? {
        on_event(&ev)?;
    }
    Ok(())
}

/// Concatenate the finals of a whole source (for tests and TSV).
pub fn transcribe_source(
    model: &Arc<Model>,
    source: &mut dyn SampleSource,
    cfg: StreamConfig,
) -> Result<String> {
    let stop = AtomicBool::new(false);
    let mut text = String::new();
    run_source(model, source, cfg, &stop, |ev| {
        if ev.kind == crate::stream::EventKind::Final && !ev.text.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&ev.text);
        }
        Ok(())
    })?;
    Ok(text)
}

/// In-memory source of mono samples (tests, benches).
pub struct SliceSource<'a> {
    pub samples: &'a [f32],
    pub rate: u32,
    pub pos: usize,
}

impl SampleSource for SliceSource<'_> {
    fn rate(&self) -> u32 {
        self.rate
    }
    fn read(&mut self, out: &mut [f32]) -> Result<usize> {
        let n = out.len().min(self.samples.len() - self.pos);
        out[..n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
