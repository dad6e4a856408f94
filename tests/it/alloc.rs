//! Steady state allocates nothing that grows with the stream: 10 minutes of
//! audio through the recognizer; the thread's live allocations and bytes
//! after each minute stay where they were after the first.

use hark::recognizer::Recognizer;

use crate::util::{model, speechlike};

#[test]
fn ten_minutes_of_audio_do_not_grow_memory() {
    let model = model();
    // a minute of speech, pauses (endpoints: finals and state resets) and
    // a synthetic signal
    let mut minute = crate::util::speech_with_pauses();
    minute.extend(speechlike(60.0 - minute.len() as f64 / 16000.0, 16000, 9));
    // the default decoding: LM beam search, partials on
    let cfg = crate::util::config(&model, true, true);
    assert!(cfg.lm.is_some());
    let mut rec = Recognizer::new(model, 16000, cfg).expect("recognizer");
    let mut samples_per_minute = Vec::new();
    let feed = |rec: &mut Recognizer| {
        for piece in minute.chunks(1600) {
            // events are consumed (printed) by the caller and dropped
            for ev in rec.push(piece).expect("push") {
                drop(ev);
            }
        }
    };
    feed(&mut rec); // warm-up: first allocations of tract, buffers, events
    let base = crate::live();
    for _ in 1..10 {
        feed(&mut rec);
        samples_per_minute.push(crate::live());
    }
    for (i, (allocs, bytes)) in samples_per_minute.iter().enumerate() {
        assert!(
            allocs - base.0 <= 4 && bytes - base.1 <= 64 * 1024,
            "minute {}: live allocations {} -> {}, bytes {} -> {}",
            i + 2,
            base.0,
            allocs,
            base.1,
            bytes
        );
    }
    // and the last minute did not add more than the second did
    let last = samples_per_minute.last().copied().unwrap_or(base);
    assert!(
        last.1 - samples_per_minute[0].1 <= 16 * 1024,
        "{:?}",
        samples_per_minute
    );
}
