//! The capture ring: a full ring drops whole periods and counts them, and
//! the reader delivers samples and gaps in stream order (timestamps after
//! an overrun depend on it), also with a real second thread.

use std::sync::atomic::{AtomicBool, Ordering};

use hark::audio::ring::{Ring, RingItem, RingStats, GAP_RECORDS};

/// What a reader saw: samples and gaps, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Samples(Vec<i16>),
    Gap(u64),
}

fn drain(reader: &mut hark::audio::ring::RingReader<'_>, frame: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut buf = vec![0i16; 1000];
    loop {
        let n = reader
            .read(&mut buf, frame, |item| {
                seen.push(match item {
                    RingItem::Samples(s) => Seen::Samples(s.to_vec()),
                    RingItem::Gap(n) => Seen::Gap(n),
                });
                Ok(())
            })
            .expect("read");
        if n == 0 {
            return seen;
        }
    }
}

#[test]
fn a_full_ring_drops_whole_periods_and_marks_the_gap_where_it_happened() {
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let cap = ring.capacity();
    let (mut w, mut r) = ring.split(&stats);
    let period = 160;
    let mut next = 0i64;
    let mut make = |n: usize| -> Vec<i16> {
        (0..n)
            .map(|_| {
                next += 1;
                (next % 30000) as i16
            })
            .collect()
    };
    // fill until a period is refused
    let mut pushed = 0usize;
    while w.push(&make(period)) {
        pushed += period;
    }
    assert_eq!(pushed, cap - cap % period);
    assert!(!w.push(&make(period))); // a second dropped period: one gap of two
    assert_eq!(
        stats.dropped_samples.load(Ordering::Relaxed),
        2 * period as u64
    );
    // the reader frees room; the next period goes in after a gap record
    let mut buf = vec![0i16; 4 * period];
    let mut first = Vec::new();
    r.read(&mut buf, 1, |item| {
        if let RingItem::Samples(s) = item {
            first.extend_from_slice(s);
        }
        Ok(())
    })
    .expect("read");
    assert_eq!(first.len(), 4 * period);
    assert_eq!(first[0], 1);
    assert!(w.push(&make(period)));
    let seen = drain(&mut r, 1);
    let gaps: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::Gap(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(gaps.len(), 1, "one gap record");
    assert_eq!(seen[gaps[0]], Seen::Gap(2 * period as u64));
    let before: usize = seen[..gaps[0]]
        .iter()
        .map(|s| match s {
            Seen::Samples(v) => v.len(),
            Seen::Gap(_) => 0,
        })
        .sum();
    // the gap sits exactly after every sample written before it
    assert_eq!(4 * period + before, pushed);
    match &seen[gaps[0] + 1] {
        Seen::Samples(v) => {
            let expect = ((pushed + 2 * period + 1) % 30000) as i16;
            assert_eq!(v[0], expect, "first sample after the gap");
        }
        other => panic!("samples expected after the gap, got {other:?}"),
    }
}

#[test]
fn the_reader_pops_whole_frames_only() {
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut w, mut r) = ring.split(&stats);
    assert!(w.push(&[1, 2, 3, 4, 5, 6]));
    let mut buf = [0i16; 5];
    let mut got = Vec::new();
    let n = r
        .read(&mut buf, 2, |item| {
            if let RingItem::Samples(s) = item {
                got.extend_from_slice(s);
            }
            Ok(())
        })
        .expect("read");
    assert_eq!(n, 4);
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn a_trailing_gap_is_published_when_capture_closes() {
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let cap = ring.capacity();
    let (mut w, mut r) = ring.split(&stats);
    let period = vec![7i16; cap];
    assert!(w.push(&period));
    assert!(!w.push(&[1, 2]));
    w.close();
    let seen = drain(&mut r, 1);
    assert_eq!(seen.last(), Some(&Seen::Gap(2)));
}

#[test]
fn across_threads_every_sample_arrives_once_in_order_or_is_counted_as_a_gap() {
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut w, mut r) = ring.split(&stats);
    let done = AtomicBool::new(false);
    let periods = 20_000u64;
    let period = 320usize;
    let mut received = 0u64;
    let mut gap_total = 0u64;
    let mut expected_next = 0u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = vec![0i16; period];
            for p in 0..periods {
                for (i, x) in buf.iter_mut().enumerate() {
                    *x = ((p * period as u64 + i as u64) % 32749) as i16;
                }
                w.push(&buf);
                if p.is_multiple_of(2000) {
                    std::thread::yield_now();
                }
            }
            w.close();
            done.store(true, Ordering::Release);
        });
        let mut buf = vec![0i16; 777];
        let mut slow = 0u32;
        loop {
            let finished = done.load(Ordering::Acquire);
            let n = r
                .read(&mut buf, 1, |item| {
                    match item {
                        RingItem::Samples(v) => {
                            for &x in v {
                                assert_eq!(
                                    x as u64,
                                    expected_next % 32749,
                                    "sample {expected_next}"
                                );
                                expected_next += 1;
                            }
                            received += v.len() as u64;
                        }
                        RingItem::Gap(g) => {
                            assert_eq!(g % period as u64, 0, "whole periods");
                            expected_next += g;
                            gap_total += g;
                        }
                    }
                    Ok(())
                })
                .expect("read");
            slow += 1;
            if slow.is_multiple_of(50) {
                // a slow reader now and then, so that the ring overruns
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if n == 0 && finished {
                break;
            }
        }
    });
    let total = periods * period as u64;
    assert_eq!(received + gap_total, total);
    assert_eq!(received, stats.pushed_samples.load(Ordering::Relaxed));
    assert_eq!(gap_total, stats.dropped_samples.load(Ordering::Relaxed));
}

#[test]
fn the_trailing_gap_is_delivered_even_when_gap_records_ran_short() {
    // A reader far behind a full ring, freeing one period at a time: every
    // refill after a drop writes a gap record, until the record queue is
    // (nearly) full. Then capture ends inside a drop: the trailing gap must
    // still reach the reader, or those samples would vanish unaccounted.
    let stats = RingStats::default();
    let mut ring = Ring::new();
    let (mut w, mut r) = ring.split(&stats);
    let period = 320;
    let buf = vec![7i16; period];
    let mut attempts = 0u64;
    while w.push(&buf) {
        attempts += 1;
    }
    attempts += 1; // the refused one: a pending gap
    let mut seen = Vec::new();
    let mut one = vec![0i16; period];
    for _ in 0..2 * GAP_RECORDS {
        let n = r
            .read(&mut one, 1, |item| {
                seen.push(match item {
                    RingItem::Samples(s) => Seen::Samples(s.to_vec()),
                    RingItem::Gap(n) => Seen::Gap(n),
                });
                Ok(())
            })
            .expect("read");
        assert_eq!(n, period);
        w.push(&buf); // fits, unless no gap record can be written
        assert!(!w.push(&buf)); // the ring is full again
        attempts += 2;
    }
    w.close();
    seen.extend(drain(&mut r, 1));
    let received: u64 = seen
        .iter()
        .map(|s| match s {
            Seen::Samples(v) => v.len() as u64,
            Seen::Gap(_) => 0,
        })
        .sum();
    let gaps: u64 = seen
        .iter()
        .map(|s| match s {
            Seen::Gap(n) => *n,
            Seen::Samples(_) => 0,
        })
        .sum();
    assert!(
        matches!(seen.last(), Some(Seen::Gap(_))),
        "ends with the trailing gap"
    );
    assert_eq!(received + gaps, attempts * period as u64);
    assert_eq!(gaps, stats.dropped_samples.load(Ordering::Relaxed));
    assert_eq!(received, stats.pushed_samples.load(Ordering::Relaxed));
}
