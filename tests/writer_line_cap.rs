//! Issue 9, test (e): through `init()`'s own stdout writer, an event with a 1 MB field comes
//! out as one valid line under the 16 KiB cap, with every core and context key.

mod common;
mod writer_support;

use tracing_ambient::Context;
use writer_support::{child, is_child, log_lines};

/// The default cap the issue names: 16 KiB, newline included.
const CAP: usize = 16 * 1024;

/// The child: `init()`, then one event with a 1 MB field inside a request.
#[test]
fn child_one_megabyte_field() {
    if !is_child() {
        return;
    }
    let _guard = tracing_ambient::init();
    let huge = "é".repeat(512 * 1024); // 1 MiB of two-byte characters
    Context::new()
        .with_request_id("big-1")
        .with("tenant_id", "acme")
        .in_scope(|| tracing::info!(payload = huge.as_str(), after = 1, "huge field"));
}

#[test]
fn a_one_megabyte_field_through_init_is_one_line_under_the_cap() {
    let output = common::output_within_timeout(&mut child("child_one_megabyte_field"));
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let raw: Vec<&str> = stdout.lines().filter(|l| l.contains('{')).collect();
    assert_eq!(raw.len(), 1, "one line: {stdout:.300}");
    let json_part = &raw[0][raw[0].find('{').unwrap()..];
    assert!(json_part.len() < CAP, "{} bytes", json_part.len());
    let lines = log_lines(&output.stdout);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    for key in ["timestamp", "level", "target"] {
        assert!(line.get(key).is_some(), "{key}");
    }
    assert_eq!(line.str("message"), Some("huge field"));
    assert_eq!(line.str("requestId"), Some("big-1"));
    assert_eq!(line.str("tenantId"), Some("acme"));
    assert_eq!(line.at("after"), &serde_json::json!(1));
    assert_eq!(line.at("truncated"), &serde_json::json!(true));
    let payload = line.str("payload").unwrap();
    assert!(payload.starts_with('é') && payload.ends_with("…[truncated]"));
    println!("1 MB field: one line of {} bytes", json_part.len() + 1);
}
