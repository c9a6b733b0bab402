//! Deadlines and elapsed time end to end (issue 11.2): on real tokio runtimes with real time
//! passing, carried by `spawn`, `in_current_context`, spans, threads and the serde payload;
//! `within_deadline` timing out; the middleware's timeout header (milliseconds and
//! `grpc-timeout`) on a real axum server with a real client; `elapsedMs` on parsed lines.

mod common;
#[cfg(feature = "http")]
mod http_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::Instrument;
use tracing_ambient::{within_deadline, Context, DeadlineExceeded, InCurrentContext, JsonLayer};
use tracing_subscriber::prelude::*;

use common::{Capture, Line};

/// One global subscriber per test binary (tokio worker threads need a global one), writing
/// `elapsedMs` on every line with a context.
fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(JsonLayer::new(capture.clone()).with_elapsed(true))
                .init();
            capture
        })
        .clone()
}

/// The lines whose `requestId` is `id`.
fn of(lines: &[Line], id: &str) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l.str("requestId") == Some(id))
        .cloned()
        .collect()
}

fn lines_of(capture: &Capture, id: &str) -> Vec<Line> {
    of(&capture.lines(), id)
}

fn elapsed_ms(line: &Line) -> f64 {
    let value = line.at("elapsedMs");
    assert!(value.is_f64(), "elapsedMs is always a float: {value}");
    value.as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_carry_the_time_since_the_context_was_made() {
    let capture = capture();
    let ctx = Context::new().with_request_id("elapsed-1");
    ctx.clone()
        .scope(async {
            tracing::info!("first");
            tokio::time::sleep(Duration::from_millis(30)).await;
            tracing::info!("second");
            let elapsed = tracing_ambient::elapsed().expect("a context is current");
            assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
        })
        .await;
    tracing::info!(marker = "elapsed-1", "no context");

    let lines = lines_of(&capture, "elapsed-1");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (first, second) = (elapsed_ms(&lines[0]), elapsed_ms(&lines[1]));
    eprintln!("elapsedMs: first {first}, second {second}");
    assert!(first >= 0.0, "first line: {first}");
    assert!(
        second - first >= 30.0,
        "30 ms slept between the lines: {first} → {second}"
    );
    assert!(second <= ctx.elapsed().as_secs_f64() * 1000.0);
    // Right after the context keys, before the target.
    let keys = lines[1].keys();
    let at = keys.iter().position(|k| *k == "elapsedMs").unwrap();
    assert_eq!((keys[at - 1], keys[at + 1]), ("requestId", "target"));

    let without: Vec<Line> = capture
        .lines()
        .into_iter()
        .filter(|l| l.str("marker") == Some("elapsed-1"))
        .collect();
    assert_eq!(without.len(), 1);
    assert!(without[0].get("elapsedMs").is_none(), "{without:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_travels_with_the_context() {
    // The global subscriber: without one the span below is disabled and carries nothing,
    // whichever test of this file happens to run first.
    let _ = capture();
    let ctx = Context::new()
        .with_request_id("travel-1")
        .with_timeout(Duration::from_secs(30));
    let expected = ctx.deadline().expect("a deadline was set");
    let (spawned, carried, blocking, thread, span, lost) = ctx
        .scope(async {
            let spawned = tracing_ambient::spawn(async { tracing_ambient::deadline() });
            let carried = tokio::spawn(async { tracing_ambient::deadline() }.in_current_context());
            let blocking = tracing_ambient::spawn_blocking(tracing_ambient::deadline);
            let current = Context::current();
            let thread = std::thread::spawn(move || {
                current.map(|ctx| ctx.in_scope(tracing_ambient::deadline))
            });
            // A span made in the request brings the deadline back where no scope is active.
            let span = tracing::info_span!("work");
            let in_span = tokio::spawn(async { tracing_ambient::deadline() }.instrument(span));
            // Plain `tokio::spawn` loses the context, and with it the deadline.
            let lost = tokio::spawn(async { tracing_ambient::deadline() });
            (
                spawned.await.unwrap(),
                carried.await.unwrap(),
                blocking.await.unwrap(),
                thread.join().unwrap().flatten(),
                in_span.await.unwrap(),
                lost.await.unwrap(),
            )
        })
        .await;
    assert_eq!(spawned, Some(expected), "spawn");
    assert_eq!(carried, Some(expected), "in_current_context");
    assert_eq!(blocking, Some(expected), "spawn_blocking");
    assert_eq!(thread, Some(expected), "a thread of its own");
    assert_eq!(span, Some(expected), "a span");
    assert_eq!(lost, None, "plain tokio::spawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_deadline_ends_a_future_when_the_deadline_passes() {
    let ctx = Context::new()
        .with_request_id("bounded-1")
        .with_timeout(Duration::from_millis(50));
    let start = Instant::now();
    let (quick, slow, spawned) = ctx
        .scope(async {
            let quick = within_deadline(async { 7 }).await;
            let spawned = tracing_ambient::spawn(within_deadline(tokio::time::sleep(
                Duration::from_secs(30),
            )));
            let slow = within_deadline(tokio::time::sleep(Duration::from_secs(30))).await;
            (quick, slow, spawned.await.unwrap())
        })
        .await;
    let took = start.elapsed();
    eprintln!("a 30 s sleep under a 50 ms deadline ended after {took:?}");
    assert_eq!(quick, Ok(7));
    assert!(matches!(slow, Err(DeadlineExceeded { .. })), "{slow:?}");
    assert!(spawned.is_err(), "the spawned task is bounded too");
    assert!(
        took >= Duration::from_millis(50),
        "not before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "at the deadline, not after 30 s: {took:?}"
    );
    assert_eq!(
        std::io::Error::from(slow.unwrap_err()).kind(),
        std::io::ErrorKind::TimedOut
    );

    // A deadline that has passed: the future is not even polled.
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let passed = Context::new()
        .with_timeout(Duration::ZERO)
        .scope(within_deadline(async move {
            flag.store(true, Ordering::SeqCst)
        }))
        .await;
    assert!(passed.is_err());
    assert!(
        !polled.load(Ordering::SeqCst),
        "work past the deadline is not started"
    );

    // No context, or a context without a deadline: unbounded.
    let alone = within_deadline(tokio::time::sleep(Duration::from_millis(20))).await;
    assert_eq!(alone, Ok(()));
    let no_deadline = Context::new()
        .scope(within_deadline(tokio::time::sleep(Duration::from_millis(
            20,
        ))))
        .await;
    assert_eq!(no_deadline, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_carries_the_remaining_time() {
    let ctx = Context::new()
        .with_request_id("job-7")
        .with_timeout(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = serde_json::to_string(&ctx).unwrap();
    let payload: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ms = payload["$remainingMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("an integer of milliseconds: {text}"));
    eprintln!("payload: {text}");
    assert!(
        (5_000..=9_900).contains(&ms),
        "10 s less the 100 ms slept: {ms}"
    );
    assert_eq!(payload["request_id"], "job-7");

    // The receiver's deadline is that long after it reads the payload.
    let before = Instant::now();
    let job: Context = serde_json::from_str(&text).unwrap();
    let deadline = job.deadline().expect("the deadline rode along");
    assert!(deadline >= before + Duration::from_millis(ms));
    assert!(deadline <= Instant::now() + Duration::from_millis(ms));
    assert!(
        job.elapsed() < Duration::from_secs(1),
        "elapsed restarts in the receiver"
    );

    // A short one still bounds work in the receiver.
    let short: Context =
        serde_json::from_str(r#"{"request_id":"job-8","$remainingMs":30}"#).unwrap();
    let start = Instant::now();
    let result = short
        .scope(within_deadline(tokio::time::sleep(Duration::from_secs(30))))
        .await;
    assert!(result.is_err());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // A hostile one neither panics nor bounds anything.
    let huge: Context =
        serde_json::from_str(r#"{"request_id":"job-9","$remainingMs":18446744073709551615}"#)
            .unwrap();
    let result = huge
        .scope(within_deadline(tokio::time::sleep(Duration::from_millis(
            20,
        ))))
        .await;
    assert_eq!(result, Ok(()));
}

/// The middleware's timeouts, on a real axum server with a real client.
#[cfg(feature = "http")]
mod middleware {
    use std::net::SocketAddr;

    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use http::HeaderName;
    use tracing_ambient::http::{RequestContextLayer, TimeoutFormat};

    use super::*;
    use crate::http_support::{client, get as http_get, lines_until, serve};

    /// A handler that reports the time left and logs a line, and one bounded by the deadline.
    fn app(layer: RequestContextLayer) -> Router {
        async fn left() -> String {
            tracing::info!("handling");
            match tracing_ambient::remaining() {
                Some(left) => left.as_millis().to_string(),
                None => "none".to_owned(),
            }
        }
        async fn slow() -> Result<&'static str, StatusCode> {
            let work = async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "done"
            };
            match within_deadline(work).await {
                Ok(body) => Ok(body),
                Err(_) => {
                    tracing::warn!("gave up at the deadline");
                    Err(StatusCode::GATEWAY_TIMEOUT)
                }
            }
        }
        Router::new()
            .route("/left", get(left))
            .route("/slow", get(slow))
            .layer(layer)
    }

    /// A request id, the timeout header sent, and the range the milliseconds left must be in.
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, u64, u64);

    async fn left_ms(addr: SocketAddr, id: &str, header: Option<(&str, &str)>) -> Option<u64> {
        let mut headers: Vec<(&str, &[u8])> = vec![("x-request-id", id.as_bytes())];
        if let Some((name, value)) = header {
            headers.push((name, value.as_bytes()));
        }
        let reply = http_get(&client(), addr, "/left", &headers).await;
        assert_eq!(reply.status, StatusCode::OK);
        match reply.body.as_str() {
            "none" => None,
            ms => Some(ms.parse().unwrap_or_else(|_| panic!("a number: {ms:?}"))),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_middleware_takes_a_millisecond_timeout_header() {
        let capture = capture();
        let layer = RequestContextLayer::new()
            .timeout(Duration::from_secs(10))
            .timeout_header(
                HeaderName::from_static("x-timeout-ms"),
                TimeoutFormat::Millis,
            );
        let addr = serve(app(layer)).await;
        let header = |value| Some(("x-timeout-ms", value));

        let table: [Case; 5] = [
            ("ms-1", header("1500"), 1_000, 1_500),
            // A client cannot lengthen the server's 10 s.
            ("ms-2", header("3600000"), 9_000, 10_000),
            ("ms-3", None, 9_000, 10_000),
            ("ms-4", header("1.5"), 9_000, 10_000),
            ("ms-5", header("-20"), 9_000, 10_000),
        ];
        for (id, header, low, high) in table {
            let left = left_ms(addr, id, header).await.expect("a deadline");
            eprintln!("{id} {header:?}: {left} ms left");
            assert!((low..=high).contains(&left), "{id} {header:?}: {left}");
        }

        // The deadline ends the slow handler's work: 504 after about 100 ms, not 30 s.
        let start = Instant::now();
        let reply = http_get(
            &client(),
            addr,
            "/slow",
            &[("x-request-id", b"ms-slow"), ("x-timeout-ms", b"100")],
        )
        .await;
        let took = start.elapsed();
        eprintln!(
            "/slow with x-timeout-ms: 100 answered {} after {took:?}",
            reply.status
        );
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_secs(5),
            "{took:?}"
        );

        let lines = lines_until(&capture, |lines| of(lines, "ms-slow").len() == 2).await;
        let slow = of(&lines, "ms-slow");
        assert_eq!(slow.len(), 2, "{slow:?}");
        assert_eq!(slow[0].str("message"), Some("gave up at the deadline"));
        assert!(elapsed_ms(&slow[0]) >= 100.0, "{:?}", slow[0]);
        assert_eq!(slow[1].str("target"), Some("access"));
        assert_eq!(slow[1].at("status"), 504);
        let handled = of(&lines, "ms-1");
        assert_eq!(
            handled.len(),
            2,
            "the handler's line and the access line: {handled:?}"
        );
        // The deadline itself is never a key on a line.
        for line in &lines {
            for key in line.keys() {
                let key = key.to_ascii_lowercase();
                assert!(
                    !key.contains("deadline") && !key.contains("remaining"),
                    "{line:?}"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_middleware_takes_a_grpc_timeout_header() {
        let _capture = capture();
        let layer = RequestContextLayer::new()
            .timeout(Duration::from_secs(10))
            .timeout_header(HeaderName::from_static("grpc-timeout"), TimeoutFormat::Grpc);
        let addr = serve(app(layer)).await;
        let header = |value| Some(("grpc-timeout", value));

        let table: [Case; 8] = [
            ("grpc-1", header("2S"), 1_500, 2_000),
            ("grpc-2", header("1500m"), 1_000, 1_500),
            ("grpc-3", header("900000u"), 400, 900),
            ("grpc-4", header("50000000n"), 0, 50),
            ("grpc-5", header("1H"), 9_000, 10_000),
            ("grpc-6", header("1M"), 9_000, 10_000),
            // No unit, an unknown unit, nine digits: ignored, the layer's timeout holds.
            ("grpc-7", header("10"), 9_000, 10_000),
            ("grpc-8", header("123456789m"), 9_000, 10_000),
        ];
        for (id, header, low, high) in table {
            let left = left_ms(addr, id, header).await.expect("a deadline");
            eprintln!("{id} {header:?}: {left} ms left");
            assert!((low..=high).contains(&left), "{id} {header:?}: {left}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_middleware_sets_no_deadline_unless_asked() {
        let _capture = capture();
        let addr = serve(app(RequestContextLayer::new())).await;
        let left = left_ms(addr, "off-1", Some(("grpc-timeout", "1S"))).await;
        assert_eq!(left, None, "no timeout header is read by default");
        let left = left_ms(addr, "off-2", Some(("x-timeout-ms", "100"))).await;
        assert_eq!(left, None);
    }
}
