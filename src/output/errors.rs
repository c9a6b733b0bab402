//! What happens when the writer fails: the line is counted, and reported on stderr at the 1st,
//! 2nd, 4th, 8th… failure so that a closed pipe cannot flood stderr.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts the lines an output layer ([`JsonLayer`](crate::JsonLayer), [`PrettyLayer`](crate::PrettyLayer)) could not write.
///
/// A failed write (closed pipe, full disk) or a writer that panics never reaches the
/// application: the line is dropped and counted here, so a health check can watch it.
///
/// # Examples
///
/// ```
/// use tracing_ambient::JsonLayer;
///
/// let layer = JsonLayer::stdout();
/// let errors = layer.error_counter();
/// assert_eq!(errors.dropped_lines(), 0);
/// ```
#[derive(Clone, Default)]
pub struct ErrorCounter(Arc<AtomicUsize>);

impl ErrorCounter {
    /// Returns how many lines could not be written so far.
    ///
    /// ```
    /// use tracing_ambient::JsonLayer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let layer = JsonLayer::new(|| std::io::Cursor::new([0u8; 0])) // a full disk
    ///     .with_error_reporting(false);
    /// let errors = layer.error_counter();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!("lost");
    /// });
    /// assert_eq!(errors.dropped_lines(), 1);
    /// ```
    pub fn dropped_lines(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one failure and, when `report` is set and the count is a power of two, says so
    /// on stderr. A failing stderr is ignored: there is nowhere left to say it.
    pub(crate) fn record(&self, report: bool, what: fmt::Arguments<'_>) {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if report && n.is_power_of_two() {
            let _ = writeln!(
                io::stderr(),
                "[tracing-ambient] {what} ({n} line(s) dropped so far)"
            );
        }
    }
}

impl fmt::Debug for ErrorCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorCounter")
            .field(&self.dropped_lines())
            .finish()
    }
}
