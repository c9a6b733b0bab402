//! A response body that fails with an error whose `Display` panics (issue 19 §4), through a
//! real server: the error's text is the user's code, run on the server's poll of the body.
//! The panic stays in the middleware, as a panicking field's stays in the layer: the access
//! line says the body failed, with the marker as its error, and the server goes on serving.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use http_support::{capture, client, get as send, lines_until, of, serve};
use serde_json::json;
use tracing_ambient::http::RequestContextLayer;

/// The marker the layer writes for a value whose impl panicked (documented on `JsonLayer`).
const MARKER: &str = "<panicked while formatting>";

/// An error whose `Display` panics.
#[derive(Debug)]
struct Treacherous;

impl fmt::Display for Treacherous {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of the body's error blew up")
    }
}

impl std::error::Error for Treacherous {}

/// Sends one chunk, then fails with [`Treacherous`].
struct FailingBody(bool);

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = Treacherous;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0 {
            Poll::Ready(Some(Err(Treacherous)))
        } else {
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"part")))))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_error_whose_display_panics_is_logged_with_the_marker() {
    let capture = capture();
    let app = Router::new()
        .route(
            "/treacherous",
            get(|| async { Response::new(Body::new(FailingBody(false))) }),
        )
        .route("/ok", get(|| async { "ok" }))
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    let client = client();
    let request = http::Request::get(format!("http://{addr}/treacherous"))
        .header("x-request-id", "treacherous-1")
        .body(Full::default())
        .unwrap();
    // The body fails: the server closes the connection, before or after the head.
    if let Ok(response) = client.request(request).await {
        let body = response.into_body().collect().await;
        assert!(body.is_err(), "the body ends early");
    }
    let lines = lines_until(&capture, |lines| {
        of(lines, "treacherous-1")
            .iter()
            .any(|l| l.str("target") == Some("access"))
    })
    .await;
    let access: Vec<_> = of(&lines, "treacherous-1")
        .into_iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0].at("outcome"), &json!("failed"), "{:?}", access[0]);
    assert_eq!(access[0].at("error"), &json!(MARKER), "{:?}", access[0]);
    assert_eq!(access[0].at("status"), &json!(200));
    assert_eq!(access[0].at("size"), &json!(4));
    assert_eq!(access[0].at("level"), &json!("error"));
    // The server still answers.
    let reply = send(&client, addr, "/ok", &[("x-request-id", b"after-1")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
}

/// The service itself fails (a tower service may; axum's never do) with an error whose
/// `Display` panics: the middleware's future writes the access line with the marker and
/// hands the error on, and the panic never reaches the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_error_whose_display_panics_is_logged_with_the_marker() {
    use tower::Layer;
    use tower::ServiceExt;

    let capture = capture();
    let service = RequestContextLayer::new().layer(tower::service_fn(
        |_: http::Request<Full<Bytes>>| async {
            tracing::info!("about to fail");
            Err::<Response<Full<Bytes>>, _>(Treacherous)
        },
    ));
    let request = http::Request::get("/failing")
        .header("x-request-id", "treacherous-service-1")
        .body(Full::default())
        .unwrap();
    let called = tokio::spawn(service.oneshot(request)).await;
    let result = called.expect("the middleware's future does not panic");
    assert!(result.is_err(), "the service's error is handed on");
    let lines = lines_until(&capture, |lines| {
        of(lines, "treacherous-service-1")
            .iter()
            .any(|l| l.str("target") == Some("access"))
    })
    .await;
    let lines = of(&lines, "treacherous-service-1");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].at("message"), &json!("about to fail"));
    let access = &lines[1];
    assert_eq!(access.at("target"), &json!("access"));
    assert_eq!(access.at("outcome"), &json!("failed"), "{access:?}");
    assert_eq!(access.at("error"), &json!(MARKER), "{access:?}");
    assert_eq!(access.at("level"), &json!("error"));
}
