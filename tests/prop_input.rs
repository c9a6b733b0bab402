//! Client input, proven by property tests (issue 19 §2): arbitrary bytes as `traceparent`,
//! `tracestate`, `x-request-id` and `grpc-timeout`, and arbitrary text reaching an SQL tag,
//! never panic and never put anything invalid on a line, in a response header or in an SQL
//! comment.
//!
//! The headers go through the real middleware, a tower service called in-process with
//! `ServiceExt::oneshot` on a current-thread runtime, logging through a `JsonLayer` to a
//! capture; the handler reads what the context then holds (trace context, deadline, SQL tag).
//! What is valid comes from the specs, written here as oracles: W3C Trace Context (Level 2)
//! for `traceparent` and `tracestate`, gRPC over HTTP/2 for `grpc-timeout`, sqlcommenter for
//! the comment; the request id's rules are the crate's own (there is no spec), from
//! `RequestId`'s docs.

#![cfg(feature = "http")]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Capture, Line};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::Value;
use tower::{Layer, ServiceExt};
use tracing_ambient::http::{RequestContextLayer, TimeoutFormat, TraceParent, TraceState};
use tracing_ambient::{sql, trace_context, Context, JsonLayer};
use tracing_subscriber::prelude::*;

// === the oracles, from the specs ===

/// HTTP's optional whitespace: a field value has none at either end (RFC 9110 §5.5).
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn hexdiglc(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A W3C `traceparent` (Trace Context §3.2), parsed by the spec's rules:
///
/// - `version "-" trace-id "-" parent-id "-" trace-flags`, every field lowercase hex
///   (HEXDIGLC): version 2 digits, trace-id 32, parent-id 16, flags 2;
/// - version `ff` is invalid;
/// - version `00` is exactly 55 characters;
/// - a higher version is parsed as version `00` from its first 55 characters, and if it is
///   longer, the 56th character must be `-` (later versions add fields after it);
/// - an all-zero trace-id or parent-id is invalid.
///
/// Returns `(trace-id, parent-id, flags)` as hex text.
fn w3c_traceparent(value: &[u8]) -> Option<(String, String, u8)> {
    let v = trim_ows(value);
    if v.len() < 55 || !v[..2].iter().all(|&b| hexdiglc(b)) || &v[..2] == b"ff" {
        return None;
    }
    if &v[..2] == b"00" && v.len() != 55 {
        return None;
    }
    if v.len() > 55 && v[55] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&v[3..35], &v[36..52], &v[53..55]);
    let dashes = v[2] == b'-' && v[35] == b'-' && v[52] == b'-';
    let hex = [trace, parent, flags]
        .iter()
        .all(|f| f.iter().all(|&b| hexdiglc(b)));
    let zero = trace.iter().all(|&b| b == b'0') || parent.iter().all(|&b| b == b'0');
    if !dashes || !hex || zero {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let flags = u8::from_str_radix(&text(flags), 16).unwrap();
    Some((text(trace), text(parent), flags))
}

/// A `tracestate` list member's key (Trace Context Level 2 §3.3.1.3.1):
/// `key = ( lcalpha / DIGIT ) 0*255 ( lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" )`.
fn w3c_key(k: &[u8]) -> bool {
    let keychar = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(b);
    (1..=256).contains(&k.len())
        && (k[0].is_ascii_lowercase() || k[0].is_ascii_digit())
        && k.iter().all(keychar)
}

/// A member's value (§3.3.1.3.2): `value = 0*255(chr) nblk-chr`, `nblk-chr = %x21-2B /
/// %x2D-3C / %x3E-7E`, `chr = %x20 / nblk-chr`.
fn w3c_value(v: &[u8]) -> bool {
    let nblk = |b: &u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    (1..=256).contains(&v.len())
        && v.iter().all(|b| *b == b' ' || nblk(b))
        && nblk(v.last().unwrap())
}

/// A `tracestate` value's members (§3.3.1.1: `list = list-member 0*31( OWS "," OWS
/// list-member )`, `list-member = (key "=" value) / OWS`), each as `(key, value)`; `None`
/// if one breaks the grammar.
fn w3c_members(value: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for member in value.split(|&b| b == b',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        let eq = member.iter().position(|&b| b == b'=')?;
        let (k, v) = (&member[..eq], &member[eq + 1..]);
        if !w3c_key(k) || !w3c_value(v) {
            return None;
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    Some(out)
}

/// Whether a `tracestate` we send is valid: members by the grammar, at most 32 of them, each
/// key once (§3.3.1.1), no empty members.
fn valid_outgoing_tracestate(value: &str) -> bool {
    let Some(members) = w3c_members(value.as_bytes()) else {
        return false;
    };
    let mut keys: Vec<&[u8]> = members.iter().map(|(k, _)| k.as_slice()).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    (1..=32).contains(&n) && keys.len() == n && !value.split(',').any(str::is_empty)
}

/// gRPC over HTTP/2: `Timeout → "grpc-timeout" TimeoutValue TimeoutUnit`, `TimeoutValue →
/// {positive integer as ASCII string of at most 8 digits}`, `TimeoutUnit → Hour "H" /
/// Minute "M" / Second "S" / Millisecond "m" / Microsecond "u" / Nanosecond "n"`. Zero is
/// taken as the reference implementations (grpc-go, grpc-java) take it: a deadline already
/// past.
fn grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A request id the middleware takes, by `RequestId`'s documented rules: 1 to 128
/// characters of `A-Z a-z 0-9 . _ : @ + / = -`.
fn allowed_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:@+/=-".contains(&b)
}

fn valid_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len()) && v.iter().all(|&b| allowed_id_byte(b))
}

/// A UUID v7 as the default `MakeRequestId` writes it: lowercase hyphenated, version 7,
/// RFC 9562 variant.
fn uuid_v7(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter()
            .enumerate()
            .all(|(i, &c)| [8, 13, 18, 23].contains(&i) || hexdiglc(c))
        && b[14] == b'7'
        && b"89ab".contains(&b[19])
}

/// An sqlcommenter comment's `key='value'` pairs, values percent-decoded; `None` unless every
/// pair is `key='value'` with keys and values of RFC 3986 unreserved characters and `%XX`
/// only, so that nothing in it can end the quote, the comment or the line.
fn sqlcommenter_pairs(comment: &str) -> Option<Vec<(String, String)>> {
    let encoded = |s: &str| {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                if i + 2 >= b.len() {
                    return false;
                }
                if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
            } else if b[i].is_ascii_alphanumeric() || b"-._~".contains(&b[i]) {
                i += 1;
            } else {
                return false;
            }
        }
        true
    };
    let decode = |s: &str| {
        let b = s.as_bytes();
        let (mut out, mut i) = (Vec::new(), 0);
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    let mut pairs = Vec::new();
    for pair in comment.split(',') {
        let (k, v) = pair.split_once("='")?;
        let v = v.strip_suffix('\'')?;
        if !encoded(k) || !encoded(v) {
            return None;
        }
        pairs.push((decode(k), decode(v)));
    }
    Some(pairs)
}

// === the middleware, in-process ===

/// What the handler saw inside the request.
#[derive(Debug, Default, Clone)]
struct Seen {
    request_id_header: Option<Vec<u8>>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    parent_span_id: Option<String>,
    deadline: Option<Instant>,
    sql: String,
}

/// One request through `RequestContextLayer` with `headers`: the response's headers, what
/// the handler saw, the lines logged, and the instants around the call.
struct Exchange {
    response: http::HeaderMap,
    seen: Seen,
    lines: Vec<Line>,
    text: String,
    before: Instant,
    after: Instant,
}

fn exchange(headers: &[(&'static str, HeaderValue)], keep_invalid: bool) -> Exchange {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(capture.clone()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            tracing::info!("handled");
            *seen.lock().unwrap() = Seen {
                request_id_header: request
                    .headers()
                    .get("x-request-id")
                    .map(|v| v.as_bytes().to_vec()),
                traceparent: trace_context::traceparent(),
                tracestate: trace_context::tracestate(),
                parent_span_id: trace_context::parent_span_id(),
                deadline: Context::current().and_then(|c| c.deadline()),
                sql: sql::tag("SELECT 1").into_owned(),
            };
            std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(
                Bytes::from_static(b"ok"),
            ))))
        })
    };
    let service = RequestContextLayer::new()
        .timeout_header(HeaderName::from_static("grpc-timeout"), TimeoutFormat::Grpc)
        .keep_invalid_request_id(keep_invalid)
        .layer(handler);
    let mut request = Request::get("/orders/42");
    for (name, value) in headers {
        request = request.header(*name, value.clone());
    }
    let request = request.body(Full::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = Instant::now();
    let response = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let response = service.oneshot(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            body.collect().await.expect("the body");
            parts.headers
        })
    });
    let after = Instant::now();
    let seen = seen.lock().unwrap().clone();
    Exchange {
        response,
        seen,
        lines: capture.lines(),
        text: capture.text(),
        before,
        after,
    }
}

impl Exchange {
    /// The handler's line and the access line, which must both be there.
    fn two_lines(&self) -> Result<(&Line, &Line), TestCaseError> {
        prop_assert_eq!(self.lines.len(), 2, "{}", self.text);
        Ok((&self.lines[0], &self.lines[1]))
    }
}

// === strategies ===

/// Bytes near a valid `traceparent`: valid ones, with one byte changed, cut, lengthened,
/// upper-cased, with spaces around, of other versions, and any bytes at all.
fn traceparent_bytes() -> impl Strategy<Value = Vec<u8>> {
    let hex =
        |n: usize| prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), n);
    let version = prop_oneof![Just(b"00".to_vec()), Just(b"ff".to_vec()), hex(2)];
    let valid = (version, hex(32), hex(16), hex(2)).prop_map(|(v, t, p, f)| {
        [v, b"-".to_vec(), t, b"-".to_vec(), p, b"-".to_vec(), f].concat()
    });
    let zeros = prop_oneof![
        Just(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_vec()),
        Just(b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".to_vec()),
    ];
    let edited =
        (valid.clone(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut v, at, b)| {
            let i = at.index(v.len());
            v[i] = b;
            v
        });
    let longer = (
        valid.clone(),
        prop::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(v, tail, dash)| {
            let sep: &[u8] = if dash { b"-" } else { b"" };
            [v, sep.to_vec(), tail].concat()
        });
    let cut = (valid.clone(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
        let n = at.index(v.len());
        v[..n].to_vec()
    });
    let upper = valid.clone().prop_map(|v| v.to_ascii_uppercase());
    let spaced = (valid.clone(), "[ \t]{0,2}", "[ \t]{0,2}")
        .prop_map(|(v, a, b)| [a.into_bytes(), v, b.into_bytes()].concat());
    prop_oneof![
        3 => valid,
        1 => zeros,
        3 => edited,
        2 => longer,
        1 => cut,
        1 => upper,
        2 => spaced,
        2 => prop::collection::vec(any::<u8>(), 0..70),
    ]
}

/// Bytes near a valid `tracestate`: members by the grammar and broken ones, repeated keys,
/// long lists, OWS and empty members, and any bytes.
fn tracestate_bytes() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        "[a-z0-9][a-z0-9_*/@-]{0,6}",
        Just("rojo".to_owned()),
        Just("congo".to_owned()),
        Just("t@v".to_owned()),
        Just("@x".to_owned()),
        Just("Rojo".to_owned()),
        "[a-z]{300}",
    ];
    let value = prop_oneof![
        "[!-+\\--<>-~][ !-+\\--<>-~]{0,6}[!-+\\--<>-~]",
        Just("00f067aa0ba902b7".to_owned()),
        Just("a b".to_owned()),
        Just("trailing ".to_owned()),
        Just(String::new()),
        Just("x=y".to_owned()),
        "[ -~]{1,4}",
        "[a]{257}",
    ];
    let member = prop_oneof![
        6 => (key, value).prop_map(|(k, v)| format!("{k}={v}").into_bytes()),
        1 => Just(Vec::new()),
        1 => Just(b" \t ".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    let list = (prop::collection::vec(member, 0..40), "[ \t]{0,2}")
        .prop_map(|(members, ows)| members.join(format!("{ows},{ows}").as_bytes()));
    prop_oneof![
        5 => list,
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// Bytes near a valid `x-request-id`.
fn request_id_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[A-Za-z0-9._:@+/=-]{1,40}".prop_map(String::into_bytes),
        // Around 44 bytes, the longest id the context keeps inline.
        1 => "[A-Za-z0-9._:@+/=-]{42,47}".prop_map(String::into_bytes),
        1 => "[A-Za-z0-9._:@+/=-]{120,140}".prop_map(String::into_bytes),
        3 => prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"az09._:@+/=-".to_vec()),
                1 => prop::sample::select(b" \t\"'*%\\;,<>{}".to_vec()),
                1 => any::<u8>(),
            ],
            0..80
        ),
        1 => Just(b"*/ DROP TABLE orders; --".to_vec()),
    ]
}

/// Bytes near a valid `grpc-timeout`.
fn grpc_timeout_bytes() -> impl Strategy<Value = Vec<u8>> {
    let unit = prop::sample::select(b"HMSmunxh ".to_vec());
    prop_oneof![
        4 => ("[0-9]{0,10}", unit).prop_map(|(d, u)| [d.into_bytes(), vec![u]].concat()),
        1 => "[ +-]?[0-9]{1,8}[HMSmun ]?".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

/// Keeps only what `http` itself accepts as a header value (a client cannot send the rest).
fn header(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

/// Checks the SQL comment the handler made: well-formed by sqlcommenter, holding exactly the
/// request id, and the traceparent and tracestate the request continues (valid by the
/// oracles above).
fn check_sql(ex: &Exchange, request_id: &str) -> Result<(), TestCaseError> {
    let sql = &ex.seen.sql;
    let comment = sql
        .strip_prefix("SELECT 1 /*")
        .and_then(|c| c.strip_suffix("*/"));
    prop_assert!(comment.is_some(), "tagged: {:?}", sql);
    let comment = comment.unwrap();
    prop_assert!(!comment.contains("*/"), "{:?}", sql);
    let pairs = sqlcommenter_pairs(comment);
    prop_assert!(pairs.is_some(), "not sqlcommenter: {:?}", sql);
    let pairs = pairs.unwrap();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    prop_assert_eq!(get("request_id"), Some(request_id));
    let tp = get("traceparent");
    prop_assert!(
        tp.is_some_and(|tp| w3c_traceparent(tp.as_bytes()).is_some()),
        "{:?}",
        sql
    );
    prop_assert_eq!(tp, ex.seen.traceparent.as_deref());
    prop_assert_eq!(get("tracestate"), ex.seen.tracestate.as_deref());
    Ok(())
}

/// Checks what every exchange must hold whatever the input: the response's id is a valid id,
/// the same on both lines and in the header the handler saw; the request's own
/// `traceparent` is valid W3C; the lines carry its trace id.
fn check_common(ex: &Exchange) -> Result<String, TestCaseError> {
    let (handled, access) = ex.two_lines()?;
    let ids: Vec<_> = ex.response.get_all("x-request-id").iter().collect();
    prop_assert_eq!(ids.len(), 1, "{:?}", ex.response);
    let id = ids[0].to_str().unwrap_or_default().to_owned();
    prop_assert!(valid_request_id(id.as_bytes()), "response id {:?}", id);
    prop_assert_eq!(handled.str("requestId"), Some(id.as_str()));
    prop_assert_eq!(access.str("requestId"), Some(id.as_str()));
    prop_assert_eq!(ex.seen.request_id_header.as_deref(), Some(id.as_bytes()));
    let own = ex.seen.traceparent.as_deref().unwrap_or_default();
    let parsed = w3c_traceparent(own.as_bytes());
    prop_assert!(
        parsed.is_some() && own.starts_with("00-"),
        "own traceparent {:?}",
        own
    );
    let (trace_id, span_id, _) = parsed.unwrap();
    for line in [handled, access] {
        prop_assert_eq!(line.str("traceId"), Some(trace_id.as_str()));
        prop_assert_eq!(line.str("spanId"), Some(span_id.as_str()));
    }
    check_sql(ex, &id)?;
    Ok(id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// `traceparent` and `tracestate` of any bytes: a valid pair is continued (its trace id
    /// on the lines, its parent id kept, its sampled flag passed on, its tracestate passed on
    /// whole); anything else starts a new trace and drops the tracestate. Whatever is sent
    /// on (`traceparent()`, `tracestate()`, the SQL comment) is valid by the spec.
    #[test]
    fn trace_context_of_any_bytes(tp in traceparent_bytes(), ts in tracestate_bytes()) {
        let mut headers = Vec::new();
        let tp_value = header(&tp);
        let ts_value = header(&ts);
        headers.extend(tp_value.clone().map(|v| ("traceparent", v)));
        headers.extend(ts_value.clone().map(|v| ("tracestate", v)));
        let ex = exchange(&headers, false);
        check_common(&ex)?;
        let (handled, _) = ex.two_lines()?;
        let own = ex.seen.traceparent.clone().unwrap();
        match tp_value.as_ref().and_then(|v| w3c_traceparent(v.as_bytes())) {
            Some((trace_id, parent_id, flags)) => {
                prop_assert_eq!(handled.str("traceId"), Some(trace_id.as_str()));
                prop_assert_eq!(ex.seen.parent_span_id.as_deref(), Some(parent_id.as_str()));
                let sampled = if flags & 1 == 1 { "-01" } else { "-00" };
                prop_assert!(own.ends_with(sampled), "{} for flags {:02x}", own, flags);
                // The tracestate: passed on when valid, members in order, OWS and empty
                // members dropped; whatever is passed on is valid.
                let members = ts_value.as_ref().and_then(|v| w3c_members(v.as_bytes()));
                match (&ex.seen.tracestate, members) {
                    (Some(sent), _) => {
                        prop_assert!(valid_outgoing_tracestate(sent), "sent {:?}", sent);
                        let input = ts_value.as_ref().unwrap().as_bytes();
                        let input = w3c_members(input);
                        prop_assert!(input.is_some(), "{:?} sent from an invalid tracestate", sent);
                        let input = input.unwrap();
                        for member in sent.split(',') {
                            let (k, v) = member.split_once('=').unwrap();
                            prop_assert!(input.contains(&(k.as_bytes().to_vec(), v.as_bytes().to_vec())),
                                "{:?} not in the request's tracestate", member);
                        }
                    }
                    (None, Some(members)) => {
                        // Dropped: only when there is nothing to keep, or more than 32
                        // distinct keys.
                        let mut keys: Vec<_> = members.iter().map(|(k, _)| k.clone()).collect();
                        keys.sort();
                        keys.dedup();
                        prop_assert!(keys.is_empty() || keys.len() > 32,
                            "a valid tracestate of {} keys dropped: {:?}", keys.len(), ts);
                    }
                    (None, None) => {}
                }
            }
            None => {
                let trace_id = handled.str("traceId").unwrap_or_default();
                if tp.len() >= 35 {
                    prop_assert_ne!(trace_id.as_bytes(), &tp[3..35], "an invalid trace id taken");
                }
                prop_assert_eq!(&ex.seen.parent_span_id, &None);
                prop_assert_eq!(&ex.seen.tracestate, &None, "tracestate kept without a valid traceparent");
                prop_assert!(own.ends_with("-01"), "a new trace is sampled: {}", own);
            }
        }
    }

    /// `x-request-id` of any bytes: a valid id is taken as it is, anything else is replaced by
    /// a UUID v7 and appears nowhere (response headers, lines, the header the handler sees,
    /// the SQL comment); kept on request, it is sanitised (first 64 bytes, each byte outside
    /// the allowed set as `_`).
    #[test]
    fn request_ids_of_any_bytes(raw in request_id_bytes(), keep in any::<bool>()) {
        let Some(value) = header(&raw) else {
            return Ok(());
        };
        let ex = exchange(&[("x-request-id", value)], keep);
        let id = check_common(&ex)?;
        let (handled, access) = ex.two_lines()?;
        if valid_request_id(&raw) {
            prop_assert_eq!(id.as_bytes(), &raw[..]);
            prop_assert_eq!(handled.get("invalidRequestId"), None);
        } else {
            prop_assert!(uuid_v7(&id), "generated id {:?}", id);
            for (_, value) in ex.response.iter() {
                prop_assert!(raw.is_empty() || value.as_bytes() != &raw[..], "echoed in {:?}", ex.response);
            }
            let sanitised: String = raw
                .iter()
                .take(64)
                .map(|&b| if allowed_id_byte(b) { b as char } else { '_' })
                .collect();
            for line in [handled, access] {
                let invalid = line.get("invalidRequestId");
                if keep && !raw.is_empty() {
                    prop_assert_eq!(invalid, Some(&Value::from(sanitised.as_str())));
                } else {
                    prop_assert_eq!(invalid, None);
                }
                // The raw value is on no line, whole or as any string value.
                let raw_text = String::from_utf8_lossy(&raw);
                for (_, v) in &line.entries {
                    if let Some(s) = v.as_str() {
                        prop_assert!(raw_text.len() < 4 || !s.contains(&*raw_text) || s == sanitised,
                            "{:?} echoed in {:?}", raw_text, line);
                    }
                }
            }
        }
    }

    /// `grpc-timeout` of any bytes: a valid one sets the request's deadline that far from
    /// when it came in; anything else sets none.
    #[test]
    fn grpc_timeouts_of_any_bytes(raw in grpc_timeout_bytes()) {
        let Some(value) = header(&raw) else {
            return Ok(());
        };
        let ex = exchange(&[("grpc-timeout", value)], false);
        check_common(&ex)?;
        match grpc_timeout(&raw) {
            Some(timeout) => {
                let deadline = ex.seen.deadline;
                prop_assert!(deadline.is_some(), "no deadline for {:?}", String::from_utf8_lossy(&raw));
                let deadline = deadline.unwrap();
                prop_assert!(ex.before + timeout <= deadline && deadline <= ex.after + timeout,
                    "{:?}: deadline not {:?} after the request", String::from_utf8_lossy(&raw), timeout);
            }
            None => prop_assert_eq!(ex.seen.deadline, None, "{:?}", String::from_utf8_lossy(&raw)),
        }
    }
}

// === the public parsers on their own ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// `TraceParent::parse` accepts exactly what the spec accepts, with the same fields.
    #[test]
    fn traceparent_parse_is_the_spec(tp in traceparent_bytes()) {
        let Ok(text) = std::str::from_utf8(&tp) else {
            // `HeaderValue`s of other bytes are covered through the middleware.
            return Ok(());
        };
        let parsed = TraceParent::parse(text).ok();
        let expected = w3c_traceparent(&tp);
        prop_assert_eq!(
            parsed.map(|p| (p.trace_id_hex(), p.parent_id_hex(), p.flags())),
            expected,
            "{:?}",
            text
        );
        if let Some(p) = parsed {
            // Always written back as version 00.
            prop_assert!(w3c_traceparent(p.to_string().as_bytes()).is_some());
            prop_assert!(p.to_string().starts_with("00-"));
        }
    }

    /// `TraceState::parse` never returns an invalid tracestate, never invents a member, and
    /// keeps every valid one.
    #[test]
    fn tracestate_parse_keeps_only_valid_members(ts in tracestate_bytes()) {
        let Ok(text) = std::str::from_utf8(&ts) else {
            return Ok(());
        };
        let members = w3c_members(&ts);
        match TraceState::parse(text) {
            Ok(kept) => {
                prop_assert!(valid_outgoing_tracestate(kept.as_str()), "{:?}", kept);
                let members = members.unwrap_or_default();
                let mut first: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for (k, v) in members {
                    if !first.iter().any(|(key, _)| *key == k) {
                        first.push((k, v));
                    }
                }
                let kept: Vec<(Vec<u8>, Vec<u8>)> = kept
                    .as_str()
                    .split(',')
                    .map(|m| {
                        let (k, v) = m.split_once('=').unwrap();
                        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
                    })
                    .collect();
                // The first member of each key, in order.
                prop_assert_eq!(kept, first, "{:?}", text);
            }
            Err(_) => {
                // Refused: a member breaks the grammar, or there is nothing to keep, or more
                // than 32 distinct keys.
                if let Some(members) = members {
                    let mut keys: Vec<_> = members.iter().map(|(k, _)| k.clone()).collect();
                    keys.sort();
                    keys.dedup();
                    prop_assert!(keys.is_empty() || keys.len() > 32, "{:?} refused", text);
                }
            }
        }
    }

    /// An SQL statement of any text, tagged in a context of any request id, trace ids and
    /// route: a statement with a comment of its own is left alone; any other gets exactly one
    /// comment, at the end (before a trailing `;`), well-formed by sqlcommenter, holding the
    /// context's values exactly, and a traceparent only when the ids make a valid one.
    #[test]
    fn sql_tags_of_any_text(
        statement in prop_oneof![
            "[ -~]{0,30}",
            "SELECT [a-z*/;' -]{0,20}[;]?[ \n]{0,2}",
            any::<String>(),
        ],
        request_id in any::<String>(),
        trace_id in prop_oneof!["[0-9a-f]{32}", "[0-9a-fA-F]{32}", any::<String>()],
        span_id in prop_oneof!["[0-9a-f]{16}", Just("0000000000000000".to_owned()), any::<String>()],
        route in any::<String>(),
    ) {
        const TAGGER: sql::Tagger = sql::Tagger::new().context_keys(&["route"]);
        let ctx = Context::new()
            .with_request_id(request_id.as_str())
            .with_trace_id(trace_id.as_str())
            .with_span_id(span_id.as_str())
            .with("route", route.as_str());
        let tagged = ctx.in_scope(|| TAGGER.tag(&statement).into_owned());
        if statement.contains("/*") || statement.contains("--") {
            prop_assert_eq!(tagged, statement);
            return Ok(());
        }
        let body = statement.trim_end();
        let (head, tail) = match body.strip_suffix(';') {
            Some(s) => (s.trim_end(), ";"),
            None => (body, ""),
        };
        let comment = tagged
            .strip_prefix(head)
            .and_then(|c| c.strip_prefix(" /*"))
            .and_then(|c| c.strip_suffix(tail))
            .and_then(|c| c.strip_suffix("*/"));
        prop_assert!(comment.is_some(), "{:?} tagged as {:?}", statement, tagged);
        let comment = comment.unwrap();
        let pairs = sqlcommenter_pairs(comment);
        prop_assert!(pairs.is_some(), "not sqlcommenter: {:?}", comment);
        let pairs = pairs.unwrap();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let valid_ids = trace_id.len() == 32 && span_id.len() == 16
            && trace_id.bytes().chain(span_id.bytes()).all(hexdiglc)
            && trace_id.bytes().any(|b| b != b'0') && span_id.bytes().any(|b| b != b'0');
        let expected_keys: Vec<&str> = if valid_ids {
            vec!["request_id", "route", "traceparent"]
        } else {
            vec!["request_id", "route"]
        };
        prop_assert_eq!(keys, expected_keys, "sorted by key");
        prop_assert_eq!(&pairs[0].1, &request_id);
        prop_assert_eq!(&pairs[1].1, &route);
        if valid_ids {
            let tp = w3c_traceparent(pairs[2].1.as_bytes());
            prop_assert_eq!(tp, Some((trace_id.clone(), span_id.clone(), 1)));
        }
    }
}
