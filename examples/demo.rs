//! The HTTP demo: the shop of `examples/server.rs` on 127.0.0.1, driven by a real HTTP client.
//! The server's JSON lines go to stdout; what the client sends goes to stderr, marked `#`.
//!
//! ```text
//! cargo run --example demo                  # port chosen by the system
//! cargo run --example demo 2>/dev/null | jq -c '{level, message, requestId, userId, traceId}'
//! DEMO_ADDR=127.0.0.1:3000 cargo run --example demo
//! ```
//!
//! It sends requests with and without `x-request-id`, with a valid and an invalid
//! `traceparent`, an authenticated request whose auth layer sets the user id, one whose
//! handler spawns a background task that carries the context, and one that fails with a 500.
//! `examples/tasks.rs` shows the same without HTTP.

#[path = "server.rs"]
#[allow(dead_code)]
mod server;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Method, path, headers, and what the request shows.
type Step = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const STEPS: &[Step] = &[
    (
        "GET",
        "/orders/42",
        &[],
        "no x-request-id: the server makes a UUID v7",
    ),
    (
        "GET",
        "/orders/42",
        &[("x-request-id", "demo-0001")],
        "a valid x-request-id is kept",
    ),
    (
        "GET",
        "/orders/42",
        &[("x-request-id", "bad id \"*/")],
        "an invalid x-request-id is replaced, never echoed",
    ),
    (
        "GET",
        "/downstream",
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ],
        "a valid traceparent: the trace continues with a new span",
    ),
    (
        "GET",
        "/downstream",
        &[(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        )],
        "an invalid traceparent (uppercase): a new trace starts",
    ),
    (
        "POST",
        "/orders",
        &[("authorization", "Bearer 42")],
        "authenticated: the auth layer sets userId; a background task carries it",
    ),
    (
        "GET",
        "/me",
        &[],
        "unauthenticated: 401, a warn access line",
    ),
    (
        "GET",
        "/fail",
        &[],
        "a 500: an error line and an error access line",
    ),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = tracing_ambient::init();
    let addr = std::env::var("DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, server::app())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    for (method, path, headers, what) in STEPS {
        eprintln!("# {method} {path} — {what}");
        let mut request = Request::builder()
            .method(*method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        let response = client.request(request.body(Full::default())?).await?;
        let status = response.status();
        let id = response.headers().get("x-request-id").cloned();
        let body = response.into_body().collect().await?.to_bytes();
        eprintln!(
            "#   -> {status}, x-request-id: {id:?}, body: {:?}",
            String::from_utf8_lossy(&body)
        );
    }

    server::drain_background().await;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
