//! Allocations per request through `RequestContextLayer` (issue 10.2), counted by the shared
//! counting allocator: a request goes through the tower service with no network (hyper's own
//! allocations would hide ours), with the subscriber `init()` composes, and its access line
//! is parsed to check the request was served in full.

#![cfg(feature = "http")]

mod alloc_support;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Empty, Full};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::{JsonLayer, KeepSpans};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// What the middleware may allocate for one request, beyond what the bare handler does, each
/// for something it promises:
/// - 1: the context's store (`Arc<RwLock<..>>`); its ids are kept inline,
/// - 1: the request id's bytes, shared by the request header, the response header and the
///   `RequestId` extension,
/// - 3: the request's extension map (the map, its table, the boxed `RequestId`),
/// - 2: the response's header map, for `x-request-id` (the handler's response has none),
/// - 1: the request span's context, in the registry's span extensions,
/// - 1: the request URI kept for the access line (shared, not copied, when hyper parses the
///   request from its read buffer; this test builds it from a `&str`),
/// - and with the `tower-http` feature 1 more: tower-http's own `RequestId` extension, so
///   that its layers see the same id.
const BUDGET: usize = if cfg!(feature = "tower-http") { 10 } else { 9 };

const REQUESTS: usize = 1_000;

/// Keeps the last line in a buffer reserved up front (no allocation per line) and counts lines.
#[derive(Clone)]
struct LastLine(Arc<Mutex<(Vec<u8>, usize)>>);

impl LastLine {
    fn new() -> Self {
        LastLine(Arc::new(Mutex::new((Vec::with_capacity(64 * 1024), 0))))
    }

    fn lines(&self) -> usize {
        self.0.lock().unwrap().1
    }

    fn last(&self) -> Value {
        let guard = self.0.lock().unwrap();
        serde_json::from_slice(&guard.0).expect("the last line is JSON")
    }
}

impl io::Write for LastLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self.0.lock().unwrap();
        guard.0.clear();
        guard.0.extend_from_slice(buf);
        guard.1 += 1;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LastLine {
    type Writer = LastLine;

    fn make_writer(&'a self) -> LastLine {
        self.clone()
    }
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("/orders/42")
        .header("user-agent", "alloc-test/1.0")
        .body(Empty::new())
        .expect("a valid request")
}

fn handler(
    _: Request<Empty<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"hello")))))
}

/// Polls a future that is ready without waiting; fails if it is not.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the handler is ready at once"),
    }
}

/// Serves one request and reads its body to the end, which writes the access line.
fn serve<S, B>(service: &mut S)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body + Unpin,
{
    let response = ready(ServiceExt::oneshot(&mut *service, request())).expect("infallible");
    let mut body = response.into_body();
    let mut cx = TaskContext::from_waker(Waker::noop());
    let mut frames = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        assert!(frame.is_ok(), "the body does not fail");
        frames += 1;
    }
    assert_eq!(frames, 1, "one data frame");
}

/// Allocations of `REQUESTS` requests after 100 of warm-up.
fn allocations_of(serve_one: &mut dyn FnMut()) -> usize {
    alloc_support::allocations_per_run(100, REQUESTS, serve_one)
}

#[test]
fn a_request_allocates_within_its_budget() {
    let lines = LastLine::new();
    let subscriber = tracing_subscriber::registry()
        .with(KeepSpans::new(EnvFilter::new("info")))
        .with(JsonLayer::new(lines.clone()));
    let (bare, ours) = tracing::subscriber::with_default(subscriber, || {
        let mut bare_service = tower::service_fn(handler);
        let bare = allocations_of(&mut || serve(&mut bare_service));
        let mut service = RequestContextLayer::new().layer(tower::service_fn(handler));
        let ours = allocations_of(&mut || serve(&mut service));
        (bare, ours)
    });

    assert_eq!(lines.lines(), 100 + REQUESTS, "one access line per request");
    let line = lines.last();
    assert_eq!(line["message"], "request completed", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    let id = line["requestId"]
        .as_str()
        .expect("the access line has a request id");
    assert_eq!(id.len(), 36, "a UUID: {line}");
    assert_eq!(line["traceId"].as_str().map(str::len), Some(32), "{line}");
    assert_eq!(line["spanId"].as_str().map(str::len), Some(16), "{line}");

    assert!(bare > 0, "the counting allocator counts: {bare}");
    assert_eq!(
        bare % REQUESTS,
        0,
        "the bare handler allocates the same each time: {bare}"
    );
    let per_request = (ours - bare) as f64 / REQUESTS as f64;
    assert!(
        per_request <= BUDGET as f64,
        "the middleware allocates {per_request} times per request, budget {BUDGET} \
         (bare handler {} per request)",
        bare / REQUESTS
    );
}
