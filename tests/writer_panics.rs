//! A writer that panics while holding its lock, with the crate's panic hook installed: the
//! hook's own line must not deadlock on that lock. In its own test binary, because the panic
//! hook is global to the process.

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tracing::info;
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

/// Panics on its second write; keeps the others.
struct Panicky {
    writes: usize,
    kept: Arc<Mutex<Vec<u8>>>,
}

impl Write for Panicky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        if self.writes == 2 {
            panic!("the disk caught fire");
        }
        self.kept.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panicking_writer_under_the_panic_hook_does_not_deadlock() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    // tracing-subscriber's `MakeWriter for Mutex<W>` holds the lock for the whole line.
    let writer = Mutex::new(Panicky {
        writes: 0,
        kept: Arc::clone(&kept),
    });
    let layer = JsonLayer::new(writer).with_error_reporting(false);
    let errors = layer.error_counter();
    tracing_ambient::install_panic_hook();
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::clone(&done);
    // Global, as in an application: tracing protects a scoped (`with_default`) dispatcher
    // from being re-entered, but not the global one, so only this shows the problem.
    tracing_subscriber::registry().with(layer).init();
    // If the hook's line waited for the writer's lock, this thread would hang: run it apart
    // and give it a deadline.
    let worker = std::thread::spawn(move || {
        Context::new().with_request_id("r1").in_scope(|| {
            for i in 0..3 {
                info!(i, "line");
            }
        });
        finished.store(1, Ordering::SeqCst);
    });
    for _ in 0..1000 {
        if done.load(Ordering::SeqCst) == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(done.load(Ordering::SeqCst), 1, "logging deadlocked");
    worker.join().unwrap();

    // Line 1 panicked in the writer; the panic poisoned the mutex, and tracing-subscriber's
    // `MakeWriter for Mutex<W>` panics on a poisoned lock, so line 2 is dropped too. Both are
    // counted, and neither panic reached this thread.
    assert_eq!(errors.dropped_lines(), 2);
    let lines = common::parse_lines(&kept.lock().unwrap());
    let kept_i: Vec<_> = lines.iter().map(|l| l.at("i").as_u64().unwrap()).collect();
    assert_eq!(kept_i, [0]);
}
