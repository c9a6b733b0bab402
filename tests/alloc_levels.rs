//! Context levels and the debug buffer allocate nothing per event (issue 18): under
//! `init()`'s filter (`KeepSpans(ContextLevel(EnvFilter))`), a counting global allocator
//! counts this thread's allocations across 10,000 events after warm-up.

mod alloc_support;

use alloc_support::Discard;

use std::sync::atomic::Ordering;

use tracing::{debug, Level};
use tracing_ambient::{Context, ContextLevel, JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const EVENTS: usize = 10_000;

/// Counts the allocations of `EVENTS` calls of `event` after 100 calls of warm-up.
fn allocations_per_run(event: &mut dyn FnMut()) -> usize {
    alloc_support::allocations_per_run(100, EVENTS, event)
}

fn the_debug_event() {
    debug!(
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

/// The most allocations a buffer may make while it grows to hold `EVENTS` lines: its two
/// vectors double as they grow (some 20 steps each from empty to 10,000 lines of 250
/// bytes), far fewer than one per event.
const GROWTH: usize = 64;

#[test]
fn levels_and_held_events_do_not_allocate_per_event() {
    let written = Discard::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::registry()
        .with(KeepSpans::new(ContextLevel::new(EnvFilter::new("info"))))
        .with(JsonLayer::new(move || writer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let request = || {
            Context::new()
                .with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
                .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .with_user_id(42)
        };

        // (d) below the filter, in a context with no level: nothing.
        let disabled = request().in_scope(|| allocations_per_run(&mut the_debug_event));
        assert_eq!(disabled, 0, "disabled: {disabled} allocations");
        assert_eq!(written.0.load(Ordering::Relaxed), 0, "nothing written");

        // (h) in a context whose level lets it through: written, as an enabled event.
        let raised = request()
            .with_level(Level::DEBUG)
            .in_scope(|| allocations_per_run(&mut the_debug_event));
        assert_eq!(raised, 0, "raised: {raised} allocations");
        let after_raised = written.0.load(Ordering::Relaxed);
        assert!(after_raised > 0, "the raised events were written");

        // (d) again, now that a context asked for debug: asked at each event, still nothing.
        let disabled = request().in_scope(|| allocations_per_run(&mut the_debug_event));
        assert_eq!(
            disabled, 0,
            "disabled after a raise: {disabled} allocations"
        );
        assert_eq!(
            written.0.load(Ordering::Relaxed),
            after_raised,
            "nothing written"
        );

        // (i) held in the context's buffer: its growth only, and nothing written.
        let held = request().buffer(Level::DEBUG).with_buffer_limit(16 << 20);
        let holding = held.in_scope(|| allocations_per_run(&mut the_debug_event));
        eprintln!("{holding} allocations to hold {EVENTS} lines");
        assert!(holding <= GROWTH, "held: {holding} allocations");
        assert_eq!(written.0.load(Ordering::Relaxed), after_raised, "held back");
        held.in_scope(tracing_ambient::flush_buffer);
        assert!(
            written.0.load(Ordering::Relaxed) > after_raised,
            "the flush wrote the held lines"
        );

        // A full buffer counts the lines it drops: nothing at all.
        let full = request().buffer(Level::DEBUG).with_buffer_limit(0);
        let dropping = full.in_scope(|| allocations_per_run(&mut the_debug_event));
        assert_eq!(dropping, 0, "dropped: {dropping} allocations");

        // A control: the counter does see an allocation made for an event.
        let control = request().with_level(Level::DEBUG).in_scope(|| {
            allocations_per_run(
                &mut || debug!(s = %std::hint::black_box(String::from("allocates")), "control"),
            )
        });
        assert!(
            control >= EVENTS,
            "the counting allocator counts ({control})"
        );
    });
}
