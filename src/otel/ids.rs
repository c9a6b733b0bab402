//! [`SpanIds`]: the trace id, span id and sampled flag a line takes from a span.

use std::fmt;

use crate::hex;

/// The trace id, span id and sampled flag of a span, which a line logged in it carries in
/// place of the context's trace and span ids.
///
/// Only valid ids can be held: [`SpanIds::new`] refuses an all-zero trace or span id, which
/// W3C trace context and OpenTelemetry treat as "no id".
///
/// # Examples
///
/// ```
/// use tracing_ambient::otel::SpanIds;
///
/// let ids = SpanIds::new(0x4bf92f3577b34da6a3ce929d0e0e4736_u128.to_be_bytes(), [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
///     .unwrap()
///     .with_sampled(false);
/// assert_eq!(
///     format!("{ids:?}"),
///     "SpanIds { trace_id: 4bf92f3577b34da6a3ce929d0e0e4736, span_id: 00f067aa0ba902b7, sampled: false }"
/// );
/// assert_eq!(SpanIds::new([0; 16], [1; 8]), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanIds {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

impl SpanIds {
    /// Returns the ids of a span, marked sampled, or `None` if either id is all zeros.
    ///
    /// The bytes are big-endian, as OpenTelemetry's `TraceId::to_bytes` and
    /// `SpanId::to_bytes` return them and as they are written in hex.
    ///
    /// ```
    /// let ids = tracing_ambient::otel::SpanIds::new([1; 16], [2; 8]).unwrap();
    /// assert!(ids.is_sampled());
    /// ```
    #[must_use]
    pub const fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Option<Self> {
        if u128::from_ne_bytes(trace_id) == 0 || u64::from_ne_bytes(span_id) == 0 {
            return None;
        }
        Some(SpanIds {
            trace_id,
            span_id,
            sampled: true,
        })
    }

    /// Sets whether the span is sampled (recorded and exported). Defaults to `true`.
    ///
    /// ```
    /// let ids = tracing_ambient::otel::SpanIds::new([1; 16], [2; 8]).unwrap().with_sampled(false);
    /// assert!(!ids.is_sampled());
    /// ```
    #[must_use]
    pub const fn with_sampled(self, sampled: bool) -> Self {
        SpanIds { sampled, ..self }
    }

    /// Returns the trace id, big-endian.
    ///
    /// ```
    /// let ids = tracing_ambient::otel::SpanIds::new([1; 16], [2; 8]).unwrap();
    /// assert_eq!(ids.trace_id(), [1; 16]);
    /// ```
    pub const fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Returns the span id, big-endian.
    ///
    /// ```
    /// let ids = tracing_ambient::otel::SpanIds::new([1; 16], [2; 8]).unwrap();
    /// assert_eq!(ids.span_id(), [2; 8]);
    /// ```
    pub const fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// Returns whether the span is sampled.
    ///
    /// ```
    /// let ids = tracing_ambient::otel::SpanIds::new([1; 16], [2; 8]).unwrap();
    /// assert!(ids.is_sampled());
    /// ```
    pub const fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Returns the ids of an OpenTelemetry span context, or `None` if it is invalid.
    ///
    /// ```
    /// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// use tracing_ambient::otel::SpanIds;
    ///
    /// let cx = SpanContext::new(
    ///     TraceId::from(7),
    ///     SpanId::from(9),
    ///     TraceFlags::SAMPLED,
    ///     false,
    ///     TraceState::default(),
    /// );
    /// let ids = SpanIds::from_span_context(&cx).unwrap();
    /// assert_eq!(u128::from_be_bytes(ids.trace_id()), 7);
    /// assert!(SpanIds::from_span_context(&SpanContext::empty_context()).is_none());
    /// ```
    #[cfg(feature = "opentelemetry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
    pub fn from_span_context(cx: &opentelemetry::trace::SpanContext) -> Option<Self> {
        if !cx.is_valid() {
            return None;
        }
        SpanIds::new(cx.trace_id().to_bytes(), cx.span_id().to_bytes())
            .map(|ids| ids.with_sampled(cx.is_sampled()))
    }

    /// The trace id as a JSON string: 32 lowercase hex digits in quotes.
    pub(crate) fn trace_id_json(&self) -> [u8; 34] {
        let mut out = [b'"'; 34];
        hex::encode_into(&self.trace_id, &mut out[1..33]);
        out
    }

    /// The span id as a JSON string: 16 lowercase hex digits in quotes.
    pub(crate) fn span_id_json(&self) -> [u8; 18] {
        let mut out = [b'"'; 18];
        hex::encode_into(&self.span_id, &mut out[1..17]);
        out
    }
}

impl fmt::Debug for SpanIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanIds")
            .field(
                "trace_id",
                &format_args!("{:032x}", u128::from_be_bytes(self.trace_id)),
            )
            .field(
                "span_id",
                &format_args!("{:016x}", u64::from_be_bytes(self.span_id)),
            )
            .field("sampled", &self.sampled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_quoted_lowercase_hex() {
        let trace = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
        let span = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
        let ids = SpanIds::new(trace, span).unwrap();
        assert_eq!(
            &ids.trace_id_json(),
            b"\"4bf92f3577b34da6a3ce929d0e0e4736\""
        );
        assert_eq!(&ids.span_id_json(), b"\"00f067aa0ba902b7\"");
    }

    #[test]
    fn all_zero_ids_are_refused() {
        // (trace id, span id, valid)
        let cases = [
            ([0; 16], [1; 8], false),
            ([1; 16], [0; 8], false),
            ([0; 16], [0; 8], false),
            (
                {
                    let mut t = [0; 16];
                    t[15] = 1;
                    t
                },
                {
                    let mut s = [0; 8];
                    s[0] = 1;
                    s
                },
                true,
            ),
        ];
        for (trace, span, valid) in cases {
            assert_eq!(
                SpanIds::new(trace, span).is_some(),
                valid,
                "{trace:?} {span:?}"
            );
        }
    }
}
