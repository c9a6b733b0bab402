//! `Context` as a small serde map, so it can ride in a job payload and be re-entered in
//! another process: `{"request_id":"job-7","user_id":42,"tenant_id":"acme"}`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{Context, Value};

/// Serializes the entries as a map of snake-case keys, well-known keys first.
impl Serialize for Context {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.read();
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in entries.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The most keys a deserialized context may have. A context is a handful of keys; the limit
/// keeps a hostile payload from making the worker do quadratic work.
const MAX_KEYS: usize = 1024;

/// Deserializes into a new context (a store of its own). `null` values are skipped; a payload
/// with more than 1,024 keys is an error.
impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ContextVisitor)
    }
}

struct ContextVisitor;

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of context keys to JSON values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
        let ctx = Context::new();
        let mut keys = 0;
        while let Some((key, value)) = map.next_entry::<String, Option<Value>>()? {
            keys += 1;
            if keys > MAX_KEYS {
                return Err(serde::de::Error::custom(format_args!(
                    "a context has at most {MAX_KEYS} keys"
                )));
            }
            if let Some(value) = value {
                ctx.set_value(&key, value);
            }
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_a_small_map() {
        let ctx = Context::new()
            .with("tenant_id", "acme")
            .with_request_id("job-7")
            .with_user_id(42);
        let text = serde_json::to_string(&ctx).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"request_id": "job-7", "user_id": 42, "tenant_id": "acme"})
        );
        let back: Context = serde_json::from_str(&text).unwrap();
        assert_eq!(back.entries(), ctx.entries());
        assert!(!back.same_as(&ctx));
    }

    #[test]
    fn nested_values_ride_along_and_huge_payloads_are_rejected() {
        let ctx: Context =
            serde_json::from_str(r#"{"user":{"id":1,"roles":["a"]},"user_id":null}"#).unwrap();
        assert_eq!(
            ctx.get("user").unwrap().to_string(),
            r#"{"id":1,"roles":["a"]}"#
        );
        assert_eq!(ctx.get("user_id"), None, "null values are skipped");
        let huge: serde_json::Map<String, serde_json::Value> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), i.into()))
            .collect();
        let err = serde_json::from_value::<Context>(huge.into()).unwrap_err();
        assert!(err.to_string().contains("at most 1024 keys"), "{err}");
    }
}
