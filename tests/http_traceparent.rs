//! W3C trace context through a real server: the parsing rules of the W3C test suite, the
//! new span id, `tracestate`, and what a handler propagates downstream.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http_support::{capture, client, get as send, lines_until, of, serve, HttpClient};
use tracing_ambient::http::RequestContextLayer;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The handler logs one line and answers with what it would send downstream.
async fn downstream() -> String {
    tracing::info!("handled");
    let mut headers = http::HeaderMap::new();
    tracing_ambient::http::inject_trace_context(&mut headers);
    assert_eq!(
        headers
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned()),
        tracing_ambient::traceparent()
    );
    format!(
        "{}|{}|{}",
        tracing_ambient::traceparent().unwrap_or_default(),
        tracing_ambient::tracestate().unwrap_or_default(),
        tracing_ambient::http::parent_span_id().unwrap_or_default(),
    )
}

struct Seen {
    trace_id: String,
    span_id: String,
    traceparent: String,
    tracestate: String,
    parent: String,
}

async fn request(
    client: &HttpClient,
    addr: SocketAddr,
    id: &str,
    headers: &[(&str, &str)],
) -> Seen {
    let capture = capture();
    let mut all: Vec<(&str, &[u8])> = vec![("x-request-id", id.as_bytes())];
    all.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
    let reply = send(client, addr, "/", &all).await;
    let lines = lines_until(&capture, |lines| of(lines, id).len() == 2).await;
    let lines = of(&lines, id);
    assert_eq!(lines.len(), 2);
    // The handler's line and the access line carry the same trace and span.
    assert_eq!(lines[0].get("traceId"), lines[1].get("traceId"));
    assert_eq!(lines[0].get("spanId"), lines[1].get("spanId"));
    let mut parts = reply.body.split('|').map(str::to_owned);
    Seen {
        trace_id: lines[0].str("traceId").unwrap().to_owned(),
        span_id: lines[0].str("spanId").unwrap().to_owned(),
        traceparent: parts.next().unwrap(),
        tracestate: parts.next().unwrap(),
        parent: parts.next().unwrap(),
    }
}

async fn server() -> (HttpClient, SocketAddr) {
    let app = Router::new()
        .route("/", get(downstream))
        .layer(RequestContextLayer::new());
    (client(), serve(app).await)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_traceparents_are_continued_with_a_new_span() {
    let (client, addr) = server().await;
    let valid = [
        format!("00-{TRACE}-{PARENT}-01"),
        format!("00-{TRACE}-{PARENT}-00"),
        format!(" 00-{TRACE}-{PARENT}-01\t"),
        format!("cc-{TRACE}-{PARENT}-01"),
        format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
        // Flags this version does not define are accepted, and not passed on (W3C: set them
        // to zero).
        format!("00-{TRACE}-{PARENT}-ff"),
        format!("00-{TRACE}-{PARENT}-fe"),
    ];
    for (i, value) in valid.iter().enumerate() {
        let seen = request(
            &client,
            addr,
            &format!("tp-valid-{i}"),
            &[
                ("traceparent", value),
                ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            ],
        )
        .await;
        assert_eq!(seen.trace_id, TRACE, "{value:?}");
        assert!(is_hex(&seen.span_id, 16));
        assert_ne!(seen.span_id, PARENT);
        let flags = if value.trim().ends_with("-00") || value.ends_with("-fe") {
            "00"
        } else {
            "01"
        };
        assert_eq!(
            seen.traceparent,
            format!("00-{TRACE}-{}-{flags}", seen.span_id),
            "{value:?}"
        );
        assert_eq!(seen.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert_eq!(seen.parent, PARENT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_traceparents_restart_the_trace() {
    let (client, addr) = server().await;
    let zeros32 = "0".repeat(32);
    let invalid = [
        format!("00-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
        format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!(".0-{TRACE}-{PARENT}-01"),
        format!("000-{TRACE}-{PARENT}-01"),
        format!("0-{TRACE}-{PARENT}-01"),
        format!("00-{zeros32}-{PARENT}-01"),
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        format!("00-{TRACE}0-{PARENT}-01"),
        format!("00-{}-{PARENT}-01", &TRACE[1..]),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{TRACE}-{}-01", PARENT.to_uppercase()),
        format!("00-{TRACE}-{PARENT}0-01"),
        format!("00-{TRACE}-{PARENT}-.0"),
        format!("00-{TRACE}-{PARENT}-010"),
        format!("00-{TRACE}-{PARENT}-1"),
        String::new(),
        "garbage".to_owned(),
    ];
    for (i, value) in invalid.iter().enumerate() {
        let seen = request(
            &client,
            addr,
            &format!("tp-invalid-{i}"),
            &[("traceparent", value), ("tracestate", "rojo=1")],
        )
        .await;
        assert!(is_hex(&seen.trace_id, 32), "{value:?}");
        assert_ne!(seen.trace_id, TRACE, "{value:?} restarts");
        assert_eq!(
            seen.traceparent,
            format!("00-{}-{}-01", seen.trace_id, seen.span_id)
        );
        assert_eq!(seen.tracestate, "", "{value:?}: tracestate is dropped");
        assert_eq!(seen.parent, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_traceparent_headers_restart_the_trace() {
    let (client, addr) = server().await;
    let value = format!("00-{TRACE}-{PARENT}-01");
    let seen = request(
        &client,
        addr,
        "tp-dup",
        &[("traceparent", &value), ("traceparent", &value)],
    )
    .await;
    assert_ne!(seen.trace_id, TRACE);
    assert!(is_hex(&seen.trace_id, 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_traceparent_starts_a_trace_and_invalid_tracestate_is_dropped() {
    let (client, addr) = server().await;
    let a = request(&client, addr, "tp-none-a", &[]).await;
    let b = request(&client, addr, "tp-none-b", &[]).await;
    assert!(is_hex(&a.trace_id, 32) && is_hex(&b.trace_id, 32));
    assert_ne!(a.trace_id, b.trace_id);
    assert_ne!(a.span_id, b.span_id);

    let value = format!("00-{TRACE}-{PARENT}-01");
    let seen = request(
        &client,
        addr,
        "tp-bad-state",
        &[("traceparent", &value), ("tracestate", "Rojo=1")],
    )
    .await;
    assert_eq!(seen.trace_id, TRACE);
    assert_eq!(seen.tracestate, "");
    let many = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let seen = request(
        &client,
        addr,
        "tp-33-members",
        &[("traceparent", &value), ("tracestate", &many)],
    )
    .await;
    assert_eq!(seen.tracestate, "");
    let seen = request(
        &client,
        addr,
        "tp-two-states",
        &[
            ("traceparent", &value),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ],
    )
    .await;
    assert_eq!(seen.tracestate, "a=1,b=2");
}
