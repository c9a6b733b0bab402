//! The one-call setup: `RUST_LOG` filter, [`JsonLayer`] on the non-blocking stdout writer (or
//! [`PrettyLayer`] as `LOG_FORMAT` says), the `log` crate bridge and a panic hook, installed as
//! the global subscriber; and the [`Guard`] that flushes on drop.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tracing_log::AsLog;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::Registry;

use crate::filter::{ContextLevel, KeepSpans};
use crate::layer::JsonLayer;
use crate::pretty::LogFormat;
use crate::pretty::PrettyLayer;
use crate::schema::set_process_schema;
use crate::schema::Schema;
use crate::writer::NonBlocking;
use crate::writer::NonBlockingBuilder;
use crate::writer::WriterGuard;

/// How long dropping a [`Guard`] waits for a writer of the user's own to flush.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the global subscriber: an `EnvFilter` from `RUST_LOG`, a [`JsonLayer`] on stdout
/// through the [non-blocking writer](crate::non_blocking) in the schema `LOG_FORMAT` names
/// (or human-readable lines), the `log` crate bridge and a panic hook (see
/// [`install_panic_hook`]).
///
/// # `LOG_FORMAT`
///
/// | `LOG_FORMAT` | lines |
/// | --- | --- |
/// | `json` | JSON, [`Schema::DEFAULT`] |
/// | `ecs` | JSON, [`Schema::ecs`] |
/// | `otel` | JSON, [`Schema::otel`] |
/// | `gcp` | JSON, [`Schema::gcp`] with the project of `GOOGLE_CLOUD_PROJECT` |
/// | `datadog` | JSON, [`Schema::datadog`] (`dd.service`, `dd.env`, `dd.version` from `DD_SERVICE`, `DD_ENV`, `DD_VERSION`) |
/// | `pretty` | human-readable ([`PrettyLayer`]), coloured on a terminal unless `NO_COLOR` is set |
/// | unset or empty | `pretty` when stdout is a terminal, `json` otherwise |
/// | anything else | `json`, and a message on stderr |
///
/// The rules are [`LogFormat::from_env`]'s. The access line of the HTTP middleware
/// (`http::DefaultOnAccess`, feature `http`) takes the keys of the schema chosen here, so its
/// keys are those of the other lines without configuring it.
///
/// # Output
///
/// Lines go into an in-memory queue (4 MiB; 8 MiB of memory at most with the batch being
/// written) that a background thread writes to stdout in batches. When the queue is full, a
/// logging thread waits for room while the reader of stdout makes progress, so a reader that
/// keeps up gets every line; once it has made no progress for 50 ms, lines are dropped
/// (at once, until it moves again), counted in the layer's
/// [`ErrorCounter`](crate::ErrorCounter) and reported in the stream by a
/// `"log lines dropped"` line, so a stalled reader never blocks the program for longer than
/// that. The [`Guard`] flushes the queue when dropped,
/// the panic hook flushes it before the previous hook runs (as long as the reader makes
/// progress, see [`install_panic_hook`]), and on Unix an exit handler
/// flushes it on `std::process::exit`. For other settings (stall timeout, blocking mode,
/// queue size), build the writer with [`NonBlockingBuilder`] and pass the layer to
/// [`try_init_with`].
///
/// Human-readable lines are written to stdout directly, a line per write: they are for a
/// developer's terminal, which does not stall.
///
/// # Filtering
///
/// `RUST_LOG` decides which events are written: `info` when it is empty; invalid directives
/// are ignored with a message on stderr. A span created while a request context is current
/// is kept whatever its level, because it carries the context to wherever it is entered; any
/// other span follows `RUST_LOG`, and one it disables is not created at all (see
/// [`KeepSpans`]). When `RUST_LOG` names only targets
/// (`RUST_LOG=myapp=debug`), panic lines (target `panic`) and access lines (target `access`)
/// are still written; name them (`access=off`) to change that.
///
/// A context with a level of its own ([`Context::with_level`](crate::Context::with_level),
/// [`set_level`](crate::set_level), the middleware's `level_from`) has its events of that
/// level and more severe written whatever `RUST_LOG` says (see [`ContextLevel`]); the other
/// contexts, and code outside any, follow `RUST_LOG`.
///
/// # Panics
///
/// Panics if a global subscriber or a `log` logger is already installed, or if the writer
/// thread cannot be started. Use [`try_init`] to get an error instead.
///
/// # Examples
///
/// ```
/// let _guard = tracing_ambient::init();
/// tracing::info!("started");
/// // the guard flushes stdout when `main` returns
/// ```
pub fn init() -> Guard {
    match try_init() {
        Ok(guard) => guard,
        Err(err) => panic!("tracing_ambient::init failed: {err}"),
    }
}

/// Installs the global subscriber as [`init`] does, returning an error instead of panicking.
///
/// # Errors
///
/// As [`try_init_with`].
///
/// # Examples
///
/// ```
/// let first = tracing_ambient::try_init();
/// assert!(first.is_ok());
/// assert!(tracing_ambient::try_init().is_err());
/// ```
pub fn try_init() -> Result<Guard, InitError> {
    let format = LogFormat::from_env();
    match format.schema() {
        Some(schema) => try_init_with(JsonLayer::stdout().schema(schema)),
        None => {
            let layer = PrettyLayer::stdout().with_ansi(format.ansi());
            let stdout: fn() -> io::Stdout = io::stdout;
            install(layer, Guard::for_writer(&stdout), None)
        }
    }
}

/// Installs the global subscriber as [`init`] does, with a layer configured by hand (static
/// fields such as the service name, another writer, another schema). `LOG_FORMAT` is not
/// read: the layer says what to write. Its schema is the one `http::DefaultOnAccess` takes
/// (see [`init`]).
///
/// A layer on [`JsonLayer::stdout`] (the default) writes through the non-blocking writer, as
/// [`init`] does, with the layer's schema for its reports and the layer's
/// [`ErrorCounter`](crate::ErrorCounter). A layer on a writer of your own keeps it: wrap it in
/// [`non_blocking`](crate::non_blocking) yourself, and the [`Guard`] flushes it too.
///
/// # Errors
///
/// Returns an error, and installs nothing, if a global `tracing` subscriber is already
/// installed or the writer thread cannot be started. Returns an error if a `log` logger is
/// already installed; the subscriber and the panic hook are then installed all the same (as
/// `tracing-subscriber`'s `try_init` does), and `log` records keep going to that logger.
///
/// # Examples
///
/// ```
/// use tracing_ambient::JsonLayer;
///
/// let _guard = tracing_ambient::try_init_with(
///     JsonLayer::stdout().static_field("service", "shop"),
/// )
/// .expect("no other subscriber is installed");
/// ```
pub fn try_init_with<W>(layer: JsonLayer<W>) -> Result<Guard, InitError>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    // `JsonLayer::stdout()` is the one layer whose writer is the plain `fn() -> Stdout`; a
    // writer of the user's own is anything else, and is kept.
    if (layer.make_writer() as &dyn Any).is::<fn() -> io::Stdout>() {
        let (writer, guard) = NonBlockingBuilder::default()
            .schema(layer.key_schema())
            .error_counter(layer.error_counter())
            .try_finish(io::stdout())
            .map_err(|err| InitError(Kind::Writer(err)))?;
        let schema = layer.key_schema();
        return install(layer.with_writer(writer), Guard::queue(guard), Some(schema));
    }
    let guard = Guard::for_writer(layer.make_writer());
    let schema = layer.key_schema();
    install(layer, guard, Some(schema))
}

/// Installs `layer` under the filter, then the panic hook and the `log` bridge; records
/// `schema` for the access line once the subscriber is in place.
fn install<L>(layer: L, mut guard: Guard, schema: Option<Schema>) -> Result<Guard, InitError>
where
    L: Layer<Layered<KeepSpans<ContextLevel<EnvFilter>>, Registry>> + Send + Sync + 'static,
{
    // A context's own level lets its events through the `RUST_LOG` filter.
    let filter = ContextLevel::new(env_filter(&std::env::var("RUST_LOG").unwrap_or_default()));
    // `log` records above every level the filter (or a context's level) can enable are not
    // even converted.
    let log_level = Layer::<Registry>::max_level_hint(&filter)
        .unwrap_or(LevelFilter::TRACE)
        .as_log();
    // In front of the layer rather than on it: a span the filter leaves out is then not made
    // at all, where a per-layer filter only hides it from the layer (see `KeepSpans`).
    let subscriber = tracing_subscriber::registry()
        .with(KeepSpans::new(filter))
        .with(layer);
    // The subscriber first: setting it is the only check that cannot race (and
    // `dispatcher::has_been_set` is also true after a mere scoped `with_default`). When it
    // fails nothing of ours is installed, in particular not the `log` bridge, which would
    // otherwise send `log` records to the other subscriber and keep the `log` slot taken.
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        guard.flush = None;
        return Err(InitError(Kind::Subscriber));
    }
    if let Some(schema) = schema {
        set_process_schema(schema);
    }
    install_panic_hook();
    // Our bridge rather than tracing-log's `LogTracer`: it keeps the records' key-values.
    crate::log_bridge::LogBridge::new()
        .with_max_level(log_level)
        .init()
        .map_err(|err| InitError(Kind::Log(err)))?;
    // `log` records at a level a context asks for later are converted from then on.
    crate::context::level::LOG_FOLLOWS.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(guard)
}

/// The filter of [`init`]: `RUST_LOG`, or `info` when it is empty, plus `panic=error` and
/// `access=info` when `RUST_LOG` names only targets (`myapp=debug`): panic lines and access
/// lines are written unless `RUST_LOG` sets a level for every target or names them.
fn env_filter(rust_log: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(rust_log);
    for (target, directive) in [("panic", "panic=error"), ("access", "access=info")] {
        if needs_default(rust_log, target) {
            filter = filter.add_directive(directive.parse().expect("a valid directive"));
        }
    }
    filter
}

/// Whether `RUST_LOG` leaves `target` off: it has directives, none of them a bare level
/// (`warn`, `off`) and none naming the target.
fn needs_default(rust_log: &str, target: &str) -> bool {
    let directives: Vec<&str> = rust_log
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let bare_level = |d: &&str| d.parse::<LevelFilter>().is_ok();
    let names_target = |d: &&str| {
        let name = d.split(['=', '[']).next().unwrap_or_default();
        name == target || name.starts_with(&format!("{target}::"))
    };
    !directives.is_empty()
        && !directives.iter().any(bare_level)
        && !directives.iter().any(names_target)
}

/// Installs a panic hook that logs each panic as an error line (target `panic`) before
/// calling the hook that was installed before it.
///
/// The line is logged on the panicking thread, so it carries the context of the panicking
/// request. It has the panic message as its message, and the fields `location`
/// (`file:line:column`), `thread` and, when backtraces are enabled (`RUST_BACKTRACE=1`),
/// `backtrace`. Then every [non-blocking writer](crate::non_blocking) is flushed, so that the
/// line and those before it are written even if the previous hook, or `panic = "abort"`,
/// ends the process.
///
/// # A stalled reader
///
/// A hook cannot tell a panic that ends the process from one that is caught (a handler's
/// panic the middleware turns into a 500, a `Debug` impl the layer guards, a task's panic
/// tokio keeps in its `JoinHandle`), and a caught panic must not stop the service on a reader
/// that has stalled. So the flush waits only while the writer makes progress: it gives up
/// once the writer has written nothing for its stall timeout (50 ms by default, see
/// [`NonBlockingBuilder::stall_timeout`](crate::NonBlockingBuilder::stall_timeout)), and at
/// once while the writer is stalled (a logging thread or an earlier panic's flush found it so,
/// and it has written nothing since). A stalled reader costs one panicking thread one stall
/// timeout per stall, never each panic the flush timeout. The lines it gives up on stay
/// queued; a process that then ends by returning from `main` or by `std::process::exit`
/// still flushes them, each writer for its flush timeout. Built with `panic = "abort"`,
/// where every panic ends the process, the hook waits for each writer's full flush timeout.
///
/// [`init`] calls this; call it yourself when composing the subscriber by hand. It installs
/// the hook once per process: later calls do nothing, so that a panic is never logged twice.
///
/// ```
/// tracing_ambient::install_panic_hook();
/// tracing_ambient::install_panic_hook(); // does nothing
/// # let _ = std::panic::take_hook();
/// ```
pub fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = crate::user_text::panic_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("<unnamed>");
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            tracing::error!(target: "panic", location, thread, backtrace = %backtrace, "{message}");
        } else {
            tracing::error!(target: "panic", location, thread, "{message}");
        }
        if cfg!(panic = "abort") {
            // The process ends when the hooks return: give the lines the whole timeout.
            crate::writer::flush_all();
        } else {
            crate::writer::flush_all_while_moving();
        }
        previous(info);
    }));
}

/// Flushes the writer when dropped, waiting at most two seconds (a
/// [non-blocking writer](crate::non_blocking)'s flush timeout for that writer).
///
/// Keep it alive for as long as the program logs, usually by binding it in `main`. Beware
/// `let _ = tracing_ambient::init();`: `_` drops the guard at once. Write `let _guard = …`.
/// Dropping it does not stop the writer: lines logged afterwards are still written.
///
/// ```
/// let guard = tracing_ambient::init();
/// tracing::info!("last words");
/// drop(guard); // flushed here, or after two seconds at the most
/// ```
#[must_use = "dropping the guard flushes at once; bind it with `let _guard = …`"]
pub struct Guard {
    flush: Option<Flush>,
}

enum Flush {
    /// The non-blocking writer's own guard: it waits for the queue, with its own timeout.
    Queue(WriterGuard),
    /// Any other writer: its `flush`, on a helper thread, for at most [`FLUSH_TIMEOUT`].
    Writer(Box<dyn FnOnce() -> io::Result<()> + Send>),
}

impl Guard {
    fn queue(guard: WriterGuard) -> Self {
        Guard {
            flush: Some(Flush::Queue(guard)),
        }
    }

    fn for_writer<W>(make_writer: &W) -> Self
    where
        W: for<'w> MakeWriter<'w> + Clone + Send + 'static,
    {
        if let Some(writer) = (make_writer as &dyn Any).downcast_ref::<NonBlocking>() {
            return Guard::queue(WriterGuard::new(writer.shared().clone()));
        }
        let make_writer = make_writer.clone();
        Guard {
            flush: Some(Flush::Writer(Box::new(move || {
                make_writer.make_writer().flush()
            }))),
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

impl Drop for Guard {
    /// Flushes on a helper thread, so that a writer blocked on a full pipe cannot hang the
    /// program's exit for more than the time limit.
    fn drop(&mut self) {
        let flush = match self.flush.take() {
            Some(Flush::Writer(flush)) => flush,
            Some(Flush::Queue(guard)) => return drop(guard), // dropping it flushes
            None => return,
        };
        let (done, wait) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("tracing-ambient-flush".into())
            .spawn(move || {
                let _ = done.send(flush());
            });
        if spawned.is_ok() {
            let _ = wait.recv_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// The error of [`try_init`]: a global subscriber or a `log` logger was already installed, or
/// the writer thread could not be started.
///
/// ```
/// tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
/// let err = tracing_ambient::try_init().unwrap_err();
/// assert_eq!(err.to_string(), "a global tracing subscriber is already installed");
/// ```
#[derive(Debug)]
pub struct InitError(Kind);

#[derive(Debug)]
enum Kind {
    Subscriber,
    Log(tracing_log::log::SetLoggerError),
    Writer(io::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Subscriber => f.write_str("a global tracing subscriber is already installed"),
            Kind::Log(_) => f.write_str("a `log` logger is already installed"),
            Kind::Writer(_) => f.write_str("could not start the log writer thread"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Subscriber => None,
            Kind::Log(err) => Some(err),
            Kind::Writer(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_and_access_lines_stay_on_unless_rust_log_covers_them() {
        let table = [
            ("", false),
            ("info", false),
            ("warn", false),
            ("off", false),
            ("myapp=debug", true),
            ("myapp=debug,hyper=warn", true),
            ("myapp", true),
            ("[request]=debug", true),
            ("myapp=debug,warn", false),
            ("myapp=debug,panic=off", false),
            ("myapp=debug,panic::inner=off", false),
            ("myapp=debug,panicky=off", true),
        ];
        for (rust_log, expected) in table {
            assert_eq!(
                needs_default(rust_log, "panic"),
                expected,
                "RUST_LOG={rust_log:?}"
            );
        }
    }

    #[test]
    fn init_error_says_what_is_installed() {
        assert_eq!(
            InitError(Kind::Subscriber).to_string(),
            "a global tracing subscriber is already installed"
        );
    }
}
