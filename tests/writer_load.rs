//! Issue 9, tests (a) and (b): 200,000 lines from 4 threads through `init()`'s non-blocking
//! stdout writer, in a child process whose stdout is a pipe to this test. Lines received plus
//! lines reported dropped equal lines logged, whether the reader keeps up or reads nothing
//! until the logging is over.

mod common;
mod writer_support;

use std::io::{BufRead, BufReader, Read};
use std::sync::{mpsc, Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use writer_support::{child, child_summary, is_child, log_lines, print_summary, tally};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 50_000;

/// The child: 4 threads log 50,000 lines each, as fast as they can; the time it took goes to
/// stderr before the guard flushes.
#[test]
fn child_load() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    let barrier = Arc::new(Barrier::new(THREADS as usize + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    tracing::info!(thread, i, "load");
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = start.elapsed();
    print_summary(json!({
        "logged": THREADS * PER_THREAD,
        "elapsedMs": elapsed.as_secs_f64() * 1e3,
    }));
    drop(guard);
}

/// Checks the lines of the child: each thread's lines in order, and the accounting.
/// The two load tests run one at a time: each child logs 200,000 lines as fast as it can, and
/// two at once on a small machine would starve the reader of (a) of the CPU it needs to keep
/// up, which is not what (a) measures.
fn one_load_at_a_time() -> MutexGuard<'static, ()> {
    static LOAD: Mutex<()> = Mutex::new(());
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

fn check(stdout: &[u8], stderr: &[u8], what: &str) -> (u64, u64) {
    let summary = child_summary(stderr);
    let logged = summary["logged"].as_u64().unwrap();
    assert_eq!(logged, THREADS * PER_THREAD);
    let lines = log_lines(stdout);
    let counts = tally(&lines, "load");
    assert_eq!(lines.len() as u64, counts.received + counts.reports);
    let mut next = [0u64; THREADS as usize];
    for line in lines.iter().filter(|l| l.str("message") == Some("load")) {
        let thread = line.at("thread").as_u64().unwrap() as usize;
        let i = line.at("i").as_u64().unwrap();
        assert!(
            i >= next[thread],
            "thread {thread}: {i} after {}",
            next[thread]
        );
        next[thread] = i + 1;
    }
    println!(
        "{what}: logged {logged} in {:.1} ms, received {}, reported dropped {} in {} report(s)",
        summary["elapsedMs"].as_f64().unwrap(),
        counts.received,
        counts.reported,
        counts.reports,
    );
    assert_eq!(
        counts.received + counts.reported,
        logged,
        "received + reported dropped == logged"
    );
    (counts.received, logged)
}

/// (a) A reader that keeps up (`Command::output` reads stdout as it comes) receives at least
/// 90% of the lines.
#[test]
fn a_reader_that_keeps_up_gets_nearly_every_line_and_the_rest_is_reported() {
    let _alone = one_load_at_a_time();
    let output = child("child_load").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (received, logged) = check(&output.stdout, &output.stderr, "(a) reader keeps up");
    assert!(
        received * 10 >= logged * 9,
        "received {received} of {logged}"
    );
}

/// (b) A reader that reads nothing until the child says its logging is over (and at least
/// 1.5 s): the logging finishes all the same, with the pipe full, and every line is accounted
/// for. Before the writer, the threads blocked on the full pipe until the reader came back.
#[test]
fn a_stalled_reader_never_blocks_the_logging_threads() {
    let _alone = one_load_at_a_time();
    let mut process = child("child_load").spawn().unwrap();
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
        "(b) stdout unread until the logging was over ({:.0} ms after the start) and at \
         least 1,500 ms had passed",
        stalled.as_secs_f64() * 1e3
    );
    check(&stdout, &stderr, "(b) stalled reader");
}
