//! The deterministic engine: the demo cell answers a CiA 402 bring-up and a profile-position
//! move performed over frames alone; the bus model arbitrates and times frames; a seeded
//! run replays byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use core::time::Duration;

use takt_drivers::can::candump::CandumpReader;
use takt_drivers::can::{CanBus, Frame, Timestamp};
use takt_drivers::canopen::NmtCommand;
use takt_sim::{Fault, FaultKind, Sim, SimConfig, demo_cell};

use support::script::{Op, Script, enable, move_to, write};

fn traced(seed: u64) -> Sim {
    Sim::new(
        &demo_cell(),
        SimConfig {
            seed,
            trace: true,
            ..SimConfig::default()
        },
    )
    .unwrap()
}

fn run(sim: &mut Sim, script: &mut Script, limit: Duration) {
    let end = sim.now() + limit;
    while sim.now() < end && !script.is_done() {
        sim.step(|ctl, now| script.cycle(ctl, now));
    }
    assert!(
        script.is_done(),
        "script did not finish: {:?}",
        script.errors
    );
    assert!(script.errors.is_empty(), "{:?}", script.errors);
}

#[test]
fn the_demo_cell_answers_bring_up_and_a_profile_position_move_over_frames_alone() {
    let mut sim = traced(1);
    let mut ops = vec![
        Op::WaitMs(100),
        Op::Nmt(NmtCommand::EnterPreOperational, None),
    ];
    ops.extend([Op::Read(1, 0x1000, 0), Op::Read(1, 0x1018, 1)]);
    ops.extend(enable(1, 1));
    ops.extend(move_to(1, 40_000)); // 40 mm
    ops.push(Op::Read(1, 0x6064, 0));
    let mut script = Script::new(ops);
    run(&mut sim, &mut script, Duration::from_secs(10));
    let position = i32::from_le_bytes(script.last_read().try_into().unwrap());
    assert!((position - 40_000).abs() <= 100, "{position}");
    assert_eq!(script.reads[0].1, 0x0002_0192u32.to_le_bytes());
    let x = sim.device("x").unwrap().as_drive().unwrap();
    assert!((x.physical_mm() - 40.0).abs() < 0.12);
    // Everything went over the wire: the trace holds the SDO exchange.
    let text = sim.trace_text();
    assert!(
        text.contains("can0 601#2B4060000F000000"),
        "enable operation by SDO"
    );
    assert!(text.contains("can0 581#6040600000000000"));
}

#[test]
fn frames_arbitrate_and_arrive_after_their_last_bit() {
    let mut sim = traced(1);
    sim.run_for(Duration::from_millis(60));
    // At 1 Mbit/s the six boot-up messages (47 bits worst case, 44 to their last bit)
    // queue at the same instant and go out lowest id first, back to back.
    let trace = sim.trace();
    let boots: Vec<_> = trace
        .iter()
        .filter_map(|r| match r.event {
            takt_drivers::can::BusEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    let ids: Vec<u16> = boots
        .iter()
        .map(|f| f.frame.standard_id().unwrap())
        .collect();
    assert_eq!(ids, [0x701, 0x702, 0x703, 0x704, 0x705, 0x70A]);
    let bits = boots[0].frame.worst_case_bits();
    let t0 = boots[0].timestamp.as_nanos();
    for (k, f) in boots.iter().enumerate() {
        assert_eq!(
            f.timestamp.as_nanos() - t0,
            k as u64 * u64::from(bits) * 1000
        );
    }
    let stats = sim.bus_stats(0).unwrap();
    assert_eq!(stats.frames, 6);
    assert_eq!(stats.busy_ns, 6 * u64::from(bits) * 1000);
}

#[test]
fn an_overloaded_bus_delivers_late_and_reports_its_load() {
    // Every drive sends statusword + position on every SYNC at a 1 ms SYNC: with the
    // controller's RPDOs that is more than a 125 kbit/s bus carries.
    let mut cell = demo_cell();
    cell.buses[0].bitrate = 125_000;
    let mut sim = Sim::new(&cell, SimConfig::default()).unwrap();
    let mut ops = vec![Op::WaitMs(100)];
    for node in 1..=5u8 {
        ops.push(write(node, 0x1801, 1, 0xC000_0280u32 + u32::from(node), 4));
        ops.push(write(node, 0x1801, 2, 1u8, 1));
        ops.push(write(node, 0x1801, 1, 0x4000_0280u32 + u32::from(node), 4));
    }
    ops.push(Op::Nmt(NmtCommand::Start, None));
    ops.push(Op::WaitMs(500));
    let mut script = Script::new(ops).with_sync(Duration::from_millis(1));
    run(&mut sim, &mut script, Duration::from_secs(5));
    let stats = sim.bus_stats(0).unwrap();
    assert!(stats.peak_window_load > 0.95, "saturated: {stats:?}");
    assert!(
        stats.max_latency > Duration::from_millis(1),
        "late frames: {stats:?}"
    );
    // The same at 1 Mbit/s fits.
    let mut sim = Sim::new(&demo_cell(), SimConfig::default()).unwrap();
    let mut script2 = Script::new(script_ops_again()).with_sync(Duration::from_millis(1));
    run(&mut sim, &mut script2, Duration::from_secs(5));
    let stats = sim.bus_stats(0).unwrap();
    assert!(stats.peak_window_load < 0.9, "{stats:?}");
    assert!(stats.max_latency < Duration::from_millis(1), "{stats:?}");
}

fn script_ops_again() -> Vec<Op> {
    let mut ops = vec![Op::WaitMs(100)];
    for node in 1..=5u8 {
        ops.push(write(node, 0x1801, 1, 0xC000_0280u32 + u32::from(node), 4));
        ops.push(write(node, 0x1801, 2, 1u8, 1));
        ops.push(write(node, 0x1801, 1, 0x4000_0280u32 + u32::from(node), 4));
    }
    ops.push(Op::Nmt(NmtCommand::Start, None));
    ops.push(Op::WaitMs(500));
    ops
}

/// A busy, faulty, random run: the conveyor runs so parts arrive at random, TPDOs go on
/// SYNC, and a fault drops frames by chance.
fn busy_run(seed: u64) -> String {
    let mut sim = traced(seed);
    sim.add_fault(Fault::new(
        FaultKind::DropFrames {
            cob_id: 0x080,
            mask: 0x780,
            probability: 0.3,
        },
        Duration::from_millis(300),
        Some(Duration::from_millis(400)),
    ))
    .unwrap();
    let mut ops = vec![Op::WaitMs(100)];
    for node in 1..=5u8 {
        ops.push(write(node, 0x1801, 1, 0xC000_0280u32 + u32::from(node), 4));
        ops.push(write(node, 0x1801, 2, 1u8, 1));
        ops.push(write(node, 0x1801, 1, 0x4000_0280u32 + u32::from(node), 4));
    }
    ops.push(Op::Nmt(NmtCommand::Start, None));
    ops.extend(enable(4, 3));
    ops.push(write(4, 0x60FF, 0, 8192i32, 4));
    ops.extend(enable(1, 1));
    ops.extend(move_to(1, 20_000));
    ops.push(Op::WaitMs(6000));
    let mut script = Script::new(ops)
        .with_sync(Duration::from_millis(4))
        .with_heartbeat(Duration::from_millis(100));
    run(&mut sim, &mut script, Duration::from_secs(20));
    assert!(sim.world().unwrap().truth().arrived >= 1);
    sim.trace_text()
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace() {
    let a = busy_run(42);
    let b = busy_run(42);
    assert!(
        a.lines().count() > 5000,
        "a busy trace: {}",
        a.lines().count()
    );
    assert_eq!(a, b);
    let c = busy_run(43);
    assert_ne!(a, c, "another seed, another run");
    // And the trace is a valid candump -L log.
    let records: Vec<_> = CandumpReader::new(a.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), a.lines().count());
}

#[test]
fn the_controller_port_is_a_can_bus() {
    let mut sim = Sim::new(&demo_cell(), SimConfig::default()).unwrap();
    sim.run_for(Duration::from_millis(60));
    let mut got = Vec::new();
    sim.step(|ctl, _| {
        assert_eq!(ctl.interface(), "can0");
        while let Some(e) = ctl.try_recv().unwrap() {
            got.push(*e.frame().unwrap());
        }
        ctl.try_send(&Frame::standard(0x601, [0x40, 0x00, 0x10, 0, 0, 0, 0, 0]))
            .unwrap();
    });
    assert_eq!(got.len(), 6, "the boot-ups");
    let mut answer = None;
    for _ in 0..3 {
        sim.step(|ctl, _| {
            while let Some(e) = ctl.try_recv().unwrap() {
                answer = e.frame().copied();
            }
        });
    }
    assert_eq!(answer.unwrap().to_string(), "581#4300100092010200");
    assert!(sim.now() > Timestamp::from_millis(60));
}
