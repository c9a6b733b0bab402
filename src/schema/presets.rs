//! The presets: the keys and value forms that Elasticsearch (ECS), OpenTelemetry, Google
//! Cloud Logging and Datadog read without a parsing rule.

use super::keys::{AccessKeys, KeyCase, Schema};
use super::values::{DurationFormat, ErrorKeys, IdFormat};

/// The ECS version the [`Schema::ecs`] keys follow: `http.request.id` came with 1.10.
const ECS_VERSION: &str = "1.12.0";

impl Schema {
    /// Elastic Common Schema, as elastic's ecs-logging spec asks: `@timestamp`, `log.level`
    /// and `message` first and in that order, `ecs.version` on every line, dotted keys at
    /// the top level (never nested objects).
    ///
    /// ```json
    /// {"@timestamp":"2026-11-24T14:02:12.123456Z","log.level":"error","message":"checkout failed","http.request.id":"9f1c","user.id":42,"trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span.id":"00f067aa0ba902b7","transaction.id":"00f067aa0ba902b7","tenant_id":"acme","log.logger":"shop::orders","log.origin.file.name":"src/orders.rs","log.origin.file.line":42,"process.thread.name":"tokio-runtime-worker","ecs.version":"1.12.0","service.name":"shop","error.message":"query failed","error.stack_trace":"query failed\ncaused by: connection reset"}
    /// {"@timestamp":"2026-11-24T14:02:12.125001Z","log.level":"info","message":"request completed","http.request.id":"9f1c","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span.id":"00f067aa0ba902b7","transaction.id":"00f067aa0ba902b7","log.logger":"access","ecs.version":"1.12.0","service.name":"shop","http.request.method":"GET","url.path":"/orders/42","http.response.status_code":200,"event.duration":2871000,"http.response.body.bytes":2,"outcome":"completed"}
    /// ```
    ///
    /// | what | key |
    /// | --- | --- |
    /// | timestamp, level, message | `@timestamp`, `log.level` (`trace` … `error`), `message` |
    /// | request id, user id | `http.request.id`, `user.id` |
    /// | trace | `trace.id`; `span.id` (the innermost OpenTelemetry span's, else the request's); `transaction.id` (the request's span) |
    /// | target, file, line, thread, span name | `log.logger`, `log.origin.file.name`, `log.origin.file.line`, `process.thread.name`, `span.name` |
    /// | an error field `error` | `error.message`, `error.stack_trace` (see [`ErrorKeys`]); other error fields `<field>` and `<field>_sources` |
    /// | access line | `http.request.method`, `url.path`, `url.query`, `http.response.status_code`, `event.duration` (integer nanoseconds), `http.response.body.bytes`, `outcome`, `error.message` |
    /// | always | `ecs.version` (`1.12.0`); extra context keys in snake case; `log.truncated` on a cut line |
    ///
    /// `service.name` is yours to add:
    /// `JsonLayer::stdout().schema(Schema::ecs()).static_field("service.name", "shop")`.
    ///
    /// ECS's `event.outcome` only takes `success`, `failure` and `unknown`, so the access
    /// line's outcome (`completed`, `aborted`, …) keeps its own key `outcome`. No
    /// `error.type`: see [`ErrorKeys`].
    ///
    /// ```
    /// use tracing_ambient::{JsonLayer, Schema};
    ///
    /// let layer = JsonLayer::stdout().schema(Schema::ecs()).static_field("service.name", "shop");
    /// # drop(layer);
    /// ```
    pub const fn ecs() -> Schema {
        Schema {
            timestamp: "@timestamp",
            level: "log.level",
            message: "message",
            request_id: "http.request.id",
            user_id: "user.id",
            trace_id: "trace.id",
            span_id: "span.id",
            transaction_id: Some("transaction.id"),
            target: "log.logger",
            file: "log.origin.file.name",
            line: "log.origin.file.line",
            thread_name: "process.thread.name",
            span_name: "span.name",
            truncated: "log.truncated",
            error: Some(ErrorKeys {
                field: "error",
                message: "error.message",
                stack_trace: "error.stack_trace",
            }),
            fixed_fields: &[("ecs.version", ECS_VERSION)],
            extra_keys: KeyCase::Snake,
            access: AccessKeys {
                method: "http.request.method",
                path: "url.path",
                query: "url.query",
                status: "http.response.status_code",
                latency: "event.duration",
                size: "http.response.body.bytes",
                outcome: "outcome",
                error: "error.message",
                route: "http.route",
                grpc_status: "grpc.status_code",
                grpc_code: "grpc.status_name",
                grpc_message: "grpc.status_message",
                latency_format: DurationFormat::Nanoseconds,
                object: None,
            },
            ..Schema::DEFAULT
        }
    }

    /// OpenTelemetry: the log data model's names (`timestamp`, `severity_text`,
    /// `severity_number`, `body`), the `trace_id`, `span_id` and `trace_flags` of "Trace
    /// Context in non-OTLP Log Formats", and semantic-convention attribute names (`code.*`,
    /// `thread.name`, `exception.*`, HTTP server attributes on the access line).
    ///
    /// ```json
    /// {"timestamp":"2026-11-24T14:02:12.123456Z","severity_text":"ERROR","severity_number":17,"body":"checkout failed","request_id":"9f1c","user.id":42,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","tenant_id":"acme","otel.scope.name":"shop::orders","code.file.path":"src/orders.rs","code.line.number":42,"thread.name":"tokio-runtime-worker","exception.message":"query failed","exception.stacktrace":"query failed\ncaused by: connection reset"}
    /// {"timestamp":"2026-11-24T14:02:12.125001Z","severity_text":"INFO","severity_number":9,"body":"request completed","request_id":"9f1c","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","otel.scope.name":"access","http.request.method":"GET","url.path":"/orders/42","http.response.status_code":200,"http.server.request.duration":0.002871,"http.response.body.size":2,"outcome":"completed"}
    /// ```
    ///
    /// | what | key |
    /// | --- | --- |
    /// | timestamp, level, message | `timestamp`, `severity_text` (`TRACE` … `ERROR`) and `severity_number` (1, 5, 9, 13, 17), `body` |
    /// | request id, user id | `request_id`, `user.id` |
    /// | trace | `trace_id`, `span_id` (lowercase hex), `trace_flags` (`"01"` sampled, `"00"` not) |
    /// | target, file, line, thread, span name | `otel.scope.name` (a `tracing` target is what OpenTelemetry's appenders make the instrumentation scope), `code.file.path`, `code.line.number`, `thread.name`, `span.name` |
    /// | an error field `error` | `exception.message`, `exception.stacktrace` (see [`ErrorKeys`]); other error fields `<field>` and `<field>_sources` |
    /// | access line | `http.request.method`, `url.path`, `url.query`, `http.response.status_code`, `http.server.request.duration` (seconds, a number), `http.response.body.size`, `outcome`, `exception.message` |
    /// | always | extra context keys in snake case; `truncated` on a cut line |
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().schema(tracing_ambient::Schema::otel());
    /// # drop(layer);
    /// ```
    pub const fn otel() -> Schema {
        Schema {
            timestamp: "timestamp",
            level: "severity_text",
            level_values: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"],
            level_number: Some("severity_number"),
            level_numbers: [1, 5, 9, 13, 17],
            message: "body",
            request_id: "request_id",
            user_id: "user.id",
            trace_id: "trace_id",
            span_id: "span_id",
            trace_flags: Some("trace_flags"),
            target: "otel.scope.name",
            file: "code.file.path",
            line: "code.line.number",
            thread_name: "thread.name",
            span_name: "span.name",
            error: Some(ErrorKeys {
                field: "error",
                message: "exception.message",
                stack_trace: "exception.stacktrace",
            }),
            extra_keys: KeyCase::Snake,
            access: AccessKeys {
                method: "http.request.method",
                path: "url.path",
                query: "url.query",
                status: "http.response.status_code",
                latency: "http.server.request.duration",
                size: "http.response.body.size",
                outcome: "outcome",
                error: "exception.message",
                route: "http.route",
                grpc_status: "rpc.grpc.status_code",
                grpc_code: "rpc.grpc.status_name",
                grpc_message: "rpc.grpc.status_message",
                latency_format: DurationFormat::Seconds,
                object: None,
            },
            ..Schema::DEFAULT
        }
    }

    /// Google Cloud Logging: the special fields of its structured logging, which the logging
    /// agents (Cloud Run, GKE, the Ops agent) lift out of the JSON into the log entry.
    ///
    /// `project_id` names the project of the trace in `logging.googleapis.com/trace`
    /// (`projects/<project_id>/traces/<trace id>`, which links the line to Cloud Trace); an
    /// empty one writes the bare trace id. [`init`](crate::init) with `LOG_FORMAT=gcp` takes
    /// it from `GOOGLE_CLOUD_PROJECT`.
    ///
    /// ```json
    /// {"time":"2026-11-24T14:02:12.123456Z","severity":"ERROR","message":"checkout failed","requestId":"9f1c","userId":42,"logging.googleapis.com/trace":"projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736","logging.googleapis.com/spanId":"00f067aa0ba902b7","logging.googleapis.com/trace_sampled":true,"tenantId":"acme","target":"shop::orders","logging.googleapis.com/sourceLocation":{"file":"src/orders.rs","line":42},"error":"query failed","errorSources":["connection reset"]}
    /// {"time":"2026-11-24T14:02:12.125001Z","severity":"INFO","message":"request completed","requestId":"9f1c","logging.googleapis.com/trace":"projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736","logging.googleapis.com/spanId":"00f067aa0ba902b7","logging.googleapis.com/trace_sampled":true,"target":"access","outcome":"completed","httpRequest":{"requestMethod":"GET","requestUrl":"/orders/42","status":200,"latency":"0.002871s","responseSize":2}}
    /// ```
    ///
    /// | what | key |
    /// | --- | --- |
    /// | timestamp, level, message | `time`, `severity` (`DEBUG` for trace and debug, `INFO`, `WARNING`, `ERROR`), `message` |
    /// | request id, user id | `requestId`, `userId` |
    /// | trace | `logging.googleapis.com/trace`, `logging.googleapis.com/spanId` (hex), `logging.googleapis.com/trace_sampled` (a boolean) |
    /// | target, file, line, thread, span name | `target`, `logging.googleapis.com/sourceLocation` (an object with `file` and `line`), `threadName`, `span` |
    /// | error fields | the message under the field's name, the causes under `<field>Sources` |
    /// | access line | an `httpRequest` object with `requestMethod`, `requestUrl` (the path), `status`, `latency` (`"0.002871s"`) and `responseSize`; `query`, `outcome` and `error` beside it |
    /// | always | extra context keys in camel case; `truncated` on a cut line |
    ///
    /// # The project id
    ///
    /// A `Schema` holds `&'static str`s so that it stays `Copy`. A project id read at run
    /// time can be leaked once, at startup: a few bytes for the life of the process.
    ///
    /// ```
    /// use tracing_ambient::{JsonLayer, Schema};
    ///
    /// let project: &'static str = std::env::var("GOOGLE_CLOUD_PROJECT")
    ///     .map(|p| &*Box::leak(p.into_boxed_str()))
    ///     .unwrap_or("");
    /// let layer = JsonLayer::stdout().schema(Schema::gcp(project));
    /// # drop(layer);
    /// ```
    pub const fn gcp(project_id: &'static str) -> Schema {
        Schema {
            timestamp: "time",
            level: "severity",
            level_values: ["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR"],
            message: "message",
            trace_id: "logging.googleapis.com/trace",
            span_id: "logging.googleapis.com/spanId",
            trace_sampled: Some("logging.googleapis.com/trace_sampled"),
            trace_id_format: IdFormat::CloudTrace(project_id),
            source_location: Some("logging.googleapis.com/sourceLocation"),
            access: AccessKeys {
                method: "requestMethod",
                path: "requestUrl",
                query: "query",
                status: "status",
                latency: "latency",
                size: "responseSize",
                outcome: "outcome",
                error: "error",
                route: "route",
                grpc_status: "grpcStatus",
                grpc_code: "grpcCode",
                grpc_message: "grpcMessage",
                latency_format: DurationFormat::SecondsString,
                object: Some("httpRequest"),
            },
            ..Schema::DEFAULT
        }
    }

    /// Datadog: its reserved and standard attributes, and the `dd.trace_id` and `dd.span_id`
    /// its log-trace correlation matches, as decimal strings of the ids' low 64 bits.
    ///
    /// `dd.service`, `dd.env` and `dd.version` are taken from `DD_SERVICE`, `DD_ENV` and
    /// `DD_VERSION` when the layer is built (see [`Schema::with_env_fields`]), each only when
    /// set, as Datadog's tracers do.
    ///
    /// ```json
    /// {"timestamp":"2026-11-24T14:02:12.123456Z","status":"error","message":"checkout failed","http.request_id":"9f1c","usr.id":42,"dd.trace_id":"11803532876627986230","dd.span_id":"67667974448284343","tenant_id":"acme","logger.name":"shop::orders","logger.file_name":"src/orders.rs","logger.line":42,"logger.thread_name":"tokio-runtime-worker","dd.service":"shop","dd.env":"prod","dd.version":"1.4.2","error.message":"query failed","error.stack":"query failed\ncaused by: connection reset"}
    /// {"timestamp":"2026-11-24T14:02:12.125001Z","status":"info","message":"request completed","http.request_id":"9f1c","dd.trace_id":"11803532876627986230","dd.span_id":"67667974448284343","logger.name":"access","dd.service":"shop","dd.env":"prod","dd.version":"1.4.2","http.method":"GET","http.url_details.path":"/orders/42","http.status_code":200,"duration":2871000,"network.bytes_written":2,"outcome":"completed"}
    /// ```
    ///
    /// | what | key |
    /// | --- | --- |
    /// | timestamp, level, message | `timestamp`, `status` (`trace` … `error`), `message` |
    /// | request id, user id | `http.request_id`, `usr.id` |
    /// | trace | `dd.trace_id`, `dd.span_id` (decimal strings of the low 64 bits) |
    /// | target, file, line, thread, span name | `logger.name`, `logger.file_name`, `logger.line`, `logger.thread_name`, `span` |
    /// | an error field `error` | `error.message`, `error.stack` (see [`ErrorKeys`]); other error fields `<field>` and `<field>_sources` |
    /// | access line | `http.method`, `http.url_details.path`, `http.query`, `http.status_code`, `duration` (integer nanoseconds), `network.bytes_written`, `outcome`, `error.message` |
    /// | always | `dd.service`, `dd.env`, `dd.version` when set; extra context keys in snake case; `truncated` on a cut line |
    ///
    /// Datadog has no standard attribute for the source file and line, nor for the query
    /// string as text: `logger.file_name`, `logger.line` and `http.query` are this preset's.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().schema(tracing_ambient::Schema::datadog());
    /// # drop(layer);
    /// ```
    pub const fn datadog() -> Schema {
        Schema {
            timestamp: "timestamp",
            level: "status",
            message: "message",
            request_id: "http.request_id",
            user_id: "usr.id",
            trace_id: "dd.trace_id",
            span_id: "dd.span_id",
            trace_id_format: IdFormat::Decimal64,
            span_id_format: IdFormat::Decimal64,
            target: "logger.name",
            file: "logger.file_name",
            line: "logger.line",
            thread_name: "logger.thread_name",
            error: Some(ErrorKeys {
                field: "error",
                message: "error.message",
                stack_trace: "error.stack",
            }),
            env_fields: &[
                ("dd.service", "DD_SERVICE"),
                ("dd.env", "DD_ENV"),
                ("dd.version", "DD_VERSION"),
            ],
            extra_keys: KeyCase::Snake,
            access: AccessKeys {
                method: "http.method",
                path: "http.url_details.path",
                query: "http.query",
                status: "http.status_code",
                latency: "duration",
                size: "network.bytes_written",
                outcome: "outcome",
                error: "error.message",
                route: "http.route",
                grpc_status: "rpc.grpc.status_code",
                grpc_code: "rpc.grpc.status_name",
                grpc_message: "rpc.grpc.status_message",
                latency_format: DurationFormat::Nanoseconds,
                object: None,
            },
            ..Schema::DEFAULT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key a preset can write on one line, whatever is switched on.
    fn keys(schema: &Schema) -> Vec<&'static str> {
        let mut keys = vec![
            schema.timestamp,
            schema.level,
            schema.message,
            schema.request_id,
            schema.user_id,
            schema.trace_id,
            schema.span_id,
            schema.target,
            schema.thread_name,
            schema.span_name,
            schema.truncated,
        ];
        keys.extend(schema.transaction_id);
        keys.extend(schema.trace_flags);
        keys.extend(schema.trace_sampled);
        keys.extend(schema.level_number);
        match schema.source_location {
            Some(object) => keys.push(object),
            None => keys.extend([schema.file, schema.line]),
        }
        if let Some(error) = schema.error {
            keys.extend([error.message, error.stack_trace]);
        }
        keys.extend(schema.fixed_fields.iter().map(|(k, _)| *k));
        keys.extend(schema.env_fields.iter().map(|(k, _)| *k));
        let access = schema.access;
        match access.object {
            Some(object) => keys.extend([object, access.query, access.outcome, access.error]),
            None => keys.extend(access.names()),
        }
        keys
    }

    #[test]
    fn no_preset_key_is_the_dotted_prefix_of_another() {
        let presets = [
            ("ecs", Schema::ecs()),
            ("otel", Schema::otel()),
            ("gcp", Schema::gcp("p")),
            ("datadog", Schema::datadog()),
        ];
        for (name, schema) in presets {
            let keys = keys(&schema);
            for a in &keys {
                for b in &keys {
                    let prefix =
                        b.len() > a.len() && b.starts_with(a) && b[a.len()..].starts_with('.');
                    assert!(!prefix, "{name}: {a:?} is the dotted prefix of {b:?}");
                }
            }
            // The access line's error is a plain string under the same key as an error
            // field's message; every other key is there once.
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let shared = usize::from(schema.error.map(|e| e.message) == Some(schema.access.error));
            assert_eq!(
                sorted.len() + shared,
                keys.len(),
                "{name}: a key twice in {keys:?}"
            );
        }
    }
}
