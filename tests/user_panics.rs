//! Issue 7 §1: user code that runs while a line is built may panic (`Debug`, `Display`,
//! `Error::source` at any depth, the message's `format_args!`, the `MakeWriter`, the
//! writer; `tracing::Value` is sealed, so a field's own `record` is never user code). The panic never leaves the layer, the line is written with the
//! value replaced by a marker (or dropped and counted), and the next line on the thread is
//! valid. Every test logs a clean line after the panicking one on the same thread.

mod common;

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{Capture, Line};
use serde_json::{json, Value};
use tracing::{error, info};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// The marker the layer writes for a value whose impl panicked (documented on `JsonLayer`).
const MARKER: &str = "<panicked while formatting>";

/// Logs `f`'s events inside a request, then one clean line; returns the lines, each parsed,
/// after checking the panic did not reach this code and the clean line came out whole.
fn lines_of(f: impl FnOnce()) -> Vec<Line> {
    let capture = Capture::default();
    let layer = JsonLayer::new(capture.clone()).with_error_reporting(false);
    let errors = layer.error_counter();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        Context::new().with_request_id("r1").in_scope(|| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            assert!(result.is_ok(), "a panic left the layer");
            info!(after = true, "next line");
        });
    });
    assert_eq!(errors.dropped_lines(), 0);
    let lines = capture.lines();
    let last = lines.last().expect("at least the clean line");
    assert_eq!(last.at("message"), &json!("next line"));
    assert_eq!(last.at("requestId"), &json!("r1"));
    assert_eq!(last.at("after"), &json!(true));
    lines
}

struct PanicDebug;

impl fmt::Debug for PanicDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug panicked")
    }
}

struct PanicDisplay;

impl fmt::Display for PanicDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half of it, then ")?;
        panic!("Display panicked")
    }
}

/// An error chain `depth` causes deep whose last `source()` call panics.
#[derive(Debug)]
struct Chain {
    depth: usize,
    panic_in_display: bool,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panic_in_display && self.depth == 0 {
            panic!("Display of a cause panicked");
        }
        write!(f, "level {}", self.depth)
    }
}

impl Error for Chain {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        if self.depth == 0 {
            panic!("source() panicked");
        }
        // Leaked so the chain can hand out 'static references; a few bytes per test.
        Some(Box::leak(Box::new(Chain {
            depth: self.depth - 1,
            panic_in_display: self.panic_in_display,
        })))
    }
}

fn one(lines: &[Line], message: &str) -> Line {
    let found: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("message") == Some(message))
        .collect();
    assert_eq!(found.len(), 1, "one line {message:?} in {lines:?}");
    found[0].clone()
}

#[test]
fn a_panicking_debug_value_is_replaced_by_the_marker() {
    let lines = lines_of(|| info!(value = ?PanicDebug, kept = 1, "debug"));
    assert_eq!(lines.len(), 2);
    let line = one(&lines, "debug");
    assert_eq!(line.at("value"), &json!(MARKER));
    assert_eq!(line.at("kept"), &json!(1));
    assert_eq!(line.at("requestId"), &json!("r1"));
}

#[test]
fn a_panicking_display_value_is_replaced_by_the_marker() {
    let lines = lines_of(|| info!(value = %PanicDisplay, kept = 1, "display"));
    assert_eq!(lines.len(), 2);
    let line = one(&lines, "display");
    assert_eq!(line.at("value"), &json!(MARKER));
    assert_eq!(line.at("kept"), &json!(1));
}

#[test]
fn a_panicking_message_is_replaced_by_the_marker() {
    let lines = lines_of(|| info!(kept = 1, "{}", PanicDisplay));
    assert_eq!(lines.len(), 2);
    let line = &lines[0];
    assert_eq!(line.at("message"), &json!(MARKER));
    assert_eq!(line.at("kept"), &json!(1));
}

#[test]
fn an_error_whose_first_source_call_panics_keeps_its_message() {
    let err = Chain {
        depth: 0,
        panic_in_display: false,
    };
    let lines = lines_of(|| error!(error = &err as &dyn Error, kept = 1, "failed"));
    assert_eq!(lines.len(), 2);
    let line = one(&lines, "failed");
    assert_eq!(line.at("error"), &json!("level 0"));
    assert_eq!(line.at("errorSources"), &json!([MARKER]));
    assert_eq!(line.at("kept"), &json!(1));
}

#[test]
fn an_error_whose_deep_source_call_panics_keeps_the_causes_before_it() {
    let err = Chain {
        depth: 2,
        panic_in_display: false,
    };
    let lines = lines_of(|| error!(error = &err as &dyn Error, kept = 1, "failed"));
    assert_eq!(lines.len(), 2);
    let line = one(&lines, "failed");
    assert_eq!(line.at("error"), &json!("level 2"));
    assert_eq!(
        line.at("errorSources"),
        &json!(["level 1", "level 0", MARKER])
    );
    assert_eq!(line.at("kept"), &json!(1));
}

#[test]
fn an_error_whose_cause_display_panics_keeps_the_causes_before_it() {
    let err = Chain {
        depth: 1,
        panic_in_display: true,
    };
    let lines = lines_of(|| error!(error = &err as &dyn Error, "failed"));
    assert_eq!(lines.len(), 2);
    let line = one(&lines, "failed");
    assert_eq!(line.at("error"), &json!("level 1"));
    assert_eq!(line.at("errorSources"), &json!([MARKER]));
}

/// A `MakeWriter` whose `make_writer` panics once, then writes to a capture.
#[derive(Clone)]
struct PanicOnce {
    panicked: Arc<AtomicBool>,
    capture: Capture,
}

impl<'a> MakeWriter<'a> for PanicOnce {
    type Writer = <Capture as MakeWriter<'a>>::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("make_writer panicked");
        }
        self.capture.make_writer()
    }
}

#[test]
fn a_panicking_make_writer_drops_and_counts_the_line() {
    let capture = Capture::default();
    let writer = PanicOnce {
        panicked: Arc::default(),
        capture: capture.clone(),
    };
    let layer = JsonLayer::new(writer).with_error_reporting(false);
    let errors = layer.error_counter();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info!("lost");
        info!("kept");
    });
    assert_eq!(errors.dropped_lines(), 1);
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].at("message"), &json!("kept"));
}

/// A writer that panics on its first line (before taking the capture's lock, so the capture
/// stays readable).
struct HalfThenPanic<'a> {
    capture: &'a Capture,
    panicked: &'a AtomicBool,
}

impl io::Write for HalfThenPanic<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("the writer panicked");
        }
        self.capture.make_writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Default)]
struct PanickingWriter {
    panicked: Arc<AtomicBool>,
    capture: Capture,
}

impl<'a> MakeWriter<'a> for PanickingWriter {
    type Writer = HalfThenPanic<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        HalfThenPanic {
            capture: &self.capture,
            panicked: &self.panicked,
        }
    }
}

#[test]
fn a_panicking_writer_drops_and_counts_the_line() {
    let writer = PanickingWriter::default();
    let capture = writer.capture.clone();
    let layer = JsonLayer::new(writer).with_error_reporting(false);
    let errors = layer.error_counter();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info!("lost");
        info!("kept");
    });
    assert_eq!(errors.dropped_lines(), 1);
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].at("message"), &json!("kept"));
}

#[test]
fn a_panicking_promoted_span_field_leaves_the_context_as_it_was() {
    let capture = Capture::default();
    let layer = JsonLayer::new(capture.clone()).promote_span_field("tenant_id");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        Context::new().with_request_id("r1").in_scope(|| {
            let result = std::panic::catch_unwind(|| {
                let span = tracing::info_span!("load", tenant_id = ?PanicDebug);
                span.in_scope(|| info!("in span"));
            });
            assert!(result.is_ok(), "a panic left the layer");
            info!("next line");
        });
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line.at("requestId"), &json!("r1"));
        assert_eq!(line.get("tenantId"), None::<&Value>);
    }
}
