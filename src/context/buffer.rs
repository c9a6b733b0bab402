//! The per-request debug buffer: lines a context holds back, written only if the request
//! fails (see [`Context::buffer`]).

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use tracing::callsite::DefaultCallsite;
use tracing::field::FieldSet;
use tracing::metadata::Kind;
use tracing::{Level, Metadata};
use tracing_core::callsite::Identifier;

use super::current::with_current;
use super::level::{self, NONE};
use super::line_buffer::LineBuffer;
use super::store::Context;

/// The bytes of lines a context holds at most, by default: 256 KiB.
pub const DEFAULT_BUFFER_LIMIT: usize = 256 * 1024;

/// Whether the current context's own level lets an event at `level` through (`Write`), its
/// buffer holds it (`Hold`), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Write,
    Hold,
    Neither,
}

/// What the current context does with an event at `level` that the global filter disables.
/// One thread-local read and two relaxed loads.
#[inline]
pub(crate) fn current_verdict(level: &Level) -> Verdict {
    let levels = super::current::current_levels();
    let level = level::encode(level);
    let (own, held) = (level::own(levels), level::held(levels));
    if own != NONE && level <= own {
        Verdict::Write
    } else if held != NONE && level <= held {
        Verdict::Hold
    } else {
        Verdict::Neither
    }
}

thread_local! {
    /// The callsite of the last event the filter enabled only to be held, as an address:
    /// the output layers hold that event's line instead of writing it. Compared, never
    /// cleared by the layers, so that every output layer sees it; the filter sets it at
    /// each event it enables.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn address(meta: &Metadata<'_>) -> usize {
    std::ptr::from_ref(meta) as usize
}

/// Records whether the event of `meta` the filter just enabled is to be held.
#[inline]
pub(crate) fn mark(meta: &Metadata<'_>, hold: bool) {
    let _ = HELD.try_with(|held| held.set(if hold { address(meta) } else { 0 }));
}

/// Whether the filter enabled the event of `meta` only to be held.
#[inline]
pub(crate) fn is_held(meta: &Metadata<'_>) -> bool {
    HELD.try_with(|held| held.get() == address(meta))
        .unwrap_or(false)
}

// === the flush event ===

/// The callsite of the event [`flush_buffer`] sends: the output layers write their held lines
/// when they see it, and do not write it. `TRACE`, so that another layer that sees it (a
/// subscriber composed with one more output layer) files it as the least of events.
static FLUSH_CALLSITE: DefaultCallsite = DefaultCallsite::new(&FLUSH_META);
static FLUSH_META: Metadata<'static> = Metadata::new(
    "buffer flushed",
    "tracing_ambient::buffer",
    Level::TRACE,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&[], Identifier(&FLUSH_CALLSITE)),
    Kind::EVENT,
);

/// Whether `meta` is the flush event's.
#[inline]
pub(crate) fn is_flush(meta: &Metadata<'_>) -> bool {
    meta.callsite() == Identifier(&FLUSH_CALLSITE)
}

/// The callsite of the line that reports dropped lines, which the output layers format as any
/// event (never dispatched).
static DROPPED_CALLSITE: DefaultCallsite = DefaultCallsite::new(&DROPPED_META);
pub(crate) static DROPPED_META: Metadata<'static> = Metadata::new(
    "buffered lines dropped",
    "tracing_ambient",
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&["message", "dropped"], Identifier(&DROPPED_CALLSITE)),
    Kind::EVENT,
);

// === impl Context ===

/// # Buffer
///
/// A context may hold back the lines it logs at a level the filter does not write, and write
/// them only if the request fails: the lines that explain an error, at no output cost for the
/// requests that do not fail.
impl Context {
    /// Holds back, in this context, the lines of events from `level` up to the level that
    /// would be written, and returns the context. They are written, each with its own
    /// timestamp and the context as it was when logged, in the order they were logged:
    ///
    /// - right before each `ERROR` event of the context (the lines held since the last flush);
    /// - when [`flush_buffer`] is called in the context;
    /// - when the HTTP middleware's response is a 5xx (`RequestContextLayer::buffer`).
    ///
    /// When the context ends otherwise they are dropped with it, never written. Held lines
    /// are formatted when logged (that is their cost) and kept up to
    /// [`DEFAULT_BUFFER_LIMIT`] bytes (see [`with_buffer_limit`](Context::with_buffer_limit));
    /// the lines past it are counted, and the flush writes one more line,
    /// `{"message":"buffered lines dropped","dropped":N}`, so that written + reported dropped
    /// == logged.
    ///
    /// The filter that holds them is [`ContextLevel`](crate::ContextLevel), which
    /// [`init`](crate::init) installs. As the other `with*` builders, it copies a store that
    /// is shared.
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::Context;
    ///
    /// let _guard = tracing_ambient::init(); // RUST_LOG unset: info
    /// Context::new().buffer(Level::DEBUG).in_scope(|| {
    ///     tracing::debug!(attempt = 1, "calling the payment service"); // held
    ///     tracing::error!("payment failed"); // the debug line first, then this one
    /// });
    /// Context::new().buffer(Level::DEBUG).in_scope(|| {
    ///     tracing::debug!("held, then dropped with the context: no error");
    /// });
    /// ```
    #[must_use]
    pub fn buffer(self, level: Level) -> Self {
        let ctx = self.unshared();
        ctx.set_buffer(level, None);
        ctx
    }

    /// Sets how many bytes of lines the context holds at most (see
    /// [`buffer`](Context::buffer)) and returns the context. Defaults to
    /// [`DEFAULT_BUFFER_LIMIT`] (256 KiB).
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::Context;
    ///
    /// let ctx = Context::new().buffer(Level::DEBUG).with_buffer_limit(64 * 1024);
    /// # drop(ctx);
    /// ```
    #[must_use]
    pub fn with_buffer_limit(self, bytes: usize) -> Self {
        let ctx = self.unshared();
        ctx.lock_buffer()
            .get_or_insert_with(|| LineBuffer::new(bytes))
            .limit = bytes;
        ctx
    }

    /// Sets the buffer's level, and its limit if given.
    pub(crate) fn set_buffer(&self, level: Level, limit: Option<usize>) {
        let mut buffer = self.lock_buffer();
        let buffer = buffer.get_or_insert_with(|| LineBuffer::new(DEFAULT_BUFFER_LIMIT));
        if let Some(limit) = limit {
            buffer.limit = limit;
        }
        level::note_raised(&level);
        level::update(&self.store().levels, 0xF0, level::encode(&level) << 4);
    }

    /// Locks the buffer. Held only to copy bytes in or out, never while user code runs.
    pub(crate) fn lock_buffer(&self) -> std::sync::MutexGuard<'_, Option<LineBuffer>> {
        self.store()
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the most verbose level the context holds back, if it buffers.
    pub(crate) fn buffer_level(&self) -> Option<Level> {
        level::decode(level::held(self.store().levels.load(Ordering::Relaxed)))
    }

    /// Whether the context holds lines, or dropped some, that a flush would write.
    pub(crate) fn has_held(&self) -> bool {
        level::held(self.store().levels.load(Ordering::Relaxed)) != NONE
            && self
                .lock_buffer()
                .as_ref()
                .is_some_and(|b| !b.held.is_empty() || b.dropped > 0)
    }
}

/// Writes the lines the current context holds (see [`Context::buffer`]), in order, each
/// with its original timestamp; then, if some did not fit, one `buffered lines dropped` line.
/// With no current context, or nothing held, this does nothing.
///
/// ```
/// use tracing::Level;
/// use tracing_ambient::Context;
///
/// let _guard = tracing_ambient::init();
/// Context::new().buffer(Level::DEBUG).in_scope(|| {
///     tracing::debug!("held");
///     tracing_ambient::flush_buffer(); // the request is slow: write what it did
///     tracing::debug!("held again, and dropped with the context");
/// });
/// ```
pub fn flush_buffer() {
    if !with_current(|ctx| ctx.is_some_and(Context::has_held)) {
        return;
    }
    let values = FLUSH_META.fields().value_set(&[]);
    let event = tracing::Event::new(&FLUSH_META, &values);
    tracing::dispatcher::get_default(|dispatch| {
        if dispatch.enabled(&FLUSH_META) {
            dispatch.event(&event);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_counts_what_it_drops_and_keeps_the_order() {
        let mut buffer = LineBuffer::new(10);
        buffer.push(1, &DROPPED_META, b"aaaa\n");
        buffer.push(2, &DROPPED_META, b"bb\n");
        buffer.push(1, &DROPPED_META, b"cccc\n"); // 12 bytes: dropped
        buffer.push(1, &DROPPED_META, b"d\n");
        let taken = buffer.take();
        let lines: Vec<(u64, &[u8])> = taken.lines().map(|(o, _, l)| (o, l)).collect();
        assert_eq!(lines, [(1, &b"aaaa\n"[..]), (2, b"bb\n"), (1, b"d\n")]);
        assert_eq!(taken.dropped, 1);
        assert!(buffer.held.is_empty() && buffer.bytes.is_empty() && buffer.dropped == 0);
        assert_eq!(buffer.limit, 10);
    }

    #[test]
    fn the_verdict_follows_the_current_context() {
        assert_eq!(current_verdict(&Level::DEBUG), Verdict::Neither);
        let ctx = Context::new().buffer(Level::TRACE).with_level(Level::DEBUG);
        ctx.in_scope(|| {
            assert_eq!(current_verdict(&Level::DEBUG), Verdict::Write);
            assert_eq!(current_verdict(&Level::TRACE), Verdict::Hold);
        });
        Context::new().buffer(Level::DEBUG).in_scope(|| {
            assert_eq!(current_verdict(&Level::TRACE), Verdict::Neither);
        });
    }
}
