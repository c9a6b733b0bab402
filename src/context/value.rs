//! The values a context holds: strings, numbers, booleans, and arrays and objects of them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::json;

/// A value in a request context.
///
/// Values keep their JSON type on the line: `set_user_id(42)` writes `"userId":42` and
/// `set_user_id("42")` writes `"userId":"42"`. [`Context::set`](crate::context::Context::set) takes any
/// `serde::Serialize` value and keeps it as a `Value`: arrays and objects nest
/// (`set("roles", ["admin", "editor"])` writes `"roles":["admin","editor"]`).
///
/// # Examples
///
/// ```
/// use tracing_ambient::Value;
///
/// assert_eq!(Value::from(42u32), Value::I64(42));
/// assert_eq!(Value::from(u64::MAX), Value::U64(u64::MAX));
/// assert_eq!(Value::from("acme").to_string(), "acme");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string.
    Str(Box<str>),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer above `i64::MAX` (smaller ones are `I64`).
    U64(u64),
    /// A float. NaN and infinities are written as the strings `"NaN"`, `"inf"` and `"-inf"`.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// `null` (a `None`, a unit), inside arrays and objects.
    Null,
    /// An array.
    Array(Vec<Value>),
    /// An object, its keys in the order they were serialized, each once.
    Object(Vec<(Box<str>, Value)>),
}

// === impl Value ===

impl Value {
    /// Returns the string if this value is one.
    ///
    /// ```
    /// use tracing_ambient::Value;
    ///
    /// assert_eq!(Value::from("job-7").as_str(), Some("job-7"));
    /// assert_eq!(Value::from(7).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Appends this value as JSON.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => json::write_str(out, s),
            Value::I64(v) => json::write_i64(out, *v),
            Value::U64(v) => json::write_u64(out, *v),
            Value::F64(v) => json::write_f64(out, *v),
            Value::Bool(v) => json::write_bool(out, *v),
            Value::Null => out.extend_from_slice(b"null"),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(entries) => {
                out.push(b'{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_key(out, key);
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Strings are written as they are; numbers and booleans as Rust prints them; `null`, arrays
/// and objects as JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(v) => fmt::Display::fmt(v, f),
            Value::U64(v) => fmt::Display::fmt(v, f),
            Value::F64(v) => fmt::Display::fmt(v, f),
            Value::Bool(v) => fmt::Display::fmt(v, f),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                let mut out = Vec::new();
                self.write_json(&mut out);
                f.write_str(&String::from_utf8_lossy(&out))
            }
        }
    }
}

macro_rules! from_int {
    ($variant:ident as $as:ty: $($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(value: $t) -> Self {
                Value::$variant(value as $as)
            }
        }
    )*};
}

from_int!(I64 as i64: i8, i16, i32, i64, isize);
from_int!(I64 as i64: u8, u16, u32);

// Unsigned values that fit are kept as `I64`, as a JSON reader would read them back, so that a
// context survives a round trip through a job payload unchanged.
macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(value: $t) -> Self {
                let value = value as u64;
                i64::try_from(value).map_or(Value::U64(value), Value::I64)
            }
        }
    )*};
}

from_unsigned!(u64, usize);
from_int!(F64 as f64: f32, f64);

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Str(value.into())
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::Str(value.as_str().into())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Str(value.into_boxed_str())
    }
}

impl From<Box<str>> for Value {
    fn from(value: Box<str>) -> Self {
        Value::Str(value)
    }
}

impl From<Cow<'_, str>> for Value {
    fn from(value: Cow<'_, str>) -> Self {
        Value::Str(value.into())
    }
}

/// Non-finite floats serialize as the strings `"NaN"`, `"inf"` and `"-inf"`, as on the line,
/// so that a format without them (JSON) does not turn them into `null`.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(s) => serializer.serialize_str(s),
            Value::I64(v) => serializer.serialize_i64(*v),
            Value::U64(v) => serializer.serialize_u64(*v),
            Value::F64(v) if v.is_finite() => serializer.serialize_f64(*v),
            Value::F64(v) if v.is_nan() => serializer.serialize_str("NaN"),
            Value::F64(v) if *v > 0.0 => serializer.serialize_str("inf"),
            Value::F64(_) => serializer.serialize_str("-inf"),
            Value::Bool(v) => serializer.serialize_bool(*v),
            Value::Null => serializer.serialize_unit(),
            Value::Array(items) => serializer.collect_seq(items),
            Value::Object(entries) => {
                serializer.collect_map(entries.iter().map(|(k, v)| (&**k, v)))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Box<str>, Value)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            match entries.iter_mut().find(|(k, _)| **k == *key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.into_boxed_str(), value)),
            }
        }
        Ok(Value::Object(entries))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_json_types() {
        let table: &[(Value, &str)] = &[
            (Value::from(42u8), "42"),
            (Value::from(-7i64), "-7"),
            (Value::from(1.5f32), "1.5"),
            (Value::from(f64::NAN), r#""NaN""#),
            (Value::from(true), "true"),
            (Value::from("a\"b"), r#""a\"b""#),
        ];
        for (value, expected) in table {
            let mut out = Vec::new();
            value.write_json(&mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), *expected);
        }
    }

    #[test]
    fn round_trips_through_serde() {
        for value in [
            Value::from("x"),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::from(0.25),
            Value::from(false),
        ] {
            let text = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        }
    }
}
