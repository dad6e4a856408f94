//! Raw PCM and streamed WAV on stdin (`audio::stdin::RawSource`): the first
//! four bytes choose the sample format, channel count, rate, whether the
//! input goes through `detect` (RIFF/WAVE and compressed-format detection,
//! as `transcribe -` does) or `new` (headerless), and how the fake stdin
//! splits its reads (short reads, EINTR). The rest is the byte stream.
#![no_main]

use std::io::{ErrorKind, Read};

use hark::audio::stdin::{RawFormat, RawSource, RawSpec};
use hark::audio::SampleSource;
use libfuzzer_sys::fuzz_target;

const RATES: [u32; 8] = [16_000, 8_000, 44_100, 48_000, 1, 4_000, 768_000, u32::MAX];

/// A pipe that hands out at most `step` bytes per read, and fails one read
/// with EINTR when `eintr_at` is reached (what a stop signal does).
struct Pipe<'a> {
    data: &'a [u8],
    step: usize,
    eintr_at: Option<usize>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.eintr_at == Some(self.data.len()) {
            self.eintr_at = None;
            return Err(ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.data.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, body) = data.split_at(4);
    let spec = RawSpec {
        format: RawFormat::ALL[(ctl[0] & 7) as usize],
        // 0 and more than MAX_CHANNELS included: both must be refused
        channels: ctl[1] as usize + if ctl[0] & 0x80 != 0 { 250 } else { 0 },
        rate: RATES[(ctl[2] & 7) as usize],
    };
    let detect = ctl[0] & 0x08 == 0;
    let pipe = Pipe {
        data: body,
        step: [1, 3, 64, 4096][(ctl[2] >> 3 & 3) as usize],
        eintr_at: (ctl[2] & 0x20 != 0).then(|| body.len() / 2),
    };
    let src = if detect {
        RawSource::detect(pipe, "stdin", spec)
    } else {
        RawSource::new(pipe, spec.rate, spec.channels, spec.format)
    };
    let Ok(mut src) = src else { return };
    let _ = src.rate();
    let mut out = vec![0f32; 4096];
    let sizes = [1usize, 5, 160, 4096];
    let mut total = 0usize;
    for i in 0.. {
        let n = sizes[(i + ctl[3] as usize) % sizes.len()];
        match src.read(&mut out[..n]) {
            Ok(0) | Err(_) => break,
            Ok(got) => {
                assert!(got <= n);
                assert!(out[..got].iter().all(|x| x.is_finite()));
                total += got;
            }
        }
        assert!(
            total <= body.len(),
            "{total} samples from {} bytes",
            body.len()
        );
    }
});
