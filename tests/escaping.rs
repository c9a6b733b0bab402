//! Whatever the values, every line is valid JSON and parses back to the input.

mod common;

use std::io;
use std::sync::{Arc, Mutex};

use common::Capture;
use proptest::prelude::*;
use serde_json::json;
use tracing::info;
use tracing_ambient::{Context, JsonLayer, KeyCase, Schema};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// A `MakeWriter` that keeps each write apart.
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

impl io::Write for &Writes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Writes {
    type Writer = &'a Writes;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

fn one_line(f: impl FnOnce()) -> common::Line {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let mut lines = capture.lines();
    assert_eq!(lines.len(), 1);
    lines.remove(0)
}

/// Strings biased towards the characters JSON must escape.
fn nasty_string() -> impl Strategy<Value = String> {
    let nasty = prop_oneof![
        Just('"'),
        Just('\\'),
        Just('\n'),
        Just('\r'),
        Just('\u{2028}'),
        Just('\u{2029}'),
        Just('🦀'),
        Just('\u{7f}'),
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        any::<char>(),
    ];
    prop::collection::vec(nasty, 0..40).prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn strings_round_trip_everywhere(message in nasty_string(), value in nasty_string(), ctx_value in nasty_string()) {
        let line = one_line(|| {
            Context::new().with_request_id(ctx_value.as_str()).with("extra", ctx_value.as_str()).in_scope(|| {
                info!(field = value.as_str(), shown = %value, debugged = ?value, "{}", message);
            });
        });
        prop_assert_eq!(line.at("message"), &json!(message));
        prop_assert_eq!(line.at("field"), &json!(value));
        prop_assert_eq!(line.at("shown"), &json!(value));
        prop_assert_eq!(line.at("debugged"), &json!(format!("{value:?}")));
        prop_assert_eq!(line.at("requestId"), &json!(ctx_value));
        prop_assert_eq!(line.at("extra"), &json!(ctx_value));
    }

    #[test]
    fn numbers_keep_their_value(f in any::<f64>(), i in any::<i64>(), u in any::<u64>(), b in any::<bool>()) {
        let line = one_line(|| info!(f, i, u, b, "numbers"));
        let expected_f = if f.is_nan() {
            json!("NaN")
        } else if f.is_infinite() {
            json!(if f > 0.0 { "inf" } else { "-inf" })
        } else {
            json!(f)
        };
        prop_assert_eq!(line.at("f"), &expected_f);
        prop_assert_eq!(line.at("i"), &json!(i));
        prop_assert_eq!(line.at("u"), &json!(u));
        prop_assert_eq!(line.at("b"), &json!(b));
    }

    #[test]
    fn context_keys_of_any_text_stay_valid(key in nasty_string(), v in any::<i64>()) {
        let line = one_line(|| Context::new().with(&key, v).in_scope(|| info!("k")));
        // Whatever the key becomes (`context_keys_are_written_as_the_spec_says` checks what it
        // becomes), it is the one key between the core keys and target, and keeps its value.
        prop_assert_eq!(line.entries.len(), 5, "{:?}", line);
        prop_assert_eq!(line.keys()[..3].to_vec(), ["timestamp", "level", "message"]);
        prop_assert_eq!(line.keys()[4], "target");
        prop_assert_eq!(&line.entries[3].1, &json!(v));
    }
}

/// How a context key given to `Context::with` is written: in the default schema (camel case)
/// and with `KeyCase::Snake`. Written by hand from the documented rules, never computed:
///
/// - `request_id`, `user_id`, `trace_id` and `span_id`, in any case, are the well-known keys
///   and take the schema's names (`Context::set`);
/// - any other key is stored in snake case: `tenantId` and `tenant_id` are one key, an
///   uppercase ASCII letter starts a word after a lowercase letter or a digit, and a run of
///   capitals is one word (`HTTPStatus` is `http_status`); characters other than ASCII letters
///   are kept as they are (`to_snake_case`);
/// - camel case drops each `_` and capitalises the ASCII letter after it; a leading `_` is kept
///   (`_private`), and so is a trailing one (`to_camel_case`);
/// - a context key named like a core key is renamed `context.<key>` (`JsonLayer`, "Duplicate
///   keys").
const KEY_TABLE: &[(&str, &str, &str)] = &[
    // (given, written in camel case, written in snake case)
    ("tenant_id", "tenantId", "tenant_id"),
    ("tenantId", "tenantId", "tenant_id"),
    ("TenantId", "tenantId", "tenant_id"),
    ("http_status_code", "httpStatusCode", "http_status_code"),
    ("httpStatusCode", "httpStatusCode", "http_status_code"),
    ("HTTPStatus", "httpStatus", "http_status"),
    ("XMLHttpRequest", "xmlHttpRequest", "xml_http_request"),
    ("ALLCAPS", "allcaps", "allcaps"),
    ("A", "a", "a"),
    ("aB", "aB", "a_b"),
    ("already", "already", "already"),
    ("Order_Id", "orderId", "order_id"),
    // digits
    ("order2_id", "order2Id", "order2_id"),
    ("order2Id", "order2Id", "order2_id"),
    ("ipv4_addr", "ipv4Addr", "ipv4_addr"),
    ("2fa_code", "2faCode", "2fa_code"),
    ("v_2", "v2", "v_2"),
    // underscores
    ("_private", "_private", "_private"),
    ("trailing_", "trailing_", "trailing_"),
    ("a__b", "aB", "a__b"),
    ("_", "_", "_"),
    // other characters are kept
    ("dotted.key", "dotted.key", "dotted.key"),
    ("kebab-case", "kebab-case", "kebab-case"),
    ("größe_kg", "größeKg", "größe_kg"),
    ("Ölfeld", "Ölfeld", "Ölfeld"),
    ("x_ü", "xü", "x_ü"),
    ("🦀_count", "🦀Count", "🦀_count"),
    ("quote\"_key", "quote\"Key", "quote\"_key"),
    ("new\nline_x", "new\nlineX", "new\nline_x"),
    // the well-known keys
    ("request_id", "requestId", "requestId"),
    ("requestId", "requestId", "requestId"),
    ("RequestId", "requestId", "requestId"),
    ("REQUEST_ID", "requestId", "requestId"),
    ("user_id", "userId", "userId"),
    ("userId", "userId", "userId"),
    ("userID", "userId", "userId"),
    ("trace_id", "traceId", "traceId"),
    ("traceId", "traceId", "traceId"),
    ("span_id", "spanId", "spanId"),
    ("spanId", "spanId", "spanId"),
    // core keys win
    ("message", "context.message", "context.message"),
    ("Message", "context.message", "context.message"),
    ("level", "context.level", "context.level"),
    ("timestamp", "context.timestamp", "context.timestamp"),
    ("target", "context.target", "context.target"),
];

#[test]
fn context_keys_are_written_as_the_spec_says() {
    let schemas = [
        ("camel", Schema::DEFAULT),
        ("snake", Schema::DEFAULT.with_extra_keys(KeyCase::Snake)),
    ];
    for (name, schema) in schemas {
        let capture = Capture::default();
        let layer = JsonLayer::new(capture.clone()).schema(schema);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for (i, (given, _, _)) in KEY_TABLE.iter().enumerate() {
                Context::new().with(given, i).in_scope(|| info!("k"));
            }
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), KEY_TABLE.len(), "{name}");
        for (i, (line, (given, camel, snake))) in lines.iter().zip(KEY_TABLE).enumerate() {
            let expected = if name == "camel" { camel } else { snake };
            assert_eq!(
                line.keys(),
                ["timestamp", "level", "message", expected, "target"],
                "{name}: {given:?}"
            );
            assert_eq!(line.at(expected), &json!(i), "{name}: {given:?}");
        }
    }
    eprintln!(
        "context keys: {} keys, each written as the table says in camel and snake case",
        KEY_TABLE.len()
    );
}

/// A string token as RFC 8259 section 7 writes it: `"` and `\\` escaped, control characters
/// escaped (the two-character forms where the RFC has one, else `\u00xx` in lower case, as
/// serde_json writes them), everything else, DEL and U+2028/U+2029 included, as it is.
fn rfc8259(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn reference_encoder_follows_rfc_8259() {
    let table = [
        ("a\"b", r#""a\"b""#),
        ("\\", r#""\\""#),
        ("\u{0}\u{1f}\u{8}\u{c}\n\r\t", r#""\u0000\u001f\b\f\n\r\t""#),
        ("\u{7f}\u{2028}\u{2029}", "\"\u{7f}\u{2028}\u{2029}\""),
    ];
    for (input, expected) in table {
        assert_eq!(rfc8259(input), expected);
    }
}

#[test]
fn escapes_at_every_offset_including_the_last() {
    let specials: Vec<char> = ['"', '\\', '\u{7f}', '\u{2028}', '\u{2029}']
        .into_iter()
        .chain((0u8..0x20).map(char::from))
        .collect();
    assert_eq!(specials.len(), 37);
    // Every length from 1 to 40 and every offset, the last included: clean runs before and
    // after the character cover the eight-byte skip, its tail, and strings shorter than it.
    let mut cases = Vec::new();
    for &special in &specials {
        for len in 1..=40 {
            for at in 0..len {
                let s: String = (0..len)
                    .map(|i| {
                        if i == at {
                            special
                        } else {
                            char::from(b'a' + (i % 26) as u8)
                        }
                    })
                    .collect();
                cases.push(s);
            }
        }
    }
    assert_eq!(cases.len(), 37 * (1..=40).sum::<usize>());

    // Each write kept apart: the layer writes a line with one `write_all`, so a raw newline
    // in a value shows as a control byte inside one write, not as a line count that is off.
    let writes = Writes::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(writes.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for s in &cases {
            // Three ways a string reaches the line: a context value, the message (Display),
            // an event field.
            Context::new()
                .with("ctx", s.as_str())
                .in_scope(|| info!(v = s.as_str(), "{}", s));
        }
    });
    let writes = writes.0.lock().unwrap();
    assert_eq!(writes.len(), cases.len(), "one write per event");
    for (write, s) in writes.iter().zip(&cases) {
        let raw = std::str::from_utf8(write).expect("a line is UTF-8");
        let raw = raw
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("no newline at the end for {s:?}: {raw:?}"));
        assert!(
            raw.bytes().all(|b| b >= 0x20),
            "a raw control byte for {s:?}: {raw:?}"
        );
        let token = rfc8259(s);
        for key in ["message", "ctx", "v"] {
            let expected = format!("\"{key}\":{token}");
            assert!(raw.contains(&expected), "{expected} not in {raw}");
        }
        let line = common::parse_line(raw);
        for key in ["message", "ctx", "v"] {
            assert_eq!(line.str(key), Some(s.as_str()), "{key} of {s:?}: {raw}");
        }
    }
    eprintln!(
        "escaping: {} strings ({} characters x lengths 1..=40 x every offset), 3 places each, \
         all as RFC 8259 writes them",
        cases.len(),
        specials.len()
    );
}

#[test]
fn non_finite_floats_are_strings() {
    let line = one_line(|| {
        info!(
            nan = f64::NAN,
            inf = f64::INFINITY,
            ninf = f64::NEG_INFINITY,
            "x"
        )
    });
    assert_eq!(line.at("nan"), &json!("NaN"));
    assert_eq!(line.at("inf"), &json!("inf"));
    assert_eq!(line.at("ninf"), &json!("-inf"));
    let line = one_line(|| {
        Context::new()
            .with("ratio", f64::NAN)
            .in_scope(|| info!("x"))
    });
    assert_eq!(line.at("ratio"), &json!("NaN"));
}

#[test]
fn huge_values_are_written_whole_without_a_cap() {
    let big = "x\"".repeat(512 * 1024);
    let capture = Capture::default();
    let layer = JsonLayer::new(capture.clone()).max_line_bytes(usize::MAX);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || info!(big = big.as_str(), "{}", big));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.at("big"), &json!(big));
    assert_eq!(line.at("message"), &json!(big));
}
