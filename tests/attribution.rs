//! Issue 7 §2: a line carries the context of the innermost scope active on its thread; a span
//! brings its context back only where no scope is active. A span created while request B was
//! served and kept around (a pooled connection's span, a lazily built client) must never put
//! B on a line of request A.

mod common;

use std::sync::Arc;

use common::{Capture, Line};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tracing::{info, info_span, Instrument, Span};
use tracing_ambient::{Context, InCurrentContext, JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

fn dispatch(capture: &Capture) -> tracing::Dispatch {
    tracing_subscriber::registry()
        .with(JsonLayer::new(capture.clone()).with_filter(KeepSpans::new(EnvFilter::new("info"))))
        .into()
}

/// Runs `f` with a capturing subscriber on this thread and returns the lines, each parsed.
fn capture(f: impl FnOnce()) -> Vec<Line> {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&dispatch(&capture), f);
    capture.lines()
}

/// Runs `test` on a current-thread runtime (every task on this one thread).
fn capture_async<F: std::future::Future<Output = ()>>(test: F) -> Vec<Line> {
    capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test)
    })
}

/// The request id of the one line with `message`; `Value::Null` when it has none.
fn request_of(lines: &[Line], message: &str) -> Value {
    let found: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("message") == Some(message))
        .collect();
    assert_eq!(found.len(), 1, "one line {message:?} in {lines:?}");
    found[0].get("requestId").cloned().unwrap_or(Value::Null)
}

fn span_of_request(id: &str) -> Span {
    Context::new()
        .with_request_id(id)
        .in_scope(|| info_span!("kept", request = id))
}

#[test]
fn a_span_of_request_b_entered_inside_request_a_gives_a() {
    let lines = capture(|| {
        let b_span = span_of_request("B");
        Context::new().with_request_id("A").in_scope(|| {
            b_span.in_scope(|| info!("entered"));
            let _entered = b_span.enter();
            info!("held");
        });
    });
    assert_eq!(request_of(&lines, "entered"), json!("A"));
    assert_eq!(request_of(&lines, "held"), json!("A"));
}

#[test]
fn an_explicit_parent_of_request_b_inside_request_a_gives_a() {
    let lines = capture(|| {
        let b_span = span_of_request("B");
        Context::new().with_request_id("A").in_scope(|| {
            info!(parent: &b_span, "explicit parent");
            let child = info_span!(parent: &b_span, "child");
            child.in_scope(|| info!("in child"));
        });
        // Where no scope is active, the explicit parent's context is the line's.
        info!(parent: &b_span, "explicit parent, no scope");
    });
    assert_eq!(request_of(&lines, "explicit parent"), json!("A"));
    assert_eq!(request_of(&lines, "in child"), json!("A"));
    assert_eq!(request_of(&lines, "explicit parent, no scope"), json!("B"));
}

#[test]
fn a_span_of_request_b_entered_on_a_bare_thread_gives_b() {
    let lines = capture(|| {
        let b_span = span_of_request("B");
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                b_span.in_scope(|| info!("on a thread"));
                info!("after the span");
            })
        })
        .join()
        .unwrap();
    });
    assert_eq!(request_of(&lines, "on a thread"), json!("B"));
    assert_eq!(request_of(&lines, "after the span"), Value::Null);
}

#[test]
fn a_plain_spawn_instrumented_with_b_gives_b() {
    let lines = capture_async(async {
        let b_span = span_of_request("B");
        let handle = Context::new().with_request_id("A").in_scope(|| {
            // A plain tokio::spawn runs outside A's scope: the span brings B back.
            tokio::spawn(async { info!("spawned") }.instrument(b_span))
        });
        handle.await.unwrap();
    });
    assert_eq!(request_of(&lines, "spawned"), json!("B"));
}

#[test]
fn a_scope_around_a_future_instrumented_with_b_gives_the_scope() {
    let lines = capture_async(async {
        let b_span = span_of_request("B");
        Context::new()
            .with_request_id("A2")
            .scope(
                async {
                    info!("first poll");
                    tokio::task::yield_now().await;
                    info!("second poll");
                }
                .instrument(b_span),
            )
            .await;
    });
    assert_eq!(request_of(&lines, "first poll"), json!("A2"));
    assert_eq!(request_of(&lines, "second poll"), json!("A2"));
}

#[test]
fn a_span_entered_inside_a_closure_scope_keeps_its_context_after_it() {
    let lines = capture(|| {
        let span = span_of_request("S");
        let guard = Context::new()
            .with_request_id("X")
            .in_scope(|| span.clone().entered());
        info!("inside the guard");
        drop(guard);
        info!("after the guard");
    });
    assert_eq!(request_of(&lines, "inside the guard"), json!("S"));
    assert_eq!(request_of(&lines, "after the guard"), Value::Null);
}

/// A span guard held across an `.await` of a future no scope wraps (tracing's docs call this a
/// mistake; it happens): while that future is parked, the other tasks of the thread must not
/// log with its context.
#[test]
fn a_span_held_across_an_await_of_block_on_stays_with_its_future() {
    let lines = capture_async(async {
        let b_span = span_of_request("B");
        let _held = b_span.enter();
        info!("block_on future");
        tokio::spawn(async { info!("unrelated task") })
            .await
            .unwrap();
        info!("block_on future again");
    });
    assert_eq!(request_of(&lines, "block_on future"), json!("B"));
    assert_eq!(request_of(&lines, "unrelated task"), Value::Null);
    assert_eq!(request_of(&lines, "block_on future again"), json!("B"));
}

#[test]
fn a_span_held_across_an_await_of_spawn_local_stays_with_its_task() {
    let lines = capture_async(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let parked = Arc::new(Notify::new());
                let resume = Arc::new(Notify::new());
                let holder = tokio::task::spawn_local({
                    let (parked, resume) = (parked.clone(), resume.clone());
                    async move {
                        let b_span = span_of_request("B");
                        let _held = b_span.enter();
                        info!("holder before");
                        parked.notify_one();
                        resume.notified().await;
                        info!("holder after");
                    }
                });
                parked.notified().await;
                tokio::task::spawn_local(async { info!("other local task") })
                    .await
                    .unwrap();
                info!("run_until future");
                resume.notify_one();
                holder.await.unwrap();
            })
            .await;
    });
    assert_eq!(request_of(&lines, "holder before"), json!("B"));
    assert_eq!(request_of(&lines, "other local task"), Value::Null);
    assert_eq!(request_of(&lines, "run_until future"), Value::Null);
    assert_eq!(request_of(&lines, "holder after"), json!("B"));
}

/// The same inside a request: the guard held across an `.await` (or leaked) in request A's
/// future goes with that future; the other tasks of the thread, and a later request, never
/// see A.
#[test]
fn a_span_held_or_leaked_in_a_request_future_stays_with_it() {
    let lines = capture_async(async {
        let resume = Arc::new(Notify::new());
        let request_a = tokio::spawn(Context::new().with_request_id("A").scope({
            let resume = resume.clone();
            async move {
                let span = info_span!("a work");
                let _held = span.enter();
                std::mem::forget(info_span!("a leaked").entered());
                resume.notified().await;
                info!("a resumed");
            }
        }));
        tokio::task::yield_now().await;
        tokio::spawn(async { info!("plain task") }).await.unwrap();
        info!("main future");
        Context::new()
            .with_request_id("C")
            .scope(async { info!("request c") })
            .await;
        resume.notify_one();
        request_a.await.unwrap();
        tokio::spawn(async { info!("plain task after a") })
            .await
            .unwrap();
    });
    assert_eq!(request_of(&lines, "plain task"), Value::Null);
    assert_eq!(request_of(&lines, "main future"), Value::Null);
    assert_eq!(request_of(&lines, "request c"), json!("C"));
    assert_eq!(request_of(&lines, "a resumed"), json!("A"));
    assert_eq!(request_of(&lines, "plain task after a"), Value::Null);
}

#[test]
fn detached_work_inside_a_request_gives_no_context() {
    let lines = capture_async(async {
        let b_span = span_of_request("B");
        Context::new()
            .with_request_id("A")
            .scope(async move {
                async { info!("detached") }
                    .instrument(b_span)
                    .without_context()
                    .await;
            })
            .await;
    });
    assert_eq!(request_of(&lines, "detached"), Value::Null);
}
