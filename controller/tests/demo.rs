//! The demo cell placing parts, controller and simulated cell in lockstep on the virtual
//! clock: takt's count equals the world's ground truth, with no fault and no collision, at
//! the default 1 ms cycle and at other cycle periods with SYNC every k cycles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

use takt_controller::cycle::{CellController, CycleConfig, CycleCounters};
use takt_controller::rt::Lockstep;
use takt_controller::status::Outbox;
use takt_drivers::can::{BusEvent, Timestamp};
use takt_sim::{SimConfig, demo_cell};

#[test]
fn the_demo_places_100_parts_and_takt_counts_what_the_world_saw() {
    let mut ls = support::lockstep(1);
    support::start(&mut ls);
    support::place(&mut ls, 100, Duration::from_secs(1200));
    // Let the last part settle on the outfeed before comparing.
    let truth = ls.sim.world().unwrap().truth();
    assert_eq!(truth.placed, ls.cell.counter(0), "{truth:?}");
    assert_eq!((truth.dropped, truth.collisions), (0, 0), "{truth:?}");
}

/// The demo at `period`: started, placing `parts`; returns the controller's counters and
/// the wire times of every SYNC.
fn place_at(period: Duration, parts: u64) -> (CycleCounters, Vec<Timestamp>) {
    let cfg = CycleConfig {
        period,
        ..CycleConfig::default()
    };
    let cell = CellController::new(&support::program(), cfg, Outbox::none(), None).unwrap();
    let config = SimConfig {
        seed: 3,
        trace: true,
        ..SimConfig::default()
    };
    let mut ls = Lockstep::with_period(&demo_cell(), config, cell, period).unwrap();
    support::start(&mut ls);
    support::place(&mut ls, parts, Duration::from_secs(60));
    let truth = ls.sim.world().unwrap().truth();
    assert_eq!(truth.placed, ls.cell.counter(0), "{period:?}: {truth:?}");
    assert_eq!((truth.dropped, truth.collisions), (0, 0), "{truth:?}");
    let syncs = ls
        .sim
        .trace()
        .iter()
        .filter_map(|r| match r.event {
            BusEvent::Frame(f) if f.frame.standard_id() == Some(0x080) => Some(f.timestamp),
            _ => None,
        })
        .collect();
    (ls.cell.counters(), syncs)
}

#[test]
fn the_demo_places_parts_at_half_a_millisecond_and_at_two_with_sync_every_k_cycles() {
    // The cell file's SYNC period is 2 ms: every 4th cycle at 0.5 ms, every cycle at 2 ms.
    for period in [Duration::from_micros(500), Duration::from_millis(2)] {
        let (c, syncs) = place_at(period, 2);
        assert_eq!(syncs.len() as u64, c.syncs, "{period:?}");
        assert!(c.syncs > 1000, "{period:?}: {c:?}");
        // On the wire one SYNC period apart, give or take the one frame a SYNC may have to
        // wait for (135 bits at 1 Mbit/s): never a cycle early or late.
        for w in syncs.windows(2) {
            let gap_us = w[1].saturating_since(w[0]).as_micros();
            assert!(
                (2000 - 135..=2000 + 135).contains(&gap_us),
                "{period:?}: SYNCs {gap_us} µs apart at {:?}",
                w[1]
            );
        }
    }
}
#[test]
fn a_cycle_period_that_does_not_divide_the_sync_period_is_refused() {
    let cfg = CycleConfig {
        period: Duration::from_micros(750),
        ..CycleConfig::default()
    };
    let e = CellController::new(&support::program(), cfg, Outbox::none(), None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("bus can0") && text.contains("not a whole number of cycle periods"),
        "{text}"
    );
}
