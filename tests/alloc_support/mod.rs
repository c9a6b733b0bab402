//! The counting global allocator of the allocation tests: each test binary that declares
//! `mod alloc_support;` counts its threads' allocations with it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

pub struct Counting;

thread_local! {
    // `const` and `Cell<usize>`: no lazy initialisation and no destructor, so reading it from
    // inside the allocator cannot allocate.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Whether every thread's allocations are counted too (see [`process_allocations_during`]).
static PROCESS_COUNTING: AtomicBool = AtomicBool::new(false);
static PROCESS_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// The bytes every thread has allocated and not freed, as sizes asked of the allocator (its
/// own bookkeeping is not counted, so the figure does not depend on the allocator).
static PROCESS_LIVE: AtomicIsize = AtomicIsize::new(0);

fn live(bytes: isize) {
    PROCESS_LIVE.fetch_add(bytes, Ordering::Relaxed);
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    if PROCESS_COUNTING.load(Ordering::Relaxed) {
        PROCESS_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(unsafe_code)]
// Safety: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell` and two atomics, none of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            live(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            live(layout.size() as isize);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            live(new_size as isize - layout.size() as isize);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This thread's allocations so far.
pub fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `event` `warm_up` times, then `events` times, and returns the allocations of the
/// second run.
pub fn allocations_per_run(warm_up: usize, events: usize, event: &mut dyn FnMut()) -> usize {
    for _ in 0..warm_up {
        event();
    }
    let before = allocations();
    for _ in 0..events {
        event();
    }
    allocations() - before
}

/// Runs `f` and returns the allocations every thread of the process made meanwhile (a
/// writer's worker thread, a reader), not only this one's.
pub fn process_allocations_during(f: impl FnOnce()) -> usize {
    let before = PROCESS_ALLOCATIONS.load(Ordering::SeqCst);
    PROCESS_COUNTING.store(true, Ordering::SeqCst);
    f();
    PROCESS_COUNTING.store(false, Ordering::SeqCst);
    PROCESS_ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// The bytes all threads of the process hold allocated now.
pub fn process_live_bytes() -> isize {
    PROCESS_LIVE.load(Ordering::SeqCst)
}

/// A writer that discards bytes but counts them, so the work cannot be optimised away.
#[derive(Clone, Default)]
pub struct Discard(pub std::sync::Arc<AtomicUsize>);

impl std::io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
