//! Trace and span ids written in the form a schema asks for ([`IdFormat`]), straight into the
//! line: hex as held, the low 64 bits in decimal, or Google Cloud's trace resource name.

use crate::json;
use crate::otel::SpanIds;
use crate::schema::IdFormat;

/// An [`IdFormat`] made ready for the event path: the Google Cloud prefix is escaped once.
#[derive(Debug)]
pub(crate) struct IdForm {
    format: IdFormat,
    /// `projects/<project id>/traces/`, escaped; empty for the other forms.
    prefix: Box<[u8]>,
}

/// Where an id comes from: the trace id or span id of an OpenTelemetry span, or the JSON a
/// context holds for it (a string of hex digits, unless set by hand to something else).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Id<'a> {
    Trace(SpanIds),
    Span(SpanIds),
    Json(&'a [u8]),
}

impl IdForm {
    pub(crate) fn new(format: IdFormat) -> Self {
        let mut prefix = Vec::new();
        if let IdFormat::CloudTrace(project) = format {
            if !project.is_empty() {
                json::escape_into(&mut prefix, "projects/");
                json::escape_into(&mut prefix, project);
                json::escape_into(&mut prefix, "/traces/");
            }
        }
        IdForm {
            format,
            prefix: prefix.into_boxed_slice(),
        }
    }

    /// Appends `id` as a JSON value in this form.
    pub(crate) fn write(&self, out: &mut Vec<u8>, id: Id<'_>) {
        // Hex ids of a span come quoted from `SpanIds`; the context's are quoted already.
        let trace_json;
        let span_json;
        let quoted_hex: &[u8] = match id {
            Id::Trace(ids) => {
                trace_json = ids.trace_id_json();
                &trace_json
            }
            Id::Span(ids) => {
                span_json = ids.span_id_json();
                &span_json
            }
            Id::Json(raw) => raw,
        };
        match self.format {
            IdFormat::Decimal64 => {
                let low = match id {
                    Id::Trace(ids) => Some(low_64(&ids.trace_id())),
                    Id::Span(ids) => Some(u64::from_be_bytes(ids.span_id())),
                    Id::Json(raw) => hex_string(raw).and_then(parse_low_64),
                };
                match low {
                    Some(low) => {
                        out.push(b'"');
                        json::write_u64(out, low);
                        out.push(b'"');
                    }
                    None => out.extend_from_slice(quoted_hex),
                }
            }
            IdFormat::CloudTrace(_) => {
                out.push(b'"');
                out.extend_from_slice(&self.prefix);
                match string_contents(quoted_hex) {
                    // A string's escaped contents stay escaped.
                    Some(contents) => out.extend_from_slice(contents),
                    // Anything else set by hand (a number, an array) is escaped as text, so
                    // the value stays a string. JSON is UTF-8, so nothing is replaced.
                    None => json::escape_into(out, &String::from_utf8_lossy(quoted_hex)),
                }
                out.push(b'"');
            }
            _ => out.extend_from_slice(quoted_hex),
        }
    }
}

/// The low 64 bits of a big-endian trace id.
fn low_64(trace_id: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    u64::from_be_bytes(low)
}

/// The contents of a JSON string value, still escaped; `None` for any other value.
fn string_contents(raw: &[u8]) -> Option<&[u8]> {
    match raw {
        [b'"', contents @ .., b'"'] => Some(contents),
        _ => None,
    }
}

/// The contents of a JSON string of 1 to 32 hex digits.
fn hex_string(raw: &[u8]) -> Option<&[u8]> {
    string_contents(raw)
        .filter(|d| (1..=32).contains(&d.len()) && d.iter().all(u8::is_ascii_hexdigit))
}

/// The value of the last 16 hex digits.
fn parse_low_64(digits: &[u8]) -> Option<u64> {
    let tail = &digits[digits.len().saturating_sub(16)..];
    std::str::from_utf8(tail)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn written(format: IdFormat, id: Id<'_>) -> String {
        let mut out = Vec::new();
        IdForm::new(format).write(&mut out, id);
        String::from_utf8(out).unwrap()
    }

    fn span_ids() -> SpanIds {
        let trace = u128::from_str_radix(TRACE, 16).unwrap().to_be_bytes();
        let span = u64::from_str_radix(SPAN, 16).unwrap().to_be_bytes();
        SpanIds::new(trace, span).unwrap()
    }

    #[test]
    fn ids_are_written_in_each_form_from_a_span_and_from_the_context() {
        let quoted = |s: &str| format!("\"{s}\"");
        // (format, id as hex, expected), for ids of a span and of a context. The decimals are 0xa3ce929d0e0e4736 and
        // 0x00f067aa0ba902b7, worked out by hand (Python's int(…, 16)).
        let table = [
            (IdFormat::Hex, TRACE, quoted(TRACE)),
            (IdFormat::Hex, SPAN, quoted(SPAN)),
            (IdFormat::Decimal64, TRACE, quoted("11803532876627986230")),
            (IdFormat::Decimal64, SPAN, quoted("67667974448284343")),
            (
                IdFormat::CloudTrace("my-project"),
                TRACE,
                quoted(&format!("projects/my-project/traces/{TRACE}")),
            ),
            (IdFormat::CloudTrace(""), TRACE, quoted(TRACE)),
            (
                IdFormat::CloudTrace("p"),
                SPAN,
                quoted(&format!("projects/p/traces/{SPAN}")),
            ),
        ];
        for (format, hex, expected) in table {
            let of_span = if hex == TRACE {
                Id::Trace(span_ids())
            } else {
                Id::Span(span_ids())
            };
            assert_eq!(written(format, of_span), expected, "{format:?} from a span");
            let json = quoted(hex);
            let from_context = written(format, Id::Json(json.as_bytes()));
            assert_eq!(from_context, expected, "{format:?} from the context");
        }
    }

    #[test]
    fn ids_set_by_hand_stay_valid_json() {
        // (format, the context's JSON, expected)
        let table = [
            (IdFormat::Decimal64, r#""job-7""#, r#""job-7""#),
            (IdFormat::Decimal64, "42", "42"),
            (IdFormat::Decimal64, r#""ff""#, r#""255""#),
            (IdFormat::CloudTrace("p"), "42", r#""projects/p/traces/42""#),
            (
                IdFormat::CloudTrace("p"),
                r#"["a"]"#,
                r#""projects/p/traces/[\"a\"]""#,
            ),
            (
                IdFormat::CloudTrace("p\"q"),
                r#""x""#,
                r#""projects/p\"q/traces/x""#,
            ),
        ];
        for (format, raw, expected) in table {
            let out = written(format, Id::Json(raw.as_bytes()));
            assert_eq!(out, expected, "{format:?} {raw}");
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }
}
