//! W3C trace context through a real server: the parsing rules of the W3C test suite, the
//! new span id, `tracestate` (Level 2 grammar, repeated keys), and what a handler propagates
//! downstream: a new parent-id for every outgoing call (issue 7 §4).
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use http_support::{capture, client, get as send, lines_until, of, serve, HttpClient};
use tracing_ambient::http::RequestContextLayer;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The handler logs one line and answers with what it would send downstream.
async fn downstream() -> String {
    tracing::info!("handled");
    let mut headers = http::HeaderMap::new();
    let sent = tracing_ambient::http::inject_trace_context(&mut headers);
    assert_eq!(
        headers
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned()),
        sent.map(|tp| tp.to_string())
    );
    format!(
        "{}|{}|{}",
        tracing_ambient::traceparent().unwrap_or_default(),
        tracing_ambient::tracestate().unwrap_or_default(),
        tracing_ambient::http::parent_span_id().unwrap_or_default(),
    )
}

struct Seen {
    trace_id: String,
    span_id: String,
    traceparent: String,
    tracestate: String,
    parent: String,
}

async fn request(
    client: &HttpClient,
    addr: SocketAddr,
    id: &str,
    headers: &[(&str, &str)],
) -> Seen {
    let capture = capture();
    let mut all: Vec<(&str, &[u8])> = vec![("x-request-id", id.as_bytes())];
    all.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
    let reply = send(client, addr, "/", &all).await;
    let lines = lines_until(&capture, |lines| of(lines, id).len() == 2).await;
    let lines = of(&lines, id);
    assert_eq!(lines.len(), 2);
    // The handler's line and the access line carry the same trace and span.
    assert_eq!(lines[0].get("traceId"), lines[1].get("traceId"));
    assert_eq!(lines[0].get("spanId"), lines[1].get("spanId"));
    let mut parts = reply.body.split('|').map(str::to_owned);
    Seen {
        trace_id: lines[0].str("traceId").unwrap().to_owned(),
        span_id: lines[0].str("spanId").unwrap().to_owned(),
        traceparent: parts.next().unwrap(),
        tracestate: parts.next().unwrap(),
        parent: parts.next().unwrap(),
    }
}

async fn server() -> (HttpClient, SocketAddr) {
    let app = Router::new()
        .route("/", get(downstream))
        .layer(RequestContextLayer::new());
    (client(), serve(app).await)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_traceparents_are_continued_with_a_new_span() {
    let (client, addr) = server().await;
    let valid = [
        format!("00-{TRACE}-{PARENT}-01"),
        format!("00-{TRACE}-{PARENT}-00"),
        format!(" 00-{TRACE}-{PARENT}-01\t"),
        format!("cc-{TRACE}-{PARENT}-01"),
        format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
        // Flags this version does not define are accepted, and not passed on (W3C: set them
        // to zero).
        format!("00-{TRACE}-{PARENT}-ff"),
        format!("00-{TRACE}-{PARENT}-fe"),
    ];
    for (i, value) in valid.iter().enumerate() {
        let seen = request(
            &client,
            addr,
            &format!("tp-valid-{i}"),
            &[
                ("traceparent", value),
                ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            ],
        )
        .await;
        assert_eq!(seen.trace_id, TRACE, "{value:?}");
        assert!(is_hex(&seen.span_id, 16));
        assert_ne!(seen.span_id, PARENT);
        let flags = if value.trim().ends_with("-00") || value.ends_with("-fe") {
            "00"
        } else {
            "01"
        };
        assert_eq!(
            seen.traceparent,
            format!("00-{TRACE}-{}-{flags}", seen.span_id),
            "{value:?}"
        );
        assert_eq!(seen.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert_eq!(seen.parent, PARENT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_traceparents_restart_the_trace() {
    let (client, addr) = server().await;
    let zeros32 = "0".repeat(32);
    let invalid = [
        format!("00-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
        format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!(".0-{TRACE}-{PARENT}-01"),
        format!("000-{TRACE}-{PARENT}-01"),
        format!("0-{TRACE}-{PARENT}-01"),
        format!("00-{zeros32}-{PARENT}-01"),
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        format!("00-{TRACE}0-{PARENT}-01"),
        format!("00-{}-{PARENT}-01", &TRACE[1..]),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{TRACE}-{}-01", PARENT.to_uppercase()),
        format!("00-{TRACE}-{PARENT}0-01"),
        format!("00-{TRACE}-{PARENT}-.0"),
        format!("00-{TRACE}-{PARENT}-010"),
        format!("00-{TRACE}-{PARENT}-1"),
        String::new(),
        "garbage".to_owned(),
    ];
    for (i, value) in invalid.iter().enumerate() {
        let seen = request(
            &client,
            addr,
            &format!("tp-invalid-{i}"),
            &[("traceparent", value), ("tracestate", "rojo=1")],
        )
        .await;
        assert!(is_hex(&seen.trace_id, 32), "{value:?}");
        assert_ne!(seen.trace_id, TRACE, "{value:?} restarts");
        assert_eq!(
            seen.traceparent,
            format!("00-{}-{}-01", seen.trace_id, seen.span_id)
        );
        assert_eq!(seen.tracestate, "", "{value:?}: tracestate is dropped");
        assert_eq!(seen.parent, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_traceparent_headers_restart_the_trace() {
    let (client, addr) = server().await;
    let value = format!("00-{TRACE}-{PARENT}-01");
    let seen = request(
        &client,
        addr,
        "tp-dup",
        &[("traceparent", &value), ("traceparent", &value)],
    )
    .await;
    assert_ne!(seen.trace_id, TRACE);
    assert!(is_hex(&seen.trace_id, 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_traceparent_starts_a_trace_and_invalid_tracestate_is_dropped() {
    let (client, addr) = server().await;
    let a = request(&client, addr, "tp-none-a", &[]).await;
    let b = request(&client, addr, "tp-none-b", &[]).await;
    assert!(is_hex(&a.trace_id, 32) && is_hex(&b.trace_id, 32));
    assert_ne!(a.trace_id, b.trace_id);
    assert_ne!(a.span_id, b.span_id);

    let value = format!("00-{TRACE}-{PARENT}-01");
    let seen = request(
        &client,
        addr,
        "tp-bad-state",
        &[("traceparent", &value), ("tracestate", "Rojo=1")],
    )
    .await;
    assert_eq!(seen.trace_id, TRACE);
    assert_eq!(seen.tracestate, "");
    let many = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let seen = request(
        &client,
        addr,
        "tp-33-members",
        &[("traceparent", &value), ("tracestate", &many)],
    )
    .await;
    assert_eq!(seen.tracestate, "");
    let seen = request(
        &client,
        addr,
        "tp-two-states",
        &[
            ("traceparent", &value),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ],
    )
    .await;
    assert_eq!(seen.tracestate, "a=1,b=2");
}

/// What the handler would send downstream, for one `tracestate` value (and a valid
/// `traceparent`).
async fn propagated_tracestate(
    client: &HttpClient,
    addr: SocketAddr,
    id: &str,
    tracestate: &[&str],
) -> String {
    let value = format!("00-{TRACE}-{PARENT}-01");
    let mut headers = vec![("traceparent", value.as_str())];
    headers.extend(tracestate.iter().map(|v| ("tracestate", *v)));
    let seen = request(client, addr, id, &headers).await;
    assert_eq!(seen.trace_id, TRACE, "{id}: the traceparent is valid");
    seen.tracestate
}

// Issue 7 §4: the Level 2 key grammar, `key = ( lcalpha / DIGIT ) 0*255 ( keychar )` with
// `@` among the keychars.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracestate_keys_follow_the_level_2_grammar() {
    let (client, addr) = server().await;
    let key_256 = format!("k{}", "x".repeat(255));
    let key_257 = format!("k{}", "x".repeat(256));
    let valid = [
        "foo@=1".to_owned(),
        format!("{key_256}=1"),
        "tenant@system=1,congo=2".to_owned(),
        "3tenant@1system=1".to_owned(),
        "0=1,9k@x/y*z_-=2".to_owned(),
    ];
    for (i, value) in valid.iter().enumerate() {
        let got = propagated_tracestate(&client, addr, &format!("ts-valid-{i}"), &[value]).await;
        assert_eq!(&got, value, "{value:?} is valid in Level 2");
    }
    let invalid = [
        format!("{key_257}=1"),
        "@foo=1".to_owned(),
        "@=1".to_owned(),
        "_foo=1".to_owned(),
        "Foo@bar=1".to_owned(),
        "rojo=1,@congo=2".to_owned(),
    ];
    for (i, value) in invalid.iter().enumerate() {
        let got = propagated_tracestate(&client, addr, &format!("ts-invalid-{i}"), &[value]).await;
        assert_eq!(got, "", "{value:?} is invalid: the header is dropped");
    }
}

// Issue 7 §4: a repeated key keeps its first member, and the header is still propagated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tracestate_keys_keep_the_first_member() {
    let (client, addr) = server().await;
    let cases: [(&[&str], &str); 4] = [
        (&["rojo=1,congo=2,rojo=3"], "rojo=1,congo=2"),
        (&["a=1,a=2,a=3"], "a=1"),
        // Several headers are one list (RFC 9110 field order).
        (&["a=1", "b=2,a=3"], "a=1,b=2"),
        (&["tenant@sys=1", "tenant@sys=2,x=3"], "tenant@sys=1,x=3"),
    ];
    for (i, (headers, expected)) in cases.iter().enumerate() {
        let got = propagated_tracestate(&client, addr, &format!("ts-dup-{i}"), headers).await;
        assert_eq!(got, *expected, "{headers:?}");
    }
}

/// The downstream service: continues the trace and echoes what it received, and the caller's
/// span id as it understood it.
async fn echo(headers: http::HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}|{}",
        header("traceparent"),
        header("tracestate"),
        tracing_ambient::trace_id().unwrap_or_default(),
        tracing_ambient::http::parent_span_id().unwrap_or_default(),
    )
}

// Issue 7 §4: each outgoing call gets its own parent-id, a child of the request's span with
// the same trace id and flags, and the caller is told which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outgoing_call_gets_its_own_parent_id() {
    let capture = capture();
    let callee = serve(
        Router::new()
            .route("/echo", get(echo))
            .layer(RequestContextLayer::new()),
    )
    .await;
    let caller_app = Router::new()
        .route(
            "/fan-out",
            get(move || async move {
                let client = client();
                let mut out = Vec::new();
                for call in 0..3 {
                    let mut request = http::Request::get(format!("http://{callee}/echo"))
                        .header("x-request-id", format!("fan-out-callee-{call}"))
                        .body(http_body_util::Full::default())
                        .unwrap();
                    let sent =
                        tracing_ambient::http::inject_trace_context(request.headers_mut()).unwrap();
                    tracing::info!(call, traceparent = %sent, "calling");
                    let response = client.request(request).await.unwrap();
                    let body = http_body_util::BodyExt::collect(response.into_body())
                        .await
                        .unwrap()
                        .to_bytes();
                    out.push(format!("{sent}|{}", String::from_utf8_lossy(&body)));
                }
                out.join("\n")
            }),
        )
        .layer(RequestContextLayer::new());
    let caller = serve(caller_app).await;

    for (i, flags) in ["01", "00"].iter().enumerate() {
        let id = format!("fan-out-{i}");
        let incoming = format!("00-{TRACE}-{PARENT}-{flags}");
        let reply = send(
            &client(),
            caller,
            "/fan-out",
            &[
                ("x-request-id", id.as_bytes()),
                ("traceparent", incoming.as_bytes()),
                ("tracestate", b"congo=t61rcWkgMzE"),
            ],
        )
        .await;
        // The handler's three lines and the access line.
        let lines = lines_until(&capture, |lines| of(lines, &id).len() == 4).await;
        let lines = of(&lines, &id);
        assert_eq!(lines.len(), 4, "{lines:?}");
        let request_span = lines[3].str("spanId").unwrap().to_owned();
        assert_eq!(lines[3].str("traceId"), Some(TRACE));
        assert_ne!(request_span, PARENT);

        let calls: Vec<Vec<&str>> = reply.body.lines().map(|l| l.split('|').collect()).collect();
        assert_eq!(calls.len(), 3, "{:?}", reply.body);
        let mut parent_ids = Vec::new();
        for (n, call) in calls.iter().enumerate() {
            let [sent, received, tracestate, callee_trace, callee_parent] = call[..] else {
                panic!("five fields: {call:?}");
            };
            // What the caller was told is what went on the wire.
            assert_eq!(sent, received);
            let parts: Vec<&str> = received.split('-').collect();
            assert_eq!(parts.len(), 4, "{received}");
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1], TRACE, "same trace id");
            assert_eq!(parts[3], *flags, "same flags");
            assert!(is_hex(parts[2], 16), "{received}");
            assert_ne!(
                parts[2], request_span,
                "a child, not the request's own span"
            );
            assert_ne!(parts[2], PARENT);
            assert_eq!(tracestate, "congo=t61rcWkgMzE");
            // The callee continues the trace with this call as its parent.
            assert_eq!(callee_trace, TRACE);
            assert_eq!(callee_parent, parts[2]);
            // The line the handler logged names the call it made, inside the request.
            assert_eq!(lines[n].at("call"), n);
            assert_eq!(lines[n].str("traceparent"), Some(sent));
            assert_eq!(lines[n].str("spanId"), Some(request_span.as_str()));
            parent_ids.push(parts[2].to_owned());
        }
        parent_ids.sort();
        parent_ids.dedup();
        assert_eq!(parent_ids.len(), 3, "three calls, three parent-ids");
        println!("flags {flags}: request span {request_span}, calls {parent_ids:?}");
    }
}
