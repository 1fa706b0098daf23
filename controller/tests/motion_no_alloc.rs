//! Sampling a planned move allocates nothing, and neither does planning one: both can run in
//! the real-time cycle. Allocations are counted on the test thread only (takt-alloc-count).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use takt_controller::motion::{Limits, plan_move};

#[global_allocator]
static GLOBAL: takt_alloc_count::CountingAllocator = takt_alloc_count::CountingAllocator;

#[test]
fn planning_and_sampling_do_not_allocate() {
    let x = Limits {
        max_velocity: 1500.0,
        max_acceleration: 10000.0,
        max_jerk: 1e5,
    };
    let y = Limits {
        max_velocity: 1200.0,
        max_acceleration: 8000.0,
        max_jerk: 1e5,
    };
    let z = Limits {
        max_velocity: 600.0,
        max_acceleration: 5000.0,
        max_jerk: 1e5,
    };
    let mut positions = [0.0f64; 3];
    let mut checksum = 0.0;
    let (_, allocations) = takt_alloc_count::allocations_in(|| {
        for k in 0..100 {
            let target = [120.0 + f64::from(k), 40.0, 12.0];
            let plan = plan_move(&[480.0, 320.0, 100.0], &target, &[x, y, z], true).unwrap();
            // One sample per 1 ms cycle over the whole move.
            let cycles = (plan.duration() * 1000.0).ceil() as u32;
            for c in 0..=cycles {
                plan.positions_at(f64::from(c) * 1e-3, &mut positions);
                checksum += positions[0] + plan.sample(2, f64::from(c) * 1e-3).velocity;
            }
        }
    });
    assert_eq!(allocations, 0);
    assert!(checksum.is_finite());
}
