//! A request cancelled by its client (issue 7 §5): the connection closes mid-handler or
//! mid-body, hyper drops the response future or body, and the lines written while it is torn
//! down come first and carry the request; the access line comes last. A body that ends is
//! dropped at its end the same way, before the access line.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::Line;
use http_body::Frame;
use http_support::{capture, lines_until, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing_ambient::http::RequestContextLayer;

/// Logs when dropped: what a handler's transaction or a stream's cleanup does.
struct LogOnDrop(&'static str, String);

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        tracing::info!(case = %self.1, "{}", self.0);
    }
}

/// Never answers; holds a guard that logs when the future is dropped.
async fn stuck(Path(case): Path<String>) -> &'static str {
    let _guard = LogOnDrop("handler guard dropped", case.clone());
    tracing::info!(case, "handler started");
    tokio::time::sleep(Duration::from_secs(600)).await;
    "never"
}

/// A body that sends one chunk, then ends or waits forever; logs when dropped.
struct OneChunk {
    chunk: &'static [u8],
    sent: bool,
    then_end: bool,
    _guard: LogOnDrop,
}

impl OneChunk {
    fn response(case: String, chunk: &'static [u8], then_end: bool) -> Response {
        tracing::info!(case, "handler started");
        Response::new(Body::new(OneChunk {
            chunk,
            sent: false,
            then_end,
            _guard: LogOnDrop("body dropped", case),
        }))
    }
}

impl http_body::Body for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match (self.sent, self.then_end) {
            (true, true) => Poll::Ready(None),
            (true, false) => Poll::Pending,
            (false, _) => {
                self.sent = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(self.chunk)))))
            }
        }
    }
}

/// Sends one chunk and ends.
async fn one_chunk(Path(case): Path<String>) -> Response {
    OneChunk::response(case, b"only-chunk", true)
}

/// Sends one chunk, then waits forever.
async fn streaming(Path(case): Path<String>) -> Response {
    OneChunk::response(case, b"first-chunk", false)
}

fn app() -> Router {
    Router::new()
        .route("/stuck/{case}", get(stuck))
        .route("/streaming/{case}", get(streaming))
        .route("/one-chunk/{case}", get(one_chunk))
        .layer(RequestContextLayer::new())
}

/// The lines of one case: those with its `case` field and those with its request id.
fn of_case(lines: &[Line], case: &str) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l.str("case") == Some(case) || l.str("requestId") == Some(case))
        .cloned()
        .collect()
}

/// Opens a connection and sends a GET for `path` with `case` as its request id.
async fn open(addr: std::net::SocketAddr, path: &str, case: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nx-request-id: {case}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Asserts the three lines of a cancelled request, in order, all with its request id.
fn assert_cancelled(lines: &[Line], case: &str, dropped: &str, status: Option<u64>) {
    let messages: Vec<_> = lines.iter().map(|l| l.str("message").unwrap()).collect();
    assert_eq!(lines.len(), 3, "{case}: {messages:?}");
    assert_eq!(
        messages,
        ["handler started", dropped, "request aborted"],
        "{case}: the drop-time line, then the access line"
    );
    for line in lines {
        assert_eq!(line.str("requestId"), Some(case), "{case}: {line:?}");
    }
    let trace = lines[0].str("traceId").unwrap();
    assert!(lines.iter().all(|l| l.str("traceId") == Some(trace)));
    let access = &lines[2];
    assert_eq!(access.str("target"), Some("access"));
    assert_eq!(access.str("outcome"), Some("aborted"));
    assert_eq!(access.get("status").and_then(|s| s.as_u64()), status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_cancelled_by_its_client_logs_its_drop_lines_before_the_access_line() {
    let capture = capture();
    let addr = serve(app()).await;
    let case = "cancel-handler";
    let stream = open(addr, &format!("/stuck/{case}"), case).await;
    let started = lines_until(&capture, |lines| !of_case(lines, case).is_empty()).await;
    assert_eq!(of_case(&started, case).len(), 1, "the handler started");
    // The client goes away mid-handler.
    drop(stream);
    let lines = lines_until(&capture, |lines| of_case(lines, case).len() >= 3).await;
    let lines = of_case(&lines, case);
    assert_cancelled(&lines, case, "handler guard dropped", None);
    println!(
        "{case}: {:?}",
        lines.iter().map(|l| l.at("message")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cancelled_by_its_client_is_dropped_inside_the_context_before_the_access_line() {
    let capture = capture();
    let addr = serve(app()).await;
    let case = "cancel-body";
    let mut stream = open(addr, &format!("/streaming/{case}"), case).await;
    // Read until the first chunk has arrived: the body is being sent.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(11).any(|w| w == b"first-chunk") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("the first chunk within 30 s")
            .unwrap();
        assert!(
            n > 0,
            "the server closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // The client goes away mid-body.
    drop(stream);
    let lines = lines_until(&capture, |lines| of_case(lines, case).len() >= 3).await;
    let lines = of_case(&lines, case);
    assert_cancelled(&lines, case, "body dropped", Some(200));
    assert_eq!(lines[2].at("size"), 11);
    println!(
        "{case}: {:?}",
        lines.iter().map(|l| l.at("message")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_ends_is_dropped_inside_the_context_before_the_access_line() {
    let capture = capture();
    let addr = serve(app()).await;
    let case = "body-ends";
    let mut stream = open(addr, &format!("/one-chunk/{case}"), case).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // Chunked encoding: the body ends with the zero-length chunk.
    while !got.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("the whole response within 30 s")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let lines = lines_until(&capture, |lines| of_case(lines, case).len() >= 3).await;
    let lines = of_case(&lines, case);
    let messages: Vec<_> = lines.iter().map(|l| l.str("message").unwrap()).collect();
    assert_eq!(
        messages,
        ["handler started", "body dropped", "request completed"],
        "the body's drop-time line, then the access line"
    );
    for line in &lines {
        assert_eq!(line.str("requestId"), Some(case), "{line:?}");
    }
    assert_eq!(lines[2].str("outcome"), Some("completed"));
    assert_eq!(lines[2].at("size"), 10);
}
