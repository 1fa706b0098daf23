//! Shared set-up of the controller tests: the demo cell's program, the simulated demo cell,
//! and the two in lockstep.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;
use std::path::Path;

use takt_controller::commands::Command;
use takt_controller::cycle::{CellController, CycleConfig};
use takt_controller::rt::Lockstep;
use takt_controller::safety::CellState;
use takt_controller::status::{Outbox, StartupPhase};
use takt_sequences::Program;
use takt_sim::{SimConfig, demo_cell};

pub fn program() -> Program {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let checked = takt_sequences::check_file(&path);
    checked.program.expect("config/cell.toml checks")
}

pub fn lockstep(seed: u64) -> Lockstep {
    lockstep_with(seed, |_| {})
}

pub fn lockstep_with(seed: u64, tweak: impl FnOnce(&mut takt_sim::CellSpec)) -> Lockstep {
    lockstep_full(seed, tweak, Outbox::none())
}

pub fn lockstep_full(
    seed: u64,
    tweak: impl FnOnce(&mut takt_sim::CellSpec),
    outbox: Outbox,
) -> Lockstep {
    let program = program();
    let cell = CellController::new(&program, CycleConfig::default(), outbox, None).unwrap();
    let mut spec = demo_cell();
    tweak(&mut spec);
    let config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    Lockstep::new(&spec, config, cell).unwrap()
}

/// Runs start-up to Ready and starts the cell.
pub fn start(ls: &mut Lockstep) {
    assert!(
        ls.run_until(Duration::from_secs(10), |l| l.cell.startup()
            == StartupPhase::Ready),
        "start-up did not finish: {:?} {:?}",
        ls.cell.startup(),
        ls.cell.state()
    );
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    assert!(
        ls.run_until(Duration::from_secs(5), |l| l.cell.state()
            == CellState::Execute),
        "no Execute: {:?} trip {:?}",
        ls.cell.state(),
        ls.cell.trip()
    );
}

/// Runs until `parts` parts are counted; panics on a trip or after `limit`.
pub fn place(ls: &mut Lockstep, parts: u64, limit: Duration) {
    let ok = ls.run_until(limit, |l| {
        l.cell.counter(0) >= parts || l.cell.trip().is_some()
    });
    assert!(
        ok && ls.cell.trip().is_none(),
        "placed {} of {parts}; state {:?}, trip {:?}, world {:?}",
        ls.cell.counter(0),
        ls.cell.state(),
        ls.cell.trip(),
        ls.sim.world().map(|w| w.truth())
    );
}

/// `takt run`'s watchdog in the tests that run the cell in real time to test something
/// else (the console, the control socket, the start gate). This machine is a virtual one
/// shared with others: ftrace caught the cycle thread asleep in `clock_nanosleep` 22.9 ms
/// past its wake-up while an ordinary `yes` ran on its CPU (the hypervisor had taken the
/// virtual CPU away), which the default watchdog (ten periods: 10 ms at 1 ms, 20 ms at
/// 2 ms) rightly trips on. The watchdog itself is tested in `rt.rs` and `supervision.rs`.
pub const REAL_TIME_TEST_WATCHDOG: [&str; 2] = ["--watchdog", "250ms"];
