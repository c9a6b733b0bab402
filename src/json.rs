//! The line writer: small appenders onto a `Vec<u8>` that never allocate beyond the buffer.
//!
//! Escaping follows serde_json's `format_escaped_str_contents`: a 256-entry table says which
//! bytes need an escape, clean runs are copied as slices, and `\u00XX` comes from a static hex
//! table. Every function here writes a complete JSON token, so a line is valid JSON whatever
//! the input.

use std::fmt;

// Lookup table of escape sequences. A value of b'x' at index i means that byte i is escaped
// as "\x" in JSON. A value of 0 means that byte i is not escaped.
const BB: u8 = b'b'; // \x08
const TT: u8 = b't'; // \x09
const NN: u8 = b'n'; // \x0A
const FF: u8 = b'f'; // \x0C
const RR: u8 = b'r'; // \x0D
const QU: u8 = b'"'; // \x22
const BS: u8 = b'\\'; // \x5C
const UU: u8 = b'u'; // \x00...\x1F except the ones above
const __: u8 = 0;

static ESCAPE: [u8; 256] = [
    //   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
    UU, UU, UU, UU, UU, UU, UU, UU, BB, TT, NN, UU, FF, RR, UU, UU, // 0
    UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, UU, // 1
    __, __, QU, __, __, __, __, __, __, __, __, __, __, __, __, __, // 2
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 3
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 4
    __, __, __, __, __, __, __, __, __, __, __, __, BS, __, __, __, // 5
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 6
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 7
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 8
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // 9
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // A
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // B
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // C
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // D
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // E
    __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, __, // F
];

static HEX_DIGITS: [u8; 16] = *b"0123456789abcdef";

/// Returns `true` if any of the eight bytes of `word` must be escaped: a control character
/// (below 0x20), `"` or `\\`.
///
/// These are the exact tests for "has a byte less than n" and "has a zero byte" (after XOR
/// with the byte sought) from *Bit Twiddling Hacks*: they may misplace which byte matched,
/// but never miss one nor report one that is not there, which is all a skip needs.
#[inline]
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    control | quote | backslash != 0
}

/// Returns the index of the first byte at or after `from` that must be escaped.
///
/// Eight bytes are tested at a time. A tail shorter than eight bytes is tested as the last
/// eight bytes of the string, which overlap bytes already found clean; only strings shorter
/// than eight bytes are walked byte by byte. A word that has a byte to escape is then looked
/// at byte by byte.
#[inline]
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let find = |start: usize, part: &[u8]| {
        part.iter()
            .position(|&b| ESCAPE[b as usize] != 0)
            .map(|p| start + p)
    };
    if bytes.len() < 8 {
        return find(from, &bytes[from..]);
    }
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        if word_needs_escape(u64::from_le_bytes(chunk.try_into().expect("8 bytes"))) {
            return find(i, chunk);
        }
        i += 8;
    }
    if i == bytes.len() {
        return None;
    }
    let last = &bytes[bytes.len() - 8..];
    if word_needs_escape(u64::from_le_bytes(last.try_into().expect("8 bytes"))) {
        find(i, &bytes[i..])
    } else {
        None
    }
}

/// Returns `true` if [`escape_into`] would change `value`: it has a control character, `"`
/// or `\\`.
pub(crate) fn needs_escape(value: &str) -> bool {
    next_escape(value.as_bytes(), 0).is_some()
}

/// Appends `value` with every byte JSON requires escaped, without the surrounding quotes.
///
/// Clean runs are found eight bytes at a time and copied as one slice. U+2028 and U+2029 are
/// valid inside a JSON string (RFC 8259) and are copied as they are.
#[inline]
pub(crate) fn escape_into(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    // Most text has nothing to escape: one scan and one copy, the loop kept out of line.
    match next_escape(bytes, 0) {
        None => out.extend_from_slice(bytes),
        Some(first) => escape_from(out, bytes, first),
    }
}

/// [`escape_into`] from the first byte to escape, at `first`.
#[cold]
#[inline(never)]
fn escape_from(out: &mut Vec<u8>, bytes: &[u8], first: usize) {
    out.extend_from_slice(&bytes[..first]);
    let mut start = first;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let byte = bytes[i];
        match ESCAPE[byte as usize] {
            UU => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[(byte >> 4) as usize],
                HEX_DIGITS[(byte & 0xF) as usize],
            ]),
            other => out.extend_from_slice(&[b'\\', other]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `value` as a quoted JSON string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape_into(out, value);
    out.push(b'"');
}

/// Appends `"key":` with the key escaped.
#[inline]
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
    out.push(b':');
}

/// Appends a signed integer.
#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends an unsigned integer.
#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a 128-bit signed integer. JSON has no size limit on numbers; readers that parse
/// into `f64` lose precision past 2^53, as with any large integer.
#[inline]
pub(crate) fn write_i128(out: &mut Vec<u8>, value: i128) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a 128-bit unsigned integer (see [`write_i128`]).
#[inline]
pub(crate) fn write_u128(out: &mut Vec<u8>, value: u128) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a float in its shortest round-trip form, as `ryu` writes it.
///
/// JSON has no NaN or infinity. Rather than `null`, which loses the value, non-finite floats
/// are written as the strings `"NaN"`, `"inf"` and `"-inf"`, the spellings Rust's `Display` and
/// `str::parse::<f64>` use.
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        if !write_short_decimal(out, value) {
            out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        }
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
}

/// Writes a float that is a decimal with at most six fraction digits (a price, a latency in
/// milliseconds, a ratio) and returns `true`; returns `false`, writing nothing, for any other.
///
/// This is `ryu`'s output, found a cheaper way for these values: the fewest fraction digits
/// `k` for which `round(|v| * 10^k) / 10^k == |v|` give the shortest decimal that reads back
/// as `v` (the division of two exact integers is correctly rounded, as parsing the decimal
/// is, so the check is exact, and no decimal with fewer digits reads back as `v`, else a
/// smaller `k` would have passed). Limited to `1e-5 <= |v|` and `|v| * 10^k < 2^50`, where
/// `ryu` writes plain decimals and the rounding cannot miss the integer.
#[inline]
fn write_short_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    const POW10: [f64; 7] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];
    const LIMIT: f64 = (1u64 << 50) as f64;
    let abs = value.abs();
    if abs < 1e-5 {
        return false;
    }
    for (k, &pow) in POW10.iter().enumerate() {
        let scaled = abs * pow;
        if scaled >= LIMIT {
            return false;
        }
        // The nearest integer: `scaled + 0.5` is exact below 2^52, and `as` truncates.
        let m = (scaled + 0.5) as u64;
        if m as f64 / pow != abs {
            continue;
        }
        if value < 0.0 {
            out.push(b'-');
        }
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(m).as_bytes();
        if k == 0 {
            out.extend_from_slice(digits);
            out.extend_from_slice(b".0");
        } else if digits.len() > k {
            let point = digits.len() - k;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        } else {
            out.extend_from_slice(b"0.");
            out.extend_from_slice(&b"00000"[..k - digits.len()]);
            out.extend_from_slice(digits);
        }
        return true;
    }
    false
}

/// Appends `true` or `false`.
#[inline]
pub(crate) fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Hashes a key's escaped bytes: its length and its first and last eight bytes, mixed with one
/// multiplication. Keys are short, so this sees most of them whole and costs a few cycles;
/// equal hashes are always confirmed by comparing the bytes.
#[inline]
pub(crate) fn hash_key(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let (head, tail) = if n >= 8 {
        let first: [u8; 8] = bytes[..8].try_into().expect("8 bytes, this is a bug");
        let last: [u8; 8] = bytes[n - 8..].try_into().expect("8 bytes, this is a bug");
        (u64::from_le_bytes(first), u64::from_le_bytes(last))
    } else {
        (
            bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            0,
        )
    };
    (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A key escaped and hashed once, ready to copy onto lines: `"name":`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    fragment: Box<[u8]>,
    hash: u64,
    /// Whether the name has a `.`: only such a key has dotted prefixes to check, so the
    /// others skip looking for them on every line.
    dotted: bool,
}

impl Key {
    pub(crate) fn new(name: &str) -> Self {
        let mut fragment = Vec::with_capacity(name.len() + 3);
        write_key(&mut fragment, name);
        let hash = hash_key(&fragment[1..fragment.len() - 2]);
        Key {
            fragment: fragment.into_boxed_slice(),
            hash,
            dotted: name.contains('.'),
        }
    }

    /// Whether the name has a `.`, and so dotted prefixes.
    #[inline]
    pub(crate) fn dotted(&self) -> bool {
        self.dotted
    }

    /// `"name":`, escaped.
    #[inline]
    pub(crate) fn fragment(&self) -> &[u8] {
        &self.fragment
    }

    /// The escaped name, without quotes and colon.
    #[inline]
    pub(crate) fn escaped(&self) -> &[u8] {
        &self.fragment[1..self.fragment.len() - 2]
    }

    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

/// An `fmt::Write` that escapes everything written through it into a JSON string body, so
/// `Debug` and `Display` output goes straight into the line without a `String` in between.
#[derive(Debug)]
pub(crate) struct EscapingWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for EscapingWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends the output of `Display`/`Debug` formatting as a quoted, escaped JSON string.
///
/// A formatting impl that returns an error leaves what it wrote so far; the string is always
/// closed, so the line stays valid.
#[inline]
pub(crate) fn write_fmt_str(out: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    out.push(b'"');
    if let Some(s) = args.as_str() {
        escape_into(out, s);
    } else {
        let _ = fmt::write(&mut EscapingWriter(out), args);
    }
    out.push(b'"');
}

/// Appended to a string value cut short by the line-size cap.
pub(crate) const CUT_MARK: &str = "…[truncated]";

/// Appends `value` as a quoted JSON string, cut to at most `max` bytes of it (at a character
/// boundary) followed by [`CUT_MARK`] when longer. Returns `true` if it was cut.
#[inline]
pub(crate) fn write_str_capped(out: &mut Vec<u8>, value: &str, max: usize) -> bool {
    if value.len() <= max {
        write_str(out, value);
        return false;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    out.push(b'"');
    escape_into(out, &value[..end]);
    escape_into(out, CUT_MARK);
    out.push(b'"');
    true
}

/// Appends `json`, a JSON string already escaped and quoted (a context value), cut as
/// [`write_str_capped`] cuts: its first `max` bytes of content, never splitting an escape
/// sequence or a UTF-8 character, then [`CUT_MARK`]. A value of `max` bytes or fewer is copied
/// whole.
pub(crate) fn write_cut_json_str(out: &mut Vec<u8>, json: &[u8], max: usize) {
    let content = json
        .strip_prefix(b"\"")
        .and_then(|c| c.strip_suffix(b"\""))
        .unwrap_or(json);
    if content.len() <= max {
        out.extend_from_slice(json);
        return;
    }
    let mut end = 0;
    while end < content.len() {
        let len = match content[end] {
            b'\\' if content.get(end + 1) == Some(&b'u') => 6,
            b'\\' => 2,
            b if b < 0x80 => 1,
            b if b >= 0xF0 => 4,
            b if b >= 0xE0 => 3,
            _ => 2,
        };
        if end + len > max {
            break;
        }
        end += len;
    }
    out.push(b'"');
    out.extend_from_slice(&content[..end]);
    escape_into(out, CUT_MARK);
    out.push(b'"');
}

/// Appends the output of `Display`/`Debug` formatting as [`write_str_capped`] does. Output
/// past `max` bytes is not copied (the impl still runs to its end: returning an error to it
/// could make an impl that unwraps its writes panic). Returns `true` if it was cut.
#[inline]
pub(crate) fn write_fmt_str_capped(
    out: &mut Vec<u8>,
    args: fmt::Arguments<'_>,
    max: usize,
) -> bool {
    if max == usize::MAX {
        write_fmt_str(out, args);
        return false;
    }
    out.push(b'"');
    let mut capped = CappedWriter {
        out: &mut *out,
        left: max,
        cut: false,
    };
    let _ = fmt::write(&mut capped, args);
    let cut = capped.cut;
    if cut {
        escape_into(out, CUT_MARK);
    }
    out.push(b'"');
    cut
}

/// An [`EscapingWriter`] that stops copying after `left` bytes.
struct CappedWriter<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
    cut: bool,
}

impl fmt::Write for CappedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        if s.len() <= self.left {
            escape_into(self.out, s);
            self.left -= s.len();
            return Ok(());
        }
        let mut end = self.left;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        escape_into(self.out, &s[..end]);
        self.left = 0;
        self.cut = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, input);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn capped_strings_are_cut_at_character_boundaries() {
        let table: &[(&str, usize, &str, bool)] = &[
            ("short", 10, r#""short""#, false),
            ("exactly", 7, r#""exactly""#, false),
            ("abcdef", 3, "\"abc…[truncated]\"", true),
            ("é€🦀", 4, "\"é…[truncated]\"", true),
            ("🦀", 0, "\"…[truncated]\"", true),
        ];
        for &(input, max, expected, cut) in table {
            let mut out = Vec::new();
            assert_eq!(write_str_capped(&mut out, input, max), cut, "{input:?}");
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{input:?} {max}");
            let mut out = Vec::new();
            assert_eq!(
                write_fmt_str_capped(&mut out, format_args!("{input}{}", ""), max),
                cut
            );
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "fmt {input:?} {max}"
            );
        }
    }

    #[test]
    fn escapes_like_serde_json() {
        let table: &[(&str, &str)] = &[
            ("plain", r#""plain""#),
            ("quote\"", r#""quote\"""#),
            ("back\\slash", r#""back\\slash""#),
            ("nl\ncr\rtab\t", r#""nl\ncr\rtab\t""#),
            ("\u{0}\u{1f}\u{8}\u{c}", r#""\u0000\u001f\b\f""#),
            ("\u{7f}", "\"\u{7f}\""),
            ("line\u{2028}sep", "\"line\u{2028}sep\""),
            ("emoji 🦀", "\"emoji 🦀\""),
            ("", r#""""#),
        ];
        for (input, expected) in table {
            assert_eq!(&escaped(input), expected, "input {input:?}");
            let parsed: String = serde_json::from_str(&escaped(input)).unwrap();
            assert_eq!(&parsed, input);
        }
    }

    #[test]
    fn word_test_agrees_with_the_table() {
        for byte in 0..=255u8 {
            for pos in 0..8 {
                let mut word = [b'a'; 8];
                word[pos] = byte;
                let expected = ESCAPE[byte as usize] != 0;
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(word)),
                    expected,
                    "{byte:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn escapes_at_every_offset_of_long_strings() {
        for special in ['"', '\\', '\n', '\u{1}', 'é', '🦀'] {
            for pos in 0..20 {
                let mut input: String = "abcdefghijklmnopqrst".into();
                input.insert(pos, special);
                let parsed: String = serde_json::from_str(&escaped(&input)).unwrap();
                assert_eq!(parsed, input);
            }
        }
    }

    #[test]
    fn every_control_character_round_trips() {
        for byte in 0u8..0x20 {
            let input = format!("a{}b", byte as char);
            let parsed: String = serde_json::from_str(&escaped(&input)).unwrap();
            assert_eq!(parsed, input);
        }
    }

    #[test]
    fn non_finite_floats_become_strings() {
        let table: &[(f64, &str)] = &[
            (f64::NAN, r#""NaN""#),
            (f64::INFINITY, r#""inf""#),
            (f64::NEG_INFINITY, r#""-inf""#),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (1e300, "1e300"),
        ];
        for (input, expected) in table {
            let mut out = Vec::new();
            write_f64(&mut out, *input);
            assert_eq!(std::str::from_utf8(&out).unwrap(), *expected);
        }
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        let ryu = |v: f64| ryu::Buffer::new().format_finite(v).to_owned();
        let mine = |v: f64| {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        let table: &[(f64, &str)] = &[
            (19.99, "19.99"),
            (1.234, "1.234"),
            (0.1, "0.1"),
            (0.00001, "0.00001"),
            (0.000001, "1e-6"),
            (100.0, "100.0"),
            (-2.5, "-2.5"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e15, "1000000000000000.0"),
            (123456.789012, "123456.789012"),
            (1.0000001, "1.0000001"),
        ];
        for &(v, expected) in table {
            assert_eq!(mine(v), expected, "{v}");
            assert_eq!(mine(v), ryu(v), "{v}");
        }
        // Decimals with up to eight fraction digits over many magnitudes, and arbitrary bit
        // patterns: every one as `ryu` writes it.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let digits = next() % 10u64.pow(1 + (next() % 16) as u32);
            let scale = 10f64.powi((next() % 9) as i32);
            for v in [digits as f64 / scale, -(digits as f64) / scale] {
                assert_eq!(mine(v), ryu(v), "{digits} / {scale}");
            }
            let bits = f64::from_bits(next());
            if bits.is_finite() {
                assert_eq!(mine(bits), ryu(bits), "{bits:e}");
            }
        }
    }

    #[test]
    fn keys_are_escaped_and_hashed_once() {
        let key = Key::new("a\"b");
        assert_eq!(key.fragment(), br#""a\"b":"#);
        assert_eq!(key.escaped(), br#"a\"b"#);
        assert_eq!(key.hash(), hash_key(br#"a\"b"#));
        assert_ne!(hash_key(b"requestId"), hash_key(b"requestIe"));
        assert_ne!(hash_key(b"ab"), hash_key(b"ba"));
    }

    #[test]
    fn formatted_output_is_escaped() {
        let mut out = Vec::new();
        write_fmt_str(&mut out, format_args!("{:?}", "a\"b"));
        assert_eq!(
            serde_json::from_slice::<String>(&out).unwrap(),
            r#""a\"b""#.to_string()
        );
    }

    #[test]
    fn escaped_json_strings_are_cut_between_escapes_and_characters() {
        // (value, max bytes of content, the value the cut JSON parses to)
        let cases: [(&str, usize, String); 6] = [
            ("short", 64, "short".to_owned()),
            ("abcdef", 4, format!("abcd{CUT_MARK}")),
            // `\"` is two bytes of JSON: kept whole or left out, never split.
            ("ab\"cd", 3, format!("ab{CUT_MARK}")),
            ("ab\"cd", 4, format!("ab\"{CUT_MARK}")),
            // `\u0001` is six bytes of JSON.
            ("a\u{1}b", 5, format!("a{CUT_MARK}")),
            // `é` is two bytes of UTF-8.
            ("ééé", 3, format!("é{CUT_MARK}")),
        ];
        for (value, max, expected) in cases {
            let json = serde_json::to_vec(value).unwrap();
            let mut out = Vec::new();
            write_cut_json_str(&mut out, &json, max);
            let parsed: String = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{value:?} cut to {max}: {e}"));
            assert_eq!(parsed, expected, "{value:?} cut to {max}");
        }
    }
}
