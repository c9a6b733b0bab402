//! OpenTelemetry trace and span ids on every line logged inside an OpenTelemetry span.
//!
//! With the `opentelemetry` feature on and a `tracing_opentelemetry::layer()` (0.34) in the
//! subscriber, a line logged inside a span that tracing-opentelemetry tracks carries that
//! span's ids as exported: `traceId` is its trace id and `spanId` the id of the innermost such
//! span. Nothing to configure. Outside any such span, lines keep the context's ids.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "opentelemetry")] {
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::prelude::*;
//!
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     // .with_batch_exporter(otlp_exporter)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("shop")))
//!     .with(tracing_ambient::JsonLayer::stdout())
//!     .init();
//!
//! let _span = tracing::info_span!("checkout").entered();
//! tracing::info!(order_id = 42, "order placed");
//! # }
//! ```
//!
//! ```text
//! {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","target":"shop","order_id":42}
//! ```
//!
//! # Which ids
//!
//! tracing-opentelemetry decides a span's ids late: when it starts the OpenTelemetry span
//! (when the span is first entered, gets a child, or is asked for its context), not when the
//! `tracing` span is created. Ids read earlier, from its span builder, would be ids that are
//! never exported. So the ids come only from a started OpenTelemetry span:
//! `DefaultLookupSpanIds` (feature `opentelemetry`) says exactly how. In the line they replace the context's `traceId`
//! and `spanId` (the other context keys stay), and are written where the context writes them,
//! in lowercase hex.
//!
//! The sampled flag travels with the ids ([`SpanIds::is_sampled`]); the default schema has no
//! key for it, so it is not written.
//!
//! # The HTTP middleware
//!
//! With the `http` feature too, the request span of `http::RequestContextLayer` is the
//! OpenTelemetry server span, parented on the request's `traceparent`, and the request's
//! context takes its ids: lines outside any OpenTelemetry span, `sql::tag` and outgoing calls
//! carry them as well (see "With OpenTelemetry" in the `http` module docs).
//!
//! # Other versions and other tracing systems
//!
//! [`JsonLayer::lookup_span_ids`] takes any [`LookupSpanIds`], such as a closure that reads the
//! ids from a span's extensions. It needs no feature.
//!
//! # Cost
//!
//! The default lookup reads one thread-local for an event in the current span; an event with
//! an explicit parent looks that span up. Neither allocates.
//!
//! [`JsonLayer::lookup_span_ids`]: crate::layer::JsonLayer::lookup_span_ids

mod ids;
mod lookup;
#[cfg(feature = "opentelemetry")]
mod sdk;

use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

pub use ids::SpanIds;
pub use lookup::{EventSpans, LookupSpanIds, SpanView};
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub use sdk::DefaultLookupSpanIds;

/// The span-id lookup of one layer: the hook, and the subscriber it may need to look spans
/// up, which the layer learns when the subscriber becomes a `Dispatch`.
pub(crate) struct SpanIdsLookup {
    /// `None` when no lookup is wanted: the event path then only tests this.
    hook: Option<Box<dyn LookupSpanIds>>,
    /// Weak: the subscriber owns the layer, so a strong handle would keep it alive forever.
    dispatch: OnceLock<WeakDispatch>,
}

impl Default for SpanIdsLookup {
    fn default() -> Self {
        #[cfg(feature = "opentelemetry")]
        let hook: Option<Box<dyn LookupSpanIds>> = Some(Box::new(DefaultLookupSpanIds::new()));
        #[cfg(not(feature = "opentelemetry"))]
        let hook = None;
        SpanIdsLookup {
            hook,
            dispatch: OnceLock::new(),
        }
    }
}

impl fmt::Debug for SpanIdsLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanIdsLookup")
            .field("hook", &self.hook.as_ref().map(|_| "..."))
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Set while this thread runs a lookup. A line logged from inside it (starting a span can
    /// log) must not look up again: the span being started is locked.
    static LOOKING_UP: Cell<bool> = const { Cell::new(false) };
}

impl SpanIdsLookup {
    /// Replaces the hook (`JsonLayer::lookup_span_ids`).
    pub(crate) fn set_hook(&mut self, hook: Box<dyn LookupSpanIds>) {
        self.hook = Some(hook);
    }

    /// Remembers the subscriber the layer is part of (the first one, should there be more).
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    /// Returns the ids of the span `event` is logged in, or `None` to keep the context's.
    /// Never panics: a panicking hook counts as `None`.
    pub(crate) fn event_ids<S>(
        &self,
        event: &Event<'_>,
        cx: &layer::Context<'_, S>,
    ) -> Option<SpanIds>
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let hook = self.hook.as_deref()?;
        if event.is_root() {
            return None;
        }
        let _guard = LookupGuard::enter()?;
        let spans = EventSpans::new(event, cx, &self.dispatch);
        catch_unwind(AssertUnwindSafe(|| hook.lookup_span_ids(&spans)))
            .ok()
            .flatten()
    }
}

/// Marks this thread as inside a lookup until dropped.
struct LookupGuard;

impl LookupGuard {
    /// Returns `None` if this thread is already inside a lookup (or being torn down).
    fn enter() -> Option<Self> {
        LOOKING_UP
            .try_with(|on| !on.replace(true))
            .unwrap_or(false)
            .then_some(LookupGuard)
    }
}

impl Drop for LookupGuard {
    fn drop(&mut self) {
        let _ = LOOKING_UP.try_with(|on| on.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::JsonLayer;
    use crate::test_support::MockMakeWriter;
    use tracing_subscriber::prelude::*;

    /// What a test layer keeps in a span's extensions.
    struct Ids(u128, u64);

    fn lines(writer: &MockMakeWriter) -> Vec<serde_json::Value> {
        writer
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    #[test]
    fn the_hook_is_asked_about_parents_until_it_finds_ids() {
        let writer = MockMakeWriter::default();
        let layer = JsonLayer::new(writer.clone()).lookup_span_ids(|span: &SpanView<'_>| {
            let extensions = span.extensions();
            let ids = extensions.get::<Ids>()?;
            SpanIds::new(ids.0.to_be_bytes(), ids.1.to_be_bytes())
        });
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("outer");
            tracing::dispatcher::get_default(|d| {
                use tracing_subscriber::registry::LookupSpan;
                let registry = d.downcast_ref::<tracing_subscriber::Registry>().unwrap();
                let span = registry.span(&outer.id().unwrap()).unwrap();
                span.extensions_mut().insert(Ids(0xab, 0xcd));
            });
            let _outer = outer.enter();
            let _inner = tracing::info_span!("inner").entered();
            tracing::info!("inside");
        });
        let lines = lines(&writer);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["traceId"], "000000000000000000000000000000ab");
        assert_eq!(lines[0]["spanId"], "00000000000000cd");
    }

    #[test]
    fn a_panicking_hook_keeps_the_context_ids() {
        let writer = MockMakeWriter::default();
        let layer = JsonLayer::new(writer.clone())
            .lookup_span_ids(|_: &SpanView<'_>| -> Option<SpanIds> { panic!("hook") });
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            crate::Context::new()
                .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .in_scope(|| {
                    let _span = tracing::info_span!("s").entered();
                    tracing::info!("inside");
                });
        });
        let lines = lines(&writer);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
