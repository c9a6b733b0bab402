//! The actix-web middleware through a real actix-web server on 127.0.0.1 and a real HTTP
//! client: request ids, trace continuation, hostile headers, the access line, panics, 1,000
//! concurrent requests, and spawning from a handler.
#![cfg(feature = "actix")]

mod common;
mod http_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
use http_support::{capture, client, get as send, lines_until, of, raw, valid_id, REPLY_TIMEOUT};
use serde_json::json;
use tokio::sync::watch;
use tracing::info;
use tracing_ambient::actix::RequestContext;
use tracing_ambient::http::RequestId;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Serves the routes behind the middleware on 127.0.0.1, on a port the system picks, with
/// two workers (each its own thread and runtime, as in production).
fn serve(routes: fn(&mut web::ServiceConfig)) -> SocketAddr {
    let server = HttpServer::new(move || App::new().wrap(RequestContext::new()).configure(routes))
        .workers(2)
        .backlog(2048)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    addr
}

async fn order(id: web::Path<u64>) -> String {
    info!(order_id = *id, "order read");
    format!("order {id}")
}

/// What the handler saw: its request id, the request id header, and its traceparent.
async fn seen(request: actix_web::HttpRequest) -> String {
    info!("seen");
    let header = request
        .headers()
        .get("x-request-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let extension = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned());
    json!({
        "requestId": tracing_ambient::request_id(),
        "header": header,
        "extension": extension,
        "traceparent": tracing_ambient::traceparent(),
    })
    .to_string()
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/orders/{id}", web::get().to(order))
        .route("/seen", web::get().to(seen))
        .route(
            "/broken",
            web::get().to(|| async {
                tracing::error!("database down");
                HttpResponse::InternalServerError().body("sorry")
            }),
        )
        .route(
            "/panics",
            web::get().to(|| async {
                info!("about to fail");
                if std::hint::black_box(true) {
                    panic!("handler exploded");
                }
                "unreachable"
            }),
        );
}

fn body_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?}: {e}"))
}

#[actix_web::test]
async fn a_valid_incoming_id_is_kept_and_echoed() {
    let capture = capture();
    let addr = serve(routes);
    let reply = send(
        &client(),
        addr,
        "/seen",
        &[("x-request-id", b"actix-kept.1")],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-request-id"], "actix-kept.1");
    let seen = body_json(&reply.body);
    assert_eq!(seen["requestId"], "actix-kept.1");
    assert_eq!(seen["header"], "actix-kept.1");
    assert_eq!(
        seen["extension"], "actix-kept.1",
        "the request's extensions hold its id"
    );
    let lines = lines_until(&capture, |l| of(l, "actix-kept.1").len() == 2).await;
    let lines = of(&lines, "actix-kept.1");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].at("message"), "seen");
    assert_eq!(lines[1].at("target"), "access");
}

#[actix_web::test]
async fn a_missing_id_is_made_as_a_uuid_v7() {
    let capture = capture();
    let addr = serve(routes);
    let reply = send(&client(), addr, "/seen", &[]).await;
    let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    assert_eq!(uuid.to_string(), id, "hyphenated lowercase");
    let seen = body_json(&reply.body);
    assert_eq!(seen["requestId"], id.as_str());
    assert_eq!(seen["header"], id.as_str(), "the handler sees the made id");
    assert_eq!(seen["extension"], id.as_str());
    let lines = lines_until(&capture, |l| of(l, &id).len() == 2).await;
    assert_eq!(of(&lines, &id).len(), 2);
}

#[actix_web::test]
async fn a_valid_traceparent_is_continued_with_a_new_span_id() {
    let capture = capture();
    let addr = serve(routes);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let reply = send(
        &client(),
        addr,
        "/seen",
        &[
            ("x-request-id", b"actix-trace-1"),
            ("traceparent", traceparent.as_bytes()),
            ("tracestate", b"congo=t61rcWkgMzE"),
        ],
    )
    .await;
    let lines = lines_until(&capture, |l| of(l, "actix-trace-1").len() == 2).await;
    let lines = of(&lines, "actix-trace-1");
    assert_eq!(lines.len(), 2);
    let span_id = lines[0].str("spanId").unwrap().to_owned();
    assert_eq!(span_id.len(), 16);
    assert!(span_id.bytes().all(|b| b.is_ascii_hexdigit()), "{span_id}");
    assert_ne!(span_id, PARENT_ID, "this request's span is new");
    assert_ne!(span_id, "0000000000000000");
    for line in &lines {
        assert_eq!(line.at("traceId"), TRACE_ID);
        assert_eq!(line.at("spanId"), span_id.as_str());
    }
    // Outgoing calls continue the same trace, with this request as the parent.
    let seen = body_json(&reply.body);
    let outgoing = seen["traceparent"].as_str().unwrap();
    assert!(
        outgoing.starts_with(&format!("00-{TRACE_ID}-")),
        "{outgoing}"
    );
    assert!(outgoing.ends_with("-01"), "{outgoing}");

    // No traceparent: a new trace.
    send(
        &client(),
        addr,
        "/seen",
        &[("x-request-id", b"actix-trace-2")],
    )
    .await;
    let lines = lines_until(&capture, |l| of(l, "actix-trace-2").len() == 2).await;
    let trace_id = of(&lines, "actix-trace-2")[0]
        .str("traceId")
        .unwrap()
        .to_owned();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, TRACE_ID);
    assert_ne!(trace_id, "0".repeat(32));
}

/// Sends `head` raw and returns the response's status, its one `x-request-id` header (failing
/// on more than one) and the whole reply as text.
async fn raw_reply(addr: SocketAddr, head: &[u8]) -> (u16, Option<String>, String) {
    let reply = raw(addr, head).await;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-request-id")
                .then(|| value.trim().to_owned())
        })
        .collect();
    assert!(ids.len() <= 1, "one x-request-id at most: {text}");
    (status, ids.into_iter().next(), text)
}

#[actix_web::test]
async fn hostile_headers_are_replaced_and_never_echoed() {
    let capture = capture();
    let addr = serve(routes);
    let long = "x".repeat(200);
    let hostile: [&[u8]; 5] = [
        b"a\"b},{\"requestId\":\"forged",
        b"id with spaces",
        b"<script>alert(1)</script>",
        long.as_bytes(),
        b"",
    ];
    let mut made = Vec::new();
    for (i, value) in hostile.iter().enumerate() {
        let mut head =
            format!("GET /orders/{i} HTTP/1.1\r\nhost: x\r\nx-request-id: ").into_bytes();
        head.extend_from_slice(value);
        head.extend_from_slice(
            b"\r\ntraceparent: 00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01\r\n",
        );
        let (status, id, reply) = raw_reply(addr, &head).await;
        assert_eq!(status, 200, "request {i}");
        if !value.is_empty() {
            let value = String::from_utf8_lossy(value);
            assert!(!reply.contains(&*value), "request {i} echoed: {reply}");
        }
        let id = id.unwrap_or_else(|| panic!("request {i} has an id on its response"));
        assert!(valid_id(&id), "{id:?}");
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_ne!(id.as_bytes(), *value);
        made.push(id);
    }
    // Several ids: which one the client meant is unknown, so none is taken.
    let (_, id, _) = raw_reply(
        addr,
        b"GET /orders/9 HTTP/1.1\r\nhost: x\r\nx-request-id: one\r\nx-request-id: two\r\n",
    )
    .await;
    let id = id.unwrap();
    assert!(id != "one" && id != "two", "{id}");
    made.push(id);

    let lines = lines_until(&capture, |l| made.iter().all(|id| of(l, id).len() == 2)).await;
    for id in &made {
        let lines = of(&lines, id);
        assert_eq!(lines.len(), 2, "{id}: {lines:#?}");
        for line in &lines {
            let trace_id = line.str("traceId").unwrap();
            assert_eq!(trace_id.len(), 32, "a new trace, not the invalid one");
            assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    // Every line captured (parsed strictly by `capture`) holds none of the hostile values.
    for line in capture.lines() {
        for (key, value) in &line.entries {
            let text = value.to_string();
            assert!(!text.contains("forged"), "{key}: {text}");
            assert!(!text.contains("<script>"), "{key}: {text}");
            assert!(!text.contains("id with spaces"), "{key}: {text}");
            assert!(!text.contains(&long), "{key}");
        }
    }
}

#[actix_web::test]
async fn the_access_line_has_the_route_pattern_status_latency_and_size() {
    let capture = capture();
    let addr = serve(routes);
    let reply = send(
        &client(),
        addr,
        "/orders/7",
        &[("x-request-id", b"actix-access-1")],
    )
    .await;
    assert_eq!(reply.body, "order 7");
    let lines = lines_until(&capture, |l| of(l, "actix-access-1").len() == 2).await;
    let lines = of(&lines, "actix-access-1");
    assert_eq!(lines.len(), 2);
    let (handler, access) = (&lines[0], &lines[1]);
    assert_eq!(handler.at("message"), "order read");
    assert_eq!(handler.at("order_id"), 7);
    assert_eq!(access.at("level"), "info");
    assert_eq!(access.at("message"), "request completed");
    assert_eq!(access.at("target"), "access");
    assert_eq!(access.at("method"), "GET");
    assert_eq!(access.at("path"), "/orders/7");
    assert_eq!(access.at("route"), "/orders/{id}");
    assert_eq!(access.at("status"), 200);
    let latency = access.at("latencyMs").as_f64().unwrap();
    assert!(latency > 0.0 && latency < 10_000.0, "{latency}");
    assert_eq!(access.at("size"), &json!("order 7".len()));
    assert_eq!(access.at("outcome"), "completed");
    assert_eq!(access.at("traceId"), handler.at("traceId"));

    // A server error: the access line at `error`; a path no resource matched: no route.
    send(
        &client(),
        addr,
        "/broken",
        &[("x-request-id", b"actix-access-2")],
    )
    .await;
    send(
        &client(),
        addr,
        "/nowhere/7",
        &[("x-request-id", b"actix-access-3")],
    )
    .await;
    let lines = lines_until(&capture, |l| {
        of(l, "actix-access-2").len() == 2 && of(l, "actix-access-3").len() == 1
    })
    .await;
    let broken = of(&lines, "actix-access-2");
    assert_eq!(broken[0].at("message"), "database down");
    assert_eq!(broken[1].at("level"), "error");
    assert_eq!(broken[1].at("status"), 500);
    assert_eq!(broken[1].at("route"), "/broken");
    assert_eq!(broken[1].at("size"), &json!("sorry".len()));
    let nowhere = of(&lines, "actix-access-3");
    assert_eq!(nowhere[0].at("status"), 404);
    assert_eq!(nowhere[0].at("path"), "/nowhere/7");
    assert_eq!(nowhere[0].get("route"), None);
}

#[actix_web::test]
async fn a_handler_panic_is_logged_with_the_request() {
    let capture = capture();
    let addr = serve(routes);
    let request = with_id(http::Method::GET, addr, "/panics", "actix-panic-1");
    // actix-web drops the connection of a handler that panicked.
    assert!(send_as_is(request).await.is_err());
    let lines = lines_until(&capture, |l| {
        of(l, "actix-panic-1")
            .iter()
            .any(|l| l.str("target") == Some("access"))
    })
    .await;
    let lines = of(&lines, "actix-panic-1");
    assert_eq!(
        lines.len(),
        3,
        "handler, panic and access lines: {lines:#?}"
    );
    let targets: Vec<_> = lines.iter().map(|l| l.str("target").unwrap()).collect();
    assert_eq!(targets[1..], ["panic", "access"], "{lines:#?}");
    assert_eq!(lines[0].at("message"), "about to fail");
    assert_eq!(lines[1].at("message"), "handler exploded");
    assert_eq!(lines[2].at("level"), "error");
    assert_eq!(lines[2].at("outcome"), "panicked");
    assert_eq!(lines[2].at("path"), "/panics");
}

const REQUESTS: usize = 1_000;

/// Lines each request writes: handler start, subtask, handler end, access line.
const LINES_PER_REQUEST: usize = 4;

/// Holds every handler until all requests are in flight at once (or a while has passed, so
/// that a slow machine degrades to less overlap instead of a hang).
struct Gate {
    arrived: AtomicUsize,
    open: watch::Sender<bool>,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate {
        arrived: AtomicUsize::new(0),
        open: watch::channel(false).0,
    })
}

async fn work(n: web::Path<usize>) -> String {
    let n = n.into_inner();
    info!(n, "handler start");
    actix_web::rt::task::yield_now().await;
    let gate = gate();
    let mut open = gate.open.subscribe();
    if gate.arrived.fetch_add(1, Ordering::SeqCst) + 1 == REQUESTS {
        gate.open.send_replace(true);
    }
    let opened = tokio::time::timeout(Duration::from_secs(20), open.wait_for(|open| *open))
        .await
        .is_ok();
    let subtask = tracing_ambient::spawn(async move {
        tokio::task::yield_now().await;
        info!(n, "subtask");
        tracing_ambient::request_id()
    });
    let from_subtask = subtask.await.unwrap().unwrap_or_default();
    actix_web::rt::task::yield_now().await;
    info!(n, "handler end");
    format!(
        "{}|{from_subtask}|{opened}",
        tracing_ambient::request_id().unwrap_or_default()
    )
}

#[actix_web::test]
async fn a_thousand_concurrent_requests_never_share_a_context() {
    let capture = capture();
    let addr = serve(|config| {
        config.route("/work/{n}", web::get().to(work));
    });
    let client = client();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..REQUESTS {
        let client = client.clone();
        requests.spawn(async move { (n, send(&client, addr, &format!("/work/{n}"), &[]).await) });
    }
    let mut ids = HashMap::new();
    while let Some(done) = requests.join_next().await {
        let (n, reply) = done.unwrap();
        assert_eq!(reply.status, 200);
        let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(
            reply.body,
            format!("{id}|{id}|true"),
            "handler and subtask saw the id, with all {REQUESTS} requests in flight at once"
        );
        assert!(ids.insert(id, n).is_none(), "ids are unique");
    }
    assert_eq!(ids.len(), REQUESTS);
    let lines = lines_until(&capture, |lines| {
        lines
            .iter()
            .filter(|l| l.str("requestId").is_some_and(|id| ids.contains_key(id)))
            .count()
            == REQUESTS * LINES_PER_REQUEST
    })
    .await;
    let mut per_request: HashMap<&str, Vec<&common::Line>> = HashMap::new();
    for line in &lines {
        if let Some(id) = line.str("requestId").filter(|id| ids.contains_key(*id)) {
            per_request.entry(id).or_default().push(line);
        }
    }
    assert_eq!(per_request.len(), REQUESTS);
    for (id, lines) in &per_request {
        let n = ids[*id];
        assert_eq!(lines.len(), LINES_PER_REQUEST, "{id}");
        let messages: Vec<_> = lines.iter().map(|l| l.str("message").unwrap()).collect();
        assert_eq!(
            messages,
            [
                "handler start",
                "subtask",
                "handler end",
                "request completed"
            ],
            "{id}"
        );
        for line in &lines[..3] {
            assert_eq!(line.at("n"), n, "{id}: a line of another request");
        }
        assert_eq!(lines[3].at("path"), &json!(format!("/work/{n}")));
        assert_eq!(lines[3].at("route"), "/work/{n}");
    }
    // No line of this test's handlers went out without its request.
    let orphans = lines
        .iter()
        .filter(|l| l.get("n").is_some() && l.get("requestId").is_none())
        .count();
    assert_eq!(orphans, 0);
}

async fn spawns() -> String {
    let lost = actix_web::rt::spawn(async {
        info!("from actix spawn");
        tracing_ambient::request_id()
    })
    .await
    .unwrap();
    let kept = tracing_ambient::spawn(async {
        info!("from ambient spawn");
        tracing_ambient::request_id()
    })
    .await
    .unwrap();
    json!({ "lost": lost, "kept": kept }).to_string()
}

#[actix_web::test]
async fn actix_spawn_loses_the_context_and_tracing_ambient_spawn_keeps_it() {
    let capture = capture();
    let addr = serve(|config| {
        config.route("/spawns", web::get().to(spawns));
    });
    let reply = send(
        &client(),
        addr,
        "/spawns",
        &[("x-request-id", b"actix-spawn-1")],
    )
    .await;
    let seen = body_json(&reply.body);
    assert_eq!(seen["lost"], serde_json::Value::Null);
    assert_eq!(seen["kept"], "actix-spawn-1");
    let lines = lines_until(&capture, |l| of(l, "actix-spawn-1").len() == 2).await;
    let mine = of(&lines, "actix-spawn-1");
    assert_eq!(mine[0].at("message"), "from ambient spawn");
    assert_eq!(mine[1].at("target"), "access");
    let lost: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some("from actix spawn"))
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].get("requestId"), None);
}

#[actix_web::test]
async fn options_are_the_tower_layers() {
    let capture = capture();
    let server = HttpServer::new(|| {
        App::new()
            .wrap(
                RequestContext::from(
                    tracing_ambient::http::RequestContextLayer::new().with_response_header(false),
                )
                .keep_invalid_request_id(true)
                // A span for each request: the route is named before the handler runs.
                .with_span(true),
            )
            .route("/seen", web::get().to(seen))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    let reply = send(&client(), addr, "/seen", &[("x-request-id", b"bad id!")]).await;
    assert!(
        reply.headers.get("x-request-id").is_none(),
        "response header off"
    );
    let id = body_json(&reply.body)["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines = lines_until(&capture, |l| of(l, &id).len() == 2).await;
    let lines = of(&lines, &id);
    assert_eq!(lines.len(), 2);
    // Each byte outside `A-Z a-z 0-9 . _ : @ + / = -` replaced by `_`, under its own key
    // (`RequestContextLayer::keep_invalid_request_id`).
    for line in &lines {
        assert_eq!(line.at("invalidRequestId"), "bad_id_", "{line:?}");
    }
    assert_eq!(lines[1].at("target"), "access");
    assert_eq!(lines[1].at("route"), "/seen");
}

/// A body that sends one chunk, then fails with an error whose text is "disk gone".
struct FailingBody {
    sent: bool,
}

impl actix_web::body::MessageBody for FailingBody {
    type Error = std::io::Error;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Stream
    }

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<bytes::Bytes, Self::Error>>> {
        if std::mem::replace(&mut self.sent, true) {
            std::task::Poll::Ready(Some(Err(std::io::Error::other("disk gone"))))
        } else {
            std::task::Poll::Ready(Some(Ok(bytes::Bytes::from_static(b"part"))))
        }
    }
}

/// Serves, behind the middleware, an inner `wrap_fn` whose `call` panics on `/panics-in-call`
/// (before any handler runs), a resource answering every method with a 12-byte body, and a
/// body that fails.
fn serve_edges() -> SocketAddr {
    let server = HttpServer::new(|| {
        App::new()
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                if req.path() == "/panics-in-call" && std::hint::black_box(true) {
                    panic!("inner middleware exploded");
                }
                srv.call(req)
            })
            .wrap(RequestContext::new())
            .service(web::resource("/any").to(|| async { "twelve bytes" }))
            .route(
                "/failing-body",
                web::get().to(|| async { HttpResponse::Ok().body(FailingBody { sent: false }) }),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    addr
}

/// A request for `path` with `x-request-id: id` and no body.
fn with_id(
    method: http::Method,
    addr: SocketAddr,
    path: &str,
    id: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("x-request-id", id)
        .body(http_body_util::Full::default())
        .unwrap()
}

/// Sends `request` and returns the response, or the error of a connection the server ended;
/// fails the test when neither comes within [`REPLY_TIMEOUT`].
async fn send_as_is(
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> <hyper_util::client::legacy::ResponseFuture as std::future::Future>::Output {
    tokio::time::timeout(REPLY_TIMEOUT, client().request(request))
        .await
        .unwrap_or_else(|_| panic!("no reply within {REPLY_TIMEOUT:?}"))
}

/// The one access line of request `id`, once written.
async fn access_line(capture: &common::Capture, id: &str) -> common::Line {
    let lines = lines_until(capture, |l| {
        of(l, id).iter().any(|l| l.str("target") == Some("access"))
    })
    .await;
    let access: Vec<_> = of(&lines, id)
        .into_iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect();
    assert_eq!(access.len(), 1, "{id}: {access:#?}");
    access.into_iter().next().unwrap()
}

#[actix_web::test]
async fn a_head_request_sends_no_body_and_its_access_line_says_size_0() {
    let capture = capture();
    let addr = serve_edges();
    // GET first: the same resource's body is 12 bytes.
    let reply = send(&client(), addr, "/any", &[("x-request-id", b"actix-get-1")]).await;
    assert_eq!(reply.body, "twelve bytes");
    let get = access_line(&capture, "actix-get-1").await;
    assert_eq!(get.at("size"), 12);
    let request = with_id(http::Method::HEAD, addr, "/any", "actix-head-1");
    let response = send_as_is(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "actix-head-1");
    let access = access_line(&capture, "actix-head-1").await;
    assert_eq!(access.at("method"), "HEAD");
    assert_eq!(access.at("status"), 200);
    assert_eq!(access.at("outcome"), "completed");
    // Nothing of the body went to the client (as the tower layer says for HEAD).
    assert_eq!(access.at("size"), 0, "{access:?}");
}

#[actix_web::test]
async fn a_failing_body_is_logged_with_its_error() {
    let capture = capture();
    let addr = serve_edges();
    let request = with_id(
        http::Method::GET,
        addr,
        "/failing-body",
        "actix-body-error-1",
    );
    // The body fails: the server ends the connection, before or after the head.
    if let Ok(response) = send_as_is(request).await {
        use http_body_util::BodyExt;
        assert!(response.into_body().collect().await.is_err());
    }
    let access = access_line(&capture, "actix-body-error-1").await;
    assert_eq!(access.at("level"), "error");
    assert_eq!(access.at("outcome"), "failed");
    assert_eq!(access.at("error"), "disk gone");
    assert_eq!(access.at("status"), 200);
    assert_eq!(access.at("size"), 4);
}

#[actix_web::test]
async fn a_panic_in_an_inner_middlewares_call_is_logged_with_the_request() {
    let capture = capture();
    let addr = serve_edges();
    let request = with_id(
        http::Method::GET,
        addr,
        "/panics-in-call",
        "actix-call-panic-1",
    );
    // actix-web drops the connection of a request whose service panicked.
    assert!(send_as_is(request).await.is_err());
    let access = access_line(&capture, "actix-call-panic-1").await;
    assert_eq!(access.at("level"), "error");
    assert_eq!(access.at("outcome"), "panicked");
    assert_eq!(access.at("error"), "inner middleware exploded");
    assert_eq!(access.at("path"), "/panics-in-call");
    // The server goes on serving.
    let reply = send(
        &client(),
        addr,
        "/any",
        &[("x-request-id", b"actix-after-1")],
    )
    .await;
    assert_eq!(reply.status, 200);
}
