//! Filters see the access line's target and level: with `access=warn`, a 200 writes no access
//! line, a 404 (`warn`) and a 500 (`error`) do. In a process of its own, with a global
//! subscriber: the access callsites cache their interest as the macros' do, and scoped
//! subscribers made and dropped by tests running alongside would race with that cache.
#![cfg(feature = "http")]

mod common;
mod http_support;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::{Capture, Line};
use http_support::{client, get as http_get, lines_until, serve};
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::JsonLayer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

async fn answer(status: StatusCode) -> StatusCode {
    tracing::info!(status = status.as_u16(), "handled");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_follow_a_filter_on_their_target_and_level() {
    let capture = Capture::default();
    tracing_subscriber::registry()
        .with(
            JsonLayer::new(capture.clone()).with_filter(
                Targets::new()
                    .with_target("access", LevelFilter::WARN)
                    .with_target("http_access_filter", LevelFilter::INFO),
            ),
        )
        .init();
    let app = Router::new()
        .route("/ok", get(|| answer(StatusCode::OK)))
        .route("/missing", get(|| answer(StatusCode::NOT_FOUND)))
        .route("/broken", get(|| answer(StatusCode::INTERNAL_SERVER_ERROR)))
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    let client = client();
    // One after the other, the 200 first: its access line (made before the response's empty
    // body is sent) would be written before the 404's and 500's, which are waited for.
    for (path, status) in [("ok", 200), ("missing", 404), ("broken", 500)] {
        let reply = http_get(&client, addr, &format!("/{path}"), &[]).await;
        assert_eq!(reply.status.as_u16(), status, "/{path}");
    }
    let lines = lines_until(&capture, |lines| {
        lines
            .iter()
            .filter(|l| l.str("target") == Some("access"))
            .count()
            >= 2
    })
    .await;

    let handled: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("message") == Some("handled"))
        .collect();
    assert_eq!(
        handled.len(),
        3,
        "the three handlers ran and logged: {lines:?}"
    );
    let access: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect();
    assert_eq!(access.len(), 2, "no access line for the 200: {access:?}");
    let seen: Vec<(u64, &str)> = access
        .iter()
        .map(|l| (l.at("status").as_u64().unwrap(), l.str("level").unwrap()))
        .collect();
    assert_eq!(seen, [(404, "warn"), (500, "error")]);
    for line in access {
        assert!(line.at("latencyMs").as_f64().unwrap() >= 0.0, "{line:?}");
        assert_eq!(line.str("message"), Some("request completed"), "{line:?}");
    }
}
