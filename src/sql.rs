//! [sqlcommenter]-style tagging of SQL statements with the current request, so that a slow
//! query in the database's log or `pg_stat_activity` leads back to the request that ran it.
//!
//! # Example
//!
//! ```
//! use tracing_ambient::{sql, Context};
//!
//! let ctx = Context::new()
//!     .with_request_id("9f1c")
//!     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
//!     .with_span_id("00f067aa0ba902b7");
//! let tagged = ctx.in_scope(|| sql::tag("SELECT * FROM orders WHERE id = $1;").into_owned());
//! assert_eq!(
//!     tagged,
//!     "SELECT * FROM orders WHERE id = $1 \
//!      /*request_id='9f1c',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/;",
//! );
//! ```
//!
//! # Format
//!
//! The comment holds `request_id`, `traceparent` and `tracestate` (those the context has), or
//! the keys a [`Tagger`] chose, sorted by key, as `key='value'` separated by commas. Keys
//! and values are percent-encoded: every byte other than `A-Z a-z 0-9 - . _ ~` becomes
//! `%XX`, so no value can end the comment (`*/`), the quoted value (`'`) or the line,
//! whatever the context holds.
//! The comment goes before a trailing `;`, or at the end.
//!
//! A statement that already has a comment (`/*` or `--` anywhere), or that is tagged outside
//! any context, is returned unchanged and without a copy.
//!
//! # With Postgres
//!
//! Tag the text the client sends. Postgres's log (with `log_min_duration_statement` or
//! `log_statement`) and `pg_stat_activity.query` then show each statement with its comment:
//!
//! ```text
//! LOG:  duration: 0.210 ms  execute s3: SELECT id, total FROM orders WHERE id = $1 /*request_id='9f1c',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/
//! ```
//!
//! ```
//! use tokio_postgres::{Client, Error, Row};
//! use tracing_ambient::sql::{self, Tagger};
//!
//! // The request id, traceparent and tracestate: the statement names its request.
//! async fn order(db: &Client, id: i32) -> Result<Row, Error> {
//!     let query = sql::tag("SELECT id, total FROM orders WHERE id = $1");
//!     db.query_one(&*query, &[&id]).await
//! }
//!
//! // Only the route: one text for every request, see "Choosing the keys".
//! const BY_ROUTE: Tagger = Tagger::empty().context_keys(&["route"]);
//!
//! async fn orders_of(db: &Client, user: i32) -> Result<Vec<Row>, Error> {
//!     let query = BY_ROUTE.tag("SELECT id, total FROM orders WHERE user_id = $1");
//!     db.query(&*query, &[&user]).await
//! }
//!
//! // A handler sets its route where the context can see it (axum's `MatchedPath`, in a
//! // `route_layer` inside `RequestContextLayer`, can do it for every route at once).
//! async fn list_orders(db: &Client, user: i32) -> Result<usize, Error> {
//!     tracing_ambient::set("route", "/users/{id}/orders");
//!     Ok(orders_of(db, user).await?.len())
//! }
//! ```
//!
//! `tests/sql_postgres.rs` checks all of this against a real server.
//!
//! # Choosing the keys
//!
//! A request id or a `traceparent` is new in every request, so a statement tagged with one
//! has a text of its own each time it runs. Whatever keys statements by their text then sees
//! each run as a new statement: a client's prepared-statement cache (sqlx's, pgjdbc's,
//! deadpool-postgres's `prepare_cached`) misses every time and prepares again, and a log
//! tool that groups statements by text finds one statement per request. `pg_stat_statements`
//! still counts such runs as one statement, since it groups by the parsed statement and
//! comments are not part of that, but the text it shows for the group is the first run's,
//! with that one request's id in it. Postgres's log and `pg_stat_activity` show each run
//! with its own comment, which is the point of tagging.
//!
//! Where that matters, tag with values that many requests share, such as the route or the
//! handler ([`Tagger::empty`]`().`[`context_keys`](Tagger::context_keys)`(&["route"])`), or
//! tag only the statements worth finding (the slow or rare ones) and leave the hot ones plain.
//! [`Tagger`] chooses the keys; [`tag`] writes all three request keys.
//!
//! ```
//! use tracing_ambient::{sql, Context};
//!
//! // Once, beside the queries: the same text for every request on a route.
//! const BY_ROUTE: sql::Tagger = sql::Tagger::empty().context_keys(&["route"]);
//!
//! # let ctx = Context::new().with_request_id("9f1c").with("route", "/orders/{id}");
//! # ctx.in_scope(|| {
//! // In a request whose context has `route` (set by a middleware that knows the route):
//! let q = BY_ROUTE.tag("SELECT * FROM orders WHERE id = $1");
//! assert_eq!(q, "SELECT * FROM orders WHERE id = $1 /*route='%2Forders%2F%7Bid%7D'*/");
//! # });
//! ```
//!
//! [sqlcommenter]: https://google.github.io/sqlcommenter/spec/

use std::borrow::Cow;

use crate::context::Context;

/// Returns `sql` with a comment naming the current request: its request id, `traceparent`
/// and `tracestate`. See the [module docs](self) for the format, and [`Tagger`] to choose
/// the keys.
///
/// ```
/// use tracing_ambient::{sql, Context};
///
/// // Outside a request, or with a comment already there, the statement is borrowed as is.
/// assert!(matches!(sql::tag("SELECT 1"), std::borrow::Cow::Borrowed("SELECT 1")));
/// let ctx = Context::new().with_request_id("r1");
/// ctx.in_scope(|| {
///     assert_eq!(sql::tag("SELECT 1"), "SELECT 1 /*request_id='r1'*/");
///     assert_eq!(sql::tag("SELECT 1 -- mine"), "SELECT 1 -- mine");
/// });
/// ```
pub fn tag(sql: &str) -> Cow<'_, str> {
    Tagger::new().tag(sql)
}

/// Returns the text of the comment [`tag`] would add, without `/*` and `*/`, `None` outside
/// a request. For query builders that take the comment on its own.
///
/// ```
/// use tracing_ambient::{sql, Context};
///
/// let ctx = Context::new().with_request_id("a'b");
/// assert_eq!(ctx.in_scope(sql::comment).as_deref(), Some("request_id='a%27b'"));
/// assert_eq!(sql::comment(), None);
/// ```
pub fn comment() -> Option<String> {
    Tagger::new().comment()
}

/// Tags statements with a chosen set of keys: any of the request id, `traceparent` and
/// `tracestate`, and context keys named by the application (a route, a tenant).
///
/// [`tag`] is `Tagger::new().tag`. A `Tagger` is `Copy` and its builder is `const`, so one
/// can be kept in a `const` and used at every call site. See the [module
/// docs](self#choosing-the-keys) for why a per-request value in the statement text has a
/// cost.
///
/// # Examples
///
/// Only the route, a value that many requests share, so that the statement text stays the
/// same from one request to the next:
///
/// ```
/// use tracing_ambient::{sql, Context};
///
/// const BY_ROUTE: sql::Tagger = sql::Tagger::empty().context_keys(&["route"]);
///
/// let ctx = Context::new()
///     .with_request_id("9f1c")
///     .with("route", "/orders/{id}");
/// ctx.in_scope(|| {
///     assert_eq!(
///         BY_ROUTE.tag("SELECT * FROM orders WHERE id = $1;"),
///         "SELECT * FROM orders WHERE id = $1 /*route='%2Forders%2F%7Bid%7D'*/;",
///     );
/// });
/// ```
///
/// Only the `traceparent`, for a database that joins its query samples to traces:
///
/// ```
/// use tracing_ambient::{sql, Context};
///
/// const TRACE_ONLY: sql::Tagger = sql::Tagger::empty().with_traceparent(true);
///
/// let ctx = Context::new()
///     .with_request_id("9f1c")
///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
///     .with_span_id("00f067aa0ba902b7");
/// ctx.in_scope(|| {
///     assert_eq!(
///         TRACE_ONLY.tag("SELECT 1"),
///         "SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
///     );
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Tagger {
    request_id: bool,
    traceparent: bool,
    tracestate: bool,
    context_keys: &'static [&'static str],
}

// === impl Tagger ===

impl Tagger {
    /// Returns a tagger with the keys [`tag`] writes: the request id, `traceparent` and
    /// `tracestate`.
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let ctx = Context::new().with_request_id("r1");
    /// let tagged = ctx.in_scope(|| sql::Tagger::new().tag("SELECT 1").into_owned());
    /// assert_eq!(tagged, "SELECT 1 /*request_id='r1'*/");
    /// ```
    pub const fn new() -> Self {
        Self {
            request_id: true,
            traceparent: true,
            tracestate: true,
            context_keys: &[],
        }
    }

    /// Returns a tagger with no keys, to add the chosen ones to. With none added it leaves
    /// every statement unchanged.
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let ctx = Context::new().with_request_id("r1");
    /// assert_eq!(ctx.in_scope(|| sql::Tagger::empty().tag("SELECT 1")), "SELECT 1");
    /// ```
    pub const fn empty() -> Self {
        Self {
            request_id: false,
            traceparent: false,
            tracestate: false,
            context_keys: &[],
        }
    }

    /// Sets whether the comment has `request_id`, the context's request id.
    ///
    /// Defaults to `true` for [`Tagger::new`], `false` for [`Tagger::empty`].
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let tagger = sql::Tagger::empty().with_request_id(true);
    /// let ctx = Context::new()
    ///     .with_request_id("r1")
    ///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .with_span_id("00f067aa0ba902b7");
    /// assert_eq!(ctx.in_scope(|| tagger.tag("SELECT 1")), "SELECT 1 /*request_id='r1'*/");
    /// ```
    pub const fn with_request_id(self, request_id: bool) -> Self {
        Self { request_id, ..self }
    }

    /// Sets whether the comment has `traceparent`, the W3C trace context of the request's
    /// span, when the context has a valid trace id and span id.
    ///
    /// Defaults to `true` for [`Tagger::new`], `false` for [`Tagger::empty`].
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let tagger = sql::Tagger::new().with_traceparent(false);
    /// let ctx = Context::new()
    ///     .with_request_id("r1")
    ///     .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    ///     .with_span_id("00f067aa0ba902b7");
    /// assert_eq!(ctx.in_scope(|| tagger.tag("SELECT 1")), "SELECT 1 /*request_id='r1'*/");
    /// ```
    pub const fn with_traceparent(self, traceparent: bool) -> Self {
        Self {
            traceparent,
            ..self
        }
    }

    /// Sets whether the comment has `tracestate`, the vendor trace state the request came
    /// with (see [`http::RequestContextLayer`](crate::http::RequestContextLayer)).
    ///
    /// Defaults to `true` for [`Tagger::new`], `false` for [`Tagger::empty`].
    ///
    /// ```
    /// let tagger = tracing_ambient::sql::Tagger::new().with_tracestate(false);
    /// assert_ne!(tagger, tracing_ambient::sql::Tagger::new());
    /// ```
    pub const fn with_tracestate(self, tracestate: bool) -> Self {
        Self { tracestate, ..self }
    }

    /// Sets the context keys (as given to [`Context::with`] or [`crate::set`]) whose values
    /// the comment also has, under the same names. A key the context lacks is left out, and
    /// so is one that repeats a key already chosen (`request_id`, `traceparent`,
    /// `tracestate` or an earlier one). Values are written as [`Display`](std::fmt::Display)
    /// prints them.
    ///
    /// Defaults to none.
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let tagger = sql::Tagger::empty().context_keys(&["tenant_id", "route"]);
    /// let ctx = Context::new().with("tenant_id", "acme").with("shard", 3);
    /// assert_eq!(ctx.in_scope(|| tagger.tag("SELECT 1")), "SELECT 1 /*tenant_id='acme'*/");
    /// ```
    pub const fn context_keys(self, context_keys: &'static [&'static str]) -> Self {
        Self {
            context_keys,
            ..self
        }
    }

    /// Returns `sql` with a comment holding the chosen keys of the current context. A
    /// statement that already has a comment, or that is tagged outside any context or in
    /// one that has none of the chosen keys, is returned unchanged and without a copy.
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let tagger = sql::Tagger::empty().context_keys(&["route"]);
    /// let ctx = Context::new().with("route", "health");
    /// assert_eq!(ctx.in_scope(|| tagger.tag("SELECT 1;")), "SELECT 1 /*route='health'*/;");
    /// assert_eq!(tagger.tag("SELECT 1;"), "SELECT 1;");
    /// ```
    pub fn tag<'q>(&self, sql: &'q str) -> Cow<'q, str> {
        if sql.contains("/*") || sql.contains("--") {
            return Cow::Borrowed(sql);
        }
        let Some(comment) = self.comment() else {
            return Cow::Borrowed(sql);
        };
        let body = sql.trim_end();
        Cow::Owned(match body.strip_suffix(';') {
            Some(statement) => format!("{} /*{comment}*/;", statement.trim_end()),
            None => format!("{body} /*{comment}*/"),
        })
    }

    /// Returns the text of the comment [`Tagger::tag`] would add, without `/*` and `*/`;
    /// `None` outside a request or when the context has none of the chosen keys.
    ///
    /// ```
    /// use tracing_ambient::{sql, Context};
    ///
    /// let tagger = sql::Tagger::new().context_keys(&["tenant_id"]);
    /// let ctx = Context::new().with_request_id("r1").with("tenant_id", "acme");
    /// assert_eq!(
    ///     ctx.in_scope(|| tagger.comment()).as_deref(),
    ///     Some("request_id='r1',tenant_id='acme'"),
    /// );
    /// ```
    pub fn comment(&self) -> Option<String> {
        let ctx = Context::current()?;
        let mut pairs: Vec<(&str, String)> = Vec::with_capacity(3 + self.context_keys.len());
        if self.request_id {
            pairs.extend(ctx.request_id().map(|id| ("request_id", id)));
        }
        if self.traceparent {
            let tp = crate::trace_context::request_traceparent(&ctx);
            pairs.extend(tp.map(|tp| ("traceparent", tp.to_string())));
        }
        if self.tracestate {
            let ts = crate::trace_context::incoming_tracestate(&ctx);
            pairs.extend(ts.map(|ts| ("tracestate", ts.as_str().to_owned())));
        }
        for &key in self.context_keys {
            if pairs.iter().all(|&(chosen, _)| chosen != key) {
                pairs.extend(ctx.get(key).map(|value| (key, value.to_string())));
            }
        }
        if pairs.is_empty() {
            return None;
        }
        // The spec asks for the pairs sorted by key, so that one statement always reads the same.
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = String::new();
        for (key, value) in &pairs {
            push_pair(&mut out, key, value);
        }
        Some(out)
    }
}

impl Default for Tagger {
    /// Returns [`Tagger::new`].
    fn default() -> Self {
        Self::new()
    }
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    // Keys are the application's own names, encoded all the same as the spec asks.
    percent_encode(out, key);
    out.push_str("='");
    percent_encode(out, value);
    out.push('\'');
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn percent_encode(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag_in(ctx: &Context, sql: &str) -> String {
        ctx.in_scope(|| tag(sql).into_owned())
    }

    #[test]
    fn places_the_comment_before_a_trailing_semicolon() {
        let ctx = Context::new().with_request_id("r1");
        let cases = [
            ("SELECT 1", "SELECT 1 /*request_id='r1'*/"),
            ("SELECT 1;", "SELECT 1 /*request_id='r1'*/;"),
            ("SELECT 1 ;  \n", "SELECT 1 /*request_id='r1'*/;"),
            ("SELECT 1\n", "SELECT 1 /*request_id='r1'*/"),
        ];
        for (sql, expected) in cases {
            assert_eq!(tag_in(&ctx, sql), expected, "{sql:?}");
        }
    }

    #[test]
    fn leaves_commented_or_context_free_statements_alone() {
        let ctx = Context::new().with_request_id("r1");
        for sql in [
            "SELECT 1 /* mine */",
            "SELECT 1 -- mine",
            "/*+ hint */ SELECT 1",
        ] {
            assert!(matches!(ctx.in_scope(|| tag(sql)), Cow::Borrowed(s) if s == sql));
        }
        assert!(matches!(tag("SELECT 1"), Cow::Borrowed("SELECT 1")));
        assert!(matches!(
            Context::new().in_scope(|| tag("SELECT 1")),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn keys_are_sorted_and_values_encoded() {
        let ctx = Context::new()
            .with_request_id("r 1")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with_span_id("00f067aa0ba902b7");
        assert_eq!(
            tag_in(&ctx, "SELECT 1"),
            "SELECT 1 /*request_id='r%201',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"
        );
    }

    #[test]
    fn invalid_trace_ids_are_left_out() {
        let ctx = Context::new()
            .with_trace_id("*/ DROP TABLE x")
            .with_span_id("1");
        assert!(matches!(ctx.in_scope(|| tag("SELECT 1")), Cow::Borrowed(_)));
    }

    #[test]
    fn hostile_request_ids_stay_inside_the_comment() {
        let hostile = [
            "*/ DROP TABLE users; --",
            "a'b",
            "a\"b",
            "a\r\nb",
            "--",
            "/*",
            "\\'",
            "caf\u{e9}\u{0}",
        ];
        for id in hostile {
            let ctx = Context::new().with_request_id(id);
            let tagged = tag_in(&ctx, "SELECT 1;");
            let comment = tagged
                .strip_prefix("SELECT 1 /*request_id='")
                .and_then(|rest| rest.strip_suffix("'*/;"))
                .unwrap_or_else(|| panic!("{tagged:?}"));
            assert!(
                comment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{tagged:?}"
            );
            assert_eq!(decode(comment), id);
        }
    }

    #[test]
    fn a_tagger_writes_only_the_chosen_keys_sorted_with_the_context_keys() {
        let ctx = Context::new()
            .with_request_id("r1")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .with_span_id("00f067aa0ba902b7")
            .with("action", "list")
            .with("zone", 3)
            .with("route", "/orders");
        let tp = "traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'";
        let cases = [
            (Tagger::empty(), "SELECT 1".to_owned()),
            (Tagger::new(), format!("SELECT 1 /*request_id='r1',{tp}*/")),
            (
                Tagger::empty().with_traceparent(true),
                format!("SELECT 1 /*{tp}*/"),
            ),
            (
                Tagger::new().with_traceparent(false),
                "SELECT 1 /*request_id='r1'*/".to_owned(),
            ),
            (
                Tagger::empty().context_keys(&["route"]),
                "SELECT 1 /*route='%2Forders'*/".to_owned(),
            ),
            // Sorted by key across both kinds; a missing key is left out.
            (
                Tagger::new().context_keys(&["zone", "missing", "action"]),
                format!("SELECT 1 /*action='list',request_id='r1',{tp},zone='3'*/"),
            ),
            // A context key that repeats a chosen one is written once.
            (
                Tagger::empty()
                    .with_request_id(true)
                    .context_keys(&["request_id", "zone", "zone"]),
                "SELECT 1 /*request_id='r1',zone='3'*/".to_owned(),
            ),
        ];
        for (tagger, expected) in cases {
            assert_eq!(tag_with(&ctx, tagger, "SELECT 1"), expected, "{tagger:?}");
        }
    }

    #[test]
    fn a_tagger_with_nothing_to_write_borrows() {
        let ctx = Context::new().with_request_id("r1");
        for tagger in [
            Tagger::empty(),
            Tagger::empty().context_keys(&["route"]),
            Tagger::empty().with_traceparent(true).with_tracestate(true),
        ] {
            assert!(matches!(
                ctx.in_scope(|| tagger.tag("SELECT 1")),
                Cow::Borrowed(_)
            ));
            assert_eq!(ctx.in_scope(|| tagger.comment()), None);
        }
        assert_eq!(Tagger::default(), Tagger::new());
    }

    #[test]
    fn hostile_context_keys_and_values_stay_inside_the_comment() {
        const KEYS: &[&str] = &["tenant */ id", "it's"];
        let ctx = Context::new()
            .with("tenant */ id", "*/ DROP TABLE users; --")
            .with("it's", "a'\\b\n");
        let tagged = tag_with(&ctx, Tagger::empty().context_keys(KEYS), "SELECT 1");
        assert_eq!(
            tagged,
            "SELECT 1 /*it%27s='a%27%5Cb%0A',\
             tenant%20%2A%2F%20id='%2A%2F%20DROP%20TABLE%20users%3B%20--'*/"
        );
    }

    fn tag_with(ctx: &Context, tagger: Tagger, sql: &str) -> String {
        ctx.in_scope(|| tagger.tag(sql).into_owned())
    }

    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
