//! Safety supervision in the cycle: the cell state model, interlocks, the e-stop latch and
//! stop categories.
//!
//! **takt's e-stop is not a safety function.** The hardware e-stop chain and the drives'
//! Safe Torque Off are; takt watches them (the `estop_chain_ok` input), stops the cell in
//! an orderly way, and never fights them.
//!
//! - Cell states follow PackML (ISA-TR88.00.02): Stopped, Starting, Execute, Holding,
//!   Held, Stopping, Aborting, Aborted, Clearing.
//! - Every trip — e-stop chain or command, an interlock dropping under guarded motion, a
//!   guarded motion refused, following error, heartbeat loss, stale feedback, a drive fault,
//!   a soft limit, a sequence fault — latches: Aborting, then Aborted until an explicit
//!   reset (Clearing → Stopped). A reset never restarts motion; only a start does.
//! - Stop categories after IEC 60204-1 §9.2.2, chosen per fault class in the cell file:
//!   0 = torque off at once (CiA 402 disable voltage), 1 = quick stop, then torque off,
//!   2 = controlled stop with power kept (the controller ramps the set-points down).

use takt_sequences::Program;
use takt_sequences::program::{
    AxisId, CellView, FaultClass, Guards, InputId, StepId, StopCategories,
};

/// PackML cell state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CellState {
    /// Powered, still, waiting for a start.
    #[default]
    Stopped,
    /// Enabling drives (and finishing start-up) before running.
    Starting,
    /// The sequence runs.
    Execute,
    /// Finishing the running steps; no new step starts.
    Holding,
    /// Paused between steps.
    Held,
    /// Finishing the current pass, then Stopped.
    Stopping,
    /// Stopping after a trip in the trip's stop category.
    Aborting,
    /// Stopped after a trip; needs a reset.
    Aborted,
    /// Resetting drive faults and latches.
    Clearing,
}

/// Why the cell tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripCause {
    /// The e-stop chain input opened.
    EStopChain,
    /// An operator e-stop command.
    EStopCommand,
    /// An interlock dropped while what it guards was moving.
    Interlock {
        /// Interlock index.
        interlock: u16,
    },
    /// A guarded motion was refused at its start because its interlock was false.
    Refused {
        /// Interlock index.
        interlock: u16,
        /// The instruction.
        instr: u32,
    },
    /// A target outside an axis's soft limits.
    SoftLimit {
        /// Axis index.
        axis: u16,
    },
    /// Following error beyond the axis's window.
    FollowingError {
        /// Axis index.
        axis: u16,
    },
    /// A device's heartbeat stopped.
    HeartbeatLost {
        /// Node-ID.
        node: u8,
    },
    /// A device rebooted while configured.
    Rebooted {
        /// Node-ID.
        node: u8,
    },
    /// No feedback PDO for too many SYNCs.
    StaleFeedback {
        /// Node-ID.
        node: u8,
    },
    /// A drive went to fault.
    DriveFault {
        /// Axis index.
        axis: u16,
    },
    /// A wait timed out, a `fault` step ran, or a move could not be planned.
    SequenceFault {
        /// The instruction.
        instr: u32,
    },
    /// The cycle overran its period (trip rule of the RT runtime).
    CycleOverrun,
    /// The controller's CAN interface went bus-off.
    BusOff {
        /// Bus index.
        bus: u8,
    },
    /// A position actual jumped further than the axis can move in one SYNC.
    PositionJump {
        /// Axis index.
        axis: u16,
    },
    /// A rebooted device's position could not be recovered (an incremental encoder that
    /// counts from zero again, and no homing method that finds a reference): the axis
    /// must be brought to a known position by the operator.
    PositionLost {
        /// Axis index.
        axis: u16,
    },
}

impl TripCause {
    /// The fault class of the cell file this cause belongs to.
    pub fn class(self) -> FaultClass {
        match self {
            TripCause::EStopChain | TripCause::EStopCommand => FaultClass::Estop,
            TripCause::Interlock { .. } | TripCause::Refused { .. } => FaultClass::Interlock,
            TripCause::SoftLimit { .. } | TripCause::SequenceFault { .. } => {
                FaultClass::SequenceFault
            }
            TripCause::FollowingError { .. } => FaultClass::FollowingError,
            TripCause::HeartbeatLost { .. } => FaultClass::HeartbeatLost,
            TripCause::Rebooted { .. } | TripCause::PositionLost { .. } => FaultClass::Rebooted,
            TripCause::StaleFeedback { .. } => FaultClass::StaleFeedback,
            TripCause::DriveFault { .. } => FaultClass::DriveFault,
            TripCause::CycleOverrun => FaultClass::CycleOverrun,
            TripCause::BusOff { .. } => FaultClass::BusOff,
            TripCause::PositionJump { .. } => FaultClass::PositionJump,
        }
    }

    /// The stop category the cell file gives this fault class.
    pub fn category(self, c: &StopCategories) -> u8 {
        c.of(self.class())
    }

    /// True when the cell file lets the cell resync and resume by itself after this trip.
    /// An e-stop or an interlock never does (the checker refuses them in `auto_resume`;
    /// this holds even for a hand-built program), nor a lost position.
    pub fn auto_resumes(self, program: &Program) -> bool {
        !matches!(self.class(), FaultClass::Estop | FaultClass::Interlock)
            && !matches!(self, TripCause::PositionLost { .. })
            && program.resync.auto_resumes(self.class())
    }
}

/// The first interlock that forbids motion of `axis` now, if any.
pub fn axis_blocked(program: &Program, view: &impl CellView, axis: AxisId) -> Option<u16> {
    let bit = 1u64.checked_shl(u32::from(axis.0)).unwrap_or(0);
    for (i, il) in program.interlocks.iter().enumerate() {
        let guards = match il.guards {
            Guards::AllMotion => true,
            Guards::Axes(mask) => mask & bit != 0,
            Guards::Steps(_) => false,
        };
        if guards && !program.eval(il.require, view) {
            return Some(i as u16);
        }
    }
    None
}

/// The first interlock guarding `step` that is false now, if any.
pub fn step_blocked(program: &Program, view: &impl CellView, step: StepId) -> Option<u16> {
    for (i, il) in program.interlocks.iter().enumerate() {
        if let Guards::Steps(range) = il.guards {
            let guarded = program
                .guarded_steps
                .get(range.range())
                .is_some_and(|steps| steps.contains(&step));
            if guarded && !program.eval(il.require, view) {
                return Some(i as u16);
            }
        }
    }
    None
}

/// The e-stop chain input: the input named `estop_chain_ok` in the cell file (BRIEF.md's
/// demo cell), if the cell has one.
pub fn estop_input(program: &Program) -> Option<InputId> {
    program
        .inputs
        .iter()
        .position(|i| i.name == "estop_chain_ok")
        .map(|i| InputId(i as u16))
}
