//! What a handler needs to continue the trace in its own outgoing calls: the current
//! request's `traceparent` and `tracestate`, and a helper that writes both into a header map.

use crate::Context;

use super::traceparent::{hex, TraceParent, SAMPLED};
use super::tracestate::TraceState;

/// What the middleware keeps with a request about its trace, beside the `trace_id` and
/// `span_id` entries: never written on a line.
#[derive(Debug, Clone)]
pub(crate) struct TraceInfo {
    pub(crate) flags: u8,
    pub(crate) parent_id: Option<[u8; 8]>,
    pub(crate) tracestate: Option<TraceState>,
}

/// Returns the `traceparent` to send with an outgoing call of the current request, `None`
/// outside a request.
///
/// It carries the request's trace id and its own span id (the parent of whatever the call
/// starts), with the trace flags the request came with (`01`, sampled, for a trace the
/// request started). A context opened by hand gets one when its `trace_id` and `span_id` are
/// valid lowercase hex ids.
///
/// # Examples
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new()
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_span_id("00f067aa0ba902b7");
/// assert_eq!(
///     ctx.in_scope(tracing_ambient::traceparent).as_deref(),
///     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
/// );
/// assert_eq!(tracing_ambient::traceparent(), None);
/// ```
pub fn traceparent() -> Option<String> {
    Context::current()
        .and_then(|ctx| outgoing(&ctx))
        .map(|tp| tp.to_string())
}

/// Returns the `tracestate` to send with an outgoing call of the current request: the one the
/// request came with, when it and its `traceparent` were valid. `None` otherwise.
///
/// # Examples
///
/// ```
/// assert_eq!(tracing_ambient::tracestate(), None);
/// ```
pub fn tracestate() -> Option<String> {
    let ctx = Context::current()?;
    incoming_tracestate(&ctx).map(|ts| ts.as_str().to_owned())
}

/// Returns the span id of the caller of the current request (the parent id of its
/// `traceparent`), `None` outside a request or when the request started its trace.
///
/// The parent span id is kept with the request and not written on its lines; a span
/// exporter or a handler may want it.
///
/// # Examples
///
/// ```
/// assert_eq!(tracing_ambient::trace_context::parent_span_id(), None);
/// ```
pub fn parent_span_id() -> Option<String> {
    let ctx = Context::current()?;
    ctx.attachment::<TraceInfo>()?.parent_id.map(|id| hex(&id))
}

/// The outgoing `traceparent` of `ctx`: its trace id and span id entries and the flags the
/// request came with.
pub(crate) fn outgoing(ctx: &Context) -> Option<TraceParent> {
    let trace_id = ctx.trace_id()?;
    let span_id = ctx.get("span_id")?;
    let flags = ctx
        .attachment::<TraceInfo>()
        .map_or(SAMPLED, |info| info.flags);
    TraceParent::from_hex_ids(&trace_id, span_id.as_str()?, flags)
}

/// The `tracestate` the request came with, when it and its `traceparent` were valid.
pub(crate) fn incoming_tracestate(ctx: &Context) -> Option<TraceState> {
    ctx.attachment::<TraceInfo>()?.tracestate
}
