//! [`LevelFrom`]: the hook that gives a request's context a level of its own.

use http::request::Parts;
use tracing::Level;

/// Returns the level a request's context gets (see
/// [`Context::with_level`](crate::Context::with_level)): events of that level and more severe
/// logged while serving it are written whatever `RUST_LOG` says; `None` leaves the request to
/// the global filter.
///
/// It runs once per request, in the middleware's `call`, before the request span is made and
/// before the inner service sees the request. Handlers can still raise the level later with
/// [`set_level`](crate::set_level) (once authentication has said who the user is, say).
///
/// # Why no header is read by default
///
/// A level taken from the request as it comes would let any client switch `debug` on for its
/// own requests: more lines per request is more cost for the service, its log pipeline and
/// its bill, which a client could multiply at will, and `debug` lines may hold what `info`
/// lines keep out. So the middleware reads no header by itself: this hook decides, with what
/// the service can trust, such as a header signed with a key of yours, a user id from an
/// allow-list, or an address inside your network, and a request it does not vouch for gets
/// `None`.
///
/// Implemented by:
///
/// - closures `Fn(&http::request::Parts) -> Option<tracing::Level>`;
/// - `()`: no request gets a level of its own, the default.
///
/// # Examples
///
/// ```
/// use axum::{routing::get, Router};
/// use tracing::Level;
/// use tracing_ambient::http::RequestContextLayer;
///
/// /// The ids of the users being debugged, as your configuration says.
/// fn debugged(user: &str) -> bool {
///     user == "u-1729"
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(RequestContextLayer::new().level_from(|request: &http::request::Parts| {
///         // Set by an authentication layer outside this one, never by the client.
///         let user = request.extensions.get::<String>()?;
///         debugged(user).then_some(Level::DEBUG)
///     }));
/// ```
pub trait LevelFrom: Send + Sync + 'static {
    /// Returns the level of the context of `request`, `None` for none of its own.
    fn level_from(&self, request: &Parts) -> Option<Level>;
}

impl LevelFrom for () {
    fn level_from(&self, _: &Parts) -> Option<Level> {
        None
    }
}

impl<F> LevelFrom for F
where
    F: Fn(&Parts) -> Option<Level> + Send + Sync + 'static,
{
    fn level_from(&self, request: &Parts) -> Option<Level> {
        self(request)
    }
}
