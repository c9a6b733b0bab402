//! The request span (issue 8 §2, without OpenTelemetry): one `tracing` span per request when
//! asked for with `with_span(true)`, named and fielded after OpenTelemetry's HTTP server
//! conventions, with the handler's lines and the access line inside it, through a real server
//! and client. By default (issue 20) no span is made where no OpenTelemetry layer tracks it,
//! and the lines are the same either way: every line still carries the request.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::extract::MatchedPath;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::Capture;
use http_support::{client, get as send, serve};
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::JsonLayer;
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// What the recording layer saw, in order.
#[derive(Debug, Clone)]
enum Seen {
    NewSpan {
        id: u64,
        name: String,
        fields: BTreeMap<String, Value>,
    },
    Record {
        id: u64,
        fields: BTreeMap<String, Value>,
    },
    Event {
        message: String,
        span: Option<u64>,
    },
    Close {
        id: u64,
    },
}

/// A layer that records span names and fields, and the span each event is in.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields(BTreeMap<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), json!(format!("{value:?}")));
    }
}

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: LayerContext<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        self.0.lock().unwrap().push(Seen::NewSpan {
            id: id.into_u64(),
            name: attrs.metadata().name().to_owned(),
            fields: fields.0,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: LayerContext<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        values.record(&mut fields);
        self.0.lock().unwrap().push(Seen::Record {
            id: id.into_u64(),
            fields: fields.0,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let message = fields
            .0
            .get("message")
            .map(|m| m.as_str().unwrap_or_default().to_owned());
        self.0.lock().unwrap().push(Seen::Event {
            message: message.unwrap_or_default(),
            span: ctx.event_span(event).map(|s| s.id().into_u64()),
        });
    }

    fn on_close(&self, id: Id, _: LayerContext<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Close { id: id.into_u64() });
    }
}

async fn order() -> &'static str {
    tracing::info!("order handled");
    "order"
}

async fn missing() -> StatusCode {
    tracing::info!("order handled");
    StatusCode::NOT_FOUND
}

fn matched_path(request: &http::request::Parts) -> Option<String> {
    let route = request.extensions.get::<MatchedPath>()?;
    Some(route.as_str().to_owned())
}

/// Serves `layer` around two routes, makes one request to `path`, and returns what the
/// recorder saw of the request span, the events in it, and the JSON lines.
fn one_request(layer: RequestContextLayer, path: &str) -> (Vec<Seen>, Vec<common::Line>, String) {
    let (seen, lines, mut ids) = requests(layer, &[(path, &[])]);
    (seen, lines, ids.remove(0))
}

/// One request to send: its path and its headers.
type ToSend<'a> = (&'a str, &'a [(&'a str, &'a [u8])]);

/// Serves `layer` around two routes under a subscriber of its own, makes the requests one
/// after the other (each a path and its headers), and returns what the recorder saw, the JSON
/// lines and each request's id.
fn requests(
    layer: RequestContextLayer,
    requests: &[ToSend<'_>],
) -> (Vec<Seen>, Vec<common::Line>, Vec<String>) {
    let recorder = Recorder::default();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(recorder.clone())
        .with(JsonLayer::new(capture.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    // One thread: the server, its connections and the client run under this subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request_ids = runtime.block_on(async {
        let app = Router::new()
            .route("/orders/{id}", get(order))
            .route("/missing/{id}", get(missing))
            .layer(layer);
        let addr = serve(app).await;
        let client = client();
        let mut ids = Vec::new();
        for (n, (path, headers)) in requests.iter().enumerate() {
            let reply = send(&client, addr, path, headers).await;
            ids.push(reply.headers["x-request-id"].to_str().unwrap().to_owned());
            // The access line is written once the body has gone; the span closes after it.
            let mut done = false;
            for _ in 0..500 {
                let seen = recorder.0.lock().unwrap().clone();
                let opened = seen
                    .iter()
                    .filter(|s| matches!(s, Seen::NewSpan { .. }))
                    .count();
                let closed = seen
                    .iter()
                    .filter(|s| matches!(s, Seen::Close { .. }))
                    .count();
                let access = capture
                    .lines()
                    .iter()
                    .filter(|l| l.str("target") == Some("access"))
                    .count();
                if access == n + 1 && closed == opened {
                    done = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(done, "request {n} did not end within 5 s");
        }
        ids
    });
    let seen = recorder.0.lock().unwrap().clone();
    (seen, capture.lines(), request_ids)
}

/// The request span's id, name and fields (with the recorded ones merged), and the position
/// of its close.
fn request_span(seen: &[Seen]) -> (u64, String, BTreeMap<String, Value>, usize) {
    let spans: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::NewSpan { id, name, fields } => Some((*id, name.clone(), fields.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(spans.len(), 1, "one span per request: {seen:?}");
    let (id, name, mut fields) = spans.into_iter().next().unwrap();
    for s in seen {
        if let Seen::Record {
            id: rid,
            fields: more,
        } = s
        {
            if *rid == id {
                fields.extend(more.clone());
            }
        }
    }
    let closed = seen
        .iter()
        .position(|s| matches!(s, Seen::Close { id: cid } if *cid == id))
        .expect("the span closes when the request ends");
    (id, name, fields, closed)
}

/// Checks the handler's line and the access line are in the span, before it closes, and
/// carry the request id as JSON lines.
fn assert_lines_in_span(seen: &[Seen], lines: &[common::Line], span: u64, closed: usize, id: &str) {
    let events: Vec<(usize, &String, Option<u64>)> = seen
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Seen::Event { message, span } => Some((i, message, *span)),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].1, "order handled");
    assert!(events[1].1.starts_with("request "), "{events:?}");
    for (at, message, in_span) in &events {
        assert_eq!(
            *in_span,
            Some(span),
            "{message:?} is inside the request span"
        );
        assert!(*at < closed, "{message:?} comes before the span closes");
    }
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(line.str("requestId"), Some(id), "{line:?}");
    }
    assert_eq!(lines[1].str("target"), Some("access"));
}

#[test]
fn each_request_has_a_server_span_with_the_route_and_status() {
    let layer = RequestContextLayer::new()
        .with_span(true)
        .http_route(matched_path);
    let (seen, lines, id) = one_request(layer, "/orders/7?token=secret");
    let (span, name, fields, closed) = request_span(&seen);
    assert_eq!(name, "HTTP request");
    let expected: BTreeMap<String, Value> = [
        ("otel.name", json!("GET /orders/{id}")),
        ("otel.kind", json!("server")),
        ("http.request.method", json!("GET")),
        ("url.path", json!("/orders/7")),
        ("http.route", json!("/orders/{id}")),
        ("http.response.status_code", json!(200)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(fields, expected);
    assert_lines_in_span(&seen, &lines, span, closed, &id);
    println!("span {name:?} {fields:?}");
}

#[test]
fn without_a_route_hook_the_span_has_no_route_and_the_status_is_recorded() {
    let (seen, lines, id) = one_request(RequestContextLayer::new().with_span(true), "/missing/3");
    let (span, _, fields, closed) = request_span(&seen);
    assert_eq!(fields.get("http.route"), None);
    assert_eq!(fields["otel.name"], json!("GET"));
    assert_eq!(fields["url.path"], json!("/missing/3"));
    assert_eq!(fields["http.response.status_code"], json!(404));
    // The status is recorded once the response is made, not at the start.
    let recorded = seen
        .iter()
        .position(|s| matches!(s, Seen::Record { id, .. } if *id == span))
        .expect("the status is recorded");
    let handled = seen
        .iter()
        .position(|s| matches!(s, Seen::Event { message, .. } if message == "order handled"))
        .unwrap();
    assert!(handled < recorded);
    assert_lines_in_span(&seen, &lines, span, closed, &id);
}

#[test]
fn the_span_can_be_switched_off() {
    let (seen, lines, id) = one_request(RequestContextLayer::new().with_span(false), "/orders/1");
    assert!(
        seen.iter().all(|s| !matches!(s, Seen::NewSpan { .. })),
        "{seen:?}"
    );
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line.str("requestId"), Some(id.as_str()));
    }
}

/// The request spans the recorder saw.
fn request_spans(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s, Seen::NewSpan { name, .. } if name == "HTTP request"))
        .count()
}

#[test]
fn by_default_no_span_is_made_where_no_opentelemetry_layer_tracks_it() {
    let paths: Vec<ToSend<'_>> = vec![("/orders/1", &[]); 5];
    let (seen, lines, ids) = requests(RequestContextLayer::new(), &paths);
    // With the `opentelemetry` feature, the first request under a subscriber makes its span
    // to learn whether a layer tracks it; none does here, so the other four make none.
    // Without the feature no layer can need it.
    let learning = usize::from(cfg!(feature = "opentelemetry"));
    assert_eq!(request_spans(&seen), learning, "{seen:?}");
    assert_eq!(ids.len(), 5);
    assert_eq!(
        lines.len(),
        10,
        "a handler line and an access line per request"
    );
    for id in &ids {
        let of_request: Vec<_> = lines
            .iter()
            .filter(|l| l.str("requestId") == Some(id.as_str()))
            .collect();
        assert_eq!(of_request.len(), 2, "{id}: {lines:?}");
    }
}

/// The keys whose values differ from one request to the next whatever the span does: the
/// time, the latency and the request's own span id (random).
const VOLATILE: [&str; 3] = ["timestamp", "latencyMs", "spanId"];

#[test]
fn the_lines_are_the_same_with_and_without_the_span() {
    let headers: &[(&str, &[u8])] = &[
        ("x-request-id", b"req-same-1"),
        (
            "traceparent",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ];
    let paths: Vec<ToSend<'_>> = vec![("/orders/9", headers), ("/missing/9", headers)];
    let layer = || RequestContextLayer::new().http_route(matched_path);
    let (with_seen, with, _) = requests(layer().with_span(true), &paths);
    let (without_seen, without, _) = requests(layer().with_span(false), &paths);
    assert_eq!(request_spans(&with_seen), 2);
    assert_eq!(request_spans(&without_seen), 0);
    assert_eq!(with.len(), 4, "{with:?}");
    assert_eq!(without.len(), 4, "{without:?}");
    for (a, b) in with.iter().zip(&without) {
        assert_eq!(a.keys(), b.keys(), "the same keys in the same order");
        for (key, value) in &a.entries {
            if VOLATILE.contains(&key.as_str()) {
                continue;
            }
            assert_eq!(Some(value), b.get(key), "{key}");
        }
        // The request's trace id is the caller's with or without the span.
        assert_eq!(a.str("traceId"), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(a.str("requestId"), Some("req-same-1"));
    }
}
