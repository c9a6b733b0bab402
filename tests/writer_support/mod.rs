//! Child processes for the writer tests: the test binary runs one of its own tests as a child,
//! with stdout piped to the parent, and the parent checks every line the child wrote.
#![allow(dead_code)]

use std::process::{Command, Stdio};

use crate::common::{self, Line};

const CHILD: &str = "TRACING_AMBIENT_WRITER_CHILD";

/// Whether this process is a child started by [`child`]: child tests do nothing otherwise.
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The command that runs the test `name` of this binary as a child, with stdout and stderr
/// piped and stdin closed.
pub fn child(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The log lines of a child's stdout, each parsed strictly. The test harness prints there too
/// (`test child ... ` precedes the first line, `ok` follows the last), so a line is taken from
/// its first `{`, and lines without one are the harness's.
pub fn log_lines(stdout: &[u8]) -> Vec<Line> {
    let text = std::str::from_utf8(stdout).expect("stdout is UTF-8");
    text.lines().filter_map(log_line).collect()
}

/// One line of a child's stdout, parsed strictly from its first `{`, or `None` for a line of
/// the test harness (see [`log_lines`]).
pub fn log_line(text: &str) -> Option<Line> {
    text.find('{').map(|i| common::parse_line(&text[i..]))
}

/// Runs the child test `name` under `init()`'s defaults with `LOG_FORMAT=json`, fails if it
/// fails, and returns its log lines, each parsed strictly, checking that the writer dropped
/// none of them.
pub fn json_child_lines(name: &str) -> Vec<Line> {
    let lines = log_lines(json_child_stdout(name).as_bytes());
    assert!(
        lines
            .iter()
            .all(|l| l.str("message") != Some("log lines dropped")),
        "no line was dropped by the writer"
    );
    lines
}

/// Runs the child test `name` as [`json_child_lines`] does and returns its stdout as it is.
pub fn json_child_stdout(name: &str) -> String {
    let output = common::output_within_timeout(child(name).env("LOG_FORMAT", "json"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// The one JSON object the child printed on stderr, after `summary: `, to say what it did.
pub fn child_summary(stderr: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stderr);
    let summaries: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("summary: "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(summaries.len(), 1, "one summary on stderr: {text}");
    summaries.into_iter().next().unwrap()
}

/// Prints the child's summary on stderr for its parent to read.
pub fn print_summary(fields: serde_json::Value) {
    eprintln!("summary: {fields}");
}

/// What a child's stdout holds: lines with `message`, and the drop reports.
#[derive(Debug, Default)]
pub struct Tally {
    pub received: u64,
    pub reported: u64,
    pub reports: u64,
}

/// Counts the lines with `message` and adds up the `dropped` of the drop reports, failing on
/// any other line and on a malformed report.
pub fn tally(lines: &[Line], message: &str) -> Tally {
    let mut tally = Tally::default();
    for line in lines {
        match line.str("message") {
            Some(m) if m == message => tally.received += 1,
            Some("log lines dropped") => {
                assert_eq!(line.keys(), ["timestamp", "level", "message", "dropped"]);
                assert_eq!(line.str("level"), Some("warn"));
                let dropped = line.at("dropped").as_u64().expect("a count");
                assert!(dropped >= 1, "{line:?}");
                tally.reported += dropped;
                tally.reports += 1;
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    tally
}
