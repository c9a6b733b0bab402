//! Spans created inside a context carry it wherever they are entered; the crate's helpers carry
//! it across spawn, blocking pools and threads; filtering cannot strip it.

mod common;

use common::{Capture, Line};
use serde_json::json;
use tracing::instrument::WithSubscriber;
use tracing::{info, info_span, Instrument, Span};
use tracing_ambient::{Context, InCurrentContext, JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// The composition `init()` uses: the level filter on the layer, spans kept.
fn dispatch(capture: &Capture, filter: &str) -> tracing::Dispatch {
    tracing_subscriber::registry()
        .with(JsonLayer::new(capture.clone()).with_filter(KeepSpans::new(EnvFilter::new(filter))))
        .into()
}

/// Runs `test` on a multi-thread runtime with the subscriber installed on every thread.
fn run_async<F: std::future::Future<Output = ()> + Send + 'static>(
    filter: &str,
    test: F,
) -> Vec<Line> {
    let capture = Capture::default();
    let dispatch = dispatch(&capture, filter);
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            // Each worker gets the test's subscriber; the guard lives for the thread.
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(test.with_subscriber(dispatch));
    drop(runtime);
    capture.lines()
}

/// Runs `f` on a new OS thread with this thread's subscriber (a global one would need none).
fn on_thread(f: impl FnOnce() + Send + 'static) {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::spawn(move || tracing::dispatcher::with_default(&dispatch, f))
        .join()
        .unwrap();
}

fn by_message<'a>(lines: &'a [Line], message: &str) -> &'a Line {
    lines
        .iter()
        .find(|l| l.str("message") == Some(message))
        .unwrap_or_else(|| panic!("no line {message:?} in {lines:?}"))
}

#[tracing::instrument]
async fn instrumented(order_id: u64) {
    tokio::task::yield_now().await;
    info!("in #[instrument]");
}

#[test]
fn spans_created_inside_carry_the_context_everywhere() {
    let lines = run_async("info", async {
        Context::new()
            .with_request_id("r1")
            .scope(async {
                let span = info_span!("work");
                // .instrument(span) polled in a task that has no context
                tokio::spawn(async { info!("instrument") }.instrument(span.clone()))
                    .await
                    .unwrap();
                // in_current_span() inside the span, spawned bare
                let task = span.in_scope(|| {
                    tokio::spawn(async { info!("in_current_span") }.in_current_span())
                });
                task.await.unwrap();
                // #[instrument], spawned inside the span
                let child = span.in_scope(|| tokio::spawn(instrumented(7).in_current_span()));
                child.await.unwrap();
                // Span::current().in_scope on another OS thread
                let current = span.in_scope(Span::current);
                on_thread(move || current.in_scope(|| info!("thread in_scope")));
            })
            .await;
    });
    for message in [
        "instrument",
        "in_current_span",
        "in #[instrument]",
        "thread in_scope",
    ] {
        assert_eq!(
            by_message(&lines, message).at("requestId"),
            &json!("r1"),
            "{message}"
        );
    }
}

#[test]
fn helpers_carry_the_context_and_detach_on_request() {
    let lines = run_async("info", async {
        Context::new()
            .with_request_id("r2")
            .scope(async {
                tracing_ambient::spawn(async { info!("spawn") })
                    .await
                    .unwrap();
                tracing_ambient::spawn_blocking(|| info!("spawn_blocking"))
                    .await
                    .unwrap();
                tokio::spawn(async { info!("in_current_context") }.in_current_context())
                    .await
                    .unwrap();
                let ctx = Context::current().unwrap();
                on_thread(move || ctx.in_scope(|| info!("thread")));
                tokio::spawn(async { info!("bare tokio::spawn") })
                    .await
                    .unwrap();
                tracing_ambient::spawn_detached(async { info!("detached") })
                    .await
                    .unwrap();
                async { info!("without_context") }.without_context().await;
            })
            .await;
    });
    for message in ["spawn", "spawn_blocking", "in_current_context", "thread"] {
        assert_eq!(
            by_message(&lines, message).at("requestId"),
            &json!("r2"),
            "{message}"
        );
    }
    for message in ["bare tokio::spawn", "detached", "without_context"] {
        assert!(
            by_message(&lines, message).get("requestId").is_none(),
            "{message}"
        );
    }
}

#[test]
fn late_values_reach_spawned_tasks_and_children_on_other_threads() {
    let lines = run_async("info", async {
        Context::new()
            .with_request_id("r3")
            .scope(async {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let task = tracing_ambient::spawn(async move {
                    rx.await.unwrap();
                    info!("after login");
                });
                tracing_ambient::set_user_id(99);
                tracing_ambient::set("tenant_id", "acme");
                tx.send(()).unwrap();
                task.await.unwrap();
            })
            .await;
    });
    let line = by_message(&lines, "after login");
    assert_eq!(line.at("userId"), &json!(99));
    assert_eq!(line.at("tenantId"), &json!("acme"));
}

#[test]
fn filtering_spans_out_cannot_strip_the_context() {
    // The spans belong to another crate ("dependency") and are at info: `warn` disables them
    // by level, `propagation=debug` by target.
    for filter in [
        "warn",
        "propagation=debug",
        "propagation=debug,tracing_ambient=off",
    ] {
        let lines = run_async(filter, async {
            Context::new()
                .with_request_id("r4")
                .scope(async {
                    // Info spans, below a warn filter. Each path below has only the span to
                    // carry the request: the tasks are spawned bare and the thread is new.
                    let span = info_span!(target: "dependency", "below the filter");
                    tokio::spawn(
                        async { tracing::warn!("bare spawn, instrumented") }
                            .instrument(span.clone()),
                    )
                    .await
                    .unwrap();
                    let task = span.in_scope(|| {
                        tokio::spawn(
                            async { tracing::warn!("bare spawn, in_current_span") }
                                .in_current_span(),
                        )
                    });
                    task.await.unwrap();
                    let task =
                        span.in_scope(|| tokio::spawn(instrumented_warn().in_current_span()));
                    task.await.unwrap();
                    let current = span.in_scope(Span::current);
                    on_thread(move || current.in_scope(|| tracing::warn!("thread in_scope")));
                    tracing::trace!("below the filter, not written");
                })
                .await;
        });
        let messages: Vec<_> = lines.iter().filter_map(|l| l.str("message")).collect();
        assert_eq!(
            messages,
            [
                "bare spawn, instrumented",
                "bare spawn, in_current_span",
                "warn in #[instrument]",
                "thread in_scope"
            ],
            "{filter}"
        );
        for line in &lines {
            assert_eq!(line.at("requestId"), &json!("r4"), "{filter}: {line:?}");
        }
    }
}

#[tracing::instrument(target = "dependency")]
async fn instrumented_warn() {
    tokio::task::yield_now().await;
    tracing::warn!("warn in #[instrument]");
}

#[test]
fn a_global_level_filter_is_what_strips_spans() {
    // The composition KeepSpans avoids: the filter in front of the whole subscriber disables
    // the span, so a task that only the span could carry loses the request.
    let capture = Capture::default();
    let dispatch: tracing::Dispatch = tracing_subscriber::registry()
        .with(EnvFilter::new("warn"))
        .with(JsonLayer::new(capture.clone()))
        .into();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = Context::new()
            .with_request_id("r5")
            .in_scope(|| info_span!("disabled"));
        span.in_scope(|| tracing::warn!("lost"));
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].get("requestId").is_none());
}

#[test]
fn a_detached_listener_never_takes_a_requests_context() {
    let lines = run_async("info", async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let handle = Context::new().with_request_id("first").in_scope(move || {
            // Started from inside a request, and (by mistake) with the request's span.
            let loop_span = info_span!("listener loop");
            tracing_ambient::spawn_detached(
                async move {
                    while let Some(job) = rx.recv().await {
                        info!(job, "listener handled job");
                        Context::new()
                            .with_request_id(format!("job-{job}"))
                            .scope(async { info!(job, "job context") })
                            .await;
                    }
                }
                .instrument(loop_span),
            )
        });
        Context::new()
            .with_request_id("second")
            .scope(async { tx.send(2).unwrap() })
            .await;
        drop(tx);
        handle.await.unwrap();
    });
    let handled = by_message(&lines, "listener handled job");
    assert!(handled.get("requestId").is_none(), "{handled:?}");
    assert_eq!(
        by_message(&lines, "job context").at("requestId"),
        &json!("job-2")
    );
}

#[test]
fn a_cancelled_request_unwinds_inside_its_context() {
    struct Transaction;
    impl Drop for Transaction {
        fn drop(&mut self) {
            tracing::warn!("rolled back");
        }
    }
    let lines = run_async("info", async {
        let request = Context::new().with_request_id("cancelled").scope(async {
            let _tx = Transaction;
            info!("began");
            std::future::pending::<()>().await;
        });
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(5), request).await;
        assert!(timed_out.is_err());
    });
    assert_eq!(
        by_message(&lines, "began").at("requestId"),
        &json!("cancelled")
    );
    assert_eq!(
        by_message(&lines, "rolled back").at("requestId"),
        &json!("cancelled")
    );
}

/// Issue 7 §2: the innermost scope wins; a span brings its context back only where no scope
/// is active (tests/attribution.rs covers every case).
#[test]
fn a_span_from_one_request_entered_inside_another_gives_the_other() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&dispatch(&capture, "info"), || {
        let span_a = Context::new()
            .with_request_id("a")
            .in_scope(|| info_span!("a"));
        Context::new().with_request_id("b").in_scope(|| {
            info!("in b");
            span_a.in_scope(|| info!("span a entered in b"));
            info!("in b again");
        });
    });
    let lines = capture.lines();
    assert_eq!(by_message(&lines, "in b").at("requestId"), &json!("b"));
    assert_eq!(
        by_message(&lines, "span a entered in b").at("requestId"),
        &json!("b")
    );
    assert_eq!(
        by_message(&lines, "in b again").at("requestId"),
        &json!("b")
    );
}

#[test]
fn explicit_parent_gives_its_context() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&dispatch(&capture, "info"), || {
        let parent = Context::new()
            .with_request_id("p")
            .in_scope(|| info_span!("parent"));
        let child = info_span!(parent: &parent, "child");
        child.in_scope(|| info!("child of p"));
    });
    assert_eq!(
        by_message(&capture.lines(), "child of p").at("requestId"),
        &json!("p")
    );
}

#[test]
fn context_rides_in_a_job_payload() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&dispatch(&capture, "info"), || {
        let payload = Context::new()
            .with_request_id("job-7")
            .with_user_id(42)
            .with("tenant_id", "acme")
            .in_scope(|| serde_json::to_string(&Context::current().unwrap()).unwrap());
        // ... another process picks the job up:
        let ctx: Context = serde_json::from_str(&payload).unwrap();
        ctx.in_scope(|| info!("job ran"));
    });
    let line = by_message(&capture.lines(), "job ran").clone();
    assert_eq!(line.at("requestId"), &json!("job-7"));
    assert_eq!(line.at("userId"), &json!(42));
    assert_eq!(line.at("tenantId"), &json!("acme"));
}

/// Issue 7 §5: `with*` on a clone copies a shared store; `set` keeps writing into it.
#[test]
fn a_context_derived_with_with_leaves_the_request_alone() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&dispatch(&capture, "info"), || {
        let request = Context::new().with_request_id("r1");
        request.in_scope(|| {
            let job = Context::current().unwrap().with("item", 7);
            job.in_scope(|| info!("job line"));
            tracing_ambient::set("tenant_id", "acme");
            info!("request line");
            job.in_scope(|| info!("job line after set"));
        });
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 3);
    let job = by_message(&lines, "job line");
    assert_eq!(job.at("requestId"), &json!("r1"));
    assert_eq!(job.at("item"), &json!(7));
    let request = by_message(&lines, "request line");
    assert_eq!(
        request.get("item"),
        None,
        "the job's key reached the request"
    );
    assert_eq!(request.at("tenantId"), &json!("acme"));
    let later = by_message(&lines, "job line after set");
    assert_eq!(later.get("tenantId"), None);
}
