//! ns/event with and without an OpenTelemetry layer (feature `opentelemetry`).
//!
//! ```text
//! cargo bench --features opentelemetry --bench otel
//! # instructions per event, independent of machine load (n and 2n events, then subtract):
//! B=$(ls -t target/release/deps/otel-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind $B ops c_json_otel_spans 100000
//! ```
//!
//! The event of `benches/layers.rs`, logged in a request `Context` (requestId, userId,
//! traceId) inside an entered `request` span, to a writer that discards the bytes:
//!
//! - `a_json`: `JsonLayer` alone (the feature on; its lookup finds no OpenTelemetry context);
//! - `b_json_lookup_off`: the same with `.lookup_span_ids(())`, no lookup at all;
//! - `c_json_otel_spans`: plus `tracing_opentelemetry::layer()` given spans only, so the
//!   difference to `a` is what the span-id lookup costs (the line now carries the span's ids);
//! - `d_json_otel_explicit_parent`: as `c`, the event with `parent: &span` (a span lookup);
//! - `e_json_otel`: the OpenTelemetry layer also given events, which it records on the span:
//!   what an application pays with both layers;
//! - `f_otel`: the OpenTelemetry layer alone with events, for reference.

use std::io;

use criterion::{criterion_group, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::{info, info_span, Dispatch};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const REQUEST_ID: &str = "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[derive(Clone, Copy, Debug)]
struct Discard;

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(std::hint::black_box(buf).len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Discard {
    type Writer = Discard;

    fn make_writer(&self) -> Discard {
        Discard
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    Json,
    JsonLookupOff,
    JsonOtelSpans,
    JsonOtelExplicitParent,
    JsonOtel,
    Otel,
}

const SETUPS: [Setup; 6] = [
    Setup::Json,
    Setup::JsonLookupOff,
    Setup::JsonOtelSpans,
    Setup::JsonOtelExplicitParent,
    Setup::JsonOtel,
    Setup::Otel,
];

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Json => "a_json",
            Setup::JsonLookupOff => "b_json_lookup_off",
            Setup::JsonOtelSpans => "c_json_otel_spans",
            Setup::JsonOtelExplicitParent => "d_json_otel_explicit_parent",
            Setup::JsonOtel => "e_json_otel",
            Setup::Otel => "f_otel",
        }
    }

    fn dispatch(self, provider: &SdkTracerProvider) -> Dispatch {
        let registry = tracing_subscriber::registry().with(EnvFilter::new("info"));
        let otel = || tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        match self {
            Setup::Json => registry.with(JsonLayer::new(Discard)).into(),
            Setup::JsonLookupOff => registry
                .with(JsonLayer::new(Discard).lookup_span_ids(()))
                .into(),
            Setup::JsonOtelSpans | Setup::JsonOtelExplicitParent => registry
                .with(otel().with_filter(filter_fn(|meta| meta.is_span())))
                .with(JsonLayer::new(Discard))
                .into(),
            Setup::JsonOtel => registry.with(otel()).with(JsonLayer::new(Discard)).into(),
            Setup::Otel => registry.with(otel()).into(),
        }
    }
}

#[inline(never)]
fn event() {
    info!(
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

#[inline(never)]
fn event_with_parent(parent: &tracing::Span) {
    info!(
        parent: parent,
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

/// Installs `setup`, opens the request (context and entered span) and hands `run` the event.
fn in_request<R>(
    setup: Setup,
    provider: &SdkTracerProvider,
    run: impl FnOnce(&mut dyn FnMut()) -> R,
) -> R {
    let dispatch = setup.dispatch(provider);
    tracing::dispatcher::with_default(&dispatch, || {
        Context::new()
            .with_request_id(REQUEST_ID)
            .with_trace_id(TRACE_ID)
            .in_scope(|| {
                tracing_ambient::set_user_id(42);
                let request = info_span!("request");
                let _entered = request.enter();
                if setup == Setup::JsonOtelExplicitParent {
                    run(&mut || event_with_parent(&request))
                } else {
                    run(&mut event)
                }
            })
    })
}

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(InMemorySpanExporter::default())
        .build()
}

fn bench(c: &mut Criterion) {
    let provider = provider();
    let mut group = c.benchmark_group("otel");
    for setup in SETUPS {
        in_request(setup, &provider, |event| {
            group.bench_function(setup.name(), |b| b.iter(&mut *event));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}

/// `-- ops <setup> <n>`: runs `n` events of one setup and nothing else, for
/// `valgrind --tool=callgrind`, whose instruction counts do not depend on the machine's load.
/// Two runs (`n` and `2n`) give the instructions of one event without the setup's.
fn ops_only(args: &[String]) -> bool {
    let Some(at) = args.iter().position(|a| a == "ops") else {
        return false;
    };
    let (Some(setup), Some(n)) = (args.get(at + 1), args.get(at + 2)) else {
        panic!("usage: ops <setup> <n>");
    };
    let setup = SETUPS
        .into_iter()
        .find(|s| s.name() == setup)
        .expect("setup");
    let n: usize = n.parse().expect("n");
    in_request(setup, &provider(), |event| {
        for _ in 0..n {
            event();
        }
    });
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if ops_only(&args) {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
