//! The value forms a [`Schema`](super::keys::Schema) chooses: ids, durations, error keys.
//! Their setters are in `setters`.

use std::fmt;
use std::time::Duration;

/// How a trace id or a span id is written.
///
/// Ids are held as lowercase hex, as W3C trace context and OpenTelemetry write them. Each
/// form is written straight into the line, without allocating. An id that is not hex (a
/// context opened by hand with another kind of id) is written as it is in every form but
/// [`IdFormat::CloudTrace`].
///
/// ```
/// use tracing_ambient::{IdFormat, Schema};
///
/// let schema = Schema::DEFAULT
///     .with_trace_id_format(IdFormat::Decimal64)
///     .with_span_id_format(IdFormat::Decimal64);
/// # let _ = schema;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdFormat {
    /// Lowercase hex: `"4bf92f3577b34da6a3ce929d0e0e4736"`.
    Hex,
    /// The low 64 bits (the last 16 hex digits) as a decimal string:
    /// `"11803532876627986230"` for trace id `…a3ce929d0e0e4736`. Datadog's log-trace
    /// correlation matches `dd.trace_id` and `dd.span_id` in this form.
    Decimal64,
    /// `"projects/<project id>/traces/<hex id>"`, the resource name Google Cloud Logging
    /// wants in `logging.googleapis.com/trace`. An empty project id writes the hex id alone.
    CloudTrace(&'static str),
}

/// How the access line's latency is written.
///
/// ```
/// use tracing_ambient::{DurationFormat, Schema};
///
/// let schema = Schema::DEFAULT.with_access_latency_format(DurationFormat::Seconds);
/// # let _ = schema;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationFormat {
    /// A number of milliseconds, to the microsecond: `12.345`.
    Milliseconds,
    /// A number of seconds (OpenTelemetry's `http.server.request.duration` unit): `0.012345`.
    Seconds,
    /// An integer number of nanoseconds (ECS `event.duration`, Datadog `duration`):
    /// `12345678`.
    Nanoseconds,
    /// A string of seconds with an `s` suffix and 0, 3, 6 or 9 decimals, the JSON form of
    /// `google.protobuf.Duration` that Google Cloud's `httpRequest.latency` takes:
    /// `"0.012345678s"`, `"0.012s"`, `"2s"`.
    SecondsString,
}

/// Where an event field recorded as an error goes, for the field of one name.
///
/// The field's message goes under `message`; when the error has a `source()`, its chain
/// goes under `stack_trace` as one string: the message, then each cause on its own line
/// after `caused by: `, at most 32 causes. Rust errors carry no stack trace and a
/// `&dyn Error` does not name its type, so this text is the nearest thing there is to a
/// stack trace, and no `error.type` is written (log it yourself when you know it:
/// `error.type = std::any::type_name_of_val(&err)`).
///
/// A field of that name that is not an error (`error = %err`, `error = "text"`) goes under
/// `message` too, so the key keeps one type.
///
/// ```
/// use tracing_ambient::{ErrorKeys, Schema};
///
/// let schema = Schema::DEFAULT.with_error_keys(Some(ErrorKeys {
///     field: "error",
///     message: "error.message",
///     stack_trace: "error.stack_trace",
/// }));
/// // error!(error = &err as &dyn std::error::Error, "checkout failed") writes
/// // "error.message":"query failed","error.stack_trace":"query failed\ncaused by: timeout"
/// # let _ = schema;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKeys {
    /// The name of the event field (`error` in `error!(error = &err as &dyn Error)`).
    pub field: &'static str,
    /// The key of the error's message.
    pub message: &'static str,
    /// The key of the message and its causes, one per line.
    pub stack_trace: &'static str,
}

/// A latency written as [`DurationFormat::SecondsString`]: `0.012345678s`, with 0, 3, 6 or 9
/// decimals as `google.protobuf.Duration`'s JSON form has them. `Display` writes into the
/// line's buffer, so nothing is allocated.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct SecondsString(pub(crate) Duration);

impl fmt::Display for SecondsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            write!(f, "{secs}s")
        } else if nanos % 1_000_000 == 0 {
            write!(f, "{secs}.{:03}s", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            write!(f, "{secs}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{secs}.{nanos:09}s")
        }
    }
}

impl fmt::Debug for SecondsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_strings_have_0_3_6_or_9_decimals() {
        // The examples of google.protobuf.Duration's JSON form, and one of each width.
        let table = [
            (Duration::from_secs(3), "3s"),
            (Duration::new(1, 0), "1s"),
            (Duration::from_millis(12), "0.012s"),
            (Duration::from_micros(12_345), "0.012345s"),
            (Duration::from_nanos(12_345_678), "0.012345678s"),
            (Duration::new(3, 1), "3.000000001s"),
            (Duration::ZERO, "0s"),
        ];
        for (duration, expected) in table {
            assert_eq!(
                SecondsString(duration).to_string(),
                expected,
                "{duration:?}"
            );
        }
    }
}
