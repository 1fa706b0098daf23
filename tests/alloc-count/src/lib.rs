//! A counting global allocator for takt's zero-allocation tests: the hot path (the cycle, the
//! CANopen cyclic services, motion sampling, the program walk) must not allocate, and these
//! tests prove it by counting.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: takt_alloc_count::CountingAllocator = takt_alloc_count::CountingAllocator;
//!
//! #[test]
//! fn sampling_does_not_allocate() {
//!     let (_, allocations) = takt_alloc_count::allocations_in(|| sample_a_thousand_times());
//!     assert_eq!(allocations, 0);
//! }
//! ```
//!
//! Only allocations on the calling thread while `f` runs are counted, so the test harness's
//! own threads (output capture, timers) cannot make a test fail; calls are serialised
//! because the counter is shared.
#![deny(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The system allocator, counting allocations (and reallocations) made on a thread inside
/// [`allocations_in`]. Install it with `#[global_allocator]` in the test binary.
#[derive(Debug)]
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// an atomic and a const thread-local, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the number of allocations it made on this thread.
/// Meaningful only in a binary whose global allocator is [`CountingAllocator`].
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCATIONS.load(Ordering::Relaxed) - before)
}
