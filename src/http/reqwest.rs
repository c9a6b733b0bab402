//! [`PropagateContextMiddleware`]: the current request's identity on every call of a
//! `reqwest-middleware` client.

use std::error::Error as _;

use ::reqwest::{Request, Response, Url};
use http::{Extensions, HeaderName};
use reqwest_middleware::{Error, Middleware, Next, Result};

use super::propagate::{propagate, Call};

/// Carries the current request into every call of a `reqwest` client built with
/// `reqwest-middleware`: a new `traceparent` per call, the request's `tracestate`, and its
/// request id. It does for `reqwest` what [`PropagateContextLayer`] does for tower clients,
/// with the same rules:
///
/// - `traceparent`: a child of the request's span, a new parent-id per call (any value there
///   is replaced);
/// - `tracestate`: the request's, when it came with one;
/// - the request id header (`x-request-id` unless set with [`header`](Self::header)): the
///   request's id, unless the caller set that header on this call itself, or the id is not a
///   valid [`RequestId`](super::RequestId).
///
/// Outside any context it changes nothing. With [`with_call_line`](Self::with_call_line), it
/// also writes one line per call when its response head arrives (or the call fails): target
/// `outgoing`, `method`, `host` (and port; never credentials), `path` (never the query
/// string), `status`, `latencyMs`, `traceparent` (the one sent) and, for a failed call,
/// `error` (reqwest's error and its causes, without the URL, which may hold a query string).
///
/// Needs the `reqwest` feature. Add it after the middleware that retries, so that each
/// attempt is its own call with its own `traceparent`.
///
/// # Examples
///
/// ```
/// use reqwest_middleware::ClientBuilder;
/// use tracing_ambient::http::PropagateContextMiddleware;
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(PropagateContextMiddleware::new().with_call_line(true))
///     .build();
/// // In a handler (a request context is current), every call carries the request:
/// let _call = client.get("http://127.0.0.1:9/items/7").send();
/// ```
///
/// [`PropagateContextLayer`]: super::PropagateContextLayer
#[derive(Debug, Clone)]
#[must_use]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub struct PropagateContextMiddleware {
    header: HeaderName,
    call_line: bool,
}

impl PropagateContextMiddleware {
    /// Returns a middleware that sets `traceparent`, `tracestate` and `x-request-id`, without
    /// call lines.
    ///
    /// ```
    /// let middleware = tracing_ambient::http::PropagateContextMiddleware::new();
    /// # drop(middleware);
    /// ```
    pub const fn new() -> Self {
        PropagateContextMiddleware {
            header: super::X_REQUEST_ID,
            call_line: false,
        }
    }

    /// Sets the header the request id is sent in. Defaults to `x-request-id`.
    ///
    /// ```
    /// let middleware = tracing_ambient::http::PropagateContextMiddleware::new()
    ///     .header(http::HeaderName::from_static("x-correlation-id"));
    /// # drop(middleware);
    /// ```
    pub fn header(self, header: HeaderName) -> Self {
        PropagateContextMiddleware { header, ..self }
    }

    /// Sets whether one line is written per call. Defaults to `false`.
    ///
    /// ```
    /// let middleware = tracing_ambient::http::PropagateContextMiddleware::new().with_call_line(true);
    /// # drop(middleware);
    /// ```
    pub fn with_call_line(self, yes: bool) -> Self {
        PropagateContextMiddleware {
            call_line: yes,
            ..self
        }
    }
}

impl Default for PropagateContextMiddleware {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Middleware for PropagateContextMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        // The future runs inside the caller's poll, so the caller's context is current.
        let call = match propagate(request.headers_mut(), &self.header) {
            Some((ctx, sent)) if self.call_line => {
                let (method, url) = (request.method().clone(), request.url());
                Some(Call::new(
                    ctx,
                    method,
                    host(url),
                    url.path().to_owned(),
                    sent,
                ))
            }
            _ => None,
        };
        let result = next.run(request, extensions).await;
        if let Some(call) = call {
            match &result {
                Ok(response) => call.log(Some(response.status().as_u16()), None),
                Err(err) => call.log(None, Some(&describe(err))),
            }
        }
        result
    }
}

/// The host and port of a URL, without credentials.
fn host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    }
}

/// An error and its causes, `: `-separated, without the URL reqwest appends (it may carry a
/// query string or credentials).
fn describe(err: &Error) -> String {
    let mut text = err.to_string();
    if let Error::Reqwest(err) = err {
        if let Some(url) = err.url() {
            text = text.replace(&format!(" for url ({url})"), "");
        }
    }
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
