//! The per-thread line buffer, the set of keys already on the line, and the cached timestamp.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The two bits a key sets in a 64-bit filter, from two parts of its hash: a clear one proves
/// the key is not in the set. Two bits rather than one keep false hits rare (well under 1% for
/// the ten or so keys of a line), so the byte compare behind them seldom runs.
#[inline]
pub(crate) fn bloom_bits(hash: u64) -> u64 {
    (1 << (hash >> 58)) | (1 << ((hash >> 52) & 63))
}

/// Whether a filter may hold a key of these [`bloom_bits`].
#[inline]
pub(crate) fn bloom_has(bloom: u64, bits: u64) -> bool {
    bloom & bits == bits
}

/// Calls `f` with the hash and length of each dotted prefix of an escaped key: `a` and `a.b`
/// for `a.b.c`. Elasticsearch expands dots into objects, so a key conflicts with its prefixes.
#[inline]
pub(crate) fn for_each_dotted_prefix(key: &[u8], mut f: impl FnMut(u64, usize)) {
    for (i, &b) in key.iter().enumerate() {
        if b == b'.' {
            f(crate::json::hash_key(&key[..i]), i);
        }
    }
}

/// Keys written on the current line, as hash and byte range into the line, and their dotted
/// prefixes, so a key that is the dotted prefix of another (or has one as its prefix) is seen.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    bloom: u64,
    seen: Vec<(u64, u32, u32)>,
    prefix_bloom: u64,
    prefixes: Vec<(u64, u32, u32)>,
}

impl KeySet {
    pub(crate) const fn new() -> Self {
        KeySet {
            bloom: 0,
            seen: Vec::new(),
            prefix_bloom: 0,
            prefixes: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bloom = 0;
        self.seen.clear();
        self.prefix_bloom = 0;
        self.prefixes.clear();
    }

    /// Returns `true` if `key` equals a key recorded earlier on `line`.
    #[inline]
    pub(crate) fn contains(&self, line: &[u8], hash: u64, key: &[u8]) -> bool {
        Self::find(self.bloom, &self.seen, line, hash, key)
    }

    /// Returns `true` if `key` is the dotted prefix of a key recorded earlier on `line`.
    #[inline]
    pub(crate) fn is_prefix(&self, line: &[u8], hash: u64, key: &[u8]) -> bool {
        Self::find(self.prefix_bloom, &self.prefixes, line, hash, key)
    }

    /// Returns `true` if a key with these [`bloom_bits`] may be on the line, or be the dotted
    /// prefix of a key on it: `false` proves it is neither.
    #[inline]
    pub(crate) fn may_conflict(&self, bits: u64) -> bool {
        bloom_has(self.bloom, bits) || bloom_has(self.prefix_bloom, bits)
    }

    #[inline]
    fn find(bloom: u64, set: &[(u64, u32, u32)], line: &[u8], hash: u64, key: &[u8]) -> bool {
        if !bloom_has(bloom, bloom_bits(hash)) {
            return false;
        }
        set.iter()
            .any(|&(h, s, e)| h == hash && line.get(s as usize..e as usize) == Some(key))
    }

    /// The filter of the keys recorded so far and their dotted prefixes: a key whose
    /// [`bloom_bits`] it lacks is none of them, and the dotted prefix of none.
    #[inline]
    pub(crate) fn filter(&self) -> u64 {
        self.bloom | self.prefix_bloom
    }

    /// Adds the [`bloom_bits`] of a key kept outside this set (a well-known context key, which
    /// the line writer tracks itself), so that the filter still covers every key on the line.
    #[inline]
    pub(crate) fn add_bits(&mut self, bits: u64) {
        self.bloom |= bits;
    }

    /// Records the key at `line[start..end]`.
    #[inline]
    pub(crate) fn insert(&mut self, line: &[u8], hash: u64, start: usize, end: usize) {
        let dotted = line[start..end].contains(&b'.');
        self.insert_known(line, hash, start, end, dotted);
    }

    /// Records the key at `line[start..end]`, saying whether it has a `.` (known beforehand for
    /// prepared keys, so undotted ones skip the search for prefixes).
    #[inline]
    pub(crate) fn insert_known(
        &mut self,
        line: &[u8],
        hash: u64,
        start: usize,
        end: usize,
        dotted: bool,
    ) {
        self.bloom |= bloom_bits(hash);
        // Lines longer than 4 GiB are not a case to optimise; their offsets saturate and only
        // weaken duplicate detection for keys past that point.
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.seen.push((hash, clamp(start), clamp(end)));
        if dotted {
            let (bloom, prefixes) = (&mut self.prefix_bloom, &mut self.prefixes);
            for_each_dotted_prefix(&line[start..end], |hash, len| {
                *bloom |= bloom_bits(hash);
                prefixes.push((hash, clamp(start), clamp(start + len)));
            });
        }
    }
}

/// The seconds part of the last timestamp written on this thread, so the calendar is only
/// worked out once a second.
#[derive(Debug)]
struct TimestampCache {
    secs: u64,
    /// `YYYY-MM-DDTHH:MM:SS.`
    prefix: [u8; 20],
}

/// A line being built: its bytes, its keys, its message (`,"message":"…"`, written aside
/// and put in its place when the line is finished) and this thread's timestamp cache.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) bytes: Vec<u8>,
    pub(crate) keys: KeySet,
    pub(crate) message: Vec<u8>,
    timestamp: TimestampCache,
}

/// A line buffer past this size after a write is given back, so that one huge line does not
/// pin its memory for the thread's life.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Line {
    pub(crate) const fn new() -> Self {
        Line {
            bytes: Vec::new(),
            keys: KeySet::new(),
            message: Vec::new(),
            timestamp: TimestampCache {
                secs: u64::MAX,
                prefix: [0; 20],
            },
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes.shrink_to(KEEP_CAPACITY);
        }
        self.message.clear();
        if self.message.capacity() > KEEP_CAPACITY {
            self.message.shrink_to(KEEP_CAPACITY);
        }
        self.keys.clear();
    }

    /// Appends `now` as a quoted RFC 3339 UTC timestamp with microseconds:
    /// `"2026-11-24T14:02:12.123456Z"`. A clock before 1970 writes the epoch.
    pub(crate) fn write_timestamp(&mut self, now: SystemTime) {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs();
        if secs != self.timestamp.secs {
            self.timestamp.prefix = calendar_prefix(secs);
            self.timestamp.secs = secs;
        }
        // `"` + the cached prefix + six digits + `Z"`, built on the stack and appended in one
        // fixed-size move.
        let mut out = [b'"'; 29];
        out[1..21].copy_from_slice(&self.timestamp.prefix);
        let mut rest = since_epoch.subsec_micros();
        for pair in (0..3).rev() {
            let two = (rest % 100) as usize * 2;
            out[21 + pair * 2..23 + pair * 2].copy_from_slice(&DIGIT_PAIRS[two..two + 2]);
            rest /= 100;
        }
        out[27] = b'Z';
        self.bytes.extend_from_slice(&out);
    }
}

/// `00` to `99`, two bytes each.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Formats `YYYY-MM-DDTHH:MM:SS.` for a count of seconds since the epoch. Past year 9999
/// (which RFC 3339 cannot write) the last second of 9999 is written.
fn calendar_prefix(secs: u64) -> [u8; 20] {
    let max = time::PrimitiveDateTime::MAX.assume_utc();
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(max);
    let mut out = [0u8; 20];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut value = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, at.year().clamp(0, 9999) as u32, 4);
    put(5, u8::from(at.month()).into(), 2);
    put(8, at.day().into(), 2);
    put(11, at.hour().into(), 2);
    put(14, at.minute().into(), 2);
    put(17, at.second().into(), 2);
    out[4] = b'-';
    out[7] = b'-';
    out[10] = b'T';
    out[13] = b':';
    out[16] = b':';
    out[19] = b'.';
    out
}

thread_local! {
    static LINE: RefCell<Line> = const { RefCell::new(Line::new()) };
}

/// Calls `f` with this thread's line buffer, cleared afterwards. If the buffer is in use
/// further up the call stack (the writer or a `Debug` impl logged while we format), or the
/// thread is being torn down, `f` gets a fresh buffer instead.
pub(crate) fn with_line<R>(f: impl FnOnce(&mut Line) -> R) -> R {
    let mut f = Some(f);
    let done = LINE.try_with(|cell| {
        let line = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        // Cleared on drop, so a panic that unwinds through `f` cannot leave half a line for
        // the next event of this thread.
        let mut line = ClearOnDrop(line);
        Some(f(&mut line.0))
    });
    match done {
        Ok(Some(result)) => result,
        _ => {
            let f = f
                .take()
                .expect("f runs only after the borrow succeeded, this is a bug");
            f(&mut Line::new())
        }
    }
}

/// Clears the borrowed line buffer when dropped, on return and on unwind alike.
struct ClearOnDrop<'a>(std::cell::RefMut<'a, Line>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timestamp(secs: u64, micros: u32) -> String {
        let mut line = Line::new();
        line.write_timestamp(UNIX_EPOCH + Duration::new(secs, micros * 1000));
        String::from_utf8(line.bytes).unwrap()
    }

    #[test]
    fn writes_rfc3339_utc_with_microseconds() {
        let table = [
            (0, 0, r#""1970-01-01T00:00:00.000000Z""#),
            (1_795_528_932, 123_456, r#""2026-11-24T14:02:12.123456Z""#),
            (951_782_400, 7, r#""2000-02-29T00:00:00.000007Z""#),
            (253_402_300_799, 999_999, r#""9999-12-31T23:59:59.999999Z""#),
            (
                253_402_300_800 + 86_400,
                1,
                r#""9999-12-31T23:59:59.000001Z""#,
            ),
        ];
        for (secs, micros, expected) in table {
            assert_eq!(timestamp(secs, micros), expected, "secs {secs}");
        }
    }

    #[test]
    fn cached_prefix_follows_the_clock() {
        let mut line = Line::new();
        for secs in [10, 10, 11, 9] {
            line.bytes.clear();
            line.write_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(line.bytes, timestamp(secs, 0).into_bytes());
        }
    }

    #[test]
    fn key_set_finds_only_equal_keys() {
        use crate::json::hash_key;
        let line = b"abcabd".to_vec();
        let mut keys = KeySet::new();
        keys.insert(&line, hash_key(b"abc"), 0, 3);
        assert!(keys.contains(&line, hash_key(b"abc"), b"abc"));
        assert!(!keys.contains(&line, hash_key(b"abd"), b"abd"));
    }

    #[test]
    fn key_set_finds_dotted_prefixes() {
        use crate::json::hash_key;
        let line = b"a.b.c".to_vec();
        let mut keys = KeySet::new();
        keys.insert(&line, hash_key(&line), 0, 5);
        for (prefix, expected) in [("a", true), ("a.b", true), ("a.b.c", false), ("b", false)] {
            let found = keys.is_prefix(&line, hash_key(prefix.as_bytes()), prefix.as_bytes());
            assert_eq!(found, expected, "{prefix}");
        }
    }

    #[test]
    fn a_panic_inside_leaves_the_buffer_empty() {
        let result = std::panic::catch_unwind(|| {
            with_line(|line| {
                line.bytes.extend_from_slice(b"{\"half");
                panic!("user code");
            })
        });
        assert!(result.is_err());
        with_line(|line| assert!(line.bytes.is_empty()));
    }

    #[test]
    fn a_reentrant_caller_gets_its_own_buffer() {
        with_line(|outer| {
            outer.bytes.extend_from_slice(b"outer");
            with_line(|inner| assert!(inner.bytes.is_empty()));
            assert_eq!(outer.bytes, b"outer");
        });
        with_line(|line| assert!(line.bytes.is_empty()));
    }
}
