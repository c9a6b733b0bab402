//! [`MakeRequestId`]: the hook that makes an id for a request that came without a valid one.

use http::request::Parts;

use super::RequestId;

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

/// Makes a [UUID v7] request id with the `uuid` crate (`Uuid::now_v7`), written in the usual
/// lowercase hyphenated form: a millisecond timestamp, a counter within the millisecond and
/// random bits.
///
/// # Ordering
///
/// Within one process, an id made later sorts later, as a string too: `uuid` keeps one
/// counter for the process, reseeded each millisecond and incremented within it (the
/// ordering `Uuid::now_v7` guarantees). This keeps index inserts in a database cheap. Ids
/// from different processes or machines are ordered only as far as their clocks agree.
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
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        RequestId::new(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
