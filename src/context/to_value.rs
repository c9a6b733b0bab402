//! Turning any `serde::Serialize` value into a context [`Value`], once, when it is set: the
//! context keeps the value and its JSON form, so each line copies bytes.
//!
//! A serializer of our own rather than `serde_json::to_value`, so that scalars take no detour
//! through `serde_json::Value` and non-finite floats keep the crate's rule (the strings
//! `"NaN"`, `"inf"`, `"-inf"`, never `null`).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::ser::{self, Impossible, Serialize};

use super::value::Value;

/// Why a value could not be set in a context: its `Serialize` impl failed or panicked, or it
/// produced a map whose keys are not strings. The context is left as it was.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use tracing_ambient::Context;
///
/// let ctx = Context::new();
/// let by_pair: BTreeMap<(u8, u8), &str> = [((1, 2), "x")].into();
/// let err = ctx.try_set("grid", &by_pair).unwrap_err();
/// assert!(err.to_string().contains("map keys"), "{err}");
/// assert!(ctx.get("grid").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(Box<str>);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the value cannot be set in the context: {}", self.0)
    }
}

impl std::error::Error for ValueError {}

impl ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string().into())
    }
}

/// Serializes `value` into a [`Value`]. A `Serialize` impl that panics is an error too.
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    catch_unwind(AssertUnwindSafe(|| value.serialize(ValueSerializer)))
        .unwrap_or_else(|_| Err(ValueError("its Serialize impl panicked".into())))
}

/// Integers beyond 64 bits keep their digits as a string; JSON readers would lose them.
fn wide<T: fmt::Display>(value: T) -> Value {
    Value::Str(value.to_string().into_boxed_str())
}

struct ValueSerializer;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        Ok(i64::try_from(v).map_or_else(|_| wide(v), Value::I64))
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        Ok(u64::try_from(v).map_or_else(|_| wide(v), Value::from))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_string().into_boxed_str()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    /// Bytes are an array of numbers, as serde_json writes them.
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Array(v.iter().map(|&b| Value::from(b)).collect()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::from(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(Value::Object(vec![(
            variant.into(),
            value.serialize(self)?,
        )]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(None, len))
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(None, Some(len)))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(None, Some(len)))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(Some(variant), Some(len)))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder::new(None, len))
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder::new(None, Some(len)))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder::new(Some(variant), Some(len)))
    }
}

/// Wraps a variant's content as `{"Variant": content}`, serde's default enum form.
fn tagged(variant: Option<&'static str>, content: Value) -> Value {
    match variant {
        Some(variant) => Value::Object(vec![(variant.into(), content)]),
        None => content,
    }
}

struct SeqBuilder {
    variant: Option<&'static str>,
    items: Vec<Value>,
}

impl SeqBuilder {
    fn new(variant: Option<&'static str>, len: Option<usize>) -> Self {
        SeqBuilder {
            variant,
            // A hint from the value: never trust it for more than a small allocation.
            items: Vec::with_capacity(len.unwrap_or(0).min(64)),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(value.serialize(ValueSerializer)?);
        Ok(())
    }

    fn finish(self) -> Result<Value, ValueError> {
        Ok(tagged(self.variant, Value::Array(self.items)))
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

struct MapBuilder {
    variant: Option<&'static str>,
    entries: Vec<(Box<str>, Value)>,
    key: Option<Box<str>>,
}

impl MapBuilder {
    fn new(variant: Option<&'static str>, len: Option<usize>) -> Self {
        MapBuilder {
            variant,
            entries: Vec::with_capacity(len.unwrap_or(0).min(64)),
            key: None,
        }
    }

    /// Sets `key`, replacing an earlier entry of the same key so the object has no duplicate.
    fn insert(&mut self, key: Box<str>, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    fn finish(self) -> Result<Value, ValueError> {
        Ok(tagged(self.variant, Value::Object(self.entries)))
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError("a map value came without its key".into()))?;
        let value = value.serialize(ValueSerializer)?;
        self.insert(key, value);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        let value = value.serialize(ValueSerializer)?;
        self.insert(key.into(), value);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapBuilder {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        self.finish()
    }
}

/// Map keys: strings, and what JSON writes as strings (chars, integers, unit variants).
struct KeySerializer;

fn not_a_key() -> ValueError {
    ValueError("map keys must be strings, chars, integers or unit variants".into())
}

macro_rules! key_from_display {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Box<str>, ValueError> {
            Ok(v.to_string().into_boxed_str())
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = Box<str>;
    type Error = ValueError;
    type SerializeSeq = Impossible<Box<str>, ValueError>;
    type SerializeTuple = Impossible<Box<str>, ValueError>;
    type SerializeTupleStruct = Impossible<Box<str>, ValueError>;
    type SerializeTupleVariant = Impossible<Box<str>, ValueError>;
    type SerializeMap = Impossible<Box<str>, ValueError>;
    type SerializeStruct = Impossible<Box<str>, ValueError>;
    type SerializeStructVariant = Impossible<Box<str>, ValueError>;

    key_from_display!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_char: char, serialize_str: &str
    );

    fn serialize_bool(self, _: bool) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_f32(self, _: f32) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_f64(self, _: f64) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_none(self) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_unit(self) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Box<str>, ValueError> {
        Ok(variant.into())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Box<str>, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Box<str>, ValueError> {
        Err(not_a_key())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(not_a_key())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(not_a_key())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(not_a_key())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(not_a_key())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(not_a_key())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(not_a_key())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(not_a_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn json(value: &Value) -> String {
        let mut out = Vec::new();
        value.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn serializes_like_serde_json_and_keeps_non_finite_floats() {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            sub: &'a str,
            roles: Vec<&'a str>,
            admin: Option<bool>,
        }
        #[derive(serde::Serialize)]
        enum Plan {
            Free,
            Seats(u32),
            Team { size: u8 },
        }
        let claims = Claims {
            sub: "u1",
            roles: vec!["admin", "editor"],
            admin: None,
        };
        let map: BTreeMap<u8, f64> = [(1, 0.5), (2, f64::NAN)].into();
        let table: Vec<(Value, &str)> = vec![
            (
                to_value(&claims).unwrap(),
                r#"{"sub":"u1","roles":["admin","editor"],"admin":null}"#,
            ),
            (to_value(&Plan::Free).unwrap(), r#""Free""#),
            (to_value(&Plan::Seats(5)).unwrap(), r#"{"Seats":5}"#),
            (
                to_value(&Plan::Team { size: 3 }).unwrap(),
                r#"{"Team":{"size":3}}"#,
            ),
            (to_value(&map).unwrap(), r#"{"1":0.5,"2":"NaN"}"#),
            (to_value(&f64::INFINITY).unwrap(), r#""inf""#),
            (
                to_value(&u128::MAX).unwrap(),
                r#""340282366920938463463374607431768211455""#,
            ),
            (to_value(&(1, "a")).unwrap(), r#"[1,"a"]"#),
            (
                to_value(&serde_json::json!({"a": {"b": [null]}})).unwrap(),
                r#"{"a":{"b":[null]}}"#,
            ),
        ];
        for (value, expected) in table {
            assert_eq!(json(&value), expected);
        }
    }

    #[test]
    fn failing_and_panicking_impls_are_errors() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no can do"))
            }
        }
        struct Panics;
        impl Serialize for Panics {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("boom")
            }
        }
        assert!(to_value(&Fails)
            .unwrap_err()
            .to_string()
            .contains("no can do"));
        assert!(to_value(&Panics)
            .unwrap_err()
            .to_string()
            .contains("panicked"));
    }
}
