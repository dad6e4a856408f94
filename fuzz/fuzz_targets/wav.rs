//! The WAV file reader (`audio::wav`, hound and the streaming fallback for
//! A-law, mu-law and 64-bit float) over arbitrary bytes, decoded to the end
//! in reads of varying size. Any outcome but a panic, an abort or a huge
//! allocation is fine: a refused file is an `Err`.
#![no_main]

use hark::audio::wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = wav::from_bytes(data.to_vec(), "fuzz.wav") else {
        return;
    };
    let _ = src.rate();
    // read sizes from the input's length, so runs differ without a prefix
    // that would break the RIFF header at byte 0
    let sizes = [1, 7, 160, 4096, 3];
    let mut out = vec![0f32; 4096];
    let mut total = 0usize;
    for i in 0.. {
        let n = sizes[(i + data.len()) % sizes.len()];
        match src.read(&mut out[..n]) {
            Ok(0) | Err(_) => break,
            Ok(got) => {
                assert!(got <= n, "read {got} into {n}");
                assert!(out[..got].iter().all(|x| x.is_finite()));
                total += got;
            }
        }
        // at most every byte becomes one sample: no endless reads
        assert!(
            total <= data.len(),
            "{total} samples from {} bytes",
            data.len()
        );
    }
});
