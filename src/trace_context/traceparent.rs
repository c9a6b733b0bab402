//! [`TraceParent`]: a W3C `traceparent` value, parsed by the spec's rules.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

use crate::hex;

/// The length of a version `00` value: `00-` + 32 + `-` + 16 + `-` + 2.
const LEN_00: usize = 55;

/// The `sampled` bit of the trace flags.
pub(crate) const SAMPLED: u8 = 0x01;

/// A valid W3C [`traceparent`] value: a trace id, a parent id and the trace flags.
///
/// It can only be built by validating, so a `TraceParent` never carries client input that
/// breaks the rules. It is always written in the version `00` format.
///
/// # Parsing rules
///
/// Leading and trailing spaces and tabs are ignored. Then:
///
/// - the version is two lowercase hex digits and not `ff`;
/// - a version `00` value is exactly 55 characters: `00-{32 hex}-{16 hex}-{2 hex}`;
/// - a value of a later version is accepted when its first 55 characters parse as above and
///   the next character, if any, is `-` (the fields a later version adds are ignored);
/// - hex digits are lowercase only;
/// - an all-zero trace id or parent id is invalid.
///
/// Several `traceparent` headers on one request are invalid too; the middleware starts a new
/// trace then.
///
/// # Examples
///
/// ```
/// use tracing_ambient::trace_context::TraceParent;
///
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(tp.parent_id_hex(), "00f067aa0ba902b7");
/// assert!(tp.sampled());
///
/// assert!("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".parse::<TraceParent>().is_err());
/// assert!("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
///
/// [`traceparent`]: https://www.w3.org/TR/trace-context/#traceparent-header
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// The error returned when a `traceparent` value breaks the W3C rules.
///
/// ```
/// let err = "nope".parse::<tracing_ambient::trace_context::TraceParent>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid traceparent");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTraceParent(());

// === impl TraceParent ===

impl TraceParent {
    /// Returns a `TraceParent` from its parts, `None` if the trace id or the parent id is all
    /// zeros.
    ///
    /// ```
    /// use tracing_ambient::trace_context::TraceParent;
    ///
    /// let tp = TraceParent::new([1; 16], [2; 8], 0x01).unwrap();
    /// assert_eq!(tp.to_string(), "00-01010101010101010101010101010101-0202020202020202-01");
    /// assert!(TraceParent::new([0; 16], [2; 8], 0x01).is_none());
    /// ```
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Option<Self> {
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Returns a child of this position in the trace: the same trace id and flags, a new
    /// random parent-id (never all zeros). Send one with each outgoing call.
    ///
    /// ```
    /// use tracing_ambient::trace_context::TraceParent;
    ///
    /// let tp = TraceParent::new([1; 16], [2; 8], 0x01).unwrap();
    /// let child = tp.child();
    /// assert_eq!((child.trace_id(), child.flags()), (tp.trace_id(), tp.flags()));
    /// assert_ne!(child.parent_id(), tp.parent_id());
    /// assert_ne!(child.parent_id(), tp.child().parent_id());
    /// ```
    #[must_use]
    pub fn child(&self) -> TraceParent {
        let mut parent_id = [0; 8];
        super::rng::fill_nonzero(&mut parent_id);
        TraceParent { parent_id, ..*self }
    }

    /// Parses a `traceparent` value by the rules above.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidTraceParent`] when the value breaks any of the rules.
    ///
    /// ```
    /// use tracing_ambient::trace_context::TraceParent;
    ///
    /// // A later version with more fields is accepted; its own fields are ignored.
    /// let tp = TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future").unwrap();
    /// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// ```
    pub fn parse(value: &str) -> Result<Self, InvalidTraceParent> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses raw header bytes (which need not be UTF-8).
    pub(crate) fn parse_bytes(value: &[u8]) -> Result<Self, InvalidTraceParent> {
        let value = trim_ows(value);
        if value.len() < LEN_00 {
            return Err(InvalidTraceParent(()));
        }
        let version = hex_u8(&value[0..2]).ok_or(InvalidTraceParent(()))?;
        let length_ok = match version {
            0xff => false,
            0x00 => value.len() == LEN_00,
            // A later version may append fields, each after a `-`.
            _ => value.len() == LEN_00 || value[LEN_00] == b'-',
        };
        if !length_ok || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return Err(InvalidTraceParent(()));
        }
        let mut trace_id = [0; 16];
        let mut parent_id = [0; 8];
        let ok =
            decode_hex(&value[3..35], &mut trace_id) && decode_hex(&value[36..52], &mut parent_id);
        let flags = hex_u8(&value[53..55]);
        match flags {
            Some(flags) if ok => {
                TraceParent::new(trace_id, parent_id, flags).ok_or(InvalidTraceParent(()))
            }
            _ => Err(InvalidTraceParent(())),
        }
    }

    /// Builds one from a trace id and a span id written as lowercase hex, as a context holds
    /// them.
    pub(crate) fn from_hex_ids(trace_id: &str, span_id: &str, flags: u8) -> Option<Self> {
        let mut trace = [0; 16];
        let mut span = [0; 8];
        let ok = trace_id.len() == 32
            && span_id.len() == 16
            && decode_hex(trace_id.as_bytes(), &mut trace)
            && decode_hex(span_id.as_bytes(), &mut span);
        if ok {
            TraceParent::new(trace, span, flags)
        } else {
            None
        }
    }

    /// Returns the trace id.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([1; 16], [2; 8], 0).unwrap();
    /// assert_eq!(tp.trace_id(), [1; 16]);
    /// ```
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Returns the parent id: the span id of the caller.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([1; 16], [2; 8], 0).unwrap();
    /// assert_eq!(tp.parent_id(), [2; 8]);
    /// ```
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// Returns the trace flags.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([1; 16], [2; 8], 0x01).unwrap();
    /// assert_eq!(tp.flags(), 0x01);
    /// ```
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Returns `true` if the `sampled` flag is set.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([1; 16], [2; 8], 0x00).unwrap();
    /// assert!(!tp.sampled());
    /// ```
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Returns the trace id as 32 lowercase hex digits.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([0xab; 16], [2; 8], 0).unwrap();
    /// assert_eq!(tp.trace_id_hex(), "ab".repeat(16));
    /// ```
    pub fn trace_id_hex(&self) -> String {
        hex::string(&self.trace_id)
    }

    /// Returns the parent id as 16 lowercase hex digits.
    ///
    /// ```
    /// let tp = tracing_ambient::trace_context::TraceParent::new([1; 16], [0xcd; 8], 0).unwrap();
    /// assert_eq!(tp.parent_id_hex(), "cd".repeat(8));
    /// ```
    pub fn parent_id_hex(&self) -> String {
        hex::string(&self.parent_id)
    }
}

/// Writes the version `00` format.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::string(&self.trace_id),
            hex::string(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceParent")
            .field(&format_args!("{self}"))
            .finish()
    }
}

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl TryFrom<&::http::HeaderValue> for TraceParent {
    type Error = InvalidTraceParent;

    fn try_from(value: &::http::HeaderValue) -> Result<Self, Self::Error> {
        TraceParent::parse_bytes(value.as_bytes())
    }
}

// === impl InvalidTraceParent ===

impl fmt::Display for InvalidTraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid traceparent")
    }
}

impl Error for InvalidTraceParent {}

// === hex ===

/// Strips HTTP optional whitespace (spaces and tabs) from both ends.
pub(crate) fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// One lowercase hex digit; uppercase is invalid in trace context.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_u8(two: &[u8]) -> Option<u8> {
    Some(hex_digit(two[0])? << 4 | hex_digit(two[1])?)
}

/// Decodes `2 * out.len()` lowercase hex digits into `out`.
fn decode_hex(digits: &[u8], out: &mut [u8]) -> bool {
    if digits.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        match hex_u8(pair) {
            Some(b) => *byte = b,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn tp(version: &str, trace: &str, parent: &str, flags: &str) -> String {
        format!("{version}-{trace}-{parent}-{flags}")
    }

    #[test]
    fn valid_values_parse() {
        let valid = [
            tp("00", TRACE, PARENT, "01"),
            tp("00", TRACE, PARENT, "00"),
            tp("00", TRACE, PARENT, "ff"),
            format!(" \t{}\t ", tp("00", TRACE, PARENT, "01")),
            tp("01", TRACE, PARENT, "01"),
            tp("cc", TRACE, PARENT, "01"),
            format!(
                "{}-what-the-future-will-be-like",
                tp("cc", TRACE, PARENT, "01")
            ),
            format!("{}-", tp("fe", TRACE, PARENT, "09")),
        ];
        for value in &valid {
            let parsed = TraceParent::parse(value).unwrap_or_else(|_| panic!("{value:?} is valid"));
            assert_eq!(parsed.trace_id_hex(), TRACE);
            assert_eq!(parsed.parent_id_hex(), PARENT);
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let zeros32 = "0".repeat(32);
        let invalid = [
            String::new(),
            " ".into(),
            tp("00", TRACE, PARENT, "01") + "-what-the-future-will-be-like",
            tp("00", TRACE, PARENT, "01") + "-",
            tp("cc", TRACE, PARENT, "01") + ".what-the-future-will-be-like",
            tp("ff", TRACE, PARENT, "01"),
            tp(".0", TRACE, PARENT, "01"),
            tp("0.", TRACE, PARENT, "01"),
            tp("000", TRACE, PARENT, "01"),
            tp("0", TRACE, PARENT, "01"),
            tp("0A", TRACE, PARENT, "01"),
            tp("00", &zeros32, PARENT, "01"),
            tp("00", "4bf92f3577b34da6a3ce929d0e0e473.", PARENT, "01"),
            tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", PARENT, "01"),
            tp("00", &(TRACE.to_owned() + "0"), PARENT, "01"),
            tp("00", &TRACE[1..], PARENT, "01"),
            tp("00", TRACE, "0000000000000000", "01"),
            tp("00", TRACE, "00f067aa0ba902b.", "01"),
            tp("00", TRACE, "00F067AA0BA902B7", "01"),
            tp("00", TRACE, "00f067aa0ba902b70", "01"),
            tp("00", TRACE, "00f067aa0ba902b", "01"),
            tp("00", TRACE, PARENT, ".0"),
            tp("00", TRACE, PARENT, "0."),
            tp("00", TRACE, PARENT, "0A"),
            tp("00", TRACE, PARENT, "010"),
            tp("00", TRACE, PARENT, "1"),
            tp("00", TRACE, PARENT, "01").replace('-', "_"),
            tp("00", TRACE, PARENT, "01").replace('-', "\r\n"),
            tp("00", TRACE, PARENT, "01") + "," + &tp("00", TRACE, PARENT, "01"),
        ];
        for value in &invalid {
            assert!(TraceParent::parse(value).is_err(), "{value:?} is invalid");
        }
    }

    #[test]
    fn non_utf8_bytes_are_rejected() {
        let mut value = tp("00", TRACE, PARENT, "01").into_bytes();
        value[10] = 0xff;
        assert!(TraceParent::parse_bytes(&value).is_err());
    }

    #[test]
    fn writes_version_00_and_keeps_flags() {
        let value = tp("cc", TRACE, PARENT, "03") + "-extra";
        let parsed: TraceParent = value.parse().unwrap();
        assert_eq!(parsed.to_string(), tp("00", TRACE, PARENT, "03"));
        assert!(parsed.sampled());
    }

    #[test]
    fn builds_from_hex_ids() {
        assert!(TraceParent::from_hex_ids(TRACE, PARENT, SAMPLED).is_some());
        assert!(TraceParent::from_hex_ids("abc", PARENT, SAMPLED).is_none());
        assert!(TraceParent::from_hex_ids(TRACE, "0000000000000000", SAMPLED).is_none());
    }
}
