//! [`PrettyLayer`]: human-readable lines for development, with the same request context as
//! [`JsonLayer`](crate::JsonLayer), and [`LogFormat`], the choice between the two.
//!
//! # Example
//!
//! ```
//! use tracing_ambient::{Context, KeepSpans, LogFormat, PrettyLayer};
//! use tracing_subscriber::prelude::*;
//!
//! let ansi = LogFormat::from_env().ansi(); // a terminal, and no NO_COLOR
//! let subscriber = tracing_subscriber::registry().with(
//!     PrettyLayer::stdout()
//!         .with_ansi(ansi)
//!         .with_filter(KeepSpans::new(tracing_subscriber::EnvFilter::new("info"))),
//! );
//! tracing::subscriber::with_default(subscriber, || {
//!     Context::new().with_request_id("9f1c").in_scope(|| {
//!         tracing_ambient::set_user_id(42);
//!         tracing_ambient::set("tenant_id", "acme");
//!         tracing::info!(order_id = 42, "order placed");
//!     });
//! });
//! ```
//!
//! ```text
//! 14:02:12.123  INFO order placed order_id=42 [req=9f1c user=42 tenant_id=acme]
//! ```
//!
//! The format, the colours and the guarantees are described on [`PrettyLayer`].

mod choose;
mod format;

use std::io;
use std::time::SystemTime;

use tracing::{Event, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

pub use choose::LogFormat;

use crate::output::{ErrorCounter, EventContext, EventPath, Format};
use format::LineWriter;

/// A [`Layer`](tracing_subscriber::Layer) that writes each event as one human-readable line, with the current request
/// context, for development.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, PrettyLayer};
/// use tracing_subscriber::prelude::*;
///
/// let layer = PrettyLayer::new(std::io::stderr).with_ansi(true).with_target(true);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     Context::new().with_request_id("r1").in_scope(|| {
///         tracing::warn!(attempt = 3, "retrying");
///     });
/// });
/// ```
///
/// ```text
/// 14:02:12.123  WARN rust_out: retrying attempt=3 [req=r1]
/// ```
///
/// # The line
///
/// `time level [span:] [target:] message key=value… [context]`, one event per line:
///
/// - the time of day in UTC with milliseconds, `HH:MM:SS.mmm`;
/// - the level, right-aligned in five columns (`TRACE`, `DEBUG`, ` INFO`, ` WARN`, `ERROR`);
/// - the name of the event's span followed by `:`, when [`PrettyLayer::with_span_name`] is
///   on, and the target followed by `:`, when [`PrettyLayer::with_target`] is on;
/// - the message as it is (the first field named `message`), left out when empty;
/// - each other field as `key=value`, in the order the event has them;
/// - the context block, when a context is current and not empty: `req` (the request id),
///   `user` (the user id), `trace` (the first 8 characters of the trace id, unless
///   [`PrettyLayer::with_full_trace_id`]), then the extra keys under their snake-case names
///   (`tenant_id`), in the order they were first set. The span id is left out: it stands for
///   the request as the request id does, and JSON lines keep it.
///
/// # Values
///
/// A value is written as it is, unless it is empty or holds whitespace, a control character,
/// a double quote or a square bracket: then it is written in double quotes with `"` and `\`
/// escaped as `\"` and `\\`. So `tenant_id=acme`, `path=C:\tmp` and `note="two words"`.
/// Numbers and booleans are written as Rust prints them (`1.5`, `NaN`, `true`); `Debug` and
/// `Display` values (`?x`, `%x`) by their output, under the same rule.
///
/// Newlines, tabs and other control characters are escaped everywhere, message included
/// (`\n`, `\r`, `\t`, `\u{1b}`, and `\u{2028}`, `\u{2029}`), so one event is one line and no
/// logged text can move the cursor or change the colours of a terminal.
///
/// # Error values
///
/// A field recorded as an error (`error = &err as &dyn Error`) is written as its message
/// followed by each cause of its `source()` chain, joined by `": "` the way `anyhow` prints
/// `{:#}`, at most 32 causes, quoted by the rule above:
///
/// ```text
/// 14:02:12.123 ERROR checkout failed error="query failed: connection reset: timeout" [req=9f1c]
/// ```
///
/// # Colours
///
/// Off unless [`PrettyLayer::with_ansi`] turns them on; [`LogFormat`] turns them on only on a
/// terminal and never when `NO_COLOR` is set. The time, span name, target and field keys are
/// dim; the level is magenta (`TRACE`), blue (`DEBUG`), green (`INFO`), yellow (`WARN`) or
/// red (`ERROR`); error values are red and the context block cyan. Each coloured part ends
/// with a reset (`ESC[0m`).
///
/// # Context and guarantees
///
/// Exactly as for [`JsonLayer`](crate::JsonLayer): the context written is the innermost
/// active scope's; where none is active, an event with an explicit parent takes that span's,
/// else the current span's. The layer carries the context through spans itself, so it works
/// alone or beside a `JsonLayer`. User code that panics (`Debug`, `Display`, `Error::source`,
/// the writer) never leaves the layer; each line is one `write_all`, built in one buffer per
/// thread; failed writes are counted in an [`ErrorCounter`].
///
/// # Errors and panics
///
/// A `Debug`, `Display` or `Error` impl that panics is replaced by
/// `"<panicked while formatting>"` and the line is kept (an error chain keeps the causes
/// before the panic). A `MakeWriter` or writer that panics, or a failed write, drops that
/// line, counts it in the [`ErrorCounter`] and says so on stderr (at the 1st, 2nd, 4th…
/// failure). A line logged from inside the writer goes to stderr.
#[derive(Debug)]
#[must_use]
pub struct PrettyLayer<W = fn() -> io::Stdout> {
    /// The shared event path, formatting with these settings.
    path: EventPath<PrettyFormat, W>,
}

/// The [`Format`] of a [`PrettyLayer`]: its settings.
#[derive(Debug)]
struct PrettyFormat {
    settings: Settings,
}

/// The switches of a layer. `Copy`, so a setter moves one value.
#[derive(Debug, Clone, Copy)]
struct Settings {
    ansi: bool,
    target: bool,
    span_name: bool,
    full_trace_id: bool,
    report_errors: bool,
    clock: fn() -> SystemTime,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ansi: false,
            target: false,
            span_name: false,
            full_trace_id: false,
            report_errors: true,
            clock: SystemTime::now,
        }
    }
}

// === impl PrettyLayer ===

impl PrettyLayer {
    /// Returns a layer that writes to stdout.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout();
    /// # drop(layer);
    /// ```
    pub fn stdout() -> Self {
        PrettyLayer::new(io::stdout)
    }
}

impl Default for PrettyLayer {
    fn default() -> Self {
        PrettyLayer::stdout()
    }
}

impl<W> PrettyLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Returns a layer that writes to `make_writer`: any
    /// [`MakeWriter`](tracing_subscriber::fmt::MakeWriter), such as `std::io::stdout`,
    /// `std::io::stderr` or a `Mutex<File>`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::new(std::io::stderr);
    /// # drop(layer);
    /// ```
    pub fn new(make_writer: W) -> Self {
        let format = PrettyFormat {
            settings: Settings::default(),
        };
        PrettyLayer {
            path: EventPath::new(format, make_writer),
        }
    }

    /// Sets whether lines are coloured with ANSI escape codes. [`LogFormat::from_env`] says
    /// whether they should be on stdout. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_ansi(true);
    /// # drop(layer);
    /// ```
    pub fn with_ansi(mut self, yes: bool) -> Self {
        let settings = Settings {
            ansi: yes,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }

    /// Sets whether the event's target is written, after the level and the span name.
    /// Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_target(true);
    /// # drop(layer);
    /// ```
    pub fn with_target(mut self, yes: bool) -> Self {
        let settings = Settings {
            target: yes,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }

    /// Sets whether the name of the event's span (the innermost entered span, or the
    /// explicit parent) is written after the level. This looks the span up for each event.
    /// Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_span_name(true);
    /// # drop(layer);
    /// ```
    pub fn with_span_name(mut self, yes: bool) -> Self {
        let settings = Settings {
            span_name: yes,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }

    /// Sets whether the trace id is written whole (to paste into a tracing UI) rather than
    /// its first 8 characters. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_full_trace_id(true);
    /// # drop(layer);
    /// ```
    pub fn with_full_trace_id(mut self, yes: bool) -> Self {
        let settings = Settings {
            full_trace_id: yes,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }

    /// Sets whether failed writes are reported on stderr (they are counted either way).
    /// Defaults to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_error_reporting(false);
    /// # drop(layer);
    /// ```
    pub fn with_error_reporting(mut self, yes: bool) -> Self {
        let settings = Settings {
            report_errors: yes,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }

    /// Promotes a span field to a context key, as
    /// [`JsonLayer::promote_span_field`](crate::layer::JsonLayer::promote_span_field) does: when a
    /// span created inside a context has (or later records) a field of this name, its value
    /// is set in the context. Give a `PrettyLayer` used in place of a `JsonLayer` the same
    /// list, so that development lines carry the same keys. Defaults to none.
    ///
    /// ```
    /// use tracing_ambient::{Context, PrettyLayer};
    /// use tracing_subscriber::prelude::*;
    ///
    /// let layer = PrettyLayer::new(std::io::sink).promote_span_field("tenant_id");
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let ctx = Context::new();
    ///     ctx.in_scope(|| drop(tracing::info_span!("load", tenant_id = "acme")));
    ///     assert_eq!(ctx.get("tenant_id").unwrap().to_string(), "acme");
    /// });
    /// ```
    pub fn promote_span_field(mut self, name: &str) -> Self {
        self.path.context.promote(name);
        self
    }

    /// Returns the counter of lines this layer could not write.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout();
    /// assert_eq!(layer.error_counter().dropped_lines(), 0);
    /// ```
    pub fn error_counter(&self) -> ErrorCounter {
        self.path.errors.clone()
    }

    /// Sets the clock. For tests that need a fixed time.
    #[cfg(test)]
    fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        let settings = Settings {
            clock,
            ..self.path.format.settings
        };
        self.path.format.settings = settings;
        self
    }
}

impl Format for PrettyFormat {
    #[inline]
    fn now(&self) -> SystemTime {
        (self.settings.clock)()
    }

    fn report_errors(&self) -> bool {
        self.settings.report_errors
    }

    /// Builds the event's line in this thread's buffer and hands it to `write`.
    fn format<S>(
        &self,
        event: &Event<'_>,
        cx: &layer::Context<'_, S>,
        context: &EventContext,
        now: SystemTime,
        write: impl FnOnce(&Metadata<'_>, &[u8]),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let normalized = event.normalized_metadata();
        let from_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let settings = self.settings;
        let span = if settings.span_name {
            cx.event_span(event)
        } else {
            None
        };
        format::with_buf(|buf| {
            let mut line = LineWriter::new(buf, settings.ansi, settings.full_trace_id);
            line.time(now);
            line.level(meta.level());
            if let Some(span) = &span {
                line.origin(span.name());
            }
            if settings.target {
                line.origin(meta.target());
            }
            let message = line.message(event);
            line.fields(event, from_log, message);
            context.with(|ctx| {
                if let Some(ctx) = ctx {
                    line.context(&ctx.read());
                }
            });
            line.finish();
            write(meta, &buf.line);
        });
    }
}

// The writer changes type, so this setter has its own block with the bounds of the new one.
impl<W> PrettyLayer<W> {
    /// Returns the layer writing to `make_writer` instead, with all other settings kept.
    ///
    /// ```
    /// let layer = tracing_ambient::PrettyLayer::stdout().with_writer(std::io::stderr);
    /// # drop(layer);
    /// ```
    pub fn with_writer<W2>(self, make_writer: W2) -> PrettyLayer<W2>
    where
        W2: for<'w> MakeWriter<'w> + 'static,
    {
        PrettyLayer {
            path: self.path.with_writer(make_writer),
        }
    }
}

crate::output::output_layer!(PrettyLayer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fixed_clock, MockMakeWriter};
    use crate::Context;
    use tracing_subscriber::prelude::*;

    fn capture(layer: impl FnOnce(MockMakeWriter) -> PrettyLayer<MockMakeWriter>) -> String {
        let writer = MockMakeWriter::default();
        let layer = layer(writer.clone()).with_clock(fixed_clock);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            Context::new()
                .with_request_id("9f1c")
                .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .with_span_id("00f067aa0ba902b7")
                .in_scope(|| {
                    crate::set_user_id(42);
                    crate::set("tenant_id", "acme");
                    let span = tracing::info_span!("checkout");
                    let _entered = span.enter();
                    tracing::info!(target: "shop::orders", order_id = 42, "order placed");
                });
        });
        writer.text()
    }

    #[test]
    fn writes_the_documented_line() {
        assert_eq!(
            capture(PrettyLayer::new),
            "14:02:12.123  INFO order placed order_id=42 \
             [req=9f1c user=42 trace=4bf92f35 tenant_id=acme]\n"
        );
    }

    #[test]
    fn span_name_target_and_full_trace_id_when_asked() {
        let text = capture(|w| {
            PrettyLayer::new(w)
                .with_span_name(true)
                .with_target(true)
                .with_full_trace_id(true)
        });
        assert_eq!(
            text,
            "14:02:12.123  INFO checkout: shop::orders: order placed order_id=42 \
             [req=9f1c user=42 trace=4bf92f3577b34da6a3ce929d0e0e4736 tenant_id=acme]\n"
        );
    }

    #[test]
    fn colours_wrap_each_part_when_on() {
        let text = capture(|w| PrettyLayer::new(w).with_ansi(true));
        assert_eq!(
            text,
            "\x1b[2m14:02:12.123\x1b[0m \x1b[32m INFO\x1b[0m order placed \
             \x1b[2morder_id=\x1b[0m42 \
             \x1b[36m[req=9f1c user=42 trace=4bf92f35 tenant_id=acme]\x1b[0m\n"
        );
    }

    #[test]
    fn setters_keep_promoted_fields() {
        let layer = PrettyLayer::new(std::io::sink)
            .promote_span_field("tenantId")
            .with_ansi(true)
            .with_writer(std::io::stderr);
        assert_eq!(
            layer.path.context.promoted(),
            ["tenant_id".into(), "tenantId".into()]
        );
        assert!(layer.path.format.settings.ansi);
    }
}
