//! [`ResponseFuture`]: the future of a request running inside its context.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};

use http::{HeaderName, HeaderValue, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tracing::Span;

use super::access::Outcome;
use super::body::ResponseBody;
use super::pending::{answered, failed, Pending};
use crate::context::spans::enter_in_scope;
use crate::context::Scoped;

pin_project! {
    /// The response future of [`RequestContext`](super::RequestContext): runs the inner
    /// service's future with the request's context current, sets the request id header on the
    /// response, and wraps the body in a [`ResponseBody`].
    ///
    /// When the inner service fails, the access hook runs at once. When this future is dropped
    /// before it completes (the client went away), the inner future is dropped first, inside
    /// the request's context, so the handler's own drop-time lines come first and carry the
    /// request; then the access hook runs.
    ///
    /// ```
    /// use tower::{Service, ServiceExt};
    /// use tower_layer::Layer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let handler = tower::service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// });
    /// let mut service = tracing_ambient::http::RequestContextLayer::new().layer(handler);
    /// let future: tracing_ambient::http::ResponseFuture<_> =
    ///     service.ready().await.unwrap().call(http::Request::new(()));
    /// assert!(future.await.unwrap().headers().contains_key("x-request-id"));
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        // `None` once the inner future completed, and while this future is dropped: the
        // inner one goes first.
        #[pin]
        inner: Option<Scoped<F>>,
        // Entered while the inner future is polled or dropped; moves to the body.
        span: Span,
        // Taken once, when the future completes or is dropped.
        state: Option<State>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_none() && this.state.is_none() {
                // Completed: nothing is left to drop inside the span.
                return;
            }
            let _entered = enter_in_scope(this.span);
            // `Scoped` drops the handler's future inside the context; its drop-time lines
            // (a guard, a rolled back transaction) precede the access line.
            this.inner.set(None);
            if let Some(pending) = this.state.take().and_then(|s| s.pending) {
                pending.finish(None, None, Outcome::dropped(), None);
            }
        }
    }
}

struct State {
    pending: Option<Pending>,
    response_header: Option<(HeaderName, HeaderValue)>,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: Scoped<F>,
        span: Span,
        pending: Option<Pending>,
        response_header: Option<(HeaderName, HeaderValue)>,
    ) -> Self {
        ResponseFuture {
            inner: Some(inner),
            span,
            state: Some(State {
                pending,
                response_header,
            }),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display,
    B: Body,
    B::Error: fmt::Display,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(mut inner) = this.inner.as_mut().as_pin_mut() else {
            panic!("ResponseFuture polled after completion");
        };
        // The scope is `Scoped`'s, pushed inside the span and popped before it is exited.
        let entered = enter_in_scope(this.span);
        let result = ready!(inner.as_mut().poll(cx));
        let ctx = inner.context().cloned().unwrap_or_default();
        // Finished (`Scoped` has dropped the handler's future inside the context already):
        // dropping it now, with the span entered, leaves the drop of this future nothing to do.
        this.inner.set(None);
        let Some(state) = this.state.take() else {
            panic!("ResponseFuture polled after completion");
        };
        match result {
            Ok(mut response) => {
                if let Some((name, value)) = state.response_header {
                    // A header the service set itself wins.
                    response.headers_mut().entry(name).or_insert(value);
                }
                let mut pending = state.pending;
                if let Some(pending) = &mut pending {
                    // A trailers-only gRPC response carries its status in the headers.
                    pending.observe_grpc(response.headers());
                }
                let status = response.status();
                answered(&ctx, this.span, status);
                drop(entered);
                // The span lives on with the body, and closes when the body is dropped.
                let span = std::mem::replace(this.span, Span::none());
                Poll::Ready(Ok(
                    response.map(|body| ResponseBody::new(body, ctx, span, status, pending))
                ))
            }
            Err(err) => {
                failed(&ctx, state.pending, None, &err);
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
