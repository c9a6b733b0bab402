//! Fixtures for the HTTP end-to-end tests: one global subscriber writing to a capture, a real
//! axum server on 127.0.0.1, a real HTTP client, and a raw socket client for bytes that a
//! well-behaved client refuses to send.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_ambient::JsonLayer;
use tracing_subscriber::prelude::*;

use crate::common::{Capture, Line};

/// Installs, once per test binary, a global subscriber that writes every line to a capture
/// (tokio worker threads need a global one), and the crate's panic hook.
pub fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(JsonLayer::new(capture.clone()))
                .init();
            tracing_ambient::install_panic_hook();
            capture
        })
        .clone()
}

/// Serves `app` on 127.0.0.1, on a port the system picks.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response, its body collected.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends a GET with the given headers and collects the response.
pub async fn get(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
) -> Reply {
    let mut request = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, http::HeaderValue::from_bytes(value).unwrap());
    }
    let reply = async {
        let response = client
            .request(request.body(Full::default()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    };
    let (parts, body) = tokio::time::timeout(REPLY_TIMEOUT, reply)
        .await
        .unwrap_or_else(|_| panic!("no reply to {path} within {REPLY_TIMEOUT:?}"));
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Writes `head` (request line and headers, each ending in CRLF, without the blank line) on a
/// fresh connection and returns everything the server sent back.
pub async fn raw(addr: SocketAddr, head: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream
        .write_all(b"connection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("the server did not close within {REPLY_TIMEOUT:?}"))
        .unwrap();
    out
}

/// How long [`get`] and [`raw`] wait for a whole reply before they fail the test instead of
/// hanging it: far more than any handler of the tests takes (the slowest waits up to 20 s for
/// its peers).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`lines_until`] waits. Every line it waits for is written within milliseconds of
/// the response; this only bounds how long a failing test takes to say so.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// Waits until `done` holds for the captured lines and returns them; panics if it does not
/// hold within [`PROMPTLY`], naming the caller's line and showing what was captured. Access
/// lines are written when the server finishes the body, which may be a moment after the
/// client has it.
#[track_caller]
pub fn lines_until<'a>(
    capture: &'a Capture,
    done: impl Fn(&[Line]) -> bool + 'a,
) -> impl std::future::Future<Output = Vec<Line>> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        wait_for(
            capture,
            &format!("the condition at {caller}"),
            PROMPTLY,
            done,
        )
        .await
    }
}

/// Waits until `done` holds for the captured lines, for at most `timeout`, and returns them.
///
/// # Panics
///
/// On timeout, with `what` it waited for, how many lines it got and the last of them.
pub async fn wait_for(
    capture: &Capture,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Line]) -> bool,
) -> Vec<Line> {
    let start = std::time::Instant::now();
    loop {
        let lines = capture.lines();
        if done(&lines) {
            return lines;
        }
        if start.elapsed() > timeout {
            let last = &lines[lines.len().saturating_sub(10)..];
            panic!(
                "timed out after {timeout:?} waiting for {what}; got {} lines, the last {}: {last:#?}",
                lines.len(),
                last.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The lines whose `requestId` is `id`.
pub fn of(lines: &[Line], id: &str) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l.str("requestId") == Some(id))
        .cloned()
        .collect()
}

/// Whether `id` is a valid request id.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@+/=-".contains(&b))
}
