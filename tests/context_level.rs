//! A context's own level (issue 18, part 1), under `init()`'s filter in a real process: the
//! test binary runs itself as a child with `init()` installed (`RUST_LOG` unset: `info`) and
//! reads the child's stdout, every line parsed.

mod common;
mod writer_support;

use std::collections::HashMap;

use common::Line;
use tracing::{debug, info, Level};
use tracing_ambient::Context;
use writer_support::{is_child, json_child_lines};

/// Events per context in `two_contexts_on_a_multi_thread_runtime`.
const EVENTS: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

// === two contexts at once ===

#[test]
fn child_two_contexts() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    runtime().block_on(async {
        let tasks = [("raised", Some(Level::DEBUG)), ("plain", None)].map(|(id, level)| {
            let mut ctx = Context::new().with_request_id(id);
            if let Some(level) = level {
                ctx = ctx.with_level(level);
            }
            tokio::spawn(ctx.scope(async {
                for n in 0..EVENTS {
                    debug!(n, "debug event");
                    // Let the other context's task run on this thread in between.
                    tokio::task::yield_now().await;
                    info!(n, "info event");
                    tracing::trace!(n, "trace event");
                }
            }))
        });
        for task in tasks {
            task.await.unwrap();
        }
        debug!("debug outside any context");
        info!("info outside any context");
    });
    drop(guard);
}

#[test]
fn two_contexts_on_a_multi_thread_runtime() {
    let lines = json_child_lines("child_two_contexts");
    let counts = counts(&lines);
    let expected: HashMap<(Option<&str>, &str), usize> = [
        ((Some("raised"), "debug event"), EVENTS),
        ((Some("raised"), "info event"), EVENTS),
        ((Some("plain"), "info event"), EVENTS),
        ((None, "info outside any context"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    // Each context's lines, in the order its task logged them.
    let ns: Vec<u64> = lines
        .iter()
        .filter(|l| l.str("requestId") == Some("raised") && l.str("message") == Some("debug event"))
        .map(|l| l.at("n").as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..EVENTS as u64).collect::<Vec<_>>());
    for line in &lines {
        let level = line.str("level").unwrap();
        let message = line.str("message").unwrap();
        assert_eq!(level, message.split(' ').next().unwrap(), "{line:?}");
    }
}

// === a level set late, carried ===

#[test]
fn child_late_and_carried() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    // No context has asked for a level yet: `log` records below info are not even made.
    assert_eq!(log::max_level(), log::LevelFilter::Info);
    runtime().block_on(Context::new().with_request_id("late").scope(async {
        debug!("before set_level");
        log::debug!("log crate before set_level");
        tracing_ambient::set_level(Level::DEBUG);
        assert_eq!(log::max_level(), log::LevelFilter::Debug);
        debug!("after set_level");
        log::debug!("log crate after set_level");
        tracing::trace!("trace after set_level");
        tracing_ambient::spawn(async { debug!("in tracing_ambient::spawn") })
            .await
            .unwrap();
        tracing_ambient::spawn_blocking(|| debug!("in tracing_ambient::spawn_blocking"))
            .await
            .unwrap();
        let carried = Context::current().unwrap();
        std::thread::spawn(move || carried.in_scope(|| debug!("in a thread")))
            .join()
            .unwrap();
        // A payload, as a job queue would carry it.
        let payload = serde_json::to_string(&Context::current().unwrap()).unwrap();
        std::thread::spawn(move || {
            let job: Context = serde_json::from_str(&payload).unwrap();
            job.in_scope(|| debug!("in a job from a payload"));
            job.without_level()
                .in_scope(|| debug!("in a job that dropped the level"));
        })
        .join()
        .unwrap();
        // Not carried: a plain `tokio::spawn` has no context.
        tokio::spawn(async { debug!("in a plain tokio::spawn") })
            .await
            .unwrap();
    }));
    drop(guard);
}

#[test]
fn a_late_level_is_carried_by_spawn_threads_and_payloads() {
    let lines = json_child_lines("child_late_and_carried");
    let messages: Vec<(&str, Option<&str>)> = lines
        .iter()
        .map(|l| (l.str("message").unwrap(), l.str("requestId")))
        .collect();
    assert_eq!(
        messages,
        [
            ("after set_level", Some("late")),
            ("log crate after set_level", Some("late")),
            ("in tracing_ambient::spawn", Some("late")),
            ("in tracing_ambient::spawn_blocking", Some("late")),
            ("in a thread", Some("late")),
            ("in a job from a payload", Some("late")),
        ]
    );
    assert!(lines.iter().all(|l| l.str("level") == Some("debug")));
}

// === the middleware's hook ===

#[cfg(feature = "http")]
mod http {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::Path;
    use axum::routing::get;
    use axum::Router;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tokio::sync::watch;
    use tracing::{debug, info, Level};
    use tracing_ambient::http::RequestContextLayer;

    use super::*;

    /// What the service trusts to raise a request's level: in this test, a token only the
    /// operator knows.
    const TOKEN: &str = "operator-token-7f3a";

    /// Requests in `no_bleed_between_1000_concurrent_requests_half_raised`.
    const REQUESTS: usize = 1_000;

    fn layer() -> RequestContextLayer {
        RequestContextLayer::new().level_from(|request: &::http::request::Parts| {
            let token = request.headers.get("x-debug-token")?;
            (token == TOKEN).then_some(Level::DEBUG)
        })
    }

    /// Holds every handler until all requests are in flight at once (or a while has passed,
    /// so that a slow machine degrades to less overlap instead of a hang).
    #[derive(Clone)]
    struct Gate {
        arrived: Arc<AtomicUsize>,
        open: watch::Sender<bool>,
        expected: usize,
    }

    impl Gate {
        fn new(expected: usize) -> Self {
            Gate {
                arrived: Arc::default(),
                open: watch::channel(false).0,
                expected,
            }
        }

        async fn wait(&self) {
            let mut open = self.open.subscribe();
            if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
                self.open.send_replace(true);
            }
            let wait = open.wait_for(|open| *open);
            let _ = tokio::time::timeout(Duration::from_secs(20), wait).await;
        }
    }

    async fn handler(n: usize, gate: Gate) -> String {
        debug!(n, "handler debug");
        gate.wait().await;
        tokio::task::yield_now().await;
        let sub = tracing_ambient::spawn(async move { debug!(n, "subtask debug") });
        sub.await.unwrap();
        info!(n, "handler info");
        "ok".to_owned()
    }

    /// Serves the app, sends `requests` (id, token) at once, returns the statuses.
    async fn send_all(requests: Vec<(String, Option<&'static str>)>) {
        let gate = Gate::new(requests.len());
        let app = Router::new()
            .route(
                "/work/{n}",
                get(move |Path(n): Path<usize>| handler(n, gate.clone())),
            )
            .layer(layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let sends = requests.into_iter().enumerate().map(|(n, (id, token))| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut request = ::http::Request::get(format!("http://{addr}/work/{n}"))
                    .header("x-request-id", id);
                if let Some(token) = token {
                    request = request.header("x-debug-token", token);
                }
                let response = client
                    .request(request.body(Full::default()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap();
            })
        });
        for send in sends.collect::<Vec<_>>() {
            send.await.unwrap();
        }
    }

    #[test]
    fn child_http_hook() {
        if !is_child() {
            return;
        }
        let guard = tracing_ambient::init();
        runtime().block_on(send_all(vec![
            ("with-token".to_owned(), Some(TOKEN)),
            ("wrong-token".to_owned(), Some("guessed")),
            ("no-token".to_owned(), None),
        ]));
        drop(guard);
    }

    #[test]
    fn the_level_hook_raises_a_real_request_and_only_it() {
        let lines = json_child_lines("http::child_http_hook");
        let counts = counts(&lines);
        let expected: HashMap<(Option<&str>, &str), usize> = [
            ((Some("with-token"), "handler debug"), 1),
            ((Some("with-token"), "subtask debug"), 1),
            ((Some("with-token"), "handler info"), 1),
            ((Some("with-token"), "access"), 1),
            ((Some("wrong-token"), "handler info"), 1),
            ((Some("wrong-token"), "access"), 1),
            ((Some("no-token"), "handler info"), 1),
            ((Some("no-token"), "access"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, expected);
    }

    #[test]
    fn child_http_many() {
        if !is_child() {
            return;
        }
        let guard = tracing_ambient::init();
        let requests = (0..REQUESTS)
            .map(|n| (format!("req-{n}"), (n % 2 == 0).then_some(TOKEN)))
            .collect();
        runtime().block_on(send_all(requests));
        drop(guard);
    }

    #[test]
    fn no_bleed_between_1000_concurrent_requests_half_raised() {
        let lines = json_child_lines("http::child_http_many");
        let counts = counts(&lines);
        let mut expected: HashMap<(Option<&str>, &str), usize> = HashMap::new();
        let ids: Vec<String> = (0..REQUESTS).map(|n| format!("req-{n}")).collect();
        for (n, id) in ids.iter().enumerate() {
            let mut messages = vec!["handler info", "access"];
            if n % 2 == 0 {
                messages.extend(["handler debug", "subtask debug"]);
            }
            for message in messages {
                expected.insert((Some(id), message), 1);
            }
        }
        assert_eq!(counts.len(), expected.len());
        assert_eq!(counts, expected);
        // Each handler line carries its own request's number.
        for line in lines.iter().filter(|l| l.get("n").is_some()) {
            let n = line.at("n").as_u64().unwrap();
            assert_eq!(line.str("requestId"), Some(&*format!("req-{n}")));
        }
    }
}

/// How many lines there are of each (requestId, message); the access line counts as
/// `access` whatever its message.
fn counts(lines: &[Line]) -> HashMap<(Option<&str>, &str), usize> {
    let mut counts = HashMap::new();
    for line in lines {
        let message = if line.str("target") == Some("access") {
            "access"
        } else {
            line.str("message").expect("a message")
        };
        *counts.entry((line.str("requestId"), message)).or_default() += 1;
    }
    counts
}
