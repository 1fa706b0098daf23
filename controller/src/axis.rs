//! Per-drive supervision: the CiA 402 power state machine seen from the controller, the
//! PLCopen axis state of each axis, and the set-point each axis streams.
//!
//! Statusword decoding follows CiA 402 §6.2.2 with the mask/value pairs of BRIEF.md
//! (not-ready 0x4F/0x00, switch-on-disabled 0x4F/0x40, ready-to-switch-on 0x6F/0x21,
//! switched-on 0x6F/0x23, operation-enabled 0x6F/0x27, quick-stop-active 0x6F/0x07,
//! fault-reaction-active 0x4F/0x0F, fault 0x4F/0x08); controlword commands follow §6.2.1
//! (shutdown 0x06, switch on 0x07, enable operation 0x0F, quick stop 0x02, disable
//! voltage 0x00, fault reset on the rising edge of bit 7). Axis states follow PLCopen
//! Motion Control Part 1 (Disabled, Standstill, Homing, Moving, Stopping, ErrorStop).
//!
//! Gantry axes run in cyclic synchronous position (mode 8): the controller owns the
//! trajectory and sends a set-point every SYNC. Conveyors run in profile velocity (mode 3):
//! the drive ramps to the commanded belt speed itself.

use takt_sequences::program::AxisConfig;

use crate::motion::{Limits, MovePlan};
use crate::resync::AxisResync;

pub use takt_drivers::cia402::PowerState;
use takt_drivers::cia402::{Command, Controlword};

/// PLCopen axis state (Motion Control Part 1 state diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AxisState {
    /// Power stage off.
    #[default]
    Disabled,
    /// Enabled, standing still, ready for a motion command.
    Standstill,
    /// Homing runs.
    Homing,
    /// A move, belt run or index runs.
    Moving,
    /// A commanded stop runs; no new motion is accepted until it ends.
    Stopping,
    /// Stopped because of an error; needs a reset.
    ErrorStop,
}

/// What the controller wants from a drive's power stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PowerRequest {
    /// Operation enabled.
    Enable,
    /// Switch on disabled (stop category 0: torque off at once).
    #[default]
    Disable,
    /// Quick stop, then disable (stop category 1).
    QuickStopThenDisable,
}

/// Homing progress of a gantry axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HomingPhase {
    /// Not homed; homing starts once the drive is enabled.
    #[default]
    Pending,
    /// Homing start bit raised; waiting for "homing attained".
    Running,
    /// Writing 0x6060 = 8 (CSP) over SDO.
    SwitchingMode,
    /// Reading 0x6061 until the drive shows CSP.
    ConfirmingMode,
    /// Done: the position is referenced.
    Homed,
}

/// How a conveyor is commanded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum BeltCommand {
    /// Target velocity 0.
    #[default]
    Stop,
    /// Run at a velocity until told otherwise.
    Run {
        /// Belt velocity.
        velocity_counts_s: f64,
    },
    /// Move by a distance: run until the ramp-down point, then stop.
    Index {
        /// Where the belt should stand, counts.
        target_counts: i64,
        /// Velocity while indexing (signed towards the target).
        velocity_counts_s: f64,
    },
}

/// One axis or conveyor under the controller's supervision.
#[derive(Debug, Clone)]
pub struct AxisCtl {
    /// Index of its drive in the controller's node table.
    pub node: usize,
    /// A conveyor (profile velocity, endless).
    pub conveyor: bool,
    /// Kinematic limits in counts.
    pub limits: Limits,
    /// Following-error window, counts.
    pub following_error_counts: i64,
    /// In-position window, counts.
    pub in_position_counts: i64,
    /// Soft limits, counts (`i64::MIN`/`MAX` for conveyors).
    pub min_position_counts: i64,
    /// Upper soft limit.
    pub max_position_counts: i64,
    /// Homing method (0: none).
    pub homing_method: i8,
    /// PLCopen state.
    pub state: AxisState,
    /// Drive power state from the last statusword.
    pub power: PowerState,
    /// What the controller asks of the power stage.
    pub request: PowerRequest,
    /// Homing progress.
    pub homing: HomingPhase,
    /// Fault reset asked: bit 7 is raised on the next statusword showing fault.
    pub fault_reset: bool,
    /// The set-point being streamed (CSP), counts.
    pub demand_counts: f64,
    /// The set-point the previous SYNC carried, counts (for the following-error check and
    /// for the velocity of a controlled stop).
    pub previous_demand_counts: f64,
    /// Position actual from the last TPDO, counts.
    pub actual_counts: i64,
    /// Position actual one TPDO earlier.
    pub previous_actual_counts: i64,
    /// Actual velocity estimated from successive TPDOs, counts/s.
    pub actual_velocity_counts_s: f64,
    /// A TPDO with a position has arrived since start-up.
    pub feedback: bool,
    /// Consecutive SYNCs with the following error beyond its window.
    pub following_error_syncs: u32,
    /// Conveyor command.
    pub belt: BeltCommand,
    /// The thread whose move drives this axis, and the axis's index in that move.
    pub move_owner: Option<(u16, u8)>,
    /// Controlled stop (category 2) in progress: velocity of the ramp, counts/s.
    pub ramp_velocity_counts_s: f64,
    /// What a conveyor does when the cell (re)starts: a belt that ran when the cell
    /// tripped runs again; at the first start, every belt the sequence runs.
    pub resume_belt: BeltCommand,
    /// Statusword from the last TPDO.
    pub statusword: u16,
    /// Resync after a trip.
    pub resync: AxisResync,
    /// A move back to where the interrupted pass left the axis (see
    /// [`AxisResync::standing_at_trip`]), and when it started.
    pub recovery: Option<(MovePlan, f64)>,
}

impl AxisCtl {
    /// Supervision for `axis` driven by node index `node`.
    pub fn new(axis: &AxisConfig, node: usize) -> AxisCtl {
        AxisCtl {
            node,
            conveyor: axis.conveyor,
            limits: Limits {
                max_velocity: axis.max_velocity_counts_s,
                max_acceleration: axis.max_acceleration_counts_s2,
                max_jerk: axis.max_jerk_counts_s3,
            },
            following_error_counts: axis.following_error_counts,
            in_position_counts: axis.in_position_counts,
            min_position_counts: axis.min_position_counts,
            max_position_counts: axis.max_position_counts,
            homing_method: if axis.conveyor { 0 } else { axis.homing_method },
            state: AxisState::Disabled,
            power: PowerState::NotReadyToSwitchOn,
            request: PowerRequest::Disable,
            homing: if axis.conveyor || axis.homing_method == 0 {
                HomingPhase::Homed
            } else {
                HomingPhase::Pending
            },
            fault_reset: false,
            demand_counts: 0.0,
            previous_demand_counts: 0.0,
            actual_counts: 0,
            previous_actual_counts: 0,
            actual_velocity_counts_s: 0.0,
            feedback: false,
            following_error_syncs: 0,
            belt: BeltCommand::Stop,
            move_owner: None,
            ramp_velocity_counts_s: 0.0,
            resume_belt: BeltCommand::Stop,
            statusword: 0,
            resync: AxisResync::default(),
            recovery: None,
        }
    }

    /// The axis stands on its own (no move of the sequence drives it).
    pub fn stands_idle(&self) -> bool {
        self.move_owner.is_none() && self.is_standing()
    }

    /// Where the controller believes the axis stands: the set-point of a gantry axis, the
    /// position actual of a conveyor.
    pub fn believed_counts(&self) -> i64 {
        if self.conveyor {
            self.actual_counts
        } else {
            round_i64(self.demand_counts)
        }
    }

    /// True when a new position actual `position_counts`, sampled `interval_s` after the
    /// previous one, is further from it than the axis can travel in that time at its
    /// maximum velocity, with its following-error window as the margin for overshoot: an
    /// encoder glitch, a counter reset or a reboot, not motion. For synchronous feedback
    /// the cycle gives the interval in whole SYNC periods (one for consecutive samples,
    /// however close together their frames arrived), so the check is "further than
    /// physically possible in one SYNC" by construction.
    pub fn is_position_jump(&self, position_counts: i32, interval_s: f64) -> bool {
        if !self.feedback || interval_s <= 0.0 {
            return false;
        }
        let travel = (i64::from(position_counts) - self.actual_counts).abs() as f64;
        let possible = self.limits.max_velocity * interval_s + self.following_error_counts as f64;
        travel > possible
    }

    /// Takes in a statusword and position actual sampled `dt_s` after the previous one
    /// (whole SYNC periods for synchronous feedback).
    pub fn on_feedback(&mut self, statusword: u16, position_counts: i32, dt_s: f64) {
        self.power = PowerState::from_statusword(statusword);
        self.statusword = statusword;
        let p = i64::from(position_counts);
        if self.feedback && dt_s > 0.0 {
            self.actual_velocity_counts_s = (p - self.actual_counts) as f64 / dt_s;
        } else {
            // The first position: the set-point starts where the axis stands.
            self.demand_counts = p as f64;
            self.previous_demand_counts = p as f64;
        }
        self.previous_actual_counts = self.actual_counts;
        self.actual_counts = p;
        self.feedback = true;
    }

    /// True when the axis stands (velocity below 1 % of its maximum, or below one count per
    /// SYNC for slow axes).
    pub fn is_standing(&self) -> bool {
        self.actual_velocity_counts_s.abs() <= (0.01 * self.limits.max_velocity).max(500.0)
    }

    /// True when the drive is in operation enabled and, for a gantry axis, homed.
    pub fn is_ready(&self) -> bool {
        self.power == PowerState::OperationEnabled && self.homing == HomingPhase::Homed
    }

    /// The controlword to send this cycle, walking the CiA 402 state machine towards the
    /// request. `homing_start` raises bit 4 while homing runs.
    pub fn controlword(&mut self) -> u16 {
        use PowerState::*;
        const SHUTDOWN: u16 = Command::Shutdown.controlword();
        const SWITCH_ON: u16 = Command::SwitchOn.controlword();
        const ENABLE_OPERATION: u16 = Command::EnableOperation.controlword();
        const QUICK_STOP: u16 = Command::QuickStop.controlword();
        const DISABLE_VOLTAGE: u16 = Command::DisableVoltage.controlword();
        // Bit 4 in homing mode: homing operation start.
        const HOMING_START: u16 = Controlword::NEW_SET_POINT.bits();
        const FAULT_RESET: u16 = Controlword::FAULT_RESET.bits();
        if self.power.is_fault() {
            // Bit 7 low first, then high: the drive acts on the rising edge only.
            return if self.fault_reset && self.power == Fault {
                self.fault_reset = false;
                FAULT_RESET
            } else {
                DISABLE_VOLTAGE
            };
        }
        match self.request {
            PowerRequest::Disable => DISABLE_VOLTAGE,
            PowerRequest::QuickStopThenDisable => match self.power {
                // A drive that was not moving has nothing to stop: torque off.
                OperationEnabled => QUICK_STOP,
                QuickStopActive if !self.is_standing() => QUICK_STOP,
                _ => DISABLE_VOLTAGE,
            },
            PowerRequest::Enable => match self.power {
                NotReadyToSwitchOn | SwitchOnDisabled => SHUTDOWN,
                ReadyToSwitchOn => SWITCH_ON,
                SwitchedOn => {
                    // The set-point must equal the actual position as the power stage
                    // takes over, or CSP would jump.
                    self.hold_here();
                    ENABLE_OPERATION
                }
                OperationEnabled if self.homing == HomingPhase::Running => {
                    ENABLE_OPERATION | HOMING_START
                }
                OperationEnabled => ENABLE_OPERATION,
                // Leave quick stop through switch on disabled.
                QuickStopActive => DISABLE_VOLTAGE,
                Fault | FaultReactionActive => DISABLE_VOLTAGE,
            },
        }
    }

    /// Makes the set-point the actual position (after a stop, a reset or homing).
    pub fn hold_here(&mut self) {
        self.demand_counts = self.actual_counts as f64;
        self.previous_demand_counts = self.demand_counts;
        self.ramp_velocity_counts_s = 0.0;
    }

    /// Starts a controlled stop (category 2) of the streamed set-point: the demand
    /// decelerates at the axis's maximum acceleration from its present velocity.
    pub fn begin_ramp_stop(&mut self, sync_period_s: f64) {
        self.move_owner = None;
        if sync_period_s > 0.0 {
            self.ramp_velocity_counts_s =
                (self.demand_counts - self.previous_demand_counts) / sync_period_s;
        }
        self.belt = BeltCommand::Stop;
        if self.state != AxisState::Disabled && self.state != AxisState::ErrorStop {
            self.state = AxisState::Stopping;
        }
    }

    /// Advances a controlled stop by one SYNC period; true once the set-point stands.
    pub fn ramp_step(&mut self, sync_period_s: f64) -> bool {
        let v = self.ramp_velocity_counts_s;
        if v == 0.0 {
            return true;
        }
        let dv = self.limits.max_acceleration * sync_period_s;
        let next = if v.abs() <= dv {
            0.0
        } else {
            v - dv * v.signum()
        };
        self.demand_counts += 0.5 * (v + next) * sync_period_s;
        self.ramp_velocity_counts_s = next;
        next == 0.0
    }

    /// The following error of the last feedback against the set-point that was due when
    /// the drive sampled it (the one sent a SYNC earlier), counts.
    pub fn following_error_counts_now(&self) -> i64 {
        self.actual_counts - round_i64(self.previous_demand_counts)
    }
}

/// `x.round() as i64` (half away from zero, saturating, NaN to 0), without the libm call
/// that `f64::round` is on baseline x86-64: the cycle rounds every axis's set-point and
/// following error every cycle.
pub fn round_i64(x: f64) -> i64 {
    // From 2^52 on every f64 is a whole number already; NaN and the infinities convert as
    // `as` converts them.
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x as i64;
    }
    // Truncation towards zero, exact below 2^52; so is the fraction left over.
    let whole = x as i64;
    let fraction = x - whole as f64;
    if fraction >= 0.5 {
        whole + 1
    } else if fraction <= -0.5 {
        whole - 1
    } else {
        whole
    }
}

/// `x.round() as i32`, as [`round_i64`] (saturating at the `i32` limits as `as` does).
pub fn round_i32(x: f64) -> i32 {
    round_i64(x).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_f64_round_exactly() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            2_147_483_647.5,
            -2_147_483_648.5,
            3e9,
            -3e9,
            1e19,
            -1e19,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // A spread of set-points in counts, with halves and near-halves among them.
        let mut x: f64 = 1e-3;
        while x < 1e17 {
            for v in [x, x + 0.5, x - 0.5, f64::from_bits(x.to_bits() + 1)] {
                xs.extend([v, -v]);
            }
            x *= 1.37;
        }
        for x in xs {
            assert_eq!(round_i64(x), x.round() as i64, "{x:e}");
            assert_eq!(round_i32(x), x.round() as i32, "{x:e}");
        }
    }

    #[test]
    fn a_position_jump_is_more_than_the_axis_can_travel_between_two_samples() {
        let mut a = AxisCtl::new(&x_config(), 0);
        let sync_s = 0.002;
        a.on_feedback(0x27, 100_000, 0.0);
        // 1.5 m/s for one SYNC is 3000 counts, plus the 2000-count window.
        assert!(!a.is_position_jump(105_000, sync_s));
        assert!(a.is_position_jump(105_001, sync_s));
        // A sample lost between: two SYNCs of travel are possible.
        assert!(!a.is_position_jump(108_000, 2.0 * sync_s));
        assert!(a.is_position_jump(108_001, 2.0 * sync_s));
        // No interval (the first sample after the feedback was lost): nothing to compare.
        assert!(!a.is_position_jump(500_000, 0.0));
    }

    fn x_config() -> AxisConfig {
        AxisConfig {
            name: "x".into(),
            device: takt_sequences::program::DeviceId(0),
            conveyor: false,
            rotary: false,
            counts_per_unit: 1000.0,
            min_position_counts: 0,
            max_position_counts: 600_000,
            max_velocity_counts_s: 1_500_000.0,
            max_acceleration_counts_s2: 10_000_000.0,
            max_jerk_counts_s3: 1e8,
            following_error_counts: 2000,
            in_position_counts: 100,
            homing_method: 35,
            homing_offset_counts: 0,
            resync: takt_sequences::program::ResyncPolicy::Reread,
            start_position_counts: 0,
        }
    }

    #[test]
    fn ramp_stop_decelerates_to_rest() {
        let cfg = AxisConfig {
            name: "x".into(),
            device: takt_sequences::program::DeviceId(0),
            conveyor: false,
            rotary: false,
            counts_per_unit: 1000.0,
            min_position_counts: 0,
            max_position_counts: 600_000,
            max_velocity_counts_s: 1_500_000.0,
            max_acceleration_counts_s2: 10_000_000.0,
            max_jerk_counts_s3: 1e8,
            following_error_counts: 2000,
            in_position_counts: 100,
            homing_method: 35,
            homing_offset_counts: 0,
            resync: takt_sequences::program::ResyncPolicy::Reread,
            start_position_counts: 0,
        };
        let mut a = AxisCtl::new(&cfg, 0);
        a.previous_demand_counts = 0.0;
        a.demand_counts = 2000.0; // 1 m/s at a 2 ms SYNC
        a.begin_ramp_stop(0.002);
        let mut n = 0;
        while !a.ramp_step(0.002) {
            n += 1;
            assert!(n < 100);
        }
        // 1 m/s at 10 m/s²: 0.1 s, 50 mm.
        assert!(
            (a.demand_counts - 2000.0 - 50_000.0).abs() < 2500.0,
            "{}",
            a.demand_counts
        );
    }
}
