//! The queue between the threads that log and the writer thread: two byte buffers of a fixed
//! capacity behind one mutex. A producer copies its line into `pending`; the worker swaps
//! `pending` with its own empty buffer and writes the whole batch. Nothing is allocated after
//! the two buffers are.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::output::ErrorCounter;
use crate::schema::Schema;

/// What a [`Shared`] is built with; fixed for its life.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) capacity: usize,
    pub(crate) blocking: bool,
    pub(crate) stall_timeout: Duration,
    pub(crate) flush_timeout: Duration,
    pub(crate) schema: Schema,
    pub(crate) errors: ErrorCounter,
    pub(crate) report_errors: bool,
}

/// What the worker is doing, so that a producer knows whether it must wake it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Worker {
    /// Taking or writing a batch: it looks at `pending` again when done.
    Running,
    /// Waiting a short while after a batch for more lines: woken only when `pending` is half
    /// full, so that a steady stream of lines costs the producers no syscall.
    Napping,
    /// Waiting until woken: the first line into the empty buffer wakes it.
    Sleeping,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Lines not yet taken by the worker. Its capacity is reserved up front and never grows.
    pub(crate) pending: Vec<u8>,
    /// Lines accepted into `pending` so far.
    pub(crate) accepted: u64,
    /// Lines the worker has finished with (written, or lost to a write error) so far.
    pub(crate) done: u64,
    /// Lines dropped (queue full) and not yet taken for reporting.
    pub(crate) dropped: u64,
    /// Lines dropped so far, and those whose report the worker has written (or lost).
    pub(crate) dropped_total: u64,
    pub(crate) reported_total: u64,
    pub(crate) worker: Worker,
    /// Producers waiting for space (blocking mode) and threads waiting for a flush: the
    /// worker notifies only when someone waits, since a notify is a syscall.
    pub(crate) waiting_producers: usize,
    pub(crate) waiting_flushers: usize,
    /// When the worker last made progress: took a batch, or got a piece of one written.
    pub(crate) progress_at: Option<Instant>,
    /// The worker made no progress for the stall timeout while the queue was full, or while
    /// the panic hook's flush waited: a line that does not fit is dropped at once, and such a
    /// flush gives up at once, until the worker makes progress again.
    pub(crate) stalled: bool,
    /// How many times the writer switched to dropping.
    pub(crate) stalls: u64,
    /// Every `NonBlocking` is gone: the worker writes what is left and ends.
    pub(crate) closed: bool,
    /// The worker thread has ended (or was never there): nothing more will be written.
    pub(crate) worker_gone: bool,
}

impl State {
    /// Notes that the worker made progress (took a batch, or got part of one written): a
    /// full queue is worth waiting for again. No notify: waiting producers look at it when
    /// their wait times out, and the batch the worker takes next wakes them.
    pub(crate) fn progressed(&mut self) {
        self.progress_at = Some(Instant::now());
        self.stalled = false;
    }
}

/// The state shared by the producers, the worker, the guard and the exit hooks.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the worker: a line into the empty buffer, the buffer half full, a flush, close.
    pub(crate) work: Condvar,
    /// Wakes producers waiting for space (blocking mode) once the worker took a batch.
    pub(crate) space: Condvar,
    /// Wakes flushers once the worker finished a batch.
    pub(crate) written: Condvar,
    pub(crate) config: Config,
    /// Live `NonBlocking` handles; the last one to go closes the queue.
    handles: AtomicUsize,
}

thread_local! {
    /// The address of the `Shared` whose worker runs on this thread, 0 elsewhere. The worker
    /// must never wait for itself: not in a flush (its writer panicked, and the panic hook
    /// flushes) nor for space (its writer logged while the queue was full).
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(config.capacity),
                accepted: 0,
                done: 0,
                dropped: 0,
                dropped_total: 0,
                reported_total: 0,
                worker: Worker::Sleeping,
                waiting_producers: 0,
                waiting_flushers: 0,
                progress_at: None,
                stalled: false,
                stalls: 0,
                closed: false,
                worker_gone: false,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            written: Condvar::new(),
            config,
            handles: AtomicUsize::new(0),
        }
    }

    /// Locks the state. No code panics while holding it, so a poisoned lock still holds a
    /// consistent state; taking it keeps logging alive whatever happened elsewhere.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks this thread as the worker of `self`.
    pub(crate) fn enter_worker(&self) {
        let _ = WORKER_OF.try_with(|w| w.set(self as *const Shared as usize));
    }

    fn on_worker_thread(&self) -> bool {
        WORKER_OF
            .try_with(|w| w.get() == self as *const Shared as usize)
            .unwrap_or(false)
    }

    /// Queues one line. When the queue is full, waits for room while the worker makes
    /// progress, for as long as it takes in blocking mode; drops and counts the line when
    /// the worker has made no progress for the stall timeout (and from then on at once,
    /// until it makes progress again), and when the line is longer than the whole queue.
    pub(crate) fn push(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let capacity = self.config.capacity;
        let mut state = self.lock();
        if state.pending.len() + line.len() > capacity {
            // The slow path, apart so that the fast one stays one comparison.
            state = match self.wait_for_room(state, line.len()) {
                Some(state) => state,
                None => return,
            };
        }
        state.pending.extend_from_slice(line);
        state.accepted += 1;
        let wake = match state.worker {
            Worker::Running => false,
            Worker::Napping => state.pending.len() > capacity / 2,
            Worker::Sleeping => true,
        };
        if wake {
            state.worker = Worker::Running;
        }
        drop(state);
        if wake {
            self.work.notify_one();
        }
    }

    /// Waits until `len` bytes fit in the queue and returns the lock, or drops the line and
    /// returns `None`.
    ///
    /// The wait ends in a drop when the worker has made no progress (no batch taken, no
    /// piece of one written) for the stall timeout: the writer is then stalled, and every
    /// producer drops at once instead of waiting in turn, so that a stalled reader holds
    /// each thread for at most one stall timeout per stall, never per line. The worker
    /// clears the stall at its next progress.
    #[cold]
    #[inline(never)]
    fn wait_for_room<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        len: usize,
    ) -> Option<MutexGuard<'a, State>> {
        let capacity = self.config.capacity;
        let timeout = self.config.stall_timeout;
        let blocking = self.config.blocking;
        // The worker cannot wait for itself (its writer logged while the queue was full).
        let may_wait = len <= capacity && !self.on_worker_thread();
        let start = Instant::now();
        while state.pending.len() + len > capacity {
            let stalled = !blocking && (state.stalled || timeout.is_zero());
            if !may_wait || state.worker_gone || stalled {
                self.drop_line(state);
                return None;
            }
            // A line bigger than half the queue may not fit a napping worker's queue.
            if state.worker != Worker::Running {
                state.worker = Worker::Running;
                self.work.notify_one();
            }
            // The time left before the writer counts as stalled: the stall timeout from the
            // worker's last progress, or from now if that was earlier. `None`: no limit.
            let left = if blocking {
                None
            } else {
                let since = state.progress_at.map_or(start, |at| at.max(start));
                match since.checked_add(timeout) {
                    Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => Some(left),
                        _ => {
                            state.stalled = true;
                            state.stalls += 1;
                            let others = state.waiting_producers > 0;
                            self.drop_line(state);
                            if others {
                                // They drop too, rather than each wait out its own timeout.
                                self.space.notify_all();
                            }
                            return None;
                        }
                    },
                    None => None,
                }
            };
            state.waiting_producers += 1;
            state = match left {
                Some(left) => {
                    self.space
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .space
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            state.waiting_producers -= 1;
        }
        Some(state)
    }

    /// Drops one line: counts it, for the report in the stream and in the error counter.
    fn drop_line(&self, mut state: MutexGuard<'_, State>) {
        state.dropped += 1;
        state.dropped_total += 1;
        let wake = wake_for_drop(&mut state);
        drop(state);
        if wake {
            self.work.notify_one();
        }
        self.config
            .errors
            .record(false, format_args!("the log queue is full"));
    }

    /// Waits until every line accepted before the call, and the report of every drop before
    /// it, has been written (or lost to a write error), for at most `timeout`.
    ///
    /// Returns the number of lines still not written when the time is up. On the worker's
    /// own thread it returns at once: the worker cannot wait for itself.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), u64> {
        self.flush_until(timeout, None)
    }

    /// Flushes as [`Self::flush`] does, but only while the worker makes progress: gives up
    /// once it has made none (no batch taken, no piece of one written) for `stall`, and at
    /// once while the writer is stalled (see [`State::stalled`]). A stalled reader holds up
    /// one caller for `stall` per stall, not each caller for `timeout`.
    pub(crate) fn flush_while_moving(&self, timeout: Duration, stall: Duration) -> Result<(), u64> {
        self.flush_until(timeout, Some(stall))
    }

    fn flush_until(&self, timeout: Duration, stall: Option<Duration>) -> Result<(), u64> {
        if self.on_worker_thread() {
            return Ok(());
        }
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        let mut state = self.lock();
        let (lines, drops) = (state.accepted, state.dropped_total);
        loop {
            if state.done >= lines && state.reported_total >= drops {
                return Ok(());
            }
            if state.worker_gone {
                return Err(lines - state.done);
            }
            let now = Instant::now();
            let mut left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(now) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Err(lines - state.done),
                },
                None => Duration::from_secs(3600),
            };
            if let Some(stall) = stall {
                if state.stalled {
                    return Err(lines - state.done);
                }
                // The same clock the producers' wait reads: the worker's last progress, or
                // the start of this flush if that was earlier.
                let since = state.progress_at.map_or(start, |at| at.max(start));
                let still = stall.saturating_sub(now.saturating_duration_since(since));
                if still.is_zero() {
                    state.stalled = true;
                    state.stalls += 1;
                    return Err(lines - state.done);
                }
                left = left.min(still);
            }
            if state.worker != Worker::Running {
                // Cut a nap short: the flusher wants the lines now.
                state.worker = Worker::Running;
                self.work.notify_one();
            }
            state.waiting_flushers += 1;
            state = self
                .written
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting_flushers -= 1;
        }
    }

    /// Flushes with the configured timeout and says on stderr how many lines it gave up on.
    pub(crate) fn flush_or_report(&self) {
        let timeout = self.config.flush_timeout;
        if let Err(lost) = self.flush(timeout) {
            if self.config.report_errors && lost > 0 {
                let _ = writeln!(
                    io::stderr(),
                    "[tracing-ambient] log flush timed out after {timeout:?}: \
                     {lost} line(s) not written"
                );
            }
        }
    }

    /// Counts a new `NonBlocking` handle.
    pub(crate) fn add_handle(&self) {
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets a `NonBlocking` handle; the last one closes the queue, and the worker ends once
    /// it has written what is left.
    pub(crate) fn drop_handle(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut state = self.lock();
            state.closed = true;
            state.worker = Worker::Running;
            drop(state);
            self.work.notify_one();
        }
    }
}

/// Whether a drop must wake the worker so that its report is written soon: only a sleeping
/// worker (a full queue has already woken a napping one).
fn wake_for_drop(state: &mut State) -> bool {
    let wake = state.worker == Worker::Sleeping;
    if wake {
        state.worker = Worker::Running;
    }
    wake
}
