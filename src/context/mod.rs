//! The per-request store and what makes it current.
//!
//! A [`Context`] is opened by the HTTP middleware or by hand with [`Context::scope`] /
//! [`Context::in_scope`]. While it is current, every line carries its keys, spans created
//! inside carry it wherever they are entered, and [`set`] / [`set_user_id`] write into it.
//! [`spawn`], [`spawn_blocking`] and [`InCurrentContext`] carry it where Rust would lose it.
//! A context may have a deadline ([`Context::with_timeout`], [`within_deadline`]).

pub(crate) mod buffer;
mod carry;
pub(crate) mod current;
mod deadline;
mod entries;
mod extra_key;
mod layer;
pub(crate) mod level;
pub(crate) mod line_buffer;
mod own_level;
mod payload;
mod slot;
pub(crate) mod spans;
mod store;
mod to_value;
mod value;

pub use buffer::{flush_buffer, DEFAULT_BUFFER_LIMIT};
pub use carry::{spawn, spawn_blocking, spawn_detached, InCurrentContext};
pub use current::{request_id, set, set_user_id, trace_id, user_id, Scoped};
pub use deadline::{
    deadline, elapsed, remaining, within_deadline, DeadlineExceeded, WithinDeadline,
};
pub use layer::ContextLayer;
pub use own_level::set_level;
pub use store::Context;
pub use to_value::ValueError;
pub use value::Value;

pub(crate) use to_value::to_value;

pub(crate) use current::with_current_or;
pub(crate) use entries::{Entries, Known};
pub(crate) use slot::Slot;
