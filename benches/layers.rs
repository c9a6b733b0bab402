//! One workload, four JSON layers: tracing-subscriber's `fmt().json()`,
//! tracing-bunyan-formatter, json-subscriber and ours; and a reference row, a minimal layer
//! written the straightforward way (`benches/support/minimal.rs`).
//!
//! ```text
//! cargo bench --bench layers                 # report table + criterion timings
//! cargo bench --bench layers -- report-only  # only the bytes/allocations table and samples
//! ```
//!
//! (g) is ours alone: the event logged in each of 1, 100 or 10,000 open contexts in turn, with
//! 3 or 53 keys each (`-- ops g_scale/10000_contexts_53_keys tracing-ambient` for callgrind).
//!
//! Context levels (issue 18), ours alone, under `init()`'s filter (`tracing-ambient-init`:
//! `KeepSpans(ContextLevel(EnvFilter))`; `tracing-ambient-keepspans` is the composition
//! before it): (h) the `debug!` of (d) in a request whose context logs at debug, (i) the same
//! held in the request's buffer (flushed every 256 events), (j) the `debug!` of (d) once
//! another context of the process has asked for debug (and is gone), (k) the same while that
//! context is alive. The report runs (h) to (k) before criterion does, so criterion's (d) for
//! `tracing-ambient-init` is (j)'s state; `-- ops d_disabled tracing-ambient-init` measures
//! (d) in a process where no context has asked.
//!
//! Each contender is installed with `tracing::dispatcher::with_default` in this process and
//! writes to a `MakeWriter` that discards the bytes but counts them (per thread, so that the
//! counter is no shared lock). The request context carries requestId (36 chars), userId (an
//! integer set after the context exists) and traceId (32 hex chars): for us a `Context`, for
//! the others the fields of a `request` span, which they flatten onto the line.

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion};
use tracing::{debug, info, info_span, Dispatch, Span};
use tracing_ambient::{Context, ContextLevel, JsonLayer, KeepSpans};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

#[path = "support/minimal.rs"]
mod minimal;

const REQUEST_ID: &str = "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const USER_ID: u64 = 42;
const DEPTH: usize = 7;

// === counting: allocations and bytes, per thread ===

#[path = "support/counting.rs"]
mod counting;

thread_local! {
    static BYTES: Cell<u64> = const { Cell::new(0) };
    static LAST_LINE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Discards every byte, counting them on the writing thread. While a sample is being taken it
/// keeps the last line instead.
#[derive(Clone, Copy, Debug)]
struct Discard;

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        BYTES.with(|n| n.set(n.get() + buf.len() as u64));
        LAST_LINE.with(|last| {
            if let Some(line) = last.borrow_mut().as_mut() {
                line.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
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

// === the contenders ===

#[derive(Clone, Copy, Debug, PartialEq)]
enum Contender {
    Ambient,
    /// Ours with `init()`'s filter composition in front of the layer:
    /// `KeepSpans(ContextLevel(EnvFilter))`.
    AmbientInit,
    /// Ours with the composition `init()` had before context levels (issue 18):
    /// `KeepSpans(EnvFilter)`, the reference for `AmbientInit`'s disabled path.
    AmbientKeepSpans,
    FmtJson,
    Bunyan,
    JsonSubscriber,
    Minimal,
}

const CONTENDERS: [Contender; 7] = [
    Contender::Ambient,
    Contender::AmbientInit,
    Contender::AmbientKeepSpans,
    Contender::FmtJson,
    Contender::Bunyan,
    Contender::JsonSubscriber,
    Contender::Minimal,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Ambient => "tracing-ambient",
            Contender::AmbientInit => "tracing-ambient-init",
            Contender::AmbientKeepSpans => "tracing-ambient-keepspans",
            Contender::FmtJson => "fmt-json",
            Contender::Bunyan => "bunyan",
            Contender::JsonSubscriber => "json-subscriber",
            Contender::Minimal => "minimal",
        }
    }

    /// The subscriber. `nested` asks for the settings that keep the request's fields on lines
    /// logged under child spans: `fmt().json()` only writes the current span's fields, so under
    /// child spans it needs the span list to carry the request at all.
    fn dispatch(self, nested: bool) -> Dispatch {
        match self {
            Contender::AmbientInit => {
                return tracing_subscriber::registry()
                    .with(KeepSpans::new(ContextLevel::new(EnvFilter::new("info"))))
                    .with(JsonLayer::new(Discard))
                    .into()
            }
            Contender::AmbientKeepSpans => {
                return tracing_subscriber::registry()
                    .with(KeepSpans::new(EnvFilter::new("info")))
                    .with(JsonLayer::new(Discard))
                    .into()
            }
            _ => {}
        }
        let registry = tracing_subscriber::registry().with(EnvFilter::new("info"));
        match self {
            Contender::AmbientInit | Contender::AmbientKeepSpans => unreachable!("returned above"),
            Contender::Ambient => registry.with(JsonLayer::new(Discard)).into(),
            Contender::FmtJson => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(nested)
                        .with_writer(Discard),
                )
                .into(),
            Contender::Bunyan => registry
                .with(tracing_bunyan_formatter::JsonStorageLayer)
                .with(tracing_bunyan_formatter::BunyanFormattingLayer::new(
                    "bench".into(),
                    Discard,
                ))
                .into(),
            Contender::JsonSubscriber => registry
                .with(
                    json_subscriber::layer()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .flatten_span_list_on_top_level(true)
                        .with_writer(Discard),
                )
                .into(),
            Contender::Minimal => registry.with(minimal::MinimalLayer::new(Discard)).into(),
        }
    }

    /// Runs `f` inside a request: our `Context`, or the others' `request` span. The user id is
    /// set after the context exists, as auth middleware would.
    fn in_request<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            Contender::Ambient | Contender::AmbientInit | Contender::AmbientKeepSpans => {
                Context::new()
                    .with_request_id(REQUEST_ID)
                    .with_trace_id(TRACE_ID)
                    .in_scope(|| {
                        tracing_ambient::set_user_id(USER_ID);
                        f()
                    })
            }
            _ => {
                let span = request_span();
                span.record("user_id", USER_ID);
                span.in_scope(f)
            }
        }
    }

    /// One whole request: open the context (for us, with the span a middleware brings), set
    /// the three keys, log one event, close it all.
    fn one_request(self) {
        match self {
            Contender::Ambient | Contender::AmbientInit | Contender::AmbientKeepSpans => {
                Context::new()
                    .with_request_id(REQUEST_ID)
                    .with_trace_id(TRACE_ID)
                    .in_scope(|| {
                        info_span!("request").in_scope(|| {
                            tracing_ambient::set_user_id(USER_ID);
                            event();
                        })
                    })
            }
            _ => {
                let span = request_span();
                span.record("user_id", USER_ID);
                span.in_scope(event);
            }
        }
    }
}

fn request_span() -> Span {
    info_span!(
        "request",
        request_id = REQUEST_ID,
        trace_id = TRACE_ID,
        user_id = tracing::field::Empty
    )
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
fn disabled_event() {
    debug!(
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

/// Runs `f` under `DEPTH` nested child spans, each with one small field.
fn nested<R>(f: impl FnOnce() -> R) -> R {
    let spans: Vec<Span> = (0..DEPTH).map(|depth| info_span!("child", depth)).collect();
    let entered: Vec<_> = spans.iter().map(Span::enter).collect();
    let result = f();
    drop(entered);
    result
}

// === the variants ===

#[derive(Clone, Copy, Debug)]
enum Variant {
    InRequest,
    Nested,
    NoContext,
    Disabled,
    PerRequest,
    Raised,
    Held,
    DisabledAfterRaise,
    DisabledBesideRaised,
}

const VARIANTS: [Variant; 9] = [
    Variant::InRequest,
    Variant::Nested,
    Variant::NoContext,
    Variant::Disabled,
    Variant::PerRequest,
    Variant::Raised,
    Variant::Held,
    Variant::DisabledAfterRaise,
    Variant::DisabledBesideRaised,
];

/// Events (h) and (i) log between two flushes of the buffer in (i).
const HELD_PER_FLUSH: u32 = 256;

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::InRequest => "a_in_request",
            Variant::Nested => "b_depth_7",
            Variant::NoContext => "c_no_context",
            Variant::Disabled => "d_disabled",
            Variant::PerRequest => "e_per_request",
            Variant::Raised => "h_raised",
            Variant::Held => "i_held",
            Variant::DisabledAfterRaise => "j_disabled_after_raise",
            Variant::DisabledBesideRaised => "k_disabled_beside_raised",
        }
    }

    /// Whether the variant means anything for `contender`: (h) and (i) are context levels
    /// and the buffer, under `init()`'s filter.
    fn applies(self, contender: Contender) -> bool {
        !matches!(
            self,
            Variant::Raised
                | Variant::Held
                | Variant::DisabledAfterRaise
                | Variant::DisabledBesideRaised
        ) || contender == Contender::AmbientInit
    }

    /// Sets the variant up for `contender` and calls `run` with the operation to repeat.
    fn run<R>(self, contender: Contender, run: impl FnOnce(&mut dyn FnMut()) -> R) -> R {
        let dispatch = contender.dispatch(matches!(self, Variant::Nested));
        tracing::dispatcher::with_default(&dispatch, || match self {
            Variant::InRequest => contender.in_request(|| run(&mut event)),
            Variant::Nested => contender.in_request(|| nested(|| run(&mut event))),
            Variant::NoContext => run(&mut event),
            Variant::Disabled => contender.in_request(|| run(&mut disabled_event)),
            Variant::PerRequest => run(&mut || contender.one_request()),
            // The `debug!` of (d) in a request whose context logs at debug: written.
            Variant::Raised => contender.in_request(|| {
                tracing_ambient::set_level(tracing::Level::DEBUG);
                run(&mut disabled_event)
            }),
            // (d) once some other context of the process has asked for debug: the callsite
            // is asked about at each event, and the request's context (no level) says no.
            Variant::DisabledAfterRaise => {
                drop(Context::new().with_level(tracing::Level::DEBUG));
                contender.in_request(|| run(&mut disabled_event))
            }
            // (d) while another context with a level is alive (a request being debugged):
            // the filter reads the request's context, which has no level.
            Variant::DisabledBesideRaised => {
                let _debugged = Context::new().with_level(tracing::Level::DEBUG);
                contender.in_request(|| run(&mut disabled_event))
            }
            // The `debug!` of (d) in a request whose context buffers debug lines: formatted
            // and held; every 256 events the buffer is flushed (to the discarding writer),
            // so that the figure includes that amortized and the buffer never fills.
            Variant::Held => Context::new()
                .with_request_id(REQUEST_ID)
                .with_trace_id(TRACE_ID)
                .buffer(tracing::Level::DEBUG)
                .in_scope(|| {
                    tracing_ambient::set_user_id(USER_ID);
                    let mut n = 0u32;
                    run(&mut || {
                        disabled_event();
                        n += 1;
                        if n == HELD_PER_FLUSH {
                            n = 0;
                            tracing_ambient::flush_buffer();
                        }
                    })
                }),
        })
    }
}

// === the report: bytes and allocations per operation, and one sample line each ===

const REPORT_OPS: u64 = 10_000;

fn report() {
    println!("\n## Sample lines (variant a)\n");
    for contender in CONTENDERS {
        let line = Variant::InRequest.run(contender, |op| {
            LAST_LINE.with(|last| *last.borrow_mut() = Some(Vec::new()));
            op();
            LAST_LINE.with(|last| last.borrow_mut().take().unwrap_or_default())
        });
        print!(
            "{:<16} {}",
            contender.name(),
            String::from_utf8_lossy(&line)
        );
    }
    println!("\n## Bytes and allocations per operation ({REPORT_OPS} operations after warm-up)\n");
    println!("| variant | contender | bytes/op | allocations/op |");
    println!("| --- | --- | ---: | ---: |");
    for variant in VARIANTS {
        for contender in CONTENDERS.into_iter().filter(|&c| variant.applies(c)) {
            let (bytes, allocations) = variant.run(contender, |op| {
                for _ in 0..100 {
                    op();
                }
                let (b0, a0) = (BYTES.with(Cell::get), counting::allocations());
                for _ in 0..REPORT_OPS {
                    op();
                }
                (BYTES.with(Cell::get) - b0, counting::allocations() - a0)
            });
            println!(
                "| {} | {} | {:.1} | {:.2} |",
                variant.name(),
                contender.name(),
                bytes as f64 / REPORT_OPS as f64,
                allocations as f64 / REPORT_OPS as f64
            );
        }
    }
    println!();
}

// === criterion ===

fn single_thread(c: &mut Criterion) {
    for variant in VARIANTS {
        let mut group = c.benchmark_group(variant.name());
        for contender in CONTENDERS.into_iter().filter(|&c| variant.applies(c)) {
            variant.run(contender, |op| {
                group.bench_function(contender.name(), |b| b.iter(&mut *op));
            });
        }
        group.finish();
    }
}

/// (f): `threads` threads log concurrently, each inside its own request. The time reported
/// is wall time divided by the number of threads, i.e. the cost of one event at the combined
/// throughput: at perfect scaling it halves from 1 to 2 threads.
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("f_threads");
    for contender in CONTENDERS {
        let dispatch = contender.dispatch(false);
        for threads in [1usize, 2, 4] {
            group.bench_with_input(
                BenchmarkId::new(contender.name(), threads),
                &threads,
                |b, &threads| {
                    b.iter_custom(|iters| {
                        let start = Arc::new(Barrier::new(threads + 1));
                        let workers: Vec<_> = (0..threads)
                            .map(|_| {
                                let dispatch = dispatch.clone();
                                let start = Arc::clone(&start);
                                std::thread::spawn(move || {
                                    tracing::dispatcher::with_default(&dispatch, || {
                                        contender.in_request(|| {
                                            start.wait();
                                            for _ in 0..iters {
                                                event();
                                            }
                                        })
                                    })
                                })
                            })
                            .collect();
                        start.wait();
                        let began = Instant::now();
                        for worker in workers {
                            worker.join().expect("bench thread");
                        }
                        began.elapsed() / threads as u32
                    })
                },
            );
        }
    }
    group.finish();
}

// === (g) scale: many open contexts, many keys ===

/// The numbers of open contexts of (g): events cycle through them, one per operation.
const OPEN_CONTEXTS: [usize; 3] = [1, 100, 10_000];
/// The numbers of extra keys of (g), besides requestId, userId and traceId.
const EXTRA_KEYS: [usize; 2] = [0, 50];

/// (g): our layer, `open` request contexts alive at once (each with requestId, userId,
/// traceId and `extra` more keys), the event logged in each of them in turn. Calls `run` with
/// the operation: enter the next context, log the event.
fn scale<R>(open: usize, extra: usize, run: impl FnOnce(&mut dyn FnMut()) -> R) -> R {
    let contexts: Vec<Context> = (0..open)
        .map(|i| {
            let ctx = Context::new()
                .with_request_id(format!("{}-{i}", &REQUEST_ID[..30]))
                .with_trace_id(TRACE_ID)
                .with_user_id(USER_ID + i as u64);
            for k in 0..extra {
                ctx.set(&format!("extra_key_{k}"), format!("value {k} of {i}"));
            }
            ctx
        })
        .collect();
    let dispatch = Contender::Ambient.dispatch(false);
    let mut next = 0;
    tracing::dispatcher::with_default(&dispatch, || {
        run(&mut || {
            contexts[next].in_scope(event);
            next = (next + 1) % open;
        })
    })
}

fn scale_name(open: usize, extra: usize) -> String {
    format!("g_scale/{open}_contexts_{}_keys", 3 + extra)
}

fn scale_report() {
    println!("## (g) Scale: bytes and allocations per event\n");
    println!("| open contexts | keys | bytes/event | allocations/event |");
    println!("| ---: | ---: | ---: | ---: |");
    for extra in EXTRA_KEYS {
        for open in OPEN_CONTEXTS {
            let (bytes, allocations) = scale(open, extra, |op| {
                for _ in 0..open.max(100) {
                    op();
                }
                let (b0, a0) = (BYTES.with(Cell::get), counting::allocations());
                for _ in 0..REPORT_OPS {
                    op();
                }
                (BYTES.with(Cell::get) - b0, counting::allocations() - a0)
            });
            println!(
                "| {open} | {} | {:.1} | {:.2} |",
                3 + extra,
                bytes as f64 / REPORT_OPS as f64,
                allocations as f64 / REPORT_OPS as f64
            );
        }
    }
    println!();
}

fn scale_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("g_scale");
    for extra in EXTRA_KEYS {
        for open in OPEN_CONTEXTS {
            scale(open, extra, |op| {
                group.bench_function(format!("{open}_contexts_{}_keys", 3 + extra), |b| {
                    b.iter(&mut *op)
                });
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, threads, scale_benches
}

/// `-- ops <variant> <contender> [n]`: runs `n` (default 100,000) operations of one pair and
/// nothing else, for `valgrind --tool=callgrind`, whose instruction counts do not depend on
/// the machine's load. Two runs (`n` and `2n`) give the cost of one operation without the
/// setup: `(I(2n) - I(n)) / n`.
fn ops_only(args: &[String]) -> bool {
    let Some(at) = args.iter().position(|a| a == "ops") else {
        return false;
    };
    let (Some(variant), Some(contender)) = (args.get(at + 1), args.get(at + 2)) else {
        panic!("usage: ops <variant> <contender> [operations]");
    };
    let n: u64 = args
        .get(at + 3)
        .map_or(100_000, |n| n.parse().expect("a count"));
    if let Some((open, extra)) = OPEN_CONTEXTS
        .into_iter()
        .flat_map(|open| EXTRA_KEYS.map(|extra| (open, extra)))
        .find(|&(open, extra)| scale_name(open, extra) == *variant)
    {
        scale(open, extra, |op| {
            for _ in 0..n {
                op();
            }
        });
        return true;
    }
    let variant = VARIANTS
        .into_iter()
        .find(|v| v.name() == variant)
        .expect("variant");
    let contender = CONTENDERS
        .into_iter()
        .find(|c| c.name() == contender)
        .expect("contender");
    variant.run(contender, |op| {
        for _ in 0..n {
            op();
        }
    });
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if ops_only(&args) {
        return;
    }
    // Under a profiler (`--profile-time`) only the benchmark named runs.
    if !std::env::args().any(|a| a == "--profile-time") {
        report();
        scale_report();
    }
    if std::env::args().any(|a| a == "report-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
