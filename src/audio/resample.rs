//! Rate conversion of mono audio to the model's rate (rubato's synchronous
//! FFT resampler). Buffers are allocated at construction; `process` does not
//! allocate. A pass-through when the rates already match.

use rubato::{FftFixedInOut, Resampler};

use crate::error::{HarkError, Result};

/// Input rates hark converts from: telephone band up to studio rates.
pub const MIN_RATE_HZ: u32 = 4_000;
pub const MAX_RATE_HZ: u32 = 768_000;

pub struct ToModelRate {
    inner: Option<Inner>,
}

struct Inner {
    rs: FftFixedInOut<f32>,
    inbuf: Vec<Vec<f32>>,
    fill: usize,
    outbuf: Vec<Vec<f32>>,
    /// Output samples still to drop (the resampler's delay).
    skip: usize,
    in_total: u64,
    out_total: u64,
    rate_in: u64,
    rate_out: u64,
}

impl ToModelRate {
    pub fn new(rate_in: u32, rate_out: u32) -> Result<Self> {
        if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate_in) {
            return Err(HarkError::Input(format!(
                "sample rate {rate_in} Hz is not supported ({MIN_RATE_HZ} to {MAX_RATE_HZ} Hz)"
            )));
        }
        // The output rate comes from the model's metadata: the FFT's size
        // grows with it, so it gets the same bounds.
        if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate_out) {
            return Err(HarkError::Model(format!(
                "model sample rate {rate_out} Hz is not supported ({MIN_RATE_HZ} to {MAX_RATE_HZ} Hz)"
            )));
        }
        if rate_in == rate_out {
            return Ok(ToModelRate { inner: None });
        }
        let rs = FftFixedInOut::<f32>::new(rate_in as usize, rate_out as usize, 1024, 1).map_err(
            |e| {
                HarkError::Input(format!(
                    "cannot resample {rate_in} Hz to {rate_out} Hz: {e}"
                ))
            },
        )?;
        let n_in = rs.input_frames_next();
        let n_out = rs.output_frames_max();
        let skip = rs.output_delay();
        Ok(ToModelRate {
            inner: Some(Inner {
                rs,
                inbuf: vec![vec![0.0; n_in]],
                fill: 0,
                outbuf: vec![vec![0.0; n_out]],
                skip,
                in_total: 0,
                out_total: 0,
                rate_in: rate_in as u64,
                rate_out: rate_out as u64,
            }),
        })
    }

    /// Convert `samples`; `sink` receives converted blocks.
    pub fn process(
        &mut self,
        mut samples: &[f32],
        mut sink: impl FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        let Some(st) = self.inner.as_mut() else {
            return sink(samples);
        };
        st.in_total += samples.len() as u64;
        while !samples.is_empty() {
            let n_in = st.inbuf[0].len();
            let take = (n_in - st.fill).min(samples.len());
            st.inbuf[0][st.fill..st.fill + take].copy_from_slice(&samples[..take]);
            st.fill += take;
            samples = &samples[take..];
            if st.fill == n_in {
                st.fill = 0;
                st.run(&mut sink, u64::MAX)?;
            }
        }
        Ok(())
    }

    /// Flush the resampler: emit the output for every input sample given.
    pub fn finish(&mut self, mut sink: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let Some(st) = self.inner.as_mut() else {
            return Ok(());
        };
        let expected = st.in_total * st.rate_out / st.rate_in;
        let mut guard = 0;
        while st.out_total < expected && guard < 64 {
            st.inbuf[0][st.fill..].iter_mut().for_each(|x| *x = 0.0);
            st.fill = 0;
            st.run(&mut sink, expected)?;
            guard += 1;
        }
        Ok(())
    }
}

impl Inner {
    fn run(&mut self, sink: &mut impl FnMut(&[f32]) -> Result<()>, limit: u64) -> Result<()> {
        let (_, produced) = self
            .rs
            .process_into_buffer(&self.inbuf, &mut self.outbuf, None)
            .map_err(|e| HarkError::Runtime(format!("resampler: {e}")))?;
        let mut out = &self.outbuf[0][..produced];
        let drop = self.skip.min(out.len());
        self.skip -= drop;
        out = &out[drop..];
        let room = (limit - self.out_total).min(out.len() as u64) as usize;
        out = &out[..room];
        self.out_total += out.len() as u64;
        if out.is_empty() {
            return Ok(());
        }
        sink(out)
    }
}
