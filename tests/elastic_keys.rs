//! Issue 7 §3: keys every backend indexes. Elasticsearch expands dotted keys into objects
//! (`a.b` is field `b` of object `a`), rejects a document where a key is both a value and an
//! object, and fixes each field's type from the first document. Each test expands its lines as
//! Elasticsearch does and checks there is no conflict, on a line or across lines.

mod common;

use std::error::Error;
use std::fmt;

use common::{elastic, Capture, Line};
use serde_json::json;
use tracing::{error, info};
use tracing_ambient::{Context, JsonLayer, KeyCase, Schema};
use tracing_subscriber::prelude::*;

fn capture_with(layer: impl FnOnce(Capture) -> JsonLayer<Capture>, f: impl FnOnce()) -> Vec<Line> {
    let capture = Capture::default();
    let layer = layer(capture.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.lines()
}

#[derive(Debug)]
struct Failure(&'static str, Option<Box<Failure>>);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[test]
fn an_error_with_and_without_sources_expands_without_conflict() {
    let chained = Failure(
        "query failed",
        Some(Box::new(Failure("connection reset", None))),
    );
    let alone = Failure("not found", None);
    let lines = capture_with(JsonLayer::new, || {
        Context::new().with_request_id("r1").in_scope(|| {
            error!(error = &chained as &dyn Error, "with sources");
            error!(error = &alone as &dyn Error, "without sources");
        });
    });
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].at("error"), &json!("query failed"));
    assert_eq!(lines[0].at("errorSources"), &json!(["connection reset"]));
    assert_eq!(lines[1].at("error"), &json!("not found"));
    assert_eq!(lines[1].get("errorSources"), None);
    elastic::assert_indexable(&lines);
}

#[test]
fn error_sources_follow_the_schema_key_case() {
    let chained = Failure(
        "query failed",
        Some(Box::new(Failure("connection reset", None))),
    );
    let lines = capture_with(
        |c| JsonLayer::new(c).schema(Schema::DEFAULT.with_extra_keys(KeyCase::Snake)),
        || error!(db_error = &chained as &dyn Error, "failed"),
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].at("db_error_sources"),
        &json!(["connection reset"])
    );
    elastic::assert_indexable(&lines);
}

#[test]
fn fields_that_are_dotted_prefixes_of_each_other_are_renamed() {
    let lines = capture_with(JsonLayer::new, || {
        info!(a = 1, a.b = 2, "value first");
        info!(c.d = 1, c = 2, "object first");
        info!(e.f.g = 1, e.f = 2, e = 3, "three levels");
    });
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].at("a"), &json!(1));
    assert_eq!(lines[0].at("fields.a.b"), &json!(2));
    assert_eq!(lines[1].at("c.d"), &json!(1));
    assert_eq!(lines[1].at("fields.c"), &json!(2));
    assert_eq!(lines[2].at("e.f.g"), &json!(1));
    // `fields.e.f` and then `fields.e` would conflict with each other too.
    assert_eq!(lines[2].at("fields.e.f"), &json!(2));
    assert_eq!(lines[2].at("fields.fields.e"), &json!(3));
    for line in &lines {
        elastic::expand(line).unwrap_or_else(|e| panic!("conflict: {e} in {line:?}"));
    }
}

#[test]
fn context_keys_win_over_dotted_fields_and_core_keys_over_both() {
    let lines = capture_with(
        |c| JsonLayer::new(c).schema(Schema::DEFAULT.with_level_key("log.level")),
        || {
            Context::new()
                .with_request_id("r1")
                .with("http", "ctx")
                .in_scope(|| info!(http.status = 200, log = "field", "mixed"));
        },
    );
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.at("log.level"), &json!("info"));
    assert_eq!(line.at("http"), &json!("ctx"));
    assert_eq!(line.at("fields.http.status"), &json!(200));
    assert_eq!(line.at("fields.log"), &json!("field"));
    elastic::assert_indexable(&lines);
}

#[test]
fn a_context_key_that_is_a_prefix_of_a_core_key_is_renamed() {
    let lines = capture_with(
        |c| JsonLayer::new(c).schema(Schema::DEFAULT.with_level_key("log.level")),
        || {
            Context::new()
                .with("log", "ctx")
                .in_scope(|| info!("context key log"));
        },
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].at("context.log"), &json!("ctx"));
    elastic::assert_indexable(&lines);
}
