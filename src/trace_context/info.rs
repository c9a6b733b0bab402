//! [`TraceInfo`]: what a request's context keeps about its trace beside its ids.

use super::tracestate::TraceState;

/// What the middleware keeps with a request about its trace, beside the `trace_id` and
/// `span_id` entries: never written on a line.
#[derive(Debug, Clone)]
pub(crate) struct TraceInfo {
    pub(crate) flags: u8,
    pub(crate) parent_id: Option<[u8; 8]>,
    pub(crate) tracestate: Option<TraceState>,
}
