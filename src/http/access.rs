//! [`Access`]: what is known about a request when it ends, handed to the access hook.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use super::grpc::GrpcCall;
use super::{GrpcCode, OnAccess};
use crate::Context;

/// A request that has ended, as the [`OnAccess`] hook sees it.
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
    /// The request headers the hook asked for in [`OnAccess::request_headers`].
    pub headers: &'a [(HeaderName, HeaderValue)],
    /// How the request ended.
    pub outcome: Outcome,
    /// The inner service's or the body's error, when the outcome is [`Outcome::Failed`].
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

/// What the middleware keeps about a request until it ends, to hand to the hook once.
pub(crate) struct Pending {
    pub(crate) on_access: Arc<dyn OnAccess>,
    pub(crate) ctx: Context,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) start: Instant,
    pub(crate) route: Option<String>,
    // `Some` for a gRPC call: its status, read from the response headers and trailers.
    pub(crate) grpc: Option<GrpcCall>,
}

impl Pending {
    /// Reads a gRPC call's status from response headers or trailers; a request that is not
    /// gRPC ignores them.
    pub(crate) fn observe_grpc(&mut self, headers: &http::HeaderMap) {
        if let Some(grpc) = &mut self.grpc {
            grpc.observe(headers);
        }
    }

    /// Runs the hook with the request's context current.
    pub(crate) fn finish(
        self,
        status: Option<StatusCode>,
        size: Option<u64>,
        outcome: Outcome,
        error: Option<&str>,
    ) {
        self.ctx
            .in_scope(|| self.finish_in_scope(status, size, outcome, error));
    }

    /// Runs the hook; the caller has made the request's context current.
    pub(crate) fn finish_in_scope(
        &self,
        status: Option<StatusCode>,
        size: Option<u64>,
        outcome: Outcome,
        error: Option<&str>,
    ) {
        let access = Access {
            method: &self.method,
            uri: &self.uri,
            status,
            latency: self.start.elapsed(),
            size,
            headers: &self.headers,
            outcome,
            error,
            route: self.route.as_deref(),
            grpc_status: self.grpc.as_ref().and_then(|g| g.status),
            grpc_message: self.grpc.as_ref().and_then(|g| g.message.as_deref()),
        };
        self.on_access.on_access(&access);
    }
}
