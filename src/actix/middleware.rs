//! [`RequestContext`]: the builder and actix-web `Transform`; [`Middleware`]: its `Service`;
//! [`ResponseFuture`]: a request's future, run inside its context.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderMap as ActixHeaderMap, HeaderName as ActixHeaderName, HeaderValue as ActixHeaderValue,
};
use actix_web::http::Version as ActixVersion;
use actix_web::HttpMessage;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use pin_project_lite::pin_project;
use tracing::Span;

use super::body::ResponseBody;
use crate::context::spans::enter_in_scope;
use crate::context::Scoped;
use crate::http::{
    answered, failed, panicked, HttpRoute, IdExtension, LevelFrom, MakeRequestId, OnAccess,
    Outcome, Pending, RequestContextLayer, Rules, Start, TimeoutFormat,
};

/// Runs every request of an actix-web app inside its own [`Context`](crate::Context), as
/// [`RequestContextLayer`] does for tower: `App::new().wrap(RequestContext::new())`. See the
/// [module docs](super).
///
/// Its options are the tower layer's; one built for tower converts with `From`.
///
/// # Examples
///
/// ```
/// use actix_web::{web, App};
/// use tracing_ambient::actix::RequestContext;
///
/// let app = App::new()
///     .wrap(RequestContext::new().keep_invalid_request_id(true))
///     .route("/orders/{id}", web::get().to(|| async { "ok" }));
/// # drop(app);
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestContext {
    rules: Rules,
}

// === impl RequestContext ===

impl RequestContext {
    /// The middleware with the defaults of [`RequestContextLayer::new`]: `x-request-id` read,
    /// validated and echoed, W3C trace context continued or started, an access line per
    /// request.
    ///
    /// ```
    /// let app = actix_web::App::new().wrap(tracing_ambient::actix::RequestContext::new());
    /// # drop(app);
    /// ```
    pub fn new() -> Self {
        RequestContext {
            rules: Rules::default(),
        }
    }

    fn layer(self, f: impl FnOnce(RequestContextLayer) -> RequestContextLayer) -> Self {
        RequestContext {
            rules: f(RequestContextLayer { rules: self.rules }).rules,
        }
    }

    /// The header the request id is read from and written to. As
    /// [`RequestContextLayer::header`]. Defaults to `x-request-id`.
    ///
    /// ```
    /// use actix_web::http::header::HeaderName;
    ///
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .header(HeaderName::from_static("x-correlation-id"));
    /// # drop(mw);
    /// ```
    pub fn header(self, header: ActixHeaderName) -> Self {
        match to_name(&header) {
            Some(header) => self.layer(|l| l.header(header)),
            None => self,
        }
    }

    /// Whether the request id is put on the response. As
    /// [`RequestContextLayer::with_response_header`]. Defaults to `true`.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().with_response_header(false);
    /// # drop(mw);
    /// ```
    pub fn with_response_header(self, yes: bool) -> Self {
        self.layer(|l| l.with_response_header(yes))
    }

    /// Whether W3C `traceparent`/`tracestate` are read and the trace ids put in the context.
    /// As [`RequestContextLayer::with_trace_context`]. Defaults to `true`.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().with_trace_context(false);
    /// # drop(mw);
    /// ```
    pub fn with_trace_context(self, yes: bool) -> Self {
        self.layer(|l| l.with_trace_context(yes))
    }

    /// Whether an access line is written when each response ends. As
    /// [`RequestContextLayer::with_access_line`]. Defaults to `true`.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().with_access_line(false);
    /// # drop(mw);
    /// ```
    pub fn with_access_line(self, yes: bool) -> Self {
        self.layer(|l| l.with_access_line(yes))
    }

    /// Whether an invalid client request id is kept, sanitised, under `invalid_request_id`.
    /// As [`RequestContextLayer::keep_invalid_request_id`]. Defaults to `false`.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().keep_invalid_request_id(true);
    /// # drop(mw);
    /// ```
    pub fn keep_invalid_request_id(self, yes: bool) -> Self {
        self.layer(|l| l.keep_invalid_request_id(yes))
    }

    /// Whether each request gets a `tracing` span. As [`RequestContextLayer::with_span`].
    /// Defaults to a span only where a layer of the subscriber needs one.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().with_span(true);
    /// # drop(mw);
    /// ```
    pub fn with_span(self, yes: bool) -> Self {
        self.layer(|l| l.with_span(yes))
    }

    /// The hook that names a request's route. As [`RequestContextLayer::http_route`]; it
    /// sees the request as `http` 1 [`Parts`]. Where it gives `None`, actix-web's match
    /// pattern (`/orders/{id}`) is the route. Defaults to the match pattern alone.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .http_route(|_: &http::request::Parts| Some("/all".to_owned()));
    /// # drop(mw);
    /// ```
    pub fn http_route(self, http_route: impl HttpRoute) -> Self {
        self.layer(|l| l.http_route(http_route))
    }

    /// The hook that gives a request's context a level of its own. As
    /// [`RequestContextLayer::level_from`]. Defaults to none.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().level_from(
    ///     |req: &http::request::Parts| req.headers.contains_key("x-debug").then_some(tracing::Level::DEBUG),
    /// );
    /// # drop(mw);
    /// ```
    pub fn level_from(self, level_from: impl LevelFrom) -> Self {
        self.layer(|l| l.level_from(level_from))
    }

    /// Holds each request's lines from `level` up to `limit` bytes, written if the request
    /// fails. As [`RequestContextLayer::buffer`]. Defaults to no buffer.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new().buffer(tracing::Level::DEBUG, 64 * 1024);
    /// # drop(mw);
    /// ```
    pub fn buffer(self, level: tracing::Level, limit: usize) -> Self {
        self.layer(|l| l.buffer(level, limit))
    }

    /// The hook that makes an id for a request without a valid one. As
    /// [`RequestContextLayer::make_request_id`]. Defaults to a UUID v7.
    ///
    /// ```
    /// use tracing_ambient::http::RequestId;
    ///
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .make_request_id(|_: &http::request::Parts| RequestId::new("fixed").ok());
    /// # drop(mw);
    /// ```
    pub fn make_request_id(self, make_request_id: impl MakeRequestId) -> Self {
        self.layer(|l| l.make_request_id(make_request_id))
    }

    /// The hook that runs when a response ends. As [`RequestContextLayer::on_access`].
    /// Defaults to [`DefaultOnAccess`](crate::http::DefaultOnAccess).
    ///
    /// ```
    /// use tracing_ambient::http::DefaultOnAccess;
    ///
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .on_access(DefaultOnAccess::new().skip_path("/health"));
    /// # drop(mw);
    /// ```
    pub fn on_access(self, on_access: impl OnAccess) -> Self {
        self.layer(|l| l.on_access(on_access))
    }

    /// Each request's deadline. As [`RequestContextLayer::timeout`]. Defaults to none.
    ///
    /// ```
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .timeout(std::time::Duration::from_secs(5));
    /// # drop(mw);
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.layer(|l| l.timeout(timeout))
    }

    /// A header the client's deadline is read from. As
    /// [`RequestContextLayer::timeout_header`]. Defaults to none.
    ///
    /// ```
    /// use actix_web::http::header::HeaderName;
    /// use tracing_ambient::http::TimeoutFormat;
    ///
    /// let mw = tracing_ambient::actix::RequestContext::new()
    ///     .timeout_header(HeaderName::from_static("x-timeout-ms"), TimeoutFormat::Millis);
    /// # drop(mw);
    /// ```
    pub fn timeout_header(self, header: ActixHeaderName, format: TimeoutFormat) -> Self {
        match to_name(&header) {
            Some(header) => self.layer(|l| l.timeout_header(header, format)),
            None => self,
        }
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        Self::new()
    }
}

/// The same options, hooks included, as a tower layer built for another part of the service.
///
/// ```
/// use tracing_ambient::actix::RequestContext;
/// use tracing_ambient::http::RequestContextLayer;
///
/// let mw = RequestContext::from(RequestContextLayer::new().with_span(false));
/// # drop(mw);
/// ```
impl From<RequestContextLayer> for RequestContext {
    fn from(layer: RequestContextLayer) -> Self {
        RequestContext { rules: layer.rules }
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("config", &self.rules.config)
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestContext
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Transform = Middleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(Middleware {
            service,
            header: to_actix_name(&self.rules.config.header),
            rules: Arc::new(self.rules.clone()),
        }))
    }
}

/// The actix-web `Service` [`RequestContext`] wraps an app's service in.
pub struct Middleware<S> {
    service: S,
    // The request id header, as actix-web names it: converted once.
    header: Option<ActixHeaderName>,
    rules: Arc<Rules>,
}

impl<S> fmt::Debug for Middleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Middleware")
            .field("config", &self.rules.config)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for Middleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let mut parts = parts_of(&req);
        let Start {
            ctx,
            span,
            pending,
            response_header,
            request_id,
        } = self
            .rules
            .start(&mut parts, || req.match_pattern(), IdExtension::Returned);
        // The id the lines carry, converted once for the request and the response.
        let id = parts
            .headers
            .get(&self.rules.config.header)
            .and_then(to_actix_value);
        // The handler sees the id the lines carry, never an invalid one.
        if let Some(name) = &self.header {
            match &id {
                Some(value) => {
                    req.headers_mut().insert(name.clone(), value.clone());
                }
                None => {
                    req.headers_mut().remove(name);
                }
            }
        }
        if let Some(id) = request_id {
            req.extensions_mut().insert(id);
        }
        // The inner services' `call` runs user code too (guards, middleware, `wrap_fn`): a
        // panic there is said on the access line before it goes on, as one in the handler is.
        let called = ctx.in_scope(|| {
            let _entered = enter_in_scope(&span);
            catch_unwind(AssertUnwindSafe(|| self.service.call(req)))
        });
        let inner = match called {
            Ok(inner) => inner,
            Err(panic) => {
                let _entered = enter_in_scope(&span);
                panicked(&ctx, pending, None, None, &*panic);
                resume_unwind(panic)
            }
        };
        // `Some` only when the rules put the id on the response: it is the request header's.
        let response_header = response_header.and(self.header.clone().zip(id));
        ResponseFuture {
            inner: Some(ctx.scope(inner)),
            span,
            state: Some(State {
                pending,
                response_header,
            }),
        }
    }
}

pin_project! {
    /// The future of a request served by [`Middleware`], run inside the request's context.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<Scoped<F>>,
        span: Span,
        state: Option<State>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_none() && this.state.is_none() {
                return;
            }
            let _entered = enter_in_scope(this.span);
            this.inner.set(None);
            if let Some(pending) = this.state.take().and_then(|s| s.pending) {
                pending.finish(None, None, Outcome::dropped(), None);
            }
        }
    }
}

struct State {
    pending: Option<Pending>,
    response_header: Option<(ActixHeaderName, ActixHeaderValue)>,
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<ResponseBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(mut inner) = this.inner.as_mut().as_pin_mut() else {
            panic!("ResponseFuture polled after completion");
        };
        let entered = enter_in_scope(this.span);
        // actix-web lets a handler's panic end the connection: the access line says so first.
        let result = match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(panic) => {
                let ctx = inner.context().cloned().unwrap_or_default();
                this.inner.set(None);
                let pending = this.state.take().and_then(|s| s.pending);
                panicked(&ctx, pending, None, None, &*panic);
                drop(entered);
                resume_unwind(panic)
            }
        };
        let ctx = inner.context().cloned().unwrap_or_default();
        this.inner.set(None);
        let Some(state) = this.state.take() else {
            panic!("ResponseFuture polled after completion");
        };
        match result {
            Ok(mut response) => {
                if let Some((name, value)) = state.response_header {
                    // A header the service set itself wins.
                    if !response.headers().contains_key(&name) {
                        response.headers_mut().insert(name, value);
                    }
                }
                let status = StatusCode::from_u16(response.status().as_u16()).ok();
                if let Some(status) = status {
                    answered(&ctx, this.span, status);
                }
                drop(entered);
                let span = std::mem::replace(this.span, Span::none());
                let mut pending = state.pending;
                if let Some(pending) = pending.as_mut().filter(|p| p.route.is_none()) {
                    // Routed now: actix-web names the pattern from the resource it matched,
                    // with no second match of the path (only an unmatched request, a 404,
                    // has its path walked again, to find that it has no pattern).
                    pending.route = response.request().match_pattern();
                }
                Poll::Ready(Ok(response.map_body(|_, body| {
                    ResponseBody::new(body, ctx, span, status, pending)
                })))
            }
            Err(err) => {
                // actix-web answers with the error's response.
                let status =
                    StatusCode::from_u16(err.as_response_error().status_code().as_u16()).ok();
                failed(&ctx, state.pending, status, &err);
                Poll::Ready(Err(err))
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("context", &self.inner.as_ref().and_then(|i| i.context()))
            .finish_non_exhaustive()
    }
}

/// actix-web 4 speaks `http` 0.2: the request as the rules (and the hooks) read it, in
/// `http` 1 types, converted by bytes.
fn parts_of(req: &ServiceRequest) -> Parts {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::from_bytes(req.method().as_str().as_bytes()).unwrap_or_default();
    parts.uri = Uri::try_from(req.uri().to_string()).unwrap_or_default();
    parts.version = match req.version() {
        ActixVersion::HTTP_09 => Version::HTTP_09,
        ActixVersion::HTTP_10 => Version::HTTP_10,
        ActixVersion::HTTP_2 => Version::HTTP_2,
        ActixVersion::HTTP_3 => Version::HTTP_3,
        _ => Version::HTTP_11,
    };
    parts.headers = headers_of(req.headers());
    parts
}

fn headers_of(actix: &ActixHeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(actix.len());
    for (name, value) in actix.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn to_name(name: &ActixHeaderName) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_str().as_bytes()).ok()
}

fn to_actix_name(name: &HeaderName) -> Option<ActixHeaderName> {
    ActixHeaderName::from_bytes(name.as_str().as_bytes()).ok()
}

fn to_actix_value(value: &HeaderValue) -> Option<ActixHeaderValue> {
    ActixHeaderValue::from_bytes(value.as_bytes()).ok()
}
