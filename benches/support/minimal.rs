//! The reference row of `benches/layers.rs`: a minimal JSON layer written the straightforward
//! way, to show what a fixed line with the request context costs when nothing else is done.
//!
//! - The request context lives in span extensions: a span with `request_id`/`trace_id`
//!   fields gets an `Arc<RwLock<..>>` of their JSON, a later `record("user_id", ..)` writes
//!   into it, and each child span keeps a clone of its parent's `Arc`, so an event finds its
//!   context with one span lookup at any depth.
//! - A fixed line shape: timestamp, level, message, the context, target, then the event's
//!   fields, with no duplicate-key check, no redaction, no line cap, no panic guard.
//! - serde_json's escaping loop (a 256-byte table, clean runs copied as slices), `itoa` and
//!   `ryu` for numbers, the calendar worked out for each event.
//! - One thread-local line buffer, one field walk (the message and the fields into two side
//!   buffers, so the message can come first), one `write_all`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes each event as `{"timestamp":…,"level":…,"message":…,"requestId":…,"userId":…,
/// "traceId":…,"target":…,<fields>}`.
pub struct MinimalLayer<W> {
    make_writer: W,
}

impl<W> MinimalLayer<W> {
    pub fn new(make_writer: W) -> Self {
        MinimalLayer { make_writer }
    }
}

/// The request's fields, each already as JSON.
#[derive(Default)]
struct RequestFields {
    request_id: Option<Vec<u8>>,
    user_id: Option<Vec<u8>>,
    trace_id: Option<Vec<u8>>,
}

/// The context a span carries: its own, or its parent's.
#[derive(Clone)]
struct Carried(Arc<RwLock<RequestFields>>);

impl Visit for RequestFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let mut json = Vec::with_capacity(value.len() + 2);
        write_str(&mut json, value);
        self.set(field, json);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, itoa::Buffer::new().format(value).as_bytes().to_vec());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, itoa::Buffer::new().format(value).as_bytes().to_vec());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut json = Vec::new();
        write_str(&mut json, &format!("{value:?}"));
        self.set(field, json);
    }
}

impl RequestFields {
    fn set(&mut self, field: &Field, json: Vec<u8>) {
        match field.name() {
            "request_id" => self.request_id = Some(json),
            "user_id" => self.user_id = Some(json),
            "trace_id" => self.trace_id = Some(json),
            _ => {}
        }
    }
}

impl<S, W> Layer<S> for MinimalLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let fields = attrs.fields();
        let carried = if fields.field("request_id").is_some() || fields.field("trace_id").is_some()
        {
            let mut own = RequestFields::default();
            attrs.record(&mut own);
            Some(Carried(Arc::new(RwLock::new(own))))
        } else {
            span.parent()
                .and_then(|parent| parent.extensions().get::<Carried>().cloned())
        };
        if let Some(carried) = carried {
            span.extensions_mut().insert(carried);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let extensions = span.extensions();
        if let Some(carried) = extensions.get::<Carried>() {
            if let Ok(mut fields) = carried.0.write() {
                values.record(&mut *fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        BUFFERS.with(|buffers| {
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                return;
            };
            let Buffers {
                line,
                message,
                fields,
            } = &mut *buffers;
            line.clear();
            message.clear();
            fields.clear();
            event.record(&mut EventVisitor { message, fields });

            line.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(line, SystemTime::now());
            line.extend_from_slice(b"\",\"level\":");
            line.extend_from_slice(level(event.metadata().level()));
            if !message.is_empty() {
                line.extend_from_slice(b",\"message\":");
                line.extend_from_slice(message);
            }
            if let Some(span) = cx.event_span(event) {
                if let Some(carried) = span.extensions().get::<Carried>() {
                    if let Ok(ctx) = carried.0.read() {
                        for (key, value) in [
                            (&b",\"requestId\":"[..], &ctx.request_id),
                            (b",\"userId\":", &ctx.user_id),
                            (b",\"traceId\":", &ctx.trace_id),
                        ] {
                            if let Some(value) = value {
                                line.extend_from_slice(key);
                                line.extend_from_slice(value);
                            }
                        }
                    }
                }
            }
            line.extend_from_slice(b",\"target\":");
            write_str(line, event.metadata().target());
            line.extend_from_slice(fields);
            line.extend_from_slice(b"}\n");
            let _ = self.make_writer.make_writer().write_all(line);
        });
    }
}

#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    message: Vec<u8>,
    fields: Vec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// The message into one buffer, every other field as `,"key":value` into the other.
struct EventVisitor<'a> {
    message: &'a mut Vec<u8>,
    fields: &'a mut Vec<u8>,
}

impl EventVisitor<'_> {
    fn key(&mut self, field: &Field) -> &mut Vec<u8> {
        self.fields.push(b',');
        write_str(self.fields, field.name());
        self.fields.push(b':');
        self.fields
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            write_str(self.message, value);
        } else {
            write_str(self.key(field), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let out = self.key(field);
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let out = self.key(field);
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let out = self.key(field);
        if value.is_finite() {
            out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            out.extend_from_slice(b"null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let out = self.key(field);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = if field.name() == "message" {
            &mut *self.message
        } else {
            self.key(field)
        };
        out.push(b'"');
        let _ = write!(Escaping(out), "{value:?}");
        out.push(b'"');
    }
}

/// An `fmt::Write` that escapes into a JSON string body.
struct Escaping<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(self.0, s);
        Ok(())
    }
}

fn level(level: &Level) -> &'static [u8] {
    match *level {
        Level::TRACE => b"\"trace\"",
        Level::DEBUG => b"\"debug\"",
        Level::INFO => b"\"info\"",
        Level::WARN => b"\"warn\"",
        Level::ERROR => b"\"error\"",
    }
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape(out, value);
    out.push(b'"');
}

/// serde_json's `format_escaped_str_contents`, writing into a `Vec<u8>`.
fn escape(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        if start < i {
            out.extend_from_slice(&bytes[start..i]);
        }
        match escape {
            UU => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xF) as usize],
            ]),
            other => out.extend_from_slice(&[b'\\', other]),
        }
        start = i + 1;
    }
    if start < bytes.len() {
        out.extend_from_slice(&bytes[start..]);
    }
}

const BB: u8 = b'b';
const TT: u8 = b't';
const NN: u8 = b'n';
const FF: u8 = b'f';
const RR: u8 = b'r';
const QU: u8 = b'"';
const BS: u8 = b'\\';
const UU: u8 = b'u';
const __: u8 = 0;

// serde_json's table: which bytes are escaped, and how.
static ESCAPE: [u8; 256] = [
    //   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
    UU, UU, UU, UU, UU, UU, UU, UU, BB, TT, NN, UU, FF, RR, UU, UU, // 0
    UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, // 1
    __, __, QU, __, __, __, __, __, __, __, __, __, __, __, __, __, // 2
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 3
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 4
    __, __, __, __, __, __, __, __, __, __, __, __, BS, __, __, __, // 5
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 6
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 7
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 8
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 9
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // A
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // B
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // C
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // D
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // E
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // F
];

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC), the date from Howard Hinnant's `civil_from_days`.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, rem / 3600);
    put(14, 2, rem / 60 % 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    out.extend_from_slice(&buf);
}
