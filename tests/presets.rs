//! Issue 8 §3: the presets `Schema::ecs()`, `Schema::otel()`, `Schema::gcp(project)` and
//! `Schema::datadog()`. Each preset writes the same scenario (levels, context keys, errors
//! with sources, file/line/thread/span name, lines inside an OpenTelemetry span, lines without
//! a context, and the access lines of a real axum server behind `RequestContextLayer`); every
//! line is parsed strictly and checked against a table of the backend's documented keys typed
//! here. ECS lines are also checked against elastic's ecs-logging spec file.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::elastic::{expand, indexed_types};
use common::{Capture, Line};
use http_support::{client, get as send, serve};
use serde_json::{json, Map, Value};
use tracing::{debug, error, info, info_span, trace, warn};
use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
use tracing_ambient::otel::{SpanIds, SpanView};
use tracing_ambient::{Context, JsonLayer, KeepSpans, Schema};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The context opened by hand.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
/// The ids the test's OpenTelemetry lookup gives a span named `db`: not sampled.
const OTEL_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const OTEL_SPAN: &str = "b7ad6b7169203331";
/// The traces of the requests: the first sampled, the second not.
const SAMPLED_TRACE: &str = "5b8aa5a2d2c872e8321cf37308d69df2";
const UNSAMPLED_TRACE: &str = "7ab0ba4a1b2c3d4e5f60718293a4b5c6";
const GCP_PROJECT: &str = "shop-prod";

// === the backends' documented keys ===

/// How a backend wants its trace and span ids.
#[derive(Clone, Copy)]
enum Ids {
    /// Lowercase hex.
    Hex,
    /// Datadog: the low 64 bits in decimal, as a string.
    Decimal,
    /// Google Cloud: `projects/<project>/traces/<hex>` for the trace, hex for the span.
    CloudTrace,
}

/// Where the error field `error` goes.
#[derive(Clone, Copy)]
enum Errors {
    /// Message and "stack trace" keys.
    Mapped {
        message: &'static str,
        stack: &'static str,
    },
    /// The message under the field's name, its causes in an array under the field's name and
    /// this suffix.
    Sources(&'static str),
}

/// How the access line's latency is written.
#[derive(Clone, Copy)]
enum Latency {
    /// An integer of nanoseconds.
    Nanos,
    /// A number of seconds.
    Seconds,
    /// A string of seconds ending in `s`, with 0, 3, 6 or 9 decimals.
    SecondsString,
}

/// A backend's keys, as its documentation names them.
struct Doc {
    name: &'static str,
    schema: Schema,
    timestamp: &'static str,
    level: &'static str,
    levels: [&'static str; 5],
    level_number: Option<(&'static str, [u64; 5])>,
    message: &'static str,
    request_id: &'static str,
    user_id: &'static str,
    tenant: &'static str,
    trace_id: &'static str,
    span_id: &'static str,
    ids: Ids,
    transaction_id: Option<&'static str>,
    trace_flags: Option<&'static str>,
    trace_sampled: Option<&'static str>,
    target: &'static str,
    /// The object that holds file and line, if any, then the file and line keys.
    source_object: Option<&'static str>,
    file: &'static str,
    line: &'static str,
    thread: &'static str,
    span_name: &'static str,
    errors: Errors,
    /// The key of the causes of an error field `cause`.
    cause_sources: &'static str,
    access_object: Option<&'static str>,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    status: &'static str,
    latency: &'static str,
    latency_form: Latency,
    size: &'static str,
    outcome: &'static str,
    /// Keys every line has, and their values.
    fixed: &'static [(&'static str, &'static str)],
}

/// ECS field reference (Base, Log, Tracing, HTTP, URL, Event, Error, Process, User fields) and
/// the ecs-logging spec.
fn ecs() -> Doc {
    Doc {
        name: "ecs",
        schema: Schema::ecs(),
        timestamp: "@timestamp",
        level: "log.level",
        levels: ["trace", "debug", "info", "warn", "error"],
        level_number: None,
        message: "message",
        request_id: "http.request.id",
        user_id: "user.id",
        tenant: "tenant_id",
        trace_id: "trace.id",
        span_id: "span.id",
        ids: Ids::Hex,
        transaction_id: Some("transaction.id"),
        trace_flags: None,
        trace_sampled: None,
        target: "log.logger",
        source_object: None,
        file: "log.origin.file.name",
        line: "log.origin.file.line",
        thread: "process.thread.name",
        span_name: "span.name",
        errors: Errors::Mapped {
            message: "error.message",
            stack: "error.stack_trace",
        },
        cause_sources: "cause_sources",
        access_object: None,
        method: "http.request.method",
        path: "url.path",
        query: "url.query",
        status: "http.response.status_code",
        latency: "event.duration",
        latency_form: Latency::Nanos,
        size: "http.response.body.bytes",
        outcome: "outcome",
        fixed: &[("ecs.version", "1.12.0"), ("service.name", "shop")],
    }
}

/// OpenTelemetry: "Trace Context in non-OTLP Log Formats", the logs data model (severity
/// numbers: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17) and the semantic conventions (code,
/// thread, exception, HTTP server attributes).
fn otel() -> Doc {
    Doc {
        name: "otel",
        schema: Schema::otel(),
        timestamp: "timestamp",
        level: "severity_text",
        levels: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"],
        level_number: Some(("severity_number", [1, 5, 9, 13, 17])),
        message: "body",
        request_id: "request_id",
        user_id: "user.id",
        tenant: "tenant_id",
        trace_id: "trace_id",
        span_id: "span_id",
        ids: Ids::Hex,
        transaction_id: None,
        trace_flags: Some("trace_flags"),
        trace_sampled: None,
        target: "otel.scope.name",
        source_object: None,
        file: "code.file.path",
        line: "code.line.number",
        thread: "thread.name",
        span_name: "span.name",
        errors: Errors::Mapped {
            message: "exception.message",
            stack: "exception.stacktrace",
        },
        cause_sources: "cause_sources",
        access_object: None,
        method: "http.request.method",
        path: "url.path",
        query: "url.query",
        status: "http.response.status_code",
        latency: "http.server.request.duration",
        latency_form: Latency::Seconds,
        size: "http.response.body.size",
        outcome: "outcome",
        fixed: &[],
    }
}

/// Google Cloud Logging, "Structured logging": its special JSON fields, `LogSeverity` and
/// the `HttpRequest` and `LogEntrySourceLocation` objects of `LogEntry`.
fn gcp() -> Doc {
    Doc {
        name: "gcp",
        schema: Schema::gcp(GCP_PROJECT),
        timestamp: "time",
        level: "severity",
        levels: ["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR"],
        level_number: None,
        message: "message",
        request_id: "requestId",
        user_id: "userId",
        tenant: "tenantId",
        trace_id: "logging.googleapis.com/trace",
        span_id: "logging.googleapis.com/spanId",
        ids: Ids::CloudTrace,
        transaction_id: None,
        trace_flags: None,
        trace_sampled: Some("logging.googleapis.com/trace_sampled"),
        target: "target",
        source_object: Some("logging.googleapis.com/sourceLocation"),
        file: "file",
        line: "line",
        thread: "threadName",
        span_name: "span",
        errors: Errors::Sources("Sources"),
        cause_sources: "causeSources",
        access_object: Some("httpRequest"),
        method: "requestMethod",
        path: "requestUrl",
        query: "query",
        status: "status",
        latency: "latency",
        latency_form: Latency::SecondsString,
        size: "responseSize",
        outcome: "outcome",
        fixed: &[],
    }
}

/// Datadog: reserved attributes, "Default Standard Attributes" (`logger.*`, `http.*`,
/// `usr.id`, `duration` in nanoseconds, `network.bytes_written`, `error.*`), and the
/// `dd.trace_id`/`dd.span_id` of "Correlating logs and traces".
fn datadog() -> Doc {
    Doc {
        name: "datadog",
        schema: Schema::datadog(),
        timestamp: "timestamp",
        level: "status",
        levels: ["trace", "debug", "info", "warn", "error"],
        level_number: None,
        message: "message",
        request_id: "http.request_id",
        user_id: "usr.id",
        tenant: "tenant_id",
        trace_id: "dd.trace_id",
        span_id: "dd.span_id",
        ids: Ids::Decimal,
        transaction_id: None,
        trace_flags: None,
        trace_sampled: None,
        target: "logger.name",
        source_object: None,
        file: "logger.file_name",
        line: "logger.line",
        thread: "logger.thread_name",
        span_name: "span",
        errors: Errors::Mapped {
            message: "error.message",
            stack: "error.stack",
        },
        cause_sources: "cause_sources",
        access_object: None,
        method: "http.method",
        path: "http.url_details.path",
        query: "http.query",
        status: "http.status_code",
        latency: "duration",
        latency_form: Latency::Nanos,
        size: "network.bytes_written",
        outcome: "outcome",
        fixed: &[],
    }
}

impl Doc {
    /// The trace id as the backend wants it.
    fn trace(&self, hex: &str) -> Value {
        match self.ids {
            Ids::Hex => json!(hex),
            Ids::Decimal => json!(decimal_low_64(hex)),
            Ids::CloudTrace => json!(format!("projects/{GCP_PROJECT}/traces/{hex}")),
        }
    }

    /// The span id as the backend wants it.
    fn span(&self, hex: &str) -> Value {
        match self.ids {
            Ids::Decimal => json!(decimal_low_64(hex)),
            _ => json!(hex),
        }
    }

    fn level_index(&self, line: &Line) -> usize {
        let level = line.str(self.level).expect("a level string");
        self.levels
            .iter()
            .position(|l| *l == level)
            .unwrap_or_else(|| {
                panic!(
                    "{}: level {level:?} is not one of {:?}",
                    self.name, self.levels
                )
            })
    }
}

/// The decimal of the last 16 hex digits, worked out with `u128` rather than as the crate does.
fn decimal_low_64(hex: &str) -> String {
    let value = u128::from_str_radix(hex, 16).unwrap();
    (value & u128::from(u64::MAX)).to_string()
}

// === the scenario ===

/// An error with a cause, which has a cause.
#[derive(Debug)]
struct Failed(&'static str, Option<Box<Failed>>);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Failed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|cause| cause as _)
    }
}

fn query_failed() -> Failed {
    Failed(
        "query failed",
        Some(Box::new(Failed(
            "connection reset",
            Some(Box::new(Failed("timeout", None))),
        ))),
    )
}

/// The ids the test's OpenTelemetry lookup gives a span named `db`.
fn db_span_ids(span: &SpanView<'_>) -> Option<SpanIds> {
    if span.name() != "db" {
        return None;
    }
    let trace = u128::from_str_radix(OTEL_TRACE, 16).unwrap().to_be_bytes();
    let span = u64::from_str_radix(OTEL_SPAN, 16).unwrap().to_be_bytes();
    Some(SpanIds::new(trace, span)?.with_sampled(false))
}

/// Runs the scenario under `doc`'s schema and returns every line, each parsed strictly.
fn lines_of(doc: &Doc) -> (Vec<Line>, String) {
    let capture = Capture::default();
    let mut layer = JsonLayer::new(capture.clone())
        .schema(doc.schema)
        .with_file(true)
        .with_line_number(true)
        .with_thread_names(true)
        .with_span_name(true)
        .lookup_span_ids(db_span_ids);
    if doc.name == "ecs" {
        layer = layer.static_field("service.name", "shop");
    }
    // Every level of this test's own events, the access lines; no dependency's events.
    let filter = Targets::new()
        .with_target("presets", LevelFilter::TRACE)
        .with_target("access", LevelFilter::INFO);
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(KeepSpans::new(filter)));
    let _default = tracing::subscriber::set_default(subscriber);
    let thread = std::thread::current().name().unwrap().to_owned();

    Context::new()
        .with_request_id("9f1c")
        .with_trace_id(TRACE)
        .with_span_id(SPAN)
        .in_scope(|| {
            tracing_ambient::set_user_id(42);
            tracing_ambient::set("tenant_id", "acme");
            trace!("at trace");
            debug!("at debug");
            info!(order_id = 42, "order placed");
            warn!("at warn");
            error!(error = &query_failed() as &dyn Error, "checkout failed");
            error!(error = %"plain text", "plain error");
            error!(cause = &query_failed() as &dyn Error, "another error field");
            let _db = info_span!("db").entered();
            info!("in an OpenTelemetry span");
        });
    info!("without context");
    info_span!("db").in_scope(|| info!("in an OpenTelemetry span without context"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route(
                "/ok",
                get(|| async {
                    info!("handled");
                    "ok"
                }),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .layer(
                RequestContextLayer::new()
                    .on_access(DefaultOnAccess::new().with_query(true).schema(doc.schema)),
            );
        let addr = serve(app).await;
        let client = client();
        let sampled = format!("00-{SAMPLED_TRACE}-b7ad6b7169203331-01");
        let unsampled = format!("00-{UNSAMPLED_TRACE}-b7ad6b7169203331-00");
        let reply = send(
            &client,
            addr,
            "/ok?page=2",
            &[("traceparent", sampled.as_bytes())],
        )
        .await;
        assert_eq!(reply.status, 200);
        let reply = send(
            &client,
            addr,
            "/missing",
            &[("traceparent", unsampled.as_bytes())],
        )
        .await;
        assert_eq!(reply.status, 404);
        let reply = send(&client, addr, "/ok", &[]).await;
        assert_eq!(reply.status, 200);
        // Access lines are written when the server finishes the body; wait for all three,
        // and fail rather than wait forever.
        let access = |l: &Line| l.str(doc.target) == Some("access");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while capture.lines().iter().filter(|l| access(l)).count() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: three access lines within 5 s: {:#?}",
                doc.name,
                capture.lines()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (capture.lines(), thread)
}

/// The line whose message is `message`; there must be exactly one.
fn one<'a>(doc: &Doc, lines: &'a [Line], message: &str) -> &'a Line {
    let found: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str(doc.message) == Some(message))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{}: one line {message:?} in {lines:#?}",
        doc.name
    );
    found[0]
}

// === the checks ===

/// Checks the scenario's lines against `doc`; returns them for further checks.
fn check(doc: &Doc) -> Vec<Line> {
    let (lines, thread) = lines_of(doc);
    // 10 by hand, 2 handler lines, 3 access lines.
    assert_eq!(lines.len(), 15, "{}: {lines:#?}", doc.name);
    check_every_line(doc, &lines);
    check_context_lines(doc, &lines, &thread);
    check_errors(doc, &lines);
    check_otel_span_lines(doc, &lines);
    check_server_lines(doc, &lines);
    let types = indexed_types(&lines);
    let mixed: Vec<_> = types.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(
        mixed.is_empty(),
        "{}: fields with two types: {mixed:?}",
        doc.name
    );
    println!(
        "{}: {} lines, {} indexed fields: {:?}",
        doc.name,
        lines.len(),
        types.len(),
        types.keys().collect::<Vec<_>>()
    );
    lines
}

/// Timestamp, level (and number) first, a message, the fixed keys, no trace keys without a
/// trace, and Elasticsearch can index the line.
fn check_every_line(doc: &Doc, lines: &[Line]) {
    use time::format_description::well_known::Rfc3339;
    for line in lines {
        let keys = line.keys();
        assert_eq!(keys[0], doc.timestamp, "{}: {line:?}", doc.name);
        time::OffsetDateTime::parse(line.str(doc.timestamp).unwrap(), &Rfc3339)
            .unwrap_or_else(|e| panic!("{}: timestamp of {line:?}: {e}", doc.name));
        assert_eq!(keys[1], doc.level, "{}: {line:?}", doc.name);
        let level = doc.level_index(line);
        let mut next = 2;
        if let Some((key, numbers)) = doc.level_number {
            assert_eq!(keys[2], key, "{}: {line:?}", doc.name);
            assert_eq!(
                line.at(key),
                &json!(numbers[level]),
                "{}: {line:?}",
                doc.name
            );
            next = 3;
        }
        assert_eq!(keys[next], doc.message, "{}: {line:?}", doc.name);
        for (key, value) in doc.fixed {
            assert_eq!(
                line.str(key),
                Some(*value),
                "{}: {key} on {line:?}",
                doc.name
            );
        }
        for key in [doc.trace_id, doc.span_id] {
            assert_eq!(
                line.get(key).is_some(),
                line.get(doc.trace_id).is_some(),
                "{}: trace and span id together on {line:?}",
                doc.name
            );
        }
        for key in doc.trace_flags.iter().chain(&doc.trace_sampled) {
            assert_eq!(
                line.get(key).is_some(),
                line.get(doc.trace_id).is_some(),
                "{}: {key} exactly on lines with a trace: {line:?}",
                doc.name
            );
        }
        expand(line).unwrap_or_else(|e| panic!("{}: {e} in {line:?}", doc.name));
    }
    // TRACE, DEBUG, INFO, WARN and ERROR, in the backend's values.
    let levels: Vec<&str> = lines[..5]
        .iter()
        .map(|l| l.str(doc.level).unwrap())
        .collect();
    assert_eq!(levels, doc.levels, "{}", doc.name);
}

/// The sampled flag as `doc` writes it, under each of its keys.
fn check_sampled(doc: &Doc, line: &Line, sampled: bool) {
    if let Some(key) = doc.trace_flags {
        let flags = if sampled { "01" } else { "00" };
        assert_eq!(line.str(key), Some(flags), "{}: {line:?}", doc.name);
    }
    if let Some(key) = doc.trace_sampled {
        assert_eq!(line.at(key), &json!(sampled), "{}: {line:?}", doc.name);
    }
}

fn check_context_lines(doc: &Doc, lines: &[Line], thread: &str) {
    let line = one(doc, lines, "order placed");
    assert_eq!(line.at(doc.request_id), &json!("9f1c"), "{}", doc.name);
    assert_eq!(line.at(doc.user_id), &json!(42), "{}", doc.name);
    assert_eq!(line.at(doc.tenant), &json!("acme"), "{}", doc.name);
    assert_eq!(line.at(doc.trace_id), &doc.trace(TRACE), "{}", doc.name);
    assert_eq!(line.at(doc.span_id), &doc.span(SPAN), "{}", doc.name);
    if let Some(key) = doc.transaction_id {
        assert_eq!(line.at(key), &doc.span(SPAN), "{}", doc.name);
    }
    // A context opened by hand has started its trace: sampled.
    check_sampled(doc, line, true);
    assert_eq!(line.at("order_id"), &json!(42), "{}", doc.name);
    assert_eq!(line.str(doc.target), Some("presets"), "{}", doc.name);
    assert_eq!(line.str(doc.thread), Some(thread), "{}", doc.name);
    let (file, number) = match doc.source_object {
        Some(object) => {
            let source = line.at(object).as_object().expect("an object");
            // serde_json's map sorts its keys.
            let mut keys: Vec<&str> = source.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut expected = [doc.file, doc.line];
            expected.sort_unstable();
            assert_eq!(keys, expected, "{}", doc.name);
            assert!(
                line.get(doc.file).is_none(),
                "{}: no file key at the top",
                doc.name
            );
            (source[doc.file].clone(), source[doc.line].clone())
        }
        None => (line.at(doc.file).clone(), line.at(doc.line).clone()),
    };
    assert_eq!(file, json!("tests/presets.rs"), "{}", doc.name);
    assert!(
        number.as_u64().is_some_and(|n| n > 0),
        "{}: line {number}",
        doc.name
    );

    let line = one(doc, lines, "without context");
    for key in [
        doc.request_id,
        doc.user_id,
        doc.trace_id,
        doc.span_id,
        doc.tenant,
    ] {
        assert!(line.get(key).is_none(), "{}: {key} on {line:?}", doc.name);
    }
}

fn check_errors(doc: &Doc, lines: &[Line]) {
    let checkout = one(doc, lines, "checkout failed");
    let plain = one(doc, lines, "plain error");
    match doc.errors {
        Errors::Mapped { message, stack } => {
            assert_eq!(checkout.at(message), &json!("query failed"), "{}", doc.name);
            assert_eq!(
                checkout.at(stack),
                &json!("query failed\ncaused by: connection reset\ncaused by: timeout"),
                "{}",
                doc.name
            );
            assert!(
                checkout.get("error").is_none(),
                "{}: {checkout:?}",
                doc.name
            );
            // Not an error value, but the same field: the same key, and no stack trace.
            assert_eq!(plain.at(message), &json!("plain text"), "{}", doc.name);
            assert!(plain.get(stack).is_none(), "{}: {plain:?}", doc.name);
        }
        Errors::Sources(suffix) => {
            assert_eq!(checkout.at("error"), &json!("query failed"), "{}", doc.name);
            let sources = format!("error{suffix}");
            assert_eq!(
                checkout.at(&sources),
                &json!(["connection reset", "timeout"]),
                "{}",
                doc.name
            );
            assert_eq!(plain.at("error"), &json!("plain text"), "{}", doc.name);
        }
    }
    let other = one(doc, lines, "another error field");
    assert_eq!(other.at("cause"), &json!("query failed"), "{}", doc.name);
    assert_eq!(
        other.at(doc.cause_sources),
        &json!(["connection reset", "timeout"]),
        "{}",
        doc.name
    );
}

/// Inside a span the lookup gives ids, the line carries those (and their sampled flag, off);
/// the request's own span id stays in the transaction id.
fn check_otel_span_lines(doc: &Doc, lines: &[Line]) {
    let line = one(doc, lines, "in an OpenTelemetry span");
    assert_eq!(
        line.at(doc.trace_id),
        &doc.trace(OTEL_TRACE),
        "{}",
        doc.name
    );
    assert_eq!(line.at(doc.span_id), &doc.span(OTEL_SPAN), "{}", doc.name);
    assert_eq!(line.at(doc.request_id), &json!("9f1c"), "{}", doc.name);
    assert_eq!(line.at(doc.span_name), &json!("db"), "{}", doc.name);
    if let Some(key) = doc.transaction_id {
        assert_eq!(line.at(key), &doc.span(SPAN), "{}", doc.name);
    }
    check_sampled(doc, line, false);

    let line = one(doc, lines, "in an OpenTelemetry span without context");
    assert_eq!(
        line.at(doc.trace_id),
        &doc.trace(OTEL_TRACE),
        "{}",
        doc.name
    );
    assert_eq!(line.at(doc.span_id), &doc.span(OTEL_SPAN), "{}", doc.name);
    assert!(line.get(doc.request_id).is_none(), "{}", doc.name);
    if let Some(key) = doc.transaction_id {
        assert!(
            line.get(key).is_none(),
            "{}: no request span: {line:?}",
            doc.name
        );
    }
    check_sampled(doc, line, false);
}

/// Whether a latency value is of the backend's form.
fn latency_ok(form: Latency, value: &Value) -> bool {
    match form {
        Latency::Nanos => value.is_u64(),
        Latency::Seconds => value.as_f64().is_some_and(|s| (0.0..60.0).contains(&s)),
        Latency::SecondsString => value.as_str().is_some_and(|s| {
            let Some(number) = s.strip_suffix('s') else {
                return false;
            };
            let (whole, decimals) = number.split_once('.').unwrap_or((number, ""));
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && [0, 3, 6, 9].contains(&decimals.len())
                && decimals.bytes().all(|b| b.is_ascii_digit())
        }),
    }
}

fn check_server_lines(doc: &Doc, lines: &[Line]) {
    let handled: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str(doc.message) == Some("handled"))
        .collect();
    let access: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str(doc.target) == Some("access"))
        .collect();
    assert_eq!((handled.len(), access.len()), (2, 3), "{}", doc.name);
    // The first request continues its sampled trace, the second its unsampled one; the third
    // starts one (sampled). The handler's line and the access line of a request agree.
    let ok = access[0];
    assert_eq!(
        ok.at(doc.trace_id),
        &doc.trace(SAMPLED_TRACE),
        "{}",
        doc.name
    );
    assert_eq!(
        handled[0].at(doc.trace_id),
        ok.at(doc.trace_id),
        "{}",
        doc.name
    );
    assert_eq!(
        handled[0].at(doc.span_id),
        ok.at(doc.span_id),
        "{}",
        doc.name
    );
    assert_eq!(
        handled[0].at(doc.request_id),
        ok.at(doc.request_id),
        "{}",
        doc.name
    );
    check_sampled(doc, handled[0], true);
    check_sampled(doc, ok, true);
    let missing = access[1];
    assert_eq!(
        missing.at(doc.trace_id),
        &doc.trace(UNSAMPLED_TRACE),
        "{}",
        doc.name
    );
    check_sampled(doc, missing, false);
    assert_eq!(
        missing.str(doc.level),
        Some(doc.levels[3]),
        "{}: a 404 is a warning",
        doc.name
    );
    check_sampled(doc, access[2], true);
    assert_eq!(
        handled[1].at(doc.trace_id),
        access[2].at(doc.trace_id),
        "{}",
        doc.name
    );
    for line in [handled[0], handled[1], ok, missing, access[2]] {
        if let Some(key) = doc.transaction_id {
            // The request's own span: its span id, no OpenTelemetry span being open.
            assert_eq!(line.at(key), line.at(doc.span_id), "{}", doc.name);
        }
        let span = line.at(doc.span_id).as_str().unwrap();
        match doc.ids {
            Ids::Decimal => assert!(span.parse::<u64>().is_ok(), "{}: {span}", doc.name),
            _ => assert!(
                span.len() == 16 && span.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: {span}",
                doc.name
            ),
        }
    }

    // (path, query, status, size) of each request.
    let expected = [
        ("/ok", Some("page=2"), 200, 2),
        ("/missing", None, 404, 0),
        ("/ok", None, 200, 2),
    ];
    for (line, (path, query, status, size)) in access.iter().zip(expected) {
        let members = [doc.method, doc.path, doc.status, doc.latency, doc.size];
        let http: Map<String, Value> = match doc.access_object {
            Some(object) => {
                let http = line.at(object).as_object().expect("an object");
                // serde_json's map sorts its keys.
                let keys: Vec<&str> = http.keys().map(String::as_str).collect();
                let mut sorted = members;
                sorted.sort_unstable();
                assert_eq!(
                    keys, sorted,
                    "{}: the object holds the documented keys",
                    doc.name
                );
                for key in keys {
                    assert!(line.get(key).is_none(), "{}: {key} outside too", doc.name);
                }
                http.clone()
            }
            None => members
                .iter()
                .map(|key| ((*key).to_owned(), line.at(key).clone()))
                .collect(),
        };
        assert_eq!(http[doc.method], json!("GET"), "{}", doc.name);
        assert_eq!(http[doc.path], json!(path), "{}", doc.name);
        assert_eq!(http[doc.status], json!(status), "{}", doc.name);
        assert_eq!(http[doc.size], json!(size), "{}", doc.name);
        assert!(
            latency_ok(doc.latency_form, &http[doc.latency]),
            "{}: latency {}",
            doc.name,
            http[doc.latency]
        );
        assert_eq!(line.str(doc.query), query, "{}", doc.name);
        assert_eq!(line.str(doc.outcome), Some("completed"), "{}", doc.name);
    }
}

// === the tests ===

#[test]
fn otel_lines_have_the_documented_keys() {
    check(&otel());
}

#[test]
fn gcp_lines_have_the_documented_keys() {
    check(&gcp());
}

#[test]
fn datadog_lines_have_the_documented_keys() {
    let lines = check(&datadog());
    // dd.service, dd.env and dd.version are read from the environment (tests/init.rs sets
    // them in a child process); here they follow whatever this process has.
    for (key, var) in [
        ("dd.service", "DD_SERVICE"),
        ("dd.env", "DD_ENV"),
        ("dd.version", "DD_VERSION"),
    ] {
        let expected = std::env::var(var).ok().filter(|v| !v.is_empty());
        for line in &lines {
            assert_eq!(line.str(key), expected.as_deref(), "{key} on {line:?}");
        }
    }
}

/// Finds elastic's ecs-logging spec: `ECS_LOGGING_SPEC`, else `shared/specs/` in a directory
/// above the crate (the workspace keeps the current one there), else the copy in
/// `tests/data/`, so a clone on its own still checks against the spec.
fn ecs_spec() -> Value {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("ECS_LOGGING_SPEC")
        .map(PathBuf::from)
        .or_else(|| {
            manifest
                .ancestors()
                .map(|dir| dir.join("shared/specs/ecs-logging-spec.json"))
                .find(|path| path.exists())
        })
        .unwrap_or_else(|| manifest.join("tests/data/ecs-logging-spec.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn ecs_lines_pass_the_ecs_logging_spec() {
    let lines = check(&ecs());
    let spec = ecs_spec();
    let fields = spec["fields"].as_object().expect("the spec's fields");
    let spec_version = spec["ecs"]["version"].as_str().unwrap();
    let (mut required, mut typed) = (0, 0);
    for line in &lines {
        let keys = line.keys();
        for (name, field) in fields {
            let value = line.get(name);
            if field["required"] == json!(true) {
                assert!(value.is_some(), "required {name} missing: {line:?}");
                required += 1;
            }
            // `index`: the field's position, when it is on the line.
            if let (Some(index), Some(_)) = (field["index"].as_u64(), value) {
                assert_eq!(keys[index as usize], name, "{name} at {index}: {keys:?}");
            }
            // `top_level_field`: a dotted key of the line, never a nested object.
            if field["top_level_field"] == json!(true) {
                let head = name.split('.').next().unwrap();
                assert!(
                    line.get(head).is_none(),
                    "{name} nested under {head}: {line:?}"
                );
            }
            let Some(value) = value else { continue };
            typed += 1;
            let ok = match field["type"].as_str().unwrap() {
                "datetime" => value.as_str().is_some_and(|s| {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .is_ok()
                }),
                "string" => value.is_string(),
                "integer" => value.is_u64() || value.is_i64(),
                "object" => value.is_object(),
                other => panic!("a type the spec did not have: {other}"),
            };
            assert!(ok, "{name} is not a {}: {value}", field["type"]);
        }
        // The spec's fields with dots are top-level keys; no value on a line is an object
        // but those the spec types as objects.
        for (key, value) in &line.entries {
            if value.is_object() {
                assert_eq!(fields[key]["type"], json!("object"), "{key} is an object");
            }
        }
        // `ecs.version` names a version of the major the spec covers (`1.x`).
        let major = spec_version.trim_end_matches('x');
        assert!(
            line.str("ecs.version").unwrap().starts_with(major),
            "ecs.version of {spec_version}: {line:?}"
        );
    }
    println!(
        "ecs: {} lines pass the spec: {required} required fields present, {typed} values of a spec field typed as it says",
        lines.len()
    );
}
