//! The walk over an event's fields: where each field goes (the message, the line, the
//! access line's object, nowhere), its value in its JSON type, errors with their causes, and
//! the user's `Debug` and `Display` impls guarded against panics.

use std::error::Error;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::field::{Field, Visit};
use tracing::Event;

use super::callsite::FieldInfo;
use super::line_writer::{LineWriter, REDACTED};
use super::reserved::FIELD_RENAME;
use crate::json;
use crate::schema::{KeyCase, ACCESS_NAME, ACCESS_TARGET};

/// Written in place of a value whose `Debug`, `Display` or `Error` impl panicked.
pub(crate) const PANICKED: &str = "<panicked while formatting>";
/// How many causes of an error are written at most (a `source()` chain can be a cycle).
const MAX_SOURCES: usize = 32;

impl LineWriter<'_> {
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
