//! The counting global allocator of the allocation tests: each test binary that declares
//! `mod alloc_support;` counts its threads' allocations with it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct Counting;

thread_local! {
    // `const` and `Cell<usize>`: no lazy initialisation and no destructor, so reading it from
    // inside the allocator cannot allocate.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Whether every thread's allocations are counted too (see [`process_allocations_during`]).
static PROCESS_COUNTING: AtomicBool = AtomicBool::new(false);
static PROCESS_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    if PROCESS_COUNTING.load(Ordering::Relaxed) {
        PROCESS_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(unsafe_code)]
// Safety: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
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
