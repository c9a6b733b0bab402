//! The request's deadline: the layer's timeout, shortened by a timeout the client sends in a
//! header, in milliseconds or in gRPC's `grpc-timeout` format.

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::context::Context;

/// How a timeout header's value is written. See
/// [`RequestContextLayer::timeout_header`](super::RequestContextLayer::timeout_header).
///
/// ```
/// use http::HeaderName;
/// use tracing_ambient::http::{RequestContextLayer, TimeoutFormat};
///
/// // `x-timeout-ms: 1500`
/// let rest = RequestContextLayer::new()
///     .timeout_header(HeaderName::from_static("x-timeout-ms"), TimeoutFormat::Millis);
/// // `grpc-timeout: 1500m`
/// let grpc = RequestContextLayer::new()
///     .timeout_header(HeaderName::from_static("grpc-timeout"), TimeoutFormat::Grpc);
/// # drop((rest, grpc));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutFormat {
    /// A whole number of milliseconds: 1 to 19 ASCII digits (`1500`), nothing else.
    Millis,
    /// gRPC's `grpc-timeout` ("gRPC over HTTP2"): 1 to 8 ASCII digits and one unit, `H`
    /// (hours), `M` (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n`
    /// (nanoseconds): `1500m`, `2S`.
    Grpc,
}

/// The middleware's deadline settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeadlineConfig {
    pub(crate) header: Option<(HeaderName, TimeoutFormat)>,
    pub(crate) timeout: Option<Duration>,
}

impl DeadlineConfig {
    /// Sets the request's deadline: the earlier of the layer's timeout and the header's, both
    /// counted from now. An invalid header, or several, counts as none. A gRPC call with no
    /// header named reads `grpc-timeout`, which gRPC clients send for their deadline.
    pub(crate) fn apply(&self, headers: &HeaderMap, ctx: &Context, grpc: bool) {
        // Made at compile time: `from_static` at run time checks the name on every request.
        const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
        let grpc_timeout = (GRPC_TIMEOUT, TimeoutFormat::Grpc);
        let header = self.header.as_ref().or(grpc.then_some(&grpc_timeout));
        let from_header = header.and_then(|(name, format)| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => parse(value, *format),
                _ => None,
            }
        });
        let timeout = match (self.timeout, from_header) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(timeout) => timeout,
                None => return,
            },
        };
        // Too far for the clock: no deadline.
        if let Some(deadline) = Instant::now().checked_add(timeout) {
            ctx.set_deadline(deadline);
        }
    }
}

/// Parses a timeout header; `None` if it is not valid in `format`.
fn parse(value: &HeaderValue, format: TimeoutFormat) -> Option<Duration> {
    let bytes = value.as_bytes();
    match format {
        TimeoutFormat::Millis => digits(bytes, 19).map(Duration::from_millis),
        TimeoutFormat::Grpc => {
            let (&unit, number) = bytes.split_last()?;
            let n = digits(number, 8)?;
            Some(match unit {
                b'H' => Duration::from_secs(n * 3600),
                b'M' => Duration::from_secs(n * 60),
                b'S' => Duration::from_secs(n),
                b'm' => Duration::from_millis(n),
                b'u' => Duration::from_micros(n),
                b'n' => Duration::from_nanos(n),
                _ => return None,
            })
        }
    }
}

/// Parses 1 to `max` ASCII digits (no sign, no space). 19 digits always fit a `u64`, and 8
/// digits of hours fit it in seconds.
fn digits(bytes: &[u8], max: usize) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > max || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: &str, format: TimeoutFormat) -> Option<Duration> {
        parse(&HeaderValue::from_str(value).unwrap(), format)
    }

    #[test]
    fn grpc_timeouts_follow_the_spec() {
        let table = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("1500m", Some(Duration::from_millis(1500))),
            ("250u", Some(Duration::from_micros(250))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("99999999H", Some(Duration::from_secs(99_999_999 * 3600))),
            ("0m", Some(Duration::ZERO)),
            // At most 8 digits, one known unit, nothing else.
            ("123456789m", None),
            ("m", None),
            ("10", None),
            ("10s", None),
            ("10ms", None),
            ("-1S", None),
            ("+1S", None),
            (" 1S", None),
            ("1.5S", None),
            ("", None),
        ];
        for (value, expected) in table {
            assert_eq!(parsed(value, TimeoutFormat::Grpc), expected, "{value:?}");
        }
    }

    #[test]
    fn millisecond_timeouts_are_digits_only() {
        let table = [
            ("1500", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            (
                "9999999999999999999",
                Some(Duration::from_millis(9_999_999_999_999_999_999)),
            ),
            ("18446744073709551616", None), // 20 digits
            ("1500m", None),
            ("-5", None),
            ("1e3", None),
            ("", None),
        ];
        for (value, expected) in table {
            assert_eq!(parsed(value, TimeoutFormat::Millis), expected, "{value:?}");
        }
    }

    #[test]
    fn the_earlier_of_the_layer_and_the_header_wins() {
        let name = HeaderName::from_static("x-timeout-ms");
        let config = DeadlineConfig {
            header: Some((name.clone(), TimeoutFormat::Millis)),
            timeout: Some(Duration::from_secs(10)),
        };
        let remaining = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(&name, HeaderValue::from_str(value).unwrap());
            }
            let ctx = Context::new();
            config.apply(&headers, &ctx, false);
            ctx.remaining().unwrap()
        };
        assert!(remaining(Some("100")) <= Duration::from_millis(100));
        let capped = remaining(Some("3600000"));
        assert!(capped <= Duration::from_secs(10) && capped > Duration::from_secs(9));
        assert!(remaining(Some("junk")) > Duration::from_secs(9));
        assert!(remaining(None) > Duration::from_secs(9));
        let off = DeadlineConfig::default();
        let ctx = Context::new();
        off.apply(&HeaderMap::new(), &ctx, false);
        assert_eq!(ctx.deadline(), None);
    }

    #[test]
    fn several_headers_or_a_huge_value_set_no_deadline() {
        let name = HeaderName::from_static("x-timeout-ms");
        let config = DeadlineConfig {
            header: Some((name.clone(), TimeoutFormat::Millis)),
            timeout: None,
        };
        let mut headers = HeaderMap::new();
        headers.append(&name, HeaderValue::from_static("100"));
        headers.append(&name, HeaderValue::from_static("200"));
        let ctx = Context::new();
        config.apply(&headers, &ctx, false);
        assert_eq!(ctx.deadline(), None);
        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_static("9999999999999999999"));
        let ctx = Context::new();
        config.apply(&headers, &ctx, false);
        // About 317 million years: fits the clock on 64-bit Unix; either way, no panic.
        assert!(ctx.deadline().is_none_or(|d| d > Instant::now()));
    }
}
