//! Issue 9 §5: a line longer than the cap (default 16 KiB: Docker's json-file driver splits
//! longer lines into partial messages) is cut at value boundaries: long string values are
//! truncated with a marker, the line stays one valid JSON object with every core and context
//! key, and `"truncated":true` says so.

mod common;

use std::error::Error;
use std::fmt;

use common::{Capture, Line};
use serde_json::json;
use tracing::{error, info};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

/// The default cap, from the issue: 16 KiB, newline included.
const CAP: usize = 16 * 1024;
/// The marker the docs promise at the end of a cut value.
const MARK: &str = "…[truncated]";

/// Logs `f` inside a request with context keys; returns each raw line and its parse.
fn lines_of(layer: JsonLayer<Capture>, capture: &Capture, f: impl FnOnce()) -> Vec<(usize, Line)> {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        Context::new()
            .with_request_id("r1")
            .with_user_id(42)
            .with("tenant_id", "acme")
            .in_scope(f);
    });
    let text = capture.text();
    let raw: Vec<&str> = text.split_inclusive('\n').collect();
    let parsed = capture.lines();
    assert_eq!(raw.len(), parsed.len());
    raw.iter().map(|l| l.len()).zip(parsed).collect()
}

fn default_lines(f: impl FnOnce()) -> Vec<(usize, Line)> {
    let capture = Capture::default();
    lines_of(JsonLayer::new(capture.clone()), &capture, f)
}

/// Every core and context key is there, whole.
fn assert_core_and_context(line: &Line) {
    for key in ["timestamp", "level", "target"] {
        assert!(line.get(key).is_some(), "{key} missing: {line:?}");
    }
    assert_eq!(line.at("requestId"), &json!("r1"));
    assert_eq!(line.at("userId"), &json!(42));
    assert_eq!(line.at("tenantId"), &json!("acme"));
}

fn assert_cut(value: &serde_json::Value, prefix_char: char) {
    let text = value.as_str().expect("a cut value stays a string");
    assert!(
        text.ends_with(MARK),
        "no marker at the end of {:?}",
        &text[..40.min(text.len())]
    );
    assert!(text.starts_with(prefix_char));
}

#[test]
fn a_one_megabyte_field_gives_one_valid_line_under_the_cap() {
    let huge = "x".repeat(1 << 20);
    let lines = default_lines(|| info!(payload = huge.as_str(), small = 7, "big"));
    assert_eq!(lines.len(), 1);
    let (len, line) = &lines[0];
    assert!(*len <= CAP, "line is {len} bytes");
    assert_core_and_context(line);
    assert_eq!(line.at("message"), &json!("big"));
    assert_eq!(line.at("small"), &json!(7));
    assert_cut(line.at("payload"), 'x');
    assert_eq!(line.at("truncated"), &json!(true));
}

#[test]
fn huge_messages_debug_values_and_errors_are_cut_too() {
    #[derive(Debug)]
    #[allow(dead_code)] // read by Debug only
    struct Big(Vec<u8>);
    #[derive(Debug)]
    struct BigError(String, Option<Box<BigError>>);
    impl fmt::Display for BigError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl Error for BigError {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }
    let big = Big(vec![1; 300_000]);
    let err = BigError(
        "e".repeat(500_000),
        Some(Box::new(BigError("c".repeat(500_000), None))),
    );
    let message = "m".repeat(400_000);
    let lines = default_lines(|| {
        info!(value = ?big, "debug");
        error!(error = &err as &dyn Error, "error");
        info!("{message}");
    });
    assert_eq!(lines.len(), 3);
    for (len, line) in &lines {
        assert!(*len <= CAP, "line is {len} bytes");
        assert_core_and_context(line);
        assert_eq!(line.at("truncated"), &json!(true));
    }
    assert_cut(lines[0].1.at("value"), 'B');
    assert_cut(lines[1].1.at("error"), 'e');
    let sources = lines[1].1.at("errorSources").as_array().unwrap().clone();
    assert_eq!(sources.len(), 1);
    assert_cut(&sources[0], 'c');
    assert_cut(lines[2].1.at("message"), 'm');
}

#[test]
fn escaping_that_multiplies_the_size_is_still_cut_under_the_cap() {
    let controls = "\u{1}".repeat(100_000); // six bytes each once escaped
    let lines = default_lines(|| info!(controls = controls.as_str(), "controls"));
    assert_eq!(lines.len(), 1);
    let (len, line) = &lines[0];
    assert!(*len <= CAP, "line is {len} bytes");
    assert_cut(line.at("controls"), '\u{1}');
}

#[test]
fn too_many_fields_leave_out_the_last_ones() {
    let chunk = "y".repeat(60);
    let lines = default_lines(|| {
        macro_rules! many {
            ($($name:ident)*) => { info!($($name = chunk.as_str(),)* "many") };
        }
        many!(a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 b0 b1 b2 b3 b4 b5 b6 b7 b8 b9
              c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 d0 d1 d2 d3 d4 d5 d6 d7 d8 d9
              e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 f0 f1 f2 f3 f4 f5 f6 f7 f8 f9
              g0 g1 g2 g3 g4 g5 g6 g7 g8 g9 h0 h1 h2 h3 h4 h5 h6 h7 h8 h9
              i0 i1 i2 i3 i4 i5 i6 i7 i8 i9 j0 j1 j2 j3 j4 j5 j6 j7 j8 j9);
    });
    assert_eq!(lines.len(), 1);
    let (len, line) = &lines[0];
    // 100 fields of ~68 bytes is under 16 KiB: this line is whole.
    assert!(*len <= CAP);
    assert_eq!(line.get("truncated"), None);
    assert_eq!(line.at("j9"), &json!(chunk));

    let capture = Capture::default();
    let small = JsonLayer::new(capture.clone()).max_line_bytes(2048);
    let lines = lines_of(small, &capture, || {
        macro_rules! many {
            ($($name:ident)*) => { info!($($name = chunk.as_str(),)* "many") };
        }
        many!(a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 b0 b1 b2 b3 b4 b5 b6 b7 b8 b9
              c0 c1 c2 c3 c4 c5 c6 c7 c8 c9 d0 d1 d2 d3 d4 d5 d6 d7 d8 d9
              e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 f0 f1 f2 f3 f4 f5 f6 f7 f8 f9);
    });
    assert_eq!(lines.len(), 1);
    let (len, line) = &lines[0];
    assert!(*len <= 2048, "line is {len} bytes");
    assert_core_and_context(line);
    assert_eq!(line.at("truncated"), &json!(true));
    assert!(line.get("a0").is_some(), "the first fields are kept");
    assert!(line.get("f9").is_none(), "the last fields are left out");
}

#[test]
fn lines_under_the_cap_are_untouched_and_the_cap_is_configurable() {
    let value = "z".repeat(100_000);
    let capture = Capture::default();
    let loki = JsonLayer::new(capture.clone()).max_line_bytes(256 * 1024);
    let lines = lines_of(loki, &capture, || info!(value = value.as_str(), "whole"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1.at("value"), &json!(value));
    assert_eq!(lines[0].1.get("truncated"), None);

    let lines = default_lines(|| info!(short = "s", "small"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1.get("truncated"), None);
}

#[test]
fn a_field_named_like_the_truncated_key_is_renamed() {
    let huge = "x".repeat(100_000);
    let lines = default_lines(|| info!(truncated = "mine", payload = huge.as_str(), "clash"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1.at("fields.truncated"), &json!("mine"));
    assert_eq!(lines[0].1.at("truncated"), &json!(true));
}

/// Issue 19 §4: a context value is cut too, last: a large `set("claims", ..)` made every
/// later line of the request exceed the cap. A context holds at most 8 KiB of values, so this
/// takes a cap of 4 KiB. The request id, short, stays whole; the long string is cut to 64
/// bytes and the marker; a long array becomes `null` (a cut array would change the key's
/// type); the event's own fields are cut first.
#[test]
fn context_values_are_cut_last_but_cut() {
    const SMALL_CAP: usize = 4 * 1024;
    let capture = Capture::default();
    let claims = "é".repeat(2_500); // 5,000 bytes, two per character
    let groups: Vec<String> = (0..200).map(|i| format!("group-{i}")).collect();
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new(capture.clone()).max_line_bytes(SMALL_CAP));
    tracing::subscriber::with_default(subscriber, || {
        Context::new()
            .with_request_id("r1")
            .with("claims", claims.as_str())
            .with("groups", &groups)
            .in_scope(|| {
                info!(payload = "p".repeat(40_000).as_str(), "with a big context");
                info!("small event, big context");
            });
    });
    let text = capture.text();
    let raw: Vec<&str> = text.split_inclusive('\n').collect();
    let lines = capture.lines();
    assert_eq!(lines.len(), 2);
    for (raw, line) in raw.iter().zip(&lines) {
        assert!(raw.len() <= SMALL_CAP, "{} bytes", raw.len());
        assert_eq!(line.at("requestId"), &json!("r1"));
        assert_eq!(line.at("truncated"), &json!(true));
        let cut = line.at("claims").as_str().expect("a string stays a string");
        assert!(cut.ends_with(MARK), "{cut:?}");
        let kept = cut.strip_suffix(MARK).unwrap();
        assert!(kept.len() <= 64, "{} bytes kept", kept.len());
        assert!(
            kept.chars().all(|c| c == 'é'),
            "cut at a character boundary"
        );
        assert_eq!(line.at("groups"), &json!(null));
    }
    // The event's own field was cut in an earlier pass: it is there, cut, as well.
    assert_cut(lines[0].at("payload"), 'p');
}

/// A context that fits is never cut, whatever the event does.
#[test]
fn a_context_that_fits_stays_whole_when_the_event_is_cut() {
    let claims = "c".repeat(2_000);
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(JsonLayer::new(capture.clone()).max_line_bytes(CAP));
    tracing::subscriber::with_default(subscriber, || {
        Context::new()
            .with("claims", claims.as_str())
            .in_scope(|| info!(payload = "p".repeat(40_000).as_str(), "big event"));
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].at("claims"), &json!(claims));
    assert_cut(lines[0].at("payload"), 'p');
}
