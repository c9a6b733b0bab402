//! `init()` in a real process: the test binary runs itself as a child with `init()` installed
//! and reads the child's stdout.

mod common;

use std::process::Command;

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
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
