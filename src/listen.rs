//! `hark listen`: the capture thread (ALSA -> ring) and the recognizer
//! loop (ring -> recognizer -> output) on the calling thread. Runs until
//! `stop` is set (SIGINT/SIGTERM), then drains the ring, flushes the open
//! utterance and returns. Overruns of the ring are reported as gaps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::audio::alsa::{capture_loop, open_capture};
use crate::audio::mix_down;
use crate::audio::ring::{new_queue, pop_into, RingStats};
use crate::error::{HarkError, Result};
use crate::model::Model;
use crate::recognizer::Recognizer;
use crate::stream::{Event, StreamConfig};

pub struct ListenReport {
    pub dropped_samples: u64,
    pub xruns: u64,
    pub device_rate: u32,
    pub device_channels: usize,
}

/// Called once the device is open and the model loaded (readiness).
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
        "capturing from `{device}`: {rate} Hz, {channels} channel(s), period {} frames",
        cap.period_frames
    );
    let mut rec = Recognizer::new(model.clone(), rate, cfg)?;
    let mut queue = new_queue();
    let stats = RingStats::default();
    let capture_stop = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    on_ready(rate, channels);

    let block = 4096 - 4096 % channels;
    let mut raw = vec![0i16; block];
    let mut interleaved = vec![0f32; block];
    let mut mono = vec![0f32; block];
    let mut dropped_seen = 0u64;
    let mut result: Result<()> = Ok(());

    std::thread::scope(|s| {
        let (mut producer, mut consumer) = queue.split();
        let (stats_ref, cstop, cfailed) = (&stats, &capture_stop, &failed);
        let handle = std::thread::Builder::new()
            .name("hark-capture".into())
            .spawn_scoped(s, move || {
                capture_loop(&cap, &mut producer, stats_ref, cstop, cfailed)
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
            }
            let dropped = stats.dropped_samples.load(Ordering::Relaxed);
            if dropped != dropped_seen {
                let frames = (dropped - dropped_seen) / channels as u64;
                log::warn!(
                    "ring overrun: {:.0} ms of audio dropped (recognizer slower than real time?)",
                    frames as f64 * 1000.0 / rate as f64
                );
                rec.note_gap(frames, rate);
                dropped_seen = dropped;
            }
            let n = pop_into(&mut consumer, &mut raw);
            let n = n - n % channels; // whole frames only (the ring holds whole periods)
            if n > 0 {
                if let Err(e) = feed(
                    &raw[..n],
                    &mut interleaved,
                    &mut mono,
                    channels,
                    &mut rec,
                    &mut on_event,
                ) {
                    capture_stop.store(true, Ordering::Release);
                    result = Err(e);
                    return;
                }
            } else if !capturing {
                break; // stopped and drained
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    // the capture thread has joined: drain what it pushed last
    {
        let (_, mut consumer) = queue.split();
        loop {
            let n = pop_into(&mut consumer, &mut raw);
            let n = n - n % channels;
            if n == 0 || result.is_err() {
                break;
            }
            result = feed(
                &raw[..n],
                &mut interleaved,
                &mut mono,
                channels,
                &mut rec,
                &mut on_event,
            );
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
        xruns: stats.xruns.load(Ordering::Relaxed),
        device_rate: rate,
        device_channels: channels,
    })
}

fn feed(
    raw: &[i16],
    interleaved: &mut [f32],
    mono: &mut [f32],
    channels: usize,
    rec: &mut Recognizer,
    on_event: &mut impl FnMut(&Event) -> Result<()>,
) -> Result<()> {
    for (f, r) in interleaved.iter_mut().zip(raw) {
        *f = *r as f32 / 32768.0;
    }
    let frames = mix_down(&interleaved[..raw.len()], channels, mono);
    for ev in rec.push(&mono[..frames])? {
        on_event(&ev)?;
    }
    Ok(())
}
