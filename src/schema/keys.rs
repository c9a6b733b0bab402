//! The schema's key table: [`Schema`], every key and value form a line is written with, the
//! default values, and the access line's keys.

use super::values::{DurationFormat, ErrorKeys, IdFormat};

/// The key names and value forms of a JSON line.
///
/// A `Schema` is a plain `Copy` value of `&'static str` names. Start from [`Schema::DEFAULT`]
/// or a preset ([`Schema::ecs`], [`Schema::otel`], [`Schema::gcp`], [`Schema::datadog`]) and
/// change what you need with the `with_*` setters: every key the crate writes has one, so any
/// other convention can be written by hand.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{JsonLayer, Schema};
///
/// let schema = Schema::DEFAULT.with_timestamp_key("@timestamp");
/// let layer = JsonLayer::stdout().schema(schema);
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Schema {
    pub(crate) timestamp: &'static str,
    pub(crate) level: &'static str,
    pub(crate) message: &'static str,
    pub(crate) request_id: &'static str,
    pub(crate) user_id: &'static str,
    pub(crate) trace_id: &'static str,
    pub(crate) span_id: &'static str,
    // The request's own span id (the context's) beside the innermost span's: ECS's
    // `transaction.id`.
    pub(crate) transaction_id: Option<&'static str>,
    // The W3C trace flags as two hex digits, and the sampled flag as a boolean.
    pub(crate) trace_flags: Option<&'static str>,
    pub(crate) trace_sampled: Option<&'static str>,
    pub(crate) trace_id_format: IdFormat,
    pub(crate) span_id_format: IdFormat,
    pub(crate) target: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: &'static str,
    pub(crate) thread_name: &'static str,
    pub(crate) span_name: &'static str,
    pub(crate) truncated: &'static str,
    // Writes file and line inside one object under this key (Google Cloud's
    // `logging.googleapis.com/sourceLocation`).
    pub(crate) source_location: Option<&'static str>,
    // TRACE, DEBUG, INFO, WARN, ERROR.
    pub(crate) level_values: [&'static str; 5],
    pub(crate) level_number: Option<&'static str>,
    pub(crate) level_numbers: [u8; 5],
    // Where an event field named like `ErrorKeys::field` goes.
    pub(crate) error: Option<ErrorKeys>,
    // Fields written on every line (`ecs.version`), and fields taken from the environment
    // when the layer is built (`dd.service` from `DD_SERVICE`).
    pub(crate) fixed_fields: &'static [(&'static str, &'static str)],
    pub(crate) env_fields: &'static [(&'static str, &'static str)],
    pub(crate) extra_keys: KeyCase,
    // The access line's keys: see "Access line keys" below.
    pub(crate) access: AccessKeys,
    // The time since the context was made, written when asked for: see "Elapsed key" below.
    pub(crate) elapsed: &'static str,
}

/// The keys of the HTTP access line, kept apart so that one field of [`Schema`] holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessKeys {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) query: &'static str,
    pub(crate) status: &'static str,
    pub(crate) latency: &'static str,
    pub(crate) size: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) error: &'static str,
    // The route template, when the middleware's `HttpRoute` hook names it (issue 11 §6).
    pub(crate) route: &'static str,
    pub(crate) latency_format: DurationFormat,
    // Method, path, status, latency and size go inside one object under this key (Google
    // Cloud's `httpRequest`).
    pub(crate) object: Option<&'static str>,
    // gRPC calls (issue 12 §3): the `grpc-status` number, its name, and the status message.
    pub(crate) grpc_status: &'static str,
    pub(crate) grpc_code: &'static str,
    pub(crate) grpc_message: &'static str,
}

/// How the names of extra context keys (those given to [`set`](crate::set) and
/// [`Context::with`](crate::context::Context::with)) are written.
///
/// Extra keys are stored in snake case (`tenantId` and `tenant_id` are the same key), and
/// written in the case the schema asks for.
///
/// ```
/// use tracing_ambient::{JsonLayer, KeyCase, Schema};
///
/// let layer = JsonLayer::stdout().schema(Schema::DEFAULT.with_extra_keys(KeyCase::Snake));
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyCase {
    /// `tenant_id` is written `tenantId`.
    Camel,
    /// `tenant_id` is written `tenant_id`.
    Snake,
}

impl Schema {
    /// The default schema: `timestamp`, `level` (`trace` … `error`), `message`, `requestId`,
    /// `userId`, `traceId`, `spanId` (lowercase hex), `target`, and when switched on `file`,
    /// `line`, `threadName` and `span`; extra keys in camel case; an error field `error` as
    /// its message with its causes under `errorSources`.
    ///
    /// ```json
    /// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","requestId":"9f1c","userId":42,"target":"shop::orders","order_id":42}
    /// ```
    pub const DEFAULT: Schema = Schema {
        timestamp: "timestamp",
        level: "level",
        message: "message",
        request_id: "requestId",
        user_id: "userId",
        trace_id: "traceId",
        span_id: "spanId",
        transaction_id: None,
        trace_flags: None,
        trace_sampled: None,
        trace_id_format: IdFormat::Hex,
        span_id_format: IdFormat::Hex,
        target: "target",
        file: "file",
        line: "line",
        thread_name: "threadName",
        span_name: "span",
        truncated: "truncated",
        source_location: None,
        level_values: ["trace", "debug", "info", "warn", "error"],
        level_number: None,
        level_numbers: [1, 5, 9, 13, 17],
        error: None,
        fixed_fields: &[],
        env_fields: &[],
        extra_keys: KeyCase::Camel,
        access: AccessKeys::DEFAULT,
        elapsed: "elapsedMs",
    };
}

// === access line keys ===

impl AccessKeys {
    /// The default access line keys, camel case like the rest of the default schema.
    pub(crate) const DEFAULT: AccessKeys = AccessKeys {
        method: "method",
        path: "path",
        query: "query",
        status: "status",
        latency: "latencyMs",
        size: "size",
        outcome: "outcome",
        error: "error",
        route: "route",
        latency_format: DurationFormat::Milliseconds,
        object: None,
        grpc_status: "grpcStatus",
        grpc_code: "grpcCode",
        grpc_message: "grpcMessage",
    };

    /// The keys that go inside [`AccessKeys::object`], when there is one.
    pub(crate) const fn members(&self) -> [&'static str; 5] {
        [self.method, self.path, self.status, self.latency, self.size]
    }

    /// The keys in the order the access line writes them.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) const fn names(&self) -> [&'static str; 11] {
        [
            self.method,
            self.path,
            self.query,
            self.status,
            self.latency,
            self.size,
            self.outcome,
            self.error,
            self.grpc_status,
            self.grpc_code,
            self.grpc_message,
        ]
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The target of the access line (`http::DefaultOnAccess`).
pub(crate) const ACCESS_TARGET: &str = "access";
/// The name of the access line's callsites, which a layer checks with the target to tell the
/// access line from other events (the `tracing` macros name theirs `event <file>:<line>`).
pub(crate) const ACCESS_NAME: &str = "access line";
