//! [`HttpRoute`]: the hook that names a request's route for its span.

use http::request::Parts;

/// Returns the route template a request matched (`/orders/{id}`, not `/orders/42`), for the
/// request span's `http.route` field and its `otel.name`, and for the access line
/// ([`Access::route`](super::Access::route); `route` on [`DefaultOnAccess`](super::DefaultOnAccess)'s line).
///
/// The router knows the route, and this crate depends on no router, so it asks this hook. It
/// runs once per request, in the middleware's `call`, when the request reaches the
/// middleware: with axum's `Router::layer` the route has matched by then and its
/// `MatchedPath` is in the request extensions; with the middleware around the whole router
/// (`ServiceBuilder`, `Router::into_service`), it has not.
///
/// Implemented by:
///
/// - closures `Fn(&http::request::Parts) -> Option<String>`;
/// - `()`: no route, the default.
///
/// # Examples
///
/// ```
/// use axum::extract::MatchedPath;
/// use axum::{routing::get, Router};
/// use tracing_ambient::http::RequestContextLayer;
///
/// let app: Router = Router::new()
///     .route("/orders/{id}", get(|| async { "ok" }))
///     .layer(RequestContextLayer::new().http_route(|request: &http::request::Parts| {
///         let route = request.extensions.get::<MatchedPath>()?;
///         Some(route.as_str().to_owned())
///     }));
/// ```
pub trait HttpRoute: Send + Sync + 'static {
    /// Returns the route template of `request`, `None` if unknown.
    fn http_route(&self, request: &Parts) -> Option<String>;
}

impl HttpRoute for () {
    fn http_route(&self, _: &Parts) -> Option<String> {
        None
    }
}

impl<F> HttpRoute for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn http_route(&self, request: &Parts) -> Option<String> {
        self(request)
    }
}
