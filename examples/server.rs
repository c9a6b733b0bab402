//! A small shop API behind `RequestContextLayer`, served until Ctrl-C. Every JSON line on
//! stdout carries its request: id, user, trace.
//!
//! ```text
//! cargo run --example server                 # listens on 127.0.0.1:3000
//! ADDR=127.0.0.1:8080 cargo run --example server
//! curl -H 'authorization: Bearer 42' -X POST localhost:3000/orders
//! ```
//!
//! `examples/demo.rs` runs the same app and drives it with a client.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::{header::AUTHORIZATION, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use tracing_ambient::http::RequestContextLayer;

/// Background tasks started by requests, awaited before the process exits.
static BACKGROUND: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// The shop: its routes, an auth layer, and the request context around everything.
pub fn app() -> Router {
    Router::new()
        .route("/orders/{id}", get(get_order))
        .route("/orders", post(create_order))
        .route("/me", get(me))
        .route("/fail", get(fail))
        .route("/downstream", get(downstream))
        .layer(middleware::from_fn(auth))
        // Outermost: the context covers the auth layer, the handlers and the bodies.
        .layer(RequestContextLayer::new())
}

/// Sets the user id from `authorization: Bearer <user id>`, after the context exists: every
/// later line of the request, the access line included, carries it.
async fn auth(request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(user) = user {
        tracing_ambient::set_user_id(user);
        info!("authenticated");
    }
    next.run(request).await
}

async fn get_order(Path(id): Path<u64>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(2)).await;
    info!(order_id = id, "order loaded");
    format!("order {id}\n")
}

async fn create_order() -> impl IntoResponse {
    if tracing_ambient::user_id().is_none() {
        warn!("order without a user");
        return (StatusCode::UNAUTHORIZED, "log in first\n".to_owned());
    }
    let order_id = 1001;
    info!(order_id, "order placed");
    // The receipt goes out after the response, and still carries the request.
    let receipt = tracing_ambient::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        info!(order_id, "receipt e-mailed");
    });
    BACKGROUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(receipt);
    (StatusCode::CREATED, format!("order {order_id} placed\n"))
}

async fn me() -> impl IntoResponse {
    match tracing_ambient::user_id() {
        Some(user) => (StatusCode::OK, format!("user {user}\n")),
        None => (StatusCode::UNAUTHORIZED, "who are you?\n".to_owned()),
    }
}

async fn fail() -> impl IntoResponse {
    error!(db = "orders", "connection refused");
    (StatusCode::INTERNAL_SERVER_ERROR, "try again later\n")
}

/// What a handler sends to the next service: the trace continues there.
async fn downstream() -> impl IntoResponse {
    let mut headers = http::HeaderMap::new();
    tracing_ambient::http::inject_trace_context(&mut headers);
    let sql = tracing_ambient::sql::tag("SELECT * FROM orders WHERE id = $1");
    info!(%sql, "query tagged");
    format!(
        "traceparent: {}\ntracestate: {}\nsql: {sql}\n",
        tracing_ambient::traceparent().unwrap_or_default(),
        tracing_ambient::tracestate().unwrap_or_default(),
    )
}

/// Awaits the background tasks requests have started.
pub async fn drain_background() {
    let tasks = std::mem::take(&mut *BACKGROUND.lock().unwrap_or_else(|e| e.into_inner()));
    for task in tasks {
        let _ = task.await;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let _guard = tracing_ambient::init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            info!("shutting down: finishing open requests");
        })
        .await?;
    drain_background().await;
    info!("stopped");
    Ok(())
} // the guard flushes stdout here
