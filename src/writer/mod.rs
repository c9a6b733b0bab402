//! A non-blocking writer: the line goes into an in-memory queue, and one background thread
//! writes the queue in batches, so that a reader that keeps up gets every line and a stalled
//! one never stalls the program for longer than the stall timeout (50 ms by default).
//!
//! # Example
//!
//! ```
//! use tracing_ambient::JsonLayer;
//! use tracing_subscriber::prelude::*;
//!
//! let (writer, guard) = tracing_ambient::non_blocking(std::io::stdout());
//! let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(order_id = 42, "order placed");
//! });
//! drop(guard); // flushes
//! ```
//!
//! [`init`](crate::init) does this on stdout. When the reader stalls and the queue overflows,
//! a line in the stream says how many lines were lost since the last one that got through:
//!
//! ```text
//! {"timestamp":"2026-11-24T14:02:12.123456Z","level":"warn","message":"log lines dropped","dropped":1234}
//! ```
//!
//! How it behaves (the queue, its memory bound, drops, errors, flushing) is documented on
//! [`NonBlocking`].

mod builder;
mod exit;
mod guard;
mod non_blocking;
mod shared;
mod worker;

use std::io::Write;

pub use builder::NonBlockingBuilder;
pub(crate) use exit::{flush_all, flush_all_while_moving};
pub use guard::WriterGuard;
pub use non_blocking::NonBlocking;

/// Returns a [`NonBlocking`] writer on `writer` with the default settings, and the guard that
/// flushes it: see [`NonBlockingBuilder`] for the settings.
///
/// `writer` is any `io::Write + Send + 'static`: stdout, a file, a `tracing_appender::rolling`
/// appender, a socket.
///
/// # Panics
///
/// Panics if the operating system cannot start a thread.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{JsonLayer, KeepSpans};
/// use tracing_subscriber::{prelude::*, EnvFilter};
///
/// let (writer, _guard) = tracing_ambient::non_blocking(std::io::stdout());
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLayer::new(writer).with_filter(KeepSpans::new(EnvFilter::new("info"))));
/// # drop(subscriber);
/// ```
#[must_use = "dropping the guard flushes at once; bind it with `let (writer, _guard) = …`"]
pub fn non_blocking<W>(writer: W) -> (NonBlocking, WriterGuard)
where
    W: Write + Send + 'static,
{
    NonBlockingBuilder::default().finish(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixed_clock;
    use crate::{ErrorCounter, JsonLayer, Schema};
    use std::io;
    use std::sync::{Arc, Barrier, Mutex};
    use std::time::{Duration, Instant};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::prelude::*;

    /// A writer that keeps every batch it is given, so tests can see how lines were batched.
    #[derive(Clone, Default)]
    struct Batches(Arc<Mutex<Vec<Vec<u8>>>>);

    impl io::Write for Batches {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Batches {
        fn lines(&self) -> Vec<serde_json::Value> {
            let bytes = self.0.lock().unwrap().concat();
            let text = String::from_utf8(bytes).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
                .collect()
        }

        fn batches(&self) -> usize {
            self.0.lock().unwrap().len()
        }

        /// Waits until `n` lines have arrived, failing after five seconds.
        fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let lines = self.lines();
                if lines.len() >= n {
                    return lines;
                }
                assert!(
                    Instant::now() < deadline,
                    "only {} of {n} lines arrived",
                    lines.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// A writer that blocks every write until the test opens the gate.
    #[derive(Clone)]
    struct Gated {
        /// (open, a write is waiting at the gate)
        open: Arc<(Mutex<(bool, bool)>, std::sync::Condvar)>,
        out: Batches,
    }

    impl Gated {
        fn new() -> Self {
            Gated {
                open: Arc::new((Mutex::new((false, false)), std::sync::Condvar::new())),
                out: Batches::default(),
            }
        }

        fn open(&self) {
            self.open.0.lock().unwrap().0 = true;
            self.open.1.notify_all();
        }

        /// Closes the gate again, for the next write to wait at.
        fn close(&self) {
            *self.open.0.lock().unwrap() = (false, false);
        }

        /// Waits until the worker is blocked in a write, failing after five seconds.
        fn wait_for_a_blocked_write(&self) {
            let (lock, cvar) = &*self.open;
            let (state, timeout) = cvar
                .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(5), |s| !s.1)
                .unwrap();
            assert!(!timeout.timed_out() && state.1, "no write reached the gate");
        }
    }

    impl io::Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cvar) = &*self.open;
            let mut open = lock.lock().unwrap();
            open.1 = true;
            cvar.notify_all();
            while !open.0 {
                open = cvar.wait(open).unwrap();
            }
            drop(open);
            self.out.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(n: usize) -> Vec<u8> {
        format!("{{\"n\":{n}}}\n").into_bytes()
    }

    #[test]
    fn lines_arrive_without_a_flush() {
        let out = Batches::default();
        let (writer, _guard) = non_blocking(out.clone());
        (&writer).write_all(&line(1)).unwrap();
        let lines = out.wait_for(1);
        assert_eq!(lines, [serde_json::json!({"n": 1})]);
    }

    #[test]
    fn a_stalled_writer_gets_many_lines_per_write() {
        let gated = Gated::new();
        let (writer, guard) = non_blocking(gated.clone());
        for n in 0..1000 {
            (&writer).write_all(&line(n)).unwrap();
        }
        gated.open();
        drop(guard);
        let lines = gated.out.lines();
        assert_eq!(lines.len(), 1000);
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(line["n"], n, "in order");
        }
        // The first line may have been taken alone before the rest queued up behind the gate.
        assert!(gated.out.batches() <= 2, "{} writes", gated.out.batches());
    }

    #[test]
    fn a_full_queue_drops_and_reports_with_the_schema_keys() {
        let gated = Gated::new();
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(100)
            .schema(
                Schema::DEFAULT
                    .with_timestamp_key("@timestamp")
                    .with_message_key("msg"),
            )
            .error_counter(errors.clone())
            .finish(gated.clone());
        // Let the worker take the first line and block on the gate with it: the drops then
        // all happen while one batch is being written, and make one burst.
        (&writer).write_all(&line(0)).unwrap();
        gated.wait_for_a_blocked_write();
        for n in 1..=100 {
            (&writer).write_all(&line(n)).unwrap();
        }
        gated.open();
        drop(guard);
        let lines = gated.out.lines();
        let received = lines.iter().filter(|l| l.get("n").is_some()).count();
        let reports: Vec<_> = lines
            .iter()
            .filter(|l| l.get("dropped").is_some())
            .collect();
        assert_eq!(reports.len(), 1, "one report per burst: {lines:?}");
        let report = reports[0].as_object().unwrap();
        let mut keys: Vec<_> = report.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["@timestamp", "dropped", "level", "msg"]);
        assert_eq!(report["level"], "warn");
        assert_eq!(report["msg"], "log lines dropped");
        let dropped = report["dropped"].as_u64().unwrap() as usize;
        assert!(dropped > 0);
        assert_eq!(received + dropped, 101);
        assert_eq!(errors.dropped_lines(), dropped);
        let at = report["@timestamp"].as_str().unwrap();
        assert_eq!(
            (at.len(), &at[4..5], &at[10..11], &at[26..]),
            (27, "-", "T", "Z")
        );
    }

    #[test]
    fn the_report_timestamp_is_written_as_the_layer_writes_it() {
        let mut out = Vec::new();
        worker::drop_report(&mut out, &Schema::DEFAULT, 3, fixed_clock());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"timestamp\":\"2026-11-24T14:02:12.123456Z\",\"level\":\"warn\",\
             \"message\":\"log lines dropped\",\"dropped\":3}\n"
        );
    }

    #[test]
    fn blocking_mode_waits_instead_of_dropping() {
        let gated = Gated::new();
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(100)
            .with_blocking(true)
            .error_counter(errors.clone())
            .finish(gated.clone());
        let logger = std::thread::spawn(move || {
            for n in 0..200 {
                (&writer).write_all(&line(n)).unwrap();
            }
        });
        gated.wait_for_a_blocked_write();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!logger.is_finished(), "the queue is full: the logger waits");
        gated.open();
        logger.join().unwrap();
        drop(guard);
        assert_eq!(gated.out.lines().len(), 200);
        assert_eq!(errors.dropped_lines(), 0);
    }

    /// Issue 19: a full queue makes the logger wait while the writer makes progress, even
    /// when one batch takes longer than the stall timeout to write: each piece written
    /// counts.
    #[test]
    fn a_full_queue_waits_while_the_writer_makes_progress() {
        /// Takes 50 ms per 64 KiB: a 512 KiB batch takes 400 ms, whatever the writes.
        #[derive(Clone, Default)]
        struct Slow(Batches);
        impl io::Write for Slow {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let pieces = buf.len().div_ceil(64 << 10) as u32;
                std::thread::sleep(Duration::from_millis(50) * pieces);
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(512 << 10)
            .stall_timeout(Duration::from_millis(250))
            .error_counter(errors.clone())
            .finish(slow.clone());
        let pad = "x".repeat(1000);
        // Three queues' worth: the logger finds the queue full time and again.
        for n in 0..1536 {
            let line = format!("{{\"n\":{n},\"pad\":\"{pad}\"}}\n");
            (&writer).write_all(line.as_bytes()).unwrap();
        }
        let shared = writer.shared().clone();
        drop(guard);
        let lines = slow.0.lines();
        assert_eq!(lines.len(), 1536, "every line, no drop report");
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(line["n"], n, "in order");
        }
        assert_eq!(errors.dropped_lines(), 0);
        assert_eq!(shared.lock().stalls, 0);
        let writes = slow.0 .0.lock().unwrap();
        assert!(writes.len() >= 24, "{} writes", writes.len());
        assert!(
            writes.iter().all(|w| w.len() <= 64 << 10),
            "pieces of 64 KiB"
        );
    }

    /// Issue 19: a stalled writer holds the logger for the stall timeout once, then every
    /// line that finds the queue full is dropped at once; the first progress ends the stall,
    /// and the next stall is waited for again.
    #[test]
    fn a_stalled_writer_holds_the_logger_once_per_stall() {
        let gated = Gated::new();
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(100)
            .stall_timeout(Duration::from_millis(200))
            .error_counter(errors.clone())
            .finish(gated.clone());
        let shared = writer.shared().clone();
        let stalls = || {
            let state = shared.lock();
            (state.stalls, state.stalled)
        };
        // The worker takes line 0 and blocks at the gate; 100 more lines overflow the queue.
        (&writer).write_all(&line(0)).unwrap();
        gated.wait_for_a_blocked_write();
        for n in 1..=100 {
            (&writer).write_all(&line(n)).unwrap();
        }
        // One wait timed out; the ninety-odd lines after it did not wait.
        assert_eq!(stalls(), (1, true));
        gated.open();
        io::Write::flush(&mut &writer).unwrap();
        assert_eq!(stalls(), (1, false), "the writer moved: the stall is over");
        // A second stall is waited for again, once.
        gated.close();
        (&writer).write_all(&line(101)).unwrap();
        gated.wait_for_a_blocked_write();
        for n in 102..=200 {
            (&writer).write_all(&line(n)).unwrap();
        }
        assert_eq!(stalls(), (2, true));
        gated.open();
        drop(guard);
        let lines = gated.out.lines();
        let received = lines.iter().filter(|l| l.get("n").is_some()).count();
        let reported: u64 = lines.iter().filter_map(|l| l["dropped"].as_u64()).sum();
        assert!(reported > 0);
        assert_eq!(received as u64 + reported, 201);
        assert_eq!(errors.dropped_lines() as u64, reported);
    }

    #[test]
    fn a_zero_stall_timeout_drops_at_once() {
        let gated = Gated::new();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(100)
            .stall_timeout(Duration::ZERO)
            .finish(gated.clone());
        (&writer).write_all(&line(0)).unwrap();
        gated.wait_for_a_blocked_write();
        for n in 1..=100 {
            (&writer).write_all(&line(n)).unwrap();
        }
        let state = writer.shared().lock();
        assert!(state.dropped_total > 0);
        assert_eq!((state.stalls, state.waiting_producers), (0, 0), "no wait");
        drop(state);
        gated.open();
        drop(guard);
    }

    #[test]
    fn a_line_longer_than_the_queue_is_dropped_and_reported() {
        let out = Batches::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .buffer_capacity(64)
            .with_blocking(true)
            .finish(out.clone());
        let long = format!("{{\"long\":\"{}\"}}\n", "x".repeat(100));
        (&writer).write_all(long.as_bytes()).unwrap();
        (&writer).write_all(&line(1)).unwrap();
        drop(guard);
        // The report may come before or after line 1, depending on when the worker woke.
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l["dropped"] == 1).count(), 1);
        assert_eq!(lines.iter().filter(|l| l["n"] == 1).count(), 1);
    }

    #[test]
    fn flush_waits_for_every_queued_line_and_times_out_on_a_stalled_writer() {
        let gated = Gated::new();
        let (mut writer, guard) = NonBlockingBuilder::default()
            .flush_timeout(Duration::from_millis(100))
            .with_error_reporting(false)
            .finish(gated.clone());
        (&writer).write_all(&line(1)).unwrap();
        let err = io::Write::flush(&mut writer).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            err.to_string(),
            "log flush timed out: 1 line(s) not written yet"
        );
        gated.open();
        io::Write::flush(&mut writer).unwrap();
        assert_eq!(gated.out.lines().len(), 1);
        drop(guard);
    }

    /// The panic hook's flush (issue 19 §4): it gives up on a writer that makes no progress
    /// (here within a flush timeout of a minute), marks the writer stalled so that the next
    /// such flush gives up at once, and waits again once the writer moves.
    #[test]
    fn a_flush_while_moving_gives_up_on_a_stalled_writer_and_not_on_a_moving_one() {
        let gated = Gated::new();
        let (writer, guard) = NonBlockingBuilder::default()
            .flush_timeout(Duration::from_secs(60))
            .with_error_reporting(false)
            .finish(gated.clone());
        let shared = writer.shared().clone();
        (&writer).write_all(&line(1)).unwrap();
        gated.wait_for_a_blocked_write();
        (&writer).write_all(&line(2)).unwrap();
        let minute = Duration::from_secs(60);
        let stall = Duration::from_millis(50);
        assert_eq!(shared.flush_while_moving(minute, stall), Err(2));
        assert!(shared.lock().stalled, "the writer is marked stalled");
        assert_eq!(shared.flush_while_moving(minute, stall), Err(2));
        gated.open();
        // The worker's next progress (its write returning) ends the stall.
        let moved = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !shared.lock().stalled
        });
        assert!(moved, "the writer moved within 5 s");
        assert_eq!(shared.flush_while_moving(minute, minute), Ok(()));
        assert_eq!(gated.out.lines().len(), 2);
        drop(guard);
    }

    #[test]
    fn the_worker_ends_when_every_handle_is_gone() {
        let out = Batches::default();
        let (writer, guard) = non_blocking(out.clone());
        let shared = writer.shared().clone();
        let clone = writer.clone();
        drop(writer);
        (&clone).write_all(&line(7)).unwrap();
        drop(clone);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !shared.lock().worker_gone {
            assert!(Instant::now() < deadline, "the worker did not end");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(out.lines(), [serde_json::json!({"n": 7})], "written first");
        drop(guard);
    }

    #[test]
    fn write_errors_are_counted_and_a_broken_pipe_stops_writing() {
        #[derive(Clone, Default)]
        struct Broken(Arc<Mutex<usize>>);
        impl io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                *self.0.lock().unwrap() += 1;
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let broken = Broken::default();
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .error_counter(errors.clone())
            .with_error_reporting(false)
            .finish(broken.clone());
        for n in 0..10 {
            (&writer).write_all(&line(n)).unwrap();
            io::Write::flush(&mut &writer).unwrap();
        }
        drop(guard);
        assert_eq!(errors.dropped_lines(), 10);
        assert_eq!(
            *broken.0.lock().unwrap(),
            1,
            "no write after the broken pipe"
        );
    }

    #[test]
    fn a_torn_line_is_not_glued_to_the_next() {
        /// Takes 5 bytes, then fails once, then works.
        #[derive(Clone, Default)]
        struct Torn(Arc<Mutex<(usize, Vec<u8>)>>);
        impl io::Write for Torn {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let mut state = self.0.lock().unwrap();
                state.0 += 1;
                match state.0 {
                    1 => {
                        state.1.extend_from_slice(&buf[..5]);
                        Ok(5)
                    }
                    2 => Err(io::ErrorKind::StorageFull.into()),
                    _ => {
                        state.1.extend_from_slice(buf);
                        Ok(buf.len())
                    }
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let torn = Torn::default();
        let errors = ErrorCounter::default();
        let (mut writer, guard) = NonBlockingBuilder::default()
            .error_counter(errors.clone())
            .with_error_reporting(false)
            .finish(torn.clone());
        (&writer).write_all(&line(1)).unwrap();
        io::Write::flush(&mut writer).unwrap();
        (&writer).write_all(&line(2)).unwrap();
        drop(guard);
        assert_eq!(errors.dropped_lines(), 1);
        let text = String::from_utf8(torn.0.lock().unwrap().1.clone()).unwrap();
        assert_eq!(text, "{\"n\":\n{\"n\":2}\n");
    }

    #[test]
    fn a_panicking_writer_never_reaches_the_logger() {
        struct Panics;
        impl io::Write for Panics {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("writer blew up");
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let errors = ErrorCounter::default();
        let (writer, guard) = NonBlockingBuilder::default()
            .error_counter(errors.clone())
            .with_error_reporting(false)
            .finish(Panics);
        for n in 0..3 {
            (&writer).write_all(&line(n)).unwrap();
            io::Write::flush(&mut &writer).unwrap();
        }
        drop(guard);
        assert_eq!(errors.dropped_lines(), 3);
    }

    #[test]
    fn composes_with_json_layer_from_many_threads() {
        let out = Batches::default();
        let (writer, guard) = non_blocking(out.clone());
        let layer = JsonLayer::new(writer);
        let errors = layer.error_counter();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dispatch = dispatch.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        barrier.wait();
                        for i in 0..1000 {
                            tracing::info!(t, i, "line");
                        }
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let lines = out.lines();
        assert_eq!(lines.len(), 4000);
        for t in 0..4 {
            let mine: Vec<_> = lines.iter().filter(|l| l["t"] == t).collect();
            assert_eq!(mine.len(), 1000);
            for (i, line) in mine.iter().enumerate() {
                assert_eq!(line["i"], i, "each thread's lines in order");
            }
        }
        assert_eq!(errors.dropped_lines(), 0);
    }

    #[test]
    fn make_writer_hands_out_the_writer_itself() {
        let (writer, _guard) = non_blocking(io::sink());
        let made: &NonBlocking = writer.make_writer();
        assert!(std::ptr::eq(made, &writer));
    }
}
