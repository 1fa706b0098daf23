//! Supervision in simulated time: lost steps caught as following error, a silent device as
//! heartbeat loss or stale feedback, a sequence fault stopping in category 2 with power kept,
//! and hold / resume / single-step through the command queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

use takt_controller::axis::AxisState;
use takt_controller::commands::{Command, command_channel};
use takt_controller::control::view::View;
use takt_controller::cycle::{CellController, CycleConfig};
use takt_controller::rt::Lockstep;
use takt_controller::safety::{CellState, TripCause};
use takt_controller::status::{Event, EventKind, WatchdogTrip, channels};
use takt_sim::cia402::PowerState;
use takt_sim::{Fault, FaultKind, SimConfig, demo_cell};

fn at(ls: &Lockstep, after: Duration) -> Duration {
    ls.now()
        .saturating_since(takt_drivers::can::Timestamp::ZERO)
        + after
}

#[test]
fn lost_steps_on_z_trip_the_cell_as_following_error() {
    let (outbox, inbox) = channels(1 << 16, 1);
    let mut ls = support::lockstep_full(21, |_| {}, outbox);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    // 60 full steps = 960 counts = 1.5 mm: beyond Z's 1 mm window, within the 2 mm that
    // config/cell.toml keeps between z_safe and the conveyors' clearance (a bigger loss
    // while X/Y move at z_safe reaches the belt before any controller could react).
    let when = at(&ls, Duration::from_millis(500));
    ls.sim
        .add_fault(Fault::new(
            FaultKind::LoseSteps { node: 3, steps: 60 },
            when,
            None,
        ))
        .unwrap();
    assert!(ls.run_until(Duration::from_secs(2), |l| l.cell.trip().is_some()));
    assert!(
        matches!(
            ls.cell.trip(),
            Some(TripCause::FollowingError { axis: 2 } | TripCause::DriveFault { axis: 2 })
        ),
        "{:?}",
        ls.cell.trip()
    );
    assert_eq!(ls.sim.world().unwrap().truth().collisions, 0);
    let events: Vec<_> = inbox.events.try_iter().map(|e| e.kind).collect();
    if ls.cell.trip() == Some(TripCause::DriveFault { axis: 2 }) {
        // The drive's own monitor was first: its EMCY is in the journal.
        assert!(
            events
                .iter()
                .any(|e| matches!(e, EventKind::Emcy { node: 3, .. })),
            "{events:?}"
        );
    } else {
        // The controller's own check (seed 21 today) says by how much, once, just before
        // its trip.
        let seen: Vec<_> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, EventKind::FollowingError { .. }))
            .collect();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (
            i,
            &EventKind::FollowingError {
                axis,
                error_counts,
                window_counts,
                syncs,
            },
        ) = seen[0]
        else {
            unreachable!()
        };
        assert_eq!(
            (axis, syncs),
            (2, CycleConfig::default().following_error_syncs + 1)
        );
        assert!(error_counts.abs() > window_counts, "{:?}", seen[0]);
        assert!(
            events[i..].iter().any(|e| matches!(
                e,
                EventKind::Trip {
                    cause: TripCause::FollowingError { axis: 2 },
                    ..
                }
            )),
            "the trip follows the event"
        );
        // The journal's record in the axis's units.
        let mut view = View::new(support::program(), Duration::from_millis(1));
        let r = view.record(&Event {
            at: ls.now(),
            kind: *seen[0].1,
        });
        assert_eq!(r.kind, "following_error");
        assert_eq!(
            r.text,
            "axis z: following error -1.500 mm for 4 SYNCs in a row (window 1.000 mm)"
        );
    }
}

#[test]
fn a_silent_drive_stops_the_cell() {
    let mut ls = support::lockstep(22);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    let when = at(&ls, Duration::from_millis(300));
    ls.sim
        .add_fault(Fault::new(FaultKind::NodeSilent { node: 2 }, when, None))
        .unwrap();
    assert!(ls.run_until(Duration::from_secs(2), |l| l.cell.trip().is_some()));
    assert!(
        matches!(
            ls.cell.trip(),
            Some(TripCause::StaleFeedback { node: 2 } | TripCause::HeartbeatLost { node: 2 })
        ),
        "{:?}",
        ls.cell.trip()
    );
    // The silent drive cannot confirm its stop: the cell counts it done after the abort
    // timeout (3 s).
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.state()
        == CellState::Aborted));
    assert_eq!(ls.sim.world().unwrap().truth().collisions, 0);
}

#[test]
fn a_vacuum_timeout_is_a_sequence_fault_stopped_in_category_2_with_power_kept() {
    let mut ls = support::lockstep(23);
    ls.sim
        .add_fault(Fault::new(
            FaultKind::SensorStuck {
                input: "vacuum_ok".into(),
                value: false,
            },
            Duration::ZERO,
            None,
        ))
        .unwrap();
    support::start(&mut ls);
    assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.trip().is_some()));
    assert_eq!(ls.cell.trip(), Some(TripCause::SequenceFault { instr: 6 }));
    assert!(ls.run_until(Duration::from_secs(3), |l| l.cell.state()
        == CellState::Aborted));
    // Category 2: a controlled stop, the drives stay enabled.
    for d in ["x", "y", "z"] {
        let p = ls.sim.device(d).unwrap().as_drive().unwrap().power_state();
        assert_eq!(p, PowerState::OperationEnabled, "{d}");
    }
}

#[test]
fn hold_waits_at_a_step_boundary_resume_goes_on_and_single_step_runs_one_step() {
    let program = support::program();
    let (tx, rx) = command_channel(8);
    let (outbox, inbox) = channels(1 << 16, 1024);
    let cell = CellController::new(&program, CycleConfig::default(), outbox, Some(rx)).unwrap();
    let mut ls = Lockstep::new(&demo_cell(), SimConfig::default(), cell).unwrap();
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == 3));
    assert!(tx.send(Command::Hold));
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.state()
        == CellState::Held));
    // Held after the running move ended: the gantry stands, no step starts.
    let pc = ls.cell.status_pc();
    ls.run_until(Duration::from_secs(2), |_| false);
    assert_eq!(ls.cell.status_pc(), pc, "no step starts while held");
    assert!(
        ls.cell
            .plant
            .axes
            .iter()
            .take(3)
            .all(|a| a.state == AxisState::Standstill)
    );
    // One step, then held again.
    assert!(tx.send(Command::SingleStep));
    ls.run_until(Duration::from_secs(2), |_| false);
    assert_ne!(ls.cell.status_pc(), pc, "single step ran one step");
    assert_eq!(ls.cell.state(), CellState::Held);
    assert!(tx.send(Command::Resume));
    support::place(&mut ls, 2, Duration::from_secs(60));
    assert_eq!(ls.sim.world().unwrap().truth().placed, ls.cell.counter(0));
    // The events and status left through the queues.
    let events: Vec<_> = inbox.events.try_iter().collect();
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::CellState {
            to: CellState::Held,
            ..
        }
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Counted { total: 2, .. }))
    );
    // The status queue filled up (nobody drained it): snapshots were counted as dropped,
    // never waited for; the ones queued show the cell held at some point.
    let snapshots: Vec<_> = inbox.status.try_iter().collect();
    assert_eq!(snapshots.len(), 1024);
    assert!(snapshots.iter().any(|s| s.cell == CellState::Held));
    assert_eq!(ls.cell.status().cell, CellState::Execute);
}

#[test]
fn the_watchdog_trips_a_running_cell_on_cycle_overrun_and_says_what_it_saw() {
    let program = support::program();
    let (outbox, inbox) = channels(1 << 16, 1);
    let cell = CellController::new(&program, CycleConfig::default(), outbox, None).unwrap();
    let mut ls = Lockstep::new(&demo_cell(), SimConfig::default(), cell).unwrap();
    support::start(&mut ls);
    assert!(ls.run_until(Duration::from_secs(10), |l| l.cell.state()
        == CellState::Execute));
    let seen = WatchdogTrip {
        ended_after_us: 22_900,
        in_a_row: 1,
        watchdog_us: 20_000,
        trip_in_a_row: 10,
    };
    let now = ls.now();
    ls.cell.trip_overrun(seen, now);
    ls.step();
    assert_eq!(ls.cell.trip(), Some(TripCause::CycleOverrun));
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.state()
        == CellState::Aborted));
    // What the watchdog saw comes first, then the trip it caused.
    let events: Vec<_> = inbox.events.try_iter().map(|e| e.kind).collect();
    let watchdog = events
        .iter()
        .position(|e| *e == EventKind::Watchdog(seen))
        .expect("the watchdog's event");
    assert!(matches!(
        events[watchdog + 1],
        EventKind::Trip {
            cause: TripCause::CycleOverrun,
            category: 1
        }
    ));
    assert_eq!(
        seen.describe(),
        "watchdog: a cycle ended 22.9 ms after its planned wake-up (watchdog time 20.0 ms), \
         1 overrun(s) in a row (trips at 10)"
    );
}
