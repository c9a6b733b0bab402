//! [`OnAccess`]: the hook that runs when a request ends, and the default access line.

use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE};
use http::{HeaderName, HeaderValue, StatusCode};
use tracing::Level;

use super::access::Access;
use super::access::Outcome;
use super::access_callsite::{AccessCallsites, AccessValues};
use super::grpc::GrpcCode;
use crate::context::Context;
use crate::schema::Schema;

/// The longest header value written on an access line.
const MAX_HEADER_VALUE: usize = 256;

/// Runs once per request, when it ends: when the response body has been sent, when the inner
/// service fails, or when the response future or body is dropped before its end.
///
/// It runs with the request's context current, so a line it logs carries the request id,
/// the user id set by an auth layer, and the trace.
///
/// Implemented by:
///
/// - [`DefaultOnAccess`]: logs the access line, the default;
/// - closures `Fn(&Access<'_>)`;
/// - `()`: does nothing (no access line).
///
/// # Examples
///
/// ```
/// use tracing_ambient::http::{Access, RequestContextLayer};
///
/// let layer = RequestContextLayer::new().on_access(|access: &Access<'_>| {
///     tracing::info!(status = access.status.map(|s| s.as_u16()), "done");
/// });
/// # drop(layer);
/// ```
pub trait OnAccess: Send + Sync + 'static {
    /// Called once when the request ends.
    fn on_access(&self, access: &Access<'_>);

    /// Returns the request headers to keep for [`Access::headers`]. Defaults to none.
    fn request_headers(&self) -> &[HeaderName] {
        &[]
    }
}

impl OnAccess for () {
    fn on_access(&self, _: &Access<'_>) {}
}

impl<F> OnAccess for F
where
    F: Fn(&Access<'_>) + Send + Sync + 'static,
{
    fn on_access(&self, access: &Access<'_>) {
        self(access)
    }
}

/// Logs the access line: one event per request, target `access`, with the request's context.
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"request completed","requestId":"0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b","userId":42,"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"53995c3f42cd8ad8","target":"access","method":"GET","path":"/orders/42","status":200,"latencyMs":1.234,"size":512,"outcome":"completed"}
/// ```
///
/// # Fields
///
/// Their keys come from the [`Schema`] given to [`schema`](Self::schema) (the default schema's
/// names here), so that the access line's keys have the case of the rest of the line:
/// `method`; `path`, without the query string; `query` only with
/// [`with_query`](Self::with_query); `status` (a number) when a response was made;
/// `latencyMs` (a number of milliseconds, to the microsecond); `size` (a number, the bytes of
/// body sent) when a response was made; `outcome` (`completed`, `aborted`, `failed` or
/// `panicked`); `error` (a string) when the inner service or the body failed; for a gRPC call
/// that ended with a status, `grpcStatus` (a number), `grpcCode` (its name, such as
/// `NOT_FOUND`) and `grpcMessage` (a string, when there is one): see "gRPC" in the
/// [module docs](super). A key is absent rather than `null`, so each keeps one JSON type on
/// every line.
///
/// Request headers are written only when named with [`request_header`](Self::request_header),
/// each as a context key `header_<name>` (`headerUserAgent` in the default schema).
///
/// The route template the request matched is written as `route` (a string) when the
/// middleware's [`HttpRoute`](super::HttpRoute) hook names it (axum's `MatchedPath`).
///
/// # Level
///
/// `error` for a 5xx status, a failure or a panic; `warn` for a 4xx status or a request
/// aborted before its response; `info` otherwise. Each is set with
/// [`success_level`](Self::success_level), [`client_error_level`](Self::client_error_level),
/// [`server_error_level`](Self::server_error_level) and [`panic_level`](Self::panic_level).
/// A gRPC call that ended with a status takes its level from that status instead (its HTTP
/// status is 200 for most errors): the table is under "gRPC" in the [module docs](super).
///
/// # Skipped paths
///
/// Requests to the paths given to [`skip_path`](Self::skip_path) and
/// [`skip_path_prefix`](Self::skip_path_prefix) (health checks, metrics scrapes) get no
/// access line; everything else about them is as for any request.
///
/// # Examples
///
/// ```
/// use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
///
/// let layer = RequestContextLayer::new().on_access(
///     DefaultOnAccess::new()
///         .with_query(true)
///         .request_header(http::header::USER_AGENT),
/// );
/// # drop(layer);
/// ```
///
/// Health checks left out, successful requests at `debug`, and the route on the line:
///
/// ```
/// use axum::extract::MatchedPath;
/// use axum::{routing::get, Router};
/// use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
///
/// let on_access = DefaultOnAccess::new()
///     .skip_path("/healthz")
///     .skip_path_prefix("/internal/")
///     .success_level(tracing::Level::DEBUG);
/// let app: Router = Router::new()
///     .route("/orders/{id}", get(|| async { "ok" }))
///     .route("/healthz", get(|| async { "ok" }))
///     .layer(
///         RequestContextLayer::new()
///             .on_access(on_access)
///             .http_route(|request: &http::request::Parts| {
///                 Some(request.extensions.get::<MatchedPath>()?.as_str().to_owned())
///             }),
///     );
/// ```
///
/// ```text
/// {"timestamp":"2026-11-24T14:02:12.125001Z","level":"debug","message":"request completed","requestId":"0191a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b","target":"access","method":"GET","path":"/orders/42","status":200,"latencyMs":1.234,"size":2,"outcome":"completed","route":"/orders/{id}"}
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DefaultOnAccess {
    with_query: bool,
    headers: Arc<[HeaderName]>,
    // `None` follows the schema `init` installed (see `schema`).
    callsites: Option<AccessCallsites>,
    // Options of issue 11 §6: see "Skipped paths" and "Level".
    skip: Arc<[SkipPath]>,
    levels: Levels,
}

impl DefaultOnAccess {
    /// Returns the default access line, with the keys of the schema [`init`](crate::init)
    /// installed (see [`schema`](Self::schema)).
    ///
    /// ```
    /// let on_access = tracing_ambient::http::DefaultOnAccess::new();
    /// # drop(on_access);
    /// ```
    pub fn new() -> Self {
        DefaultOnAccess {
            with_query: false,
            headers: Arc::from([]),
            callsites: None,
            skip: Arc::from([]),
            levels: Levels::DEFAULT,
        }
    }

    /// Sets the schema whose access line keys are written (see the schema's "Access line
    /// keys"): give it the schema of the [`JsonLayer`](crate::JsonLayer).
    ///
    /// Defaults to the schema of the layer that [`init`](crate::init) (or
    /// [`try_init_with`](crate::try_init_with)) installed, `LOG_FORMAT`'s preset included,
    /// as it is when the request ends: so under `init` the access line has the keys of the
    /// other lines without this call. Without `init` (a subscriber composed by hand), or
    /// before it is called, [`Schema::DEFAULT`].
    ///
    /// ```
    /// use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
    /// use tracing_ambient::{JsonLayer, Schema};
    ///
    /// let schema = Schema::DEFAULT.with_access_latency_key("latency_ms");
    /// let layer = JsonLayer::stdout().schema(schema);
    /// let middleware = RequestContextLayer::new().on_access(DefaultOnAccess::new().schema(schema));
    /// # drop((layer, middleware));
    /// ```
    pub fn schema(self, schema: Schema) -> Self {
        DefaultOnAccess {
            callsites: Some(AccessCallsites::for_keys(schema.access)),
            ..self
        }
    }

    /// Sets whether the query string is written, as `query`. It may carry secrets (tokens,
    /// e-mail addresses). Defaults to `false`.
    ///
    /// ```
    /// let on_access = tracing_ambient::http::DefaultOnAccess::new().with_query(true);
    /// # drop(on_access);
    /// ```
    pub fn with_query(self, yes: bool) -> Self {
        DefaultOnAccess {
            with_query: yes,
            ..self
        }
    }

    /// Adds a request header to write. Its value is cut to 256 bytes, with bytes outside
    /// printable ASCII replaced by `_`. `authorization`, `proxy-authorization`, `cookie` and
    /// `set-cookie` are never written: naming them does nothing. Defaults to none.
    ///
    /// ```
    /// use tracing_ambient::http::DefaultOnAccess;
    ///
    /// let on_access = DefaultOnAccess::new()
    ///     .request_header(http::header::USER_AGENT)
    ///     .request_header(http::HeaderName::from_static("x-forwarded-for"));
    /// # drop(on_access);
    /// ```
    pub fn request_header(self, name: HeaderName) -> Self {
        let secret = [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, SET_COOKIE];
        if secret.contains(&name) || self.headers.contains(&name) {
            return self;
        }
        let mut headers = self.headers.to_vec();
        headers.push(name);
        DefaultOnAccess {
            headers: headers.into(),
            ..self
        }
    }
}

// === options: skipped paths and levels (issue 11 §6) ===

impl DefaultOnAccess {
    /// Adds a path whose requests get no access line, compared with the whole path (without
    /// the query string): `/healthz` skips `/healthz` and `/healthz?full=1`, not
    /// `/healthz/db`. The request runs as any other (its context, request id, span and
    /// response header are there); only its access line is left out. Defaults to none.
    ///
    /// The path is the one the middleware sees: under axum's `Router::nest`, a layer on the
    /// nested router sees the path without the nest's prefix.
    ///
    /// ```
    /// use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
    ///
    /// let layer = RequestContextLayer::new()
    ///     .on_access(DefaultOnAccess::new().skip_path("/healthz").skip_path("/readyz"));
    /// # drop(layer);
    /// ```
    pub fn skip_path(self, path: impl Into<String>) -> Self {
        self.skip(SkipPath::Exact(path.into().into_boxed_str()))
    }

    /// Adds a path prefix whose requests get no access line, as [`skip_path`](Self::skip_path)
    /// does for one path. The prefix is compared byte for byte: `/health` also skips
    /// `/healthcheck`, so end it with `/` to skip one directory (`/internal/` skips
    /// `/internal/metrics` but not `/internal`). Defaults to none.
    ///
    /// ```
    /// use tracing_ambient::http::DefaultOnAccess;
    ///
    /// let on_access = DefaultOnAccess::new().skip_path_prefix("/internal/");
    /// # drop(on_access);
    /// ```
    pub fn skip_path_prefix(self, prefix: impl Into<String>) -> Self {
        self.skip(SkipPath::Prefix(prefix.into().into_boxed_str()))
    }

    /// Sets the level of the access line of a `1xx`, `2xx` or `3xx` response. Defaults to
    /// `INFO`.
    ///
    /// ```
    /// use tracing::Level;
    /// use tracing_ambient::http::DefaultOnAccess;
    ///
    /// // Successful requests only with `RUST_LOG=access=debug`.
    /// let on_access = DefaultOnAccess::new().success_level(Level::DEBUG);
    /// # drop(on_access);
    /// ```
    pub fn success_level(self, level: Level) -> Self {
        let levels = Levels {
            success: level,
            ..self.levels
        };
        DefaultOnAccess { levels, ..self }
    }

    /// Sets the level of the access line of a `4xx` response, and of a request aborted
    /// before its response was made (the client went away: nginx logs it as `499`). Defaults
    /// to `WARN`.
    ///
    /// ```
    /// let on_access =
    ///     tracing_ambient::http::DefaultOnAccess::new().client_error_level(tracing::Level::INFO);
    /// # drop(on_access);
    /// ```
    pub fn client_error_level(self, level: Level) -> Self {
        let levels = Levels {
            client_error: level,
            ..self.levels
        };
        DefaultOnAccess { levels, ..self }
    }

    /// Sets the level of the access line of a `5xx` response, and of a request that failed
    /// (the inner service or the response body returned an error). Defaults to `ERROR`.
    ///
    /// ```
    /// let on_access =
    ///     tracing_ambient::http::DefaultOnAccess::new().server_error_level(tracing::Level::WARN);
    /// # drop(on_access);
    /// ```
    pub fn server_error_level(self, level: Level) -> Self {
        let levels = Levels {
            server_error: level,
            ..self.levels
        };
        DefaultOnAccess { levels, ..self }
    }

    /// Sets the level of the access line of a request whose future or body was dropped while
    /// its thread was panicking (outcome `panicked`). A panic that a `CatchPanicLayer` inside
    /// the middleware turns into a `500` is a `5xx` response instead. Defaults to `ERROR`.
    ///
    /// ```
    /// let on_access =
    ///     tracing_ambient::http::DefaultOnAccess::new().panic_level(tracing::Level::WARN);
    /// # drop(on_access);
    /// ```
    pub fn panic_level(self, level: Level) -> Self {
        let levels = Levels {
            panic: level,
            ..self.levels
        };
        DefaultOnAccess { levels, ..self }
    }

    fn skip(self, path: SkipPath) -> Self {
        let mut skip = self.skip.to_vec();
        skip.push(path);
        DefaultOnAccess {
            skip: skip.into(),
            ..self
        }
    }

    /// Whether the request to `path` gets no access line.
    fn skips(&self, path: &str) -> bool {
        self.skip.iter().any(|skip| match skip {
            SkipPath::Exact(exact) => path == &**exact,
            SkipPath::Prefix(prefix) => path.starts_with(&**prefix),
        })
    }
}

/// A path, or a path prefix, whose requests get no access line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SkipPath {
    Exact(Box<str>),
    Prefix(Box<str>),
}

/// The level of the access line for each kind of ending.
#[derive(Debug, Clone, Copy)]
struct Levels {
    success: Level,
    client_error: Level,
    server_error: Level,
    panic: Level,
}

impl Levels {
    const DEFAULT: Levels = Levels {
        success: Level::INFO,
        client_error: Level::WARN,
        server_error: Level::ERROR,
        panic: Level::ERROR,
    };

    /// The level of an access line: a panic first, then a failure, then the status class,
    /// and a request without a response as a client error.
    fn level(&self, status: Option<StatusCode>, outcome: Outcome) -> Level {
        match (status, outcome) {
            (_, Outcome::Panicked) => self.panic,
            (_, Outcome::Failed) => self.server_error,
            (Some(s), _) if s.is_server_error() => self.server_error,
            (Some(s), _) if s.is_client_error() => self.client_error,
            (None, _) => self.client_error,
            _ => self.success,
        }
    }
}

impl Default for DefaultOnAccess {
    fn default() -> Self {
        Self::new()
    }
}

impl OnAccess for DefaultOnAccess {
    fn on_access(&self, access: &Access<'_>) {
        if self.skips(access.uri.path()) {
            return;
        }
        if access.headers.is_empty() {
            self.log(access);
            return;
        }
        // Header names are only known at run time, and tracing's field names are static: the
        // headers go in a copy of the context made for this one line.
        let line = Context::new();
        if let Some(ctx) = Context::current() {
            for (key, value) in ctx.entries() {
                line.set(&key, value);
            }
        }
        for (name, value) in access.headers {
            let key = format!("header_{}", name.as_str().replace('-', "_"));
            line.set(&key, printable(value));
        }
        line.in_scope(|| self.log(access));
    }

    fn request_headers(&self) -> &[HeaderName] {
        &self.headers
    }
}

impl DefaultOnAccess {
    fn log(&self, a: &Access<'_>) {
        let method = a.method.as_str();
        let path = a.uri.path();
        let query = if self.with_query { a.uri.query() } else { None };
        let status = a.status.map(|s| s.as_u16());
        let size = a.size;
        let outcome = a.outcome.as_str();
        let error = a.error;
        let route = a.route;
        let message = match a.outcome {
            Outcome::Completed => "request completed",
            Outcome::Aborted => "request aborted",
            Outcome::Failed => "request failed",
            Outcome::Panicked => "request panicked",
        };
        let values = AccessValues {
            message,
            method,
            path,
            query,
            status: status.map(u64::from),
            latency: a.latency,
            size,
            outcome,
            error,
            grpc_status: a.grpc_status.map(|c| u64::from(c.as_u32())),
            grpc_code: a.grpc_status.and_then(GrpcCode::name),
            grpc_message: a.grpc_message,
            route,
        };
        let level = match (a.grpc_status, a.outcome) {
            // A gRPC call's HTTP status is 200 whatever happened: its own status tells.
            (Some(code), Outcome::Completed | Outcome::Aborted) => code.level(),
            _ => self.levels.level(a.status, a.outcome),
        };
        let callsites = self.callsites.unwrap_or_else(AccessCallsites::for_process);
        callsites.emit(level, &values);
    }
}

/// A header value as printable ASCII, cut to [`MAX_HEADER_VALUE`] bytes.
fn printable(value: &HeaderValue) -> String {
    printable_bytes(value.as_bytes())
}

/// Bytes as printable ASCII (SP to `~`), every other byte replaced by `_`, cut to
/// [`MAX_HEADER_VALUE`] bytes. `HeaderValue` refuses DEL and most control bytes already;
/// this does not rely on it (a value built unchecked may hold them).
fn printable_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(MAX_HEADER_VALUE)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_follows_status_then_outcome() {
        let cases = [
            (Some(200), Outcome::Completed, Level::INFO),
            (Some(302), Outcome::Completed, Level::INFO),
            (Some(404), Outcome::Completed, Level::WARN),
            (Some(500), Outcome::Completed, Level::ERROR),
            (Some(200), Outcome::Aborted, Level::INFO),
            (None, Outcome::Aborted, Level::WARN),
            (Some(200), Outcome::Failed, Level::ERROR),
            (None, Outcome::Panicked, Level::ERROR),
        ];
        for (status, outcome, expected) in cases {
            let status = status.map(|s| StatusCode::from_u16(s).unwrap());
            let level = Levels::DEFAULT.level(status, outcome);
            assert_eq!(level, expected, "{status:?} {outcome:?}");
        }
    }

    #[test]
    fn secret_headers_cannot_be_named() {
        // The list of `request_header`'s docs, typed here rather than taken from the code.
        let secret = [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
        ];
        for name in secret {
            let on_access = DefaultOnAccess::new().request_header(HeaderName::from_static(name));
            assert!(on_access.request_headers().is_empty(), "{name}");
            // Header names are case-insensitive: any spelling is the same name.
            let upper = HeaderName::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap();
            let on_access = DefaultOnAccess::new().request_header(upper);
            assert!(on_access.request_headers().is_empty(), "{name} in capitals");
        }
        let on_access = secret.iter().fold(
            DefaultOnAccess::new().request_header(http::header::USER_AGENT),
            |on_access, name| on_access.request_header(HeaderName::from_static(name)),
        );
        let on_access = on_access.request_header(http::header::USER_AGENT);
        assert_eq!(on_access.request_headers(), [http::header::USER_AGENT]);
    }

    #[test]
    fn header_values_are_printable_and_cut() {
        let value = HeaderValue::from_bytes(b"caf\xe9\tx").unwrap();
        assert_eq!(printable(&value), "caf__x");
        let long = HeaderValue::from_str(&"v".repeat(1000)).unwrap();
        assert_eq!(printable(&long).len(), MAX_HEADER_VALUE);
    }

    #[test]
    fn every_byte_outside_printable_ascii_is_replaced() {
        // RFC 9110 5.5: a field value is VCHAR, obs-text, SP and HTAB. `http` refuses the
        // other bytes (0x00-0x1F but HTAB, and 0x7F), so those never reach `printable`: this
        // checks that they cannot, as the filter's safety for them rests on it.
        let valid = |b: u8| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
        let (mut replaced, mut unrepresentable) = (0, 0);
        for b in 0..=255u8 {
            for (before, after) in [("", ""), ("a", "z"), ("az", "")] {
                let bytes = [before.as_bytes(), &[b], after.as_bytes()].concat();
                let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                    assert!(!valid(b), "{b:#04x} after {before:?} is a field value byte");
                    unrepresentable += 1;
                    continue;
                };
                assert!(valid(b), "{b:#04x} after {before:?} made a header value");
                // Printable ASCII is SP to `~`; anything else becomes `_`.
                let printable_ascii = (0x20..=0x7e).contains(&b);
                let kept = if printable_ascii { b as char } else { '_' };
                assert_eq!(
                    printable(&value),
                    format!("{before}{kept}{after}"),
                    "{b:#04x} after {before:?}"
                );
                replaced += usize::from(!printable_ascii);
            }
        }
        // HTAB and the 128 bytes of obs-text, each at three places.
        assert_eq!(replaced, 3 * 129);
        // The 31 control characters other than HTAB, and DEL.
        assert_eq!(unrepresentable, 3 * 32);
    }

    #[test]
    fn the_filter_itself_refuses_every_byte_but_printable_ascii() {
        // Issue 13 §4: independent of what `HeaderValue` accepts, including DEL (0x7F).
        let mut kept = 0;
        for b in 0..=255u8 {
            let printable = (b' '..=b'~').contains(&b);
            let expected = if printable { b as char } else { '_' };
            let out = printable_bytes(&[b'a', b, b'z']);
            assert_eq!(out, format!("a{expected}z"), "{b:#04x}");
            kept += usize::from(printable);
        }
        assert_eq!(kept, 95, "SP to ~ are the 95 printable ASCII bytes");
        assert_eq!(printable_bytes(&[0x7f]), "_");
    }

    #[test]
    fn a_refused_byte_is_replaced_up_to_the_last_kept_one() {
        for (len, at) in [(256, 255), (257, 255), (257, 256), (300, 0)] {
            let mut bytes = vec![b'v'; len];
            bytes[at] = 0xff;
            let out = printable(&HeaderValue::from_bytes(&bytes).unwrap());
            let mut expected = "v".repeat(len.min(MAX_HEADER_VALUE));
            if at < MAX_HEADER_VALUE {
                expected.replace_range(at..=at, "_");
            }
            assert_eq!(out, expected, "{len} bytes, 0xff at {at}");
        }
    }
}
