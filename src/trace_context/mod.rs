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
//! use tracing_ambient::trace_context::TraceParent;
//! use tracing_ambient::Context;
//!
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
//! let ctx = Context::new()
//!     .with_trace_id(tp.trace_id_hex())
//!     .with_span_id("53995c3f42cd8ad8");
//! let outgoing = ctx.in_scope(tracing_ambient::traceparent).unwrap();
//! assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! ```
//!
//! ```text
//! 00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01
//! ```
//!
//! [Trace Context]: https://www.w3.org/TR/trace-context/

mod current;
// Without `http`, only the middleware would use these so far.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) mod rng;
mod traceparent;
mod tracestate;

pub use current::{parent_span_id, traceparent, tracestate};
pub use traceparent::{InvalidTraceParent, TraceParent};
pub use tracestate::{InvalidTraceState, TraceState};

#[cfg(feature = "http")]
pub(crate) use current::TraceInfo;
pub(crate) use current::{incoming_tracestate, outgoing};
#[cfg(feature = "http")]
pub(crate) use traceparent::{hex, SAMPLED};
