//! [`RequestContextLayer`]: the middleware's builder and tower `Layer`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use tower_layer::Layer;

use super::config::Config;
use super::request_span::SpanMode;

use super::deadline::TimeoutFormat;
use super::level_from::LevelFrom;
use super::make_request_id::MakeRequestId;
use super::on_access::OnAccess;
use super::route::HttpRoute;
use super::service::RequestContext;
use super::start::Rules;

/// Opens a request [`Context`](crate::Context) around every request of a tower service: request
/// id, W3C trace context, response header and the access line.
///
/// See the [module docs](super) for what it does to each request.
///
/// # Examples
///
/// ```
/// use axum::{routing::get, Router};
/// use tracing_ambient::http::RequestContextLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     // Outermost, so the context covers every other layer.
///     .layer(RequestContextLayer::new());
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestContextLayer {
    pub(crate) rules: Rules,
}

// === impl RequestContextLayer ===

impl RequestContextLayer {
    /// Returns a layer with the defaults: `x-request-id`, UUID v7 ids, trace context on,
    /// response header on, the default access line.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> Self {
        RequestContextLayer {
            rules: Rules::default(),
        }
    }
}

impl Default for RequestContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestContextLayer {
    fn config(self, f: impl FnOnce(&mut Config)) -> Self {
        RequestContextLayer {
            rules: self.rules.config(f),
        }
    }

    /// Sets the header the request id is read from and written to. Defaults to
    /// `x-request-id`.
    ///
    /// ```
    /// use http::HeaderName;
    ///
    /// let layer = tracing_ambient::http::RequestContextLayer::new()
    ///     .header(HeaderName::from_static("x-correlation-id"));
    /// # drop(layer);
    /// ```
    pub fn header(self, header: HeaderName) -> Self {
        self.config(|c| c.header = header)
    }

    /// Sets whether the request id is set on the response header (unless the service already
    /// set that header). Defaults to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new().with_response_header(false);
    /// # drop(layer);
    /// ```
    pub fn with_response_header(self, yes: bool) -> Self {
        self.config(|c| c.response_header = yes)
    }

    /// Sets whether `traceparent` and `tracestate` are read, and a trace id and span id put
    /// in the context. Defaults to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new().with_trace_context(false);
    /// # drop(layer);
    /// ```
    pub fn with_trace_context(self, yes: bool) -> Self {
        self.config(|c| c.trace_context = yes)
    }

    /// Sets whether the access hook runs (by default, the access line is logged). Defaults
    /// to `true`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new().with_access_line(false);
    /// # drop(layer);
    /// ```
    pub fn with_access_line(self, yes: bool) -> Self {
        self.config(|c| c.access_line = yes)
    }

    /// Sets whether an invalid client request id is kept, under the context key
    /// `invalid_request_id` (`invalidRequestId` on the line): its first 64 bytes, each byte
    /// outside the allowed set replaced by `_`. It is never written raw, in a response header
    /// or in an SQL comment. Defaults to `false`.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new().keep_invalid_request_id(true);
    /// # drop(layer);
    /// ```
    pub fn keep_invalid_request_id(self, yes: bool) -> Self {
        self.config(|c| c.keep_invalid = yes)
    }

    /// Sets whether a `tracing` span is opened for each request: `true` always, `false`
    /// never (see "Request span" in the [module docs](super)). Defaults to a span only where
    /// a layer of the subscriber needs it: with the `opentelemetry` feature, where a
    /// tracing-opentelemetry layer tracks it (the server span); without, never.
    ///
    /// Ask for it when a layer of your own reads the request span (its name, its fields, its
    /// timing): the request's lines carry the context without it.
    ///
    /// ```
    /// let layer = tracing_ambient::http::RequestContextLayer::new().with_span(true);
    /// # drop(layer);
    /// ```
    pub fn with_span(self, yes: bool) -> Self {
        let mode = if yes { SpanMode::On } else { SpanMode::Off };
        self.config(|c| c.span = mode)
    }

    /// Sets the hook that names the route a request matched, for the request span's
    /// `http.route` and the access line's route. Defaults to `()`, no route: see
    /// [`HttpRoute`] for axum's.
    ///
    /// ```
    /// use tracing_ambient::http::RequestContextLayer;
    ///
    /// let layer = RequestContextLayer::new()
    ///     .http_route(|request: &http::request::Parts| Some(request.uri.path().to_owned()));
    /// # drop(layer);
    /// ```
    pub fn http_route(self, http_route: impl HttpRoute) -> Self {
        RequestContextLayer {
            rules: Rules {
                http_route: Arc::new(http_route),
                ..self.rules
            },
        }
    }

    /// Sets the hook that gives a request's context a level of its own (see [`LevelFrom`]):
    /// events of that level and more severe logged while serving the request are written
    /// whatever `RUST_LOG` says. Defaults to `()`: no request gets one.
    ///
    /// No header is read by default, and none should be taken as the client sends it: a
    /// client could then switch `debug` on for its own requests and multiply the service's
    /// log volume at will. Decide from what the service can trust (see [`LevelFrom`]).
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::http::RequestContextLayer;
    ///
    /// // Requests from inside the network (as a trusted proxy marked them) log at debug.
    /// let layer = RequestContextLayer::new().level_from(|request: &http::request::Parts| {
    ///     request.extensions.get::<Internal>().map(|_| Level::DEBUG)
    /// });
    /// # #[derive(Clone)] struct Internal;
    /// # drop(layer);
    /// ```
    pub fn level_from(self, level_from: impl LevelFrom) -> Self {
        RequestContextLayer {
            rules: Rules {
                level_from: Arc::new(level_from),
                ..self.rules
            },
        }
    }

    /// Sets every request's context to hold back its lines from `level` up to the level that
    /// would be written (see [`Context::buffer`](crate::Context::buffer)), up to `limit`
    /// bytes (say [`DEFAULT_BUFFER_LIMIT`](crate::DEFAULT_BUFFER_LIMIT)). They are written
    /// right before an `ERROR` event of the request, on
    /// [`flush_buffer`](crate::flush_buffer), and when the response is a 5xx or the inner
    /// service fails; otherwise they are dropped when the request ends. Defaults to none.
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::http::RequestContextLayer;
    ///
    /// let layer = RequestContextLayer::new().buffer(Level::DEBUG, tracing_ambient::DEFAULT_BUFFER_LIMIT);
    /// # drop(layer);
    /// ```
    pub fn buffer(self, level: tracing::Level, limit: usize) -> Self {
        self.config(|c| c.buffer = Some((level, limit)))
    }

    /// Sets the hook that makes ids for requests without a valid one. Defaults to
    /// [`DefaultMakeRequestId`](super::DefaultMakeRequestId) (UUID v7).
    ///
    /// ```
    /// use tracing_ambient::http::RequestContextLayer;
    ///
    /// // Requests without a valid id get none.
    /// let layer = RequestContextLayer::new().make_request_id(());
    /// # drop(layer);
    /// ```
    pub fn make_request_id(self, make_request_id: impl MakeRequestId) -> Self {
        RequestContextLayer {
            rules: Rules {
                make_request_id: Arc::new(make_request_id),
                ..self.rules
            },
        }
    }

    /// Sets the hook that runs when a request ends. Defaults to [`DefaultOnAccess`](super::DefaultOnAccess), which
    /// logs the access line.
    ///
    /// ```
    /// use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
    ///
    /// let layer = RequestContextLayer::new().on_access(DefaultOnAccess::new().with_query(true));
    /// # drop(layer);
    /// ```
    pub fn on_access(self, on_access: impl OnAccess) -> Self {
        RequestContextLayer {
            rules: Rules {
                on_access: Arc::new(on_access),
                ..self.rules
            },
        }
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext::new(inner, self.rules.clone())
    }
}

/// # Deadlines
///
/// The middleware can give each request's context a deadline (see
/// [`Context::with_timeout`](crate::context::Context::with_timeout)): the layer's
/// [`timeout`](Self::timeout), a timeout the client sends in a
/// [header](Self::timeout_header), or the earlier of the two: a client can shorten the
/// server's time budget, never lengthen it. Both are off by default.
///
/// The middleware only sets the deadline; it does not cancel the request when it passes.
/// Handlers bound their work with [`within_deadline`](crate::within_deadline) and read
/// what is left with [`remaining`](crate::remaining); to end every request at a fixed time
/// with a status of its own, put tower-http's `TimeoutLayer` inside this layer (so the
/// access line records its response).
///
/// ```
/// use std::time::Duration;
/// use axum::{http::StatusCode, routing::get, Router};
/// use tracing_ambient::http::{RequestContextLayer, TimeoutFormat};
///
/// async fn report() -> Result<String, StatusCode> {
///     let work = async { "report".to_owned() };
///     tracing_ambient::within_deadline(work)
///         .await
///         .map_err(|_| StatusCode::GATEWAY_TIMEOUT)
/// }
///
/// let app: Router = Router::new().route("/report", get(report)).layer(
///     RequestContextLayer::new()
///         .timeout(Duration::from_secs(10))
///         .timeout_header(http::HeaderName::from_static("x-timeout-ms"), TimeoutFormat::Millis),
/// );
/// ```
impl RequestContextLayer {
    /// Sets the deadline of each request's context this long after the request arrives.
    /// Defaults to none.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let layer = tracing_ambient::http::RequestContextLayer::new().timeout(Duration::from_secs(30));
    /// # drop(layer);
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        self.config(|c| c.deadline.timeout = Some(timeout))
    }

    /// Sets the header a client's timeout is read from, and its format: the request's
    /// deadline is then that long after it arrives (or the layer's [`timeout`](Self::timeout)
    /// if that is earlier). A value that is not valid in the format, or several headers,
    /// count as none; the header is never echoed. For gRPC, name `grpc-timeout` with
    /// [`TimeoutFormat::Grpc`]. Defaults to none.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tracing_ambient::http::{RequestContextLayer, TimeoutFormat};
    ///
    /// let layer = RequestContextLayer::new()
    ///     .timeout_header(HeaderName::from_static("grpc-timeout"), TimeoutFormat::Grpc);
    /// # drop(layer);
    /// ```
    pub fn timeout_header(self, header: HeaderName, format: TimeoutFormat) -> Self {
        self.config(|c| c.deadline.header = Some((header, format)))
    }
}

impl fmt::Debug for RequestContextLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContextLayer")
            .field("config", &self.rules.config)
            .finish_non_exhaustive()
    }
}
