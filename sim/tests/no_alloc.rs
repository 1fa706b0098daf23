//! The simulator's step allocates nothing once the cell is built: thousands of ticks of the
//! running demo cell — drives enabled and moving, conveyors carrying parts, SYNC and PDOs,
//! heartbeats, SDO traffic (segmented included), frame faults and a chattering sensor — with
//! a counting global allocator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

use takt_alloc_count::{CountingAllocator, allocations_in};
use takt_drivers::can::{CanBus, Frame};
use takt_drivers::canopen::sdo::{Multiplexer, SdoRequest};
use takt_drivers::canopen::{NmtCommand, NmtMessage, NodeId};
use takt_sim::{Fault, FaultKind, Sim, SimConfig, demo_cell};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn sdo_write(node: u8, index: u16, sub: u8, data: &[u8]) -> Frame {
    SdoRequest::download_expedited(Multiplexer::new(index, sub), data)
        .unwrap()
        .encode(NodeId::new(node).unwrap())
}

fn send(sim: &mut Sim, frame: Frame) {
    sim.step(|ctl, _| {
        ctl.try_send(&frame).unwrap();
        while ctl.try_recv().unwrap().is_some() {}
    });
    sim.step(|ctl, _| while ctl.try_recv().unwrap().is_some() {});
}

#[test]
fn stepping_the_running_demo_cell_does_not_allocate() {
    let mut cell = demo_cell();
    for d in &mut cell.devices {
        d.heartbeat_ms = 50;
    }
    let mut sim = Sim::new(&cell, SimConfig::default()).unwrap();
    sim.add_fault(Fault::new(
        FaultKind::DropFrames {
            cob_id: 0x180,
            mask: 0x780,
            probability: 0.2,
        },
        Duration::from_millis(1500),
        Some(Duration::from_millis(500)),
    ))
    .unwrap();
    sim.add_fault(Fault::new(
        FaultKind::SensorChatter {
            input: "part_at_pick".into(),
            period_ms: 7,
        },
        Duration::from_millis(1800),
        Some(Duration::from_millis(300)),
    ))
    .unwrap();
    sim.run_for(Duration::from_millis(100));
    send(&mut sim, NmtMessage::to_all(NmtCommand::Start).encode());
    for node in 1..=5u8 {
        // TPDO2 (statusword + position) on every SYNC.
        send(
            &mut sim,
            sdo_write(
                node,
                0x1801,
                1,
                &0xC000_0280u32.wrapping_add(u32::from(node)).to_le_bytes(),
            ),
        );
        send(
            &mut sim,
            sdo_write(
                node,
                0x1801,
                1,
                &0x4000_0280u32.wrapping_add(u32::from(node)).to_le_bytes(),
            ),
        );
        let mode = if node >= 4 { 3u8 } else { 1 };
        send(&mut sim, sdo_write(node, 0x6060, 0, &[mode]));
        for cw in [0x06u16, 0x07, 0x0F] {
            send(&mut sim, sdo_write(node, 0x6040, 0, &cw.to_le_bytes()));
        }
    }
    send(&mut sim, sdo_write(4, 0x60FF, 0, &8192i32.to_le_bytes()));
    send(&mut sim, sdo_write(5, 0x60FF, 0, &2048i32.to_le_bytes()));
    send(&mut sim, sdo_write(1, 0x607A, 0, &60_000i32.to_le_bytes()));
    send(&mut sim, sdo_write(1, 0x6040, 0, &0x1Fu16.to_le_bytes()));
    send(&mut sim, sdo_write(1, 0x6040, 0, &0x0Fu16.to_le_bytes()));
    let sync = Frame::standard(0x080, []);
    let name = SdoRequest::upload(Multiplexer::new(0x1008, 0)).encode(NodeId::new(2).unwrap());
    let segment = [
        SdoRequest::upload_segment(false).encode(NodeId::new(2).unwrap()),
        SdoRequest::upload_segment(true).encode(NodeId::new(2).unwrap()),
    ];
    let start = sim.now();
    let mut received = 0u64;
    let ((), allocations) = allocations_in(|| {
        for k in 0..5000u64 {
            sim.step(|ctl, _| {
                while ctl.try_recv().unwrap().is_some() {
                    received += 1;
                }
                if k % 2 == 0 {
                    ctl.try_send(&sync).unwrap();
                }
                match k % 100 {
                    10 => ctl.try_send(&name).unwrap(),
                    13..=16 => ctl.try_send(&segment[((k - 13) % 2) as usize]).unwrap(),
                    _ => {}
                }
            });
        }
    });
    assert_eq!(allocations, 0, "the simulator allocated in its step");
    assert!(sim.now() > start + Duration::from_secs(4));
    assert!(received > 10_000, "a busy bus: {received} frames");
    assert!(sim.world().unwrap().truth().arrived >= 2);
    assert!(
        sim.fault_log().len() >= 4,
        "the faults fired inside the window"
    );
}
