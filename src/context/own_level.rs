//! A context's own level: events of that level and more severe are written inside the
//! context even where the global filter is stricter (the filter that reads it is
//! [`ContextLevel`](crate::ContextLevel)).

use std::sync::atomic::Ordering;

use tracing::Level;

use super::current::with_current;
use super::level::{decode, encode, note_raised, own, update, NONE};
use super::store::Context;

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
