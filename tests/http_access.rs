//! Response header round trip, the access line, a user id set by an auth layer, panics in
//! handlers, a streaming body, and tower-http's request id layers, through a real server.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, USER_AGENT};
use http_body::Frame;
use http_support::{capture, client, get as send, lines_until, of, serve};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};
use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};

async fn order() -> &'static str {
    tracing::info!(order_id = 7, "order placed");
    "order 7"
}

async fn missing() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "no such order")
}

async fn broken() -> (StatusCode, &'static str) {
    tracing::error!("database down");
    (StatusCode::INTERNAL_SERVER_ERROR, "sorry")
}

async fn panics() -> &'static str {
    panic!("handler exploded")
}

/// Sets the user id from a bearer token, as an auth layer would, after the context exists.
async fn auth(request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer user-"))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(user) = user {
        tracing_ambient::set_user_id(user);
    }
    next.run(request).await
}

fn app() -> Router {
    Router::new()
        .route("/orders/7", get(order))
        .route("/missing", get(missing))
        .route("/broken", get(broken))
        .route("/panics", get(panics))
        .route("/stream", get(|| async { Body::new(Chunks(3)) }))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(auth))
        .layer(
            RequestContextLayer::new().on_access(
                DefaultOnAccess::new()
                    .request_header(USER_AGENT)
                    .request_header(AUTHORIZATION)
                    .request_header(COOKIE),
            ),
        )
}

/// A body of `n` chunks, each logging as it is polled.
struct Chunks(u32);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        tracing::info!(left = self.0, "chunk");
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"chunk")))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_round_trips_and_is_made_when_absent() {
    let capture = capture();
    let addr = serve(app()).await;
    let client = client();

    let reply = send(
        &client,
        addr,
        "/orders/7",
        &[("x-request-id", b"round-trip-1")],
    )
    .await;
    assert_eq!(reply.headers["x-request-id"], "round-trip-1");

    let reply = send(&client, addr, "/orders/7", &[]).await;
    let made = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36);
    assert_eq!(&made[14..15], "7", "a UUID v7: {made}");
    let lines = lines_until(&capture, |lines| of(lines, &made).len() == 2).await;
    assert_eq!(of(&lines, &made).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_line_has_its_fields_and_no_secrets() {
    let capture = capture();
    let addr = serve(app()).await;
    let reply = send(
        &client(),
        addr,
        "/orders/7?token=s3cret",
        &[
            ("x-request-id", b"access-1"),
            ("authorization", b"Bearer user-42"),
            ("cookie", b"session=s3cret"),
            ("user-agent", b"tests/1.0"),
        ],
    )
    .await;
    assert_eq!(reply.body, "order 7");
    let lines = lines_until(&capture, |lines| of(lines, "access-1").len() == 2).await;
    let lines = of(&lines, "access-1");
    assert_eq!(lines.len(), 2);
    let (handler, access) = (&lines[0], &lines[1]);

    assert_eq!(handler.at("message"), "order placed");
    assert_eq!(
        handler.at("userId"),
        42,
        "set by the auth layer after the context opened"
    );
    assert_eq!(
        access.keys(),
        [
            "timestamp",
            "level",
            "message",
            "requestId",
            "userId",
            "traceId",
            "spanId",
            "headerUserAgent",
            "target",
            "method",
            "path",
            "status",
            "latencyMs",
            "size",
            "outcome"
        ]
    );
    assert_eq!(access.at("level"), "info");
    assert_eq!(access.at("message"), "request completed");
    assert_eq!(access.at("target"), "access");
    assert_eq!(access.at("userId"), 42);
    assert_eq!(access.at("method"), "GET");
    assert_eq!(access.at("path"), "/orders/7");
    assert_eq!(access.at("status"), 200);
    assert!(access.at("latencyMs").as_f64().unwrap() >= 0.0);
    assert_eq!(access.at("size"), &json!("order 7".len()));
    assert_eq!(access.at("outcome"), "completed");
    assert_eq!(access.at("headerUserAgent"), "tests/1.0");
    assert_eq!(handler.get("traceId"), access.get("traceId"));
    for line in [handler, access] {
        for (_, value) in &line.entries {
            let text = value.to_string();
            assert!(
                !text.contains("s3cret") && !text.contains("Bearer"),
                "{line:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_sets_the_level() {
    let capture = capture();
    let addr = serve(app()).await;
    let client = client();
    for (path, id, status, level) in [
        ("/orders/7", "level-200", 200, "info"),
        ("/missing", "level-404", 404, "warn"),
        ("/broken", "level-500", 500, "error"),
        ("/nowhere", "level-router-404", 404, "warn"),
    ] {
        let reply = send(&client, addr, path, &[("x-request-id", id.as_bytes())]).await;
        assert_eq!(reply.status, status);
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
        assert_eq!(access.len(), 1, "{id}");
        assert_eq!(access[0].at("status"), status);
        assert_eq!(access[0].at("level"), level, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_logs_an_error_with_the_request_id() {
    let capture = capture();
    let addr = serve(app()).await;
    let reply = send(&client(), addr, "/panics", &[("x-request-id", b"panic-1")]).await;
    assert_eq!(reply.status, 500);
    let is_access = |l: &common::Line| l.str("target") == Some("access");
    let lines = lines_until(&capture, |lines| of(lines, "panic-1").iter().any(is_access)).await;
    let lines = of(&lines, "panic-1");
    // The crate's panic hook, then tower-http's own line, then the access line.
    let targets: Vec<_> = lines.iter().map(|l| l.str("target").unwrap()).collect();
    assert_eq!(
        targets,
        ["panic", "tower_http::catch_panic", "access"],
        "{lines:#?}"
    );
    assert_eq!(lines[0].at("level"), "error");
    assert_eq!(lines[0].at("message"), "handler exploded");
    assert_eq!(lines[2].at("status"), 500);
    assert_eq!(lines[2].at("level"), "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_body_is_polled_inside_the_context() {
    let capture = capture();
    let addr = serve(app()).await;
    let reply = send(&client(), addr, "/stream", &[("x-request-id", b"stream-1")]).await;
    assert_eq!(reply.body, "chunk".repeat(3));
    let lines = lines_until(&capture, |lines| of(lines, "stream-1").len() == 4).await;
    let lines = of(&lines, "stream-1");
    let messages: Vec<_> = lines.iter().map(|l| l.str("message").unwrap()).collect();
    assert_eq!(messages, ["chunk", "chunk", "chunk", "request completed"]);
    assert_eq!(lines[3].at("size"), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_request_completes() {
    let capture = capture();
    let addr = serve(app()).await;
    let request = http::Request::head(format!("http://{addr}/orders/7"))
        .header("x-request-id", "head-1")
        .body(http_body_util::Full::default())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let is_access = |l: &common::Line| l.str("target") == Some("access");
    let lines = lines_until(&capture, |lines| of(lines, "head-1").iter().any(is_access)).await;
    let access: Vec<_> = of(&lines, "head-1").into_iter().filter(is_access).collect();
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].at("method"), "HEAD");
    assert_eq!(access[0].at("outcome"), "completed");
    assert_eq!(access[0].at("size"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_http_request_id_agrees_inside_and_outside() {
    async fn echo(Extension(id): Extension<tower_http::request_id::RequestId>) -> String {
        format!(
            "{}|{}",
            id.header_value().to_str().unwrap(),
            tracing_ambient::request_id().unwrap()
        )
    }
    let client = client();

    // Inside: it finds the header this crate wrote and keeps it.
    let inside = Router::new()
        .route("/", get(echo))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(RequestContextLayer::new());
    let addr = serve(inside).await;
    let reply = send(&client, addr, "/", &[("x-request-id", b"bad id")]).await;
    let (theirs, ours) = reply.body.split_once('|').unwrap();
    assert_eq!(theirs, ours);
    assert_eq!(reply.headers["x-request-id"], ours);

    // Outside: its id is a valid one, and this crate takes it.
    let outside = Router::new()
        .route(
            "/",
            get(|| async { tracing_ambient::request_id().unwrap() }),
        )
        .layer(RequestContextLayer::new())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    assert_takes_tower_http_id(&client, outside).await;
}

/// Serves `app`, whose handler answers with the request id of its lines, and checks that the
/// id is the UUID v4 an outer tower-http layer made, and is on the response.
async fn assert_takes_tower_http_id(client: &http_support::HttpClient, app: Router) {
    let addr = serve(app).await;
    let reply = send(client, addr, "/", &[]).await;
    assert_eq!(reply.headers["x-request-id"], reply.body.as_str());
    assert_eq!(
        &reply.body[14..15],
        "4",
        "tower-http's UUID v4: {}",
        reply.body
    );
}

#[cfg(feature = "tower-http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_http_request_id_extension_is_taken_and_provided() {
    let client = client();

    // An outer tower-http layer under another header name: its extension is the id.
    let outside = Router::new()
        .route(
            "/",
            get(|| async { tracing_ambient::request_id().unwrap() }),
        )
        .layer(RequestContextLayer::new())
        .layer(SetRequestIdLayer::new(
            http::HeaderName::from_static("x-correlation-id"),
            MakeRequestUuid,
        ));
    assert_takes_tower_http_id(&client, outside).await;

    // This layer alone: handlers extracting tower-http's extension get the id of the lines.
    let alone = Router::new()
        .route(
            "/",
            get(
                |Extension(id): Extension<tower_http::request_id::RequestId>| async move {
                    id.header_value().to_str().unwrap().to_owned()
                },
            ),
        )
        .layer(RequestContextLayer::new());
    let addr = serve(alone).await;
    let reply = send(&client, addr, "/", &[("x-request-id", b"ext-1")]).await;
    assert_eq!(reply.body, "ext-1");
}
