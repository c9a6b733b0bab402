//! gRPC through the middleware: which requests are gRPC calls, the status a call ended with
//! (from the response trailers, or from the headers of a trailers-only response), and the
//! access line's level for it.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use tracing::Level;

/// The trailer (or trailers-only header) that carries the status of a gRPC call.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The trailer (or trailers-only header) that carries the status message, percent-encoded.
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The longest status message written on an access line, in bytes.
const MAX_MESSAGE: usize = 512;

/// The status code a gRPC call ended with: `0` (`OK`) to `16` (`UNAUTHENTICATED`), as sent in
/// the `grpc-status` trailer.
///
/// The [access line](super::DefaultOnAccess) writes it as a number (`grpcStatus`) and its
/// name (`grpcCode`), and takes its level from it: see "gRPC" in the [module docs](super).
///
/// # Examples
///
/// ```
/// use tracing_ambient::http::GrpcCode;
///
/// assert_eq!(GrpcCode::NOT_FOUND.as_u32(), 5);
/// assert_eq!(GrpcCode::NOT_FOUND.name(), Some("NOT_FOUND"));
/// assert_eq!(GrpcCode::new(42).name(), None); // not a code the protocol defines
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrpcCode(u32);

/// The codes gRPC defines, by number; each name is the protocol's own.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

// === impl GrpcCode ===

impl GrpcCode {
    /// `0`: the call succeeded.
    pub const OK: GrpcCode = GrpcCode(0);
    /// `1`: the call was cancelled, usually by the client.
    pub const CANCELLED: GrpcCode = GrpcCode(1);
    /// `2`: an unknown error.
    pub const UNKNOWN: GrpcCode = GrpcCode(2);
    /// `3`: the client gave an invalid argument.
    pub const INVALID_ARGUMENT: GrpcCode = GrpcCode(3);
    /// `4`: the deadline expired before the call completed.
    pub const DEADLINE_EXCEEDED: GrpcCode = GrpcCode(4);
    /// `5`: a requested entity was not found.
    pub const NOT_FOUND: GrpcCode = GrpcCode(5);
    /// `6`: the entity the client tried to create already exists.
    pub const ALREADY_EXISTS: GrpcCode = GrpcCode(6);
    /// `7`: the caller may not run this call.
    pub const PERMISSION_DENIED: GrpcCode = GrpcCode(7);
    /// `8`: a resource (a quota, the disk) is exhausted.
    pub const RESOURCE_EXHAUSTED: GrpcCode = GrpcCode(8);
    /// `9`: the system is not in a state the call needs.
    pub const FAILED_PRECONDITION: GrpcCode = GrpcCode(9);
    /// `10`: the call was aborted, usually by a concurrency conflict.
    pub const ABORTED: GrpcCode = GrpcCode(10);
    /// `11`: the call went past the valid range.
    pub const OUT_OF_RANGE: GrpcCode = GrpcCode(11);
    /// `12`: the method is not implemented or not supported.
    pub const UNIMPLEMENTED: GrpcCode = GrpcCode(12);
    /// `13`: an internal error.
    pub const INTERNAL: GrpcCode = GrpcCode(13);
    /// `14`: the service is unavailable for now.
    pub const UNAVAILABLE: GrpcCode = GrpcCode(14);
    /// `15`: unrecoverable data loss or corruption.
    pub const DATA_LOSS: GrpcCode = GrpcCode(15);
    /// `16`: the call lacks valid credentials.
    pub const UNAUTHENTICATED: GrpcCode = GrpcCode(16);

    /// Returns the code with this number, which may be one the protocol does not define.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::http::GrpcCode::new(13), tracing_ambient::http::GrpcCode::INTERNAL);
    /// ```
    pub const fn new(code: u32) -> Self {
        GrpcCode(code)
    }

    /// Returns the code's number.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::http::GrpcCode::UNAVAILABLE.as_u32(), 14);
    /// ```
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// Returns the code's name as the gRPC protocol spells it (`NOT_FOUND`), or `None` for a
    /// number it does not define.
    ///
    /// ```
    /// assert_eq!(tracing_ambient::http::GrpcCode::OK.name(), Some("OK"));
    /// ```
    pub fn name(self) -> Option<&'static str> {
        NAMES.get(self.0 as usize).copied()
    }

    /// Reads a `grpc-status` value: ASCII digits only, as the protocol sends them. Anything
    /// else is no status at all rather than a guess.
    fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 9 || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let code = bytes
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
        Some(GrpcCode(code))
    }

    /// The access line's level for a call that ended with this code.
    ///
    /// OpenTelemetry's gRPC conventions mark a server span as an error for exactly `UNKNOWN`,
    /// `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`: the
    /// codes that say the server failed. The other codes say the call was refused for the
    /// client's own reasons (bad argument, not found, no permission, cancelled): the server
    /// worked, so they are warnings. A number the protocol does not define is treated as
    /// `UNKNOWN`.
    pub(crate) fn level(self) -> Level {
        match self {
            GrpcCode::OK => Level::INFO,
            GrpcCode::UNKNOWN
            | GrpcCode::DEADLINE_EXCEEDED
            | GrpcCode::UNIMPLEMENTED
            | GrpcCode::INTERNAL
            | GrpcCode::UNAVAILABLE
            | GrpcCode::DATA_LOSS => Level::ERROR,
            code if code.name().is_none() => Level::ERROR,
            _ => Level::WARN,
        }
    }
}

/// What the middleware learns about a gRPC call as its response goes out.
#[derive(Debug, Default)]
pub(crate) struct GrpcCall {
    pub(crate) status: Option<GrpcCode>,
    pub(crate) message: Option<String>,
}

impl GrpcCall {
    /// Returns a call to watch when the request is a gRPC one: its `content-type` is
    /// `application/grpc`, alone or followed by `+format` or `;parameters`. gRPC-Web
    /// (`application/grpc-web…`) is not: its trailers travel inside the body.
    pub(crate) fn detect(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(CONTENT_TYPE)?.as_bytes();
        let prefix = b"application/grpc";
        let is_grpc = value.len() >= prefix.len()
            && value[..prefix.len()].eq_ignore_ascii_case(prefix)
            && matches!(value.get(prefix.len()), None | Some(b'+' | b';'));
        is_grpc.then(GrpcCall::default)
    }

    /// Reads the status (and its message) from response headers (a trailers-only response)
    /// or trailers. A later reading replaces an earlier one: trailers come last.
    pub(crate) fn observe(&mut self, headers: &HeaderMap) {
        let Some(status) = headers.get(GRPC_STATUS) else {
            return;
        };
        self.status = GrpcCode::from_header(status);
        self.message = headers
            .get(GRPC_MESSAGE)
            .map(|m| percent_decode(m.as_bytes()))
            .filter(|m| !m.is_empty());
    }
}

/// Decodes a `grpc-message` value (percent-encoded UTF-8, as the protocol sends it), cut to
/// [`MAX_MESSAGE`] bytes on a character boundary. A `%` not followed by two hex digits is
/// kept as it is, as the protocol asks; bytes that do not decode to UTF-8 become U+FFFD.
fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut bytes = Vec::with_capacity(raw.len().min(MAX_MESSAGE));
    let mut i = 0;
    while i < raw.len() && bytes.len() < MAX_MESSAGE {
        let decoded = match raw[i..] {
            [b'%', h, l, ..] => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match decoded {
            Some(b) => {
                bytes.push(b);
                i += 3;
            }
            None => {
                bytes.push(raw[i]);
                i += 1;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    /// Runs one request with `content_type` through the middleware, to a handler whose
    /// trailers-only response says NOT_FOUND, and returns the access line.
    fn access_line(
        content_type: &'static str,
        on_access: super::super::DefaultOnAccess,
    ) -> serde_json::Value {
        use bytes::Bytes;
        use http_body_util::{BodyExt, Empty};
        use tower::ServiceExt;
        use tower_layer::Layer;
        use tracing_subscriber::prelude::*;

        let writer = crate::test_support::MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry().with(crate::JsonLayer::new(writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let handler = tower::service_fn(|_: http::Request<()>| async {
            let response = http::Response::builder()
                .header("grpc-status", "5")
                .header("grpc-message", "no%20such%20order")
                .body(Empty::<Bytes>::new())
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        });
        let request = http::Request::post("/shop.Orders/Get")
            .header("content-type", content_type)
            .body(())
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let service = super::super::RequestContextLayer::new()
                .on_access(on_access)
                .layer(handler);
            let response = service.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        });
        let text = writer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        lines.into_iter().next().unwrap()
    }

    #[test]
    fn only_grpc_requests_get_grpc_keys() {
        let grpc = access_line("application/grpc+proto", Default::default());
        assert_eq!(grpc["grpcStatus"], 5);
        assert_eq!(grpc["grpcCode"], "NOT_FOUND");
        assert_eq!(grpc["grpcMessage"], "no such order");
        assert_eq!(grpc["status"], 200);
        assert_eq!(grpc["level"], "warn");

        // The same response to a request that is not gRPC: the HTTP status tells.
        let plain = access_line("application/json", Default::default());
        for key in ["grpcStatus", "grpcCode", "grpcMessage"] {
            assert!(plain.get(key).is_none(), "{key}: {plain}");
        }
        assert_eq!(plain["status"], 200);
        assert_eq!(plain["level"], "info");
    }

    #[test]
    fn grpc_keys_come_from_the_schema() {
        let schema = crate::Schema::DEFAULT
            .with_access_grpc_status_key("rpc.grpc.status_code")
            .with_access_grpc_code_key("grpc_code")
            .with_access_grpc_message_key("grpc_message");
        let on_access = super::super::DefaultOnAccess::new().schema(schema);
        let line = access_line("application/grpc", on_access);
        assert_eq!(line["rpc.grpc.status_code"], 5);
        assert_eq!(line["grpc_code"], "NOT_FOUND");
        assert_eq!(line["grpc_message"], "no such order");
        for key in ["grpcStatus", "grpcCode", "grpcMessage"] {
            assert!(line.get(key).is_none(), "{key}: {line}");
        }
    }

    #[test]
    fn grpc_is_detected_by_content_type() {
        let cases = [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc+json", true),
            ("application/grpc; charset=utf-8", true),
            ("Application/GRPC", true),
            ("application/grpc-web", false),
            ("application/grpc-web-text", false),
            ("application/grpcx", false),
            ("application/json", false),
            ("text/plain", false),
        ];
        for (content_type, expected) in cases {
            let found = GrpcCall::detect(&headers(&[("content-type", content_type)]));
            assert_eq!(found.is_some(), expected, "{content_type}");
        }
        assert!(GrpcCall::detect(&HeaderMap::new()).is_none());
    }

    #[test]
    fn codes_have_the_protocols_numbers_and_names() {
        // The table of the gRPC status codes document, typed here.
        let table = [
            (0, "OK"),
            (1, "CANCELLED"),
            (2, "UNKNOWN"),
            (3, "INVALID_ARGUMENT"),
            (4, "DEADLINE_EXCEEDED"),
            (5, "NOT_FOUND"),
            (6, "ALREADY_EXISTS"),
            (7, "PERMISSION_DENIED"),
            (8, "RESOURCE_EXHAUSTED"),
            (9, "FAILED_PRECONDITION"),
            (10, "ABORTED"),
            (11, "OUT_OF_RANGE"),
            (12, "UNIMPLEMENTED"),
            (13, "INTERNAL"),
            (14, "UNAVAILABLE"),
            (15, "DATA_LOSS"),
            (16, "UNAUTHENTICATED"),
        ];
        for (number, name) in table {
            assert_eq!(GrpcCode::new(number).name(), Some(name));
        }
        assert_eq!(GrpcCode::new(17).name(), None);
        assert_eq!(GrpcCode::NOT_FOUND, GrpcCode::new(5));
        assert_eq!(GrpcCode::UNAUTHENTICATED, GrpcCode::new(16));
    }

    #[test]
    fn level_by_code() {
        // The module docs' table: OpenTelemetry's server-side error codes are errors.
        let error = [2, 4, 12, 13, 14, 15, 17, 99];
        let warn = [1, 3, 5, 6, 7, 8, 9, 10, 11, 16];
        assert_eq!(GrpcCode::new(0).level(), Level::INFO);
        for code in error {
            assert_eq!(GrpcCode::new(code).level(), Level::ERROR, "{code}");
        }
        for code in warn {
            assert_eq!(GrpcCode::new(code).level(), Level::WARN, "{code}");
        }
    }

    #[test]
    fn status_values_are_digits_only() {
        let cases = [
            ("0", Some(0)),
            ("5", Some(5)),
            ("16", Some(16)),
            ("042", Some(42)),
            ("", None),
            ("-1", None),
            ("5 ", None),
            ("+5", None),
            ("ok", None),
            ("9999999999", None),
        ];
        for (value, expected) in cases {
            let mut call = GrpcCall::default();
            call.observe(&headers(&[("grpc-status", value)]));
            assert_eq!(call.status.map(GrpcCode::as_u32), expected, "{value:?}");
        }
    }

    #[test]
    fn trailers_replace_the_headers_reading() {
        let mut call = GrpcCall::default();
        call.observe(&headers(&[("grpc-status", "0")]));
        call.observe(&headers(&[("content-type", "application/grpc")]));
        assert_eq!(call.status, Some(GrpcCode::OK), "no status: nothing read");
        call.observe(&headers(&[("grpc-status", "14"), ("grpc-message", "down")]));
        assert_eq!(call.status, Some(GrpcCode::UNAVAILABLE));
        assert_eq!(call.message.as_deref(), Some("down"));
        call.observe(&headers(&[("grpc-status", "0"), ("grpc-message", "")]));
        assert_eq!((call.status, call.message), (Some(GrpcCode::OK), None));
    }

    #[test]
    fn messages_are_percent_decoded() {
        let cases = [
            ("plain", "plain"),
            ("order%207%20not%20found", "order 7 not found"),
            ("caf%C3%A9", "café"),
            ("100%", "100%"),
            ("%zz%4", "%zz%4"),
            ("%41%4a%4A", "AJJ"),
            ("bad%FFutf8", "bad\u{fffd}utf8"),
            ("line%0Abreak%22", "line\nbreak\""),
        ];
        for (raw, expected) in cases {
            assert_eq!(percent_decode(raw.as_bytes()), expected, "{raw}");
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400); // 800 bytes
        let cut = percent_decode(long.as_bytes());
        assert_eq!(cut.len(), MAX_MESSAGE);
        assert!(cut.chars().all(|c| c == 'é'));
        let odd = format!("a{long}"); // the cut falls inside a character
        let cut = percent_decode(odd.as_bytes());
        assert_eq!(cut.len(), MAX_MESSAGE - 1);
        assert!(cut.starts_with('a') && cut[1..].chars().all(|c| c == 'é'));
    }
}
