//! Bad input, proven by property tests (issue 19 §2): whatever the strings, floats, field
//! names and `Debug`/`Display` output, every line `JsonLayer` builds under every preset is one
//! JSON object without a duplicate key, holds each value exactly (or its documented
//! replacement, rename or cut), and keeps the context's keys unforgeable.
//!
//! `tests/escaping.rs` covers escaping and numbers under the default schema; this file runs
//! every preset, names chosen at run time (through the `log` bridge, whose callsites are made
//! at run time with the record's keys as field names), and the line cap.
//!
//! The expected lines are written from the documented rules (`JsonLayer`'s "Keys and their
//! order", "Duplicate keys" and "Values", `max_line_bytes`, and each preset's key table),
//! never read back from the code under test.

mod common;

use std::error::Error;
use std::fmt;
use std::sync::Once;

use common::{Capture, Line};
use log::kv::{ToValue, Value as KvValue};
use proptest::prelude::*;
use serde_json::{json, Value};
use tracing::info;
use tracing_ambient::{Context, JsonLayer, LogBridge, Schema};
use tracing_subscriber::prelude::*;

// === the presets, as their docs write them ===

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const GCP_PROJECT: &str = "my-project";

/// One preset's keys, copied from its documentation table.
struct Preset {
    name: &'static str,
    schema: Schema,
    timestamp: &'static str,
    /// The level key and the value `info` is written as.
    level: (&'static str, &'static str),
    /// OpenTelemetry's `severity_number`: 9 for `info`.
    level_number: Option<&'static str>,
    message: &'static str,
    request_id: &'static str,
    user_id: &'static str,
    /// The trace keys after the user id, with the values the fixed ids are written as.
    ids: fn() -> Vec<(&'static str, Value)>,
    /// How the extra context key `tenant_id` is written (camel or snake case).
    tenant: &'static str,
    target: &'static str,
    /// Written on a cut line, and never taken by another key.
    truncated: &'static str,
    /// Fields written on every line.
    fixed: &'static [(&'static str, &'static str)],
    /// The error field's keys: `(message, stack trace)` for the presets with `ErrorKeys`,
    /// else `None` (the message under the field's name, causes under `<field>Sources`).
    error: Option<(&'static str, &'static str)>,
    /// How an error field's causes are named: `Sources` (camel) or `_sources` (snake).
    sources: &'static str,
}

fn presets() -> Vec<Preset> {
    vec![
        Preset {
            name: "default",
            schema: Schema::DEFAULT,
            timestamp: "timestamp",
            level: ("level", "info"),
            level_number: None,
            message: "message",
            request_id: "requestId",
            user_id: "userId",
            ids: || vec![("traceId", json!(TRACE_ID)), ("spanId", json!(SPAN_ID))],
            tenant: "tenantId",
            target: "target",
            truncated: "truncated",
            fixed: &[],
            error: None,
            sources: "Sources",
        },
        Preset {
            name: "ecs",
            schema: Schema::ecs(),
            timestamp: "@timestamp",
            level: ("log.level", "info"),
            level_number: None,
            message: "message",
            request_id: "http.request.id",
            user_id: "user.id",
            ids: || {
                vec![
                    ("trace.id", json!(TRACE_ID)),
                    ("span.id", json!(SPAN_ID)),
                    ("transaction.id", json!(SPAN_ID)),
                ]
            },
            tenant: "tenant_id",
            target: "log.logger",
            truncated: "log.truncated",
            fixed: &[("ecs.version", "1.12.0")],
            error: Some(("error.message", "error.stack_trace")),
            sources: "_sources",
        },
        Preset {
            name: "otel",
            schema: Schema::otel(),
            timestamp: "timestamp",
            level: ("severity_text", "INFO"),
            level_number: Some("severity_number"),
            message: "body",
            request_id: "request_id",
            user_id: "user.id",
            ids: || {
                vec![
                    ("trace_id", json!(TRACE_ID)),
                    ("span_id", json!(SPAN_ID)),
                    ("trace_flags", json!("01")),
                ]
            },
            tenant: "tenant_id",
            target: "otel.scope.name",
            truncated: "truncated",
            fixed: &[],
            error: Some(("exception.message", "exception.stacktrace")),
            sources: "_sources",
        },
        Preset {
            name: "gcp",
            schema: Schema::gcp(GCP_PROJECT),
            timestamp: "time",
            level: ("severity", "INFO"),
            level_number: None,
            message: "message",
            request_id: "requestId",
            user_id: "userId",
            ids: || {
                vec![
                    (
                        "logging.googleapis.com/trace",
                        json!(format!("projects/{GCP_PROJECT}/traces/{TRACE_ID}")),
                    ),
                    ("logging.googleapis.com/spanId", json!(SPAN_ID)),
                    ("logging.googleapis.com/trace_sampled", json!(true)),
                ]
            },
            tenant: "tenantId",
            target: "target",
            truncated: "truncated",
            fixed: &[],
            error: None,
            sources: "Sources",
        },
        Preset {
            name: "datadog",
            schema: Schema::datadog(),
            timestamp: "timestamp",
            level: ("status", "info"),
            level_number: None,
            message: "message",
            request_id: "http.request_id",
            user_id: "usr.id",
            // The low 64 bits as decimal strings: 0xa3ce929d0e0e4736 and 0x00f067aa0ba902b7.
            ids: || {
                vec![
                    ("dd.trace_id", json!("11803532876627986230")),
                    ("dd.span_id", json!("67667974448284343")),
                ]
            },
            tenant: "tenant_id",
            target: "logger.name",
            truncated: "truncated",
            fixed: &[],
            error: Some(("error.message", "error.stack")),
            sources: "_sources",
        },
    ]
}

/// Every key some preset writes, their dotted prefixes, and the context's keys in both
/// cases: the names a field may collide with.
const WELL_KNOWN: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "requestId",
    "userId",
    "traceId",
    "spanId",
    "target",
    "truncated",
    "tenantId",
    "tenant_id",
    "@timestamp",
    "log",
    "log.level",
    "log.logger",
    "log.truncated",
    "http",
    "http.request",
    "http.request.id",
    "http.request_id",
    "user",
    "user.id",
    "trace",
    "trace.id",
    "span",
    "span.id",
    "transaction.id",
    "ecs.version",
    "ecs",
    "severity_text",
    "severity_number",
    "body",
    "request_id",
    "user_id",
    "trace_id",
    "span_id",
    "trace_flags",
    "otel.scope.name",
    "otel",
    "time",
    "severity",
    "logging.googleapis.com/trace",
    "logging.googleapis.com/spanId",
    "logging",
    "status",
    "usr.id",
    "usr",
    "dd.trace_id",
    "dd.span_id",
    "dd",
    "logger.name",
    "logger",
    "error",
    "error.message",
    "errorSources",
    "error_sources",
    "fields",
    "fields.requestId",
    "context.requestId",
];

// === building lines ===

/// The context every line here is logged in, with an arbitrary request id, user id and
/// tenant.
fn context(request_id: &str, user_id: &str, tenant: &str) -> Context {
    Context::new()
        .with_request_id(request_id)
        .with_user_id(user_id)
        .with_trace_id(TRACE_ID)
        .with_span_id(SPAN_ID)
        .with("tenant_id", tenant)
}

/// The lines `f` logs through a `JsonLayer` with `preset`'s schema and `max_line` cap.
fn lines_under(preset: &Preset, max_line: usize, f: impl FnOnce()) -> Vec<Line> {
    raw_lines_under(preset, max_line, f).1
}

/// The same, with the text as written.
fn raw_lines_under(preset: &Preset, max_line: usize, f: impl FnOnce()) -> (String, Vec<Line>) {
    let capture = Capture::default();
    let layer = JsonLayer::new(capture.clone())
        .schema(preset.schema)
        .max_line_bytes(max_line);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    (capture.text(), capture.lines())
}

/// The keys and values a line holds before the event's fields, in order ("Keys and their
/// order"), the timestamp's value left out (checked apart).
fn head(
    preset: &Preset,
    message: &str,
    request_id: &str,
    user_id: &str,
    tenant: &str,
    target: &str,
) -> Vec<(String, Value)> {
    let mut head: Vec<(String, Value)> = vec![(preset.level.0.into(), json!(preset.level.1))];
    if let Some(number) = preset.level_number {
        head.push((number.into(), json!(9)));
    }
    head.push((preset.message.into(), json!(message)));
    head.push((preset.request_id.into(), json!(request_id)));
    head.push((preset.user_id.into(), json!(user_id)));
    head.extend((preset.ids)().into_iter().map(|(k, v)| (k.to_owned(), v)));
    head.push((preset.tenant.into(), json!(tenant)));
    head.push((preset.target.into(), json!(target)));
    head.extend(
        preset
            .fixed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v))),
    );
    head
}

/// Whether `a` is the dotted prefix of `b` (Elasticsearch would make `a` an object).
fn dotted_prefix(a: &str, b: &str) -> bool {
    b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'.'
}

/// Where the event's fields go, by "Duplicate keys": each field takes its name, prefixed
/// with `fields.` as many times as it takes for the key to be neither a key already on the
/// line (or the layer's own `truncated` key) nor the dotted prefix of one, nor to have one as
/// its dotted prefix. A name made only of a root of the renames (`fields`, `fields.fields`,
/// `context`) first gets a `_`.
fn field_keys<'a>(
    taken: &[String],
    truncated: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut taken: Vec<String> = taken.to_vec();
    taken.push(truncated.to_owned());
    let mut keys = Vec::new();
    for name in names {
        let mut key = name.to_owned();
        let root = |word: &str| key.split('.').all(|segment| segment == word);
        if root("fields") || root("context") {
            key.push('_');
        }
        while taken
            .iter()
            .any(|t| *t == key || dotted_prefix(t, &key) || dotted_prefix(&key, t))
        {
            key.insert_str(0, "fields.");
        }
        taken.push(key.clone());
        keys.push(key);
    }
    keys
}

/// A value as the line must hold it: floats by their bits, NaN and infinities as the
/// strings `"NaN"`, `"inf"` and `"-inf"` ("Values").
#[derive(Debug, Clone)]
enum Expected {
    Json(Value),
    Float(f64),
}

impl Expected {
    fn holds(&self, actual: &Value) -> bool {
        match self {
            Expected::Json(v) => v == actual,
            Expected::Float(f) if f.is_nan() => actual == "NaN",
            Expected::Float(f) if f.is_infinite() => {
                actual == if *f > 0.0 { "inf" } else { "-inf" }
            }
            Expected::Float(f) => actual.as_f64().map(f64::to_bits) == Some(f.to_bits()),
        }
    }
}

/// Checks a whole line: the timestamp first, then `head` in order, then `fields` in order,
/// and nothing else.
fn check_line(
    preset: &Preset,
    line: &Line,
    head: &[(String, Value)],
    fields: &[(String, Expected)],
) -> Result<(), TestCaseError> {
    let name = preset.name;
    let expected_len = 1 + head.len() + fields.len();
    prop_assert_eq!(
        line.entries.len(),
        expected_len,
        "{}: keys {:?}",
        name,
        line.keys()
    );
    let (ts_key, ts) = &line.entries[0];
    prop_assert_eq!(ts_key, preset.timestamp, "{}", name);
    let ts = ts.as_str().unwrap_or_default();
    prop_assert!(
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
        "{}: timestamp {:?}",
        name,
        ts
    );
    for (i, (key, value)) in head.iter().enumerate() {
        let (k, v) = &line.entries[1 + i];
        prop_assert_eq!(k, key, "{}: key {} of {:?}", name, 1 + i, line.keys());
        prop_assert_eq!(v, value, "{}: value of {}", name, key);
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        let (k, v) = &line.entries[1 + head.len() + i];
        prop_assert_eq!(k, key, "{}: field {} of {:?}", name, i, line.keys());
        prop_assert!(
            value.holds(v),
            "{}: {} is {:?}, expected {:?}",
            name,
            key,
            v,
            value
        );
    }
    // No key is the dotted prefix of another (the design's rule, checked on its own).
    for (a, _) in &line.entries {
        for (b, _) in &line.entries {
            prop_assert!(
                !dotted_prefix(a, b),
                "{}: {:?} is the dotted prefix of {:?}",
                name,
                a,
                b
            );
        }
    }
    Ok(())
}

// === strategies ===

/// Strings biased towards what JSON must escape, over every Unicode scalar.
fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    let nasty = prop_oneof![
        Just('"'),
        Just('\\'),
        Just('\n'),
        Just('\u{2028}'),
        Just('\u{2029}'),
        Just('\u{7f}'),
        Just('\u{feff}'),
        Just('.'),
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        any::<char>(),
        any::<char>(),
    ];
    prop::collection::vec(nasty, 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// Every `f64`: the special values, subnormals and any bit pattern (NaNs with payloads).
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(5e-324),
        (1u64..(1 << 52)).prop_map(f64::from_bits),
        (1u64..(1 << 52)).prop_map(|b| -f64::from_bits(b)),
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
    ]
}

/// A field name: a well-known key, one with a suffix (dotted, or renamed forms), empty, or
/// any text.
fn field_name() -> impl Strategy<Value = String> {
    let suffix = prop_oneof![
        Just(""),
        Just(".x"),
        Just(".id"),
        Just("."),
        Just("Sources"),
        Just("_sources"),
    ];
    prop_oneof![
        4 => prop::sample::select(WELL_KNOWN).prop_map(str::to_owned),
        3 => (prop::sample::select(WELL_KNOWN), suffix).prop_map(|(k, s)| format!("{k}{s}")),
        1 => (prop::sample::select(WELL_KNOWN)).prop_map(|k| format!("fields.{k}")),
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        2 => "[a-c.]{1,5}",
        2 => nasty_string(12),
    ]
}

/// A key-value's value in the `log` crate.
#[derive(Debug, Clone)]
enum Kv {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl ToValue for Kv {
    fn to_value(&self) -> KvValue<'_> {
        match self {
            Kv::Str(s) => KvValue::from(s.as_str()),
            Kv::I64(v) => KvValue::from(*v),
            Kv::U64(v) => KvValue::from(*v),
            Kv::F64(v) => KvValue::from(*v),
            Kv::Bool(v) => KvValue::from(*v),
        }
    }
}

impl Kv {
    fn expected(&self) -> Expected {
        match self {
            Kv::Str(s) => Expected::Json(json!(s)),
            Kv::I64(v) => Expected::Json(json!(v)),
            Kv::U64(v) => Expected::Json(json!(v)),
            Kv::F64(v) => Expected::Float(*v),
            Kv::Bool(v) => Expected::Json(json!(v)),
        }
    }
}

fn kv_value() -> impl Strategy<Value = Kv> {
    prop_oneof![
        nasty_string(16).prop_map(Kv::Str),
        any::<i64>().prop_map(Kv::I64),
        any::<u64>().prop_map(Kv::U64),
        any_f64().prop_map(Kv::F64),
        any::<bool>().prop_map(Kv::Bool),
    ]
}

/// `Debug` and `Display` output written in arbitrary pieces (each a `write_str` call), and a
/// panic after some of them.
#[derive(Clone)]
struct Pieces {
    pieces: Vec<String>,
    panic_after: Option<usize>,
}

const PANIC_MARKER: &str = "prop_lines: a user impl that panics";
/// What the layer writes for a user impl that panicked ("Errors and panics").
const PANICKED: &str = "<panicked while formatting>";

impl Pieces {
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, piece) in self.pieces.iter().enumerate() {
            if self.panic_after == Some(i) {
                std::panic::panic_any(PANIC_MARKER);
            }
            f.write_str(piece)?;
        }
        if self.panic_after.is_some_and(|n| n >= self.pieces.len()) {
            std::panic::panic_any(PANIC_MARKER);
        }
        Ok(())
    }

    /// What the line holds for it.
    fn text(&self) -> String {
        match self.panic_after {
            Some(_) => PANICKED.to_owned(),
            None => self.pieces.concat(),
        }
    }
}

impl fmt::Debug for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

impl fmt::Display for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// An error whose message and one cause are arbitrary text.
#[derive(Debug)]
struct Failed {
    message: String,
    cause: Cause,
}

#[derive(Debug)]
struct Cause(String);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Failed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

impl Error for Cause {}

fn pieces(panics: bool) -> impl Strategy<Value = Pieces> {
    let panic_after = if panics {
        prop::option::weighted(0.2, 0usize..4).boxed()
    } else {
        Just(None).boxed()
    };
    (prop::collection::vec(nasty_string(8), 0..6), panic_after).prop_map(|(pieces, panic_after)| {
        Pieces {
            pieces,
            panic_after,
        }
    })
}

/// Keeps the default panic hook quiet for the panics these tests cause on purpose.
fn quiet_planned_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MARKER) {
                previous(info);
            }
        }));
    });
}

/// A record through the `log` bridge, logged in `ctx`, its key-values as given.
fn log_record(message: &str, pairs: &[(String, Kv)]) {
    // One expression: the record borrows its `format_args!`.
    log::Log::log(
        &LogBridge::new(),
        &log::Record::builder()
            .args(format_args!("{message}"))
            .level(log::Level::Info)
            .target("prop_lines::bridge")
            .module_path_static(Some("prop_lines"))
            .file_static(Some("tests/prop_lines.rs"))
            .line(Some(1))
            .key_values(&pairs)
            .build(),
    );
}

/// How many distinct record shapes the bridge test makes: each case is a new shape, and the
/// bridge makes at most 1,024 callsites per process (shrinking a failure makes more).
const BRIDGE_CASES: u32 = 256;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Strings of any text, floats of any bits and `Debug`/`Display` output in any pieces, in
    /// the context, the message and the fields, under every preset: each value exactly where
    /// the docs put it.
    #[test]
    fn every_value_is_held_exactly_under_every_preset(
        message in nasty_string(24),
        request_id in nasty_string(16),
        user_id in nasty_string(16),
        tenant in nasty_string(16),
        text in nasty_string(24),
        float in any_f64(),
        shown in pieces(true),
        debugged in pieces(true),
        error in (nasty_string(12), nasty_string(12)),
    ) {
        quiet_planned_panics();
        for preset in presets() {
            let ctx = context(&request_id, &user_id, &tenant);
            let err = Failed { message: error.0.clone(), cause: Cause(error.1.clone()) };
            let lines = lines_under(&preset, usize::MAX, || {
                ctx.in_scope(|| {
                    info!(
                        text = text.as_str(),
                        float,
                        shown = %shown,
                        debugged = ?debugged,
                        error = &err as &dyn Error,
                        "{}", message
                    );
                });
            });
            prop_assert_eq!(lines.len(), 1, "{}", preset.name);
            let head = head(&preset, &message, &request_id, &user_id, &tenant, module_path!());
            let taken: Vec<String> = std::iter::once(preset.timestamp.to_owned())
                .chain(head.iter().map(|(k, _)| k.clone()))
                .collect();
            // The error field goes under the preset's error message key, with its chain as one
            // string; else under its own name, with its causes as an array.
            let (error_key, chain_key, chain) = match preset.error {
                Some((message_key, stack)) => (
                    message_key.to_owned(),
                    stack.to_owned(),
                    json!(format!("{}\ncaused by: {}", error.0, error.1)),
                ),
                None => ("error".to_owned(), format!("error{}", preset.sources), json!([error.1])),
            };
            let names = ["text", "float", "shown", "debugged", &error_key, &chain_key];
            let keys = field_keys(&taken, preset.truncated, names);
            let values = [
                Expected::Json(json!(text)),
                Expected::Float(float),
                Expected::Json(json!(shown.text())),
                Expected::Json(json!(debugged.text())),
                Expected::Json(json!(error.0)),
                Expected::Json(chain),
            ];
            let fields: Vec<(String, Expected)> = keys.into_iter().zip(values).collect();
            check_line(&preset, &lines[0], &head, &fields)?;
        }
    }

    /// Fields named like the core, context and layer keys of any preset (dotted forms, their
    /// prefixes, empty): under every preset, the context's values stay where they are and
    /// each field is renamed as "Duplicate keys" says, never dropped.
    #[test]
    fn colliding_field_names_are_renamed_never_forged(
        values in prop::collection::vec(nasty_string(8), 20),
        request_id in nasty_string(8),
    ) {
        for preset in presets() {
            let ctx = context(&request_id, "u1", "acme");
            let v = |i: usize| values[i].as_str();
            let lines = lines_under(&preset, usize::MAX, || {
                ctx.in_scope(|| {
                    info!(
                        "timestamp" = v(0), "level" = v(1), "requestId" = v(2), "userId" = v(3),
                        "traceId" = v(4), "spanId" = v(5), "target" = v(6), "tenantId" = v(7),
                        "@timestamp" = v(8), "log.level" = v(9), "http.request.id" = v(10),
                        "user.id" = v(11), "trace.id" = v(12), "transaction.id" = v(13),
                        "ecs.version" = v(14), "severity_text" = v(15), "body" = v(16),
                        "request_id" = v(17), "truncated" = v(18), "log" = v(19),
                        "first"
                    );
                    info!(
                        "trace_flags" = v(0), "otel.scope.name" = v(1), "time" = v(2),
                        "severity" = v(3), "logging.googleapis.com/trace" = v(4), "status" = v(5),
                        "http.request_id" = v(6), "usr.id" = v(7), "dd.trace_id" = v(8),
                        "logger.name" = v(9), "tenant_id" = v(10), "severity_number" = v(11),
                        "http" = v(12), "user" = v(13), "requestId.x" = v(14), "span.id.x" = v(15),
                        "fields.requestId" = v(16), "" = v(17), "." = v(18), "message.x" = v(19),
                        "second"
                    );
                });
            });
            prop_assert_eq!(lines.len(), 2, "{}", preset.name);
            let names: [&[&str]; 2] = [
                &["timestamp", "level", "requestId", "userId", "traceId", "spanId", "target",
                  "tenantId", "@timestamp", "log.level", "http.request.id", "user.id", "trace.id",
                  "transaction.id", "ecs.version", "severity_text", "body", "request_id",
                  "truncated", "log"],
                &["trace_flags", "otel.scope.name", "time", "severity",
                  "logging.googleapis.com/trace", "status", "http.request_id", "usr.id",
                  "dd.trace_id", "logger.name", "tenant_id", "severity_number", "http", "user",
                  "requestId.x", "span.id.x", "fields.requestId", "", ".", "message.x"],
            ];
            for (line, (names, message)) in lines.iter().zip(names.iter().zip(["first", "second"])) {
                let head = head(&preset, message, &request_id, "u1", "acme", module_path!());
                let taken: Vec<String> = std::iter::once(preset.timestamp.to_owned())
                    .chain(head.iter().map(|(k, _)| k.clone()))
                    .collect();
                let keys = field_keys(&taken, preset.truncated, names.iter().copied());
                let fields: Vec<(String, Expected)> = keys
                    .into_iter()
                    .zip(&values)
                    .map(|(k, v)| (k, Expected::Json(json!(v))))
                    .collect();
                check_line(&preset, line, &head, &fields)?;
            }
        }
    }

    /// Context keys of any name (well-known keys of any preset, dotted, empty, any text)
    /// never take the place of a core key or of the well-known context keys, under every
    /// preset; the line stays valid and the value is on it once.
    #[test]
    fn context_keys_of_any_name_never_displace_the_well_known_ones(
        key in field_name(),
        request_id in nasty_string(8),
    ) {
        // `request_id`, `user_id`, `trace_id` and `span_id`, in any case, are the well-known
        // keys themselves (`Context::set`): setting one is meant to change it.
        let folded: String = key.chars().filter(|c| *c != '_').collect::<String>().to_lowercase();
        prop_assume!(!["requestid", "userid", "traceid", "spanid"].contains(&folded.as_str()));
        for preset in presets() {
            let ctx = context(&request_id, "u1", "acme").with(&key, "planted-value");
            let lines = lines_under(&preset, usize::MAX, || ctx.in_scope(|| info!("m")));
            prop_assert_eq!(lines.len(), 1, "{}", preset.name);
            let line = &lines[0];
            for (k, v) in head(&preset, "m", &request_id, "u1", "acme", module_path!()) {
                // `tenant_id` itself may be the planted key, which then replaces its value.
                if k == preset.tenant {
                    continue;
                }
                prop_assert_eq!(line.get(&k), Some(&v), "{}: {} with key {:?}: {:?}", preset.name, k, key, line);
            }
            let planted = line.entries.iter().filter(|(_, v)| v == "planted-value").count();
            prop_assert_eq!(planted, 1, "{}: {:?}", preset.name, line);
            for (a, _) in &line.entries {
                for (b, _) in &line.entries {
                    prop_assert!(!dotted_prefix(a, b), "{}: {:?} and {:?}", preset.name, a, b);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(BRIDGE_CASES))]

    /// Names chosen at run time: a `log` record's key-values become fields of a callsite
    /// made for them, so any text is a field name. Under every preset, each key-value is on
    /// the line under its name or its documented rename (`message` included: the first
    /// field of that name is the record's message), with its value exactly.
    #[test]
    fn any_field_name_through_the_log_bridge(
        message in nasty_string(16),
        pairs in prop::collection::vec((field_name(), kv_value()), 1..8),
        request_id in nasty_string(8),
    ) {
        for preset in presets() {
            let ctx = context(&request_id, "u1", "acme");
            let lines = lines_under(&preset, usize::MAX, || {
                ctx.in_scope(|| log_record(&message, &pairs));
            });
            prop_assert_eq!(lines.len(), 1, "{}", preset.name);
            let head = head(&preset, &message, &request_id, "u1", "acme", "prop_lines::bridge");
            let taken: Vec<String> = std::iter::once(preset.timestamp.to_owned())
                .chain(head.iter().map(|(k, _)| k.clone()))
                .collect();
            // A preset with error keys writes a field named `error` under its error message key.
            let names = pairs.iter().map(|(name, _)| match preset.error {
                Some((message_key, _)) if name == "error" => message_key,
                _ => name.as_str(),
            });
            let keys = field_keys(&taken, preset.truncated, names);
            let fields: Vec<(String, Expected)> = keys
                .into_iter()
                .zip(pairs.iter().map(|(_, v)| v.expected()))
                .collect();
            check_line(&preset, &lines[0], &head, &fields)?;
        }
    }
}

// === the line cap ===

/// `max_line_bytes`: a longer line is written again with its string values cut at a
/// character boundary and marked `…[truncated]`; as a last resort event fields are left out;
/// the line keeps every core, context and static key and gets the preset's truncated key.
const CUT_MARK: &str = "…[truncated]";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cut_lines_stay_under_the_cap_and_hold_prefixes(
        max_line in 700usize..4096,
        message in nasty_string(600),
        values in prop::collection::vec(nasty_string(400), 1..12),
        request_id in nasty_string(8),
    ) {
        for preset in presets() {
            let ctx = context(&request_id, "u1", "acme");
            let (text, lines) = raw_lines_under(&preset, max_line, || {
                ctx.in_scope(|| log_record(&message, &values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("f{i}"), Kv::Str(v.clone())))
                    .collect::<Vec<_>>()));
            });
            prop_assert_eq!(lines.len(), 1, "{}", preset.name);
            let line = &lines[0];
            // Bytes as written, the newline included.
            let raw_len = text.len();
            let cut = line.get(preset.truncated).is_some();
            if cut {
                prop_assert_eq!(line.at(preset.truncated), &json!(true), "{}", preset.name);
            }
            // The cap holds: the context here is small, so it can always be met.
            prop_assert!(raw_len <= max_line, "{}: {} > {}: {}", preset.name, raw_len, max_line, text);
            let check = |key: &str, whole: &str| -> Result<(), TestCaseError> {
                match line.str(key) {
                    Some(v) if v == whole => Ok(()),
                    Some(v) => {
                        prop_assert!(cut, "{}: {} changed without a cut", preset.name, key);
                        let kept = v.strip_suffix(CUT_MARK);
                        prop_assert!(kept.is_some_and(|k| whole.starts_with(k)),
                            "{}: {} is {:?}, not a cut of {:?}", preset.name, key, v, whole);
                        Ok(())
                    }
                    None => {
                        prop_assert!(cut, "{}: {} left out without a cut", preset.name, key);
                        Ok(())
                    }
                }
            };
            check(preset.message, &message)?;
            for (i, v) in values.iter().enumerate() {
                check(&format!("f{i}"), v)?;
            }
            for (k, v) in head(&preset, "", &request_id, "u1", "acme", "prop_lines::bridge") {
                if k != preset.message {
                    prop_assert_eq!(line.get(&k), Some(&v), "{}: {}", preset.name, k);
                }
            }
        }
    }
}
