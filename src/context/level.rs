//! The level byte a store keeps beside its entries (its own level and its buffer's), and
//! the process-wide counts the filter reads before it looks at any context.
//!
//! One atomic byte, so that the filter reads both levels with a thread-local read and one
//! relaxed load, and no lock. The methods that set it are in `own_level.rs` and `buffer.rs`.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use tracing::Level;

/// No level of the context's own.
pub(crate) const NONE: u8 = 0;

/// The most verbose level any context of the process has asked for, as its own level or its
/// buffer's (monotonic). Until a context asks for a level, the filter leaves the callsites
/// of that level as the wrapped filter decided, at no cost (see `ContextLevel`).
static RAISED: AtomicU8 = AtomicU8::new(NONE);

/// Whether `log`'s maximum level follows [`RAISED`]: set by `init`, which set it up.
pub(crate) static LOG_FOLLOWS: AtomicBool = AtomicBool::new(false);

/// The most verbose level any context has asked for, encoded; [`NONE`] before any.
#[inline]
pub(crate) fn raised() -> u8 {
    RAISED.load(Ordering::Relaxed)
}

/// Records that a context asks for `level`. The first time a level is asked for, `tracing`
/// is told to ask the filters again about every callsite (once per level, at most five times
/// in a process), and `log`'s maximum level is lifted when `init` set it up.
pub(crate) fn note_raised(level: &Level) {
    let byte = encode(level);
    if RAISED.fetch_max(byte, Ordering::AcqRel) >= byte {
        return;
    }
    tracing_core::callsite::rebuild_interest_cache();
    if LOG_FOLLOWS.load(Ordering::Relaxed) {
        let wanted = tracing_log::AsLog::as_log(level).to_level_filter();
        if log::max_level() < wanted {
            log::set_max_level(wanted);
        }
    }
}

/// The own level in a store's `levels` byte.
#[inline]
pub(crate) const fn own(levels: u8) -> u8 {
    levels & 0x0F
}

/// The buffer's level in a store's `levels` byte.
#[inline]
pub(crate) const fn held(levels: u8) -> u8 {
    levels >> 4
}

/// How many stores have a level or a buffer now: while none has, the filter needs no look at
/// the current context at all.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether some context alive now has a level of its own or a buffer.
#[inline]
pub(crate) fn any_live() -> bool {
    LIVE.load(Ordering::Relaxed) != 0
}

/// Sets the part of a store's `levels` byte that `mask` selects to `bits`, leaving the other;
/// counts the store in [`LIVE`] while its byte is not 0.
pub(crate) fn update(levels: &AtomicU8, mask: u8, bits: u8) {
    let old = levels
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some((old & !mask) | (bits & mask))
        })
        .unwrap_or_else(|old| old);
    let new = (old & !mask) | (bits & mask);
    match (old, new) {
        (0, 1..) => {
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        (1.., 0) => {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Called when a store with `levels` is dropped: it no longer counts in [`LIVE`].
pub(crate) fn forget(levels: u8) {
    if levels != 0 {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The level as one byte: 1 for `ERROR` up to 5 for `TRACE`, so that a context at `c` lets
/// an event at `l` through when `l <= c`. 0 is kept for "none".
#[inline]
pub(crate) const fn encode(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The level a byte from [`encode`] stands for; `None` for [`NONE`] (or anything else).
pub(crate) const fn decode(byte: u8) -> Option<Level> {
    match byte {
        1 => Some(Level::ERROR),
        2 => Some(Level::WARN),
        3 => Some(Level::INFO),
        4 => Some(Level::DEBUG),
        5 => Some(Level::TRACE),
        _ => None,
    }
}
