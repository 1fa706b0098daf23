//! The demo cell placing parts, controller and simulated cell in lockstep on the virtual
//! clock: takt's count equals the world's ground truth, with no fault and no collision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

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
