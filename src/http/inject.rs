//! [`inject_trace_context`]: the current request's trace context into an outgoing call's
//! headers.

use http::{HeaderMap, HeaderValue};

use crate::context::Context;
use crate::trace_context::{incoming_tracestate, request_traceparent, TraceParent};

/// Writes a new `traceparent` for one outgoing call, and the request's `tracestate`, into
/// the call's headers, replacing any there; returns that `traceparent`.
///
/// The `traceparent` is a child of the request's span ([`trace_context::child`]): the
/// request's trace id and flags, and a new random parent-id for every call, so three calls
/// from one request carry three different parent-ids. Log the returned value to find a call
/// in the callee's trace. Outside a request, or when the context has no valid trace, it
/// writes and removes nothing and returns `None`.
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
/// let sent = ctx
///     .in_scope(|| tracing_ambient::http::inject_trace_context(&mut headers))
///     .unwrap();
/// assert_eq!(headers["traceparent"], sent.to_string());
/// assert_eq!(sent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_ne!(sent.parent_id_hex(), "00f067aa0ba902b7"); // the call's own id
/// ```
///
/// [`trace_context::child`]: crate::trace_context::child
pub fn inject_trace_context(headers: &mut HeaderMap) -> Option<TraceParent> {
    let ctx = Context::current()?;
    let tp = request_traceparent(&ctx)?.child();
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
    Some(tp)
}
