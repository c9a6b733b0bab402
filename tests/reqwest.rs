//! Outgoing calls through `reqwest` carry the request (issue 12 §2, feature `reqwest`):
//! `PropagateContextMiddleware` in a `reqwest-middleware` client sets a new `traceparent` per
//! call, the `tracestate` and the request id, and can log one line per call. A real server
//! echoes the headers it received.
#![cfg(feature = "reqwest")]

mod common;
mod http_support;
mod propagate_support;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http_support::{capture, of, serve};
use propagate_support::{
    assert_each_call_continues_the_trace, dead_port, echo_server, fan_out, PARENT, TRACE,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tracing_ambient::http::{PropagateContextMiddleware, RequestContextLayer};
use tracing_ambient::Context;

fn reqwest_client(middleware: PropagateContextMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// Makes one call and returns the echo (or the error).
async fn call(
    client: &ClientWithMiddleware,
    url: &str,
    id: Option<&str>,
) -> Result<String, String> {
    let mut request = client.get(url);
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    assert_eq!(response.status(), 200);
    Ok(response.text().await.unwrap())
}

/// A server whose handler makes three calls to `echo` (and one to `dead`, a closed port)
/// through a reqwest client with `middleware`, and answers with the echoes, one per line.
async fn caller(
    middleware: PropagateContextMiddleware,
    echo: SocketAddr,
    dead: SocketAddr,
) -> SocketAddr {
    let client = reqwest_client(middleware);
    let app = Router::new()
        .route(
            "/fan-out",
            get(move || async move {
                let mut out = Vec::new();
                for _ in 0..3 {
                    let url = format!("http://{echo}/echo?token=secret");
                    out.push(call(&client, &url, None).await.unwrap());
                }
                let url = format!("http://{dead}/echo?token=secret");
                let failed = call(&client, &url, None).await;
                assert!(failed.is_err(), "nobody listens on {dead}");
                out.join("\n")
            }),
        )
        .layer(RequestContextLayer::new());
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_carries_a_new_traceparent_the_tracestate_and_the_request_id() {
    let capture = capture();
    let caller = caller(
        PropagateContextMiddleware::new(),
        echo_server().await,
        dead_port().await,
    )
    .await;
    let (echoes, span) = fan_out(caller, "rq-1").await;
    assert_each_call_continues_the_trace(&echoes, &span, "rq-1");
    // Call lines are off by default: the request wrote its access line only.
    let lines = of(&capture.lines(), "rq-1");
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_lines_name_each_call_without_its_query_or_url() {
    let capture = capture();
    let echo = echo_server().await;
    let dead = dead_port().await;
    let middleware = PropagateContextMiddleware::new().with_call_line(true);
    let caller = caller(middleware, echo, dead).await;
    let (echoes, span) = fan_out(caller, "rq-2").await;
    let echo_addr = echo.to_string();
    let lines = of(&capture.lines(), "rq-2");
    let calls: Vec<_> = lines
        .iter()
        .filter(|l| l.str("target") == Some("outgoing"))
        .collect();
    assert_eq!(calls.len(), 4, "three calls and a failed one: {lines:?}");
    for (line, echo) in calls.iter().zip(&echoes) {
        assert_eq!(line.str("message"), Some("outgoing call"));
        assert_eq!(line.str("level"), Some("info"));
        assert_eq!(line.str("method"), Some("GET"));
        assert_eq!(line.str("host"), Some(echo_addr.as_str()));
        assert_eq!(line.str("path"), Some("/echo"));
        assert_eq!(line.at("status"), 200);
        assert!(line.at("latencyMs").as_f64().unwrap() >= 0.0);
        assert_eq!(line.str("traceparent"), Some(echo[0].as_str()));
        assert_eq!(line.str("traceId"), Some(TRACE));
        assert_eq!(line.str("spanId"), Some(span.as_str()));
    }
    let failed = calls[3];
    assert_eq!(failed.str("message"), Some("outgoing call failed"));
    assert_eq!(failed.str("level"), Some("warn"));
    assert_eq!(failed.str("host"), Some(dead.to_string().as_str()));
    assert!(failed.get("status").is_none());
    let error = failed.str("error").unwrap();
    assert!(error.starts_with("error sending request"), "{error}");
    assert!(
        !error.contains("http://"),
        "reqwest's URL is left out: {error}"
    );
    for line in &lines {
        let text = format!("{:?}", line.entries);
        assert!(
            !text.contains("secret"),
            "the query is never written: {text}"
        );
    }
    println!("failed call: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_a_context_nothing_is_added_and_a_callers_id_wins() {
    let _capture = capture();
    let echo = echo_server().await;
    let client = reqwest_client(PropagateContextMiddleware::new());
    let url = format!("http://{echo}/echo");
    assert_eq!(call(&client, &url, None).await.unwrap(), "||");

    let ctx = Context::new()
        .with_request_id("ctx-id")
        .with_trace_id(TRACE)
        .with_span_id(PARENT);
    let (mine, theirs) = ctx
        .clone()
        .scope(async {
            (
                call(&client, &url, Some("mine")).await.unwrap(),
                call(&client, &url, None).await.unwrap(),
            )
        })
        .await;
    assert!(mine.ends_with("|mine"), "{mine}");
    assert!(theirs.ends_with("|ctx-id"), "{theirs}");
    assert!(theirs.starts_with(&format!("00-{TRACE}-")), "{theirs}");

    // A context opened by hand is not validated: an invalid id is not sent.
    let hostile = Context::new().with_request_id("bad id */");
    let sent = hostile.scope(call(&client, &url, None)).await.unwrap();
    assert_eq!(sent, "||");

    // Another header name.
    let correlation = http::HeaderName::from_static("x-correlation-id");
    let client = reqwest_client(PropagateContextMiddleware::new().header(correlation));
    let sent = ctx.scope(call(&client, &url, None)).await.unwrap();
    assert!(sent.ends_with('|'), "not in x-request-id: {sent}");
}
