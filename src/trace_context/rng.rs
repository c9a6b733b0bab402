//! Random trace ids, span ids and the random bits of request ids.
//!
//! Every request needs some 30 random bytes, so each thread draws them from its own fast
//! generator (rand's `SmallRng`, xoshiro256++: a few instructions per 64 bits), seeded once
//! from the operating system's random source (`getrandom`): one system call per thread, none
//! per id, no lock. Ids are unique, and unpredictable to anyone who has not seen this
//! thread's earlier ids; they are not secrets. A client that wants its lines in another trace
//! can already send that trace's `traceparent`, so a guessable id gives it nothing a header
//! does not, and no id here is ever used as a capability (RFC 9562 §8 and W3C trace context
//! §7 ask the same of their ids).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::{SmallRng, SysRng};
use rand::{Rng, SeedableRng};

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(seeded());
}

/// A generator seeded from the operating system.
fn seeded() -> SmallRng {
    SmallRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
        // Only when the operating system has no random source to give (Linux, macOS and
        // Windows always have one): ids are then still distinct, but not unpredictable, and
        // making them is better than failing the request.
        static FALLBACKS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let nth = FALLBACKS.fetch_add(1, Ordering::Relaxed);
        SmallRng::seed_from_u64(nanos ^ nth.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    })
}

/// Runs `draw` on this thread's generator.
fn with_rng<T>(mut draw: impl FnMut(&mut SmallRng) -> T) -> T {
    RNG.try_with(|rng| match rng.try_borrow_mut() {
        Ok(mut rng) => draw(&mut rng),
        // Not reentrant in practice; a fresh generator is as good.
        Err(_) => draw(&mut seeded()),
    })
    // At thread teardown, the thread's generator is gone.
    .unwrap_or_else(|_| draw(&mut seeded()))
}

/// Returns `N` times 64 random bits from this thread's generator, in one visit to it.
#[cfg(feature = "http")]
pub(crate) fn words<const N: usize>() -> [u64; N] {
    with_rng(|rng| std::array::from_fn(|_| rng.next_u64()))
}

/// Fills `out` with random bytes from this thread's generator.
pub(crate) fn fill(out: &mut [u8]) {
    with_rng(|rng| rng.fill_bytes(out))
}

/// Fills `out` with random bytes, never all zeros (an all-zero id is invalid in trace context).
pub(crate) fn fill_nonzero(out: &mut [u8]) {
    loop {
        fill(out);
        if out.iter().any(|&b| b != 0) {
            return;
        }
    }
}

/// Returns a new trace id and span id, neither all zeros, drawn together: one call into the
/// generator for the two ids a new request needs.
#[cfg(feature = "http")]
pub(crate) fn trace_and_span_ids() -> ([u8; 16], [u8; 8]) {
    let [high, low, span] = words();
    let mut ids = (
        (u128::from(high) << 64 | u128::from(low)).to_be_bytes(),
        span.to_be_bytes(),
    );
    // One id in 2^64 (or 2^128) is all zeros: draw that one again.
    if span == 0 {
        fill_nonzero(&mut ids.1);
    }
    if high == 0 && low == 0 {
        fill_nonzero(&mut ids.0);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_within_and_across_threads() {
        let ids = || {
            (0..10_000)
                .map(|_| {
                    let mut id = [0u8; 8];
                    fill_nonzero(&mut id);
                    id
                })
                .collect::<Vec<_>>()
        };
        let here = ids();
        let there = std::thread::spawn(ids).join().unwrap();
        let mut all: Vec<[u8; 8]> = here.into_iter().chain(there).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    #[cfg(feature = "http")]
    fn trace_and_span_ids_differ() {
        let mut seen: Vec<[u8; 24]> = (0..10_000)
            .map(|_| {
                let (trace, span) = trace_and_span_ids();
                assert!(trace.iter().any(|&b| b != 0) && span.iter().any(|&b| b != 0));
                let mut both = [0u8; 24];
                both[..16].copy_from_slice(&trace);
                both[16..].copy_from_slice(&span);
                both
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn ids_are_never_all_zero() {
        // One byte is all zero one time in 256: the loop must draw again.
        for _ in 0..10_000 {
            let mut id = [0u8; 1];
            fill_nonzero(&mut id);
            assert_ne!(id, [0]);
        }
    }

    #[test]
    fn bytes_are_spread_evenly() {
        // 256,000 bytes: each value about 1,000 times. A generator stuck on a pattern (a
        // counter, a constant) fails by far.
        let mut counts = [0u32; 256];
        let mut buf = [0u8; 1000];
        for _ in 0..256 {
            fill_nonzero(&mut buf);
            for &b in &buf {
                counts[usize::from(b)] += 1;
            }
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "min {min}, max {max}");
    }
}
