//! [`MakeRequestId`]: the hook that makes an id for a request that came without a valid one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::request::Parts;

use super::request_id::RequestId;
use crate::hex;
use crate::trace_context::rng;

/// Makes the id of a request that has no valid request id header.
///
/// It runs once per such request, in the middleware's `call`, before the request's context
/// exists; it sees the request's head (method, URI, headers, extensions), with any invalid
/// request id header already removed. Returning `None` leaves the request without an id.
///
/// Implemented by:
///
/// - [`DefaultMakeRequestId`]: a UUID v7, the default;
/// - closures `Fn(&http::request::Parts) -> Option<RequestId>`;
/// - `()`: makes no id.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tracing_ambient::http::{RequestContextLayer, RequestId};
///
/// static NEXT: AtomicU64 = AtomicU64::new(1);
/// let layer = RequestContextLayer::new().make_request_id(|_: &http::request::Parts| {
///     RequestId::new(&format!("req-{}", NEXT.fetch_add(1, Ordering::Relaxed))).ok()
/// });
/// # drop(layer);
/// ```
pub trait MakeRequestId: Send + Sync + 'static {
    /// Returns the id of a request that came without a valid one.
    fn make_request_id(&self, request: &Parts) -> Option<RequestId>;
}

impl MakeRequestId for () {
    fn make_request_id(&self, _: &Parts) -> Option<RequestId> {
        None
    }
}

impl<F> MakeRequestId for F
where
    F: Fn(&Parts) -> Option<RequestId> + Send + Sync + 'static,
{
    fn make_request_id(&self, request: &Parts) -> Option<RequestId> {
        self(request)
    }
}

/// Makes a [UUID v7] request id, written in the usual lowercase hyphenated form: a
/// millisecond timestamp, a 12-bit counter within the millisecond and 62 random bits.
///
/// # Ordering
///
/// Within one process, an id made later sorts later, as a string too: one counter for the
/// process, reseeded at random (below half its range) each millisecond and incremented within
/// it; past 4,096 ids in a millisecond the timestamp moves on by one. This keeps index inserts
/// in a database cheap. Ids from different processes or machines are ordered only as far as
/// their clocks agree.
///
/// # Cost
///
/// The counter is one atomic compare-and-swap, and the random bits come from the thread's
/// generator (xoshiro256++, seeded once per thread from the operating system), so making an
/// id takes no lock and no system call.
///
/// ```
/// use tracing_ambient::http::{DefaultMakeRequestId, MakeRequestId};
///
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let make = DefaultMakeRequestId::new();
/// let id = make.make_request_id(&parts).unwrap();
/// assert_eq!(id.as_str().len(), 36);
/// assert_eq!(&id.as_str()[14..15], "7");
/// assert!(make.make_request_id(&parts).unwrap().as_str() > id.as_str());
/// ```
///
/// [UUID v7]: https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-7
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMakeRequestId {
    _private: (),
}

impl DefaultMakeRequestId {
    /// Returns the default id maker.
    ///
    /// ```
    /// let make = tracing_ambient::http::DefaultMakeRequestId::new();
    /// # drop(make);
    /// ```
    pub const fn new() -> Self {
        DefaultMakeRequestId { _private: () }
    }
}

impl MakeRequestId for DefaultMakeRequestId {
    fn make_request_id(&self, _: &Parts) -> Option<RequestId> {
        let [seed, random] = rng::words();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 12)
        });
        let stamp = next_stamp(now_ms, seed & 0x7ff);
        Some(RequestId::from_generated(&uuid_v7_text(stamp, random)))
    }
}

/// The hyphenated lowercase text of the UUID v7 made of `stamp` (`millisecond << 12 |
/// counter`) and the high 62 bits of `random`. RFC 9562 §5.7: 48 bits of Unix milliseconds,
/// the version (7), 12 bits `rand_a` (the counter goes there, as its §6.2 method 1 allows),
/// the variant (binary 10) and 62 bits `rand_b`.
fn uuid_v7_text(stamp: u64, random: u64) -> [u8; 36] {
    let millis = (stamp >> 12) & 0xffff_ffff_ffff;
    let high = millis << 16 | 0x7000 | (stamp & 0xfff);
    let low = 1 << 63 | random >> 2;
    let (high, low) = (hex::u64_digits(high), hex::u64_digits(low));
    let mut text = [b'-'; 36];
    text[..8].copy_from_slice(&high[..8]);
    text[9..13].copy_from_slice(&high[8..12]);
    text[14..18].copy_from_slice(&high[12..]);
    text[19..23].copy_from_slice(&low[..4]);
    text[24..].copy_from_slice(&low[4..]);
    text
}

/// The last id's millisecond and counter, as `millisecond << 12 | counter`, for the process.
static LAST_STAMP: AtomicU64 = AtomicU64::new(0);

/// Returns the next `millisecond << 12 | counter`: `now_ms` with the counter at `seed` when
/// the clock has moved past the last id's millisecond, else the last one plus one (which
/// carries into the millisecond when the counter is full, and keeps ids in order when the
/// clock goes back).
fn next_stamp(now_ms: u64, seed: u64) -> u64 {
    next_stamp_in(&LAST_STAMP, now_ms, seed)
}

fn next_stamp_in(stamp: &AtomicU64, now_ms: u64, seed: u64) -> u64 {
    let mut last = stamp.load(Ordering::Relaxed);
    loop {
        let next = if now_ms > last >> 12 {
            (now_ms << 12) | seed
        } else {
            last + 1
        };
        match stamp.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_the_order_they_are_made_across_threads() {
        let (parts, ()) = http::Request::new(()).into_parts();
        let make = |n| {
            let (parts, ()) = http::Request::new(()).into_parts();
            (0..n)
                .map(|_| {
                    let id = DefaultMakeRequestId::new().make_request_id(&parts).unwrap();
                    id.as_str().to_owned()
                })
                .collect::<Vec<_>>()
        };
        // More ids than the counter holds in a millisecond, on four threads at once.
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || make(10_000)))
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            let ids = thread.join().unwrap();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "in order on each thread"
            );
            all.extend(ids);
        }
        let later = DefaultMakeRequestId::new().make_request_id(&parts).unwrap();
        assert!(all.iter().all(|id| id.as_str() < later.as_str()));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 40_000, "all distinct");
    }

    #[test]
    fn the_counter_reseeds_increments_carries_and_survives_a_clock_going_back() {
        let stamp = AtomicU64::new(0);
        let split = |s: u64| (s >> 12, s & 0xfff);
        assert_eq!(split(next_stamp_in(&stamp, 100, 0x7ff)), (100, 0x7ff));
        assert_eq!(split(next_stamp_in(&stamp, 100, 5)), (100, 0x800));
        // A new millisecond reseeds.
        assert_eq!(split(next_stamp_in(&stamp, 101, 3)), (101, 3));
        // A full counter carries into the next millisecond.
        stamp.store((101 << 12) | 0xfff, Ordering::Relaxed);
        assert_eq!(split(next_stamp_in(&stamp, 101, 3)), (102, 0));
        // A clock that goes back keeps counting from the last id.
        assert_eq!(split(next_stamp_in(&stamp, 50, 3)), (102, 1));
    }

    #[test]
    fn the_text_is_the_uuid_the_uuid_crate_reads() {
        // Millisecond 0x0195_b4e2_7d4c, counter 0xabc; rand_b the high 62 bits of `random`.
        let stamp = 0x0195_b4e2_7d4c << 12 | 0xabc;
        for random in [0, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63, 3] {
            let text = uuid_v7_text(stamp, random);
            let text = std::str::from_utf8(&text).unwrap();
            let uuid = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(uuid.get_version_num(), 7, "{text}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{text}");
            assert_eq!(uuid.hyphenated().to_string(), text, "lowercase, hyphenated");
            let bits = uuid.as_u128();
            assert_eq!(bits >> 80, 0x0195_b4e2_7d4c, "unix_ts_ms: {text}");
            assert_eq!(
                (bits >> 64) & 0xfff,
                0xabc,
                "rand_a holds the counter: {text}"
            );
            assert_eq!(bits as u64 & (u64::MAX >> 2), random >> 2, "rand_b: {text}");
        }
        // The 49th bit of milliseconds and up are not the timestamp's.
        let text = uuid_v7_text((1 << 48 | 5) << 12, 0);
        assert!(std::str::from_utf8(&text)
            .unwrap()
            .starts_with("00000000-0005-7000-8"));
    }

    #[test]
    fn ids_are_uuid_v7_with_the_rfc_variant() {
        let (parts, ()) = http::Request::new(()).into_parts();
        let id = DefaultMakeRequestId::new().make_request_id(&parts).unwrap();
        let id = id.as_str();
        assert_eq!(id.len(), 36);
        assert_eq!([8, 13, 18, 23].map(|i| &id[i..=i]), ["-"; 4]);
        assert_eq!(&id[14..15], "7", "{id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ms = u64::from_str_radix(&id[..13].replace('-', ""), 16).unwrap();
        assert!(
            now_ms.abs_diff(ms) < 5_000,
            "{id}: a Unix millisecond timestamp"
        );
    }
}
