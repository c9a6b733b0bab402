//! The per-request debug buffer (issue 18, part 2), under `init()` in a real process: the
//! test binary runs itself as a child with `init()` installed (`RUST_LOG` unset: `info`) and
//! reads the child's stdout, every line parsed.

mod common;
mod writer_support;

use std::time::Duration;

use common::Line;
use tracing::{debug, error, info, Level};
use tracing_ambient::Context;
use writer_support::{is_child, json_child_lines, json_child_stdout};

/// Lines in the burst of `a_burst_is_bounded_and_every_line_accounted_for`.
const BURST: u64 = 100_000;

// === flushed before an error, never without one ===

#[test]
fn child_error_and_no_error() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    Context::new()
        .with_request_id("failed")
        .buffer(Level::DEBUG)
        .in_scope(|| {
            debug!(step = 1, "held 1");
            info!("written at once");
            debug!(step = 2, "held 2");
            tracing_ambient::set("phase", "charge");
            debug!(step = 3, "held 3");
            tracing::trace!("below the buffer's level");
            // Any line formatted at the flush would be stamped after this.
            std::thread::sleep(Duration::from_millis(20));
            error!("payment failed");
            debug!(step = 4, "held after the error");
            error!("second error");
        });
    Context::new()
        .with_request_id("fine")
        .buffer(Level::DEBUG)
        .in_scope(|| {
            debug!(step = 1, "held, never written");
            info!("fine request");
        });
    Context::new()
        .with_request_id("flushed")
        .buffer(Level::DEBUG)
        .in_scope(|| {
            debug!("held until flush_buffer");
            tracing_ambient::flush_buffer();
            debug!("held after the flush, never written");
        });
    debug!("outside any context");
    drop(guard);
}

#[test]
fn held_lines_are_written_before_the_error_in_order_and_never_without_one() {
    let lines = json_child_lines("child_error_and_no_error");
    let summary: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l.str("requestId").unwrap(),
                l.str("level").unwrap(),
                l.str("message").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("failed", "info", "written at once"),
            ("failed", "debug", "held 1"),
            ("failed", "debug", "held 2"),
            ("failed", "debug", "held 3"),
            ("failed", "error", "payment failed"),
            ("failed", "debug", "held after the error"),
            ("failed", "error", "second error"),
            ("fine", "info", "fine request"),
            ("flushed", "debug", "held until flush_buffer"),
        ]
    );
    // The context as it was when each line was logged.
    let phases: Vec<Option<&str>> = lines[..5].iter().map(|l| l.str("phase")).collect();
    assert_eq!(phases, [None, None, None, Some("charge"), Some("charge")]);
    // Each held line keeps its own timestamp, earlier than the error that flushed it.
    let stamp = |l: &Line| l.str("timestamp").unwrap().to_owned();
    let error_at = stamp(&lines[4]);
    for held in &lines[1..4] {
        assert!(stamp(held) < error_at, "{held:?} vs {error_at}");
    }
    assert!(stamp(&lines[1]) <= stamp(&lines[2]) && stamp(&lines[2]) <= stamp(&lines[3]));
}

// === the bound ===

#[test]
fn child_burst() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    Context::new()
        .with_request_id("burst")
        .buffer(Level::DEBUG)
        .in_scope(|| {
            for n in 0..BURST {
                debug!(n, "burst line");
            }
            error!("after the burst");
        });
    Context::new()
        .with_request_id("small")
        .buffer(Level::DEBUG)
        .with_buffer_limit(1_000)
        .in_scope(|| {
            for n in 0..100u64 {
                debug!(n, "small line");
            }
            tracing_ambient::flush_buffer();
        });
    drop(guard);
}

#[test]
fn a_burst_is_bounded_and_every_line_accounted_for() {
    let stdout = json_child_stdout("child_burst");
    let lines = writer_support::log_lines(stdout.as_bytes());
    assert!(lines
        .iter()
        .all(|l| l.str("message") != Some("log lines dropped")));
    for (id, message, logged, limit) in [
        (
            "burst",
            "burst line",
            BURST,
            tracing_ambient::DEFAULT_BUFFER_LIMIT,
        ),
        ("small", "small line", 100, 1_000),
    ] {
        let ours: Vec<&Line> = lines
            .iter()
            .filter(|l| l.str("requestId") == Some(id))
            .collect();
        let written: Vec<u64> = ours
            .iter()
            .filter(|l| l.str("message") == Some(message))
            .map(|l| l.at("n").as_u64().unwrap())
            .collect();
        let reports: Vec<&&Line> = ours
            .iter()
            .filter(|l| l.str("message") == Some("buffered lines dropped"))
            .collect();
        assert_eq!(reports.len(), 1, "{id}: one report");
        assert_eq!(reports[0].str("level"), Some("warn"));
        let dropped = reports[0].at("dropped").as_u64().expect("a number");
        assert!(
            !written.is_empty() && dropped > 0,
            "{id}: {}",
            written.len()
        );
        assert_eq!(written.len() as u64 + dropped, logged, "{id}");
        // The first lines are kept, in order.
        assert_eq!(written, (0..written.len() as u64).collect::<Vec<_>>());
        // Within the limit: the bytes of the held lines.
        let bytes: usize = stdout
            .lines()
            .filter_map(|l| l.find('{').map(|i| &l[i..]))
            .filter(|raw| {
                let line = common::parse_line(raw);
                line.str("requestId") == Some(id) && line.str("message") == Some(message)
            })
            .map(|raw| raw.len() + 1)
            .sum();
        assert!(bytes <= limit, "{id}: {bytes} > {limit}");
    }
    // The report follows the held lines, before the error that flushed them.
    let at = |message: &str| {
        lines
            .iter()
            .position(|l| l.str("message") == Some(message))
            .unwrap()
    };
    assert!(at("buffered lines dropped") < at("after the burst"));
}

// === the middleware ===

#[cfg(feature = "http")]
mod http {
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tracing::{debug, info, Level};
    use tracing_ambient::http::RequestContextLayer;

    use super::*;

    async fn fails() -> StatusCode {
        debug!("looked up the order");
        info!("charging");
        debug!("charge refused");
        StatusCode::SERVICE_UNAVAILABLE
    }

    async fn works() -> &'static str {
        debug!("looked up the order");
        info!("charging");
        "ok"
    }

    #[test]
    fn child_http() {
        if !is_child() {
            return;
        }
        let guard = tracing_ambient::init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // With the access line (an error line for a 5xx, which flushes too) and without
            // it: the 5xx alone flushes.
            for (access_line, suffix) in [(true, ""), (false, "-quiet")] {
                let app = Router::new()
                    .route("/fails", get(fails))
                    .route("/works", get(works))
                    .layer(
                        RequestContextLayer::new()
                            .with_access_line(access_line)
                            .buffer(Level::DEBUG, tracing_ambient::DEFAULT_BUFFER_LIMIT),
                    );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
                for (path, status) in [("/fails", 503), ("/works", 200)] {
                    let request = ::http::Request::get(format!("http://{addr}{path}"))
                        .header("x-request-id", format!("{}{suffix}", &path[1..]))
                        .body(Full::default())
                        .unwrap();
                    let response = client.request(request).await.unwrap();
                    assert_eq!(response.status(), status);
                    response.into_body().collect().await.unwrap();
                }
            }
            // The access line of the last request is written when its body ends.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        drop(guard);
    }

    #[test]
    fn a_5xx_flushes_its_request_and_a_200_does_not() {
        let lines = json_child_lines("http::child_http");
        // Each request's lines in the order written (requests of two servers may interleave).
        let mut per_request: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        for line in &lines {
            let message = if line.str("target") == Some("access") {
                "access"
            } else {
                line.str("message").unwrap()
            };
            let id = line.str("requestId").unwrap();
            let entry = (line.str("level").unwrap(), message);
            match per_request.iter_mut().find(|(known, _)| *known == id) {
                Some((_, entries)) => entries.push(entry),
                None => per_request.push((id, vec![entry])),
            }
        }
        per_request.sort_by_key(|(id, _)| *id);
        let flushed = vec![
            ("info", "charging"),
            ("debug", "looked up the order"),
            ("debug", "charge refused"),
        ];
        let mut flushed_then_access = flushed.clone();
        flushed_then_access.push(("error", "access"));
        assert_eq!(
            per_request,
            [
                ("fails", flushed_then_access),
                ("fails-quiet", flushed),
                ("works", vec![("info", "charging"), ("info", "access")]),
                ("works-quiet", vec![("info", "charging")]),
            ]
        );
    }
}
