//! [`ResponseBody`]: a response body polled inside its request's context.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Buf;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use super::access::Outcome;
use super::pending::Pending;
use crate::context::spans::enter_in_scope;
use crate::context::Context;
use crate::user_text::error_text;

pin_project! {
    /// The response body of [`RequestContext`](super::RequestContext): polls the inner body
    /// with the request's context current, counts the bytes sent, and runs the access hook
    /// when the body ends, fails, or is dropped before its end.
    ///
    /// The inner body is dropped inside the request's context too, before the access hook
    /// runs, so a streaming body that logs while it is torn down (the client went away)
    /// writes its lines with the request and ahead of the access line.
    pub struct ResponseBody<B> {
        // `None` once the body ended, and while this body is dropped: the inner one goes
        // first.
        #[pin]
        inner: Option<B>,
        ctx: Context,
        // The request's span: entered while the body is polled and dropped.
        span: Span,
        status: StatusCode,
        size: u64,
        // Taken once, when the body ends or is dropped.
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_none() && this.pending.is_none() {
                // Ended: the inner body was dropped and the access hook ran in `poll_frame`.
                return;
            }
            let _entered = enter_in_scope(this.span);
            let inner = &mut this.inner;
            this.ctx.in_scope(|| inner.set(None));
            if let Some(pending) = this.pending.take() {
                pending.body_dropped(Some(*this.status), *this.size);
            }
        }
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(
        inner: B,
        ctx: Context,
        span: Span,
        status: StatusCode,
        mut pending: Option<Pending>,
    ) -> Self {
        // A body that is empty from the start may never be polled.
        if inner.is_end_stream() {
            if let Some(pending) = pending.take() {
                let _entered = enter_in_scope(&span);
                pending.finish(Some(status), Some(0), Outcome::Completed, None);
            }
        }
        ResponseBody {
            inner: Some(inner),
            ctx,
            span,
            status,
            size: 0,
            pending,
        }
    }
}

impl<B> ResponseBody<B> {
    /// Returns a reference to the inner body, or `None` once the body has ended.
    ///
    /// The inner body is dropped at its end, inside the request's context and before the
    /// access hook runs (see [the module docs](super#access-line)): from then on there is no
    /// inner body to refer to.
    ///
    /// ```
    /// # use tower::ServiceExt;
    /// # use tower_layer::Layer;
    /// use http_body_util::BodyExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let handler = tower::service_fn(|_: http::Request<()>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::from("hi")))
    /// # });
    /// let service = tracing_ambient::http::RequestContextLayer::new().layer(handler);
    /// let mut body = service.oneshot(http::Request::new(())).await.unwrap().into_body();
    /// let inner: Option<&http_body_util::Full<bytes::Bytes>> = body.get_ref();
    /// assert!(inner.is_some());
    /// while body.frame().await.is_some() {}
    /// assert!(body.get_ref().is_none(), "ended: the inner body is gone");
    /// # }
    /// ```
    pub fn get_ref(&self) -> Option<&B> {
        self.inner.as_ref()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if this.inner.is_none() {
            // The body ended (or is being dropped).
            return Poll::Ready(None);
        }
        let _entered = enter_in_scope(this.span);
        // One scope for the poll and, at the end, for dropping the inner body and the access
        // line.
        let (mut slot, size, pending, status) = (this.inner, this.size, this.pending, this.status);
        this.ctx.in_scope(|| {
            let mut inner = slot
                .as_mut()
                .as_pin_mut()
                .expect("checked above: the inner body is there");
            let polled = inner.as_mut().poll_frame(cx);
            let end = match &polled {
                Poll::Pending => return polled,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame
                        .data_ref()
                        .filter(|_| pending.as_ref().is_some_and(Pending::counts_body))
                    {
                        *size += data.remaining() as u64;
                    } else if let (Some(trailers), Some(pending)) =
                        (frame.trailers_ref(), pending.as_mut())
                    {
                        // A gRPC call's status comes in the trailers; the HTTP status is 200.
                        pending.observe_grpc(trailers);
                    }
                    inner.is_end_stream().then_some((Outcome::Completed, None))
                }
                Poll::Ready(Some(Err(err))) => Some((Outcome::Failed, Some(error_text(err)))),
                Poll::Ready(None) => Some((Outcome::Completed, None)),
            };
            if let Some((outcome, error)) = end {
                // The inner body is dropped at its end, ahead of the access line, so dropping
                // this body later has nothing left to do.
                slot.set(None);
                if let Some(pending) = pending.take() {
                    pending.finish_in_scope(Some(*status), Some(*size), outcome, error.as_deref());
                }
            }
            polled
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("context", &self.ctx)
            .field("status", &self.status)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;
    use tower_layer::Layer;
    use tracing_subscriber::prelude::*;

    use crate::http::RequestContextLayer;
    use crate::test_support::MockMakeWriter;
    use crate::JsonLayer;

    /// Issue 19 §4: `get_ref` after the end says there is no inner body; it panicked.
    #[test]
    fn get_ref_after_the_end_is_none() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi"))))
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = RequestContextLayer::new()
                .layer(handler)
                .oneshot(Request::new(()))
                .await
                .unwrap();
            let mut body = response.into_body();
            let inner = body.get_ref().expect("not ended yet");
            assert_eq!(inner.size_hint().exact(), Some(2));
            let mut frames = 0;
            while let Some(frame) = body.frame().await {
                frame.unwrap();
                frames += 1;
            }
            assert_eq!(frames, 1);
            assert!(
                body.get_ref().is_none(),
                "the inner body was dropped at its end"
            );
        });
        let text = writer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["outcome"], "completed");
        assert_eq!(lines[0]["size"], 2);
    }
}
