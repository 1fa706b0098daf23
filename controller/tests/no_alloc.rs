//! The cycle allocates nothing: 10,000 cycles of the running demo cell — SYNC and PDOs,
//! moves planned and streamed, conveyors, I/O, the sequencer, counters — with the counting
//! global allocator. The simulated cell runs in the same closure; its own step is proven
//! allocation-free in sim/tests/no_alloc.rs, so the count is the controller's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

use takt_alloc_count::{CountingAllocator, allocations_in};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn ten_thousand_cycles_of_the_running_demo_allocate_nothing() {
    // Real event and status queues, drained between cycles as the non-RT thread would.
    let (outbox, inbox) = takt_controller::status::channels(1024, 4);
    let mut ls = support::lockstep_full(3, |_| {}, outbox);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    let parts_before = ls.cell.counter(0);
    let ((), allocations) = allocations_in(|| {
        for _ in 0..10_000 {
            ls.step();
            while inbox.events.try_recv().is_ok() {}
            while inbox.status.try_recv().is_ok() {}
        }
    });
    assert!(ls.cell.trip().is_none(), "{:?}", ls.cell.trip());
    assert!(
        ls.cell.counter(0) > parts_before,
        "the cell kept placing parts during the measured cycles"
    );
    assert_eq!(allocations, 0, "allocations in 10,000 cycles");
}
