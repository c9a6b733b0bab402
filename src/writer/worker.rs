//! The writer thread: takes the pending lines as one batch, writes it with as few `write`
//! calls as the writer accepts, reports drops in the stream, and survives every error of the
//! writer it owns.

use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::shared::{Shared, Worker};
use crate::json;
use crate::output::ErrorCounter;
use crate::schema::Schema;

/// How long the worker waits for more lines after a batch before it writes them: the bound on
/// how late a line reaches the writer under steady load, when no producer wakes the worker.
pub(crate) const NAP: Duration = Duration::from_millis(5);

/// The most the worker passes to one `write`: each piece written is progress that keeps
/// producers waiting for room rather than dropping. The size of a Linux pipe's buffer, so
/// that a pipe whose reader keeps up takes each piece in one go.
const PIECE: usize = 64 << 10;

/// How long the worker waits before it tries again a writer that said `WouldBlock` (a
/// non-blocking file descriptor whose reader is behind).
const WOULD_BLOCK_PAUSE: Duration = Duration::from_millis(1);

/// Runs the worker until every `NonBlocking` is gone and the queue is empty.
pub(crate) fn run<W: Write>(shared: Arc<Shared>, writer: W) {
    let _gone = GoneOnDrop(&shared);
    shared.enter_worker();
    let config = &shared.config;
    let mut batch = Vec::with_capacity(config.capacity);
    let mut report = Vec::with_capacity(256);
    let mut output = Output {
        shared: &shared,
        writer,
        dead: false,
        partial: false,
        errors: config.errors.clone(),
        report_errors: config.report_errors,
    };
    // A nap follows each batch; after one that brought nothing the worker sleeps until woken.
    let mut nap = false;
    loop {
        let mut state = shared.lock();
        while state.pending.is_empty() && state.dropped == 0 {
            if state.closed {
                return;
            }
            let wait = if nap { Some(NAP) } else { None };
            state.worker = if nap {
                Worker::Napping
            } else {
                Worker::Sleeping
            };
            state = match wait {
                Some(nap) => {
                    shared
                        .work
                        .wait_timeout(state, nap)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => shared
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            nap = false;
        }
        state.worker = Worker::Running;
        state.progressed();
        std::mem::swap(&mut state.pending, &mut batch);
        let dropped = std::mem::take(&mut state.dropped);
        let (lines, drops) = (state.accepted, state.dropped_total);
        let producers_wait = state.waiting_producers > 0;
        drop(state);
        if producers_wait {
            shared.space.notify_all();
        }

        output.write_lines(&batch, true);
        batch.clear();
        if dropped > 0 {
            report.clear();
            drop_report(&mut report, &config.schema, dropped, SystemTime::now());
            // The report is no log line: losing it does not count as one more lost line.
            output.write_lines(&report, false);
        }
        output.flush();

        let mut state = shared.lock();
        state.done = lines;
        state.reported_total = drops;
        let flushers_wait = state.waiting_flushers > 0;
        drop(state);
        if flushers_wait {
            shared.written.notify_all();
        }
        nap = true;
    }
}

/// Marks the worker gone however it ends, so that flushers and blocked producers stop
/// waiting for it.
struct GoneOnDrop<'a>(&'a Shared);

impl Drop for GoneOnDrop<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.worker_gone = true;
        drop(state);
        self.0.space.notify_all();
        self.0.written.notify_all();
    }
}

/// The writer and what the worker knows about its health.
struct Output<'a, W> {
    /// Told of each piece written, so that producers know the reader moves.
    shared: &'a Shared,
    writer: W,
    /// The reader is gone (broken pipe) or the writer panicked: later lines are counted,
    /// never written.
    dead: bool,
    /// A write failed in the middle of a line: the next batch starts on a new line, so that
    /// the torn line is not glued to the next one.
    partial: bool,
    errors: ErrorCounter,
    report_errors: bool,
}

impl<W: Write> Output<'_, W> {
    /// Writes whole lines, counting (when `count` is set) those a write error loses: every
    /// line whose `\n` was not written.
    fn write_lines(&mut self, bytes: &[u8], count: bool) {
        if bytes.is_empty() {
            return;
        }
        if self.dead {
            if count {
                self.lose(bytes, format_args!("the log writer is gone"));
            }
            return;
        }
        if self.partial && self.write_all(b"\n").is_ok() {
            self.partial = false;
        }
        if let Err((written, err)) = self.write_all(bytes) {
            let rest = if count { &bytes[written..] } else { &[][..] };
            self.partial = written > 0 && bytes[written - 1] != b'\n';
            match err {
                Failure::Io(err) => {
                    if err.kind() == io::ErrorKind::BrokenPipe {
                        self.dead = true;
                    }
                    self.lose(rest, format_args!("could not write log lines: {err}"));
                }
                Failure::Panicked => {
                    self.dead = true;
                    self.lose(rest, format_args!("the log writer panicked"));
                }
            }
        }
    }

    /// Writes all of `bytes`, in pieces of at most [`PIECE`] bytes, and returns how many
    /// were written when it fails.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), (usize, Failure)> {
        let mut written = 0;
        while written < bytes.len() {
            let rest = &bytes[written..];
            let piece = &rest[..rest.len().min(PIECE)];
            let result = catch_unwind(AssertUnwindSafe(|| self.writer.write(piece)));
            match result {
                Ok(Ok(0)) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    return Err((written, Failure::Io(err)));
                }
                Ok(Ok(n)) => {
                    written += n.min(piece.len());
                    self.shared.lock().progressed();
                }
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(WOULD_BLOCK_PAUSE);
                }
                Ok(Err(err)) => return Err((written, Failure::Io(err))),
                Err(_) => return Err((written, Failure::Panicked)),
            }
        }
        Ok(())
    }

    /// Flushes the writer after a batch, so that a buffered writer (`BufWriter<File>`)
    /// passes the lines on as promptly as an unbuffered one. A failing flush is the writer's
    /// to report with its next write; a panicking one counts as a dead writer.
    fn flush(&mut self) {
        if self.dead {
            return;
        }
        if catch_unwind(AssertUnwindSafe(|| self.writer.flush())).is_err() {
            self.dead = true;
        }
    }

    /// Counts every line of `bytes` as lost, reporting on stderr at the 1st, 2nd, 4th…
    fn lose(&self, bytes: &[u8], why: std::fmt::Arguments<'_>) {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        for _ in 0..lines {
            self.errors.record(self.report_errors, why);
        }
    }
}

enum Failure {
    Io(io::Error),
    Panicked,
}

/// Writes the line that reports `dropped` lines, with the schema's keys:
/// `{"timestamp":"…","level":"warn","message":"log lines dropped","dropped":12}`.
pub(crate) fn drop_report(out: &mut Vec<u8>, schema: &Schema, dropped: u64, now: SystemTime) {
    out.push(b'{');
    json::write_key(out, schema.timestamp);
    write_timestamp(out, now);
    out.push(b',');
    json::write_key(out, schema.level);
    json::write_str(out, "warn");
    out.push(b',');
    json::write_key(out, schema.message);
    json::write_str(out, "log lines dropped");
    out.push(b',');
    json::write_key(out, "dropped");
    json::write_u64(out, dropped);
    out.extend_from_slice(b"}\n");
}

/// Appends `now` as the layer writes it: a quoted RFC 3339 UTC timestamp with microseconds.
/// Worked out in full each time: a report is rare.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fields: [(u32, usize, u8); 7] = [
        (at.year().clamp(0, 9999) as u32, 4, b'-'),
        (u8::from(at.month()).into(), 2, b'-'),
        (at.day().into(), 2, b'T'),
        (at.hour().into(), 2, b':'),
        (at.minute().into(), 2, b':'),
        (at.second().into(), 2, b'.'),
        (since_epoch.subsec_micros(), 6, b'Z'),
    ];
    out.push(b'"');
    for (value, width, separator) in fields {
        let mut digits = [b'0'; 6];
        let mut rest = value;
        for digit in digits[..width].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&digits[..width]);
        out.push(separator);
    }
    out.push(b'"');
}
