//! No allocation per event inside OpenTelemetry spans with the `opentelemetry` feature: a
//! counting global allocator (this test binary's own) counts the allocations of this thread
//! across 10,000 events after warm-up.
//!
//! The OpenTelemetry layer is given spans only: its own `on_event` records each event on the
//! span, which allocates, and is not ours to count. What is counted is everything else the
//! event costs with OpenTelemetry spans present, our span-id lookup included.
#![cfg(feature = "opentelemetry")]

mod alloc_support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::{info, info_span};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Discards lines but keeps the last one, so the test can check the ids were written.
#[derive(Clone, Default)]
struct Discard {
    bytes: Arc<AtomicUsize>,
    last: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.fetch_add(buf.len(), Ordering::Relaxed);
        let mut last = self.last.lock().unwrap();
        last.clear();
        // Within the capacity kept from the warm-up: no allocation.
        last.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const EVENTS: usize = 10_000;

/// Counts the allocations of `EVENTS` calls of `event` after 100 calls of warm-up.
fn allocations_per_run(event: &mut dyn FnMut()) -> usize {
    alloc_support::allocations_per_run(100, EVENTS, event)
}

fn the_event() {
    info!(
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

#[test]
fn events_in_opentelemetry_spans_do_not_allocate() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let written = Discard::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("alloc"))
                .with_filter(filter_fn(|meta| {
                    meta.is_span() && meta.name() != "untracked"
                })),
        )
        .with(JsonLayer::new(move || writer.clone()));
    let mut report = Vec::new();
    let last_line = |written: &Discard| -> serde_json::Value {
        serde_json::from_slice(&written.last.lock().unwrap()).expect("a JSON line")
    };
    let mut lines = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let ctx = Context::new()
            .with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
        ctx.in_scope(|| {
            let request = info_span!("request");
            let _request = request.enter();

            // (a) directly in an OpenTelemetry span
            report.push(("(a) in an otel span", allocations_per_run(&mut the_event)));
            lines.push(last_line(&written));

            // (b) under 7 nested OpenTelemetry spans
            let spans: Vec<_> = (0..7).map(|depth| info_span!("child", depth)).collect();
            let entered: Vec<_> = spans.iter().map(|s| s.enter()).collect();
            report.push(("(b) 7 otel spans deep", allocations_per_run(&mut the_event)));
            lines.push(last_line(&written));

            // (c) in a span the OpenTelemetry layer does not track, under a tracked one
            let untracked = info_span!("untracked");
            let inside = untracked.enter();
            report.push(("(c) untracked span", allocations_per_run(&mut the_event)));
            lines.push(last_line(&written));
            drop(inside);
            drop(entered);

            // (d) explicit parent, a span never entered (started by the first lookup)
            let job = info_span!("job");
            report.push((
                "(d) explicit parent",
                allocations_per_run(&mut || info!(parent: &job, order_id = 42u64, "for job")),
            ));
            lines.push(last_line(&written));
        });
        // (e) outside any span: the context's ids
        ctx.in_scope(|| {
            report.push(("(e) no span", allocations_per_run(&mut the_event)));
            lines.push(last_line(&written));
        });

        // A control: the counter does see an allocation made for an event.
        let control = allocations_per_run(
            &mut || info!(s = %std::hint::black_box(String::from("allocates")), "control"),
        );
        assert!(
            control >= EVENTS,
            "the counting allocator counts ({control})"
        );
    });
    eprintln!("allocations per {EVENTS} events: {report:?}");
    assert!(
        written.bytes.load(Ordering::Relaxed) > 0,
        "lines were written"
    );
    // The lines did carry OpenTelemetry ids (not the context's) where they should.
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        let trace_id = line["traceId"].as_str().expect("traceId");
        assert_eq!(trace_id.len(), 32);
        let from_context = trace_id == "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(from_context, i == 4, "line {i}: {line}");
    }
    for (variant, n) in report {
        assert_eq!(n, 0, "{variant}: {n} allocations over {EVENTS} events");
    }
}
