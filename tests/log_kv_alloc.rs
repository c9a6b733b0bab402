//! No allocation per `log` record with key-values once its shape has a callsite (issue 11.5):
//! the counting allocator of `tests/alloc.rs`, over 10,000 `log::info!` calls after warm-up,
//! through the crate's `LogBridge` installed as this binary's `log` logger; the writer checks
//! that every line carries the key-values as fields.

mod alloc_support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing_ambient::{Context, JsonLayer, LogBridge};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Discards lines, counting them and those that carry `"order_id":7,"user":"u1"`, without
/// allocating.
#[derive(Clone, Default)]
struct Discard {
    lines: Arc<AtomicUsize>,
    with_fields: Arc<AtomicUsize>,
}

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lines.fetch_add(1, Ordering::Relaxed);
        let fields = br#","order_id":7,"user":"u1"}"#;
        if buf.windows(fields.len()).any(|w| w == fields) {
            self.with_fields.fetch_add(1, Ordering::Relaxed);
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

#[test]
fn log_records_with_key_values_do_not_allocate() {
    LogBridge::new()
        .init()
        .expect("the only `log` logger of this binary");
    let written = Discard::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(JsonLayer::new(move || writer.clone()));
    let mut report = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let ctx = Context::new().with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77");
        ctx.in_scope(|| {
            report.push((
                "in request",
                allocations_per_run(&mut || log::info!(order_id = 7, user = "u1"; "placed")),
            ));
        });
        report.push((
            "no context",
            allocations_per_run(&mut || log::info!(order_id = 7, user = "u1"; "placed")),
        ));
        report.push((
            "below the level",
            allocations_per_run(&mut || log::debug!(order_id = 7; "not written")),
        ));
        // A control: the counter does see an allocation made for a record.
        let control = allocations_per_run(
            &mut || log::info!(s:% = std::hint::black_box(String::from("allocates")); "control"),
        );
        assert!(
            control >= EVENTS,
            "the counting allocator counts ({control})"
        );
    });
    let lines = written.lines.load(Ordering::Relaxed);
    let with_fields = written.with_fields.load(Ordering::Relaxed);
    eprintln!(
        "allocations per {EVENTS} records: {report:?}; {lines} lines, {with_fields} with the fields"
    );
    assert_eq!(
        lines,
        3 * (WARM_UP + EVENTS),
        "every info record was written"
    );
    assert_eq!(
        with_fields,
        2 * (WARM_UP + EVENTS),
        "the placed lines have the fields"
    );
    for (variant, n) in report {
        assert_eq!(n, 0, "{variant}: {n} allocations over {EVENTS} records");
    }
}
