//! The world of the demo cell, worked over frames alone: a pick-and-place cycle counted by
//! the ground truth, a part dropped in transit, a collision, and the e-stop chain cutting
//! the drives' power.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use core::time::Duration;

use takt_drivers::can::Frame;
use takt_drivers::canopen::NmtCommand;
use takt_sim::cia402::PowerState;
use takt_sim::world::{Collision, GroundTruth, WorldEventKind};
use takt_sim::{Fault, FaultKind, Sim, SimConfig, demo_cell};

use support::script::{Op, Script, enable, move_to, write};

const X: f64 = 1000.0; // counts per mm
const Y: f64 = 1000.0;
const Z: f64 = 640.0;
/// Z stands at the top (150 mm) at power-on, where its incremental encoder reads 0.
const Z_TOP_MM: f64 = 150.0;

fn counts(mm: f64, per_mm: f64) -> i32 {
    (mm * per_mm).round() as i32
}

fn outputs(bits: u8) -> Op {
    Op::Send(Frame::standard(0x20A, [bits]))
}

fn wait_input(bit: u8, on: bool) -> Op {
    Op::WaitFrame {
        id: 0x18A,
        byte: 0,
        mask: 1 << bit,
        value: if on { 1 << bit } else { 0 },
    }
}

fn xy(x_mm: f64, y_mm: f64) -> Vec<Op> {
    let mut ops = move_to(1, counts(x_mm, X));
    ops.extend(move_to(2, counts(y_mm, Y)));
    ops
}

fn z(mm: f64) -> Vec<Op> {
    move_to(3, counts(mm - Z_TOP_MM, Z))
}

fn bring_up() -> Vec<Op> {
    let mut ops = vec![Op::WaitMs(100), Op::Nmt(NmtCommand::Start, None)];
    for node in 1..=3 {
        ops.extend(enable(node, 1));
    }
    ops.extend(enable(4, 3));
    ops
}

fn pick() -> Vec<Op> {
    let mut ops = vec![write(4, 0x60FF, 0, 50_000i32, 4), wait_input(0, true)];
    ops.push(write(4, 0x60FF, 0, 0i32, 4));
    ops.push(Op::WaitMs(300));
    ops.extend(xy(120.0, 40.0));
    ops.extend(z(12.0));
    ops.push(outputs(0b001));
    ops.push(wait_input(1, true));
    ops.extend(z(150.0));
    ops
}

fn run(sim: &mut Sim, ops: Vec<Op>) -> Script {
    let mut script = Script::new(ops).with_heartbeat(Duration::from_millis(100));
    let end = sim.now() + Duration::from_secs(60);
    while sim.now() < end && !script.is_done() {
        sim.step(|ctl, now| script.cycle(ctl, now));
    }
    assert!(
        script.is_done(),
        "script did not finish: {:?}",
        script.errors
    );
    assert!(script.errors.is_empty(), "{:?}", script.errors);
    script
}

fn sim() -> Sim {
    Sim::new(&demo_cell(), SimConfig::default()).unwrap()
}

#[test]
fn one_pick_and_place_cycle_is_counted_by_the_ground_truth() {
    let mut sim = sim();
    let mut ops = bring_up();
    ops.extend(pick());
    ops.extend(xy(480.0, 320.0));
    ops.extend(z(20.0));
    ops.push(outputs(0));
    ops.push(wait_input(1, false));
    ops.extend(z(150.0));
    run(&mut sim, ops);
    let truth = sim.world().unwrap().truth();
    assert_eq!(
        (truth.picked, truth.placed, truth.dropped, truth.collisions),
        (1, 1, 0, 0),
        "{truth:?}"
    );
    assert!(truth.arrived >= 1);
    assert_eq!(
        sim.world().unwrap().parts_on(1).count(),
        1,
        "the part rides the outfeed"
    );
}

#[test]
fn releasing_vacuum_in_transit_drops_the_part() {
    let mut sim = sim();
    let mut ops = bring_up();
    ops.extend(pick());
    ops.extend(move_to(1, counts(300.0, X)));
    ops.push(outputs(0));
    ops.push(Op::WaitMs(20));
    run(&mut sim, ops);
    let w = sim.world().unwrap();
    assert_eq!(
        w.truth(),
        GroundTruth {
            arrived: w.truth().arrived,
            picked: 1,
            placed: 0,
            dropped: 1,
            delivered: 0,
            collisions: 0
        }
    );
    assert!(
        w.events()
            .iter()
            .any(|e| matches!(e.kind, WorldEventKind::Dropped { at_mm, .. } if (at_mm[0] - 300.0).abs() < 1.0))
    );
}

#[test]
fn moving_x_with_z_down_over_a_conveyor_is_a_collision() {
    let mut sim = sim();
    let mut ops = bring_up();
    ops.extend(xy(120.0, 40.0));
    ops.extend(z(50.0));
    ops.extend(move_to(1, counts(170.0, X)));
    run(&mut sim, ops);
    let w = sim.world().unwrap();
    assert_eq!(w.truth().collisions, 1);
    assert!(w.events().iter().any(|e| matches!(
        e.kind,
        WorldEventKind::Collision {
            what: Collision::XyMoveBelowSafeHeight,
            ..
        }
    )));
}

#[test]
fn the_io_node_reports_the_world_and_an_open_e_stop_cuts_the_drives() {
    let mut sim = sim();
    sim.add_fault(Fault::new(
        FaultKind::EstopOpen,
        Duration::from_millis(2000),
        Some(Duration::from_millis(500)),
    ))
    .unwrap();
    let mut ops = bring_up();
    ops.push(wait_input(3, true));
    ops.push(wait_input(2, true));
    ops.push(wait_input(4, false)); // light curtain clear: its OSSD input reads low
    let script = run(&mut sim, ops);
    assert!(sim.now() < takt_drivers::can::Timestamp::from_millis(2000));
    sim.run_until(takt_drivers::can::Timestamp::from_millis(2100), |_, _| {});
    for name in ["x", "y", "z", "infeed"] {
        let d = sim.device(name).unwrap().as_drive().unwrap();
        assert_eq!(d.power_state(), PowerState::SwitchOnDisabled, "{name}");
    }
    let io = sim.device("io").unwrap();
    assert_eq!(
        io.as_io().unwrap().inputs() & 0b1000,
        0,
        "estop_chain_ok low"
    );
    drop(script);
    sim.run_until(takt_drivers::can::Timestamp::from_millis(2600), |_, _| {});
    assert_ne!(
        sim.device("io").unwrap().as_io().unwrap().inputs() & 0b1000,
        0
    );
    // A reset never restarts motion by itself: the drives stay disabled.
    let d = sim.device("x").unwrap().as_drive().unwrap();
    assert_eq!(d.power_state(), PowerState::SwitchOnDisabled);
}

#[test]
fn a_part_present_sensor_sees_parts_ride_past_its_station() {
    let mut cell = demo_cell();
    let world = cell.world.as_mut().unwrap();
    world.inputs.push(takt_sim::world::InputWiring {
        name: "part_at_outfeed_end".into(),
        bit: 5,
        active_low: false,
        signal: takt_sim::world::InputSignal::PartPresent {
            conveyor: 1,
            at_mm: 300.0,
            window_mm: 20.0,
        },
    });
    let mut sim = Sim::new(&cell, SimConfig::default()).unwrap();
    sim.world_mut().unwrap().add_part(1, 0.0);
    let mut ops = vec![Op::WaitMs(100), Op::Nmt(NmtCommand::Start, None)];
    ops.extend(enable(5, 3));
    ops.push(wait_input(5, false));
    ops.push(write(5, 0x60FF, 0, 80_000i32, 4)); // 400 mm/s
    ops.push(wait_input(5, true));
    ops.push(wait_input(5, false));
    run(&mut sim, ops);
    let parts: Vec<f64> = sim.world().unwrap().parts_on(1).collect();
    assert_eq!(parts.len(), 1);
    assert!(parts[0] > 320.0, "past the sensor: {parts:?}");
}
