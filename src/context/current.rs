//! What makes a context current: a per-thread stack of frames pushed by scopes (around a
//! future's poll or a closure) and by entering a span that carries a context. The top frame is
//! the current context; an event reads it in O(1), whatever the span depth.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::store::Known;
use super::{Context, Value};

/// Who pushed a frame. Scopes get a token of their own, so a scope removes exactly what it
/// pushed (and what was pushed above it) even when a span below it exited out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A scope that makes a context current.
    Scope(u64),
    /// A scope that runs deliberately without a context: spans entered inside it, even ones
    /// created in a request, bring no context back.
    Detached(u64),
    /// An entered span that carries a context.
    Span(u64),
}

/// One frame: who pushed it and the context it makes current.
struct Frame {
    owner: Owner,
    ctx: Option<Context>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// What a scope makes current.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// This context.
    Context(Context),
    /// No context, and spans entered inside bring none back.
    Detached,
    /// Whatever is current where the future is polled: nothing is pushed.
    Passthrough,
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

/// Pushes a frame; returns whether it was pushed.
fn push(owner: Owner, ctx: Option<Context>) -> bool {
    STACK
        .try_with(|stack| match stack.try_borrow_mut() {
            Ok(mut stack) => {
                stack.push(Frame { owner, ctx });
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Makes a span's context current while the span is entered, unless the innermost scope runs
/// without context.
pub(crate) fn push_span(span_id: u64, ctx: Context) {
    let _ = STACK.try_with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            let detached = stack
                .iter()
                .rev()
                .find(|f| !matches!(f.owner, Owner::Span(_)))
                .is_some_and(|f| matches!(f.owner, Owner::Detached(_)));
            stack.push(Frame {
                owner: Owner::Span(span_id),
                ctx: (!detached).then_some(ctx),
            });
        }
    });
}

/// Removes the topmost frame pushed by the span. Spans normally exit in the reverse order of
/// entering; one that exits out of order still removes only its own frame.
pub(crate) fn pop_span(span_id: u64) {
    let _ = STACK.try_with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            if let Some(i) = stack.iter().rposition(|f| f.owner == Owner::Span(span_id)) {
                stack.remove(i);
            }
        }
    });
}

/// Removes a scope's frame when the scope ends, and every frame pushed above it and not
/// removed (a span guard leaked with `mem::forget`).
struct ScopeGuard(Option<Owner>);

impl ScopeGuard {
    fn enter(mode: &Mode) -> Self {
        let token = NEXT_TOKEN
            .try_with(|next| {
                let token = next.get().wrapping_add(1);
                next.set(token);
                token
            })
            .unwrap_or(0);
        let (owner, ctx) = match mode {
            Mode::Context(ctx) => (Owner::Scope(token), Some(ctx.clone())),
            Mode::Detached => (Owner::Detached(token), None),
            Mode::Passthrough => return ScopeGuard(None),
        };
        ScopeGuard(push(owner, ctx).then_some(owner))
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        if let Some(owner) = self.0 {
            let _ = STACK.try_with(|stack| {
                if let Ok(mut stack) = stack.try_borrow_mut() {
                    if let Some(i) = stack.iter().rposition(|f| f.owner == owner) {
                        stack.truncate(i);
                    }
                }
            });
        }
    }
}

/// Runs `f` with what `mode` makes current.
pub(crate) fn run_in<R>(mode: &Mode, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(mode);
    f()
}

pin_project! {
    /// A future that runs with a context current, or deliberately with none.
    ///
    /// Returned by [`Context::scope`], [`InCurrentContext::in_current_context`] and
    /// [`InCurrentContext::without_context`]. Each poll of the inner future makes the context
    /// current, and removes it again before returning, so the context follows the future
    /// across threads of a multi-threaded runtime. Dropping the future drops the inner one
    /// inside the context too, so what a cancelled request logs while it unwinds (a rolled
    /// back transaction) still carries the request.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_ambient::{Context, Scoped};
    ///
    /// let scoped: Scoped<_> = Context::new().with_request_id("r1").scope(async { 7 });
    /// assert_eq!(scoped.context().unwrap().request_id().as_deref(), Some("r1"));
    /// ```
    ///
    /// [`InCurrentContext::in_current_context`]: crate::InCurrentContext::in_current_context
    /// [`InCurrentContext::without_context`]: crate::InCurrentContext::without_context
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        // `None` only once dropped or taken by `into_inner`.
        #[pin]
        inner: Option<F>,
        mode: Mode,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.as_ref().get_ref().is_some() {
                run_in(this.mode, || this.inner.set(None));
            }
        }
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(inner: F, mode: Mode) -> Self {
        Scoped {
            inner: Some(inner),
            mode,
        }
    }

    /// Returns the context this future runs with; `None` if it runs without one, or with
    /// whatever is current where it is polled.
    ///
    /// ```
    /// use tracing_ambient::InCurrentContext;
    ///
    /// assert!(async {}.without_context().context().is_none());
    /// ```
    pub fn context(&self) -> Option<&Context> {
        match &self.mode {
            Mode::Context(ctx) => Some(ctx),
            Mode::Detached | Mode::Passthrough => None,
        }
    }

    /// Returns the wrapped future.
    ///
    /// ```
    /// use tracing_ambient::Context;
    ///
    /// let inner = Context::new().scope(std::future::ready(7)).into_inner();
    /// # let _ = inner;
    /// ```
    pub fn into_inner(mut self) -> F {
        self.inner
            .take()
            .expect("the inner future is only taken once, this is a bug")
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(this.mode);
        this.inner
            .as_pin_mut()
            .expect("the inner future is there until drop, this is a bug")
            .poll(cx)
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
        Scoped::new(future, Mode::Context(self))
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
        run_in(&Mode::Context(self.clone()), f)
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
            run_in(&Mode::Detached, || assert_eq!(request_id(), None));
            run_in(&Mode::Passthrough, || {
                assert_eq!(request_id().as_deref(), Some("outer"))
            });
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
    fn a_span_exiting_inside_a_later_scope_does_not_strand_the_scope() {
        push_span(1, Context::new().with_request_id("span"));
        Context::new().with_request_id("A").in_scope(|| pop_span(1));
        assert_eq!(request_id(), None, "no frame is left behind");
    }

    #[test]
    fn spans_bring_no_context_back_inside_a_detached_scope() {
        run_in(&Mode::Detached, || {
            push_span(3, Context::new().with_request_id("old request"));
            assert_eq!(request_id(), None);
            Context::new().with_request_id("job").in_scope(|| {
                push_span(4, Context::new().with_request_id("job span"));
                assert_eq!(request_id().as_deref(), Some("job span"));
                pop_span(4);
            });
            pop_span(3);
        });
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
