//! The access line's callsites, whose field names are the keys a [`Schema`] gives.
//!
//! `tracing` takes field names from a callsite's static metadata, which its macros write at
//! compile time. The access line's keys come from a [`Schema`] chosen at run time, so its
//! callsites are made at run time: once per distinct set of keys in the process (a schema's
//! keys are `&'static str`, so the set is small and fixed), leaked, and registered with
//! `tracing` like a macro's. Every output layer (the crate's, `fmt`, OpenTelemetry) then sees
//! the schema's names as ordinary field names, and filters see target `access` and the level.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_core::callsite::{self, Callsite, Identifier};
use tracing_core::field::{Field, FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::Event;

use crate::schema::{AccessKeys, DurationFormat, Schema, SecondsString, ACCESS_NAME};

/// The target of the access line.
pub(crate) const TARGET: &str = crate::schema::ACCESS_TARGET;

/// The number of fields: the message, then [`AccessKeys::names`], then the route.
const FIELDS: usize = 13;

/// One level's callsite of the access line.
struct AccessCallsite {
    // Set once, right after the callsite is leaked (its metadata names its own address).
    meta: OnceLock<Metadata<'static>>,
    // Its fields, in order, looked up once rather than on every line.
    fields: OnceLock<[Field; FIELDS]>,
    // The interest `tracing` computed for it: never, sometimes, always, or unknown.
    interest: AtomicU8,
}

const NEVER: u8 = 0;
const SOMETIMES: u8 = 1;
const ALWAYS: u8 = 2;

impl Callsite for AccessCallsite {
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
            .expect("the metadata is set before the callsite is registered; this is a bug")
    }
}

/// The access line's callsites for one set of keys: one per level it is written at.
#[derive(Clone, Copy)]
pub(crate) struct AccessCallsites {
    info: &'static AccessCallsite,
    warn: &'static AccessCallsite,
    error: &'static AccessCallsite,
    // `DefaultOnAccess`'s levels per status class may name any level.
    trace: &'static AccessCallsite,
    debug: &'static AccessCallsite,
    latency_format: DurationFormat,
}

/// The values of one access line, in the order of [`AccessKeys::names`]; `None` leaves the
/// key out.
pub(crate) struct AccessValues<'a> {
    pub(crate) message: &'a str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) status: Option<u64>,
    pub(crate) latency: Duration,
    pub(crate) size: Option<u64>,
    pub(crate) outcome: &'a str,
    pub(crate) error: Option<&'a str>,
    pub(crate) grpc_status: Option<u64>,
    pub(crate) grpc_code: Option<&'a str>,
    pub(crate) grpc_message: Option<&'a str>,
    pub(crate) route: Option<&'a str>,
}

impl AccessCallsites {
    /// Returns the callsites for `keys`, made and registered the first time these keys are
    /// asked for.
    pub(crate) fn for_keys(keys: AccessKeys) -> Self {
        static MADE: Mutex<Vec<(AccessKeys, AccessCallsites)>> = Mutex::new(Vec::new());
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, callsites)) = made.iter().find(|(k, _)| *k == keys) {
            return *callsites;
        }
        // Leaked once per distinct set of keys, as a macro's statics are never freed.
        let names: &'static [&'static str] = Box::leak(Box::new({
            let mut names = ["message"; FIELDS];
            names[1..FIELDS - 1].copy_from_slice(&keys.names());
            names[FIELDS - 1] = keys.route;
            names
        }));
        let callsites = AccessCallsites {
            info: make(Level::INFO, names),
            warn: make(Level::WARN, names),
            error: make(Level::ERROR, names),
            trace: make(Level::TRACE, names),
            debug: make(Level::DEBUG, names),
            latency_format: keys.latency_format,
        };
        made.push((keys, callsites));
        callsites
    }

    /// Returns the callsites of the schema [`init`](crate::init) installed, or of
    /// [`Schema::DEFAULT`] when it was not called: what `DefaultOnAccess` writes when given no
    /// schema. Two loads once made, so it is cheap enough for every request.
    pub(crate) fn for_process() -> Self {
        static INIT: OnceLock<AccessCallsites> = OnceLock::new();
        static DEFAULT: OnceLock<AccessCallsites> = OnceLock::new();
        match crate::schema::process_schema() {
            Some(schema) => *INIT.get_or_init(|| Self::for_keys(schema.access)),
            None => *DEFAULT.get_or_init(|| Self::for_keys(Schema::DEFAULT.access)),
        }
    }

    /// Writes the access line at `level`, if anything wants it.
    pub(crate) fn emit(&self, level: Level, values: &AccessValues<'_>) {
        let callsite = match level {
            Level::ERROR => self.error,
            Level::WARN => self.warn,
            Level::INFO => self.info,
            Level::DEBUG => self.debug,
            _ => self.trace,
        };
        let meta: &'static Metadata<'static> = callsite
            .meta
            .get()
            .expect("the metadata is set before the callsite is registered; this is a bug");
        // What the macros check, in the same order.
        if *meta.level() > LevelFilter::current() {
            return;
        }
        let interest = callsite.interest.load(Ordering::Relaxed);
        if interest == NEVER {
            return;
        }
        if interest != ALWAYS && !tracing::dispatcher::get_default(|d| d.enabled(meta)) {
            return;
        }
        let field = callsite
            .fields
            .get()
            .expect("the fields are set before the callsite is registered; this is a bug");
        // The latency in the schema's form; each form is made on the stack.
        let d = values.latency;
        let (ms, secs, nanos, text);
        let latency: &dyn Value = match self.latency_format {
            DurationFormat::Seconds => {
                secs = d.as_secs_f64();
                &secs
            }
            DurationFormat::Nanoseconds => {
                nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                &nanos
            }
            DurationFormat::SecondsString => {
                text = tracing::field::display(SecondsString(d));
                &text
            }
            // Microseconds, as the timestamp has them.
            _ => {
                ms = (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
                &ms
            }
        };
        // In the order of the callsite's names: the message, `AccessKeys::names`, the route.
        let value: [Option<&dyn Value>; FIELDS] = [
            Some(&values.message),
            Some(&values.method),
            Some(&values.path),
            values.query.as_ref().map(|v| v as &dyn Value),
            values.status.as_ref().map(|v| v as &dyn Value),
            Some(latency),
            values.size.as_ref().map(|v| v as &dyn Value),
            Some(&values.outcome),
            values.error.as_ref().map(|v| v as &dyn Value),
            values.grpc_status.as_ref().map(|v| v as &dyn Value),
            values.grpc_code.as_ref().map(|v| v as &dyn Value),
            values.grpc_message.as_ref().map(|v| v as &dyn Value),
            values.route.as_ref().map(|v| v as &dyn Value),
        ];
        let value_set: [(&Field, Option<&dyn Value>); FIELDS] =
            std::array::from_fn(|i| (&field[i], value[i]));
        Event::dispatch(meta, &meta.fields().value_set(&value_set));
    }
}

/// Leaks and registers one callsite.
fn make(level: Level, names: &'static [&'static str]) -> &'static AccessCallsite {
    let callsite: &'static AccessCallsite = Box::leak(Box::new(AccessCallsite {
        meta: OnceLock::new(),
        fields: OnceLock::new(),
        interest: AtomicU8::new(u8::MAX),
    }));
    let meta = Metadata::new(
        ACCESS_NAME,
        TARGET,
        level,
        Some(file!()),
        Some(line!()),
        Some(module_path!()),
        FieldSet::new(names, Identifier(callsite)),
        Kind::EVENT,
    );
    let mut names = meta.fields().iter();
    let fields: [Field; FIELDS] = std::array::from_fn(|_| {
        names
            .next()
            .expect("the callsite has FIELDS fields; this is a bug")
    });
    // Only this function sets them, once, on a callsite nobody else has seen yet.
    let _ = callsite.fields.set(fields);
    let _ = callsite.meta.set(meta);
    callsite::register(callsite);
    callsite
}

impl fmt::Debug for AccessCallsites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessCallsites")
            .field("fields", &self.info.metadata().fields())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Emitting through these callsites under a filter is tested in
    // `tests/http_access_filter.rs`, in a process of its own: their cached interest is
    // global, and the scoped subscribers of the tests running alongside race with it.

    #[test]
    fn the_same_keys_share_their_callsites() {
        let a = AccessCallsites::for_keys(AccessKeys::DEFAULT);
        let b = AccessCallsites::for_keys(AccessKeys::DEFAULT);
        assert!(std::ptr::eq(a.info, b.info));
        let other = AccessKeys {
            latency: "latency_ms",
            ..AccessKeys::DEFAULT
        };
        let c = AccessCallsites::for_keys(other);
        assert!(!std::ptr::eq(a.info, c.info));
        assert_eq!(
            c.info
                .metadata()
                .fields()
                .field("latency_ms")
                .map(|f| f.to_string()),
            Some("latency_ms".to_owned())
        );
    }
}
