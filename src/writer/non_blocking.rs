//! [`NonBlocking`]: the `MakeWriter` and `io::Write` handed to the layer.

use std::fmt;
use std::io;
use std::sync::Arc;

use tracing_subscriber::fmt::MakeWriter;

use super::shared::Shared;
use crate::output::ErrorCounter;

/// A writer that queues each line in memory for a background thread to write, so that logging
/// never waits for the output.
///
/// Built by [`non_blocking`](crate::non_blocking) or
/// [`NonBlockingBuilder`](crate::NonBlockingBuilder), with the [`WriterGuard`](crate::WriterGuard)
/// that flushes it. It implements [`MakeWriter`], so a [`JsonLayer`](crate::JsonLayer) (or
/// any `tracing-subscriber` layer) writes through it; clones share one queue and one thread.
///
/// # Examples
///
/// ```
/// use tracing_ambient::JsonLayer;
/// use tracing_subscriber::prelude::*;
///
/// let (writer, _guard) = tracing_ambient::non_blocking(std::io::stdout());
/// let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writer));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("queued, then written"));
/// ```
///
/// # One write, one line
///
/// Each `write` (or `write_all`) call must pass one whole line, `\n` included, as
/// [`JsonLayer`](crate::JsonLayer) and `tracing-subscriber`'s `fmt` layer do: the call is
/// queued or dropped as a whole, and lines of other threads can come between two calls. A
/// `write` never fails and always reports the whole line taken: a dropped line is counted in
/// the [`ErrorCounter`] and reported in the stream, not returned as an error that the layer
/// would count a second time.
///
/// # The queue
///
/// Two byte buffers of a fixed capacity (4 MiB by default). Logging takes a lock, copies the
/// line into one buffer and lets go: no syscall, no allocation. The writer thread swaps the
/// buffers and writes the whole batch, in pieces of at most 64 KiB, so a busy program makes
/// one syscall per batch of lines (or per 64 KiB of it) rather than one per line. A line
/// reaches the writer within a few milliseconds: the first line into an empty queue wakes the
/// thread, and after each batch it waits 5 ms for the next one (a queue filling up wakes it
/// sooner).
///
/// # Memory
///
/// The queue holds at most
/// [`buffer_capacity`](crate::NonBlockingBuilder::buffer_capacity) bytes of lines waiting
/// and the writer thread at most as many of the batch it is writing: two buffers of that
/// size, 8 MiB in all by default, reserved when the writer is built (the operating system
/// commits their pages only as they are first used) and never grown. Add 256 bytes for the
/// line that reports drops. A line that does not fit in the queue is never held anywhere
/// else: the logging thread waits, or the line is dropped.
///
/// # A full queue
///
/// A line that does not fit makes the logging thread wait for room, as long as the writer
/// thread makes progress (it gets a piece of a batch written, or takes a batch): a reader
/// that keeps up receives every line, and a slower one slows the logging down to its pace.
/// When the writer has made no progress for the
/// [stall timeout](crate::NonBlockingBuilder::stall_timeout) (50 ms by default), the reader
/// counts as stalled: that line is dropped, and so is every line that finds the queue full
/// after it, at once, until the writer makes progress again. A stalled reader thus holds
/// each logging thread for at most one stall timeout per stall, never per line.
///
/// A dropped line is counted in the [`ErrorCounter`](crate::ErrorCounter), and in the
/// stream, where the writer puts one report line (keys from the
/// [`Schema`](crate::Schema) given to the builder) after the batch in which the drops
/// happened. Lines received plus lines reported dropped equal lines logged.
/// [`with_blocking`](crate::NonBlockingBuilder::with_blocking) makes the logging thread wait
/// for room however long the writer is stalled. A line longer than the whole queue is always
/// dropped.
///
/// # Errors of the writer
///
/// A write error loses the lines of that batch not yet written; they are counted in the
/// [`ErrorCounter`](crate::ErrorCounter) and reported on stderr at the 1st, 2nd, 4th… lost
/// line, and the next batch is tried again. After a broken pipe (the reader is gone), or a
/// panic of the writer, nothing more is written: later lines are only counted. A writer that
/// returns `WouldBlock` (a non-blocking file descriptor) is retried after a millisecond.
/// Nothing of this reaches the program.
///
/// # Flushing
///
/// Lines are written when the [`WriterGuard`](crate::WriterGuard) is dropped (a return from
/// `main`, or a panic unwinding out of it), when
/// [`install_panic_hook`](crate::install_panic_hook)'s hook runs (before the hook that was
/// there before it), and on Unix when the process exits through `std::process::exit` (an
/// `atexit` handler). Each waits at most the flush timeout (two
/// seconds by default), so that a dead reader cannot hang the exit, and says on stderr how
/// many lines it gave up on. The panic hook's flush also gives up once the writer has written
/// nothing for its stall timeout, since the panic may be caught and the program go on (see
/// [`install_panic_hook`](crate::install_panic_hook#a-stalled-reader)).
///
/// [`io::Write::flush`] waits until every line queued before it is written, for at most the
/// flush timeout, and fails with [`io::ErrorKind::TimedOut`] after it.
pub struct NonBlocking {
    shared: Arc<Shared>,
}

// === impl NonBlocking ===

impl NonBlocking {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.add_handle();
        NonBlocking { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Returns the counter of lines this writer dropped (queue full) or could not write
    /// (write errors). It is the counter given to
    /// [`NonBlockingBuilder::error_counter`](crate::NonBlockingBuilder::error_counter), so it
    /// may count the layer's failures too.
    ///
    /// ```
    /// let (writer, _guard) = tracing_ambient::non_blocking(std::io::sink());
    /// assert_eq!(writer.error_counter().dropped_lines(), 0);
    /// ```
    pub fn error_counter(&self) -> ErrorCounter {
        self.shared.config.errors.clone()
    }

    fn flush_queue(&self) -> io::Result<()> {
        self.shared
            .flush(self.shared.config.flush_timeout)
            .map_err(|lost| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("log flush timed out: {lost} line(s) not written yet"),
                )
            })
    }
}

impl Clone for NonBlocking {
    fn clone(&self) -> Self {
        NonBlocking::new(self.shared.clone())
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

impl fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("capacity", &self.shared.config.capacity)
            .field("blocking", &self.shared.config.blocking)
            .finish_non_exhaustive()
    }
}

impl io::Write for NonBlocking {
    /// Queues `line` whole, or drops and counts it; never fails.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        (&*self).write(line)
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        (&*self).write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_queue()
    }
}

impl io::Write for &NonBlocking {
    /// Queues `line` whole, or drops and counts it; never fails.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.shared.push(line);
        Ok(line.len())
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        self.shared.push(line);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_queue()
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = &'a NonBlocking;

    /// Returns a reference: making a writer per event clones nothing and touches no shared
    /// counter.
    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}
