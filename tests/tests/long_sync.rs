//! The demo cell at the longer SYNC periods the cell file allows (up to 10 ms), in lockstep
//! with the simulated cell: every part placed by takt's count is placed in the simulated
//! world, none dropped, no trip. At 5 ms and more, drives that interpolated the set-points
//! with a straight line per SYNC period stepped their velocity at every SYNC (acceleration ×
//! period, 50 mm/s at 10 ms): the open-loop Z stepper stalled (a following error) and the
//! jolts shook parts off the gripper. This is also the cell the RT-kernel VM runs at its
//! 10 ms period (deploy_vm.rs).

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use takt_tests::cell_variant::CellVariant;

fn runs_three_parts(sync_ms: u32) {
    let takt = takt_tests::vm::takt_binary().unwrap();
    let cell = CellVariant::demo()
        .unwrap()
        .sync_period_ms(sync_ms)
        .write(&format!("sync-{sync_ms}ms"))
        .unwrap();
    let run = Command::new(&takt)
        .arg("run")
        .arg(&cell)
        .args(["--fast", "--parts", "3", "--no-socket", "--no-journal"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&cell);
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{out}\n{err}");
    assert!(
        out.contains(
            "parts placed: 3 (takt's count), 3 (the simulated world's); dropped 0, collisions 0"
        ),
        "{out}\n{err}"
    );
    assert!(out.contains("trips 0;"), "{out}\n{err}");
}

#[test]
fn the_demo_cell_runs_at_a_5_ms_sync() {
    runs_three_parts(5);
}

#[test]
fn the_demo_cell_runs_at_a_10_ms_sync() {
    runs_three_parts(10);
}
