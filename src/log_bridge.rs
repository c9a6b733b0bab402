//! [`LogBridge`]: the `log` crate's records as `tracing` events, their key-values as fields,
//! on callsites made at run time (one per record shape, leaked and cached, bounded).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};

use log::kv::{self, Key, Source, VisitSource, VisitValue};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Metadata};
use tracing_core::callsite::{self, Callsite, Identifier};
use tracing_core::field::{Field, FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_log::AsTrace;

/// The most key-values a record may have to get fields of their own.
const MAX_PAIRS: usize = 32;
/// The most callsites the bridge makes.
const MAX_CALLSITES: usize = 1024;
/// The most bytes of names (targets, keys, paths) the callsites may hold.
const MAX_NAME_BYTES: usize = 256 * 1024;

/// A [`log::Log`] that sends `log` records to the current `tracing` subscriber, with their
/// key-values as fields.
///
/// [`init`](crate::init) installs it. Install it yourself when composing the subscriber by
/// hand, in place of tracing-log's `LogTracer`. Records carry the request context as any
/// event does.
///
/// tracing-subscriber's `.init()` and `.try_init()` install `LogTracer` when its
/// `tracing-log` feature is on (a default feature), which takes the `log` slot: set the
/// subscriber with `tracing::subscriber::set_global_default` instead, as below.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, JsonLayer, LogBridge};
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(JsonLayer::stdout());
/// tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
/// LogBridge::new().init().expect("no other `log` logger"); // `init()` does both
///
/// Context::new().with_request_id("9f1c").in_scope(|| {
///     log::info!(order_id = 7, user = "u1"; "placed");
/// });
/// ```
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"placed","requestId":"9f1c","target":"shop::orders","order_id":7,"user":"u1"}
/// ```
///
/// # Why not tracing-log's `LogTracer`
///
/// `LogTracer` turns a record into an event on one of five fixed callsites (one per level)
/// whose fields are the message and the record's target, module, file and line; the
/// record's key-values (`log::info!(order_id = 7; "placed")`) have no field to go in, and
/// are dropped (tokio-rs/tracing#3355). `tracing` takes field names from a callsite's static
/// metadata, so a record with key-values needs a callsite whose fields are its keys. The
/// bridge makes one at run time for each distinct record shape (level, target, module,
/// file, line and keys, which for a `log!` call site never change), leaks it as a macro's
/// statics are never freed, and registers it with `tracing` like a macro's. Its metadata has
/// the record's own target, file and line, so every output layer (the crate's, `fmt`,
/// OpenTelemetry) and every filter sees an ordinary event. After the first record of a
/// shape, sending one allocates nothing.
///
/// # Values
///
/// Integers (to 128 bits), floats, booleans and strings keep their JSON type; a value
/// captured with `:?` or `:%`, a `char` and anything else are written as the string its
/// `Debug` or `Display` gives; `None` leaves the key out. A key named like a context key or
/// `message` is renamed as any colliding event field is (`fields.requestId`).
///
/// # Bounds
///
/// A program has few record shapes, but a target or key can be made at run time, so the
/// bridge makes at most 1,024 callsites holding at most 256 KiB of names; beside its names,
/// a callsite and what `tracing` and [`init`](crate::init)'s layers keep for it take some
/// 560 bytes, so at most about 0.8 MiB in all. A record past
/// that bound, or with more than 32 key-values, is written as tracing-log writes it, with
/// its key-values appended to the message as text: `placed order_id=7 user="u1"`. A record
/// without key-values always takes tracing-log's path, as before; so does one whose
/// key-value source panics (its key-values are left out).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct LogBridge {
    max_level: log::LevelFilter,
}

impl LogBridge {
    /// Returns a bridge that passes records of every level on.
    ///
    /// ```
    /// let bridge = tracing_ambient::LogBridge::new();
    /// # let _ = bridge;
    /// ```
    pub const fn new() -> Self {
        LogBridge {
            max_level: log::LevelFilter::Trace,
        }
    }

    /// Sets the most verbose level of records passed on; `log` skips the others before
    /// making a record. Defaults to `Trace` (all).
    ///
    /// ```
    /// let bridge = tracing_ambient::LogBridge::new().with_max_level(log::LevelFilter::Warn);
    /// # let _ = bridge;
    /// ```
    pub const fn with_max_level(self, level: log::LevelFilter) -> Self {
        LogBridge { max_level: level }
    }

    /// Installs the bridge as the `log` crate's logger and sets `log`'s maximum level.
    ///
    /// # Errors
    ///
    /// Returns an error, and changes nothing, if a `log` logger is already installed.
    ///
    /// ```
    /// assert!(tracing_ambient::LogBridge::new().init().is_ok());
    /// assert!(tracing_ambient::LogBridge::new().init().is_err());
    /// ```
    pub fn init(self) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(self.max_level);
        Ok(())
    }
}

impl Default for LogBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl log::Log for LogBridge {
    /// As tracing-log's `LogTracer`: the level against the subscriber's most verbose one,
    /// then the subscriber's filter, with the record's own target.
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level().as_trace() <= LevelFilter::current()
            && tracing::dispatcher::get_default(|d| d.enabled(&metadata.as_trace()))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let source = record.key_values();
        let mut pairs = Pairs::new();
        // A `Source` of the application's own may panic: its key-values are then left out.
        let visited = catch_unwind(AssertUnwindSafe(|| {
            let _ = source.visit(&mut pairs);
        }));
        if visited.is_err() || pairs.len == 0 {
            return plain(record);
        }
        if !pairs.more {
            if let Some(callsite) = callsite_for(record, &pairs) {
                return callsite.dispatch(record, &pairs);
            }
        }
        plain(
            &record
                .to_builder()
                .args(format_args!("{}{}", record.args(), AsText(source)))
                .build(),
        );
    }

    fn flush(&self) {}
}

/// tracing-log's path: the record on its level's callsite, key-values dropped.
fn plain(record: &log::Record<'_>) {
    let _ = tracing_log::format_trace(record);
}

/// A record's key-values, borrowed from it: the first [`MAX_PAIRS`], and whether there are
/// more.
struct Pairs<'kvs> {
    pairs: [Option<(Key<'kvs>, kv::Value<'kvs>)>; MAX_PAIRS],
    len: usize,
    more: bool,
}

impl<'kvs> Pairs<'kvs> {
    fn new() -> Self {
        Pairs {
            pairs: [const { None }; MAX_PAIRS],
            len: 0,
            more: false,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(Key<'kvs>, kv::Value<'kvs>)> {
        self.pairs[..self.len].iter().flatten()
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(key, _)| key.as_str())
    }
}

impl<'kvs> VisitSource<'kvs> for Pairs<'kvs> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        if self.len == MAX_PAIRS {
            self.more = true;
            return Err(kv::Error::msg("more key-values than fields"));
        }
        self.pairs[self.len] = Some((key, value));
        self.len += 1;
        Ok(())
    }
}

/// Key-values as ` key=value` text, values as their `Debug` gives them (strings quoted).
struct AsText<'a>(&'a dyn Source);

impl fmt::Display for AsText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Write<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl<'kvs> VisitSource<'kvs> for Write<'_, '_> {
            fn visit_pair(
                &mut self,
                key: Key<'kvs>,
                value: kv::Value<'kvs>,
            ) -> Result<(), kv::Error> {
                write!(self.0, " {key}={value:?}").map_err(|_| kv::Error::msg("fmt error"))
            }
        }
        self.0.visit(&mut Write(f)).map_err(|_| fmt::Error)
    }
}

// === the callsites ===

/// One record shape's callsite: level, target, module, file, line, and the fields `message`
/// then the keys.
struct KvCallsite {
    // Set once, right after the callsite is leaked (its metadata names its own address).
    meta: OnceLock<Metadata<'static>>,
    // The interest `tracing` computed for it: never, sometimes, always, or unknown.
    interest: AtomicU8,
}

const NEVER: u8 = 0;
const SOMETIMES: u8 = 1;
const ALWAYS: u8 = 2;

impl Callsite for KvCallsite {
    fn set_interest(&self, interest: Interest) {
        let value = if interest.is_never() {
            NEVER
        } else if interest.is_always() {
            ALWAYS
        } else {
            SOMETIMES
        };
        self.interest.store(value, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
            .get()
            .expect("the metadata is set before the callsite is shared; this is a bug")
    }
}

impl KvCallsite {
    /// Whether this callsite is the one of `record`'s shape.
    fn matches(&self, record: &log::Record<'_>, pairs: &Pairs<'_>) -> bool {
        let meta = self.metadata();
        let fields = meta.fields();
        *meta.level() == record.level().as_trace()
            && meta.target() == record.target()
            && meta.line() == record.line()
            && meta.file() == record.file()
            && meta.module_path() == record.module_path()
            && fields.len() == pairs.len + 1
            && fields.iter().skip(1).map(|f| f.name()).eq(pairs.keys())
    }

    /// Sends the record as an event, if anything wants it: what the macros check, in the
    /// same order, then the values, converted without allocating.
    fn dispatch(&'static self, record: &log::Record<'_>, pairs: &Pairs<'_>) {
        let meta: &'static Metadata<'static> = self
            .meta
            .get()
            .expect("the metadata is set before the callsite is shared; this is a bug");
        if *meta.level() > LevelFilter::current() {
            return;
        }
        let interest = self.interest.load(Ordering::Relaxed);
        if interest == NEVER {
            return;
        }
        if interest != ALWAYS && !tracing::dispatcher::get_default(|d| d.enabled(meta)) {
            return;
        }
        let fields = meta.fields();
        let mut names = fields.iter();
        let all: [Option<Field>; MAX_PAIRS + 1] = std::array::from_fn(|_| names.next());
        let message = all[0]
            .as_ref()
            .expect("the message is the first field; this is a bug");
        let mut values = pairs.iter().map(|(_, value)| FieldValue::of(value));
        let values: [Option<FieldValue<'_, '_>>; MAX_PAIRS] =
            std::array::from_fn(|_| values.next());
        let args = record.args();
        let entries: [(&Field, Option<&dyn Value>); MAX_PAIRS + 1] =
            std::array::from_fn(|i| match (&all[i], i) {
                (Some(field), 0) => (field, Some(args as &dyn Value)),
                (Some(field), i) => (field, values[i - 1].as_ref().and_then(FieldValue::get)),
                // Past the callsite's fields: no value, so nothing is recorded.
                (None, _) => (message, None),
            });
        Event::dispatch(meta, &fields.value_set(&entries));
    }
}

/// The callsites made so far, by a hash of their shape.
struct Cache {
    hasher: RandomState,
    callsites: HashMap<u64, Vec<&'static KvCallsite>>,
    count: usize,
    name_bytes: usize,
}

static CACHE: LazyLock<RwLock<Cache>> = LazyLock::new(|| {
    RwLock::new(Cache {
        hasher: RandomState::new(),
        callsites: HashMap::new(),
        count: 0,
        name_bytes: 0,
    })
});

thread_local! {
    // Set while this thread makes a callsite (see `callsite_for`).
    static MAKING: Cell<bool> = const { Cell::new(false) };
}

impl Cache {
    fn hash(&self, record: &log::Record<'_>, pairs: &Pairs<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        record.level().hash(&mut h);
        record.target().hash(&mut h);
        record.module_path().hash(&mut h);
        record.file().hash(&mut h);
        record.line().hash(&mut h);
        for key in pairs.keys() {
            key.hash(&mut h);
        }
        h.finish()
    }

    fn find(
        &self,
        hash: u64,
        record: &log::Record<'_>,
        pairs: &Pairs<'_>,
    ) -> Option<&'static KvCallsite> {
        self.callsites
            .get(&hash)?
            .iter()
            .find(|c| c.matches(record, pairs))
            .copied()
    }
}

/// Returns the callsite of `record`'s shape, made the first time it is seen; `None` past the
/// bounds, or while this thread is making one.
///
/// No lock is held while a callsite is made: registering it runs every subscriber's
/// `register_callsite`, and whatever that does (log, register callsites of its own on
/// another thread) must not wait for us. Two threads meeting a new shape at once may both
/// make it; one callsite is kept and the other stays unused, within the bounds.
fn callsite_for(record: &log::Record<'_>, pairs: &Pairs<'_>) -> Option<&'static KvCallsite> {
    let hash = {
        let cache = CACHE.read().unwrap_or_else(PoisonError::into_inner);
        let hash = cache.hash(record, pairs);
        if let Some(found) = cache.find(hash, record, pairs) {
            return Some(found);
        }
        hash
    };
    // A record logged while this thread makes a callsite (from a subscriber's
    // `register_callsite`) takes the plain path rather than recursing.
    if MAKING.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    let name_bytes = record.target().len()
        + record
            .module_path_static()
            .map_or(record.module_path().map_or(0, str::len), |_| 0)
        + record
            .file_static()
            .map_or(record.file().map_or(0, str::len), |_| 0)
        + pairs.keys().map(str::len).sum::<usize>();
    {
        let mut cache = CACHE.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = cache.find(hash, record, pairs) {
            return Some(found);
        }
        if cache.count >= MAX_CALLSITES || cache.name_bytes + name_bytes > MAX_NAME_BYTES {
            return None;
        }
        // Counted before it is made, so that racing threads cannot pass the bounds.
        cache.count += 1;
        cache.name_bytes += name_bytes;
    }
    MAKING.with(|m| m.set(true));
    let made = catch_unwind(AssertUnwindSafe(|| make(record, pairs)));
    MAKING.with(|m| m.set(false));
    let callsite = made.ok()?;
    let mut cache = CACHE.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = cache.find(hash, record, pairs) {
        return Some(found);
    }
    cache.callsites.entry(hash).or_default().push(callsite);
    Some(callsite)
}

/// Leaks and registers the callsite of `record`'s shape.
fn make(record: &log::Record<'_>, pairs: &Pairs<'_>) -> &'static KvCallsite {
    fn leak(s: &str) -> &'static str {
        Box::leak(s.into())
    }
    let names: Vec<&'static str> = std::iter::once("message")
        .chain(pairs.keys().map(leak))
        .collect();
    let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    let callsite: &'static KvCallsite = Box::leak(Box::new(KvCallsite {
        meta: OnceLock::new(),
        interest: AtomicU8::new(u8::MAX),
    }));
    let meta = Metadata::new(
        "log record",
        leak(record.target()),
        record.level().as_trace(),
        record.file_static().or_else(|| record.file().map(leak)),
        record.line(),
        record
            .module_path_static()
            .or_else(|| record.module_path().map(leak)),
        FieldSet::new(names, Identifier(callsite)),
        Kind::EVENT,
    );
    // Only this function sets it, once, on a callsite nobody else has seen yet.
    let _ = callsite.meta.set(meta);
    callsite::register(callsite);
    callsite
}

// === values ===

/// A key-value's value as a `tracing` value of the same JSON type where there is one.
enum FieldValue<'a, 'kvs> {
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Bool(bool),
    Str(&'kvs str),
    Text(tracing::field::DisplayValue<&'a kv::Value<'kvs>>),
    Null,
}

impl<'a, 'kvs> FieldValue<'a, 'kvs> {
    fn of(value: &'a kv::Value<'kvs>) -> Self {
        let mut typed = Typed(None);
        let _ = value.visit(&mut typed);
        match typed.0 {
            Some(typed) => typed,
            None => FieldValue::Text(tracing::field::display(value)),
        }
    }

    fn get(&self) -> Option<&dyn Value> {
        Some(match self {
            FieldValue::U64(v) => v,
            FieldValue::I64(v) => v,
            FieldValue::U128(v) => v,
            FieldValue::I128(v) => v,
            FieldValue::F64(v) => v,
            FieldValue::Bool(v) => v,
            FieldValue::Str(v) => v,
            FieldValue::Text(v) => v,
            FieldValue::Null => return None,
        })
    }
}

/// Finds the type of a value; `None` for one written as text.
struct Typed<'a, 'kvs>(Option<FieldValue<'a, 'kvs>>);

impl<'a, 'kvs> VisitValue<'kvs> for Typed<'a, 'kvs> {
    fn visit_any(&mut self, _: kv::Value<'_>) -> Result<(), kv::Error> {
        Ok(())
    }

    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::Null);
        Ok(())
    }

    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::U64(value));
        Ok(())
    }

    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::I64(value));
        Ok(())
    }

    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::U128(value));
        Ok(())
    }

    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::I128(value));
        Ok(())
    }

    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::F64(value));
        Ok(())
    }

    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::Bool(value));
        Ok(())
    }

    fn visit_str(&mut self, _: &str) -> Result<(), kv::Error> {
        // Not borrowed for the record's lifetime: written through `Display`, which gives the
        // same string.
        Ok(())
    }

    fn visit_borrowed_str(&mut self, value: &'kvs str) -> Result<(), kv::Error> {
        self.0 = Some(FieldValue::Str(value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use log::Log;
    use tracing_subscriber::prelude::*;

    use crate::test_support::MockMakeWriter;
    use crate::{Context, JsonLayer};

    fn record<'a>(
        args: fmt::Arguments<'a>,
        target: &'a str,
        kvs: &'a dyn Source,
    ) -> log::Record<'a> {
        log::Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target(target)
            .file_static(Some("src/orders.rs"))
            .line(Some(12))
            .key_values(kvs)
            .build()
    }

    fn lines(writer: &MockMakeWriter) -> Vec<serde_json::Value> {
        writer
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn key_values_become_fields_with_their_json_types() {
        let writer = MockMakeWriter::default();
        let layer = JsonLayer::new(writer.clone())
            .with_file(true)
            .with_line_number(true);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            Context::new().with_request_id("r1").in_scope(|| {
                let kvs = [
                    ("order_id", kv::Value::from(7u64)),
                    ("user", kv::Value::from("u1")),
                    ("ok", kv::Value::from(false)),
                    ("ratio", kv::Value::from(0.25f64)),
                    ("debug", kv::Value::from_debug(&[1, 2])),
                ];
                LogBridge::new().log(&record(format_args!("placed {}", 1), "shop::orders", &kvs));
            });
        });
        let lines = lines(&writer);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0],
            serde_json::json!({
                "timestamp": lines[0]["timestamp"],
                "level": "info",
                "message": "placed 1",
                "requestId": "r1",
                "target": "shop::orders",
                "file": "src/orders.rs",
                "line": 12,
                "order_id": 7,
                "user": "u1",
                "ok": false,
                "ratio": 0.25,
                "debug": "[1, 2]",
            })
        );
    }

    #[test]
    fn one_shape_one_callsite() {
        let a = [("shape_a", 1)];
        let b = [("shape_b", 1)];
        let shape = |kvs: &[(&str, i32)]| {
            let mut pairs = Pairs::new();
            let record = record(format_args!("x"), "shapes", &kvs);
            let _ = record.key_values().visit(&mut pairs);
            callsite_for(&record, &pairs).map(|c| c as *const KvCallsite)
        };
        let first = shape(&a).expect("a callsite");
        assert_eq!(shape(&a), Some(first), "the same shape, the same callsite");
        assert_ne!(shape(&b), Some(first), "another key, another callsite");
    }

    #[test]
    fn a_record_past_the_field_limit_keeps_its_key_values_as_text() {
        let writer = MockMakeWriter::default();
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(JsonLayer::new(writer.clone())),
            || {
                let kvs: Vec<(String, usize)> =
                    (0..=MAX_PAIRS).map(|i| (format!("k{i}"), i)).collect();
                LogBridge::new().log(&record(format_args!("many"), "t", &kvs));
            },
        );
        let lines = lines(&writer);
        assert_eq!(lines.len(), 1);
        let text: String = (0..=MAX_PAIRS).map(|i| format!(" k{i}={i}")).collect();
        assert_eq!(lines[0]["message"], format!("many{text}"));
        assert!(lines[0].get("k0").is_none());
    }

    #[test]
    fn records_the_subscriber_does_not_want_are_not_sent() {
        let writer = MockMakeWriter::default();
        let filter =
            tracing_subscriber::filter::Targets::new().with_target("wanted", tracing::Level::INFO);
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(JsonLayer::new(writer.clone()).with_filter(filter)),
            || {
                let kvs = [("k", 1)];
                let bridge = LogBridge::new();
                bridge.log(&record(format_args!("dropped"), "unwanted", &kvs));
                bridge.log(&record(format_args!("kept"), "wanted", &kvs));
            },
        );
        let lines = lines(&writer);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (&lines[0]["message"], &lines[0]["k"]),
            (&"kept".into(), &1.into())
        );
    }
}
