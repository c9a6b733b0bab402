//! The current request's trace context, read from its [`Context`]: its own `traceparent`, a
//! new one for each outgoing call, its `tracestate` and its caller's span id.

use crate::context::Context;
use crate::context::Entries;

use super::traceparent::{TraceParent, SAMPLED};
use super::tracestate::TraceState;
use crate::hex;

/// Returns the current request's own `traceparent`, `None` outside a request.
///
/// It carries the request's trace id and its own span id (the `spanId` of its lines), with
/// the trace flags the request came with (`01`, sampled, for a trace the request started).
/// This is what [`sql::tag`](crate::sql::tag) writes: a statement is not a call that starts
/// a span of its own. For an outgoing call, which gets a parent-id of its own, use
/// [`child`] (or `http::inject_trace_context` with the `http` feature).
///
/// A context opened by hand has one when its `trace_id` and `span_id` are valid lowercase hex
/// ids.
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
    current().map(|tp| tp.to_string())
}

/// Returns the current request's own [`TraceParent`], `None` outside a request: the value of
/// [`traceparent()`], parsed.
///
/// ```
/// use tracing_ambient::{trace_context, Context};
///
/// let ctx = Context::new()
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_span_id("00f067aa0ba902b7");
/// let tp = ctx.in_scope(trace_context::current).unwrap();
/// assert_eq!(tp.parent_id_hex(), "00f067aa0ba902b7");
/// ```
pub fn current() -> Option<TraceParent> {
    Context::current().and_then(|ctx| request_traceparent(&ctx))
}

/// Returns a new `traceparent` for one outgoing call of the current request, `None` outside a
/// request.
///
/// Each call returns a new random parent-id: the id of the outgoing call, a child of the
/// request's span (W3C: "update parent-id" before sending). The trace id and the flags are
/// the request's. Log the returned value's [`parent_id_hex`](TraceParent::parent_id_hex) to
/// find the call in the callee's trace.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{trace_context, Context};
///
/// let ctx = Context::new()
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_span_id("00f067aa0ba902b7");
/// let (a, b) = ctx.in_scope(|| (trace_context::child().unwrap(), trace_context::child().unwrap()));
/// assert_eq!(a.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(a.trace_id(), b.trace_id());
/// assert_ne!(a.parent_id(), b.parent_id());
/// assert_ne!(a.parent_id_hex(), "00f067aa0ba902b7");
/// assert!(trace_context::child().is_none());
/// ```
pub fn child() -> Option<TraceParent> {
    current().map(|tp| tp.child())
}

/// Returns the `tracestate` to send with an outgoing call of the current request: the one the
/// request came with (members with a repeated key dropped), when it and its `traceparent`
/// were valid. `None` otherwise.
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
    ctx.trace_info()?.parent_id.map(|id| hex::string(&id))
}

/// The request's own `traceparent` in `ctx`: its trace id and span id entries and the flags
/// the request came with.
pub(crate) fn request_traceparent(ctx: &Context) -> Option<TraceParent> {
    let trace_id = ctx.trace_id()?;
    let span_id = ctx.get("span_id")?;
    let flags = ctx
        .read()
        .trace_info
        .as_ref()
        .map_or(SAMPLED, |info| info.flags);
    TraceParent::from_hex_ids(&trace_id, span_id.as_str()?, flags)
}

/// Whether the trace of a context's entries is sampled: the flag its `traceparent` came with,
/// or sampled for a trace the request started and for a context opened by hand (as
/// [`request_traceparent`] has it). Allocates nothing: the event path calls it.
pub(crate) fn sampled_in(entries: &Entries) -> bool {
    entries
        .trace_info
        .as_ref()
        .is_none_or(|info| info.flags & SAMPLED != 0)
}

/// The `tracestate` the request came with, when it and its `traceparent` were valid.
pub(crate) fn incoming_tracestate(ctx: &Context) -> Option<TraceState> {
    ctx.trace_info()?.tracestate
}
