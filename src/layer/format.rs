//! Writing one event as one line, a function per group of keys: the core keys (timestamp,
//! level, message), the context, the layer's own keys (target, file, line, thread, span,
//! static fields), then the event's fields.

use std::error::Error;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};

use super::callsite::{CallsiteInfo, FieldInfo};
use super::ids::{Id, IdForm};
use super::line::{bloom_bits, bloom_has, for_each_dotted_prefix, Line};
use super::Prepared;
use crate::context::{Entries, Known, Slot};
use crate::json::{self, hash_key, Key};
use crate::otel::SpanIds;
use crate::schema::{KeyCase, ACCESS_NAME, ACCESS_TARGET};

/// The prefix of a context key that loses to a core key.
const CONTEXT_RENAME: &str = "context.";
/// The prefix of an event field that loses to a core or context key.
const FIELD_RENAME: &str = "fields.";
/// Written in place of a value whose `Debug`, `Display` or `Error` impl panicked.
const PANICKED: &str = "<panicked while formatting>";
/// How many causes of an error are written at most (a `source()` chain can be a cycle).
const MAX_SOURCES: usize = 32;
/// Written in place of a redacted value.
const REDACTED: &[u8] = b"\"[REDACTED]\"";

/// Keys no context key or event field may take: the core keys and the layer's own keys, and
/// their dotted prefixes (`log` when the schema writes `log.level`).
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    bloom: u64,
    keys: Vec<Key>,
    prefix_bloom: u64,
    prefixes: Vec<(u64, Box<[u8]>)>,
}

impl Reserved {
    pub(crate) fn insert(&mut self, key: Key) {
        self.bloom |= bloom_bits(key.hash());
        for_each_dotted_prefix(key.escaped(), |hash, len| {
            self.prefix_bloom |= bloom_bits(hash);
            self.prefixes.push((hash, key.escaped()[..len].into()));
        });
        self.keys.push(key);
    }

    /// Returns `true` if a key with these [`bloom_bits`] may be reserved or the dotted prefix
    /// of a reserved key: `false` proves it is neither.
    #[inline]
    fn may_conflict(&self, bits: u64) -> bool {
        bloom_has(self.bloom, bits) || bloom_has(self.prefix_bloom, bits)
    }

    /// Returns `true` if `key` is reserved, the dotted prefix of a reserved key, or has a
    /// reserved key as its dotted prefix.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.conflicts(key.hash(), key.escaped())
    }

    #[inline]
    fn contains_escaped(&self, hash: u64, escaped: &[u8]) -> bool {
        bloom_has(self.bloom, bloom_bits(hash))
            && self
                .keys
                .iter()
                .any(|k| k.hash() == hash && k.escaped() == escaped)
    }

    #[inline]
    fn is_prefix(&self, hash: u64, escaped: &[u8]) -> bool {
        bloom_has(self.prefix_bloom, bloom_bits(hash))
            && self
                .prefixes
                .iter()
                .any(|(h, p)| *h == hash && **p == *escaped)
    }

    fn conflicts(&self, hash: u64, escaped: &[u8]) -> bool {
        let mut taken = self.contains_escaped(hash, escaped) || self.is_prefix(hash, escaped);
        for_each_dotted_prefix(escaped, |hash, len| {
            taken = taken || self.contains_escaped(hash, &escaped[..len]);
        });
        taken
    }
}

/// How much of an event a line over the size cap keeps, pass after pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cap {
    /// String values (the message, event fields, errors) are cut to this many bytes.
    max_str: usize,
    /// Past this line length no further event field is written.
    field_budget: usize,
}

impl Cap {
    /// The first pass: everything whole.
    pub(crate) const NONE: Cap = Cap {
        max_str: usize::MAX,
        field_budget: usize::MAX,
    };

    /// The next, tighter pass for a line that came out longer than `max_line` bytes; `None`
    /// after the last. String values get a quarter of the line, then a thirty-second, then
    /// 64 bytes with no fields past the budget.
    pub(crate) fn tighter(self, max_line: usize) -> Option<Cap> {
        let last = Cap {
            max_str: 64,
            field_budget: max_line.saturating_sub(512),
        };
        let next = match self.max_str {
            usize::MAX => max_line / 4,
            n if n == max_line / 4 => max_line / 32,
            _ if self.field_budget == usize::MAX => return Some(last),
            _ => return None,
        };
        Some(if next <= last.max_str {
            last
        } else {
            Cap {
                max_str: next,
                ..self
            }
        })
    }
}

/// Builds one line in a [`Line`] buffer.
pub(crate) struct LineWriter<'a> {
    line: &'a mut Line,
    prepared: &'a Prepared,
    cap: Cap,
    /// Whether a value was cut or a field left out to keep the line under the cap.
    cut: bool,
    /// Trace and span ids that replace the context's (see [`Self::set_span_ids`]).
    span_ids: Option<SpanIds>,
    /// What is known of the event's callsite beforehand (see [`Self::set_callsite`]).
    callsite: Option<&'a CallsiteInfo>,
    /// Whether the event comes from the `log` crate.
    from_log: bool,
    /// The well-known context keys on the line (bit `Known as usize`) that are not in the
    /// line's key set, see [`Self::known_key`].
    known_on_line: u8,
    /// Likewise the event's fields written by the fast path (bit = field index, below 64).
    fast_on_line: u64,
    /// Where the message goes: it is kept aside while the fields are walked, and put right
    /// after the level by [`Self::finish`].
    message_at: usize,
    /// When the line's context was made, for the elapsed key.
    created: Option<std::time::Instant>,
}

impl<'a> LineWriter<'a> {
    pub(crate) fn new(line: &'a mut Line, prepared: &'a Prepared, cap: Cap) -> Self {
        LineWriter {
            line,
            prepared,
            cap,
            cut: false,
            span_ids: None,
            callsite: None,
            from_log: false,
            known_on_line: 0,
            fast_on_line: 0,
            message_at: 0,
            created: None,
        }
    }

    /// Sets what is known of the event's callsite (its keys escaped, which of them can take
    /// the fast path) and whether the event comes from the `log` crate, whose `log.` fields
    /// are written as target, file and line instead.
    pub(crate) fn set_callsite(&mut self, callsite: &'a CallsiteInfo, from_log: bool) {
        self.callsite = Some(callsite);
        self.from_log = from_log;
    }

    /// Sets the trace and span ids of the OpenTelemetry span the event is in, which replace
    /// the context's. [`Self::context`] writes them in the context's place; on a line without
    /// a context, [`Self::layer_keys`] writes them first, which is the same place.
    pub(crate) fn set_span_ids(&mut self, ids: Option<SpanIds>) {
        self.span_ids = ids;
    }

    /// Opens the line: `{"timestamp":…,"level":…` (and the level's number when the schema
    /// writes one). The message, which follows, is found by
    /// the one walk over the event's fields in [`Self::fields`] and put here by
    /// [`Self::finish`].
    pub(crate) fn core(&mut self, now: std::time::SystemTime, level: &Level) {
        let keys = &self.prepared.keys;
        self.line.bytes.push(b'{');
        self.line.bytes.extend_from_slice(keys.timestamp.fragment());
        self.line.write_timestamp(now);
        self.line.bytes.push(b',');
        self.line.bytes.extend_from_slice(keys.level.fragment());
        let index = level_index(level);
        self.line
            .bytes
            .extend_from_slice(&self.prepared.levels[index]);
        if let Some(number) = &keys.level_number {
            self.line.bytes.push(b',');
            self.line.bytes.extend_from_slice(number.fragment());
            let numbers = self.prepared.settings.schema.level_numbers;
            json::write_u64(&mut self.line.bytes, numbers[index].into());
        }
        self.message_at = self.line.bytes.len();
    }

    /// Writes the context's entries: the well-known keys, then the extra keys.
    pub(crate) fn context(&mut self, entries: &Entries) {
        let prepared = self.prepared;
        let schema = &prepared.settings.schema;
        let span_ids = self.span_ids.take();
        self.created = Some(entries.created);
        for known in [Known::RequestId, Known::UserId] {
            if let Some(slot) = &entries.known[known as usize] {
                self.known_key(known);
                self.context_value(known.snake_name(), slot.json());
            }
        }
        self.ids(Some(entries), span_ids);
        for extra in &entries.extras {
            let (key, name) = match schema.extra_keys {
                KeyCase::Camel => (&extra.camel_key, &*extra.camel),
                KeyCase::Snake => (&extra.snake_key, &*extra.snake),
            };
            self.prepared_key(key, name);
            self.context_value(&extra.snake, extra.slot.json());
        }
    }

    /// Writes the trace keys, as context keys: the trace id and span id (those of `span_ids`,
    /// the innermost OpenTelemetry span's, when there are some, else the context's) in the
    /// schema's forms, the trace flags and the sampled flag when the line has a trace id, and
    /// the transaction id (the context's own span id).
    fn ids(&mut self, entries: Option<&Entries>, span_ids: Option<SpanIds>) {
        let prepared = self.prepared;
        let schema = prepared.settings.schema;
        let slot = |known: Known| {
            entries
                .and_then(|e| e.known[known as usize].as_ref())
                .map(Slot::json)
        };
        let (trace, span) = match span_ids {
            Some(ids) => (Some(Id::Trace(ids)), Some(Id::Span(ids))),
            None => (
                slot(Known::TraceId).map(Id::Json),
                slot(Known::SpanId).map(Id::Json),
            ),
        };
        if let Some(id) = trace {
            self.id(Known::TraceId, &prepared.trace_form, id);
        }
        if let Some(id) = span {
            self.id(Known::SpanId, &prepared.span_form, id);
        }
        // Only a schema with trace flags or a sampled key asks whether the trace is sampled.
        if trace.is_some() && (schema.trace_flags.is_some() || schema.trace_sampled.is_some()) {
            let sampled = match span_ids {
                Some(ids) => ids.is_sampled(),
                None => entries.is_none_or(crate::trace_context::sampled_in),
            };
            if let (Some(key), Some(name)) = (&prepared.id_keys.flags, schema.trace_flags) {
                self.prepared_key(key, name);
                let flags: &[u8] = if sampled { b"\"01\"" } else { b"\"00\"" };
                self.line.bytes.extend_from_slice(flags);
            }
            if let (Some(key), Some(name)) = (&prepared.id_keys.sampled, schema.trace_sampled) {
                self.prepared_key(key, name);
                json::write_bool(&mut self.line.bytes, sampled);
            }
        }
        if let (Some(key), Some(name), Some(own)) = (
            &prepared.id_keys.transaction,
            schema.transaction_id,
            slot(Known::SpanId),
        ) {
            self.prepared_key(key, name);
            if prepared.redacts(Known::SpanId.snake_name()) {
                self.line.bytes.extend_from_slice(REDACTED);
            } else {
                prepared
                    .span_form
                    .write(&mut self.line.bytes, Id::Json(own));
            }
        }
    }

    /// Writes the trace id or span id `id` under the schema's key, in `form`, as a context key.
    fn id(&mut self, known: Known, form: &IdForm, id: Id<'_>) {
        let prepared = self.prepared;
        self.known_key(known);
        if prepared.redacts(known.snake_name()) {
            self.line.bytes.extend_from_slice(REDACTED);
        } else {
            form.write(&mut self.line.bytes, id);
        }
    }

    /// Writes a context value, or `"[REDACTED]"` for a redacted key.
    #[inline]
    fn context_value(&mut self, snake_name: &str, json: &[u8]) {
        let value = if self.prepared.redacts(snake_name) {
            REDACTED
        } else {
            json
        };
        self.line.bytes.extend_from_slice(value);
    }

    /// Writes the layer's own keys: target, file, line, thread name, span name, static fields.
    /// These are reserved, so no earlier key can have taken them.
    pub(crate) fn layer_keys(&mut self, meta: &Metadata<'_>, span_name: Option<&str>) {
        // Span ids not written with a context (the line has none) go here, where it would be.
        if let Some(ids) = self.span_ids.take() {
            self.ids(None, Some(ids));
        }
        let settings = &self.prepared.settings;
        let keys = &self.prepared.keys;
        let out = &mut self.line.bytes;
        /// Writes `,"key":` and hands the buffer on for the value.
        fn key<'o>(out: &'o mut Vec<u8>, key: &Key) -> &'o mut Vec<u8> {
            out.push(b',');
            out.extend_from_slice(key.fragment());
            out
        }
        if let (true, Some(created)) = (settings.elapsed, self.created) {
            // Milliseconds to the microsecond, as the access line's latency.
            let ms = (created.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
            json::write_f64(key(out, &keys.elapsed), ms);
        }
        match (settings.target, self.callsite) {
            (
                true,
                Some(CallsiteInfo {
                    target: Some(target),
                    ..
                }),
            ) if !self.from_log => out.extend_from_slice(target),
            (true, _) => json::write_str(key(out, &keys.target), meta.target()),
            (false, _) => {}
        }
        let file = meta.file().filter(|_| settings.file);
        let line = meta.line().filter(|_| settings.line_number);
        match &keys.source_location {
            None => {
                if let Some(file) = file {
                    json::write_str(key(out, &keys.file), file);
                }
                if let Some(line) = line {
                    json::write_u64(key(out, &keys.line), line.into());
                }
            }
            // File and line inside one object, whose keys cannot clash with the line's.
            Some(object) if file.is_some() || line.is_some() => {
                key(out, object).push(b'{');
                if let Some(file) = file {
                    out.extend_from_slice(keys.file.fragment());
                    json::write_str(out, file);
                }
                if let Some(line) = line {
                    if file.is_some() {
                        out.push(b',');
                    }
                    out.extend_from_slice(keys.line.fragment());
                    json::write_u64(out, line.into());
                }
                out.push(b'}');
            }
            Some(_) => {}
        }
        if settings.thread_name {
            if let Some(name) = std::thread::current().name() {
                json::write_str(key(out, &keys.thread_name), name);
            }
        }
        if let Some(name) = span_name {
            json::write_str(key(out, &keys.span_name), name);
        }
        out.extend_from_slice(&self.prepared.static_json);
    }

    /// Writes the event's fields, in one walk over them: the first field named `message` is
    /// the message, kept aside for [`Self::finish`] to put after the level; every other
    /// field goes on the line, each value in its JSON type. Past the cap's field budget no
    /// further field is written.
    ///
    /// On the access line, with a schema that nests its keys in an object (Google Cloud's
    /// `httpRequest`), the fields named like the schema's members go into that object, after
    /// the others: a second walk over the fields, so nothing is buffered.
    pub(crate) fn fields(&mut self, event: &Event<'_>) {
        let access = self.prepared.settings.schema.access;
        let meta = event.metadata();
        let object = access
            .object
            .filter(|_| meta.target() == ACCESS_TARGET && meta.name() == ACCESS_NAME);
        let Some(object) = object else {
            event.record(&mut Walk {
                writer: self,
                message: false,
                pass: Pass::All,
            });
            return;
        };
        let members = access.members();
        event.record(&mut Walk {
            writer: self,
            message: false,
            pass: Pass::Outside(members),
        });
        let mut inside = Walk {
            writer: self,
            // The message was found by the first walk.
            message: true,
            pass: Pass::Inside(Nest {
                object,
                members,
                opened: false,
                written: [""; 5],
                count: 0,
            }),
        };
        event.record(&mut inside);
        if let Pass::Inside(Nest { opened: true, .. }) = inside.pass {
            self.line.bytes.push(b'}');
        }
    }

    /// Closes the line, saying so under the schema's `truncated` key when the cap cut it, and
    /// puts the message in its place after the level.
    pub(crate) fn finish(&mut self) {
        if self.cut {
            self.line.bytes.push(b',');
            self.line
                .bytes
                .extend_from_slice(self.prepared.keys.truncated.fragment());
            self.line.bytes.extend_from_slice(b"true");
        }
        self.line.bytes.extend_from_slice(b"}\n");
        let line = &mut *self.line;
        if !line.message.is_empty() {
            // One move of the rest of the line; the key set is no longer read.
            let (at, end) = (self.message_at, line.bytes.len());
            line.bytes.extend_from_slice(&line.message);
            line.bytes.copy_within(at..end, at + line.message.len());
            line.bytes[at..at + line.message.len()].copy_from_slice(&line.message);
        }
    }

    /// Writes `,"key":` for a well-known context key. One that can never conflict with a
    /// reserved key or another well-known key is only checked against the line's filter, and
    /// kept in a bit of [`Self::known_on_line`] rather than in the line's key set; others go
    /// the way of [`Self::prepared_key`].
    #[inline]
    fn known_key(&mut self, known: Known) {
        let i = known as usize;
        let key = &self.prepared.known_keys[i];
        let bits = bloom_bits(key.hash());
        if self.prepared.known_fast[i]
            && self.known_on_line & (1 << i) == 0
            && !self.line.keys.may_conflict(bits)
        {
            self.line.bytes.push(b',');
            self.line.bytes.extend_from_slice(key.fragment());
            self.line.keys.add_bits(bits);
            self.known_on_line |= 1 << i;
            return;
        }
        let schema = &self.prepared.settings.schema;
        let name = match known {
            Known::RequestId => schema.request_id,
            Known::UserId => schema.user_id,
            Known::TraceId => schema.trace_id,
            Known::SpanId => schema.span_id,
        };
        self.prepared_key(key, name);
    }

    /// Returns `true` if `escaped` is one of the well-known keys kept in
    /// [`Self::known_on_line`].
    fn known_on_line(&self, hash: u64, escaped: &[u8]) -> bool {
        let mut on_line = self.known_on_line;
        while on_line != 0 {
            let key = &self.prepared.known_keys[on_line.trailing_zeros() as usize];
            if key.hash() == hash && key.escaped() == escaped {
                return true;
            }
            on_line &= on_line - 1;
        }
        false
    }

    /// Writes `,"key":` for a context key escaped and hashed beforehand; a key already on the
    /// line goes the slow way of [`Self::key`] and is renamed.
    #[inline]
    fn prepared_key(&mut self, key: &Key, name: &str) {
        if self.taken(key.hash(), key.escaped(), key.dotted()) {
            self.key(name, "", CONTEXT_RENAME);
            return;
        }
        self.line.bytes.push(b',');
        let start = self.line.bytes.len() + 1;
        self.line.bytes.extend_from_slice(key.fragment());
        let line = &mut *self.line;
        let end = start + key.escaped().len();
        line.keys
            .insert_known(&line.bytes, key.hash(), start, end, key.dotted());
    }

    /// Returns `true` if the escaped key cannot go on the line: it is reserved or already
    /// there, or it is the dotted prefix of such a key, or such a key is its dotted prefix
    /// (Elasticsearch expands `a.b` into an object under `a`, so `a` and `a.b` on one line
    /// lose the document).
    /// Returns `true` if `escaped` is one of the event's fields kept in
    /// [`Self::fast_on_line`].
    fn fast_on_line(&self, hash: u64, escaped: &[u8]) -> bool {
        let (mut on_line, Some(callsite)) = (self.fast_on_line, self.callsite) else {
            return false;
        };
        while on_line != 0 {
            let i = on_line.trailing_zeros() as usize;
            if let Some(field) = callsite.fields.get(i) {
                let key = &field.fragment[2..field.fragment.len() - 2];
                if field.hash == hash && key == escaped {
                    return true;
                }
            }
            on_line &= on_line - 1;
        }
        false
    }

    #[inline]
    fn taken(&self, hash: u64, escaped: &[u8], dotted: bool) -> bool {
        let (reserved, line) = (&self.prepared.reserved, &*self.line);
        // Most keys: no dot, and the filters prove they are neither reserved nor on the line.
        let bits = bloom_bits(hash);
        if !dotted && !reserved.may_conflict(bits) && !line.keys.may_conflict(bits) {
            return false;
        }
        // The well-known keys and fields kept outside the key set have no dot: they can equal
        // `escaped` or one of its dotted prefixes, but not have it as their prefix.
        if reserved.contains_escaped(hash, escaped)
            || reserved.is_prefix(hash, escaped)
            || line.keys.contains(&line.bytes, hash, escaped)
            || line.keys.is_prefix(&line.bytes, hash, escaped)
            || self.known_on_line(hash, escaped)
            || self.fast_on_line(hash, escaped)
        {
            return true;
        }
        let mut taken = false;
        for_each_dotted_prefix(escaped, |hash, len| {
            let prefix = &escaped[..len];
            taken = taken
                || reserved.contains_escaped(hash, prefix)
                || line.keys.contains(&line.bytes, hash, prefix)
                || self.known_on_line(hash, prefix)
                || self.fast_on_line(hash, prefix);
        });
        taken
    }

    /// Writes `,"key":`, renamed with `rename` as many times as it takes to be unique on the
    /// line. The key is `head` followed by `tail`, so `errorSources` needs no `String`.
    fn key(&mut self, head: &str, tail: &str, rename: &str) {
        self.line.bytes.push(b',');
        let mut renames = 0;
        loop {
            let quote = self.line.bytes.len();
            self.line.bytes.push(b'"');
            for _ in 0..renames {
                json::escape_into(&mut self.line.bytes, rename);
            }
            json::escape_into(&mut self.line.bytes, head);
            if !tail.is_empty() {
                json::escape_into(&mut self.line.bytes, tail);
            }
            let (start, end) = (quote + 1, self.line.bytes.len());
            let hash = hash_key(&self.line.bytes[start..end]);
            let dotted = self.line.bytes[start..end].contains(&b'.');
            if !self.taken(hash, &self.line.bytes[start..end], dotted) {
                self.line.keys.insert(&self.line.bytes, hash, start, end);
                self.line.bytes.extend_from_slice(b"\":");
                return;
            }
            self.line.bytes.truncate(quote);
            renames += 1;
        }
    }
}

/// Writes the output of a `Debug` or `Display` impl as a string, cut to `max` bytes. An impl
/// that panics is replaced by a marker, so the rest of the line is kept. Returns `true` if
/// the value was cut.
fn user_fmt(out: &mut Vec<u8>, args: fmt::Arguments<'_>, max: usize) -> bool {
    let start = out.len();
    match catch_unwind(AssertUnwindSafe(|| {
        json::write_fmt_str_capped(out, args, max)
    })) {
        Ok(cut) => cut,
        Err(_) => {
            out.truncate(start);
            json::write_str(out, PANICKED);
            false
        }
    }
}

/// The index of a level in a schema's level values: TRACE, DEBUG, INFO, WARN, ERROR.
pub(crate) fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// Where a field's value goes.
enum Dest {
    /// On the line, as the message.
    Message,
    /// Into the field buffer, after its key.
    Field,
    /// Nowhere: the field is skipped, or redacted (and `"[REDACTED]"` already written).
    None,
}

/// The one walk over an event's fields: the first field named `message` goes aside, as a
/// string whatever its type, to be put after the level; every other field goes on the line,
/// each value in its JSON type.
struct Walk<'w, 'a> {
    writer: &'w mut LineWriter<'a>,
    /// Whether the message is written.
    message: bool,
    pass: Pass,
}
/// Which fields a pass over the event writes.
enum Pass {
    /// All of them.
    All,
    /// All but the fields named like these (the members of the access line's object).
    Outside([&'static str; 5]),
    /// Only the members, inside the object.
    Inside(Nest),
}

/// The access line's object being written.
struct Nest {
    object: &'static str,
    members: [&'static str; 5],
    opened: bool,
    /// The names written inside so far: a schema that names two members alike gets the
    /// second renamed, as on the line.
    written: [&'static str; 5],
    count: usize,
}

impl Walk<'_, '_> {
    /// Decides where `field` goes and writes its key. A redacted field gets its value here
    /// too, so its `Debug` or `Display` impl never runs. Fields of events from the `log` crate
    /// (`log.target`, `log.file`, …) are skipped: they are written as target, file and line.
    #[inline]
    fn dest(&mut self, field: &Field) -> Dest {
        let w = &mut *self.writer;
        let index = field.index();
        let info = w.callsite.and_then(|c| c.fields.get(index));
        // Most fields: checked against the callsite's other keys and the reserved ones
        // beforehand, only the line's own keys are left, which its filter rules out.
        let all = matches!(self.pass, Pass::All);
        if let Some(info) = info.filter(|info| all && info.plain && index < 64) {
            if w.line.bytes.len() + w.line.message.len() <= w.cap.field_budget
                && !w.line.keys.may_conflict(info.bits)
            {
                w.line.bytes.extend_from_slice(&info.fragment);
                w.line.keys.add_bits(info.bits);
                w.fast_on_line |= 1 << index;
                return Dest::Field;
            }
        }
        self.dest_slow(field, info)
    }

    /// [`Self::dest`] for the message, skipped and redacted fields, keys that may collide,
    /// and callsites not seen beforehand.
    #[cold]
    fn dest_slow(&mut self, field: &Field, info: Option<&FieldInfo>) -> Dest {
        let w = &mut *self.writer;
        let name = field.name();
        let (message, log, redacted) = match info {
            Some(info) => (info.message, info.log, info.redacted),
            None => (
                name == "message",
                name.starts_with("log."),
                w.prepared.redacts(name),
            ),
        };
        let member = match &self.pass {
            Pass::All => false,
            Pass::Outside(members) | Pass::Inside(Nest { members, .. }) => members.contains(&name),
        };
        if member != matches!(self.pass, Pass::Inside(_)) {
            return Dest::None;
        }
        if message && !self.message {
            self.message = true;
            w.line
                .message
                .extend_from_slice(&w.prepared.message_fragment);
            return Dest::Message;
        }
        if log && w.from_log {
            return Dest::None;
        }
        if w.line.bytes.len() + w.line.message.len() > w.cap.field_budget {
            w.cut = true;
            return Dest::None;
        }
        if let Pass::Inside(nest) = &mut self.pass {
            nest.key(w, name);
        } else {
            // A schema with error keys writes the field of that name under the message key,
            // whatever its value, so the key keeps one type.
            let key = match w.prepared.settings.schema.error {
                Some(keys) if keys.field == name => keys.message,
                _ => name,
            };
            w.key(key, "", FIELD_RENAME);
        }
        if redacted {
            w.line.bytes.extend_from_slice(REDACTED);
            return Dest::None;
        }
        Dest::Field
    }

    /// Writes a value whose JSON type is not a string: as the message, its `Debug` output.
    #[inline]
    fn typed(&mut self, field: &Field, value: &dyn fmt::Debug, write: impl FnOnce(&mut Vec<u8>)) {
        match self.dest(field) {
            Dest::Message => self.message_fmt(format_args!("{value:?}")),
            Dest::Field => write(&mut self.writer.line.bytes),
            Dest::None => {}
        }
    }

    fn message_fmt(&mut self, args: fmt::Arguments<'_>) {
        let w = &mut *self.writer;
        w.cut |= user_fmt(&mut w.line.message, args, w.cap.max_str);
    }

    /// Writes the causes of an error as an array of strings under `<field>Sources`.
    fn sources(&mut self, field: &Field, first: Result<&(dyn Error + 'static), ()>) {
        let tail = match self.writer.prepared.settings.schema.extra_keys {
            KeyCase::Camel => "Sources",
            KeyCase::Snake => "_sources",
        };
        self.writer.key(field.name(), tail, FIELD_RENAME);
        let (max_str, mut cut) = (self.writer.cap.max_str, false);
        let out = &mut self.writer.line.bytes;
        out.push(b'[');
        let mut next = first;
        // A cycle of sources would never end; causes past this depth are not written.
        for depth in 0..MAX_SOURCES {
            if depth > 0 {
                out.push(b',');
            }
            let Ok(err) = next else {
                json::write_str(out, PANICKED);
                break;
            };
            let start = out.len();
            let written = catch_unwind(AssertUnwindSafe(|| {
                json::write_fmt_str_capped(out, format_args!("{err}"), max_str)
            }));
            match written {
                Ok(was_cut) => cut |= was_cut,
                Err(_) => {
                    out.truncate(start);
                    json::write_str(out, PANICKED);
                    break;
                }
            }
            next = match catch_unwind(AssertUnwindSafe(|| err.source())) {
                Ok(None) => break,
                Ok(Some(cause)) => Ok(cause),
                Err(_) => Err(()),
            };
        }
        out.push(b']');
        self.writer.cut |= cut;
    }

    /// Writes an error's message and causes as one string under `key`, one per line (see
    /// [`ErrorKeys`](crate::ErrorKeys)).
    fn stack_trace(&mut self, key: &str, value: &(dyn Error + 'static)) {
        let w = &mut *self.writer;
        w.key(key, "", FIELD_RENAME);
        w.cut |= user_fmt(
            &mut w.line.bytes,
            format_args!("{}", Chain(value)),
            w.cap.max_str,
        );
    }
}

impl Nest {
    /// Writes `"name":` inside the object, opening it first.
    fn key(&mut self, writer: &mut LineWriter<'_>, name: &'static str) {
        if self.opened {
            writer.line.bytes.push(b',');
        } else {
            writer.key(self.object, "", FIELD_RENAME);
            writer.line.bytes.push(b'{');
            self.opened = true;
        }
        let out = &mut writer.line.bytes;
        out.push(b'"');
        if self.written[..self.count].contains(&name) {
            json::escape_into(out, FIELD_RENAME);
        }
        json::escape_into(out, name);
        out.extend_from_slice(b"\":");
        if let Some(slot) = self.written.get_mut(self.count) {
            *slot = name;
            self.count += 1;
        }
    }
}

/// An error's message and its causes, one per line after `caused by: `, at most
/// [`MAX_SOURCES`] causes. A `Display` or `source()` that panics ends the text with a
/// marker; what came before it is kept.
struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let piece = |f: &mut fmt::Formatter<'_>, err: &dyn Error| {
            catch_unwind(AssertUnwindSafe(|| write!(f, "{err}")))
        };
        match piece(f, self.0) {
            Ok(written) => written?,
            Err(_) => return f.write_str(PANICKED),
        }
        let mut err = self.0;
        for _ in 0..MAX_SOURCES {
            let cause = match catch_unwind(AssertUnwindSafe(|| err.source())) {
                Ok(None) => return Ok(()),
                Ok(Some(cause)) => cause,
                Err(_) => {
                    f.write_str("\ncaused by: ")?;
                    return f.write_str(PANICKED);
                }
            };
            f.write_str("\ncaused by: ")?;
            match piece(f, cause) {
                Ok(written) => written?,
                Err(_) => return f.write_str(PANICKED),
            }
            err = cause;
        }
        Ok(())
    }
}

impl Visit for Walk<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let out = match self.dest(field) {
            Dest::Message => &mut self.writer.line.message,
            Dest::Field => &mut self.writer.line.bytes,
            Dest::None => return,
        };
        self.writer.cut |= json::write_str_capped(out, value, self.writer.cap.max_str);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.typed(field, &value, |out| json::write_i64(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.typed(field, &value, |out| json::write_u64(out, value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.typed(field, &value, |out| json::write_i128(out, value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.typed(field, &value, |out| json::write_u128(out, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.typed(field, &value, |out| json::write_f64(out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.typed(field, &value, |out| json::write_bool(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = match self.dest(field) {
            Dest::Message => &mut self.writer.line.message,
            Dest::Field => &mut self.writer.line.bytes,
            Dest::None => return,
        };
        self.writer.cut |= user_fmt(out, format_args!("{value:?}"), self.writer.cap.max_str);
    }

    /// Writes the error's message, and its `source()` chain as an array of messages from the
    /// nearest cause to the root under `<field>Sources` (`<field>_sources` with snake-case
    /// keys). Never `<field>.sources`: Elasticsearch would expand it into an object under
    /// `<field>` and reject the line. A `Display` or `source()` that panics ends the chain
    /// with a marker; the message and the causes before it are kept. The field the schema's
    /// [`ErrorKeys`](crate::ErrorKeys) name gets its chain as one string instead; inside the
    /// access line's object, only the message is written.
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        let max_str = self.writer.cap.max_str;
        match self.dest(field) {
            Dest::Message => return self.message_fmt(format_args!("{value}")),
            Dest::Field => {}
            Dest::None => return,
        }
        let line = &mut *self.writer.line;
        self.writer.cut |= user_fmt(&mut line.bytes, format_args!("{value}"), max_str);
        if matches!(self.pass, Pass::Inside(_)) {
            return;
        }
        let first = match catch_unwind(AssertUnwindSafe(|| value.source())) {
            Ok(None) => return,
            Ok(Some(first)) => Ok(first),
            Err(_) => Err(()),
        };
        match self.writer.prepared.settings.schema.error {
            Some(keys) if keys.field == field.name() => self.stack_trace(keys.stack_trace, value),
            _ => self.sources(field, first),
        }
    }
}
