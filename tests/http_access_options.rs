//! Access line options (issue 11 §6): paths to skip, the level of each status class, and the
//! route template on the line, through a real axum server on 127.0.0.1 and a real client.
//! One global subscriber with no level filter, so that `debug` and `trace` access lines are
//! seen too; every test finds its lines by request id.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Path};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::{Capture, Line};
use http_support::{client, get as send, of, serve, wait_for, PROMPTLY};
use tokio::io::AsyncWriteExt;
use tracing::Level;
use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};
use tracing_ambient::{JsonLayer, Schema};
use tracing_subscriber::prelude::*;

/// Installs, once per test binary, a global subscriber writing every line at every level to a
/// capture, and the crate's panic hook.
fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing_subscriber::registry()
                .with(JsonLayer::new(capture.clone()))
                .init();
            tracing_ambient::install_panic_hook();
            capture
        })
        .clone()
}

fn is_access(line: &Line) -> bool {
    line.str("target") == Some("access")
}

/// The access lines of `request_id`, once there is one.
async fn access_line(capture: &Capture, request_id: &str) -> Line {
    let lines = wait_for(
        capture,
        &format!("the access line of {request_id}"),
        PROMPTLY,
        |lines| of(lines, request_id).iter().any(is_access),
    )
    .await;
    let access: Vec<Line> = of(&lines, request_id)
        .into_iter()
        .filter(is_access)
        .collect();
    assert_eq!(
        access.len(),
        1,
        "one access line for {request_id}: {access:#?}"
    );
    access.into_iter().next().unwrap()
}

/// Logs one line and answers with the request id of its context.
async fn handler() -> String {
    tracing::info!("handled");
    tracing_ambient::request_id().unwrap_or_default()
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    tracing::info!(code, "answering");
    StatusCode::from_u16(code).unwrap()
}

async fn panics() -> &'static str {
    if std::hint::black_box(true) {
        panic!("nobody catches this");
    }
    "unreachable"
}

async fn stuck() -> &'static str {
    tokio::time::sleep(Duration::from_secs(600)).await;
    "never"
}

fn matched_path(request: &http::request::Parts) -> Option<String> {
    Some(request.extensions.get::<MatchedPath>()?.as_str().to_owned())
}

/// Sends a GET with `request_id` on a fresh connection and closes it without waiting for an
/// answer, once the handler has had time to start: the request is aborted before its response.
async fn abort(addr: SocketAddr, path: &str, request_id: &str) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nx-request-id: {request_id}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_paths_get_no_access_line_but_keep_their_context() {
    let capture = capture();
    let on_access = DefaultOnAccess::new()
        .skip_path("/healthz")
        .skip_path_prefix("/internal/");
    let app = Router::new()
        .route("/healthz", get(handler))
        .route("/healthz/deep", get(handler))
        .route("/internal", get(handler))
        .route("/internal/metrics", get(handler))
        .route("/orders/{id}", get(handler))
        .layer(RequestContextLayer::new().on_access(on_access));
    let addr = serve(app).await;
    let client = client();
    // (path, request id, skipped?) as the docs of `skip_path` and `skip_path_prefix` say.
    let cases = [
        ("/healthz", "skip-exact", true),
        ("/healthz?probe=1", "skip-exact-query", true),
        ("/internal/metrics", "skip-prefix", true),
        ("/healthz/deep", "keep-longer", false),
        ("/internal", "keep-prefix-without-slash", false),
        ("/orders/7", "keep-other", false),
    ];
    for (path, id, _) in cases {
        let reply = send(&client, addr, path, &[("x-request-id", id.as_bytes())]).await;
        assert_eq!(reply.status, 200, "{path}");
        // The request works as any other: its context, and the response header.
        assert_eq!(reply.body, id, "{path}: the handler saw its request id");
        assert_eq!(reply.headers["x-request-id"], id, "{path}");
    }
    for (_, id, skipped) in cases {
        if !skipped {
            access_line(&capture, id).await;
        }
    }
    // Every kept access line is out; a skipped one would have come within microseconds of
    // its response, before the later requests were even sent. Leave a margin all the same.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = capture.lines();
    let mut access_lines = 0;
    for (path, id, skipped) in cases {
        let lines = of(&lines, id);
        let handled: Vec<_> = lines
            .iter()
            .filter(|l| l.str("message") == Some("handled"))
            .collect();
        assert_eq!(
            handled.len(),
            1,
            "{path}: the handler's line with its request id"
        );
        let access = lines.iter().filter(|l| is_access(l)).count();
        assert_eq!(
            access,
            usize::from(!skipped),
            "{path}: access lines {lines:#?}"
        );
        access_lines += access;
    }
    assert_eq!(access_lines, 3);
    println!("6 requests: 6 handler lines, 3 access lines (3 skipped)");
}

/// The (status or case, level) of the access lines of a server with `on_access`.
async fn levels(on_access: DefaultOnAccess, prefix: &str) -> Vec<(String, String)> {
    let capture = capture();
    let app = Router::new()
        .route("/status/{code}", get(status))
        .route("/panic", get(panics))
        .route("/stuck", get(stuck))
        .layer(RequestContextLayer::new().on_access(on_access));
    let addr = serve(app).await;
    let client = client();
    let mut cases = Vec::new();
    for code in [200u16, 204, 302, 404, 429, 500, 503] {
        let id = format!("{prefix}-{code}");
        let reply = send(
            &client,
            addr,
            &format!("/status/{code}"),
            &[("x-request-id", id.as_bytes())],
        )
        .await;
        assert_eq!(reply.status.as_u16(), code);
        cases.push((code.to_string(), id));
    }
    // A panic nothing catches: hyper drops the connection, the client sees an error.
    let id = format!("{prefix}-panic");
    let request = http::Request::get(format!("http://{addr}/panic"))
        .header("x-request-id", &id)
        .body(http_body_util::Full::default())
        .unwrap();
    assert!(client.request(request).await.is_err());
    cases.push(("panic".to_owned(), id));
    let id = format!("{prefix}-aborted");
    abort(addr, "/stuck", &id).await;
    cases.push(("aborted".to_owned(), id));

    let mut out = Vec::new();
    for (case, id) in cases {
        let line = access_line(&capture, &id).await;
        let level = line.str("level").expect("a level").to_owned();
        out.push((case, level));
    }
    out
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_class_has_its_level() {
    // The defaults, as documented: info for 1xx-3xx, warn for 4xx and an aborted request,
    // error for 5xx and a panic.
    let got = levels(DefaultOnAccess::new(), "default").await;
    let expected = [
        ("200", "info"),
        ("204", "info"),
        ("302", "info"),
        ("404", "warn"),
        ("429", "warn"),
        ("500", "error"),
        ("503", "error"),
        ("panic", "error"),
        ("aborted", "warn"),
    ];
    assert_eq!(got, pairs(&expected));
    println!("defaults: {got:?}");

    let on_access = DefaultOnAccess::new()
        .success_level(Level::DEBUG)
        .client_error_level(Level::INFO)
        .server_error_level(Level::WARN)
        .panic_level(Level::TRACE);
    let got = levels(on_access, "chosen").await;
    let expected = [
        ("200", "debug"),
        ("204", "debug"),
        ("302", "debug"),
        ("404", "info"),
        ("429", "info"),
        ("500", "warn"),
        ("503", "warn"),
        ("panic", "trace"),
        ("aborted", "info"),
    ];
    assert_eq!(got, pairs(&expected));
    println!("chosen: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_template_is_on_the_access_line_when_known() {
    let capture = capture();
    let schema = Schema::DEFAULT.with_access_route_key("http.route");
    // Each route under its own middleware: with the route hook, without it, with a schema.
    let app = Router::new()
        .merge(
            Router::new()
                .route("/orders/{id}", get(handler))
                .layer(RequestContextLayer::new().http_route(matched_path)),
        )
        .merge(
            Router::new()
                .route("/plain/{id}", get(handler))
                .layer(RequestContextLayer::new()),
        )
        .merge(
            Router::new().route("/schema/{id}", get(handler)).layer(
                RequestContextLayer::new()
                    .http_route(matched_path)
                    .on_access(DefaultOnAccess::new().schema(schema)),
            ),
        );
    let addr = serve(app).await;
    let client = client();
    for (path, id) in [
        ("/orders/42", "route-known"),
        ("/plain/42", "route-no-hook"),
        ("/schema/42", "route-schema"),
    ] {
        let reply = send(&client, addr, path, &[("x-request-id", id.as_bytes())]).await;
        assert_eq!(reply.status, 200, "{path}");
    }
    let known = access_line(&capture, "route-known").await;
    assert_eq!(known.str("route"), Some("/orders/{id}"));
    assert_eq!(known.str("path"), Some("/orders/42"));
    let no_hook = access_line(&capture, "route-no-hook").await;
    assert_eq!(no_hook.get("route"), None, "absent, not null: {no_hook:?}");
    assert_eq!(no_hook.str("path"), Some("/plain/42"));
    let schema = access_line(&capture, "route-schema").await;
    assert_eq!(schema.str("http.route"), Some("/schema/{id}"));
    assert_eq!(schema.get("route"), None);
    println!(
        "route: {:?}, without hook: {:?}, schema key: {:?}",
        known.get("route"),
        no_hook.get("route"),
        schema.get("http.route")
    );
}
