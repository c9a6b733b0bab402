//! [`RequestId`]: a request id that has been validated.

use std::error::Error;
use std::fmt;

use bytes::Bytes;
use http::HeaderValue;

/// The longest request id taken from a client.
pub(crate) const MAX_LEN: usize = 128;

/// How much of an invalid client value is kept when asked to
/// ([`RequestContextLayer::keep_invalid_request_id`]).
///
/// [`RequestContextLayer::keep_invalid_request_id`]: super::RequestContextLayer::keep_invalid_request_id
const KEPT_LEN: usize = 64;

/// The bytes of an id of at most [`ShortId::CAPACITY`] bytes, kept inline: owned by a
/// `Bytes`, they live in the one block that also counts the `Bytes` sharing them.
struct ShortId {
    len: u8,
    bytes: [u8; ShortId::CAPACITY],
}

impl ShortId {
    /// Room for a UUID (36 bytes) and most ids a client sends.
    const CAPACITY: usize = 64;

    fn new(id: &str) -> Option<Self> {
        let len = u8::try_from(id.len())
            .ok()
            .filter(|&n| usize::from(n) <= Self::CAPACITY)?;
        let mut bytes = [0; Self::CAPACITY];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Some(ShortId { len, bytes })
    }
}

impl AsRef<[u8]> for ShortId {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A valid request id: 1 to 128 characters of `A-Z a-z 0-9 . _ : @ + / = -`.
///
/// It can only be built by validating, so it is safe to write on a line, in a response
/// header and in an SQL comment. The middleware inserts it in the request's extensions.
///
/// # Examples
///
/// ```
/// use tracing_ambient::http::RequestId;
///
/// let id = RequestId::new("9f1c-42").unwrap();
/// assert_eq!(id.as_str(), "9f1c-42");
/// assert!(RequestId::new("a\r\nb").is_err());
/// assert!(RequestId::new("").is_err());
/// assert!(RequestId::new(&"x".repeat(129)).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(
    // Kept as the header value it is written as: a clone shares the bytes, so the request
    // header, the response header and the request extension cost one allocation between
    // them, and an id taken from a request header costs none.
    HeaderValue,
);

/// The error returned when a request id breaks the rules of [`RequestId`].
///
/// ```
/// let err = tracing_ambient::http::RequestId::new("*/").unwrap_err();
/// assert_eq!(err.to_string(), "invalid request id");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRequestId(());

// === impl RequestId ===

impl RequestId {
    /// Validates `id`.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidRequestId`] when `id` is empty, longer than 128 bytes, or has a
    /// character outside `A-Z a-z 0-9 . _ : @ + / = -`.
    ///
    /// ```
    /// assert!(tracing_ambient::http::RequestId::new("tenant:acme/req=7").is_ok());
    /// ```
    pub fn new(id: &str) -> Result<Self, InvalidRequestId> {
        if !valid(id.as_bytes()) {
            return Err(InvalidRequestId(()));
        }
        let value = match ShortId::new(id) {
            // One block holds the bytes and the count of their owners: `HeaderValue::from_str`
            // copies into a `Vec`, and its first clone allocates again to share it.
            Some(short) => HeaderValue::from_maybe_shared(Bytes::from_owner(short)),
            None => HeaderValue::from_str(id),
        };
        value.map(RequestId).map_err(|_| InvalidRequestId(()))
    }

    /// An id the crate made of characters it knows are allowed (a UUID's hex digits and
    /// hyphens), written straight into the block the header value shares.
    pub(crate) fn from_generated(id: &[u8; 36]) -> Self {
        debug_assert!(valid(id));
        let mut short = ShortId {
            len: 36,
            bytes: [0; ShortId::CAPACITY],
        };
        short.bytes[..36].copy_from_slice(id);
        let value = HeaderValue::from_maybe_shared(Bytes::from_owner(short))
            .expect("hex digits and hyphens make a valid header value");
        RequestId(value)
    }

    /// Returns the id.
    ///
    /// ```
    /// let id = tracing_ambient::http::RequestId::new("r1").unwrap();
    /// assert_eq!(id.as_str(), "r1");
    /// ```
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.0.as_bytes())
            .expect("a validated request id is ASCII, this is a bug")
    }

    /// The id's bytes: printable ASCII, nothing to escape.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Returns the id as a header value.
    ///
    /// ```
    /// let id = tracing_ambient::http::RequestId::new("r1").unwrap();
    /// assert_eq!(id.to_header_value(), "r1");
    /// ```
    pub fn to_header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// Returns a printable, truncated form of an invalid client value: the first 64 bytes, each
    /// byte outside the allowed set replaced by `_`. `None` for an empty value.
    pub(crate) fn sanitise(raw: &[u8]) -> Option<String> {
        if raw.is_empty() {
            return None;
        }
        let kept = raw
            .iter()
            .take(KEPT_LEN)
            .map(|&b| if allowed(b) { b as char } else { '_' })
            .collect();
        Some(kept)
    }
}

impl TryFrom<&HeaderValue> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(value: &HeaderValue) -> Result<Self, Self::Error> {
        if valid(value.as_bytes()) {
            // The client's bytes, shared rather than copied; marked as any id we make is.
            let mut value = value.clone();
            value.set_sensitive(false);
            Ok(RequestId(value))
        } else {
            Err(InvalidRequestId(()))
        }
    }
}

impl TryFrom<&str> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        RequestId::new(value)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

// === impl InvalidRequestId ===

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid request id")
    }
}

impl Error for InvalidRequestId {}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'+' | b'/' | b'=' | b'-')
}

fn valid(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|&b| allowed(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_every_length_read_back_as_given() {
        // Inline up to 64 bytes, copied beyond: both read back whole, as id and header.
        for len in [1, 35, 36, 63, 64, 65, 127, 128] {
            let given: String = "0123456789abcdef-".chars().cycle().take(len).collect();
            let id = RequestId::new(&given).unwrap();
            assert_eq!(id.as_str(), given);
            assert_eq!(id.to_header_value().as_bytes(), given.as_bytes());
            assert_eq!(id.clone().to_header_value(), id.to_header_value());
        }
    }

    #[test]
    fn accepts_the_allowed_set_up_to_128() {
        let all = "AZaz09._:@+/=-";
        for id in [
            all,
            "a",
            &"x".repeat(128),
            "0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b",
        ] {
            assert_eq!(RequestId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_everything_else() {
        let long = "x".repeat(129);
        for id in [
            "",
            " ",
            "a b",
            "a\r\nb",
            "a\"b",
            "*/",
            "a;b",
            "a'b",
            "caf\u{e9}",
            "a\0",
            "a,b",
            &long,
        ] {
            assert!(RequestId::new(id).is_err(), "{id:?}");
        }
        let obs = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert!(RequestId::try_from(&obs).is_err());
    }

    #[test]
    fn sanitises_and_truncates() {
        assert_eq!(
            RequestId::sanitise(b"a\r\n*/'b").as_deref(),
            Some("a___/_b")
        );
        assert_eq!(RequestId::sanitise(&[b'x'; 10_000]).unwrap().len(), 64);
        assert_eq!(RequestId::sanitise(b""), None);
    }
}
