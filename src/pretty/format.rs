//! Writing one event as one human-readable line: the time, the level, the optional span name
//! and target, the message, the event's fields, then the context block. A function per part;
//! values are quoted and escaped here, and ANSI colours are added only when switched on.

use std::cell::RefCell;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level};

use crate::context::Entries;

/// Written in place of a value whose `Debug`, `Display` or `Error` impl panicked; the same
/// marker as on JSON lines.
pub(super) const PANICKED: &str = "<panicked while formatting>";
/// How many causes of an error are written at most (a `source()` chain can be a cycle).
const MAX_SOURCES: usize = 32;
/// How many characters of the trace id are written unless the full id is asked for.
const SHORT_TRACE_ID: usize = 8;
/// A buffer past this size after a line is given back, so that one huge line does not pin
/// its memory for the thread's life.
const KEEP_CAPACITY: usize = 64 * 1024;

// The colours, as tracing-subscriber's `fmt` uses them for levels. Every coloured part is
// closed with `RESET`, so a line never leaves the terminal in a colour.
const RESET: &[u8] = b"\x1b[0m";
const DIM: &[u8] = b"\x1b[2m";
const RED: &[u8] = b"\x1b[31m";
const GREEN: &[u8] = b"\x1b[32m";
const YELLOW: &[u8] = b"\x1b[33m";
const BLUE: &[u8] = b"\x1b[34m";
const MAGENTA: &[u8] = b"\x1b[35m";
const CYAN: &[u8] = b"\x1b[36m";

/// This thread's buffers: the line being built, and scratch space for the output of user
/// `Debug`/`Display` impls, which must be seen whole before it can be quoted.
#[derive(Debug)]
pub(super) struct Buf {
    pub(super) line: Vec<u8>,
    scratch: String,
}

impl Buf {
    const fn new() -> Self {
        Buf {
            line: Vec::new(),
            scratch: String::new(),
        }
    }

    fn clear(&mut self) {
        self.line.clear();
        self.scratch.clear();
        if self.line.capacity() > KEEP_CAPACITY {
            self.line.shrink_to(KEEP_CAPACITY);
        }
        if self.scratch.capacity() > KEEP_CAPACITY {
            self.scratch.shrink_to(KEEP_CAPACITY);
        }
    }
}

thread_local! {
    static BUF: RefCell<Buf> = const { RefCell::new(Buf::new()) };
}

/// Calls `f` with this thread's buffers, cleared afterwards (on unwind too). If they are in
/// use further up the call stack (a `Debug` impl or the writer logged while we format), or
/// the thread is being torn down, `f` gets fresh ones instead.
pub(super) fn with_buf<R>(f: impl FnOnce(&mut Buf) -> R) -> R {
    let mut f = Some(f);
    let done = BUF.try_with(|cell| {
        let buf = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        let mut buf = ClearOnDrop(buf);
        Some(f(&mut buf.0))
    });
    match done {
        Ok(Some(result)) => result,
        _ => {
            let f = f
                .take()
                .expect("f runs only after the borrow succeeded, this is a bug");
            f(&mut Buf::new())
        }
    }
}

/// Clears the borrowed buffers when dropped, on return and on unwind alike.
struct ClearOnDrop<'a>(std::cell::RefMut<'a, Buf>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// Builds one line in a [`Buf`].
pub(super) struct LineWriter<'a> {
    buf: &'a mut Buf,
    ansi: bool,
    full_trace_id: bool,
}

impl<'a> LineWriter<'a> {
    pub(super) fn new(buf: &'a mut Buf, ansi: bool, full_trace_id: bool) -> Self {
        LineWriter {
            buf,
            ansi,
            full_trace_id,
        }
    }

    /// Starts a coloured part (when colours are on).
    #[inline]
    fn paint(&mut self, colour: &[u8]) {
        if self.ansi {
            self.buf.line.extend_from_slice(colour);
        }
    }

    /// Ends a coloured part (when colours are on).
    #[inline]
    fn reset(&mut self) {
        if self.ansi {
            self.buf.line.extend_from_slice(RESET);
        }
    }

    /// Writes the time of day in UTC, `HH:MM:SS.mmm`, dimmed. A clock before 1970 writes
    /// midnight.
    pub(super) fn time(&mut self, now: SystemTime) {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let of_day = since_epoch.as_secs() % 86_400;
        let millis = since_epoch.subsec_millis();
        let (h, m, s) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
        let two = |n: u64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        let ms = [
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ];
        self.paint(DIM);
        let out = &mut self.buf.line;
        out.extend_from_slice(&two(h));
        out.push(b':');
        out.extend_from_slice(&two(m));
        out.push(b':');
        out.extend_from_slice(&two(s));
        out.push(b'.');
        out.extend_from_slice(&ms);
        self.reset();
    }

    /// Writes the level, right-aligned in five columns so that messages line up, in its
    /// colour.
    pub(super) fn level(&mut self, level: &Level) {
        let (colour, text): (&[u8], &[u8]) = match *level {
            Level::TRACE => (MAGENTA, b"TRACE"),
            Level::DEBUG => (BLUE, b"DEBUG"),
            Level::INFO => (GREEN, b" INFO"),
            Level::WARN => (YELLOW, b" WARN"),
            Level::ERROR => (RED, b"ERROR"),
        };
        self.buf.line.push(b' ');
        self.paint(colour);
        self.buf.line.extend_from_slice(text);
        self.reset();
    }

    /// Writes a span name or a target followed by `:`, dimmed.
    pub(super) fn origin(&mut self, name: &str) {
        self.buf.line.push(b' ');
        self.paint(DIM);
        escape_controls(&mut self.buf.line, name);
        self.buf.line.push(b':');
        self.reset();
    }

    /// Writes the event's message (the first field named `message`) as it is, with control
    /// characters escaped. Returns the index of that field, if the event has one.
    pub(super) fn message(&mut self, event: &Event<'_>) -> Option<usize> {
        let mut visitor = MessageVisitor {
            buf: &mut *self.buf,
            written: None,
        };
        event.record(&mut visitor);
        visitor.written
    }

    /// Writes every field but the message as ` key=value`. Fields of events from the `log`
    /// crate (`log.target`, `log.file`, …) are skipped: they stand for the event's metadata.
    pub(super) fn fields(&mut self, event: &Event<'_>, from_log: bool, message: Option<usize>) {
        event.record(&mut FieldVisitor {
            writer: self,
            skip_log_fields: from_log,
            message,
        });
    }

    /// Writes the context block, ` [req=… user=… trace=… key=value…]`, in cyan: the request
    /// id, the user id, the trace id (shortened) and the extra keys in their snake-case names,
    /// in the order they were first set. The span id is left out. An empty context writes
    /// nothing.
    pub(super) fn context(&mut self, entries: &Entries) {
        let mut open = false;
        for (name, slot) in entries.slots() {
            let label = match name {
                "request_id" => "req",
                "user_id" => "user",
                "trace_id" => "trace",
                // One per request, like the request id: on JSON lines only.
                "span_id" => continue,
                other => other,
            };
            if open {
                self.buf.line.push(b' ');
            } else {
                self.buf.line.push(b' ');
                self.paint(CYAN);
                self.buf.line.push(b'[');
                open = true;
            }
            escape_controls(&mut self.buf.line, label);
            self.buf.line.push(b'=');
            self.buf.scratch.clear();
            // `Value`'s `Display` is ours and cannot panic.
            let _ = write!(self.buf.scratch, "{}", slot.display());
            let mut text = self.buf.scratch.as_str();
            if label == "trace" && !self.full_trace_id {
                if let Some((end, _)) = text.char_indices().nth(SHORT_TRACE_ID) {
                    text = &text[..end];
                }
            }
            write_value(&mut self.buf.line, text);
        }
        if open {
            self.buf.line.push(b']');
            self.reset();
        }
    }

    /// Ends the line.
    pub(super) fn finish(&mut self) {
        self.buf.line.push(b'\n');
    }

    /// Writes ` key=` with the key dimmed.
    fn key(&mut self, name: &str) {
        self.buf.line.push(b' ');
        self.paint(DIM);
        escape_controls(&mut self.buf.line, name);
        self.buf.line.push(b'=');
        self.reset();
    }

    /// Writes what is in the scratch buffer as a value, in `colour` if one is given.
    fn scratch_value(&mut self, colour: Option<&[u8]>) {
        if let Some(colour) = colour {
            self.paint(colour);
        }
        write_value(&mut self.buf.line, &self.buf.scratch);
        if colour.is_some() {
            self.reset();
        }
    }
}

/// Formats `args` (user `Debug`/`Display` impls) at the end of `out`. An impl that panics is
/// replaced by [`PANICKED`] and `false` is returned; one that returns an error keeps what it
/// wrote.
fn fmt_caught(out: &mut String, args: fmt::Arguments<'_>) -> bool {
    let start = out.len();
    let written = catch_unwind(AssertUnwindSafe(|| {
        let _ = out.write_fmt(args);
    }));
    if written.is_err() {
        out.truncate(start);
        out.push_str(PANICKED);
    }
    written.is_ok()
}

/// Formats an error and its `source()` chain at the end of `out`, joined by `": "` from the
/// error to its root cause, at most [`MAX_SOURCES`] causes. A `Display` that panics is
/// replaced by the marker; a cause's `Display` or a `source()` that panics ends the chain with
/// it, so the causes before it are kept.
fn error_chain(out: &mut String, err: &(dyn Error + 'static)) {
    fmt_caught(out, format_args!("{err}"));
    let mut next = catch_unwind(AssertUnwindSafe(|| err.source()));
    for _ in 0..MAX_SOURCES {
        let cause = match next {
            Ok(None) => return,
            Ok(Some(cause)) => cause,
            Err(_) => {
                out.push_str(": ");
                out.push_str(PANICKED);
                return;
            }
        };
        out.push_str(": ");
        if !fmt_caught(out, format_args!("{cause}")) {
            return;
        }
        next = catch_unwind(AssertUnwindSafe(|| cause.source()));
    }
}

/// Returns `true` if a value must be quoted to be read back: it is empty, or holds
/// whitespace, a control character, a quote or a square bracket (which would end the context
/// block).
#[inline]
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '[' | ']'))
}

/// Returns the escape of a character that must not reach the terminal raw, or `None`.
/// Backslashes and quotes are escaped only inside quotes.
#[inline]
fn escape_of(c: char, quoted: bool) -> Option<Escape> {
    match c {
        '\n' => Some(Escape::Short(b'n')),
        '\r' => Some(Escape::Short(b'r')),
        '\t' => Some(Escape::Short(b't')),
        '"' | '\\' if quoted => Some(Escape::Short(c as u8)),
        // C0 and C1 controls (ESC would start a terminal escape sequence) and the Unicode
        // line and paragraph separators, which some terminals break lines at.
        c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => Some(Escape::Unicode(c)),
        _ => None,
    }
}

enum Escape {
    /// `\n`, `\r`, `\t`, `\"`, `\\`.
    Short(u8),
    /// `\u{1b}`.
    Unicode(char),
}

/// Appends `text` with clean runs copied as slices and each character that needs it escaped.
fn escape_into(out: &mut Vec<u8>, text: &str, quoted: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let Some(escape) = escape_of(c, quoted) else {
            continue;
        };
        out.extend_from_slice(&text.as_bytes()[start..i]);
        match escape {
            Escape::Short(b) => out.extend_from_slice(&[b'\\', b]),
            Escape::Unicode(c) => {
                out.extend_from_slice(b"\\u{");
                let code = c as u32;
                let digits = (32 - code.leading_zeros()).div_ceil(4).max(1);
                for shift in (0..digits).rev() {
                    out.push(HEX[((code >> (shift * 4)) & 0xF) as usize]);
                }
                out.push(b'}');
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&text.as_bytes()[start..]);
}

/// Appends free text (the message, a target, a key) with control characters escaped, so that
/// one event stays one line and cannot drive the terminal.
#[inline]
fn escape_controls(out: &mut Vec<u8>, text: &str) {
    escape_into(out, text, false);
}

/// Appends a value: as it is when it can be read back as it is, else in double quotes with
/// `"`, `\` and control characters escaped (`\"`, `\\`, `\n`, `\r`, `\t`, `\u{1b}`).
#[inline]
pub(super) fn write_value(out: &mut Vec<u8>, value: &str) {
    if needs_quotes(value) {
        out.push(b'"');
        escape_into(out, value, true);
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

/// Writes the first field named `message`, whatever its type.
struct MessageVisitor<'a> {
    buf: &'a mut Buf,
    written: Option<usize>,
}

impl MessageVisitor<'_> {
    /// Returns `true` if `field` is the message.
    fn is_message(&mut self, field: &Field) -> bool {
        if self.written.is_some() || field.name() != "message" {
            return false;
        }
        self.written = Some(field.index());
        true
    }

    /// Writes ` message`; an empty message writes nothing.
    fn write(out: &mut Vec<u8>, message: &str) {
        if !message.is_empty() {
            out.push(b' ');
            escape_controls(out, message);
        }
    }
}

impl Visit for MessageVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.is_message(field) {
            Self::write(&mut self.buf.line, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.is_message(field) {
            self.buf.scratch.clear();
            fmt_caught(&mut self.buf.scratch, format_args!("{value:?}"));
            Self::write(&mut self.buf.line, &self.buf.scratch);
        }
    }
}

/// Writes every field but the message as ` key=value`.
struct FieldVisitor<'w, 'a> {
    writer: &'w mut LineWriter<'a>,
    skip_log_fields: bool,
    message: Option<usize>,
}

impl FieldVisitor<'_, '_> {
    /// Writes the key of `field` and returns `true` unless the field is skipped.
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if Some(field.index()) == self.message || (self.skip_log_fields && name.starts_with("log."))
        {
            return false;
        }
        self.writer.key(name);
        true
    }

    /// Writes a number or a boolean, which never needs quotes.
    fn plain(&mut self, field: &Field, text: &str) {
        if self.key(field) {
            self.writer.buf.line.extend_from_slice(text.as_bytes());
        }
    }
}

impl Visit for FieldVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            write_value(&mut self.writer.buf.line, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    /// `1.5`, `2.0`, `NaN`, `inf`, `-inf`.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.plain(field, ryu::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.writer.buf.scratch.clear();
            fmt_caught(&mut self.writer.buf.scratch, format_args!("{value:?}"));
            self.writer.scratch_value(None);
        }
    }

    /// Writes the error's message and its `source()` chain joined by `": "`, in red.
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.key(field) {
            self.writer.buf.scratch.clear();
            error_chain(&mut self.writer.buf.scratch, value);
            self.writer.scratch_value(Some(RED));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn value(text: &str) -> String {
        let mut out = Vec::new();
        write_value(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        let table = [
            ("acme", "acme"),
            ("naïve-ünïcode", "naïve-ünïcode"),
            ("a=b", "a=b"),
            ("", r#""""#),
            ("two words", r#""two words""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r"C:\dir", r"C:\dir"),
            (r#"C:\my "dir""#, r#""C:\\my \"dir\"""#),
            ("line\nbreak", r#""line\nbreak""#),
            ("cr\rtab\t", r#""cr\rtab\t""#),
            ("\x1b[31mred", r#""\u{1b}[31mred""#),
            ("a]b", r#""a]b""#),
            ("nel\u{85}", r#""nel\u{85}""#),
            ("ls\u{2028}", r#""ls\u{2028}""#),
            ("nul\0", r#""nul\u{0}""#),
        ];
        for (input, expected) in table {
            assert_eq!(value(input), expected, "{input:?}");
        }
    }

    #[test]
    fn free_text_escapes_controls_only() {
        let mut out = Vec::new();
        escape_controls(&mut out, "a \"b\" \\ c\nd\x1b");
        assert_eq!(String::from_utf8(out).unwrap(), r#"a "b" \ c\nd\u{1b}"#);
    }

    #[test]
    fn time_of_day_is_utc_with_milliseconds() {
        let table = [
            (0, 0, "00:00:00.000"),
            (1_795_528_932, 123_456, "14:02:12.123"),
            (86_399, 999_999, "23:59:59.999"),
            (86_400 * 365 + 3_661, 7_000, "01:01:01.007"),
        ];
        for (secs, micros, expected) in table {
            let mut buf = Buf::new();
            LineWriter::new(&mut buf, false, false)
                .time(UNIX_EPOCH + Duration::new(secs, micros * 1000));
            assert_eq!(String::from_utf8(buf.line).unwrap(), expected, "{secs}");
        }
    }

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);

    impl fmt::Display for Chain {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Chain {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|c| c as _)
        }
    }

    /// An error that is its own cause.
    #[derive(Debug)]
    struct Cycle;

    impl fmt::Display for Cycle {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("c")
        }
    }

    impl Error for Cycle {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self)
        }
    }

    #[test]
    fn error_chain_is_joined_and_bounded() {
        let err = Chain(
            "query failed",
            Some(Box::new(Chain(
                "connection reset",
                Some(Box::new(Chain("timeout", None))),
            ))),
        );
        let mut out = String::new();
        error_chain(&mut out, &err);
        assert_eq!(out, "query failed: connection reset: timeout");

        let mut out = String::new();
        error_chain(&mut out, &Cycle);
        assert_eq!(out.split(": ").count(), 1 + MAX_SOURCES);
    }
}
