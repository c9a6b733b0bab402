//! `PrettyLayer` end to end (issue 11.4): every line it prints is parsed back by a strict
//! parser of the documented format (time, level, optional span name and target, message,
//! `key=value` fields, the `[..]` context block); the context rules on real threads and a
//! real tokio runtime; hostile values; panicking user code; failing writers; no allocation per
//! event; and `examples/pretty.rs` run as a child process under a pseudo-terminal (`script`)
//! and through a pipe, where `LogFormat::from_env` picks the output and its colours.

mod common;

// The example's code, compiled into this binary so that a child process of this binary can
// run it under a pseudo-terminal (see `child_example`).
#[path = "../examples/pretty.rs"]
mod example;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Capture;
use tracing::instrument::WithSubscriber;
use tracing::{info, info_span, Instrument};
use tracing_ambient::{Context, JsonLayer, KeepSpans, PrettyLayer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

// === the parser ===

/// One human-readable line, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Pretty {
    time: String,
    level: String,
    /// The span name and the target, when the layer writes them, each without its `:`.
    origins: Vec<String>,
    /// The message as written (free text: control characters escaped, nothing unescaped).
    message: String,
    /// The fields, values unquoted and unescaped.
    fields: Vec<(String, String)>,
    /// The context block's entries, values unquoted and unescaped; empty when there is none.
    context: Vec<(String, String)>,
}

impl Pretty {
    /// The value of the field `key`, which must be there exactly once.
    fn field(&self, key: &str) -> &str {
        let found: Vec<_> = self.fields.iter().filter(|(k, _)| k == key).collect();
        assert_eq!(found.len(), 1, "field {key:?} once in {self:?}");
        &found[0].1
    }

    /// The context entries as `(&str, &str)`, to compare with a literal.
    fn context(&self) -> Vec<(&str, &str)> {
        self.context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn req(&self) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == "req")
            .map(|(_, v)| v.as_str())
    }
}

/// Parses everything a layer wrote: whole lines, each ending in `\n`.
fn parse_output(text: &str, origins: usize) -> Vec<Pretty> {
    if !text.is_empty() {
        assert!(text.ends_with('\n'), "output ends in a newline: {text:?}");
    }
    text.lines().map(|line| parse(line, origins)).collect()
}

/// Parses one line without colours, failing on anything the format does not allow.
fn parse(line: &str, origins: usize) -> Pretty {
    assert!(
        !line.chars().any(char::is_control),
        "no raw control character (ESC, CR, …) in {line:?}"
    );
    let time = line
        .get(..12)
        .unwrap_or_else(|| panic!("a time in {line:?}"));
    check_time(time);
    let rest = line[12..]
        .strip_prefix(' ')
        .expect("a space after the time");
    let level = rest.get(..5).expect("a level");
    let name = level.trim_start();
    assert!(
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&name)
            && level == format!("{name:>5}"),
        "a level right-aligned in five columns: {level:?}"
    );
    let mut rest = &rest[5..];
    let mut found_origins = Vec::new();
    for _ in 0..origins {
        rest = rest
            .strip_prefix(' ')
            .expect("a space before a span or target");
        let end = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(str::len))
            .unwrap_or_else(|| panic!("`name:` in {line:?}"));
        found_origins.push(rest[..end].to_owned());
        rest = &rest[end + 1..];
    }
    let mut context = Vec::new();
    if let Some(mut inner) = rest.strip_suffix(']') {
        loop {
            let (before, key, value) =
                take_entry_rev(inner).unwrap_or_else(|| panic!("a context entry in {line:?}"));
            context.push((key, value));
            if let Some(open) = before.strip_suffix('[') {
                rest = open
                    .strip_suffix(' ')
                    .expect("a space before the context block");
                break;
            }
            inner = before.strip_suffix(' ').expect("a space between entries");
        }
        context.reverse();
    }
    let mut fields = Vec::new();
    while let Some((before, key, value)) = take_entry_rev(rest) {
        let Some(before) = before.strip_suffix(' ') else {
            break;
        };
        fields.push((key, value));
        rest = before;
    }
    fields.reverse();
    let message = match rest {
        "" => String::new(),
        text => text
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("a space before the message in {line:?}"))
            .to_owned(),
    };
    assert!(!message.is_empty() || rest.is_empty(), "no empty message");
    Pretty {
        time: time.to_owned(),
        level: name.to_owned(),
        origins: found_origins,
        message,
        fields,
        context,
    }
}

/// `HH:MM:SS.mmm` with each part in range.
fn check_time(time: &str) {
    let b = time.as_bytes();
    let digits = [0, 1, 3, 4, 6, 7, 9, 10, 11];
    assert!(
        digits.iter().all(|&i| b[i].is_ascii_digit())
            && b[2] == b':'
            && b[5] == b':'
            && b[8] == b'.',
        "HH:MM:SS.mmm: {time:?}"
    );
    let part = |r: std::ops::Range<usize>| time[r].parse::<u32>().unwrap();
    assert!(
        part(0..2) < 24 && part(3..5) < 60 && part(6..8) < 60,
        "{time:?}"
    );
}

/// Milliseconds since midnight UTC of a parsed time.
fn time_of_day_ms(time: &str) -> u64 {
    let part = |r: std::ops::Range<usize>| time[r].parse::<u64>().unwrap();
    ((part(0..2) * 60 + part(3..5)) * 60 + part(6..8)) * 1000 + part(9..12)
}

/// Milliseconds since midnight UTC, now.
fn now_of_day_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (since.as_secs() % 86_400) * 1000 + u64::from(since.subsec_millis())
}

/// Takes the last `key=value` entry off `s`: returns what is before the key, the key, and
/// the value (unquoted and unescaped). `None` if `s` does not end with an entry.
fn take_entry_rev(s: &str) -> Option<(&str, String, String)> {
    let (before_value, value) = if let Some(body) = s.strip_suffix('"') {
        // The opening quote is the last `"` not escaped by an odd run of backslashes.
        let bytes = body.as_bytes();
        let mut end = bytes.len();
        let open = loop {
            let j = bytes[..end].iter().rposition(|&b| b == b'"')?;
            let slashes = bytes[..j].iter().rev().take_while(|&&b| b == b'\\').count();
            if slashes % 2 == 0 {
                break j;
            }
            end = j;
        };
        (&body[..open], unescape(&body[open + 1..]))
    } else {
        let start = s.rfind([' ', '[']).map_or(0, |i| i + 1);
        let token = &s[start..];
        let eq = token.find('=')?;
        let value = &token[eq + 1..];
        if value.is_empty() || value.contains(['"', '[', ']']) {
            return None;
        }
        (&s[..start + eq + 1], value.to_owned())
    };
    let before_eq = before_value.strip_suffix('=')?;
    let key_start = before_eq.rfind([' ', '[']).map_or(0, |i| i + 1);
    let key = &before_eq[key_start..];
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    is_key.then(|| (&before_eq[..key_start], key.to_owned(), value))
}

/// Undoes the escapes of a quoted value: `\"`, `\\`, `\n`, `\r`, `\t`, `\u{..}`.
fn unescape(quoted: &str) -> String {
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        assert_ne!(c, '"', "an unescaped quote inside {quoted:?}");
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                assert_eq!(chars.next(), Some('{'), "\\u{{ in {quoted:?}");
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).expect("hex digits");
                out.push(char::from_u32(code).expect("a char"));
            }
            other => panic!("unknown escape {other:?} in {quoted:?}"),
        }
    }
    out
}

/// Splits a coloured line into runs of text with the SGR code in effect (`""` after a
/// reset), and checks every escape sequence is an SGR one (`ESC [ digits m`).
fn colour_runs(line: &str) -> Vec<(String, String)> {
    let mut runs: Vec<(String, String)> = Vec::new();
    let mut code = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(seq) = rest.strip_prefix("\x1b[") {
            let end = seq.find('m').expect("an SGR sequence ends in m");
            let sgr = &seq[..end];
            assert!(sgr.chars().all(|c| c.is_ascii_digit()), "SGR {sgr:?}");
            code = if sgr == "0" {
                String::new()
            } else {
                sgr.to_owned()
            };
            rest = &seq[end + 1..];
            continue;
        }
        let next = rest.find('\x1b').unwrap_or(rest.len());
        match runs.last_mut() {
            Some((c, text)) if *c == code => text.push_str(&rest[..next]),
            _ => runs.push((code.clone(), rest[..next].to_owned())),
        }
        rest = &rest[next..];
    }
    assert!(code.is_empty(), "the line ends with a reset: {line:?}");
    runs
}

/// The line without its colours.
fn strip_ansi(line: &str) -> String {
    colour_runs(line)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

// === fixtures ===

fn dispatch(layer: PrettyLayer<Capture>) -> tracing::Dispatch {
    tracing_subscriber::registry()
        .with(layer.with_filter(KeepSpans::new(EnvFilter::new("trace"))))
        .into()
}

/// Runs `f` with a `PrettyLayer` (as `configure` makes it) writing to a capture, on this
/// thread; returns what was written.
fn capture_with(
    configure: impl FnOnce(PrettyLayer<Capture>) -> PrettyLayer<Capture>,
    f: impl FnOnce(),
) -> String {
    let capture = Capture::default();
    let layer = configure(PrettyLayer::new(capture.clone()));
    tracing::dispatcher::with_default(&dispatch(layer), f);
    capture.text()
}

fn capture(f: impl FnOnce()) -> String {
    capture_with(|layer| layer, f)
}

/// Runs `f` on a new OS thread with this thread's subscriber.
fn on_thread(f: impl FnOnce() + Send + 'static) {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::spawn(move || tracing::dispatcher::with_default(&dispatch, f))
        .join()
        .unwrap();
}

/// An error with an optional cause.
#[derive(Debug)]
struct Failed(&'static str, Option<Box<dyn Error + Send + Sync>>);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Failed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|cause| cause as _)
    }
}

fn query_failed() -> Failed {
    Failed(
        "query failed",
        Some(Box::new(Failed(
            "connection reset",
            Some(Box::new(Failed("timeout", None))),
        ))),
    )
}

/// A value whose `Debug` and `Display` panic.
struct Bomb;

impl fmt::Debug for Bomb {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug blew up")
    }
}

impl fmt::Display for Bomb {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display blew up")
    }
}

/// An error whose `source()` panics.
#[derive(Debug)]
struct BadSource;

impl fmt::Display for BadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outer")
    }
}

impl Error for BadSource {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        panic!("source blew up")
    }
}

/// An error whose cause's `Display` panics.
#[derive(Debug)]
struct BadCause(BombError);

#[derive(Debug)]
struct BombError;

impl fmt::Display for BombError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("cause blew up")
    }
}

impl Error for BombError {}

impl fmt::Display for BadCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outer")
    }
}

impl Error for BadCause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

const PANICKED: &str = "<panicked while formatting>";

// === the line ===

#[test]
fn line_has_the_documented_parts() {
    let before = now_of_day_ms();
    let text = capture(|| {
        info!("outside any request");
        Context::new()
            .with_request_id("9f1c")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with_span_id("00f067aa0ba902b7")
            .in_scope(|| {
                tracing_ambient::set_user_id(42);
                tracing_ambient::set("tenant_id", "acme");
                info!(order_id = 42, "order placed");
                tracing::warn!(order_id = 42);
            });
    });
    let after = now_of_day_ms();
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        let t = time_of_day_ms(&line.time);
        // Modulo a day, so that a run across midnight UTC passes too.
        let since = (t + 86_400_000 - before) % 86_400_000;
        assert!(
            since <= (after + 86_400_000 - before) % 86_400_000,
            "{line:?}"
        );
    }
    assert_eq!(lines[0].level, "INFO");
    assert_eq!(lines[0].message, "outside any request");
    assert!(lines[0].fields.is_empty() && lines[0].context.is_empty());

    assert_eq!(lines[1].message, "order placed");
    assert_eq!(lines[1].fields, [("order_id".into(), "42".into())]);
    let context = [
        ("req", "9f1c"),
        ("user", "42"),
        ("trace", "4bf92f35"),
        ("tenant_id", "acme"),
    ];
    assert_eq!(lines[1].context(), context);

    assert_eq!(lines[2].level, "WARN");
    assert_eq!(lines[2].message, "", "an event without a message");
    assert_eq!(lines[2].field("order_id"), "42");
    assert_eq!(lines[2].context(), context);
}

#[test]
fn span_name_and_target_when_on() {
    let text = capture_with(
        |layer| layer.with_span_name(true).with_target(true),
        || {
            Context::new().with_request_id("r1").in_scope(|| {
                info_span!("checkout").in_scope(|| {
                    info!(target: "shop::orders", "in a span");
                });
                info!(target: "shop::orders", "no span");
            });
        },
    );
    let lines: Vec<Pretty> = text
        .lines()
        .enumerate()
        .map(|(i, line)| parse(line, if i == 0 { 2 } else { 1 }))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].origins, ["checkout", "shop::orders"]);
    assert_eq!(lines[0].message, "in a span");
    assert_eq!(lines[1].origins, ["shop::orders"]);
    assert_eq!(lines[1].req(), Some("r1"));
}

#[test]
fn numbers_and_booleans_as_rust_prints_them() {
    let text = capture(|| {
        info!(
            neg = -7i64,
            max = u64::MAX,
            big = i128::MIN,
            half = 1.5f64,
            whole = 2.0f64,
            nan = f64::NAN,
            inf = f64::INFINITY,
            ninf = f64::NEG_INFINITY,
            yes = true,
            "numbers"
        );
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 1, "{text}");
    let expected = [
        ("neg", "-7"),
        ("max", "18446744073709551615"),
        ("big", "-170141183460469231731687303715884105728"),
        ("half", "1.5"),
        ("whole", "2.0"),
        ("nan", "NaN"),
        ("inf", "inf"),
        ("ninf", "-inf"),
        ("yes", "true"),
    ];
    let fields: Vec<(&str, &str)> = lines[0]
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(fields, expected);
}

#[test]
fn values_are_read_back_whatever_they_hold() {
    let table = [
        "plain",
        "two words",
        "",
        r#"say "hi""#,
        r"C:\dir\file",
        r#"\" tricky \\""#,
        "line\nbreak\r\n",
        "tab\there",
        "\x1b[31mred\x1b[0m",
        "a]b [c]",
        "ünïcødé ✓",
        "nul\0 bell\x07 nel\u{85} ls\u{2028}",
        "k=v",
    ];
    let text = capture(|| {
        Context::new().with_request_id("r]1 x").in_scope(|| {
            for value in table {
                info!(value, debug = ?value, "v");
            }
        });
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), table.len(), "one line per event: {text}");
    for (line, value) in lines.iter().zip(table) {
        assert_eq!(line.field("value"), value);
        assert_eq!(line.field("debug"), format!("{value:?}"));
        assert_eq!(line.context(), [("req", "r]1 x")]);
    }
    // Bare only when nothing needs quoting.
    let raw: Vec<&str> = text.lines().collect();
    assert!(raw[0].contains(" value=plain "), "{}", raw[0]);
    assert!(raw[1].contains(r#" value="two words" "#), "{}", raw[1]);
    assert!(raw[4].contains(r" value=C:\dir\file "), "{}", raw[4]);
}

#[test]
fn a_message_with_newlines_and_escapes_stays_one_line() {
    let text = capture(|| {
        info!("first\nsecond\r\n\x1b[2Jcleared\tend");
        info!(message = "as a field\n", n = 1);
        info!("next");
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0].message, r"first\nsecond\r\n\u{1b}[2Jcleared\tend");
    assert_eq!(lines[1].message, r"as a field\n");
    assert_eq!(lines[1].fields, [("n".into(), "1".into())]);
    assert_eq!(lines[2].message, "next");
}

#[test]
fn errors_are_written_with_their_source_chain() {
    let text = capture(|| {
        Context::new().with_request_id("9f1c").in_scope(|| {
            let err = query_failed();
            tracing::error!(error = &err as &dyn Error, "checkout failed");
            let single = Failed("not found", None);
            tracing::warn!(error = &single as &dyn Error, retry = false);
        });
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].level, "ERROR");
    assert_eq!(lines[0].message, "checkout failed");
    assert_eq!(
        lines[0].fields,
        [(
            "error".into(),
            "query failed: connection reset: timeout".into()
        )]
    );
    assert_eq!(lines[0].req(), Some("9f1c"));
    assert_eq!(lines[1].field("error"), "not found");
    assert_eq!(lines[1].field("retry"), "false");
}

#[test]
fn panicking_user_code_is_replaced_and_the_next_line_is_whole() {
    let text = capture(|| {
        Context::new().with_request_id("r1").in_scope(|| {
            info!(bomb = ?Bomb, after = 1, "debug panics");
            info!(bomb = %Bomb, "display panics");
            info!("message {}", Bomb);
            let err = BadSource;
            tracing::error!(error = &err as &dyn Error, "source panics");
            let err = BadCause(BombError);
            tracing::error!(error = &err as &dyn Error, "cause panics");
            info!(n = 2, "next");
        });
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0].field("bomb"), PANICKED);
    assert_eq!(lines[0].field("after"), "1");
    assert_eq!(lines[1].field("bomb"), PANICKED);
    assert_eq!(lines[2].message, PANICKED);
    assert_eq!(lines[3].field("error"), format!("outer: {PANICKED}"));
    assert_eq!(lines[4].field("error"), format!("outer: {PANICKED}"));
    assert_eq!(lines[5].message, "next");
    assert_eq!(lines[5].field("n"), "2");
    assert!(lines.iter().all(|l| l.req() == Some("r1")), "{lines:?}");
}

#[test]
fn log_crate_records_carry_the_context_without_log_fields() {
    tracing_log::LogTracer::init().expect("the only log logger of this binary");
    let text = capture_with(
        |layer| layer.with_target(true),
        || {
            Context::new().with_request_id("r1").in_scope(|| {
                log::warn!(target: "legacy::db", "slow query");
            });
        },
    );
    let lines = parse_output(&text, 1);
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0].level, "WARN");
    assert_eq!(lines[0].origins, ["legacy::db"]);
    assert_eq!(lines[0].message, "slow query");
    assert!(
        lines[0].fields.is_empty(),
        "no log.* fields: {:?}",
        lines[0]
    );
    assert_eq!(lines[0].req(), Some("r1"));
}

// === the context rules ===

#[test]
fn every_line_under_a_request_carries_it_across_tasks_and_threads() {
    const REQUESTS: usize = 24;
    let capture = Capture::default();
    let dispatch = dispatch(PrettyLayer::new(capture.clone()));
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .enable_all()
        .build()
        .unwrap();

    #[tracing::instrument]
    async fn load(n: usize) {
        tokio::time::sleep(Duration::from_millis((n % 4) as u64)).await;
        info!(n, "loaded");
    }

    runtime.block_on(
        async {
            let mut tasks = Vec::new();
            for n in 0..REQUESTS {
                let ctx = Context::new().with_request_id(format!("req-{n}"));
                tasks.push(tokio::spawn(ctx.scope(async move {
                    info!(n, "received");
                    tokio::task::yield_now().await;
                    tracing_ambient::set_user_id(n);
                    load(n).await;
                    tracing_ambient::spawn(async move { info!(n, "spawned") })
                        .await
                        .unwrap();
                    let span = info_span!("blocking");
                    tokio::task::spawn_blocking(move || {
                        span.in_scope(|| info!(n, "in a span on a blocking thread"));
                    })
                    .await
                    .unwrap();
                })));
            }
            for task in tasks {
                task.await.unwrap();
            }
            info!("after");
        }
        .instrument(info_span!("test"))
        .with_subscriber(dispatch),
    );
    drop(runtime);

    let text = capture.text();
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), REQUESTS * 4 + 1, "{text}");
    for line in &lines[..lines.len() - 1] {
        let n = line.field("n");
        assert_eq!(line.req(), Some(format!("req-{n}").as_str()), "{line:?}");
        let user = line.context.iter().find(|(k, _)| k == "user");
        if line.message == "received" {
            assert_eq!(user, None, "{line:?}");
        } else {
            assert_eq!(user.map(|(_, v)| v.as_str()), Some(n), "{line:?}");
        }
    }
    let last = lines.last().unwrap();
    assert_eq!(last.message, "after");
    assert!(last.context.is_empty(), "{last:?}");
}

#[test]
fn explicit_parents_follow_the_json_rules() {
    let text = capture(|| {
        let a_span = Context::new()
            .with_request_id("a")
            .in_scope(|| info_span!("in_a"));
        let no_context = info_span!("no_context");
        let a = a_span.clone();
        on_thread(move || {
            // No scope: the explicit parent's context.
            info!(parent: &a, case = 1, "parent, no scope");
            Context::new().with_request_id("b").in_scope(|| {
                // A scope is active: the innermost scope wins over the parent.
                info!(parent: &a, case = 2, "parent inside scope b");
            });
        });
        let (a, none) = (a_span.clone(), no_context.clone());
        on_thread(move || {
            a.in_scope(|| {
                // The parent carries no context: the current span's.
                info!(parent: &none, case = 3, "context-less parent");
                // Parent none: the current span's (no scope active).
                info!(parent: None, case = 4, "no parent");
            });
            // Nothing current, no parent: no context.
            info!(case = 5, "nothing");
        });
    });
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 5, "{text}");
    let reqs: Vec<(&str, Option<&str>)> =
        lines.iter().map(|l| (l.field("case"), l.req())).collect();
    assert_eq!(
        reqs,
        [
            ("1", Some("a")),
            ("2", Some("b")),
            ("3", Some("a")),
            ("4", Some("a")),
            ("5", None)
        ]
    );
}

#[test]
fn beside_a_json_layer_both_write_the_same_context() {
    let (json, pretty) = (Capture::default(), Capture::default());
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new(json.clone()))
        .with(PrettyLayer::new(pretty.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = Context::new()
            .with_request_id("a")
            .in_scope(|| info_span!("a_span"));
        on_thread(move || {
            let _entered = span.enter();
            info!(i = 0, "span only");
            Context::new().with_request_id("b").in_scope(|| {
                info!(i = 1, "scope b inside span a");
                info_span!("inner").in_scope(|| info!(i = 2, "inner span"));
            });
            info!(i = 3, "back in a");
        });
        info!(i = 4, "nothing");
    });
    let json = json.lines();
    let pretty = parse_output(&pretty.text(), 0);
    assert_eq!(json.len(), 5);
    assert_eq!(pretty.len(), 5);
    let expected = [Some("a"), Some("b"), Some("b"), Some("a"), None];
    for ((j, p), want) in json.iter().zip(&pretty).zip(expected) {
        assert_eq!(j.at("i").to_string(), p.field("i"));
        assert_eq!(j.str("requestId"), want, "{j:?}");
        assert_eq!(p.req(), want, "{p:?}");
    }
}

#[test]
fn promoted_span_fields_reach_the_context() {
    let text = capture_with(
        |layer| layer.promote_span_field("tenant_id"),
        || {
            Context::new().with_request_id("r1").in_scope(|| {
                info_span!("load", tenant_id = "acme").in_scope(|| info!("loaded"));
            });
        },
    );
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0].context(), [("req", "r1"), ("tenant_id", "acme")]);
}

// === colours ===

/// The events of the colour tests.
fn colourful_events() {
    info!("outside");
    Context::new().with_request_id("9f1c").in_scope(|| {
        tracing_ambient::set_user_id(42);
        info!(order_id = 42, "order placed");
        let err = query_failed();
        tracing::error!(error = &err as &dyn Error, "checkout failed");
        tracing::warn!(note = "\x1b[31m not a colour", "escaped");
        tracing::debug!("debug");
        tracing::trace!("trace");
    });
}

#[test]
fn no_escape_code_when_colours_are_off() {
    let text = capture(colourful_events);
    assert!(!text.contains('\x1b'), "{text:?}");
    let lines = parse_output(&text, 0);
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[3].field("note"), "\x1b[31m not a colour");
}

#[test]
fn colours_when_on_mark_each_part_and_change_nothing_else() {
    let plain = parse_output(&capture(colourful_events), 0);
    let text = capture_with(|layer| layer.with_ansi(true), colourful_events);
    let raw: Vec<&str> = text.lines().collect();
    assert_eq!(raw.len(), 6, "{text}");
    // Without its colours, each line parses to what the plain layer wrote (but the time).
    for (line, plain) in raw.iter().zip(&plain) {
        let stripped = parse(&strip_ansi(line), 0);
        assert_eq!(
            Pretty {
                time: plain.time.clone(),
                ..stripped
            },
            *plain
        );
    }
    let runs = |i: usize| colour_runs(raw[i]);
    let with_code = |i: usize, code: &str| -> Vec<String> {
        runs(i)
            .into_iter()
            .filter(|(c, _)| c == code)
            .map(|(_, t)| t)
            .collect()
    };
    // The time dim, the level in its colour (from the module docs).
    let first = runs(1);
    assert_eq!(first[0].0, "2");
    check_time(&first[0].1);
    for (i, code, level) in [
        (1, "32", " INFO"),
        (2, "31", "ERROR"),
        (3, "33", " WARN"),
        (4, "34", "DEBUG"),
        (5, "35", "TRACE"),
    ] {
        assert_eq!(
            runs(i)[2],
            (code.to_owned(), level.to_owned()),
            "{:?}",
            raw[i]
        );
    }
    // Field keys dim, the context block cyan, error values red.
    assert_eq!(with_code(1, "2")[1..], ["order_id=".to_owned()]);
    assert_eq!(with_code(1, "36"), ["[req=9f1c user=42]"]);
    assert_eq!(with_code(0, "36"), Vec::<String>::new());
    assert_eq!(
        with_code(2, "31"),
        ["ERROR", "\"query failed: connection reset: timeout\""]
    );
    // A logged ESC is escaped, not a colour.
    assert!(with_code(3, "")
        .iter()
        .any(|t| t.contains(r#""\u{1b}[31m not a colour""#)));
}

// === guarantees ===

/// A writer that fails, or panics, on every write.
#[derive(Clone, Copy)]
struct Broken {
    panics: bool,
}

impl io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        if self.panics {
            panic!("writer blew up");
        }
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Broken {
    type Writer = Broken;

    fn make_writer(&'a self) -> Broken {
        *self
    }
}

#[test]
fn failed_and_panicking_writes_are_counted_not_raised() {
    for panics in [false, true] {
        let layer = PrettyLayer::new(Broken { panics }).with_error_reporting(false);
        let errors = layer.error_counter();
        let good = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(layer)
            .with(PrettyLayer::new(good.clone()));
        tracing::subscriber::with_default(subscriber, || {
            info!("one");
            info!("two");
        });
        assert_eq!(errors.dropped_lines(), 2, "panics: {panics}");
        let lines = parse_output(&good.text(), 0);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].message, "two");
    }
}

/// Writes one `write` call per line into a shared list, to count the calls.
#[derive(Clone, Default)]
struct Calls(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl io::Write for Calls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_line_is_one_write_and_threads_never_interleave() {
    const THREADS: usize = 8;
    const EVENTS: usize = 200;
    let calls = Calls::default();
    let for_layer = calls.clone();
    let subscriber = tracing_subscriber::registry()
        .with(PrettyLayer::new(move || for_layer.clone()).with_ansi(true));
    let dispatch = tracing::Dispatch::new(subscriber);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let ctx = Context::new().with_request_id(format!("t{t}"));
                    ctx.in_scope(|| {
                        for i in 0..EVENTS {
                            info!(t, i, text = "some words here", "event");
                        }
                    });
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let calls = calls.0.lock().unwrap();
    assert_eq!(calls.len(), THREADS * EVENTS);
    for call in calls.iter() {
        let text = std::str::from_utf8(call).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        let line = parse(&strip_ansi(text.trim_end_matches('\n')), 0);
        assert_eq!(line.req(), Some(format!("t{}", line.field("t")).as_str()));
    }
}

// --- no allocation per event ---

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

#[allow(unsafe_code)]
// Safety: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Discards bytes but counts them, so the work cannot be optimised away.
#[derive(Clone, Default)]
struct Discard(Arc<AtomicUsize>);

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_allocation_per_event_in_steady_state() {
    const EVENTS: usize = 10_000;
    let bytes = Discard::default();
    let for_layer = bytes.clone();
    let subscriber = tracing_subscriber::registry().with(
        PrettyLayer::new(move || for_layer.clone())
            .with_ansi(true)
            .with_span_name(true),
    );
    let err = query_failed();
    let allocations = tracing::subscriber::with_default(subscriber, || {
        Context::new()
            .with_request_id("9f1c")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with("tenant_id", "acme")
            .in_scope(|| {
                let span = info_span!("work");
                let _entered = span.enter();
                let event = || {
                    info!(
                        order_id = 42,
                        note = "two words",
                        list = ?[1, 2, 3],
                        error = &err as &dyn Error,
                        "order {} placed", 42
                    )
                };
                for _ in 0..100 {
                    event();
                }
                let before = ALLOCATIONS.with(Cell::get);
                for _ in 0..EVENTS {
                    event();
                }
                ALLOCATIONS.with(Cell::get) - before
            })
    });
    let written = bytes.0.load(Ordering::Relaxed);
    assert!(
        written > EVENTS * 100,
        "the lines were written: {written} bytes"
    );
    assert_eq!(allocations, 0, "allocations over {EVENTS} events");
}

// === the example, in a child process, under a pseudo-terminal and through a pipe ===

const CHILD: &str = "TRACING_AMBIENT_PRETTY_CHILD";
const BEGIN: &str = "<<< example begins >>>";
const END: &str = "<<< example ends >>>";

/// The child's part: runs `examples/pretty.rs` between two marker lines, so that the parent
/// can tell its lines from the test harness's. Does nothing unless started by a test below.
#[test]
fn child_example() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let marker = |text: &str| {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes()).unwrap();
        out.flush().unwrap();
    };
    marker(&format!("\n{BEGIN}\n"));
    example::main();
    marker(&format!("{END}\n"));
}

/// Runs `child_example` in a child process of this binary, under a pseudo-terminal made by
/// `script` when `pty` is set, with `LOG_FORMAT` and `NO_COLOR` unset but for `env`. Returns
/// the lines the example wrote. Fails after 60 seconds.
fn run_example(pty: bool, env: &[(&str, &str)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let args = [
        "--exact",
        "child_example",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut command = if pty {
        let line = format!("'{}' {}", exe.display(), args.join(" "));
        let mut script = Command::new("/usr/bin/script");
        // -q: no banner; -e: the child's exit status; -f: flush as it comes.
        script.args(["-qefc", &line, "/dev/null"]);
        script
    } else {
        let mut child = Command::new(&exe);
        child.args(args);
        child
    };
    command
        .env(CHILD, "1")
        .env_remove("LOG_FORMAT")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the child starts");
    // Both pipes are drained while the child runs, so a full pipe cannot stall it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            pipe.read_to_end(&mut out).map(|_| out)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8(stdout.join().unwrap().unwrap()).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap().unwrap()).into_owned();
    assert!(status.success(), "child failed: {text}\n{stderr}");
    // A terminal turns `\n` into `\r\n`.
    let text = if pty {
        text.replace("\r\n", "\n")
    } else {
        text
    };
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| *l == BEGIN);
    let end = lines.iter().position(|l| *l == END);
    let (Some(begin), Some(end)) = (begin, end) else {
        panic!("no markers in {text:?}");
    };
    lines[begin + 1..end]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Checks the example's four lines, parsed as human-readable lines.
fn check_example_pretty(lines: &[Pretty]) {
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let context = [("req", "9f1c"), ("user", "42"), ("tenant_id", "acme")];
    assert_eq!(
        (lines[0].level.as_str(), lines[0].message.as_str()),
        ("INFO", "starting")
    );
    assert_eq!(lines[0].field("version"), env!("CARGO_PKG_VERSION"));
    assert!(lines[0].context.is_empty());
    assert_eq!(
        (lines[1].level.as_str(), lines[1].message.as_str()),
        ("INFO", "order placed")
    );
    assert_eq!(lines[1].field("order_id"), "42");
    assert_eq!(
        (lines[2].level.as_str(), lines[2].message.as_str()),
        ("WARN", "retrying")
    );
    assert_eq!(lines[2].field("attempt"), "2");
    assert_eq!(lines[2].field("note"), "two words");
    assert_eq!(
        (lines[3].level.as_str(), lines[3].message.as_str()),
        ("ERROR", "checkout failed")
    );
    assert_eq!(
        lines[3].field("error"),
        "query failed: connection reset: timeout"
    );
    for line in &lines[1..] {
        assert_eq!(line.context(), context, "{line:?}");
    }
}

/// Checks the example's four lines, parsed as JSON.
fn check_example_json(lines: &[String]) {
    let lines: Vec<common::Line> = lines.iter().map(|l| common::parse_line(l)).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let messages: Vec<_> = lines.iter().map(|l| l.str("message").unwrap()).collect();
    assert_eq!(
        messages,
        ["starting", "order placed", "retrying", "checkout failed"]
    );
    assert_eq!(lines[0].get("requestId"), None);
    for line in &lines[1..] {
        assert_eq!(line.str("requestId"), Some("9f1c"));
        assert_eq!(line.at("userId"), &serde_json::json!(42));
    }
}

#[test]
fn on_a_terminal_the_example_writes_coloured_lines() {
    let raw = run_example(true, &[]);
    assert_eq!(raw.len(), 4, "{raw:#?}");
    let parsed: Vec<Pretty> = raw.iter().map(|l| parse(&strip_ansi(l), 0)).collect();
    check_example_pretty(&parsed);
    for (line, code) in raw.iter().zip(["32", "32", "33", "31"]) {
        let runs = colour_runs(line);
        assert_eq!(runs[0].0, "2", "the time is dim: {line:?}");
        assert_eq!(runs[2].0, code, "the level's colour: {line:?}");
    }
}

#[test]
fn on_a_terminal_with_no_color_the_example_writes_plain_lines() {
    let raw = run_example(true, &[("NO_COLOR", "1")]);
    assert!(raw.iter().all(|l| !l.contains('\x1b')), "{raw:#?}");
    let parsed: Vec<Pretty> = raw.iter().map(|l| parse(l, 0)).collect();
    check_example_pretty(&parsed);
}

#[test]
fn on_a_terminal_with_log_format_json_the_example_writes_json() {
    check_example_json(&run_example(true, &[("LOG_FORMAT", "json")]));
}

#[test]
fn through_a_pipe_the_example_writes_json() {
    check_example_json(&run_example(false, &[]));
}

#[test]
fn through_a_pipe_with_log_format_pretty_the_example_writes_plain_lines() {
    let raw = run_example(false, &[("LOG_FORMAT", "pretty")]);
    assert!(raw.iter().all(|l| !l.contains('\x1b')), "{raw:#?}");
    let parsed: Vec<Pretty> = raw.iter().map(|l| parse(l, 0)).collect();
    check_example_pretty(&parsed);
}
