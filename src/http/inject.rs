//! [`inject_trace_context`]: the current request's trace context into an outgoing call's
//! headers.

use http::{HeaderMap, HeaderValue};

use crate::trace_context::{incoming_tracestate, outgoing};
use crate::Context;

/// Writes the current request's `traceparent` and `tracestate` into the headers of an
/// outgoing request, replacing any there. Outside a request, or when the context has no valid
/// trace, it removes neither and writes nothing.
///
/// # Examples
///
/// ```
/// use http::HeaderMap;
/// use tracing_ambient::Context;
///
/// let ctx = Context::new()
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_span_id("00f067aa0ba902b7");
/// let mut headers = HeaderMap::new();
/// ctx.in_scope(|| tracing_ambient::http::inject_trace_context(&mut headers));
/// assert_eq!(
///     headers["traceparent"],
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// ```
pub fn inject_trace_context(headers: &mut HeaderMap) {
    let Some(ctx) = Context::current() else {
        return;
    };
    let Some(tp) = outgoing(&ctx) else { return };
    // Both values are validated ASCII, so they are always valid header values.
    if let Ok(value) = HeaderValue::try_from(tp.to_string()) {
        headers.insert(super::TRACEPARENT, value);
    }
    match incoming_tracestate(&ctx).map(|ts| HeaderValue::try_from(ts.as_str())) {
        Some(Ok(value)) => {
            headers.insert(super::TRACESTATE, value);
        }
        _ => {
            headers.remove(super::TRACESTATE);
        }
    }
}
