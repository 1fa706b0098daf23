//! Every fault kind can be scheduled and is observed in the candump trace; the scenario
//! files in config/scenarios are valid for the demo cell.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use core::time::Duration;

use takt_drivers::can::candump::CandumpReader;
use takt_drivers::can::{BusEvent, BusState, BusStateEvent, CanBus, Frame, SendError};
use takt_drivers::canopen::{Emergency, NmtCommand};
use takt_sim::cia402::PowerState;
use takt_sim::{Fault, FaultKind, Scenario, Sim, SimConfig, demo_cell};

use support::script::{Op, Script, enable};

/// The demo cell with 10 ms heartbeats everywhere, started at 100 ms, with `faults`.
fn run_with(faults: &[(FaultKind, u64, Option<u64>)], extra: Vec<Op>, until_ms: u64) -> Sim {
    let mut cell = demo_cell();
    for d in &mut cell.devices {
        d.heartbeat_ms = 10;
    }
    let mut sim = Sim::new(
        &cell,
        SimConfig {
            seed: 5,
            trace: true,
            ..SimConfig::default()
        },
    )
    .unwrap();
    for (kind, at, dur) in faults {
        sim.add_fault(Fault::new(
            kind.clone(),
            Duration::from_millis(*at),
            dur.map(Duration::from_millis),
        ))
        .unwrap();
    }
    let mut ops = vec![Op::WaitMs(100), Op::Nmt(NmtCommand::Start, None)];
    ops.extend(extra);
    let mut script = Script::new(ops);
    let end = takt_drivers::can::Timestamp::from_millis(until_ms);
    sim.run_until(end, |ctl, now| script.cycle(ctl, now));
    assert!(script.errors.is_empty(), "{:?}", script.errors);
    sim
}

/// (time in ms, frame) of every frame in the trace, read back from candump text.
fn frames(sim: &Sim) -> Vec<(f64, Frame)> {
    let text = sim.trace_text();
    CandumpReader::new(text.as_bytes())
        .map(|r| r.unwrap())
        .filter_map(|r| match r.event {
            BusEvent::Frame(f) => Some((f.timestamp.as_nanos() as f64 / 1e6, f.frame)),
            BusEvent::State { .. } => None,
        })
        .collect()
}

fn on(sim: &Sim, id: u16) -> Vec<(f64, Frame)> {
    frames(sim)
        .into_iter()
        .filter(|(_, f)| f.standard_id() == Some(id))
        .collect()
}

fn within(v: &[(f64, Frame)], from: f64, to: f64) -> Vec<(f64, Frame)> {
    v.iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .copied()
        .collect()
}

#[test]
fn dropped_frames_are_missing_from_the_trace() {
    let sim = run_with(
        &[(
            FaultKind::DropFrames {
                cob_id: 0x701,
                mask: 0x7FF,
                probability: 1.0,
            },
            300,
            Some(200),
        )],
        vec![],
        800,
    );
    let hb = on(&sim, 0x701);
    assert!(within(&hb, 300.0, 500.0).is_empty());
    assert!(within(&hb, 200.0, 300.0).len() >= 9);
    assert!(within(&hb, 500.0, 600.0).len() >= 9);
    assert_eq!(sim.bus_stats(0).unwrap().faults.dropped, 20);
}

#[test]
fn delayed_frames_arrive_late() {
    let plain = run_with(&[], vec![], 800);
    let delayed = run_with(
        &[(
            FaultKind::DelayFrames {
                cob_id: 0x702,
                mask: 0x7FF,
                probability: 1.0,
                delay_ms: 4.0,
            },
            300,
            Some(150),
        )],
        vec![],
        800,
    );
    // Heartbeats every 10 ms: those sent in [300, 450) arrive 4 ms later, before the next
    // undelayed one at 450.
    let a = within(&on(&plain, 0x702), 300.0, 450.0);
    let b = within(&on(&delayed, 0x702), 303.0, 450.0);
    assert_eq!(a.len(), 15);
    assert_eq!(a.len(), b.len());
    for ((ta, _), (tb, _)) in a.iter().zip(&b) {
        assert!((tb - ta - 4.0).abs() < 0.2, "{ta} -> {tb}");
    }
}

#[test]
fn corrupted_frames_carry_altered_data() {
    let sim = run_with(
        &[(
            FaultKind::CorruptFrames {
                cob_id: 0x703,
                mask: 0x7FF,
                probability: 1.0,
            },
            300,
            Some(100),
        )],
        vec![],
        600,
    );
    let hb = on(&sim, 0x703);
    assert!(
        within(&hb, 300.0, 400.0)
            .iter()
            .all(|(_, f)| f.data() != [0x05])
    );
    assert!(
        within(&hb, 400.0, 500.0)
            .iter()
            .all(|(_, f)| f.data() == [0x05])
    );
}

#[test]
fn bus_errors_show_as_error_frames_and_late_retransmissions() {
    let sim = run_with(
        &[(
            FaultKind::BusErrors {
                cob_id: 0x701,
                mask: 0x7FF,
                probability: 0.5,
            },
            300,
            Some(200),
        )],
        vec![],
        800,
    );
    let text = sim.trace_text();
    // Bus errors as the controller interface reports them: PROT | BUSERROR | CNT.
    let errors = text.lines().filter(|l| l.contains(" 20000288#")).count();
    assert!(errors >= 5, "error frames in the trace: {errors}");
    assert_eq!(errors as u64, sim.bus_stats(0).unwrap().faults.bus_errors);
    // Every heartbeat still arrives (retransmitted), none is lost.
    let hb = on(&sim, 0x701);
    assert_eq!(within(&hb, 300.0, 500.0).len(), 20);
}

#[test]
fn a_silent_node_sends_nothing_then_resumes() {
    let sim = run_with(
        &[(FaultKind::NodeSilent { node: 4 }, 300, Some(200))],
        vec![],
        800,
    );
    let hb = on(&sim, 0x704);
    assert!(within(&hb, 301.0, 500.0).is_empty());
    assert!(within(&hb, 510.0, 600.0).len() >= 9);
}

#[test]
fn a_rebooted_node_sends_boot_up_and_forgets_its_configuration() {
    let ops = vec![
        Op::Write(5, 0x6081, 0, 1234u32.to_le_bytes().to_vec()),
        Op::WaitMs(400),
        Op::Read(5, 0x6081, 0),
    ];
    let mut cell_default = 0;
    if let Some(takt_sim::cell::DeviceKind::Drive(d)) =
        demo_cell().device("outfeed").map(|d| d.kind.clone())
    {
        cell_default = d.defaults.profile_velocity_counts_s;
    }
    let sim = run_with(&[(FaultKind::NodeReboot { node: 5 }, 300, None)], ops, 800);
    let boots: Vec<_> = on(&sim, 0x705)
        .into_iter()
        .filter(|(_, f)| f.data() == [0])
        .collect();
    assert_eq!(boots.len(), 2, "power-on and the reboot: {boots:?}");
    assert!((350.0..352.0).contains(&boots[1].0), "{}", boots[1].0);
    // Back in pre-operational after the reboot.
    let after = within(&on(&sim, 0x705), 360.0, 400.0);
    assert!(after.iter().all(|(_, f)| f.data() == [0x7F]));
    let v = sim
        .device("outfeed")
        .unwrap()
        .core()
        .od()
        .value(0x6081, 0)
        .unwrap();
    assert_eq!(v, i64::from(cell_default));
}

#[test]
fn lost_steps_show_in_the_position_the_z_drive_reports() {
    let mut ops = enable(3, 1);
    // TPDO2 (statusword + position actual) every SYNC.
    ops.extend([
        Op::Write(3, 0x1801, 1, 0xC000_0283u32.to_le_bytes().to_vec()),
        Op::Write(3, 0x1801, 1, 0x4000_0283u32.to_le_bytes().to_vec()),
    ]);
    let mut sim = {
        let mut cell = demo_cell();
        for d in &mut cell.devices {
            d.heartbeat_ms = 10;
        }
        Sim::new(
            &cell,
            SimConfig {
                trace: true,
                ..SimConfig::default()
            },
        )
        .unwrap()
    };
    sim.add_fault(Fault::new(
        FaultKind::LoseSteps { node: 3, steps: 5 },
        Duration::from_millis(600),
        None,
    ))
    .unwrap();
    let mut all = vec![Op::WaitMs(100), Op::Nmt(NmtCommand::Start, None)];
    all.extend(ops);
    let mut script = Script::new(all).with_sync(Duration::from_millis(10));
    sim.run_until(
        takt_drivers::can::Timestamp::from_millis(900),
        |ctl, now| script.cycle(ctl, now),
    );
    assert!(script.errors.is_empty(), "{:?}", script.errors);
    let pos = |f: &Frame| i32::from_le_bytes(f.data()[2..6].try_into().unwrap());
    let tpdo = on(&sim, 0x283);
    let before = within(&tpdo, 500.0, 600.0);
    let after = within(&tpdo, 700.0, 900.0);
    assert!(!before.is_empty() && !after.is_empty());
    let (p0, p1) = (
        pos(&before.last().unwrap().1),
        pos(&after.last().unwrap().1),
    );
    assert_eq!(
        p0 - p1,
        5 * 16,
        "5 full steps of 16 micro-steps: {p0} -> {p1}"
    );
}

#[test]
fn an_injected_emcy_is_on_the_wire_and_faults_the_drive() {
    let sim = run_with(
        &[(
            FaultKind::Emcy {
                node: 1,
                code: 0x4210,
            },
            300,
            None,
        )],
        enable(1, 1),
        600,
    );
    let emcy = on(&sim, 0x081);
    assert_eq!(emcy.len(), 1);
    let e = Emergency::decode(&emcy[0].1).unwrap();
    assert_eq!(e.code.0, 0x4210);
    assert!((300.0..302.0).contains(&emcy[0].0));
    let d = sim.device("x").unwrap().as_drive().unwrap();
    assert_eq!(d.power_state(), PowerState::Fault);
    // TPDO1 (statusword on change) shows the fault.
    let sw = on(&sim, 0x181).last().unwrap().1;
    assert_eq!(sw.data()[0] & 0x4F, 0x08);
}

#[test]
fn a_bus_off_episode_of_the_controller_is_in_the_trace_and_refuses_sends() {
    let mut cell = demo_cell();
    cell.devices[0].heartbeat_ms = 10;
    let mut sim = Sim::new(
        &cell,
        SimConfig {
            trace: true,
            ..SimConfig::default()
        },
    )
    .unwrap();
    sim.add_fault(Fault::new(
        FaultKind::BusOff { node: None },
        Duration::from_millis(300),
        Some(Duration::from_millis(50)),
    ))
    .unwrap();
    let mut refused = 0;
    let mut states = Vec::new();
    sim.run_until(
        takt_drivers::can::Timestamp::from_millis(500),
        |ctl, now| {
            while let Some(e) = ctl.try_recv().unwrap() {
                if let BusEvent::State { event, .. } = e {
                    states.push(event);
                }
            }
            if now.as_nanos() % 10_000_000 == 0 {
                if let Err(SendError::BusDown) = ctl.try_send(&Frame::standard(0x080, [])) {
                    refused += 1;
                }
            }
        },
    );
    assert_eq!(refused, 5, "SYNCs refused while bus-off");
    assert_eq!(
        states,
        [
            BusStateEvent::StateChanged {
                state: BusState::BusOff,
                counters: None
            },
            BusStateEvent::Restarted
        ]
    );
    let text = sim.trace_text();
    let error_lines: Vec<_> = text.lines().filter(|l| l.contains(" 2000")).collect();
    assert!(
        error_lines.len() >= 2,
        "bus-off and restart error frames: {error_lines:?}"
    );
    assert!(
        error_lines[0].starts_with("(0000000000.300000)"),
        "{error_lines:?}"
    );
    // Read back, the error frames are bus-state events again.
    let events: Vec<_> = CandumpReader::new(text.as_bytes())
        .map(|r| r.unwrap().event)
        .filter(|e| matches!(e, BusEvent::State { .. }))
        .collect();
    assert!(events.iter().any(|e| matches!(
        e,
        BusEvent::State {
            event: BusStateEvent::StateChanged {
                state: BusState::BusOff,
                ..
            },
            ..
        }
    )));
}

#[test]
fn a_node_bus_off_silences_it_and_it_reports_recovery() {
    let sim = run_with(
        &[(FaultKind::BusOff { node: Some(2) }, 300, Some(100))],
        vec![],
        600,
    );
    let hb = on(&sim, 0x702);
    assert!(within(&hb, 301.0, 400.0).is_empty());
    let codes: Vec<u16> = on(&sim, 0x082)
        .iter()
        .map(|(_, f)| Emergency::decode(f).unwrap().code.0)
        .collect();
    // The drive's abort connection option (0x6007 = 1) faults it on its own bus-off, which
    // it reports once back (0x8100), and it reports the recovery (0x8140).
    assert_eq!(codes.len(), 2, "{codes:x?}");
    assert!(
        codes.contains(&0x8100) && codes.contains(&0x8140),
        "{codes:x?}"
    );
    assert!(within(&hb, 410.0, 500.0).len() >= 9);
}

fn io_inputs(sim: &Sim) -> Vec<(f64, u8)> {
    on(sim, 0x18A)
        .iter()
        .map(|(t, f)| (*t, f.data()[0]))
        .collect()
}

#[test]
fn a_stuck_sensor_and_a_chattering_one_show_in_the_io_node_pdos() {
    let sim = run_with(
        &[
            (
                FaultKind::SensorStuck {
                    input: "part_at_pick".into(),
                    value: true,
                },
                300,
                Some(100),
            ),
            (
                FaultKind::SensorChatter {
                    input: "light_curtain_clear".into(),
                    period_ms: 20,
                },
                500,
                Some(100),
            ),
        ],
        vec![],
        800,
    );
    let inputs = io_inputs(&sim);
    let stuck: Vec<_> = inputs
        .iter()
        .filter(|(t, _)| (300.0..400.0).contains(t))
        .collect();
    assert_eq!(stuck.len(), 1);
    assert_ne!(
        stuck[0].1 & 0b1,
        0,
        "part_at_pick stuck on with no part there"
    );
    let chatter = inputs
        .iter()
        .filter(|(t, _)| (500.0..610.0).contains(t))
        .count();
    assert!(chatter >= 4, "light_curtain_clear toggling: {inputs:?}");
}

#[test]
fn e_stop_guard_and_light_curtain_show_in_the_io_node_pdos() {
    let sim = run_with(
        &[
            (FaultKind::EstopOpen, 300, Some(100)),
            (FaultKind::GuardOpen, 500, Some(100)),
            (FaultKind::LightCurtainInterrupted, 700, Some(50)),
        ],
        enable(2, 1),
        900,
    );
    let bit_at = |t: f64, bit: u8| {
        io_inputs(&sim)
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, b)| b & (1 << bit) != 0)
            .unwrap()
    };
    assert!(
        bit_at(299.0, 3) && !bit_at(350.0, 3) && bit_at(450.0, 3),
        "estop_chain_ok"
    );
    assert!(
        bit_at(499.0, 2) && !bit_at(550.0, 2) && bit_at(650.0, 2),
        "guard_closed"
    );
    // light_curtain_clear is wired active low: the bit rises while the curtain is broken.
    assert!(
        !bit_at(699.0, 4) && bit_at(720.0, 4) && !bit_at(800.0, 4),
        "light_curtain_clear"
    );
    // The e-stop took node 2 out of operation enabled: its statusword PDO says so.
    let sw: Vec<_> = on(&sim, 0x182)
        .iter()
        .map(|(t, f)| (*t, f.data()[0] & 0x6F))
        .collect();
    assert!(
        sw.iter()
            .any(|(t, s)| *t > 300.0 && *t < 310.0 && (*s & 0x4F) == 0x40),
        "{sw:?}"
    );
}

#[test]
fn every_scenario_file_is_valid_for_the_demo_cell() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario = Scenario::load(&path).unwrap();
            let mut sim = Sim::new(&demo_cell(), SimConfig::default()).unwrap();
            sim.load_scenario(&scenario)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let ms = scenario.duration_ms.unwrap_or(1000);
            sim.run_for(Duration::from_millis(ms));
            let started = sim.fault_log().iter().filter(|r| r.started).count();
            assert_eq!(started, scenario.faults.len(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 5, "scenario files found: {n}");
}
