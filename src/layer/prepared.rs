//! Key preparation: everything the event path of a [`JsonLayer`](super::JsonLayer) reads,
//! worked out once when the layer is built (its keys escaped, made unique and hashed, the
//! static fields serialized, the level values quoted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use super::ids::IdForm;
use super::reserved::Reserved;
use super::reserved::{is_rename_root, ROOT_SUFFIX};
use crate::context::Value;
use crate::json;
use crate::schema::Schema;

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
    /// Alive as long as this `Prepared`: the callsite tables hold it weakly, to prune the
    /// entries of dropped layers (`callsite.rs`).
    alive: Arc<()>,
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
    /// Field and context key names whose values are not written, as given and in snake case.
    pub(crate) redact: Vec<Box<str>>,
}

impl Prepared {
    /// A handle that says whether this `Prepared` (its layer) is still alive.
    pub(crate) fn liveness(&self) -> Weak<()> {
        Arc::downgrade(&self.alive)
    }

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
    pub(crate) fn new(
        settings: Settings,
        statics: &[(Box<str>, Value)],
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
            if is_rename_root(name.as_bytes()) {
                name.push_str(ROOT_SUFFIX);
                key = json::Key::new(&name);
            }
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
            alive: Arc::new(()),
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
            redact,
        }
    }
}
