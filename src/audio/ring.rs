//! The lock-free single-producer single-consumer sample ring between the
//! capture thread and the recognizer thread (heapless::spsc). Allocated once
//! (boxed, fixed capacity); the writer never blocks or allocates: a period
//! that does not fit is dropped whole and counted.
//!
//! A drop is also recorded *where it happened* in the sample stream: a
//! small second queue carries `Gap { at_sample, samples }` records, written
//! before the first period that follows the gap. The reader delivers
//! samples and gaps in stream order, so the recognizer can add the lost time
//! exactly between the samples before and after it (timestamps stay true
//! however far behind the recognizer is).

use std::sync::atomic::{AtomicU64, Ordering};

use heapless::spsc::{Consumer, Producer, Queue};

use crate::error::Result;

/// Sample queue size (interleaved, at the device rate); it holds one less:
/// about 2.7 s of 48 kHz stereo or 16 s of 16 kHz mono.
pub const RING_SAMPLES: usize = 1 << 18;

/// Gap records in flight (one per run of dropped periods).
pub const GAP_RECORDS: usize = 64;

/// Input lost in the ring: `samples` (interleaved) were dropped after the
/// first `at_sample` samples written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub at_sample: u64,
    pub samples: u64,
}

/// Counters shared by both ends (the writer updates them).
#[derive(Debug, Default)]
pub struct RingStats {
    pub dropped_samples: AtomicU64,
    pub pushed_samples: AtomicU64,
    pub xruns: AtomicU64,
}

/// The ring's storage; `split` hands out the two ends.
pub struct Ring {
    samples: Queue<i16, RING_SAMPLES>,
    gaps: Queue<Gap, GAP_RECORDS>,
}

impl Ring {
    /// A boxed, empty ring. Built in place on the heap: the sample queue is
    /// 512 KiB, which a by-value construction would copy through the stack
    /// (test threads have 2 MiB).
    pub fn new() -> Box<Ring> {
        let mut ring = Box::<Ring>::new_uninit();
        let p = ring.as_mut_ptr();
        // SAFETY: `p` points to memory for a `Ring`; both fields are written
        // (and nothing is read) before `assume_init`, which is then sound.
        unsafe {
            (&raw mut (*p).samples).write(Queue::new());
            (&raw mut (*p).gaps).write(Queue::new());
            ring.assume_init()
        }
    }

    /// Usable capacity in samples.
    pub fn capacity(&self) -> usize {
        self.samples.capacity()
    }

    pub fn split<'a>(&'a mut self, stats: &'a RingStats) -> (RingWriter<'a>, RingReader<'a>) {
        let (sp, sc) = self.samples.split();
        let (gp, gc) = self.gaps.split();
        (
            RingWriter {
                samples: sp,
                gaps: gp,
                stats,
                written: 0,
                pending_gap: 0,
            },
            RingReader {
                samples: sc,
                gaps: gc,
                read: 0,
            },
        )
    }
}

/// The capture thread's end. Wait-free, allocation-free.
pub struct RingWriter<'a> {
    samples: Producer<'a, i16>,
    gaps: Producer<'a, Gap>,
    stats: &'a RingStats,
    written: u64,
    /// Samples dropped since the last period that fitted.
    pending_gap: u64,
}

impl RingWriter<'_> {
    /// Push a whole period, or drop it whole (and count it) when the ring
    /// has no room, so interleaved frames stay aligned. Returns whether it
    /// was pushed.
    pub fn push(&mut self, period: &[i16]) -> bool {
        let room = self.samples.capacity() - self.samples.len();
        // a gap record is written here only while another one stays free,
        // so that `close` always has room for the trailing gap
        let gap_room = self.gaps.len() + 1 < self.gaps.capacity();
        if period.len() > room || (self.pending_gap > 0 && !gap_room) {
            self.pending_gap += period.len() as u64;
            self.stats
                .dropped_samples
                .fetch_add(period.len() as u64, Ordering::Relaxed);
            return false;
        }
        if self.pending_gap > 0 {
            // room was checked above; the record goes first so the reader
            // sees it before any sample that follows the gap
            let _ = self.gaps.enqueue(Gap {
                at_sample: self.written,
                samples: self.pending_gap,
            });
            self.pending_gap = 0;
        }
        for &s in period {
            // room was checked above and only this thread pushes
            let _ = self.samples.enqueue(s);
        }
        self.written += period.len() as u64;
        self.stats
            .pushed_samples
            .fetch_add(period.len() as u64, Ordering::Relaxed);
        true
    }

    /// End of capture: publish a trailing gap, if any. `push` keeps a
    /// record free for it, so it is never lost.
    pub fn close(&mut self) {
        if self.pending_gap > 0 && self.gaps.ready() {
            let _ = self.gaps.enqueue(Gap {
                at_sample: self.written,
                samples: self.pending_gap,
            });
            self.pending_gap = 0;
        }
    }
}

/// What the reader delivers, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum RingItem<'b> {
    /// Interleaved samples, whole frames.
    Samples(&'b [i16]),
    /// Samples (interleaved) lost at this point of the stream.
    Gap(u64),
}

/// The recognizer thread's end.
pub struct RingReader<'a> {
    samples: Consumer<'a, i16>,
    gaps: Consumer<'a, Gap>,
    read: u64,
}

impl RingReader<'_> {
    /// Pop up to `buf.len()` samples (whole frames of `frame` samples) and
    /// hand them to `f`, split around the gaps that fall inside them.
    /// Returns the number of samples popped (0: the ring was empty; gaps at
    /// the current position are still delivered).
    pub fn read(
        &mut self,
        buf: &mut [i16],
        frame: usize,
        mut f: impl FnMut(RingItem<'_>) -> Result<()>,
    ) -> Result<usize> {
        let frame = frame.max(1);
        let want = self.samples.len().min(buf.len());
        let want = want - want % frame;
        let mut n = 0;
        while n < want {
            match self.samples.dequeue() {
                Some(s) => {
                    buf[n] = s;
                    n += 1;
                }
                None => break, // cannot happen: only this thread pops
            }
        }
        let start = self.read;
        let end = start + n as u64;
        self.read = end;
        let mut from = 0usize;
        // A record for a gap at position p is written before sample p, so
        // every gap inside what was popped is visible now.
        while let Some(g) = self.gaps.peek().copied() {
            if g.at_sample > end {
                break;
            }
            let at = (g.at_sample.saturating_sub(start) as usize).clamp(from, n);
            if at > from {
                f(RingItem::Samples(&buf[from..at]))?;
                from = at;
            }
            let _ = self.gaps.dequeue();
            f(RingItem::Gap(g.samples))?;
        }
        if n > from {
            f(RingItem::Samples(&buf[from..n]))?;
        }
        Ok(n)
    }
}
