//! ALSA capture. `open_capture` asks for 16-bit mono at the model rate and,
//! when a device (e.g. `hw:`) refuses, accepts its native rate and channel
//! count; the recognizer thread converts. `capture_loop` runs on its own
//! thread: it reads periods into one buffer allocated before the loop,
//! pushes them into the SPSC ring, recovers xruns with prepare/start and
//! counts them. It never allocates, locks, logs or waits on the consumer.

use std::sync::atomic::{AtomicBool, Ordering};

use alsa::device_name::HintIter;
use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};
use heapless::spsc::Producer;

use super::ring::{push_period, RingStats};
use crate::error::{HarkError, Result};

pub struct Capture {
    pub pcm: PCM,
    pub rate: u32,
    pub channels: usize,
    pub period_frames: usize,
}

pub fn open_capture(device: &str, want_rate: u32) -> Result<Capture> {
    let dev = |what: &str, e: alsa::Error| {
        HarkError::Device(format!("capture device `{device}`: {what}: {e}"))
    };
    let pcm = PCM::new(device, Direction::Capture, false)
        .map_err(|e| dev("cannot open (does it exist? see `hark devices`)", e))?;
    {
        let hwp = HwParams::any(&pcm).map_err(|e| dev("no hardware parameters", e))?;
        hwp.set_access(Access::RWInterleaved)
            .map_err(|e| dev("interleaved access refused", e))?;
        hwp.set_format(Format::s16())
            .map_err(|e| dev("16-bit little-endian samples refused", e))?;
        if hwp.set_channels(1).is_err() {
            hwp.set_channels_near(1)
                .map_err(|e| dev("no usable channel count", e))?;
        }
        if hwp.set_rate(want_rate, ValueOr::Nearest).is_err() {
            hwp.set_rate_near(want_rate, ValueOr::Nearest)
                .map_err(|e| dev("no usable rate", e))?;
        }
        let rate = hwp.get_rate().map_err(|e| dev("rate", e))?;
        let period = (rate / 50).max(64) as alsa::pcm::Frames; // 20 ms
        hwp.set_period_size_near(period, ValueOr::Nearest)
            .map_err(|e| dev("period size", e))?;
        hwp.set_buffer_size_near(period * 8)
            .map_err(|e| dev("buffer size", e))?;
        pcm.hw_params(&hwp)
            .map_err(|e| dev("hardware parameters refused", e))?;
    }
    let (rate, channels, period_frames) = {
        let cur = pcm
            .hw_params_current()
            .map_err(|e| dev("reading parameters", e))?;
        (
            cur.get_rate().map_err(|e| dev("rate", e))?,
            cur.get_channels().map_err(|e| dev("channels", e))? as usize,
            cur.get_period_size().map_err(|e| dev("period", e))? as usize,
        )
    };
    if rate == 0 || channels == 0 || period_frames == 0 {
        return Err(HarkError::Device(format!(
            "capture device `{device}` reports {rate} Hz, {channels} channels, period {period_frames}"
        )));
    }
    Ok(Capture {
        pcm,
        rate,
        channels,
        period_frames,
    })
}

/// The capture thread's body. Returns when `stop` is set or the device
/// fails for good (then `failed` is set).
pub fn capture_loop(
    cap: &Capture,
    producer: &mut Producer<'_, i16>,
    stats: &RingStats,
    stop: &AtomicBool,
    failed: &AtomicBool,
) {
    let io = match cap.pcm.io_i16() {
        Ok(io) => io,
        Err(_) => {
            failed.store(true, Ordering::Release);
            return;
        }
    };
    let mut period = vec![0i16; cap.period_frames * cap.channels];
    if cap.pcm.start().is_err() {
        // some plugins start on the first read; a real failure shows there
    }
    while !stop.load(Ordering::Acquire) {
        match io.readi(&mut period) {
            Ok(frames) => push_period(producer, &period[..frames * cap.channels], stats),
            Err(e) => {
                stats.xruns.fetch_add(1, Ordering::Relaxed);
                if cap.pcm.try_recover(e, true).is_err()
                    || cap.pcm.start().is_err() && cap.pcm.prepare().is_err()
                {
                    failed.store(true, Ordering::Release);
                    return;
                }
            }
        }
    }
    let _ = cap.pcm.drop();
}

/// Capture-capable PCM names and descriptions from ALSA's device hints.
pub fn list_capture_devices() -> Result<Vec<(String, String)>> {
    let hints = HintIter::new_str(None, "pcm")
        .map_err(|e| HarkError::Device(format!("cannot list ALSA devices: {e}")))?;
    Ok(hints
        .filter(|h| h.direction != Some(Direction::Playback))
        .filter_map(|h| {
            let name = h.name?;
            let desc = h.desc.unwrap_or_default().replace('\n', " — ");
            Some((name, desc))
        })
        .collect())
}
