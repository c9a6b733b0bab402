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
