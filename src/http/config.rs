//! [`Config`]: the settings of a [`RequestContextLayer`](super::layer::RequestContextLayer)
//! that its services read for each request.

use http::HeaderName;

use super::deadline::DeadlineConfig;
use super::request_span::SpanMode;
use super::X_REQUEST_ID;

/// The settings a service reads for each request.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) header: HeaderName,
    pub(crate) response_header: bool,
    pub(crate) trace_context: bool,
    pub(crate) access_line: bool,
    pub(crate) keep_invalid: bool,
    pub(crate) span: SpanMode,
    pub(crate) deadline: DeadlineConfig,
    /// The level each request's context holds lines from, if it buffers, and how many bytes.
    pub(crate) buffer: Option<(tracing::Level, usize)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header: X_REQUEST_ID,
            response_header: true,
            trace_context: true,
            access_line: true,
            keep_invalid: false,
            span: SpanMode::Auto,
            deadline: DeadlineConfig::default(),
            buffer: None,
        }
    }
}
