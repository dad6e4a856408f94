//! ALSA capture. `open_capture` asks for 16-bit mono at the model rate and,
//! when a device (e.g. `hw:`) refuses, accepts its native rate and channel
//! count, and 32-bit samples when it has no 16-bit format (I2S microphones);
//! the recognizer thread converts rate and channels. `capture_loop` runs on
//! its own thread: it reads periods into buffers allocated before the loop,
//! pushes them into the SPSC ring, recovers xruns with prepare/start and
//! counts them. It never allocates, locks, logs or waits on the consumer.
//! `quiet_library_errors` keeps alsa-lib's own `ALSA lib ...` lines off
//! stderr (hark reports each failure in one line of its own).

use std::sync::atomic::{AtomicBool, Ordering};

use alsa::device_name::HintIter;
use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::ring::{RingStats, RingWriter};
use crate::error::{HarkError, Result};

/// Sample format the device delivers (the ring carries 16-bit samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceFormat {
    S16,
    /// 32-bit (or 24-in-32) samples; the top 16 bits go into the ring.
    S32,
}

pub struct Capture {
    pub pcm: PCM,
    pub rate: u32,
    pub channels: usize,
    pub period_frames: usize,
    pub format: DeviceFormat,
}

pub fn open_capture(device: &str, want_rate: u32) -> Result<Capture> {
    let dev = |what: &str, e: alsa::Error| {
        HarkError::Device(format!("capture device `{device}`: {what}: {e}"))
    };
    let pcm = PCM::new(device, Direction::Capture, false)
        .map_err(|e| dev("cannot open (does it exist? see `hark devices`)", e))?;
    let format = {
        let hwp = HwParams::any(&pcm).map_err(|e| dev("no hardware parameters", e))?;
        hwp.set_access(Access::RWInterleaved)
            .map_err(|e| dev("interleaved access refused", e))?;
        let format = if hwp.test_format(Format::s16()).is_ok() {
            DeviceFormat::S16
        } else if hwp.test_format(Format::s32()).is_ok() {
            DeviceFormat::S32
        } else {
            return Err(HarkError::Device(format!(
                "capture device `{device}`: offers neither S16_LE nor S32_LE samples"
            )));
        };
        hwp.set_format(match format {
            DeviceFormat::S16 => Format::s16(),
            DeviceFormat::S32 => Format::s32(),
        })
        .map_err(|e| dev("sample format refused", e))?;
        if hwp.test_channels(1).is_ok() {
            hwp.set_channels(1).map_err(|e| dev("mono refused", e))?;
        } else {
            hwp.set_channels_near(1)
                .map_err(|e| dev("no usable channel count", e))?;
        }
        if hwp.test_rate(want_rate).is_ok() {
            hwp.set_rate(want_rate, ValueOr::Nearest)
                .map_err(|e| dev("rate refused", e))?;
        } else {
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
        format
    };
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
        format,
    })
}

/// The capture thread's body. Returns when `stop` is set or the device
/// fails for good (then `failed` is set).
pub fn capture_loop(
    cap: &Capture,
    ring: &mut RingWriter<'_>,
    stats: &RingStats,
    stop: &AtomicBool,
    failed: &AtomicBool,
) {
    drop_library_errors();
    let samples = cap.period_frames * cap.channels;
    // the only allocations of this thread, before the loop
    let mut period = vec![0i16; samples];
    let mut wide = match cap.format {
        DeviceFormat::S16 => Vec::new(),
        DeviceFormat::S32 => vec![0i32; samples],
    };
    let (io16, io32) = match cap.format {
        DeviceFormat::S16 => (cap.pcm.io_i16().ok(), None),
        DeviceFormat::S32 => (None, cap.pcm.io_i32().ok()),
    };
    if io16.is_none() && io32.is_none() {
        failed.store(true, Ordering::Release);
        return;
    }
    // Capture streams also start on the first read; a real failure shows there.
    let _ = cap.pcm.start();
    while !stop.load(Ordering::Acquire) {
        let got = match (&io16, &io32) {
            (Some(io), _) => io.readi(&mut period),
            (_, Some(io)) => io.readi(&mut wide).inspect(|&frames| {
                for (d, w) in period.iter_mut().zip(&wide[..frames * cap.channels]) {
                    *d = (*w >> 16) as i16;
                }
            }),
            (None, None) => return,
        };
        match got {
            Ok(frames) => {
                ring.push(&period[..frames * cap.channels]);
            }
            // a signal (SIGINT/SIGTERM) interrupted the wait: not an overrun
            Err(e) if e.errno() == EINTR => {}
            Err(e) => {
                stats.xruns.fetch_add(1, Ordering::Relaxed);
                if cap.pcm.try_recover(e, true).is_err() {
                    failed.store(true, Ordering::Release);
                    break;
                }
                if cap.pcm.state() == alsa::pcm::State::Prepared && cap.pcm.start().is_err() {
                    failed.store(true, Ordering::Release);
                    break;
                }
            }
        }
    }
    ring.close();
    let _ = cap.pcm.drop();
}

/// Keep alsa-lib's error messages, which it prints to stderr as `ALSA lib
/// file:line:(function) ...` before hark's own line about the same failure,
/// off stderr for ALSA calls made on the calling thread (alsa-lib's
/// handler is per thread). They are logged at debug level (`HARK_LOG=debug`)
/// with where they come from and the error code; their formatted text is
/// not rebuilt (that needs the C varargs).
pub fn quiet_library_errors() {
    // SAFETY: installs a function with the signature alsa-lib declares for
    // its thread-local error handler; it only reads the two C strings and
    // the error code it is given, and never the variadic argument list.
    unsafe {
        alsa_sys::snd_lib_error_set_local(Some(log_library_error));
    }
}

/// `quiet_library_errors` for the capture thread: the messages are dropped
/// (logging would allocate there).
fn drop_library_errors() {
    // SAFETY: as in `quiet_library_errors`; this handler reads nothing.
    unsafe {
        alsa_sys::snd_lib_error_set_local(Some(ignore_library_error));
    }
}

unsafe extern "C" fn log_library_error(
    file: *const std::ffi::c_char,
    line: std::ffi::c_int,
    function: *const std::ffi::c_char,
    err: std::ffi::c_int,
    _fmt: *const std::ffi::c_char,
    _args: *mut alsa_sys::__va_list_tag,
) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let text = |p: *const std::ffi::c_char| {
        if p.is_null() {
            std::borrow::Cow::Borrowed("?")
        } else {
            // SAFETY: alsa-lib passes NUL-terminated static strings
            // (__FILE__, __func__) that outlive this call.
            unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy()
        }
    };
    let why = if err == 0 {
        String::new()
    } else {
        format!(": {}", std::io::Error::from_raw_os_error(err.abs()))
    };
    log::debug!("alsa-lib: {} ({}:{line}){why}", text(function), text(file));
}

unsafe extern "C" fn ignore_library_error(
    _file: *const std::ffi::c_char,
    _line: std::ffi::c_int,
    _function: *const std::ffi::c_char,
    _err: std::ffi::c_int,
    _fmt: *const std::ffi::c_char,
    _args: *mut alsa_sys::__va_list_tag,
) {
}

/// errno EINTR (4 on every Linux architecture).
const EINTR: i32 = 4;

/// What `hark devices` lists.
pub struct DeviceList {
    /// Capture-capable PCM names and descriptions (ALSA's device hints).
    pub devices: Vec<(String, String)>,
    /// Sound cards the kernel has.
    pub cards: usize,
    /// Entries of `devices` on a sound card (the rest are plugins such as
    /// `null`, which need no hardware).
    pub hardware: usize,
}

/// Capture-capable PCMs from ALSA's device hints, and how many of them are
/// on a sound card.
pub fn list_capture_devices() -> Result<DeviceList> {
    let hints = HintIter::new_str(None, "pcm")
        .map_err(|e| HarkError::Device(format!("cannot list ALSA devices: {e}")))?;
    let devices: Vec<(String, String)> = hints
        .filter(|h| h.direction != Some(Direction::Playback))
        .filter_map(|h| {
            let name = h.name?;
            let desc = h.desc.unwrap_or_default().replace('\n', " — ");
            Some((name, desc))
        })
        .collect();
    // a card's PCMs are named with `CARD=`; plugins are not
    let hardware = devices.iter().filter(|(n, _)| n.contains("CARD=")).count();
    Ok(DeviceList {
        devices,
        // an error repeats (the iterator does not advance): stop at it
        cards: alsa::card::Iter::new().take_while(|c| c.is_ok()).count(),
        hardware,
    })
}
