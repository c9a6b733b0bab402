//! Issue 9, test (d): a writer that fails (a full disk, a reader that closed the pipe) never
//! panics the program, and every line it loses is counted.

mod common;
mod writer_support;

use std::io::{BufRead, Read, Write};
use std::process::Stdio;

use serde_json::json;
use tracing_ambient::{JsonLayer, NonBlockingBuilder};
use writer_support::{child, child_summary, is_child, print_summary};

const LINES: u64 = 1_000;

/// The child: the layer's writer is the non-blocking writer on `/dev/full`, whose every write
/// fails with ENOSPC.
#[test]
fn child_dev_full() {
    if !is_child() {
        return;
    }
    let dev_full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let layer = JsonLayer::stdout();
    let errors = layer.error_counter();
    let (writer, writer_guard) = NonBlockingBuilder::default()
        .error_counter(errors.clone())
        .finish(dev_full);
    let guard = tracing_ambient::try_init_with(layer.with_writer(writer)).expect("first init");
    for i in 0..LINES {
        tracing::info!(i, "to a full disk");
    }
    drop(guard);
    drop(writer_guard);
    print_summary(json!({"logged": LINES, "lost": errors.dropped_lines()}));
}

/// The child: `init()`'s own stdout writer, after the parent closed its end of the pipe.
#[test]
fn child_closed_pipe() {
    if !is_child() {
        return;
    }
    let layer = JsonLayer::stdout();
    let errors = layer.error_counter();
    let guard = tracing_ambient::try_init_with(layer).expect("first init");
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    for i in 0..LINES {
        tracing::info!(i, "to nobody");
    }
    drop(guard);
    print_summary(json!({"logged": LINES, "lost": errors.dropped_lines()}));
    // The test harness would fail writing its "ok" to the closed pipe.
    std::process::exit(0);
}

fn assert_all_counted(stderr: &[u8], what: &str) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "{text}");
    let summary = child_summary(stderr);
    println!("{what}: {summary}");
    assert_eq!(summary["lost"], summary["logged"], "{text}");
    assert!(
        text.contains("[tracing-ambient] could not write log lines"),
        "said on stderr: {text}"
    );
}

#[test]
fn a_full_disk_loses_lines_counted_and_never_panics() {
    if !std::path::Path::new("/dev/full").exists() {
        println!("no /dev/full here");
        return;
    }
    let output = common::output_within_timeout(&mut child("child_dev_full"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_all_counted(&output.stderr, "/dev/full");
}

#[test]
fn a_closed_pipe_loses_lines_counted_and_never_panics() {
    let mut process = child("child_closed_pipe")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the harness to announce the test, so that it is done with stdout, then close
    // our end of the pipe and let the child log.
    let mut stdout = process.stdout.take().unwrap();
    let mut seen = Vec::new();
    let announced = b"child_closed_pipe ... ";
    while !seen.windows(announced.len()).any(|w| w == announced) {
        let mut chunk = [0u8; 256];
        let n = stdout.read(&mut chunk).unwrap();
        assert!(n > 0, "the child ended early: {seen:?}");
        seen.extend_from_slice(&chunk[..n]);
    }
    drop(stdout);
    process.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let output = process.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_all_counted(&output.stderr, "closed pipe");
}
