//! Whatever the values, every line is valid JSON and parses back to the input.

mod common;

use common::Capture;
use proptest::prelude::*;
use serde_json::json;
use tracing::info;
use tracing_ambient::{Context, JsonLayer};
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
        // The key is stored in snake case and written in camel case; whatever it becomes, it
        // is the one key after the core keys, before target.
        prop_assert_eq!(line.entries.len(), 5, "{:?}", line);
        let (written, value) = &line.entries[3];
        prop_assert_eq!(value, &json!(v));
        let expected = tracing_ambient::Context::new().with(&key, v).entries()[0].0.clone();
        if !matches!(expected.as_str(), "request_id" | "user_id" | "trace_id" | "span_id") {
            prop_assert_eq!(written.to_lowercase().replace('_', ""), expected.to_lowercase().replace('_', ""));
        }
    }
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
