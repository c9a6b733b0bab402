//! [`Slot`]: one context value with its JSON, made once when it is set; short strings inline.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::value::Value;
use crate::json;

/// The longest JSON an inline [`Slot`] holds: a UUID (36 characters) or a W3C trace id (32
/// hex digits) with its quotes fits, and so does every id the HTTP middleware sets.
pub(super) const INLINE: usize = 46;

/// A value with its JSON form, made once when it is set.
///
/// A short string that JSON writes as it is (no byte to escape) keeps only its JSON, inline:
/// the ids the middleware sets on every request cost no allocation, and the string is the
/// JSON without its quotes whenever it is asked for. Anything else keeps the value and its
/// JSON in blocks of their own.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Inline { len: u8, json: [u8; INLINE] },
    Boxed { value: Value, json: Box<[u8]> },
}

impl Slot {
    pub(super) fn new(value: Value) -> Self {
        if let Value::Str(s) = &value {
            if let Some(slot) = Slot::inline(s) {
                return slot;
            }
        }
        let mut json = Vec::with_capacity(match &value {
            Value::Str(s) => s.len() + 2,
            _ => 24,
        });
        value.write_json(&mut json);
        Slot::Boxed {
            value,
            json: json.into_boxed_slice(),
        }
    }

    /// The slot of a string, allocating only when it is too long to keep inline or has a
    /// byte to escape.
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the middleware's ids
    pub(crate) fn from_str(s: &str) -> Self {
        Slot::inline(s).unwrap_or_else(|| Slot::new(Value::from(s)))
    }

    /// The slot of a string known to have no byte to escape (an id the crate validated or
    /// made), without looking for one.
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the middleware's ids
    pub(crate) fn from_plain_str(s: &str) -> Self {
        debug_assert!(!json::needs_escape(s), "{s:?} has a byte to escape");
        if s.len() + 2 <= INLINE {
            Slot::inline_unchecked(s.as_bytes())
        } else {
            Slot::from_str(s)
        }
    }

    fn inline(s: &str) -> Option<Self> {
        if s.len() + 2 > INLINE || json::needs_escape(s) {
            return None;
        }
        Some(Slot::inline_unchecked(s.as_bytes()))
    }

    /// The slot of an id of printable ASCII with nothing to escape (hex digits, a validated
    /// request id), which is its own JSON between quotes: a short one (the usual) is kept
    /// inline with no escape to look for and no UTF-8 to check.
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the middleware's ids
    pub(crate) fn from_plain_ascii(id: &[u8]) -> Self {
        debug_assert!(id
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
        if id.len() + 2 <= INLINE {
            Slot::inline_unchecked(id)
        } else {
            Slot::from_str(std::str::from_utf8(id).expect("an ASCII id, this is a bug"))
        }
    }

    /// Keeps `s` inline; it fits, is UTF-8 and has nothing to escape.
    fn inline_unchecked(s: &[u8]) -> Self {
        let len = s.len() + 2;
        let mut json = [0u8; INLINE];
        json[0] = b'"';
        json[1..len - 1].copy_from_slice(s);
        json[len - 1] = b'"';
        Slot::Inline {
            len: len as u8, // at most INLINE
            json,
        }
    }

    /// The value's JSON, ready to copy onto a line.
    pub(crate) fn json(&self) -> &[u8] {
        match self {
            Slot::Inline { len, json } => &json[..usize::from(*len)],
            Slot::Boxed { json, .. } => json,
        }
    }

    /// The value: borrowed, or for an inline string made from its JSON.
    pub(crate) fn value(&self) -> Cow<'_, Value> {
        match self {
            Slot::Inline { .. } => Cow::Owned(Value::from(self.inline_str())),
            Slot::Boxed { value, .. } => Cow::Borrowed(value),
        }
    }

    /// The string of an inline slot (its JSON without the quotes: nothing in it was escaped).
    fn inline_str(&self) -> &str {
        let json = self.json();
        std::str::from_utf8(&json[1..json.len() - 1])
            .expect("an inline slot holds a whole `str` between its quotes, this is a bug")
    }

    /// The value as its `Display` writes it, without making the value first: the event
    /// path of the pretty layer writes it with no allocation.
    pub(crate) fn display(&self) -> impl fmt::Display + '_ {
        SlotDisplay(self)
    }

    pub(super) fn to_display_string(&self) -> String {
        self.display().to_string()
    }
}

/// A slot serializes as its value, an inline string without making a `Value` first.
impl Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Slot::Inline { .. } => serializer.serialize_str(self.inline_str()),
            Slot::Boxed { value, .. } => value.serialize(serializer),
        }
    }
}

struct SlotDisplay<'a>(&'a Slot);

impl fmt::Display for SlotDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Slot::Inline { .. } => f.write_str(self.0.inline_str()),
            Slot::Boxed { value, .. } => fmt::Display::fmt(value, f),
        }
    }
}
