//! [`LogFormat`]: which output to write, JSON or human-readable lines with or without
//! colours, decided from `LOG_FORMAT`, `NO_COLOR` and whether stdout is a terminal.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The output format for stdout: JSON lines for log pipelines, human-readable lines
/// ([`PrettyLayer`](crate::PrettyLayer)) for a developer at a terminal.
///
/// # How it is chosen
///
/// - `LOG_FORMAT=pretty` gives human-readable lines and `LOG_FORMAT=json` JSON lines (in any
///   case, surrounding spaces ignored).
/// - Otherwise (unset, empty, or any other value), human-readable lines when stdout is a
///   terminal, JSON lines when it is not (a pipe, a file, a container's log driver).
/// - Human-readable lines are coloured only when stdout is a terminal and `NO_COLOR` is
///   unset or empty (<https://no-color.org>). JSON lines are never coloured.
///
/// # Examples
///
/// Composing a subscriber by hand with the same choice:
///
/// ```
/// use tracing_ambient::{JsonLayer, LogFormat, PrettyLayer};
/// use tracing_subscriber::prelude::*;
///
/// let (json, pretty) = match LogFormat::from_env() {
///     LogFormat::Pretty { ansi } => (None, Some(PrettyLayer::stdout().with_ansi(ansi))),
///     _ => (Some(JsonLayer::stdout()), None),
/// };
/// tracing_subscriber::registry().with(json).with(pretty).init();
/// ```
///
/// The rules themselves, without the environment:
///
/// ```
/// use std::ffi::OsStr;
/// use tracing_ambient::LogFormat;
///
/// assert_eq!(LogFormat::choose(None, true, None), LogFormat::Pretty { ansi: true });
/// assert_eq!(LogFormat::choose(None, false, None), LogFormat::Json);
/// assert_eq!(LogFormat::choose(Some("pretty"), false, None), LogFormat::Pretty { ansi: false });
/// assert_eq!(
///     LogFormat::choose(None, true, Some(OsStr::new("1"))),
///     LogFormat::Pretty { ansi: false },
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line ([`JsonLayer`](crate::JsonLayer)).
    Json,
    /// Human-readable lines ([`PrettyLayer`](crate::PrettyLayer)).
    Pretty {
        /// Whether the lines are coloured with ANSI escape codes.
        ansi: bool,
    },
}

impl LogFormat {
    /// Returns the format for stdout from the environment: `LOG_FORMAT`, `NO_COLOR`, and
    /// whether stdout is a terminal. See [`LogFormat::choose`] for the rules.
    ///
    /// ```
    /// let format = tracing_ambient::LogFormat::from_env();
    /// # drop(format);
    /// ```
    pub fn from_env() -> Self {
        let log_format = std::env::var("LOG_FORMAT").ok();
        let no_color = std::env::var_os("NO_COLOR");
        LogFormat::choose(
            log_format.as_deref(),
            std::io::stdout().is_terminal(),
            no_color.as_deref(),
        )
    }

    /// Returns the format for the given `LOG_FORMAT` value, whether stdout is a terminal, and
    /// the `NO_COLOR` value: the rules of [`LogFormat::from_env`] without reading the
    /// environment.
    ///
    /// ```
    /// use tracing_ambient::LogFormat;
    ///
    /// assert_eq!(LogFormat::choose(Some("JSON"), true, None), LogFormat::Json);
    /// assert_eq!(LogFormat::choose(Some("yaml"), true, None), LogFormat::Pretty { ansi: true });
    /// ```
    pub fn choose(
        log_format: Option<&str>,
        stdout_is_terminal: bool,
        no_color: Option<&OsStr>,
    ) -> Self {
        let asked = log_format.map(str::trim);
        let pretty = match asked {
            Some(f) if f.eq_ignore_ascii_case("pretty") => true,
            Some(f) if f.eq_ignore_ascii_case("json") => false,
            _ => stdout_is_terminal,
        };
        if !pretty {
            return LogFormat::Json;
        }
        // no-color.org: "when present and not an empty string".
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        LogFormat::Pretty {
            ansi: stdout_is_terminal && !no_color,
        }
    }

    /// Returns `true` for [`LogFormat::Pretty`] with colours.
    ///
    /// ```
    /// use tracing_ambient::LogFormat;
    ///
    /// assert!(LogFormat::Pretty { ansi: true }.ansi());
    /// assert!(!LogFormat::Json.ansi());
    /// ```
    pub fn ansi(self) -> bool {
        matches!(self, LogFormat::Pretty { ansi: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_follows_log_format_terminal_and_no_color() {
        use LogFormat::{Json, Pretty};
        let on = Pretty { ansi: true };
        let plain = Pretty { ansi: false };
        // (LOG_FORMAT, stdout is a terminal, NO_COLOR, expected)
        let table: &[(Option<&str>, bool, Option<&str>, LogFormat)] = &[
            (None, true, None, on),
            (None, false, None, Json),
            (Some(""), true, None, on),
            (Some(""), false, None, Json),
            (Some("pretty"), true, None, on),
            (Some("pretty"), false, None, plain),
            (Some(" Pretty "), false, None, plain),
            (Some("json"), true, None, Json),
            (Some("JSON"), false, None, Json),
            (Some("yaml"), true, None, on),
            (Some("yaml"), false, None, Json),
            (None, true, Some("1"), plain),
            (None, true, Some("0"), plain),
            (None, true, Some(""), on),
            (Some("pretty"), true, Some("yes"), plain),
            (Some("pretty"), false, Some(""), plain),
            (Some("json"), true, Some("1"), Json),
            (None, false, Some("1"), Json),
        ];
        for &(log_format, terminal, no_color, expected) in table {
            assert_eq!(
                LogFormat::choose(log_format, terminal, no_color.map(OsStr::new)),
                expected,
                "LOG_FORMAT={log_format:?} terminal={terminal} NO_COLOR={no_color:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_no_color_that_is_not_utf8_still_counts() {
        use std::os::unix::ffi::OsStrExt;
        let no_color = OsStr::from_bytes(b"\xff");
        assert_eq!(
            LogFormat::choose(None, true, Some(no_color)),
            LogFormat::Pretty { ansi: false }
        );
    }
}
