//! A span-heavy stack: what `KeepSpans` costs per request when hyper, h2 and tower open many
//! `trace_span!`s, most of them outside any request.
//!
//! ```text
//! cargo bench --bench spans                 # allocations table, then criterion
//! cargo bench --bench spans -- report-only  # only the table
//! B=$(ls -t target/release/deps/spans-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind $B ops context_spans 20000
//! ```
//!
//! One operation is one request's worth of spans: 20 `trace_span!`s created, entered, exited
//! and dropped outside any context (a connection's polls, as hyper and h2 open them), then,
//! inside the request's `Context`, 10 `trace_span!`s (tower's and the handler's) around one
//! `info!` event. The filter is `EnvFilter::new("info")` throughout, so every `trace_span!`
//! is below it.

use std::time::Duration;

use criterion::Criterion;
use tracing::{info, trace_span, Dispatch};
use tracing_ambient::{Context, JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/lines.rs"]
mod lines;

use lines::Discard;

#[derive(Clone, Copy, Debug)]
enum Setup {
    /// `KeepSpans` as before: every span enabled (`with_every_span(true)`), per-layer filter.
    EverySpan,
    /// `KeepSpans::new`, per-layer filter: spans below the filter only where a context is
    /// current (the others are still made by the registry, but our layer never sees them).
    ContextSpans,
    /// `KeepSpans::new` as a layer in front of the subscriber, as `init()` composes it: spans
    /// below the filter and outside any context are not made at all.
    ContextSpansGlobal,
    /// `EnvFilter` in front of the subscriber: spans below the filter are never made, and a
    /// request's context is lost under them (the composition `KeepSpans` exists to avoid).
    EnvFilterGlobal,
}

const SETUPS: [Setup; 4] = [
    Setup::EverySpan,
    Setup::ContextSpans,
    Setup::ContextSpansGlobal,
    Setup::EnvFilterGlobal,
];

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::EverySpan => "every_span",
            Setup::ContextSpans => "context_spans",
            Setup::ContextSpansGlobal => "context_spans_global",
            Setup::EnvFilterGlobal => "env_filter_global",
        }
    }

    fn dispatch(self) -> Dispatch {
        let filter = || EnvFilter::new("info");
        let layer = || JsonLayer::new(Discard);
        let registry = tracing_subscriber::registry();
        match self {
            Setup::EverySpan => registry
                .with(layer().with_filter(KeepSpans::new(filter()).with_every_span(true)))
                .into(),
            Setup::ContextSpans => registry
                .with(layer().with_filter(KeepSpans::new(filter())))
                .into(),
            Setup::ContextSpansGlobal => {
                registry.with(KeepSpans::new(filter())).with(layer()).into()
            }
            Setup::EnvFilterGlobal => registry.with(filter()).with(layer()).into(),
        }
    }
}

const OUTSIDE: usize = 20;
const INSIDE: usize = 10;

/// One request's worth of spans.
#[inline(never)]
fn request() {
    for _ in 0..OUTSIDE {
        trace_span!("poll").in_scope(|| ());
    }
    Context::new().with_request_id("r-1").in_scope(|| {
        let spans: Vec<_> = (0..INSIDE).map(|_| trace_span!("inner")).collect();
        let entered: Vec<_> = spans.iter().map(|s| s.enter()).collect();
        info!(order_id = 42u64, "order placed");
        drop(entered);
    });
}

fn report() {
    const OPS: u64 = 10_000;
    println!("\n## Allocations and lines per request ({OPS} requests after warm-up)\n");
    println!("| setup | allocations/request | lines/request |");
    println!("| --- | ---: | ---: |");
    for setup in SETUPS {
        let (allocations, lines) = tracing::dispatcher::with_default(&setup.dispatch(), || {
            for _ in 0..100 {
                request();
            }
            let (a0, l0) = (counting::allocations(), lines::lines());
            for _ in 0..OPS {
                request();
            }
            (counting::allocations() - a0, lines::lines() - l0)
        });
        println!(
            "| {} | {:.2} | {:.2} |",
            setup.name(),
            allocations as f64 / OPS as f64,
            lines as f64 / OPS as f64
        );
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "ops") {
        let setup = args.get(at + 1).expect("usage: ops <setup> [n]");
        let setup = SETUPS
            .into_iter()
            .find(|s| s.name() == setup)
            .expect("setup");
        let n: u64 = args
            .get(at + 2)
            .map_or(20_000, |n| n.parse().expect("a count"));
        tracing::dispatcher::with_default(&setup.dispatch(), || {
            for _ in 0..n {
                request();
            }
        });
        return;
    }
    if !args.iter().any(|a| a == "--profile-time") {
        report();
    }
    if args.iter().any(|a| a == "report-only") {
        return;
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("span_heavy_request");
    for setup in SETUPS {
        tracing::dispatcher::with_default(&setup.dispatch(), || {
            group.bench_function(setup.name(), |b| b.iter(request));
        });
    }
    group.finish();
    criterion.final_summary();
}
