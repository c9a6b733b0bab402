//! The per-request store behind [`Context`]: one `Arc` shared by every task and span of the
//! request, holding each entry already serialized so that an event copies bytes.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use serde::Serialize;

use super::entries::{Entries, Known, MAX_CONTEXT_BYTES, MAX_EXTRA_KEYS};
use super::level;
use super::line_buffer::BufferSlot;
use super::slot::Slot;
use super::to_value::to_value;
use super::to_value::ValueError;
use super::value::Value;
use crate::trace_context::TraceInfo;

/// The request context: request id, user id, trace id, span id and any extra keys.
///
/// A `Context` is a handle: clones share one store, so a value set through any of them (or
/// through [`set`](crate::set) while the context is current) is seen by every later line of
/// the request, including lines from spans created before the value was set. Cloning is an
/// atomic increment.
///
/// # `set` shares, `with` copies
///
/// [`Context::set`] writes into the shared store: every handle sees the value. The `with*`
/// builders take the handle by value and copy on write when the store is shared, so deriving
/// a context for a job from the request's leaves the request alone:
///
/// ```
/// use tracing_ambient::Context;
///
/// let request = Context::new().with_request_id("r1"); // not shared yet: no copy
/// let job = request.clone().with("item", 7);           // shared: `job` gets its own store
/// assert!(request.get("item").is_none());
/// assert_eq!(job.request_id().as_deref(), Some("r1"));
/// request.set("user_id", 42);                           // later values are not copied over
/// assert!(job.get("user_id").is_none());
/// ```
///
/// # Examples
///
/// ```
/// use tracing_ambient::Context;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// Context::new()
///     .with_request_id("job-7")
///     .with("tenant_id", "acme")
///     .scope(async {
///         tracing::info!("job started"); // carries requestId and tenantId
///         assert_eq!(tracing_ambient::request_id().as_deref(), Some("job-7"));
///     })
///     .await;
/// # }
/// ```
///
/// # Keys
///
/// `request_id`, `user_id`, `trace_id` and `span_id` have their own places and their own names
/// in the [`Schema`](crate::Schema). Every other key is an extra key, stored in snake case
/// (`tenantId` and `tenant_id` are one key) and written in the schema's case, after the four.
/// Extra keys keep the order in which they were first set.
///
/// # Size
///
/// A context holds at most 64 extra keys, and its values (as JSON) and extra key names take at
/// most 8 KiB together, so that it never makes every line of its request long, nor its look-ups
/// slow. A new extra key past either bound is left out; a value that would take the context past
/// 8 KiB is replaced by the string `"[context full]"`. The first time that happens, the context
/// reports it with one `warn` line (message `context full`, target `tracing_ambient`, the key
/// under `key`) from the [`set`](Context::set) or builder that did it. Span fields promoted into
/// the context are bounded the same way; one that does not fit is reported by the context's
/// next `set`. The line-size cap of [`JsonLayer`](crate::JsonLayer) cuts context values too,
/// after everything else.
///
/// An extra key's names (as given in snake case, in camel case, each escaped for JSON) are
/// made once for the process and shared by every context that sets the key, so thousands of
/// open contexts with the same keys keep one copy of them and a line reads only each
/// context's values. The names of the first 1,024 distinct keys of up to 64 bytes are kept for
/// the life of the process (some 400 KiB at most); a longer key, and any key past those, has
/// its names kept per context instead, as values are.
///
/// ```
/// use tracing_ambient::Context;
///
/// let ctx = Context::new().with("claims", "x".repeat(10_000));
/// assert_eq!(ctx.get("claims").unwrap().to_string(), "[context full]");
/// ```
#[derive(Clone, Default)]
pub struct Context {
    inner: Arc<Store>,
}

/// What every handle to one context shares: the entries, and the context's own level beside
/// them rather than among them, so that the filter reads it with one atomic load and no lock.
#[derive(Debug, Default)]
pub(crate) struct Store {
    entries: RwLock<Entries>,
    /// The context's own level (see `level.rs`) in the low four bits, and the most verbose
    /// level it holds back (see `buffer.rs`) in the high four: each 0 for none, else
    /// `level::encode`'s value. One byte, so that the filter reads both with one load.
    pub(crate) levels: AtomicU8,
    /// The lines held back, once the context buffers.
    pub(crate) buffer: BufferSlot,
}

// === impl Context ===

impl Context {
    /// Returns a new, empty context.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new();
    /// assert_eq!(ctx.request_id(), None);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the request id and returns the context.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with_request_id("job-7");
    /// assert_eq!(ctx.request_id().as_deref(), Some("job-7"));
    /// ```
    #[must_use]
    pub fn with_request_id(self, value: impl Into<Value>) -> Self {
        let ctx = self.unshared();
        ctx.set_known(Known::RequestId, value.into());
        ctx
    }

    /// Sets the user id and returns the context.
    ///
    /// ```
    /// use tracing_ambient::{Context, Value};
    ///
    /// let ctx = Context::new().with_user_id(42);
    /// assert_eq!(ctx.get("user_id"), Some(Value::I64(42)));
    /// ```
    #[must_use]
    pub fn with_user_id(self, value: impl Into<Value>) -> Self {
        let ctx = self.unshared();
        ctx.set_known(Known::UserId, value.into());
        ctx
    }

    /// Sets the trace id and returns the context. The value is written as given; the HTTP
    /// middleware validates the ids it takes from a request.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(ctx.trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// ```
    #[must_use]
    pub fn with_trace_id(self, value: impl Into<Value>) -> Self {
        let ctx = self.unshared();
        ctx.set_known(Known::TraceId, value.into());
        ctx
    }

    /// Sets the span id and returns the context.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with_span_id("00f067aa0ba902b7");
    /// assert_eq!(ctx.get("spanId").unwrap().to_string(), "00f067aa0ba902b7");
    /// ```
    #[must_use]
    pub fn with_span_id(self, value: impl Into<Value>) -> Self {
        let ctx = self.unshared();
        ctx.set_known(Known::SpanId, value.into());
        ctx
    }

    /// Sets `key` to `value` (any `serde::Serialize` value) and returns the context. See
    /// [`Context::set`]; a value that cannot be serialized leaves the context as it was.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new()
    ///     .with("tenant_id", "acme")
    ///     .with("roles", ["admin", "editor"]);
    /// assert_eq!(ctx.get("tenantId").unwrap().to_string(), "acme");
    /// assert_eq!(ctx.get("roles").unwrap().to_string(), r#"["admin","editor"]"#);
    /// ```
    #[must_use]
    pub fn with(self, key: &str, value: impl Serialize) -> Self {
        let ctx = self.unshared();
        ctx.set(key, value);
        ctx
    }

    /// Sets `key` to `value` in this context, replacing any earlier value of the key.
    ///
    /// The value is anything `serde::Serialize`: strings, numbers and booleans keep their
    /// JSON type, sequences become arrays and structs and maps objects (`serde_json::json!`
    /// values too). It is serialized once, here, and copied as raw JSON onto each line.
    ///
    /// Every handle to the context sees the value, and so does every later line of the
    /// request. `request_id`, `user_id`, `trace_id` and `span_id` (in any case) set the
    /// well-known keys; any other key is an extra key.
    ///
    /// # Bad values
    ///
    /// A value whose `Serialize` impl fails or panics, or a map whose keys are not strings,
    /// leaves the context as it was and logs a `warn` line (target `tracing_ambient`) saying
    /// why. [`Context::try_set`] returns the error instead.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new();
    /// let handle = ctx.clone();
    /// ctx.set("userId", 7);
    /// ctx.set("roles", vec!["admin", "editor"]);
    /// assert_eq!(handle.get("user_id").unwrap().to_string(), "7");
    /// assert_eq!(handle.get("roles").unwrap().to_string(), r#"["admin","editor"]"#);
    /// ```
    pub fn set(&self, key: &str, value: impl Serialize) {
        if let Err(err) = self.try_set(key, value) {
            // Not the layer's own path: this runs in application code, like any `warn!`.
            tracing::warn!(target: "tracing_ambient", key, error = %err, "context value not set");
        }
    }

    /// Sets `key` to `value` as [`Context::set`] does, returning an error for a value that
    /// cannot be serialized (the context is left as it was).
    ///
    /// # Errors
    ///
    /// Returns a [`ValueError`] when the value's `Serialize` impl fails or panics, or a map
    /// key is not a string, char, integer or unit variant.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new();
    /// ctx.try_set("claims", serde_json::json!({"scope": ["read"], "sub": "u1"}))?;
    /// assert_eq!(
    ///     ctx.get("claims").unwrap().to_string(),
    ///     r#"{"scope":["read"],"sub":"u1"}"#
    /// );
    /// # Ok::<(), tracing_ambient::ValueError>(())
    /// ```
    pub fn try_set(&self, key: &str, value: impl Serialize) -> Result<(), ValueError> {
        let value = to_value(&value)?;
        let report = {
            let mut entries = self.write();
            entries.set(key, value);
            entries.take_report()
        };
        report_overflow(report);
        Ok(())
    }

    /// Sets `key` to a value that needs no serializing. For the layer's own callbacks (span
    /// fields promoted into the context): an overflow is left for the next `set` to report.
    pub(crate) fn set_value(&self, key: &str, value: Value) {
        self.write().set(key, value);
    }

    /// Returns the value of `key`, if set.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with("tenant_id", "acme");
    /// assert!(ctx.get("tenant_id").is_some());
    /// assert!(ctx.get("region").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).map(Cow::into_owned)
    }

    /// Returns the request id as a string, if set.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with_request_id(7);
    /// assert_eq!(ctx.request_id().as_deref(), Some("7"));
    /// ```
    pub fn request_id(&self) -> Option<String> {
        self.known_string(Known::RequestId)
    }

    /// Returns the user id as a string, if set.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with_user_id(42);
    /// assert_eq!(ctx.user_id().as_deref(), Some("42"));
    /// ```
    pub fn user_id(&self) -> Option<String> {
        self.known_string(Known::UserId)
    }

    /// Returns the trace id as a string, if set.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::Context::new().trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<String> {
        self.known_string(Known::TraceId)
    }

    /// Returns every entry as `(snake_case_key, value)`, the well-known keys first.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new().with("tenant_id", "acme").with_request_id("r1");
    /// let keys: Vec<String> = ctx.entries().into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["request_id", "tenant_id"]);
    /// ```
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.into_owned()))
            .collect()
    }

    /// Returns `true` if both handles share one store.
    ///
    /// ```
    /// let ctx = tracing_ambient::Context::new();
    /// assert!(ctx.same_as(&ctx.clone()));
    /// assert!(!ctx.same_as(&tracing_ambient::Context::new()));
    /// ```
    pub fn same_as(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Returns a clone of what the request's `traceparent` and `tracestate` said besides its
    /// ids (kept by the HTTP middleware).
    pub(crate) fn trace_info(&self) -> Option<TraceInfo> {
        self.read().trace_info.clone()
    }

    /// Returns this handle if it is the only one to its store, else a handle to a copy of the
    /// store: the `with*` builders copy on write, so `ctx.clone().with("item", 7)` never adds
    /// `item` to the request `ctx` belongs to.
    pub(super) fn unshared(self) -> Self {
        if Arc::strong_count(&self.inner) == 1 {
            return self;
        }
        let copy = self.read().clone();
        let ctx = Context {
            inner: Arc::new(Store {
                entries: RwLock::new(copy),
                levels: AtomicU8::new(0),
                buffer: BufferSlot::default(),
            }),
        };
        // The own level (counted as any level set), and the buffer below.
        let own = level::own(self.inner.levels.load(Ordering::Relaxed));
        level::update(&ctx.inner.levels, 0x0F, own);
        // The copy buffers as the original does, with a buffer of its own: the lines held
        // so far stay with the original.
        let limit = self.lock_buffer().as_ref().map(|b| b.limit);
        if let (Some(level), Some(limit)) = (self.buffer_level(), limit) {
            ctx.set_buffer(level, Some(limit));
        }
        ctx
    }

    /// Sets a well-known key without looking its name up.
    pub(crate) fn set_known(&self, known: Known, value: Value) {
        let slot = Slot::new(value);
        let report = {
            let mut entries = self.write();
            entries.set_known(known, slot);
            entries.take_report()
        };
        report_overflow(report);
    }

    fn known_string(&self, known: Known) -> Option<String> {
        self.read().known[known as usize]
            .as_ref()
            .map(Slot::to_display_string)
    }

    /// Returns what every handle to this context shares.
    #[inline]
    pub(crate) fn store(&self) -> &Store {
        &self.inner
    }

    /// Locks the entries for reading. The lock is only ever held to copy bytes, so it is
    /// never poisoned by a panic of ours; a poisoned lock is still read rather than lost.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the entries for writing (see [`Context::read`] on poisoning).
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        level::forget(*self.levels.get_mut());
    }
}

/// Says, once per context, that it had to leave a key out or replace a value. Called by
/// application code (`set`, the builders) after the context's lock is released, never on the
/// layer's own path.
fn report_overflow(key: Option<Box<str>>) {
    if let Some(key) = key {
        tracing::warn!(
            target: "tracing_ambient",
            key = &*key,
            max_keys = MAX_EXTRA_KEYS,
            max_bytes = MAX_CONTEXT_BYTES,
            "context full"
        );
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.read();
        f.debug_map().entries(entries.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::slot::INLINE;

    #[test]
    fn context_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Context>();
    }

    #[test]
    fn keys_are_one_in_any_case() {
        let ctx = Context::new().with("tenantId", "a").with("tenant_id", "b");
        assert_eq!(
            ctx.entries(),
            vec![("tenant_id".to_owned(), Value::from("b"))]
        );
        ctx.set("RequestId", "r");
        assert_eq!(ctx.request_id().as_deref(), Some("r"));
    }

    #[test]
    fn extras_keep_first_set_order() {
        let ctx = Context::new().with("b", 1).with("a", 2).with("b", 3);
        let keys: Vec<_> = ctx.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn builders_copy_a_shared_store_and_set_writes_into_it() {
        let ctx = Context::new().with_request_id("r1");
        let handle = ctx.clone();
        let job = ctx.clone().with("item", 7).with_user_id(1);
        assert!(!job.same_as(&ctx));
        assert_eq!(ctx.get("item"), None);
        assert_eq!(ctx.user_id(), None);
        assert_eq!(job.request_id().as_deref(), Some("r1"));
        handle.set("tenant_id", "acme");
        assert_eq!(ctx.get("tenant_id"), Some(Value::from("acme")));
        // A handle that is the only one keeps its store.
        let alone = Context::new();
        let before = Arc::as_ptr(&alone.inner);
        let after = alone.with("a", 1);
        assert_eq!(before, Arc::as_ptr(&after.inner));
    }

    #[test]
    fn trace_info_is_kept_and_not_an_entry() {
        let ctx = Context::new();
        ctx.write().trace_info = Some(TraceInfo {
            flags: 1,
            parent_id: Some([7; 8]),
            tracestate: None,
        });
        assert_eq!(ctx.trace_info().and_then(|i| i.parent_id), Some([7; 8]));
        assert!(ctx.entries().is_empty());
    }

    #[test]
    fn short_plain_strings_are_kept_inline_and_read_back() {
        let uuid = "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77";
        let fits = "x".repeat(INLINE - 2);
        let too_long = "x".repeat(INLINE - 1);
        // (given, its JSON as RFC 8259 writes it, kept inline)
        let cases: [(&str, String, bool); 8] = [
            ("", r#""""#.to_owned(), true),
            (uuid, format!(r#""{uuid}""#), true),
            (
                "caf\u{e9} \u{1F600}",
                "\"caf\u{e9} \u{1F600}\"".to_owned(),
                true,
            ),
            (&fits, format!(r#""{fits}""#), true),
            (&too_long, format!(r#""{too_long}""#), false),
            ("a\"b", r#""a\"b""#.to_owned(), false),
            ("back\\slash", r#""back\\slash""#.to_owned(), false),
            ("tab\there", r#""tab\there""#.to_owned(), false),
        ];
        for (given, json, inline) in cases {
            let slot = Slot::from_str(given);
            assert_eq!(slot.json(), json.as_bytes(), "{given:?}");
            assert_eq!(matches!(slot, Slot::Inline { .. }), inline, "{given:?}");
            assert_eq!(slot.value().into_owned(), Value::from(given), "{given:?}");
            assert_eq!(slot.to_display_string(), given, "{given:?}");
        }
        // Multi-byte characters are kept whole.
        let ctx = Context::new().with_request_id("r\u{e9}q-\u{1F600}");
        assert_eq!(ctx.request_id().as_deref(), Some("r\u{e9}q-\u{1F600}"));
        assert_eq!(
            ctx.get("request_id"),
            Some(Value::from("r\u{e9}q-\u{1F600}"))
        );
    }

    #[test]
    fn entries_are_serialized_when_set() {
        let ctx = Context::new().with("tenant_id", "a\"b").with_user_id(42);
        let entries = ctx.read();
        assert_eq!(
            entries.known[Known::UserId as usize]
                .as_ref()
                .unwrap()
                .json(),
            b"42"
        );
        assert_eq!(entries.extras[0].slot.json(), br#""a\"b""#);
        assert_eq!(&*entries.extras[0].key.camel, "tenantId");
    }
}
