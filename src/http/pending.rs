//! [`Pending`]: what the middleware keeps about a request until it ends, and the one call of
//! the access hook when it does; [`answered`], [`failed`] and [`panicked`], what every adapter
//! does when the handler is done.

#[cfg(feature = "actix")]
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use tracing::Span;

use super::access::{Access, Outcome};
use super::grpc::GrpcCall;
use super::on_access::OnAccess;
use crate::context::Context;
use crate::user_text::error_text;
#[cfg(feature = "actix")]
use crate::user_text::panic_message;

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

    /// The response body was dropped before its end: for a request whose response has no
    /// body to send (`HEAD`) that is its end, else the client went away or a panic unwinds.
    pub(crate) fn body_dropped(self, status: Option<StatusCode>, size: u64) {
        let outcome = match Outcome::dropped() {
            Outcome::Aborted if self.method == Method::HEAD => Outcome::Completed,
            outcome => outcome,
        };
        self.finish(status, Some(size), outcome, None);
    }

    /// Whether the bytes of the response body count as sent: not for `HEAD`, whose body a
    /// server may poll to its end and throw away (actix-web's HTTP/1 does).
    pub(crate) fn counts_body(&self) -> bool {
        self.method != Method::HEAD
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

/// The handler answered with `status`, whatever the framework: a 5xx makes the context write
/// what it held back (it explains the failure), and the request span records the status.
pub(crate) fn answered(ctx: &Context, span: &Span, status: StatusCode) {
    if status.is_server_error() {
        ctx.in_scope(crate::context::flush_buffer);
    }
    span.record("http.response.status_code", status.as_u16());
}

/// The service failed with `err` instead of answering, whatever the framework: the context
/// writes what it held back, and the access line says `failed`, with the error's text (its
/// `Display` guarded) and the status the framework answers with, where it says.
pub(crate) fn failed(
    ctx: &Context,
    pending: Option<Pending>,
    status: Option<StatusCode>,
    err: &(impl fmt::Display + ?Sized),
) {
    ctx.in_scope(crate::context::flush_buffer);
    if let Some(pending) = pending {
        pending.finish(status, None, Outcome::Failed, Some(&error_text(err)));
    }
}

/// The handler (or the body) panicked, where the adapter catches it to say so before the panic
/// goes on: the context writes what it held back, and the access line says `panicked`, with
/// the panic's message.
#[cfg(feature = "actix")]
pub(crate) fn panicked(
    ctx: &Context,
    pending: Option<Pending>,
    status: Option<StatusCode>,
    size: Option<u64>,
    payload: &(dyn Any + Send),
) {
    ctx.in_scope(crate::context::flush_buffer);
    if let Some(pending) = pending {
        pending.finish(
            status,
            size,
            Outcome::Panicked,
            Some(panic_message(payload)),
        );
    }
}
