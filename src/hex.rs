//! Lowercase hex digits, as W3C trace context, OpenTelemetry and UUIDs write ids.
//!
//! Ids are made and written on every request, so the digits of eight bytes are worked out
//! at once in one `u64` (some twenty instructions for sixteen digits) instead of one table
//! lookup per nibble.

/// The sixteen lowercase hex digits of `x`, most significant first.
///
/// Each of the eight bytes of `x`'s upper and lower halves is spread to two bytes holding one
/// nibble each, and each nibble `n` becomes `'0' + n`, plus `'a' - '0' - 10` when `n > 9`; no
/// step carries from one byte into the next (the largest byte is `15 + 0x30 + 39 = 102`).
#[inline]
pub(crate) fn u64_digits(x: u64) -> [u8; 16] {
    let high = ascii(nibbles((x >> 32) as u32));
    let low = ascii(nibbles(x as u32));
    (u128::from(high) << 64 | u128::from(low)).to_be_bytes()
}

/// The eight nibbles of `x`, one per byte, the most significant in the highest byte.
#[inline]
fn nibbles(x: u32) -> u64 {
    let x = u64::from(x);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f
}

/// Each byte `n` (a nibble) as its lowercase hex digit.
#[inline]
fn ascii(nibbles: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // 1 in each byte whose nibble is 10 or more: `n + 6` reaches 16 exactly then.
    let letters = ((nibbles + 6 * ONES) >> 4) & ONES;
    nibbles + u64::from(b'0') * ONES + letters * u64::from(b'a' - b'0' - 10)
}

/// The 32 digits of a 16-byte id (a W3C trace id).
#[cfg(feature = "http")]
#[inline]
pub(crate) fn digits_16(bytes: &[u8; 16]) -> [u8; 32] {
    let id = u128::from_be_bytes(*bytes);
    let mut out = [0; 32];
    out[..16].copy_from_slice(&u64_digits((id >> 64) as u64));
    out[16..].copy_from_slice(&u64_digits(id as u64));
    out
}

/// The 16 digits of an 8-byte id (a W3C span id).
#[cfg(feature = "http")]
#[inline]
pub(crate) fn digits_8(bytes: &[u8; 8]) -> [u8; 16] {
    u64_digits(u64::from_be_bytes(*bytes))
}

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
///
/// # Panics
///
/// When `out` is not twice as long as `bytes` (a bug in the caller: every caller passes
/// arrays of fixed sizes).
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), bytes.len() * 2, "hex needs two digits per byte");
    let mut chunks = bytes.chunks_exact(8);
    let mut digits = out.chunks_exact_mut(16);
    for (chunk, digits) in (&mut chunks).zip(&mut digits) {
        let word = u64::from_be_bytes(chunk.try_into().expect("chunks of eight"));
        digits.copy_from_slice(&u64_digits(word));
    }
    // Fewer than eight bytes left: the low digits of the word they make.
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0; 8];
        word[8 - rest.len()..].copy_from_slice(rest);
        let all = u64_digits(u64::from_be_bytes(word));
        digits
            .into_remainder()
            .copy_from_slice(&all[16 - 2 * rest.len()..]);
    }
}

/// `bytes` as a `String` of lowercase hex.
pub(crate) fn string(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    encode_into(bytes, &mut out);
    String::from_utf8(out).expect("hex digits are ASCII, this is a bug")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_what_format_writes() {
        let samples = [
            0,
            1,
            9,
            10,
            15,
            16,
            0x0123_4567_89ab_cdef,
            0xfedc_ba98_7654_3210,
            0xa0a0_a0a0_0909_0909,
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
        ];
        for x in samples {
            assert_eq!(u64_digits(x), *format!("{x:016x}").as_bytes(), "{x:#x}");
        }
        // Every nibble value in every position.
        for shift in (0..64).step_by(4) {
            for n in 0..16u64 {
                let x = n << shift;
                assert_eq!(u64_digits(x), *format!("{x:016x}").as_bytes(), "{x:#x}");
            }
        }
    }

    #[test]
    #[cfg(feature = "http")]
    fn fixed_sizes_are_what_format_writes() {
        let id: [u8; 16] = std::array::from_fn(|i| (i * 17 + 3) as u8);
        let want: String = id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digits_16(&id), *want.as_bytes());
        let span: [u8; 8] = std::array::from_fn(|i| (0xf0 - i * 31) as u8);
        let want: String = span.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digits_8(&span), *want.as_bytes());
    }

    #[test]
    fn encode_into_writes_any_length() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 24, 255, 256] {
            let want: String = bytes[..len].iter().map(|b| format!("{b:02x}")).collect();
            let mut out = vec![0; 2 * len];
            encode_into(&bytes[..len], &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{len} bytes");
        }
    }
}
