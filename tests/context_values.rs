//! Issue 11 §1: any serde value in the context and in static fields, serialized once when set
//! and copied as raw JSON onto each line; bad values leave the context as it was.

mod common;

use common::Capture;
use serde::ser::{Serialize, Serializer};
use serde_json::json;
use tracing::info;
use tracing_ambient::{Context, JsonLayer, Value};
use tracing_subscriber::prelude::*;

fn lines_of(f: impl FnOnce()) -> Vec<common::Line> {
    let capture = Capture::default();
    let layer = JsonLayer::new(capture.clone())
        .static_field("regions", ["eu-west-1", "us-east-1"])
        .static_field("build", json!({"sha": "abc123", "dirty": false}));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.lines()
}

#[derive(serde::Serialize)]
struct Claims {
    sub: String,
    scopes: Vec<&'static str>,
    expires: Option<u64>,
}

#[test]
fn arrays_objects_and_structs_nest_on_the_line() {
    let lines = lines_of(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            tracing_ambient::set("roles", vec!["admin", "editor"]);
            tracing_ambient::set("quota", json!({"limit": 100, "used": [1, 2.5, null]}));
            tracing_ambient::set(
                "claims",
                Claims {
                    sub: "u-1".into(),
                    scopes: vec!["read"],
                    expires: None,
                },
            );
            tracing_ambient::set("ratio", f64::NAN);
            info!("with values");
        });
    });
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.at("roles"), &json!(["admin", "editor"]));
    assert_eq!(
        line.at("quota"),
        &json!({"limit": 100, "used": [1, 2.5, null]})
    );
    assert_eq!(
        line.at("claims"),
        &json!({"sub": "u-1", "scopes": ["read"], "expires": null})
    );
    assert_eq!(line.at("ratio"), &json!("NaN"));
    assert_eq!(line.at("regions"), &json!(["eu-west-1", "us-east-1"]));
    assert_eq!(line.at("build"), &json!({"sha": "abc123", "dirty": false}));
}

#[test]
fn get_returns_arrays_and_objects_users_can_read() {
    let ctx = Context::new().with("roles", ["admin"]).with("n", 7u8);
    assert_eq!(
        ctx.get("roles"),
        Some(Value::Array(vec![Value::Str("admin".into())]))
    );
    assert_eq!(ctx.get("n"), Some(Value::I64(7)));
}

struct Failing;

impl Serialize for Failing {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("the database is down"))
    }
}

struct Panicking;

impl Serialize for Panicking {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Serialize panicked")
    }
}

#[test]
fn a_failing_or_panicking_value_leaves_the_context_and_says_why() {
    let lines = lines_of(|| {
        Context::new()
            .with_request_id("r1")
            .with("tenant", "acme")
            .in_scope(|| {
                tracing_ambient::set("tenant", Failing);
                tracing_ambient::set("tenant", Panicking);
                let err = Context::current().unwrap().try_set("tenant", Failing);
                assert!(err
                    .unwrap_err()
                    .to_string()
                    .contains("the database is down"));
                info!("after");
            });
    });
    // Two warn lines (one per bad value, with the key and the reason), then the event.
    assert_eq!(lines.len(), 3, "{lines:?}");
    for warn in &lines[..2] {
        assert_eq!(warn.at("level"), &json!("warn"));
        assert_eq!(warn.at("message"), &json!("context value not set"));
        assert_eq!(warn.at("key"), &json!("tenant"));
        assert_eq!(warn.at("requestId"), &json!("r1"));
    }
    assert!(lines[0]
        .str("error")
        .unwrap()
        .contains("the database is down"));
    assert!(lines[1].str("error").unwrap().contains("panicked"));
    assert_eq!(
        lines[2].at("tenant"),
        &json!("acme"),
        "the context is as it was"
    );
}

/// Issue 19 §4: a context is bounded, by the numbers its docs give: 64 extra keys and 8 KiB of
/// values and key names. What does not fit is replaced (a value) or left out (a new key), and
/// reported by one `warn` line per context, however many times it happens.
const MAX_EXTRA_KEYS: usize = 64;
const MAX_CONTEXT_BYTES: usize = 8 * 1024;
const FULL: &str = "[context full]";

#[test]
fn a_context_holds_at_most_64_extra_keys_and_says_so_once() {
    let lines = lines_of(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            for i in 0..100 {
                tracing_ambient::set(&format!("key_{i}"), i);
            }
            info!("after 100 keys");
        });
    });
    let reports: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some("context full"))
        .collect();
    assert_eq!(reports.len(), 1, "reported once: {lines:?}");
    assert_eq!(reports[0].str("level"), Some("warn"));
    assert_eq!(
        reports[0].str("key"),
        Some("key_64"),
        "the first key left out"
    );
    let line = lines
        .iter()
        .find(|l| l.str("message") == Some("after 100 keys"))
        .expect("the event's line");
    let extras: Vec<&str> = line
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("key"))
        .collect();
    assert_eq!(extras.len(), MAX_EXTRA_KEYS);
    for i in 0..MAX_EXTRA_KEYS {
        assert_eq!(
            line.at(&format!("key{i}")),
            &json!(i),
            "camel case of key_{i}"
        );
    }
    // The context's own keys are still there.
    assert_eq!(line.str("requestId"), Some("r1"));
}

#[test]
fn a_value_past_8_kib_is_replaced_and_the_rest_of_the_context_kept() {
    let big = "x".repeat(MAX_CONTEXT_BYTES);
    let lines = lines_of(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            tracing_ambient::set("tenant_id", "acme");
            tracing_ambient::set("claims", big.as_str());
            tracing_ambient::set("claims_again", big.as_str());
            info!("after the claims");
        });
    });
    let reports = lines
        .iter()
        .filter(|l| l.str("message") == Some("context full"))
        .count();
    assert_eq!(reports, 1, "{lines:?}");
    let line = lines
        .iter()
        .find(|l| l.str("message") == Some("after the claims"))
        .expect("the event's line");
    assert_eq!(line.str("claims"), Some(FULL));
    assert_eq!(line.str("claimsAgain"), Some(FULL));
    assert_eq!(line.str("tenantId"), Some("acme"));
    assert_eq!(line.str("requestId"), Some("r1"));
}

#[test]
fn values_that_fit_together_are_kept_whole_and_a_replaced_key_can_shrink_back() {
    let ctx = Context::new();
    // Seven values of 1 KiB and their names fit within 8 KiB.
    let kib = "y".repeat(1024);
    for i in 0..7 {
        ctx.set(&format!("part_{i}"), kib.as_str());
    }
    for i in 0..7 {
        assert_eq!(ctx.get(&format!("part_{i}")).unwrap().to_string(), kib);
    }
    // The eighth would pass the bound.
    ctx.set("part_7", kib.as_str());
    assert_eq!(ctx.get("part_7").unwrap().to_string(), FULL);
    // Setting a key to a smaller value frees its bytes for another.
    ctx.set("part_0", "small");
    ctx.set("part_7", kib.as_str());
    assert_eq!(ctx.get("part_7").unwrap().to_string(), kib);
}
