//! The shape of a line: key order, JSON types, timestamp, precedence of duplicate keys.

mod common;

use std::error::Error;
use std::fmt;

use common::Capture;
use serde_json::json;
use tracing::{info, info_span, warn};
use tracing_ambient::{Context, JsonLayer, Schema};
use tracing_subscriber::prelude::*;

fn capture_with(
    layer: impl FnOnce(JsonLayer<Capture>) -> JsonLayer<Capture>,
    f: impl FnOnce(),
) -> Vec<common::Line> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(layer(JsonLayer::new(capture.clone())));
    tracing::subscriber::with_default(subscriber, f);
    capture.lines()
}

fn capture(f: impl FnOnce()) -> Vec<common::Line> {
    capture_with(|l| l, f)
}

#[test]
fn default_line_has_core_then_context_then_target_then_fields() {
    let lines = capture(|| {
        Context::new()
            .with_request_id("9f1c")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with_span_id("00f067aa0ba902b7")
            .with("tenant_id", "acme")
            .in_scope(|| {
                tracing_ambient::set_user_id(42);
                info!(
                    order_id = 42,
                    amount = 19.99,
                    sku = "ABC-123",
                    paid = true,
                    "order placed"
                );
            });
    });
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "level",
            "message",
            "requestId",
            "userId",
            "traceId",
            "spanId",
            "tenantId",
            "target",
            "order_id",
            "amount",
            "sku",
            "paid"
        ]
    );
    assert_eq!(line.at("level"), &json!("info"));
    assert_eq!(line.at("message"), &json!("order placed"));
    assert_eq!(line.at("requestId"), &json!("9f1c"));
    assert_eq!(line.at("userId"), &json!(42));
    assert_eq!(line.at("tenantId"), &json!("acme"));
    assert_eq!(line.at("target"), &json!("line_shape"));
    assert_eq!(line.at("order_id"), &json!(42));
    assert_eq!(line.at("amount"), &json!(19.99));
    assert_eq!(line.at("paid"), &json!(true));
}

#[test]
fn timestamp_is_rfc3339_utc_with_microseconds() {
    let lines = capture(|| info!("tick"));
    let ts = lines[0].str("timestamp").unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    let parsed = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert_eq!(parsed.offset(), time::UtcOffset::UTC);
    assert!(ts.ends_with('Z'));
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(age.whole_seconds().abs() < 60, "timestamp is now: {ts}");
}

#[test]
fn lines_without_context_have_no_context_keys() {
    let lines = capture(|| warn!(n = -3i64, "no request"));
    assert_eq!(
        lines[0].keys(),
        ["timestamp", "level", "message", "target", "n"]
    );
    assert_eq!(lines[0].at("level"), &json!("warn"));
}

#[test]
fn late_user_id_reaches_child_spans() {
    let lines = capture(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            let child = info_span!("child");
            let grandchild = child.in_scope(|| info_span!("grandchild"));
            tracing_ambient::set_user_id("u-7");
            grandchild.in_scope(|| info!("from grandchild"));
        });
    });
    assert_eq!(lines[0].at("userId"), &json!("u-7"));
    assert_eq!(lines[0].at("requestId"), &json!("r1"));
}

#[test]
fn colliding_keys_are_renamed_never_duplicated() {
    let lines = capture_with(
        |l| l.static_field("service", "shop").static_field("level", "x"),
        || {
            Context::new()
                .with_request_id("r1")
                .with("message", "ctx-message")
                .with("service", "ctx-service")
                .in_scope(|| {
                    info!(
                        requestId = "field",
                        target = "field-target",
                        timestamp = 1,
                        service = "field-service",
                        tenantId = 5,
                        "hello"
                    );
                });
        },
    );
    let line = &lines[0];
    assert_eq!(line.at("message"), &json!("hello"));
    assert_eq!(line.at("context.message"), &json!("ctx-message"));
    assert_eq!(line.at("context.service"), &json!("ctx-service"));
    assert_eq!(line.at("service"), &json!("shop"));
    assert_eq!(line.at("fields.level"), &json!("x"));
    assert_eq!(line.at("level"), &json!("info"));
    assert_eq!(line.at("requestId"), &json!("r1"));
    assert_eq!(line.at("fields.requestId"), &json!("field"));
    assert_eq!(line.at("target"), &json!("line_shape"));
    assert_eq!(line.at("fields.target"), &json!("field-target"));
    assert_eq!(line.at("fields.timestamp"), &json!(1));
    assert_eq!(line.at("fields.service"), &json!("field-service"));
    assert_eq!(
        line.at("tenantId"),
        &json!(5),
        "no context key tenantId, so the field keeps its name"
    );
}

#[test]
fn a_renamed_key_that_collides_again_is_renamed_again() {
    let lines = capture(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            info!(requestId = 1, "fields.requestId" = 2, "x");
        });
    });
    assert_eq!(lines[0].at("requestId"), &json!("r1"));
    assert_eq!(lines[0].at("fields.requestId"), &json!(1));
    assert_eq!(lines[0].at("fields.fields.requestId"), &json!(2));
}

#[derive(Debug)]
struct Layered {
    msg: &'static str,
    source: Option<Box<Layered>>,
}

impl fmt::Display for Layered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.msg)
    }
}

impl Error for Layered {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[test]
fn errors_are_written_with_their_source_chain() {
    let err = Layered {
        msg: "could not place order",
        source: Some(Box::new(Layered {
            msg: "database unavailable",
            source: Some(Box::new(Layered {
                msg: "connection \"refused\"",
                source: None,
            })),
        })),
    };
    let lines = capture(|| tracing::error!(error = &err as &dyn Error, "failed"));
    assert_eq!(lines[0].at("error"), &json!("could not place order"));
    assert_eq!(
        lines[0].at("errorSources"),
        &json!(["database unavailable", "connection \"refused\""])
    );
    let single = Layered {
        msg: "alone",
        source: None,
    };
    let lines = capture(|| tracing::error!(error = &single as &dyn Error));
    assert_eq!(lines[0].at("error"), &json!("alone"));
    assert!(lines[0].get("errorSources").is_none());
    assert!(
        lines[0].get("message").is_none(),
        "an event without a message has no message key"
    );
}

#[test]
fn optional_keys_and_schema_change_the_names() {
    let lines = capture_with(
        |l| {
            l.with_file(true)
                .with_line_number(true)
                .with_thread_names(true)
                .with_span_name(true)
                .with_target(false)
                .schema(
                    Schema::DEFAULT
                        .with_request_id_key("request_id")
                        .with_timestamp_key("@timestamp"),
                )
        },
        || {
            Context::new()
                .with_request_id("r1")
                .with("tenant_id", "a")
                .in_scope(|| {
                    info_span!("handler").in_scope(|| info!("x"));
                })
        },
    );
    let line = &lines[0];
    assert_eq!(
        line.keys(),
        [
            "@timestamp",
            "level",
            "message",
            "request_id",
            "tenantId",
            "file",
            "line",
            "threadName",
            "span"
        ]
    );
    assert_eq!(line.at("file"), &json!("tests/line_shape.rs"));
    assert!(line.at("line").as_u64().unwrap() > 0);
    assert_eq!(line.at("span"), &json!("handler"));
    assert!(line.str("threadName").unwrap().contains("optional_keys"));
}

#[test]
fn snake_case_schema_writes_extras_as_set() {
    let lines = capture_with(
        |l| l.schema(Schema::DEFAULT.with_extra_keys(tracing_ambient::KeyCase::Snake)),
        || Context::new().with("tenantId", "a").in_scope(|| info!("x")),
    );
    assert_eq!(lines[0].at("tenant_id"), &json!("a"));
}

#[test]
fn promoted_span_fields_become_context_keys() {
    let lines = capture_with(
        |l| {
            l.promote_span_field("tenant_id")
                .promote_span_field("user_id")
        },
        || {
            Context::new().with_request_id("r1").in_scope(|| {
                let span = info_span!("auth", tenant_id = "acme", user_id = tracing::field::Empty);
                span.record("user_id", 42);
                span.in_scope(|| info!("inside"));
                info!("after, same request");
            });
            info_span!("outside", tenant_id = "nobody").in_scope(|| info!("no request"));
        },
    );
    for line in &lines[..2] {
        assert_eq!(line.at("tenantId"), &json!("acme"));
        assert_eq!(line.at("userId"), &json!(42));
    }
    assert!(lines[2].get("tenantId").is_none());
}

#[test]
fn debug_and_display_values_are_strings() {
    #[derive(Debug)]
    #[allow(dead_code)] // read by Debug
    struct Order {
        id: u32,
    }
    let order = Order { id: 7 };
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(
        subscriber,
        || info!(order = ?order, shown = %"a\"b", big = u128::MAX, neg = i128::MIN, "x"),
    );
    let lines = capture.lines();
    assert_eq!(lines[0].at("order"), &json!("Order { id: 7 }"));
    assert_eq!(lines[0].at("shown"), &json!("a\"b"));
    // serde_json reads integers past 64 bits as floats; the digits themselves are exact.
    assert_eq!(lines[0].at("big").as_f64(), Some(u128::MAX as f64));
    assert_eq!(lines[0].at("neg").as_f64(), Some(i128::MIN as f64));
    let text = capture.text();
    assert!(text.contains(&format!(r#""big":{},"#, u128::MAX)), "{text}");
    assert!(
        text.contains(&format!(r#""neg":{}}}"#, i128::MIN)),
        "{text}"
    );
}

#[test]
fn a_panicking_debug_impl_is_replaced_and_the_line_kept() {
    struct Boom;
    impl fmt::Debug for Boom {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("Debug impl panicked")
        }
    }
    let lines = capture(|| info!(boom = ?Boom, after = 1, "still here"));
    let line = lines.last().unwrap();
    assert_eq!(line.at("message"), &json!("still here"));
    assert_eq!(line.at("boom"), &json!("<panicked while formatting>"));
    assert_eq!(line.at("after"), &json!(1));
}

#[test]
fn log_crate_records_are_written_with_their_target() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // The bridge converts `log` records into tracing events; feed it one directly.
        use tracing_ambient::Context;
        use tracing_log::log::Log;
        Context::new().with_request_id("r-log").in_scope(|| {
            tracing_log::LogTracer::new().log(
                &tracing_log::log::Record::builder()
                    .args(format_args!("from log {}", 1))
                    .level(tracing_log::log::Level::Warn)
                    .target("legacy::module")
                    .file(Some("legacy.rs"))
                    .line(Some(3))
                    .build(),
            );
        });
    });
    let lines = capture.lines();
    assert_eq!(lines[0].at("message"), &json!("from log 1"));
    assert_eq!(lines[0].at("level"), &json!("warn"));
    assert_eq!(lines[0].at("target"), &json!("legacy::module"));
    assert_eq!(lines[0].at("requestId"), &json!("r-log"));
    assert!(
        lines[0].keys().iter().all(|k| !k.starts_with("log.")),
        "{:?}",
        lines[0].keys()
    );
}

#[test]
fn a_second_message_field_is_renamed_not_duplicated() {
    // tracing puts the formatted message first; the explicit field is the second `message`.
    let lines = capture(|| info!(message = "explicit", "formatted {}", 1));
    assert_eq!(lines[0].at("message"), &json!("formatted 1"));
    assert_eq!(lines[0].at("fields.message"), &json!("explicit"));
}

#[test]
fn schema_keys_that_collide_are_renamed() {
    let lines = capture_with(
        |l| {
            l.schema(
                Schema::DEFAULT
                    .with_target_key("message")
                    .with_level_key("timestamp")
                    .with_request_id_key("message"),
            )
        },
        || {
            Context::new()
                .with_request_id("r1")
                .in_scope(|| info!("hello"))
        },
    );
    let line = &lines[0];
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "fields.timestamp",
            "message",
            "context.message",
            "fields.message"
        ]
    );
    assert_eq!(line.at("fields.timestamp"), &json!("info"));
    assert_eq!(line.at("message"), &json!("hello"));
    assert_eq!(line.at("fields.message"), &json!("line_shape"));
    assert_eq!(line.at("context.message"), &json!("r1"));
}

#[test]
fn redacted_fields_and_context_keys_are_never_written() {
    struct Secret;
    impl fmt::Debug for Secret {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("a redacted value is never formatted")
        }
    }
    let lines = capture_with(
        |l| {
            l.redact_field("password")
                .redact_field("apiToken")
                .redact_field("userId")
        },
        || {
            Context::new()
                .with_request_id("r1")
                .with_user_id(42)
                .with("api_token", "t0k3n")
                .in_scope(|| info!(password = ?Secret, apiToken = "x", order_id = 7, "login"));
        },
    );
    let line = &lines[0];
    assert_eq!(line.at("password"), &json!("[REDACTED]"));
    assert_eq!(line.at("fields.apiToken"), &json!("[REDACTED]"));
    assert_eq!(line.at("apiToken"), &json!("[REDACTED]"));
    assert_eq!(line.at("userId"), &json!("[REDACTED]"));
    assert_eq!(line.at("requestId"), &json!("r1"));
    assert_eq!(line.at("order_id"), &json!(7));
}

// === found by the property tests of `tests/prop_lines.rs` (issue 19 §2) ===

/// Runs `f` on a thread of its own and returns the text it logged under the default
/// schema; fails if `f` has not returned within 10 s (a layer that loops forever).
fn logged_within_a_bound(f: fn()) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let capture = Capture::default();
        let layer = JsonLayer::new(capture.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let _ = tx.send(capture.text());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the event was logged within 10 s (a thread that does not return spins forever)")
}

/// Found by `any_field_name_through_the_log_bridge` (`tests/prop_lines.rs`): a field named `fields`, then a field
/// that has to be renamed. Every rename (`fields.requestId`, `fields.fields.requestId`, …)
/// had `fields` as its dotted prefix, so the layer renamed forever and the thread that
/// logged never returned. A key made only of `fields` or `context`, the roots of the renames,
/// now gets a `_` ("Duplicate keys").
#[test]
fn a_field_named_fields_does_not_make_renames_loop_forever() {
    let text = logged_within_a_bound(|| {
        Context::new()
            .with_request_id("r1")
            .in_scope(|| info!(fields = 1, requestId = 2, "x"))
    });
    let line = common::parse_line(text.trim_end());
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "level",
            "message",
            "requestId",
            "target",
            "fields_",
            "fields.requestId"
        ]
    );
    assert_eq!(line.at("requestId"), &json!("r1"));
    assert_eq!(line.at("fields_"), &json!(1));
    assert_eq!(line.at("fields.requestId"), &json!(2));
}

/// The same for the context: a context key `context`, then one named like a core key, whose
/// rename `context.message` had `context` as its dotted prefix.
#[test]
fn a_context_key_named_context_does_not_make_renames_loop_forever() {
    let text = logged_within_a_bound(|| {
        Context::new()
            .with("context", 1)
            .with("message", 2)
            .in_scope(|| info!("x"))
    });
    let line = common::parse_line(text.trim_end());
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "level",
            "message",
            "context_",
            "context.message",
            "target"
        ]
    );
    assert_eq!(line.at("message"), &json!("x"));
    assert_eq!(line.at("context_"), &json!(1));
    assert_eq!(line.at("context.message"), &json!(2));
}

/// Found by `any_field_name_through_the_log_bridge` after the fix above: a field renamed
/// `fields.fields` (from `fields`) was the dotted prefix of every rename of a key starting
/// with `fields.` (`fields.fields.x`, `fields.fields.fields.x`, …), and the layer again
/// renamed forever. No key made only of `fields` (or `context`) repeated goes on a line.
#[test]
fn repeated_rename_roots_do_not_make_renames_loop_forever() {
    let text = logged_within_a_bound(|| {
        let pairs = [
            ("fields", 1),
            ("fields.x", 2),
            ("fields.x", 3),
            ("fields.fields", 4),
        ];
        log::Log::log(
            &tracing_ambient::LogBridge::new(),
            &log::Record::builder()
                .args(format_args!("x"))
                .level(log::Level::Info)
                .target("line_shape")
                .key_values(&pairs)
                .build(),
        );
    });
    let line = common::parse_line(text.trim_end());
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "level",
            "message",
            "target",
            "fields_",
            "fields.x",
            "fields.fields.x",
            "fields.fields_"
        ]
    );
    let values: Vec<_> = line.entries[4..].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values, [json!(1), json!(2), json!(3), json!(4)]);

    let text = logged_within_a_bound(|| {
        Context::new()
            .with("context.context", 1)
            .with("message", 2)
            .with("context.message", 3)
            .in_scope(|| info!("x"))
    });
    let line = common::parse_line(text.trim_end());
    assert_eq!(
        line.keys(),
        [
            "timestamp",
            "level",
            "message",
            "context.context_",
            "context.message",
            "context.context.message",
            "target"
        ]
    );
    let values: Vec<_> = line.entries[3..6].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values, [json!(1), json!(2), json!(3)]);
}

/// Fifty keys fill the line's key filter, so a context's extra keys are checked against the
/// keys written before them only when they cannot collide with each other. Every schema,
/// with keys that collide with the line's own keys (and, under ECS, are the dotted prefix of
/// one: `trace` of `trace.id`, `log` of `log.level`), and pairs of extra keys that collide:
/// every line parses with no key twice, expands as Elasticsearch would, and carries each
/// context value exactly once.
#[test]
fn many_context_keys_never_take_each_others_or_the_lines_keys() {
    let colliding = [
        "level",
        "message",
        "timestamp",
        "target",
        "fields",
        "context",
        "trace",
        "log",
        "severity",
        "status",
        "service",
        "dd",
    ];
    for schema in [
        Schema::DEFAULT,
        Schema::ecs(),
        Schema::otel(),
        Schema::gcp("p"),
        Schema::datadog(),
    ] {
        // Keys that could take each other's place: none; `x_y` and `x__y`, both `xY` in camel
        // case; `ab` and `ab.cd`, of which Elasticsearch makes one object.
        for twins in [&[][..], &["x_y", "x__y"], &["ab", "ab.cd"]] {
            let mut names: Vec<String> = (0..48).map(|i| format!("extra_key_{i}")).collect();
            names.extend(colliding.iter().map(|k| k.to_string()));
            names.extend(twins.iter().map(|k| k.to_string()));
            let lines = capture_with(
                |l| l.schema(schema).static_field("service", "shop"),
                || {
                    let ctx = Context::new()
                        .with_request_id("r1")
                        .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                        .with_span_id("00f067aa0ba902b7");
                    for name in &names {
                        ctx.set(name, format!("value of {name}"));
                    }
                    ctx.in_scope(|| info!(extra_key_3 = "a field", "hello"));
                },
            );
            assert_eq!(lines.len(), 1, "{schema:?}");
            let line = &lines[0];
            common::elastic::expand(line).unwrap_or_else(|e| panic!("{schema:?}: {e}"));
            for name in &names {
                let value = format!("value of {name}");
                let found = line
                    .entries
                    .iter()
                    .filter(|(_, v)| v.as_str() == Some(value.as_str()))
                    .count();
                assert_eq!(found, 1, "{schema:?}, {name}: {line:?}");
            }
            let field = line.entries.iter().filter(|(_, v)| v == "a field").count();
            assert_eq!(field, 1, "the event's field too: {line:?}");
        }
    }
}
