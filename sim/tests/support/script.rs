//! A scripted controller for engine tests: a list of operations (NMT, SDO reads and writes,
//! waits, raw frames) run one after the other from inside the simulator's cycle, with an
//! optional SYNC and controller heartbeat producer. It talks to the cell only through the
//! controller port, frames in and frames out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use takt_drivers::can::{CanBus, Frame, Timestamp};
use takt_drivers::canopen::sdo::{Multiplexer, SdoClient};
use takt_drivers::canopen::{
    Heartbeat, HeartbeatProducer, NmtCommand, NmtMessage, NmtState, NodeId, SyncProducer,
};
use takt_sim::Controller;

#[derive(Clone, Debug)]
pub enum Op {
    Nmt(NmtCommand, Option<u8>),
    Write(u8, u16, u8, Vec<u8>),
    Read(u8, u16, u8),
    WaitMs(u64),
    /// Polls 0x6041 of the node by SDO until `sw & mask == value`.
    WaitStatus(u8, u16, u16),
    Send(Frame),
    /// Waits until the last frame received on `id` has `data[byte] & mask == value`.
    WaitFrame {
        id: u16,
        byte: usize,
        mask: u8,
        value: u8,
    },
}

pub fn write<T: Copy + Into<i64>>(node: u8, index: u16, sub: u8, value: T, bytes: usize) -> Op {
    let v: i64 = value.into();
    Op::Write(node, index, sub, v.to_le_bytes()[..bytes].to_vec())
}

#[derive(Debug)]
pub struct Script {
    ops: VecDeque<Op>,
    clients: BTreeMap<u8, SdoClient>,
    busy: Option<u8>,
    wait_until: Option<Timestamp>,
    wait_status: Option<(u8, u16, u16)>,
    pub reads: Vec<((u8, u16, u8), Vec<u8>)>,
    pub errors: Vec<String>,
    pub sync: Option<SyncProducer>,
    pub heartbeat: Option<HeartbeatProducer>,
    pub received: Vec<(Timestamp, Frame)>,
    pub done_at: Option<Timestamp>,
}

impl Script {
    pub fn new(ops: impl IntoIterator<Item = Op>) -> Script {
        Script {
            ops: ops.into_iter().collect(),
            clients: BTreeMap::new(),
            busy: None,
            wait_until: None,
            wait_status: None,
            reads: Vec::new(),
            errors: Vec::new(),
            sync: None,
            heartbeat: None,
            received: Vec::new(),
            done_at: None,
        }
    }

    pub fn with_sync(mut self, period: Duration) -> Script {
        self.sync = Some(SyncProducer::new(period, 0).unwrap());
        self
    }

    pub fn with_heartbeat(mut self, period: Duration) -> Script {
        self.heartbeat = Some(HeartbeatProducer::new(NodeId::new(127).unwrap(), period));
        self
    }

    pub fn is_done(&self) -> bool {
        self.ops.is_empty() && self.busy.is_none() && self.wait_until.is_none()
    }

    pub fn last_read(&self) -> &[u8] {
        &self.reads.last().unwrap().1
    }

    fn client(&mut self, node: u8) -> &mut SdoClient {
        self.clients
            .entry(node)
            .or_insert_with(|| SdoClient::new(NodeId::new(node).unwrap(), 256))
    }

    pub fn cycle(&mut self, ctl: &mut Controller<'_>, now: Timestamp) {
        while let Some(e) = ctl.try_recv().unwrap() {
            if let Some(f) = e.frame() {
                self.received.push((now, *f));
                for c in self.clients.values_mut() {
                    c.on_frame(f, now);
                }
            }
        }
        if let Some(s) = self.sync.as_mut() {
            if let Some(f) = s.poll(now) {
                let _ = ctl.try_send(&f);
            }
        }
        if let Some(h) = self.heartbeat.as_mut() {
            if let Some(f) = h.poll(now) {
                let _ = ctl.try_send(&f);
            }
        }
        if let Some(node) = self.busy {
            let client = self.client(node);
            if let Some(f) = client.poll(now) {
                let _ = ctl.try_send(&f);
            }
            let Some(outcome) = client.take_outcome() else {
                return;
            };
            let data = client.data().to_vec();
            let mux = client.mux();
            self.busy = None;
            match outcome {
                Ok(takt_drivers::canopen::sdo::SdoDone::Uploaded { .. }) => {
                    if let Some((n, mask, value)) = self.wait_status {
                        let sw = u16::from_le_bytes([data[0], data[1]]);
                        if sw & mask != value {
                            self.ops.push_front(Op::WaitStatus(n, mask, value));
                        }
                        self.wait_status = None;
                    } else {
                        self.reads.push(((node, mux.index, mux.sub), data));
                    }
                }
                Ok(_) => {}
                Err(e) => self.errors.push(e.to_string()),
            }
        }
        if let Some(t) = self.wait_until {
            if now < t {
                return;
            }
            self.wait_until = None;
        }
        let Some(op) = self.ops.pop_front() else {
            if self.done_at.is_none() {
                self.done_at = Some(now);
            }
            return;
        };
        match op.clone() {
            Op::Nmt(cmd, node) => {
                let m = match node {
                    Some(n) => NmtMessage::to_node(cmd, NodeId::new(n).unwrap()),
                    None => NmtMessage::to_all(cmd),
                };
                let _ = ctl.try_send(&m.encode());
            }
            Op::Write(node, index, sub, data) => {
                let c = self.client(node);
                c.start_download(Multiplexer::new(index, sub), &data, now)
                    .unwrap();
                if let Some(f) = c.poll(now) {
                    let _ = ctl.try_send(&f);
                }
                self.busy = Some(node);
            }
            Op::Read(node, index, sub) => {
                let c = self.client(node);
                c.start_upload(Multiplexer::new(index, sub), now).unwrap();
                if let Some(f) = c.poll(now) {
                    let _ = ctl.try_send(&f);
                }
                self.busy = Some(node);
            }
            Op::WaitMs(ms) => self.wait_until = Some(now + Duration::from_millis(ms)),
            Op::WaitStatus(node, mask, value) => {
                self.wait_status = Some((node, mask, value));
                let c = self.client(node);
                c.start_upload(Multiplexer::new(0x6041, 0), now).unwrap();
                if let Some(f) = c.poll(now) {
                    let _ = ctl.try_send(&f);
                }
                self.busy = Some(node);
            }
            Op::Send(f) => {
                let _ = ctl.try_send(&f);
            }
            Op::WaitFrame {
                id,
                byte,
                mask,
                value,
            } => {
                let last = self
                    .received
                    .iter()
                    .rev()
                    .find(|(_, f)| f.standard_id() == Some(id));
                let ok = last
                    .is_some_and(|(_, f)| f.data().get(byte).is_some_and(|b| b & mask == value));
                if !ok {
                    self.ops.push_front(op);
                }
            }
        }
    }
}

/// The controller's heartbeat frame, for tests that send it by hand.
pub fn controller_heartbeat() -> Frame {
    Heartbeat {
        node: NodeId::new(127).unwrap(),
        state: NmtState::Operational,
    }
    .encode()
}

/// CiA 402 bring-up of `node` into operation enabled in `mode`.
pub fn enable(node: u8, mode: i8) -> Vec<Op> {
    vec![
        write(node, 0x6060, 0, mode, 1),
        write(node, 0x6040, 0, 0x06u16, 2),
        Op::WaitStatus(node, 0x6F, 0x21),
        write(node, 0x6040, 0, 0x07u16, 2),
        Op::WaitStatus(node, 0x6F, 0x23),
        write(node, 0x6040, 0, 0x0Fu16, 2),
        Op::WaitStatus(node, 0x6F, 0x27),
    ]
}

/// A profile-position move of `node` to `target` counts, waiting for target reached.
pub fn move_to(node: u8, target: i32) -> Vec<Op> {
    vec![
        write(node, 0x607A, 0, target, 4),
        write(node, 0x6040, 0, 0x1Fu16, 2),
        Op::WaitStatus(node, 0x1000, 0x1000),
        write(node, 0x6040, 0, 0x0Fu16, 2),
        Op::WaitStatus(node, 0x0400, 0x0400),
    ]
}
