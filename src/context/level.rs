//! A context's own level: events of that level and more severe are written inside the
//! context even where the global filter is stricter (the filter that reads it is
//! [`ContextLevel`](crate::ContextLevel)).
//!
//! The level sits beside the entries in the store, as one atomic byte, so that the filter
//! reads it with a thread-local read and one relaxed load, and no lock.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use tracing::Level;

use super::current::with_current;
use super::store::Context;

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

/// Whether the current context's own level lets an event at `level` through. Outside any
/// context, or in one without a level, `false`. (The filter asks `buffer::current_verdict`,
/// which reads the buffer's level in the same look.)
#[cfg(test)]
pub(crate) fn current_allows(level: &Level) -> bool {
    let own = own(with_current(|ctx| {
        ctx.map_or(NONE, |ctx| ctx.store().levels.load(Ordering::Relaxed))
    }));
    own != NONE && encode(level) <= own
}

// === impl Context ===

/// # Level
///
/// A context may have a level of its own: events of that level and more severe logged inside
/// it are written even where the global filter (`RUST_LOG`) is stricter, and the other
/// contexts are unaffected. [`init`](crate::init) reads it; a subscriber composed by hand
/// reads it through [`ContextLevel`](crate::ContextLevel). The level travels with the
/// context as its keys do.
impl Context {
    /// Sets the context's own level and returns the context: events of `level` and more
    /// severe logged inside it are written whatever the global filter says. As the other
    /// `with*` builders, it copies a store that is shared.
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::Context;
    ///
    /// let _guard = tracing_ambient::init(); // RUST_LOG unset: info
    /// Context::new().with_level(Level::DEBUG).in_scope(|| {
    ///     tracing::debug!("written: this context logs at debug");
    ///     tracing::trace!("not written");
    /// });
    /// tracing::debug!("not written: outside the context");
    /// ```
    #[must_use]
    pub fn with_level(self, level: Level) -> Self {
        let ctx = self.unshared();
        ctx.set_level(level);
        ctx
    }

    /// Removes the context's own level and returns the context, which then follows the
    /// global filter alone: for a job derived from a request being debugged, or a context
    /// received in a job payload from a producer you do not trust (see [`Context`]'s
    /// `Deserialize`).
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::Context;
    ///
    /// let request = Context::new().with_level(Level::DEBUG);
    /// let job = request.clone().without_level(); // `request` keeps its level
    /// assert_eq!(job.level(), None);
    /// assert_eq!(request.level(), Some(Level::DEBUG));
    /// ```
    #[must_use]
    pub fn without_level(self) -> Self {
        let ctx = self.unshared();
        update(&ctx.store().levels, 0x0F, NONE);
        ctx
    }

    /// Sets the context's own level, seen by every handle and every later event of the
    /// context (see [`with_level`](Context::with_level)); [`set_level`](crate::set_level)
    /// does it on the current context.
    ///
    /// ```
    /// use tracing::Level;
    ///
    /// let ctx = tracing_ambient::Context::new();
    /// let handle = ctx.clone();
    /// ctx.set_level(Level::TRACE);
    /// assert_eq!(handle.level(), Some(Level::TRACE));
    /// ```
    pub fn set_level(&self, level: Level) {
        note_raised(&level);
        update(&self.store().levels, 0x0F, encode(&level));
    }

    /// Returns the context's own level, if it has one.
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::Context;
    ///
    /// assert_eq!(Context::new().level(), None);
    /// assert_eq!(Context::new().with_level(Level::DEBUG).level(), Some(Level::DEBUG));
    /// ```
    pub fn level(&self) -> Option<Level> {
        decode(own(self.store().levels.load(Ordering::Relaxed)))
    }
}

// === free functions on the current context ===

/// Sets the level of the current context (see [`Context::with_level`]): from now on, events
/// of `level` and more severe logged in this context are written whatever the global filter
/// says, for example once authentication has decided that this user is being debugged. With
/// no current context this does nothing.
///
/// ```
/// use tracing::Level;
/// use tracing_ambient::Context;
///
/// let ctx = Context::new();
/// ctx.in_scope(|| {
///     tracing_ambient::set_level(Level::DEBUG);
///     tracing::debug!("written under init()'s filter, even at RUST_LOG=info");
/// });
/// assert_eq!(ctx.level(), Some(Level::DEBUG));
/// tracing_ambient::set_level(Level::DEBUG); // no context: nothing happens
/// ```
pub fn set_level(level: Level) {
    with_current(|ctx| {
        if let Some(ctx) = ctx {
            ctx.set_level(level);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_order_by_verbosity() {
        let all = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        for (i, level) in all.iter().enumerate() {
            assert_eq!(decode(encode(level)), Some(*level));
            assert_eq!(usize::from(encode(level)), i + 1);
        }
        assert_eq!(decode(NONE), None);
    }

    #[test]
    fn only_the_current_context_level_lets_events_through() {
        assert!(!current_allows(&Level::ERROR), "no context");
        let raised = Context::new().with_level(Level::DEBUG);
        raised.in_scope(|| {
            assert!(current_allows(&Level::DEBUG));
            assert!(current_allows(&Level::ERROR));
            assert!(!current_allows(&Level::TRACE));
            Context::new().in_scope(|| assert!(!current_allows(&Level::ERROR), "no level"));
        });
        let late = Context::new();
        late.in_scope(|| {
            assert!(!current_allows(&Level::DEBUG));
            set_level(Level::DEBUG);
            assert!(current_allows(&Level::DEBUG));
        });
    }

    #[test]
    fn builders_copy_the_level_and_without_level_leaves_the_original() {
        let request = Context::new().with_request_id("r").with_level(Level::DEBUG);
        let job = request.clone().with("item", 1);
        assert_eq!(job.level(), Some(Level::DEBUG));
        let plain = request.clone().without_level();
        assert_eq!((plain.level(), request.level()), (None, Some(Level::DEBUG)));
    }
}
