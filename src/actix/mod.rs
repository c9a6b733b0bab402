//! actix-web 4 middleware (feature `actix`): each request runs inside its own
//! [`Context`](crate::Context), with the same request id, W3C trace context, response header
//! and access line as the tower middleware, [`http::RequestContextLayer`](crate::http::RequestContextLayer).
//!
//! # Example
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use tracing_ambient::actix::RequestContext;
//!
//! async fn order(id: web::Path<u64>) -> String {
//!     tracing::info!(order_id = *id, "order read"); // carries requestId, traceId, spanId
//!     format!("order {id}")
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let _guard = tracing_ambient::init();
//!     HttpServer::new(|| {
//!         App::new()
//!             .wrap(RequestContext::new())
//!             .route("/orders/{id}", web::get().to(order))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! A request to `/orders/7` writes the handler's line and, when the response body has been
//! sent, the access line, both with the request's ids:
//!
//! ```text
//! {"timestamp":"2026-12-05T01:46:00.905075Z","level":"info","message":"order read","requestId":"demo-0001","traceId":"241c4780fe714b85d35b1c30a8bce396","spanId":"2752d7970f2cc907","target":"shop","order_id":7}
//! {"timestamp":"2026-12-05T01:46:00.905099Z","level":"info","message":"request completed","requestId":"demo-0001","traceId":"241c4780fe714b85d35b1c30a8bce396","spanId":"2752d7970f2cc907","target":"access","method":"GET","path":"/orders/7","status":200,"latencyMs":0.054,"size":7,"outcome":"completed","route":"/orders/{id}"}
//! ```
//!
//! # Behaviour
//!
//! Everything the [`http`](crate::http) module documents holds, from the same code: the
//! request id (a valid incoming `x-request-id` is kept, else [`MakeRequestId`] makes one,
//! a UUID v7 by default; an invalid one is replaced, never echoed), the trace (one valid
//! `traceparent` is continued with a new span id, else a trace is started), deadlines, the
//! context's level and buffer, and the access line written by the [`OnAccess`] hook when the
//! response body ends (or fails, or is dropped).
//!
//! What is actix-web's own:
//!
//! - The route on the access line and the span is the resource's match pattern
//!   (`/orders/{id}`), never the raw path; where none matched (the default service) there is
//!   no route. An [`HttpRoute`] hook, when set, is asked first. The access line takes the
//!   pattern from the resource actix-web routed the request to, once it answered: a request
//!   whose handler panicked has none (unless a span was made, which names it up front).
//! - actix-web 4 uses the `http` 0.2 crate. The hooks ([`MakeRequestId`], [`HttpRoute`],
//!   [`LevelFrom`]) see the request as `http` 1 [`Parts`](http::request::Parts), its
//!   headers converted by bytes, with empty extensions (actix-web's are of its own type);
//!   the handler sees the request id header the lines carry and finds the
//!   [`RequestId`](crate::http::RequestId) in the request's extensions.
//! - A panic in the handler, in an inner middleware or guard, or in the response body:
//!   actix-web lets it end the connection, with no response. The access line is written
//!   first, with outcome `panicked` and the panic's message, at the `error` level, after
//!   the lines the context held back; with [`install_panic_hook`](crate::install_panic_hook)
//!   (which [`init`](crate::init) calls) the panic's own line carries the request's context
//!   too.
//! - An error the app's service returns (`Err(actix_web::Error)`) is written as outcome
//!   `failed`, with the status the error's `ResponseError::status_code` gives. actix-web
//!   turns that error into its response outside every middleware, so that response carries
//!   no `x-request-id` header: an app that wants the id on error responses answers with
//!   `Ok(HttpResponse)` (what handlers' `Err` values become anyway) instead of an inner
//!   middleware's `Err`.
//! - A response that upgrades the connection (`101 Switching Protocols`, a WebSocket
//!   session) streams its body for the whole session: its access line is written when the
//!   session ends, with the session's length as latency and its bytes as size (under
//!   tower, hyper ends the response at the 101).
//! - A `HEAD` request's access line has `size` 0, as under tower: actix-web's HTTP/1 polls the
//!   body of a response to `HEAD` and throws it away, and those bytes are not counted.
//!
//! # Across tasks
//!
//! `actix_web::rt::spawn` loses the context, as `tokio::spawn` does.
//! [`tracing_ambient::spawn`](crate::spawn) keeps it: actix-web runs on a Tokio runtime, and
//! the task goes there (it must be `Send`). A task that is not `Send` carries it with
//! [`InCurrentContext::in_current_context`](crate::InCurrentContext::in_current_context):
//!
//! ```
//! use tracing_ambient::InCurrentContext;
//!
//! # async fn handler() {
//! actix_web::rt::spawn(async { tracing::info!("carries the request") }.in_current_context());
//! # }
//! ```
//!
//! [`MakeRequestId`]: crate::http::MakeRequestId
//! [`OnAccess`]: crate::http::OnAccess
//! [`HttpRoute`]: crate::http::HttpRoute
//! [`LevelFrom`]: crate::http::LevelFrom

mod body;
mod middleware;

pub use self::body::ResponseBody;
pub use self::middleware::{Middleware, RequestContext, ResponseFuture};
