//! Output key names and values. The writer asks the schema for every key it writes, so a
//! preset ([`Schema::ecs`], [`Schema::otel`], [`Schema::gcp`], [`Schema::datadog`]) changes
//! the keys, the level values and the form of the trace ids without touching the writer.

mod presets;
mod values;

use std::borrow::Cow;
use std::sync::OnceLock;

#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use values::SecondsString;
pub use values::{DurationFormat, ErrorKeys, IdFormat};

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
/// [`Context::with`](crate::Context::with)) are written.
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

    /// Sets the key written (`true`) on a line that the line-size cap cut (see
    /// [`JsonLayer::max_line_bytes`](crate::JsonLayer::max_line_bytes)). Defaults to
    /// `truncated`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_truncated_key("log.truncated");
    /// # let _ = schema;
    /// ```
    pub const fn with_truncated_key(self, key: &'static str) -> Self {
        Self {
            truncated: key,
            ..self
        }
    }

    /// Sets the key of the timestamp. Defaults to `timestamp`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_timestamp_key("@timestamp");
    /// # let _ = schema;
    /// ```
    pub const fn with_timestamp_key(self, key: &'static str) -> Self {
        Self {
            timestamp: key,
            ..self
        }
    }

    /// Sets the key of the level. Defaults to `level`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_level_key("log.level");
    /// # let _ = schema;
    /// ```
    pub const fn with_level_key(self, key: &'static str) -> Self {
        Self { level: key, ..self }
    }

    /// Sets the key of the message. Defaults to `message`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_message_key("msg");
    /// # let _ = schema;
    /// ```
    pub const fn with_message_key(self, key: &'static str) -> Self {
        Self {
            message: key,
            ..self
        }
    }

    /// Sets the key of the request id. Defaults to `requestId`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_request_id_key("request_id");
    /// # let _ = schema;
    /// ```
    pub const fn with_request_id_key(self, key: &'static str) -> Self {
        Self {
            request_id: key,
            ..self
        }
    }

    /// Sets the key of the user id. Defaults to `userId`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_user_id_key("user_id");
    /// # let _ = schema;
    /// ```
    pub const fn with_user_id_key(self, key: &'static str) -> Self {
        Self {
            user_id: key,
            ..self
        }
    }

    /// Sets the key of the trace id. Defaults to `traceId`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_trace_id_key("trace.id");
    /// # let _ = schema;
    /// ```
    pub const fn with_trace_id_key(self, key: &'static str) -> Self {
        Self {
            trace_id: key,
            ..self
        }
    }

    /// Sets the key of the span id. Defaults to `spanId`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_span_id_key("span.id");
    /// # let _ = schema;
    /// ```
    pub const fn with_span_id_key(self, key: &'static str) -> Self {
        Self {
            span_id: key,
            ..self
        }
    }

    /// Sets the key of the event's target. Defaults to `target`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_target_key("logger");
    /// # let _ = schema;
    /// ```
    pub const fn with_target_key(self, key: &'static str) -> Self {
        Self {
            target: key,
            ..self
        }
    }

    /// Sets the key of the source file, written with
    /// [`JsonLayer::with_file`](crate::JsonLayer::with_file). Defaults to `file`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_file_key("log.origin.file.name");
    /// # let _ = schema;
    /// ```
    pub const fn with_file_key(self, key: &'static str) -> Self {
        Self { file: key, ..self }
    }

    /// Sets the key of the source line, written with
    /// [`JsonLayer::with_line_number`](crate::JsonLayer::with_line_number). Defaults to
    /// `line`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_line_key("log.origin.file.line");
    /// # let _ = schema;
    /// ```
    pub const fn with_line_key(self, key: &'static str) -> Self {
        Self { line: key, ..self }
    }

    /// Sets the key under which the source file and line are written together, as one
    /// object `{"<file key>":…,"<line key>":…}` (Google Cloud's
    /// `logging.googleapis.com/sourceLocation`); `None` writes them as two keys of the line.
    /// Defaults to `None`.
    ///
    /// ```
    /// use tracing_ambient::Schema;
    ///
    /// let schema = Schema::DEFAULT.with_source_location_key(Some("source"));
    /// // {"timestamp":…,"source":{"file":"src/main.rs","line":12},…}
    /// # let _ = schema;
    /// ```
    pub const fn with_source_location_key(self, key: Option<&'static str>) -> Self {
        Self {
            source_location: key,
            ..self
        }
    }

    /// Sets the key of the name of the thread that logged, written with
    /// [`JsonLayer::with_thread_names`](crate::JsonLayer::with_thread_names). Defaults to
    /// `threadName`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_thread_name_key("process.thread.name");
    /// # let _ = schema;
    /// ```
    pub const fn with_thread_name_key(self, key: &'static str) -> Self {
        Self {
            thread_name: key,
            ..self
        }
    }

    /// Sets the key of the name of the event's span, written with
    /// [`JsonLayer::with_span_name`](crate::JsonLayer::with_span_name). Defaults to `span`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_span_name_key("span.name");
    /// # let _ = schema;
    /// ```
    pub const fn with_span_name_key(self, key: &'static str) -> Self {
        Self {
            span_name: key,
            ..self
        }
    }

    /// Sets the key of the request's own span id, written beside the span id. Inside an
    /// OpenTelemetry span the span id is the innermost span's
    /// ([`otel`](crate::otel)) and this key keeps the request's: Elastic's
    /// `transaction.id`. Written when the context has a span id; `None` writes nothing.
    /// Defaults to `None`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_transaction_id_key(Some("transaction.id"));
    /// # let _ = schema;
    /// ```
    pub const fn with_transaction_id_key(self, key: Option<&'static str>) -> Self {
        Self {
            transaction_id: key,
            ..self
        }
    }

    /// Sets the key of the W3C trace flags, written as two lowercase hex digits (`"01"`
    /// sampled, `"00"` not) on every line with a trace id: OpenTelemetry's `trace_flags`.
    /// `None` writes nothing. Defaults to `None`.
    ///
    /// The flag is the innermost OpenTelemetry span's when there is one
    /// ([`SpanIds::is_sampled`](crate::otel::SpanIds::is_sampled)), else the one the
    /// request's `traceparent` came with (sampled for a trace the request started, and for a
    /// context opened by hand).
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_trace_flags_key(Some("trace_flags"));
    /// # let _ = schema;
    /// ```
    pub const fn with_trace_flags_key(self, key: Option<&'static str>) -> Self {
        Self {
            trace_flags: key,
            ..self
        }
    }

    /// Sets the key of the sampled flag written as a boolean on every line with a trace id
    /// (Google Cloud's `logging.googleapis.com/trace_sampled`), from the same source as
    /// [`with_trace_flags_key`](Self::with_trace_flags_key). `None` writes nothing. Defaults
    /// to `None`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_trace_sampled_key(Some("sampled"));
    /// # let _ = schema;
    /// ```
    pub const fn with_trace_sampled_key(self, key: Option<&'static str>) -> Self {
        Self {
            trace_sampled: key,
            ..self
        }
    }

    /// Sets how extra context keys are written. Defaults to [`KeyCase::Camel`].
    ///
    /// ```
    /// use tracing_ambient::{KeyCase, Schema};
    ///
    /// let schema = Schema::DEFAULT.with_extra_keys(KeyCase::Snake); // tenant_id, not tenantId
    /// # let _ = schema;
    /// ```
    pub const fn with_extra_keys(self, case: KeyCase) -> Self {
        Self {
            extra_keys: case,
            ..self
        }
    }
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

/// # Access line keys
///
/// The keys of the HTTP middleware's access line (`http::DefaultOnAccess`, feature `http`),
/// which takes them from the schema it is given (under [`init`](crate::init), the schema of
/// the layer `init` installed). Whatever the names, each keeps one JSON type on every line:
/// the method, path, query, outcome and error are strings, the status and size numbers, the
/// latency a number or a string as [`DurationFormat`] says; the query, status, size and
/// error are absent when there is none.
///
/// ```json
/// {"timestamp":"2026-11-24T14:02:12.125001Z","level":"info","message":"request completed","requestId":"9f1c","target":"access","method":"GET","path":"/orders/42","status":200,"latencyMs":2.871,"size":2,"outcome":"completed"}
/// ```
impl Schema {
    /// Sets the access line's key of the request method. Defaults to `method`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_method_key("http.request.method");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_method_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            method: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the request path, without the query string. Defaults
    /// to `path`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_path_key("url.path");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_path_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            path: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the query string, written only when asked for. Defaults
    /// to `query`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_query_key("url.query");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_query_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            query: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the response status, a number. Defaults to `status`.
    ///
    /// ```
    /// let schema =
    ///     tracing_ambient::Schema::DEFAULT.with_access_status_key("http.response.status_code");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_status_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            status: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the latency, written in the form
    /// [`with_access_latency_format`](Self::with_access_latency_format) sets (milliseconds
    /// by default). Defaults to `latencyMs`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_latency_key("latency_ms");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_latency_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            latency: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the response body bytes sent. Defaults to `size`.
    ///
    /// ```
    /// let schema =
    ///     tracing_ambient::Schema::DEFAULT.with_access_size_key("http.response.body.bytes");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_size_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            size: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of how the request ended (`completed`, `aborted`, `failed`,
    /// `panicked`). Defaults to `outcome`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_outcome_key("event.outcome");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_outcome_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            outcome: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of the inner service's or the body's error, a string.
    /// Defaults to `error`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_error_key("error.message");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_error_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            error: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the form of the access line's latency. Defaults to
    /// [`DurationFormat::Milliseconds`].
    ///
    /// ```
    /// use tracing_ambient::{DurationFormat, Schema};
    ///
    /// let schema = Schema::DEFAULT
    ///     .with_access_latency_key("event.duration")
    ///     .with_access_latency_format(DurationFormat::Nanoseconds);
    /// # let _ = schema;
    /// ```
    pub const fn with_access_latency_format(self, format: DurationFormat) -> Self {
        let access = AccessKeys {
            latency_format: format,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the key of an object that holds the access line's method, path, status, latency
    /// and size under their own keys, as Google Cloud's `httpRequest` does; the query,
    /// outcome and error stay keys of the line. `None` writes every key on the line.
    /// Defaults to `None`.
    ///
    /// The layer nests the fields of the access line it recognises (the events of
    /// `http::DefaultOnAccess`) whose names are this schema's access keys, so give the
    /// middleware the same schema (as [`init`](crate::init) does).
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_object_key(Some("request"));
    /// // {…,"request":{"method":"GET","path":"/orders/42","status":200,"latencyMs":1.234,"size":2}}
    /// # let _ = schema;
    /// ```
    pub const fn with_access_object_key(self, key: Option<&'static str>) -> Self {
        let access = AccessKeys {
            object: key,
            ..self.access
        };
        Self { access, ..self }
    }
}

// The access line's route key (issue 11 §6), apart from the other access keys.
impl Schema {
    /// Sets the access line's key of the route template the request matched
    /// (`/orders/{id}`), a string written only when the middleware's `HttpRoute` hook names
    /// it (feature `http`). Defaults to `route`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_route_key("http.route");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_route_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            route: key,
            ..self.access
        };
        Self { access, ..self }
    }
}

/// # Access line keys of gRPC calls
///
/// A gRPC call's access line (see "gRPC" in the `http` module docs) also has the status it
/// ended with: a number (`grpcStatus`), its name as the protocol spells it (`grpcCode`, a
/// string such as `NOT_FOUND`, absent for a number the protocol does not define) and the
/// status message (`grpcMessage`, a string, absent when there is none). All three are absent
/// on the lines of requests that are not gRPC.
///
/// ```json
/// {"timestamp":"2026-11-24T14:02:12.125001Z","level":"warn","message":"request completed","requestId":"9f1c","target":"access","method":"POST","path":"/shop.Orders/Get","status":200,"latencyMs":1.204,"size":0,"outcome":"completed","grpcStatus":5,"grpcCode":"NOT_FOUND","grpcMessage":"order 7 not found"}
/// ```
impl Schema {
    /// Sets the access line's key of a gRPC call's status number. Defaults to `grpcStatus`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_grpc_status_key("rpc.grpc.status_code");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_grpc_status_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            grpc_status: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of a gRPC call's status name (`NOT_FOUND`). Defaults to
    /// `grpcCode`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_grpc_code_key("grpc_code");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_grpc_code_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            grpc_code: key,
            ..self.access
        };
        Self { access, ..self }
    }

    /// Sets the access line's key of a gRPC call's status message. Defaults to
    /// `grpcMessage`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_access_grpc_message_key("grpc_message");
    /// # let _ = schema;
    /// ```
    pub const fn with_access_grpc_message_key(self, key: &'static str) -> Self {
        let access = AccessKeys {
            grpc_message: key,
            ..self.access
        };
        Self { access, ..self }
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

/// The schema `init` installed, which `http::DefaultOnAccess` takes when given none.
static PROCESS_SCHEMA: OnceLock<Schema> = OnceLock::new();

/// Records the schema of the layer `init` installs; the first call wins, as `init` installs
/// one global subscriber.
pub(crate) fn set_process_schema(schema: Schema) {
    let _ = PROCESS_SCHEMA.set(schema);
}

/// The schema `init` installed, if it was called.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn process_schema() -> Option<&'static Schema> {
    PROCESS_SCHEMA.get()
}

/// # Elapsed key
///
/// The key of the time since the request's context was made, in milliseconds, which
/// [`JsonLayer::with_elapsed`](crate::JsonLayer::with_elapsed) writes on lines that have a
/// context.
impl Schema {
    /// Sets the key of the time since the context was made. Defaults to `elapsedMs`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_elapsed_key("elapsed_ms");
    /// # let _ = schema;
    /// ```
    pub const fn with_elapsed_key(self, key: &'static str) -> Self {
        Self {
            elapsed: key,
            ..self
        }
    }
}

/// Returns `key` in snake case: `tenantId` → `tenant_id`, `HTTPStatus` → `http_status`.
/// Characters other than ASCII letters are kept as they are. A key without capitals is
/// returned as it is, without allocating.
pub(crate) fn to_snake_case(key: &str) -> Cow<'_, str> {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(key);
    }
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                Some(_) => false,
            };
            if starts_word {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Returns a snake-case key in camel case: `tenant_id` → `tenantId`. A leading underscore is
/// kept, so `_private` stays `_private`.
pub(crate) fn to_camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper_next = false;
    for (i, c) in snake.chars().enumerate() {
        if c == '_' && i > 0 {
            upper_next = true;
        } else if upper_next {
            out.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    if upper_next {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_cases() {
        let table = [
            ("tenant_id", "tenant_id", "tenantId"),
            ("tenantId", "tenant_id", "tenantId"),
            ("HTTPStatus", "http_status", "httpStatus"),
            ("userID", "user_id", "userId"),
            ("order2Id", "order2_id", "order2Id"),
            ("already", "already", "already"),
            ("_private", "_private", "_private"),
            ("dotted.key", "dotted.key", "dotted.key"),
            ("trailing_", "trailing_", "trailing_"),
        ];
        for (input, snake, camel) in table {
            assert_eq!(to_snake_case(input), snake, "snake of {input}");
            assert_eq!(
                to_camel_case(&to_snake_case(input)),
                camel,
                "camel of {input}"
            );
        }
    }
}
