//! The event path every output layer shares: finding an event's context, catching what
//! panics, writing the finished line once and counting what could not be written.
//!
//! An output layer ([`JsonLayer`](crate::JsonLayer), [`PrettyLayer`](crate::PrettyLayer)) is
//! an [`EventPath`] and a [`Format`]: the path keeps the spans carrying the context (through
//! its [`ContextLayer`](crate::ContextLayer)), finds the context an event is logged in, and
//! hands the finished line to the writer; the format only turns one event into bytes. A new
//! output layer is a new `Format` and nothing else.

mod errors;
mod path;

pub use errors::ErrorCounter;
pub(crate) use path::{EventContext, EventPath, Format};
