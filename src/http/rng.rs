//! Random ids for traces, spans and generated request ids.
//!
//! Ids need to be unique and hard to guess across processes, not secret: a trace id travels in
//! plain headers. So each thread runs SplitMix64 (a 64-bit state, one add and three
//! multiply-xorshifts per value), seeded from std's `RandomState`, whose keys come from the
//! operating system's random source once per thread. This costs no dependency and no system
//! call per id, unlike `rand` or `getrandom`.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // Each `RandomState` has fresh keys; hashing the time as well keeps two threads apart even
    // if they were handed the same keys.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one(nanos)
}

/// Returns the next random `u64` of this thread.
pub(crate) fn next_u64() -> u64 {
    let state = STATE
        .try_with(|s| {
            let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(next);
            next
        })
        // At thread teardown: a fresh seed is as good.
        .unwrap_or_else(|_| seed());
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `out` with random bytes, never all zeros (an all-zero id is invalid in trace context).
pub(crate) fn fill_nonzero(out: &mut [u8]) {
    loop {
        for chunk in out.chunks_mut(8) {
            let bytes = next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        if out.iter().any(|&b| b != 0) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_within_and_across_threads() {
        let here: Vec<u64> = (0..100).map(|_| next_u64()).collect();
        let there = std::thread::spawn(|| (0..100).map(|_| next_u64()).collect::<Vec<_>>())
            .join()
            .unwrap();
        let mut all: Vec<u64> = here.into_iter().chain(there).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 200);
    }

    #[test]
    fn ids_are_never_all_zero() {
        let mut id = [0u8; 8];
        fill_nonzero(&mut id);
        assert_ne!(id, [0; 8]);
    }
}
