//! What enters the real-time cycle: operator and supervisor commands, through a bounded
//! channel the cycle polls with `try_recv` once per cycle (never blocking).
//!
//! The commands are PackML's (ISA-TR88.00.02): start, hold, unhold (resume), stop, reset;
//! plus e-stop (an operator e-stop latches exactly like the e-stop chain input) and
//! single-step (in Held: run one more step, then hold again).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// A command to the cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stopped → Starting → Execute; the only command that starts motion.
    Start,
    /// Execute → Holding → Held: finish the running steps, start no new one.
    Hold,
    /// Held → Execute.
    Resume,
    /// Stop at the end of the current pass of the sequence (Execute → Stopping → Stopped).
    Stop,
    /// Latch an e-stop: stop in the e-stop's stop category, needs a reset.
    EStop,
    /// Aborted → Clearing → Stopped, once the cause is gone; never restarts motion.
    Reset,
    /// In Held: run one step, then hold again.
    SingleStep,
}

/// A queued command with its sender's tag: the cycle reports the tag back with whether the
/// cell's state allowed the command (`EventKind::Command`), so the control server can
/// answer the request that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tagged {
    /// The command.
    pub command: Command,
    /// The sender's tag; 0 for `takt run` itself.
    pub tag: u32,
}

/// The sending side, for the operator interface or the supervisor.
#[derive(Debug, Clone)]
pub struct CommandSender(SyncSender<Tagged>);

impl CommandSender {
    /// Queues a command; false when the queue is full (the cycle is behind) or the cell is
    /// gone.
    pub fn send(&self, command: Command) -> bool {
        self.send_tagged(command, 0)
    }

    /// Queues a command with a tag the cycle's `EventKind::Command` carries back.
    pub fn send_tagged(&self, command: Command, tag: u32) -> bool {
        match self.0.try_send(Tagged { command, tag }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The cycle's side of the command queue.
#[derive(Debug)]
pub struct CommandQueue(Receiver<Tagged>);

impl CommandQueue {
    /// The next command, if one is waiting. Never blocks.
    pub fn poll(&self) -> Option<Tagged> {
        self.0.try_recv().ok()
    }
}

/// A bounded command queue of `capacity` entries.
pub fn command_channel(capacity: usize) -> (CommandSender, CommandQueue) {
    let (tx, rx) = sync_channel(capacity.max(1));
    (CommandSender(tx), CommandQueue(rx))
}
