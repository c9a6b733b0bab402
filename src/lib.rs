//! Structured JSON logs in which every line carries the request it came from.
//!
//! `tracing-ambient` is a [`tracing_subscriber::Layer`] that writes one JSON object per line
//! and, at event time, merges in the ambient request context: request id, user id, trace id,
//! span id and any extra keys. Code anywhere calls `info!` and never receives a logger.
//!
//! # Example
//!
//! ```
//! use tracing_ambient::Context;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let _guard = tracing_ambient::init(); // RUST_LOG (default info), JSON on stdout
//!
//! Context::new()
//!     .with_request_id("9f1c")
//!     .scope(async {
//!         tracing_ambient::set_user_id(42); // e.g. in auth middleware
//!         tracing::info!(order_id = 42, "order placed");
//!     })
//!     .await;
//! # }
//! ```
//!
//! ```text
//! {"timestamp":"2026-11-24T14:02:12.123456Z","level":"info","message":"order placed","requestId":"9f1c","userId":42,"target":"shop::orders","order_id":42}
//! ```
//!
//! # How the context travels
//!
//! A [`Context`] is one store shared by every task and span of a request. [`Context::scope`]
//! makes it current around a future, [`Context::in_scope`] around a closure. Spans created
//! while it is current carry it, so `.instrument(span)`, `#[instrument]` and
//! `span.in_scope(..)` on another thread bring it back.
//!
//! The rule: a line carries the context of the innermost scope active on its thread; a span
//! brings its context back only where no scope is active. So a span created in request B and
//! entered (or named as `parent:`) while request A is served gives A, never B. See
//! [`Context::current`].
//!
//! Level filtering cannot strip it when the filter is wrapped in [`KeepSpans`], as [`init`]
//! does: spans that can carry a context (created while one is current) are then never
//! disabled, and only events and the other spans are filtered.
//!
//! Rust loses the context where it loses the span: `tokio::spawn`, `spawn_blocking`, threads.
//! Carry it with [`spawn`], [`spawn_blocking`], [`InCurrentContext::in_current_context`], or
//! [`Context::current`] and [`Context::in_scope`] for threads; run deliberately without it
//! with [`spawn_detached`] or [`InCurrentContext::without_context`].
//!
//! A context may carry a deadline ([`Context::with_timeout`], or the HTTP middleware's
//! timeouts), which travels the same way: read it with [`remaining`], bound work with
//! [`within_deadline`].

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
mod context;
mod filter;
mod hex;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod init;
mod json;
mod layer;
mod log_bridge;
pub mod otel;
mod output;
mod pretty;
mod schema;
pub mod sql;
#[cfg(test)]
mod test_support;
pub mod trace_context;
mod user_text;
mod writer;

pub use context::{
    deadline, elapsed, remaining, within_deadline, DeadlineExceeded, WithinDeadline,
};
pub use context::{
    flush_buffer, request_id, set, set_level, set_user_id, spawn, spawn_blocking, spawn_detached,
    trace_id, user_id, Context, ContextLayer, InCurrentContext, Scoped, Value, ValueError,
    DEFAULT_BUFFER_LIMIT,
};
pub use filter::{ContextLevel, KeepSpans};
pub use init::{init, install_panic_hook, try_init, try_init_with, Guard, InitError};
pub use layer::JsonLayer;
pub use log_bridge::LogBridge;
pub use output::ErrorCounter;
pub use pretty::{LogFormat, PrettyLayer};
pub use schema::{DurationFormat, ErrorKeys, IdFormat, KeyCase, Schema};
pub use trace_context::{traceparent, tracestate};
pub use writer::{non_blocking, NonBlocking, NonBlockingBuilder, WriterGuard};

/// The README's code blocks, compiled and run as doc tests (they use every feature).
#[cfg(all(
    doctest,
    feature = "http",
    feature = "opentelemetry",
    feature = "reqwest",
    feature = "actix"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
