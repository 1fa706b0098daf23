//! What leaves the real-time cycle: events and status snapshots, as small fixed-size `Copy`
//! records through bounded channels. The cycle only ever `try_send`s; a full queue is
//! counted ([`Outbox::dropped_events`]), never waited on. A non-RT thread turns events into
//! `tracing` output with [`describe`], where names are looked up in the program.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use takt_drivers::can::Timestamp;
use takt_sequences::Program;

use crate::axis::AxisState;
use crate::safety::{CellState, TripCause};

/// Axes a status snapshot carries (the largest cell the benchmarks run has 64).
pub const STATUS_AXES: usize = 64;

/// Start-up progress, shown while the cell is not yet ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartupPhase {
    /// NMT reset communication sent; waiting for every device's boot-up.
    #[default]
    AwaitingBoot,
    /// Writing every device's configuration over SDO.
    Configuring,
    /// NMT start sent; enabling the drives and homing the axes. A drive held in STO keeps
    /// the cell here, visibly, until it can enable.
    Enabling,
    /// Every device configured, every axis enabled and homed.
    Ready,
    /// A device did not boot or refused its configuration: see the events.
    Failed,
}

/// Something that happened in the cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventKind {
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
    };
    format!("{t:10.3} s  {what}")
}

fn step_name(program: &Program, instr: u32) -> &str {
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
    step.and_then(|s| program.steps.get(s.index()))
        .map_or("(end)", |s| s.path.as_str())
}
