//! The schema's setters: one `const fn with_*` for every key and value form of the
//! [`Schema`] key table.

use super::keys::{AccessKeys, KeyCase, Schema};
use super::values::{DurationFormat, ErrorKeys, IdFormat};

impl Schema {
    /// Sets the key written (`true`) on a line that the line-size cap cut (see
    /// [`JsonLayer::max_line_bytes`](crate::layer::JsonLayer::max_line_bytes)). Defaults to
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
    /// [`JsonLayer::with_file`](crate::layer::JsonLayer::with_file). Defaults to `file`.
    ///
    /// ```
    /// let schema = tracing_ambient::Schema::DEFAULT.with_file_key("log.origin.file.name");
    /// # let _ = schema;
    /// ```
    pub const fn with_file_key(self, key: &'static str) -> Self {
        Self { file: key, ..self }
    }

    /// Sets the key of the source line, written with
    /// [`JsonLayer::with_line_number`](crate::layer::JsonLayer::with_line_number). Defaults to
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
    /// [`JsonLayer::with_thread_names`](crate::layer::JsonLayer::with_thread_names). Defaults to
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
    /// [`JsonLayer::with_span_name`](crate::layer::JsonLayer::with_span_name). Defaults to `span`.
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

/// # Elapsed key
///
/// The key of the time since the request's context was made, in milliseconds, which
/// [`JsonLayer::with_elapsed`](crate::layer::JsonLayer::with_elapsed) writes on lines that have a
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

// The value forms of `values`.
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
    /// ([`JsonLayer::static_field`](crate::layer::JsonLayer::static_field)) replaces one. Defaults to
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
    /// ([`JsonLayer::schema`](crate::layer::JsonLayer::schema) and each later setter); one that is
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
