//! No allocation per event in steady state under each preset (issue 8 §3): the value forms
//! (Google Cloud's trace path, Datadog's decimal ids, the access line's `httpRequest` object,
//! ECS's error stack trace, the sampled flag) are written straight into the line. A counting
//! global allocator (this test binary's own) counts the allocations of this thread.

mod alloc_support;

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::{error, info, info_span};
use tracing_ambient::otel::{SpanIds, SpanView};
use tracing_ambient::{Context, JsonLayer, Schema};
use tracing_subscriber::prelude::*;

/// Keeps the last line written, so the test can see what was measured, and counts bytes.
#[derive(Clone, Default)]
struct Last(Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for Last {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        let mut last = self.1.lock().unwrap();
        // Reuses the buffer's capacity: no allocation once it is large enough.
        last.clear();
        last.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const EVENTS: usize = 5_000;

/// Counts the allocations of `EVENTS` calls of `event` after 100 calls of warm-up.
fn allocations_per_run(event: &mut dyn FnMut()) -> usize {
    alloc_support::allocations_per_run(100, EVENTS, event)
}

#[derive(Debug)]
struct Failed(&'static str, Option<&'static Failed>);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Failed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.map(|cause| cause as _)
    }
}

static TIMEOUT: Failed = Failed("timeout", None);
static QUERY_FAILED: Failed = Failed("query failed", Some(&TIMEOUT));

fn db_ids(span: &SpanView<'_>) -> Option<SpanIds> {
    (span.name() == "db").then(|| {
        SpanIds::new([0x0a; 16], [0xb7; 8])
            .unwrap()
            .with_sampled(false)
    })
}

#[test]
fn preset_lines_do_not_allocate_in_steady_state() {
    let presets = [
        ("ecs", Schema::ecs()),
        ("otel", Schema::otel()),
        ("gcp", Schema::gcp("shop-prod")),
        ("datadog", Schema::datadog()),
    ];
    let mut report = Vec::new();
    for (name, schema) in presets {
        let last = Last::default();
        let writer = last.clone();
        let layer = JsonLayer::new(move || writer.clone())
            .schema(schema)
            .with_file(true)
            .with_line_number(true)
            .with_thread_names(true)
            .lookup_span_ids(db_ids);
        let subscriber = tracing_subscriber::registry().with(layer);
        let mut seen = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            let ctx = Context::new()
                .with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
                .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .with_span_id("00f067aa0ba902b7")
                .with("tenant_id", "acme");
            let mut measure = |what: &'static str, event: &mut dyn FnMut()| {
                let n = allocations_per_run(event);
                seen.push(String::from_utf8(last.1.lock().unwrap().clone()).unwrap());
                report.push((name, what, n));
            };
            ctx.in_scope(|| {
                tracing_ambient::set_user_id(42);
                measure("in request", &mut || {
                    info!(order_id = 42u64, "order placed")
                });
                measure("error with sources", &mut || {
                    error!(error = &QUERY_FAILED as &dyn Error, "checkout failed")
                });
                let span = info_span!("db");
                let _entered = span.enter();
                measure("in an OpenTelemetry span", &mut || info!("in db"));
            });
            // The access line as `DefaultOnAccess` names it, with Google Cloud's member keys.
            measure("access line", &mut || {
                ctx.in_scope(|| {
                    info!(
                        name: "access line",
                        target: "access",
                        requestMethod = "GET",
                        requestUrl = "/orders/42",
                        status = 200u64,
                        latency = "0.001s",
                        responseSize = 2u64,
                        outcome = "completed",
                        "request completed"
                    )
                })
            });
            measure("no context", &mut || info!("no context"));
            // A control: the counter sees an allocation made for an event.
            let control = allocations_per_run(
                &mut || info!(s = %std::hint::black_box(String::from("allocates")), "control"),
            );
            assert!(
                control >= EVENTS,
                "the counting allocator counts ({control})"
            );
        });
        // What was measured is what the preset writes.
        let all = seen.join("");
        for expected in match name {
            "gcp" => &["projects/shop-prod/traces/4bf9", "\"httpRequest\":{"][..],
            "datadog" => &["\"dd.trace_id\":\"11803532876627986230\""][..],
            "ecs" => &["\"error.stack_trace\":\"query failed\\ncaused by: timeout\""][..],
            _ => &["\"trace_flags\":\"00\""][..],
        } {
            assert!(all.contains(expected), "{name}: {expected} in {all}");
        }
        assert!(
            last.0.load(Ordering::Relaxed) > 0,
            "{name}: lines were written"
        );
    }
    eprintln!("allocations per {EVENTS} events: {report:?}");
    for (preset, variant, n) in report {
        assert_eq!(
            n, 0,
            "{preset}, {variant}: {n} allocations over {EVENTS} events"
        );
    }
}
