//! [`Rules`]: what the middleware does when a request arrives, whatever the framework: read
//! and validate the incoming headers, make the ids, build the context, the span and what the
//! access line will need. The tower service (`service.rs`) and the actix-web middleware
//! (`crate::actix`) both call [`Rules::start`]; each keeps only what its framework needs.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderName, HeaderValue};
use tracing::Span;

use super::config::Config;
use super::grpc::GrpcCall;
use super::level_from::LevelFrom;
use super::make_request_id::{DefaultMakeRequestId, MakeRequestId};
use super::on_access::{DefaultOnAccess, OnAccess};
use super::pending::Pending;
use super::request_id::RequestId;
use super::request_span::{request_span, SpanChoice};
use super::request_trace::RequestTrace;
use super::route::HttpRoute;
use crate::context::{Context, Known};

/// The context key an invalid client request id is kept under, when asked to.
const INVALID_KEY: &str = "invalid_request_id";

/// The settings and hooks of a middleware, shared by every request it serves.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) config: Arc<Config>,
    // The hooks run once per request: a virtual call there costs nothing worth a type
    // parameter on every middleware type.
    pub(crate) make_request_id: Arc<dyn MakeRequestId>,
    pub(crate) on_access: Arc<dyn OnAccess>,
    pub(crate) http_route: Arc<dyn HttpRoute>,
    pub(crate) level_from: Arc<dyn LevelFrom>,
}

/// Where [`Rules::start`] puts the request's [`RequestId`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdExtension {
    /// In the request's `http` extensions (and tower-http's `RequestId`, with that feature),
    /// before the hooks run: the tower service.
    Parts,
    /// In [`Start::request_id`], for a framework whose extensions are of its own type
    /// (actix-web): no `http` extensions map made for a request that drops it.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    Returned,
}

/// What [`Rules::start`] made for one request: the adapter runs the handler inside `ctx`
/// (with `span` entered), puts `response_header` on the response and finishes `pending` when
/// the response ends.
pub(crate) struct Start {
    pub(crate) ctx: Context,
    pub(crate) span: Span,
    pub(crate) pending: Option<Pending>,
    pub(crate) response_header: Option<(HeaderName, HeaderValue)>,
    /// The request's id, with [`IdExtension::Returned`].
    // Read by the actix-web adapter only.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    pub(crate) request_id: Option<RequestId>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            config: Arc::default(),
            make_request_id: Arc::new(DefaultMakeRequestId::new()),
            on_access: Arc::new(DefaultOnAccess::new()),
            http_route: Arc::new(()),
            level_from: Arc::new(()),
        }
    }
}

impl Rules {
    /// Changes the config; the services made before keep theirs.
    pub(crate) fn config(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::clone(&self.config);
        f(&mut config);
        Rules {
            config: Arc::new(config),
            ..self
        }
    }

    /// Makes the request's context and everything the adapter needs to run it.
    ///
    /// `parts` is changed as the handler should see it: an invalid or missing request id
    /// header is replaced by the id the lines carry (or removed, when none is made), and the
    /// [`RequestId`] goes where `id_extension` says. `framework_route` names the route for
    /// the span when the [`HttpRoute`] hook does not (actix-web's match pattern; nothing for
    /// tower); it is asked only when a span is made.
    pub(crate) fn start(
        &self,
        parts: &mut Parts,
        framework_route: impl FnOnce() -> Option<String>,
        id_extension: IdExtension,
    ) -> Start {
        let ctx = Context::new();
        // The request's latency counts from when its context was made: one clock read fewer.
        let start = ctx.read().created;
        let grpc = GrpcCall::detect(&parts.headers);
        self.config
            .deadline
            .apply(&parts.headers, &ctx, grpc.is_some());
        let (id, request_id) = self.request_id(parts, &ctx, id_extension);
        // Before any user code runs in the context: the span, the inner service's `call`.
        if let Some(level) = self.level_from.level_from(parts) {
            ctx.set_level(level);
        }
        if let Some((level, limit)) = self.config.buffer {
            ctx.set_buffer(level, Some(limit));
        }
        let trace = self
            .config
            .trace_context
            .then(|| RequestTrace::read(&parts.headers));
        // Made only where a layer needs it (see `request_span`).
        let span_choice = SpanChoice::new(self.config.span);
        // Asked once, for the span and the access line. The framework's route only where the
        // span needs it before the handler runs: an adapter that learns it more cheaply once
        // routed puts it in `Pending::route` then.
        let route = if span_choice.makes_span() || self.config.access_line {
            let route = self.http_route.http_route(parts);
            if span_choice.makes_span() {
                route.or_else(framework_route)
            } else {
                route
            }
        } else {
            None
        };
        // Made inside the context, so that the span carries it wherever it is entered.
        let span = if span_choice.makes_span() {
            ctx.in_scope(|| request_span(parts, route.as_deref()))
        } else {
            Span::none()
        };
        let pending = self.config.access_line.then(|| Pending {
            on_access: self.on_access.clone(),
            ctx: ctx.clone(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: self
                .on_access
                .request_headers()
                .iter()
                .filter_map(|name| Some((name.clone(), parts.headers.get(name)?.clone())))
                .collect(),
            start,
            route,
            grpc,
        });
        let response_header = id
            .filter(|_| self.config.response_header)
            .map(|value| (self.config.header.clone(), value));
        // Stored once the span has given its ids, if it is an OpenTelemetry span: no user code
        // runs in the context before this, so every line of the request carries the same ids.
        #[cfg(feature = "opentelemetry")]
        let trace = trace.map(|trace| {
            let (trace, tracked) = super::server_span::adopt(&span, trace);
            span_choice.learn(|| tracked);
            trace
        });
        #[cfg(feature = "opentelemetry")]
        if trace.is_none() {
            span_choice.learn(|| super::server_span::is_tracked(&span));
        }
        if let Some(trace) = trace {
            trace.store(&ctx);
        }
        Start {
            ctx,
            span,
            pending,
            response_header,
            request_id,
        }
    }

    /// Takes the request id from the header when it is valid, else makes one; puts it in
    /// the context, the request header and the request extensions. Returns it as the header
    /// value, made once and shared by every header it goes in.
    fn request_id(
        &self,
        parts: &mut Parts,
        ctx: &Context,
        id_extension: IdExtension,
    ) -> (Option<HeaderValue>, Option<RequestId>) {
        let header = &self.config.header;
        #[cfg(feature = "tower-http")]
        let from_extension = parts
            .extensions
            .get::<tower_http::request_id::RequestId>()
            .and_then(|id| RequestId::try_from(id.header_value()).ok());
        #[cfg(not(feature = "tower-http"))]
        let from_extension: Option<RequestId> = None;
        let mut values = parts.headers.get_all(header).iter();
        let (first, second) = (values.next(), values.next());
        let had_header = first.is_some();
        let id = match (first, second) {
            // An id an outer tower-http layer set (under any header name) is already present.
            _ if from_extension.is_some() => from_extension,
            (Some(value), None) => match RequestId::try_from(value) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.keep_invalid(value.as_bytes(), ctx);
                    None
                }
            },
            // Several headers: which one the client meant is unknown, so none is taken.
            (Some(value), Some(_)) => {
                self.keep_invalid(value.as_bytes(), ctx);
                None
            }
            (None, _) => None,
        };
        let id = match id {
            Some(id) => Some(id),
            None => {
                // Inner services never see an invalid value either.
                if had_header {
                    parts.headers.remove(header);
                }
                self.make_request_id.make_request_id(parts)
            }
        };
        let Some(id) = id else {
            return (None, None);
        };
        // A validated id is printable ASCII with nothing to escape.
        ctx.write().set_known_ascii(Known::RequestId, id.as_bytes());
        // Inner layers (tower-http's `SetRequestId` among them) and handlers see the id the
        // lines carry.
        let value = id.to_header_value();
        parts.headers.insert(header.clone(), value.clone());
        if id_extension == IdExtension::Returned {
            return (Some(value), Some(id));
        }
        #[cfg(feature = "tower-http")]
        parts
            .extensions
            .insert(tower_http::request_id::RequestId::new(value.clone()));
        parts.extensions.insert(id);
        (Some(value), None)
    }

    fn keep_invalid(&self, raw: &[u8], ctx: &Context) {
        if self.config.keep_invalid {
            if let Some(kept) = RequestId::sanitise(raw) {
                ctx.set(INVALID_KEY, kept);
            }
        }
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
