//! The lock-free single-producer single-consumer sample ring between the
//! capture thread and the recognizer thread (heapless::spsc). Allocated once
//! (boxed, fixed capacity); push never blocks or allocates: a sample that
//! does not fit is counted as dropped and the recognizer reports the gap.

use std::sync::atomic::{AtomicU64, Ordering};

use heapless::spsc::{Consumer, Producer, Queue};

/// Ring capacity in samples (interleaved, at the device rate): 2^19 - 1,
/// about 5 s of 48 kHz stereo or 32 s of 16 kHz mono.
pub const RING_SAMPLES: usize = 1 << 19;

pub type SampleQueue = Queue<i16, RING_SAMPLES>;

pub fn new_queue() -> Box<SampleQueue> {
    Box::new(Queue::new())
}

/// Counters shared by both ends.
#[derive(Debug, Default)]
pub struct RingStats {
    pub dropped_samples: AtomicU64,
    pub pushed_samples: AtomicU64,
    pub xruns: AtomicU64,
}

/// Producer side: push a whole period, or drop it whole (and count it) when
/// the ring has no room, so interleaved frames stay aligned.
pub fn push_period(p: &mut Producer<'_, i16>, period: &[i16], stats: &RingStats) {
    if RING_SAMPLES - 1 - p.len() < period.len() {
        stats
            .dropped_samples
            .fetch_add(period.len() as u64, Ordering::Relaxed);
        return;
    }
    for &s in period {
        // room was checked above and only this thread pushes
        let _ = p.enqueue(s);
    }
    stats
        .pushed_samples
        .fetch_add(period.len() as u64, Ordering::Relaxed);
}

/// Consumer side: pop up to `out.len()` samples.
pub fn pop_into(c: &mut Consumer<'_, i16>, out: &mut [i16]) -> usize {
    let mut n = 0;
    while n < out.len() {
        match c.dequeue() {
            Some(s) => {
                out[n] = s;
                n += 1;
            }
            None => break,
        }
    }
    n
}
