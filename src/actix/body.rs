//! [`ResponseBody`]: an actix-web response body polled inside its request's context, that
//! writes the access line when it ends.

use std::error::Error as StdError;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use http::StatusCode;
use pin_project_lite::pin_project;
use tracing::Span;

use crate::context::spans::enter_in_scope;
use crate::context::Context;
use crate::http::{panicked, Outcome, Pending};
use crate::user_text::error_text;

pin_project! {
    /// The body of a response from [`RequestContext`](super::RequestContext): the inner body,
    /// polled inside the request's context; the access line is written when it ends, fails or
    /// is dropped.
    pub struct ResponseBody<B> {
        // `None` once the body ended, and while this body is dropped: the inner one goes
        // first.
        #[pin]
        inner: Option<B>,
        ctx: Context,
        // The request's span: entered while the body is polled and dropped.
        span: Span,
        status: Option<StatusCode>,
        size: u64,
        // Taken once, when the body ends or is dropped.
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.is_none() && this.pending.is_none() {
                return;
            }
            let _entered = enter_in_scope(this.span);
            let inner = &mut this.inner;
            this.ctx.in_scope(|| inner.set(None));
            if let Some(pending) = this.pending.take() {
                pending.body_dropped(*this.status, *this.size);
            }
        }
    }
}

impl<B: MessageBody> ResponseBody<B> {
    pub(crate) fn new(
        inner: B,
        ctx: Context,
        span: Span,
        status: Option<StatusCode>,
        mut pending: Option<Pending>,
    ) -> Self {
        // actix-web never polls a body that is empty by its size: it ends here.
        if matches!(inner.size(), BodySize::None | BodySize::Sized(0)) {
            if let Some(pending) = pending.take() {
                let _entered = enter_in_scope(&span);
                pending.finish(status, Some(0), Outcome::Completed, None);
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

impl<B: MessageBody> MessageBody for ResponseBody<B> {
    /// The inner body's error, boxed as actix-web boxes it.
    type Error = Box<dyn StdError>;

    fn size(&self) -> BodySize {
        self.inner
            .as_ref()
            .map_or(BodySize::Sized(0), MessageBody::size)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        if this.inner.is_none() {
            return Poll::Ready(None);
        }
        let _entered = enter_in_scope(this.span);
        let (mut slot, size, pending, status, ctx) =
            (this.inner, this.size, this.pending, this.status, this.ctx);
        ctx.in_scope(|| {
            let inner = slot
                .as_mut()
                .as_pin_mut()
                .expect("checked above: the inner body is there");
            let polled = match catch_unwind(AssertUnwindSafe(|| inner.poll_next(cx))) {
                Ok(polled) => polled,
                Err(panic) => {
                    slot.set(None);
                    panicked(ctx, pending.take(), *status, Some(*size), &*panic);
                    resume_unwind(panic)
                }
            };
            let (polled, end) = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => {
                    if pending.as_ref().is_some_and(Pending::counts_body) {
                        *size += bytes.len() as u64;
                    }
                    (Poll::Ready(Some(Ok(bytes))), None)
                }
                Poll::Ready(Some(Err(err))) => {
                    // Boxed here (actix-web boxes it next anyway) for its text on the line.
                    let err: Box<dyn StdError> = err.into();
                    let text = error_text(&*err);
                    (
                        Poll::Ready(Some(Err(err))),
                        Some((Outcome::Failed, Some(text))),
                    )
                }
                Poll::Ready(None) => (Poll::Ready(None), Some((Outcome::Completed, None))),
            };
            if let Some((outcome, error)) = end {
                // Dropped ahead of the access line, so dropping this body has nothing to do.
                slot.set(None);
                if let Some(pending) = pending.take() {
                    pending.finish_in_scope(*status, Some(*size), outcome, error.as_deref());
                }
            }
            polled
        })
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
