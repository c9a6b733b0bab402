//! The hostile-header table: request ids and trace headers that must never reach a line, a
//! response header or an SQL comment raw. Sent byte for byte on a raw socket, since a
//! well-behaved client refuses most of them.
#![cfg(feature = "http")]

mod common;
mod http_support;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http::HeaderName;
use http_support::{capture, lines_until, raw, serve, valid_id};
use serde_json::Value;
use tracing_ambient::http::{DefaultOnAccess, RequestContextLayer};

async fn hostile(Path(case): Path<usize>) -> String {
    tracing::info!(case, "handled");
    format!(
        "{}\n{}\n{}",
        tracing_ambient::sql::tag("SELECT 1"),
        tracing_ambient::traceparent().unwrap_or_default(),
        tracing_ambient::tracestate().unwrap_or_default(),
    )
}

/// A response read off the socket: status, headers, body.
struct RawReply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: String,
}

fn parse_reply(bytes: &[u8]) -> RawReply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&bytes[..end]).expect("response head is ASCII");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().as_bytes().to_vec())
        })
        .collect();
    RawReply {
        status,
        headers,
        body: String::from_utf8(bytes[end + 4..].to_vec()).unwrap(),
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_never_reach_a_line_a_header_or_sql_raw() {
    let capture = capture();
    let app = Router::new()
        .route("/hostile/{case}", get(hostile))
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;

    let ten_kb = vec![b'x'; 10 * 1024];
    let mut cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("crlf injection", vec![b"abc\r\nx-injected: yes".to_vec()]),
        ("double quote", vec![b"a\"b".to_vec()]),
        ("single quote", vec![b"a'b' OR '1'='1".to_vec()]),
        ("comment end", vec![b"*/ DROP TABLE users; --".to_vec()]),
        ("sql line comment", vec![b"1 -- x".to_vec()]),
        ("ten kilobytes", vec![ten_kb]),
        ("129 chars", vec![vec![b'a'; 129]]),
        ("utf-8", vec!["caf\u{e9}-\u{1f600}".as_bytes().to_vec()]),
        ("obs-text", vec![b"\xff\xfe".to_vec()]),
        ("empty", vec![Vec::new()]),
        ("spaces", vec![b"a b".to_vec()]),
        ("json breakout", vec![br#"x","userId":"admin"#.to_vec()]),
        ("tab and control", vec![b"a\tb\x01".to_vec()]),
        ("bare lf", vec![b"a\nb".to_vec()]),
        ("bare cr", vec![b"a\rb".to_vec()]),
    ];
    // Values the HTTP parser itself refuses (400) before any middleware runs.
    let refusable = ["tab and control", "bare lf", "bare cr"];
    let many: Vec<Vec<u8>> = (0..30).map(|i| format!("dup-{i}").into_bytes()).collect();
    cases.push(("many duplicates", many));

    for (case, (name, values)) in cases.iter().enumerate() {
        let mut head = format!("GET /hostile/{case} HTTP/1.1\r\nhost: localhost\r\n").into_bytes();
        for value in values {
            for header in ["x-request-id", "traceparent", "tracestate"] {
                head.extend_from_slice(header.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value);
                head.extend_from_slice(b"\r\n");
            }
        }
        let reply = parse_reply(&raw(addr, &head).await);

        if reply.status == 400 && refusable.contains(name) {
            let lines = capture.lines();
            let path = format!("/hostile/{case}");
            assert!(
                lines.iter().all(|l| l.str("path") != Some(path.as_str())),
                "{name}"
            );
            continue;
        }
        // The only value a header can split into is the part before the CRLF, which is
        // valid and taken; everything else is replaced.
        assert_eq!(reply.status, 200, "{name}");
        assert!(
            reply.headers.iter().all(|(n, _)| n != "x-injected"),
            "{name}"
        );
        let id = reply
            .headers
            .iter()
            .find(|(n, _)| n == "x-request-id")
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .unwrap_or_else(|| panic!("{name}: no x-request-id"));
        assert!(valid_id(&id), "{name}: {id:?}");
        if *name == "crlf injection" {
            assert_eq!(id, "abc");
        } else {
            assert_eq!(id.len(), 36, "{name}: a generated UUID, not {id:?}");
        }

        let mut body = reply.body.split('\n');
        let (sql, traceparent, tracestate) = (
            body.next().unwrap(),
            body.next().unwrap(),
            body.next().unwrap(),
        );
        assert_eq!(
            tracestate, "",
            "{name}: an invalid traceparent drops tracestate"
        );
        assert_eq!(
            sql,
            format!("SELECT 1 /*request_id='{id}',traceparent='{traceparent}'*/"),
            "{name}"
        );

        let lines = lines_until(&capture, |lines| {
            lines
                .iter()
                .filter(|l| l.str("requestId") == Some(id.as_str()))
                .count()
                == 2
        })
        .await;
        let mine: Vec<_> = lines
            .iter()
            .filter(|l| l.str("requestId") == Some(id.as_str()))
            .collect();
        assert_eq!(mine.len(), 2, "{name}");
        assert_eq!(mine[0].at("case"), case);
        assert_eq!(
            mine[1].str("path"),
            Some(format!("/hostile/{case}").as_str())
        );
        let trace_id = mine[0].str("traceId").unwrap();
        assert_eq!(
            traceparent,
            format!("00-{trace_id}-{}-01", mine[0].str("spanId").unwrap())
        );

        for value in values.iter().filter(|v| v.len() > 2) {
            let needle = String::from_utf8_lossy(value);
            for line in &lines {
                let mut all = Vec::new();
                for (key, value) in &line.entries {
                    all.push(key.clone());
                    strings(value, &mut all);
                }
                assert!(
                    all.iter().all(|s| !s.contains(needle.as_ref())),
                    "{name}: {line:?}"
                );
            }
            assert!(!reply.body.contains(needle.as_ref()), "{name}");
        }
    }
}

/// Sends `head` with an invalid `x-request-id` to a server with `layer` and returns the lines of
/// that request (a handler line and the access line), after checking there are two of them
/// and that they carry a generated id, not the client's value.
async fn lines_of_invalid_id(layer: RequestContextLayer, head: &[u8]) -> Vec<common::Line> {
    let capture = capture();
    let app = Router::new()
        .route("/hostile/{case}", get(hostile))
        .layer(layer);
    let addr = serve(app).await;
    let reply = parse_reply(&raw(addr, head).await);
    assert_eq!(reply.status, 200);
    let id = reply
        .headers
        .iter()
        .find(|(n, _)| n == "x-request-id")
        .map(|(_, v)| String::from_utf8(v.clone()).expect("a valid id is ASCII"))
        .expect("the response has an x-request-id");
    assert_eq!(id.len(), 36, "a generated UUID, not {id:?}");
    let lines = lines_until(&capture, |lines| http_support::of(lines, &id).len() == 2).await;
    let mine = http_support::of(&lines, &id);
    assert_eq!(mine.len(), 2, "{mine:#?}");
    assert_eq!(mine[0].at("message"), "handled");
    assert_eq!(mine[1].at("message"), "request completed");
    mine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_id_is_kept_sanitised_only_when_asked() {
    let head =
        b"GET /hostile/900 HTTP/1.1\r\nhost: localhost\r\nx-request-id: */ \"evil\" \xff\r\n";
    // The first 64 bytes, each byte outside `A-Z a-z 0-9 . _ : @ + / = -` replaced by `_`
    // (RequestContextLayer::keep_invalid_request_id), under `invalidRequestId`.
    let sanitised = "_/__evil___";

    let asked = RequestContextLayer::new().keep_invalid_request_id(true);
    let mine = lines_of_invalid_id(asked, head).await;
    for line in &mine {
        assert_eq!(line.str("invalidRequestId"), Some(sanitised), "{line:?}");
    }
    eprintln!("invalid id, asked: 2 of 2 lines carry invalidRequestId={sanitised:?}");

    // Off by default: neither the key nor the sanitised value appears anywhere.
    for layer in [
        RequestContextLayer::new(),
        RequestContextLayer::new().keep_invalid_request_id(false),
    ] {
        let mine = lines_of_invalid_id(layer, head).await;
        for line in &mine {
            let mut all = Vec::new();
            for (key, value) in &line.entries {
                all.push(key.clone());
                strings(value, &mut all);
            }
            assert!(
                all.iter()
                    .all(|s| !s.contains("nvalid") && !s.contains("evil")),
                "{line:?}"
            );
        }
    }
    eprintln!("invalid id, not asked: 2 x 2 lines, none with invalidRequestId");
}

/// The headers [`DefaultOnAccess::request_header`] refuses, as its docs list them, and the key
/// each would be written under (`header_<name>` in camel case).
const SECRET_HEADERS: [(&str, &str); 4] = [
    ("authorization", "headerAuthorization"),
    ("proxy-authorization", "headerProxyAuthorization"),
    ("cookie", "headerCookie"),
    ("set-cookie", "headerSetCookie"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_headers_never_reach_the_access_line_even_when_named() {
    let capture = capture();
    let mut on_access = DefaultOnAccess::new();
    for (name, _) in SECRET_HEADERS {
        on_access = on_access.request_header(HeaderName::from_static(name));
    }
    let on_access = on_access.request_header(http::header::USER_AGENT);
    let app = Router::new()
        .route("/secret", get(|| async { "ok" }))
        .layer(RequestContextLayer::new().on_access(on_access));
    let addr = serve(app).await;

    let mut head =
        b"GET /secret HTTP/1.1\r\nhost: localhost\r\nx-request-id: secret-1\r\n".to_vec();
    head.extend_from_slice(b"user-agent: agent/1\r\n");
    for (name, _) in SECRET_HEADERS {
        head.extend_from_slice(format!("{name}: s3cret-{name}\r\n").as_bytes());
    }
    let reply = parse_reply(&raw(addr, &head).await);
    assert_eq!(reply.status, 200);

    let lines = lines_until(&capture, |lines| {
        http_support::of(lines, "secret-1").len() == 1
    })
    .await;
    let mine = http_support::of(&lines, "secret-1");
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let access = &mine[0];
    assert_eq!(access.at("target"), "access");
    // The named header that is not secret is there, so the secret ones were not lost by chance.
    assert_eq!(access.str("headerUserAgent"), Some("agent/1"), "{access:?}");
    for (name, key) in SECRET_HEADERS {
        assert!(access.get(key).is_none(), "{name}: {access:?}");
    }
    let mut all = Vec::new();
    for (key, value) in &access.entries {
        all.push(key.clone());
        strings(value, &mut all);
    }
    assert!(all.iter().all(|s| !s.contains("s3cret")), "{access:?}");
    eprintln!(
        "secret headers: {} named, none on the access line of {} keys",
        SECRET_HEADERS.len(),
        access.entries.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_of_a_named_header_is_printable_on_the_line() {
    let capture = capture();
    let on_access = DefaultOnAccess::new().request_header(http::header::USER_AGENT);
    let app = Router::new()
        .route("/byte/{b}", get(|| async { "ok" }))
        .layer(RequestContextLayer::new().on_access(on_access));
    let addr = serve(app).await;

    // RFC 9110 5.5: a field value is made of VCHAR, obs-text, SP and HTAB.
    let valid_on_the_wire = |b: u8| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
    let mut written = Vec::new();
    for b in 0..=255u8 {
        let mut head =
            format!("GET /byte/{b} HTTP/1.1\r\nhost: localhost\r\nx-request-id: byte-{b}\r\n")
                .into_bytes();
        head.extend_from_slice(b"user-agent: a");
        head.push(b);
        head.extend_from_slice(b"z\r\n");
        let reply = parse_reply(&raw(addr, &head).await);
        if valid_on_the_wire(b) {
            assert_eq!(reply.status, 200, "byte {b:#04x}");
            written.push(b);
        } else {
            // Refused by the HTTP parser before any middleware runs: no line at all.
            assert_eq!(reply.status, 400, "byte {b:#04x}");
        }
    }
    // 1 HTAB + 95 from SP to `~` + 128 of obs-text.
    assert_eq!(written.len(), 224);

    let lines = lines_until(&capture, |lines| {
        lines
            .iter()
            .filter(|l| l.str("requestId").is_some_and(|id| id.starts_with("byte-")))
            .count()
            == written.len()
    })
    .await;
    for b in 0..=255u8 {
        let mine = http_support::of(&lines, &format!("byte-{b}"));
        if !written.contains(&b) {
            assert!(mine.is_empty(), "byte {b:#04x}: {mine:?}");
            continue;
        }
        assert_eq!(mine.len(), 1, "byte {b:#04x}: {mine:?}");
        // Printable ASCII (SP to `~`) is kept; HTAB and obs-text become `_`.
        let expected = match b {
            0x20..=0x7e => format!("a{}z", b as char),
            _ => "a_z".to_owned(),
        };
        assert_eq!(
            mine[0].str("headerUserAgent"),
            Some(expected.as_str()),
            "byte {b:#04x}"
        );
    }
    eprintln!(
        "header bytes: {} of 256 reached the access line, all printable; {} refused with 400",
        written.len(),
        256 - written.len()
    );
}
