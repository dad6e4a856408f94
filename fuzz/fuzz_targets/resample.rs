//! The resampler (`audio::resample::ToModelRate`) on odd rates: input rate
//! 1 Hz to 1 MHz, output rate the model's (16 kHz) or, as a model's
//! metadata could ask, any other; samples fed in odd chunk sizes, then
//! `finish`. Rates it refuses are an `Err`; what it accepts must give
//! finite samples, and `finish` must have given every output sample the
//! input implies.
#![no_main]

use hark::audio::resample::ToModelRate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let rate_in = word(0) % 1_000_000 + 1;
    let w = word(4);
    let rate_out = match w & 3 {
        0 | 1 => 16_000,
        2 => [8_000, 22_050, 44_100, 48_000][(w >> 2 & 3) as usize],
        _ => (w >> 2) % 1_000_000 + 1,
    };
    let Ok(mut rs) = ToModelRate::new(rate_in, rate_out) else {
        return;
    };
    let body = &data[8..];
    // samples from the bytes, repeated up to a second of audio at most
    let n_samples = (body.len() * 64).min(rate_in as usize).min(200_000);
    let samples: Vec<f32> = (0..n_samples)
        .map(|i| {
            body.get(i % body.len().max(1))
                .map_or(0.0, |b| (*b as i8) as f32 / 128.0)
        })
        .collect();
    let mut out = 0u64;
    let mut sink = |block: &[f32]| {
        assert!(block.iter().all(|x| x.is_finite()));
        out += block.len() as u64;
        Ok::<(), hark::error::HarkError>(())
    };
    let mut rest = &samples[..];
    let mut i = 0;
    while !rest.is_empty() {
        // odd chunk sizes, from the input
        let n = (body.get(i).copied().unwrap_or(1) as usize * 13 + 1).min(rest.len());
        rs.process(&rest[..n], &mut sink).expect("process");
        rest = &rest[n..];
        i += 1;
    }
    rs.finish(&mut sink).expect("finish");
    let expected = n_samples as u64 * rate_out as u64 / rate_in as u64;
    assert_eq!(
        out, expected,
        "{n_samples} samples {rate_in} -> {rate_out} Hz"
    );
});
