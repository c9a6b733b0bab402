//! [`DefaultLookupSpanIds`]: the span ids of tracing-opentelemetry 0.34 (feature
//! `opentelemetry`).

use opentelemetry::trace::TraceContextExt;

use super::ids::SpanIds;
use super::lookup::{EventSpans, LookupSpanIds};

/// Finds the ids of the innermost OpenTelemetry span an event is logged in, as
/// tracing-opentelemetry 0.34 exports it. The default lookup with the `opentelemetry` feature.
///
/// - An event in the current span (`info!(..)`) takes the span of the current OpenTelemetry
///   context (`opentelemetry::Context::current()`). tracing-opentelemetry makes a span's
///   context current while the span is entered ("context activation", on by default), and
///   starts the OpenTelemetry span before, so its ids are decided and are the ones exported.
///   A span its layer does not track (filtered out of it) is skipped, so the ids are those of
///   the innermost tracked span. This reads a thread-local: no lookup, no lock.
/// - An event with an explicit parent (`info!(parent: &span, ..)`) takes the ids of that span,
///   or of its nearest parent the layer tracks, through
///   `tracing_opentelemetry::get_otel_context`. That call starts the span's OpenTelemetry
///   span if nothing started it yet (the span was never entered), exactly as
///   `Span::context()` would: its ids are decided then, and exported. As with `Span::context()`,
///   `set_parent` on that span fails afterwards, so set a span's parent before logging into
///   it.
/// - A remote span context made current by hand (`cx.attach()` on an extracted context) is not
///   a span of this process: lines under it keep the context's ids.
///
/// Nothing else is made up: outside any OpenTelemetry span, without the OpenTelemetry layer, or
/// with an invalid span context (a shut-down provider), `None`, and the line keeps the
/// context's ids. A span the sampler dropped still has valid ids, the ones its trace context
/// propagates (`traceparent` with flags `00`): they are written, with
/// [`SpanIds::is_sampled`] `false`.
///
/// With tracing-opentelemetry's context activation switched off
/// (`with_context_activation(false)`) no OpenTelemetry context is current, and events in the
/// current span keep the context's ids; the `get_otel_context` closure shown on
/// [`LookupSpanIds`] covers that case.
///
/// Events of OpenTelemetry's own crates (targets `opentelemetry*`) are skipped: they can be
/// logged while its current context is being changed.
///
/// # Examples
///
/// Nothing to set: with the feature on, a `tracing_opentelemetry::layer()` in the subscriber
/// is enough.
///
/// ```
/// use opentelemetry::trace::TracerProvider as _;
/// use tracing_subscriber::prelude::*;
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("shop")))
///     .with(tracing_ambient::JsonLayer::stdout());
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("checkout").entered();
///     tracing::info!("order placed"); // carries the checkout span's traceId and spanId
/// });
/// ```
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","target":"shop"}
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub struct DefaultLookupSpanIds {
    _private: (),
}

impl DefaultLookupSpanIds {
    /// Returns the default lookup.
    ///
    /// ```
    /// let lookup = tracing_ambient::otel::DefaultLookupSpanIds::new();
    /// let layer = tracing_ambient::JsonLayer::stdout().lookup_span_ids(lookup);
    /// # drop(layer);
    /// ```
    pub const fn new() -> Self {
        DefaultLookupSpanIds { _private: () }
    }
}

impl LookupSpanIds for DefaultLookupSpanIds {
    fn lookup_span_ids(&self, spans: &EventSpans<'_>) -> Option<SpanIds> {
        if spans
            .event()
            .metadata()
            .target()
            .starts_with("opentelemetry")
        {
            return None;
        }
        if spans.is_contextual() {
            return current_span_ids();
        }
        let dispatch = spans.dispatch()?;
        spans.find_map(|span| {
            let cx = tracing_opentelemetry::get_otel_context(&span.id(), dispatch)?;
            SpanIds::from_span_context(cx.span().span_context())
        })
    }
}

/// The ids of the current OpenTelemetry context's span, if it is a valid span of this process.
fn current_span_ids() -> Option<SpanIds> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_remote() {
            return None;
        }
        SpanIds::from_span_context(sc)
    })
}
