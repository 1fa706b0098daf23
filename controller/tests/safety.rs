//! Safety in simulated time: e-stop at every step boundary and inside moves, a guard opened
//! mid-move, an X/Y move with Z below z_safe refused, the controller's heartbeat stopping,
//! a drive held in STO at start-up, and the e-stop reaction in cycles. In none of them does
//! the world record a collision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

use takt_controller::commands::Command;
use takt_controller::rt::Lockstep;
use takt_controller::safety::{CellState, TripCause};
use takt_controller::status::StartupPhase;
use takt_sequences::program::{AxisId, Instr, MoveTarget};
use takt_sim::cia402::PowerState;

const DRIVES: [&str; 5] = ["x", "y", "z", "infeed", "outfeed"];

fn power(ls: &Lockstep, name: &str) -> PowerState {
    ls.sim
        .device(name)
        .unwrap()
        .as_drive()
        .unwrap()
        .power_state()
}

fn stopped(ls: &Lockstep) -> bool {
    DRIVES.iter().all(|d| {
        matches!(
            power(ls, d),
            PowerState::QuickStopActive | PowerState::SwitchOnDisabled | PowerState::Fault
        )
    })
}

fn positions(ls: &Lockstep) -> [f64; 3] {
    ["x", "y", "z"].map(|d| ls.sim.device(d).unwrap().as_drive().unwrap().physical_mm())
}

fn no_collision(ls: &Lockstep) {
    let t = ls.sim.world().unwrap().truth();
    assert_eq!((t.collisions, t.dropped), (0, 0), "{t:?}");
}

/// E-stop command now: every drive stops within a bounded number of cycles, nothing moves
/// until reset and start, then the sequence goes on and the count stays right.
fn estop_and_recover(ls: &mut Lockstep, what: &str) {
    let now = ls.now();
    ls.cell.command(Command::EStop, now);
    let mut cycles = 0;
    while !stopped(ls) {
        ls.step();
        cycles += 1;
        assert!(
            cycles <= 10,
            "{what}: drives not stopped after {cycles} cycles"
        );
    }
    assert_eq!(ls.cell.trip(), Some(TripCause::EStopCommand), "{what}");
    assert!(
        ls.run_until(Duration::from_secs(3), |l| l.cell.state()
            == CellState::Aborted),
        "{what}: not Aborted: {:?}",
        ls.cell.state()
    );
    // Latched: nothing moves, and a reset alone does not restart motion.
    let before = positions(ls);
    ls.run_until(Duration::from_millis(500), |_| false);
    let now = ls.now();
    ls.cell.command(Command::Reset, now);
    ls.run_until(Duration::from_millis(500), |_| false);
    assert_eq!(ls.cell.state(), CellState::Stopped, "{what}: after reset");
    let after = positions(ls);
    for i in 0..3 {
        // A disabled servo may drift a little as it coasts out; no axis is driven.
        assert!(
            (after[i] - before[i]).abs() < 0.5,
            "{what}: axis {i} moved: {before:?} -> {after:?}"
        );
    }
    for d in DRIVES {
        assert_ne!(
            power(ls, d),
            PowerState::OperationEnabled,
            "{what}: {d} enabled without a start"
        );
    }
    let now = ls.now();
    ls.cell.command(Command::Start, now);
}

#[test]
fn e_stop_at_every_step_boundary_stops_the_drives_and_the_count_stays_right() {
    // Every step the main thread stands at for at least one cycle, found from one pass;
    // instant steps (outputs, the counter) end in the cycle they begin, so the boundary
    // before and after them is the one before the next step that waits.
    let mut ls = support::lockstep(11);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    let mut main: Vec<u32> = Vec::new();
    ls.run_until(Duration::from_secs(60), |l| {
        let pc = l.cell.status_pc();
        if !main.contains(&pc) {
            main.push(pc);
        }
        l.cell.counter(0) >= 2
    });
    assert!(main.len() >= 8, "{main:?}");
    for &pc in &main {
        let mut ls = support::lockstep(11);
        support::start(&mut ls);
        // Into the second pass, so every step is reached with a part in flight.
        support::place(&mut ls, 1, Duration::from_secs(60));
        assert!(
            ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == pc),
            "step {pc} not reached"
        );
        estop_and_recover(&mut ls, &format!("e-stop at step {pc}"));
        support::place(&mut ls, 3, Duration::from_secs(60));
        let truth = ls.sim.world().unwrap().truth();
        assert_eq!(truth.placed, ls.cell.counter(0), "step {pc}: {truth:?}");
        no_collision(&ls);
    }
}

#[test]
fn e_stop_inside_moves_stops_the_drives_and_the_count_stays_right() {
    // (instruction, time into it): XY to pick, Z down at pick, Z up, XY to place, Z down.
    // Step 13 is where the main thread waits while the fork's branches run (the XY move to
    // the place position and the infeed restarting); then it lowers Z.
    for (pc, ms) in [
        (3, 60),
        (3, 200),
        (4, 50),
        (7, 80),
        (13, 100),
        (13, 300),
        (13, 500),
    ] {
        let mut ls = support::lockstep(12);
        support::start(&mut ls);
        support::place(&mut ls, 1, Duration::from_secs(60));
        assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == pc));
        ls.run_until(Duration::from_millis(ms), |_| false);
        estop_and_recover(&mut ls, &format!("e-stop {ms} ms into step {pc}"));
        support::place(&mut ls, 3, Duration::from_secs(60));
        let truth = ls.sim.world().unwrap().truth();
        assert_eq!(
            truth.placed,
            ls.cell.counter(0),
            "step {pc} +{ms} ms: {truth:?}"
        );
        no_collision(&ls);
    }
}

#[test]
fn the_e_stop_chain_latches_and_a_reset_needs_the_chain_closed() {
    let mut ls = support::lockstep(13);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    // While waiting for the next part.
    assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == 1));
    ls.sim.world_mut().unwrap().set_estop_ok(false);
    assert!(ls.run_until(Duration::from_millis(100), |l| l.cell.trip()
        == Some(TripCause::EStopChain)));
    assert!(ls.run_until(Duration::from_secs(3), |l| l.cell.state()
        == CellState::Aborted));
    let now = ls.now();
    ls.cell.command(Command::Reset, now);
    ls.run_until(Duration::from_millis(200), |_| false);
    assert_eq!(
        ls.cell.state(),
        CellState::Aborted,
        "reset refused while the chain is open"
    );
    ls.sim.world_mut().unwrap().set_estop_ok(true);
    ls.run_until(Duration::from_millis(200), |_| false);
    let now = ls.now();
    ls.cell.command(Command::Reset, now);
    assert!(ls.run_until(Duration::from_secs(1), |l| l.cell.state()
        == CellState::Stopped));
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    support::place(&mut ls, 3, Duration::from_secs(60));
    assert_eq!(ls.sim.world().unwrap().truth().placed, ls.cell.counter(0));
    no_collision(&ls);
}

#[test]
fn a_guard_opened_mid_move_stops_the_cell_in_its_category() {
    let mut ls = support::lockstep(14);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == 13));
    ls.run_until(Duration::from_millis(100), |_| false);
    ls.sim.world_mut().unwrap().set_guard_closed(false);
    assert!(ls.run_until(Duration::from_millis(50), |l| matches!(
        l.cell.trip(),
        Some(TripCause::Interlock { .. })
    )));
    // The demo cell's interlock stop category is 1: quick stop, then disabled.
    assert!(ls.run_until(Duration::from_millis(20), stopped));
    assert!(ls.run_until(Duration::from_secs(3), |l| l.cell.state()
        == CellState::Aborted));
    ls.sim.world_mut().unwrap().set_guard_closed(true);
    ls.run_until(Duration::from_millis(100), |_| false);
    let now = ls.now();
    ls.cell.command(Command::Reset, now);
    assert!(ls.run_until(Duration::from_secs(1), |l| l.cell.state()
        == CellState::Stopped));
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    support::place(&mut ls, 3, Duration::from_secs(60));
    assert_eq!(ls.sim.world().unwrap().truth().placed, ls.cell.counter(0));
    no_collision(&ls);
}

#[test]
fn an_xy_move_with_z_below_z_safe_is_refused() {
    let mut program = support::program();
    // A sequence that lowers Z to 50 mm at home, then asks for X/Y to the pick position.
    let z = AxisId(2);
    let start = program.targets.len() as u32;
    program.targets.push(MoveTarget {
        axis: z,
        position_counts: 50 * 640,
        max_velocity_counts_s: 100_000.0,
    });
    // (The step of "z_up_pick": no step interlock guards it.)
    let Instr::Move { step, .. } = program.code[7] else {
        panic!("instruction 7 is a Z move")
    };
    program.code[0] = Instr::Move {
        step,
        targets: takt_sequences::program::IndexRange { start, len: 1 },
        relative: false,
        coordinated: true,
    };
    program.code[1] = program.code[3];
    let cell = takt_controller::cycle::CellController::new(
        &program,
        takt_controller::cycle::CycleConfig::default(),
        takt_controller::status::Outbox::none(),
        None,
    )
    .unwrap();
    let mut ls =
        Lockstep::new(&takt_sim::demo_cell(), takt_sim::SimConfig::default(), cell).unwrap();
    support::start(&mut ls);
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.trip().is_some()));
    let Some(TripCause::Refused {
        interlock,
        instr: 1,
    }) = ls.cell.trip()
    else {
        panic!("{:?}", ls.cell.trip())
    };
    assert_eq!(
        ls.cell.program().interlocks[usize::from(interlock)].name,
        "z_clear_for_xy"
    );
    ls.run_until(Duration::from_secs(1), |_| false);
    let [x, y, z] = positions(&ls);
    assert!(
        x.abs() < 0.01 && y.abs() < 0.01,
        "X/Y did not move: {x} {y}"
    );
    assert!((z - 50.0).abs() < 0.5, "Z stands at 50 mm: {z}");
    no_collision(&ls);
}

#[test]
fn when_the_controller_dies_the_drives_stop_by_themselves() {
    let mut ls = support::lockstep(15);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    assert!(ls.run_until(Duration::from_secs(60), |l| l.cell.status_pc() == 13));
    ls.run_until(Duration::from_millis(100), |_| false);
    // The controller is gone: no more cycles, no heartbeat, no SYNC, no set-points.
    ls.sim.run_for(Duration::from_millis(400));
    for d in DRIVES {
        assert_eq!(
            power(&ls, d),
            PowerState::Fault,
            "{d} stopped through 0x1016 / 0x6007"
        );
    }
    // No collision. (The part in the gripper may tear off: without SYNC a CSP drive holds
    // its last set-point at once, before its heartbeat consumer trips.)
    assert_eq!(ls.sim.world().unwrap().truth().collisions, 0);
}

#[test]
fn a_drive_held_in_sto_at_start_up_keeps_start_up_waiting_until_released() {
    let mut ls = support::lockstep(16);
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    // STO on Z for 5 s. (The world sets every drive's STO from the e-stop chain after the
    // drives' update in each tick; setting it before each tick holds this one drive.)
    let hold = |ls: &mut Lockstep, on: bool| {
        ls.sim
            .device_mut("z")
            .unwrap()
            .as_drive_mut()
            .unwrap()
            .set_safe_torque_off(on);
    };
    for _ in 0..5000 {
        hold(&mut ls, true);
        ls.step();
    }
    assert_eq!(power(&ls, "z"), PowerState::SwitchOnDisabled);
    assert_eq!(
        ls.cell.startup(),
        StartupPhase::Enabling,
        "waiting, visibly"
    );
    assert_eq!(ls.cell.state(), CellState::Starting);
    assert!(ls.cell.trip().is_none());
    hold(&mut ls, false);
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.state()
        == CellState::Execute));
    support::place(&mut ls, 2, Duration::from_secs(60));
    assert_eq!(ls.sim.world().unwrap().truth().placed, ls.cell.counter(0));
    no_collision(&ls);
}

/// The controller's side of the simulated bus for one cycle, recording what it received
/// and sent.
struct Recorded<'a, 'b> {
    io: &'a mut takt_sim::Controller<'b>,
    received: Vec<takt_drivers::can::Frame>,
    sent: Vec<takt_drivers::can::Frame>,
}

impl takt_controller::cycle::CycleIo for Recorded<'_, '_> {
    fn recv_event(&mut self, bus: usize) -> Option<takt_drivers::can::BusEvent> {
        let e = self.io.recv_event(bus)?;
        if let takt_drivers::can::BusEvent::Frame(f) = e {
            self.received.push(f.frame);
        }
        Some(e)
    }

    fn send(&mut self, bus: usize, frame: &takt_drivers::can::Frame) -> bool {
        self.sent.push(*frame);
        self.io.send(bus, frame)
    }

    fn bus_off(&mut self, bus: usize) -> bool {
        self.io.bus_off(bus)
    }
}

/// Issue 5's e-stop reaction figure: the cycle that reads the I/O node's PDO with the
/// e-stop chain open sends every drive its stop controlword (quick stop, or disable
/// voltage for one with nothing to stop) — 0 cycles, checked frame by frame while the
/// gantry moves.
#[test]
fn the_e_stop_reaches_the_bus_in_the_cycle_that_reads_it() {
    let mut ls = support::lockstep(12);
    support::start(&mut ls);
    support::place(&mut ls, 1, Duration::from_secs(60));
    assert!(ls.run_until(Duration::from_secs(10), |l| {
        l.cell.plant.axes[..3]
            .iter()
            .any(|a| a.state == takt_controller::axis::AxisState::Moving)
    }));
    let program = support::program();
    let chain = program
        .inputs
        .iter()
        .find(|i| i.name == "estop_chain_ok")
        .unwrap();
    let io_tpdo = 0x180 + u16::from(program.devices[chain.device.index()].node);
    ls.sim.world_mut().unwrap().set_estop_ok(false);
    let (mut read_in, mut stopped_in) = (None, None);
    for cycle in 0..50u32 {
        let cell = &mut ls.cell;
        let (mut received, mut sent) = (Vec::new(), Vec::new());
        ls.sim.step(|io, now| {
            let mut rec = Recorded {
                io,
                received: Vec::new(),
                sent: Vec::new(),
            };
            cell.step(now, &mut rec);
            received = rec.received;
            sent = rec.sent;
        });
        let chain_open = received.iter().any(|f| {
            f.standard_id() == Some(io_tpdo)
                && f.data().first().is_some_and(|b| b >> chain.bit & 1 == 0)
        });
        if chain_open && read_in.is_none() {
            read_in = Some(cycle);
        }
        let stops = (1..=5u16)
            .filter(|node| {
                sent.iter().any(|f| {
                    f.standard_id() == Some(0x200 + node)
                        && matches!(u16::from_le_bytes([f.data()[0], f.data()[1]]), 0x02 | 0x00)
                })
            })
            .count();
        if stops == 5 {
            stopped_in = Some(cycle);
            break;
        }
        assert_eq!(stops, 0, "some drives stopped a cycle before the others");
    }
    let (read_in, stopped_in) = (read_in.unwrap(), stopped_in.unwrap());
    assert_eq!(
        stopped_in - read_in,
        0,
        "the e-stop PDO was read in cycle {read_in}, the drives told to stop in {stopped_in}"
    );
    assert_eq!(
        ls.cell.trip(),
        Some(TripCause::EStopChain),
        "the chain tripped the cell"
    );
}
