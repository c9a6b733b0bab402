//! HTTP middleware that opens a request [`Context`](crate::Context) for every request: request
//! id, W3C trace context, response header and an access line.
//!
//! [`RequestContextLayer`] is a tower `Layer`, so it works in axum, tonic, hyper and any tower
//! stack. It needs the `http` feature (on by default); the trace-context types
//! ([`TraceParent`], [`TraceState`]) live in [`trace_context`](crate::trace_context), which
//! needs no feature, and are re-exported here.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tracing_ambient::http::RequestContextLayer;
//!
//! async fn order() -> &'static str {
//!     tracing::info!(order_id = 42, "order placed"); // carries requestId, traceId, spanId
//!     "ok"
//! }
//!
//! let app: Router = Router::new()
//!     .route("/orders/42", get(order))
//!     // .layer(auth) — inner layers run inside the context and may call `set_user_id`
//!     .layer(RequestContextLayer::new()); // outermost
//! ```
//!
//! ```text
//! {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","requestId":"0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"53995c3f42cd8ad8","target":"shop::orders","order_id":42}
//! {"timestamp":"2026-11-24T14:02:12.125001Z","level":"info","message":"request completed","requestId":"0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"53995c3f42cd8ad8","target":"access","method":"GET","path":"/orders/42","status":200,"latencyMs":2.871,"size":2,"outcome":"completed"}
//! ```
//!
//! # The context
//!
//! The context is opened before the inner service is called and stays current while the
//! inner service's future and then the response body are polled, so every inner layer (an
//! auth layer calling [`set_user_id`](crate::set_user_id)), the handler, and a streaming body
//! log with it. Put the layer outermost (last `.layer(..)` call in axum) so that it covers
//! everything, and apply it once.
//!
//! # Request id
//!
//! The id comes from the `x-request-id` header ([`RequestContextLayer::header`]) when there is
//! exactly one such header and its value is valid: 1 to 128 characters of
//! `A-Z a-z 0-9 . _ : @ + / = -` (see [`RequestId`]). Otherwise one is made by the
//! [`MakeRequestId`] hook, a UUID v7 by default.
//!
//! ## Precedence
//!
//! A valid id already present wins. An invalid one is never echoed: not on a line, not in a
//! response header, not in an SQL comment; it is removed from the request before the inner
//! service sees it. [`RequestContextLayer::keep_invalid_request_id`] keeps a sanitised,
//! truncated copy under its own key.
//!
//! The chosen id is written back into the request header and inserted into the request
//! extensions as a [`RequestId`], and set on the response header unless the service set that
//! header itself. tower-http's `SetRequestIdLayer` placed inside this layer therefore keeps
//! the same id (it never overrides an existing header), and placed outside it, its id is
//! the one taken.
//!
//! # Trace context
//!
//! With exactly one valid `traceparent` ([`TraceParent`] lists the rules), the request
//! continues that trace: the context gets its trace id, the parent id is kept (see
//! [`parent_span_id`]) and a valid `tracestate` is kept (W3C Trace Context Level 2: a member
//! whose key repeats an earlier one is dropped). Otherwise (absent, invalid, or several
//! headers) a new trace starts with a random trace id, and any `tracestate` is dropped.
//! Either way the request gets a new random span id (with OpenTelemetry, its server span's
//! ids: see [With OpenTelemetry](#with-opentelemetry)). Call [`inject_trace_context`] in each
//! outgoing call to continue the trace: every call gets its own parent-id, a child of the
//! request's span, which it returns so it can be logged.
//!
//! # Request span
//!
//! A request can run inside a `tracing` span at `info`, opened inside its context (so the
//! span carries the context wherever it is entered) and closed when the request ends. It is
//! named and fielded after OpenTelemetry's HTTP server conventions, for a tracing-opentelemetry
//! layer: name `HTTP request`, `otel.name` = `{method} {route}` (or `{method}` without a
//! route), `otel.kind = "server"`, `http.request.method`, `url.path` (without the query
//! string), `http.route` when the [`HttpRoute`] hook names it, and
//! `http.response.status_code`, recorded when the response is made. The inner service's
//! future, the response body, the handler's drop-time lines and the access line all run
//! inside it.
//!
//! The span is made only where something needs it. The request's lines, its access line and
//! the spans made inside it carry the context without it, and a span costs its registry slot,
//! its fields and every layer's callbacks. So by default it is made where a
//! tracing-opentelemetry layer tracks it (feature `opentelemetry`; the first request under a
//! subscriber makes it to learn whether one does), and [`RequestContextLayer::with_span`]
//! says `true` (always, for a layer of your own that reads it) or `false` (never). Without
//! the `opentelemetry` feature the default is no span. The lines are the same either way.
//!
//! ```text
//! HTTP request{otel.name="GET /orders/{id}" otel.kind="server" http.request.method="GET" url.path="/orders/42" http.route="/orders/{id}" http.response.status_code=200}
//! ```
//!
//! ## With OpenTelemetry
//!
//! With the `opentelemetry` feature and a tracing-opentelemetry 0.34 layer in the
//! subscriber, the request span is the OpenTelemetry server span, and the request's trace
//! context is that span's:
//!
//! - its parent is the request's valid `traceparent` (a remote parent, with the
//!   `tracestate`); without one it starts a new trace, even inside a span of the
//!   application's own (a server span's parent is its caller, never an unrelated span);
//! - its ids, as exported, are the request's `traceId` and `spanId`, and its sampled flag the
//!   request's trace flags: on every line of the request (the access line, and lines outside
//!   any OpenTelemetry span, included), in [`traceparent`],
//!   [`sql::tag`](crate::sql::tag) and the outgoing calls of [`inject_trace_context`] and
//!   [`PropagateContextLayer`]. A line logged in a span inside it carries that span's
//!   `spanId` (see [`otel`](crate::otel)).
//!
//! The middleware sets the parent right after making the span and then starts it, before
//! anything enters it or logs in it: tracing-opentelemetry decides a span's ids when it starts
//! it, and refuses a new parent afterwards. Without the OpenTelemetry layer, with the span
//! filtered out of it, or with the span switched off, the middleware's own ids are used, as
//! described above.
//!
//! ```
//! # #[cfg(feature = "opentelemetry")] {
//! use axum::{routing::get, Router};
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_ambient::http::RequestContextLayer;
//! use tracing_subscriber::prelude::*;
//!
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     // .with_batch_exporter(otlp_exporter)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("shop")))
//!     .with(tracing_ambient::JsonLayer::stdout())
//!     .init();
//! // Each request's lines carry the trace id and span id of its exported server span.
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "ok" }))
//!     .layer(RequestContextLayer::new());
//! # }
//! ```
//!
//! # Access line
//!
//! When the request ends (its body sent, its future or body dropped, or the inner service
//! failed), the [`OnAccess`] hook runs with the request's context current. A request whose
//! client went away is torn down in order: the inner future or body is dropped first, inside
//! the context, so the handler's drop-time lines carry the request and come before the
//! access line.
//!
//! The default, [`DefaultOnAccess`], logs one line with the method, the path without the
//! query string, the status, the latency in milliseconds and the bytes sent, at `error` for
//! 5xx, `warn` for 4xx and `info` otherwise, under the keys of a [`Schema`](crate::Schema)
//! ([`DefaultOnAccess::schema`]; `latencyMs` in the default one). No request header is
//! written unless named, and `authorization` and `cookie` never are.
//!
//! The route template the request matched (`/orders/{id}`) is on the line as `route` when the
//! [`HttpRoute`] hook names it. Health checks can be left out
//! ([`DefaultOnAccess::skip_path`], [`DefaultOnAccess::skip_path_prefix`]: no access line,
//! the rest of the request as usual), and each status class given its own level
//! ([`DefaultOnAccess::success_level`] and the others under "Level" there).
//!
//! # gRPC
//!
//! The layer works in a tonic server, since gRPC metadata are HTTP/2 headers: the request id
//! comes from `x-request-id` metadata, the trace from `traceparent` and `tracestate`, and the
//! id goes back in the response's `x-request-id` metadata.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use tonic::body::Body;
//! use tonic::server::NamedService;
//! use tonic::transport::Server;
//! use tracing_ambient::http::RequestContextLayer;
//!
//! // `service` is any tonic service, such as tonic-build's `ShopServer::new(MyShop)`.
//! async fn serve<S>(service: S) -> Result<(), tonic::transport::Error>
//! where
//!     S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
//!         + NamedService
//!         + Clone
//!         + Send
//!         + Sync
//!         + 'static,
//!     S::Future: Send + 'static,
//! {
//!     Server::builder()
//!         .layer(RequestContextLayer::new())
//!         .add_service(service)
//!         .serve("127.0.0.1:50051".parse().unwrap())
//!         .await
//! }
//! ```
//!
//! A request whose `content-type` is `application/grpc` (alone, or with `+proto`, `+json` or
//! parameters) is a gRPC call. Its HTTP status is 200 for most errors: the call's own status
//! comes in the `grpc-status` trailer after the last message, or in the response headers of a
//! trailers-only response (an error before any message). The access line's `path` is the
//! gRPC method (`/package.Service/Method`), and it adds `grpcStatus` (the number),
//! `grpcCode` (its name) and `grpcMessage` (the `grpc-message`, percent-decoded, cut to 512
//! bytes). Its level comes from the gRPC status, after OpenTelemetry's gRPC conventions,
//! which name the codes that mean the server failed:
//!
//! | gRPC status | level |
//! | --- | --- |
//! | `OK` (0) | `info` |
//! | `UNKNOWN` (2), `DEADLINE_EXCEEDED` (4), `UNIMPLEMENTED` (12), `INTERNAL` (13), `UNAVAILABLE` (14), `DATA_LOSS` (15), and any number gRPC does not define | `error` |
//! | `CANCELLED` (1), `INVALID_ARGUMENT` (3), `NOT_FOUND` (5), `ALREADY_EXISTS` (6), `PERMISSION_DENIED` (7), `RESOURCE_EXHAUSTED` (8), `FAILED_PRECONDITION` (9), `ABORTED` (10), `OUT_OF_RANGE` (11), `UNAUTHENTICATED` (16) | `warn` |
//!
//! A call that failed or panicked is still `error`. A call that ended without a status (the
//! client went away mid-stream, or the response was not gRPC) has no gRPC keys, and its level
//! follows the HTTP rules above. gRPC-Web (`application/grpc-web`) is not recognised: its
//! trailers travel inside the body.
//!
//! ```text
//! {"timestamp":"2026-11-24T14:02:12.125001Z","level":"warn","message":"request completed","requestId":"9f1c","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"53995c3f42cd8ad8","target":"access","method":"POST","path":"/shop.Orders/Get","status":200,"latencyMs":1.204,"size":0,"outcome":"completed","grpcStatus":5,"grpcCode":"NOT_FOUND","grpcMessage":"order 7 not found"}
//! ```
//!
//! # Panics in handlers
//!
//! With [`install_panic_hook`](crate::install_panic_hook) (which [`init`](crate::init) calls),
//! a panic in a handler is logged on the panicking thread inside the request's context, so
//! the line carries the request id. With tower-http's `CatchPanicLayer` inside this layer,
//! the request then ends with a 500 and an `error` access line.

// The trace-context types were first published here; these paths keep compiling.
pub use crate::trace_context::{
    parent_span_id, traceparent, tracestate, InvalidTraceParent, InvalidTraceState, TraceParent,
    TraceState,
};

mod access;
mod access_callsite;
mod body;
mod config;
mod deadline;
mod future;
mod grpc;
mod inject;
mod layer;
mod level_from;
mod make_request_id;
mod on_access;
mod pending;
mod propagate;
mod request_id;
mod request_span;
mod request_trace;
#[cfg(feature = "reqwest")]
mod reqwest;
mod route;
#[cfg(feature = "opentelemetry")]
mod server_span;
mod service;
mod start;

pub use self::{
    access::{Access, Outcome},
    body::ResponseBody,
    future::ResponseFuture,
    grpc::GrpcCode,
    inject::inject_trace_context,
    layer::RequestContextLayer,
    level_from::LevelFrom,
    make_request_id::{DefaultMakeRequestId, MakeRequestId},
    on_access::{DefaultOnAccess, OnAccess},
    propagate::{PropagateContext, PropagateContextLayer, PropagateFuture},
    request_id::{InvalidRequestId, RequestId},
    route::HttpRoute,
    service::RequestContext,
};

pub use self::deadline::TimeoutFormat;
// What the actix-web middleware shares with the tower one.
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use self::reqwest::PropagateContextMiddleware;
#[cfg(feature = "actix")]
pub(crate) use self::{
    pending::{answered, failed, panicked, Pending},
    start::{IdExtension, Rules, Start},
};

/// The default request id header, `x-request-id`.
///
/// ```
/// assert_eq!(tracing_ambient::http::X_REQUEST_ID, "x-request-id");
/// ```
pub const X_REQUEST_ID: ::http::HeaderName = ::http::HeaderName::from_static("x-request-id");

/// The W3C `traceparent` header.
///
/// ```
/// assert_eq!(tracing_ambient::http::TRACEPARENT, "traceparent");
/// ```
pub const TRACEPARENT: ::http::HeaderName = ::http::HeaderName::from_static("traceparent");

/// The W3C `tracestate` header.
///
/// ```
/// assert_eq!(tracing_ambient::http::TRACESTATE, "tracestate");
/// ```
pub const TRACESTATE: ::http::HeaderName = ::http::HeaderName::from_static("tracestate");

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;
    use tower_layer::Layer;
    use tracing_subscriber::prelude::*;

    use crate::test_support::MockMakeWriter;
    use crate::JsonLayer;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn lines(writer: &MockMakeWriter) -> Vec<serde_json::Value> {
        writer
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs one request through the layer around a handler that logs and echoes the
    /// context, and returns the response (body collected) and the lines.
    fn run(
        layer: RequestContextLayer,
        request: Request<()>,
    ) -> (Response<Bytes>, Vec<serde_json::Value>) {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: Request<()>| async {
            tracing::info!("handled");
            let body = format!(
                "{}|{}|{}",
                crate::request_id().unwrap_or_default(),
                crate::traceparent().unwrap_or_default(),
                crate::tracestate().unwrap_or_default()
            );
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = runtime.block_on(async {
            let response = layer.layer(handler).oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            Response::from_parts(parts, bytes)
        });
        (response, lines(&writer))
    }

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/orders/7?token=secret");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn valid_request_id_is_kept_everywhere() {
        let (response, lines) = run(
            RequestContextLayer::new(),
            request(&[("x-request-id", "abc-1")]),
        );
        assert_eq!(response.headers()["x-request-id"], "abc-1");
        assert!(std::str::from_utf8(response.body())
            .unwrap()
            .starts_with("abc-1|"));
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line["requestId"], "abc-1");
        }
        assert_eq!(lines[1]["target"], "access");
        assert_eq!(lines[1]["path"], "/orders/7");
        assert!(lines[1].get("query").is_none());
        assert_eq!(lines[1]["status"], 200);
    }

    #[test]
    fn invalid_request_id_is_replaced_and_optionally_kept_sanitised() {
        // Each byte outside `A-Z a-z 0-9 . _ : @ + / = -` becomes `_`; only when asked.
        for (keep, kept) in [
            (None, None),
            (Some(false), None),
            (Some(true), Some("bad_id__/")),
        ] {
            let layer = match keep {
                None => RequestContextLayer::new(),
                Some(keep) => RequestContextLayer::new().keep_invalid_request_id(keep),
            };
            let (response, lines) = run(layer, request(&[("x-request-id", "bad id */")]));
            let id = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(id.len(), 36, "a UUID v7: {id}");
            assert_eq!(lines.len(), 2, "the handler's line and the access line");
            for line in &lines {
                assert_eq!(line["requestId"], id.as_str());
                assert_eq!(
                    line.get("invalidRequestId").and_then(|v| v.as_str()),
                    kept,
                    "keep_invalid_request_id: {keep:?}: {line}"
                );
            }
        }
    }

    #[test]
    fn valid_traceparent_is_continued_with_a_new_span() {
        let (response, lines) = run(
            RequestContextLayer::new(),
            request(&[
                (TRACEPARENT.as_str(), TP),
                (TRACESTATE.as_str(), "rojo=1, congo=2"),
            ]),
        );
        let body = std::str::from_utf8(response.body()).unwrap();
        let parts: Vec<&str> = body.split('|').collect();
        let span = lines[0]["spanId"].as_str().unwrap();
        assert_eq!(lines[0]["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(span, "00f067aa0ba902b7");
        assert_eq!(
            parts[1],
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span}-01")
        );
        assert_eq!(parts[2], "rojo=1,congo=2");
    }

    #[test]
    fn invalid_traceparent_restarts_and_drops_tracestate() {
        let upper = TP.to_uppercase();
        let (response, lines) = run(
            RequestContextLayer::new(),
            request(&[
                (TRACEPARENT.as_str(), &upper),
                (TRACESTATE.as_str(), "rojo=1"),
            ]),
        );
        let trace = lines[0]["traceId"].as_str().unwrap();
        assert_eq!(trace.len(), 32);
        assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(std::str::from_utf8(response.body()).unwrap().ends_with('|'));
    }

    #[test]
    fn status_sets_the_access_level() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for status in [200u16, 404, 503] {
            let handler = tower::service_fn(move |_: Request<()>| async move {
                let mut response = Response::new(Full::new(Bytes::from_static(b"x")));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                Ok::<_, Infallible>(response)
            });
            runtime.block_on(async {
                let response = RequestContextLayer::new()
                    .layer(handler)
                    .oneshot(Request::new(()))
                    .await
                    .unwrap();
                response.into_body().collect().await.unwrap();
            });
        }
        let levels: Vec<_> = lines(&writer).iter().map(|l| l["level"].clone()).collect();
        assert_eq!(levels, ["info", "warn", "error"]);
    }

    #[test]
    fn dropped_body_logs_an_aborted_line() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"unsent"))))
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = runtime.block_on(
            RequestContextLayer::new()
                .layer(handler)
                .oneshot(Request::new(())),
        );
        assert!(writer.text().is_empty());
        drop(response);
        let lines = lines(&writer);
        assert_eq!(lines[0]["outcome"], "aborted");
        assert_eq!(lines[0]["size"], 0);
        assert_eq!(lines[0]["level"], "info");
    }

    #[test]
    fn dropped_future_logs_an_aborted_line_without_status() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: Request<()>| async {
            tracing::info!("started");
            std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>().await
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let request = request(&[("x-request-id", "gone-1")]);
        let future = RequestContextLayer::new().layer(handler).oneshot(request);
        let polled = runtime
            .block_on(async { tokio::time::timeout(std::time::Duration::ZERO, future).await });
        assert!(polled.is_err(), "the handler never answers");
        let lines = lines(&writer);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["requestId"], "gone-1");
        assert_eq!(lines[1]["outcome"], "aborted");
        assert_eq!(lines[1]["level"], "warn");
        assert!(lines[1].get("status").is_none() && lines[1].get("size").is_none());
    }

    #[test]
    fn no_access_line_when_switched_off() {
        let (_, lines) = run(
            RequestContextLayer::new().with_access_line(false),
            request(&[]),
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "handled");
    }
}
