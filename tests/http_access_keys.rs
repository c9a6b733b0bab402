//! The access line's keys (issue 7 §3): they come from the schema (camel case by default,
//! `latencyMs` next to `requestId`), no key is the dotted prefix of another, and each keeps
//! one JSON type on every line, whatever the outcome. Lines are expanded as Elasticsearch
//! does (dots become nested objects) and checked for conflicts, on a line and across lines.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::elastic::assert_indexable;
use common::{Capture, Line};
use http_body::Frame;
use http_support::{client, get as send, serve};
use tokio::io::AsyncWriteExt;
use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
use tracing_ambient::{JsonLayer, Schema};
use tracing_subscriber::prelude::*;

/// A body that fails after its first chunk.
struct FailingBody(bool);

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0 {
            Poll::Ready(Some(Err(std::io::Error::other("disk gone"))))
        } else {
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"part")))))
        }
    }
}

fn app(schema: Schema) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .route(
            "/failing",
            get(|| async { Response::new(Body::new(FailingBody(false))) }),
        )
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                "never"
            }),
        )
        .layer(
            RequestContextLayer::new()
                .on_access(DefaultOnAccess::new().with_query(true).schema(schema)),
        )
}

/// Serves `schema`'s app under a subscriber of this thread only (the runtime has one thread)
/// and makes one request of each outcome; returns the access lines.
fn access_lines(schema: Schema) -> Vec<Line> {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(JsonLayer::new(capture.clone()).schema(schema));
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = serve(app(schema)).await;
        let client = client();
        for path in ["/ok?page=2", "/missing", "/broken"] {
            send(&client, addr, path, &[]).await;
        }
        // A body error: the server closes the connection, before or after the head.
        let request = http::Request::get(format!("http://{addr}/failing"))
            .body(http_body_util::Full::default())
            .unwrap();
        if let Ok(response) = client.request(request).await {
            let body = http_body_util::BodyExt::collect(response.into_body()).await;
            assert!(body.is_err(), "the body ends early");
        }
        // A client that goes away before the response.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("GET /stuck HTTP/1.1\r\nhost: {addr}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(stream);
        for _ in 0..500 {
            if access_of(&capture).len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let lines = access_of(&capture);
    assert_eq!(lines.len(), 5, "one access line per request: {lines:?}");
    lines
}

fn access_of(capture: &Capture) -> Vec<Line> {
    capture
        .lines()
        .into_iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect()
}

/// What one access line says: status, outcome, size, error.
type Outcome<'a> = (Option<u64>, &'a str, Option<u64>, Option<&'a str>);

/// Checks the outcomes the five requests had, by the schema's keys.
fn assert_outcomes(lines: &[Line], status: &str, outcome: &str, size: &str, error: &str) {
    let by_outcome: Vec<Outcome<'_>> = lines
        .iter()
        .map(|l| {
            (
                l.get(status)
                    .map(|v| v.as_u64().expect("status is a number")),
                l.str(outcome).unwrap(),
                l.get(size).map(|v| v.as_u64().expect("size is a number")),
                l.str(error),
            )
        })
        .collect();
    assert_eq!(
        by_outcome,
        [
            (Some(200), "completed", Some(2), None),
            (Some(404), "completed", Some(0), None),
            (Some(500), "completed", Some(6), None),
            (Some(200), "failed", Some(4), Some("disk gone")),
            (None, "aborted", None, None),
        ]
    );
}

#[test]
fn the_default_access_line_keys_are_camel_case_and_index_without_conflict() {
    let lines = access_lines(Schema::DEFAULT);
    let allowed = [
        "timestamp",
        "level",
        "message",
        "requestId",
        "traceId",
        "spanId",
        "target",
        "method",
        "path",
        "query",
        "status",
        "latencyMs",
        "size",
        "outcome",
        "error",
    ];
    for line in &lines {
        for key in line.keys() {
            assert!(
                allowed.contains(&key),
                "{key:?} is not a default key: {line:?}"
            );
        }
        assert!(line.get("latency_ms").is_none());
        assert!(line.at("latencyMs").as_f64().unwrap() >= 0.0);
    }
    assert_eq!(lines[0].str("query"), Some("page=2"));
    assert_eq!(lines[0].str("path"), Some("/ok"));
    assert_outcomes(&lines, "status", "outcome", "size", "error");
    let types = assert_indexable(&lines);
    assert_eq!(types["status"], ["integer"]);
    assert_eq!(types["size"], ["integer"]);
    assert_eq!(types["latencyMs"], ["float"]);
    println!(
        "{} access lines, {} fields: {:?}",
        lines.len(),
        types.len(),
        types.keys()
    );
}

#[test]
fn the_access_line_takes_every_key_from_the_schema() {
    let schema = Schema::DEFAULT
        .with_access_method_key("http.request.method")
        .with_access_path_key("url.path")
        .with_access_query_key("url.query")
        .with_access_status_key("http.response.status_code")
        .with_access_latency_key("http.server.latency_ms")
        .with_access_size_key("http.response.body.bytes")
        .with_access_outcome_key("event.outcome")
        .with_access_error_key("error.message");
    let lines = access_lines(schema);
    for line in &lines {
        for old in [
            "method",
            "path",
            "query",
            "status",
            "latencyMs",
            "size",
            "outcome",
        ] {
            assert!(line.get(old).is_none(), "{old:?} on {line:?}");
        }
        assert!(line.str("http.request.method") == Some("GET"));
        assert!(line.at("http.server.latency_ms").as_f64().unwrap() >= 0.0);
    }
    assert_eq!(lines[0].str("url.path"), Some("/ok"));
    assert_eq!(lines[0].str("url.query"), Some("page=2"));
    assert_outcomes(
        &lines,
        "http.response.status_code",
        "event.outcome",
        "http.response.body.bytes",
        "error.message",
    );
    let types = assert_indexable(&lines);
    assert_eq!(types["http.response.status_code"], ["integer"]);
}
