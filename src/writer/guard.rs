//! [`WriterGuard`]: flushes a non-blocking writer when dropped.

use std::fmt;
use std::sync::Arc;

use super::shared::Shared;

/// Flushes its [`NonBlocking`](crate::NonBlocking) writer when dropped, waiting at most the
/// flush timeout (two seconds by default). Lines it gives up on are counted on stderr.
///
/// Keep it alive until the program stops logging, usually by binding it in `main`. Beware
/// `let _ = tracing_ambient::non_blocking(…)`: `_` drops the guard at once. Dropping it does
/// not stop the writer: lines logged later are still written, and a process that ends
/// through `std::process::exit` is flushed by an exit handler (on Unix).
///
/// ```
/// let (writer, guard) = tracing_ambient::non_blocking(std::io::stdout());
/// # drop(writer);
/// drop(guard); // everything queued so far is written here
/// ```
#[must_use = "dropping the guard flushes at once; bind it with `let _guard = …`"]
pub struct WriterGuard {
    shared: Arc<Shared>,
}

impl WriterGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        WriterGuard { shared }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.flush_or_report();
    }
}

impl fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterGuard")
            .field("flush_timeout", &self.shared.config.flush_timeout)
            .finish()
    }
}
