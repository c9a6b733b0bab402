//! A soak run: the shop app of `examples/server.rs` behind `init()` and `RequestContextLayer`,
//! served on 127.0.0.1 and driven by a loop of concurrent hyper clients for minutes. Every
//! 10 s it prints, on stderr, the process's resident memory and the lines per second, so that
//! memory that grows with the number of requests shows as a rising column.
//!
//! ```text
//! cargo run --release --example soak > /dev/null           # 3 minutes, 32 connections
//! SOAK_SECS=600 CONNECTIONS=64 cargo run --release --example soak > /dev/null
//! ```
//!
//! Each request writes three lines (the auth layer's, the handler's and the access line), so
//! lines per second are three times the requests per second; lines the writer had to drop are counted by its reports in
//! the stream, which go to stdout with the rest. Not run in CI: it takes minutes.

#[path = "server.rs"]
#[allow(dead_code)]
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The lines one `GET /orders/{id}` with a user writes: `authenticated`, `order loaded`, and
/// the access line.
const LINES_PER_REQUEST: f64 = 3.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The resident set size of this process in KiB, from `/proc/self/status` (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let seconds: u64 = env_or("SOAK_SECS", 180);
    let connections: usize = env_or("CONNECTIONS", 32);
    let _guard = tracing_ambient::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, server::app()).await });

        let requests = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(seconds);
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let mut loops = Vec::new();
        for n in 0..connections {
            let (client, requests, failures) = (client.clone(), requests.clone(), failures.clone());
            loops.push(tokio::spawn(async move {
                // Bounded by time: the loop ends by itself.
                while Instant::now() < end {
                    let uri = format!("http://{addr}/orders/{n}");
                    let request = http::Request::get(uri)
                        .header("authorization", "Bearer 42")
                        .body(Empty::new())
                        .expect("request");
                    match client.request(request).await {
                        Ok(response) => {
                            let _ = response.into_body().collect().await;
                            requests.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }

        eprintln!("soak: {seconds} s, {connections} connections on {addr}");
        eprintln!(
            "{:>6} {:>10} {:>12} {:>10}",
            "secs", "rss KiB", "lines/s", "failures"
        );
        let started = Instant::now();
        let mut last = 0;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(10).min(end - Instant::now())).await;
            let done = requests.load(Ordering::Relaxed);
            let per_second = (done - last) as f64 / 10.0;
            last = done;
            eprintln!(
                "{:>6} {:>10} {:>12.0} {:>10}",
                started.elapsed().as_secs(),
                rss_kib().map_or_else(|| "?".to_owned(), |k| k.to_string()),
                LINES_PER_REQUEST * per_second,
                failures.load(Ordering::Relaxed)
            );
        }
        for handle in loops {
            let _ = handle.await;
        }
        eprintln!(
            "soak: {} requests, {} failures",
            requests.load(Ordering::Relaxed),
            failures.load(Ordering::Relaxed)
        );
    });
}
