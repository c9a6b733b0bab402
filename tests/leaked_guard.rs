//! A span guard leaked with `mem::forget(span.enter())` inside a request leaves that span
//! entered on a worker thread for good. Requests served later on that thread, and tasks
//! without a context, still carry their own context or none: the leaked span never brings its
//! request back (issue 13).
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http_support::{capture, client, lines_until, serve, HttpClient};
use tracing::{info, info_span, Instrument};
use tracing_ambient::http::RequestContextLayer;

/// Requests that leak a guard, in each of two waves.
const LEAKS: usize = 8;
/// Requests that log from spans and tasks, in the second wave, with the second half of leaks.
const WORK: usize = 40;
/// Tasks without a context, logging while the requests run.
const BACKGROUND: usize = 4;
/// Lines each background task writes at least after the first guards leaked.
const AFTER_LEAK: usize = 20;

/// The worker thread the handler runs on.
fn thread() -> String {
    format!("{:?}", std::thread::current().id())
}

/// Enters a span of this request and never exits it, then logs on.
async fn leak(Path(n): Path<usize>) -> String {
    let span = info_span!("leaky", n);
    std::mem::forget(span.enter());
    let thread = thread();
    info!(n, "guard leaked");
    tokio::task::yield_now().await;
    info!(n, "after the leak");
    thread
}

/// Logs from the handler, a child span (instrumented and `in_scope`), a task the context is
/// carried to, and after a late `set_user_id`.
async fn work(Path(n): Path<usize>) -> String {
    let thread = thread();
    info!(n, "start");
    let child = info_span!("child", n);
    async {
        tokio::task::yield_now().await;
        info!(n, "in child span");
    }
    .instrument(child.clone())
    .await;
    child.in_scope(|| info!(n, "child in_scope"));
    tracing_ambient::spawn(async move { info!(n, "spawned") })
        .await
        .expect("the task does not panic");
    tracing_ambient::set_user_id(n as u64);
    info!(n, "end");
    thread
}

/// A task without a context, on the same runtime as the server: it logs until the requests
/// are done and it has logged [`AFTER_LEAK`] lines after the first guards leaked, and returns
/// how many lines it wrote and the threads it wrote those after the leak on.
async fn background(j: usize, phase: Arc<AtomicUsize>) -> (usize, HashSet<String>) {
    let mut threads = HashSet::new();
    let (mut step, mut after_leak) = (0, 0);
    loop {
        let now = phase.load(Ordering::SeqCst);
        if now == DONE && after_leak >= AFTER_LEAK {
            return (step, threads);
        }
        if now != STARTED {
            threads.insert(thread());
            after_leak += 1;
        }
        info!(bg = j, step, "background");
        step += 1;
        if step % 2 == 0 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The phases the background tasks see.
const STARTED: usize = 0;
const LEAKED: usize = 1;
const DONE: usize = 2;

/// Sends `GET /{kind}/{n}` with the request id `{kind}-{n}` and returns the handler's thread.
async fn send(client: HttpClient, addr: SocketAddr, kind: &'static str, n: usize) -> String {
    let id = format!("{kind}-{n}");
    let reply = http_support::get(
        &client,
        addr,
        &format!("/{kind}/{n}"),
        &[("x-request-id", id.as_bytes())],
    )
    .await;
    assert_eq!(reply.status, 200, "{id}");
    assert_eq!(reply.headers["x-request-id"], id.as_str());
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_guard_never_gives_its_request_to_other_lines() {
    let capture = capture();
    let app = Router::new()
        .route("/leak/{n}", get(leak))
        .route("/work/{n}", get(work))
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    let client = client();

    let phase = Arc::new(AtomicUsize::new(STARTED));
    let background: Vec<_> = (0..BACKGROUND)
        .map(|j| tokio::spawn(background(j, Arc::clone(&phase))))
        .collect();

    // Wave 1: guards leak on the worker threads.
    let wave: Vec<_> = (0..LEAKS)
        .map(|n| tokio::spawn(send(client.clone(), addr, "leak", n)))
        .collect();
    let mut leaked_on = HashSet::new();
    for request in wave {
        leaked_on.insert(request.await.expect("the request succeeds"));
    }
    phase.store(LEAKED, Ordering::SeqCst);

    // Wave 2: requests that log from spans and tasks, interleaved with more leaks.
    let wave: Vec<_> = (0..WORK + LEAKS)
        .map(|i| {
            let (kind, n) = match i % 6 {
                5 => ("leak", LEAKS + i / 6),
                _ => ("work", i - i / 6),
            };
            (kind, tokio::spawn(send(client.clone(), addr, kind, n)))
        })
        .collect();
    let mut worked_on = HashSet::new();
    for (kind, request) in wave {
        let thread = request.await.expect("the request succeeds");
        if kind == "work" {
            worked_on.insert(thread);
        }
    }
    phase.store(DONE, Ordering::SeqCst);
    let (mut background_lines, mut background_on) = (0, HashSet::new());
    for task in background {
        let (lines, threads) = task.await.expect("the task does not panic");
        background_lines += lines;
        background_on.extend(threads);
    }
    // The case is only made if the leaked spans sit on threads that served the rest.
    assert!(
        !leaked_on.is_disjoint(&worked_on),
        "no request ran on a thread with a leaked guard: {leaked_on:?} {worked_on:?}"
    );
    assert!(
        !leaked_on.is_disjoint(&background_on),
        "no background task ran on a thread after a guard leaked there"
    );

    let leak_lines = 2 * LEAKS * 3;
    let work_lines = WORK * 6;
    let lines = lines_until(&capture, |lines| {
        lines.len() >= leak_lines + work_lines + background_lines
    })
    .await;
    assert_eq!(lines.len(), leak_lines + work_lines + background_lines);

    let mut per_request: HashMap<String, Vec<&str>> = HashMap::new();
    let mut background_seen = 0;
    for line in &lines {
        if line.get("bg").is_some() {
            assert_eq!(line.at("message"), "background", "{line:?}");
            for key in ["requestId", "userId", "traceId", "spanId"] {
                assert!(
                    line.get(key).is_none(),
                    "a request leaked into a task without context: {line:?}"
                );
            }
            background_seen += 1;
            continue;
        }
        let id = line
            .str("requestId")
            .unwrap_or_else(|| panic!("a request line lost its context: {line:?}"));
        let message = line.str("message").expect("every line has a message");
        let (kind, n) = id.split_once('-').expect("an id this test sent");
        let n: u64 = n.parse().expect("an id this test sent");
        if line.str("target") == Some("access") {
            assert_eq!(line.str("path"), Some(format!("/{kind}/{n}").as_str()));
            assert_eq!(line.at("status"), 200);
        } else {
            assert_eq!(line.at("n").as_u64(), Some(n), "{line:?}");
        }
        // Only a work request sets a user id, and only its last two lines come after it.
        let user_id = match (kind, message) {
            ("work", "end" | "request completed") => Some(n),
            _ => None,
        };
        assert_eq!(
            line.get("userId").and_then(|v| v.as_u64()),
            user_id,
            "{line:?}"
        );
        per_request.entry(id.to_owned()).or_default().push(message);
    }
    assert_eq!(background_seen, background_lines);
    assert_eq!(per_request.len(), 2 * LEAKS + WORK);
    for (id, mut messages) in per_request {
        messages.sort_unstable();
        let mut expected = if id.starts_with("leak-") {
            vec!["guard leaked", "after the leak", "request completed"]
        } else {
            vec![
                "start",
                "in child span",
                "child in_scope",
                "spawned",
                "end",
                "request completed",
            ]
        };
        expected.sort_unstable();
        assert_eq!(messages, expected, "{id}");
    }
    eprintln!(
        "leaked guard: {} lines from {} requests ({} leaking a guard on {} of the threads that \
         served the {WORK} others) and {background_lines} lines from {BACKGROUND} tasks without \
         context, each with its own context or none",
        lines.len(),
        2 * LEAKS + WORK,
        2 * LEAKS,
        leaked_on.intersection(&worked_on).count(),
    );
}
