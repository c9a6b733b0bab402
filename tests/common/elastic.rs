//! Elasticsearch's view of a line: its dotted keys expanded into nested objects as dynamic
//! mapping expands them, and the JSON type of every leaf field across lines.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Line;

/// Expands a line's dotted keys into nested objects, as Elasticsearch's dynamic mapping does.
/// Fails where a key is both a value and an object, or is set twice.
pub fn expand(line: &Line) -> Result<Value, String> {
    let mut root = Map::new();
    for (key, value) in &line.entries {
        let parts: Vec<&str> = key.split('.').collect();
        let (last, path) = parts.split_last().expect("split gives one part at least");
        let mut object = &mut root;
        for (i, part) in path.iter().enumerate() {
            let slot = object
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            object = match slot {
                Value::Object(inner) => inner,
                _ => {
                    return Err(format!(
                        "{key:?}: {:?} is a value, not an object",
                        parts[..=i].join(".")
                    ))
                }
            };
        }
        if object.contains_key(*last) {
            return Err(format!("{key:?} is set twice, or is also an object"));
        }
        object.insert(last.to_string(), value.clone());
    }
    Ok(Value::Object(root))
}

/// The type dynamic mapping gives a value; integers and floats map to different field types.
pub fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Records the type of every leaf field, by its expanded path.
fn leaf_types(prefix: &str, value: &Value, types: &mut BTreeMap<String, Vec<&'static str>>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_types(&path, inner, types);
            }
        }
        leaf => {
            let seen = types.entry(prefix.to_owned()).or_default();
            if !seen.contains(&type_of(leaf)) {
                seen.push(type_of(leaf));
            }
        }
    }
}

/// Expands every line and returns each leaf field's types across them; panics on a conflict.
pub fn indexed_types(lines: &[Line]) -> BTreeMap<String, Vec<&'static str>> {
    let mut types = BTreeMap::new();
    for line in lines {
        let expanded = expand(line).unwrap_or_else(|e| panic!("conflict: {e} in {line:?}"));
        leaf_types("", &expanded, &mut types);
    }
    types
}

/// Expands every line (there must be some) and checks each field keeps one type on all of
/// them; returns the types.
pub fn assert_indexable(lines: &[Line]) -> BTreeMap<String, Vec<&'static str>> {
    assert!(!lines.is_empty(), "no lines to check");
    let types = indexed_types(lines);
    let mixed: Vec<_> = types.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(
        mixed.is_empty(),
        "fields with more than one type: {mixed:?}"
    );
    types
}
