//! The named fault scenarios of config/scenarios/*.toml, each run by the controller on the
//! simulated cell with its `[expect]`ed outcome: which fault class trips the cell, in which
//! stop category, whether it resyncs and resumes by itself (or after the operator's reset
//! and start), and that the parts are then completed with takt's count equal to the
//! world's and no collision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::path::Path;

use takt_controller::cli::sim::cell;
use takt_controller::commands::Command;
use takt_controller::cycle::{CellController, CycleConfig};
use takt_controller::resync::ResyncEvent;
use takt_controller::rt::Lockstep;
use takt_controller::safety::CellState;
use takt_controller::status::{EventKind, StartupPhase, channels, describe};
use takt_sim::{Scenario, SimConfig};

fn run(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenario = Scenario::load(&root.join(format!("config/scenarios/{name}.toml"))).unwrap();
    let expect = scenario
        .expect
        .clone()
        .expect("the scenario has an [expect] section");
    let program = support::program();
    let (outbox, inbox) = channels(1 << 16, 1);
    let ctl = CellController::new(&program, CycleConfig::default(), outbox, None).unwrap();
    let spec = cell(&root.join("config/cell.toml"), 0).unwrap();
    let config = SimConfig {
        seed: scenario.seed.unwrap_or(1),
        ..SimConfig::default()
    };
    let mut ls = Lockstep::new(&spec, config, ctl).unwrap();
    ls.sim.load_scenario(&scenario).unwrap();
    assert!(ls.run_until(Duration::from_secs(10), |l| l.cell.startup()
        == StartupPhase::Ready));
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    let mut first_trip = None;
    let mut operator_presses = 0;
    let mut resyncs = 0;
    let mut configured = 0;
    let mut resume_held = 0;
    // What happened, for the failure messages.
    let mut log = Vec::new();
    let mut since = ls.now();
    let mut last = ls.cell.state();
    let end = ls.now() + Duration::from_secs(120);
    while ls.now() < end && ls.cell.counter(0) < expect.parts.max(1) {
        ls.step();
        let now = ls.now();
        for e in inbox.events.try_iter() {
            if !matches!(e.kind, EventKind::Step { .. } | EventKind::Counted { .. }) {
                log.push(describe(&program, &e));
            }
            match e.kind {
                EventKind::Trip { cause, category } if first_trip.is_none() => {
                    first_trip = Some((cause, category));
                }
                EventKind::Resync(ResyncEvent::Axis { .. }) => resyncs += 1,
                EventKind::Configured { node } if Some(node) == expect.reconfigured => {
                    configured += 1;
                }
                _ => {}
            }
        }
        if ls.cell.state() != last {
            last = ls.cell.state();
            since = now;
        }
        // The operator: reset and start after a stop that waits for them.
        if now.saturating_since(since) >= Duration::from_secs(1) {
            let c = match last {
                CellState::Aborted => Some(Command::Reset),
                CellState::Held if ls.cell.resume_held() => {
                    resume_held += 1;
                    Some(Command::Reset)
                }
                CellState::Stopped => Some(Command::Start),
                _ => None,
            };
            if let Some(c) = c {
                operator_presses += 1;
                ls.cell.command(c, now);
                since = now;
            }
        }
    }
    let class = first_trip.map(|(c, _)| c.class().key());
    assert_eq!(
        class,
        expect.trip.as_deref(),
        "{name}: first trip {first_trip:?}"
    );
    if let Some(category) = expect.category {
        assert_eq!(first_trip.map(|t| t.1), Some(category), "{name}");
    }
    assert_eq!(
        operator_presses == 0,
        expect.resumes_by_itself,
        "{name}: the operator pressed {operator_presses} times\n{}",
        log.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        resyncs >= expect.resyncs_at_least,
        "{name}: {resyncs} axis resyncs"
    );
    if let Some(node) = expect.reconfigured {
        // Once at start-up (before the loop), once after the reboot.
        assert!(
            configured >= 1,
            "{name}: node {node} was not configured again"
        );
    }
    let truth = ls.sim.world().unwrap().truth();
    assert!(ls.cell.counter(0) >= expect.parts, "{name}: {truth:?}");
    // A part placed but not yet counted (the outfeed still indexing) is in flight.
    assert!(
        truth.placed == ls.cell.counter(0) || truth.placed == ls.cell.counter(0) + 1,
        "{name}: takt {} world {truth:?}",
        ls.cell.counter(0)
    );
    assert_eq!(
        (truth.dropped, truth.collisions),
        (expect.dropped, 0),
        "{name}: {truth:?}"
    );
    // A part lost is never resumed as if it were there: the cell held for the operator.
    assert_eq!(
        resume_held > 0,
        expect.dropped > 0,
        "{name}: held {resume_held} times"
    );
}

macro_rules! scenarios {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run($file);
            }
        )*
    };
}

scenarios! {
    z_loses_steps_is_caught_as_following_error_and_resynced => "z-loses-steps",
    a_following_error_emcy_resyncs_the_axis => "following-error-emcy",
    a_rebooted_drive_is_reconfigured_and_read_back => "node-reboot",
    a_rebooted_z_is_homed_again_on_its_switch => "z-reboot",
    heartbeat_loss_and_return_resumes_the_cell => "node-silent",
    stale_feedback_trips_and_resumes => "stale-feedback",
    bus_off_and_recovery_recheck_every_node => "bus-off",
    a_position_jump_trips_and_resyncs => "position-jump",
    a_drive_fault_waits_for_the_operator => "drive-fault",
    the_safety_chain_waits_for_reset_and_start => "safety",
    a_part_lost_with_the_io_node_holds_the_cell => "io-bus-off",
}
