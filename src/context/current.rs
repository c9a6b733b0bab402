//! What makes a context current: a per-thread stack of frames pushed by scopes (around a
//! future's poll or a closure) and by entering a span that carries a context. The top frame is
//! the current context; an event reads it in O(1), whatever the span depth.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::store::Known;
use super::{Context, Value};

/// One frame: the context it makes current (`None` to run deliberately without one) and who
/// pushed it (0 for a scope, the span's id for a span).
struct Frame {
    owner: u64,
    ctx: Option<Context>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with the current context. At thread teardown, or if the stack is being changed
/// further up this thread's call stack, there is no current context.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    let mut f = Some(f);
    let done = STACK.try_with(|stack| {
        let stack = stack.try_borrow().ok()?;
        let f = f.take()?;
        Some(f(stack.last().and_then(|frame| frame.ctx.as_ref())))
    });
    match done {
        Ok(Some(result)) => result,
        _ => (f
            .take()
            .expect("f runs only after the borrow succeeded, this is a bug"))(None),
    }
}

/// Pushes a frame and returns the depth to truncate back to.
fn push(owner: u64, ctx: Option<Context>) -> Option<usize> {
    STACK
        .try_with(|stack| {
            let mut stack = stack.try_borrow_mut().ok()?;
            stack.push(Frame { owner, ctx });
            Some(stack.len() - 1)
        })
        .ok()
        .flatten()
}

/// Makes a span's context current while the span is entered.
pub(crate) fn push_span(span_id: u64, ctx: Context) {
    push(span_id, Some(ctx));
}

/// Removes the topmost frame pushed by the span. Spans normally exit in the reverse order of
/// entering; one that exits out of order still removes only its own frame.
pub(crate) fn pop_span(span_id: u64) {
    let _ = STACK.try_with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            if let Some(i) = stack.iter().rposition(|f| f.owner == span_id) {
                stack.remove(i);
            }
        }
    });
}

/// Truncates the stack to the depth it had when a scope was entered, also removing any frame
/// pushed inside the scope and not removed (a span guard leaked with `mem::forget`).
struct ScopeGuard(Option<usize>);

impl ScopeGuard {
    fn enter(ctx: Option<Context>) -> Self {
        ScopeGuard(push(0, ctx))
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        if let Some(depth) = self.0 {
            let _ = STACK.try_with(|stack| {
                if let Ok(mut stack) = stack.try_borrow_mut() {
                    stack.truncate(depth);
                }
            });
        }
    }
}

/// Runs `f` with `ctx` current (`None`: with no context).
pub(crate) fn run_in<R>(ctx: Option<Context>, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(ctx);
    f()
}

pin_project! {
    /// A future that runs with a context current, or deliberately with none.
    ///
    /// Returned by [`Context::scope`], [`InCurrentContext::in_current_context`] and
    /// [`InCurrentContext::without_context`]. Each poll of the inner future makes the context
    /// current, and removes it again before returning, so the context follows the future
    /// across threads of a multi-threaded runtime.
    ///
    /// [`InCurrentContext::in_current_context`]: crate::InCurrentContext::in_current_context
    /// [`InCurrentContext::without_context`]: crate::InCurrentContext::without_context
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        #[pin]
        inner: F,
        ctx: Option<Context>,
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(inner: F, ctx: Option<Context>) -> Self {
        Scoped { inner, ctx }
    }

    /// Returns the context this future runs with, `None` if it runs without one.
    pub fn context(&self) -> Option<&Context> {
        self.ctx.as_ref()
    }

    /// Returns the wrapped future.
    pub fn into_inner(self) -> F {
        self.inner
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(this.ctx.clone());
        this.inner.poll(cx)
    }
}

// === impl Context ===

impl Context {
    /// Returns the current context: the innermost scope or entered span that carries one.
    ///
    /// Returns `None` outside any context, and inside
    /// [`without_context`](crate::InCurrentContext::without_context).
    ///
    /// ```
    /// use tracing_ambient::Context;
    ///
    /// assert!(Context::current().is_none());
    /// let ctx = Context::new().with_request_id("r1");
    /// ctx.in_scope(|| assert!(Context::current().unwrap().same_as(&ctx)));
    /// ```
    pub fn current() -> Option<Context> {
        with_current(|ctx| ctx.cloned())
    }

    /// Returns a future that runs `future` with this context current.
    ///
    /// Spans created inside the future carry the context, so it stays current in
    /// `.instrument(span)`, `#[instrument]` and `span.in_scope(..)` wherever they run.
    ///
    /// ```
    /// use tracing_ambient::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let id = Context::new()
    ///     .with_request_id("job-7")
    ///     .scope(async { tracing_ambient::request_id() })
    ///     .await;
    /// assert_eq!(id.as_deref(), Some("job-7"));
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped::new(future, Some(self))
    }

    /// Runs `f` with this context current, on this thread. Use it to carry a context into a
    /// thread of your own:
    ///
    /// ```
    /// use tracing_ambient::Context;
    ///
    /// let ctx = Context::new().with_request_id("r1");
    /// ctx.in_scope(|| {
    ///     let carried = Context::current();
    ///     std::thread::spawn(move || {
    ///         let run = || tracing_ambient::request_id();
    ///         match carried {
    ///             Some(ctx) => ctx.in_scope(run),
    ///             None => run(),
    ///         }
    ///     })
    ///     .join()
    ///     .unwrap()
    /// });
    /// ```
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        run_in(Some(self.clone()), f)
    }
}

// === free functions on the current context ===

/// Sets the user id of the current context.
///
/// Every later line of the request carries it, including lines from spans created before. With
/// no current context this does nothing.
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new();
/// ctx.in_scope(|| tracing_ambient::set_user_id(42));
/// assert_eq!(ctx.user_id().as_deref(), Some("42"));
/// tracing_ambient::set_user_id(7); // no context: nothing happens
/// ```
pub fn set_user_id(value: impl Into<Value>) {
    if let Some(ctx) = Context::current() {
        ctx.set_known(Known::UserId, value.into());
    }
}

/// Sets `key` to `value` in the current context (see [`Context::set`]). With no current
/// context this does nothing.
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new();
/// ctx.in_scope(|| tracing_ambient::set("tenant_id", "acme"));
/// assert_eq!(ctx.get("tenant_id").unwrap().to_string(), "acme");
/// ```
pub fn set(key: &str, value: impl Into<Value>) {
    if let Some(ctx) = Context::current() {
        ctx.set(key, value);
    }
}

/// Returns the request id of the current context, `None` if there is none.
///
/// ```
/// use tracing_ambient::Context;
///
/// assert_eq!(tracing_ambient::request_id(), None);
/// let id = Context::new().with_request_id("r1").in_scope(tracing_ambient::request_id);
/// assert_eq!(id.as_deref(), Some("r1"));
/// ```
pub fn request_id() -> Option<String> {
    Context::current().and_then(|ctx| ctx.request_id())
}

/// Returns the trace id of the current context, `None` if there is none.
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new().with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ctx.in_scope(tracing_ambient::trace_id), ctx.trace_id());
/// ```
pub fn trace_id() -> Option<String> {
    Context::current().and_then(|ctx| ctx.trace_id())
}

/// Returns the user id of the current context, `None` if there is none.
///
/// ```
/// use tracing_ambient::Context;
///
/// let id = Context::new().with_user_id(42).in_scope(tracing_ambient::user_id);
/// assert_eq!(id.as_deref(), Some("42"));
/// ```
pub fn user_id() -> Option<String> {
    Context::current().and_then(|ctx| ctx.user_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_scope_wins_and_is_restored() {
        let outer = Context::new().with_request_id("outer");
        let inner = Context::new().with_request_id("inner");
        outer.in_scope(|| {
            inner.in_scope(|| assert_eq!(request_id().as_deref(), Some("inner")));
            assert_eq!(request_id().as_deref(), Some("outer"));
            run_in(None, || assert_eq!(request_id(), None));
        });
        assert_eq!(request_id(), None);
    }

    #[test]
    fn leaked_span_frames_are_removed_with_their_scope() {
        let ctx = Context::new().with_request_id("scope");
        ctx.in_scope(|| push_span(7, Context::new().with_request_id("leaked")));
        assert_eq!(request_id(), None);
    }

    #[test]
    fn span_frames_pop_out_of_order() {
        push_span(1, Context::new().with_request_id("one"));
        push_span(2, Context::new().with_request_id("two"));
        pop_span(1);
        assert_eq!(request_id().as_deref(), Some("two"));
        pop_span(2);
        assert_eq!(request_id(), None);
    }

    #[test]
    fn scope_is_restored_when_the_closure_panics() {
        let ctx = Context::new().with_request_id("p");
        let result = std::panic::catch_unwind(|| ctx.in_scope(|| panic!("boom")));
        assert!(result.is_err());
        assert_eq!(request_id(), None);
    }
}
