//! [`TraceState`]: a W3C `tracestate` value, validated member by member.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

use super::traceparent::trim_ows;

/// The most list members a `tracestate` may have.
const MAX_MEMBERS: usize = 32;

/// A valid W3C [`tracestate`] value: at most 32 `key=value` members with distinct keys.
///
/// It can only be built by validating. Empty members and the spaces around members are
/// dropped, so the value is written back as `key=value,key=value`.
///
/// # Rules
///
/// The grammar of [Trace Context Level 2]:
///
/// - a key is 1 to 256 characters: the first `a-z` or `0-9`, the others `a-z 0-9 _ - * / @`
///   (`key = ( lcalpha / DIGIT ) 0*255 ( keychar )`). Level 1's multi-tenant form
///   `tenant@system` is one case of it; a key may not start with `@`;
/// - a value is 1 to 256 printable ASCII characters other than `,` and `=`, and does not end
///   in a space;
/// - a key appears once: a member whose key repeats an earlier one is dropped, the first is
///   kept;
/// - there are at most 32 members (after dropping repeats).
///
/// A value that breaks another rule is dropped whole, as is the `tracestate` of a request
/// whose `traceparent` is invalid.
///
/// [Trace Context Level 2]: https://www.w3.org/TR/trace-context-2/#key
///
/// # Examples
///
/// ```
/// use tracing_ambient::trace_context::TraceState;
///
/// let ts: TraceState = "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,".parse().unwrap();
/// assert_eq!(ts.as_str(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert!("Rojo=1".parse::<TraceState>().is_err());
/// assert_eq!(TraceState::parse("a=1,b=2,a=3").unwrap().as_str(), "a=1,b=2");
/// ```
///
/// [`tracestate`]: https://www.w3.org/TR/trace-context/#tracestate-header
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceState(Box<str>);

/// The error returned when a `tracestate` value breaks the W3C rules.
///
/// ```
/// let err = "=".parse::<tracing_ambient::trace_context::TraceState>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid tracestate");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTraceState(());

// === impl TraceState ===

impl TraceState {
    /// Parses a `tracestate` value by the rules above.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidTraceState`] when any member breaks a rule (other than a repeated key,
    /// which is dropped), when there are more than 32 members, or when there is no member at
    /// all.
    ///
    /// ```
    /// use tracing_ambient::trace_context::TraceState;
    ///
    /// assert!(TraceState::parse("tenant@vendor=x").is_ok());
    /// assert!(TraceState::parse("foo@=1").is_ok());
    /// assert!(TraceState::parse("@foo=1").is_err());
    /// assert!(TraceState::parse(" , ").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, InvalidTraceState> {
        Self::parse_parts([value.as_bytes()])
    }

    /// Parses the values of several `tracestate` headers, which HTTP joins with commas.
    pub(crate) fn parse_parts<'a>(
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, InvalidTraceState> {
        let mut out = String::new();
        let mut keys: Vec<&[u8]> = Vec::new();
        for part in parts {
            for member in part.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                let eq = member
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or(InvalidTraceState(()))?;
                let (key, value) = (&member[..eq], &member[eq + 1..]);
                if !valid_key(key) || !valid_value(value) {
                    return Err(InvalidTraceState(()));
                }
                // Level 2: keep the first member of a key, drop the later ones.
                if keys.contains(&key) {
                    continue;
                }
                keys.push(key);
                if keys.len() > MAX_MEMBERS {
                    return Err(InvalidTraceState(()));
                }
                if !out.is_empty() {
                    out.push(',');
                }
                // Checked above: every byte is printable ASCII.
                out.push_str(std::str::from_utf8(member).map_err(|_| InvalidTraceState(()))?);
            }
        }
        if out.is_empty() {
            return Err(InvalidTraceState(()));
        }
        Ok(TraceState(out.into_boxed_str()))
    }

    /// Returns the value, members joined by `,`.
    ///
    /// ```
    /// let ts = tracing_ambient::trace_context::TraceState::parse("a=1").unwrap();
    /// assert_eq!(ts.as_str(), "a=1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceState").field(&&*self.0).finish()
    }
}

impl FromStr for TraceState {
    type Err = InvalidTraceState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceState::parse(s)
    }
}

// === impl InvalidTraceState ===

impl fmt::Display for InvalidTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid tracestate")
    }
}

impl Error for InvalidTraceState {}

// === grammar ===

/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`.
fn valid_key(key: &[u8]) -> bool {
    match key.split_first() {
        Some((&first, rest)) => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.len() <= 255
                && rest.iter().all(|&b| key_char(b))
        }
        None => false,
    }
}

/// `0*255(chr) nblk-chr`, where `chr` is a space or `nblk-chr`, and `nblk-chr` is printable
/// ASCII other than `,` and `=`.
fn valid_value(value: &[u8]) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x7e) && b != b',' && b != b'=';
    match value.split_last() {
        Some((&last, rest)) => {
            rest.len() <= 255 && nblk(last) && rest.iter().all(|&b| b == b' ' || nblk(b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_are_normalised() {
        let cases = [
            ("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7"),
            ("rojo=1,congo=2", "rojo=1,congo=2"),
            (" rojo=1 ,\tcongo=2\t", "rojo=1,congo=2"),
            ("rojo=1,,,congo=2", "rojo=1,congo=2"),
            ("a-b_c*d/e=x", "a-b_c*d/e=x"),
            ("3tenant@system=x", "3tenant@system=x"),
            ("foo@=1", "foo@=1"),
            ("1k=v", "1k=v"),
            ("tenant@1sys=v", "tenant@1sys=v"),
            ("a@b@c=v", "a@b@c=v"),
            ("a=1,b=2,a=3", "a=1,b=2"),
            ("k=a b", "k=a b"),
            ("k= leading", "k= leading"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                TraceState::parse(input).unwrap().as_str(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let long_value = format!("k={}", "v".repeat(257));
        let long_key = format!("{}=v", "k".repeat(257));
        let thirty_three = (0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let cases = [
            "",
            ",",
            "novalue",
            "k=",
            "=v",
            "K=v",
            "k=v=w",
            "k=a\u{7f}",
            "k=v\r\nx=y",
            "k=\u{e9}",
            "@system=v",
            "_k=v",
            "k.v=1",
            "a=1,b=2,a=",
            &long_value,
            &long_key,
            &thirty_three,
        ];
        for input in cases {
            assert!(TraceState::parse(input).is_err(), "{input:?} is invalid");
        }
    }

    #[test]
    fn keys_are_up_to_256_characters() {
        let key = |len: usize| format!("k{}", "@".repeat(len - 1));
        assert!(TraceState::parse(&format!("{}=v", key(256))).is_ok());
        assert!(TraceState::parse(&format!("{}=v", key(257))).is_err());
    }

    #[test]
    fn repeated_keys_do_not_count_against_the_limit() {
        let members = (0..32)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let ts = TraceState::parse(&format!("{members},k0=again")).unwrap();
        assert_eq!(ts.as_str(), members);
    }

    #[test]
    fn thirty_two_members_are_allowed() {
        let members = (0..32)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(TraceState::parse(&members).unwrap().as_str(), members);
    }

    #[test]
    fn headers_are_joined() {
        let ts = TraceState::parse_parts([&b"a=1"[..], &b"b=2"[..]]).unwrap();
        assert_eq!(ts.as_str(), "a=1,b=2");
        let ts = TraceState::parse_parts([&b"a=1"[..], &b"a=2,b=3"[..]]).unwrap();
        assert_eq!(ts.as_str(), "a=1,b=3");
    }
}
