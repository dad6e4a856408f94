//! Audio sources (WAV file, raw PCM on stdin, ALSA capture), the lock-free
//! sample ring between capture and recognition, and rate conversion.

pub mod alsa;
pub mod resample;
pub mod ring;
pub mod stdin;
pub mod wav;

use crate::error::Result;

/// Most interleaved channels a source may have (buffers are sized by it).
pub const MAX_CHANNELS: usize = 256;

/// A finite or endless source of mono f32 samples at a fixed rate.
pub trait SampleSource {
    /// Sample rate of the samples `read` returns.
    fn rate(&self) -> u32;
    /// Fill `out` with mono samples in [-1, 1); 0 means end of input.
    fn read(&mut self, out: &mut [f32]) -> Result<usize>;
}

/// Average interleaved channels into mono, in place over `out`.
pub fn mix_down(interleaved: &[f32], channels: usize, out: &mut [f32]) -> usize {
    let frames = interleaved.len() / channels.max(1);
    let scale = 1.0 / channels.max(1) as f32;
    for (o, f) in out
        .iter_mut()
        .zip(interleaved.chunks_exact(channels.max(1)))
        .take(frames)
    {
        *o = f.iter().sum::<f32>() * scale;
    }
    frames.min(out.len())
}
