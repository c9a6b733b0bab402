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
//! The comment holds `request_id`, `traceparent` and `tracestate` (those the context has), in
//! that order (sorted by key), as `key='value'` separated by commas. Values are
//! percent-encoded: every byte other than `A-Z a-z 0-9 - . _ ~` becomes `%XX`, so no value can
//! end the comment (`*/`), the quoted value (`'`) or the line, whatever the context holds.
//! The comment goes before a trailing `;`, or at the end.
//!
//! A statement that already has a comment (`/*` or `--` anywhere), or that is tagged outside
//! any context, is returned unchanged and without a copy.
//!
//! [sqlcommenter]: https://google.github.io/sqlcommenter/spec/

use std::borrow::Cow;

use crate::Context;

/// Returns `sql` with a comment naming the current request: its request id, `traceparent`
/// and `tracestate`. See the [module docs](self) for the format.
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
    if sql.contains("/*") || sql.contains("--") {
        return Cow::Borrowed(sql);
    }
    let Some(comment) = comment() else {
        return Cow::Borrowed(sql);
    };
    let body = sql.trim_end();
    Cow::Owned(match body.strip_suffix(';') {
        Some(statement) => format!("{} /*{comment}*/;", statement.trim_end()),
        None => format!("{body} /*{comment}*/"),
    })
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
    let ctx = Context::current()?;
    let mut out = String::new();
    if let Some(id) = ctx.request_id() {
        push_pair(&mut out, "request_id", &id);
    }
    if let Some(tp) = crate::trace_context::request_traceparent(&ctx) {
        push_pair(&mut out, "traceparent", &tp.to_string());
    }
    if let Some(ts) = crate::trace_context::incoming_tracestate(&ctx) {
        push_pair(&mut out, "tracestate", ts.as_str());
    }
    (!out.is_empty()).then_some(out)
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(key);
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
