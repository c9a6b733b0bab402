//! [`RequestTrace`]: the request's place in its W3C trace, read from its headers (continued
//! or started) and stored in its context.

use http::HeaderMap;

use super::{TRACEPARENT, TRACESTATE};
use crate::context::{Context, Known};
use crate::hex;
use crate::trace_context::{rng, TraceInfo, TraceParent, TraceState, SAMPLED};

/// The request's place in its trace, read from its headers, until [`RequestTrace::store`]
/// puts it in the context.
pub(crate) struct RequestTrace {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) info: TraceInfo,
    /// The caller's `traceparent`, when there was exactly one and it was valid.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) incoming: Option<TraceParent>,
}

impl RequestTrace {
    /// Continues the caller's trace when the request has exactly one valid `traceparent`,
    /// else starts a new one; either way with a new span id for this request.
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(TRACEPARENT).iter();
        let incoming = match (values.next(), values.next()) {
            (Some(value), None) => TraceParent::try_from(value).ok(),
            _ => None,
        };
        let (trace_id, span_id, info) = match incoming {
            Some(tp) => {
                let mut span_id = [0u8; 8];
                rng::fill_nonzero(&mut span_id);
                let parts = headers.get_all(TRACESTATE).iter().map(|v| v.as_bytes());
                let info = TraceInfo {
                    // Only `sampled` is defined; the spec says to pass the other bits on as zero.
                    flags: tp.flags() & SAMPLED,
                    parent_id: Some(tp.parent_id()),
                    tracestate: TraceState::parse_parts(parts).ok(),
                };
                (tp.trace_id(), span_id, info)
            }
            None => {
                // Both ids from one draw of the thread's generator.
                let (trace_id, span_id) = rng::trace_and_span_ids();
                let info = TraceInfo {
                    flags: SAMPLED,
                    parent_id: None,
                    tracestate: None,
                };
                (trace_id, span_id, info)
            }
        };
        RequestTrace {
            trace_id,
            span_id,
            info,
            incoming,
        }
    }

    /// Puts the ids and the rest of the trace context in the request's context.
    pub(crate) fn store(self, ctx: &Context) {
        // Hexed on the stack and set as well-known keys: no `String`, no serde.
        let trace_id = hex::digits_16(&self.trace_id);
        let span_id = hex::digits_8(&self.span_id);
        // One lock for the three.
        let mut entries = ctx.write();
        entries.set_known_ascii(Known::TraceId, &trace_id);
        entries.set_known_ascii(Known::SpanId, &span_id);
        entries.trace_info = Some(self.info);
    }
}
