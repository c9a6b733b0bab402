//! [`MakeRequestId`]: the hook that makes an id for a request that came without a valid one.

use std::time::{SystemTime, UNIX_EPOCH};

use http::request::Parts;

use super::RequestId;
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

/// Makes a [UUID v7] request id: a millisecond timestamp then 74 random bits, written in the
/// usual lowercase hyphenated form. Ids made later sort later, which keeps index inserts in
/// a database cheap.
///
/// ```
/// use tracing_ambient::http::{DefaultMakeRequestId, MakeRequestId};
///
/// let (parts, ()) = http::Request::new(()).into_parts();
/// let id = DefaultMakeRequestId::new().make_request_id(&parts).unwrap();
/// assert_eq!(id.as_str().len(), 36);
/// assert_eq!(&id.as_str()[14..15], "7");
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
        RequestId::new(&uuid_v7(SystemTime::now())).ok()
    }
}

/// Writes a UUID v7 for `now`: 48 bits of Unix milliseconds, version 7, 12 random bits, the
/// RFC 4122 variant, 62 random bits.
fn uuid_v7(now: SystemTime) -> String {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (a, b) = (rng::next_u64(), rng::next_u64());
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&((0x7000 | (a & 0x0fff)) as u16).to_be_bytes());
    bytes[8..]
        .copy_from_slice(&((b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000).to_be_bytes());
    let hex = crate::trace_context::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn uuid_v7_has_version_variant_and_time() {
        let at = UNIX_EPOCH + Duration::from_millis(0x0191_a3b4_5c6d);
        let id = uuid_v7(at);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[..13], "0191a3b4-5c6d");
        assert_eq!(&id[14..15], "7");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert!(RequestId::new(&id).is_ok());
        assert_ne!(uuid_v7(at), id);
    }
}
