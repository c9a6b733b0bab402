//! What makes a context current: per-thread frames pushed by scopes (around a future's poll or
//! a closure) and by entering a span that carries a context. The innermost scope wins; span
//! frames count only where no scope is active. An event reads the current context in O(1),
//! whatever the span depth.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::entries::Known;
use super::store::Context;
use super::value::Value;

/// A scope's frame: the context it makes current, or `None` for a scope that runs
/// deliberately without one. Each scope has a token of its own, so it removes exactly its own
/// frame.
struct ScopeFrame {
    token: u64,
    ctx: Option<Context>,
}

/// An entered span that carries a context, with the tokio task that entered it.
///
/// The task matters where a span guard is held across an `.await` of a future that no scope
/// wraps (`block_on`, `spawn_local`): the span stays entered on the thread while the future is
/// parked, and the other tasks the thread runs meanwhile must not see its context.
#[derive(Debug)]
struct SpanFrame {
    span: u64,
    /// The layer that pushed it (see `spans::Owner`).
    owner: u64,
    task: Option<tokio::task::Id>,
    ctx: Context,
}

/// This thread's frames. Scopes always win over spans: a line carries the context of the
/// innermost active scope, and a span brings its context back only where no scope is active.
#[derive(Default)]
struct Frames {
    scopes: Vec<ScopeFrame>,
    spans: Vec<SpanFrame>,
}

impl Frames {
    const fn new() -> Self {
        Frames {
            scopes: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// The current context: the innermost scope's, else the innermost span entered by this
    /// task (or, outside any task, by this thread's plain code).
    #[inline]
    fn current(&self) -> Option<&Context> {
        if let Some(scope) = self.scopes.last() {
            return scope.ctx.as_ref();
        }
        if self.spans.is_empty() {
            return None;
        }
        let task = tokio::task::try_id();
        self.spans
            .iter()
            .rev()
            .find(|frame| frame.task == task)
            .map(|frame| &frame.ctx)
    }

    /// What the innermost scope makes current: `None` when no scope is active.
    fn scope(&self) -> Option<Option<&Context>> {
        self.scopes.last().map(|scope| scope.ctx.as_ref())
    }
}

thread_local! {
    static FRAMES: RefCell<Frames> = const { RefCell::new(Frames::new()) };
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

/// Calls `f` with the current context. At thread teardown, or if the frames are being changed
/// further up this thread's call stack, there is no current context.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    with_frames(|frames| f(frames.and_then(Frames::current)))
}

/// Calls `f` with the context of a line or span whose explicit parent carries `parent`: the
/// innermost active scope's context wins; where no scope is active, `parent` (when it carries
/// a context), else the current span's.
#[inline]
pub(crate) fn with_current_or<R>(
    parent: Option<&Context>,
    f: impl FnOnce(Option<&Context>) -> R,
) -> R {
    with_frames(|frames| {
        let Some(frames) = frames else {
            return f(parent);
        };
        match (frames.scope(), parent) {
            (Some(scope), _) => f(scope),
            (None, Some(parent)) => f(Some(parent)),
            (None, None) => f(frames.current()),
        }
    })
}

/// The current context's `levels` byte (see `store.rs`), 0 outside any context: the one
/// read the filter makes per event, without the closures of [`with_current`].
#[inline]
pub(crate) fn current_levels() -> u8 {
    FRAMES
        .try_with(|frames| {
            let Ok(frames) = frames.try_borrow() else {
                return 0;
            };
            frames.current().map_or(0, |ctx| {
                ctx.store()
                    .levels
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        })
        .unwrap_or(0)
}

#[inline]
fn with_frames<R>(f: impl FnOnce(Option<&Frames>) -> R) -> R {
    let mut f = Some(f);
    let done = FRAMES.try_with(|frames| {
        let frames = frames.try_borrow().ok()?;
        let f = f.take()?;
        Some(f(Some(&frames)))
    });
    match done {
        Ok(Some(result)) => result,
        _ => (f
            .take()
            .expect("f runs only after the borrow succeeded, this is a bug"))(None),
    }
}

/// Changes this thread's frames; does nothing at thread teardown or if they are borrowed.
fn change_frames<R>(f: impl FnOnce(&mut Frames) -> R) -> Option<R> {
    FRAMES
        .try_with(|frames| {
            frames
                .try_borrow_mut()
                .ok()
                .map(|mut frames| f(&mut frames))
        })
        .ok()
        .flatten()
}

/// Makes a span's context current while the span is entered and no scope is active.
pub(crate) fn push_span(span: u64, owner: u64, ctx: Context) {
    let task = tokio::task::try_id();
    change_frames(|frames| {
        frames.spans.push(SpanFrame {
            span,
            owner,
            task,
            ctx,
        })
    });
}

/// Returns how many span frames this thread has.
#[cfg(test)]
pub(crate) fn span_frames() -> usize {
    FRAMES.with(|frames| frames.borrow().spans.len())
}

/// Removes the topmost frame the span pushed, preferring the one this task pushed. Spans
/// normally exit in the reverse order of entering; one that exits out of order still removes
/// only its own frame.
pub(crate) fn pop_span(span: u64, owner: u64) {
    let task = tokio::task::try_id();
    change_frames(|frames| {
        let spans = &mut frames.spans;
        let ours = |f: &SpanFrame| f.span == span && f.owner == owner;
        let found = spans
            .iter()
            .rposition(|f| ours(f) && f.task == task)
            .or_else(|| spans.iter().rposition(ours));
        if let Some(i) = found {
            spans.remove(i);
        }
    });
}

/// Removes a scope's frame when the scope ends. A scope around a future's poll also takes the
/// span frames pushed during the poll and not popped (a span guard held across an `.await`,
/// or leaked with `mem::forget`) and keeps them with the future until its next poll.
struct ScopeGuard<'a> {
    token: Option<u64>,
    /// The number of span frames when the scope began, and where to park later ones.
    park: Option<(usize, &'a mut Vec<SpanFrame>)>,
}

impl<'a> ScopeGuard<'a> {
    fn enter(mode: &Mode, park: Option<&'a mut Vec<SpanFrame>>) -> Self {
        let ctx = match mode {
            Mode::Context(ctx) => Some(ctx.clone()),
            Mode::Detached => None,
            Mode::Passthrough => {
                return ScopeGuard {
                    token: None,
                    park: None,
                }
            }
        };
        Self::push(ctx, park)
    }

    /// Pushes a scope frame for `ctx` (`None`: deliberately no context).
    fn push(ctx: Option<Context>, park: Option<&'a mut Vec<SpanFrame>>) -> Self {
        let token = NEXT_TOKEN
            .try_with(|next| {
                let token = next.get().wrapping_add(1);
                next.set(token);
                token
            })
            .unwrap_or(0);
        let mut park = park;
        let mark = change_frames(|frames| {
            frames.scopes.push(ScopeFrame { token, ctx });
            let mark = frames.spans.len();
            if let Some(parked) = park.as_deref_mut() {
                frames.spans.append(parked);
            }
            mark
        });
        ScopeGuard {
            token: mark.map(|_| token),
            park: mark.zip(park),
        }
    }
}

impl Drop for ScopeGuard<'_> {
    fn drop(&mut self) {
        let Some(token) = self.token else { return };
        let park = &mut self.park;
        change_frames(|frames| {
            if let Some(i) = frames.scopes.iter().rposition(|f| f.token == token) {
                frames.scopes.truncate(i);
            }
            if let Some((mark, parked)) = park {
                if frames.spans.len() > *mark {
                    parked.extend(frames.spans.drain(*mark..));
                }
            }
        });
    }
}

/// Runs `f` with what `mode` makes current.
pub(crate) fn run_in<R>(mode: &Mode, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(mode, None);
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
        // Span frames left entered when a poll returned, back on the thread at the next poll.
        parked: Vec<SpanFrame>,
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
            parked: Vec::new(),
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
    /// # Panics
    ///
    /// If the future has already completed: a `Scoped` drops its future when it completes.
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
            .expect("`Scoped::into_inner` called after the future completed")
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let _guard = ScopeGuard::enter(this.mode, Some(this.parked));
        let inner = this
            .inner
            .as_mut()
            .as_pin_mut()
            .expect("`Scoped` polled after it completed");
        let output = ready!(inner.poll(cx));
        // A finished future is dropped here, still inside the scope, so that dropping the
        // `Scoped` later has no scope of its own to enter.
        this.inner.set(None);
        Poll::Ready(output)
    }
}

// === impl Context ===

impl Context {
    /// Returns the current context.
    ///
    /// # Which context is current
    ///
    /// The context of the innermost scope active on this thread ([`Context::scope`],
    /// [`Context::in_scope`], the HTTP middleware, [`spawn`](crate::spawn),
    /// [`in_current_context`](crate::InCurrentContext::in_current_context)); inside
    /// [`spawn_detached`](crate::spawn_detached) or
    /// [`without_context`](crate::InCurrentContext::without_context), none. A span brings the
    /// context it was created in back only where no scope is active (a plain thread, a plain
    /// `tokio::spawn(fut.instrument(span))`, a callback): a span created in request B and
    /// entered while request A is served gives A. A span guard held across an `.await` stays
    /// with its task: other tasks the thread runs meanwhile do not see its context.
    ///
    /// Returns `None` where none of these applies.
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
        // One clone, for the frame (not a `Mode` cloned again into it).
        let _guard = ScopeGuard::push(Some(self.clone()), None);
        f()
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

/// Sets `key` to `value` (any `serde::Serialize` value) in the current context (see
/// [`Context::set`]). With no current context this does nothing.
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new();
/// ctx.in_scope(|| {
///     tracing_ambient::set("tenant_id", "acme");
///     tracing_ambient::set("roles", vec!["admin", "editor"]);
/// });
/// assert_eq!(ctx.get("tenant_id").unwrap().to_string(), "acme");
/// assert_eq!(ctx.get("roles").unwrap().to_string(), r#"["admin","editor"]"#);
/// ```
pub fn set(key: &str, value: impl serde::Serialize) {
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
    fn a_span_entered_in_a_closure_scope_stays_current_after_it() {
        let ctx = Context::new().with_request_id("scope");
        ctx.in_scope(|| push_span(7, 0, Context::new().with_request_id("span")));
        assert_eq!(request_id().as_deref(), Some("span"));
        pop_span(7, 0);
        assert_eq!(request_id(), None);
    }

    #[test]
    fn a_scope_wins_over_entered_spans() {
        push_span(1, 0, Context::new().with_request_id("B"));
        Context::new().with_request_id("A").in_scope(|| {
            assert_eq!(request_id().as_deref(), Some("A"));
            push_span(2, 0, Context::new().with_request_id("B2"));
            assert_eq!(request_id().as_deref(), Some("A"));
            pop_span(2, 0);
        });
        assert_eq!(request_id().as_deref(), Some("B"));
        pop_span(1, 0);
    }

    #[test]
    fn a_span_exiting_inside_a_later_scope_does_not_strand_the_scope() {
        push_span(1, 0, Context::new().with_request_id("span"));
        Context::new()
            .with_request_id("A")
            .in_scope(|| pop_span(1, 0));
        assert_eq!(request_id(), None, "no frame is left behind");
    }

    #[test]
    fn spans_bring_no_context_back_inside_a_detached_scope() {
        run_in(&Mode::Detached, || {
            push_span(3, 0, Context::new().with_request_id("old request"));
            assert_eq!(request_id(), None);
            Context::new().with_request_id("job").in_scope(|| {
                push_span(4, 0, Context::new().with_request_id("job span"));
                assert_eq!(request_id().as_deref(), Some("job"));
                pop_span(4, 0);
            });
            pop_span(3, 0);
        });
    }

    #[test]
    fn span_frames_pop_out_of_order() {
        push_span(1, 0, Context::new().with_request_id("one"));
        push_span(2, 0, Context::new().with_request_id("two"));
        pop_span(1, 0);
        assert_eq!(request_id().as_deref(), Some("two"));
        pop_span(2, 0);
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
