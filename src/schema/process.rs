//! The schema of the layer [`init`](crate::init) installed, for the parts that write lines
//! without a layer of their own (the HTTP middleware's access line).

use std::sync::OnceLock;

use super::keys::Schema;

/// The schema `init` installed, which `http::DefaultOnAccess` takes when given none.
static PROCESS_SCHEMA: OnceLock<Schema> = OnceLock::new();

/// Records the schema of the layer `init` installs; the first call wins, as `init` installs
/// one global subscriber.
pub(crate) fn set_process_schema(schema: Schema) {
    let _ = PROCESS_SCHEMA.set(schema);
}

/// The schema `init` installed, if it was called.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn process_schema() -> Option<&'static Schema> {
    PROCESS_SCHEMA.get()
}
