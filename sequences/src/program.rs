//! The compiled program: what the real-time cycle executes.
//!
//! Checking turns the cell and its sequences into a [`Program`]: flat arrays of fixed-size,
//! `Copy` records that refer to each other by index. Names are resolved to [`AxisId`],
//! [`InputId`], … ; quantities are converted to device units (counts, counts/s, µs); jump
//! targets are instruction indices; calls are inlined (the call graph is acyclic, so this
//! terminates) and every buffer an executor needs is sized in [`ProgramLimits`]. Executing it
//! needs no strings, no maps and no allocation: an executor allocates
//! `limits.max_threads` program counters, `limits.repeat_slots` counters and
//! `limits.retry_slots` counters once, at start-up.
//!
//! The names live beside the code, in [`Program::steps`], [`Program::names`] and friends, for
//! the status display and the journal, never for the cycle.
//!
//! Control flow, for an executor:
//! * a *thread* is a program counter; the program starts with one at [`Program::entry`];
//! * [`Instr::Fork`] starts one thread per branch (`branches` range of
//!   [`Program::branch_starts`]) and parks the forking thread until all have reached
//!   [`Instr::Join`] with the same `fork` id, then the forking thread continues after the join;
//! * [`Instr::RepeatStart`] zeroes a counter slot; [`Instr::RepeatEnd`] increments it and jumps
//!   back to `body` unless done;
//! * [`Instr::Wait`] with [`OnTimeout::Retry`] counts its retries in a slot, zeroed when the
//!   wait is entered anew.

use std::fmt;

use crate::expr::CmpOp;

macro_rules! id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u16);
        impl $name {
            /// The index into its table.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id!(
    /// Index into [`Program::axes`] (gantry axes first, then conveyors).
    AxisId
);
id!(
    /// Index into [`Program::inputs`].
    InputId
);
id!(
    /// Index into [`Program::outputs`].
    OutputId
);
id!(
    /// Index into [`Program::counters`].
    CounterId
);
id!(
    /// Index into [`Program::devices`].
    DeviceId
);
id!(
    /// Index into [`Program::buses`].
    BusId
);
id!(
    /// Index into [`Program::steps`]: which step of which sequence an instruction belongs to.
    StepId
);
id!(
    /// A repeat or retry counter slot.
    SlotId
);
id!(
    /// Index into [`Program::messages`].
    MessageId
);

/// Index into [`Program::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrId(pub u32);

/// A half-open range of indices into one of the program's side tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexRange {
    /// First index.
    pub start: u32,
    /// Number of entries.
    pub len: u32,
}

impl IndexRange {
    /// As a `Range` for slicing.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// A condition: a range of [`Program::cond_ops`] in postfix order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CondRef(pub IndexRange);

/// An axis or conveyor state a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisState {
    /// Homed since power-up (or since the last re-home).
    Homed,
    /// CiA 402 operation enabled.
    Enabled,
    /// A profile is running.
    Moving,
    /// Standing still.
    Stopped,
    /// Within the in-position window of its target.
    InPosition,
    /// The drive is in fault.
    Fault,
}

/// One operation of a postfix condition. Evaluation needs a stack of
/// [`ProgramLimits::max_cond_stack`] booleans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CondOp {
    /// Push a constant.
    Const(bool),
    /// Push whether an input is active.
    Input(InputId),
    /// Push whether an output is commanded on.
    Output(OutputId),
    /// Push an axis state.
    State(AxisId, AxisState),
    /// Push `position op position_counts`.
    Compare {
        /// The axis.
        axis: AxisId,
        /// The operator.
        op: CmpOp,
        /// The other side, in counts.
        position_counts: i64,
    },
    /// Push `|position - position_counts| <= window_counts`.
    At {
        /// The axis.
        axis: AxisId,
        /// The teach point's coordinate, in counts.
        position_counts: i64,
        /// The axis's in-position window, in counts.
        window_counts: i64,
    },
    /// Pop one, push its negation.
    Not,
    /// Pop two, push their conjunction.
    And,
    /// Pop two, push their disjunction.
    Or,
}

/// What the cycle tells a condition about the cell.
pub trait CellView {
    /// Whether an input is active (after `active = "low"` inversion).
    fn input(&self, input: InputId) -> bool;
    /// Whether an output is commanded on.
    fn output(&self, output: OutputId) -> bool;
    /// An axis's actual position.
    fn position_counts(&self, axis: AxisId) -> i64;
    /// An axis state.
    fn axis_state(&self, axis: AxisId, state: AxisState) -> bool;
}

/// One axis target of a move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoveTarget {
    /// The axis.
    pub axis: AxisId,
    /// Absolute position, or distance for a relative move.
    pub position_counts: i64,
    /// Velocity limit for this move (axis maximum scaled by the step's speed).
    pub max_velocity_counts_s: f64,
}

/// What a wait does when its timeout runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Stop the cell (sequence fault).
    Fault,
    /// Raise the alarm, wait again; after `max` retries, fault.
    Retry {
        /// Counter slot for the retries.
        slot: SlotId,
        /// Most retries.
        max: u16,
    },
    /// Continue at another instruction.
    Goto(InstrId),
}

/// How a `repeat` ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RepeatUntil {
    /// After this many passes.
    Times(u32),
    /// When the condition holds after a pass, or after `max` passes (then the sequence
    /// faults: the bound was meant never to be reached).
    Condition {
        /// The condition.
        cond: CondRef,
        /// Most passes.
        max: u32,
    },
}

/// One instruction. Fixed size, `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    /// Move axes; ends when all are in position.
    Move {
        /// The step.
        step: StepId,
        /// Range of [`Program::targets`].
        targets: IndexRange,
        /// Targets are distances from the current positions.
        relative: bool,
        /// All axes arrive together.
        coordinated: bool,
    },
    /// Wait for a condition.
    Wait {
        /// The step.
        step: StepId,
        /// The condition.
        cond: CondRef,
        /// Timeout in µs.
        timeout_us: u64,
        /// What happens then.
        on_timeout: OnTimeout,
        /// Alarm text, if any.
        alarm: Option<MessageId>,
    },
    /// Switch outputs; ends at once.
    Set {
        /// The step.
        step: StepId,
        /// Range of [`Program::output_writes`].
        writes: IndexRange,
    },
    /// Start a conveyor at a velocity; ends at once (the belt keeps running).
    ConveyorRun {
        /// The step.
        step: StepId,
        /// The conveyor.
        axis: AxisId,
        /// Belt velocity.
        velocity_counts_s: f64,
    },
    /// Stop a conveyor; ends when it stands.
    ConveyorStop {
        /// The step.
        step: StepId,
        /// The conveyor.
        axis: AxisId,
    },
    /// Move a conveyor by a distance; ends when done.
    ConveyorIndex {
        /// The step.
        step: StepId,
        /// The conveyor.
        axis: AxisId,
        /// Distance.
        distance_counts: i64,
        /// Velocity limit.
        max_velocity_counts_s: f64,
    },
    /// Do nothing for a while.
    Dwell {
        /// The step.
        step: StepId,
        /// Duration in µs.
        duration_us: u64,
    },
    /// Start parallel branches.
    Fork {
        /// The step.
        step: StepId,
        /// Fork id, matched by the branches' [`Instr::Join`].
        fork: u16,
        /// Range of [`Program::branch_starts`].
        branches: IndexRange,
        /// Where the forking thread goes on once all branches have joined.
        join: InstrId,
    },
    /// End of a branch: the thread ends here.
    Join {
        /// The fork this ends a branch of.
        fork: u16,
    },
    /// Zero a repeat counter.
    RepeatStart {
        /// The step.
        step: StepId,
        /// The counter.
        slot: SlotId,
    },
    /// End of a repeat's body.
    RepeatEnd {
        /// The step.
        step: StepId,
        /// The counter.
        slot: SlotId,
        /// First instruction of the body.
        body: InstrId,
        /// When to stop.
        until: RepeatUntil,
    },
    /// Add to a production counter.
    Count {
        /// The step.
        step: StepId,
        /// The counter.
        counter: CounterId,
        /// How much.
        by: u32,
    },
    /// Continue elsewhere.
    Jump {
        /// The step (the `goto`, or the enclosing construct).
        step: StepId,
        /// Where.
        target: InstrId,
    },
    /// Stop the cell with a fault message.
    Fault {
        /// The step.
        step: StepId,
        /// The message.
        message: MessageId,
    },
    /// End of one pass of the sequence.
    End,
}

/// One output switched by a `set` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputWrite {
    /// The output.
    pub output: OutputId,
    /// On or off.
    pub on: bool,
}

/// Where a step came from, for people (never read by the cycle).
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    /// `pick_and_place.to_pick`, or `pick_and_place.7` for unnamed steps; calls are prefixed by
    /// the calling step: `pick_and_place.purge/purge_gripper.blow`.
    pub path: String,
    /// The step kind (`move`, `wait`, …).
    pub kind: &'static str,
    /// File name and 1-based line and column of the step's header.
    pub location: (String, usize, usize),
}

/// A CANopen device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Name in the cell file.
    pub name: String,
    /// Bus.
    pub bus: BusId,
    /// Node id.
    pub node: u8,
    /// What it is.
    pub kind: DeviceKind,
    /// Heartbeat producer time (0x1017), ms.
    pub heartbeat_ms: u16,
    /// PDOs.
    pub pdos: Vec<crate::pdo::Pdo>,
}

/// Device kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// CiA 402 servo drive.
    Servo,
    /// CiA 402 stepper drive.
    Stepper,
    /// CiA 402 drive of a conveyor, profile velocity.
    Conveyor,
    /// CiA 401-style digital I/O.
    Io,
}

/// A CAN bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    /// Name in the cell file.
    pub name: String,
    /// SocketCAN interface.
    pub interface: String,
    /// Bit rate.
    pub bitrate_bit_s: u32,
    /// SYNC period.
    pub sync_period_us: u32,
    /// SYNC carries a counter byte.
    pub sync_counter: bool,
    /// The controller's node id.
    pub controller_node: u8,
    /// The controller's heartbeat period.
    pub controller_heartbeat_ms: u16,
    /// Highest accepted planned load, percent.
    pub load_ceiling_percent: f64,
}

/// What to do after an axis's position was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncPolicy {
    /// Read the actual position back and re-plan from there.
    Reread,
    /// Home again.
    Rehome,
}

/// An axis or conveyor, in device units.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisConfig {
    /// Name in the cell file.
    pub name: String,
    /// The drive.
    pub device: DeviceId,
    /// True for a conveyor (endless, no soft limits, no homing).
    pub conveyor: bool,
    /// True for a rotary axis (user unit deg).
    pub rotary: bool,
    /// Counts per user unit (mm or deg).
    pub counts_per_unit: f64,
    /// Soft limits (`i64::MIN`/`MAX` for conveyors).
    pub min_position_counts: i64,
    /// Upper soft limit.
    pub max_position_counts: i64,
    /// Maximum velocity.
    pub max_velocity_counts_s: f64,
    /// Maximum acceleration.
    pub max_acceleration_counts_s2: f64,
    /// Maximum jerk.
    pub max_jerk_counts_s3: f64,
    /// Following error window (0x6065).
    pub following_error_counts: i64,
    /// In-position window.
    pub in_position_counts: i64,
    /// CiA 402 homing method.
    pub homing_method: i8,
    /// Home offset.
    pub homing_offset_counts: i64,
    /// Resync policy.
    pub resync: ResyncPolicy,
    /// Where the axis stands when a pass starts, for the dry run.
    pub start_position_counts: i64,
}

/// A digital I/O point.
#[derive(Debug, Clone, PartialEq)]
pub struct IoPoint {
    /// Name in the cell file.
    pub name: String,
    /// The I/O node.
    pub device: DeviceId,
    /// Bit number.
    pub bit: u8,
    /// True when active low.
    pub active_low: bool,
}

/// What an interlock guards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guards {
    /// All motion.
    AllMotion,
    /// Bit set of [`AxisId`]s (at most 64 axes).
    Axes(u64),
    /// Range of [`Program::guarded_steps`].
    Steps(IndexRange),
}

/// An interlock.
#[derive(Debug, Clone, PartialEq)]
pub struct Interlock {
    /// Name in the cell file.
    pub name: String,
    /// Must hold.
    pub require: CondRef,
    /// What stops when it does not.
    pub guards: Guards,
}

/// IEC 60204-1 stop category per fault class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopCategories {
    /// E-stop chain opened.
    pub estop: u8,
    /// Interlock opened during motion.
    pub interlock: u8,
    /// Following error.
    pub following_error: u8,
    /// Heartbeat lost.
    pub heartbeat_lost: u8,
    /// Drive fault.
    pub drive_fault: u8,
    /// Cycle overrun trip.
    pub cycle_overrun: u8,
    /// Wait timeout or `fault` step.
    pub sequence_fault: u8,
    /// No feedback PDO for too many SYNCs.
    pub stale_feedback: u8,
    /// A device sent boot-up while the cell ran (it rebooted).
    pub rebooted: u8,
    /// The controller's CAN interface went bus-off.
    pub bus_off: u8,
    /// A position actual jumped further than the axis can move in one SYNC.
    pub position_jump: u8,
}

impl StopCategories {
    /// The stop category of `class`.
    pub fn of(&self, class: FaultClass) -> u8 {
        match class {
            FaultClass::Estop => self.estop,
            FaultClass::Interlock => self.interlock,
            FaultClass::FollowingError => self.following_error,
            FaultClass::HeartbeatLost => self.heartbeat_lost,
            FaultClass::DriveFault => self.drive_fault,
            FaultClass::CycleOverrun => self.cycle_overrun,
            FaultClass::SequenceFault => self.sequence_fault,
            FaultClass::StaleFeedback => self.stale_feedback,
            FaultClass::Rebooted => self.rebooted,
            FaultClass::BusOff => self.bus_off,
            FaultClass::PositionJump => self.position_jump,
        }
    }
}

/// A class of fault, as `[stop_categories]` and `[resync] auto_resume` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultClass {
    /// `estop`.
    Estop,
    /// `interlock`.
    Interlock,
    /// `following_error`.
    FollowingError,
    /// `heartbeat_lost`.
    HeartbeatLost,
    /// `drive_fault`.
    DriveFault,
    /// `cycle_overrun`.
    CycleOverrun,
    /// `sequence_fault`.
    SequenceFault,
    /// `stale_feedback`.
    StaleFeedback,
    /// `rebooted`.
    Rebooted,
    /// `bus_off`.
    BusOff,
    /// `position_jump`.
    PositionJump,
}

impl FaultClass {
    /// Every class, in the order of the cell file's `[stop_categories]`.
    pub const ALL: [FaultClass; 11] = [
        FaultClass::Estop,
        FaultClass::Interlock,
        FaultClass::FollowingError,
        FaultClass::HeartbeatLost,
        FaultClass::DriveFault,
        FaultClass::CycleOverrun,
        FaultClass::SequenceFault,
        FaultClass::StaleFeedback,
        FaultClass::Rebooted,
        FaultClass::BusOff,
        FaultClass::PositionJump,
    ];

    /// Its key in the cell file.
    pub fn key(self) -> &'static str {
        match self {
            FaultClass::Estop => "estop",
            FaultClass::Interlock => "interlock",
            FaultClass::FollowingError => "following_error",
            FaultClass::HeartbeatLost => "heartbeat_lost",
            FaultClass::DriveFault => "drive_fault",
            FaultClass::CycleOverrun => "cycle_overrun",
            FaultClass::SequenceFault => "sequence_fault",
            FaultClass::StaleFeedback => "stale_feedback",
            FaultClass::Rebooted => "rebooted",
            FaultClass::BusOff => "bus_off",
            FaultClass::PositionJump => "position_jump",
        }
    }

    /// The class with cell-file key `key`.
    pub fn from_key(key: &str) -> Option<FaultClass> {
        FaultClass::ALL.into_iter().find(|c| c.key() == key)
    }

    /// Its bit in [`ResyncConfig::auto_resume`].
    pub fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// What the controller does after a resync (`[resync]` in the cell file).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResyncConfig {
    /// Fault classes after which the cell resyncs and resumes by itself, one bit per
    /// [`FaultClass::bit`]; the others wait for the operator's reset and start.
    pub auto_resume: u16,
    /// What the interrupted pass has done that must still be so at resume (the part on
    /// the nozzle): if it held when the cell tripped and no longer does, the cell holds
    /// with [`ResyncConfig::hold_message`] instead of resuming.
    pub persist: Option<CondRef>,
    /// The operator's message when `persist` was lost.
    pub hold_message: String,
}

impl ResyncConfig {
    /// True when the cell may resume by itself after a fault of `class`.
    pub fn auto_resumes(&self, class: FaultClass) -> bool {
        self.auto_resume & class.bit() != 0
    }
}

impl Default for StopCategories {
    fn default() -> Self {
        StopCategories {
            estop: 1,
            interlock: 2,
            following_error: 1,
            heartbeat_lost: 1,
            drive_fault: 0,
            cycle_overrun: 1,
            sequence_fault: 2,
            stale_feedback: 1,
            rebooted: 1,
            bus_off: 1,
            position_jump: 1,
        }
    }
}

/// Buffer sizes an executor allocates once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgramLimits {
    /// Most threads alive at once (1 + parallel branches, nested).
    pub max_threads: u16,
    /// Repeat counter slots.
    pub repeat_slots: u16,
    /// Wait retry counter slots.
    pub retry_slots: u16,
    /// Deepest condition stack.
    pub max_cond_stack: u16,
    /// Most axes in one move.
    pub max_move_axes: u16,
}

/// Largest condition stack [`Program::eval`] supports (see [`crate::expr::MAX_DEPTH`]).
pub const COND_STACK: usize = 32;

/// The compiled cell and sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The cell's name.
    pub cell_name: String,
    /// The sequence that runs.
    pub sequence_name: String,
    /// Buses.
    pub buses: Vec<BusConfig>,
    /// Devices.
    pub devices: Vec<DeviceConfig>,
    /// Axes, then conveyors.
    pub axes: Vec<AxisConfig>,
    /// Inputs.
    pub inputs: Vec<IoPoint>,
    /// Outputs.
    pub outputs: Vec<IoPoint>,
    /// Production counter names.
    pub counters: Vec<String>,
    /// Interlocks.
    pub interlocks: Vec<Interlock>,
    /// Steps guarded by interlocks.
    pub guarded_steps: Vec<StepId>,
    /// Stop categories.
    pub stop_categories: StopCategories,
    /// Resync and resume.
    pub resync: ResyncConfig,
    /// The instructions.
    pub code: Vec<Instr>,
    /// First instruction of a pass.
    pub entry: InstrId,
    /// Condition operations.
    pub cond_ops: Vec<CondOp>,
    /// Move targets.
    pub targets: Vec<MoveTarget>,
    /// Output writes.
    pub output_writes: Vec<OutputWrite>,
    /// First instruction of each parallel branch.
    pub branch_starts: Vec<InstrId>,
    /// Steps, for people.
    pub steps: Vec<StepInfo>,
    /// Alarm and fault texts.
    pub messages: Vec<String>,
    /// Buffer sizes.
    pub limits: ProgramLimits,
}

impl Program {
    /// Evaluates a condition. No allocation: a fixed stack of [`COND_STACK`] booleans.
    ///
    /// Compilation guarantees every condition is well-formed postfix no deeper than
    /// [`COND_STACK`]; a malformed one (a hand-built `Program`) evaluates to `false`, the safe
    /// answer for an interlock.
    pub fn eval(&self, cond: CondRef, cell: &impl CellView) -> bool {
        let mut stack = [false; COND_STACK];
        let mut sp = 0usize;
        let Some(ops) = self.cond_ops.get(cond.0.range()) else {
            return false;
        };
        for op in ops {
            let v = match *op {
                CondOp::Const(b) => b,
                CondOp::Input(i) => cell.input(i),
                CondOp::Output(o) => cell.output(o),
                CondOp::State(a, s) => cell.axis_state(a, s),
                CondOp::Compare {
                    axis,
                    op,
                    position_counts,
                } => {
                    let p = cell.position_counts(axis);
                    match op {
                        CmpOp::Lt => p < position_counts,
                        CmpOp::Le => p <= position_counts,
                        CmpOp::Gt => p > position_counts,
                        CmpOp::Ge => p >= position_counts,
                    }
                }
                CondOp::At {
                    axis,
                    position_counts,
                    window_counts,
                } => (cell.position_counts(axis) - position_counts).abs() <= window_counts,
                CondOp::Not => {
                    if sp == 0 {
                        return false;
                    }
                    stack[sp - 1] = !stack[sp - 1];
                    continue;
                }
                CondOp::And | CondOp::Or => {
                    if sp < 2 {
                        return false;
                    }
                    let b = stack[sp - 1];
                    let a = stack[sp - 2];
                    sp -= 1;
                    stack[sp - 1] = if matches!(op, CondOp::And) {
                        a && b
                    } else {
                        a || b
                    };
                    continue;
                }
            };
            if sp == COND_STACK {
                return false;
            }
            stack[sp] = v;
            sp += 1;
        }
        sp == 1 && stack[0]
    }

    /// The instruction at `id`.
    pub fn instr(&self, id: InstrId) -> Option<&Instr> {
        self.code.get(id.0 as usize)
    }

    /// An axis's name, for display.
    pub fn axis_name(&self, axis: AxisId) -> &str {
        self.axes.get(axis.index()).map_or("?", |a| a.name.as_str())
    }

    /// Converts counts to the axis's user unit (mm or deg).
    pub fn to_units(&self, axis: AxisId, counts: f64) -> f64 {
        self.axes
            .get(axis.index())
            .map_or(counts, |a| counts / a.counts_per_unit)
    }

    /// A listing of the program: one line per instruction, names in comments.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "program {} (sequence {})",
            self.cell_name, self.sequence_name
        );
        let l = self.limits;
        let _ = writeln!(
            out,
            "limits: threads {} repeat-slots {} retry-slots {} cond-stack {} move-axes {}",
            l.max_threads, l.repeat_slots, l.retry_slots, l.max_cond_stack, l.max_move_axes
        );
        for (i, a) in self.axes.iter().enumerate() {
            let _ = writeln!(
                out,
                "axis {i} {}: {} counts/{} [{}, {}] v {} a {} j {} fe {} inpos {}",
                a.name,
                crate::quantity::trim_float(a.counts_per_unit),
                if a.rotary { "deg" } else { "mm" },
                if a.conveyor {
                    "-".to_owned()
                } else {
                    a.min_position_counts.to_string()
                },
                if a.conveyor {
                    "-".to_owned()
                } else {
                    a.max_position_counts.to_string()
                },
                crate::quantity::trim_float(a.max_velocity_counts_s),
                crate::quantity::trim_float(a.max_acceleration_counts_s2),
                crate::quantity::trim_float(a.max_jerk_counts_s3),
                a.following_error_counts,
                a.in_position_counts,
            );
        }
        for (i, p) in self.inputs.iter().enumerate() {
            let _ = writeln!(
                out,
                "input {i} {}: device {} bit {}{}",
                p.name,
                p.device.0,
                p.bit,
                if p.active_low { " active-low" } else { "" }
            );
        }
        for (i, p) in self.outputs.iter().enumerate() {
            let _ = writeln!(
                out,
                "output {i} {}: device {} bit {}{}",
                p.name,
                p.device.0,
                p.bit,
                if p.active_low { " active-low" } else { "" }
            );
        }
        for il in &self.interlocks {
            let _ = writeln!(
                out,
                "interlock {}: require {} guards {}",
                il.name,
                self.show_cond(il.require),
                self.show_guards(il.guards)
            );
        }
        let _ = writeln!(out, "entry {}", self.entry.0);
        for (i, instr) in self.code.iter().enumerate() {
            let (text, step) = self.show_instr(instr);
            match step {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "{i:4}  {text:<56} ; {}",
                        self.steps.get(s.index()).map_or("?", |s| s.path.as_str())
                    );
                }
                None => {
                    let _ = writeln!(out, "{i:4}  {text}");
                }
            }
        }
        out
    }

    fn show_guards(&self, g: Guards) -> String {
        match g {
            Guards::AllMotion => "all motion".into(),
            Guards::Axes(mask) => {
                let names: Vec<&str> = (0..64u16)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| self.axis_name(AxisId(i)))
                    .collect();
                format!("axes {}", names.join(","))
            }
            Guards::Steps(r) => {
                let names: Vec<&str> = self
                    .guarded_steps
                    .get(r.range())
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| self.steps.get(s.index()).map_or("?", |s| s.path.as_str()))
                    .collect();
                format!("steps {}", names.join(","))
            }
        }
    }

    /// A condition in postfix, for the listing: `guard_closed estop_chain_ok and`.
    pub fn show_cond(&self, c: CondRef) -> String {
        let ops = self.cond_ops.get(c.0.range()).unwrap_or(&[]);
        let parts: Vec<String> = ops
            .iter()
            .map(|op| match *op {
                CondOp::Const(b) => b.to_string(),
                CondOp::Input(i) => format!(
                    "in:{}",
                    self.inputs.get(i.index()).map_or("?", |p| p.name.as_str())
                ),
                CondOp::Output(o) => format!(
                    "out:{}",
                    self.outputs.get(o.index()).map_or("?", |p| p.name.as_str())
                ),
                CondOp::State(a, s) => format!("{}.{:?}", self.axis_name(a), s),
                CondOp::Compare {
                    axis,
                    op,
                    position_counts,
                } => format!("({} {op} {position_counts})", self.axis_name(axis)),
                CondOp::At {
                    axis,
                    position_counts,
                    window_counts,
                } => format!(
                    "({} at {position_counts}±{window_counts})",
                    self.axis_name(axis)
                ),
                CondOp::Not => "not".into(),
                CondOp::And => "and".into(),
                CondOp::Or => "or".into(),
            })
            .collect();
        parts.join(" ")
    }

    fn show_instr(&self, instr: &Instr) -> (String, Option<StepId>) {
        match *instr {
            Instr::Move {
                step,
                targets,
                relative,
                coordinated,
            } => {
                let t: Vec<String> = self
                    .targets
                    .get(targets.range())
                    .unwrap_or(&[])
                    .iter()
                    .map(|t| {
                        format!(
                            "{}={}@{}",
                            self.axis_name(t.axis),
                            t.position_counts,
                            crate::quantity::trim_float(t.max_velocity_counts_s)
                        )
                    })
                    .collect();
                (
                    format!(
                        "move{}{} {}",
                        if relative { " rel" } else { "" },
                        if coordinated { "" } else { " uncoord" },
                        t.join(" ")
                    ),
                    Some(step),
                )
            }
            Instr::Wait {
                step,
                cond,
                timeout_us,
                on_timeout,
                alarm,
            } => {
                let ot = match on_timeout {
                    OnTimeout::Fault => "fault".to_owned(),
                    OnTimeout::Retry { slot, max } => format!("retry{}x{max}", slot.0),
                    OnTimeout::Goto(t) => format!("goto {}", t.0),
                };
                (
                    format!(
                        "wait [{}] {}us {ot}{}",
                        self.show_cond(cond),
                        timeout_us,
                        alarm.map_or(String::new(), |m| format!(" alarm#{}", m.0))
                    ),
                    Some(step),
                )
            }
            Instr::Set { step, writes } => {
                let w: Vec<String> = self
                    .output_writes
                    .get(writes.range())
                    .unwrap_or(&[])
                    .iter()
                    .map(|w| {
                        format!(
                            "{}={}",
                            self.outputs
                                .get(w.output.index())
                                .map_or("?", |p| p.name.as_str()),
                            if w.on { "on" } else { "off" }
                        )
                    })
                    .collect();
                (format!("set {}", w.join(" ")), Some(step))
            }
            Instr::ConveyorRun {
                step,
                axis,
                velocity_counts_s,
            } => (
                format!(
                    "conveyor-run {} {}",
                    self.axis_name(axis),
                    crate::quantity::trim_float(velocity_counts_s)
                ),
                Some(step),
            ),
            Instr::ConveyorStop { step, axis } => (
                format!("conveyor-stop {}", self.axis_name(axis)),
                Some(step),
            ),
            Instr::ConveyorIndex {
                step,
                axis,
                distance_counts,
                max_velocity_counts_s,
            } => (
                format!(
                    "conveyor-index {} {}@{}",
                    self.axis_name(axis),
                    distance_counts,
                    crate::quantity::trim_float(max_velocity_counts_s)
                ),
                Some(step),
            ),
            Instr::Dwell { step, duration_us } => (format!("dwell {duration_us}us"), Some(step)),
            Instr::Fork {
                step,
                fork,
                branches,
                join,
            } => {
                let b: Vec<String> = self
                    .branch_starts
                    .get(branches.range())
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| s.0.to_string())
                    .collect();
                (
                    format!("fork#{fork} [{}] join {}", b.join(","), join.0),
                    Some(step),
                )
            }
            Instr::Join { fork } => (format!("join#{fork}"), None),
            Instr::RepeatStart { step, slot } => {
                (format!("repeat-start slot{}", slot.0), Some(step))
            }
            Instr::RepeatEnd {
                step,
                slot,
                body,
                until,
            } => {
                let u = match until {
                    RepeatUntil::Times(n) => format!("times {n}"),
                    RepeatUntil::Condition { cond, max } => {
                        format!("until [{}] max {max}", self.show_cond(cond))
                    }
                };
                (
                    format!("repeat-end slot{} body {} {u}", slot.0, body.0),
                    Some(step),
                )
            }
            Instr::Count { step, counter, by } => (
                format!(
                    "count {} +{by}",
                    self.counters
                        .get(counter.index())
                        .map_or("?", |c| c.as_str())
                ),
                Some(step),
            ),
            Instr::Jump { step, target } => (format!("jump {}", target.0), Some(step)),
            Instr::Fault { step, message } => (
                format!(
                    "fault {:?}",
                    self.messages
                        .get(message.index())
                        .map_or("?", |m| m.as_str())
                ),
                Some(step),
            ),
            Instr::End => ("end".into(), None),
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.listing())
    }
}
