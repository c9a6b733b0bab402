//! No allocation per event in steady state: a counting global allocator (this test binary's
//! own) counts the allocations of this thread across 10,000 events after warm-up.

mod alloc_support;

use alloc_support::Discard;

use std::sync::atomic::Ordering;

use tracing::{debug, info, info_span};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

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
fn events_do_not_allocate_in_steady_state() {
    let written = Discard::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(JsonLayer::new(move || writer.clone()));
    let mut report = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let ctx = Context::new()
            .with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
        ctx.in_scope(|| {
            tracing_ambient::set_user_id(42);

            // (a) the event directly in the request
            report.push(("(a) in request", allocations_per_run(&mut the_event)));

            // (b) the same event under 7 nested child spans, each with one small field
            let spans: Vec<_> = (0..7).map(|depth| info_span!("child", depth)).collect();
            let entered: Vec<_> = spans.iter().map(|s| s.enter()).collect();
            report.push(("(b) 7 spans deep", allocations_per_run(&mut the_event)));
            drop(entered);

            // (d) an event below the filter level
            report.push((
                "(d) disabled",
                allocations_per_run(&mut || debug!(order_id = 42u64, "not written")),
            ));

            // format_args! messages with arguments
            let mut n = 0u64;
            report.push((
                "format_args",
                allocations_per_run(&mut || {
                    n += 1;
                    info!(n, "order {} placed for {:?}", n, "ABC-123")
                }),
            ));
        });
        // (c) no context at all
        report.push(("(c) no context", allocations_per_run(&mut the_event)));

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
    assert!(written.0.load(Ordering::Relaxed) > 0, "lines were written");
    for (variant, n) in report {
        assert_eq!(n, 0, "{variant}: {n} allocations over {EVENTS} events");
    }
}
