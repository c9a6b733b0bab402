//! [`KeepSpans`]: a per-layer filter that filters events and keeps every span that can carry
//! the request context.

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::context::current::with_current;

/// The span callbacks of a filter that wraps another (`$inner`): passed on as they are, since
/// the wrapped filter may track spans (an `EnvFilter` with span directives does). For the
/// `Filter` and the `Layer` forms of the filters here, whose callbacks have the same shape.
macro_rules! forward_span_callbacks {
    ($inner:ident) => {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
            self.$inner.on_new_span(attrs, id, cx);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
            self.$inner.on_record(id, values, cx);
        }

        fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
            self.$inner.on_enter(id, cx);
        }

        fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
            self.$inner.on_exit(id, cx);
        }

        fn on_close(&self, id: Id, cx: Context<'_, S>) {
            self.$inner.on_close(id, cx);
        }
    };
}

mod context_level;

pub use context_level::ContextLevel;

/// Wraps a filter so that it decides which events are written, and keeps the spans that can
/// carry a request context whatever their level.
///
/// A span carries the request context to wherever it is entered: a task spawned with
/// `.instrument(span)`, `Span::current().in_scope(..)` on another thread. A span that a level
/// or target filter disables does not exist, so it carries nothing, and with `RUST_LOG=warn`
/// a `warn!` inside an `#[instrument]`ed task spawned from a request would lose its request.
/// Wrap the level filter in `KeepSpans`, in front of the layers (as [`init`](crate::init)
/// does, see the `Layer` impl) or on a layer.
///
/// # Which spans
///
/// A span the wrapped filter enables is enabled. A span it disables is enabled only when a
/// context is current where the span is created (inside a request, or inside a span that
/// carries one): only such a span can carry a context. The `trace_span!`s that hyper, h2 and
/// tower open outside any request, for each connection and each poll, are left out.
///
/// As a per-layer filter (`layer.with_filter(KeepSpans::new(..))`), a span left out is still
/// made by `tracing-subscriber`'s registry (a registry with per-layer filters makes every span
/// some filter may want), and only the layer's callbacks for it are skipped. As a layer in
/// front of the others (`registry().with(KeepSpans::new(..)).with(layer)`, see the `Layer`
/// impl), it is not made at all, which is where most of the saving is; the filter then
/// applies to every layer of the subscriber, as an `EnvFilter` there would.
///
/// A span created with an explicit parent (`info_span!(parent: &span, ..)`) where no context
/// is current, at a level the filter disables, is not enabled even when its parent carries a
/// context: a filter cannot see the parent. Such a span's lines still carry the parent's
/// context when they name it (`info!(parent: &span, ..)`); [`with_every_span`] keeps every
/// span for code that relies on the child itself.
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
///
/// [`with_every_span`]: KeepSpans::with_every_span
#[derive(Debug, Clone)]
pub struct KeepSpans<F> {
    events: F,
    every_span: bool,
}

impl<F> KeepSpans<F> {
    /// Returns a filter that passes events through `events`, and spans through `events` or
    /// when a context is current (see "Which spans").
    ///
    /// ```
    /// let filter = tracing_ambient::KeepSpans::new(tracing_subscriber::EnvFilter::new("info"));
    /// # drop(filter);
    /// ```
    pub const fn new(events: F) -> Self {
        KeepSpans {
            events,
            every_span: false,
        }
    }

    /// Sets whether every span is enabled, whatever its level and wherever it is created, as
    /// for spans created with an explicit parent outside any context (see "Which spans").
    /// Each disabled span then costs its creation in the registry. Defaults to `false`.
    ///
    /// ```
    /// use tracing_subscriber::filter::LevelFilter;
    ///
    /// let filter = tracing_ambient::KeepSpans::new(LevelFilter::WARN).with_every_span(true);
    /// # drop(filter);
    /// ```
    #[must_use]
    pub fn with_every_span(self, yes: bool) -> Self {
        KeepSpans {
            every_span: yes,
            ..self
        }
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

/// Whether a span created here could carry a context: one is current.
fn context_is_current() -> bool {
    with_current(|ctx| ctx.is_some())
}

// The rules both forms share: the `Filter` impl and the `Layer` impl differ only in how they
// reach the wrapped filter.
impl<F> KeepSpans<F> {
    /// Whether a callsite is enabled, given what the wrapped filter says (asked only when
    /// needed): a span also when every span is kept or a context is current.
    fn keeps(&self, meta: &Metadata<'_>, events_enabled: impl FnOnce() -> bool) -> bool {
        if meta.is_span() && (self.every_span || context_is_current()) {
            return true;
        }
        events_enabled()
    }

    /// The interest in a callsite, given the wrapped filter's: a span callsite the filter
    /// always enables is always enabled; any other span is decided span by span, by whether a
    /// context is current.
    fn interest(&self, meta: &Metadata<'_>, events: Interest) -> Interest {
        if !meta.is_span() {
            return events;
        }
        if self.every_span || events.is_always() {
            Interest::always()
        } else {
            Interest::sometimes()
        }
    }
}

impl<S, F: Filter<S>> Filter<S> for KeepSpans<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        self.keeps(meta, || self.events.enabled(meta, cx))
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        self.interest(meta, self.events.callsite_enabled(meta))
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.events.event_enabled(event, cx)
    }

    /// Spans of any level may be enabled, so there is no level to hint.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        None
    }

    forward_span_callbacks!(events);
}

/// As a layer of its own, in front of the others, `KeepSpans` filters for the whole
/// subscriber: events through the wrapped filter, spans through it or when a context is
/// current. A span it disables is then not created at all, which a per-layer filter cannot
/// do (`tracing-subscriber` creates a span as long as the registry has a per-layer filter,
/// and only skips the filtered layer's callbacks).
///
/// ```
/// use tracing_ambient::{JsonLayer, KeepSpans};
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::EnvFilter;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(KeepSpans::new(EnvFilter::new("info")))
///     .with(JsonLayer::new(std::io::stdout));
/// # drop(subscriber);
/// ```
impl<S, F> Layer<S> for KeepSpans<F>
where
    S: Subscriber,
    F: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.events.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.events.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.interest(meta, self.events.register_callsite(meta))
    }

    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        self.keeps(meta, || self.events.enabled(meta, cx))
    }

    fn event_enabled(&self, event: &Event<'_>, cx: Context<'_, S>) -> bool {
        self.events.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        None
    }

    forward_span_callbacks!(events);
}
