//! Issue 19 §4: panics that are caught (a handler's panic the middleware turns into a 500, a
//! `Debug` impl the layer guards) do not each wait for a stalled reader. The panic hook
//! flushes the writer only while it makes progress, so a service whose stdout reader has
//! stalled keeps going through its caught panics; once the reader is back, every line
//! arrives. The child runs `init()` with stdout piped to this test, which reads nothing until
//! the child has caught every panic or the watchdog fires.

mod common;
mod writer_support;

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use writer_support::{child, is_child, log_lines};

/// Lines logged before the panics: some 1.3 MB, far more than a pipe holds (64 KiB on
/// Linux) and far less than the queue (4 MiB). The writer thread blocks on the full pipe with
/// lines still queued, and none is dropped.
const FILL: u64 = 5_000;
const PADDING: &str = "................................................................................................................................................................................";
/// Caught panics, one after the other, on a thread that is not `main`.
const PANICS: u64 = 20;
/// How long the test waits for the caught panics while stdout is not read. Before the fix
/// each caught panic waited out the 2 s flush timeout: 20 took 40 s.
const WATCHDOG: Duration = Duration::from_secs(10);

#[test]
fn child_catches_panics() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    for i in 0..FILL {
        tracing::info!(i, padding = PADDING, "fill");
    }
    let handler = std::thread::Builder::new()
        .name("handler".into())
        .spawn(|| {
            for i in 0..PANICS {
                let caught = std::panic::catch_unwind(|| panic!("caught panic {i}"));
                assert!(caught.is_err());
                eprintln!("caught {i}");
            }
        })
        .unwrap();
    handler.join().unwrap();
    drop(guard);
}

#[test]
fn caught_panics_do_not_wait_for_a_stalled_reader() {
    let mut process = child("child_catches_panics").spawn().unwrap();
    let stderr = process.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    // stdout is not read here: the child's writer is stalled on the full pipe.
    let watchdog = Instant::now() + WATCHDOG;
    let mut caught = 0;
    while caught < PANICS {
        let left = watchdog.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) if line.starts_with("caught ") => caught += 1,
            Ok(_) => {}
            // The watchdog fired, or the child's stderr closed (it ended).
            Err(_) => break,
        }
    }
    // The reader comes back: the child can finish whatever happened.
    let mut stdout = Vec::new();
    process
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = process.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert_eq!(
        caught, PANICS,
        "caught panics done within {WATCHDOG:?} while stdout was not read: {stderr}"
    );
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains("[tracing-ambient]"),
        "no line lost, no flush given up at exit: {stderr}"
    );
    // Nothing was lost: every fill line in order, then a panic line per caught panic, each
    // on the thread that caught it.
    let lines = log_lines(&stdout);
    assert_eq!(lines.len() as u64, FILL + PANICS);
    let fills: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some("fill"))
        .collect();
    assert_eq!(fills.len() as u64, FILL);
    for (i, line) in fills.iter().enumerate() {
        assert_eq!(line.at("i").as_u64(), Some(i as u64), "in order");
        assert_eq!(line.str("padding"), Some(PADDING));
    }
    let panics: Vec<_> = lines
        .iter()
        .filter(|l| l.str("target") == Some("panic"))
        .collect();
    assert_eq!(panics.len() as u64, PANICS);
    for (i, line) in panics.iter().enumerate() {
        assert_eq!(
            line.str("message"),
            Some(format!("caught panic {i}").as_str())
        );
        assert_eq!(line.str("level"), Some("error"));
        assert_eq!(line.str("thread"), Some("handler"));
    }
}
