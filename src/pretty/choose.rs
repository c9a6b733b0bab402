//! [`LogFormat`]: which output to write, JSON lines in one of the schemas or human-readable
//! lines with or without colours, decided from `LOG_FORMAT`, `NO_COLOR` and whether stdout
//! is a terminal.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use crate::schema::Schema;

/// The values `LOG_FORMAT` takes, for the message about any other.
const KNOWN: &str = "json, ecs, otel, gcp, datadog, pretty";

/// The output format for stdout: JSON lines for log pipelines, in the crate's own keys or a
/// backend's ([`Schema`]), or human-readable lines ([`PrettyLayer`](crate::PrettyLayer)) for
/// a developer at a terminal.
///
/// # How it is chosen
///
/// - `LOG_FORMAT` names it (in any case, surrounding spaces ignored): `json` the default
///   schema, `ecs` [`Schema::ecs`], `otel` [`Schema::otel`], `gcp` [`Schema::gcp`] (its
///   project from `GOOGLE_CLOUD_PROJECT`), `datadog` [`Schema::datadog`], `pretty`
///   human-readable lines.
/// - Unset or empty: human-readable lines when stdout is a terminal, JSON lines when it is
///   not (a pipe, a file, a container's log driver).
/// - Any other value: JSON lines; [`LogFormat::from_env`] says so on stderr.
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
/// let format = LogFormat::from_env();
/// let (json, pretty) = match format.schema() {
///     Some(schema) => (Some(JsonLayer::stdout().schema(schema)), None),
///     None => (None, Some(PrettyLayer::stdout().with_ansi(format.ansi()))),
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
/// assert_eq!(LogFormat::choose(Some("ECS"), true, None), LogFormat::Ecs);
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
    /// JSON lines in [`Schema::ecs`].
    Ecs,
    /// JSON lines in [`Schema::otel`].
    Otel,
    /// JSON lines in [`Schema::gcp`], the project from `GOOGLE_CLOUD_PROJECT`.
    Gcp,
    /// JSON lines in [`Schema::datadog`].
    Datadog,
}

/// What a `LOG_FORMAT` value asks for.
enum Asked {
    /// Unset or empty: chosen by the terminal.
    Nothing,
    Pretty,
    Json(LogFormat),
    Unknown,
}

impl Asked {
    /// The one place `LOG_FORMAT` is parsed.
    fn parse(log_format: Option<&str>) -> Self {
        let Some(value) = log_format.map(str::trim).filter(|v| !v.is_empty()) else {
            return Asked::Nothing;
        };
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if is("pretty") {
            Asked::Pretty
        } else if is("json") {
            Asked::Json(LogFormat::Json)
        } else if is("ecs") {
            Asked::Json(LogFormat::Ecs)
        } else if is("otel") {
            Asked::Json(LogFormat::Otel)
        } else if is("gcp") {
            Asked::Json(LogFormat::Gcp)
        } else if is("datadog") {
            Asked::Json(LogFormat::Datadog)
        } else {
            Asked::Unknown
        }
    }
}

impl LogFormat {
    /// Returns the format for stdout from the environment: `LOG_FORMAT`, `NO_COLOR`, and
    /// whether stdout is a terminal. See [`LogFormat::choose`] for the rules. A `LOG_FORMAT`
    /// that names no format (or is not UTF-8) gives JSON lines and a message on stderr:
    ///
    /// ```text
    /// [tracing-ambient] LOG_FORMAT="yaml" is not one of json, ecs, otel, gcp, datadog, pretty: writing JSON lines
    /// ```
    ///
    /// ```
    /// let format = tracing_ambient::LogFormat::from_env();
    /// # drop(format);
    /// ```
    pub fn from_env() -> Self {
        let log_format = match std::env::var("LOG_FORMAT") {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            // Not UTF-8: names no format.
            Err(std::env::VarError::NotUnicode(raw)) => Some(raw.to_string_lossy().into_owned()),
        };
        if let Asked::Unknown = Asked::parse(log_format.as_deref()) {
            let _ = writeln!(
                std::io::stderr(),
                "[tracing-ambient] LOG_FORMAT={:?} is not one of {KNOWN}: writing JSON lines",
                log_format.as_deref().unwrap_or_default()
            );
        }
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
    /// assert_eq!(LogFormat::choose(Some(" datadog "), true, None), LogFormat::Datadog);
    /// assert_eq!(LogFormat::choose(Some("yaml"), true, None), LogFormat::Json);
    /// ```
    pub fn choose(
        log_format: Option<&str>,
        stdout_is_terminal: bool,
        no_color: Option<&OsStr>,
    ) -> Self {
        let pretty = match Asked::parse(log_format) {
            Asked::Pretty => true,
            Asked::Json(format) => return format,
            Asked::Unknown => return LogFormat::Json,
            Asked::Nothing => stdout_is_terminal,
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

    /// Returns the schema of a JSON format, `None` for human-readable lines. For
    /// [`LogFormat::Gcp`], the project is read from `GOOGLE_CLOUD_PROJECT` the first time,
    /// and its text leaked once for the life of the process (a `Schema` holds
    /// `&'static str`s); when it is unset, stderr says so and the trace key holds the bare
    /// trace id.
    ///
    /// ```
    /// use tracing_ambient::{LogFormat, Schema};
    ///
    /// assert_eq!(LogFormat::Ecs.schema(), Some(Schema::ecs()));
    /// assert_eq!(LogFormat::Json.schema(), Some(Schema::DEFAULT));
    /// assert_eq!(LogFormat::Pretty { ansi: false }.schema(), None);
    /// ```
    pub fn schema(self) -> Option<Schema> {
        Some(match self {
            LogFormat::Pretty { .. } => return None,
            LogFormat::Json => Schema::DEFAULT,
            LogFormat::Ecs => Schema::ecs(),
            LogFormat::Otel => Schema::otel(),
            LogFormat::Gcp => Schema::gcp(google_cloud_project()),
            LogFormat::Datadog => Schema::datadog(),
        })
    }
}

/// `GOOGLE_CLOUD_PROJECT`, read once and leaked: one small string for the process.
fn google_cloud_project() -> &'static str {
    static PROJECT: OnceLock<&'static str> = OnceLock::new();
    PROJECT.get_or_init(|| match std::env::var("GOOGLE_CLOUD_PROJECT") {
        Ok(project) if !project.trim().is_empty() => Box::leak(project.trim().into()),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "[tracing-ambient] LOG_FORMAT=gcp: GOOGLE_CLOUD_PROJECT is not set, so \
                 logging.googleapis.com/trace holds the bare trace id, which Cloud Logging \
                 does not link to Cloud Trace"
            );
            ""
        }
    })
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
            (Some("yaml"), true, None, Json),
            (Some("yaml"), false, None, Json),
            (Some("   "), true, None, on),
            (Some("ecs"), true, None, LogFormat::Ecs),
            (Some("OTel"), false, None, LogFormat::Otel),
            (Some(" gcp"), true, Some("1"), LogFormat::Gcp),
            (Some("Datadog "), false, None, LogFormat::Datadog),
            (Some("ecs-json"), true, None, Json),
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
