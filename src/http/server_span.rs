//! The request span as the OpenTelemetry server span (feature `opentelemetry`): parented on
//! the request's validated `traceparent`, and the request's ids taken from it.
//!
//! tracing-opentelemetry decides a span's ids when it starts the OpenTelemetry span, and its
//! parent can only be set before that. So the middleware sets the parent right after making
//! the span (nothing has entered it or logged in it yet), then starts it by asking for its
//! context, and puts the ids it was given into the request's [`Context`](crate::Context):
//! every reader of the context (the lines outside OpenTelemetry spans, the access line,
//! `sql::tag`, `traceparent()`, `inject_trace_context`) then names the exported span.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::request_trace::RequestTrace;
use crate::otel::SpanIds;
use crate::trace_context::SAMPLED;

/// Makes `span` the request's OpenTelemetry server span, and returns `trace` with its ids and
/// whether a tracing-opentelemetry layer tracks the span.
///
/// Its parent is the incoming `traceparent` (with its `tracestate`), or none: without a valid
/// `traceparent` the request starts a trace, whatever span is current around the middleware.
/// Returns `trace` as it was (the middleware's own ids) when the span is disabled, when
/// no tracing-opentelemetry 0.34 layer is in the subscriber, when that layer does not track the
/// span (filtered out of it), or when the span context it gives is invalid.
pub(crate) fn adopt(span: &Span, mut trace: RequestTrace) -> (RequestTrace, bool) {
    if span.is_disabled() {
        return (trace, false);
    }
    let parent = match trace.incoming {
        Some(tp) => {
            // The flags as received: the sampler of a parent-based SDK honours them.
            let state = trace
                .info
                .tracestate
                .as_ref()
                .and_then(|ts| ts.as_str().parse::<OtelTraceState>().ok())
                .unwrap_or_default();
            let remote = SpanContext::new(
                TraceId::from_bytes(tp.trace_id()),
                SpanId::from_bytes(tp.parent_id()),
                TraceFlags::new(tp.flags() & SAMPLED),
                true,
                state,
            );
            opentelemetry::Context::new().with_remote_span_context(remote)
        }
        // An empty parent: a new trace, not a child of an outer span of the application.
        None => opentelemetry::Context::new(),
    };
    // `Err` when the layer is missing or the span was started already (never here: it was
    // made a moment ago and nothing has entered it).
    if span.set_parent(parent).is_err() {
        return (trace, false);
    }
    // Starts the OpenTelemetry span: its ids are decided now, and are the ones exported.
    let cx = span.context();
    let Some(ids) = SpanIds::from_span_context(cx.span().span_context()) else {
        return (trace, true);
    };
    trace.trace_id = ids.trace_id();
    trace.span_id = ids.span_id();
    trace.info.flags = if ids.is_sampled() { SAMPLED } else { 0 };
    (trace, true)
}

/// Whether a tracing-opentelemetry layer tracks `span`, for a request whose trace context
/// the middleware does not read. Starts the OpenTelemetry span, as the first line in it would.
pub(crate) fn is_tracked(span: &Span) -> bool {
    !span.is_disabled() && span.context().span().span_context().is_valid()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use opentelemetry::trace::{SpanId, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tower::ServiceExt;
    use tower_layer::Layer;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::prelude::*;

    use crate::http::RequestContextLayer;
    use crate::test_support::MockMakeWriter;
    use crate::JsonLayer;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    /// Runs one request through the middleware around a handler that logs and answers with
    /// `traceparent()`; returns the answer, the lines and the exported spans.
    fn run(
        track_request_span: bool,
        traceparent: Option<&str>,
        outer: bool,
    ) -> (String, Vec<serde_json::Value>, Vec<SpanData>) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("unit"))
            .with_filter(filter_fn(move |meta| {
                track_request_span || meta.name() != "HTTP request"
            }));
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry()
            .with(otel)
            .with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: Request<()>| async {
            tracing::info!("handled");
            let body = crate::traceparent().unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        });
        let mut request = Request::builder();
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        let request = request.body(()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outer = if outer {
            tracing::info_span!("outer")
        } else {
            tracing::Span::none()
        };
        let body = runtime.block_on(async {
            let _outer = outer.enter();
            let service = RequestContextLayer::new().layer(handler);
            let response = service.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        });
        drop(outer);
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let lines = writer
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (String::from_utf8(body.to_vec()).unwrap(), lines, spans)
    }

    #[test]
    fn an_outer_span_is_not_the_parent_of_a_request_without_traceparent() {
        let (body, lines, spans) = run(true, None, true);
        assert_eq!(spans.len(), 2, "{spans:#?}");
        let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
        let (server, outer) = (find("GET"), find("outer"));
        assert_eq!(server.parent_span_id, SpanId::INVALID);
        let trace = server.span_context.trace_id().to_string();
        assert_ne!(trace, outer.span_context.trace_id().to_string());
        let span = server.span_context.span_id().to_string();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        for line in &lines {
            assert_eq!(line["traceId"], trace.as_str());
            assert_eq!(line["spanId"], span.as_str());
        }
        assert_eq!(body, format!("00-{trace}-{span}-01"));
    }

    #[test]
    fn a_request_span_the_layer_does_not_track_keeps_the_middleware_ids() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let (body, lines, spans) = run(false, Some(&tp), false);
        assert!(spans.is_empty(), "{spans:#?}");
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let span = lines[0]["spanId"].as_str().unwrap().to_owned();
        assert_ne!(span, PARENT);
        for line in &lines {
            assert_eq!(line["traceId"], TRACE);
            assert_eq!(line["spanId"], span.as_str());
        }
        assert_eq!(body, format!("00-{TRACE}-{span}-01"));
    }
}
