//! A writer that fails or panics never reaches the application; logging simply continues.

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::Capture;
use tracing::info;
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

/// Fails every other line with the given error kind, or panics.
#[derive(Clone)]
struct Flaky {
    calls: Arc<AtomicUsize>,
    kind: Option<io::ErrorKind>,
    good: Capture,
}

struct FlakyWriter<'a>(&'a Flaky, bool);

impl Write for FlakyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.1 {
            return self.0.good.make_writer_for_test().write(buf);
        }
        match self.0.kind {
            Some(kind) => Err(io::Error::new(kind, "writer is broken")),
            None => panic!("writer panicked"),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Flaky {
    type Writer = FlakyWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        FlakyWriter(self, n % 2 == 1)
    }
}

trait ForTest {
    fn make_writer_for_test(&self) -> common::CaptureWriter<'_>;
}

impl ForTest for Capture {
    fn make_writer_for_test(&self) -> common::CaptureWriter<'_> {
        tracing_subscriber::fmt::MakeWriter::make_writer(self)
    }
}

fn run(kind: Option<io::ErrorKind>) {
    let flaky = Flaky {
        calls: Arc::default(),
        kind,
        good: Capture::default(),
    };
    let layer = JsonLayer::new(flaky.clone()).with_error_reporting(false);
    let errors = layer.error_counter();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        Context::new().with_request_id("r1").in_scope(|| {
            for i in 0..10 {
                info!(i, "line");
            }
        });
    });
    assert_eq!(errors.dropped_lines(), 5, "{kind:?}");
    let lines = flaky.good.lines();
    assert_eq!(lines.len(), 5);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line.at("i").as_u64(), Some(2 * n as u64 + 1));
        assert_eq!(line.str("requestId"), Some("r1"));
    }
}

#[test]
fn failed_writes_are_counted_and_logging_continues() {
    run(Some(io::ErrorKind::BrokenPipe));
    run(Some(io::ErrorKind::Other));
    run(Some(io::ErrorKind::StorageFull));
}

#[test]
fn a_panicking_writer_does_not_reach_the_application() {
    run(None);
}

#[test]
fn a_closed_pipe_does_not_panic() {
    let (reader, writer) = io::pipe().unwrap();
    drop(reader);
    let writer = Arc::new(writer);
    let layer = JsonLayer::new(move || SharedPipe(Arc::clone(&writer))).with_error_reporting(false);
    let errors = layer.error_counter();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..3 {
            info!("into a closed pipe");
        }
    });
    assert_eq!(errors.dropped_lines(), 3);
}

struct SharedPipe(Arc<io::PipeWriter>);

impl Write for SharedPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
