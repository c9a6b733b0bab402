//! Deadlines and elapsed time: when the request's work should be over, how long is left, how
//! long the request has run, and a future bounded by the deadline.
//!
//! The deadline lives in the context's store, so it travels wherever the context does:
//! [`spawn`](crate::spawn), [`in_current_context`](crate::InCurrentContext::in_current_context),
//! spans, and job payloads (as the time remaining, see the `Deserialize` impl of
//! [`Context`]). It is never written on a line; [`JsonLayer::with_elapsed`] writes the time
//! since the context was made.
//!
//! [`JsonLayer::with_elapsed`]: crate::layer::JsonLayer::with_elapsed

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::current::with_current;
use super::store::Context;

// === impl Context ===

/// # Deadlines
///
/// A context may have a deadline: the instant after which the request's work is no longer
/// wanted (its client gave up, or the server's time budget for it is spent). The crate never
/// cancels anything by itself; [`within_deadline`] bounds a future by it, and
/// [`remaining`] tells code how much time is left.
///
/// A deadline only ever shortens: setting one on a context that already has an earlier one
/// keeps the earlier one, so a step of a request cannot give itself more time than the
/// request has. [`Context::without_deadline`] removes it, for work that deliberately outlives
/// the request (a job derived from it).
impl Context {
    /// Sets the deadline `timeout` from now, unless the context already has an earlier one,
    /// and returns the context. A timeout too large for the clock sets none.
    ///
    /// As the other `with*` builders, it copies a store that is shared, so the request a
    /// context was derived from keeps its own deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_ambient::Context;
    ///
    /// let ctx = Context::new().with_timeout(Duration::from_secs(2));
    /// assert!(ctx.remaining().unwrap() <= Duration::from_secs(2));
    /// // A later, longer timeout does not extend it.
    /// let ctx = ctx.with_timeout(Duration::from_secs(60));
    /// assert!(ctx.remaining().unwrap() <= Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.with_deadline(deadline),
            None => self,
        }
    }

    /// Sets the deadline, unless the context already has an earlier one, and returns the
    /// context.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tracing_ambient::Context;
    ///
    /// let at = Instant::now() + Duration::from_millis(500);
    /// assert_eq!(Context::new().with_deadline(at).deadline(), Some(at));
    /// ```
    #[must_use]
    pub fn with_deadline(self, deadline: Instant) -> Self {
        let ctx = self.unshared();
        ctx.set_deadline(deadline);
        ctx
    }

    /// Removes the deadline and returns the context: for work derived from a request that
    /// is meant to outlive it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_ambient::Context;
    ///
    /// let request = Context::new().with_request_id("r1").with_timeout(Duration::from_secs(1));
    /// let job = request.clone().without_deadline(); // `request` keeps its deadline
    /// assert_eq!(job.deadline(), None);
    /// assert!(request.deadline().is_some());
    /// ```
    #[must_use]
    pub fn without_deadline(self) -> Self {
        let ctx = self.unshared();
        ctx.write().deadline = None;
        ctx
    }

    /// Returns the deadline, if the context has one.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::Context::new().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.read().deadline
    }

    /// Returns the time left until the deadline (zero once it has passed), if the context
    /// has one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_ambient::Context;
    ///
    /// let ctx = Context::new().with_timeout(Duration::ZERO);
    /// assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Returns the time since the context was made ([`Context::new`], the middleware's
    /// request, or deserializing a payload). A context derived from another with the `with*`
    /// builders counts from when the other was made.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new();
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// assert!(ctx.elapsed() >= std::time::Duration::from_millis(2));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.read().created.elapsed()
    }

    /// Sets the deadline unless an earlier one is set: the store is shared, so this is for
    /// the crate's own code that makes the context (the middleware, a payload).
    pub(crate) fn set_deadline(&self, deadline: Instant) {
        let mut entries = self.write();
        entries.deadline = Some(match entries.deadline {
            Some(earlier) => earlier.min(deadline),
            None => deadline,
        });
    }
}

// === free functions on the current context ===

/// Returns the deadline of the current context, `None` if there is no context or it has no
/// deadline.
///
/// ```
/// use std::time::Duration;
/// use tracing_ambient::Context;
///
/// assert_eq!(tracing_ambient::deadline(), None);
/// let ctx = Context::new().with_timeout(Duration::from_secs(1));
/// assert_eq!(ctx.in_scope(tracing_ambient::deadline), ctx.deadline());
/// ```
pub fn deadline() -> Option<Instant> {
    with_current(|ctx| ctx.and_then(Context::deadline))
}

/// Returns the time left until the current context's deadline (zero once it has passed),
/// `None` if there is no context or it has no deadline.
///
/// Use it to pass the request's budget on to a call that takes a timeout, or to skip work
/// that cannot finish in time.
///
/// ```
/// use std::time::Duration;
/// use tracing_ambient::Context;
///
/// Context::new().with_timeout(Duration::from_secs(5)).in_scope(|| {
///     let left = tracing_ambient::remaining().unwrap();
///     assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
/// });
/// ```
pub fn remaining() -> Option<Duration> {
    with_current(|ctx| ctx.and_then(Context::remaining))
}

/// Returns the time since the current context was made (see [`Context::elapsed`]), `None`
/// if there is no context.
///
/// ```
/// use tracing_ambient::Context;
///
/// assert_eq!(tracing_ambient::elapsed(), None);
/// let elapsed = Context::new().in_scope(tracing_ambient::elapsed);
/// assert!(elapsed.is_some());
/// ```
pub fn elapsed() -> Option<Duration> {
    with_current(|ctx| ctx.map(Context::elapsed))
}

/// Bounds `future` by the deadline of the current context: it resolves to `Ok` with the
/// future's output, or to `Err(DeadlineExceeded)` when the deadline passes first, and the
/// future is then dropped (cancelled) at its next `.await`.
///
/// The deadline is the one of the context current when the returned future is first
/// polled, so it works inside [`Context::scope`], the HTTP middleware,
/// [`spawn`](crate::spawn) and
/// [`in_current_context`](crate::InCurrentContext::in_current_context). Without a context or
/// a deadline, the future runs unbounded. A deadline that has already passed gives
/// `Err(DeadlineExceeded)` at once, without polling the future, so no work is started that
/// is not wanted any more.
///
/// The timer is tokio's ([`tokio::time::sleep_until`]), with its millisecond resolution.
///
/// # Panics
///
/// When the context has a deadline, polling panics outside a tokio runtime, or in one built
/// without timers (`enable_time`), as [`tokio::time::sleep_until`] does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tracing_ambient::{within_deadline, Context, DeadlineExceeded};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new()
///     .with_timeout(Duration::from_millis(20))
///     .scope(async {
///         let quick = within_deadline(async { 7 }).await;
///         assert_eq!(quick, Ok(7));
///
///         let slow = within_deadline(tokio::time::sleep(Duration::from_secs(60))).await;
///         assert!(matches!(slow, Err(DeadlineExceeded { .. })));
///     })
///     .await;
/// # }
/// ```
pub fn within_deadline<F: Future>(future: F) -> WithinDeadline<F> {
    WithinDeadline {
        inner: future,
        sleep: None,
        started: false,
    }
}

pin_project! {
    /// A future bounded by the current context's deadline, returned by [`within_deadline`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithinDeadline<F> {
        #[pin]
        inner: F,
        // Armed at the first poll, when the context has a deadline.
        #[pin]
        sleep: Option<Sleep>,
        started: bool,
    }
}

impl<F: Future> Future for WithinDeadline<F> {
    type Output = Result<F::Output, DeadlineExceeded>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.started {
            *this.started = true;
            if let Some(deadline) = deadline() {
                if deadline <= Instant::now() {
                    return Poll::Ready(Err(DeadlineExceeded { _private: () }));
                }
                this.sleep
                    .set(Some(tokio::time::sleep_until(deadline.into())));
            }
        }
        // The future first, as `tokio::time::timeout` does: an output that is ready when
        // the deadline passes is not thrown away.
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep
                .poll(cx)
                .map(|()| Err(DeadlineExceeded { _private: () })),
            None => Poll::Pending,
        }
    }
}

/// The error of [`within_deadline`]: the context's deadline passed before the future was
/// done.
///
/// It converts into an [`io::Error`] of kind [`TimedOut`](io::ErrorKind::TimedOut), for
/// code that returns `io::Result`.
///
/// ```
/// use tracing_ambient::DeadlineExceeded;
///
/// fn status(err: DeadlineExceeded) -> (u16, String) {
///     (504, err.to_string()) // e.g. a gateway timeout
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded {
    _private: (),
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request's deadline has passed")
    }
}

impl Error for DeadlineExceeded {}

impl From<DeadlineExceeded> for io::Error {
    fn from(err: DeadlineExceeded) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_only_shortens_and_builders_copy_a_shared_store() {
        let soon = Instant::now() + Duration::from_millis(100);
        let later = soon + Duration::from_secs(60);
        let ctx = Context::new().with_deadline(soon).with_deadline(later);
        assert_eq!(ctx.deadline(), Some(soon));
        let derived = ctx.clone().with_deadline(soon - Duration::from_millis(50));
        assert_eq!(
            ctx.deadline(),
            Some(soon),
            "the shared store is not changed"
        );
        assert_eq!(derived.deadline(), Some(soon - Duration::from_millis(50)));
        assert_eq!(ctx.clone().without_deadline().deadline(), None);
        assert_eq!(ctx.deadline(), Some(soon));
    }

    #[test]
    fn a_timeout_past_the_clock_sets_none() {
        let ctx = Context::new().with_timeout(Duration::MAX);
        assert_eq!(ctx.deadline(), None);
    }

    #[test]
    fn derived_contexts_keep_the_creation_instant() {
        let ctx = Context::new();
        let created = ctx.read().created;
        let derived = ctx.clone().with("a", 1);
        assert!(!derived.same_as(&ctx));
        assert_eq!(derived.read().created, created);
    }

    #[test]
    fn free_functions_read_the_current_context() {
        assert_eq!((deadline(), remaining(), elapsed()), (None, None, None));
        let ctx = Context::new().with_timeout(Duration::from_secs(10));
        ctx.in_scope(|| {
            assert_eq!(deadline(), ctx.deadline());
            assert!(remaining().unwrap() > Duration::from_secs(9));
            assert!(elapsed().unwrap() < Duration::from_secs(1));
        });
    }

    #[test]
    fn deadline_exceeded_is_a_timed_out_io_error() {
        let err: io::Error = DeadlineExceeded { _private: () }.into();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(err.to_string(), "the request's deadline has passed");
    }
}
