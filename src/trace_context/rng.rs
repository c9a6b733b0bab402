//! Random ids for traces, spans and generated request ids.
//!
//! An id that a client sees (a generated `x-request-id` on the response, a trace id) must not
//! let it guess the next ones: it could then send another request's id as its own and mix its
//! lines into that request's. So each value is a keyed hash, SipHash-1-3 from std's
//! `RandomState`, of a per-thread counter: a pseudo-random function whose 128-bit key comes
//! from the operating system's random source once per thread. Without the key, outputs say
//! nothing about other outputs. This costs no dependency and no system call per id.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

thread_local! {
    static KEYED: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
}

/// Returns the next random `u64` of this thread.
pub(crate) fn next_u64() -> u64 {
    KEYED
        .try_with(|(key, counter)| {
            let n = counter.get().wrapping_add(1);
            counter.set(n);
            key.hash_one(n)
        })
        // At thread teardown: a fresh key is as good.
        .unwrap_or_else(|_| RandomState::new().hash_one(0u64))
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
