//! The character LM file reader (`CharLm::parse`), then a few `logp`
//! queries over every symbol on contexts taken from the input's own bytes,
//! as the beam search asks them. A refused file is an `Err`; a file that
//! parses must answer every query with a finite log-probability... or at
//! least without a panic: the values are the file's.
#![no_main]

use hark::decode::lm::CharLm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(lm) = CharLm::parse(data, "fuzz.bin") else {
        return;
    };
    let _ = (lm.order(), lm.tuning, format!("{lm:?}"));
    // contexts over the LM's symbol ids (0..=eos) and the sentence start
    let ids = lm.bos() as usize + 1;
    let ctx_bytes = &data[data.len().saturating_sub(16)..];
    let mut ctxs: Vec<Vec<u8>> = vec![vec![], vec![lm.bos()]];
    ctxs.push(
        ctx_bytes
            .iter()
            .map(|b| (*b as usize % ids) as u8)
            .collect(),
    );
    let mut sentence = vec![lm.bos()];
    sentence.extend(
        ctx_bytes
            .iter()
            .take(3)
            .map(|b| (*b as usize % lm.bos() as usize) as u8),
    );
    ctxs.push(sentence);
    for ctx in &ctxs {
        for sym in 0..=lm.eos() {
            let _ = lm.logp(ctx, sym);
        }
    }
});
