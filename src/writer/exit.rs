//! Flushing every non-blocking writer when the process exits through `std::process::exit` (or
//! returns from `main` without the guard), and when it panics.
//!
//! `process::exit` runs no destructor, so no guard flushes there. It does run the C library's
//! exit handlers (`exit(3)`), and Rust offers no safe way to register one: hence the one
//! `atexit` call below. Statics are never dropped, so the list is still there when the handler
//! runs; the writer threads are too, since the C library ends them only after its handlers.

use std::sync::{Arc, Mutex, Once, PoisonError, Weak};

use super::shared::Shared;

/// Every writer built in this process that is still alive.
static WRITERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Adds a writer to those flushed at exit, and registers the exit handler the first time.
pub(crate) fn register(shared: &Arc<Shared>) {
    let mut writers = WRITERS.lock().unwrap_or_else(PoisonError::into_inner);
    writers.retain(|w| w.strong_count() > 0);
    writers.push(Arc::downgrade(shared));
    drop(writers);
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(at_exit::register);
}

/// Flushes every live writer, each for at most its flush timeout, reporting on stderr the
/// lines a timeout gave up on. For the panic hook and the exit handler.
pub(crate) fn flush_all() {
    for shared in live_writers() {
        shared.flush_or_report();
    }
}

/// Flushes every live writer while its worker makes progress (see
/// [`Shared::flush_while_moving`]), each for at most its flush timeout and giving up after its
/// stall timeout without progress. For the panic hook when the process goes on: lines it gives
/// up on are still queued, not lost, so nothing is reported.
pub(crate) fn flush_all_while_moving() {
    for shared in live_writers() {
        let config = &shared.config;
        let _ = shared.flush_while_moving(config.flush_timeout, config.stall_timeout);
    }
}

fn live_writers() -> Vec<Arc<Shared>> {
    WRITERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect()
}

#[cfg(unix)]
mod at_exit {
    use std::ffi::c_int;
    use std::panic::catch_unwind;

    extern "C" {
        /// ISO C 7.22.4.2 and POSIX: `int atexit(void (*func)(void));`
        fn atexit(func: extern "C" fn()) -> c_int;
    }

    /// Runs at `exit(3)`: after `main` returns and on `std::process::exit`.
    extern "C" fn flush_at_exit() {
        // Unwinding out of an `extern "C"` function aborts the process; a panic here must
        // not turn a clean exit into an abort.
        let _ = catch_unwind(super::flush_all);
    }

    #[allow(unsafe_code)]
    pub(super) fn register() {
        // Safety: `atexit` is declared above with the C signature the standards give it, and
        // only stores the pointer it is passed. That pointer is a plain `extern "C" fn()`
        // with no captured state, valid for the whole program. It neither unwinds (its body
        // runs in `catch_unwind`) nor calls `exit`; it runs safe code that reads a `static`,
        // which is never dropped and so still valid while the exit handlers run. A failed
        // registration (the C library's table is full) only means no flush at exit.
        let _ = unsafe { atexit(flush_at_exit) };
    }
}

#[cfg(not(unix))]
mod at_exit {
    /// Elsewhere `process::exit` may end the other threads before the exit handlers run, and
    /// the writer thread with them: only the guard and the panic hook flush.
    pub(super) fn register() {}
}
