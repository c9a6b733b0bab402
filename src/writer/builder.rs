//! [`NonBlockingBuilder`]: the settings of a non-blocking writer, and starting its thread.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use super::guard::WriterGuard;
use super::non_blocking::NonBlocking;
use super::shared::{Config, Shared};
use super::{exit, worker};
use crate::output::ErrorCounter;
use crate::schema::Schema;

/// The capacity of the queue unless set: 4 MiB, some 20,000 lines of 200 bytes.
pub(crate) const DEFAULT_CAPACITY: usize = 4 << 20;

/// How long a producer waits for room in a full queue while the writer makes no progress,
/// unless set.
pub(crate) const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_millis(50);

/// The flush timeout unless set.
pub(crate) const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

const DEFAULT_THREAD_NAME: &str = "tracing-ambient-writer";

/// Builds a [`NonBlocking`] writer with settings of your own.
///
/// The writer holds at most twice [`buffer_capacity`](NonBlockingBuilder::buffer_capacity)
/// bytes of lines (8 MiB by default): see [`NonBlocking`] for how the queue behaves.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tracing_ambient::{JsonLayer, NonBlockingBuilder, Schema};
///
/// let file = std::fs::File::create(std::env::temp_dir().join("audit.log")).unwrap();
/// let (writer, _guard) = NonBlockingBuilder::default()
///     .buffer_capacity(16 << 20)
///     .with_blocking(true) // an audit log: wait rather than drop
///     .flush_timeout(Duration::from_secs(10))
///     .thread_name("audit-log")
///     .finish(file);
/// let layer = JsonLayer::new(writer);
/// # drop(layer);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NonBlockingBuilder {
    capacity: usize,
    blocking: bool,
    stall_timeout: Duration,
    flush_timeout: Duration,
    thread_name: String,
    schema: Schema,
    errors: ErrorCounter,
    report_errors: bool,
}

impl Default for NonBlockingBuilder {
    fn default() -> Self {
        NonBlockingBuilder {
            capacity: DEFAULT_CAPACITY,
            blocking: false,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            thread_name: DEFAULT_THREAD_NAME.to_owned(),
            schema: Schema::DEFAULT,
            errors: ErrorCounter::default(),
            report_errors: true,
        }
    }
}

impl NonBlockingBuilder {
    /// Sets the size of the queue in bytes, which bounds the writer's memory: two buffers
    /// of this size (the lines waiting, the batch being written) are reserved up front and
    /// never grow, so the writer holds at most twice this many bytes of lines (the
    /// operating system commits their pages only as they are first used). A line longer
    /// than this is dropped and counted. Defaults to 4 MiB (8 MiB of memory at most).
    ///
    /// ```
    /// let builder = tracing_ambient::NonBlockingBuilder::default().buffer_capacity(1 << 20);
    /// # drop(builder);
    /// ```
    pub fn buffer_capacity(self, bytes: usize) -> Self {
        Self {
            capacity: bytes,
            ..self
        }
    }

    /// Sets whether a full queue makes the logging thread wait for space for as long as it
    /// takes, instead of dropping the line once the writer has made no progress for the
    /// [`stall_timeout`]: for audit logs, where a lost line costs more than a stalled
    /// request. Defaults to `false` (wait at most the stall timeout, then drop and count).
    ///
    /// [`stall_timeout`]: NonBlockingBuilder::stall_timeout
    ///
    /// ```
    /// let builder = tracing_ambient::NonBlockingBuilder::default().with_blocking(true);
    /// # drop(builder);
    /// ```
    pub fn with_blocking(self, yes: bool) -> Self {
        Self {
            blocking: yes,
            ..self
        }
    }

    /// Sets how long a logging thread that finds the queue full waits for room while the
    /// writer makes no progress, before the writer counts as stalled and drops lines.
    ///
    /// While the writer thread makes progress (it gets a piece of at most 64 KiB written, or
    /// takes a batch), a logging thread waits for room, however long the queue takes to
    /// drain: a reader that keeps up receives every line, and a slower one slows the logging
    /// down to its pace. Once the writer has made no progress for this long, the line is
    /// dropped, and so is every line that finds the queue full after it, at once, until the
    /// writer makes progress again: a stalled reader holds each logging thread for at most
    /// this long per stall, never per line. Drops are counted and reported in the stream.
    /// `Duration::ZERO` drops at once whenever the queue is full. Has no effect in
    /// [blocking mode](NonBlockingBuilder::with_blocking). Defaults to 50 ms.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = tracing_ambient::NonBlockingBuilder::default()
    ///     .stall_timeout(Duration::from_millis(20));
    /// # drop(builder);
    /// ```
    pub fn stall_timeout(self, timeout: Duration) -> Self {
        Self {
            stall_timeout: timeout,
            ..self
        }
    }

    /// Sets how long a flush (the guard's drop, the panic hook, the exit handler,
    /// [`io::Write::flush`]) waits for the writer before it gives up, so that a dead reader
    /// cannot hang the program's exit. Defaults to two seconds.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = tracing_ambient::NonBlockingBuilder::default()
    ///     .flush_timeout(Duration::from_millis(500));
    /// # drop(builder);
    /// ```
    pub fn flush_timeout(self, timeout: Duration) -> Self {
        Self {
            flush_timeout: timeout,
            ..self
        }
    }

    /// Sets the name of the writer thread. Defaults to `tracing-ambient-writer`.
    ///
    /// ```
    /// let builder = tracing_ambient::NonBlockingBuilder::default().thread_name("log-writer");
    /// # drop(builder);
    /// ```
    pub fn thread_name(self, name: impl Into<String>) -> Self {
        Self {
            thread_name: name.into(),
            ..self
        }
    }

    /// Sets the key names of the line that reports dropped lines (timestamp, level,
    /// message); give it the layer's schema. Defaults to [`Schema::DEFAULT`].
    ///
    /// ```
    /// use tracing_ambient::{NonBlockingBuilder, Schema};
    ///
    /// let builder = NonBlockingBuilder::default()
    ///     .schema(Schema::DEFAULT.with_timestamp_key("@timestamp"));
    /// # drop(builder);
    /// ```
    pub fn schema(self, schema: Schema) -> Self {
        Self { schema, ..self }
    }

    /// Sets the counter of lost lines: lines dropped because the queue was full and lines a
    /// write error lost. Give it the layer's ([`JsonLayer::error_counter`]) to watch one
    /// number for every lost line. Defaults to a counter of its own.
    ///
    /// ```
    /// use tracing_ambient::{JsonLayer, NonBlockingBuilder};
    ///
    /// let layer = JsonLayer::stdout();
    /// let (writer, _guard) = NonBlockingBuilder::default()
    ///     .error_counter(layer.error_counter())
    ///     .finish(std::io::stdout());
    /// let layer = layer.with_writer(writer);
    /// # drop(layer);
    /// ```
    ///
    /// [`JsonLayer::error_counter`]: crate::layer::JsonLayer::error_counter
    pub fn error_counter(self, errors: ErrorCounter) -> Self {
        Self { errors, ..self }
    }

    /// Sets whether write errors and flush timeouts are reported on stderr (at the 1st, 2nd,
    /// 4th… lost line); they are counted either way. Drops from a full queue are reported in
    /// the stream, not on stderr. Defaults to `true`.
    ///
    /// ```
    /// let builder = tracing_ambient::NonBlockingBuilder::default().with_error_reporting(false);
    /// # drop(builder);
    /// ```
    pub fn with_error_reporting(self, yes: bool) -> Self {
        Self {
            report_errors: yes,
            ..self
        }
    }

    /// Starts the writer thread on `writer` and returns the writer for the layer and the guard
    /// that flushes it.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot start a thread; [`try_finish`] returns the error
    /// instead.
    ///
    /// ```
    /// let (writer, _guard) =
    ///     tracing_ambient::NonBlockingBuilder::default().finish(std::io::stderr());
    /// # drop(writer);
    /// ```
    ///
    /// [`try_finish`]: NonBlockingBuilder::try_finish
    pub fn finish<W>(self, writer: W) -> (NonBlocking, WriterGuard)
    where
        W: Write + Send + 'static,
    {
        match self.try_finish(writer) {
            Ok(pair) => pair,
            Err(err) => panic!("tracing-ambient could not start its writer thread: {err}"),
        }
    }

    /// Starts the writer thread on `writer`, as [`finish`](NonBlockingBuilder::finish) does.
    ///
    /// # Errors
    ///
    /// Returns the error of [`std::thread::Builder::spawn`] if the thread cannot be started.
    ///
    /// ```
    /// let (writer, _guard) = tracing_ambient::NonBlockingBuilder::default()
    ///     .try_finish(std::io::stdout())
    ///     .expect("a thread");
    /// # drop(writer);
    /// ```
    pub fn try_finish<W>(self, writer: W) -> io::Result<(NonBlocking, WriterGuard)>
    where
        W: Write + Send + 'static,
    {
        let shared = Arc::new(Shared::new(Config {
            capacity: self.capacity,
            blocking: self.blocking,
            stall_timeout: self.stall_timeout,
            flush_timeout: self.flush_timeout,
            schema: self.schema,
            errors: self.errors,
            report_errors: self.report_errors,
        }));
        // The handle exists before the thread does, so the worker cannot see "every handle
        // gone" before the first one is made.
        let non_blocking = NonBlocking::new(shared.clone());
        let for_worker = shared.clone();
        std::thread::Builder::new()
            .name(self.thread_name)
            .spawn(move || worker::run(for_worker, writer))?;
        exit::register(&shared);
        Ok((non_blocking, WriterGuard::new(shared)))
    }
}
