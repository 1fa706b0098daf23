//! A rig for device tests: one simulated device on a drivers `VirtualBus`, stepped on a
//! virtual clock, and a controller endpoint with the drivers' own `SdoClient` as the peer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod script;

use core::time::Duration;

use takt_drivers::can::{CanBus, Frame, Timestamp, VirtualBus, VirtualEndpoint};
use takt_drivers::canopen::sdo::{Multiplexer, SdoClient, SdoDone, SdoError};
use takt_drivers::canopen::{NmtCommand, NmtMessage, NodeId};
use takt_sim::cell::{DeviceKind, demo_cell, drive_comm, io_comm};
use takt_sim::device::Device;
use takt_sim::node::BootTimes;

pub const TICK: Duration = Duration::from_millis(1);

pub struct Rig {
    pub bus: VirtualBus,
    pub ctl: VirtualEndpoint,
    dev_ep: VirtualEndpoint,
    pub dev: Device,
    pub now: Timestamp,
    /// Every frame the controller saw, with its time.
    pub seen: Vec<(Timestamp, Frame)>,
    client: SdoClient,
}

impl Rig {
    /// The demo cell's device `name`, alone on a virtual bus.
    pub fn demo(name: &str) -> Rig {
        let cell = demo_cell();
        let spec = cell.device(name).unwrap().clone();
        let node = NodeId::new(spec.node).unwrap();
        let dev = match spec.kind {
            DeviceKind::Drive(d) => {
                let comm = drive_comm(node, &d, spec.heartbeat_ms);
                Device::drive(
                    name,
                    node,
                    &comm,
                    d,
                    BootTimes::default(),
                    Timestamp::ZERO,
                    4,
                )
                .unwrap()
            }
            DeviceKind::Io => Device::io(
                name,
                node,
                &io_comm(node, 0),
                BootTimes::default(),
                Timestamp::ZERO,
            )
            .unwrap(),
        };
        let bus = VirtualBus::new();
        let ctl = bus.endpoint("controller");
        let dev_ep = bus.endpoint(name);
        Rig {
            bus,
            ctl,
            dev_ep,
            dev,
            now: Timestamp::ZERO,
            seen: Vec::new(),
            client: SdoClient::new(node, 256),
        }
    }

    pub fn node(&self) -> NodeId {
        self.dev.node()
    }

    /// One millisecond: the device takes in what the controller sent, updates, and sends.
    pub fn step(&mut self) {
        self.bus.set_time(self.now);
        let mut rx = Vec::new();
        while let Some(e) = self.dev_ep.try_recv().unwrap() {
            if let Some(f) = e.frame() {
                rx.push(*f);
            }
        }
        self.dev.step(rx.iter(), self.now, TICK);
        while let Some(f) = self.dev.pop_frame() {
            self.dev_ep.try_send(&f).unwrap();
        }
        while let Some(e) = self.ctl.try_recv().unwrap() {
            if let Some(f) = e.frame() {
                self.seen.push((self.now, *f));
                self.client.on_frame(f, self.now);
            }
        }
        self.now = self.now + TICK;
    }

    pub fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    pub fn send(&mut self, frame: Frame) {
        self.bus.set_time(self.now);
        self.ctl.try_send(&frame).unwrap();
    }

    pub fn nmt(&mut self, command: NmtCommand) {
        let node = self.node();
        self.send(NmtMessage::to_node(command, node).encode());
        self.step();
    }

    fn transfer(&mut self) -> Result<SdoDone, SdoError> {
        for _ in 0..2000 {
            if let Some(f) = self.client.poll(self.now) {
                self.send(f);
            }
            self.step();
            if let Some(outcome) = self.client.take_outcome() {
                return outcome;
            }
        }
        panic!("SDO transfer did not finish");
    }

    pub fn read(&mut self, index: u16, sub: u8) -> Result<Vec<u8>, SdoError> {
        self.client
            .start_upload(Multiplexer::new(index, sub), self.now)
            .unwrap();
        self.transfer()?;
        Ok(self.client.data().to_vec())
    }

    pub fn read_u32(&mut self, index: u16, sub: u8) -> u32 {
        let v = self.read(index, sub).unwrap();
        let mut b = [0u8; 4];
        b[..v.len()].copy_from_slice(&v);
        u32::from_le_bytes(b)
    }

    pub fn read_i32(&mut self, index: u16, sub: u8) -> i32 {
        self.read_u32(index, sub) as i32
    }

    pub fn write(&mut self, index: u16, sub: u8, data: &[u8]) -> Result<(), SdoError> {
        self.client
            .start_download(Multiplexer::new(index, sub), data, self.now)
            .unwrap();
        self.transfer().map(|_| ())
    }

    pub fn statusword(&mut self) -> u16 {
        self.read_u32(0x6041, 0) as u16
    }

    pub fn controlword(&mut self, cw: u16) {
        self.write(0x6040, 0, &cw.to_le_bytes()).unwrap();
    }

    /// Waits (stepping) until the statusword matches `mask`/`value`, at most `ms`.
    pub fn wait_status(&mut self, mask: u16, value: u16, ms: u64) -> u16 {
        let mut sw = 0;
        for _ in 0..ms {
            sw = self.statusword();
            if sw & mask == value {
                return sw;
            }
        }
        panic!("statusword {sw:#06X} never matched {mask:#06X}/{value:#06X}");
    }

    /// Frames the controller saw on `id`.
    pub fn frames_on(&self, id: u16) -> Vec<(Timestamp, Frame)> {
        self.seen
            .iter()
            .filter(|(_, f)| f.standard_id() == Some(id))
            .copied()
            .collect()
    }

    /// Boots the device and runs CiA 402 bring-up through SDO into operation enabled in
    /// `mode`.
    pub fn enable(&mut self, mode: i8) {
        self.run_ms(60);
        self.write(0x6060, 0, &[mode as u8]).unwrap();
        self.controlword(0x06);
        self.wait_status(0x6F, 0x21, 50);
        self.controlword(0x07);
        self.wait_status(0x6F, 0x23, 50);
        self.controlword(0x0F);
        self.wait_status(0x6F, 0x27, 50);
    }
}
