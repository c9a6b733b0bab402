//! No allocation per line through the non-blocking writer, on any thread: the shared counting
//! allocator counts every allocation of the process while 10,000 events go through
//! `JsonLayer` and the writer into a pipe that another thread drains.

mod alloc_support;

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

const EVENTS: usize = 10_000;

#[test]
fn no_allocation_per_line_on_any_thread() {
    let (mut reader, pipe) = std::io::pipe().unwrap();
    let drained = Arc::new(AtomicUsize::new(0));
    let lines = drained.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
            lines.fetch_add(newlines, Ordering::SeqCst);
        }
    });
    let (writer, guard) = tracing_ambient::non_blocking(pipe);
    let flusher = writer.clone();
    let layer = JsonLayer::new(writer);
    let errors = layer.error_counter();
    let subscriber = tracing_subscriber::registry().with(layer);
    let ctx = Context::new().with_request_id("0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77");
    let allocations = tracing::subscriber::with_default(subscriber, || {
        ctx.in_scope(|| {
            let event = |i: usize| tracing::info!(i, sku = "ABC-123", "order placed");
            // Warm-up: the thread's line buffer, the callsite, and the writer and reader
            // threads, which allocate once as they start (their names, their stack guards):
            // both must have handled lines before the count begins.
            for i in 0..1_000 {
                event(i);
            }
            io::Write::flush(&mut &flusher).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while drained.load(Ordering::SeqCst) < 1_000 {
                assert!(Instant::now() < deadline, "the reader got no lines");
                std::thread::sleep(Duration::from_millis(1));
            }
            alloc_support::process_allocations_during(|| {
                for i in 0..EVENTS {
                    event(i);
                }
            })
        })
    });
    drop(flusher);
    drop(guard);
    drain.join().unwrap();
    let received = drained.load(Ordering::SeqCst);
    println!(
        "{allocations} allocation(s) in the process for {EVENTS} events; {received} lines received"
    );
    assert_eq!(received, 1_000 + EVENTS, "every line went through the pipe");
    assert_eq!(errors.dropped_lines(), 0);
    assert_eq!(allocations, 0);
}
