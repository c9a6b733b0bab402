//! [`RequestContext`]: the middleware's tower `Service`.

use std::fmt;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::start::{IdExtension, Rules, Start};
use crate::context::spans::enter_in_scope;

/// Runs every request of the inner service inside its own [`Context`](crate::Context). Made by
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
    rules: Rules,
}

// === impl RequestContext ===

impl<S> RequestContext<S> {
    pub(crate) fn new(inner: S, rules: Rules) -> Self {
        RequestContext { inner, rules }
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
        let Start {
            ctx,
            span,
            pending,
            response_header,
            request_id: _,
        } = self.rules.start(&mut parts, || None, IdExtension::Parts);
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
            .field("config", &self.rules.config)
            .finish_non_exhaustive()
    }
}
