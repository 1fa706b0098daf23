//! The cycle: one pure step `step(now, io)` that reads every frame that arrived, updates
//! every state machine, and writes every frame due. It is the whole controller; only the
//! clock and the bus differ between real time (the RT thread on SocketCAN) and simulation
//! (lockstep with the simulated cell on the virtual clock). See ARCHITECTURE.md.
//!
//! Inside one step, in this order:
//! 1. commands from the operator queue (`try_recv`);
//! 2. *read*: every frame on every bus — TPDOs into the process image, SDO responses into
//!    the SDO clients, heartbeats and boot-ups into the heartbeat consumers (CiA 301), EMCY;
//! 3. *update*: start-up (NMT reset communication, boot-up with a deadline, SDO
//!    configuration of every device, NMT start, enabling and homing), safety (e-stop latch,
//!    heartbeat loss, stale feedback, drive faults, following error, interlocks), the PackML
//!    cell state, the sequencer, and every axis's CiA 402 state machine and set-point;
//! 4. *write*: NMT, the synchronous RPDOs, then SYNC (so they act on this SYNC), then the
//!    event-driven RPDOs, the controller's heartbeat and SDO requests — after the SYNC, so
//!    that the SYNC leaves at the same point of every cycle whatever else is due.
//!
//! Nothing in the step allocates, blocks, formats or logs: events leave through the
//! [`Outbox`], commands come in through the [`CommandQueue`]; every table is sized in
//! [`CellController::new`].

use core::time::Duration;

use takt_drivers::can::{BusEvent, BusState, BusStateEvent, CanBus, Frame, Timestamp};
use takt_drivers::canopen::emcy::{FOLLOWING_ERROR, RECOVERED_FROM_BUS_OFF};
use takt_drivers::canopen::pdo::{
    PdoCobId, PdoCommParams, PdoConfig, PdoId, PdoMapping, TransmissionType,
    configure::pdo_config_steps, mapping::MappingEntry,
};
use takt_drivers::canopen::sdo::{AbortCode, Multiplexer, SdoClient, SdoDone};
use takt_drivers::canopen::{
    Emergency, HeartbeatConsumer, HeartbeatEvent, HeartbeatProducer, NmtCommand, NmtMessage,
    NmtState, NodeId, SyncProducer, cob,
};
use takt_drivers::cia402::{Mode, Statusword};
use takt_sequences::Program;
use takt_sequences::pdo::{Direction, Transmission};
use takt_sequences::program::{
    AxisId, AxisState as CondAxisState, CellView, DeviceKind, InputId, OutputId,
};

use crate::axis::{
    AxisCtl, AxisState, BeltCommand, HomingPhase, PowerRequest, PowerState, round_i32, round_i64,
};
use crate::commands::{Command, CommandQueue};
use crate::motion::plan_move;
use crate::resync::{self, ResyncEvent, ResyncPhase};
use crate::safety::{CellState, TripCause, axis_blocked, estop_input};
use crate::sequencer::{Gate, Outcome, SETTLE_S, Sequencer};
use crate::status::{
    AxisStatus, CycleTiming, EventKind, MeteredIo, NodeStatus, Outbox, STATUS_AXES, StartupPhase,
    Status, WatchdogTrip, report_bus_states,
};

/// The controller's side of the buses for one step: frames in, frames out.
pub trait CycleIo {
    /// The next frame or bus-state event (an error frame, a restart, an overflow) received
    /// on bus `bus`, if any.
    fn recv_event(&mut self, bus: usize) -> Option<BusEvent>;
    /// The next frame received on bus `bus`, if any; bus-state events on the way are taken
    /// through [`CycleIo::recv_event`] (so a wrapper that counts them sees them) and
    /// skipped.
    fn recv(&mut self, bus: usize) -> Option<Frame> {
        loop {
            match self.recv_event(bus)? {
                BusEvent::Frame(f) => return Some(f.frame),
                BusEvent::State { .. } => {}
            }
        }
    }
    /// Queues `frame` on bus `bus`; false if the interface refused it.
    fn send(&mut self, bus: usize, frame: &Frame) -> bool;
    /// True while the interface of bus `bus` is bus-off (an interface that cannot tell
    /// never is).
    fn bus_off(&mut self, bus: usize) -> bool {
        let _ = bus;
        false
    }
}

impl CycleIo for takt_sim::Controller<'_> {
    fn recv_event(&mut self, bus: usize) -> Option<BusEvent> {
        self.bus(bus)?.try_recv().ok().flatten()
    }

    fn send(&mut self, bus: usize, frame: &Frame) -> bool {
        self.bus(bus).is_some_and(|mut p| p.try_send(frame).is_ok())
    }

    fn bus_off(&mut self, bus: usize) -> bool {
        self.bus(bus).is_some_and(|p| p.is_bus_off())
    }
}

/// Any set of [`CanBus`]es (SocketCAN interfaces, one per cell bus), with the bus-off
/// state each interface last reported.
#[derive(Debug)]
pub struct Buses<B> {
    buses: Vec<B>,
    off: Vec<bool>,
}

impl<B> Buses<B> {
    /// The cell's buses, in the cell file's order.
    pub fn new(buses: Vec<B>) -> Buses<B> {
        let off = vec![false; buses.len()];
        Buses { buses, off }
    }
}

impl<B: CanBus> CycleIo for Buses<B> {
    fn recv_event(&mut self, bus: usize) -> Option<BusEvent> {
        let e = self.buses.get_mut(bus)?.try_recv().ok().flatten()?;
        if let BusEvent::State { event, .. } = e {
            // Bus-off comes as an error frame; the kernel's restart (restart-ms or netlink)
            // as a restarted or error-active state.
            let off = match event {
                BusStateEvent::StateChanged { state, .. } => Some(state == BusState::BusOff),
                BusStateEvent::Restarted => Some(false),
                BusStateEvent::RxOverflow | BusStateEvent::ProtocolError { .. } => None,
            };
            if let (Some(off), Some(o)) = (off, self.off.get_mut(bus)) {
                *o = off;
            }
        }
        Some(e)
    }

    fn send(&mut self, bus: usize, frame: &Frame) -> bool {
        self.buses
            .get_mut(bus)
            .is_some_and(|b| b.try_send(frame).is_ok())
    }

    fn bus_off(&mut self, bus: usize) -> bool {
        self.off.get(bus).copied().unwrap_or(false)
    }
}

/// Timing of the cycle and its supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleConfig {
    /// The cycle period.
    pub period: Duration,
    /// How long a device may take to send boot-up after the NMT reset.
    pub boot_timeout: Duration,
    /// SDO response timeout during configuration.
    pub sdo_timeout: Duration,
    /// SYNCs without a synchronous TPDO before the feedback counts as stale.
    pub stale_syncs: u32,
    /// Consecutive SYNCs over the following-error window before the axis trips.
    pub following_error_syncs: u32,
    /// A status snapshot every this many cycles.
    pub status_every: u32,
    /// The longest an Aborting stop may take before the cell counts it as done.
    pub abort_timeout: Duration,
    /// Start-up stops short of motion: once every device is configured and operational
    /// it waits in [`StartupPhase::AwaitingStart`], the drives disabled, until a start
    /// command; only then are the drives enabled and the axes homed. `takt run` sets it,
    /// so that a restarted controller (a service restarted on failure) never moves an
    /// axis by itself. Off, start-up enables and homes as soon as the devices are
    /// configured (the lockstep tests and the fuzzer, which start the cell themselves).
    pub motion_waits_for_start: bool,
}

impl Default for CycleConfig {
    fn default() -> Self {
        CycleConfig {
            period: Duration::from_millis(1),
            boot_timeout: Duration::from_secs(5),
            sdo_timeout: Duration::from_millis(500),
            stale_syncs: 10,
            following_error_syncs: 3,
            status_every: 10,
            abort_timeout: Duration::from_secs(3),
            motion_waits_for_start: false,
        }
    }
}

/// Why the controller could not be set up for a program.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A node-ID out of range.
    #[error("device {0}: node-ID {1} is out of range")]
    BadNode(String, u8),
    /// A PDO layout the controller cannot configure.
    #[error("device {0}: PDO layout: {1}")]
    Pdo(String, String),
    /// Too many axes for one status snapshot.
    #[error("{0} axes: takt supports at most {STATUS_AXES}")]
    TooManyAxes(usize),
    /// A bad SYNC period.
    #[error("bus {0}: SYNC period: {1}")]
    Sync(String, String),
}

/// One SDO download of a device's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SdoWrite {
    mux: Multiplexer,
    data: [u8; 4],
    len: u8,
}

impl SdoWrite {
    fn new(index: u16, sub: u8, value: u32, len: u8) -> SdoWrite {
        SdoWrite {
            mux: Multiplexer::new(index, sub),
            data: value.to_le_bytes(),
            len,
        }
    }
}

/// One PDO as the controller packs or unpacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PdoLayout {
    cob_id: u16,
    objects: [(u16, u8, u8); 8],
    count: u8,
    /// Sent on (every n-th) SYNC; else on change.
    synchronous: bool,
    inhibit_us: u32,
}

/// Start-up progress of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodePhase {
    AwaitingBoot,
    Configuring,
    Configured,
    Failed,
}

/// One CANopen device as the controller sees it.
#[derive(Debug)]
struct NodeCtl {
    bus: usize,
    node: NodeId,
    kind: DeviceKind,
    sdo: SdoClient,
    heartbeat: HeartbeatConsumer,
    writes: Vec<SdoWrite>,
    next_write: usize,
    phase: NodePhase,
    tpdo: [PdoLayout; 4],
    tpdos: usize,
    rpdo: [PdoLayout; 4],
    rpdos: usize,
    rpdo_sent: [(Timestamp, [u8; 8]); 4],
    // Process image.
    statusword: u16,
    position_counts: i32,
    inputs: u8,
    outputs: u8,
    controlword: u16,
    target_position_counts: i32,
    target_velocity_counts_s: i32,
    last_tpdo: Option<Timestamp>,
    syncs_without_tpdo: u32,
    /// When the SYNC its last synchronous sample answered went out.
    sample_sync_at: Option<Timestamp>,
    sync_tpdo: bool,
    axis: Option<usize>,
    /// When the controller last sent this configured node NMT start because its heartbeat
    /// showed it out of operational (a communication error sent it to pre-operational).
    restarted_at: Option<Timestamp>,
    /// Configuration writes of this device tried again after a timeout, in a row.
    config_retries: u8,
    /// Boot-ups of this device taken as a fresh start while it was being configured
    /// before the cell had started (see [`STARTUP_REBOOTS`]).
    startup_reboots: u8,
}

/// The plant as the sequencer and the conditions see it: axes, I/O, counters.
#[derive(Debug)]
pub struct Plant {
    /// Every axis and conveyor, indexed by [`AxisId`].
    pub axes: Vec<AxisCtl>,
    /// Active inputs, bit i = input i (after active-low inversion).
    pub inputs: u64,
    /// Commanded outputs, bit i = output i.
    pub outputs: u64,
    /// Every I/O node has reported its inputs at least once.
    pub inputs_known: bool,
    /// Production counters.
    pub counters: Vec<u64>,
}

impl Plant {
    /// Switches output `o`.
    pub fn set_output(&mut self, _program: &Program, o: OutputId, on: bool) {
        let bit = 1u64.checked_shl(u32::from(o.0)).unwrap_or(0);
        if on {
            self.outputs |= bit;
        } else {
            self.outputs &= !bit;
        }
    }
}

impl CellView for Plant {
    fn input(&self, input: InputId) -> bool {
        self.inputs_known && self.inputs >> input.0 & 1 == 1
    }

    fn output(&self, output: OutputId) -> bool {
        self.outputs >> output.0 & 1 == 1
    }

    /// Gantry axes report their set-point once enabled and homed (the drive holds the
    /// actual position within the following-error window, which takt watches), so a
    /// condition on a teach point is exact at the end of a move; otherwise the actual.
    fn position_counts(&self, axis: AxisId) -> i64 {
        self.axes.get(axis.index()).map_or(0, |a| {
            if !a.conveyor && a.is_ready() {
                round_i64(a.demand_counts)
            } else {
                a.actual_counts
            }
        })
    }

    fn axis_state(&self, axis: AxisId, state: CondAxisState) -> bool {
        let Some(a) = self.axes.get(axis.index()) else {
            return false;
        };
        match state {
            CondAxisState::Homed => a.homing == HomingPhase::Homed,
            CondAxisState::Enabled => a.power == PowerState::OperationEnabled,
            CondAxisState::Moving => !a.is_standing() || a.state == AxisState::Moving,
            CondAxisState::Stopped => a.is_standing() && a.state != AxisState::Moving,
            CondAxisState::InPosition => {
                a.move_owner.is_none()
                    && (a.actual_counts as f64 - a.demand_counts).abs()
                        <= a.in_position_counts as f64
            }
            CondAxisState::Fault => a.power.is_fault(),
        }
    }
}

/// Counters the cycle keeps about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleCounters {
    /// Steps run.
    pub cycles: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames the bus refused.
    pub tx_refused: u64,
    /// SYNCs sent.
    pub syncs: u64,
    /// Trips.
    pub trips: u64,
}

/// The whole controller of one cell. See the [module docs](self).
#[derive(Debug)]
pub struct CellController {
    program: Program,
    cfg: CycleConfig,
    nodes: Vec<NodeCtl>,
    /// Per bus: node-ID → index into `nodes` + 1 (0: not ours).
    node_index: Vec<[u8; 128]>,
    /// Per bus: its devices (indices into `nodes`, in device order) and the axes they
    /// drive (in axis order), so the per-bus passes of a cycle visit only their own bus.
    bus_nodes: Vec<Vec<usize>>,
    bus_axes: Vec<Vec<usize>>,
    sync: Vec<SyncProducer>,
    heartbeat: Vec<HeartbeatProducer>,
    sync_period_s: Vec<f64>,
    /// Per bus: when its last SYNC went out.
    sync_sent_at: Vec<Option<Timestamp>>,
    /// The plant image the sequencer works on.
    pub plant: Plant,
    sequencer: Sequencer,
    outbox: Outbox,
    commands: Option<CommandQueue>,
    state: CellState,
    startup: StartupPhase,
    started_at: Option<Timestamp>,
    nmt_start_pending: bool,
    trip: Option<TripCause>,
    trip_category: u8,
    state_since: Timestamp,
    start_requested: bool,
    single_step: bool,
    estop: Option<InputId>,
    estop_commanded: bool,
    /// Per bus: the interface was bus-off at the last look.
    bus_off: Vec<bool>,
    /// The trip's fault class resumes by itself: reset and start without the operator.
    auto_resume: bool,
    /// Automatic resumes since the last completed pass (a fault that comes back every
    /// time stops resuming by itself after [`AUTO_RESUME_LIMIT`]).
    auto_resumes: u32,
    /// `[resync] persist` held when the cell tripped.
    persist_at_trip: bool,
    /// `[resync] persist` as the cell knows it: true as soon as the condition holds, false
    /// only once it has failed for [`PERSIST_DEBOUNCE`] without a break (a chattering
    /// vacuum switch does not lose a part; a part torn off the moment before a trip is
    /// still known to have been there).
    persist_now: bool,
    /// Since when the condition has failed, and whether an input made it fail (the
    /// commanded outputs were the same as at the last look) rather than the sequence.
    persist_failed: Option<(Timestamp, bool)>,
    /// The commanded outputs at the last look at `persist`.
    persist_outputs: u64,
    /// The commanded outputs when an I/O node's inputs last arrived.
    outputs_at_inputs: u64,
    /// The pass switched outputs while an I/O node that went missing could not report
    /// what came of it: resuming would guess.
    persist_blind: bool,
    /// Held because `persist` was lost: the pass may not resume.
    resume_held: bool,
    counters: CycleCounters,
    status: Status,
}

/// The longest value the controller moves over SDO (expedited writes, small reads).
const SDO_BUFFER: usize = 8;
/// Heartbeat consumer time as a multiple of the producer time (CiA 301 leaves the margin
/// to the system designer; 2.5 tolerates one lost heartbeat and jitter).
const HEARTBEAT_MARGIN: f64 = 2.5;
/// 0x605A quick stop option 2: slow down on the quick stop ramp, then switch on disabled
/// (stop category 1 done by the drive itself).
const QUICK_STOP_OPTION: u32 = 2;
/// Times a configuration write that timed out is tried again once the cell has started.
const CONFIG_RETRIES: u8 = 5;
/// Boot-ups a device may send while it is configured before the devices are started,
/// each restarting its configuration; one more is a reboot loop and trips the cell.
const STARTUP_REBOOTS: u8 = 3;
/// How long `[resync] persist` must fail without a break before the cell takes what the
/// pass had done as gone: longer than a chattering switch stays off, short next to a move.
pub const PERSIST_DEBOUNCE: Duration = Duration::from_millis(100);
/// Automatic resumes in a row without a completed pass before the cell waits for the
/// operator instead.
pub const AUTO_RESUME_LIMIT: u32 = 3;
/// 0x6007 abort connection option 1: the drive faults when the controller's heartbeat
/// stops (CiA 402 §6.5.1), so a dead controller stops every drive.
const ABORT_CONNECTION_FAULT: u32 = 1;

impl CellController {
    /// A controller for `program`. Everything the cycle needs is allocated here.
    pub fn new(
        program: &Program,
        cfg: CycleConfig,
        outbox: Outbox,
        commands: Option<CommandQueue>,
    ) -> Result<CellController, SetupError> {
        if program.axes.len() > STATUS_AXES {
            return Err(SetupError::TooManyAxes(program.axes.len()));
        }
        let mut nodes = Vec::with_capacity(program.devices.len());
        let mut node_index = vec![[0u8; 128]; program.buses.len().max(1)];
        for (i, d) in program.devices.iter().enumerate() {
            let node =
                NodeId::new(d.node).map_err(|_| SetupError::BadNode(d.name.clone(), d.node))?;
            let bus = d.bus.index();
            let axis = program.axes.iter().position(|a| a.device.index() == i);
            let heartbeat_timeout =
                Duration::from_secs_f64(f64::from(d.heartbeat_ms) * HEARTBEAT_MARGIN / 1000.0);
            let mut n = NodeCtl {
                bus,
                node,
                kind: d.kind,
                sdo: SdoClient::new(node, SDO_BUFFER).with_timeout(cfg.sdo_timeout),
                heartbeat: HeartbeatConsumer::new(
                    node,
                    heartbeat_timeout,
                    cfg.boot_timeout,
                    Timestamp::ZERO,
                ),
                writes: Vec::new(),
                next_write: 0,
                phase: NodePhase::AwaitingBoot,
                tpdo: [PdoLayout::default(); 4],
                tpdos: 0,
                rpdo: [PdoLayout::default(); 4],
                rpdos: 0,
                rpdo_sent: [(Timestamp::ZERO, [0; 8]); 4],
                statusword: 0,
                position_counts: 0,
                inputs: 0,
                outputs: 0,
                controlword: 0,
                target_position_counts: 0,
                target_velocity_counts_s: 0,
                last_tpdo: None,
                syncs_without_tpdo: 0,
                sample_sync_at: None,
                sync_tpdo: false,
                axis,
                restarted_at: None,
                config_retries: 0,
                startup_reboots: 0,
            };
            n.writes = configuration(program, i, &mut n)?;
            if let Some(slot) = node_index.get_mut(bus) {
                slot[usize::from(d.node)] = (i + 1) as u8;
            }
            nodes.push(n);
        }
        let mut bus_nodes = vec![Vec::new(); node_index.len()];
        for (i, n) in nodes.iter().enumerate() {
            if let Some(list) = bus_nodes.get_mut(n.bus) {
                list.push(i);
            }
        }
        let mut bus_axes = vec![Vec::new(); node_index.len()];
        for (a, axis) in program.axes.iter().enumerate() {
            if let Some(list) = nodes
                .get(axis.device.index())
                .and_then(|n| bus_axes.get_mut(n.bus))
            {
                list.push(a);
            }
        }
        let mut sync = Vec::new();
        let mut heartbeat = Vec::new();
        let mut sync_period_s = Vec::new();
        for b in &program.buses {
            let period = Duration::from_micros(u64::from(b.sync_period_us));
            let cycle_ns = cfg.period.as_nanos().max(1);
            if period.as_nanos() % cycle_ns != 0 {
                // SYNC is sent by the cycle, every k-th one: between two cycles there is
                // no one to send it.
                return Err(SetupError::Sync(
                    b.name.clone(),
                    format!(
                        "{period:?} is not a whole number of cycle periods ({:?}): SYNC goes out every k cycles, so the cycle period must divide the SYNC period",
                        cfg.period
                    ),
                ));
            }
            sync.push(
                SyncProducer::new(period, if b.sync_counter { 240 } else { 0 })
                    .map_err(|e| SetupError::Sync(b.name.clone(), e.to_string()))?,
            );
            sync_period_s.push(period.as_secs_f64());
            let me = NodeId::new(b.controller_node)
                .map_err(|_| SetupError::BadNode(b.name.clone(), b.controller_node))?;
            let mut hb = HeartbeatProducer::new(
                me,
                Duration::from_millis(u64::from(b.controller_heartbeat_ms)),
            );
            hb.set_state(NmtState::Operational);
            heartbeat.push(hb);
        }
        let mut axes: Vec<AxisCtl> = program
            .axes
            .iter()
            .map(|a| AxisCtl::new(a, a.device.index()))
            .collect();
        first_start_belts(program, &mut axes);
        let status = Status::empty(program);
        Ok(CellController {
            cfg,
            nodes,
            node_index,
            bus_nodes,
            bus_axes,
            sync,
            heartbeat,
            sync_sent_at: vec![None; sync_period_s.len()],
            sync_period_s,
            plant: Plant {
                axes,
                inputs: 0,
                outputs: 0,
                inputs_known: false,
                counters: vec![0; program.counters.len()],
            },
            sequencer: Sequencer::new(program),
            outbox,
            commands,
            state: CellState::Stopped,
            startup: StartupPhase::AwaitingBoot,
            started_at: None,
            nmt_start_pending: false,
            trip: None,
            trip_category: 0,
            state_since: Timestamp::ZERO,
            start_requested: false,
            single_step: false,
            estop: estop_input(program),
            estop_commanded: false,
            bus_off: vec![false; program.buses.len().max(1)],
            auto_resume: false,
            auto_resumes: 0,
            persist_at_trip: false,
            persist_now: false,
            persist_failed: None,
            persist_outputs: 0,
            outputs_at_inputs: 0,
            persist_blind: false,
            resume_held: false,
            counters: CycleCounters::default(),
            status,
            program: program.clone(),
        })
    }

    /// The program the controller runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The PackML cell state.
    pub fn state(&self) -> CellState {
        self.state
    }

    /// Start-up progress.
    pub fn startup(&self) -> StartupPhase {
        self.startup
    }

    /// The latched trip, if any.
    pub fn trip(&self) -> Option<TripCause> {
        self.trip
    }

    /// True while the cell stands aborted by a fault class that resumes by itself (the
    /// cell file's `[resync] auto_resume`) and will at its next cycle: the e-stop chain is
    /// closed, no operator's e-stop is latched, and the cell has not resumed by itself
    /// [`AUTO_RESUME_LIMIT`] times already since its last finished pass. Whoever would
    /// wait for an operator's reset waits for this instead.
    pub fn resumes_by_itself(&self) -> bool {
        self.state == CellState::Aborted
            && self.auto_resume
            && self.auto_resumes < AUTO_RESUME_LIMIT
            && !self.estop_commanded
            && self.estop.is_none_or(|e| self.plant.input(e))
    }

    /// Held because what the interrupted pass had done is gone (`[resync] persist`): a
    /// reset abandons the pass.
    pub fn resume_held(&self) -> bool {
        self.resume_held
    }

    /// Counters about the cycle.
    pub fn counters(&self) -> CycleCounters {
        self.counters
    }

    /// Counter `i` (the demo's only counter is `parts_placed`).
    pub fn counter(&self, i: usize) -> u64 {
        self.plant.counters.get(i).copied().unwrap_or(0)
    }

    /// The main thread's instruction (the step the cell is at).
    pub fn status_pc(&self) -> u32 {
        self.sequencer.main_pc()
    }

    /// Passes of the sequence completed.
    pub fn passes(&self) -> u64 {
        self.sequencer.passes()
    }

    /// The last status snapshot.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Events lost to a full queue.
    pub fn dropped_events(&self) -> u64 {
        self.outbox.dropped_events()
    }

    /// The RT runtime's watchdog fired: say what it saw, and stop the cell like a PLC.
    pub fn trip_overrun(&mut self, watchdog: WatchdogTrip, now: Timestamp) {
        self.outbox.event(now, EventKind::Watchdog(watchdog));
        self.raise(TripCause::CycleOverrun, now);
    }

    /// Takes a command directly (the same as one from the queue); false when the cell's
    /// state does not allow it (nothing changes then).
    pub fn command(&mut self, command: Command, now: Timestamp) -> bool {
        match command {
            Command::Start => {
                let allowed = self.state == CellState::Stopped;
                if allowed {
                    self.start_requested = true;
                    self.sequencer.stop_at_end = false;
                    self.set_state(CellState::Starting, now);
                }
                allowed
            }
            Command::Hold => {
                let allowed = self.state == CellState::Execute;
                if allowed {
                    self.set_state(CellState::Holding, now);
                }
                allowed
            }
            Command::Resume => {
                let allowed = (self.state == CellState::Held || self.state == CellState::Holding)
                    && !self.resume_held;
                if allowed {
                    self.set_state(CellState::Execute, now);
                }
                allowed
            }
            Command::Stop => match self.state {
                CellState::Execute | CellState::Holding | CellState::Held => {
                    self.sequencer.stop_at_end = true;
                    self.set_state(CellState::Stopping, now);
                    true
                }
                CellState::Starting => {
                    self.set_state(CellState::Stopped, now);
                    true
                }
                _ => false,
            },
            Command::EStop => {
                // Always taken: an e-stop while already aborted still latches.
                self.estop_commanded = true;
                self.raise(TripCause::EStopCommand, now);
                true
            }
            Command::Reset => {
                if self.state == CellState::Held && self.resume_held {
                    // The operator has cleared the cell: the interrupted pass is abandoned.
                    self.resume_held = false;
                    self.sequencer.abandon();
                    self.plant.outputs = 0;
                    // A new pass starts as the first did: its belts running, so a part
                    // can arrive (found by the z-reboot scenario).
                    first_start_belts(&self.program, &mut self.plant.axes);
                    self.outbox
                        .event(now, EventKind::Resync(ResyncEvent::PassAbandoned));
                    self.set_state(CellState::Stopped, now);
                    return true;
                }
                let allowed = self.state == CellState::Aborted;
                if allowed {
                    self.auto_resume = false;
                    self.estop_commanded = false;
                    self.set_state(CellState::Clearing, now);
                }
                allowed
            }
            Command::SingleStep => {
                let allowed = self.state == CellState::Held;
                if allowed {
                    self.single_step = true;
                }
                allowed
            }
        }
    }

    /// Where the runtime records the cycle's timing (the cycle itself reads no clock).
    pub fn timing_mut(&mut self) -> &mut CycleTiming {
        &mut self.status.timing
    }

    /// One cycle at `now`. See the [module docs](self).
    pub fn step(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        self.counters.cycles += 1;
        // Every frame in and out is counted per bus for the status (load, errors).
        let mut buses = self.status.bus;
        let io = &mut MeteredIo::new(io, &mut buses);
        if self.started_at.is_none() {
            self.begin(now, io);
        }
        while let Some(c) = self.commands.as_ref().and_then(CommandQueue::poll) {
            let state = self.state;
            let accepted = self.command(c.command, now);
            self.outbox.event(
                now,
                EventKind::Command {
                    command: c.command,
                    tag: c.tag,
                    accepted,
                    state,
                },
            );
        }
        self.read(now, io);
        self.watch_buses(now, io);
        self.supervise(now, io);
        self.update_io();
        self.watch_persist(now);
        self.safety(now);
        self.run_cell(now);
        self.write(now, io);
        report_bus_states(&mut self.outbox, now, &self.status.bus, &buses);
        self.status.bus = buses;
        if self.counters.cycles % u64::from(self.cfg.status_every.max(1)) == 0 {
            self.snapshot(now);
        }
    }

    fn begin(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        self.started_at = Some(now);
        // Frames already waiting were sent before the reset below, so none of them answers
        // it: a boot-up among them (devices that powered up as takt started, as `takt sim
        // serve` does when both start together) made the reset's own boot-up look like a
        // reboot and tripped the cell before it had run.
        for b in 0..self.node_index.len() {
            while io.recv(b).is_some() {
                self.counters.frames_in += 1;
            }
        }
        // Every device, whatever it was doing, restarts its communication and announces
        // itself with boot-up: the controller then knows each one is in pre-operational
        // with its factory PDOs, and configures it from there.
        let reset = NmtMessage::to_all(NmtCommand::ResetCommunication).encode();
        for (b, hb) in self.heartbeat.iter().enumerate() {
            self.counters.frames_out += 2;
            if !io.send(b, &reset) {
                self.counters.tx_refused += 1;
            }
            if !io.send(b, &hb.boot_up()) {
                self.counters.tx_refused += 1;
            }
        }
        for n in &mut self.nodes {
            n.heartbeat.expect_boot(now);
        }
        self.outbox
            .event(now, EventKind::Startup(StartupPhase::AwaitingBoot));
    }

    fn read(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        for b in 0..self.node_index.len() {
            while let Some(frame) = io.recv(b) {
                self.counters.frames_in += 1;
                self.on_frame(b, &frame, now);
            }
        }
    }

    fn on_frame(&mut self, bus: usize, frame: &Frame, now: Timestamp) {
        let Some(id) = frame.standard_id() else {
            return;
        };
        let node = (id & 0x7F) as usize;
        let Some(&slot) = self.node_index.get(bus).and_then(|m| m.get(node)) else {
            return;
        };
        if slot == 0 {
            return;
        }
        let i = usize::from(slot) - 1;
        let base = id & 0x780;
        let n = &mut self.nodes[i];
        match base {
            cob::HEARTBEAT => {
                if let Some(e) = n.heartbeat.on_frame(frame, now) {
                    self.on_heartbeat(i, e, now);
                }
            }
            cob::SDO_RESPONSE => {
                n.sdo.on_frame(frame, now);
            }
            cob::EMCY => {
                if let Ok(e) = Emergency::decode(frame) {
                    let code = e.code.0;
                    // The device's word first, then what the cell does about it.
                    self.outbox.event(
                        now,
                        EventKind::Emcy {
                            node: node as u8,
                            code,
                        },
                    );
                    // A drive's own following-error monitor (0x6065/0x6066) is a lost
                    // position, not a broken drive: it resyncs like the controller's.
                    if code == FOLLOWING_ERROR
                        && let Some(a) = n.axis
                        && self.startup == StartupPhase::Ready
                    {
                        self.raise(TripCause::FollowingError { axis: a as u16 }, now);
                    }
                    // The device was off the bus (CiA 301 EMCY 0x8140): its heartbeats
                    // stopped meanwhile, even if not for the whole consumer time, and it
                    // took its communication-error reaction (an I/O node its error
                    // outputs: the vacuum valve dropped). Its image is stale and what the
                    // pass did meanwhile is uncertain (found by the fuzzer, seed 1557).
                    if code == RECOVERED_FROM_BUS_OFF && self.startup == StartupPhase::Ready {
                        self.nodes[i].last_tpdo = None;
                        self.note_blind_outputs(i);
                        self.raise(TripCause::HeartbeatLost { node: node as u8 }, now);
                    }
                }
            }
            _ => {
                let Some(k) = n.tpdo[..n.tpdos].iter().position(|p| p.cob_id == id) else {
                    return;
                };
                let layout = n.tpdo[k];
                unpack(&layout, frame.data(), n);
                if n.kind == DeviceKind::Io {
                    self.outputs_at_inputs = self.plant.outputs;
                }
                let n = &mut self.nodes[i];
                let sync_s = self.sync_period_s.get(bus).copied().unwrap_or(0.002);
                // Synchronous feedback is sampled at SYNCs, so two samples lie as far
                // apart as the SYNCs they answer went out: a whole number of SYNC periods
                // (two frames that arrive together are consecutive samples; SYNCs between
                // were lost) when the cycle keeps time, more or less when a late cycle sent
                // one late. Dividing by the arrival interval instead made two frames
                // arriving together look like a jump, and counting periods made a SYNC
                // sent late look like one.
                let answered = self.sync_sent_at.get(bus).copied().flatten();
                let interval_s = match (n.last_tpdo, n.sample_sync_at, answered) {
                    (None, ..) => 0.0,
                    (Some(_), Some(before), Some(at)) if n.sync_tpdo && at > before => {
                        at.saturating_since(before).as_secs_f64()
                    }
                    (Some(_), ..) if n.sync_tpdo => f64::from(n.syncs_without_tpdo.max(1)) * sync_s,
                    (Some(t), ..) => now.saturating_since(t).as_secs_f64(),
                };
                if n.sync_tpdo {
                    n.sample_sync_at = answered;
                }
                n.last_tpdo = Some(now);
                n.syncs_without_tpdo = 0;
                if let Some(a) = n.axis {
                    let (sw, pos) = (n.statusword, n.position_counts);
                    let axis = &mut self.plant.axes[a];
                    // Homing sets the position on purpose: not a jump. A SYNC leaves
                    // when its cycle's work is done, somewhere within the cycle after the
                    // wake-up it is timed by, so the interval between two is known to
                    // within a cycle period (under the RT-kernel VM's emulation a cycle's
                    // work took 0.5-8 ms, and Z at 480 mm/s looked like a jump).
                    let slack_s = self.cfg.period.as_secs_f64();
                    let jump = axis.homing == HomingPhase::Homed
                        && axis.is_position_jump(pos, interval_s + slack_s);
                    axis.on_feedback(sw, pos, interval_s);
                    if jump && self.startup == StartupPhase::Ready {
                        self.raise(TripCause::PositionJump { axis: a as u16 }, now);
                    }
                }
            }
        }
    }

    fn on_heartbeat(&mut self, i: usize, e: HeartbeatEvent, now: Timestamp) {
        let node = self.nodes[i].node.get();
        match e {
            HeartbeatEvent::BootUp { .. } => {
                self.outbox.event(now, EventKind::Booted { node });
                let n = &mut self.nodes[i];
                if n.phase == NodePhase::AwaitingBoot {
                    n.phase = NodePhase::Configuring;
                    n.next_write = 0;
                }
            }
            HeartbeatEvent::Rebooted { .. }
                if !self.startup.is_operational()
                    && self.nodes[i].startup_reboots < STARTUP_REBOOTS =>
            {
                // Before the devices are started nothing has moved, and a second boot-up
                // only undoes the configuration written so far: a device that powered up
                // as takt started answers the reset after its own boot-up, which arrived
                // after the first cycle had drained the bus (seen in the RT-kernel VM when
                // `takt sim serve` and `takt run` start together). Configure it again from
                // its first write; the transfer it was answering is gone with its reboot.
                self.outbox.event(now, EventKind::Booted { node });
                let n = &mut self.nodes[i];
                n.startup_reboots += 1;
                n.sdo.cancel(AbortCode::GeneralError);
                let _ = n.sdo.take_outcome();
                n.phase = NodePhase::Configuring;
                n.next_write = 0;
                n.config_retries = 0;
            }
            HeartbeatEvent::Rebooted { .. } => {
                self.outbox.event(now, EventKind::Booted { node });
                self.note_blind_outputs(i);
                // It lost its configuration (and an incremental encoder its homing):
                // configure it again; the cell stops meanwhile.
                let n = &mut self.nodes[i];
                n.phase = NodePhase::Configuring;
                n.next_write = 0;
                n.config_retries = 0;
                n.last_tpdo = None;
                let axis = n.axis;
                self.raise(TripCause::Rebooted { node }, now);
                // The resync decides whether its position survived (read back) or must be
                // found again (homed); the cycle's start-up homing stays out of it.
                if let Some(a) = axis {
                    let axis = &mut self.plant.axes[a];
                    let (belief, standing) = (axis.believed_counts(), axis.stands_idle());
                    axis.resync.arm(belief, standing);
                    axis.resync.mark_rebooted(axis.actual_counts);
                    axis.feedback = false;
                }
            }
            HeartbeatEvent::Lost { .. } => {
                // What it reported is stale until it speaks again: the resync waits for
                // its next PDO (an I/O node's inputs may have changed while it was gone).
                self.nodes[i].last_tpdo = None;
                self.note_blind_outputs(i);
                self.raise(TripCause::HeartbeatLost { node }, now);
            }
            HeartbeatEvent::Recovered { .. } => self
                .outbox
                .event(now, EventKind::Resync(ResyncEvent::HeartbeatBack { node })),
            HeartbeatEvent::BootTimeout { .. } => {
                self.outbox.event(now, EventKind::BootTimeout { node });
                self.nodes[i].phase = NodePhase::Failed;
            }
            HeartbeatEvent::Started { .. } | HeartbeatEvent::StateChanged { .. } => {}
        }
    }

    /// Bus-off and recovery of each interface: bus-off trips the cell; when the
    /// interface is back (the kernel restarts it: restart-ms or netlink), every node on
    /// that bus must be heard again and every axis resyncs before the cell may run.
    fn watch_buses(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        for b in 0..self.bus_off.len() {
            let off = io.bus_off(b);
            if off == self.bus_off[b] {
                continue;
            }
            self.bus_off[b] = off;
            let bus = b as u8;
            if off {
                self.outbox
                    .event(now, EventKind::Resync(ResyncEvent::BusOff { bus }));
                self.raise(TripCause::BusOff { bus }, now);
            } else {
                self.outbox
                    .event(now, EventKind::Resync(ResyncEvent::BusRestarted { bus }));
                for n in self.nodes.iter_mut().filter(|n| n.bus == b) {
                    // Its frames were lost meanwhile: the feedback must come again.
                    n.last_tpdo = None;
                    if let Some(a) = n.axis {
                        let axis = &mut self.plant.axes[a];
                        axis.feedback = false;
                        let (belief, standing) = (axis.believed_counts(), axis.stands_idle());
                        axis.resync.arm(belief, standing);
                    }
                }
            }
        }
    }

    /// True when `n` is back after a trip: configured, its heartbeat heard, its feedback
    /// arriving, its bus up.
    fn device_back(&self, n: &NodeCtl) -> bool {
        n.phase == NodePhase::Configured
            && (n.heartbeat.is_alive() || n.heartbeat.timeout().is_zero())
            && n.last_tpdo.is_some()
            && n.syncs_without_tpdo <= self.cfg.stale_syncs
            && !self.bus_off.get(n.bus).copied().unwrap_or(false)
    }

    /// One cycle of every axis's resync (see [`crate::resync`]); true when none is left
    /// and every device is back.
    fn resync(&mut self, now: Timestamp) -> bool {
        let mut done = self.nodes.iter().all(|n| self.device_back(n));
        for a in 0..self.plant.axes.len() {
            let node = self.plant.axes[a].node;
            let back = self.device_back(&self.nodes[node]);
            let policy = self.program.axes[a].resync;
            let axis = &mut self.plant.axes[a];
            let rebooted = axis.resync.rebooted;
            let before_reboot = axis.resync.before_reboot_counts;
            let outcome = resync::advance(axis, &mut self.nodes[node].sdo, back, policy, now);
            let axis_id = a as u16;
            match outcome {
                resync::Outcome::Working => {}
                resync::Outcome::Done {
                    action,
                    before_counts,
                    after_counts,
                } => {
                    if axis.conveyor && rebooted {
                        // Its encoder counts from somewhere else now: an index under way
                        // keeps its remaining distance.
                        let shift = after_counts - before_reboot;
                        self.sequencer
                            .shift_index_target(&self.program, axis_id, shift);
                    }
                    self.outbox.event(
                        now,
                        EventKind::Resync(ResyncEvent::Axis {
                            axis: axis_id,
                            action,
                            before_counts,
                            after_counts,
                        }),
                    );
                    let axis = &mut self.plant.axes[a];
                    if !axis.conveyor
                        && axis.resync.standing_at_trip
                        && (after_counts - before_counts).abs() > axis.in_position_counts
                        && let Ok(plan) = plan_move(
                            &[after_counts as f64],
                            &[before_counts as f64],
                            &[axis.limits],
                            false,
                        )
                    {
                        // Its clock starts at the first SYNC with the drive enabled.
                        axis.recovery = Some((plan, f64::NAN));
                    }
                }
                resync::Outcome::Lost {
                    before_counts,
                    read_counts,
                } => {
                    self.outbox.event(
                        now,
                        EventKind::Resync(ResyncEvent::PositionLost {
                            axis: axis_id,
                            before_counts,
                            read_counts,
                        }),
                    );
                    self.raise(TripCause::PositionLost { axis: axis_id }, now);
                    return false;
                }
            }
            let axis = &self.plant.axes[a];
            // A recovery move done long since whose axis is still not in position lost its
            // position on the way by less than its following-error window (Z losing steps
            // on its way back), as a move of the sequence can: a following error, or the
            // cell would wait for ever (found by the fuzzer, seed 1754).
            let now_s = now.as_micros() as f64 / 1e6;
            if let Some((plan, t0_s)) = &axis.recovery
                && !t0_s.is_nan()
                && plan.is_done(now_s - t0_s - SETTLE_S)
            {
                self.raise(TripCause::FollowingError { axis: a as u16 }, now);
                return false;
            }
            done &= !axis.resync.active() && axis.recovery.is_none();
        }
        done
    }

    /// Heartbeat deadlines, device configuration, start-up phases, homing.
    fn supervise(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        for i in 0..self.nodes.len() {
            if let Some(e) = self.nodes[i].heartbeat.poll(now) {
                self.on_heartbeat(i, e, now);
            }
            self.configure_node(i, now, io);
            self.keep_operational(i, now, io);
        }
        let all = |p: NodePhase| self.nodes.iter().all(|n| n.phase == p);
        let next = match self.startup {
            StartupPhase::AwaitingBoot | StartupPhase::Configuring
                if self.nodes.iter().any(|n| n.phase == NodePhase::Failed) =>
            {
                StartupPhase::Failed
            }
            StartupPhase::AwaitingBoot
                if self
                    .nodes
                    .iter()
                    .all(|n| n.phase != NodePhase::AwaitingBoot) =>
            {
                StartupPhase::Configuring
            }
            StartupPhase::Configuring if all(NodePhase::Configured) => {
                self.nmt_start_pending = true;
                if self.cfg.motion_waits_for_start && self.state != CellState::Starting {
                    StartupPhase::AwaitingStart
                } else {
                    for a in &mut self.plant.axes {
                        a.request = PowerRequest::Enable;
                    }
                    StartupPhase::Enabling
                }
            }
            // The operator's start (the cell in Starting) enables the drives and homes the
            // axes; until then they stay disabled.
            StartupPhase::AwaitingStart if self.state == CellState::Starting => {
                for a in &mut self.plant.axes {
                    a.request = PowerRequest::Enable;
                }
                StartupPhase::Enabling
            }
            StartupPhase::Enabling
                if self.plant.inputs_known && self.plant.axes.iter().all(AxisCtl::is_ready) =>
            {
                StartupPhase::Ready
            }
            p => p,
        };
        if next != self.startup {
            self.startup = next;
            self.outbox.event(now, EventKind::Startup(next));
        }
        self.homing(now);
    }

    /// A configured device that left operational on its own (CiA 301 error behaviour
    /// 0x1029: a heartbeat or bus-off error sends it to pre-operational) is started again,
    /// at most every 100 ms: the cell's resync waits for its PDOs.
    fn keep_operational(&mut self, i: usize, now: Timestamp, io: &mut impl CycleIo) {
        if !self.startup.is_operational() {
            return;
        }
        let n = &mut self.nodes[i];
        let out = matches!(
            n.heartbeat.state(),
            Some(NmtState::PreOperational | NmtState::Stopped)
        );
        let due = n
            .restarted_at
            .is_none_or(|t| now.saturating_since(t) >= Duration::from_millis(100));
        if n.phase == NodePhase::Configured && out && due && n.heartbeat.is_alive() {
            n.restarted_at = Some(now);
            let f = NmtMessage::to_node(NmtCommand::Start, n.node).encode();
            let bus = n.bus;
            self.counters.frames_out += 1;
            if !io.send(bus, &f) {
                self.counters.tx_refused += 1;
            }
        }
    }

    fn configure_node(&mut self, i: usize, now: Timestamp, io: &mut impl CycleIo) {
        let n = &mut self.nodes[i];
        if n.phase != NodePhase::Configuring {
            return;
        }
        if let Some(outcome) = n.sdo.take_outcome() {
            match outcome {
                Ok(_) => {
                    n.next_write += 1;
                    n.config_retries = 0;
                }
                // A device configured again mid-run (it rebooted) whose write went
                // unanswered — the bus went off, a frame was lost — gets the same write
                // again: giving up would leave the cell starting for ever (found by the
                // fuzzer, seed 862).
                Err(e)
                    if e.kind == takt_drivers::canopen::sdo::SdoErrorKind::Timeout
                        && self.startup == StartupPhase::Ready
                        && n.config_retries < CONFIG_RETRIES =>
                {
                    n.config_retries += 1;
                }
                Err(e) => {
                    let abort = e.sent_abort.map_or(0, |c| c.as_u32());
                    let abort = match e.kind {
                        takt_drivers::canopen::sdo::SdoErrorKind::ServerAbort(c) => c.as_u32(),
                        _ => abort,
                    };
                    n.phase = NodePhase::Failed;
                    let node = n.node.get();
                    self.outbox.event(
                        now,
                        EventKind::ConfigFailed {
                            node,
                            index: e.mux.index,
                            sub: e.mux.sub,
                            abort,
                        },
                    );
                    return;
                }
            }
        }
        if n.sdo.is_busy() {
            return;
        }
        match n.writes.get(n.next_write) {
            Some(w) => {
                let _ = n
                    .sdo
                    .start_download(w.mux, &w.data[..usize::from(w.len)], now);
            }
            None => {
                n.phase = NodePhase::Configured;
                let node = n.node.get();
                self.outbox.event(now, EventKind::Configured { node });
                if self.startup.is_operational() {
                    // A device configured again after a reboot: start it on its own.
                    let f = NmtMessage::to_node(NmtCommand::Start, self.nodes[i].node).encode();
                    let bus = self.nodes[i].bus;
                    self.counters.frames_out += 1;
                    if !io.send(bus, &f) {
                        self.counters.tx_refused += 1;
                    }
                }
            }
        }
    }

    /// Homing of each enabled, unreferenced axis: start (controlword bit 4), wait for
    /// "homing attained", then switch to CSP over SDO and confirm it in 0x6061 — the order
    /// CiA 402 requires for a mode change.
    fn homing(&mut self, now: Timestamp) {
        for a in 0..self.plant.axes.len() {
            let axis = &mut self.plant.axes[a];
            let n = &mut self.nodes[axis.node];
            match axis.homing {
                HomingPhase::Pending
                    if axis.power == PowerState::OperationEnabled
                        && axis.request == PowerRequest::Enable
                        && n.phase == NodePhase::Configured =>
                {
                    axis.homing = HomingPhase::Running;
                    axis.state = AxisState::Homing;
                }
                HomingPhase::Running => {
                    let sw = n.statusword;
                    if sw & Statusword::OPERATION_SPECIFIC_12.bits() != 0
                        && sw & Statusword::OPERATION_SPECIFIC_13.bits() == 0
                        && !n.sdo.is_busy()
                    {
                        let _ = n.sdo.start_download(
                            Multiplexer::new(0x6060, 0),
                            &[Mode::CyclicSyncPosition.to_i8() as u8],
                            now,
                        );
                        axis.homing = HomingPhase::SwitchingMode;
                    }
                }
                HomingPhase::SwitchingMode => match n.sdo.take_outcome() {
                    Some(Ok(_)) => {
                        let _ = n.sdo.start_upload(Multiplexer::new(0x6061, 0), now);
                        axis.homing = HomingPhase::ConfirmingMode;
                    }
                    Some(Err(_)) => axis.homing = HomingPhase::Running,
                    None => {}
                },
                HomingPhase::ConfirmingMode => match n.sdo.take_outcome() {
                    Some(Ok(SdoDone::Uploaded { .. }))
                        if n.sdo.data().first()
                            == Some(&(Mode::CyclicSyncPosition.to_i8() as u8)) =>
                    {
                        axis.hold_here();
                        axis.homing = HomingPhase::Homed;
                        axis.state = AxisState::Standstill;
                        self.outbox.event(now, EventKind::Homed { axis: a as u16 });
                    }
                    Some(_) => {
                        let _ = n.sdo.start_upload(Multiplexer::new(0x6061, 0), now);
                    }
                    None => {}
                },
                _ => {}
            }
        }
    }

    /// Inputs from the I/O nodes' images.
    fn update_io(&mut self) {
        let mut known = true;
        for n in &self.nodes {
            if n.kind == DeviceKind::Io && n.last_tpdo.is_none() {
                known = false;
            }
        }
        let mut bits = 0u64;
        for (i, input) in self.program.inputs.iter().enumerate() {
            let Some(n) = self.nodes.get(input.device.index()) else {
                continue;
            };
            let raw = n.inputs >> input.bit & 1 == 1;
            if raw != input.active_low {
                bits |= 1 << i;
            }
        }
        self.plant.inputs = bits;
        self.plant.inputs_known = known;
    }

    /// I/O node `i` was lost (heartbeat, reboot): if the pass switched outputs since its
    /// inputs were last heard, it acted blind — a vacuum released while nobody could see
    /// whether the part was still there — and what it did is uncertain (found by the
    /// fuzzer, seed 863: a part fell while the I/O node was off the bus, the pass released
    /// the vacuum at the place station and counted it).
    fn note_blind_outputs(&mut self, i: usize) {
        if self.nodes[i].kind == DeviceKind::Io
            && self.program.resync.persist.is_some()
            && !self.sequencer.is_idle()
            && self.plant.outputs != self.outputs_at_inputs
        {
            self.persist_blind = true;
        }
    }

    /// Keeps `persist_now` (see there). A pass under way whose `persist` is lost by an
    /// input — the part fell off the nozzle while the cell ran — cannot go on as if it
    /// were there: the cell holds with `hold_message`, and the operator's reset abandons
    /// the pass (found by the fuzzer: a part torn off by a hard stop was counted).
    fn watch_persist(&mut self, now: Timestamp) {
        let Some(cond) = self.program.resync.persist else {
            return;
        };
        if !self.plant.inputs_known {
            return;
        }
        let by_input = self.plant.outputs == self.persist_outputs;
        self.persist_outputs = self.plant.outputs;
        if self.program.eval(cond, &self.plant) {
            self.persist_now = true;
            self.persist_failed = None;
            return;
        }
        let (since, by_input) = *self.persist_failed.get_or_insert((now, by_input));
        if !self.persist_now || now.saturating_since(since) < PERSIST_DEBOUNCE {
            return;
        }
        self.persist_now = false;
        let running = matches!(
            self.state,
            CellState::Execute | CellState::Holding | CellState::Held | CellState::Stopping
        );
        if by_input && running && !self.sequencer.is_idle() && !self.resume_held {
            self.resume_held = true;
            self.outbox
                .event(now, EventKind::Resync(ResyncEvent::PersistLost));
            if self.state != CellState::Held {
                self.set_state(CellState::Holding, now);
            }
        }
    }

    /// Everything that trips the cell, checked every cycle.
    fn safety(&mut self, now: Timestamp) {
        if let Some(e) = self.estop
            && self.plant.inputs_known
            && !self.plant.input(e)
        {
            self.raise(TripCause::EStopChain, now);
        }
        if self.startup != StartupPhase::Ready {
            return;
        }
        for a in 0..self.plant.axes.len() {
            let axis = &self.plant.axes[a];
            let (fault, fe, moving) = (
                axis.power.is_fault(),
                axis.following_error_syncs > self.cfg.following_error_syncs,
                axis.state == AxisState::Moving,
            );
            if fault && !matches!(self.state, CellState::Clearing) {
                self.raise(TripCause::DriveFault { axis: a as u16 }, now);
            }
            if fe {
                self.raise(TripCause::FollowingError { axis: a as u16 }, now);
            }
            if moving && let Some(il) = axis_blocked(&self.program, &self.plant, AxisId(a as u16)) {
                self.raise(TripCause::Interlock { interlock: il }, now);
            }
        }
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            // Once, as the feedback goes stale: a device still silent while the cell
            // recovers does not trip it again and again.
            if n.sync_tpdo && n.syncs_without_tpdo == self.cfg.stale_syncs + 1 {
                let node = n.node.get();
                self.raise(TripCause::StaleFeedback { node }, now);
            }
        }
    }

    /// Latches a trip: the cell aborts in the cause's stop category. A trip while already
    /// aborting or aborted keeps the first cause.
    fn raise(&mut self, cause: TripCause, now: Timestamp) {
        if matches!(self.state, CellState::Aborting | CellState::Aborted) {
            // A stop that removes power wins over a category 2 stop, which keeps the
            // drives enabled: an e-stop while the cell stands after a sequence fault
            // takes the power away as its category says (found by the fuzzer, seed 420).
            let category = cause.category(&self.program.stop_categories);
            if self.trip_category == 2 && category < 2 {
                self.counters.trips += 1;
                self.trip = Some(cause);
                self.trip_category = category;
                self.auto_resume = false;
                self.outbox.event(now, EventKind::Trip { cause, category });
                for a in &mut self.plant.axes {
                    a.request = if category == 0 {
                        PowerRequest::Disable
                    } else {
                        PowerRequest::QuickStopThenDisable
                    };
                    a.belt = BeltCommand::Stop;
                    if a.state != AxisState::Disabled {
                        a.state = AxisState::ErrorStop;
                    }
                }
                self.set_state(CellState::Aborting, now);
            }
            return;
        }
        if self.state == CellState::Clearing {
            // The cause is still there: back to Aborted, without a new stop.
            self.trip = Some(cause);
            self.set_state(CellState::Aborted, now);
            return;
        }
        let category = cause.category(&self.program.stop_categories);
        self.counters.trips += 1;
        self.trip = Some(cause);
        self.trip_category = category;
        self.outbox.event(now, EventKind::Trip { cause, category });
        // A trip that interrupts a running pass takes what `persist` says now; a trip
        // while the cell recovers from an earlier one keeps what that one found.
        let running = matches!(
            self.state,
            CellState::Execute | CellState::Holding | CellState::Held | CellState::Stopping
        );
        let persists = self.program.resync.persist.is_some() && self.persist_now;
        self.persist_at_trip = persists || (!running && self.persist_at_trip);
        self.auto_resume = cause.auto_resumes(&self.program);
        for a in &mut self.plant.axes {
            let (belief, standing) = if a.recovery.take().is_some() {
                // Interrupted on its way back: it still belongs where the pass left it.
                (a.resync.believed_counts, true)
            } else {
                (a.believed_counts(), a.stands_idle())
            };
            a.resync.arm(belief, standing);
        }
        self.sequencer.interrupt(&mut self.plant);
        let period = self.sync_period_s.first().copied().unwrap_or(0.002);
        // Only a running cell commands its belts: a trip while the cell starts again (the
        // belts still stopped from the last trip) keeps what they are to resume (found by
        // the fuzzer: the infeed stayed stopped and no part came any more).
        let running = matches!(
            self.state,
            CellState::Execute | CellState::Holding | CellState::Held | CellState::Stopping
        );
        for a in &mut self.plant.axes {
            if running {
                a.resume_belt = match a.belt {
                    BeltCommand::Run { .. } => a.belt,
                    _ => BeltCommand::Stop,
                };
            }
            a.belt = BeltCommand::Stop;
            a.following_error_syncs = 0;
            match category {
                0 => a.request = PowerRequest::Disable,
                1 => a.request = PowerRequest::QuickStopThenDisable,
                _ => a.begin_ramp_stop(period),
            }
            if category < 2 && a.state != AxisState::Disabled {
                a.state = AxisState::ErrorStop;
            }
        }
        self.start_requested = false;
        self.set_state(CellState::Aborting, now);
    }

    fn set_state(&mut self, to: CellState, now: Timestamp) {
        if to != self.state {
            self.outbox.event(
                now,
                EventKind::CellState {
                    from: self.state,
                    to,
                },
            );
            self.state = to;
            self.state_since = now;
        }
    }

    /// The PackML state machine and the sequencer.
    fn run_cell(&mut self, now: Timestamp) {
        let in_state = now.saturating_since(self.state_since);
        match self.state {
            CellState::Stopped => {}
            CellState::Starting => {
                for a in &mut self.plant.axes {
                    a.request = PowerRequest::Enable;
                }
                if self.startup != StartupPhase::Ready || !self.resync(now) {
                    return;
                }
                if self.plant.axes.iter().all(AxisCtl::is_ready) {
                    let idle = self.sequencer.is_idle();
                    if !idle
                        && self.persist_at_trip
                        && self.persist_now
                        && self.persist_failed.is_some()
                    {
                        // `persist` fails, but not yet for long enough to tell a lost
                        // part from a chattering switch: decide once it has settled.
                        return;
                    }
                    // Held before the trip, or what the pass had done is gone: the pass
                    // must not resume (a trip while held must not resume it either).
                    let gone = self.persist_at_trip && !self.persist_now;
                    if !idle && (self.resume_held || gone || self.persist_blind) {
                        // What the interrupted pass had done is gone (the part left the
                        // nozzle): resuming would count a part that is not there.
                        self.persist_at_trip = false;
                        self.persist_blind = false;
                        self.resume_held = true;
                        for a in &mut self.plant.axes {
                            a.hold_here();
                            a.state = AxisState::Standstill;
                        }
                        self.outbox
                            .event(now, EventKind::Resync(ResyncEvent::ResumeHeld));
                        self.set_state(CellState::Held, now);
                        return;
                    }
                    self.persist_at_trip = false;
                    self.persist_blind = false;
                    for a in &mut self.plant.axes {
                        // An axis standing in position keeps its set-point (a teach point, or
                        // where a recovery move put it): adopting an actual a few counts off
                        // would refuse the next move on a `z >= z_safe` interlock (found by
                        // the fuzzer).
                        let belief = a.resync.believed_counts;
                        if !a.conveyor
                            && a.resync.phase == ResyncPhase::Done
                            && a.resync.standing_at_trip
                            && (a.actual_counts - belief).abs() <= a.in_position_counts
                        {
                            // Resynced where the pass left it while it stood, within its
                            // in-position window: it goes on from that set-point, which the
                            // drive holds (a brake that gripped a few counts low must not
                            // make Z miss `z >= z_safe`).
                            a.demand_counts = belief as f64;
                            a.previous_demand_counts = a.demand_counts;
                        } else if (a.actual_counts as f64 - a.demand_counts).abs()
                            > a.in_position_counts as f64
                        {
                            a.hold_here();
                        }
                        a.state = AxisState::Standstill;
                        if a.conveyor {
                            a.belt = a.resume_belt;
                            if a.belt != BeltCommand::Stop {
                                a.state = AxisState::Moving;
                            }
                        }
                    }
                    self.sequencer.begin();
                    self.set_state(CellState::Execute, now);
                }
            }
            CellState::Execute | CellState::Stopping => self.run_sequence(now, Gate::Run),
            CellState::Holding => {
                self.run_sequence(now, Gate::Hold);
                if self.sequencer.at_boundary(&self.program) {
                    self.set_state(CellState::Held, now);
                }
            }
            CellState::Held => {
                let gate = if self.single_step {
                    Gate::Step
                } else {
                    Gate::Hold
                };
                self.run_sequence(now, gate);
                if self.single_step && self.sequencer.at_boundary(&self.program) {
                    self.single_step = false;
                }
            }
            CellState::Aborting => {
                let stopped = self.plant.axes.iter().all(|a| match self.trip_category {
                    0 | 1 => matches!(
                        a.power,
                        PowerState::SwitchOnDisabled
                            | PowerState::NotReadyToSwitchOn
                            | PowerState::Fault
                            | PowerState::ReadyToSwitchOn
                    ),
                    _ => a.ramp_velocity_counts_s == 0.0 && a.is_standing(),
                });
                if stopped || in_state > self.cfg.abort_timeout {
                    for a in &mut self.plant.axes {
                        if self.trip_category < 2 {
                            a.request = PowerRequest::Disable;
                        }
                        a.hold_here();
                    }
                    self.set_state(CellState::Aborted, now);
                }
            }
            CellState::Aborted => {
                if self.resumes_by_itself() {
                    self.auto_resumes += 1;
                    self.outbox
                        .event(now, EventKind::Resync(ResyncEvent::AutoResume));
                    self.set_state(CellState::Clearing, now);
                } else if self.auto_resume && self.auto_resumes >= AUTO_RESUME_LIMIT {
                    // The fault keeps coming back: the operator decides.
                    self.auto_resume = false;
                }
            }
            CellState::Clearing => {
                let chain_ok = self.estop.is_none_or(|e| self.plant.input(e));
                if !chain_ok || self.estop_commanded {
                    self.set_state(CellState::Aborted, now);
                    return;
                }
                for a in &mut self.plant.axes {
                    if a.power.is_fault() {
                        a.fault_reset = true;
                    }
                    if a.state == AxisState::ErrorStop || a.state == AxisState::Stopping {
                        a.state = AxisState::Disabled;
                    }
                }
                let faults = self.plant.axes.iter().any(|a| a.power.is_fault());
                if !faults && in_state >= Duration::from_millis(10) {
                    self.trip = None;
                    self.set_state(CellState::Stopped, now);
                    if self.auto_resume {
                        self.auto_resume = false;
                        self.command(Command::Start, now);
                    }
                } else if in_state > self.cfg.abort_timeout {
                    self.set_state(CellState::Aborted, now);
                }
            }
        }
    }

    fn run_sequence(&mut self, now: Timestamp, gate: Gate) {
        let passes = self.sequencer.passes();
        let outcome =
            self.sequencer
                .step(&self.program, &mut self.plant, now, gate, &mut self.outbox);
        if self.sequencer.passes() != passes {
            self.auto_resumes = 0;
        }
        match outcome {
            Outcome::Running => {}
            Outcome::PassEndedStop => self.set_state(CellState::Stopped, now),
            Outcome::Trip(cause) => self.raise(cause, now),
        }
    }

    /// Controlwords, set-points, belts; then every frame due.
    fn write(&mut self, now: Timestamp, io: &mut impl CycleIo) {
        if self.nmt_start_pending {
            self.nmt_start_pending = false;
            let f = NmtMessage::to_all(NmtCommand::Start).encode();
            for b in 0..self.node_index.len() {
                self.counters.frames_out += 1;
                if !io.send(b, &f) {
                    self.counters.tx_refused += 1;
                }
            }
        }
        let operational = self.startup.is_operational();
        // SYNC goes out every k cycles, k = SYNC period / cycle period (checked in `new`):
        // the schedule runs on the cycle's slot, `now` less the wake-up latency, so a
        // cycle that woke early or late within its period neither skips nor doubles a SYNC
        // and the set-points step by exactly one SYNC period. In simulation `now` is the
        // slot itself.
        let period_ns = u64::try_from(self.cfg.period.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let slot = Timestamp::from_nanos(now.as_nanos() - now.as_nanos() % period_ns);
        if operational {
            self.take_outputs();
        }
        for b in 0..self.sync.len() {
            let sync = if operational {
                self.sync[b].poll(slot)
            } else {
                None
            };
            let period_s = self.sync_period_s[b];
            let lead = Duration::from_secs_f64(period_s);
            if sync.is_some() {
                self.counters.syncs += 1;
                self.on_sync(b, slot + lead, period_s);
            }
            if operational {
                self.send_rpdos(b, now, sync.is_some(), true, io);
            }
            if let Some(f) = sync {
                self.counters.frames_out += 1;
                self.sync_sent_at[b] = Some(now);
                if !io.send(b, &f) {
                    self.counters.tx_refused += 1;
                }
            }
            if operational {
                self.send_rpdos(b, now, sync.is_some(), false, io);
            }
            if let Some(f) = self.heartbeat[b].poll(now) {
                self.counters.frames_out += 1;
                if !io.send(b, &f) {
                    self.counters.tx_refused += 1;
                }
            }
        }
        // SDO requests (configuration, mode switches, resync reads) after the SYNC too:
        // they are answered whenever, and must not delay it.
        for n in &mut self.nodes {
            if let Some(f) = n.sdo.poll(now) {
                self.counters.frames_out += 1;
                if !io.send(n.bus, &f) {
                    self.counters.tx_refused += 1;
                }
            }
        }
    }

    /// Once per SYNC of bus `b`: the following-error check against the set-point the drive
    /// should have reached, then the next set-point (for `due`, one SYNC ahead: the drive
    /// interpolates to it over the coming SYNC period).
    fn on_sync(&mut self, b: usize, due: Timestamp, period_s: f64) {
        for &i in &self.bus_nodes[b] {
            let n = &mut self.nodes[i];
            if n.sync_tpdo && n.phase == NodePhase::Configured {
                n.syncs_without_tpdo += 1;
            }
        }
        let aborting = self.state == CellState::Aborting;
        for &a in &self.bus_axes[b] {
            let axis = &mut self.plant.axes[a];
            if axis.conveyor {
                belt(axis, period_s);
                continue;
            }
            if !axis.is_ready() {
                axis.hold_here();
                axis.following_error_syncs = 0;
                continue;
            }
            // A sample from before the last SYNC (its TPDO is late or lost) is compared
            // with nothing: the set-point it answers is gone. Stale feedback has its own
            // watchdog.
            let fresh = self.nodes[axis.node].syncs_without_tpdo <= 1;
            let error = axis.following_error_counts_now();
            if fresh && error.abs() > axis.following_error_counts {
                axis.following_error_syncs += 1;
                // Once, as it crosses the limit (the trip follows in the safety pass): by
                // how much, for whoever reads the journal.
                if axis.following_error_syncs == self.cfg.following_error_syncs + 1 {
                    self.outbox.event(
                        due,
                        EventKind::FollowingError {
                            axis: a as u16,
                            error_counts: error,
                            window_counts: axis.following_error_counts,
                            syncs: axis.following_error_syncs,
                        },
                    );
                }
            } else if fresh {
                axis.following_error_syncs = 0;
            }
            axis.previous_demand_counts = axis.demand_counts;
            if let Some((plan, t0_s)) = axis.recovery.as_mut() {
                // A recovery move back to where the interrupted pass left the axis; it ends
                // when the drive stands there.
                let due_s = due.as_micros() as f64 / 1e6;
                if t0_s.is_nan() {
                    *t0_s = due_s;
                }
                let t = due_s - *t0_s;
                axis.demand_counts = plan.sample(0, t).position;
                if plan.is_done(t)
                    && (axis.actual_counts as f64 - axis.demand_counts).abs()
                        <= axis.in_position_counts as f64
                {
                    axis.recovery = None;
                }
            } else if let Some((thread, i)) = axis.move_owner {
                if let Some(p) = self.sequencer.setpoint(thread, i, due) {
                    axis.demand_counts = p;
                }
            } else if axis.ramp_velocity_counts_s != 0.0 {
                axis.ramp_step(period_s);
            } else if aborting && axis.state == AxisState::Stopping && axis.is_standing() {
                axis.state = AxisState::Standstill;
            }
        }
    }

    /// The RPDOs of bus `b` due this cycle: the synchronous ones (`synchronous_pass`, sent
    /// before the SYNC they act on; the process image is taken then, once per cycle), or
    /// the event-driven ones (sent after the SYNC, so that how many of them change in a
    /// cycle never moves the SYNC within it: the drives see a SYNC as regular as the
    /// cycle's slot, whatever else the bus carries).
    fn send_rpdos(
        &mut self,
        b: usize,
        now: Timestamp,
        sync: bool,
        synchronous_pass: bool,
        io: &mut impl CycleIo,
    ) {
        if synchronous_pass {
            self.take_process_image(b);
        }
        for &i in &self.bus_nodes[b] {
            let n = &mut self.nodes[i];
            if n.phase != NodePhase::Configured {
                continue;
            }
            for k in 0..n.rpdos {
                let layout = &n.rpdo[k];
                if layout.synchronous != synchronous_pass {
                    continue;
                }
                let (last_at, last) = n.rpdo_sent[k];
                // Between SYNCs a synchronous RPDO goes out only with a new controlword;
                // when the controlword fills its first two bytes, that shows without packing
                // the rest (this pass runs for every drive in every cycle).
                if layout.synchronous
                    && !sync
                    && layout.count > 0
                    && layout.objects[0] == (0x6040, 0, 16)
                    && n.controlword.to_le_bytes() == [last[0], last[1]]
                {
                    continue;
                }
                let mut data = [0u8; 8];
                let len = pack(layout, n, &mut data);
                // A new controlword (a quick stop, a disable) goes out in this cycle, past
                // the SYNC grid and the inhibit time: a stop must not wait.
                let command_changed = layout.objects[..usize::from(layout.count)]
                    .first()
                    .is_some_and(|o| o.0 == 0x6040)
                    && data[..2] != last[..2];
                let due = if command_changed {
                    true
                } else if layout.synchronous {
                    sync
                } else {
                    // On change, no sooner than the inhibit time; refreshed every 100 ms so
                    // a lost frame heals.
                    let since = now.saturating_since(last_at);
                    (last != data && since >= Duration::from_micros(u64::from(layout.inhibit_us)))
                        || since >= Duration::from_millis(100)
                };
                if due {
                    let f = frame(layout.cob_id, &data[..len]);
                    self.counters.frames_out += 1;
                    if io.send(b, &f) {
                        n.rpdo_sent[k] = (now, data);
                    } else {
                        self.counters.tx_refused += 1;
                    }
                }
            }
        }
    }

    /// This cycle's I/O nodes' outputs from the commanded outputs (once per cycle, before
    /// the buses' process images).
    fn take_outputs(&mut self) {
        for n in &mut self.nodes {
            if n.kind == DeviceKind::Io {
                n.outputs = 0;
            }
        }
        for (i, o) in self.program.outputs.iter().enumerate() {
            if self.plant.outputs >> i & 1 == 1
                && let Some(n) = self.nodes.get_mut(o.device.index())
            {
                n.outputs |= 1 << o.bit;
            }
        }
    }

    /// This cycle's process image of bus `b`'s drives: controlword and set-points from
    /// each one's axis.
    fn take_process_image(&mut self, b: usize) {
        for &i in &self.bus_nodes[b] {
            let n = &mut self.nodes[i];
            if n.phase != NodePhase::Configured {
                continue;
            }
            if let Some(a) = n.axis {
                let axis = &mut self.plant.axes[a];
                n.controlword = axis.controlword();
                n.target_position_counts = round_i32(axis.demand_counts);
                n.target_velocity_counts_s = match axis.belt {
                    BeltCommand::Stop => 0,
                    BeltCommand::Run { velocity_counts_s }
                    | BeltCommand::Index {
                        velocity_counts_s, ..
                    } => round_i32(velocity_counts_s),
                };
            }
        }
    }

    fn snapshot(&mut self, now: Timestamp) {
        let s = &mut self.status;
        s.at = now;
        s.cycles = self.counters.cycles;
        s.cell = self.state;
        s.startup = self.startup;
        s.instr = self.sequencer.main_pc();
        for (slot, a) in s.axis.iter_mut().zip(&self.plant.axes) {
            *slot = AxisStatus {
                state: a.state,
                demand_counts: a.demand_counts,
                actual_counts: a.actual_counts,
                following_error_counts: a.following_error_counts_now(),
                power: a.power,
                homed: a.conveyor || a.homing == HomingPhase::Homed,
            };
        }
        for (slot, n) in s.node.iter_mut().zip(&self.nodes) {
            *slot = NodeStatus {
                nmt: n.heartbeat.state(),
                alive: n.heartbeat.is_alive(),
            };
        }
        for (slot, c) in s.counters.iter_mut().zip(&self.plant.counters) {
            *slot = *c;
        }
        s.estop_latched = self.estop_commanded
            || matches!(
                (self.state, self.trip),
                (
                    CellState::Aborting | CellState::Aborted | CellState::Clearing,
                    Some(TripCause::EStopChain | TripCause::EStopCommand)
                )
            );
        s.dropped_status = self.outbox.dropped_status();
        s.inputs = self.plant.inputs;
        s.outputs = self.plant.outputs;
        s.parts = self.plant.counters.first().copied().unwrap_or(0);
        s.passes = self.sequencer.passes();
        s.tx_refused = self.counters.tx_refused;
        s.dropped_events = self.outbox.dropped_events();
        s.trip = self.trip;
        // Straight from the controller's own snapshot: a copy of it is kilobytes.
        self.outbox.status(&self.status);
    }
}

/// A line's belts run while the cell runs: at the first start of a pass each conveyor the
/// sequence runs starts at its run speed, so the first part can arrive.
fn first_start_belts(program: &Program, axes: &mut [AxisCtl]) {
    for a in axes.iter_mut() {
        a.resume_belt = BeltCommand::Stop;
    }
    for i in &program.code {
        if let takt_sequences::program::Instr::ConveyorRun {
            axis,
            velocity_counts_s,
            ..
        } = *i
            && let Some(a) = axes.get_mut(axis.index())
            && a.resume_belt == BeltCommand::Stop
        {
            a.resume_belt = BeltCommand::Run { velocity_counts_s };
        }
    }
}

/// A conveyor's target velocity for the coming SYNC period: an index ends at the point
/// from which the drive's profile deceleration stops the belt on the target.
fn belt(axis: &mut AxisCtl, period_s: f64) {
    if let BeltCommand::Index {
        target_counts,
        velocity_counts_s: v,
    } = axis.belt
    {
        let remaining = (target_counts - axis.actual_counts) as f64 * v.signum();
        let braking = v * v / (2.0 * axis.limits.max_acceleration.max(1.0));
        // Two SYNC periods of latency: the RPDO acts a period later, the feedback is a
        // period old.
        if remaining <= braking + v.abs() * 2.0 * period_s {
            axis.belt = BeltCommand::Stop;
        }
    }
}

fn frame(id: u16, data: &[u8]) -> Frame {
    let n = data.len().min(8);
    // COB-IDs come from 11-bit PDO identifiers and `n` is at most 8, so neither can fail;
    // the empty SYNC-like frame is only a placeholder for the impossible case.
    takt_drivers::can::CanId::standard(id)
        .and_then(|cid| Frame::new(cid, &data[..n]).ok())
        .unwrap_or(Frame::standard(id, []))
}

/// The little-endian value of `bits` (whole bytes, at most 64) at `bit`; bytes past the
/// end of `data` read as 0.
fn read_bits(data: &[u8], bit: usize, bits: usize) -> u64 {
    let mut le = [0u8; 8];
    let from = data.get(bit / 8..).unwrap_or(&[]);
    let n = (bits / 8).min(8).min(from.len());
    le[..n].copy_from_slice(&from[..n]);
    u64::from_le_bytes(le)
}

fn unpack(layout: &PdoLayout, data: &[u8], n: &mut NodeCtl) {
    let mut bit = 0usize;
    for &(index, sub, bits) in &layout.objects[..usize::from(layout.count)] {
        let bits = usize::from(bits);
        let v = read_bits(data, bit, bits);
        match (index, sub) {
            (0x6041, 0) => n.statusword = v as u16,
            (0x6064, 0) => n.position_counts = v as u32 as i32,
            (0x6000, 1) => n.inputs = v as u8,
            _ => {}
        }
        bit += bits;
    }
}

fn pack(layout: &PdoLayout, n: &NodeCtl, out: &mut [u8; 8]) -> usize {
    let mut bit = 0usize;
    for &(index, sub, bits) in &layout.objects[..usize::from(layout.count)] {
        let v: u64 = match (index, sub) {
            (0x6040, 0) => u64::from(n.controlword),
            (0x607A, 0) => u64::from(n.target_position_counts as u32),
            (0x60FF, 0) => u64::from(n.target_velocity_counts_s as u32),
            (0x6200, 1) => u64::from(n.outputs),
            _ => 0,
        };
        // Little-endian, whole bytes; what lies past the 8 bytes of a PDO is cut off.
        if let Some(to) = out.get_mut(bit / 8..) {
            let n = (usize::from(bits) / 8).min(8).min(to.len());
            to[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        bit += usize::from(bits);
    }
    bit.div_ceil(8).min(8)
}

/// Every SDO write that configures device `i`, in order: heartbeat producer, the
/// controller's heartbeat in 0x1016 with 0x6007 set to fault, quick stop option, modes,
/// soft limits, following-error window, homing parameters, then each PDO in CiA 301 order
/// and the unused PDOs switched off.
/// 0x60C2 for a SYNC period of `us` microseconds: (value, index) with period = value ×
/// 10^index s, the coarsest unit that states it exactly in a byte; None if none does.
fn interpolation_period(us: u32) -> Option<(u8, i8)> {
    [(1000, -3), (100, -4), (10, -5), (1, -6)]
        .into_iter()
        .find_map(|(unit, index)| {
            let value = u8::try_from(us / unit).ok()?;
            (us % unit == 0 && value > 0).then_some((value, index))
        })
}

fn configuration(
    program: &Program,
    i: usize,
    n: &mut NodeCtl,
) -> Result<Vec<SdoWrite>, SetupError> {
    let d = &program.devices[i];
    let bad = |e: String| SetupError::Pdo(d.name.clone(), e);
    let mut w = Vec::new();
    w.push(SdoWrite::new(0x1017, 0, u32::from(d.heartbeat_ms), 2));
    if d.kind != DeviceKind::Io {
        if let Some(bus) = program.buses.get(d.bus.index()) {
            let consumer_ms =
                (f64::from(bus.controller_heartbeat_ms) * HEARTBEAT_MARGIN).round() as u32;
            let entry = u32::from(bus.controller_node) << 16 | consumer_ms.min(0xFFFF);
            w.push(SdoWrite::new(0x1016, 1, entry, 4));
        }
        w.push(SdoWrite::new(0x6007, 0, ABORT_CONNECTION_FAULT, 2));
        w.push(SdoWrite::new(0x605A, 0, QUICK_STOP_OPTION, 2));
        if let Some(a) = program.axes.iter().find(|a| a.device.index() == i) {
            if a.conveyor {
                let acc = a.max_acceleration_counts_s2.round() as u32;
                w.push(SdoWrite::new(0x6083, 0, acc, 4));
                w.push(SdoWrite::new(0x6084, 0, acc, 4));
                w.push(SdoWrite::new(0x60FF, 0, 0, 4));
                w.push(SdoWrite::new(
                    0x6060,
                    0,
                    Mode::ProfileVelocity.to_i8() as u8 as u32,
                    1,
                ));
            } else {
                w.push(SdoWrite::new(
                    0x607D,
                    1,
                    a.min_position_counts as i32 as u32,
                    4,
                ));
                w.push(SdoWrite::new(
                    0x607D,
                    2,
                    a.max_position_counts as i32 as u32,
                    4,
                ));
                w.push(SdoWrite::new(0x6065, 0, a.following_error_counts as u32, 4));
                // The interpolation time period: the drive moves to each set-point over one
                // SYNC period as configured, not as the last two SYNCs happened to arrive.
                if let Some((value, index)) = program
                    .buses
                    .get(d.bus.index())
                    .and_then(|b| interpolation_period(b.sync_period_us))
                {
                    w.push(SdoWrite::new(0x60C2, 1, u32::from(value), 1));
                    w.push(SdoWrite::new(0x60C2, 2, index as u8 as u32, 1));
                }
                if a.homing_method != 0 {
                    w.push(SdoWrite::new(0x6098, 0, a.homing_method as u8 as u32, 1));
                    w.push(SdoWrite::new(
                        0x607C,
                        0,
                        a.homing_offset_counts as i32 as u32,
                        4,
                    ));
                    w.push(SdoWrite::new(
                        0x6060,
                        0,
                        Mode::Homing.to_i8() as u8 as u32,
                        1,
                    ));
                } else {
                    w.push(SdoWrite::new(
                        0x6060,
                        0,
                        Mode::CyclicSyncPosition.to_i8() as u8 as u32,
                        1,
                    ));
                }
            }
        }
    }
    let mut used = [[false; 4]; 2];
    for pdo in &d.pdos {
        let number = u16::from(pdo.number);
        let (id, dir) = match pdo.direction {
            Direction::Rpdo => (PdoId::rpdo(number), 0),
            Direction::Tpdo => (PdoId::tpdo(number), 1),
        };
        let id = id.map_err(|e| bad(e.to_string()))?;
        let entries: Vec<MappingEntry> = pdo
            .map
            .iter()
            .map(|m| MappingEntry::new(m.index, m.sub, m.bits))
            .collect();
        let mapping = PdoMapping::new(&entries).map_err(|e| bad(e.to_string()))?;
        let (transmission, inhibit_us, timer_ms, synchronous) = match pdo.transmission {
            Transmission::Sync { every } => (
                TransmissionType::SynchronousCyclic(every.max(1)),
                0,
                0,
                true,
            ),
            Transmission::Event {
                inhibit_us,
                event_timer_ms,
            } => (
                TransmissionType::EventProfile,
                inhibit_us.unwrap_or(0),
                event_timer_ms.unwrap_or(0),
                false,
            ),
        };
        let cob_id = pdo.cob_id(d.node);
        // Inhibit time and event timer only on TPDOs: many devices refuse them on RPDOs.
        let is_tpdo = dir == 1;
        let comm = PdoCommParams {
            cob_id: PdoCobId::standard(cob_id),
            transmission,
            inhibit_100us: (is_tpdo && inhibit_us > 0).then_some((inhibit_us / 100) as u16),
            event_timer_ms: (is_tpdo && timer_ms > 0).then_some(timer_ms as u16),
        };
        let (steps, count) = pdo_config_steps(id, &PdoConfig { comm, mapping });
        for s in &steps[..count] {
            let mut data = [0u8; 4];
            let len = s.data().len().min(4);
            data[..len].copy_from_slice(&s.data()[..len]);
            w.push(SdoWrite {
                mux: s.mux,
                data,
                len: len as u8,
            });
        }
        let mut layout = PdoLayout {
            cob_id,
            objects: [(0, 0, 0); 8],
            count: pdo.map.len().min(8) as u8,
            synchronous,
            inhibit_us,
        };
        for (slot, m) in layout.objects.iter_mut().zip(&pdo.map) {
            *slot = (m.index, m.sub, m.bits);
        }
        if let Some(u) = used[dir].get_mut(usize::from(pdo.number).saturating_sub(1)) {
            *u = true;
        }
        if is_tpdo {
            n.tpdo[n.tpdos.min(3)] = layout;
            n.tpdos = (n.tpdos + 1).min(4);
            n.sync_tpdo |= synchronous;
        } else {
            n.rpdo[n.rpdos.min(3)] = layout;
            n.rpdos = (n.rpdos + 1).min(4);
        }
    }
    // The PDOs the layout does not use are switched off, so a device's factory PDOs do
    // not load the bus.
    for (dir, base, cob) in [(0, 0x1400u16, cob::RPDO), (1, 0x1800u16, cob::TPDO)] {
        for k in 0..4 {
            if !used[dir][k] {
                let id = PdoCobId::standard(cob[k] + u16::from(d.node)).with_valid(false);
                w.push(SdoWrite::new(base + k as u16, 1, id.to_u32(), 4));
            }
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::interpolation_period;

    #[test]
    fn the_interpolation_period_is_stated_in_the_coarsest_exact_unit() {
        assert_eq!(interpolation_period(2_000), Some((2, -3)));
        assert_eq!(interpolation_period(10_000), Some((10, -3)));
        assert_eq!(interpolation_period(500), Some((5, -4)));
        assert_eq!(interpolation_period(250), Some((25, -5)));
        assert_eq!(interpolation_period(1_250), Some((125, -5)));
        assert_eq!(interpolation_period(255), Some((255, -6)));
        // 300 ms fits no unit in a byte; 0 is no period.
        assert_eq!(interpolation_period(300_000), None);
        assert_eq!(interpolation_period(0), None);
    }
}
