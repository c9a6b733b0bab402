//! [`Pending`]: what the middleware keeps about a request until it ends, and the one call of
//! the access hook when it does.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use super::access::{Access, Outcome};
use super::grpc::GrpcCall;
use super::on_access::OnAccess;
use crate::context::Context;

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
