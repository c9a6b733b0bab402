//! Output key names and values. The writer asks the schema for every key it writes, so a
//! preset ([`Schema::ecs`], [`Schema::otel`], [`Schema::gcp`], [`Schema::datadog`]) changes
//! the keys, the level values and the form of the trace ids without touching the writer.

mod key_case;
mod keys;
mod presets;
mod process;
mod setters;
mod values;

pub(crate) use key_case::{push_name_forms, to_camel_case, to_snake_case};
// The access line's keys and the process's schema are read by the middleware only.
#[cfg(feature = "http")]
pub(crate) use keys::AccessKeys;
pub use keys::{KeyCase, Schema};
pub(crate) use keys::{ACCESS_NAME, ACCESS_TARGET};
#[cfg(feature = "http")]
pub(crate) use process::process_schema;
pub(crate) use process::set_process_schema;
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use values::SecondsString;
pub use values::{DurationFormat, ErrorKeys, IdFormat};
