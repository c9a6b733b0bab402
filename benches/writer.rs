//! The cost of an event when the line goes to a pipe that another thread drains: our
//! non-blocking writer against tracing-appender's, and against our layer writing to the pipe
//! itself.
//!
//! ```text
//! cargo bench --bench writer                 # allocations/drops table, then criterion
//! cargo bench --bench writer -- report-only  # only the table
//! ```
//!
//! | contender | setup |
//! | --- | --- |
//! | ours | `JsonLayer` on `tracing_ambient::non_blocking(pipe)` (waits while the reader moves) |
//! | ours+drop | the same with `stall_timeout(Duration::ZERO)`: drops at once, as it did before issue 19 |
//! | appender+fmt | `fmt::layer().json()` on `tracing_appender::non_blocking(pipe)` |
//! | appender+ours | `JsonLayer` on `tracing_appender::non_blocking(pipe)` |
//! | blocking | `JsonLayer` writing each line to the pipe itself (what `init()` did before) |
//! | sink | `JsonLayer` on `io::sink`: the layer alone, no writer cost (reference row) |
//!
//! Each contender gets its own pipe, drained by a thread that counts the lines, and is
//! installed with `tracing::dispatcher::with_default`. The event is the one of
//! `benches/layers.rs`: `info!(order_id, amount, sku, "order placed")` in a request context
//! (for fmt, a `request` span with the same three fields). Ours waits for a reader that
//! moves, so it is measured at the reader's pace when the threads log faster than the pipe is
//! drained; `ours+drop` and tracing-appender are lossy, so the table says how many lines each
//! dropped: a writer that drops is measured partly on its cheaper drop path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, PipeWriter, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use tracing::{info, info_span, Dispatch};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const REQUEST_ID: &str = "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const USER_ID: u64 = 42;

// === counting allocations, on every thread ===

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
// Safety: every call is forwarded unchanged to the system allocator; counting touches only
// two atomics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

// === the pipe and its reader ===

/// A pipe whose read end a thread drains, counting lines.
struct Drained {
    lines: Arc<AtomicU64>,
    reader: JoinHandle<()>,
}

fn drained_pipe() -> (PipeWriter, Drained) {
    let (mut reader, writer) = io::pipe().expect("a pipe");
    let lines = Arc::new(AtomicU64::new(0));
    let counted = lines.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                return;
            }
            let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
            counted.fetch_add(newlines as u64, Ordering::Relaxed);
        }
    });
    (writer, Drained { lines, reader })
}

/// Our layer writing each line to the pipe directly: one `write` per line, on the caller's
/// thread (lines up to `PIPE_BUF` are written whole).
struct Blocking(PipeWriter);

impl<'a> MakeWriter<'a> for Blocking {
    type Writer = &'a PipeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        &self.0
    }
}

// === the contenders ===

type Dropped = Box<dyn Fn() -> u64 + Send + Sync>;
type Guard = Box<dyn std::any::Any + Send + Sync>;

/// One contender, installed and ready: its dispatch, how to read its drop count, and what to
/// keep alive (the guard) until it is finished.
struct Contender {
    name: &'static str,
    dispatch: Dispatch,
    dropped: Dropped,
    guard: Guard,
    drained: Drained,
}

impl Contender {
    fn build(name: &'static str) -> Contender {
        let (pipe, drained) = drained_pipe();
        let fmt_json = || {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
        };
        let (dispatch, dropped, guard): (Dispatch, Dropped, Guard) = match name {
            "ours" => {
                let (writer, guard) = tracing_ambient::non_blocking(pipe);
                let errors = writer.error_counter();
                let layer = JsonLayer::new(writer);
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(move || errors.dropped_lines() as u64),
                    Box::new(guard),
                )
            }
            "ours+drop" => {
                let (writer, guard) = tracing_ambient::NonBlockingBuilder::default()
                    .stall_timeout(Duration::ZERO)
                    .finish(pipe);
                let errors = writer.error_counter();
                let layer = JsonLayer::new(writer);
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(move || errors.dropped_lines() as u64),
                    Box::new(guard),
                )
            }
            "appender+fmt" => {
                let (writer, guard) = tracing_appender::non_blocking(pipe);
                let errors = writer.error_counter();
                let layer = fmt_json().with_writer(writer);
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(move || errors.dropped_lines() as u64),
                    Box::new(guard),
                )
            }
            "appender+ours" => {
                let (writer, guard) = tracing_appender::non_blocking(pipe);
                let errors = writer.error_counter();
                let layer = JsonLayer::new(writer);
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(move || errors.dropped_lines() as u64),
                    Box::new(guard),
                )
            }
            "blocking" => {
                let layer = JsonLayer::new(Blocking(pipe));
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(|| 0),
                    Box::new(()),
                )
            }
            "sink" => {
                drop(pipe);
                let layer = JsonLayer::new(io::sink);
                (
                    Dispatch::new(tracing_subscriber::registry().with(layer)),
                    Box::new(|| 0),
                    Box::new(()),
                )
            }
            other => panic!("no contender {other}"),
        };
        Contender {
            name,
            dispatch,
            dropped,
            guard,
            drained,
        }
    }

    /// Runs `f` with this contender's dispatch, inside a request: a `Context` for us, a
    /// `request` span with the same fields for fmt.
    fn in_request<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, || {
            if self.name == "appender+fmt" {
                info_span!(
                    "request",
                    request_id = REQUEST_ID,
                    user_id = USER_ID,
                    trace_id = TRACE_ID
                )
                .in_scope(f)
            } else {
                Context::new()
                    .with_request_id(REQUEST_ID)
                    .with_user_id(USER_ID)
                    .with_trace_id(TRACE_ID)
                    .in_scope(f)
            }
        })
    }

    /// Flushes, closes the pipe, and returns (lines received, lines dropped).
    fn finish(self) -> (u64, u64) {
        let dropped = (self.dropped)();
        drop(self.guard);
        drop(self.dispatch);
        // The pipe closes when the last writer is gone: tracing-appender's worker ends with
        // its guard, ours with the last handle, the blocking one with the dispatch.
        let _ = self.drained.reader.join();
        (self.drained.lines.load(Ordering::Relaxed), dropped)
    }
}

const CONTENDERS: [&str; 6] = [
    "ours",
    "ours+drop",
    "appender+fmt",
    "appender+ours",
    "blocking",
    "sink",
];

#[inline]
fn event() {
    info!(
        order_id = 42u64,
        amount = 19.99f64,
        sku = "ABC-123",
        "order placed"
    );
}

// === the table: allocations per event and drops ===

const EVENTS: u64 = 100_000;

fn report() {
    println!(
        "{:<14} {:>12} {:>10} {:>10} {:>10}",
        "contender", "allocs/event", "ns/event", "received", "dropped"
    );
    for name in CONTENDERS {
        let contender = Contender::build(name);
        let (allocations, elapsed) = contender.in_request(|| {
            for _ in 0..1_000 {
                event();
            }
            ALLOCATIONS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            let start = Instant::now();
            for _ in 0..EVENTS {
                event();
            }
            let elapsed = start.elapsed();
            COUNTING.store(false, Ordering::SeqCst);
            (ALLOCATIONS.load(Ordering::SeqCst), elapsed)
        });
        let (received, dropped) = contender.finish();
        println!(
            "{:<14} {:>12.2} {:>10.0} {:>10} {:>10}",
            name,
            allocations as f64 / EVENTS as f64,
            elapsed.as_nanos() as f64 / EVENTS as f64,
            received,
            dropped
        );
    }
}

// === criterion ===

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("writer/1_thread");
    for name in CONTENDERS {
        let contender = Contender::build(name);
        group.bench_function(name, |b| contender.in_request(|| b.iter(event)));
        let (received, dropped) = contender.finish();
        println!("  {name}: {received} lines received, {dropped} dropped");
    }
    group.finish();
}

/// Four threads logging at once, each in its own request: the cost of contention on the
/// queue. The figure is wall time per event of all threads together.
fn four_threads(c: &mut Criterion) {
    const THREADS: u64 = 4;
    let mut group = c.benchmark_group("writer/4_threads");
    for name in CONTENDERS {
        let contender = Arc::new(Contender::build(name));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(THREADS);
                let barrier = Arc::new(Barrier::new(THREADS as usize + 1));
                let threads: Vec<_> = (0..THREADS)
                    .map(|_| {
                        let contender = contender.clone();
                        let barrier = barrier.clone();
                        std::thread::spawn(move || {
                            contender.in_request(|| {
                                barrier.wait();
                                for _ in 0..per_thread {
                                    event();
                                }
                            })
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for thread in threads {
                    thread.join().expect("a bench thread");
                }
                start.elapsed()
            })
        });
        let contender = Arc::into_inner(contender).expect("every thread is done");
        let (received, dropped) = contender.finish();
        println!("  {name}: {received} lines received, {dropped} dropped");
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
    targets = one_thread, four_threads
}

fn main() {
    // Under a profiler (`--profile-time`) only the benchmark named runs.
    if !std::env::args().any(|a| a == "--profile-time") {
        report();
    }
    if std::env::args().any(|a| a == "report-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
