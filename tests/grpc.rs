//! gRPC through `RequestContextLayer` (issue 12 §3): a real tonic server on 127.0.0.1 with the
//! layer, and tonic's real client over HTTP/2. The request id and the trace come from the
//! call's metadata; the access line names the gRPC method and the gRPC status, read from the
//! trailers (or the headers of a trailers-only response), not the HTTP status.
//!
//! No generated code: the service is a hand-written tower service over tonic's generic
//! server, and the messages are UTF-8 strings through a codec of a few lines.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::{Buf, BufMut};
use http::uri::PathAndQuery;
use http_support::{capture, lines_until, of};
use tokio_stream::StreamExt;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tracing_ambient::http::RequestContextLayer;

use common::Line;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

// === the codec: messages are UTF-8 strings ===

#[derive(Debug, Clone, Copy, Default)]
struct Utf8;

impl Codec for Utf8 {
    type Encode = String;
    type Decode = String;
    type Encoder = Utf8;
    type Decoder = Utf8;

    fn encoder(&mut self) -> Utf8 {
        Utf8
    }

    fn decoder(&mut self) -> Utf8 {
        Utf8
    }
}

impl Encoder for Utf8 {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Utf8 {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }
}

// === the service: `test.Shop` with a unary and a server-streaming method ===

/// `Get` answers `ok` with the request id and traceparent the handler saw, `missing` with
/// NOT_FOUND and `boom` with INTERNAL. `List` streams `item-1`, `item-2` and then ends with
/// OK, or with UNAVAILABLE when asked for `fail`.
#[derive(Debug, Clone)]
struct Shop;

impl NamedService for Shop {
    const NAME: &'static str = "test.Shop";
}

async fn get(request: Request<String>) -> Result<Response<String>, Status> {
    let what = request.into_inner();
    tracing::info!(what = what.as_str(), "get");
    match what.as_str() {
        "ok" => Ok(Response::new(format!(
            "{}|{}",
            tracing_ambient::request_id().unwrap_or_default(),
            tracing_ambient::traceparent().unwrap_or_default()
        ))),
        // The deadline the middleware took from the client's `grpc-timeout`, in whole ms.
        "remaining" => Ok(Response::new(
            tracing_ambient::remaining()
                .map_or_else(|| "none".to_owned(), |r| r.as_millis().to_string()),
        )),
        "missing" => Err(Status::not_found("order 7 not found")),
        _ => Err(Status::internal("database on fire")),
    }
}

type ItemStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<String, Status>> + Send>>;

async fn list(request: Request<String>) -> Result<Response<ItemStream>, Status> {
    let fail = request.into_inner() == "fail";
    let mut items = vec![Ok("item-1".to_owned()), Ok("item-2".to_owned())];
    if fail {
        items.push(Err(Status::unavailable("backend went away")));
    }
    // Each item is logged as the response body is polled: inside the request's context.
    let stream = tokio_stream::iter(items).map(|item| {
        tracing::info!(ok = item.is_ok(), "sending");
        item
    });
    Ok(Response::new(Box::pin(stream) as ItemStream))
}

impl tower::Service<http::Request<Body>> for Shop {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(Utf8);
            let response = match request.uri().path() {
                "/test.Shop/Get" => grpc.unary(tower::service_fn(get), request).await,
                "/test.Shop/List" => {
                    grpc.server_streaming(tower::service_fn(list), request)
                        .await
                }
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// Serves `test.Shop` behind `RequestContextLayer` on 127.0.0.1, and returns a client
/// connected to it.
async fn shop() -> tonic::client::Grpc<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = Server::builder()
        .layer(RequestContextLayer::new())
        .add_service(Shop)
        .serve_with_incoming(incoming);
    tokio::spawn(async move { server.await.unwrap() });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

/// A request with `x-request-id` and, when given, `traceparent` metadata.
fn request(message: &str, id: &str, traceparent: Option<&str>) -> Request<String> {
    let mut request = Request::new(message.to_owned());
    request
        .metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    if let Some(tp) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", tp.parse().unwrap());
    }
    request
}

async fn unary(
    client: &mut tonic::client::Grpc<Channel>,
    path: &'static str,
    request: Request<String>,
) -> Result<Response<String>, Status> {
    client.ready().await.unwrap();
    client
        .unary(request, PathAndQuery::from_static(path), Utf8)
        .await
}

/// Waits for the access line of request `id` and returns all of that request's lines; the
/// access line is last.
async fn lines_of(id: &str) -> Vec<Line> {
    let capture = capture();
    let is_access = |l: &Line| l.str("target") == Some("access");
    let lines = lines_until(&capture, |lines| of(lines, id).iter().any(is_access)).await;
    let lines = of(&lines, id);
    let access: Vec<_> = lines.iter().filter(|l| is_access(l)).collect();
    assert_eq!(access.len(), 1, "one access line for {id}: {lines:#?}");
    assert!(is_access(lines.last().unwrap()), "the access line is last");
    lines
}

/// Checks what every gRPC access line has: target, method, path, HTTP status 200, outcome.
fn assert_grpc_access(line: &Line, path: &str) {
    assert_eq!(line.str("target"), Some("access"));
    assert_eq!(line.str("method"), Some("POST"), "gRPC calls are POSTs");
    assert_eq!(line.str("path"), Some(path));
    assert_eq!(
        line.at("status"),
        200,
        "the HTTP status is 200 whatever the gRPC status"
    );
    assert_eq!(line.str("outcome"), Some("completed"));
    assert!(line.at("latencyMs").as_f64().unwrap() >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_ok_carries_request_id_and_trace_from_metadata() {
    let _capture = capture();
    let mut client = shop().await;
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let response = unary(
        &mut client,
        "/test.Shop/Get",
        request("ok", "grpc-ok-1", Some(&incoming)),
    )
    .await
    .unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "grpc-ok-1"
    );
    let (seen_id, seen_tp) = response.get_ref().split_once('|').unwrap();
    assert_eq!(seen_id, "grpc-ok-1");

    let lines = lines_of("grpc-ok-1").await;
    assert_eq!(
        lines.len(),
        2,
        "the handler's line and the access line: {lines:#?}"
    );
    let span = lines[0].str("spanId").unwrap().to_owned();
    assert_ne!(span, PARENT, "the request has its own span id");
    // The handler saw the caller's trace with the request's span as parent.
    assert_eq!(seen_tp, format!("00-{TRACE}-{span}-01"));
    for line in &lines {
        assert_eq!(line.str("traceId"), Some(TRACE), "{line:?}");
        assert_eq!(line.str("spanId"), Some(span.as_str()), "{line:?}");
    }
    assert_eq!(lines[0].str("message"), Some("get"));
    assert_eq!(lines[0].str("level"), Some("info"));
    let access = &lines[1];
    assert_grpc_access(access, "/test.Shop/Get");
    assert_eq!(access.str("level"), Some("info"));
    assert_eq!(access.at("grpcStatus"), 0);
    assert_eq!(access.str("grpcCode"), Some("OK"));
    assert!(access.get("grpcMessage").is_none(), "{access:?}");
    // One length-prefixed message: 5 bytes of gRPC framing and the payload.
    let payload = response.get_ref().len() as u64;
    assert_eq!(access.at("size"), 5 + payload);
    println!(
        "unary OK: {} lines, span {span}, size {}",
        lines.len(),
        5 + payload
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_errors_log_their_grpc_status_not_the_http_one() {
    let _capture = capture();
    let mut client = shop().await;
    // (message, id, gRPC code, name, message, level), from the gRPC status codes and the
    // level table of the `http` module docs.
    let cases = [
        (
            "missing",
            "grpc-nf-1",
            5,
            "NOT_FOUND",
            "order 7 not found",
            "warn",
        ),
        (
            "boom",
            "grpc-int-1",
            13,
            "INTERNAL",
            "database on fire",
            "error",
        ),
    ];
    for (what, id, code, name, message, level) in cases {
        let status = unary(&mut client, "/test.Shop/Get", request(what, id, None))
            .await
            .unwrap_err();
        assert_eq!(status.code() as i32, code);
        assert_eq!(status.message(), message);
        assert_eq!(status.metadata().get("x-request-id").unwrap(), id);

        let lines = lines_of(id).await;
        assert_eq!(
            lines.len(),
            2,
            "the handler's line and the access line: {lines:#?}"
        );
        let access = &lines[1];
        assert_grpc_access(access, "/test.Shop/Get");
        assert_eq!(access.str("level"), Some(level), "{access:?}");
        assert_eq!(access.at("grpcStatus"), code);
        assert_eq!(access.str("grpcCode"), Some(name));
        assert_eq!(access.str("grpcMessage"), Some(message), "percent-decoded");
        // A trailers-only response: no message, no body.
        assert_eq!(access.at("size"), 0);
        println!("{name}: level {level}, message {message:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_is_unimplemented_at_error() {
    let _capture = capture();
    let mut client = shop().await;
    // An unknown method of a known service, and a service nobody serves (tonic's router).
    let cases = [
        ("/test.Shop/Nope", "grpc-unimpl-1", Some("no such method")),
        ("/test.Other/Get", "grpc-unimpl-2", None),
    ];
    for (path, id, message) in cases {
        let status = unary(&mut client, path, request("ok", id, None))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        let lines = lines_of(id).await;
        assert_eq!(lines.len(), 1, "the access line only: {lines:#?}");
        assert_grpc_access(&lines[0], path);
        assert_eq!(lines[0].str("level"), Some("error"));
        assert_eq!(lines[0].at("grpcStatus"), 12);
        assert_eq!(lines[0].str("grpcCode"), Some("UNIMPLEMENTED"));
        assert_eq!(lines[0].str("grpcMessage"), message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_status_comes_from_the_trailers() {
    let _capture = capture();
    let mut client = shop().await;
    // (request, id, gRPC code, name, level)
    let cases = [
        ("all", "grpc-stream-ok", 0, "OK", "info"),
        ("fail", "grpc-stream-fail", 14, "UNAVAILABLE", "error"),
    ];
    for (what, id, code, name, level) in cases {
        client.ready().await.unwrap();
        let response = client
            .server_streaming(
                request(what, id, None),
                PathAndQuery::from_static("/test.Shop/List"),
                Utf8,
            )
            .await
            .unwrap();
        // The headers went out before the end: the status can only be in the trailers.
        assert_eq!(response.metadata().get("x-request-id").unwrap(), id);
        let mut stream = response.into_inner();
        let mut items = Vec::new();
        let end = loop {
            match stream.message().await {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        };
        assert_eq!(items, ["item-1", "item-2"]);
        assert_eq!(
            end.as_ref().map(|s| s.code() as i32),
            (code != 0).then_some(code)
        );

        let lines = lines_of(id).await;
        let sent: Vec<_> = lines
            .iter()
            .filter(|l| l.str("message") == Some("sending"))
            .collect();
        let expected_sent = if code == 0 { 2 } else { 3 };
        assert_eq!(
            sent.len(),
            expected_sent,
            "one line per item, with the request: {lines:#?}"
        );
        assert_eq!(lines.len(), expected_sent + 1);
        let access = lines.last().unwrap();
        assert_grpc_access(access, "/test.Shop/List");
        assert_eq!(access.str("level"), Some(level), "{access:?}");
        assert_eq!(access.at("grpcStatus"), code);
        assert_eq!(access.str("grpcCode"), Some(name));
        if code == 0 {
            assert!(access.get("grpcMessage").is_none(), "{access:?}");
        } else {
            assert_eq!(access.str("grpcMessage"), Some("backend went away"));
        }
        // Two length-prefixed messages of 6 bytes each.
        assert_eq!(access.at("size"), 2 * (5 + 6));
        println!("stream {what}: {} items, {name} at {level}", items.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_request_id_metadata_is_replaced() {
    let _capture = capture();
    let mut client = shop().await;
    let response = unary(
        &mut client,
        "/test.Shop/Get",
        request("ok", "bad id */", None),
    )
    .await
    .unwrap();
    let sent = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_ne!(sent, "bad id */");
    assert_eq!(sent.len(), 36, "a UUID v7: {sent}");
    let (seen, _) = response.get_ref().split_once('|').unwrap();
    assert_eq!(seen, sent, "the handler and the response agree");
    let lines = lines_of(sent).await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].at("grpcStatus"), 0);
}

/// Issue 12 §3: a gRPC client's deadline (`grpc-timeout`, which tonic sends for
/// `Request::set_timeout`) becomes the context's deadline, with no option to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_timeout_becomes_the_context_deadline() {
    let _capture = capture();
    let mut client = shop().await;
    let mut with_timeout = request("remaining", "grpc-deadline-1", None);
    with_timeout.set_timeout(std::time::Duration::from_millis(1500));
    let remaining: u64 = unary(&mut client, "/test.Shop/Get", with_timeout)
        .await
        .unwrap()
        .into_inner()
        .parse()
        .expect("a deadline was set");
    assert!((1000..1500).contains(&remaining), "{remaining} ms left");
    let without = request("remaining", "grpc-deadline-2", None);
    let none = unary(&mut client, "/test.Shop/Get", without).await.unwrap();
    assert_eq!(none.into_inner(), "none");
    println!("grpc-timeout 1500m: {remaining} ms left in the handler");
}
