//! [`JsonLayer`]: the `tracing_subscriber::Layer` that writes one JSON object per line with the
//! current request context merged in.

mod callsite;
mod cap;
mod fields;
mod ids;
mod json_format;
mod line;
mod line_writer;
mod prepared;
mod reserved;

#[cfg_attr(not(feature = "http"), allow(unused_imports))] // the body's error
pub(crate) use fields::PANICKED;

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

use crate::context::Value;
use crate::otel::{LookupSpanIds, SpanIdsLookup};
use crate::output::{ErrorCounter, EventPath};
use crate::schema::{push_name_forms, Schema};
use json_format::JsonFormat;
use prepared::{Prepared, Settings};

/// A [`Layer`](tracing_subscriber::Layer) that writes each event as one line of JSON, with the current request context.
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
/// `fields` and `context`, the roots of the renames, are never keys of their own, nor are
/// they repeated (`fields.fields`): such a key would be the dotted prefix of renamed keys, and
/// renaming could never end. A key so named gets a `_` (`fields_`, `fields.fields_`) and is
/// then checked as any other, so `info!(fields = 1, requestId = 2, "..")` inside a request
/// writes `"fields_":1,"fields.requestId":2`.
///
/// # Context
///
/// The context written is the current one (see [`Context::current`](crate::context::Context::current)):
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
    /// The shared event path, formatting with this layer's keys.
    path: EventPath<JsonFormat, W>,
    /// The static fields as given, to prepare again when a setting changes.
    statics: Vec<(Box<str>, Value)>,
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
        let format = JsonFormat {
            prepared: Prepared::new(Settings::default(), &[], Vec::new()),
            otel: SpanIdsLookup::default(),
        };
        JsonLayer {
            path: EventPath::new(format, make_writer),
            statics: Vec::new(),
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
            ..self.path.format.prepared.settings
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
        let settings = self.path.format.prepared.settings;
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
        self.path.context.promote(name);
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
        push_name_forms(&mut self.path.format.prepared.redact, name);
        self
    }

    /// Returns the layer's writer.
    pub(crate) fn make_writer(&self) -> &W {
        &self.path.make_writer
    }

    /// Returns the layer's key names, for `init` to give them to the writer.
    pub(crate) fn key_schema(&self) -> Schema {
        self.path.format.prepared.settings.schema
    }

    /// Returns the counter of lines this layer could not write.
    ///
    /// ```
    /// let layer = tracing_ambient::JsonLayer::stdout();
    /// assert_eq!(layer.error_counter().dropped_lines(), 0);
    /// ```
    pub fn error_counter(&self) -> ErrorCounter {
        self.path.errors.clone()
    }

    /// Sets the clock. For tests that need a fixed timestamp.
    #[cfg(test)]
    pub(crate) fn with_clock(self, clock: fn() -> std::time::SystemTime) -> Self {
        let settings = Settings {
            clock,
            ..self.path.format.prepared.settings
        };
        self.settings(settings)
    }

    /// Rebuilds what the event path reads from the new settings.
    fn settings(mut self, settings: Settings) -> Self {
        let prepared = &mut self.path.format.prepared;
        let redact = std::mem::take(&mut prepared.redact);
        *prepared = Prepared::new(settings, &self.statics, redact);
        self
    }

    /// Sets how a line logged in a span finds the trace and span ids it carries in place of
    /// the context's. Defaults to `otel::DefaultLookupSpanIds` (the ids of tracing-opentelemetry
    /// 0.34's spans) with the `opentelemetry` feature, and to `()` (none) without it.
    ///
    /// ```
    /// use tracing_ambient::otel::{SpanIds, SpanView};
    ///
    /// struct MyIds(u128, u64); // kept in each span's extensions by a layer of your own
    ///
    /// let layer = tracing_ambient::JsonLayer::stdout().lookup_span_ids(|span: &SpanView<'_>| {
    ///     let extensions = span.extensions();
    ///     let ids = extensions.get::<MyIds>()?;
    ///     SpanIds::new(ids.0.to_be_bytes(), ids.1.to_be_bytes())
    /// });
    /// # drop(layer);
    /// ```
    pub fn lookup_span_ids(mut self, lookup: impl LookupSpanIds) -> Self {
        self.path.format.otel.set_hook(Box::new(lookup));
        self
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
            path: self.path.with_writer(make_writer),
            statics: self.statics,
        }
    }
}

crate::output::output_layer!(JsonLayer);

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
            layer.path.context.promoted(),
            ["tenant_id".into(), "tenantId".into()]
        );
        assert_eq!(&*layer.path.format.prepared.static_json, br#","a":2"#);
    }
}
