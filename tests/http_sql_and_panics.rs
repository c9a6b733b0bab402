//! Through a real server: the SQL comment of a request that came with a trace context, and a
//! handler panic that nothing catches.
#![cfg(feature = "http")]

mod common;
mod http_support;

use axum::routing::get;
use axum::Router;
use http_support::{capture, client, get as send, lines_until, of, serve};
use serde_json::json;
use tracing_ambient::http::RequestContextLayer;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_comment_carries_the_request_and_its_trace_context() {
    let capture = capture();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let sql = tracing_ambient::sql::tag("SELECT * FROM orders WHERE id = $1;");
                tracing::info!(sql = sql.as_ref(), "query");
                sql.into_owned()
            }),
        )
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    let reply = send(
        &client(),
        addr,
        "/",
        &[
            ("x-request-id", b"sql-1"),
            (
                "traceparent",
                format!("00-{TRACE}-00f067aa0ba902b7-01").as_bytes(),
            ),
            ("tracestate", b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ],
    )
    .await;
    let lines = lines_until(&capture, |lines| of(lines, "sql-1").len() == 2).await;
    let query = of(&lines, "sql-1")
        .into_iter()
        .find(|l| l.str("message") == Some("query"))
        .expect("the handler's line");
    let span_id = query.str("spanId").unwrap();
    let expected = format!(
        "SELECT * FROM orders WHERE id = $1 /*request_id='sql-1',\
         traceparent='00-{TRACE}-{span_id}-01',\
         tracestate='rojo%3D00f067aa0ba902b7%2Ccongo%3Dt61rcWkgMzE'*/;"
    );
    assert_eq!(reply.body, expected);
    assert_eq!(query.at("sql"), &json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_handler_panic_is_logged_with_the_request() {
    let capture = capture();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tracing::info!("about to fail");
                if std::hint::black_box(true) {
                    panic!("nobody catches this");
                }
                "unreachable"
            }),
        )
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    // Without a catch-panic layer hyper drops the connection: the client sees an error.
    let request = http::Request::get(format!("http://{addr}/"))
        .header("x-request-id", "uncaught-1")
        .body(http_body_util::Full::default())
        .unwrap();
    assert!(client().request(request).await.is_err());
    let is_access = |l: &common::Line| l.str("target") == Some("access");
    let lines = lines_until(&capture, |lines| {
        of(lines, "uncaught-1").iter().any(is_access)
    })
    .await;
    let lines = of(&lines, "uncaught-1");
    let targets: Vec<_> = lines.iter().map(|l| l.str("target").unwrap()).collect();
    assert_eq!(targets[1..], ["panic", "access"], "{lines:#?}");
    assert_eq!(lines[1].at("message"), &json!("nobody catches this"));
    assert_eq!(lines[2].at("level"), &json!("error"));
    assert_eq!(lines[2].at("outcome"), &json!("panicked"));
}
