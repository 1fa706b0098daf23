//! How fast the simulated cell runs without a controller: one simulated second of the demo
//! cell (5 drives, the I/O node, the world, the bus model), and of cells of 5, 20 and 64
//! drives. The cell is brought up first, through frames on the controller port: every
//! device sends a 100 ms heartbeat and is operational, the drives are enabled, both
//! conveyors run in profile velocity (parts arrive and ride the infeed) and the gantry axes
//! hold position under their loops, so the physics, the state machines, the bus and the
//! world all work in every step.
//!
//! `cargo bench -p takt-sim --bench cell`; the factor over real time is 1 s divided by the
//! time per iteration.

// A benchmark set-up that fails should stop the run loudly.
#![allow(clippy::expect_used)]

use core::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use takt_drivers::can::{CanBus, Frame};
use takt_drivers::canopen::sdo::{Multiplexer, SdoRequest};
use takt_drivers::canopen::{NmtCommand, NmtMessage, NodeId};
use takt_sim::cell::{DeviceKind, DeviceSpec, gantry_servo};
use takt_sim::{CellSpec, Sim, SimConfig, demo_cell};

/// The demo cell with `drives` drives: the five of the demo and servo axes added on nodes
/// 11 and up.
fn cell(drives: usize) -> CellSpec {
    let mut cell = demo_cell();
    for k in 5..drives {
        cell.devices.push(DeviceSpec {
            name: format!("axis{k}"),
            node: 6 + k as u8,
            bus: 0,
            heartbeat_ms: 0,
            power_on_ms: 0,
            kind: DeviceKind::Drive(gantry_servo(600.0, 1500.0, 10_000.0, None)),
        });
    }
    for d in &mut cell.devices {
        d.heartbeat_ms = 100;
    }
    cell
}

fn sdo(sim: &mut Sim, node: u8, index: u16, data: &[u8]) {
    let node = NodeId::new(node).expect("node-ID in range");
    let frame = SdoRequest::download_expedited(Multiplexer::new(index, 0), data)
        .expect("1..=4 bytes")
        .encode(node);
    send(sim, frame);
}

fn send(sim: &mut Sim, frame: Frame) {
    sim.step(|ctl, _| {
        let _ = ctl.try_send(&frame);
        while ctl.try_recv().ok().flatten().is_some() {}
    });
    sim.step(|ctl, _| while ctl.try_recv().ok().flatten().is_some() {});
}

/// A booted, running cell.
fn running(drives: usize) -> Sim {
    let spec = cell(drives);
    let mut sim = Sim::new(&spec, SimConfig::default()).expect("cell builds");
    sim.run_for(Duration::from_millis(100));
    send(&mut sim, NmtMessage::to_all(NmtCommand::Start).encode());
    for d in &spec.devices {
        if !matches!(d.kind, DeviceKind::Drive(_)) {
            continue;
        }
        let conveyor = d.name == "infeed" || d.name == "outfeed";
        sdo(&mut sim, d.node, 0x6060, &[if conveyor { 3 } else { 1 }]);
        for cw in [0x06u16, 0x07, 0x0F] {
            sdo(&mut sim, d.node, 0x6040, &cw.to_le_bytes());
        }
        if conveyor {
            sdo(&mut sim, d.node, 0x60FF, &4096i32.to_le_bytes());
        }
    }
    sim.run_for(Duration::from_millis(500));
    sim
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulated_second");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for drives in [5usize, 20, 64] {
        let mut sim = running(drives);
        g.bench_function(format!("{drives}_drives"), |b| {
            b.iter(|| sim.run_for(Duration::from_secs(1)));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
