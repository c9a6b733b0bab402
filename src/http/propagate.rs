//! [`PropagateContextLayer`]: the current request's identity on every outgoing call of an
//! HTTP client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Instant;

use http::{HeaderMap, HeaderName, Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::inject::inject_trace_context;
use super::request_id::RequestId;
use crate::context::Context;
use crate::trace_context::TraceParent;

/// The target of the line written for each outgoing call.
const TARGET: &str = "outgoing";

/// Carries the current request into every outgoing call of a tower HTTP client: a new
/// `traceparent` per call, the request's `tracestate`, and its request id.
///
/// For each request the client sends inside a request [`Context`]:
///
/// - `traceparent`: a child of the request's span, a new parent-id per call, the request's
///   trace id and flags (as [`inject_trace_context`] writes it; any value there is replaced);
/// - `tracestate`: the request's, when it came with one;
/// - the request id header (`x-request-id` unless set with [`header`](Self::header)): the
///   request's id, unless the caller set that header on this call itself, or the id is not a
///   valid [`RequestId`] (a context opened by hand is not validated).
///
/// Outside any context it changes nothing. With [`with_call_line`](Self::with_call_line), it
/// also writes one line per call when its response head arrives (or the call fails), with
/// the request's context: target `outgoing`, `method`, `host`, `path` (never the query
/// string), `status`, `latencyMs`, `traceparent` (the one sent, to find the call in the
/// callee's trace) and `error` when the call failed.
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.130001Z","level":"info","message":"outgoing call","requestId":"9f1c","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"53995c3f42cd8ad8","target":"outgoing","method":"GET","host":"stock:8080","path":"/items/7","status":200,"latencyMs":3.2,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"}
/// ```
///
/// # Examples
///
/// With hyper-util's legacy client:
///
/// ```
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::ServiceExt;
/// use tower_layer::Layer;
/// use tracing_ambient::http::PropagateContextLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
/// let client = PropagateContextLayer::new().with_call_line(true).layer(client);
/// // In a handler (a request context is current):
/// let request = http::Request::get("http://127.0.0.1:9/items/7").body(Empty::new()).unwrap();
/// let _response = client.oneshot(request); // carries traceparent and x-request-id
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PropagateContextLayer {
    header: HeaderName,
    call_line: bool,
}

impl PropagateContextLayer {
    /// Returns a layer that sets `traceparent`, `tracestate` and `x-request-id`, without call
    /// lines.
    ///
    /// ```
    /// let layer = tracing_ambient::http::PropagateContextLayer::new();
    /// # drop(layer);
    /// ```
    pub const fn new() -> Self {
        PropagateContextLayer {
            header: super::X_REQUEST_ID,
            call_line: false,
        }
    }

    /// Sets the header the request id is sent in. Defaults to `x-request-id`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::PropagateContextLayer::new()
    ///     .header(http::HeaderName::from_static("x-correlation-id"));
    /// # drop(layer);
    /// ```
    pub fn header(self, header: HeaderName) -> Self {
        PropagateContextLayer { header, ..self }
    }

    /// Sets whether one line is written per outgoing call. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::PropagateContextLayer::new().with_call_line(true);
    /// # drop(layer);
    /// ```
    pub fn with_call_line(self, yes: bool) -> Self {
        PropagateContextLayer {
            call_line: yes,
            ..self
        }
    }
}

impl Default for PropagateContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for PropagateContextLayer {
    type Service = PropagateContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateContext {
            inner,
            layer: self.clone(),
        }
    }
}

/// The client service of [`PropagateContextLayer`]: see there.
///
/// ```
/// use tower_layer::Layer;
///
/// let service = tracing_ambient::http::PropagateContextLayer::new().layer(7);
/// assert_eq!(*service.get_ref(), 7);
/// ```
#[derive(Debug, Clone)]
pub struct PropagateContext<S> {
    inner: S,
    layer: PropagateContextLayer,
}

// === impl PropagateContext ===

impl<S> PropagateContext<S> {
    /// Returns a reference to the inner service.
    ///
    /// ```
    /// use tower_layer::Layer;
    ///
    /// let service = tracing_ambient::http::PropagateContextLayer::new().layer(7);
    /// assert_eq!(*service.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Returns a mutable reference to the inner service.
    ///
    /// ```
    /// use tower_layer::Layer;
    ///
    /// let mut service = tracing_ambient::http::PropagateContextLayer::new().layer(7);
    /// *service.get_mut() = 8;
    /// assert_eq!(*service.get_ref(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Returns the inner service.
    ///
    /// ```
    /// use tower_layer::Layer;
    ///
    /// let service = tracing_ambient::http::PropagateContextLayer::new().layer(7);
    /// assert_eq!(service.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PropagateContext<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PropagateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let Some((ctx, sent)) = propagate(request.headers_mut(), &self.layer.header) else {
            return PropagateFuture::new(self.inner.call(request), None);
        };
        let call = self.layer.call_line.then(|| {
            let uri = request.uri();
            // The host and port only: an authority may carry `user:password@`.
            let host = match (uri.host(), uri.port_u16()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            };
            let method = request.method().clone();
            Call::new(ctx, method, host, uri.path().to_owned(), sent)
        });
        PropagateFuture::new(self.inner.call(request), call)
    }
}

/// Sets the current request's trace context and request id on an outgoing call's headers
/// (see [`PropagateContextLayer`]); returns the context and the `traceparent` sent, or `None`
/// outside any context, when nothing is changed.
pub(crate) fn propagate(
    headers: &mut HeaderMap,
    header: &HeaderName,
) -> Option<(Context, Option<TraceParent>)> {
    let ctx = Context::current()?;
    let sent = inject_trace_context(headers);
    if !headers.contains_key(header) {
        // A context opened by hand holds any id: only a valid one is sent.
        let id = ctx.request_id().and_then(|id| RequestId::new(&id).ok());
        if let Some(id) = id {
            headers.insert(header.clone(), id.to_header_value());
        }
    }
    Some((ctx, sent))
}

/// What the call line needs, kept from the call to its response.
pub(crate) struct Call {
    ctx: Context,
    method: Method,
    host: String,
    path: String,
    traceparent: Option<String>,
    start: Instant,
}

impl Call {
    /// Starts timing a call to `host` (and port, never credentials) and `path` (never the
    /// query string).
    pub(crate) fn new(
        ctx: Context,
        method: Method,
        host: String,
        path: String,
        sent: Option<TraceParent>,
    ) -> Self {
        Call {
            ctx,
            method,
            host,
            path,
            traceparent: sent.map(|tp| tp.to_string()),
            start: Instant::now(),
        }
    }

    /// Writes the call line: the status when a response came, else the error.
    pub(crate) fn log(self, status: Option<u16>, error: Option<&str>) {
        // Microseconds, as the access line has them.
        let latency_ms = (self.start.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let (method, host, path) = (self.method.as_str(), &*self.host, &*self.path);
        let traceparent = self.traceparent.as_deref();
        self.ctx.in_scope(|| match error {
            None => tracing::info!(
                target: TARGET,
                method,
                host,
                path,
                status,
                latencyMs = latency_ms,
                traceparent,
                "outgoing call"
            ),
            Some(error) => tracing::warn!(
                target: TARGET,
                method,
                host,
                path,
                latencyMs = latency_ms,
                traceparent,
                error,
                "outgoing call failed"
            ),
        });
    }
}

pin_project! {
    /// The response future of [`PropagateContext`]: the inner client's, and the call line
    /// when its response head arrives or it fails.
    pub struct PropagateFuture<F> {
        #[pin]
        inner: F,
        // Taken once, when the call ends.
        call: Option<Call>,
    }
}

impl<F> PropagateFuture<F> {
    fn new(inner: F, call: Option<Call>) -> Self {
        PropagateFuture { inner, call }
    }
}

impl<F, B, E> Future for PropagateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(call) = this.call.take() {
            match &result {
                Ok(response) => call.log(Some(response.status().as_u16()), None),
                Err(err) => call.log(None, Some(&err.to_string())),
            }
        }
        Poll::Ready(result)
    }
}

impl<F> fmt::Debug for PropagateFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PropagateFuture")
            .field("call_line", &self.call.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;

    use tower::ServiceExt;
    use tracing_subscriber::prelude::*;

    use crate::test_support::MockMakeWriter;
    use crate::JsonLayer;

    #[test]
    fn call_line_host_has_no_credentials() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let client = tower::service_fn(|request: Request<()>| async move {
            // The client still gets the URI as the caller wrote it.
            let authority = request.uri().authority().unwrap().as_str().to_owned();
            assert!(authority.starts_with("user:hunter2@stock"), "{authority}");
            Ok::<_, Infallible>(Response::new(()))
        });
        let client = PropagateContextLayer::new()
            .with_call_line(true)
            .layer(client);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = Context::new().with_request_id("creds-1");
        for uri in [
            "http://user:hunter2@stock:8080/items?token=x",
            "http://user:hunter2@stock/items",
        ] {
            let request = Request::get(uri).body(()).unwrap();
            let response = runtime.block_on(ctx.clone().scope(client.clone().oneshot(request)));
            assert!(response.is_ok(), "{uri}");
        }
        let text = writer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["host"], "stock:8080");
        assert_eq!(lines[0]["path"], "/items");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["requestId"], "creds-1");
        assert_eq!(lines[1]["host"], "stock");
        assert!(
            !text.contains("hunter2") && !text.contains("token"),
            "{text}"
        );
    }
}
