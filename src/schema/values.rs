//! The value forms a [`Schema`] chooses (ids, durations, levels, errors) and the fields it
//! adds to every line, with their setters.

use std::fmt;
use std::time::Duration;

use super::Schema;

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

impl Schema {
    /// Sets how the trace id is written. Defaults to [`IdFormat::Hex`].
    ///
    /// ```
    /// use tracing_ambient::{IdFormat, Schema};
    ///
    /// let schema = Schema::DEFAULT.with_trace_id_format(IdFormat::CloudTrace("my-project"));
    /// # let _ = schema;
    /// ```
    pub const fn with_trace_id_format(self, format: IdFormat) -> Self {
        Self {
            trace_id_format: format,
            ..self
        }
    }

    /// Sets how the span id (and the transaction id) is written. Defaults to
    /// [`IdFormat::Hex`].
    ///
    /// ```
    /// use tracing_ambient::{IdFormat, Schema};
    ///
    /// let schema = Schema::DEFAULT.with_span_id_format(IdFormat::Decimal64);
    /// # let _ = schema;
    /// ```
    pub const fn with_span_id_format(self, format: IdFormat) -> Self {
        Self {
            span_id_format: format,
            ..self
        }
    }

    /// Sets the level values, in the order TRACE, DEBUG, INFO, WARN, ERROR. Defaults to
    /// `["trace", "debug", "info", "warn", "error"]`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT
    ///     .with_level_values(["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR"]);
    /// # let _ = schema;
    /// ```
    pub const fn with_level_values(self, values: [&'static str; 5]) -> Self {
        Self {
            level_values: values,
            ..self
        }
    }

    /// Sets the key of the level as a number, written right after the level (OpenTelemetry's
    /// `severity_number`); `None` writes no number. Defaults to `None`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_level_number_key(Some("severity_number"));
    /// # let _ = schema;
    /// ```
    pub const fn with_level_number_key(self, key: Option<&'static str>) -> Self {
        Self {
            level_number: key,
            ..self
        }
    }

    /// Sets the level numbers, in the order TRACE, DEBUG, INFO, WARN, ERROR. Defaults to
    /// OpenTelemetry's severity numbers, `[1, 5, 9, 13, 17]`.
    ///
    /// ```
    /// // syslog severities
    /// let schema = tracing_ambient::Schema::DEFAULT
    ///     .with_level_number_key(Some("syslog.severity"))
    ///     .with_level_numbers([7, 7, 6, 4, 3]);
    /// # let _ = schema;
    /// ```
    pub const fn with_level_numbers(self, numbers: [u8; 5]) -> Self {
        Self {
            level_numbers: numbers,
            ..self
        }
    }

    /// Sets where an error field of one name goes (see [`ErrorKeys`]); `None` writes every
    /// error field as its message under the field's name, and its causes as an array of
    /// strings under `<field>Sources` (`<field>_sources` with snake-case keys). Defaults to
    /// `None`.
    ///
    /// ```
    /// use tracing_ambient::{ErrorKeys, Schema};
    ///
    /// let schema = Schema::DEFAULT.with_error_keys(Some(ErrorKeys {
    ///     field: "error",
    ///     message: "exception.message",
    ///     stack_trace: "exception.stacktrace",
    /// }));
    /// # let _ = schema;
    /// ```
    pub const fn with_error_keys(self, keys: Option<ErrorKeys>) -> Self {
        Self {
            error: keys,
            ..self
        }
    }

    /// Sets string fields written on every line, after the layer's own keys, such as
    /// `("ecs.version", "1.12.0")`. A static field of the layer with the same key
    /// ([`JsonLayer::static_field`](crate::JsonLayer::static_field)) replaces one. Defaults to
    /// none.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_fixed_fields(&[("schema", "v2")]);
    /// # let _ = schema;
    /// ```
    pub const fn with_fixed_fields(self, fields: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            fixed_fields: fields,
            ..self
        }
    }

    /// Sets fields taken from environment variables, as `(key, variable)` pairs, such as
    /// `("dd.service", "DD_SERVICE")`. The variables are read when the layer is built
    /// ([`JsonLayer::schema`](crate::JsonLayer::schema) and each later setter); one that is
    /// unset, empty or not UTF-8 writes nothing. The value is written on every line as a
    /// string, like a static field, and a static field with the same key replaces it.
    /// Defaults to none.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_env_fields(&[("service", "SERVICE_NAME")]);
    /// # let _ = schema;
    /// ```
    pub const fn with_env_fields(self, fields: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            env_fields: fields,
            ..self
        }
    }
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
