//! 2,000 concurrent requests through a real axum server: every line carries the request
//! that caused it, under any interleaving of tasks and threads.
#![cfg(feature = "http")]

mod common;
mod http_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http_support::{capture, client, get as send, lines_until, serve};
use tokio::sync::watch;
use tracing::info;
use tracing_ambient::http::RequestContextLayer;

const REQUESTS: usize = 2_000;

/// Lines each request writes: handler start, subtask, handler end, access line.
const LINES_PER_REQUEST: usize = 4;

/// Holds every handler until all requests are in flight at once (or a while has passed, so
/// that a slow machine degrades to less overlap instead of a hang).
#[derive(Clone)]
struct Gate {
    arrived: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl Gate {
    async fn wait(&self) {
        let mut open = self.open.subscribe();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == REQUESTS {
            self.open.send_replace(true);
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), open.wait_for(|open| *open)).await;
    }
}

async fn work(Path(n): Path<usize>, gate: Gate) -> String {
    info!(n, "handler start");
    tokio::task::yield_now().await;
    gate.wait().await;
    let subtask = tracing_ambient::spawn(async move {
        tokio::task::yield_now().await;
        info!(n, "subtask");
        tracing_ambient::request_id()
    });
    let from_subtask = subtask.await.unwrap().unwrap_or_default();
    tokio::task::yield_now().await;
    info!(n, "handler end");
    format!(
        "{}|{from_subtask}",
        tracing_ambient::request_id().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_line_carries_the_request_that_caused_it() {
    let capture = capture();
    let (open, opened) = watch::channel(false);
    let gate = Gate {
        arrived: Arc::default(),
        open,
    };
    let app = Router::new()
        .route("/work/{n}", get(move |path| work(path, gate.clone())))
        .layer(RequestContextLayer::new());
    let addr = serve(app).await;
    let client = client();

    let requests = (0..REQUESTS).map(|n| {
        let client = client.clone();
        tokio::spawn(async move {
            let id = format!("req-{n}");
            let reply = send(
                &client,
                addr,
                &format!("/work/{n}"),
                &[("x-request-id", id.as_bytes())],
            )
            .await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.headers["x-request-id"], id.as_str());
            assert_eq!(reply.body, format!("{id}|{id}"));
        })
    });
    for request in requests.collect::<Vec<_>>() {
        request.await.unwrap();
    }
    assert!(
        *opened.borrow(),
        "all {REQUESTS} requests were in their handlers at once"
    );

    let lines = lines_until(&capture, |lines| {
        lines.len() >= REQUESTS * LINES_PER_REQUEST
    })
    .await;
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let id = line
            .str("requestId")
            .expect("every line comes from a request");
        let n = match line.str("message") {
            Some("request completed") => {
                assert_eq!(line.str("target"), Some("access"));
                assert_eq!(line.at("status"), 200);
                let path = line.str("path").unwrap();
                path.strip_prefix("/work/")
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            }
            Some("handler start" | "subtask" | "handler end") => {
                line.at("n").as_u64().unwrap() as usize
            }
            other => panic!("unexpected line {other:?}: {line:?}"),
        };
        assert_eq!(id, format!("req-{n}"), "{line:?}");
        *per_request.entry(id.to_owned()).or_default() += 1;
    }
    assert_eq!(per_request.len(), REQUESTS);
    assert!(per_request
        .values()
        .all(|&count| count == LINES_PER_REQUEST));
}
