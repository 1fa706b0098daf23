//! The deterministic engine: a simulated cell — devices, world, timed buses, faults — on a
//! virtual clock, stepped in lockstep with any cycle function, as fast as the CPU allows.
//!
//! Each step of one tick (default 1 ms) runs, in this fixed order: due faults; each bus up
//! to now (arbitration, transmission, delivery of frames whose last bit has passed, to the
//! devices and to the controller's receive queue); device boot; the cycle under test, which
//! reads and writes its [`ControllerPort`]s; device updates (CiA 402 state machines and
//! physics); the world; and the frames the devices queue, handed to their buses. All
//! randomness comes from one seeded [`SimRng`] drawn in that order, so the same seed,
//! cell, faults and controller give a byte-identical candump trace.
//!
//! ```
//! use core::time::Duration;
//! use takt_sim::{Sim, SimConfig, demo_cell};
//!
//! let mut sim = Sim::new(&demo_cell(), SimConfig { trace: true, ..SimConfig::default() })?;
//! sim.run_for(Duration::from_millis(100));
//! // Six devices booted: six boot-up messages on the wire.
//! assert_eq!(sim.trace_text().lines().filter(|l| l.ends_with("#00")).count(), 6);
//! # Ok::<(), takt_sim::SimError>(())
//! ```

use core::time::Duration;
use std::io::{self, Write};

use takt_drivers::can::candump::CandumpWriter;
use takt_drivers::can::{BusEvent, BusState, BusStateEvent, Frame, Timestamp, TimestampedFrame};
use takt_drivers::canopen::NodeId;

use crate::bus::{BusStats, ControllerPort, FrameAction, FrameFault, TimedBus, Wire};
use crate::cell::{CellSpec, DeviceKind, drive_comm, io_comm};
use crate::device::Device;
use crate::fault::{Edge, Fault, FaultKind, Scenario, Schedule};
use crate::node::BootTimes;
use crate::od::OdError;
use crate::rng::SimRng;
use crate::world::{InputOverride, World, WorldError};

/// How a run is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Seed of the run's one random generator.
    pub seed: u64,
    /// Length of one step of the virtual clock.
    pub tick: Duration,
    /// Motor sub-steps per tick (the drives' loop rate is `substeps / tick`).
    pub substeps: u32,
    /// Record every frame on the wire for [`Sim::write_trace`].
    pub trace: bool,
    /// Frames the controller's end of each bus queues for transmission before refusing
    /// more with `WouldBlock` (a SocketCAN interface's `txqueuelen`).
    pub controller_tx_queue: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            tick: Duration::from_millis(1),
            substeps: 4,
            trace: false,
            controller_tx_queue: crate::bus::TX_QUEUE_DEPTH,
        }
    }
}

/// Why a cell or a fault could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node-ID out of range.
    #[error("device {name:?}: node-ID {node} is out of range 1..=127")]
    BadNode {
        /// The device.
        name: String,
        /// Its node-ID.
        node: u8,
    },
    /// Two devices share a node-ID on one bus.
    #[error("node-ID {0} is used twice on one bus")]
    DuplicateNode(u8),
    /// A device refers to a bus that does not exist.
    #[error("device {name:?} is on bus {bus}, but the cell has {buses} buses")]
    BadBus {
        /// The device.
        name: String,
        /// The bus index.
        bus: usize,
        /// Buses in the cell.
        buses: usize,
    },
    /// A device's dictionary could not be built.
    #[error("device {0:?}: {1}")]
    Od(String, OdError),
    /// The world does not fit the devices.
    #[error(transparent)]
    World(#[from] WorldError),
    /// A fault names a node that is not in the cell.
    #[error("fault names node {0}, which is not in the cell")]
    UnknownNode(u8),
    /// A fault names an input the world does not wire.
    #[error("fault names input {0:?}, which the world does not wire")]
    UnknownInput(String),
    /// A world fault in a cell without a world.
    #[error("fault {0:?} needs a world, and this cell has none")]
    NoWorld(String),
    /// Steps can only be lost on a stepper.
    #[error("node {0} is not a stepper drive: it cannot lose steps")]
    NotAStepper(u8),
    /// A frame fault on a bus that does not exist.
    #[error("fault on bus {0}, which does not exist")]
    NoSuchBus(usize),
}

/// One record of the trace: a frame on the wire, or a change of the controller
/// interface's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// The bus.
    pub bus: usize,
    /// What, and when.
    pub event: BusEvent,
}

/// A fault edge as it happened, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRecord {
    /// When.
    pub at: Timestamp,
    /// The fault's index in [`Sim::faults`].
    pub fault: usize,
    /// True at its start, false at its end.
    pub started: bool,
}

/// Default length of a bus-off episode without `for_ms`.
pub const DEFAULT_BUS_OFF: Duration = Duration::from_millis(100);

/// The controller's ends of every bus, handed to the cycle under test each step. It is a
/// [`CanBus`](takt_drivers::can::CanBus) itself for the first bus.
#[derive(Debug)]
pub struct Controller<'a> {
    buses: &'a mut [TimedBus],
}

impl Controller<'_> {
    /// The controller's end of bus `i`.
    pub fn bus(&mut self, i: usize) -> Option<ControllerPort<'_>> {
        self.buses.get_mut(i).map(TimedBus::controller)
    }

    /// Number of buses.
    pub fn buses(&self) -> usize {
        self.buses.len()
    }
}

impl takt_drivers::can::CanBus for Controller<'_> {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, takt_drivers::can::BusError> {
        match self.buses.first_mut() {
            Some(b) => b.controller().try_recv(),
            None => Ok(None),
        }
    }

    fn try_send(&mut self, frame: &Frame) -> Result<(), takt_drivers::can::SendError> {
        match self.buses.first_mut() {
            Some(b) => b.controller().try_send(frame),
            None => Err(takt_drivers::can::SendError::BusDown),
        }
    }

    fn interface(&self) -> &str {
        self.buses.first().map_or("", |b| b.name())
    }
}

/// A simulated cell. See the [module docs](self).
#[derive(Debug)]
pub struct Sim {
    cfg: SimConfig,
    now: Timestamp,
    rng: SimRng,
    devices: Vec<Device>,
    /// Bus and endpoint of each device.
    endpoint: Vec<(usize, usize)>,
    /// Devices on each bus, in endpoint order.
    on_bus: Vec<Vec<usize>>,
    buses: Vec<TimedBus>,
    world: Option<World>,
    schedule: Schedule,
    trace: Vec<TraceRecord>,
    fault_log: Vec<FaultRecord>,
}

fn position_of(devices: &[Device], node: u8) -> Option<usize> {
    devices.iter().position(|d| d.node().get() == node)
}

/// Fault edges the log keeps (later ones still act, but are not logged).
pub const FAULT_LOG_RESERVE: usize = 1024;

/// Trace records reserved up front (a trace longer than this grows, which allocates).
pub const TRACE_RESERVE: usize = 1 << 16;

impl Sim {
    /// The cell `cell`, powered off at time zero; devices boot at their power-on times.
    pub fn new(cell: &CellSpec, cfg: SimConfig) -> Result<Sim, SimError> {
        let mut devices = Vec::with_capacity(cell.devices.len());
        let mut endpoint = Vec::with_capacity(cell.devices.len());
        let mut on_bus = vec![Vec::new(); cell.buses.len()];
        for d in &cell.devices {
            let node = NodeId::new(d.node).map_err(|_| SimError::BadNode {
                name: d.name.clone(),
                node: d.node,
            })?;
            let bus = d.bus;
            let list: &mut Vec<usize> = on_bus.get_mut(bus).ok_or(SimError::BadBus {
                name: d.name.clone(),
                bus,
                buses: cell.buses.len(),
            })?;
            if list.iter().any(|&i| cell.devices[i].node == d.node) {
                return Err(SimError::DuplicateNode(d.node));
            }
            list.push(devices.len());
            endpoint.push((bus, list.len()));
            let power_on = Timestamp::from_millis(d.power_on_ms);
            let boot = BootTimes::default();
            let device = match &d.kind {
                DeviceKind::Drive(spec) => {
                    let comm = drive_comm(node, spec, d.heartbeat_ms);
                    Device::drive(
                        &d.name,
                        node,
                        &comm,
                        spec.clone(),
                        boot,
                        power_on,
                        cfg.substeps,
                    )
                }
                DeviceKind::Io => Device::io(
                    &d.name,
                    node,
                    &io_comm(node, d.heartbeat_ms),
                    boot,
                    power_on,
                ),
            }
            .map_err(|e| SimError::Od(d.name.clone(), e))?;
            devices.push(device);
        }
        let buses = cell
            .buses
            .iter()
            .zip(&on_bus)
            .map(|(b, list)| {
                TimedBus::with_controller_queue(
                    &b.name,
                    b.bitrate,
                    list.len(),
                    cfg.controller_tx_queue,
                )
            })
            .collect();
        let world = match &cell.world {
            Some(w) => Some(World::new(w.clone(), &devices)?),
            None => None,
        };
        Ok(Sim {
            cfg,
            now: Timestamp::ZERO,
            rng: SimRng::new(cfg.seed),
            devices,
            endpoint,
            on_bus,
            buses,
            world,
            schedule: Schedule::default(),
            trace: if cfg.trace {
                Vec::with_capacity(TRACE_RESERVE)
            } else {
                Vec::new()
            },
            fault_log: Vec::with_capacity(FAULT_LOG_RESERVE),
        })
    }

    /// The configuration.
    pub fn config(&self) -> SimConfig {
        self.cfg
    }

    /// The virtual clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Every device, in cell order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The device named `name`.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name() == name)
    }

    /// The device named `name`, mutably (tests poke at it).
    pub fn device_mut(&mut self, name: &str) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.name() == name)
    }

    fn index_of_node(&self, node: u8) -> Result<usize, SimError> {
        self.devices
            .iter()
            .position(|d| d.node().get() == node)
            .ok_or(SimError::UnknownNode(node))
    }

    /// The world, if the cell has one.
    pub fn world(&self) -> Option<&World> {
        self.world.as_ref()
    }

    /// The world, mutably (tests place parts, open doors).
    pub fn world_mut(&mut self) -> Option<&mut World> {
        self.world.as_mut()
    }

    /// Measurements of bus `i`.
    pub fn bus_stats(&self, i: usize) -> Option<BusStats> {
        self.buses.get(i).map(TimedBus::stats)
    }

    /// Names of the buses.
    pub fn bus_names(&self) -> impl Iterator<Item = &str> {
        self.buses.iter().map(TimedBus::name)
    }

    /// The fault edges that happened so far.
    pub fn fault_log(&self) -> &[FaultRecord] {
        &self.fault_log
    }

    /// Schedules `fault`, checked against the cell.
    pub fn add_fault(&mut self, fault: Fault) -> Result<(), SimError> {
        let world_needed = |what: &str| -> Result<(), SimError> {
            if self.world.is_none() {
                Err(SimError::NoWorld(what.to_owned()))
            } else {
                Ok(())
            }
        };
        match &fault.kind {
            FaultKind::DropFrames { .. }
            | FaultKind::DelayFrames { .. }
            | FaultKind::CorruptFrames { .. }
            | FaultKind::BusErrors { .. }
            | FaultKind::BusOff { node: None } => {
                if fault.bus >= self.buses.len() {
                    return Err(SimError::NoSuchBus(fault.bus));
                }
            }
            FaultKind::NodeSilent { node }
            | FaultKind::NodeReboot { node }
            | FaultKind::Emcy { node, .. }
            | FaultKind::BusOff { node: Some(node) } => {
                self.index_of_node(*node)?;
            }
            FaultKind::LoseSteps { node, .. } => {
                let i = self.index_of_node(*node)?;
                let stepper = self.devices[i].as_drive().is_some_and(|d| {
                    matches!(d.spec().motor, crate::drive::MotorSpec::Stepper { .. })
                });
                if !stepper {
                    return Err(SimError::NotAStepper(*node));
                }
            }
            FaultKind::SensorStuck { input, .. } | FaultKind::SensorChatter { input, .. } => {
                world_needed(input)?;
                if self
                    .world
                    .as_ref()
                    .and_then(|w| w.input_bit(input))
                    .is_none()
                {
                    return Err(SimError::UnknownInput(input.clone()));
                }
            }
            FaultKind::EstopOpen => world_needed("estop-open")?,
            FaultKind::GuardOpen => world_needed("guard-open")?,
            FaultKind::LightCurtainInterrupted => world_needed("light-curtain-interrupted")?,
        }
        self.schedule.add(fault);
        Ok(())
    }

    /// Schedules every fault of `scenario`.
    pub fn load_scenario(&mut self, scenario: &Scenario) -> Result<(), SimError> {
        for f in &scenario.faults {
            self.add_fault(f.clone())?;
        }
        Ok(())
    }

    fn apply(&mut self, edge: Edge, now: Timestamp) {
        let (i, started) = match edge {
            Edge::Start(i) => (i, true),
            Edge::End(i) => (i, false),
        };
        // Taken out for the duration (no copy, no allocation) so the devices can be changed
        // while the fault is read.
        let faults = core::mem::take(&mut self.schedule.faults);
        let fault = &faults[i];
        let frame_fault = |action| FrameFault {
            id: 0,
            mask: 0,
            probability: 1.0,
            action,
            until: fault.end(),
            tag: i as u32,
        };
        let node_index = |n: u8| position_of(&self.devices, n);
        match &fault.kind {
            FaultKind::DropFrames {
                cob_id,
                mask,
                probability,
            }
            | FaultKind::BusErrors {
                cob_id,
                mask,
                probability,
            }
            | FaultKind::CorruptFrames {
                cob_id,
                mask,
                probability,
            }
            | FaultKind::DelayFrames {
                cob_id,
                mask,
                probability,
                ..
            } => {
                let action = match fault.kind {
                    FaultKind::DropFrames { .. } => FrameAction::Drop,
                    FaultKind::CorruptFrames { .. } => FrameAction::Corrupt,
                    FaultKind::BusErrors { .. } => FrameAction::Error,
                    FaultKind::DelayFrames { delay_ms, .. } => {
                        FrameAction::Delay(Duration::from_secs_f64(delay_ms.max(0.0) / 1000.0))
                    }
                    _ => FrameAction::Drop,
                };
                let bus = &mut self.buses[fault.bus];
                if started {
                    bus.add_fault(FrameFault {
                        id: *cob_id,
                        mask: *mask,
                        probability: *probability,
                        ..frame_fault(action)
                    });
                } else {
                    bus.remove_fault(i as u32);
                }
            }
            FaultKind::NodeSilent { node } => {
                if let Some(d) = node_index(*node) {
                    self.devices[d].core_mut().set_mute(started);
                    if started {
                        let (b, ep) = self.endpoint[d];
                        self.buses[b].flush(ep);
                    }
                }
            }
            FaultKind::NodeReboot { node } => {
                if let (Some(d), true) = (node_index(*node), started) {
                    self.devices[d].core_mut().reboot(now);
                    let (b, ep) = self.endpoint[d];
                    self.buses[b].flush(ep);
                }
            }
            FaultKind::LoseSteps { node, steps } => {
                if let (Some(d), true) = (node_index(*node), started) {
                    if let Some(drive) = self.devices[d].as_drive_mut() {
                        drive.lose_steps(*steps);
                    }
                }
            }
            FaultKind::Emcy { node, code } => {
                if let (Some(d), true) = (node_index(*node), started) {
                    self.devices[d].raise_error(*code);
                }
            }
            FaultKind::BusOff { node: Some(node) } => {
                if let Some(d) = node_index(*node) {
                    let (b, ep) = self.endpoint[d];
                    if started {
                        self.buses[b].flush(ep);
                        // A bus-off without an end recovers after the default time.
                        if fault.for_ms.is_none() {
                            self.schedule.add_edge(now + DEFAULT_BUS_OFF, Edge::End(i));
                        }
                    }
                    self.devices[d].core_mut().set_off_bus(started);
                }
            }
            FaultKind::BusOff { node: None } => {
                if started {
                    let until = fault.end().unwrap_or(now + DEFAULT_BUS_OFF);
                    let event = self.buses[fault.bus].controller_bus_off(now, until);
                    self.record_state(fault.bus, now, event);
                }
            }
            FaultKind::SensorStuck { input, value } => {
                if let Some(w) = self.world.as_mut() {
                    if let Some(bit) = w.input_bit(input) {
                        let o = if started {
                            InputOverride::Stuck(*value)
                        } else {
                            InputOverride::None
                        };
                        w.set_override(bit, o);
                    }
                }
            }
            FaultKind::SensorChatter { input, period_ms } => {
                if let Some(w) = self.world.as_mut() {
                    if let Some(bit) = w.input_bit(input) {
                        let o = if started {
                            InputOverride::Chatter {
                                period: Duration::from_millis((*period_ms).max(1)),
                                since: now,
                            }
                        } else {
                            InputOverride::None
                        };
                        w.set_override(bit, o);
                    }
                }
            }
            FaultKind::EstopOpen => {
                if let Some(w) = self.world.as_mut() {
                    w.set_estop_ok(!started);
                }
            }
            FaultKind::GuardOpen => {
                if let Some(w) = self.world.as_mut() {
                    w.set_guard_closed(!started);
                }
            }
            FaultKind::LightCurtainInterrupted => {
                if let Some(w) = self.world.as_mut() {
                    w.set_light_curtain_clear(!started);
                }
            }
        }
        self.schedule.faults = faults;
        if self.fault_log.len() < self.fault_log.capacity() {
            self.fault_log.push(FaultRecord {
                at: now,
                fault: i,
                started,
            });
        }
    }

    /// Every fault scheduled, in the order added.
    pub fn faults(&self) -> &[Fault] {
        &self.schedule.faults
    }

    fn record_state(&mut self, bus: usize, at: Timestamp, event: BusStateEvent) {
        if self.cfg.trace {
            self.trace.push(TraceRecord {
                bus,
                event: BusEvent::State {
                    timestamp: at,
                    event,
                },
            });
        }
    }

    /// One tick with no controller attached.
    pub fn tick(&mut self) {
        self.step(|_, _| {});
    }

    /// Runs for `duration` with no controller attached.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.tick();
        }
    }

    /// Runs with `cycle` in lockstep until the virtual clock reaches `end`.
    pub fn run_until<F: FnMut(&mut Controller<'_>, Timestamp)>(
        &mut self,
        end: Timestamp,
        mut cycle: F,
    ) {
        while self.now < end {
            self.step(&mut cycle);
        }
    }

    /// One tick in lockstep with `cycle`, which gets the controller's ends of the buses and
    /// the time. See the [module docs](self) for the order of things.
    pub fn step<F: FnMut(&mut Controller<'_>, Timestamp)>(&mut self, mut cycle: F) {
        let now = self.now;
        while let Some(edge) = self.schedule.due(now) {
            self.apply(edge, now);
        }
        for d in &mut self.devices {
            d.poll_boot(now);
        }
        let trace_on = self.cfg.trace;
        for b in 0..self.buses.len() {
            let bus = &mut self.buses[b];
            let trace = &mut self.trace;
            bus.advance(now, &mut self.rng, &mut |w| {
                if trace_on {
                    let event = match w {
                        Wire::Frame(d) => BusEvent::Frame(TimestampedFrame {
                            timestamp: d.at,
                            frame: d.frame,
                        }),
                        Wire::State { at, event } => BusEvent::State {
                            timestamp: at,
                            event,
                        },
                    };
                    trace.push(TraceRecord { bus: b, event });
                }
            });
            if let Some(event) = bus.set_now(now) {
                if trace_on {
                    self.trace.push(TraceRecord {
                        bus: b,
                        event: BusEvent::State {
                            timestamp: now,
                            event,
                        },
                    });
                    self.trace.push(TraceRecord {
                        bus: b,
                        event: BusEvent::State {
                            timestamp: now,
                            event: BusStateEvent::StateChanged {
                                state: BusState::ErrorActive,
                                counters: None,
                            },
                        },
                    });
                }
            }
            let bus = &mut self.buses[b];
            while let Some(d) = bus.pop_delivery(now) {
                bus.to_controller(&d);
                for (ep, &i) in self.on_bus[b].iter().enumerate() {
                    let dev = &mut self.devices[i];
                    if ep + 1 != d.from && dev.core().may_take(&d.frame) {
                        dev.on_frame(&d.frame, d.at);
                    }
                }
            }
        }
        cycle(
            &mut Controller {
                buses: &mut self.buses,
            },
            now,
        );
        let dt = self.cfg.tick;
        for d in &mut self.devices {
            d.update(now, dt);
        }
        if let Some(w) = self.world.as_mut() {
            w.step(now, dt, &mut self.devices, &mut self.rng);
        }
        for (i, d) in self.devices.iter_mut().enumerate() {
            d.produce(now);
            let (b, ep) = self.endpoint[i];
            while let Some(f) = d.pop_frame() {
                self.buses[b].submit(ep, f, now);
            }
        }
        self.now = now + dt;
    }

    /// One step for serving the cell on an external bus (SocketCAN) in real time: the bus
    /// model is bypassed, as the kernel's bus does the timing. `received` are the frames
    /// the interface delivered since the last step, stamped with when they arrived on the
    /// cell's clock (the cell's own frames are not among them: a CAN socket does not
    /// receive what it sent). Each is delivered at its own time, the physics stepped up to
    /// it first and the devices' answers taken right after it, as a drive latches a SYNC
    /// when it arrives rather than when its host next looks; a time before the last step
    /// counts as its end, a time after `now` as `now`. The frames the devices send are
    /// appended to `sent`, and also delivered to the other simulated devices, as a real bus
    /// would. The virtual clock ends at `now`.
    pub fn step_external(
        &mut self,
        now: Timestamp,
        received: &[TimestampedFrame],
        sent: &mut Vec<Frame>,
    ) {
        for r in received {
            let at = r.timestamp.clamp(self.now, now.max(self.now));
            self.advance_external(at, sent);
            for d in &mut self.devices {
                if !d.core().is_off_bus() {
                    d.on_frame(&r.frame, at);
                }
            }
            self.produce_external(at, sent);
        }
        self.advance_external(now, sent);
    }

    /// Serving: due faults, boot-ups, the physics from the virtual clock up to `to` in
    /// ticks of at most [`SimConfig::tick`] (a late wake-up must not become one long
    /// physics step, the drives' loops would go unstable), and what the devices send then.
    fn advance_external(&mut self, to: Timestamp, sent: &mut Vec<Frame>) {
        while let Some(edge) = self.schedule.due(to) {
            self.apply(edge, to);
        }
        for d in &mut self.devices {
            d.poll_boot(to);
        }
        let dt = to.saturating_since(self.now);
        if !dt.is_zero() {
            let ticks = dt.as_nanos().div_ceil(self.cfg.tick.as_nanos().max(1));
            let ticks = ticks.clamp(1, 1000) as u32;
            let part = dt / ticks;
            for k in 0..ticks {
                let t = self.now + part * k;
                for d in &mut self.devices {
                    d.update(t, part);
                }
                if let Some(w) = self.world.as_mut() {
                    w.step(t, part, &mut self.devices, &mut self.rng);
                }
            }
            self.now = to;
        }
        self.produce_external(to, sent);
    }

    /// Serving: the frames the devices queued at `at`, appended to `sent` and delivered to
    /// the other simulated devices.
    fn produce_external(&mut self, at: Timestamp, sent: &mut Vec<Frame>) {
        let first = sent.len();
        for d in &mut self.devices {
            d.produce(at);
            while let Some(f) = d.pop_frame() {
                sent.push(f);
            }
        }
        for f in &sent[first..] {
            for d in &mut self.devices {
                if !d.core().is_off_bus() {
                    d.on_frame(f, at);
                }
            }
        }
    }

    /// The trace recorded so far (empty unless [`SimConfig::trace`]).
    pub fn trace(&self) -> &[TraceRecord] {
        &self.trace
    }

    /// Writes the trace as a candump `-L` log, timestamps on the virtual clock.
    pub fn write_trace(&self, out: impl Write) -> io::Result<()> {
        let mut w = CandumpWriter::new(out);
        for r in &self.trace {
            w.write_event(self.buses[r.bus].name(), &r.event)?;
        }
        w.flush()
    }

    /// The trace as candump `-L` text.
    pub fn trace_text(&self) -> String {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_trace(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
