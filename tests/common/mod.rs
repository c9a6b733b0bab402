//! Fixtures shared by the end-to-end tests: a capturing writer, a strict line parser, and a
//! child process's output that fails the test instead of hanging it.
#![allow(dead_code)]

pub mod elastic;

use std::fmt;
use std::io::{self, Read};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` that keeps every byte written, one lock per line.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

pub struct CaptureWriter<'a>(MutexGuard<'a, Vec<u8>>);

impl io::Write for CaptureWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Capture {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("output is UTF-8")
    }

    /// Every line written so far, parsed strictly (see [`parse_line`]).
    pub fn lines(&self) -> Vec<Line> {
        let bytes = self.0.lock().unwrap().clone();
        parse_lines(&bytes)
    }
}

/// Parses NDJSON: every line must end in `\n` and be one JSON object without duplicate keys.
pub fn parse_lines(bytes: &[u8]) -> Vec<Line> {
    let text = std::str::from_utf8(bytes).expect("output is UTF-8");
    if !text.is_empty() {
        assert!(text.ends_with('\n'), "output ends in a newline");
    }
    text.lines().map(parse_line).collect()
}

/// One parsed line: its keys in order and its values.
#[derive(Debug, Clone)]
pub struct Line {
    pub entries: Vec<(String, Value)>,
}

impl Line {
    pub fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The value of `key`, which must be there.
    pub fn at(&self, key: &str) -> &Value {
        self.get(key)
            .unwrap_or_else(|| panic!("line has no key {key:?}: {self:?}"))
    }
}

/// Parses one line as a JSON object, failing on a duplicate key anywhere in it.
pub fn parse_line(text: &str) -> Line {
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de
        .deserialize_map(Strict)
        .unwrap_or_else(|e| panic!("invalid line {text:?}: {e}"));
    de.end()
        .unwrap_or_else(|e| panic!("trailing bytes in {text:?}: {e}"));
    Line { entries }
}

struct Strict;

impl<'de> Visitor<'de> for Strict {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value: Value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}

/// How long a child process of a test may run: far more than any takes (the slowest, 200,000
/// lines through a pipe on a debug build, some seconds), so that one that hangs fails the test
/// and names itself instead of holding CI until its own limit.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `command` as [`Command::output`] does (stdout and stderr piped and read whole), but
/// kills the child and panics, with what it wrote so far, if it has not exited within
/// [`CHILD_TIMEOUT`].
#[track_caller]
pub fn output_within_timeout(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            // A read error ends the output; what was read is kept.
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped")));
    let stderr = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "the child did not exit within {CHILD_TIMEOUT:?}; its stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}
