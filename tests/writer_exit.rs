//! Issue 9, test (c): nothing queued is lost at exit, whichever way the process ends. Each
//! child logs through `init()`'s non-blocking stdout writer and ends as it says; the parent
//! reads every line.

mod common;
mod writer_support;

use writer_support::{child, is_child, log_lines, tally};

/// Fewer lines than the queue holds, logged faster than the writer thread wakes (it writes a
/// batch, then waits 5 ms): most are still queued when the process ends.
const LINES: u64 = 5_000;

fn log_lines_now() {
    for i in 0..LINES {
        tracing::info!(i, "before the end");
    }
}

#[test]
fn child_returns() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_lines_now();
}

#[test]
fn child_panics() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_lines_now();
    panic!("unwinding out of main");
}

#[test]
fn child_exits() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_lines_now();
    std::process::exit(0); // runs no destructor: the guard never flushes
}

/// The guard's flush alone: `abort` runs neither destructors nor exit handlers.
#[test]
fn child_drops_the_guard_then_aborts() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    log_lines_now();
    drop(guard);
    std::process::abort();
}

/// The panic hook's flush alone: the hook that was there before aborts the process, as
/// `panic = "abort"` would, before any guard or exit handler can run.
#[test]
fn child_panics_into_an_aborting_hook() {
    if !is_child() {
        return;
    }
    std::panic::set_hook(Box::new(|_| std::process::abort()));
    let _guard = tracing_ambient::init();
    log_lines_now();
    panic!("the last words");
}

/// A writer whose reader never reads: every write blocks for good.
struct Stuck;

impl std::io::Write for Stuck {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        loop {
            std::thread::park();
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A dead reader: the guard gives up after the flush timeout and says how many lines it lost.
#[test]
fn child_stuck_writer() {
    if !is_child() {
        return;
    }
    let (writer, guard) = tracing_ambient::NonBlockingBuilder::default()
        .flush_timeout(std::time::Duration::from_millis(200))
        .finish(Stuck);
    let init = tracing_ambient::try_init_with(tracing_ambient::JsonLayer::new(writer));
    for i in 0..10 {
        tracing::info!(i, "never written");
    }
    drop(guard);
    eprintln!("the guard returned");
    drop(init);
}

/// Runs a child and returns its lines (after checking each), and whether it exited cleanly.
fn run(name: &str) -> (Vec<common::Line>, bool) {
    let output = common::output_within_timeout(&mut child(name));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("[tracing-ambient]"),
        "no flush timeout, no write error: {stderr}"
    );
    (log_lines(&output.stdout), output.status.success())
}

fn assert_all_written(name: &str, lines: &[common::Line]) {
    let before: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some("before the end"))
        .cloned()
        .collect();
    let counts = tally(&before, "before the end");
    println!("{name}: received {} of {LINES}", counts.received);
    assert_eq!(counts.received, LINES, "{name}");
    for (i, line) in before.iter().enumerate() {
        assert_eq!(line.at("i").as_u64(), Some(i as u64), "{name}: in order");
    }
}

fn panic_lines<'a>(lines: &'a [common::Line], message: &str) -> Vec<&'a common::Line> {
    lines
        .iter()
        .filter(|l| l.str("target") == Some("panic") && l.str("message") == Some(message))
        .collect()
}

#[test]
fn a_return_from_main_writes_everything() {
    let (lines, clean) = run("child_returns");
    assert!(clean);
    assert_eq!(lines.len() as u64, LINES);
    assert_all_written("return", &lines);
}

#[test]
fn a_panic_unwinding_out_of_main_writes_everything() {
    let (lines, clean) = run("child_panics");
    assert!(!clean, "the test panicked");
    assert_eq!(lines.len() as u64, LINES + 1);
    assert_all_written("panic", &lines);
    assert_eq!(panic_lines(&lines, "unwinding out of main").len(), 1);
}

#[test]
fn process_exit_writes_everything() {
    let (lines, clean) = run("child_exits");
    assert!(clean);
    assert_eq!(lines.len() as u64, LINES);
    assert_all_written("process::exit", &lines);
}

#[test]
fn dropping_the_guard_writes_everything() {
    let (lines, clean) = run("child_drops_the_guard_then_aborts");
    assert!(!clean, "aborted");
    assert_eq!(lines.len() as u64, LINES);
    assert_all_written("guard, then abort", &lines);
}

#[test]
fn the_panic_hook_flushes_before_the_previous_hook_runs() {
    let (lines, clean) = run("child_panics_into_an_aborting_hook");
    assert!(!clean, "aborted");
    assert_eq!(lines.len() as u64, LINES + 1);
    assert_all_written("panic hook, then abort", &lines);
    let panics = panic_lines(&lines, "the last words");
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].str("level"), Some("error"));
}

#[test]
fn a_flush_timeout_says_on_stderr_how_many_lines_it_gave_up_on() {
    let output = common::output_within_timeout(&mut child("child_stuck_writer"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[tracing-ambient]"))
        .collect();
    println!("stuck writer: {reports:?}");
    // The writer's guard, `try_init_with`'s guard, then the exit handler: each gives up after
    // 200 ms.
    assert_eq!(reports.len(), 3, "{stderr}");
    for report in reports {
        assert_eq!(
            report,
            "[tracing-ambient] log flush timed out after 200ms: 10 line(s) not written"
        );
    }
    let returned = stderr.lines().position(|l| l == "the guard returned");
    assert_eq!(
        returned,
        Some(1),
        "the guard reported, then returned: {stderr}"
    );
}
