//! End-to-end throughput: an axum hello-world served on 127.0.0.1 by one worker thread, in
//! three modes, driven by a closed-loop HTTP/1.1 load generator.
//!
//! ```text
//! cargo run --release --example loadtest                      # 5 rounds of 5 s per mode
//! ROUNDS=7 SECONDS=10 CONNECTIONS=32 cargo run --release --example loadtest
//! LOADGEN=hyper cargo run --release --example loadtest         # the hyper client loop, not wrk
//! OURS_SPAN=1 cargo run --release --example loadtest           # `ours` with its request span
//! cargo run --release --example loadtest -- serve ours        # one server; its port on stderr
//! ```
//!
//! Modes, each a server process of its own (a global subscriber is per process):
//!
//! - `none`: no subscriber; the handler's `info!` is disabled.
//! - `ours`: `tracing_ambient::init()` (JSON on stdout through the non-blocking writer) and
//!   `RequestContextLayer`: each request writes the handler's line and the access line, both
//!   with the request id, trace id and span id.
//! - `tracelayer`: what many services have: `fmt().json()` on stdout at `info`, tower-http's
//!   `SetRequestIdLayer` + `TraceLayer` (an `info` span with the request id, so the lines carry
//!   it, and an `info` line per response) + `PropagateRequestIdLayer`.
//!
//! Each handler call logs one `info!`. The server's stdout goes to a file
//! (`$LOADTEST_DIR/loadtest-<mode>.log`, the temporary directory by default), whose lines are
//! counted after each run. The load comes from `wrk -t1 -cN` when `wrk` is installed, else from
//! a loop of N concurrent requests on a hyper client; either way after one second of warm-up.
//! Modes are interleaved within each round, starting with a different one each round, and the
//! table gives the median of the rounds.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use tracing::info;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    None,
    Ours,
    TraceLayer,
}

const MODES: [Mode; 3] = [Mode::None, Mode::Ours, Mode::TraceLayer];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Ours => "ours",
            Mode::TraceLayer => "tracelayer",
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let mode = args
                .get(2)
                .and_then(|name| MODES.into_iter().find(|m| m.name() == name))
                .expect("usage: loadtest serve none|ours|tracelayer");
            serve(mode);
        }
        _ => drive(),
    }
}

// === the server ===

async fn hello() -> &'static str {
    info!(greeting = "hello", "handled");
    "hello\n"
}

/// Serves until stdin is closed, on one worker thread.
fn serve(mode: Mode) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The driver closes stdin to stop the server, so that `init()`'s guard flushes.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = stop_tx.send(());
    });
    let guard = match mode {
        Mode::Ours => Some(tracing_ambient::init()),
        Mode::TraceLayer => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(std::io::stdout)
                .init();
            None
        }
        Mode::None => None,
    };
    let router = Router::new().route("/", get(hello));
    let app = match mode {
        Mode::None => router,
        // `OURS_SPAN=1`: the middleware with its request span, to see what the span costs (by
        // default it makes none: no OpenTelemetry layer here needs it).
        Mode::Ours => {
            let layer = tracing_ambient::http::RequestContextLayer::new();
            router.layer(match std::env::var("OURS_SPAN").as_deref() {
                Ok("1") => layer.with_span(true),
                _ => layer,
            })
        }
        Mode::TraceLayer => {
            use axum::http::Request;
            use tower_http::request_id::{
                MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer,
            };
            use tower_http::trace::{DefaultOnResponse, TraceLayer};
            router.layer(
                tower::ServiceBuilder::new()
                    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                    .layer(
                        TraceLayer::new_for_http()
                            .make_span_with(|request: &Request<_>| {
                                let id = request.headers().get("x-request-id");
                                tracing::info_span!(
                                    "request",
                                    request_id = ?id,
                                    method = %request.method(),
                                    uri = %request.uri(),
                                )
                            })
                            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                    )
                    .layer(PropagateRequestIdLayer::x_request_id()),
            )
        }
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        eprintln!("listening {port}");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
    });
    drop(guard);
}

// === the driver ===

struct Settings {
    rounds: usize,
    seconds: u64,
    connections: usize,
    dir: std::path::PathBuf,
    wrk: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn drive() {
    let settings = Settings {
        rounds: env_or("ROUNDS", 5),
        seconds: env_or("SECONDS", 5),
        connections: env_or("CONNECTIONS", 32),
        dir: std::env::var_os("LOADTEST_DIR").map_or_else(std::env::temp_dir, Into::into),
        // `LOADGEN=hyper` uses the hyper client loop even where wrk is installed.
        wrk: std::env::var("LOADGEN").map_or(true, |g| g != "hyper")
            && Command::new("wrk")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok(),
    };
    println!(
        "load generator: {}, {} connections, {} s per run after 1 s of warm-up, {} rounds; load average {}",
        if settings.wrk { "wrk -t1" } else { "hyper client loop" },
        settings.connections,
        settings.seconds,
        settings.rounds,
        load_average()
    );
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..settings.rounds {
        for k in 0..MODES.len() {
            let i = (round + k) % MODES.len();
            let (rps, lines_per_request) = run(MODES[i], &settings);
            println!(
                "round {} {:<10} {:>9.0} requests/s  {:.2} lines/request",
                round + 1,
                MODES[i].name(),
                rps,
                lines_per_request
            );
            results[i].push(rps);
        }
    }
    let medians: Vec<f64> = results.iter().map(|r| median(r)).collect();
    let none = medians[0];
    let tracelayer = medians[2];
    println!("\nload average at the end {}\n", load_average());
    println!("| mode | median requests/s | of no logging | rounds |");
    println!("| --- | ---: | ---: | --- |");
    for (i, mode) in MODES.into_iter().enumerate() {
        let rounds: Vec<String> = results[i].iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {} | {:.0} | {:.0}% | {} |",
            mode.name(),
            medians[i],
            100.0 * medians[i] / none,
            rounds.join(", ")
        );
    }
    println!(
        "\nours / tracelayer = {:.2}x; ours / none = {:.0}%",
        medians[1] / tracelayer,
        100.0 * medians[1] / none
    );
}

/// One run of one mode: starts its server, loads it, stops it. Returns requests per second
/// and the lines its stdout got per request.
fn run(mode: Mode, settings: &Settings) -> (f64, f64) {
    let log = settings.dir.join(format!("loadtest-{}.log", mode.name()));
    let exe = std::env::current_exe().expect("this executable");
    let mut child = Command::new(exe)
        .args(["serve", mode.name()])
        .stdin(Stdio::piped())
        .stdout(File::create(&log).expect("the log file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server");
    let port = read_port(&mut child);
    let url = format!("http://127.0.0.1:{port}/");
    let (warm_up, _) = load(&url, 1, settings);
    let (requests, elapsed) = load(&url, settings.seconds, settings);
    // Closing stdin stops the server; it flushes its lines before it exits.
    drop(child.stdin.take());
    let status = child.wait().expect("the server's exit");
    assert!(status.success(), "{} server failed: {status}", mode.name());
    let lines = count_lines(&log);
    let _ = std::fs::remove_file(&log);
    // The warm-up's requests are in the file too.
    let per_request = lines as f64 / (requests + warm_up) as f64;
    (requests as f64 / elapsed.as_secs_f64(), per_request)
}

fn read_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("the server's stderr");
    let mut line = String::new();
    let mut reader = BufReader::new(stderr);
    reader.read_line(&mut line).expect("the server's port");
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    line.trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the server said {line:?}"))
}

/// Loads `url` for `seconds`; returns the requests completed and the time taken.
fn load(url: &str, seconds: u64, settings: &Settings) -> (u64, Duration) {
    if settings.wrk {
        wrk(url, seconds, settings.connections)
    } else {
        hyper_loop(url, seconds, settings.connections)
    }
}

fn wrk(url: &str, seconds: u64, connections: usize) -> (u64, Duration) {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    // "  123456 requests in 5.00s, 12.34MB read"
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .unwrap_or_else(|| panic!("wrk said {text}"));
    let mut words = line.split_whitespace();
    let requests: u64 = words.next().and_then(|n| n.parse().ok()).expect("count");
    let secs = words
        .nth(2)
        .and_then(|d| d.trim_end_matches(',').strip_suffix('s'))
        .and_then(|d| d.parse::<f64>().ok())
        .expect("duration");
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    if let Some(errors) = errors {
        eprintln!("wrk: {}", errors.trim());
    }
    (requests, Duration::from_secs_f64(secs))
}

/// A closed loop of `connections` concurrent requests on a hyper client (keep-alive), on a
/// thread of its own, for when wrk is not installed.
fn hyper_loop(url: &str, seconds: u64, connections: usize) -> (u64, Duration) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let uri: axum::http::Uri = url.parse().expect("url");
    runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<axum::body::Bytes>>();
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (client, uri, done) = (client.clone(), uri.clone(), Arc::clone(&done));
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let request = axum::http::Request::get(uri.clone())
                            .body(Empty::new())
                            .expect("request");
                        let response = client.request(request).await.expect("response");
                        let _ = response.into_body().collect().await.expect("body");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("client task");
        }
        (done.load(Ordering::Relaxed), start.elapsed())
    })
}

fn count_lines(path: &std::path::Path) -> u64 {
    let mut file = File::open(path).expect("the log file");
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf).expect("read the log file");
        if n == 0 {
            return lines;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[sorted.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
