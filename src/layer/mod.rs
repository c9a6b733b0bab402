//! [`JsonLayer`]: the `tracing_subscriber::Layer` that writes one JSON object per line with the
//! current request context merged in.

mod callsite;
mod errors;
mod format;
mod ids;
mod line;

use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

pub use errors::ErrorCounter;

use crate::context::{spans, with_current_or, Value};
use crate::json;
use crate::schema::{to_snake_case, Schema};
use format::{Cap, LineWriter, Reserved};
use ids::IdForm;

/// A [`Layer`] that writes each event as one line of JSON, with the current request context.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, JsonLayer, KeepSpans};
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(
///     JsonLayer::new(std::io::stdout)
///         .static_field("service", "shop")
///         .with_filter(KeepSpans::new(tracing_subscriber::EnvFilter::new("info"))),
/// );
///
/// tracing::subscriber::with_default(subscriber, || {
///     Context::new().with_request_id("r1").in_scope(|| {
///         tracing_ambient::set_user_id(42);
///         tracing::info!(order_id = 42, "order placed");
///     });
/// });
/// ```
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","requestId":"r1","userId":42,"target":"rust_out","service":"shop","order_id":42}
/// ```
///
/// # Keys and their order
///
/// `timestamp`, `level`, `message` (when the event has one), the context keys (`requestId`,
/// `userId`, `traceId`, `spanId`, then extra keys), `target`, the optional `file`, `line`,
/// `threadName` and `span`, the static fields, then the event's own fields. The names come
/// from the [`Schema`].
///
/// # Duplicate keys
///
/// A line never has a key twice (Elasticsearch rejects such a document; Loki keeps the first
/// value). The core keys and the layer's own keys win, then the context keys, then the event's
/// fields. A key that loses is renamed, never dropped: a context key gets the prefix `context.`
/// and an event field the prefix `fields.`, repeated until the key is unique. So
/// `info!(requestId = "x", "..")` inside a request writes `"fields.requestId":"x"`. The same
/// holds for a schema that names two keys alike (the later one is renamed `fields.<key>`), and
/// for an event with two `message` fields (the first is the message).
///
/// No key is the dotted prefix of another key on the same line either: Elasticsearch expands
/// `a.b` into an object `a`, so `"a":1,"a.b":2` loses the whole document. The later key is
/// renamed as above: `info!(a = 1, a.b = 2)` writes `"a":1,"fields.a.b":2`.
///
/// # Context
///
/// The context written is the current one (see [`Context::current`](crate::Context::current)):
/// the innermost active scope's; where no scope is active, for an event with an explicit
/// parent (`info!(parent: &span, ..)`), the one that span carries, else the current span's.
///
/// # Values
///
/// Strings, integers (up to 128 bits), floats and booleans keep their JSON type. NaN and
/// infinities are written as the strings `"NaN"`, `"inf"` and `"-inf"`. `Debug` and `Display`
/// values (`?x`, `%x`) are written as strings. Errors (`error = &err as &dyn Error`) are
/// written with their message (always a string), and their `source()` chain as an array of
/// strings under `<field>Sources` (`errorSources`; `error_sources` with [`KeyCase::Snake`]
/// keys), nearest cause first, at most 32 causes. A schema with
/// [`ErrorKeys`](crate::ErrorKeys) (the ECS, OpenTelemetry and Datadog presets) writes the
/// field it names under its message key, and the chain as one string under its stack-trace
/// key.
///
/// # Errors and panics
///
/// User code that runs while a line is built may panic; the panic never leaves the layer. A
/// `Debug`, `Display` or `Error` impl (the message's `format_args!`, an error's `source()` at
/// any depth) that panics is replaced by `"<panicked while formatting>"` and the line is kept
/// (an error chain keeps the causes before the panic). A `MakeWriter` or writer that panics, or
/// a failed write (closed pipe, full disk), drops that line, counts it in the
/// [`ErrorCounter`] and says so on stderr (at the 1st, 2nd, 4th… failure). The thread's line
/// buffer is reset whatever happens, so the next line is whole.
///
/// [`KeyCase::Snake`]: crate::KeyCase::Snake
///
/// # Cost
///
/// Each line is built in one buffer per thread and handed to the writer with one `write_all`,
/// so lines from many threads never interleave on writers that lock per write (stdout, a
/// `Mutex<W>`, a pipe for lines up to `PIPE_BUF`). In steady state an event allocates nothing,
/// and its cost does not depend on how many spans are entered.
#[derive(Debug)]
#[must_use]
pub struct JsonLayer<W = fn() -> io::Stdout> {
    make_writer: W,
    owner: spans::Owner,
    prepared: Prepared,
    statics: Vec<(Box<str>, Value)>,
    errors: ErrorCounter,
    /// Finds the OpenTelemetry span ids of an event; set by `lookup_span_ids` in `crate::otel`.
    pub(crate) otel: crate::otel::SpanIdsLookup,
}

/// The default line-size cap: Docker's json-file log driver splits longer lines into partial
/// messages that many log shippers never join again.
const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// The switches of a layer. `Copy`, so a setter moves one value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) schema: Schema,
    pub(crate) target: bool,
    pub(crate) file: bool,
    pub(crate) line_number: bool,
    pub(crate) thread_name: bool,
    pub(crate) span_name: bool,
    pub(crate) report_errors: bool,
    pub(crate) max_line: usize,
    pub(crate) clock: fn() -> SystemTime,
    pub(crate) elapsed: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schema: Schema::DEFAULT,
            target: true,
            file: false,
            line_number: false,
            thread_name: false,
            span_name: false,
            report_errors: true,
            max_line: DEFAULT_MAX_LINE,
            clock: SystemTime::now,
            elapsed: false,
        }
    }
}

/// Everything the event path reads, worked out when the layer is built.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Distinct for each `Prepared` ever made, so what is cached about callsites for one
    /// layer's keys is never read by a layer built with other settings.
    pub(crate) id: u64,
    pub(crate) settings: Settings,
    /// The layer's own keys, made unique, escaped and hashed.
    pub(crate) keys: LayerKeys,
    /// `,"message":`, ready to copy.
    pub(crate) message_fragment: Box<[u8]>,
    /// The static fields as `,"key":value…`, ready to copy.
    pub(crate) static_json: Box<[u8]>,
    pub(crate) reserved: Reserved,
    /// The schema's names of the well-known context keys, escaped and hashed.
    pub(crate) known_keys: [json::Key; 4],
    /// The schema's other trace keys, escaped and hashed.
    pub(crate) id_keys: IdKeys,
    /// The forms the schema writes the trace id and the span id in.
    pub(crate) trace_form: IdForm,
    pub(crate) span_form: IdForm,
    /// The schema's level values as JSON strings: TRACE, DEBUG, INFO, WARN, ERROR.
    pub(crate) levels: [Box<[u8]>; 5],
    /// Which of them can never conflict with a reserved key or with each other (no dot, not
    /// reserved, no two alike), so that a line checks them only against its own keys.
    pub(crate) known_fast: [bool; 4],
    /// Span fields to set in the context, in snake case.
    pub(crate) promote: Vec<Box<str>>,
    /// Field and context key names whose values are not written, as given and in snake case.
    pub(crate) redact: Vec<Box<str>>,
}

impl Prepared {
    /// Whether the value of a field or context key of this name is redacted.
    #[inline]
    pub(crate) fn redacts(&self, name: &str) -> bool {
        !self.redact.is_empty() && self.redact.iter().any(|r| **r == *name)
    }
}

/// The trace keys a schema may add to the trace and span ids, each written as a context key.
#[derive(Debug)]
pub(crate) struct IdKeys {
    pub(crate) flags: Option<json::Key>,
    pub(crate) sampled: Option<json::Key>,
    pub(crate) transaction: Option<json::Key>,
}

/// The keys the layer writes itself, in the order it writes them.
#[derive(Debug)]
pub(crate) struct LayerKeys {
    pub(crate) timestamp: json::Key,
    pub(crate) level: json::Key,
    pub(crate) level_number: Option<json::Key>,
    pub(crate) message: json::Key,
    pub(crate) target: json::Key,
    /// The object holding file and line, when the schema has one; `file` and `line` are
    /// then its keys, not the line's.
    pub(crate) source_location: Option<json::Key>,
    pub(crate) file: json::Key,
    pub(crate) line: json::Key,
    pub(crate) thread_name: json::Key,
    pub(crate) span_name: json::Key,
    pub(crate) truncated: json::Key,
    pub(crate) elapsed: json::Key,
}

impl Prepared {
    fn new(
        settings: Settings,
        statics: &[(Box<str>, Value)],
        promote: Vec<Box<str>>,
        redact: Vec<Box<str>>,
    ) -> Self {
        let schema = settings.schema;
        let mut reserved = Reserved::default();
        // Each key the layer writes is reserved in the order it is written; one that a schema
        // names like an earlier one (or a static field named like a core key) is renamed as an
        // event field would be, so no line has a key twice.
        let mut reserve = |name: &str, on: bool| {
            let mut key = json::Key::new(name);
            if !on {
                return key;
            }
            let mut name = name.to_owned();
            while reserved.contains(&key) {
                name.insert_str(0, "fields.");
                key = json::Key::new(&name);
            }
            reserved.insert(key.clone());
            key
        };
        let located = schema.source_location.is_some();
        let file_or_line = settings.file || settings.line_number;
        let keys = LayerKeys {
            timestamp: reserve(schema.timestamp, true),
            level: reserve(schema.level, true),
            level_number: schema.level_number.map(|name| reserve(name, true)),
            message: reserve(schema.message, true),
            target: reserve(schema.target, settings.target),
            source_location: schema
                .source_location
                .map(|name| reserve(name, file_or_line)),
            file: reserve(schema.file, settings.file && !located),
            // Inside the object, a line key named like the file key would be there twice.
            line: if located && schema.line == schema.file {
                json::Key::new(&format!("fields.{}", schema.line))
            } else {
                reserve(schema.line, settings.line_number && !located)
            },
            thread_name: reserve(schema.thread_name, settings.thread_name),
            span_name: reserve(schema.span_name, settings.span_name),
            truncated: reserve(schema.truncated, true),
            elapsed: reserve(schema.elapsed, settings.elapsed),
        };
        let mut static_json = Vec::new();
        let mut add_static = |name: &str, value: &dyn Fn(&mut Vec<u8>)| {
            static_json.push(b',');
            static_json.extend_from_slice(reserve(name, true).fragment());
            value(&mut static_json);
        };
        // The schema's own fields first (`ecs.version`, `dd.service`); a static field of the
        // layer with the same key replaces one.
        let own = |name: &str| statics.iter().any(|(k, _)| **k == *name);
        for &(name, value) in schema.fixed_fields {
            if !own(name) {
                add_static(name, &|out| json::write_str(out, value));
            }
        }
        for &(name, var) in schema.env_fields {
            if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                if !own(name) {
                    add_static(name, &|out| json::write_str(out, &value));
                }
            }
        }
        for (name, value) in statics {
            add_static(name, &|out| value.write_json(out));
        }
        let levels = schema.level_values.map(|value| {
            let mut json = Vec::with_capacity(value.len() + 2);
            json::write_str(&mut json, value);
            json.into_boxed_slice()
        });
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let known_keys = [
            json::Key::new(schema.request_id),
            json::Key::new(schema.user_id),
            json::Key::new(schema.trace_id),
            json::Key::new(schema.span_id),
        ];
        let known_fast = std::array::from_fn(|i| {
            let key = &known_keys[i];
            let alike = known_keys.iter().filter(|k| k.escaped() == key.escaped());
            !key.dotted() && !reserved.contains(key) && alike.count() == 1
        });
        Prepared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
            message_fragment: [b",", keys.message.fragment()].concat().into(),
            keys,
            static_json: static_json.into_boxed_slice(),
            reserved,
            known_keys,
            known_fast,
            id_keys: IdKeys {
                flags: schema.trace_flags.map(json::Key::new),
                sampled: schema.trace_sampled.map(json::Key::new),
                transaction: schema.transaction_id.map(json::Key::new),
            },
            trace_form: IdForm::new(schema.trace_id_format),
            span_form: IdForm::new(schema.span_id_format),
            levels,
            promote,
            redact,
        }
    }
}

// === impl JsonLayer ===

impl JsonLayer {
    /// Returns a layer that writes to stdout.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout();
    /// # drop(layer);
    /// ```
    pub fn stdout() -> Self {
        JsonLayer::new(io::stdout)
    }
}

impl Default for JsonLayer {
    fn default() -> Self {
        JsonLayer::stdout()
    }
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Returns a layer that writes to `make_writer`: any
    /// [`MakeWriter`](tracing_subscriber::fmt::MakeWriter), such as `std::io::stdout`,
    /// `std::io::stderr`, a `Mutex<File>` or a `tracing_appender` writer.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::new(std::io::stderr);
    /// # drop(layer);
    /// ```
    pub fn new(make_writer: W) -> Self {
        JsonLayer {
            make_writer,
            owner: spans::Owner::new(),
            prepared: Prepared::new(Settings::default(), &[], Vec::new(), Vec::new()),
            statics: Vec::new(),
            errors: ErrorCounter::default(),
            otel: crate::otel::SpanIdsLookup::default(),
        }
    }

    /// Sets whether the event's target is written. Defaults to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_target(false);
    /// # drop(layer);
    /// ```
    pub fn with_target(self, yes: bool) -> Self {
        let settings = Settings {
            target: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether the source file of the event is written. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_file(true);
    /// # drop(layer);
    /// ```
    pub fn with_file(self, yes: bool) -> Self {
        let settings = Settings {
            file: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether the source line of the event is written. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_line_number(true);
    /// # drop(layer);
    /// ```
    pub fn with_line_number(self, yes: bool) -> Self {
        let settings = Settings {
            line_number: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether the name of the thread that logged is written (unnamed threads write
    /// none). Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_thread_names(true);
    /// # drop(layer);
    /// ```
    pub fn with_thread_names(self, yes: bool) -> Self {
        let settings = Settings {
            thread_name: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether the name of the event's span (the innermost entered span) is written.
    /// This looks the span up for each event. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_span_name(true);
    /// # drop(layer);
    /// ```
    pub fn with_span_name(self, yes: bool) -> Self {
        let settings = Settings {
            span_name: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether failed writes are reported on stderr (they are counted either way).
    /// Defaults to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_error_reporting(false);
    /// # drop(layer);
    /// ```
    pub fn with_error_reporting(self, yes: bool) -> Self {
        let settings = Settings {
            report_errors: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets whether lines that have a context carry the time since the context was made (for
    /// a request, since the middleware received it), under the [`Schema`]'s `elapsed` key
    /// (`elapsedMs`): a number of milliseconds to the microsecond, always written as a float
    /// (`3.0`, not `3`), like the access line's `latencyMs`, so the field keeps one type.
    /// It comes right after the context keys. A line without a context has none. Reading
    /// the clock costs a few nanoseconds and allocates nothing. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_elapsed(true);
    /// # drop(layer);
    /// ```
    ///
    /// ```text
    /// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","requestId":"9f1c","elapsedMs":12.345,"target":"shop::orders"}
    /// ```
    pub fn with_elapsed(self, yes: bool) -> Self {
        let settings = Settings {
            elapsed: yes,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets the line-size cap in bytes, newline included. A line that comes out longer is
    /// written again with its string values (the message, event fields, error messages and
    /// causes) cut at a character boundary and marked `…[truncated]`, tighter pass after
    /// pass; as a last resort, event fields past the cap are left out. The line stays one
    /// valid JSON object with every core, context and static key, and gets
    /// `"truncated":true` (the [`Schema`]'s `truncated` key). Context and static values are
    /// written whole, so a cap smaller than they are cannot be met. `usize::MAX` turns the
    /// cap off. Defaults to 16 KiB (Docker's json-file driver splits longer lines; Loki
    /// accepts 256 KB by default).
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().max_line_bytes(256 * 1024);
    /// # drop(layer);
    /// ```
    pub fn max_line_bytes(self, max: usize) -> Self {
        let settings = Settings {
            max_line: max,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Sets the key names. Defaults to [`Schema::DEFAULT`].
    ///
    /// ```
    /// use tracing_ambient::{JsonLayer, Schema};
    ///
    /// let layer = JsonLayer::stdout().schema(Schema::DEFAULT.with_request_id_key("request_id"));
    /// # drop(layer);
    /// ```
    pub fn schema(self, schema: Schema) -> Self {
        let settings = Settings {
            schema,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Adds a field written on every line, such as the service name or version: any
    /// `serde::Serialize` value, serialized once here. Setting a key again replaces its
    /// value. Static fields come after the layer's own keys and win over context keys and
    /// event fields; one named like a core key is renamed `fields.<key>`. A value that cannot
    /// be serialized (see [`ValueError`](crate::ValueError)) is left out and said on stderr.
    /// Defaults to none.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout()
    ///     .static_field("service", "shop")
    ///     .static_field("version", env!("CARGO_PKG_VERSION"))
    ///     .static_field("regions", ["eu-west-1", "us-east-1"]);
    /// # drop(layer);
    /// ```
    pub fn static_field(mut self, key: &str, value: impl serde::Serialize) -> Self {
        let value = match crate::context::to_value(&value) {
            Ok(value) => value,
            Err(err) => {
                let _ = writeln!(
                    io::stderr(),
                    "[tracing-ambient] static field {key:?}: {err}"
                );
                return self;
            }
        };
        match self.statics.iter_mut().find(|(k, _)| **k == *key) {
            Some(entry) => entry.1 = value,
            None => self.statics.push((key.into(), value)),
        }
        let settings = self.prepared.settings;
        self.settings(settings)
    }

    /// Promotes a span field to a context key: when a span created inside a context has (or
    /// later records) a field of this name, its value is set in the context, as
    /// [`set`](crate::set) would, and every later line of the request carries it.
    /// `user_id`, `request_id`, `trace_id` and `span_id` set the well-known keys. Defaults to
    /// none.
    ///
    /// ```
    /// use tracing_ambient::{Context, JsonLayer};
    /// use tracing_subscriber::prelude::*;
    ///
    /// let layer = JsonLayer::new(std::io::sink).promote_span_field("tenant_id");
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let ctx = Context::new();
    ///     ctx.in_scope(|| drop(tracing::info_span!("load", tenant_id = "acme")));
    ///     assert_eq!(ctx.get("tenantId").unwrap().to_string(), "acme");
    /// });
    /// ```
    pub fn promote_span_field(mut self, name: &str) -> Self {
        push_name(&mut self.prepared.promote, name);
        self
    }

    /// Redacts a field: the value of every event field and context key of this name is
    /// written as `"[REDACTED]"`, and its `Debug` or `Display` impl never runs. A context key
    /// matches in any case (`userId` redacts `user_id`); an event field matches the name as
    /// given or its snake-case form (`userId` redacts fields `userId` and `user_id`). Defaults
    /// to none.
    ///
    /// ```
    /// use tracing_ambient::JsonLayer;
    ///
    /// let layer = JsonLayer::stdout()
    ///     .redact_field("password")
    ///     .redact_field("user_id"); // e.g. where user ids count as personal data
    /// # drop(layer);
    /// ```
    pub fn redact_field(mut self, name: &str) -> Self {
        push_name(&mut self.prepared.redact, name);
        self
    }

    /// Returns the layer's writer.
    pub(crate) fn make_writer(&self) -> &W {
        &self.make_writer
    }

    /// Returns the layer's key names, for `init` to give them to the writer.
    pub(crate) fn key_schema(&self) -> Schema {
        self.prepared.settings.schema
    }

    /// Returns the counter of lines this layer could not write.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout();
    /// assert_eq!(layer.error_counter().dropped_lines(), 0);
    /// ```
    pub fn error_counter(&self) -> ErrorCounter {
        self.errors.clone()
    }

    /// Sets the clock. For tests that need a fixed timestamp.
    #[cfg(test)]
    pub(crate) fn with_clock(self, clock: fn() -> SystemTime) -> Self {
        let settings = Settings {
            clock,
            ..self.prepared.settings
        };
        self.settings(settings)
    }

    /// Rebuilds what the event path reads from the new settings.
    fn settings(mut self, settings: Settings) -> Self {
        let promote = std::mem::take(&mut self.prepared.promote);
        let redact = std::mem::take(&mut self.prepared.redact);
        let prepared = Prepared::new(settings, &self.statics, promote, redact);
        Self { prepared, ..self }
    }

    /// Writes one finished line, counting a failure or a panicking writer.
    ///
    /// A line logged from inside the writer itself (a writer that logs, or the panic hook while
    /// the writer panics with its lock held) goes to stderr instead: writing it to the writer
    /// could deadlock on that lock.
    fn write_line(&self, meta: &tracing::Metadata<'_>, bytes: &[u8]) {
        let Some(_writing) = WritingGuard::enter() else {
            let _ = io::stderr().write_all(bytes);
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.make_writer.make_writer_for(meta).write_all(bytes)
        }));
        let report = self.prepared.settings.report_errors;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => self
                .errors
                .record(report, format_args!("could not write a log line: {err}")),
            Err(_) => self
                .errors
                .record(report, format_args!("the log writer panicked")),
        }
    }
}

/// Adds a field name to a list, and its snake-case form when that differs.
pub(crate) fn push_name(list: &mut Vec<Box<str>>, name: &str) {
    let snake = to_snake_case(name);
    if *snake != *name {
        list.push(snake.into());
    }
    list.push(name.into());
}

thread_local! {
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a writer call until dropped.
struct WritingGuard;

impl WritingGuard {
    /// Returns `None` if this thread is already inside a writer call (or being torn down).
    fn enter() -> Option<Self> {
        WRITING
            .try_with(|writing| !writing.replace(true))
            .unwrap_or(false)
            .then_some(WritingGuard)
    }
}

impl Drop for WritingGuard {
    fn drop(&mut self) {
        let _ = WRITING.try_with(|writing| writing.set(false));
    }
}

// The writer changes type, so this setter has its own block with the bounds of the new one.
impl<W> JsonLayer<W> {
    /// Returns the layer writing to `make_writer` instead, with all other settings kept.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout().with_writer(std::io::stderr);
    /// # drop(layer);
    /// ```
    pub fn with_writer<W2>(self, make_writer: W2) -> JsonLayer<W2>
    where
        W2: for<'w> MakeWriter<'w> + 'static,
    {
        JsonLayer {
            make_writer,
            owner: self.owner,
            prepared: self.prepared,
            statics: self.statics,
            errors: self.errors,
            otel: self.otel,
        }
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.otel.register(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: layer::Context<'_, S>) {
        spans::on_new_span(attrs, id, &cx, &self.prepared.promote, self.owner);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: layer::Context<'_, S>) {
        spans::on_record(id, values, &cx, &self.prepared.promote);
    }

    fn on_enter(&self, id: &Id, cx: layer::Context<'_, S>) {
        spans::on_enter(id, &cx, self.owner);
    }

    fn on_exit(&self, id: &Id, _cx: layer::Context<'_, S>) {
        spans::on_exit(id, self.owner);
    }

    fn on_event(&self, event: &Event<'_>, cx: layer::Context<'_, S>) {
        let settings = &self.prepared.settings;
        let now = (settings.clock)();
        // Values catch their own panics and are replaced by a marker. This catches the rest
        // (a subscriber's span lookup, anything missed): the line is dropped and counted,
        // the buffer is reset by `with_line`, and the application never sees the panic.
        let built = catch_unwind(AssertUnwindSafe(|| self.build_and_write(event, &cx, now)));
        if built.is_err() {
            self.errors.record(
                settings.report_errors,
                format_args!("a panic while building a log line"),
            );
        }
    }
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Builds the event's line in this thread's buffer and writes it.
    fn build_and_write<S>(&self, event: &Event<'_>, cx: &layer::Context<'_, S>, now: SystemTime)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let callsite = callsite::lookup(event, &self.prepared);
        let normalized = if callsite.is_log {
            event.normalized_metadata()
        } else {
            None
        };
        let from_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let settings = &self.prepared.settings;
        // The innermost active scope's context wins; where none is active, an event with an
        // explicit parent (`info!(parent: &span, ..)`) takes the parent's.
        let parent = event
            .parent()
            .and_then(|parent| spans::context_of(parent, cx));
        let span = if settings.span_name {
            cx.event_span(event)
        } else {
            None
        };
        // The ids of the innermost OpenTelemetry span the event is in replace the context's
        // trace and span ids (`crate::otel`). Looked up before the line buffer is taken, as
        // starting a span can log.
        let span_ids = self.otel.event_ids(event, cx);
        line::with_line(|line| {
            let mut cap = Cap::NONE;
            loop {
                let mut writer = LineWriter::new(line, &self.prepared, cap);
                writer.set_span_ids(span_ids);
                writer.set_callsite(&callsite, from_log);
                writer.core(now, meta.level());
                with_current_or(parent.as_ref(), |ctx| {
                    if let Some(ctx) = ctx {
                        writer.context(&ctx.read());
                    }
                });
                writer.layer_keys(meta, span.as_ref().map(|s| s.name()));
                writer.fields(event);
                writer.finish();
                // Rare: a line over the cap is built again, tighter, rather than cut blindly.
                if line.bytes.len() <= settings.max_line {
                    break;
                }
                match cap.tighter(settings.max_line) {
                    Some(tighter) => {
                        cap = tighter;
                        line.clear();
                    }
                    None => break,
                }
            }
            self.write_line(meta, &line.bytes);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fixed_clock, MockMakeWriter};
    use crate::Context;
    use tracing_subscriber::prelude::*;

    #[test]
    fn writes_the_documented_line() {
        let writer = MockMakeWriter::default();
        let layer = JsonLayer::new(writer.clone())
            .with_clock(fixed_clock)
            .static_field("service", "shop");
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            Context::new().with_request_id("9f1c").in_scope(|| {
                crate::set_user_id(42);
                crate::set("tenant_id", "acme");
                tracing::info!(target: "shop::orders", order_id = 42, "order placed");
            });
        });
        assert_eq!(
            writer.text(),
            concat!(
                r#"{"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","#,
                r#""requestId":"9f1c","userId":42,"tenantId":"acme","target":"shop::orders","#,
                r#""service":"shop","order_id":42}"#,
                "\n"
            )
        );
    }

    #[test]
    fn setters_keep_promoted_fields_and_statics() {
        let layer = JsonLayer::new(std::io::sink)
            .promote_span_field("tenantId")
            .static_field("a", 1)
            .static_field("a", 2)
            .with_target(false);
        assert_eq!(
            &*layer.prepared.promote,
            ["tenant_id".into(), "tenantId".into()]
        );
        assert_eq!(&*layer.prepared.static_json, br#","a":2"#);
    }
}
