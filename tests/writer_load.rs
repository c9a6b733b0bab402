//! Issues 9 and 19: 200,000 lines from 4 threads through `init()`'s non-blocking stdout
//! writer, in a child process whose stdout is a pipe to this test.
//!
//! - A reader that keeps up (it reads stdout as fast as it can, parsing each line as it
//!   comes, as a log shipper does) receives every line, whether the child returns from
//!   `main`, panics out of it or calls `process::exit`: a full queue makes the logging
//!   threads wait for a writer that makes progress (issue 19). Each ending is run 5 times.
//! - A reader that reads nothing for at least 1.5 s, and not before the child says its
//!   logging is over: the logging finishes all the same, with the pipe full, and the lines
//!   the stall cost are reported in the stream (issue 9).
//!
//! In every run, lines received plus lines reported dropped equal lines logged.

mod common;
mod writer_support;

use std::io::{BufRead, BufReader, Read};
use std::sync::{mpsc, Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::Line;
use serde_json::json;
use writer_support::{child, child_summary, is_child, log_line, log_lines, print_summary, tally};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 50_000;
const LOGGED: u64 = THREADS * PER_THREAD;
const RUNS: usize = 5;

/// What a child's message says when it panics out of `main`.
const LAST_WORDS: &str = "unwinding out of main";

/// The children's part: 4 threads log 50,000 lines each, as fast as they can, then the
/// summary goes to stderr (the sign that the logging is over), before the guard flushes.
/// It gives the time the logging took and the longest any one event took, for the record.
fn log_the_load() {
    let barrier = Arc::new(Barrier::new(THREADS as usize + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut longest = Duration::ZERO;
                for i in 0..PER_THREAD {
                    let start = Instant::now();
                    tracing::info!(thread, i, "load");
                    longest = longest.max(start.elapsed());
                }
                longest
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let longest = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .max()
        .unwrap();
    let elapsed = start.elapsed();
    print_summary(json!({
        "logged": LOGGED,
        "elapsedMs": elapsed.as_secs_f64() * 1e3,
        "longestEventMs": longest.as_secs_f64() * 1e3,
    }));
}

#[test]
fn child_load_returns() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_the_load();
}

#[test]
fn child_load_panics() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_the_load();
    panic!("{LAST_WORDS}");
}

#[test]
fn child_load_exits() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    log_the_load();
    std::process::exit(0); // runs no destructor: the exit handler flushes
}

/// Runs the load tests one at a time: each child logs 200,000 lines as fast as it can, and
/// two at once on a small machine would starve the readers of the CPU they need to keep up,
/// which is not what the tests are about.
fn one_load_at_a_time() -> MutexGuard<'static, ()> {
    static LOAD: Mutex<()> = Mutex::new(());
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one run's stdout held.
struct Run {
    received: u64,
    reported: u64,
}

/// Checks the lines of a child: a panicking child's panic line is there once, each thread's
/// lines come in order, and received + reported dropped == logged.
fn check(mut lines: Vec<Line>, stderr: &[u8], what: &str, panicked: bool) -> Run {
    let summary = child_summary(stderr);
    let logged = summary["logged"].as_u64().unwrap();
    assert_eq!(logged, LOGGED);
    let total = lines.len();
    lines.retain(|l| l.str("target") != Some("panic"));
    let panics = total - lines.len();
    assert_eq!(panics, usize::from(panicked), "{what}: panic lines");
    let counts = tally(&lines, "load");
    assert_eq!(lines.len() as u64, counts.received + counts.reports);
    let mut next = [0u64; THREADS as usize];
    for line in lines.iter().filter(|l| l.str("message") == Some("load")) {
        let thread = line.at("thread").as_u64().unwrap() as usize;
        let i = line.at("i").as_u64().unwrap();
        assert!(
            i >= next[thread],
            "{what}: thread {thread}: {i} after {}",
            next[thread]
        );
        next[thread] = i + 1;
    }
    println!(
        "{what}: logged {logged} in {:.1} ms (longest event {:.1} ms), received {}, \
         reported dropped {} in {} report(s)",
        summary["elapsedMs"].as_f64().unwrap(),
        summary["longestEventMs"].as_f64().unwrap(),
        counts.received,
        counts.reported,
        counts.reports,
    );
    assert_eq!(
        counts.received + counts.reported,
        logged,
        "{what}: received + reported dropped == logged"
    );
    Run {
        received: counts.received,
        reported: counts.reported,
    }
}

/// Runs the child `name` with a reader that keeps up: it reads stdout as fast as it can,
/// parsing each line as it comes, as a log shipper does. Returns the lines, the child's
/// stderr and whether it exited cleanly.
fn run_with_a_reader_that_keeps_up(name: &str) -> (Vec<Line>, Vec<u8>, bool) {
    let mut process = child(name).spawn().unwrap();
    let mut stderr = process.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        stderr.read_to_end(&mut all).unwrap();
        all
    });
    let stdout = BufReader::new(process.stdout.take().unwrap());
    let lines: Vec<Line> = stdout
        .lines()
        .filter_map(|line| log_line(&line.expect("stdout is UTF-8")))
        .collect();
    let status = process.wait().unwrap();
    (lines, stderr_reader.join().unwrap(), status.success())
}

/// Runs the child `name` 5 times with a reader that keeps up, and checks that each run
/// received every line.
fn every_line_reaches_a_reader_that_keeps_up(name: &str, panics: bool) {
    let _alone = one_load_at_a_time();
    let mut received = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        let (lines, stderr, clean) = run_with_a_reader_that_keeps_up(name);
        let text = String::from_utf8_lossy(&stderr);
        assert_eq!(clean, !panics, "{name}: {text}");
        assert!(
            !text.contains("[tracing-ambient]"),
            "{name}: no flush timeout, no write error: {text}"
        );
        let counts = check(lines, &stderr, &format!("{name}, run {run}"), panics);
        received.push(counts.received);
    }
    assert_eq!(
        received, [LOGGED; RUNS],
        "{name}: every line of every run received"
    );
}

#[test]
fn a_reader_that_keeps_up_gets_every_line_at_a_return_from_main() {
    every_line_reaches_a_reader_that_keeps_up("child_load_returns", false);
}

#[test]
fn a_reader_that_keeps_up_gets_every_line_at_a_panic_in_main() {
    every_line_reaches_a_reader_that_keeps_up("child_load_panics", true);
}

#[test]
fn a_reader_that_keeps_up_gets_every_line_at_process_exit() {
    every_line_reaches_a_reader_that_keeps_up("child_load_exits", false);
}

/// A reader that reads nothing until the child says its logging is over, and for at least
/// 1.5 s: the logging threads finish all the same, while nothing is read. Before the
/// non-blocking writer they blocked on the full pipe until the reader came back; in blocking
/// mode they would still. The stall costs lines (30 MB of them do not fit in the pipe and
/// the 8 MiB of the queue), and every one is reported.
#[test]
fn a_stalled_reader_never_blocks_the_logging_threads() {
    let _alone = one_load_at_a_time();
    let mut process = child("child_load_returns").spawn().unwrap();
    let started = Instant::now();
    let stderr = process.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    loop {
        match lines_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("summary: ") => break,
            Ok(_) => {}
            Err(err) => {
                let _ = process.kill();
                panic!("the logging did not finish while stdout was not read: {err}");
            }
        }
    }
    let stalled = started.elapsed();
    if let Some(rest) = Duration::from_millis(1500).checked_sub(stalled) {
        std::thread::sleep(rest);
    }
    let mut stdout = Vec::new();
    process
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = process.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    println!(
        "stdout unread until the logging was over ({:.0} ms after the start) and at least \
         1,500 ms had passed",
        stalled.as_secs_f64() * 1e3
    );
    let counts = check(log_lines(&stdout), &stderr, "stalled reader", false);
    assert!(
        counts.reported > 0,
        "30 MB cannot wait in an 8 MiB queue and a pipe: the stall cost lines"
    );
}
