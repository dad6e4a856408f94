//! hark's integration tests, one binary organised by topic. A counting
//! global allocator (per thread) lets `alloc` check that streaming does not
//! grow memory and `listen` that the capture loop does not allocate.

mod alloc;
mod backend;
mod bad_input;
mod beam;
mod cli;
mod e2e;
mod fbank;
mod finals;
mod finals_stream;
mod fuzz_regressions;
mod listen;
mod notify;
mod phrases;
mod ring;
mod soak;
mod streaming;
mod systemd;
mod util;
mod waveform;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live allocations and bytes made on the current thread.
struct Counting;

thread_local! {
    static LIVE_ALLOCS: Cell<i64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn bump(allocs: i64, bytes: i64) {
    if allocs > 0 {
        count_call();
    }
    let _ = LIVE_ALLOCS.try_with(|c| c.set(c.get() + allocs));
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
}

fn count_call() {
    let _ = CALLS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: delegates every call to the system allocator unchanged; the
// counters are plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(1, layout.size() as i64);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(-1, -(layout.size() as i64));
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(1, layout.size() as i64);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_call();
        bump(0, new_size as i64 - layout.size() as i64);
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and reallocations made by this thread so far.
pub fn alloc_calls() -> u64 {
    CALLS.with(|c| c.get())
}

/// (live allocations, live bytes) of this thread.
pub fn live() -> (i64, i64) {
    (LIVE_ALLOCS.with(|c| c.get()), LIVE_BYTES.with(|c| c.get()))
}
