//! The middleware and OpenTelemetry agree (issue 8 §2): with tracing-opentelemetry in the
//! subscriber, the request span is the exported server span, parented on the incoming
//! `traceparent`, and every line, `sql::tag`, `traceparent()` and outgoing call of the request
//! carries its ids. Real SDK (its in-memory exporter), a real axum server on 127.0.0.1 and a
//! real client; one global subscriber for the whole binary, so every test finds its own
//! spans by trace id and its own lines by request id.
#![cfg(all(feature = "http", feature = "opentelemetry"))]

mod common;
mod http_support;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Path, State};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::{Capture, Line};
use http_body_util::{BodyExt, Empty};
use http_support::{client, get as send, of, PROMPTLY};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_layer::Layer;
use tracing::{info, instrument};
use tracing_ambient::http::{inject_trace_context, PropagateContextLayer, RequestContextLayer};
use tracing_ambient::JsonLayer;
use tracing_subscriber::prelude::*;

/// The global subscriber: the OpenTelemetry layer on the real SDK (its default sampler,
/// parent-based always-on; a simple processor, so a span is exported when it ends) and the
/// JSON layer writing to a capture.
struct Setup {
    capture: Capture,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let capture = Capture::default();
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-http")))
            .with(JsonLayer::new(capture.clone()))
            .init();
        Setup {
            capture,
            exporter,
            provider,
        }
    })
}

impl Setup {
    /// The exported spans of trace `trace_id` (lowercase hex).
    fn spans_of(&self, trace_id: &str) -> Vec<SpanData> {
        self.provider.force_flush().expect("flush");
        let spans = self.exporter.get_finished_spans().expect("exported spans");
        spans
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .collect()
    }
}

/// Waits until `f` returns `Some`, for at most [`PROMPTLY`]; panics naming `what` otherwise.
async fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = f() {
            return found;
        }
        assert!(
            start.elapsed() < PROMPTLY,
            "timed out after {PROMPTLY:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The request's lines once its access line is written: exactly `n` of them.
async fn lines_of(request_id: &str, n: usize) -> Vec<Line> {
    let capture = &setup().capture;
    let lines = wait_until(&format!("the access line of {request_id}"), || {
        let lines = of(&capture.lines(), request_id);
        lines
            .iter()
            .any(|l| l.str("target") == Some("access"))
            .then_some(lines)
    })
    .await;
    assert_eq!(lines.len(), n, "lines of {request_id}: {lines:#?}");
    lines
}

/// The exported spans of `trace_id` once there are `n` (the server span ends after the access
/// line is written); exactly `n`.
async fn spans_of(trace_id: &str, n: usize) -> Vec<SpanData> {
    let spans = wait_until(&format!("{n} exported spans of trace {trace_id}"), || {
        let spans = setup().spans_of(trace_id);
        (spans.len() >= n).then_some(spans)
    })
    .await;
    assert_eq!(spans.len(), n, "spans of {trace_id}: {spans:#?}");
    spans
}

fn by_message<'a>(lines: &'a [Line], message: &str) -> &'a Line {
    let found: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some(message))
        .collect();
    assert_eq!(found.len(), 1, "one line {message:?} in {lines:#?}");
    found[0]
}

/// The one exported span of `kind` named `name`.
fn span<'a>(spans: &'a [SpanData], kind: SpanKind, name: &str) -> &'a SpanData {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == kind && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span {name:?} in {spans:#?}");
    found[0]
}

fn span_id(span: &SpanData) -> String {
    span.span_context.span_id().to_string()
}

/// A trace id and a parent id for test `n`, written by hand as a caller would send them.
fn caller(n: u32) -> (String, String) {
    (
        format!("5ca1ab1e0000000000000000{n:08x}"),
        format!("c0ffee00{n:08x}"),
    )
}

// === the application ===

/// Logs in the server span, then in a nested span of its own, and answers with what the
/// request's context says: `traceparent()`, `tracestate()`, `sql::tag` and an injected
/// outgoing `traceparent`.
async fn order(Path(id): Path<u32>) -> String {
    info!(order_id = id, "order handled");
    load(id).await;
    let mut headers = http::HeaderMap::new();
    let injected = inject_trace_context(&mut headers).map(|tp| tp.to_string());
    json!({
        "traceparent": tracing_ambient::traceparent(),
        "tracestate": tracing_ambient::tracestate(),
        "sql": tracing_ambient::sql::tag("SELECT 1").into_owned(),
        "injected": injected,
    })
    .to_string()
}

#[instrument(name = "load order")]
async fn load(id: u32) {
    tokio::task::yield_now().await;
    info!("order loaded");
}

/// Calls `/orders/8` on this same server through a client that carries the request.
async fn call(State(addr): State<SocketAddr>) -> &'static str {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let client = PropagateContextLayer::new()
        .with_call_line(true)
        .layer(client);
    let request = http::Request::get(format!("http://{addr}/orders/8"))
        .header("x-request-id", "callee-1")
        .body(Empty::new())
        .unwrap();
    let response = client.oneshot(request).await.expect("the call");
    response
        .into_body()
        .collect()
        .await
        .expect("the call's body");
    "called"
}

fn matched_path(request: &http::request::Parts) -> Option<String> {
    Some(request.extensions.get::<MatchedPath>()?.as_str().to_owned())
}

async fn app() -> SocketAddr {
    setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/call", get(call))
        .with_state(addr)
        .layer(RequestContextLayer::new().http_route(matched_path));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn order_request(addr: SocketAddr, request_id: &str, headers: &[(&str, &str)]) -> Value {
    let mut all: Vec<(&str, &[u8])> = vec![("x-request-id", request_id.as_bytes())];
    all.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
    let reply = send(&client(), addr, "/orders/7", &all).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    serde_json::from_str(&reply.body).expect("a JSON body")
}

/// Checks the request's three lines against its two exported spans, all in trace `trace`,
/// and returns the server span.
fn assert_agree<'a>(lines: &[Line], spans: &'a [SpanData], trace: &str) -> &'a SpanData {
    let server = span(spans, SpanKind::Server, "GET /orders/{id}");
    let nested = span(spans, SpanKind::Internal, "load order");
    assert_eq!(nested.parent_span_id, server.span_context.span_id());
    for line in lines {
        assert_eq!(line.str("traceId"), Some(trace), "{line:?}");
    }
    let server_id = span_id(server);
    assert_eq!(
        by_message(lines, "order handled").str("spanId"),
        Some(server_id.as_str())
    );
    assert_eq!(
        by_message(lines, "order loaded").str("spanId"),
        Some(span_id(nested).as_str())
    );
    assert_eq!(
        by_message(lines, "request completed").str("spanId"),
        Some(server_id.as_str()),
        "the access line"
    );
    server
}

/// Checks what the handler read from the context names the server span.
fn assert_body_names(body: &Value, trace: &str, server: &SpanData, flags: &str) {
    let own = format!("00-{trace}-{}-{flags}", span_id(server));
    assert_eq!(body["traceparent"], own.as_str());
    let sql = body["sql"].as_str().unwrap();
    assert!(
        sql.contains(&format!("traceparent='{own}'")),
        "sql::tag names the server span: {sql}"
    );
    let injected = body["injected"].as_str().unwrap();
    let parts: Vec<&str> = injected.split('-').collect();
    assert_eq!(parts.len(), 4, "{injected}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace, flags));
    // A child of the server span: an id of its own for the outgoing call.
    assert_ne!(parts[2], span_id(server));
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_traceparent_parents_the_server_span_and_names_every_line() {
    let addr = app().await;
    let (trace, parent) = caller(1);
    let body = order_request(
        addr,
        "tp-1",
        &[
            ("traceparent", &format!("00-{trace}-{parent}-01")),
            ("tracestate", "rojo=1, congo=2"),
        ],
    )
    .await;
    let lines = lines_of("tp-1", 3).await;
    let spans = spans_of(&trace, 2).await;
    let server = assert_agree(&lines, &spans, &trace);
    assert_eq!(server.parent_span_id.to_string(), parent);
    assert!(server.parent_span_is_remote);
    assert_eq!(server.span_context.trace_state().header(), "rojo=1,congo=2");
    assert_body_names(&body, &trace, server, "01");
    assert_eq!(body["tracestate"], "rojo=1,congo=2");
    println!(
        "trace {trace}: server span {} (parent {parent}), {} lines, {} spans",
        span_id(server),
        lines.len(),
        spans.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_lines_and_spans_share_one_new_trace() {
    let addr = app().await;
    let (given, _) = caller(2);
    // No header, then one the rules refuse (uppercase hex): each starts its own trace.
    let invalid = format!("00-{}-C0FFEE0000000002-01", given.to_uppercase());
    let cases = [("new-1", None), ("new-2", Some(invalid.as_str()))];
    let mut traces = Vec::new();
    for (request_id, traceparent) in cases {
        let headers: Vec<(&str, &str)> = traceparent
            .map(|tp| ("traceparent", tp))
            .into_iter()
            .collect();
        let body = order_request(addr, request_id, &headers).await;
        let lines = lines_of(request_id, 3).await;
        let trace = lines[0].str("traceId").expect("a trace id").to_owned();
        assert_eq!(trace.len(), 32, "{trace}");
        assert_ne!(trace, "0".repeat(32));
        assert_ne!(trace, given, "not the refused header's");
        let spans = spans_of(&trace, 2).await;
        let server = assert_agree(&lines, &spans, &trace);
        assert_eq!(server.parent_span_id, SpanId::INVALID, "a root span");
        assert_body_names(&body, &trace, server, "01");
        assert_eq!(body["tracestate"], Value::Null);
        traces.push(trace);
    }
    assert_ne!(traces[0], traces[1]);
    println!("new traces: {traces:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_caller_gives_unexported_ids_that_still_agree() {
    let addr = app().await;
    let (trace, parent) = caller(3);
    let body = order_request(
        addr,
        "unsampled-1",
        &[("traceparent", &format!("00-{trace}-{parent}-00"))],
    )
    .await;
    let lines = lines_of("unsampled-1", 3).await;
    for line in &lines {
        assert_eq!(line.str("traceId"), Some(trace.as_str()), "{line:?}");
    }
    // The parent-based sampler follows the caller: nothing is exported, and the request's own
    // traceparent says so (flags 00) with the id its lines carry.
    let server_id = by_message(&lines, "order handled").str("spanId").unwrap();
    assert_ne!(server_id, parent);
    assert_eq!(
        by_message(&lines, "request completed").str("spanId"),
        Some(server_id)
    );
    assert_eq!(body["traceparent"], format!("00-{trace}-{server_id}-00"));
    assert!(body["injected"].as_str().unwrap().ends_with("-00"));
    // The server span has ended once its access line is out; wait a moment for a stray one.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(setup().spans_of(&trace).len(), 0, "nothing exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_keep_their_own_traces() {
    let addr = app().await;
    let client = client();
    let requests = (0..50u32).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let (trace, parent) = caller(1000 + i);
            let tp = format!("00-{trace}-{parent}-01");
            let id = format!("c-{i}");
            let headers: [(&str, &[u8]); 2] = [
                ("x-request-id", id.as_bytes()),
                ("traceparent", tp.as_bytes()),
            ];
            let reply = send(&client, addr, "/orders/7", &headers).await;
            let body: Value = serde_json::from_str(&reply.body).unwrap();
            (i, body)
        })
    });
    let mut bodies = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        bodies.push(request.await.unwrap());
    }
    assert_eq!(bodies.len(), 50);
    let mut server_ids = std::collections::HashSet::new();
    for (i, body) in &bodies {
        let (trace, parent) = caller(1000 + i);
        let lines = lines_of(&format!("c-{i}"), 3).await;
        let spans = spans_of(&trace, 2).await;
        let server = assert_agree(&lines, &spans, &trace);
        assert_eq!(server.parent_span_id.to_string(), parent);
        assert_body_names(body, &trace, server, "01");
        server_ids.insert(span_id(server));
    }
    assert_eq!(server_ids.len(), 50, "fifty distinct server spans");
    println!("50 requests: 150 lines and 100 spans, each in its own trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_call_continues_the_trace_into_the_callee() {
    let addr = app().await;
    let (trace, parent) = caller(4);
    let reply = send(
        &client(),
        addr,
        "/call",
        &[
            ("x-request-id", b"caller-1"),
            ("traceparent", format!("00-{trace}-{parent}-01").as_bytes()),
        ],
    )
    .await;
    assert_eq!(reply.body, "called");
    // The caller: its call line and its access line; the callee: the order's three lines.
    let caller_lines = lines_of("caller-1", 2).await;
    let callee_lines = lines_of("callee-1", 3).await;
    // Caller server span, callee server span, callee's nested span.
    let spans = spans_of(&trace, 3).await;
    let caller_span = span(&spans, SpanKind::Server, "GET /call");
    assert_eq!(caller_span.parent_span_id.to_string(), parent);
    let call = by_message(&caller_lines, "outgoing call");
    assert_eq!(call.str("spanId"), Some(span_id(caller_span).as_str()));
    let sent = call.str("traceparent").expect("the traceparent sent");
    let sent: Vec<&str> = sent.split('-').collect();
    assert_eq!(sent[1], trace);
    let callee = assert_agree(&callee_lines, &spans, &trace);
    assert_eq!(
        callee.parent_span_id.to_string(),
        sent[2],
        "parented on what was sent"
    );
    assert!(callee.parent_span_is_remote);
    println!(
        "caller {} -> sent {} -> callee {}",
        span_id(caller_span),
        sent[2],
        span_id(callee)
    );
}
