//! Raw PCM source (stdin or any reader): s16le or f32le, interleaved,
//! at a rate and channel count given by flags. One byte buffer, reused;
//! a trailing partial sample at end of input is dropped. A read interrupted
//! by a stop signal (EINTR) ends the input, so SIGTERM works on a stalled pipe.

use std::io::Read;

use super::{mix_down, SampleSource};
use crate::error::{HarkError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFormat {
    S16Le,
    F32Le,
}

impl RawFormat {
    fn bytes(self) -> usize {
        match self {
            RawFormat::S16Le => 2,
            RawFormat::F32Le => 4,
        }
    }
}

pub struct RawSource<R: Read> {
    reader: R,
    rate: u32,
    channels: usize,
    format: RawFormat,
    bytes: Vec<u8>,
    have: usize,
    interleaved: Vec<f32>,
    eof: bool,
}

impl<R: Read> RawSource<R> {
    pub fn new(reader: R, rate: u32, channels: usize, format: RawFormat) -> Result<Self> {
        if rate == 0 || channels == 0 || channels > super::MAX_CHANNELS {
            return Err(HarkError::Config(format!(
                "raw input needs --rate > 0 and --channels from 1 to {}",
                super::MAX_CHANNELS
            )));
        }
        let frame = channels * format.bytes();
        Ok(RawSource {
            reader,
            rate,
            channels,
            format,
            bytes: vec![0; frame * 4096],
            have: 0,
            interleaved: Vec::with_capacity(channels * 4096),
            eof: false,
        })
    }
}

impl<R: Read> SampleSource for RawSource<R> {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) -> Result<usize> {
        let frame = self.channels * self.format.bytes();
        while !self.eof && self.have < frame {
            match self.reader.read(&mut self.bytes[self.have..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.have += n,
                // only the stop signals are caught, and they interrupt reads
                // (main.rs): end the input here, keeping what was read
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.eof = true,
                Err(e) => return Err(HarkError::Runtime(format!("reading raw input: {e}"))),
            }
        }
        let frames = (self.have / frame).min(out.len());
        if frames == 0 {
            return Ok(0);
        }
        let used = frames * frame;
        self.interleaved.clear();
        match self.format {
            RawFormat::S16Le => self.interleaved.extend(
                self.bytes[..used]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0),
            ),
            RawFormat::F32Le => self
                .interleaved
                .extend(self.bytes[..used].chunks_exact(4).map(|b| {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if v.is_finite() {
                        v
                    } else {
                        0.0
                    }
                })),
        }
        self.bytes.copy_within(used..self.have, 0);
        self.have -= used;
        Ok(mix_down(&self.interleaved, self.channels, out))
    }
}
