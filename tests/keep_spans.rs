//! Issue 10 §3: `KeepSpans` keeps the spans that can carry a context, whatever their level,
//! and no others: a span below the filter is kept only where a context is current.
//!
//! Callsite interest is shared by every dispatcher alive in the process, so the one
//! composition that makes every span's interest `always` (`with_every_span`) runs in a child
//! process, where it cannot change what the other tests see.

mod common;

use common::Capture;
use serde_json::json;
use tracing::{info_span, trace_span, warn, warn_span, Span};
use tracing_ambient::{Context, InCurrentContext, JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// `KeepSpans` as a per-layer filter, as `init()` composes it; lines name their span.
fn per_layer(capture: &Capture) -> tracing::Dispatch {
    tracing_subscriber::registry()
        .with(
            JsonLayer::new(capture.clone())
                .with_span_name(true)
                .with_filter(KeepSpans::new(EnvFilter::new("warn"))),
        )
        .into()
}

/// `KeepSpans` as a layer in front of the subscriber.
fn global(capture: &Capture) -> tracing::Dispatch {
    tracing_subscriber::registry()
        .with(KeepSpans::new(EnvFilter::new("warn")))
        .with(JsonLayer::new(capture.clone()).with_span_name(true))
        .into()
}

#[test]
fn as_a_layer_spans_below_the_filter_outside_any_context_are_not_created() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&global(&capture), || {
        // What hyper and h2 open per connection and per poll, outside any request.
        assert!(trace_span!("poll").is_disabled());
        assert!(info_span!("connection").is_disabled());
        // A span the filter enables is made anywhere.
        assert!(!warn_span!("warn span").is_disabled());
        // Inside a request, a span below the filter is made.
        let inside = Context::new().in_scope(|| trace_span!("inside"));
        assert!(!inside.is_disabled());
    });
}

#[test]
fn as_a_per_layer_filter_the_layer_never_sees_spans_outside_any_context() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&per_layer(&capture), || {
        trace_span!("poll").in_scope(|| warn!("outside"));
        Context::new()
            .with_request_id("r0")
            .in_scope(|| trace_span!("handler").in_scope(|| warn!("inside")));
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].at("message"), &json!("outside"));
    assert_eq!(
        lines[0].get("span"),
        None,
        "the poll span is not the layer's"
    );
    assert_eq!(lines[1].at("message"), &json!("inside"));
    assert_eq!(lines[1].at("span"), &json!("handler"));
    assert_eq!(lines[1].at("requestId"), &json!("r0"));
}

#[test]
fn spans_below_the_filter_inside_a_context_carry_it_to_other_threads() {
    for (name, make) in [
        ("per-layer", per_layer as fn(&Capture) -> tracing::Dispatch),
        ("layer", global),
    ] {
        let capture = Capture::default();
        let dispatch = make(&capture);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = Context::new()
                .with_request_id("r1")
                .in_scope(|| trace_span!("inside"));
            // Entered on a thread where no context is current, it brings the request back.
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| warn!("on a thread"))
                })
            })
            .join()
            .expect("thread");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{name}");
        assert_eq!(lines[0].at("message"), &json!("on a thread"), "{name}");
        assert_eq!(lines[0].at("requestId"), &json!("r1"), "{name}");
        assert_eq!(lines[0].at("span"), &json!("inside"), "{name}");
    }
}

#[test]
fn spans_inside_a_span_that_carries_a_context_are_kept() {
    for (name, make) in [
        ("per-layer", per_layer as fn(&Capture) -> tracing::Dispatch),
        ("layer", global),
    ] {
        let capture = Capture::default();
        tracing::dispatcher::with_default(&make(&capture), || {
            let request = Context::new()
                .with_request_id("r2")
                .in_scope(|| info_span!("request"));
            // No scope is active here: the entered span makes its context current.
            let inner: Span = request.in_scope(|| trace_span!("inner"));
            inner.in_scope(|| warn!("in inner"));
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{name}");
        assert_eq!(lines[0].at("requestId"), &json!("r2"), "{name}");
        assert_eq!(lines[0].at("span"), &json!("inner"), "{name}");
    }
}

#[test]
fn spans_below_the_filter_in_a_detached_scope_are_not_created() {
    let capture = Capture::default();
    tracing::dispatcher::with_default(&global(&capture), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        Context::new().with_request_id("r3").in_scope(|| {
            let listener = runtime.block_on(async { trace_span!("listener") }.without_context());
            assert!(listener.is_disabled());
        });
    });
}

/// Run by [`with_every_span_creates_them_all`] in a child process.
#[test]
#[ignore = "run in a child process by with_every_span_creates_them_all"]
fn every_span_child() {
    let capture = Capture::default();
    let dispatch: tracing::Dispatch = tracing_subscriber::registry()
        .with(KeepSpans::new(EnvFilter::new("warn")).with_every_span(true))
        .with(JsonLayer::new(capture.clone()))
        .into();
    tracing::dispatcher::with_default(&dispatch, || {
        assert!(!trace_span!("poll").is_disabled());
    });
}

#[test]
fn with_every_span_creates_them_all() {
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["every_span_child", "--exact", "--ignored", "--quiet"])
        .status()
        .expect("child test");
    assert!(status.success(), "every_span_child failed: {status}");
}
