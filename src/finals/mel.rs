//! Whisper's 80-bin log-mel spectrogram of one utterance (the finals
//! pass's input), as OpenAI's and faster-whisper's feature extractors
//! compute it: periodic Hann window of 400 samples, centred STFT with
//! reflect padding, hop 160, the last frame dropped, power spectrum,
//! Slaney mel filters, log10 floored at 1e-10 and at (max - 8) over the
//! utterance, then (x + 4) / 4. Parity with the Python reference
//! (train/whisper_encoder.py `log_mel`) is a test.
//!
//! Every buffer is allocated in `new`; `compute` allocates nothing. Runs on
//! the recognizer thread at an endpoint.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE_HZ: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_SAMPLES: usize = 160;
pub const N_MELS: usize = 80;
const LOG_FLOOR: f32 = 1e-10;
const DYNAMIC_RANGE_LOG10: f32 = 8.0;

pub struct WhisperMel {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per mel bin: the first FFT bin with a non-zero weight, and the weights.
    filters: Vec<(usize, Vec<f32>)>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl Default for WhisperMel {
    fn default() -> Self {
        Self::new()
    }
}

impl WhisperMel {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let window = (0..N_FFT)
            .map(|i| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        WhisperMel {
            filters: slaney_filters(N_MELS, N_FFT, SAMPLE_RATE_HZ),
            frame: fft.make_input_vec(),
            power: vec![0.0; N_FFT / 2 + 1],
            window,
            spectrum,
            scratch,
            fft,
        }
    }

    /// Frames of `samples` followed by `pad_samples` zeros (what `compute`
    /// writes).
    pub fn frames(samples: usize, pad_samples: usize) -> usize {
        (samples + pad_samples) / HOP_SAMPLES
    }

    /// The log-mel of `samples` (16 kHz, [-1, 1]) followed by `pad_samples`
    /// zeros, as [N_MELS, frames] row-major into `out[..N_MELS * frames]`;
    /// returns `frames`. `out` must hold that many values; the padded input
    /// must be longer than N_FFT / 2 samples (the reflection).
    pub fn compute(&mut self, samples: &[f32], pad_samples: usize, out: &mut [f32]) -> usize {
        let len = samples.len() + pad_samples;
        let frames = Self::frames(samples.len(), pad_samples);
        assert!(len > N_FFT / 2, "utterance too short for the reflection");
        assert!(out.len() >= N_MELS * frames, "mel buffer too small");
        let at = |i: isize| -> f32 {
            // reflect about the first and last sample, zeros past the audio
            let n = len as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            samples.get(j as usize).copied().unwrap_or(0.0)
        };
        let mut peak = f32::NEG_INFINITY;
        for t in 0..frames {
            let start = (t * HOP_SAMPLES) as isize - (N_FFT / 2) as isize;
            self.frame_log10(at, start, |m, v| {
                peak = peak.max(v);
                out[m * frames + t] = v;
            });
        }
        let floor = peak - DYNAMIC_RANGE_LOG10;
        for v in &mut out[..N_MELS * frames] {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        frames
    }

    /// The log10 mel energies (floored at 1e-10 only) of the frame whose
    /// window starts at sample `start` of `at` (which gives any sample,
    /// padding included), each passed to `put(bin, value)`.
    pub fn frame_log10(
        &mut self,
        at: impl Fn(isize) -> f32,
        start: isize,
        mut put: impl FnMut(usize, f32),
    ) {
        for (i, (x, w)) in self.frame.iter_mut().zip(&self.window).enumerate() {
            *x = at(start + i as isize) * w;
        }
        // the sizes are the planner's own: this cannot fail
        let _ =
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        for (m, (first, weights)) in self.filters.iter().enumerate() {
            let e: f32 = weights
                .iter()
                .zip(&self.power[*first..])
                .map(|(w, p)| w * p)
                .sum();
            put(m, e.max(LOG_FLOOR).log10());
        }
    }
}

/// Slaney-scale mel filters with Slaney normalization (librosa's default,
/// which Whisper's filters are): per mel bin, its first FFT bin and weights.
fn slaney_filters(n_mels: usize, n_fft: usize, rate: u32) -> Vec<(usize, Vec<f32>)> {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f < min_log_hz {
            f / f_sp
        } else {
            min_log_mel + (f / min_log_hz).ln() / logstep
        }
    };
    let mel_to_hz = |m: f64| {
        if m < min_log_mel {
            m * f_sp
        } else {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        }
    };
    let top = hz_to_mel(rate as f64 / 2.0);
    let hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let bins = n_fft / 2 + 1;
    let fft_hz = |k: usize| k as f64 * rate as f64 / n_fft as f64;
    (0..n_mels)
        .map(|m| {
            let norm = 2.0 / (hz[m + 2] - hz[m]);
            let w: Vec<f64> = (0..bins)
                .map(|k| {
                    let lower = (fft_hz(k) - hz[m]) / (hz[m + 1] - hz[m]);
                    let upper = (hz[m + 2] - fft_hz(k)) / (hz[m + 2] - hz[m + 1]);
                    lower.min(upper).max(0.0) * norm
                })
                .collect();
            let first = w.iter().position(|&x| x > 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&x| x > 0.0).unwrap_or(first);
            (first, w[first..=last].iter().map(|&x| x as f32).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_drops_the_last_centred_frame() {
        assert_eq!(WhisperMel::frames(16_000, 0), 100);
        assert_eq!(WhisperMel::frames(16_000, 16_000), 200);
    }

    #[test]
    fn silence_is_the_floor_everywhere() {
        let mut mel = WhisperMel::new();
        let mut out = vec![0.0; N_MELS * 100];
        let n = mel.compute(&[0.0; 16_000], 0, &mut out);
        assert_eq!(n, 100);
        assert!(out.iter().all(|&v| v == (LOG_FLOOR.log10() + 4.0) / 4.0));
    }

    #[test]
    fn filters_cover_the_band_once_each() {
        let f = slaney_filters(N_MELS, N_FFT, SAMPLE_RATE_HZ);
        assert_eq!(f.len(), N_MELS);
        // each filter is a triangle: its non-zero span is short and rising
        assert!(f.iter().all(|(_, w)| !w.is_empty() && w.len() < 40));
        assert!(f.windows(2).all(|p| p[0].0 <= p[1].0));
    }
}
