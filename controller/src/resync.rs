//! Resynchronization after a lost position: the per-axis state machine that finds out
//! where an axis really is after a trip, before the interrupted pass resumes.
//!
//! After any trip the controller no longer trusts its picture of the axes: a stepper may
//! have lost steps, a rebooted drive has lost its configuration (and an incremental encoder
//! its reference), a silent or bus-off drive may have moved while nobody listened. When the
//! cell starts again (the operator's start, or an automatic resume the cell file allows for
//! the fault class), every axis runs this machine inside the cycle, allocation-free, before
//! the sequencer resumes:
//!
//! 1. wait until its device is back: configured again (a rebooted one completely — PDOs,
//!    heartbeats, limits — by the cycle's start-up machinery), heartbeat alive, feedback
//!    arriving;
//! 2. read position actual 0x6064 over SDO (the PDO value could be a stale image) and
//!    compare it with the last demand;
//! 3. per the axis's `resync` policy in the cell file:
//!    - `reread`: adopt the actual position as the truth; the sequencer re-plans from it.
//!      After a reboot an incremental encoder counts from zero, so a read that disagrees
//!      with the belief beyond the following-error window cannot be adopted: the axis is
//!      re-homed if its homing method finds a reference (a switch; not 35/37, "current
//!      position"), otherwise its position is lost and the operator must act;
//!    - `rehome`: run the homing method (switching the drive to homing mode over SDO,
//!      CiA 402 §6.3), then back to cyclic synchronous position;
//! 4. report [`Outcome::Done`] with the position before and after, which the cycle turns
//!    into a resync event.

use takt_drivers::can::Timestamp;
use takt_drivers::canopen::sdo::{Multiplexer, SdoClient, SdoDone};
use takt_drivers::cia402::{Mode, Statusword};
use takt_sequences::Program;
use takt_sequences::program::{AxisId, ResyncPolicy};

use crate::axis::{AxisCtl, HomingPhase};

/// What a resync did to an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncAction {
    /// The actual position was read back and adopted.
    Reread,
    /// The axis was homed again.
    Rehome,
}

/// Where an axis's resync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResyncPhase {
    /// Nothing to do.
    #[default]
    Idle,
    /// Waiting for the device: configured, heartbeat alive, feedback arriving.
    Pending,
    /// Reading position actual 0x6064.
    Reading,
    /// Writing 0x6060 = homing mode.
    ToHomingMode,
    /// Reading 0x6061 until the drive shows homing mode.
    ConfirmHomingMode,
    /// The homing method runs (the cycle's homing machine).
    Homing,
    /// Writing 0x6060 = cyclic synchronous position (a rebooted drive was configured for
    /// homing).
    ToCspMode,
    /// Reading 0x6061 until the drive shows CSP.
    ConfirmCspMode,
    /// Done; the cycle reports it.
    Done,
    /// The position cannot be recovered by the controller.
    Lost,
}

/// The resync of one axis. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AxisResync {
    /// Progress.
    pub phase: ResyncPhase,
    /// Its device rebooted since the trip.
    pub rebooted: bool,
    /// The demand (gantry axes) or position actual (conveyors) the controller believed in
    /// when the cell tripped, counts.
    pub believed_counts: i64,
    /// Position actual read back, counts.
    pub read_counts: i64,
    /// Position actual last reported before the device rebooted, counts.
    pub before_reboot_counts: i64,
    /// The axis stood still (no move of its own) when the cell tripped: if it is found
    /// elsewhere (a stepper that lost steps holding its height), it is moved back to where
    /// the interrupted pass left it before the pass resumes, so the pass finds the cell as
    /// it expects it (Z back at z_safe before X/Y go on).
    pub standing_at_trip: bool,
    /// What the resync does.
    pub action: Option<ResyncAction>,
}

/// What one cycle of an axis's resync came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still working (or nothing to do).
    Working,
    /// Resynced: the believed and the adopted position.
    Done {
        /// What was done.
        action: ResyncAction,
        /// Believed before, counts.
        before_counts: i64,
        /// Adopted after, counts.
        after_counts: i64,
    },
    /// The position is lost (rebooted incremental encoder, no referencing homing method):
    /// the believed and the read position.
    Lost {
        /// Believed before, counts.
        before_counts: i64,
        /// Read back, counts.
        read_counts: i64,
    },
}

impl AxisResync {
    /// Arms the resync of an axis that believed it stood at `believed_counts`. A device
    /// that reboots while armed keeps its first belief.
    pub fn arm(&mut self, believed_counts: i64, standing: bool) {
        if self.phase == ResyncPhase::Idle || self.phase == ResyncPhase::Done {
            *self = AxisResync {
                phase: ResyncPhase::Pending,
                believed_counts,
                standing_at_trip: standing,
                ..AxisResync::default()
            };
        } else {
            // Interrupted part-way (a second trip): start over from waiting for the device,
            // and forget what was under way — a homing cut short has found nothing (found
            // by the fuzzer, seed 654: the second attempt took the first one's "rehome" as
            // done and adopted the rebooted encoder's count).
            self.phase = ResyncPhase::Pending;
            self.action = None;
        }
    }

    /// Its device rebooted while it stood at `actual_counts` (the last position it
    /// reported).
    pub fn mark_rebooted(&mut self, actual_counts: i64) {
        if !self.rebooted {
            self.rebooted = true;
            self.before_reboot_counts = actual_counts;
        }
    }

    /// True while the resync has not finished (the sequencer must not resume).
    pub fn active(&self) -> bool {
        !matches!(self.phase, ResyncPhase::Idle | ResyncPhase::Done)
    }
}

/// What the cycle reports about resync and resume, as one event kind
/// ([`EventKind::Resync`](crate::status::EventKind::Resync)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncEvent {
    /// An axis was resynced: where the controller believed it stood when the cell
    /// tripped, and the position it adopted.
    Axis {
        /// Axis index.
        axis: u16,
        /// Read back or homed.
        action: ResyncAction,
        /// Believed, counts.
        before_counts: i64,
        /// Adopted, counts.
        after_counts: i64,
    },
    /// An axis's position could not be recovered.
    PositionLost {
        /// Axis index.
        axis: u16,
        /// Believed, counts.
        before_counts: i64,
        /// Read back, counts.
        read_counts: i64,
    },
    /// The controller's interface on `bus` went bus-off.
    BusOff {
        /// Bus index.
        bus: u8,
    },
    /// The interface is back on the bus (restarted by the kernel's restart-ms or netlink).
    BusRestarted {
        /// Bus index.
        bus: u8,
    },
    /// A device whose heartbeat was lost is heard again.
    HeartbeatBack {
        /// Node-ID.
        node: u8,
    },
    /// The cell file lets this fault class resume by itself: the controller resets and
    /// starts the cell (it resyncs first).
    AutoResume,
    /// The interrupted pass does not resume: `[resync] persist` held when the cell
    /// stopped and no longer does (the part left the nozzle). The cell holds; the
    /// operator clears the cell and resets (the pass is abandoned), then starts.
    ResumeHeld,
    /// `[resync] persist` was lost by an input while the pass ran (the part fell off the
    /// nozzle): the cell holds, as for [`ResyncEvent::ResumeHeld`].
    PersistLost,
    /// The operator reset a held resume: the interrupted pass is abandoned.
    PassAbandoned,
}

/// One line for a resync event (non-RT side only).
pub fn describe(program: &Program, e: ResyncEvent) -> String {
    let axis = |a: u16| program.axis_name(AxisId(a));
    let mm = |a: u16, counts: i64| {
        let scale = program
            .axes
            .get(usize::from(a))
            .map_or(1.0, |c| c.counts_per_unit.max(1e-9));
        counts as f64 / scale
    };
    match e {
        ResyncEvent::Axis {
            axis: a,
            action,
            before_counts,
            after_counts,
        } => format!(
            "resync {}: {} — believed {:.3}, now {:.3} ({:+.3})",
            axis(a),
            match action {
                ResyncAction::Reread => "position read back",
                ResyncAction::Rehome => "homed again",
            },
            mm(a, before_counts),
            mm(a, after_counts),
            mm(a, after_counts - before_counts)
        ),
        ResyncEvent::PositionLost {
            axis: a,
            before_counts,
            read_counts,
        } => format!(
            "resync {}: position lost — believed {:.3}, the rebooted drive reads {:.3} and its homing method cannot find a reference: bring the axis to its home position by hand, then reset and start",
            axis(a),
            mm(a, before_counts),
            mm(a, read_counts)
        ),
        ResyncEvent::BusOff { bus } => format!(
            "bus {}: the interface went bus-off",
            program
                .buses
                .get(usize::from(bus))
                .map_or("?", |b| b.name.as_str())
        ),
        ResyncEvent::BusRestarted { bus } => format!(
            "bus {}: the interface is back on the bus; every node is checked and resynced before a start",
            program
                .buses
                .get(usize::from(bus))
                .map_or("?", |b| b.name.as_str())
        ),
        ResyncEvent::HeartbeatBack { node } => format!("node {node}: heartbeat back"),
        ResyncEvent::AutoResume => {
            "the cell file lets this fault resume by itself: reset, resync, start".to_owned()
        }
        ResyncEvent::ResumeHeld => format!(
            "held instead of resuming: {}",
            if program.resync.hold_message.is_empty() {
                "what the interrupted step had done is no longer there"
            } else {
                program.resync.hold_message.as_str()
            }
        ),
        ResyncEvent::PersistLost => format!(
            "held: what the pass had done is gone while it ran: {}",
            if program.resync.hold_message.is_empty() {
                "the condition of [resync] persist no longer holds"
            } else {
                program.resync.hold_message.as_str()
            }
        ),
        ResyncEvent::PassAbandoned => {
            "reset while held: the interrupted pass is abandoned; start begins a new one".to_owned()
        }
    }
}

/// Homing methods that only declare the current position home (CiA 402 methods 35 and
/// 37): they cannot find a lost position.
fn references(method: i8) -> bool {
    method != 0 && method != 35 && method != 37
}

/// One cycle of `axis`'s resync. `device_back` says its device is configured, its
/// heartbeat alive and its feedback arriving; `sdo` is its device's SDO client, free
/// whenever the resync asks for it (configuration has ended).
pub fn advance(
    axis: &mut AxisCtl,
    sdo: &mut SdoClient,
    device_back: bool,
    policy: ResyncPolicy,
    now: Timestamp,
) -> Outcome {
    const CSP: u8 = Mode::CyclicSyncPosition.to_i8() as u8;
    const HOMING: u8 = Mode::Homing.to_i8() as u8;
    let r = &mut axis.resync;
    match r.phase {
        ResyncPhase::Idle | ResyncPhase::Done | ResyncPhase::Lost => Outcome::Working,
        ResyncPhase::Pending => {
            if device_back && axis.feedback && !sdo.is_busy() {
                let _ = sdo.take_outcome();
                if sdo.start_upload(Multiplexer::new(0x6064, 0), now).is_ok() {
                    r.phase = ResyncPhase::Reading;
                }
            }
            Outcome::Working
        }
        ResyncPhase::Reading => match sdo.take_outcome() {
            Some(Ok(SdoDone::Uploaded { len: 4, .. })) => {
                let d = sdo.data();
                let read = i32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                r.read_counts = i64::from(read);
                decide(axis, sdo, policy, now)
            }
            // A failed read (a timeout, an abort) is tried again once the device is back.
            Some(_) => {
                r.phase = ResyncPhase::Pending;
                Outcome::Working
            }
            None => Outcome::Working,
        },
        ResyncPhase::ToHomingMode | ResyncPhase::ToCspMode => match sdo.take_outcome() {
            Some(Ok(_)) => {
                r.phase = if r.phase == ResyncPhase::ToHomingMode {
                    ResyncPhase::ConfirmHomingMode
                } else {
                    ResyncPhase::ConfirmCspMode
                };
                let _ = sdo.start_upload(Multiplexer::new(0x6061, 0), now);
                Outcome::Working
            }
            Some(Err(_)) => {
                r.phase = ResyncPhase::Pending;
                Outcome::Working
            }
            None => Outcome::Working,
        },
        ResyncPhase::ConfirmHomingMode | ResyncPhase::ConfirmCspMode => {
            let want = if r.phase == ResyncPhase::ConfirmHomingMode {
                HOMING
            } else {
                CSP
            };
            match sdo.take_outcome() {
                Some(Ok(SdoDone::Uploaded { .. })) if sdo.data().first() == Some(&want) => {
                    if want == HOMING {
                        r.phase = ResyncPhase::Homing;
                        Outcome::Working
                    } else {
                        finish(axis)
                    }
                }
                Some(_) => {
                    let _ = sdo.start_upload(Multiplexer::new(0x6061, 0), now);
                    Outcome::Working
                }
                None => Outcome::Working,
            }
        }
        ResyncPhase::Homing => {
            // The homing machine of the cycle runs the method (start bit, "homing
            // attained", back to CSP). It starts once the statusword no longer shows an
            // old "attained" from before the mode change.
            if axis.homing == HomingPhase::Homed && r.action.is_none() {
                if axis.statusword & Statusword::OPERATION_SPECIFIC_12.bits() == 0 {
                    axis.homing = HomingPhase::Pending;
                    r.action = Some(ResyncAction::Rehome);
                }
                Outcome::Working
            } else if axis.homing == HomingPhase::Homed {
                finish(axis)
            } else {
                Outcome::Working
            }
        }
    }
}

/// The position was read: adopt it, or home, or give up.
fn decide(
    axis: &mut AxisCtl,
    sdo: &mut SdoClient,
    policy: ResyncPolicy,
    now: Timestamp,
) -> Outcome {
    const CSP: u8 = Mode::CyclicSyncPosition.to_i8() as u8;
    const HOMING: u8 = Mode::Homing.to_i8() as u8;
    let r = &mut axis.resync;
    let read = r.read_counts;
    if axis.conveyor {
        // A belt is endless: its position is whatever the encoder says; the cycle shifts
        // a pending index target by the difference.
        axis.actual_counts = read;
        axis.previous_actual_counts = read;
        r.action = Some(ResyncAction::Reread);
        r.phase = ResyncPhase::Done;
        return Outcome::Done {
            action: ResyncAction::Reread,
            before_counts: r.believed_counts,
            after_counts: read,
        };
    }
    let differs = (read - r.before_reboot_counts).abs() > axis.following_error_counts;
    let rehome = match policy {
        ResyncPolicy::Rehome => true,
        ResyncPolicy::Reread if r.rebooted && differs => {
            if !references(axis.homing_method) {
                r.phase = ResyncPhase::Lost;
                return Outcome::Lost {
                    before_counts: r.believed_counts,
                    read_counts: read,
                };
            }
            true
        }
        ResyncPolicy::Reread => false,
    };
    if rehome {
        // A rebooted drive was configured into homing mode already.
        if r.rebooted {
            r.phase = ResyncPhase::Homing;
        } else {
            r.phase = ResyncPhase::ToHomingMode;
            let _ = sdo.start_download(Multiplexer::new(0x6060, 0), &[HOMING], now);
        }
        // The homing machine must not start on a stale "homing attained".
        axis.homing = HomingPhase::Homed;
        return Outcome::Working;
    }
    r.action = Some(ResyncAction::Reread);
    let rebooted = r.rebooted;
    axis.actual_counts = read;
    axis.previous_actual_counts = read;
    axis.hold_here();
    if rebooted && axis.homing_method != 0 {
        // The configuration put the drive in homing mode; it streams CSP set-points.
        axis.resync.phase = ResyncPhase::ToCspMode;
        let _ = sdo.start_download(Multiplexer::new(0x6060, 0), &[CSP], now);
        return Outcome::Working;
    }
    finish(axis)
}

fn finish(axis: &mut AxisCtl) -> Outcome {
    let r = &mut axis.resync;
    r.phase = ResyncPhase::Done;
    axis.homing = HomingPhase::Homed;
    let action = r.action.unwrap_or(ResyncAction::Reread);
    let before_counts = r.believed_counts;
    axis.hold_here();
    Outcome::Done {
        action,
        before_counts,
        after_counts: axis.demand_counts.round() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_switch_methods_find_a_lost_position() {
        assert!(references(19));
        assert!(references(21));
        assert!(!references(35));
        assert!(!references(37));
        assert!(!references(0));
    }

    #[test]
    fn arming_twice_keeps_the_first_belief() {
        let mut r = AxisResync::default();
        r.arm(1000, true);
        r.phase = ResyncPhase::Reading;
        r.arm(5000, false);
        assert_eq!(r.believed_counts, 1000);
        assert_eq!(r.phase, ResyncPhase::Pending);
        assert!(r.active());
        // A homing cut short by the second trip is not taken as done.
        r.action = Some(ResyncAction::Rehome);
        r.phase = ResyncPhase::Homing;
        r.arm(5000, false);
        assert_eq!(r.action, None);
    }
}
