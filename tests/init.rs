//! `init()` in a real process: the test binary runs itself as a child with `init()` installed
//! and reads the child's stdout. `LOG_FORMAT` (issue 8 §4, issue 11 §4): one child per value,
//! piped and under a pseudo-terminal (`script`), every line parsed.

mod common;
#[cfg(feature = "http")]
mod http_support;

use std::process::Command;
#[cfg(feature = "http")]
use std::process::Stdio;

use serde_json::json;
use tracing_ambient::Context;

const CHILD: &str = "TRACING_AMBIENT_INIT_CHILD";

/// The child's part: only does something when started by `init_installs_everything`.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let guard = tracing_ambient::init();
    assert!(
        tracing_ambient::try_init().is_err(),
        "a second init is an error, not a panic"
    );
    Context::new().with_request_id("boot").in_scope(|| {
        tracing::info!(answer = 42, "hello");
        tracing::debug!("below the default level");
        log::warn!("from the log crate");
        tracing_ambient::set_user_id(7);
        let panicked = std::panic::catch_unwind(|| panic!("handler blew up"));
        assert!(panicked.is_err());
    });
    drop(guard);
}

/// A writer that keeps lines in a buffer until flushed: without the guard's flush they would
/// be lost when the process exits (the global subscriber is never dropped).
#[derive(Clone)]
struct Buffered(std::sync::Arc<std::sync::Mutex<std::io::BufWriter<std::io::Stdout>>>);

impl std::io::Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

#[test]
fn child_buffered() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let writer = Buffered(std::sync::Arc::new(std::sync::Mutex::new(
        std::io::BufWriter::with_capacity(1 << 20, std::io::stdout()),
    )));
    let guard = tracing_ambient::try_init_with(
        tracing_ambient::JsonLayer::new(move || writer.clone()).static_field("service", "shop"),
    )
    .expect("first init");
    tracing::info!("buffered until the guard flushes");
    drop(guard);
    std::process::exit(0); // no destructors: only the guard's flush can have written the line
}

#[test]
fn dropping_the_guard_flushes() {
    let lines = log_lines(&run_child("child_buffered", &[]));
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].at("message"),
        &json!("buffered until the guard flushes")
    );
    assert_eq!(lines[0].at("service"), &json!("shop"));
}

/// Under `init()`, with the filter from the test's `RUST_LOG`: a `warn!` in a task that only
/// an info span (of another target) carries to its request, and a panic.
#[test]
fn child_filtered() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _guard = tracing_ambient::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(Context::new().with_request_id("filtered").scope(async {
        use tracing::Instrument;
        let span = tracing::info_span!(target: "dependency", "work");
        tokio::spawn(async { tracing::warn!("warned in a bare task") }.instrument(span))
            .await
            .unwrap();
        tracing::info!("info from the test crate");
        let panicked = std::panic::catch_unwind(|| panic!("filtered panic"));
        assert!(panicked.is_err());
    }));
}

#[test]
fn init_keeps_the_context_under_level_and_target_filters() {
    for (rust_log, info_written) in [("warn", false), ("init=debug", true)] {
        let stdout = run_child(
            "child_filtered",
            &[("RUST_LOG", rust_log), ("RUST_BACKTRACE", "0")],
        );
        let lines = log_lines(&stdout);
        let messages: Vec<_> = lines.iter().filter_map(|l| l.str("message")).collect();
        let mut expected = vec!["warned in a bare task"];
        if info_written {
            expected.push("info from the test crate");
        }
        expected.push("filtered panic");
        assert_eq!(messages, expected, "RUST_LOG={rust_log}");
        for line in &lines {
            assert_eq!(
                line.at("requestId"),
                &json!("filtered"),
                "RUST_LOG={rust_log}: {line:?}"
            );
        }
    }
}

/// Under `init()` with `RUST_LOG=warn`: an `info` span outside any context and one inside.
#[test]
fn child_spans() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _guard = tracing_ambient::init();
    let outside = tracing::info_span!("outside");
    let inside = Context::new()
        .with_request_id("spans")
        .in_scope(|| tracing::info_span!("inside"));
    tracing::warn!(
        outside_made = !outside.is_disabled(),
        inside_made = !inside.is_disabled(),
        "spans"
    );
}

#[test]
fn init_makes_only_the_spans_the_filter_or_a_context_needs() {
    let stdout = run_child("child_spans", &[("RUST_LOG", "warn")]);
    let lines = log_lines(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    // The span that can carry the request is made whatever its level; the other one, below
    // the filter, is not made at all (not merely hidden from the layer).
    assert_eq!(lines[0].at("inside_made"), &json!(true), "{:?}", lines[0]);
    assert_eq!(lines[0].at("outside_made"), &json!(false), "{:?}", lines[0]);
}

#[test]
fn init_installs_everything() {
    let stdout = run_child("child", &[("RUST_BACKTRACE", "0")]);
    let lines = log_lines(&stdout);
    assert_eq!(lines.len(), 3, "{stdout}");

    assert_eq!(lines[0].at("message"), &json!("hello"));
    assert_eq!(lines[0].at("requestId"), &json!("boot"));
    assert_eq!(lines[0].at("answer"), &json!(42));

    assert_eq!(lines[1].at("message"), &json!("from the log crate"));
    assert_eq!(lines[1].at("level"), &json!("warn"));
    assert_eq!(lines[1].at("target"), &json!("init"));
    assert_eq!(lines[1].at("requestId"), &json!("boot"));

    let panic = &lines[2];
    assert_eq!(panic.at("level"), &json!("error"));
    assert_eq!(panic.at("target"), &json!("panic"));
    assert_eq!(panic.at("message"), &json!("handler blew up"));
    assert_eq!(panic.at("requestId"), &json!("boot"));
    assert_eq!(panic.at("userId"), &json!(7));
    assert!(
        panic.str("location").unwrap().starts_with("tests/init.rs:"),
        "{panic:?}"
    );
    assert!(
        panic.get("backtrace").is_none(),
        "no backtrace unless enabled"
    );
}

#[test]
fn panic_lines_carry_a_backtrace_when_enabled() {
    let stdout = run_child("child", &[("RUST_BACKTRACE", "1")]);
    let panic = log_lines(&stdout)
        .into_iter()
        .find(|l| l.str("target") == Some("panic"))
        .expect("a panic line");
    assert!(
        panic.str("backtrace").unwrap().contains("init"),
        "{panic:?}"
    );
}

/// Issue 7: `install_panic_hook` by hand and again by `init` installs one hook.
#[test]
fn child_hook_twice() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    tracing_ambient::install_panic_hook();
    let guard = tracing_ambient::init();
    tracing_ambient::install_panic_hook();
    let panicked = std::panic::catch_unwind(|| panic!("logged once"));
    assert!(panicked.is_err());
    drop(guard);
}

#[test]
fn a_panic_hook_installed_twice_logs_each_panic_once() {
    let lines = log_lines(&run_child("child_hook_twice", &[("RUST_BACKTRACE", "0")]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].at("target"), &json!("panic"));
    assert_eq!(lines[0].at("message"), &json!("logged once"));
}

/// Counts the events that reach a subscriber installed by someone else.
static FOREIGN_EVENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct CountEvents;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        FOREIGN_EVENTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn install_foreign_subscriber() {
    use tracing_subscriber::layer::SubscriberExt;
    let _ =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountEvents));
}

/// A `log` logger of the test's own, to see whether the `log` slot is still free.
struct OwnLogger;

impl log::Log for OwnLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, _: &log::Record<'_>) {}

    fn flush(&self) {}
}

/// A writer whose `clone` installs a global subscriber: it stands for another thread that
/// installs one while `try_init_with` runs (it clones the writer for the guard before it sets
/// the subscriber), which no check made beforehand can see.
#[derive(Debug)]
struct RacingWriter;

impl Clone for RacingWriter {
    fn clone(&self) -> Self {
        install_foreign_subscriber();
        RacingWriter
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RacingWriter {
    type Writer = std::io::Stdout;

    fn make_writer(&'a self) -> Self::Writer {
        std::io::stdout()
    }
}

/// Issue 7: a `try_init` that fails on the subscriber leaves nothing installed. Prints what it
/// saw as one JSON line: the error, how many `log` records reached the other subscriber (our
/// bridge, had it stayed, would send them there), and whether the `log` slot is still free.
#[test]
fn child_failed_init() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let error = match std::env::var("FOREIGN").as_deref() {
        Ok("before") => {
            install_foreign_subscriber();
            tracing_ambient::try_init().unwrap_err()
        }
        Ok("racing") => {
            tracing_ambient::try_init_with(tracing_ambient::JsonLayer::new(RacingWriter))
                .unwrap_err()
        }
        other => panic!("FOREIGN={other:?}"),
    };
    let before = FOREIGN_EVENTS.load(std::sync::atomic::Ordering::SeqCst);
    log::info!("a log record after the failed init");
    let log_events = FOREIGN_EVENTS.load(std::sync::atomic::Ordering::SeqCst) - before;
    let log_slot_free = log::set_logger(&OwnLogger).is_ok();
    println!(
        "{}",
        json!({"error": error.to_string(), "logEvents": log_events, "logSlotFree": log_slot_free})
    );
}

#[test]
fn a_failed_init_leaves_no_log_bridge_behind() {
    for foreign in ["before", "racing"] {
        let lines = log_lines(&run_child("child_failed_init", &[("FOREIGN", foreign)]));
        assert_eq!(lines.len(), 1, "FOREIGN={foreign}: {lines:?}");
        println!("FOREIGN={foreign}: {:?}", lines[0]);
        assert_eq!(
            lines[0].at("error"),
            &json!("a global tracing subscriber is already installed"),
            "FOREIGN={foreign}"
        );
        assert_eq!(lines[0].at("logEvents"), &json!(0), "FOREIGN={foreign}");
        assert_eq!(
            lines[0].at("logSlotFree"),
            &json!(true),
            "FOREIGN={foreign}"
        );
    }
}

/// A scoped subscriber (`with_default`, as tests and tools use) is no global one: `init`
/// succeeds after it.
#[test]
fn child_after_scoped() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {});
    let guard = tracing_ambient::try_init().expect("no global subscriber is installed");
    tracing::info!("after a scoped subscriber");
    drop(guard);
}

#[test]
fn init_succeeds_after_a_scoped_subscriber() {
    let lines = log_lines(&run_child("child_after_scoped", &[]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].at("message"), &json!("after a scoped subscriber"));
}

/// The log lines of the child's stdout. The test harness prints there too ("test child ... "
/// precedes the first line), so each line is taken from its first `{`.
fn log_lines(stdout: &str) -> Vec<common::Line> {
    stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(common::parse_line)
        .collect()
}

/// Runs the child test `name` of this binary with `env` and returns its stdout.
fn run_child(name: &str, env: &[(&str, &str)]) -> String {
    run_child_output(name, env).0
}

/// The variables `init` reads, removed from every child but for what a test sets.
const FORMAT_VARS: [&str; 6] = [
    "LOG_FORMAT",
    "NO_COLOR",
    "GOOGLE_CLOUD_PROJECT",
    "DD_SERVICE",
    "DD_ENV",
    "DD_VERSION",
];

/// Runs the child test `name` of this binary with `env` and returns its stdout and stderr.
fn run_child_output(name: &str, env: &[(&str, &str)]) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("RUST_LOG");
    for var in FORMAT_VARS {
        command.env_remove(var);
    }
    let output = common::output_within_timeout(command.envs(env.iter().copied()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

// === LOG_FORMAT ===

#[cfg(feature = "http")]
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
#[cfg(feature = "http")]
const SPAN: &str = "00f067aa0ba902b7";

#[cfg(feature = "http")]
/// An error with a cause.
#[derive(Debug)]
struct Failed(&'static str, Option<&'static Failed>);

#[cfg(feature = "http")]
impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(feature = "http")]
impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.map(|cause| cause as _)
    }
}

/// Under `init()` as the environment sets it up: two lines in a context, then one request to
/// a real axum server behind `RequestContextLayer` with a `DefaultOnAccess` made before
/// `init()` and given no schema, so its keys can only come from what `init` chose.
#[cfg(feature = "http")]
#[test]
fn child_format() {
    use axum::routing::get;
    use tracing_ambient::http::{Access, DefaultOnAccess, OnAccess, RequestContextLayer};

    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let on_access = DefaultOnAccess::new();
    let guard = tracing_ambient::init();
    static TIMEOUT: Failed = Failed("timeout", None);
    static FAILED: Failed = Failed("query failed", Some(&TIMEOUT));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        Context::new()
            .with_request_id("boot")
            .with_trace_id(TRACE)
            .with_span_id(SPAN)
            .scope(async {
                tracing::info!(answer = 42, "hello");
                tracing::error!(error = &FAILED as &dyn std::error::Error, "failed");
            })
            .await;
        // The access line is written when the server finishes the body, which may be after
        // the client has it: the hook says when it has run.
        let (done, written) = tokio::sync::oneshot::channel();
        let done = std::sync::Mutex::new(Some(done));
        let hook = move |access: &Access<'_>| {
            on_access.on_access(access);
            if let Some(done) = done.lock().unwrap().take() {
                let _ = done.send(());
            }
        };
        let app = axum::Router::new()
            .route("/ok", get(|| async { "ok" }))
            .layer(RequestContextLayer::new().on_access(hook));
        let addr = http_support::serve(app).await;
        let reply = http_support::get(&http_support::client(), addr, "/ok?page=2", &[]).await;
        assert_eq!(reply.status, 200);
        tokio::time::timeout(std::time::Duration::from_secs(5), written)
            .await
            .expect("the access line within 5 s")
            .unwrap();
    });
    drop(guard);
}

/// The child's JSON lines for `LOG_FORMAT=value` (and `env`), with its stderr.
#[cfg(feature = "http")]
fn format_lines(env: &[(&str, &str)]) -> (Vec<common::Line>, String) {
    let (stdout, stderr) = run_child_output("child_format", env);
    let lines = log_lines(&stdout);
    assert_eq!(lines.len(), 3, "hello, failed, the access line: {stdout}");
    (lines, stderr)
}

/// The three lines of `child_format`, in their order.
#[cfg(feature = "http")]
fn by_message<'a>(lines: &'a [common::Line], key: &str) -> [&'a common::Line; 3] {
    let messages: Vec<_> = lines.iter().map(|l| l.str(key).unwrap()).collect();
    assert_eq!(messages, ["hello", "failed", "request completed"]);
    [&lines[0], &lines[1], &lines[2]]
}

#[cfg(feature = "http")]
#[test]
fn log_format_json_and_unset_through_a_pipe_write_the_default_keys() {
    for env in [
        &[("LOG_FORMAT", "json")][..],
        &[],
        &[("LOG_FORMAT", " JSON ")],
    ] {
        let (lines, stderr) = format_lines(env);
        assert!(stderr.is_empty(), "{env:?}: {stderr}");
        let [hello, failed, access] = by_message(&lines, "message");
        assert_eq!(
            hello.keys()[..3],
            ["timestamp", "level", "message"],
            "{env:?}"
        );
        assert_eq!(hello.at("traceId"), &json!(TRACE));
        assert_eq!(hello.at("requestId"), &json!("boot"));
        assert_eq!(failed.at("error"), &json!("query failed"));
        assert_eq!(failed.at("errorSources"), &json!(["timeout"]));
        assert_eq!(access.at("method"), &json!("GET"));
        assert_eq!(access.at("path"), &json!("/ok"));
        assert_eq!(access.at("status"), &json!(200));
        assert!(access.at("latencyMs").is_f64(), "{access:?}");
    }
}

#[cfg(feature = "http")]
#[test]
fn log_format_ecs_writes_ecs_lines_and_access_keys() {
    let (lines, _) = format_lines(&[("LOG_FORMAT", "ecs")]);
    let [hello, failed, access] = by_message(&lines, "message");
    for line in [hello, failed, access] {
        assert_eq!(line.keys()[..3], ["@timestamp", "log.level", "message"]);
        assert_eq!(line.at("ecs.version"), &json!("1.12.0"));
    }
    assert_eq!(hello.at("http.request.id"), &json!("boot"));
    assert_eq!(hello.at("trace.id"), &json!(TRACE));
    assert_eq!(hello.at("transaction.id"), &json!(SPAN));
    assert_eq!(failed.at("error.message"), &json!("query failed"));
    assert_eq!(
        failed.at("error.stack_trace"),
        &json!("query failed\ncaused by: timeout")
    );
    // The access line has the ECS keys although `DefaultOnAccess` was given no schema.
    assert_eq!(access.at("http.request.method"), &json!("GET"));
    assert_eq!(access.at("url.path"), &json!("/ok"));
    assert_eq!(access.at("http.response.status_code"), &json!(200));
    assert!(access.at("event.duration").is_u64(), "{access:?}");
    assert_eq!(access.at("http.response.body.bytes"), &json!(2));
    assert!(access.get("method").is_none() && access.get("latencyMs").is_none());
}

#[cfg(feature = "http")]
#[test]
fn log_format_otel_writes_severity_numbers_and_trace_flags() {
    let (lines, _) = format_lines(&[("LOG_FORMAT", "otel")]);
    let [hello, failed, access] = by_message(&lines, "body");
    assert_eq!(
        hello.keys()[..4],
        ["timestamp", "severity_text", "severity_number", "body"]
    );
    assert_eq!(
        (hello.at("severity_text"), hello.at("severity_number")),
        (&json!("INFO"), &json!(9))
    );
    assert_eq!(
        (failed.at("severity_text"), failed.at("severity_number")),
        (&json!("ERROR"), &json!(17))
    );
    assert_eq!(hello.at("trace_id"), &json!(TRACE));
    assert_eq!(hello.at("span_id"), &json!(SPAN));
    assert_eq!(hello.at("trace_flags"), &json!("01"));
    assert_eq!(failed.at("exception.message"), &json!("query failed"));
    assert_eq!(access.at("http.request.method"), &json!("GET"));
    assert!(
        access.at("http.server.request.duration").is_f64(),
        "{access:?}"
    );
    assert_eq!(access.at("http.response.body.size"), &json!(2));
}

#[cfg(feature = "http")]
#[test]
fn log_format_gcp_takes_the_project_from_google_cloud_project() {
    let (lines, stderr) =
        format_lines(&[("LOG_FORMAT", "gcp"), ("GOOGLE_CLOUD_PROJECT", "shop-prod")]);
    assert!(stderr.is_empty(), "{stderr}");
    let [hello, failed, access] = by_message(&lines, "message");
    assert_eq!(hello.keys()[..3], ["time", "severity", "message"]);
    assert_eq!(hello.at("severity"), &json!("INFO"));
    assert_eq!(failed.at("severity"), &json!("ERROR"));
    assert_eq!(
        hello.at("logging.googleapis.com/trace"),
        &json!(format!("projects/shop-prod/traces/{TRACE}"))
    );
    assert_eq!(hello.at("logging.googleapis.com/spanId"), &json!(SPAN));
    assert_eq!(
        hello.at("logging.googleapis.com/trace_sampled"),
        &json!(true)
    );
    let http = access.at("httpRequest");
    assert_eq!(http["requestMethod"], json!("GET"));
    assert_eq!(http["requestUrl"], json!("/ok"));
    assert_eq!(http["status"], json!(200));
    assert_eq!(http["responseSize"], json!(2));
    let latency = http["latency"].as_str().unwrap();
    assert!(
        latency.ends_with('s') && latency[..latency.len() - 1].parse::<f64>().is_ok(),
        "{latency}"
    );

    // Without a project: said on stderr, and the trace key holds the bare trace id.
    let (lines, stderr) = format_lines(&[("LOG_FORMAT", "gcp")]);
    assert!(
        stderr.contains("GOOGLE_CLOUD_PROJECT is not set"),
        "{stderr}"
    );
    assert_eq!(lines[0].at("logging.googleapis.com/trace"), &json!(TRACE));
}

#[cfg(feature = "http")]
#[test]
fn log_format_datadog_writes_decimal_ids_and_the_dd_variables() {
    let env = [
        ("LOG_FORMAT", "datadog"),
        ("DD_SERVICE", "shop"),
        ("DD_ENV", "prod"),
        ("DD_VERSION", "1.4.2"),
    ];
    let (lines, _) = format_lines(&env);
    let [hello, _, access] = by_message(&lines, "message");
    for line in &lines {
        assert_eq!(line.at("dd.service"), &json!("shop"));
        assert_eq!(line.at("dd.env"), &json!("prod"));
        assert_eq!(line.at("dd.version"), &json!("1.4.2"));
    }
    // The low 64 bits in decimal: 0xa3ce929d0e0e4736 and 0x00f067aa0ba902b7.
    assert_eq!(hello.at("dd.trace_id"), &json!("11803532876627986230"));
    assert_eq!(hello.at("dd.span_id"), &json!("67667974448284343"));
    assert_eq!(hello.at("status"), &json!("info"));
    assert_eq!(access.at("http.method"), &json!("GET"));
    assert!(access.at("duration").is_u64(), "{access:?}");

    // Unset variables write nothing.
    let (lines, _) = format_lines(&[("LOG_FORMAT", "datadog"), ("DD_ENV", "")]);
    for line in &lines {
        assert!(line.get("dd.service").is_none() && line.get("dd.env").is_none());
    }
}

#[cfg(feature = "http")]
#[test]
fn an_unknown_log_format_says_so_and_writes_json() {
    let (lines, stderr) = format_lines(&[("LOG_FORMAT", "yaml")]);
    assert_eq!(
        stderr.trim(),
        "[tracing-ambient] LOG_FORMAT=\"yaml\" is not one of json, ecs, otel, gcp, datadog, \
         pretty: writing JSON lines"
    );
    let [hello, _, access] = by_message(&lines, "message");
    assert_eq!(hello.at("requestId"), &json!("boot"));
    assert!(access.at("latencyMs").is_f64());
}

// === LOG_FORMAT=pretty ===

#[cfg(feature = "http")]
/// A human-readable line of `init`, colours removed: time, level, message and the rest.
#[derive(Debug)]
struct PrettyLine {
    level: String,
    rest: String,
    coloured: bool,
}

#[cfg(feature = "http")]
/// The child's human-readable lines: those that hold a time of day, taken from it (the test
/// harness's `test child_format ... ` precedes the first on its line). Each is checked for
/// the documented `HH:MM:SS.mmm LEVEL` start.
fn pretty_lines(stdout: &str) -> Vec<PrettyLine> {
    let is_time = |t: &[u8]| {
        t.len() == 12
            && t.iter().enumerate().all(|(i, b)| match i {
                2 | 5 => *b == b':',
                8 => *b == b'.',
                _ => b.is_ascii_digit(),
            })
    };
    let mut lines = Vec::new();
    for raw in stdout.lines() {
        let plain = strip_ansi(raw.trim_end_matches('\r'));
        let bytes = plain.as_bytes();
        let Some(start) = (0..bytes.len().saturating_sub(11)).find(|&i| is_time(&bytes[i..i + 12]))
        else {
            assert!(
                !plain.contains('{'),
                "a JSON line among human-readable ones: {raw:?}"
            );
            continue;
        };
        let plain = &plain[start..];
        let level = plain[12..18].trim().to_owned();
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level.as_str()),
            "{plain:?}"
        );
        lines.push(PrettyLine {
            level,
            rest: plain[18..].trim_start().to_owned(),
            coloured: raw.contains('\x1b'),
        });
    }
    lines
}

#[cfg(feature = "http")]
/// The text of a line without its SGR escape sequences.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('m').expect("an SGR sequence ends in m");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(feature = "http")]
/// Checks `child_format`'s three lines as human-readable lines.
fn check_pretty(lines: &[PrettyLine], coloured: bool) {
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0].level, "INFO");
    assert!(
        lines[0].rest.starts_with("hello answer=42 [req=boot "),
        "{lines:?}"
    );
    assert_eq!(lines[1].level, "ERROR");
    assert!(
        lines[1]
            .rest
            .starts_with("failed error=\"query failed: timeout\" [req=boot "),
        "{lines:?}"
    );
    assert!(
        lines[2]
            .rest
            .starts_with("request completed method=GET path=/ok status=200 "),
        "{lines:?}"
    );
    for line in lines {
        assert_eq!(line.coloured, coloured, "{line:?}");
    }
}

#[cfg(feature = "http")]
#[test]
fn log_format_pretty_through_a_pipe_writes_plain_human_readable_lines() {
    let (stdout, stderr) = run_child_output("child_format", &[("LOG_FORMAT", "pretty")]);
    assert!(stderr.is_empty(), "{stderr}");
    check_pretty(&pretty_lines(&stdout), false);
}

#[cfg(feature = "http")]
/// Runs `child_format` under a pseudo-terminal made by `script`, with `env`; returns what the
/// terminal showed, `\r\n` made `\n`. Fails after 60 seconds.
fn run_child_in_terminal(env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let line = format!(
        "'{}' --exact child_format --nocapture --test-threads=1",
        exe.display()
    );
    let mut command = Command::new("/usr/bin/script");
    // -q: no banner; -e: the child's exit status; -f: flush as it comes.
    command
        .args(["-qefc", &line, "/dev/null"])
        .env(CHILD, "1")
        .env_remove("RUST_LOG");
    for var in FORMAT_VARS {
        command.env_remove(var);
    }
    let mut child = command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not finish within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = String::from_utf8(reader.join().unwrap().unwrap()).unwrap();
    assert!(status.success(), "child failed: {text}");
    text.replace("\r\n", "\n")
}

#[cfg(feature = "http")]
#[test]
fn on_a_terminal_init_writes_coloured_human_readable_lines() {
    check_pretty(&pretty_lines(&run_child_in_terminal(&[])), true);
    // NO_COLOR keeps them plain; LOG_FORMAT=pretty is the same as unset on a terminal.
    check_pretty(
        &pretty_lines(&run_child_in_terminal(&[("NO_COLOR", "1")])),
        false,
    );
    check_pretty(
        &pretty_lines(&run_child_in_terminal(&[("LOG_FORMAT", "pretty")])),
        true,
    );
}

#[cfg(feature = "http")]
#[test]
fn on_a_terminal_a_json_format_or_an_unknown_one_writes_json() {
    let text = run_child_in_terminal(&[("LOG_FORMAT", "ecs")]);
    assert!(
        !text.contains('\x1b'),
        "JSON lines are never coloured: {text}"
    );
    let lines = log_lines(&text);
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        assert_eq!(line.keys()[..3], ["@timestamp", "log.level", "message"]);
    }
    // A value that names no format gives JSON on a terminal too, and says so (stderr goes
    // to the terminal as well).
    let text = run_child_in_terminal(&[("LOG_FORMAT", "yaml")]);
    assert!(text.contains("LOG_FORMAT=\"yaml\" is not one of"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "JSON lines are never coloured: {text}"
    );
    let lines = log_lines(&text);
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0].keys()[..3], ["timestamp", "level", "message"]);
}
