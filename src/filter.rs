//! [`KeepSpans`]: a per-layer filter that filters events and keeps every span, because spans
//! carry the request context.

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// Wraps a filter so that it decides which events are written but enables every span.
///
/// A span carries the request context to wherever it is entered: a task spawned with
/// `.instrument(span)`, `Span::current().in_scope(..)` on another thread. A span that a level
/// or target filter disables does not exist, so it carries nothing, and with `RUST_LOG=warn`
/// a `warn!` inside an `#[instrument]`ed task spawned from a request would lose its request.
/// Put the level filter on the layer, wrapped in `KeepSpans`, rather than in front of the
/// whole subscriber. [`init`](crate::init) does this.
///
/// Spans then cost their creation at every level (a registry entry), even when no event
/// inside them is written.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{JsonLayer, KeepSpans};
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::EnvFilter;
///
/// let subscriber = tracing_subscriber::registry().with(
///     JsonLayer::new(std::io::stdout).with_filter(KeepSpans::new(EnvFilter::new("warn"))),
/// );
/// # drop(subscriber);
/// ```
#[derive(Debug, Clone)]
pub struct KeepSpans<F> {
    events: F,
}

impl<F> KeepSpans<F> {
    /// Returns a filter that passes events through `events` and enables every span.
    ///
    /// ```
    /// let filter = tracing_ambient::KeepSpans::new(tracing_subscriber::EnvFilter::new("info"));
    /// # drop(filter);
    /// ```
    pub const fn new(events: F) -> Self {
        KeepSpans { events }
    }

    /// Returns the event filter.
    ///
    /// ```
    /// use tracing_subscriber::filter::LevelFilter;
    ///
    /// let filter = tracing_ambient::KeepSpans::new(LevelFilter::WARN);
    /// assert_eq!(*filter.events(), LevelFilter::WARN);
    /// ```
    pub const fn events(&self) -> &F {
        &self.events
    }
}

impl<S, F: Filter<S>> Filter<S> for KeepSpans<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        meta.is_span() || self.events.enabled(meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            Interest::always()
        } else {
            self.events.callsite_enabled(meta)
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.events.event_enabled(event, cx)
    }

    /// Spans of every level are enabled, so there is no level to hint.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        None
    }

    // The event filter may track spans (an `EnvFilter` with span directives does).

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        self.events.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        self.events.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
        self.events.on_enter(id, cx);
    }

    fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
        self.events.on_exit(id, cx);
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        self.events.on_close(id, cx);
    }
}
