//! Streaming Kaldi-compatible log-mel filterbank (contract v1, see
//! docs/model-contract.md). Owns its FFT plan and every buffer: after
//! construction, `accept` allocates nothing. Called by the recognizer thread.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::model::FbankConfig;

pub struct Fbank {
    cfg: FbankConfig,
    window: Vec<f32>,
    /// Per mel bin: first FFT bin and its weights.
    filters: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn RealToComplex<f32>>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// Samples not yet consumed by a frame (at most frame_length + shift).
    pending: Vec<f32>,
    out: Vec<f32>,
    frames_emitted: u64,
}

fn mel(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

impl Fbank {
    pub fn new(cfg: &FbankConfig) -> Self {
        let n = cfg.frame_length_samples;
        let window = (0..n)
            .map(|i| {
                let hann =
                    0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n as f64 - 1.0)).cos();
                hann.powf(0.85) as f32
            })
            .collect();
        let n_bins = cfg.fft_size / 2 + 1;
        let (lo, hi) = (mel(cfg.low_freq_hz), mel(cfg.high_freq_hz));
        let delta = (hi - lo) / (cfg.num_bins as f64 + 1.0);
        let filters = (0..cfg.num_bins)
            .map(|m| {
                let left = lo + m as f64 * delta;
                let center = left + delta;
                let right = center + delta;
                let mut first = None;
                let mut weights = Vec::new();
                for k in 0..n_bins {
                    let fm = mel(k as f64 * cfg.sample_rate_hz as f64 / cfg.fft_size as f64);
                    if fm > left && fm < right {
                        let w = if fm <= center {
                            (fm - left) / (center - left)
                        } else {
                            (right - fm) / (right - center)
                        };
                        first.get_or_insert(k);
                        weights.push(w as f32);
                    }
                }
                (first.unwrap_or(0), weights)
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.fft_size);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Fbank {
            window,
            filters,
            frame: vec![0.0; cfg.fft_size],
            spectrum,
            scratch,
            power: vec![0.0; n_bins],
            pending: Vec::with_capacity(n + cfg.frame_shift_samples),
            out: vec![0.0; cfg.num_bins],
            fft,
            frames_emitted: 0,
            cfg: cfg.clone(),
        }
    }

    pub fn num_bins(&self) -> usize {
        self.cfg.num_bins
    }

    /// Frames produced since construction or the last `reset`.
    pub fn frames_emitted(&self) -> u64 {
        self.frames_emitted
    }

    pub fn reset(&mut self) {
        self.pending.clear();
        self.frames_emitted = 0;
    }

    /// Feed samples in [-1, 1) at the model's rate; `on_frame` receives each
    /// completed frame (num_bins log-mel values).
    pub fn accept(&mut self, mut samples: &[f32], mut on_frame: impl FnMut(&[f32])) {
        let n = self.cfg.frame_length_samples;
        let shift = self.cfg.frame_shift_samples;
        while !samples.is_empty() {
            let room = self.pending.capacity() - self.pending.len();
            let take = room.min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            while self.pending.len() >= n {
                self.compute_frame();
                on_frame(&self.out);
                self.frames_emitted += 1;
                self.pending.drain(..shift);
            }
        }
    }

    fn compute_frame(&mut self) {
        let c = &self.cfg;
        let n = c.frame_length_samples;
        let scale = c.sample_scale;
        let mut sum = 0.0f64;
        for (dst, &s) in self.frame[..n].iter_mut().zip(&self.pending[..n]) {
            *dst = s * scale;
            sum += *dst as f64;
        }
        if c.remove_dc_offset {
            let mean = (sum / n as f64) as f32;
            self.frame[..n].iter_mut().for_each(|x| *x -= mean);
        }
        if c.preemphasis != 0.0 {
            for i in (1..n).rev() {
                self.frame[i] -= c.preemphasis * self.frame[i - 1];
            }
            self.frame[0] -= c.preemphasis * self.frame[0];
        }
        for (x, w) in self.frame[..n].iter_mut().zip(&self.window) {
            *x *= w;
        }
        self.frame[n..].iter_mut().for_each(|x| *x = 0.0);
        // Lengths are fixed at construction, so the FFT cannot fail.
        let _ =
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        for (p, z) in self.power.iter_mut().zip(&self.spectrum) {
            *p = z.re * z.re + z.im * z.im;
            if !c.use_power {
                *p = p.sqrt();
            }
        }
        for (o, (first, weights)) in self.out.iter_mut().zip(&self.filters) {
            let e: f32 = weights
                .iter()
                .zip(&self.power[*first..])
                .map(|(w, p)| w * p)
                .sum();
            *o = e.max(c.log_floor).ln();
        }
    }
}
