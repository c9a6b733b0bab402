//! [`RequestContext`]: the middleware's tower `Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use tower_service::Service;
use tracing::Span;

use super::body::ResponseBody;
use super::config::Config;
use super::future::ResponseFuture;
use super::grpc::GrpcCall;
use super::level_from::LevelFrom;
use super::make_request_id::MakeRequestId;
use super::on_access::OnAccess;
use super::pending::Pending;
use super::request_id::RequestId;
use super::request_span::{request_span, SpanChoice};
use super::request_trace::RequestTrace;
use super::route::HttpRoute;
use crate::context::spans::enter_in_scope;
use crate::context::Context;
use crate::context::Known;

/// The context key an invalid client request id is kept under, when asked to.
const INVALID_KEY: &str = "invalid_request_id";

/// Runs every request of the inner service inside its own [`Context`]. Made by
/// [`RequestContextLayer`](super::RequestContextLayer); see the [module docs](super).
///
/// # Examples
///
/// ```
/// use tower::ServiceExt;
/// use tracing_ambient::http::RequestContextLayer;
/// use tower_layer::Layer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handler = tower::service_fn(|_req: http::Request<String>| async {
///     let id = tracing_ambient::request_id().unwrap();
///     let body = http_body_util::Full::new(bytes::Bytes::from(id));
///     Ok::<_, std::convert::Infallible>(http::Response::new(body))
/// });
/// let service = RequestContextLayer::new().layer(handler);
/// let request = http::Request::builder().header("x-request-id", "r-1").body(String::new()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.headers()["x-request-id"], "r-1");
/// # }
/// ```
#[derive(Clone)]
pub struct RequestContext<S> {
    inner: S,
    config: Arc<Config>,
    make_request_id: Arc<dyn MakeRequestId>,
    on_access: Arc<dyn OnAccess>,
    http_route: Arc<dyn HttpRoute>,
    level_from: Arc<dyn LevelFrom>,
}

// === impl RequestContext ===

impl<S> RequestContext<S> {
    pub(crate) fn new(
        inner: S,
        config: Arc<Config>,
        make_request_id: Arc<dyn MakeRequestId>,
        on_access: Arc<dyn OnAccess>,
        http_route: Arc<dyn HttpRoute>,
        level_from: Arc<dyn LevelFrom>,
    ) -> Self {
        RequestContext {
            inner,
            config,
            make_request_id,
            on_access,
            http_route,
            level_from,
        }
    }

    /// Returns a reference to the inner service.
    ///
    /// ```
    /// use tower_layer::Layer;
    ///
    /// let service = tracing_ambient::http::RequestContextLayer::new().layer(7);
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
    /// let mut service = tracing_ambient::http::RequestContextLayer::new().layer(7);
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
    /// let service = tracing_ambient::http::RequestContextLayer::new().layer(7);
    /// assert_eq!(service.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Takes the request id from the header when it is valid, else makes one; puts it in
    /// the context, the request header and the request extensions. Returns it as the header
    /// value, made once and shared by every header it goes in.
    fn request_id(&self, parts: &mut Parts, ctx: &Context) -> Option<HeaderValue> {
        let header = &self.config.header;
        #[cfg(feature = "tower-http")]
        let from_extension = parts
            .extensions
            .get::<tower_http::request_id::RequestId>()
            .and_then(|id| RequestId::try_from(id.header_value()).ok());
        #[cfg(not(feature = "tower-http"))]
        let from_extension: Option<RequestId> = None;
        let mut values = parts.headers.get_all(header).iter();
        let id = match (values.next(), values.next()) {
            // An id an outer tower-http layer set (under any header name) is already present.
            _ if from_extension.is_some() => from_extension,
            (Some(value), None) => match RequestId::try_from(value) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.keep_invalid(value.as_bytes(), ctx);
                    None
                }
            },
            // Several headers: which one the client meant is unknown, so none is taken.
            (Some(value), Some(_)) => {
                self.keep_invalid(value.as_bytes(), ctx);
                None
            }
            (None, _) => None,
        };
        let id = match id {
            Some(id) => Some(id),
            None => {
                // Inner services never see an invalid value either.
                parts.headers.remove(header);
                self.make_request_id.make_request_id(parts)
            }
        };
        let id = id?;
        // A validated id has nothing to escape.
        ctx.set_known_plain(Known::RequestId, id.as_str());
        // Inner layers (tower-http's `SetRequestId` among them) and handlers see the id the
        // lines carry.
        let value = id.to_header_value();
        parts.headers.insert(header.clone(), value.clone());
        #[cfg(feature = "tower-http")]
        parts
            .extensions
            .insert(tower_http::request_id::RequestId::new(value.clone()));
        parts.extensions.insert(id);
        Some(value)
    }

    fn keep_invalid(&self, raw: &[u8], ctx: &Context) {
        if self.config.keep_invalid {
            if let Some(kept) = RequestId::sanitise(raw) {
                ctx.set(INVALID_KEY, kept);
            }
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestContext<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
    ResBody: Body,
    ResBody::Error: fmt::Display,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let ctx = Context::new();
        // The request's latency counts from when its context was made: one clock read fewer.
        let start = ctx.read().created;
        let grpc = GrpcCall::detect(&parts.headers);
        self.config
            .deadline
            .apply(&parts.headers, &ctx, grpc.is_some());
        let id = self.request_id(&mut parts, &ctx);
        // Before any user code runs in the context: the span, the inner service's `call`.
        if let Some(level) = self.level_from.level_from(&parts) {
            ctx.set_level(level);
        }
        if let Some((level, limit)) = self.config.buffer {
            ctx.set_buffer(level, Some(limit));
        }
        let trace = self
            .config
            .trace_context
            .then(|| RequestTrace::read(&parts.headers));
        // Made only where a layer needs it (see `request_span`).
        let span_choice = SpanChoice::new(self.config.span);
        // Asked once, for the span and the access line.
        let route = if span_choice.makes_span() || self.config.access_line {
            self.http_route.http_route(&parts)
        } else {
            None
        };
        // Made inside the context, so that the span carries it wherever it is entered.
        let span = if span_choice.makes_span() {
            ctx.in_scope(|| request_span(&parts, route.as_deref()))
        } else {
            Span::none()
        };
        let pending = self.config.access_line.then(|| Pending {
            on_access: self.on_access.clone(),
            ctx: ctx.clone(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: self
                .on_access
                .request_headers()
                .iter()
                .filter_map(|name| Some((name.clone(), parts.headers.get(name)?.clone())))
                .collect(),
            start,
            route,
            grpc,
        });
        let response_header = id
            .filter(|_| self.config.response_header)
            .map(|value| (self.config.header.clone(), value));
        // Stored once the span has given its ids, if it is an OpenTelemetry span: no user code
        // runs in the context before this, so every line of the request carries the same ids.
        #[cfg(feature = "opentelemetry")]
        let trace = trace.map(|trace| {
            let (trace, tracked) = super::server_span::adopt(&span, trace);
            span_choice.learn(|| tracked);
            trace
        });
        #[cfg(feature = "opentelemetry")]
        if trace.is_none() {
            span_choice.learn(|| super::server_span::is_tracked(&span));
        }
        if let Some(trace) = trace {
            trace.store(&ctx);
        }
        let request = Request::from_parts(parts, body);
        // Some services do work in `call` itself, not only in the future.
        let inner = ctx.in_scope(|| {
            let _entered = enter_in_scope(&span);
            self.inner.call(request)
        });
        ResponseFuture::new(ctx.scope(inner), span, pending, response_header)
    }
}

impl<S: fmt::Debug> fmt::Debug for RequestContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
