//! Carrying the context where Rust loses it: `tokio::spawn`, `spawn_blocking`, and any future
//! polled somewhere else; and running deliberately without it.

use std::future::Future;

use tokio::task::JoinHandle;
use tracing::instrument::{Instrument, Instrumented};
use tracing::Span;

use super::current::{run_in, Mode, Scoped};
use super::store::Context;

/// Carries the context into a future, or runs it deliberately without one.
///
/// Implemented for every future.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, InCurrentContext};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new().with_request_id("r1").scope(async {
///     // tokio::spawn alone would lose the context.
///     let carried = tokio::spawn(async { tracing_ambient::request_id() }.in_current_context());
///     assert_eq!(carried.await.unwrap().as_deref(), Some("r1"));
///
///     // A long-lived listener must not keep this request's id.
///     let detached = tokio::spawn(async { tracing_ambient::request_id() }.without_context());
///     assert_eq!(detached.await.unwrap(), None);
/// }).await;
/// # }
/// ```
pub trait InCurrentContext: Future + Sized {
    /// Returns a future that runs with the context that is current now, wherever it is polled.
    /// With no current context, nothing changes: the future sees whatever is current where
    /// it is polled.
    fn in_current_context(self) -> Scoped<Self> {
        Scoped::new(self, current_mode())
    }

    /// Returns a future that runs without any context, even when polled inside one. Spans it
    /// creates carry no context, and spans created in a request and entered inside it bring
    /// none back, so a long-lived listener never keeps a finished request's id. A context
    /// opened inside it (one per job, say) works as anywhere else.
    fn without_context(self) -> Scoped<Self> {
        Scoped::new(self, Mode::Detached)
    }
}

impl<F: Future> InCurrentContext for F {}

/// Spawns a task on the current tokio runtime with the current context and the current span.
///
/// This is `tokio::spawn(future.in_current_context().in_current_span())`: the span is entered
/// first and the context made current inside it, so the task sees the context that is current
/// now even when the span was created under another one.
///
/// # Panics
///
/// Panics when called outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// use tracing_ambient::Context;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new().with_request_id("r1").scope(async {
///     let task = tracing_ambient::spawn(async {
///         tracing::info!("sent the receipt"); // carries requestId r1
///         tracing_ambient::request_id()
///     });
///     assert_eq!(task.await.unwrap().as_deref(), Some("r1"));
/// }).await;
/// # }
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(carry(future))
}

/// Spawns a task on the current tokio runtime with no context and no span: for long-lived
/// listeners and workers started from inside a request.
///
/// # Panics
///
/// Panics when called outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// use tracing_ambient::Context;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new().with_request_id("r1").scope(async {
///     let listener = tracing_ambient::spawn_detached(async { tracing_ambient::request_id() });
///     assert_eq!(listener.await.unwrap(), None);
/// }).await;
/// # }
/// ```
pub fn spawn_detached<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.without_context())
}

/// Runs a blocking closure on tokio's blocking pool with the current context and span.
///
/// # Panics
///
/// Panics when called outside a tokio runtime, as `tokio::task::spawn_blocking` does.
///
/// # Examples
///
/// ```
/// use tracing_ambient::Context;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new().with_request_id("r1").scope(async {
///     let id = tracing_ambient::spawn_blocking(tracing_ambient::request_id).await.unwrap();
///     assert_eq!(id.as_deref(), Some("r1"));
/// }).await;
/// # }
/// ```
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let mode = current_mode();
    let span = Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| run_in(&mode, f)))
}

/// The current context to carry, or nothing to change when there is none.
fn current_mode() -> Mode {
    Context::current().map_or(Mode::Passthrough, Mode::Context)
}

fn carry<F: Future>(future: F) -> Instrumented<Scoped<F>> {
    future.in_current_context().in_current_span()
}
