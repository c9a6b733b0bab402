//! [`Access`]: what is known about a request when it ends, handed to the access hook.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use super::grpc::GrpcCode;

/// A request that has ended, as the [`OnAccess`](super::OnAccess) hook sees it.
///
/// # Examples
///
/// ```
/// use tracing_ambient::http::{Access, Outcome, RequestContextLayer};
///
/// let layer = RequestContextLayer::new().on_access(|access: &Access<'_>| {
///     if access.outcome != Outcome::Completed {
///         tracing::warn!(path = access.uri.path(), "request did not complete");
///     }
/// });
/// # drop(layer);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Access<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request URI, with its query string.
    pub uri: &'a Uri,
    /// The response status, `None` if no response was made.
    pub status: Option<StatusCode>,
    /// The time from the request reaching the middleware to its end.
    pub latency: Duration,
    /// The bytes of response body sent, `None` if no response was made.
    pub size: Option<u64>,
    /// The request headers the hook asked for in [`OnAccess::request_headers`](super::OnAccess::request_headers).
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// How the request ended.
    pub outcome: Outcome,
    /// The inner service's or the body's error, when the outcome is [`Outcome::Failed`]; the
    /// panic's message, when it is [`Outcome::Panicked`] and the middleware saw the panic.
    pub error: Option<&'a str>,
    /// The route template the request matched (`/orders/{id}`), when the
    /// [`HttpRoute`](super::HttpRoute) hook named it.
    pub route: Option<&'a str>,
    /// The status a gRPC call ended with, from the `grpc-status` trailer (or header, in a
    /// trailers-only response); `None` for a request that is not gRPC or that ended without
    /// one. See "gRPC" in the [module docs](super).
    pub grpc_status: Option<GrpcCode>,
    /// The gRPC status message (`grpc-message`), percent-decoded and cut to 512 bytes, when
    /// the call ended with a non-empty one.
    pub grpc_message: Option<&'a str>,
}

/// How a request ended.
///
/// ```
/// use tracing_ambient::http::Outcome;
///
/// assert_eq!(Outcome::Completed.as_str(), "completed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The whole response body was sent.
    Completed,
    /// The response future or body was dropped before its end, usually because the client
    /// went away.
    Aborted,
    /// The inner service returned an error, or the body yielded one.
    Failed,
    /// The response future or body was dropped while its thread was panicking.
    Panicked,
}

impl Outcome {
    /// Returns the outcome as a lowercase word.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::http::Outcome::Aborted.as_str(), "aborted");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "failed",
            Outcome::Panicked => "panicked",
        }
    }

    /// The outcome of a future or body dropped before its end.
    pub(crate) fn dropped() -> Self {
        if std::thread::panicking() {
            Outcome::Panicked
        } else {
            Outcome::Aborted
        }
    }
}
