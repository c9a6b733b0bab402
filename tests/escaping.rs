//! Whatever the values, every line is valid JSON and parses back to the input.

mod common;

use common::Capture;
use proptest::prelude::*;
use serde_json::json;
use tracing::info;
use tracing_ambient::{Context, JsonLayer, KeyCase, Schema};
use tracing_subscriber::prelude::*;

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
fn huge_values_are_written_whole() {
    let big = "x\"".repeat(512 * 1024);
    let line = one_line(|| info!(big = big.as_str(), "{}", big));
    assert_eq!(line.at("big"), &json!(big));
    assert_eq!(line.at("message"), &json!(big));
}
