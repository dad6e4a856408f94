//! `hark listen`: the capture thread (ALSA -> ring) and the recognizer
//! loop (ring -> recognizer -> output) on the calling thread. Runs until
//! `stop` is set (SIGINT/SIGTERM), then drains the ring, flushes the open
//! utterance and returns. Overruns of the ring are reported as gaps at the
//! point of the stream where audio was lost, and warned about at most every
//! 5 s. A source that delivers audio much faster than real time (an ALSA
//! `null` or `file` PCM: no sound card clock) is reported once; its dropped
//! audio is then not marked as gaps (they would be hours of "lost" time).
//! The recognizer loop allocates its buffers once, before it starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audio::alsa::{capture_loop, open_capture};
use crate::audio::mix_down;
use crate::audio::ring::{Ring, RingItem, RingStats};
use crate::error::{HarkError, Result};
use crate::model::Model;
use crate::notify::{self, Watchdog};
use crate::recognizer::Recognizer;
use crate::stream::{Event, StreamConfig};

pub struct ListenReport {
    pub dropped_samples: u64,
    /// The source delivered audio much faster than real time.
    pub unpaced: bool,
    pub xruns: u64,
    pub device_rate: u32,
    pub device_channels: usize,
}

/// How often a persistent ring overrun is reported.
const OVERRUN_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// A source is unpaced when it has delivered more than this many times the
/// audio that real time allows since capture started, plus `UNPACED_SLACK_S`
/// (a sound card delivers its buffer, 160 ms here, at once at the start).
const UNPACED_FACTOR: f64 = 2.0;
const UNPACED_SLACK_S: f64 = 1.0;

/// Capture from `device` and recognize until `stop` is set; `on_ready` is
/// called once the device is open and the model loaded (readiness). Under
/// systemd the recognizer loop feeds the watchdog and reports stopping.
pub fn listen(
    model: &Arc<Model>,
    device: &str,
    cfg: StreamConfig,
    stop: &AtomicBool,
    on_ready: impl FnOnce(u32, usize),
    mut on_event: impl FnMut(&Event) -> Result<()>,
) -> Result<ListenReport> {
    let cap = open_capture(device, model.info.sample_rate_hz())?;
    let (rate, channels) = (cap.rate, cap.channels);
    log::info!(
        "capturing from `{device}`: {rate} Hz, {channels} channel(s), {:?} samples, period {} frames",
        cap.format,
        cap.period_frames
    );
    let mut rec = Recognizer::new(model.clone(), rate, cfg)?;
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut writer, mut reader) = ring.split(&stats);
    let capture_stop = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    on_ready(rate, channels);

    let block = 4096 - 4096 % channels;
    let mut raw = vec![0i16; block];
    let mut bufs = Buffers {
        interleaved: vec![0f32; block],
        mono: vec![0f32; block],
        channels,
        rate,
        stats: &stats,
        consumed: 0,
        pacing: Pacing {
            device,
            started: Instant::now(),
            unpaced: false,
        },
    };
    let mut warned = Warned {
        dropped: 0,
        at: None,
    };
    let mut result: Result<()> = Ok(());
    let mut watchdog = Watchdog::from_env();
    let mut stopping = false;

    std::thread::scope(|s| {
        let (stats_ref, cstop, cfailed) = (&stats, &capture_stop, &failed);
        let handle = std::thread::Builder::new()
            .name("hark-capture".into())
            .spawn_scoped(s, move || {
                capture_loop(&cap, &mut writer, stats_ref, cstop, cfailed)
            });
        if let Err(e) = handle {
            result = Err(HarkError::Runtime(format!(
                "cannot start the capture thread: {e}"
            )));
            return;
        }
        loop {
            let capturing = !stop.load(Ordering::Relaxed) && !failed.load(Ordering::Acquire);
            if !capturing {
                capture_stop.store(true, Ordering::Release);
                if !stopping {
                    notify::stopping();
                    stopping = true;
                }
            }
            watchdog.feed();
            if !bufs.pacing.check(&stats, channels, rate) {
                warned.check(&stats, channels, rate);
            }
            let n = match reader.read(&mut raw, channels, |item| {
                bufs.feed(item, &mut rec, &mut on_event)
            }) {
                Ok(n) => n,
                Err(e) => {
                    capture_stop.store(true, Ordering::Release);
                    result = Err(e);
                    return;
                }
            };
            if n == 0 {
                if !capturing {
                    break; // stopped; the capture thread drains below
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    // the capture thread has joined: take what it pushed last
    while result.is_ok() {
        match reader.read(&mut raw, channels, |item| {
            bufs.feed(item, &mut rec, &mut on_event)
        }) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => result = Err(e),
        }
    }
    result?;
    for ev in rec.finish()? {
        on_event(&ev)?;
    }
    if failed.load(Ordering::Acquire) && !stop.load(Ordering::Relaxed) {
        return Err(HarkError::Runtime(format!(
            "capture device `{device}` failed and could not be recovered"
        )));
    }
    Ok(ListenReport {
        dropped_samples: stats.dropped_samples.load(Ordering::Relaxed),
        unpaced: bufs.pacing.unpaced,
        xruns: stats.xruns.load(Ordering::Relaxed),
        device_rate: rate,
        device_channels: channels,
    })
}

/// Rate-limited overrun warnings: the first at once, then at most one per
/// `OVERRUN_WARNING_INTERVAL` with what was lost since the last one.
struct Warned {
    dropped: u64,
    at: Option<Instant>,
}

impl Warned {
    fn check(&mut self, stats: &RingStats, channels: usize, rate: u32) {
        let dropped = stats.dropped_samples.load(Ordering::Relaxed);
        if dropped == self.dropped
            || self
                .at
                .is_some_and(|t| t.elapsed() < OVERRUN_WARNING_INTERVAL)
        {
            return;
        }
        let ms = (dropped - self.dropped) as f64 / channels as f64 * 1000.0 / rate as f64;
        match self.at {
            None => log::warn!(
                "ring overrun: {ms:.0} ms of audio dropped (the recognizer is slower than real time)"
            ),
            Some(t) => log::warn!(
                "ring overrun goes on: {ms:.0} ms of audio dropped in the last {:.0} s (the recognizer is persistently slower than real time)",
                t.elapsed().as_secs_f64()
            ),
        }
        self.dropped = dropped;
        self.at = Some(Instant::now());
    }
}

/// Whether the source keeps to real time (a sound card) or not.
struct Pacing<'a> {
    device: &'a str,
    started: Instant,
    unpaced: bool,
}

impl Pacing<'_> {
    /// True once the source is known to be unpaced (reported the first time).
    fn check(&mut self, stats: &RingStats, channels: usize, rate: u32) -> bool {
        if self.unpaced {
            return true;
        }
        let samples = stats.pushed_samples.load(Ordering::Relaxed)
            + stats.dropped_samples.load(Ordering::Relaxed);
        let audio_s = samples as f64 / channels.max(1) as f64 / rate.max(1) as f64;
        let wall_s = self.started.elapsed().as_secs_f64();
        if audio_s > UNPACED_FACTOR * wall_s + UNPACED_SLACK_S {
            self.unpaced = true;
            log::warn!(
                "capture device `{}` is not paced: it delivered {audio_s:.0} s of audio in {wall_s:.1} s (an ALSA `null` or `file` PCM, not a sound card?); audio the recognizer cannot keep up with is dropped and not reported as gaps, so timestamps count only the audio recognized",
                self.device
            );
        }
        self.unpaced
    }
}

/// Conversion buffers of the recognizer thread, allocated once.
struct Buffers<'a> {
    interleaved: Vec<f32>,
    mono: Vec<f32>,
    channels: usize,
    rate: u32,
    stats: &'a RingStats,
    /// Samples taken from the ring so far (gaps excluded, like `pushed_samples`).
    consumed: u64,
    pacing: Pacing<'a>,
}

impl Buffers<'_> {
    fn feed(
        &mut self,
        item: RingItem<'_>,
        rec: &mut Recognizer,
        on_event: &mut impl FnMut(&Event) -> Result<()>,
    ) -> Result<()> {
        match item {
            RingItem::Gap(samples) => {
                // an unpaced source lost no real time: nothing to mark
                if !self.pacing.check(self.stats, self.channels, self.rate) {
                    rec.note_gap(samples / self.channels as u64, self.rate);
                }
                Ok(())
            }
            RingItem::Samples(raw) => {
                for (f, r) in self.interleaved.iter_mut().zip(raw) {
                    *f = *r as f32 / 32768.0;
                }
                let frames = mix_down(
                    &self.interleaved[..raw.len()],
                    self.channels,
                    &mut self.mono,
                );
                // Latency counts from when the last of these samples was
                // captured: what the capture thread pushed after them is how
                // long they waited in the ring (to within a period).
                self.consumed += raw.len() as u64;
                let behind = self
                    .stats
                    .pushed_samples
                    .load(Ordering::Relaxed)
                    .saturating_sub(self.consumed);
                let waited = behind as f64 / self.channels as f64 / self.rate as f64;
                let now = Instant::now();
                let arrival = Duration::try_from_secs_f64(waited)
                    .ok()
                    .and_then(|d| now.checked_sub(d))
                    .unwrap_or(now);
                for ev in rec.push_arrived(&self.mono[..frames], arrival)? {
                    on_event(&ev)?;
                }
                Ok(())
            }
        }
    }
}
