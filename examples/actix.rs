//! The actix-web demo: a small shop behind `tracing_ambient::actix::RequestContext` on
//! 127.0.0.1, driven by a real HTTP client, then stopped. The server's JSON lines go to
//! stdout; what the client sends goes to stderr, marked `#`.
//!
//! ```text
//! cargo run --example actix --features actix
//! cargo run --example actix --features actix 2>/dev/null | jq -c '{level, message, requestId, userId, traceId, route}'
//! ```
//!
//! It sends requests with and without `x-request-id`, with a valid `traceparent`, one whose
//! handler sets the user id and spawns a task that carries the context, and one that fails
//! with a 500 (its debug lines, held by the context's buffer, are written before its error).

use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::{debug, error, info};
use tracing_ambient::actix::RequestContext;

async fn order(id: web::Path<u64>) -> String {
    info!(order_id = *id, "order read");
    format!("order {id}")
}

async fn place(user: web::Path<u64>) -> HttpResponse {
    // An auth layer would do this: every later line of the request carries it.
    tracing_ambient::set_user_id(*user);
    info!("placing an order");
    // The task carries the request's context; `actix_web::rt::spawn` alone would not.
    let receipt = tracing_ambient::spawn(async {
        info!("sending the receipt");
    });
    let _ = receipt.await;
    HttpResponse::Created().body("placed")
}

async fn fail() -> HttpResponse {
    debug!(attempt = 1, "query sent"); // held, written because the request fails
    error!("database down");
    HttpResponse::InternalServerError().body("sorry")
}

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
        "a valid x-request-id is kept; the access line's route is /orders/{id}",
    ),
    (
        "GET",
        "/orders/42",
        &[("x-request-id", "bad id \"*/")],
        "an invalid x-request-id is replaced, never echoed",
    ),
    (
        "GET",
        "/orders/7",
        &[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
        "a valid traceparent: the trace continues with a new span",
    ),
    (
        "POST",
        "/users/42/orders",
        &[],
        "the handler sets userId; a spawned task carries it",
    ),
    (
        "GET",
        "/fail",
        &[],
        "a 500: held debug lines, an error line, an error access line",
    ),
];

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = tracing_ambient::init();
    let server = HttpServer::new(|| {
        App::new()
            .wrap(RequestContext::new().buffer(tracing::Level::DEBUG, 64 * 1024))
            .route("/orders/{id}", web::get().to(order))
            .route("/users/{user}/orders", web::post().to(place))
            .route("/fail", web::get().to(fail))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);

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

    // Graceful: the workers finish what they serve (and their access lines) first.
    handle.stop(true).await;
    running.await??;
    Ok(())
}
