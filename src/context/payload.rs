//! `Context` as a small serde map, so it can ride in a job payload and be re-entered in
//! another process: `{"request_id":"job-7","user_id":42,"tenant_id":"acme"}`.
//!
//! # Deadline
//!
//! A deadline rides as the time remaining, in whole milliseconds rounded up, under the key
//! `$remainingMs`: `{"request_id":"job-7","$remainingMs":1500}`. The receiver's deadline is
//! that long after it deserializes the payload. Remaining time, not a wall-clock instant,
//! because the clocks of two machines disagree (gRPC's `grpc-timeout` makes the same
//! choice); the price is that time spent in between (a queue, the network) is not counted.
//! A job that may wait long in a queue should drop the deadline
//! ([`Context::without_deadline`]) or set its own. Elapsed time does not ride along: the
//! received context counts from when it was deserialized.
//!
//! The key has an upper-case letter, which no stored key has (keys are stored in snake
//! case), so it can never be confused with a context key.
//!
//! # Level
//!
//! A context's own level ([`Context::with_level`]) rides under the key `$logLevel`, as its
//! name in lower case: `{"request_id":"job-7","$logLevel":"debug"}`, so that the job a
//! request being debugged enqueues is debugged too (an upper-case letter again: never a
//! stored key). A consumer that takes payloads from producers it does not trust, who could
//! otherwise raise its level, drops it with [`Context::without_level`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::store::Context;
use super::value::Value;

/// The key of the time remaining until the deadline, in milliseconds.
const REMAINING_KEY: &str = "$remainingMs";
/// The key of the context's own level.
const LEVEL_KEY: &str = "$logLevel";

/// Serializes the entries as a map of snake-case keys, well-known keys first, then the time
/// remaining until the deadline and the context's own level, if any (see the module docs).
///
/// The entries are copied out first and serialized from the copy: the serializer is the
/// caller's code (its writer too), and it may log or `set` on this very context, or run
/// while another thread sets a key; none of that waits on the context's lock.
impl Serialize for Context {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.read().clone();
        let mut map = serializer.serialize_map(None)?;
        for (key, slot) in entries.slots() {
            map.serialize_entry(key, slot)?;
        }
        if let Some(deadline) = entries.deadline {
            map.serialize_entry(REMAINING_KEY, &remaining_ms(deadline, Instant::now()))?;
        }
        drop(entries);
        if let Some(level) = self.level() {
            map.serialize_entry(LEVEL_KEY, &level_name(level))?;
        }
        map.end()
    }
}

/// The whole milliseconds from `now` to `deadline`, rounded up so that a deadline with time
/// left never arrives as one that has passed; zero once it has.
fn remaining_ms(deadline: Instant, now: Instant) -> u64 {
    let left = deadline.saturating_duration_since(now);
    let ms = left.as_millis() + u128::from(!left.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The level's name as `$logLevel` carries it: `"error"` to `"trace"`.
fn level_name(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG => "debug",
        tracing::Level::TRACE => "trace",
    }
}

/// The most keys a deserialized context may have. A context is a handful of keys; the limit
/// keeps a hostile payload from making the worker do quadratic work.
const MAX_KEYS: usize = 1024;

/// Deserializes into a new context (a store of its own). `null` values are skipped; a payload
/// with more than 1,024 keys is an error. `$remainingMs` sets the deadline that many
/// milliseconds from now (one too far for the clock sets none); a value that is not a
/// non-negative integer is an error. `$logLevel` sets the context's own level; a value that is
/// not a level's name (`"error"` to `"trace"`, in any case) is an error.
impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ContextVisitor)
    }
}

struct ContextVisitor;

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of context keys to JSON values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
        let ctx = Context::new();
        let mut keys = 0;
        while let Some((key, value)) = map.next_entry::<String, Option<Value>>()? {
            keys += 1;
            if keys > MAX_KEYS {
                return Err(serde::de::Error::custom(format_args!(
                    "a context has at most {MAX_KEYS} keys"
                )));
            }
            match value {
                Some(value) if key == REMAINING_KEY => {
                    let ms = match value {
                        Value::I64(ms) => u64::try_from(ms).ok(),
                        Value::U64(ms) => Some(ms),
                        _ => None,
                    };
                    let ms = ms.ok_or_else(|| {
                        serde::de::Error::custom(format_args!(
                            "{REMAINING_KEY} must be a non-negative integer of milliseconds"
                        ))
                    })?;
                    // A hostile or absurd value is no deadline, never an overflow.
                    if let Some(deadline) = Instant::now().checked_add(Duration::from_millis(ms)) {
                        ctx.set_deadline(deadline);
                    }
                }
                Some(Value::Str(name)) if key == LEVEL_KEY => {
                    let level = name.parse::<tracing::Level>().map_err(|_| {
                        serde::de::Error::custom(format_args!(
                            "{LEVEL_KEY} must be a level: error, warn, info, debug or trace"
                        ))
                    })?;
                    ctx.set_level(level);
                }
                Some(_) if key == LEVEL_KEY => {
                    return Err(serde::de::Error::custom(format_args!(
                        "{LEVEL_KEY} must be a level: error, warn, info, debug or trace"
                    )))
                }
                Some(value) => ctx.set_value(&key, value),
                None => {}
            }
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_a_small_map() {
        let ctx = Context::new()
            .with("tenant_id", "acme")
            .with_request_id("job-7")
            .with_user_id(42);
        let text = serde_json::to_string(&ctx).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"request_id": "job-7", "user_id": 42, "tenant_id": "acme"})
        );
        let back: Context = serde_json::from_str(&text).unwrap();
        assert_eq!(back.entries(), ctx.entries());
        assert!(!back.same_as(&ctx));
    }

    #[test]
    fn nested_values_ride_along_and_huge_payloads_are_rejected() {
        let ctx: Context =
            serde_json::from_str(r#"{"user":{"id":1,"roles":["a"]},"user_id":null}"#).unwrap();
        assert_eq!(
            ctx.get("user").unwrap().to_string(),
            r#"{"id":1,"roles":["a"]}"#
        );
        assert_eq!(ctx.get("user_id"), None, "null values are skipped");
        let huge: serde_json::Map<String, serde_json::Value> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), i.into()))
            .collect();
        let err = serde_json::from_value::<Context>(huge.into()).unwrap_err();
        assert!(err.to_string().contains("at most 1024 keys"), "{err}");
    }

    #[test]
    fn the_deadline_rides_as_remaining_milliseconds_rounded_up() {
        let now = Instant::now();
        let table = [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_millis(1500), 1500),
            (Duration::from_micros(1_500_001), 1501),
        ];
        for (left, ms) in table {
            assert_eq!(remaining_ms(now + left, now), ms, "{left:?}");
        }
        assert_eq!(remaining_ms(now, now + Duration::from_secs(1)), 0, "passed");
    }

    #[test]
    fn hostile_deadlines_neither_panic_nor_pass_silently() {
        let huge: Context =
            serde_json::from_str(r#"{"request_id":"r","$remainingMs":18446744073709551615}"#)
                .unwrap();
        // 584 million years: past the clock somewhere (no deadline), far ahead elsewhere.
        let far = Instant::now() + Duration::from_secs(1 << 40);
        assert!(
            huge.deadline().is_none_or(|d| d > far),
            "{:?}",
            huge.deadline()
        );
        let text = serde_json::to_string(&huge).unwrap();
        assert!(text.contains(r#""$remainingMs":"#), "{text}");
        assert_eq!(huge.request_id().as_deref(), Some("r"));
        for bad in [r#"-1"#, r#"1.5"#, r#""10""#, r#"[1]"#] {
            let text = format!(r#"{{"$remainingMs":{bad}}}"#);
            let err = serde_json::from_str::<Context>(&text).unwrap_err();
            assert!(
                err.to_string().contains("non-negative integer"),
                "{bad}: {err}"
            );
        }
        let none: Context = serde_json::from_str(r#"{"$remainingMs":null}"#).unwrap();
        assert_eq!(none.deadline(), None);
        // Any other spelling is an ordinary key.
        let other: Context = serde_json::from_str(r#"{"remainingMs":5}"#).unwrap();
        assert_eq!(
            (other.deadline(), other.get("remaining_ms")),
            (None, Some(Value::I64(5)))
        );
    }

    /// A writer that runs code of the test's on each write, as a user's serializer (or its
    /// writer) may.
    struct Hooked<F: FnMut()>(Vec<u8>, F);

    impl<F: FnMut()> std::io::Write for Hooked<F> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            (self.1)();
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` on a thread of its own and returns its result, failing the test if it takes
    /// longer than the deadline (a deadlock, as the lock held across the serializer gave).
    fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(f());
        });
        wait.recv_timeout(Duration::from_secs(10))
            .expect("finished before the 10 s deadline (no deadlock)")
    }

    /// Issue 19 §4: a serializer that logs and sets on the context it serializes.
    #[test]
    fn a_serializer_that_logs_and_sets_on_the_context_does_not_deadlock() {
        use tracing_subscriber::prelude::*;

        let writer = crate::test_support::MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(crate::JsonLayer::new(writer.clone()));
        let (text, seen) = within_deadline(move || {
            tracing::subscriber::with_default(subscriber, || {
                let ctx = Context::new().with_request_id("job-7");
                let inner = ctx.clone();
                ctx.in_scope(|| {
                    let mut writes = 0;
                    let mut out = Hooked(Vec::new(), || {
                        writes += 1;
                        tracing::info!(writes, "serializing");
                        inner.set("writes", writes);
                    });
                    serde_json::to_writer(&mut out, &ctx).unwrap();
                    (String::from_utf8(out.0).unwrap(), ctx.get("writes"))
                })
            })
        });
        let payload: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(payload["request_id"], "job-7");
        // The copy was taken before the first write: the keys set during it are not in it.
        assert_eq!(payload.get("writes"), None, "{payload}");
        let Some(Value::I64(writes)) = seen else {
            panic!("the sets went through: {seen:?}")
        };
        let lines: Vec<serde_json::Value> = writer
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as i64, writes);
        assert!(writes >= 1);
        for line in &lines {
            assert_eq!(line["requestId"], "job-7", "{line}");
        }
    }

    /// Issue 19 §4: a `set` from another thread while a slow serializer runs is not held up
    /// by it. The serializer waits, on its first write, for the other thread's `set` to
    /// finish; with the lock held across it, neither could.
    #[test]
    fn a_set_from_another_thread_is_not_blocked_by_a_slow_serializer() {
        let ctx = Context::new().with_request_id("r1");
        let (set_done, wait_set) = std::sync::mpsc::channel();
        let (started, wait_start) = std::sync::mpsc::channel();
        let setter_ctx = ctx.clone();
        let setter = std::thread::spawn(move || {
            wait_start.recv().unwrap();
            setter_ctx.set("tenant_id", "acme");
            let _ = set_done.send(());
        });
        let serialized = within_deadline(move || {
            let mut waited = None;
            let mut out = Hooked(Vec::new(), || {
                if waited.is_none() {
                    started.send(()).unwrap();
                    waited = Some(wait_set.recv_timeout(Duration::from_secs(5)).is_ok());
                }
            });
            serde_json::to_writer(&mut out, &ctx).unwrap();
            (String::from_utf8(out.0).unwrap(), waited, ctx)
        });
        let (text, waited, ctx) = serialized;
        assert_eq!(
            waited,
            Some(true),
            "the set finished while the serializer ran"
        );
        setter.join().unwrap();
        let payload: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(payload, serde_json::json!({"request_id": "r1"}));
        assert_eq!(ctx.get("tenant_id"), Some(Value::from("acme")));
    }

    #[test]
    fn the_level_rides_along_and_a_bad_one_is_an_error() {
        let ctx = Context::new()
            .with_request_id("job-7")
            .with_level(tracing::Level::DEBUG);
        let text = serde_json::to_string(&ctx).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"request_id": "job-7", "$logLevel": "debug"})
        );
        let back: Context = serde_json::from_str(&text).unwrap();
        assert_eq!(back.level(), Some(tracing::Level::DEBUG));
        assert!(back.entries().iter().all(|(key, _)| !key.contains("level")));
        let upper: Context = serde_json::from_str(r#"{"$logLevel":"TRACE"}"#).unwrap();
        assert_eq!(upper.level(), Some(tracing::Level::TRACE));
        let none: Context = serde_json::from_str(r#"{"$logLevel":null}"#).unwrap();
        assert_eq!(none.level(), None);
        for bad in [r#""loud""#, "4", "[]"] {
            let text = format!(r#"{{"$logLevel":{bad}}}"#);
            let err = serde_json::from_str::<Context>(&text).unwrap_err();
            assert!(err.to_string().contains("must be a level"), "{bad}: {err}");
        }
    }
}
