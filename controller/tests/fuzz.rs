//! Deterministic simulation testing (issue 7): a fixed batch of `takt sim fuzz` seeds in
//! the test suite, the seeds whose failures the fuzzer found and that were fixed, and the
//! byte-for-byte replay of a seed. CI runs 1,000 seeds with the release build
//! (`tests/run`); this keeps a small share in `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use takt_controller::cli::sim::cell;
use takt_controller::cli::sim::fuzz::{run_seed, schedule};
use takt_sim::CellSpec;

/// The simulated cell exactly as `takt sim fuzz config/cell.toml` builds it.
fn spec() -> CellSpec {
    cell(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml"),
        0,
    )
    .unwrap()
}

#[test]
fn a_seed_replays_the_same_schedule_and_the_same_run() {
    let program = support::program();
    assert_eq!(schedule(17, 3), schedule(17, 3));
    assert_ne!(schedule(17, 3), schedule(18, 3));
    let a = run_seed(&program, &spec(), 17, 2, false);
    let b = run_seed(&program, &spec(), 17, 2, false);
    assert_eq!(a, b);
}

/// Each of these seeds broke an invariant before its fix (see the commit history):
/// 2 — Z lost steps holding z_safe, the resumed X/Y move was refused forever (recovery
/// move); 5 — a drive left in pre-operational after bus-off never sent feedback again
/// (NMT start); 57 — a trip while the cell started again forgot the running infeed (no
/// part came); 420 — an e-stop while the cell stood after a category 2 stop left the
/// drives enabled (invariant 1); 60 — Z lost fewer steps than its following-error window
/// but more than its in-position window, and the move waited forever.
#[test]
fn seeds_the_fuzzer_found_and_that_were_fixed_pass() {
    let program = support::program();
    for seed in [2, 5, 57, 60, 420] {
        let r = run_seed(&program, &spec(), seed, 4, false);
        assert_eq!(r.failure, None, "seed {seed}: {r:?}");
        assert!(r.trips > 0 && r.resyncs > 0, "seed {seed}: {r:?}");
    }
}

/// Seeds of 3-part shifts (`takt sim fuzz config/cell.toml --parts 3`, as CI runs them)
/// that broke an invariant before their fix: 6 — the e-stop chain opened while Z went down
/// at the pick station and Z, with no holding brake, coasted into the belt (invariant 2;
/// the simulated Z has a brake now); 11 — a stepper re-enabled after losing steps snapped
/// its rotor to the field and tore the part off the nozzle (the driver keeps its field
/// while off), and the part was counted; 28 — Z's drive went bus-off lifting a part, froze
/// its set-point and tore the part off just before the trip, and the pass resumed and
/// counted it (0x6007 on bus-off, `persist` debounced); 458 — a trip while held for a lost
/// part resumed the pass; 654 — a second trip cut Z's homing short and the next attempt
/// took it as done (invariant 4); 862 — a configuration write lost to a bus-off left the
/// rebooted Y unconfigured and the cell starting for ever (invariant 6); 863 — the vacuum
/// was released at the place station while the I/O node was off the bus, and a part that
/// had fallen on the way was counted; 1557 — the same, with the I/O node off the bus for
/// less than its heartbeat time (its EMCY 0x8140 now counts as a lost heartbeat); 1754 —
/// Z lost steps on its recovery move after a re-homing and the cell waited for ever for
/// it to arrive (now a following error, as for a move of the sequence).
#[test]
fn three_part_seeds_the_fuzzer_found_and_that_were_fixed_pass() {
    let program = support::program();
    for seed in [6, 11, 28, 458, 654, 862, 863, 1557, 1754] {
        let r = run_seed(&program, &spec(), seed, 3, false);
        assert_eq!(r.failure, None, "seed {seed}: {r:?}");
        assert_eq!(r.counted, r.placed, "seed {seed}: {r:?}");
        assert!(r.trips > 0, "seed {seed}: {r:?}");
    }
}
