//! What leaves the real-time cycle: events and status snapshots, as small fixed-size `Copy`
//! records through bounded channels. The cycle only ever `try_send`s; a full queue is
//! counted ([`Outbox::dropped_events`]), never waited on. A non-RT thread turns events into
//! `tracing` output with [`describe`], where names are looked up in the program.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use takt_drivers::can::{BusEvent, BusState, BusStateEvent, Frame, Timestamp};
use takt_drivers::canopen::NmtState;
use takt_sequences::Program;

use crate::axis::{AxisState, PowerState};
use crate::commands::Command;
use crate::cycle::CycleIo;
use crate::safety::{CellState, TripCause};

/// Axes a status snapshot carries (the largest cell the benchmarks run has 64).
pub const STATUS_AXES: usize = 64;
/// Devices a status snapshot carries (the first ones of the cell file; the 64-axis
/// benchmark cell fits).
pub const STATUS_NODES: usize = 128;
/// Buses a status snapshot carries.
pub const STATUS_BUSES: usize = 8;
/// Production counters a status snapshot carries (the first ones of the sequence).
pub const STATUS_COUNTERS: usize = 16;

/// Start-up progress, shown while the cell is not yet ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartupPhase {
    /// NMT reset communication sent; waiting for every device's boot-up.
    #[default]
    AwaitingBoot,
    /// Writing every device's configuration over SDO.
    Configuring,
    /// NMT start sent, every device operational, the drives disabled: waiting for an
    /// operator's start to enable the drives and home the axes (see
    /// [`crate::cycle::CycleConfig::motion_waits_for_start`]).
    AwaitingStart,
    /// Enabling the drives and homing the axes. A drive held in STO keeps the cell here,
    /// visibly, until it can enable.
    Enabling,
    /// Every device configured, every axis enabled and homed.
    Ready,
    /// A device did not boot or refused its configuration: see the events.
    Failed,
}

impl StartupPhase {
    /// True once the devices have been started (NMT operational): SYNC, PDOs and the
    /// restart of a device that left operational run from here on.
    pub fn is_operational(self) -> bool {
        matches!(
            self,
            StartupPhase::AwaitingStart | StartupPhase::Enabling | StartupPhase::Ready
        )
    }
}

/// What the real-time loop's watchdog saw when it fired: one cycle ended past the watchdog
/// time, or too many overran in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogTrip {
    /// The cycle that fired it ended this long after its planned wake-up, µs.
    pub ended_after_us: u32,
    /// Overruns in a row, that cycle's included.
    pub in_a_row: u32,
    /// The watchdog time, µs.
    pub watchdog_us: u32,
    /// Overruns in a row that trip.
    pub trip_in_a_row: u32,
}

impl WatchdogTrip {
    /// One line for the journal and the console: what the watchdog saw, against its limits.
    pub fn describe(&self) -> String {
        let ms = |us: u32| f64::from(us) / 1000.0;
        format!(
            "watchdog: a cycle ended {:.1} ms after its planned wake-up (watchdog time {:.1} ms), \
             {} overrun(s) in a row (trips at {})",
            ms(self.ended_after_us),
            ms(self.watchdog_us),
            self.in_a_row,
            self.trip_in_a_row
        )
    }
}

/// Something that happened in the cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventKind {
    /// Resync and resume after a trip (see [`crate::resync`]).
    Resync(crate::resync::ResyncEvent),
    /// The cell changed state.
    CellState {
        /// Before.
        from: CellState,
        /// After.
        to: CellState,
    },
    /// Start-up moved on.
    Startup(StartupPhase),
    /// A device sent boot-up.
    Booted {
        /// Node-ID.
        node: u8,
    },
    /// A device did not boot by the deadline.
    BootTimeout {
        /// Node-ID.
        node: u8,
    },
    /// A device took its whole configuration.
    Configured {
        /// Node-ID.
        node: u8,
    },
    /// A configuration write failed.
    ConfigFailed {
        /// Node-ID.
        node: u8,
        /// Object index.
        index: u16,
        /// Sub-index.
        sub: u8,
        /// SDO abort code, 0 for a timeout.
        abort: u32,
    },
    /// An axis finished homing.
    Homed {
        /// Axis index.
        axis: u16,
    },
    /// An axis changed PLCopen state.
    AxisState {
        /// Axis index.
        axis: u16,
        /// Before.
        from: AxisState,
        /// After.
        to: AxisState,
    },
    /// The sequencer started an instruction.
    Step {
        /// Thread.
        thread: u16,
        /// Instruction index.
        instr: u32,
    },
    /// A production counter moved.
    Counted {
        /// Counter index.
        counter: u16,
        /// New total.
        total: u64,
    },
    /// A wait timed out and raised its alarm (retrying).
    Alarm {
        /// Instruction index.
        instr: u32,
    },
    /// The real-time loop's watchdog fired (the cell trips on `cycle_overrun` next).
    Watchdog(WatchdogTrip),
    /// An axis's following error, checked at each SYNC against the set-point its drive
    /// sampled, stayed outside its window for more SYNCs than allowed (the cell trips on
    /// `following_error` next): by how much, at the SYNC it crossed the limit.
    FollowingError {
        /// Axis index.
        axis: u16,
        /// The following error, counts (actual minus demand).
        error_counts: i64,
        /// The axis's window, counts.
        window_counts: i64,
        /// SYNCs in a row outside the window.
        syncs: u32,
    },
    /// The cell tripped: it stops in `category` and needs a reset.
    Trip {
        /// Why.
        cause: TripCause,
        /// IEC 60204-1 stop category used.
        category: u8,
    },
    /// A device sent an emergency message.
    Emcy {
        /// Node-ID.
        node: u8,
        /// Error code.
        code: u16,
    },
    /// A pass of the sequence ended.
    PassDone {
        /// Passes so far.
        passes: u64,
    },
    /// A bus's CAN interface changed its fault-confinement state (ISO 11898-1), as its
    /// error frames or restarts reported it.
    BusState {
        /// Bus index.
        bus: u8,
        /// Before.
        from: BusState,
        /// After.
        to: BusState,
        /// Transmit error counter when the change was reported (the last one known).
        tec: u8,
        /// Receive error counter, likewise.
        rec: u8,
    },
    /// Frames received on a bus were lost: a receive queue (the socket's or the CAN
    /// controller's) overflowed.
    RxOverflow {
        /// Bus index.
        bus: u8,
        /// Overflows on this bus so far.
        total: u64,
    },
    /// The cycle took a command from the queue: `accepted` says whether the cell's state
    /// allowed it (a refused command changes nothing). `tag` is the sender's, so the
    /// control server can answer the request that sent it.
    Command {
        /// The command.
        command: Command,
        /// The sender's tag (0: `takt run` itself).
        tag: u32,
        /// The state allowed it.
        accepted: bool,
        /// The cell's state when the cycle took it (before it took effect): what allowed
        /// or refused it.
        state: CellState,
    },
}

/// One event with its cycle time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// When (the cycle's `now`).
    pub at: Timestamp,
    /// What.
    pub kind: EventKind,
}

/// One axis in a status snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AxisStatus {
    /// PLCopen state.
    pub state: AxisState,
    /// Set-point, counts.
    pub demand_counts: f64,
    /// Position actual, counts.
    pub actual_counts: i64,
    /// Following error, counts.
    pub following_error_counts: i64,
    /// CiA 402 power state of the drive.
    pub power: PowerState,
    /// Homed (conveyors count as homed: they need no reference).
    pub homed: bool,
}

/// One device in a status snapshot, by device index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// Last NMT state in its heartbeat, none before the first.
    pub nmt: Option<NmtState>,
    /// Heartbeats arrive in time.
    pub alive: bool,
}

/// One bus in a status snapshot: what the controller sent and received on it, counted in
/// the cycle (cumulative; a reader takes differences for rates and load), and the health of
/// its CAN interface as the interface reported it (error frames, restarts, overflows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusStatus {
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames the interface refused.
    pub tx_refused: u64,
    /// Worst-case stuffed bits of every frame in and out, interframe space included.
    pub bits: u64,
    /// The interface reported bus-off (and has not recovered).
    pub bus_off: bool,
    /// Fault-confinement state of the interface (error-active until it reports otherwise).
    pub state: BusState,
    /// Transmit error counter (TEC) at the interface's last report (error frames and state
    /// changes carry it; its counting down between errors is not reported); 0 after a
    /// restart.
    pub tec: u8,
    /// Receive error counter (REC), likewise.
    pub rec: u8,
    /// Bus errors reported (bit, stuff, form, ACK, CRC: one error frame each).
    pub bus_errors: u64,
    /// Times frames were lost to a full receive queue (socket or controller).
    pub rx_overflows: u64,
    /// Times the interface went bus-off.
    pub bus_offs: u64,
}

impl BusStatus {
    fn enter(&mut self, state: BusState) {
        if state == BusState::BusOff && self.state != BusState::BusOff {
            self.bus_offs += 1;
        }
        self.state = state;
    }

    /// Takes in one bus-state event of the interface.
    fn on_state_event(&mut self, event: BusStateEvent) {
        let counters = match event {
            BusStateEvent::StateChanged { state, counters } => {
                self.enter(state);
                counters
            }
            BusStateEvent::Restarted => {
                // A restart resets the CAN controller, its error counters with it.
                self.enter(BusState::ErrorActive);
                self.tec = 0;
                self.rec = 0;
                None
            }
            BusStateEvent::RxOverflow => {
                self.rx_overflows += 1;
                None
            }
            BusStateEvent::ProtocolError { counters } => {
                self.bus_errors += 1;
                counters
            }
        };
        if let Some(c) = counters {
            self.tec = c.tx;
            self.rec = c.rx;
        }
    }
}

/// Counts every frame through a [`CycleIo`] per bus into [`BusStatus`]es, with the bus-state
/// events the interfaces report between frames: the cycle wraps its I/O in this, so every
/// send, receive and error report is counted in one place.
#[derive(Debug)]
pub struct MeteredIo<'a, I: CycleIo> {
    io: &'a mut I,
    buses: &'a mut [BusStatus; STATUS_BUSES],
}

impl<'a, I: CycleIo> MeteredIo<'a, I> {
    /// Counts the traffic of `io` into `buses` (buses beyond [`STATUS_BUSES`] uncounted).
    pub fn new(io: &'a mut I, buses: &'a mut [BusStatus; STATUS_BUSES]) -> MeteredIo<'a, I> {
        MeteredIo { io, buses }
    }
}

impl<I: CycleIo> CycleIo for MeteredIo<'_, I> {
    fn recv_event(&mut self, bus: usize) -> Option<BusEvent> {
        let e = self.io.recv_event(bus)?;
        if let Some(b) = self.buses.get_mut(bus) {
            match e {
                BusEvent::Frame(f) => {
                    b.frames_in += 1;
                    b.bits += u64::from(f.frame.worst_case_bits());
                }
                BusEvent::State { event, .. } => b.on_state_event(event),
            }
        }
        Some(e)
    }

    fn send(&mut self, bus: usize, frame: &Frame) -> bool {
        let sent = self.io.send(bus, frame);
        if let Some(b) = self.buses.get_mut(bus) {
            if sent {
                b.frames_out += 1;
                b.bits += u64::from(frame.worst_case_bits());
            } else {
                b.tx_refused += 1;
            }
        }
        sent
    }

    fn bus_off(&mut self, bus: usize) -> bool {
        let off = self.io.bus_off(bus);
        if let Some(b) = self.buses.get_mut(bus) {
            b.bus_off = off;
            // The interface's own answer wins over the events: the cycle trips and resyncs
            // on it, so the status must say the same.
            if off {
                b.enter(BusState::BusOff);
            } else if b.state == BusState::BusOff {
                b.enter(BusState::ErrorActive);
            }
        }
        off
    }
}

/// Reports every bus whose interface changed its fault-confinement state between `before`
/// and `after` (one cycle's counts) as an [`EventKind::BusState`], and every bus that lost
/// received frames as an [`EventKind::RxOverflow`] (error frames are only counted: a noisy
/// bus makes hundreds a second).
pub fn report_bus_states(
    outbox: &mut Outbox,
    now: Timestamp,
    before: &[BusStatus; STATUS_BUSES],
    after: &[BusStatus; STATUS_BUSES],
) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if a.state != b.state {
            outbox.event(
                now,
                EventKind::BusState {
                    bus: i as u8,
                    from: b.state,
                    to: a.state,
                    tec: a.tec,
                    rec: a.rec,
                },
            );
        }
        if a.rx_overflows > b.rx_overflows {
            outbox.event(
                now,
                EventKind::RxOverflow {
                    bus: i as u8,
                    total: a.rx_overflows,
                },
            );
        }
    }
}

/// A fixed-size histogram of durations in coarse 1-2-5 bins (µs), small enough to copy in
/// every status snapshot. The runtime's fine 1 µs histograms stay in
/// [`crate::rt::RtStats`] for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoarseHistogram {
    /// Samples per bin: bin i holds samples up to [`CoarseHistogram::EDGES_US`]\[i\], the
    /// last bin everything longer.
    pub counts: [u64; CoarseHistogram::BINS],
    /// Samples.
    pub samples: u64,
    /// Largest sample, ns.
    pub max_ns: u64,
}

impl CoarseHistogram {
    /// Upper bin edges, µs.
    pub const EDGES_US: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
    /// Bins (one more than the edges).
    pub const BINS: usize = 13;

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let bin = CoarseHistogram::EDGES_US
            .iter()
            .position(|&e| ns <= e * 1000)
            .unwrap_or(CoarseHistogram::BINS - 1);
        self.counts[bin] += 1;
        self.samples += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The upper edge (µs) of the bin holding quantile `q`; the maximum for the open bin.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.samples == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.samples as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return CoarseHistogram::EDGES_US
                    .get(i)
                    .copied()
                    .unwrap_or(self.max_ns.div_ceil(1000))
                    .min(self.max_ns.div_ceil(1000));
            }
        }
        self.max_ns.div_ceil(1000)
    }
}

/// The cycle's timing as its runtime measured it (the cycle never reads a clock): the
/// runtime records each cycle through [`crate::cycle::CellController::timing_mut`], and the
/// snapshot carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleTiming {
    /// The period, ns (0 in simulated time as fast as possible).
    pub period_ns: u64,
    /// Wake-up latency: actual wake-up minus the planned absolute time.
    pub latency: CoarseHistogram,
    /// Compute time of the step.
    pub compute: CoarseHistogram,
    /// Cycles whose work ended after the next wake-up was due.
    pub overruns: u64,
}

impl CycleTiming {
    /// Records one real-time cycle that woke `latency` late and worked `compute`.
    pub fn record(&mut self, latency: Duration, compute: Duration) {
        self.latency.record(latency);
        self.compute.record(compute);
        if self.period_ns > 0 && latency.saturating_add(compute).as_nanos() > self.period_ns.into()
        {
            self.overruns += 1;
        }
    }

    /// Records one real-time cycle of a loop with this period that woke `latency` late (the
    /// whole of it: a wake-up a period or more late is shown as late as it was).
    pub fn record_wakeup(&mut self, latency: Duration, period: Duration, compute: Duration) {
        self.period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.record(latency, compute);
    }

    /// Records one cycle in simulated time (no wake-up, no period).
    pub fn record_compute(&mut self, compute: Duration) {
        self.compute.record(compute);
    }
}

/// A snapshot of the cell, sent every few cycles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// Cycle time.
    pub at: Timestamp,
    /// Cycles run.
    pub cycles: u64,
    /// PackML state.
    pub cell: CellState,
    /// Start-up progress.
    pub startup: StartupPhase,
    /// Instruction of the main thread.
    pub instr: u32,
    /// Axes (the first `axes` are valid).
    pub axis: [AxisStatus; STATUS_AXES],
    /// Valid entries of `axis`.
    pub axes: u16,
    /// Input bits by input index (bit i = input i active).
    pub inputs: u64,
    /// Output bits by output index.
    pub outputs: u64,
    /// The first counter (parts placed, in the demo).
    pub parts: u64,
    /// Passes of the sequence completed.
    pub passes: u64,
    /// Frames the bus refused (transmit queue full).
    pub tx_refused: u64,
    /// Events lost because the event queue was full.
    pub dropped_events: u64,
    /// The last trip, if the cell is aborted.
    pub trip: Option<TripCause>,
    /// An e-stop (chain input or command) is latched.
    pub estop_latched: bool,
    /// Devices (the first `nodes` are valid), by device index.
    pub node: [NodeStatus; STATUS_NODES],
    /// Valid entries of `node`.
    pub nodes: u16,
    /// Buses (the first `buses` are valid).
    pub bus: [BusStatus; STATUS_BUSES],
    /// Valid entries of `bus`.
    pub buses: u16,
    /// Production counters (the first `counter_count` are valid).
    pub counters: [u64; STATUS_COUNTERS],
    /// Valid entries of `counters`.
    pub counter_count: u16,
    /// Cycle timing.
    pub timing: CycleTiming,
    /// Snapshots lost because the status queue was full (before this one).
    pub dropped_status: u64,
}

impl Status {
    /// The snapshot of a cell that has not run yet, sized for `program`.
    pub fn empty(program: &Program) -> Status {
        Status {
            at: Timestamp::ZERO,
            cycles: 0,
            cell: CellState::Stopped,
            startup: StartupPhase::AwaitingBoot,
            instr: 0,
            axis: [AxisStatus::default(); STATUS_AXES],
            axes: program.axes.len().min(STATUS_AXES) as u16,
            inputs: 0,
            outputs: 0,
            parts: 0,
            passes: 0,
            tx_refused: 0,
            dropped_events: 0,
            trip: None,
            estop_latched: false,
            node: [NodeStatus::default(); STATUS_NODES],
            nodes: program.devices.len().min(STATUS_NODES) as u16,
            bus: [BusStatus::default(); STATUS_BUSES],
            buses: program.buses.len().min(STATUS_BUSES) as u16,
            counters: [0; STATUS_COUNTERS],
            counter_count: program.counters.len().min(STATUS_COUNTERS) as u16,
            timing: CycleTiming::default(),
            dropped_status: 0,
        }
    }
}

/// The cycle's ends of the event and status queues.
#[derive(Debug)]
pub struct Outbox {
    events: Option<SyncSender<Event>>,
    status: Option<SyncSender<Status>>,
    dropped_events: u64,
    dropped_status: u64,
}

impl Outbox {
    /// An outbox that sends nowhere (a benchmark, or a test that reads the state directly).
    pub fn none() -> Outbox {
        Outbox {
            events: None,
            status: None,
            dropped_events: 0,
            dropped_status: 0,
        }
    }

    /// Sends an event; counts it when the queue is full.
    pub fn event(&mut self, at: Timestamp, kind: EventKind) {
        if let Some(tx) = &self.events {
            match tx.try_send(Event { at, kind }) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => self.dropped_events += 1,
            }
        }
    }

    /// Sends a status snapshot; counts it when the queue is full.
    pub fn status(&mut self, status: &Status) {
        if let Some(tx) = &self.status {
            match tx.try_send(*status) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => self.dropped_status += 1,
            }
        }
    }

    /// Events lost to a full queue.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Snapshots lost to a full queue.
    pub fn dropped_status(&self) -> u64 {
        self.dropped_status
    }
}

/// The receiving ends, for the non-RT side.
#[derive(Debug)]
pub struct Inbox {
    /// Events.
    pub events: Receiver<Event>,
    /// Status snapshots.
    pub status: Receiver<Status>,
}

/// Bounded queues of `events` and `status` entries.
pub fn channels(events: usize, status: usize) -> (Outbox, Inbox) {
    let (etx, erx) = sync_channel(events.max(1));
    let (stx, srx) = sync_channel(status.max(1));
    (
        Outbox {
            events: Some(etx),
            status: Some(stx),
            dropped_events: 0,
            dropped_status: 0,
        },
        Inbox {
            events: erx,
            status: srx,
        },
    )
}

/// One line for an event, names looked up in the program (non-RT side only).
pub fn describe(program: &Program, e: &Event) -> String {
    let t = e.at.as_micros() as f64 / 1e6;
    let what = match e.kind {
        EventKind::CellState { from, to } => format!("cell {from:?} -> {to:?}"),
        EventKind::Startup(p) => format!("start-up: {p:?}"),
        EventKind::Booted { node } => format!("node {node} booted"),
        EventKind::BootTimeout { node } => format!("node {node} did not boot by the deadline"),
        EventKind::Watchdog(w) => w.describe(),
        EventKind::FollowingError {
            axis,
            error_counts,
            window_counts,
            syncs,
        } => format!(
            "axis {axis}: following error {error_counts} counts for {syncs} SYNCs \
             (window {window_counts})"
        ),
        EventKind::Configured { node } => format!("node {node} configured"),
        EventKind::ConfigFailed {
            node,
            index,
            sub,
            abort,
        } => format!("node {node}: writing {index:#06X}:{sub:02X} failed (abort {abort:#010X})"),
        EventKind::Homed { axis } => {
            format!(
                "axis {} homed",
                program.axis_name(takt_sequences::program::AxisId(axis))
            )
        }
        EventKind::AxisState { axis, from, to } => format!(
            "axis {}: {from:?} -> {to:?}",
            program.axis_name(takt_sequences::program::AxisId(axis))
        ),
        EventKind::Step { thread, instr } => {
            let step = step_name(program, instr);
            format!("thread {thread}: {step}")
        }
        EventKind::Counted { counter, total } => format!(
            "{} = {total}",
            program
                .counters
                .get(usize::from(counter))
                .map_or("?", String::as_str)
        ),
        EventKind::Alarm { instr } => format!("alarm at {}", step_name(program, instr)),
        EventKind::Trip { cause, category } => {
            format!("trip: {cause:?}, stop category {category}")
        }
        EventKind::Emcy { node, code } => format!("EMCY from node {node}: {code:#06X}"),
        EventKind::PassDone { passes } => format!("pass {passes} done"),
        EventKind::Resync(r) => crate::resync::describe(program, r),
        EventKind::RxOverflow { bus, total } => format!(
            "bus {}: received frames lost to a full receive queue ({total} so far)",
            program
                .buses
                .get(usize::from(bus))
                .map_or("?", |b| b.name.as_str())
        ),
        EventKind::BusState {
            bus,
            from,
            to,
            tec,
            rec,
        } => format!(
            "bus {}: {from:?} -> {to:?} (TEC {tec}, REC {rec})",
            program
                .buses
                .get(usize::from(bus))
                .map_or("?", |b| b.name.as_str())
        ),
        EventKind::Command {
            command,
            tag,
            accepted,
            state,
        } => format!(
            "command {command:?} (tag {tag}) {} {state:?}",
            if accepted {
                "accepted in"
            } else {
                "refused in"
            }
        ),
    };
    format!("{t:10.3} s  {what}")
}

/// One line for each bus of a status snapshot: its interface's health and traffic, names
/// looked up in the program (non-RT side only; a run's summary prints them).
pub fn describe_buses(program: &Program, status: &Status) -> Vec<String> {
    program
        .buses
        .iter()
        .zip(&status.bus[..usize::from(status.buses)])
        .map(|(cfg, b)| {
            let state = match b.state {
                BusState::ErrorActive => "error-active",
                BusState::ErrorWarning => "ERROR WARNING",
                BusState::ErrorPassive => "ERROR PASSIVE",
                BusState::BusOff => "BUS-OFF",
            };
            format!(
                "bus {} interface: {state} (TEC {}, REC {} at the last report); error frames \
                 {}, receive overflows {}, bus-off {}; frames in {}, out {}, refused {}",
                cfg.name,
                b.tec,
                b.rec,
                b.bus_errors,
                b.rx_overflows,
                b.bus_offs,
                b.frames_in,
                b.frames_out,
                b.tx_refused
            )
        })
        .collect()
}

fn step_name(program: &Program, instr: u32) -> &str {
    step_index(program, instr)
        .and_then(|s| program.steps.get(s))
        .map_or("(end)", |s| s.path.as_str())
}

/// The index into [`Program::steps`] of the step instruction `instr` belongs to; none for
/// the end of a pass and for instructions outside every step.
pub fn step_index(program: &Program, instr: u32) -> Option<usize> {
    use takt_sequences::program::Instr;
    let step = match program.code.get(instr as usize) {
        Some(
            Instr::Move { step, .. }
            | Instr::Wait { step, .. }
            | Instr::Set { step, .. }
            | Instr::ConveyorRun { step, .. }
            | Instr::ConveyorStop { step, .. }
            | Instr::ConveyorIndex { step, .. }
            | Instr::Dwell { step, .. }
            | Instr::Fork { step, .. }
            | Instr::RepeatStart { step, .. }
            | Instr::RepeatEnd { step, .. }
            | Instr::Count { step, .. }
            | Instr::Jump { step, .. }
            | Instr::Fault { step, .. },
        ) => Some(*step),
        _ => None,
    };
    step.map(|s| s.index())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bus 0 delivers what `pending` holds and is bus-off while `off`; bus 1 refuses every
    /// send.
    struct Fake {
        pending: std::collections::VecDeque<BusEvent>,
        off: bool,
    }

    impl CycleIo for Fake {
        fn recv_event(&mut self, bus: usize) -> Option<BusEvent> {
            if bus == 0 {
                self.pending.pop_front()
            } else {
                None
            }
        }

        fn send(&mut self, bus: usize, _frame: &Frame) -> bool {
            bus == 0
        }

        fn bus_off(&mut self, bus: usize) -> bool {
            bus == 0 && self.off
        }
    }

    fn state(event: BusStateEvent) -> BusEvent {
        BusEvent::State {
            timestamp: Timestamp::ZERO,
            event,
        }
    }

    #[test]
    fn metered_io_counts_every_frame_per_bus_and_passes_bus_off_through() {
        let f = Frame::standard(0x181, [0u8; 8]);
        let mut fake = Fake {
            pending: [BusEvent::Frame(takt_drivers::can::TimestampedFrame {
                timestamp: Timestamp::ZERO,
                frame: f,
            })]
            .into(),
            off: true,
        };
        let mut buses = [BusStatus::default(); STATUS_BUSES];
        let mut io = MeteredIo::new(&mut fake, &mut buses);
        assert!(io.recv(0).is_some());
        assert!(io.recv(0).is_none());
        assert!(io.send(0, &f));
        assert!(!io.send(1, &f));
        assert!(io.bus_off(0));
        assert!(!io.bus_off(1));
        // Out of the status's range: passed through, not counted.
        assert!(!io.send(STATUS_BUSES, &f));
        assert_eq!(
            buses[0],
            BusStatus {
                frames_in: 1,
                frames_out: 1,
                tx_refused: 0,
                bits: 2 * 135,
                bus_off: true,
                state: BusState::BusOff,
                bus_offs: 1,
                ..BusStatus::default()
            }
        );
        assert_eq!(buses[1].tx_refused, 1);
        assert!(!buses[1].bus_off);
    }

    #[test]
    fn metered_io_takes_the_interfaces_error_reports_between_frames() {
        use takt_drivers::can::ErrorCounters;
        let f = Frame::standard(0x181, [0u8; 8]);
        let frame = BusEvent::Frame(takt_drivers::can::TimestampedFrame {
            timestamp: Timestamp::ZERO,
            frame: f,
        });
        let counters = |tx, rx| Some(ErrorCounters { tx, rx });
        let mut fake = Fake {
            pending: [
                state(BusStateEvent::ProtocolError {
                    counters: counters(0, 95),
                }),
                frame,
                state(BusStateEvent::StateChanged {
                    state: BusState::ErrorWarning,
                    counters: counters(0, 96),
                }),
                state(BusStateEvent::ProtocolError { counters: None }),
                state(BusStateEvent::StateChanged {
                    state: BusState::ErrorPassive,
                    counters: counters(8, 130),
                }),
                state(BusStateEvent::RxOverflow),
                frame,
            ]
            .into(),
            off: false,
        };
        let mut buses = [BusStatus::default(); STATUS_BUSES];
        let before = buses;
        let mut io = MeteredIo::new(&mut fake, &mut buses);
        // The cycle reads frames; the reports between them are counted on the way.
        assert!(io.recv(0).is_some());
        assert!(io.recv(0).is_some());
        assert!(io.recv(0).is_none());
        assert!(!io.bus_off(0));
        let b = buses[0];
        assert_eq!(b.frames_in, 2);
        assert_eq!(b.state, BusState::ErrorPassive);
        assert_eq!((b.tec, b.rec), (8, 130));
        assert_eq!((b.bus_errors, b.rx_overflows, b.bus_offs), (2, 1, 0));
        let (mut outbox, inbox) = channels(8, 1);
        report_bus_states(&mut outbox, Timestamp::from_millis(3), &before, &buses);
        let events: Vec<EventKind> = inbox.events.try_iter().map(|e| e.kind).collect();
        assert_eq!(
            events,
            [
                EventKind::BusState {
                    bus: 0,
                    from: BusState::ErrorActive,
                    to: BusState::ErrorPassive,
                    tec: 8,
                    rec: 130,
                },
                EventKind::RxOverflow { bus: 0, total: 1 },
            ]
        );

        // Bus-off, then the restart: the counters start again from zero.
        let mut fake = Fake {
            pending: [
                state(BusStateEvent::StateChanged {
                    state: BusState::BusOff,
                    counters: None,
                }),
                state(BusStateEvent::Restarted),
            ]
            .into(),
            off: false,
        };
        let mut io = MeteredIo::new(&mut fake, &mut buses);
        assert!(io.recv(0).is_none());
        let b = buses[0];
        assert_eq!(
            (b.state, b.tec, b.rec, b.bus_offs),
            (BusState::ErrorActive, 0, 0, 1)
        );
    }

    #[test]
    fn coarse_histogram_quantiles_are_bin_edges_capped_by_the_maximum() {
        let mut t = CycleTiming::default();
        for us in [3u64, 4, 4, 30, 700] {
            t.record_wakeup(
                Duration::from_micros(us),
                Duration::from_millis(1),
                Duration::from_micros(400),
            );
        }
        assert_eq!(t.latency.samples, 5);
        assert_eq!(t.latency.quantile_us(0.5), 5);
        assert_eq!(t.latency.quantile_us(1.0), 700);
        assert_eq!(
            t.overruns, 1,
            "700 µs late + 400 µs of work passes the 1 ms period"
        );
        // A wake-up many periods late shows as late as it was (it once showed as its
        // remainder modulo the period: 12 ms late looked like on time).
        t.record_wakeup(
            Duration::from_millis(12),
            Duration::from_millis(1),
            Duration::from_micros(40),
        );
        assert_eq!(t.latency.max_ns, 12_000_000);
        assert_eq!(t.latency.quantile_us(1.0), 12_000);
        assert_eq!(t.overruns, 2);
    }
}
