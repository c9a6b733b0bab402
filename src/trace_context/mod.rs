//! W3C [Trace Context]: the `traceparent` and `tracestate` values, parsed and generated, and
//! what a request hands to its outgoing calls. Needs no feature.
//!
//! The HTTP middleware (`http::RequestContextLayer`, feature `http`) reads the incoming
//! headers and keeps the trace with the request's [`Context`](crate::Context);
//! [`sql::tag`](crate::sql::tag) and outgoing calls read it back from there. A context opened
//! by hand takes part too once its `trace_id` and `span_id` are valid lowercase hex ids.
//!
//! # Example
//!
//! ```
//! use tracing_ambient::trace_context::{self, TraceParent};
//! use tracing_ambient::Context;
//!
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
//! let ctx = Context::new()
//!     .with_trace_id(tp.trace_id_hex())
//!     .with_span_id("53995c3f42cd8ad8");
//! ctx.in_scope(|| {
//!     // The request's own position: what its lines and SQL comments name.
//!     let own = tracing_ambient::traceparent().unwrap();
//!     assert_eq!(own, "00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01");
//!     // A new parent-id for each outgoing call, in the same trace.
//!     let call = trace_context::child().unwrap();
//!     assert_eq!(call.trace_id(), tp.trace_id());
//!     assert_ne!(call.parent_id_hex(), "53995c3f42cd8ad8");
//! });
//! ```
//!
//! ```text
//! traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01   the request
//! traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01   one outgoing call
//! ```
//!
//! # Outgoing calls
//!
//! Each outgoing call gets its own parent-id, a child of the request's span with the same
//! trace id and flags ([`child`]; with the `http` feature, `http::inject_trace_context` writes
//! it into a header map and returns it). The request's own `traceparent` ([`traceparent()`],
//! [`current`]) names the request itself: its lines' `spanId` and its SQL comments.
//!
//! # `tracestate`
//!
//! The W3C Trace Context Level 2 grammar: [`TraceState`] lists the rules. A member whose key
//! repeats an earlier one is dropped and the rest is kept; any other broken member drops the
//! whole value.
//!
//! [Trace Context]: https://www.w3.org/TR/trace-context/

mod current;
mod info;
pub(crate) mod rng;
mod traceparent;
mod tracestate;

pub use current::{child, current, parent_span_id, traceparent, tracestate};
pub use traceparent::{InvalidTraceParent, TraceParent};
pub use tracestate::{InvalidTraceState, TraceState};

pub(crate) use current::{incoming_tracestate, request_traceparent, sampled_in};
pub(crate) use info::TraceInfo;
#[cfg(feature = "http")]
pub(crate) use traceparent::SAMPLED;
