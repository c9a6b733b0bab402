//! The one-call setup: `RUST_LOG` filter, [`JsonLayer`] on stdout, the `log` crate bridge and
//! a panic hook, installed as the global subscriber; and the [`Guard`] that flushes on drop.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;
use std::io::{self, Write};
use std::sync::mpsc;
use std::time::Duration;

use tracing_log::AsLog;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};

use crate::{JsonLayer, KeepSpans};

/// How long dropping a [`Guard`] waits for the writer to flush.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the global subscriber: an `EnvFilter` from `RUST_LOG`, a [`JsonLayer`] on stdout,
/// the `log` crate bridge and a panic hook (see [`install_panic_hook`]).
///
/// # Filtering
///
/// `RUST_LOG` decides which events are written: `info` when it is empty; invalid directives
/// are ignored with a message on stderr. Spans are never filtered out, because they carry the
/// request context (see [`KeepSpans`]). When `RUST_LOG` names only targets
/// (`RUST_LOG=myapp=debug`), panic lines (target `panic`) and access lines (target `access`)
/// are still written; name them (`access=off`) to change that.
///
/// # Panics
///
/// Panics if a global subscriber or a `log` logger is already installed. Use [`try_init`] to
/// get an error instead.
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
/// Returns an error if a global `tracing` subscriber or a `log` logger is already installed.
///
/// # Examples
///
/// ```
/// let first = tracing_ambient::try_init();
/// assert!(first.is_ok());
/// assert!(tracing_ambient::try_init().is_err());
/// ```
pub fn try_init() -> Result<Guard, InitError> {
    try_init_with(JsonLayer::stdout())
}

/// Installs the global subscriber as [`init`] does, with a layer configured by hand (static
/// fields such as the service name, another writer, another schema).
///
/// # Errors
///
/// Returns an error if a global `tracing` subscriber or a `log` logger is already installed.
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
    if tracing::dispatcher::has_been_set() {
        return Err(InitError(Kind::Subscriber));
    }
    let filter = env_filter(&std::env::var("RUST_LOG").unwrap_or_default());
    // `log` records above every level the filter can enable are not even converted.
    let log_level = filter
        .max_level_hint()
        .unwrap_or(LevelFilter::TRACE)
        .as_log();
    tracing_log::LogTracer::builder()
        .with_max_level(log_level)
        .init()
        .map_err(|err| InitError(Kind::Log(err)))?;
    let make_writer = layer.make_writer().clone();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(KeepSpans::new(filter)));
    tracing::subscriber::set_global_default(subscriber).map_err(|_| InitError(Kind::Subscriber))?;
    install_panic_hook();
    Ok(Guard {
        flush: Some(Box::new(move || make_writer.make_writer().flush())),
    })
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
/// `backtrace`. [`init`] calls this; call it yourself when composing the subscriber by hand.
///
/// ```
/// tracing_ambient::install_panic_hook();
/// # let _ = std::panic::take_hook();
/// ```
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = payload_message(info.payload());
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
        previous(info);
    }));
}

fn payload_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Flushes the writer when dropped, waiting at most two seconds.
///
/// Keep it alive for as long as the program logs, usually by binding it in `main`. Beware
/// `let _ = tracing_ambient::init();`: `_` drops the guard at once. Write `let _guard = …`.
///
/// ```
/// let guard = tracing_ambient::init();
/// tracing::info!("last words");
/// drop(guard); // flushed here, or after two seconds at the most
/// ```
#[must_use = "dropping the guard flushes at once; bind it with `let _guard = …`"]
pub struct Guard {
    flush: Option<Box<dyn FnOnce() -> io::Result<()> + Send>>,
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
        let Some(flush) = self.flush.take() else {
            return;
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

/// The error of [`try_init`]: a global subscriber or a `log` logger was already installed.
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
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Subscriber => f.write_str("a global tracing subscriber is already installed"),
            Kind::Log(_) => f.write_str("a `log` logger is already installed"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Subscriber => None,
            Kind::Log(err) => Some(err),
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
