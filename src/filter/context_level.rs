//! [`ContextLevel`]: a filter that lets a request context's own level through a stricter
//! filter.

use std::sync::atomic::{AtomicU8, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::context::buffer::{self, Verdict};
use crate::context::level;

/// Wraps a filter so that an event is also written when the current context's own level
/// ([`Context::with_level`](crate::Context::with_level), [`set_level`](crate::set_level))
/// lets it through: one request logs at `debug` while the rest of the service stays at
/// `info`.
///
/// [`init`](crate::init) composes it (`KeepSpans::new(ContextLevel::new(EnvFilter))`) with no
/// call of yours; compose it by hand the same way, in front of the layers or on one layer.
///
/// # What it decides
///
/// An event the wrapped filter enables is enabled. An event it disables is enabled when the
/// context current where it is logged (see [`Context::current`](crate::Context::current))
/// has a level of its own at least as verbose as the event's, and the event's level is
/// within [`with_max_level`](ContextLevel::with_max_level). The context's level wins over
/// every directive of the wrapped filter, targets included (`hyper=off` too): it says
/// "everything this request does, at this level". Outside any context, and in a context
/// without a level, the wrapped filter alone decides. Spans are left to the wrapped filter.
///
/// An event logged with an explicit parent (`debug!(parent: &span, ..)`) where no scope is
/// active is decided by the context current on the thread, not the parent's: a filter sees
/// the event's metadata only.
///
/// # Cost
///
/// The wrapped filter makes a disabled `debug!` a callsite that is never enabled, decided once
/// and cached, and tells `tracing` that no event above its level can be enabled. As long as no
/// context of the process has asked for a level (its own or its buffer's), `ContextLevel`
/// leaves that as it is: a disabled event costs what it cost without it. The first time a
/// context asks for a more verbose level than any before (`with_level`, `set_level`,
/// `buffer`, the middleware's hooks), `tracing` is told to ask the filters again about every
/// callsite (once per level: at most five times in a process), and from then on the
/// callsites of that level that the wrapped filter disables are asked about at each event,
/// the level hint is lifted to that level, and so is the `log` crate's maximum level when
/// [`init`](crate::init) set it up. Each such event then costs the dispatch to the filter and
/// one thread-local read of the current context's levels: a few nanoseconds (see the
/// crate's benches). An event in a context whose level lets it through costs what an enabled
/// event costs. [`with_max_level`](ContextLevel::with_max_level) keeps the callsites above a
/// level (the `trace!`s of dependencies, say) as cheap as before, whatever contexts ask for.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, ContextLevel, JsonLayer, KeepSpans};
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::EnvFilter;
///
/// let filter = KeepSpans::new(ContextLevel::new(EnvFilter::new("info")));
/// let subscriber = tracing_subscriber::registry().with(JsonLayer::stdout().with_filter(filter));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::debug!("not written: the filter says info");
///     Context::new().with_level(tracing::Level::DEBUG).in_scope(|| {
///         tracing::debug!("written: this context logs at debug");
///     });
/// });
/// ```
#[derive(Debug)]
pub struct ContextLevel<F> {
    inner: F,
    /// The most verbose level a context may enable, and the same encoded.
    max: LevelFilter,
    max_byte: u8,
    /// The wrapped filter's level hint, as `encode_filter` gives it, refreshed whenever
    /// `tracing` asks for interests or hints (which it does again after a filter reloads): an
    /// event above it is one the wrapped filter disables, without asking it.
    inner_max: AtomicU8,
}

impl<F: Clone> Clone for ContextLevel<F> {
    fn clone(&self) -> Self {
        ContextLevel {
            inner: self.inner.clone(),
            max: self.max,
            max_byte: self.max_byte,
            inner_max: AtomicU8::new(self.inner_max.load(Ordering::Relaxed)),
        }
    }
}

/// A level filter as a byte that compares as `level::encode` does: `OFF` is 0, `ERROR` 1 up
/// to `TRACE` 5; no hint at all is 5 (anything may be enabled).
fn encode_filter(filter: Option<LevelFilter>) -> u8 {
    match filter.map(LevelFilter::into_level) {
        None => level::encode(&Level::TRACE),
        Some(None) => 0,
        Some(Some(level)) => level::encode(&level),
    }
}

impl<F> ContextLevel<F> {
    /// Returns a filter that enables what `inner` enables, and the events a context's own
    /// level lets through.
    ///
    /// ```
    /// let filter = tracing_ambient::ContextLevel::new(tracing_subscriber::EnvFilter::new("warn"));
    /// # drop(filter);
    /// ```
    pub const fn new(inner: F) -> Self {
        ContextLevel {
            inner,
            max: LevelFilter::TRACE,
            max_byte: 5,
            // Until `tracing` asks, the wrapped filter may enable anything: ask it.
            inner_max: AtomicU8::new(5),
        }
    }

    /// Sets the most verbose level a context's own level can enable: a context at `TRACE`
    /// under `with_max_level(LevelFilter::DEBUG)` has its `debug!`s written and not its
    /// `trace!`s, and every `trace!` callsite the wrapped filter disables stays disabled at
    /// no cost. Defaults to `LevelFilter::TRACE`.
    ///
    /// ```
    /// use tracing_subscriber::filter::LevelFilter;
    ///
    /// let filter = tracing_ambient::ContextLevel::new(LevelFilter::INFO)
    ///     .with_max_level(LevelFilter::DEBUG);
    /// # drop(filter);
    /// ```
    #[must_use]
    pub fn with_max_level(self, max: LevelFilter) -> Self {
        ContextLevel {
            max,
            max_byte: encode_filter(Some(max)),
            ..self
        }
    }

    /// Returns the wrapped filter.
    ///
    /// ```
    /// use tracing_subscriber::filter::LevelFilter;
    ///
    /// let filter = tracing_ambient::ContextLevel::new(LevelFilter::WARN);
    /// assert_eq!(*filter.inner(), LevelFilter::WARN);
    /// ```
    pub const fn inner(&self) -> &F {
        &self.inner
    }

    /// The most verbose level a context may enable now, encoded: the maximum, or the most
    /// verbose level a context has asked for so far if less.
    #[inline]
    fn ceiling(&self) -> u8 {
        self.max_byte.min(level::raised())
    }

    /// Whether a context's level may enable an event at `level`.
    #[inline]
    fn may_raise(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event() && level::encode(meta.level()) <= self.ceiling()
    }

    /// Whether a callsite is enabled, given what the wrapped filter says (asked only when it
    /// may enable it): for an event, also when the current context's level lets it through
    /// or its buffer holds it (marked so for the output layers). The flush event of
    /// [`flush_buffer`](crate::flush_buffer) always is.
    #[inline]
    fn keeps(&self, meta: &Metadata<'_>, inner_enabled: impl FnOnce() -> bool) -> bool {
        let level = meta.level();
        let inner_may = level::encode(level) <= self.inner_max.load(Ordering::Relaxed);
        if inner_may && inner_enabled() {
            buffer::mark(meta, false);
            return true;
        }
        // No context alive has a level or a buffer: none to look at.
        if !self.may_raise(meta) || !level::any_live() {
            return buffer::is_flush(meta);
        }
        match buffer::current_verdict(level) {
            Verdict::Write => buffer::mark(meta, false),
            Verdict::Hold => buffer::mark(meta, true),
            Verdict::Neither => return buffer::is_flush(meta),
        }
        true
    }

    /// The interest in a callsite, given the wrapped filter's: an event callsite it never
    /// enables is asked about at each event when a context's level may enable it.
    fn interest(&self, meta: &Metadata<'_>, inner: Interest) -> Interest {
        if buffer::is_flush(meta) {
            Interest::always()
        } else if inner.is_never() && self.may_raise(meta) {
            Interest::sometimes()
        } else {
            inner
        }
    }

    /// The level hint: the wrapped filter's, lifted to what a context may enable. Remembers
    /// the wrapped filter's for `keeps`.
    fn hint(&self, inner: Option<LevelFilter>) -> Option<LevelFilter> {
        self.inner_max
            .store(encode_filter(inner), Ordering::Relaxed);
        let ceiling =
            level::decode(self.ceiling()).map_or(LevelFilter::OFF, LevelFilter::from_level);
        inner.map(|inner| inner.max(ceiling))
    }

    /// Whether an enabled event passes the wrapped filter's look at its fields, or the
    /// context's level lets it through or its buffer holds it.
    fn event_passes(&self, event: &Event<'_>, inner: impl FnOnce() -> bool) -> bool {
        let meta = event.metadata();
        inner()
            || buffer::is_flush(meta)
            || (self.may_raise(meta) && buffer::current_verdict(meta.level()) != Verdict::Neither)
    }
}

impl<S, F: Filter<S>> Filter<S> for ContextLevel<F> {
    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.keeps(meta, || self.inner.enabled(meta, cx))
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        self.hint(self.inner.max_level_hint());
        self.interest(meta, self.inner.callsite_enabled(meta))
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.event_passes(event, || self.inner.event_enabled(event, cx))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.hint(self.inner.max_level_hint())
    }

    forward_span_callbacks!(inner);
}

/// As a layer in front of the others, `ContextLevel` filters for the whole subscriber, as the
/// wrapped filter would there; this is how [`init`](crate::init) uses it, inside
/// [`KeepSpans`](crate::KeepSpans).
///
/// ```
/// use tracing_ambient::{ContextLevel, JsonLayer, KeepSpans};
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::EnvFilter;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(KeepSpans::new(ContextLevel::new(EnvFilter::new("info"))))
///     .with(JsonLayer::new(std::io::stdout));
/// # drop(subscriber);
/// ```
impl<S, F> Layer<S> for ContextLevel<F>
where
    S: Subscriber,
    F: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.hint(self.inner.max_level_hint());
        self.interest(meta, self.inner.register_callsite(meta))
    }

    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        self.keeps(meta, || self.inner.enabled(meta, cx))
    }

    fn event_enabled(&self, event: &Event<'_>, cx: Context<'_, S>) -> bool {
        self.event_passes(event, || self.inner.event_enabled(event, cx))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.hint(self.inner.max_level_hint())
    }

    forward_span_callbacks!(inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;

    use crate::context::Context as RequestContext;
    use crate::filter::KeepSpans;
    use crate::layer::JsonLayer;
    use crate::test_support::MockMakeWriter;

    /// The messages written, each line parsed.
    fn messages(writer: &MockMakeWriter) -> Vec<String> {
        writer
            .text()
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                value["message"].as_str().expect("a message").to_owned()
            })
            .collect()
    }

    fn log_each_level() {
        tracing::error!("error");
        tracing::warn!("warn");
        tracing::info!("info");
        tracing::debug!("debug");
        tracing::trace!("trace");
    }

    /// Runs `f` under `filter` composed as `init()` does (in front of the layer) and, in a
    /// second subscriber, as a per-layer filter; returns the messages of both.
    fn both_ways(make: impl Fn() -> ContextLevel<EnvFilter>, f: impl Fn()) -> [Vec<String>; 2] {
        let global = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry()
            .with(KeepSpans::new(make()))
            .with(JsonLayer::new(global.clone()));
        tracing::subscriber::with_default(subscriber, &f);
        let per_layer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::new(per_layer.clone()).with_filter(KeepSpans::new(make())));
        tracing::subscriber::with_default(subscriber, &f);
        [messages(&global), messages(&per_layer)]
    }

    #[test]
    fn a_context_level_lets_its_own_events_through_and_no_others() {
        let raised = RequestContext::new().with_level(Level::DEBUG);
        let plain = RequestContext::new();
        let run = || {
            raised.in_scope(log_each_level);
            plain.in_scope(log_each_level);
            log_each_level();
        };
        for messages in both_ways(|| ContextLevel::new(EnvFilter::new("info")), run) {
            assert_eq!(
                messages,
                [
                    "error", "warn", "info", "debug", // raised
                    "error", "warn", "info", // plain
                    "error", "warn", "info", // outside
                ]
            );
        }
    }

    #[test]
    fn the_maximum_level_caps_what_a_context_enables() {
        let raised = RequestContext::new().with_level(Level::TRACE);
        let make = || ContextLevel::new(EnvFilter::new("warn")).with_max_level(LevelFilter::DEBUG);
        for messages in both_ways(make, || raised.in_scope(log_each_level)) {
            assert_eq!(messages, ["error", "warn", "info", "debug"]);
        }
    }

    #[test]
    fn a_context_level_wins_over_target_directives_and_a_stricter_one_changes_nothing() {
        let raised = RequestContext::new().with_level(Level::DEBUG);
        let quiet = RequestContext::new().with_level(Level::ERROR);
        let make = || ContextLevel::new(EnvFilter::new("info,tracing_ambient=off"));
        let run = || {
            raised.in_scope(log_each_level);
            quiet.in_scope(log_each_level);
        };
        for messages in both_ways(make, run) {
            // This module's target is off: the raised context writes up to debug, the quiet
            // one its errors (its level lets them through; it never hides what the filter
            // enables).
            assert_eq!(messages, ["error", "warn", "info", "debug", "error"]);
        }
    }

    #[test]
    fn the_hint_is_lifted_to_the_maximum_and_interests_become_sometimes() {
        // What a context of this process may have asked for: everything.
        level::note_raised(&Level::TRACE);
        let filter = ContextLevel::new(LevelFilter::INFO);
        assert_eq!(
            Filter::<tracing_subscriber::Registry>::max_level_hint(&filter),
            Some(LevelFilter::TRACE)
        );
        let capped = ContextLevel::new(LevelFilter::INFO).with_max_level(LevelFilter::DEBUG);
        assert_eq!(
            Filter::<tracing_subscriber::Registry>::max_level_hint(&capped),
            Some(LevelFilter::DEBUG)
        );
        let off = ContextLevel::new(LevelFilter::WARN).with_max_level(LevelFilter::OFF);
        assert_eq!(
            Filter::<tracing_subscriber::Registry>::max_level_hint(&off),
            Some(LevelFilter::WARN)
        );
        assert_eq!(encode_filter(None), 5);
        assert_eq!(encode_filter(Some(LevelFilter::OFF)), 0);
        assert_eq!(encode_filter(Some(LevelFilter::WARN)), 2);
    }
}
