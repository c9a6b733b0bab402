//! No allocation per event with `elapsedMs` on (issue 11.2): the same counting allocator as
//! `tests/alloc.rs`, over 10,000 events after warm-up, in a request with a deadline and
//! without a context; the writer checks that the lines in the request carry the key.

mod alloc_support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::info;
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Discards lines, counting them and those that carry `"elapsedMs":<number>`, without
/// allocating.
#[derive(Clone, Default)]
struct Discard {
    lines: Arc<AtomicUsize>,
    with_elapsed: Arc<AtomicUsize>,
}

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lines.fetch_add(1, Ordering::Relaxed);
        let key = br#","elapsedMs":"#;
        if let Some(at) = buf.windows(key.len()).position(|w| w == key) {
            if buf.get(at + key.len()).is_some_and(u8::is_ascii_digit) {
                self.with_elapsed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const EVENTS: usize = 10_000;
const WARM_UP: usize = 100;

/// Counts the allocations of `EVENTS` calls of `event` after `WARM_UP` calls.
fn allocations_per_run(event: &mut dyn FnMut()) -> usize {
    alloc_support::allocations_per_run(WARM_UP, EVENTS, event)
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
fn events_with_elapsed_do_not_allocate() {
    let written = Discard::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(JsonLayer::new(move || writer.clone()).with_elapsed(true));
    let mut report = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let ctx = Context::new()
            .with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
            .with_timeout(Duration::from_secs(60));
        ctx.in_scope(|| {
            tracing_ambient::set_user_id(42);
            report.push(("in request", allocations_per_run(&mut the_event)));
        });
        report.push(("no context", allocations_per_run(&mut the_event)));

        // A control: the counter does see an allocation made for an event.
        let control = allocations_per_run(
            &mut || info!(s = %std::hint::black_box(String::from("allocates")), "control"),
        );
        assert!(
            control >= EVENTS,
            "the counting allocator counts ({control})"
        );
    });
    let lines = written.lines.load(Ordering::Relaxed);
    let with_elapsed = written.with_elapsed.load(Ordering::Relaxed);
    eprintln!(
        "allocations per {EVENTS} events: {report:?}; {lines} lines, {with_elapsed} with elapsedMs"
    );
    assert_eq!(lines, 3 * (WARM_UP + EVENTS), "every event was written");
    assert_eq!(
        with_elapsed,
        WARM_UP + EVENTS,
        "exactly the lines in the request carry elapsedMs"
    );
    for (variant, n) in report {
        assert_eq!(n, 0, "{variant}: {n} allocations over {EVENTS} events");
    }
}
