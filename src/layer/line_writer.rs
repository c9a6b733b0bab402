//! [`LineWriter`]: one event as one line, a function per group of keys: the core keys
//! (timestamp, level, message), the context, the layer's own keys (target, file, line,
//! thread, span, static fields); the event's fields are written by `fields`. Every key goes
//! through the same duplicate and dotted-prefix checks.

use tracing::{Level, Metadata};

use super::callsite::CallsiteInfo;
use super::cap::Cap;
use super::ids::{Id, IdForm};
use super::line::{bloom_bits, bloom_has, for_each_dotted_prefix, Line};
use super::prepared::Prepared;
use super::reserved::{is_rename_root, CONTEXT_RENAME, ROOT_SUFFIX};
use crate::context::{Entries, Known, Slot};
use crate::json::{self, hash_key, Key};
use crate::otel::SpanIds;
use crate::schema::KeyCase;

/// Written in place of a redacted value.
pub(super) const REDACTED: &[u8] = b"\"[REDACTED]\"";

/// Builds one line in a [`Line`] buffer.
pub(crate) struct LineWriter<'a> {
    pub(super) line: &'a mut Line,
    pub(super) prepared: &'a Prepared,
    pub(super) cap: Cap,
    /// Whether a value was cut or a field left out to keep the line under the cap.
    pub(super) cut: bool,
    /// Trace and span ids that replace the context's (see [`Self::set_span_ids`]).
    pub(super) span_ids: Option<SpanIds>,
    /// What is known of the event's callsite beforehand (see [`Self::set_callsite`]).
    pub(super) callsite: Option<&'a CallsiteInfo>,
    /// Whether the event comes from the `log` crate.
    pub(super) from_log: bool,
    /// The well-known context keys on the line (bit `Known as usize`) that are not in the
    /// line's key set, see [`Self::known_key`].
    pub(super) known_on_line: u8,
    /// Likewise the event's fields written by the fast path (bit = field index, below 64).
    pub(super) fast_on_line: u64,
    /// Where the message goes: it is kept aside while the fields are walked, and put right
    /// after the level by [`Self::finish`].
    pub(super) message_at: usize,
    /// When the line's context was made, for the elapsed key.
    pub(super) created: Option<std::time::Instant>,
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
        // Extra keys that cannot collide with each other need checking only against the keys
        // before them: a filter of a dozen keys, where fifty keys on the line fill it and
        // every further key falls back to comparing bytes.
        let before = entries.extras_apart().then(|| self.line.keys.filter());
        for extra in &entries.extras {
            let names = &*extra.key;
            let (key, name) = match schema.extra_keys {
                KeyCase::Camel => (&names.camel_key, &*names.camel),
                KeyCase::Snake => (&names.snake_key, &*names.snake),
            };
            match before {
                Some(before) => self.extra_key(key, name, before),
                None => self.prepared_key(key, name),
            }
            self.context_value(&names.snake, extra.slot.json());
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

    /// Writes a context value, or `"[REDACTED]"` for a redacted key. In the cap's last pass a
    /// longer value is cut: a string to its first `max_str` bytes, anything else to `null` (a
    /// cut object would change the key's JSON type, which Elasticsearch rejects).
    #[inline]
    fn context_value(&mut self, snake_name: &str, json: &[u8]) {
        let value = if self.prepared.redacts(snake_name) {
            REDACTED
        } else {
            json
        };
        if self.cap.context && value.len() > self.cap.max_str + 2 {
            self.cut = true;
            if value.first() == Some(&b'"') {
                json::write_cut_json_str(&mut self.line.bytes, value, self.cap.max_str);
            } else {
                self.line.bytes.extend_from_slice(b"null");
            }
            return;
        }
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
    #[inline(always)]
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
        self.known_key_checked(known);
    }

    /// [`Self::known_key`] for a key that may collide: out of line, so that the usual case
    /// above is inlined where it is called.
    #[inline(never)]
    fn known_key_checked(&mut self, known: Known) {
        let key = &self.prepared.known_keys[known as usize];
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
        self.put_key(key);
    }

    /// Writes `,"key":` for a key found free, and records it on the line.
    #[inline(always)]
    fn put_key(&mut self, key: &Key) {
        self.line.bytes.push(b',');
        let start = self.line.bytes.len() + 1;
        self.line.bytes.extend_from_slice(key.fragment());
        let line = &mut *self.line;
        let end = start + key.escaped().len();
        line.keys
            .insert_known(&line.bytes, key.hash(), start, end, key.dotted());
    }

    /// [`Self::prepared_key`] for an extra key of a context whose extra keys cannot collide
    /// with each other ([`Entries::extras_apart`]): only a reserved key or one written before
    /// the extras (`before`, their [`KeySet::filter`](super::line::KeySet::filter)) can have
    /// taken it.
    fn extra_key(&mut self, key: &Key, name: &str, before: u64) {
        let bits = bloom_bits(key.hash());
        if key.dotted()
            || bloom_has(before, bits)
            || self.prepared.reserved.may_conflict(bits)
            || is_rename_root(key.escaped())
        {
            self.prepared_key(key, name);
            return;
        }
        self.put_key(key);
    }

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

    /// Returns `true` if the escaped key cannot go on the line: it is reserved or already
    /// there, or it is the dotted prefix of such a key, or such a key is its dotted prefix
    /// (Elasticsearch expands `a.b` into an object under `a`, so `a` and `a.b` on one line
    /// lose the document).
    #[inline]
    fn taken(&self, hash: u64, escaped: &[u8], dotted: bool) -> bool {
        let (reserved, line) = (&self.prepared.reserved, &*self.line);
        if is_rename_root(escaped) {
            return true;
        }
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
    pub(super) fn key(&mut self, head: &str, tail: &str, rename: &str) {
        self.line.bytes.push(b',');
        // `…Sources` is never a root; a root gets its suffix before any rename.
        let suffix = tail.is_empty() && is_rename_root(head.as_bytes());
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
            if suffix {
                self.line.bytes.extend_from_slice(ROOT_SUFFIX.as_bytes());
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
