//! [`LookupSpanIds`]: the hook that finds the span ids of a line, and the views of the event's
//! spans it is given ([`EventSpans`], [`SpanView`]).

use std::cell::OnceCell;
use std::fmt;
use std::sync::OnceLock;

use tracing::dispatcher::WeakDispatch;
use tracing::span::Id;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::registry::{Extensions, LookupSpan, SpanRef};

use super::ids::SpanIds;

/// Finds the trace and span ids a line carries in place of the context's: those of the
/// span the line is logged in, as the tracing system that exports spans knows them.
///
/// It runs in the layer's `on_event`, once for each event that has a span (its explicit
/// parent, or else the current span), before the line is written. Returning `None` leaves
/// the line with the context's trace and span ids. It must not take any span's extensions
/// for writing ([`SpanView::extensions`] is read-only) and must not panic; a panic is caught,
/// and the line keeps the context's ids.
///
/// Implemented by:
///
/// - `DefaultLookupSpanIds` (feature `opentelemetry`): the
///   span ids of tracing-opentelemetry 0.34, the default with that feature;
/// - closures `Fn(&SpanView<'_>) -> Option<SpanIds>`, asked about the event's span, then about
///   each of its parents in turn until one returns ids (so that a span the closure knows
///   nothing about gives way to its parent);
/// - `()`: finds none (the default without the feature).
///
/// # Examples
///
/// Ids kept by a layer of your own in each span's extensions (any tracing-opentelemetry
/// version, or another tracing system, can be read the same way):
///
/// ```
/// use tracing_ambient::otel::{SpanIds, SpanView};
/// use tracing_ambient::JsonLayer;
///
/// /// What some other layer stores in the extensions of the spans it exports.
/// struct ExportedIds {
///     trace_id: u128,
///     span_id: u64,
/// }
///
/// let layer = JsonLayer::stdout().lookup_span_ids(|span: &SpanView<'_>| {
///     let extensions = span.extensions();
///     let ids = extensions.get::<ExportedIds>()?;
///     SpanIds::new(ids.trace_id.to_be_bytes(), ids.span_id.to_be_bytes())
/// });
/// # drop(layer);
/// ```
///
/// With tracing-opentelemetry 0.32 to 0.34, whose span data is private, through its
/// `get_otel_context(&id, &dispatch)` (which starts the span's OpenTelemetry span if it was
/// not yet, and returns its context); the bytes make it work across `opentelemetry` versions:
///
/// ```
/// # #[cfg(feature = "opentelemetry")] {
/// use opentelemetry::trace::TraceContextExt;
/// use tracing_ambient::otel::{SpanIds, SpanView};
///
/// let layer = tracing_ambient::JsonLayer::stdout().lookup_span_ids(|span: &SpanView<'_>| {
///     let cx = tracing_opentelemetry::get_otel_context(&span.id(), span.dispatch()?)?;
///     let sc = cx.span().span_context().clone();
///     SpanIds::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes())
///         .map(|ids| ids.with_sampled(sc.is_sampled()))
/// });
/// # drop(layer); }
/// ```
pub trait LookupSpanIds: Send + Sync + 'static {
    /// Returns the ids of the span the event is logged in, or `None` to keep the context's.
    fn lookup_span_ids(&self, spans: &EventSpans<'_>) -> Option<SpanIds>;
}

impl LookupSpanIds for () {
    fn lookup_span_ids(&self, _: &EventSpans<'_>) -> Option<SpanIds> {
        None
    }
}

impl<F> LookupSpanIds for F
where
    F: Fn(&SpanView<'_>) -> Option<SpanIds> + Send + Sync + 'static,
{
    fn lookup_span_ids(&self, spans: &EventSpans<'_>) -> Option<SpanIds> {
        spans.find_map(self)
    }
}

/// The spans of an event being written: its explicit parent, or else the current span, and
/// their parents. Given to [`LookupSpanIds`].
///
/// Nothing is looked up until asked for, and nothing is allocated.
///
/// # Examples
///
/// A lookup that gives ids only to events in the current span, from the nearest span named
/// `request`:
///
/// ```
/// use tracing_ambient::otel::{EventSpans, LookupSpanIds, SpanIds};
///
/// struct RequestIds;
///
/// /// Kept in the `request` span's extensions by a layer of your own.
/// struct Ids([u8; 16], [u8; 8]);
///
/// impl LookupSpanIds for RequestIds {
///     fn lookup_span_ids(&self, spans: &EventSpans<'_>) -> Option<SpanIds> {
///         if !spans.is_contextual() {
///             return None;
///         }
///         spans.find_map(|span| {
///             if span.name() != "request" {
///                 return None;
///             }
///             let extensions = span.extensions();
///             let ids = extensions.get::<Ids>()?;
///             SpanIds::new(ids.0, ids.1)
///         })
///     }
/// }
///
/// let layer = tracing_ambient::JsonLayer::stdout().lookup_span_ids(RequestIds);
/// # drop(layer);
/// ```
pub struct EventSpans<'a> {
    event: &'a Event<'a>,
    walk: &'a dyn Walk,
    dispatch: LazyDispatch<'a>,
}

/// The subscriber, upgraded from the layer's weak handle when first asked for: the upgrade
/// touches a reference count every thread shares, so events that need no subscriber skip it.
pub(crate) struct LazyDispatch<'a> {
    weak: &'a OnceLock<WeakDispatch>,
    upgraded: OnceCell<Option<Dispatch>>,
}

impl LazyDispatch<'_> {
    fn get(&self) -> Option<&Dispatch> {
        self.upgraded
            .get_or_init(|| self.weak.get().and_then(WeakDispatch::upgrade))
            .as_ref()
    }
}

impl<'a> EventSpans<'a> {
    pub(crate) fn new(
        event: &'a Event<'a>,
        walk: &'a dyn Walk,
        weak: &'a OnceLock<WeakDispatch>,
    ) -> Self {
        EventSpans {
            event,
            walk,
            dispatch: LazyDispatch {
                weak,
                upgraded: OnceCell::new(),
            },
        }
    }

    /// Returns the event.
    pub fn event(&self) -> &Event<'a> {
        self.event
    }

    /// Returns `true` if the event is in the current span (it has no explicit parent), as
    /// `info!(..)` is and `info!(parent: &span, ..)` is not.
    pub fn is_contextual(&self) -> bool {
        self.event.is_contextual()
    }

    /// Returns the subscriber the layer is part of, if it is still alive and the layer was
    /// told of it (a subscriber tells its layers when it becomes a `Dispatch`).
    pub fn dispatch(&self) -> Option<&Dispatch> {
        self.dispatch.get()
    }

    /// Calls `f` with the event's span, then with each of its parents in turn, and returns
    /// the first `Some`. Each step up costs a span lookup.
    pub fn find_map<T>(&self, mut f: impl FnMut(&SpanView<'_>) -> Option<T>) -> Option<T> {
        let mut found = None;
        self.walk.walk(self.event, &self.dispatch, &mut |span| {
            found = f(span);
            found.is_some()
        });
        found
    }
}

impl fmt::Debug for EventSpans<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSpans")
            .field("event", &self.event.metadata().name())
            .field("contextual", &self.is_contextual())
            .finish_non_exhaustive()
    }
}

/// One span of an event being written, as [`EventSpans`] hands it out: its id, metadata and
/// extensions (read-only), and the subscriber. See [`LookupSpanIds`] for examples.
pub struct SpanView<'a> {
    span: &'a dyn SpanAccess,
    dispatch: &'a LazyDispatch<'a>,
}

impl SpanView<'_> {
    /// Returns the span's id.
    pub fn id(&self) -> Id {
        self.span.id()
    }

    /// Returns the span's metadata.
    pub fn metadata(&self) -> &'static Metadata<'static> {
        self.span.metadata()
    }

    /// Returns the span's name.
    pub fn name(&self) -> &'static str {
        self.span.metadata().name()
    }

    /// Returns the span's extensions, read-only. Drop them before calling anything that
    /// looks the span up again (such as tracing-opentelemetry's `get_otel_context`).
    pub fn extensions(&self) -> Extensions<'_> {
        self.span.extensions()
    }

    /// Returns the subscriber the layer is part of, as [`EventSpans::dispatch`] does.
    pub fn dispatch(&self) -> Option<&Dispatch> {
        self.dispatch.get()
    }
}

impl fmt::Debug for SpanView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanView")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// A registry span, whatever the subscriber's type, so that the hook's types need no type
/// parameter.
trait SpanAccess {
    fn id(&self) -> Id;
    fn metadata(&self) -> &'static Metadata<'static>;
    fn extensions(&self) -> Extensions<'_>;
}

impl<'a, R> SpanAccess for SpanRef<'a, R>
where
    R: LookupSpan<'a>,
{
    fn id(&self) -> Id {
        SpanRef::id(self)
    }

    fn metadata(&self) -> &'static Metadata<'static> {
        SpanRef::metadata(self)
    }

    fn extensions(&self) -> Extensions<'_> {
        SpanRef::extensions(self)
    }
}

/// Walks the spans of an event from its own span up; the layer's `Context`, whatever the
/// subscriber's type.
pub(crate) trait Walk {
    /// Calls `f` with the event's span and each parent until `f` returns `true`.
    fn walk(
        &self,
        event: &Event<'_>,
        dispatch: &LazyDispatch<'_>,
        f: &mut dyn FnMut(&SpanView<'_>) -> bool,
    );
}

impl<S> Walk for layer::Context<'_, S>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    fn walk(
        &self,
        event: &Event<'_>,
        dispatch: &LazyDispatch<'_>,
        f: &mut dyn FnMut(&SpanView<'_>) -> bool,
    ) {
        let Some(span) = self.event_span(event) else {
            return;
        };
        // `scope()` is lazy: each step is one lookup of the parent, nothing is collected.
        for span in span.scope() {
            let view = SpanView {
                span: &span,
                dispatch,
            };
            if f(&view) {
                return;
            }
        }
    }
}
