//! What `tests/http_propagate.rs` (the tower layer) and `tests/reqwest.rs` (the
//! reqwest-middleware) share: a downstream service that echoes the headers it got, a port
//! nobody listens on, and one traced request to a caller that calls the echo three times.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http::HeaderMap;

use crate::http_support::{capture, client, get as send, lines_until, of, serve};

pub const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT: &str = "00f067aa0ba902b7";

/// The downstream service: echoes the headers it received.
pub async fn echo(headers: HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}",
        header("traceparent"),
        header("tracestate"),
        header("x-request-id")
    )
}

pub async fn echo_server() -> SocketAddr {
    serve(Router::new().route("/echo", get(echo))).await
}

/// A port nobody listens on.
pub async fn dead_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Sends one traced request to `caller` and returns the three echoes, split, and the
/// request's own span id (from its access line).
pub async fn fan_out(caller: SocketAddr, id: &str) -> (Vec<Vec<String>>, String) {
    let capture = capture();
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let reply = send(
        &client(),
        caller,
        "/fan-out",
        &[
            ("x-request-id", id.as_bytes()),
            ("traceparent", incoming.as_bytes()),
            ("tracestate", b"congo=t61rcWkgMzE"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let lines = lines_until(&capture, |lines| {
        of(lines, id)
            .iter()
            .any(|l| l.str("target") == Some("access"))
    })
    .await;
    let access: Vec<_> = of(&lines, id)
        .into_iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect();
    assert_eq!(access.len(), 1);
    let span = access[0].str("spanId").unwrap().to_owned();
    let echoes: Vec<Vec<String>> = reply
        .body
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect();
    assert_eq!(echoes.len(), 3, "{}", reply.body);
    (echoes, span)
}

/// Asserts the echoes of a fan-out made for request `id` whose own span is `span`: each call
/// continues the incoming trace with a parent-id of its own (a child of the request's span),
/// with the incoming `tracestate` and the request id; three calls, three parent-ids.
pub fn assert_each_call_continues_the_trace(echoes: &[Vec<String>], span: &str, id: &str) {
    let mut parent_ids = Vec::new();
    for echo in echoes {
        let parts: Vec<&str> = echo[0].split('-').collect();
        assert_eq!(parts.len(), 4, "{echo:?}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"));
        assert_eq!(parts[2].len(), 16, "{echo:?}");
        assert_ne!(
            parts[2], span,
            "a child of the request's span, not the span itself"
        );
        assert_ne!(parts[2], PARENT);
        assert_eq!(echo[1], "congo=t61rcWkgMzE");
        assert_eq!(echo[2], id);
        parent_ids.push(parts[2].to_owned());
    }
    parent_ids.sort();
    parent_ids.dedup();
    assert_eq!(parent_ids.len(), 3, "three calls, three parent-ids");
    println!("request span {span}, calls {parent_ids:?}");
}
