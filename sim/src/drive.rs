//! A simulated CiA 402 drive (IEC 61800-7-201 / CiA 402-2): the power drive system state
//! machine with quick stop (0x605A), shutdown (0x605B) and disable operation (0x605C)
//! options and fault reaction (0x605E), fault reset on the rising
//! edge of controlword bit 7, the abort connection option 0x6007 on heartbeat loss, and the
//! modes profile position (new set-point / set-point acknowledge handshake, change set
//! immediately, relative targets, halt, target reached through the position window
//! 0x6067/0x6068), cyclic synchronous position (0x607A taken at each SYNC and interpolated
//! over the SYNC period), profile velocity (0x60FF) and homing (0x6098: 35/37 current
//! position, 19 and 21 home switch on the positive / negative side, speeds 0x6099,
//! acceleration 0x609A, home offset 0x607C). Software position limits 0x607D clamp targets
//! and raise "internal limit active"; a following error beyond 0x6065 for longer than
//! 0x6066 faults the drive with error code and EMCY 0x8611.
//!
//! A drive may carry a holding brake ([`HoldingBrake`], as a vertical axis does): the drive
//! controls it from its power state as CiA 402 drives do — it grips whenever the power
//! stage gives no torque (switch on disabled, ready to switch on, switched on, fault, a
//! reboot, Safe Torque Off) or when the controller sets it (0x60FE:01 bit 0 "set brake",
//! enabled in the mask 0x60FE:02); transition 4 releases it and reports operation enabled
//! only once it has let go. It grips `engage_ms` after the drive drops it (a category 0
//! stop or STO lets a moving axis run on that long, then brakes it on the brake's torque;
//! a commanded disable keeps the motor holding the axis until the brake grips, so it does not
//! sag) and lets go `release_ms` after the drive lifts it.
//!
//! Behind it a [`Motor`] (servo with the drive's position loop, or open-loop stepper with an
//! encoder) moves the axis; the world reads the axis' physical position in mm. Position
//! actual 0x6064 is the encoder: incremental unless the spec says absolute, so a reboot
//! loses the homing.

use core::f64::consts::TAU;
use core::time::Duration;

use serde::{Deserialize, Serialize};
use takt_drivers::can::Timestamp;
use takt_drivers::canopen::ErrorRegister;
use takt_drivers::canopen::emcy::FOLLOWING_ERROR;
use takt_drivers::canopen::sdo::AbortCode;

use crate::cia402::{Command, Controlword, Mode, PowerState, Statusword};
use crate::node::{CoreEvents, EMCY_COMMUNICATION, EMCY_HEARTBEAT, NodeCore};
use crate::od::{Access, DataType, Entry, ObjectDictionary, OdError, Slot};
use crate::physics::{Motor, Servo, ServoParams, Stepper, StepperParams};
use crate::profile::Profile;

/// The motor behind a drive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MotorSpec {
    /// A servo motor with an encoder of `counts_per_rev`.
    Servo {
        /// Mechanics and loop tuning.
        params: ServoParams,
        /// Encoder counts per motor revolution (the drive's position unit).
        counts_per_rev: u32,
    },
    /// A stepper run open loop, with an encoder read back at the micro-step resolution.
    Stepper {
        /// Mechanics.
        params: StepperParams,
        /// Micro-steps per full step; one micro-step is one position count.
        microsteps: u32,
    },
}

impl MotorSpec {
    /// Position counts per motor revolution.
    pub fn counts_per_rev(&self) -> f64 {
        match *self {
            MotorSpec::Servo { counts_per_rev, .. } => f64::from(counts_per_rev),
            MotorSpec::Stepper { params, microsteps } => {
                f64::from(params.full_steps_per_rev) * f64::from(microsteps)
            }
        }
    }
}

/// Factory defaults of the CiA 402 parameters, in position counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveDefaults {
    /// 0x6081 profile velocity, counts/s.
    pub profile_velocity_counts_s: u32,
    /// 0x6083 profile acceleration, counts/s².
    pub profile_acceleration_counts_s2: u32,
    /// 0x6084 profile deceleration, counts/s².
    pub profile_deceleration_counts_s2: u32,
    /// 0x6085 quick stop deceleration, counts/s².
    pub quick_stop_deceleration_counts_s2: u32,
    /// 0x6065 following error window, counts (0xFFFF_FFFF: off).
    pub following_error_window_counts: u32,
    /// 0x6066 following error time-out, ms.
    pub following_error_timeout_ms: u16,
    /// 0x6067 position window, counts.
    pub position_window_counts: u32,
    /// 0x6068 position window time, ms.
    pub position_window_time_ms: u16,
    /// 0x607D software position limits (min, max), counts; equal values: no limits.
    pub software_limits_counts: [i32; 2],
    /// 0x605A quick stop option code.
    pub quick_stop_option: i16,
    /// 0x605E fault reaction option code.
    pub fault_reaction_option: i16,
    /// 0x6007 abort connection option code.
    pub abort_connection_option: i16,
    /// 0x6099 homing speeds (switch search, zero search), counts/s.
    pub homing_speeds_counts_s: [u32; 2],
    /// 0x609A homing acceleration, counts/s².
    pub homing_acceleration_counts_s2: u32,
    /// 0x606F velocity threshold: below it the axis counts as standing still, counts/s.
    #[serde(default = "default_velocity_threshold")]
    pub velocity_threshold_counts_s: u16,
}

fn default_velocity_threshold() -> u16 {
    100
}

/// One simulated drive and its axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveSpec {
    /// The motor.
    pub motor: MotorSpec,
    /// Travel per motor revolution, mm (lead of the screw, or belt travel).
    pub mm_per_rev: f64,
    /// Physical position at power-on, mm (machine coordinates the world uses).
    pub start_mm: f64,
    /// True for an absolute encoder: position actual survives a reboot.
    #[serde(default)]
    pub absolute_encoder: bool,
    /// Physical position of the home switch edge, mm, if the axis has one.
    #[serde(default)]
    pub home_switch_mm: Option<f64>,
    /// Distance a homing search may travel before it gives up with a homing error, mm.
    pub homing_search_mm: f64,
    /// CiA 402 parameter defaults.
    pub defaults: DriveDefaults,
    /// Constant load torque at the motor, N·m, pulling towards negative positions: gravity
    /// on a vertical axis that counts upwards (load × g × lead / 2π).
    #[serde(default)]
    pub load_torque_nm: f64,
    /// The axis's holding brake, if it has one.
    #[serde(default)]
    pub holding_brake: Option<HoldingBrake>,
}

/// A spring-applied holding brake on the motor shaft, as vertical axes carry so that the
/// load cannot fall when the power stage is off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldingBrake {
    /// Braking torque while it grips, N·m (static and dynamic alike).
    pub torque_nm: f64,
    /// From dropping the brake coil to gripping, ms.
    pub engage_ms: u64,
    /// From energising the brake coil to letting go, ms.
    pub release_ms: u64,
}

/// Where a holding brake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Brake {
    /// Gripping.
    Engaged,
    /// Coil energised since then; still gripping.
    Releasing(Timestamp),
    /// Let go.
    Released,
    /// Coil dropped since then; not gripping yet. With `true` the drive keeps the motor
    /// holding the axis until it grips (a commanded disable); without (Safe Torque Off, a
    /// reboot) nothing holds it meanwhile.
    Engaging(Timestamp, bool),
}

impl DriveSpec {
    /// Position counts per mm of travel.
    pub fn counts_per_mm(&self) -> f64 {
        self.motor.counts_per_rev() / self.mm_per_rev
    }
}

/// Homing methods the drive supports (0x6098).
pub const HOMING_METHODS: [i8; 4] = [19, 21, 35, 37];

#[derive(Clone, Copy, Debug)]
struct Slots {
    controlword: Slot,
    statusword: Slot,
    error_code: Slot,
    quick_stop_option: Slot,
    fault_reaction_option: Slot,
    shutdown_option: Slot,
    disable_operation_option: Slot,
    abort_connection: Slot,
    mode: Slot,
    mode_display: Slot,
    position_demand: Slot,
    position_actual: Slot,
    velocity_actual: Slot,
    fe_window: Slot,
    fe_timeout: Slot,
    fe_actual: Slot,
    position_window_counts: Slot,
    position_window_time: Slot,
    target_position: Slot,
    interpolation_value: Slot,
    interpolation_index: Slot,
    home_offset: Slot,
    limit_min: Slot,
    limit_max: Slot,
    profile_velocity_counts_s: Slot,
    profile_acceleration_counts_s2: Slot,
    profile_deceleration_counts_s2: Slot,
    quick_stop_deceleration_counts_s2: Slot,
    homing_method: Slot,
    homing_speed_switch: Slot,
    homing_speed_zero: Slot,
    homing_acceleration_counts_s2: Slot,
    target_velocity: Slot,
    velocity_threshold: Slot,
    digital_inputs: Slot,
    digital_outputs: Slot,
    digital_outputs_mask: Slot,
}

impl Slots {
    fn resolve(od: &ObjectDictionary) -> Result<Slots, OdError> {
        Ok(Slots {
            controlword: od.require(0x6040, 0)?,
            statusword: od.require(0x6041, 0)?,
            error_code: od.require(0x603F, 0)?,
            quick_stop_option: od.require(0x605A, 0)?,
            fault_reaction_option: od.require(0x605E, 0)?,
            shutdown_option: od.require(0x605B, 0)?,
            disable_operation_option: od.require(0x605C, 0)?,
            abort_connection: od.require(0x6007, 0)?,
            mode: od.require(0x6060, 0)?,
            mode_display: od.require(0x6061, 0)?,
            position_demand: od.require(0x6062, 0)?,
            position_actual: od.require(0x6064, 0)?,
            velocity_actual: od.require(0x606C, 0)?,
            fe_window: od.require(0x6065, 0)?,
            fe_timeout: od.require(0x6066, 0)?,
            fe_actual: od.require(0x60F4, 0)?,
            position_window_counts: od.require(0x6067, 0)?,
            position_window_time: od.require(0x6068, 0)?,
            target_position: od.require(0x607A, 0)?,
            interpolation_value: od.require(0x60C2, 1)?,
            interpolation_index: od.require(0x60C2, 2)?,
            home_offset: od.require(0x607C, 0)?,
            limit_min: od.require(0x607D, 1)?,
            limit_max: od.require(0x607D, 2)?,
            profile_velocity_counts_s: od.require(0x6081, 0)?,
            profile_acceleration_counts_s2: od.require(0x6083, 0)?,
            profile_deceleration_counts_s2: od.require(0x6084, 0)?,
            quick_stop_deceleration_counts_s2: od.require(0x6085, 0)?,
            homing_method: od.require(0x6098, 0)?,
            homing_speed_switch: od.require(0x6099, 1)?,
            homing_speed_zero: od.require(0x6099, 2)?,
            homing_acceleration_counts_s2: od.require(0x609A, 0)?,
            target_velocity: od.require(0x60FF, 0)?,
            velocity_threshold: od.require(0x606F, 0)?,
            digital_inputs: od.require(0x60FD, 0)?,
            digital_outputs: od.require(0x60FE, 1)?,
            digital_outputs_mask: od.require(0x60FE, 2)?,
        })
    }
}

/// Rounds half away from zero like `f64::round`, without the libm call that baseline x86-64
/// makes of it (it runs several times per drive and step); saturates like `as`.
fn round(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

/// Digital inputs 0x60FD bit 2: home switch (CiA 402 §6.4.2).
const INPUT_HOME_SWITCH: i64 = 1 << 2;
/// Digital outputs 0x60FE:01 bit 0: set brake (CiA 402 §6.4.3), when enabled in 0x60FE:02.
const OUTPUT_SET_BRAKE: i64 = 1;

/// The CiA 402 entries of a drive with these defaults.
pub fn drive_entries(d: &DriveDefaults) -> Vec<Entry> {
    use Access::{ReadOnly as Ro, ReadWrite as Rw};
    use DataType::{Integer8 as I8, Integer16 as I16, Integer32 as I32};
    use DataType::{Unsigned8 as U8, Unsigned16 as U16, Unsigned32 as U32};
    let modes = Mode::ProfilePosition.supported_bit()
        | Mode::ProfileVelocity.supported_bit()
        | Mode::Homing.supported_bit()
        | Mode::CyclicSyncPosition.supported_bit();
    fn u(v: impl Into<i64>) -> i64 {
        v.into()
    }
    vec![
        Entry::text(0x2001, 0, "axis label", Rw, "", 32),
        Entry::new(
            0x6007,
            0,
            "abort connection option code",
            I16,
            Rw,
            u(d.abort_connection_option),
        )
        .range(0, 3),
        Entry::new(0x603F, 0, "error code", U16, Ro, 0).mappable(),
        Entry::new(0x6040, 0, "controlword", U16, Rw, 0).mappable(),
        Entry::new(0x6041, 0, "statusword", U16, Ro, 0).mappable(),
        Entry::new(
            0x605A,
            0,
            "quick stop option code",
            I16,
            Rw,
            u(d.quick_stop_option),
        )
        .range(0, 8),
        Entry::new(0x605B, 0, "shutdown option code", I16, Rw, 0).range(0, 1),
        Entry::new(0x605C, 0, "disable operation option code", I16, Rw, 1).range(0, 1),
        Entry::new(
            0x605E,
            0,
            "fault reaction option code",
            I16,
            Rw,
            u(d.fault_reaction_option),
        )
        .range(0, 2),
        Entry::new(0x6060, 0, "modes of operation", I8, Rw, 0).mappable(),
        Entry::new(0x6061, 0, "modes of operation display", I8, Ro, 0).mappable(),
        Entry::new(0x6062, 0, "position demand value", I32, Ro, 0).mappable(),
        Entry::new(0x6064, 0, "position actual value", I32, Ro, 0).mappable(),
        Entry::new(
            0x6065,
            0,
            "following error window",
            U32,
            Rw,
            u(d.following_error_window_counts),
        ),
        Entry::new(
            0x6066,
            0,
            "following error time out",
            U16,
            Rw,
            u(d.following_error_timeout_ms),
        ),
        Entry::new(
            0x6067,
            0,
            "position window",
            U32,
            Rw,
            u(d.position_window_counts),
        ),
        Entry::new(
            0x6068,
            0,
            "position window time",
            U16,
            Rw,
            u(d.position_window_time_ms),
        ),
        Entry::new(0x606C, 0, "velocity actual value", I32, Ro, 0).mappable(),
        Entry::new(
            0x606F,
            0,
            "velocity threshold",
            U16,
            Rw,
            u(d.velocity_threshold_counts_s),
        ),
        Entry::new(0x607A, 0, "target position", I32, Rw, 0).mappable(),
        Entry::new(0x607C, 0, "home offset", I32, Rw, 0),
        Entry::new(0x607D, 0, "software position limit", U8, Access::Const, 2),
        Entry::new(
            0x607D,
            1,
            "min position limit",
            I32,
            Rw,
            u(d.software_limits_counts[0]),
        ),
        Entry::new(
            0x607D,
            2,
            "max position limit",
            I32,
            Rw,
            u(d.software_limits_counts[1]),
        ),
        Entry::new(
            0x6081,
            0,
            "profile velocity",
            U32,
            Rw,
            u(d.profile_velocity_counts_s),
        )
        .mappable(),
        Entry::new(
            0x6083,
            0,
            "profile acceleration",
            U32,
            Rw,
            u(d.profile_acceleration_counts_s2),
        )
        .mappable(),
        Entry::new(
            0x6084,
            0,
            "profile deceleration",
            U32,
            Rw,
            u(d.profile_deceleration_counts_s2),
        )
        .mappable(),
        Entry::new(
            0x6085,
            0,
            "quick stop deceleration",
            U32,
            Rw,
            u(d.quick_stop_deceleration_counts_s2),
        ),
        Entry::new(0x6098, 0, "homing method", I8, Rw, 35),
        Entry::new(0x6099, 0, "homing speeds", U8, Access::Const, 2),
        Entry::new(
            0x6099,
            1,
            "speed during search for switch",
            U32,
            Rw,
            u(d.homing_speeds_counts_s[0]),
        ),
        Entry::new(
            0x6099,
            2,
            "speed during search for zero",
            U32,
            Rw,
            u(d.homing_speeds_counts_s[1]),
        ),
        Entry::new(
            0x609A,
            0,
            "homing acceleration",
            U32,
            Rw,
            u(d.homing_acceleration_counts_s2),
        ),
        // 0 s (the default) leaves the interpolation to the measured SYNC interval.
        Entry::new(0x60C2, 0, "interpolation time period", U8, Access::Const, 2),
        Entry::new(0x60C2, 1, "interpolation time period value", U8, Rw, 0),
        Entry::new(0x60C2, 2, "interpolation time index", I8, Rw, -3).range(-128, 63),
        Entry::new(0x60F4, 0, "following error actual value", I32, Ro, 0).mappable(),
        Entry::new(0x60FD, 0, "digital inputs", U32, Ro, 0).mappable(),
        Entry::new(0x60FE, 0, "digital outputs", U8, Access::Const, 2),
        Entry::new(0x60FE, 1, "physical outputs", U32, Rw, 0).mappable(),
        Entry::new(0x60FE, 2, "bit mask", U32, Rw, 0),
        Entry::new(0x60FF, 0, "target velocity", I32, Rw, 0).mappable(),
        Entry::new(
            0x6502,
            0,
            "supported drive modes",
            U32,
            Access::Const,
            u(modes),
        ),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HomingPhase {
    Idle,
    /// Searching for the switch at the fast speed in `dir` until its state becomes
    /// `until_active`.
    Search {
        dir: i8,
        until_active: bool,
        fast: bool,
    },
    Stopping,
    Done,
    Error,
}

/// A set-point of cyclic synchronous position mode as the drive holds it: where the demand
/// must be (counts) at a time of the drive's SYNC grid, and the velocity (counts/s) and
/// acceleration (counts/s²) the set-points have there.
#[derive(Clone, Copy, Debug)]
struct Knot {
    at: Timestamp,
    position: f64,
    velocity: f64,
    accel: f64,
}

/// Cyclic synchronous position: the last set-points on the drive's grid, the demand
/// interpolated between them and extrapolated past the last.
///
/// The set-point that comes with a SYNC is where the demand must be one period later, at the
/// grid's next slot. The demand runs through the set-points on a cubic (Hermite) curve whose
/// velocity at each set-point is that of the parabola through it and the two before (exact
/// for a constant acceleration, a few mm/s off in a jerk phase at 10 ms), so velocity
/// carries on across a SYNC instead of stepping — a straight line per period would step it
/// by acceleration × period, 50 mm/s at 10 ms for Z, which its open-loop stepper cannot
/// follow. The curve is made of set-points alone, never of where the demand happens to be,
/// so an early or late SYNC cannot start an error that rings on from segment to segment.
/// When the next set-point is late the demand carries on along the last one's velocity and
/// acceleration (coming to rest rather than reversing), as drives bridge a missing
/// set-point; when it comes, the demand goes on from where the bridge has taken it to the
/// new set-point, on a curve that starts with the bridge's velocity.
#[derive(Clone, Copy, Debug)]
struct Csp {
    /// The last set-points, oldest first (`len` of them).
    knots: [Knot; 3],
    len: usize,
    /// Where the curve to the last set-point starts: the set-point before it, or where the
    /// demand was when a late SYNC brought the last one.
    start: Knot,
    /// The SYNC period the grid runs at (0x60C2, else the interval measured last).
    period: Duration,
    /// When the last SYNC came.
    last_sync: Option<Timestamp>,
    /// When the drive's grid expects the next SYNC.
    due: Option<Timestamp>,
}

impl Csp {
    /// No set-point yet: the demand stands at `p`.
    fn at_rest(p: f64) -> Csp {
        let knot = Knot {
            at: Timestamp::ZERO,
            position: p,
            velocity: 0.0,
            accel: 0.0,
        };
        Csp {
            knots: [knot; 3],
            len: 0,
            start: knot,
            period: Duration::ZERO,
            last_sync: None,
            due: None,
        }
    }

    /// Takes the set-point `position` for the grid time `at`, which came at `now`; its
    /// velocity and acceleration are the parabola's through it and the two set-points
    /// before it.
    fn push(&mut self, at: Timestamp, position: f64, now: Timestamp) {
        // The set-points lie whole periods apart on the controller's clock, whatever the
        // grid's lock has stretched a segment by on the drive's.
        let period = self.period.as_secs_f64();
        let spacing = |later: Timestamp, earlier: Timestamp| {
            let h = later.saturating_since(earlier).as_secs_f64();
            if period > 0.0 {
                (h / period).round().max(1.0) * period
            } else {
                h
            }
        };
        let (velocity, accel) = match self.len {
            0 => (0.0, 0.0),
            1 => {
                let k1 = self.knots[0];
                ((position - k1.position) / spacing(at, k1.at), 0.0)
            }
            _ => {
                let (k0, k1) = (self.knots[self.len - 2], self.knots[self.len - 1]);
                let (h1, h2) = (spacing(k1.at, k0.at), spacing(at, k1.at));
                let (d1, d2) = (
                    (k1.position - k0.position) / h1,
                    (position - k1.position) / h2,
                );
                let accel = 2.0 * (d2 - d1) / (h1 + h2);
                (d2 + 0.5 * accel * h2, accel)
            }
        };
        let knot = Knot {
            at,
            position,
            velocity,
            accel,
        };
        if let Some(&last) = self.knots[..self.len].last() {
            self.start = match self.demand(now) {
                // Late: from where the bridge (or its end) has taken the demand.
                Some((position, velocity)) if now > last.at => Knot {
                    at: now,
                    position,
                    velocity,
                    accel: 0.0,
                },
                _ => last,
            };
        }
        if self.len == self.knots.len() {
            self.knots.rotate_left(1);
            self.knots[self.len - 1] = knot;
        } else {
            self.knots[self.len] = knot;
            self.len += 1;
        }
    }

    /// Forgets the set-points and starts from the demand as it stands: `position` moving at
    /// `velocity` at `now`.
    fn restart(&mut self, now: Timestamp, position: f64, velocity: f64) {
        self.knots[0] = Knot {
            at: now,
            position,
            velocity,
            accel: 0.0,
        };
        self.start = self.knots[0];
        self.len = 1;
    }

    /// The demand's position and velocity at `t`, or None before the first set-point.
    fn demand(&self, t: Timestamp) -> Option<(f64, f64)> {
        let knots = &self.knots[..self.len];
        let last = *knots.last()?;
        if t >= last.at {
            let period = self.period.as_secs_f64();
            let over = t.saturating_since(last.at).as_secs_f64();
            let limit = CSP_BRIDGE_PERIODS * period;
            return Some(if over < limit {
                bridge(&last, over)
            } else {
                // A controller that stopped sending leaves the drive standing.
                (bridge(&last, limit).0, 0.0)
            });
        }
        let (k0, k1) = if t >= self.start.at {
            (self.start, last)
        } else {
            // A SYNC came early: the curve to the set-point before still runs.
            let i = knots.iter().rposition(|k| k.at <= t)?;
            (knots[i], knots[i + 1])
        };
        let h = k1.at.saturating_since(k0.at).as_secs_f64();
        let s = t.saturating_since(k0.at).as_secs_f64() / h;
        Some(hermite(&k0, &k1, s, h))
    }
}

/// Past the last set-point `k` by `over` seconds: on along its velocity and acceleration,
/// coming to rest rather than reversing when the acceleration brakes.
fn bridge(k: &Knot, over: f64) -> (f64, f64) {
    let (v, a) = (k.velocity, k.accel);
    let over = if v * a < 0.0 { over.min(-v / a) } else { over };
    (k.position + v * over + 0.5 * a * over * over, v + a * over)
}

/// How long a CSP drive carries on past its last set-point when the next SYNC is late, in
/// periods: a controller that skipped a slot is bridged; one that stopped sending leaves the
/// drive standing soon after.
const CSP_BRIDGE_PERIODS: f64 = 2.0;

/// How much of a SYNC's offset from the drive's grid moves the grid, as a divisor: 32 takes
/// out a constant offset within about a hundred SYNCs (a drive's clock drifting against the
/// controller's, or the grid started by a late first SYNC) and stretches a segment by 2 %
/// for a SYNC 7 ms late at a 10 ms period.
const CSP_GRID_LOCK: i64 = 32;

/// Where a SYNC at `now` falls on a grid of period `p` that expected it at `due`: the slot
/// after the one it belongs to (a controller a whole period late has skipped slots), moved
/// by [`CSP_GRID_LOCK`]'s share of its offset, or None when it came more than half a period
/// early (the grid starts again).
fn grid_next(due: Timestamp, now: Timestamp, p: Duration) -> Option<Timestamp> {
    let p_ns = p.as_nanos().max(1) as i64;
    let offset = now.as_nanos() as i64 - due.as_nanos() as i64;
    let slot = if offset >= 0 {
        due.as_nanos() as i64 + offset / p_ns * p_ns
    } else if -offset <= p_ns / 2 {
        due.as_nanos() as i64
    } else {
        return None;
    };
    let phase = now.as_nanos() as i64 - slot;
    Some(Timestamp::from_nanos(
        (slot + p_ns + phase / CSP_GRID_LOCK).max(0) as u64,
    ))
}

/// Position (counts) and velocity (counts/s) on the cubic Hermite curve from `k0` to `k1`
/// (`h` seconds apart) at fraction `s` of the way.
fn hermite(k0: &Knot, k1: &Knot, s: f64, h: f64) -> (f64, f64) {
    let (s2, s3) = (s * s, s * s * s);
    let position = (2.0 * s3 - 3.0 * s2 + 1.0) * k0.position
        + (s3 - 2.0 * s2 + s) * h * k0.velocity
        + (3.0 * s2 - 2.0 * s3) * k1.position
        + (s3 - s2) * h * k1.velocity;
    let velocity = ((6.0 * s2 - 6.0 * s) * (k0.position - k1.position)) / h
        + (3.0 * s2 - 4.0 * s + 1.0) * k0.velocity
        + (3.0 * s2 - 2.0 * s) * k1.velocity;
    (position, velocity)
}

/// A simulated CiA 402 drive. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Drive {
    spec: DriveSpec,
    s: Slots,
    motor: Motor,
    counts_per_rad: f64,
    offset_counts: f64,
    power: PowerState,
    mode: Option<Mode>,
    profile: Profile,
    target_counts: f64,
    pending_counts: Option<f64>,
    set_point_acked: bool,
    demand_done: bool,
    in_window_since: Option<Timestamp>,
    limit_active: bool,
    csp: Csp,
    homing: HomingPhase,
    homing_start_mm: f64,
    prev_controlword: u16,
    fe_since: Option<Timestamp>,
    fe_exceeded: bool,
    sto: bool,
    substeps: u32,
    /// Slowing down before transition 5 or 8 completes (0x605C / 0x605B option 1).
    slowing_to: Option<PowerState>,
    /// The holding brake (released for ever on a drive without one).
    brake: Brake,
}

impl Drive {
    /// The drive for `spec`, with its slots resolved in `od` (which must hold
    /// [`drive_entries`]), stepping its motor `substeps` times per update.
    pub fn new(spec: DriveSpec, od: &ObjectDictionary, substeps: u32) -> Result<Drive, OdError> {
        let motor = match spec.motor {
            MotorSpec::Servo { params, .. } => Motor::Servo(Servo::new(params)),
            MotorSpec::Stepper { params, .. } => Motor::Stepper(Stepper::new(params)),
        };
        let counts_per_rad = spec.motor.counts_per_rev() / TAU;
        Ok(Drive {
            s: Slots::resolve(od)?,
            motor,
            counts_per_rad,
            offset_counts: 0.0,
            power: PowerState::NotReadyToSwitchOn,
            mode: None,
            profile: Profile::default(),
            target_counts: 0.0,
            pending_counts: None,
            set_point_acked: false,
            demand_done: true,
            in_window_since: None,
            limit_active: false,
            csp: Csp::at_rest(0.0),
            homing: HomingPhase::Idle,
            homing_start_mm: 0.0,
            prev_controlword: 0,
            fe_since: None,
            fe_exceeded: false,
            sto: false,
            slowing_to: None,
            substeps: substeps.max(1),
            brake: if spec.holding_brake.is_some() {
                Brake::Engaged
            } else {
                Brake::Released
            },
            spec,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &DriveSpec {
        &self.spec
    }

    /// The power state.
    pub fn power_state(&self) -> PowerState {
        self.power
    }

    /// The physical position of the axis, mm (ground truth for the world).
    pub fn physical_mm(&self) -> f64 {
        self.spec.start_mm + self.motor.angle_rad() / TAU * self.spec.mm_per_rev
    }

    /// The physical velocity of the axis, mm/s.
    pub fn velocity_mm_s(&self) -> f64 {
        self.motor.speed_rad_s() / TAU * self.spec.mm_per_rev
    }

    /// The motor torque in the last step, N·m.
    pub fn torque_nm(&self) -> f64 {
        self.motor.torque_nm()
    }

    fn actual_counts(&self) -> f64 {
        self.motor.angle_rad() * self.counts_per_rad + self.offset_counts
    }

    /// Position actual as 0x6064 reports it.
    pub fn position_actual_counts(&self) -> i32 {
        round(self.actual_counts()) as i32
    }

    /// Position demand, counts.
    pub fn position_demand_counts(&self) -> f64 {
        self.profile.position_counts
    }

    /// Safe torque off from the e-stop chain: torque off at once, and the drive cannot be
    /// switched on while it lasts.
    pub fn set_safe_torque_off(&mut self, sto: bool) {
        self.sto = sto;
    }

    /// True while the motor holds the axis for a brake that has not gripped yet.
    fn holding_for_brake(&self) -> bool {
        matches!(self.brake, Brake::Engaging(_, true)) && !self.sto
    }

    /// True while the holding brake grips (always false without one).
    pub fn brake_engaged(&self) -> bool {
        matches!(self.brake, Brake::Engaged | Brake::Releasing(_))
    }

    /// Loses `full_steps` full steps (steppers only; returns false for a servo).
    pub fn lose_steps(&mut self, full_steps: i32) -> bool {
        match &mut self.motor {
            Motor::Stepper(s) => {
                s.lose_steps(full_steps);
                true
            }
            Motor::Servo(_) => false,
        }
    }

    /// Checks a write to the drive's entries for what the drive refuses beyond type and
    /// range: unsupported modes and homing methods (0x0609_0030).
    pub fn check_write(od: &ObjectDictionary, slot: Slot, value: i64) -> Result<(), AbortCode> {
        let mux = od.entry(slot).mux();
        match (mux.index, mux.sub) {
            (0x6060, 0) if value != 0 && Mode::from_i8(value as i8).is_none() => {
                Err(AbortCode::InvalidValue)
            }
            (0x6098, 0) if !HOMING_METHODS.contains(&(value as i8)) => Err(AbortCode::InvalidValue),
            _ => Ok(()),
        }
    }

    /// Raises a fault with `code` (CiA 402 error code 0x603F, EMCY): the fault reaction
    /// starts unless the drive is already faulted.
    pub fn fault(&mut self, core: &mut NodeCore, code: u16) {
        if matches!(
            self.power,
            PowerState::Fault | PowerState::FaultReactionActive
        ) {
            return;
        }
        self.power = PowerState::FaultReactionActive;
        core.od_mut().set(self.s.error_code, i64::from(code));
        let register =
            core.error_register() | ErrorRegister::GENERIC | ErrorRegister::DEVICE_PROFILE;
        core.emcy(code, register, [0; 5]);
    }

    fn reset_application(&mut self) {
        self.power = PowerState::NotReadyToSwitchOn;
        self.mode = None;
        if !self.spec.absolute_encoder {
            // An incremental encoder counts from zero where the axis stands at power-up.
            self.offset_counts = -self.motor.angle_rad() * self.counts_per_rad;
        }
        self.profile = Profile::at(self.actual_counts());
        self.homing = HomingPhase::Idle;
        self.prev_controlword = 0;
        self.set_point_acked = false;
        self.pending_counts = None;
        self.fe_since = None;
        self.fe_exceeded = false;
    }

    fn home_switch_active(&self, method: i8) -> bool {
        match self.spec.home_switch_mm {
            Some(edge) if method == 21 => self.physical_mm() <= edge,
            Some(edge) => self.physical_mm() >= edge,
            None => false,
        }
    }

    fn enter_operation(&mut self) {
        let actual = self.actual_counts();
        self.profile = Profile::at(actual);
        self.target_counts = actual;
        self.pending_counts = None;
        self.demand_done = true;
        self.csp = Csp::at_rest(actual);
        self.homing = HomingPhase::Idle;
        self.fe_since = None;
    }

    /// 0x60C2 as a duration (value × 10^index s), or None when it is 0 or out of range.
    fn interpolation_period(&self, od: &ObjectDictionary) -> Option<Duration> {
        let value = u64::try_from(od.get(self.s.interpolation_value)).ok()?;
        let index = od.get(self.s.interpolation_index);
        let nanos = match index {
            -9..=0 => value * 10u64.pow((9 + index) as u32),
            _ => return None,
        };
        (nanos > 0).then(|| Duration::from_nanos(nanos))
    }

    /// A SYNC in cyclic synchronous position with the set-point `target`: where it falls
    /// on the drive's grid, and the set-point taken for the grid's next slot.
    ///
    /// With the interpolation time period 0x60C2 set the grid is locked onto the SYNCs as
    /// by a drive's SYNC PLL: a SYNC late or early on the wire belongs to its grid slot all
    /// the same, and moves the grid by a 32nd of its offset, which the SYNCs after it
    /// take back; a constant offset is absorbed. One more than half a period early starts
    /// the grid again, from the demand as it stands. Unset, every SYNC starts it again: the
    /// demand goes from where it stands to the set-point over the interval measured last,
    /// so a late SYNC makes the next set-point look slower and an early one faster.
    fn csp_sync(&mut self, od: &ObjectDictionary, target: f64, now: Timestamp) {
        let measured = self.csp.last_sync.map(|t| now.saturating_since(t));
        self.csp.last_sync = Some(now);
        let locked = self.interpolation_period(od);
        let Some(p) = locked.or(measured).filter(|p| !p.is_zero()) else {
            // The first SYNC without a period: the set-point at once.
            self.csp.restart(now, target, 0.0);
            return;
        };
        self.csp.period = p;
        let locked_next = match (locked, self.csp.due) {
            (Some(p), Some(due)) if self.csp.len > 0 => grid_next(due, now, p),
            _ => None,
        };
        let next = locked_next.unwrap_or_else(|| {
            let (position, velocity) =
                (self.profile.position_counts, self.profile.velocity_counts_s);
            self.csp.restart(now, position, velocity);
            now + p
        });
        self.csp.due = Some(next);
        self.csp.push(next, target, now);
    }

    fn clamp_to_limits(&mut self, od: &ObjectDictionary, target: f64) -> f64 {
        let (min, max) = (
            od.get(self.s.limit_min) as f64,
            od.get(self.s.limit_max) as f64,
        );
        if min < max && (target < min || target > max) {
            self.limit_active = true;
            target.clamp(min, max)
        } else {
            target
        }
    }

    /// One update of `dt` at `now`, after the core took in this step's frames.
    pub fn update(
        &mut self,
        core: &mut NodeCore,
        events: CoreEvents,
        now: Timestamp,
        dt: Duration,
    ) {
        if events.application_reset {
            self.reset_application();
        }
        let booted = core.state() != crate::node::NodeState::Initialising;
        if self.power == PowerState::NotReadyToSwitchOn && booted {
            // Transition 1: self-test done.
            self.power = PowerState::SwitchOnDisabled;
        }
        let od = core.od();
        let cw = od.get(self.s.controlword) as u16;
        let rising = cw & !self.prev_controlword;
        self.prev_controlword = cw;
        if events.heartbeat_lost || events.bus_off {
            // 0x6007 covers bus-off as well as heartbeat loss: a drive that can no longer
            // hear its set-points stops on its own ramp instead of freezing the last one.
            let code = if events.bus_off {
                EMCY_COMMUNICATION
            } else {
                EMCY_HEARTBEAT
            };
            match od.get(self.s.abort_connection) {
                1 => self.fault(core, code),
                2 if self.power != PowerState::Fault => {
                    self.power = PowerState::SwitchOnDisabled;
                }
                3 if self.power == PowerState::OperationEnabled => {
                    self.power = PowerState::QuickStopActive;
                }
                _ => {}
            }
        }
        self.update_brake(core.od(), cw, events.application_reset, now);
        self.power_transitions(core, cw, rising);
        let od = core.od();
        let requested = Mode::from_i8(od.get(self.s.mode) as i8);
        if requested != self.mode {
            self.mode = requested;
            if self.power == PowerState::OperationEnabled {
                let p = self.profile.position_counts;
                self.target_counts = p;
                self.pending_counts = None;
                self.demand_done = self.profile.is_still();
                self.csp = Csp::at_rest(p);
                self.homing = HomingPhase::Idle;
            }
        }
        let dt_s = dt.as_secs_f64();
        let before = self.profile;
        self.limit_active = false;
        self.generate(core, cw, rising, events.sync, now, dt_s);
        self.move_motor(before, dt_s);
        self.monitor(core, now);
        self.publish(core, cw, now);
    }

    /// The drive's brake control: lifted while the power stage gives torque or transition
    /// 4 is asked for, dropped otherwise, under STO, or when 0x60FE sets it.
    fn update_brake(&mut self, od: &ObjectDictionary, cw: u16, reset: bool, now: Timestamp) {
        let Some(spec) = self.spec.holding_brake else {
            return;
        };
        let forced =
            od.get(self.s.digital_outputs) & od.get(self.s.digital_outputs_mask) & OUTPUT_SET_BRAKE
                != 0;
        let enabling = matches!(
            self.power,
            PowerState::ReadyToSwitchOn | PowerState::SwitchedOn
        ) && Command::decode(cw) == Command::EnableOperation;
        let lift = !self.sto && !forced && (self.power.torque_on() || enabling);
        let after =
            |since: Timestamp, ms: u64| now.saturating_since(since) >= Duration::from_millis(ms);
        self.brake = match (lift, self.brake) {
            (true, Brake::Engaged) => Brake::Releasing(now),
            // Lifted again before it gripped.
            (true, Brake::Engaging(..)) => Brake::Released,
            (true, Brake::Releasing(since)) if after(since, spec.release_ms) => Brake::Released,
            (false, Brake::Released) => Brake::Engaging(now, !self.sto && !reset),
            // Dropped again before it let go: it still grips.
            (false, Brake::Releasing(_)) => Brake::Engaged,
            (false, Brake::Engaging(since, hold)) => {
                if after(since, spec.engage_ms) {
                    Brake::Engaged
                } else {
                    Brake::Engaging(since, hold && !self.sto && !reset)
                }
            }
            (_, b) => b,
        };
    }

    fn power_transitions(&mut self, core: &mut NodeCore, cw: u16, rising: u16) {
        use PowerState::*;
        if self.sto
            && matches!(
                self.power,
                ReadyToSwitchOn | SwitchedOn | OperationEnabled | QuickStopActive
            )
        {
            self.power = SwitchOnDisabled;
            return;
        }
        if self.power == Fault {
            if rising & Controlword::FAULT_RESET.bits() != 0 {
                // Transition 15.
                self.power = SwitchOnDisabled;
                core.od_mut().set(self.s.error_code, 0);
                core.emcy(0, ErrorRegister::empty(), [0; 5]);
            }
            return;
        }
        if matches!(self.power, FaultReactionActive | NotReadyToSwitchOn) {
            return;
        }
        let command = Command::decode(cw);
        let next = match (self.power, command) {
            (SwitchOnDisabled, Command::Shutdown) if !self.sto => ReadyToSwitchOn,
            (ReadyToSwitchOn, Command::SwitchOn) => SwitchedOn,
            // Switch on and enable in one command: transitions 3 and 4 together.
            // Transition 4 ends once the holding brake has let go.
            (ReadyToSwitchOn | SwitchedOn, Command::EnableOperation) => {
                if self.brake == Brake::Released {
                    OperationEnabled
                } else {
                    SwitchedOn
                }
            }
            (ReadyToSwitchOn | SwitchedOn | OperationEnabled, Command::DisableVoltage) => {
                SwitchOnDisabled
            }
            (ReadyToSwitchOn | SwitchedOn, Command::QuickStop) => SwitchOnDisabled,
            (SwitchedOn | OperationEnabled, Command::Shutdown) => ReadyToSwitchOn,
            (OperationEnabled, Command::SwitchOn) => SwitchedOn,
            (OperationEnabled, Command::QuickStop) => QuickStopActive,
            (QuickStopActive, Command::DisableVoltage) => SwitchOnDisabled,
            (QuickStopActive, Command::EnableOperation) => {
                // Transition 16, only for the options that stay in quick stop active.
                if core.od().get(self.s.quick_stop_option) >= 5 && self.profile.is_still() {
                    OperationEnabled
                } else {
                    QuickStopActive
                }
            }
            (state, _) => state,
        };
        // Transitions 5 and 8 with option 1 (0x605C, 0x605B): slow down on the profile
        // deceleration first, staying in operation enabled until the axis stands.
        if self.power == OperationEnabled && matches!(next, SwitchedOn | ReadyToSwitchOn) {
            let option = if next == SwitchedOn {
                self.s.disable_operation_option
            } else {
                self.s.shutdown_option
            };
            if core.od().get(option) == 1 && !self.profile.is_still() {
                self.slowing_to = Some(next);
                return;
            }
        }
        if next == OperationEnabled {
            self.slowing_to = None;
        }
        if next == OperationEnabled && self.power != OperationEnabled {
            if self.power != QuickStopActive {
                self.enter_operation();
            } else {
                self.target_counts = self.profile.position_counts;
                self.demand_done = true;
            }
        }
        self.power = next;
    }

    fn generate(
        &mut self,
        core: &mut NodeCore,
        cw: u16,
        rising: u16,
        sync: bool,
        now: Timestamp,
        dt_s: f64,
    ) {
        let od = core.od();
        let decel = od.get(self.s.profile_deceleration_counts_s2) as f64;
        let quick_decel = od.get(self.s.quick_stop_deceleration_counts_s2) as f64;
        if let (PowerState::OperationEnabled, Some(next)) = (self.power, self.slowing_to) {
            let threshold = od.get(self.s.velocity_threshold) as f64;
            let speed = self.motor.speed_rad_s() * self.counts_per_rad;
            // The power stage goes off once the axis itself stands, not just its demand.
            if self.profile.stop(decel, dt_s) && speed.abs() <= threshold {
                self.slowing_to = None;
                self.power = next;
            }
            return;
        }
        match self.power {
            PowerState::OperationEnabled => {}
            PowerState::QuickStopActive => {
                let option = od.get(self.s.quick_stop_option);
                if option == 0 {
                    self.power = PowerState::SwitchOnDisabled;
                    return;
                }
                let d = match option {
                    1 | 5 => decel,
                    _ => quick_decel,
                };
                if self.profile.stop(d, dt_s) && (1..=4).contains(&option) {
                    self.power = PowerState::SwitchOnDisabled;
                }
                return;
            }
            PowerState::FaultReactionActive => {
                let option = od.get(self.s.fault_reaction_option);
                let stopped = match option {
                    0 => true,
                    1 => self.profile.stop(decel, dt_s),
                    _ => self.profile.stop(quick_decel, dt_s),
                };
                if stopped {
                    self.power = PowerState::Fault;
                }
                return;
            }
            _ => {
                if self.holding_for_brake() {
                    // The motor holds the axis where it stood until the brake grips.
                    self.profile.velocity_counts_s = 0.0;
                    return;
                }
                // No torque: the demand follows the axis so that enabling does not jump.
                self.profile = Profile::at(self.actual_counts());
                return;
            }
        }
        let halt = cw & Controlword::HALT.bits() != 0;
        let vmax = od.get(self.s.profile_velocity_counts_s) as f64;
        let accel = od.get(self.s.profile_acceleration_counts_s2) as f64;
        match self.mode {
            Some(Mode::ProfilePosition) => {
                if cw & Controlword::NEW_SET_POINT.bits() == 0 {
                    self.set_point_acked = false;
                } else if !self.set_point_acked {
                    let raw = od.get(self.s.target_position) as f64;
                    let target = if cw & Controlword::RELATIVE.bits() != 0 {
                        self.target_counts + raw
                    } else {
                        raw
                    };
                    let target = self.clamp_to_limits(core.od(), target);
                    let immediate = cw & Controlword::CHANGE_IMMEDIATELY.bits() != 0;
                    if immediate || self.demand_done {
                        self.target_counts = target;
                        self.pending_counts = None;
                        self.demand_done = false;
                        self.in_window_since = None;
                        self.set_point_acked = true;
                    } else if self.pending_counts.is_none() {
                        self.pending_counts = Some(target);
                        self.set_point_acked = true;
                    }
                }
                if halt {
                    self.profile.stop(decel, dt_s);
                } else if !self.demand_done
                    && self
                        .profile
                        .to_position(self.target_counts, vmax, accel, decel, dt_s)
                {
                    match self.pending_counts.take() {
                        Some(next) => {
                            self.target_counts = next;
                            self.in_window_since = None;
                        }
                        None => self.demand_done = true,
                    }
                }
            }
            Some(Mode::CyclicSyncPosition) => {
                if sync {
                    let raw = core.od().get(self.s.target_position) as f64;
                    let target = self.clamp_to_limits(core.od(), raw);
                    self.csp_sync(core.od(), target, now);
                }
                // Evaluated at the tick's end, as the motor's loops aim there.
                let t = now + Duration::from_secs_f64(dt_s);
                if let Some((position, velocity)) = self.csp.demand(t) {
                    self.profile.position_counts = position;
                    self.profile.velocity_counts_s = velocity;
                }
            }
            Some(Mode::ProfileVelocity) => {
                let mut v = if halt {
                    0.0
                } else {
                    od.get(self.s.target_velocity) as f64
                };
                let (min, max) = (
                    od.get(self.s.limit_min) as f64,
                    od.get(self.s.limit_max) as f64,
                );
                let p = self.profile.position_counts;
                if min < max && ((v > 0.0 && p >= max) || (v < 0.0 && p <= min)) {
                    v = 0.0;
                    self.limit_active = true;
                }
                self.profile.to_velocity(v, accel, decel, dt_s);
            }
            Some(Mode::Homing) => self.home(core, rising, halt, dt_s),
            None => {
                self.profile.stop(decel, dt_s);
            }
        }
    }

    fn home(&mut self, core: &mut NodeCore, rising: u16, halt: bool, dt_s: f64) {
        let od = core.od();
        let method = od.get(self.s.homing_method) as i8;
        let fast = od.get(self.s.homing_speed_switch) as f64;
        let slow = od.get(self.s.homing_speed_zero) as f64;
        let accel = od.get(self.s.homing_acceleration_counts_s2) as f64;
        let home_offset = od.get(self.s.home_offset) as f64;
        if rising & Controlword::NEW_SET_POINT.bits() != 0 {
            self.homing_start_mm = self.physical_mm();
            self.homing = match method {
                35 | 37 => {
                    self.set_position(home_offset);
                    HomingPhase::Done
                }
                19 | 21 if self.spec.home_switch_mm.is_some() => {
                    // Method 19: the switch is active on the positive side; 21 mirrors it.
                    let towards: i8 = if method == 19 { 1 } else { -1 };
                    if self.home_switch_active(method) {
                        HomingPhase::Search {
                            dir: -towards,
                            until_active: false,
                            fast: true,
                        }
                    } else {
                        HomingPhase::Search {
                            dir: towards,
                            until_active: true,
                            fast: true,
                        }
                    }
                }
                _ => HomingPhase::Error,
            };
        }
        if halt {
            self.profile.stop(accel, dt_s);
            return;
        }
        match self.homing {
            HomingPhase::Search {
                dir,
                until_active,
                fast: is_fast,
            } => {
                let speed = if is_fast { fast } else { slow };
                self.profile
                    .to_velocity(f64::from(dir) * speed, accel, accel, dt_s);
                if (self.physical_mm() - self.homing_start_mm).abs() > self.spec.homing_search_mm {
                    self.homing = HomingPhase::Error;
                    return;
                }
                if self.home_switch_active(method) == until_active {
                    let towards: i8 = if method == 19 { 1 } else { -1 };
                    self.homing = if until_active {
                        // Found the switch: back off slowly until it releases; that edge,
                        // approached from the active side, is home.
                        HomingPhase::Search {
                            dir: -towards,
                            until_active: false,
                            fast: false,
                        }
                    } else if is_fast {
                        // Left the switch at speed: come back slowly onto it first.
                        HomingPhase::Search {
                            dir: towards,
                            until_active: true,
                            fast: false,
                        }
                    } else {
                        let overshoot = self.profile.position_counts - self.actual_counts();
                        self.set_position(home_offset);
                        self.profile.position_counts = home_offset + overshoot;
                        HomingPhase::Stopping
                    };
                }
            }
            HomingPhase::Stopping => {
                if self.profile.stop(accel, dt_s) {
                    self.homing = HomingPhase::Done;
                }
            }
            HomingPhase::Error => {
                self.profile.stop(accel, dt_s);
            }
            HomingPhase::Idle | HomingPhase::Done => {
                self.profile.stop(accel, dt_s);
            }
        }
    }

    /// Makes the current actual position read `counts`, shifting the demand with it.
    fn set_position(&mut self, counts: f64) {
        let shift = counts - self.actual_counts();
        self.offset_counts += shift;
        self.profile.position_counts += shift;
        self.target_counts += shift;
    }

    fn move_motor(&mut self, before: Profile, dt_s: f64) {
        let enabled = (self.power.torque_on() || self.holding_for_brake()) && !self.sto;
        let brake_nm = match self.spec.holding_brake {
            Some(b) if self.brake_engaged() => b.torque_nm,
            _ => 0.0,
        };
        self.motor.set_external(self.spec.load_torque_nm, brake_nm);
        let n = self.substeps;
        let h = dt_s / f64::from(n);
        let (p0, p1) = (before.position_counts, self.profile.position_counts);
        // The demand moved from p0 to p1 during the tick at the profile's speed. Each
        // sub-step's loop sees the demand where it stands at the sub-step's start, as the
        // motor's state does; aiming at the sub-step's end would put the axis one sub-step
        // ahead of its demand.
        let speed_rad_s = self.profile.velocity_counts_s / self.counts_per_rad;
        for k in 0..n {
            let f = f64::from(k) / f64::from(n);
            let p = p0 + (p1 - p0) * f;
            let demand_rad = (p - self.offset_counts) / self.counts_per_rad;
            self.motor.step(demand_rad, speed_rad_s, enabled, h);
        }
    }

    fn monitor(&mut self, core: &mut NodeCore, now: Timestamp) {
        let od = core.od();
        let window = od.get(self.s.fe_window) as u32;
        let timeout = Duration::from_millis(od.get(self.s.fe_timeout) as u64);
        let fe = (self.profile.position_counts - self.actual_counts()).abs();
        let watched = self.power == PowerState::OperationEnabled && window != u32::MAX;
        self.fe_exceeded = watched && fe > f64::from(window);
        if !self.fe_exceeded {
            self.fe_since = None;
            return;
        }
        let since = *self.fe_since.get_or_insert(now);
        if now.saturating_since(since) >= timeout {
            self.fault(core, FOLLOWING_ERROR);
        }
    }

    fn publish(&mut self, core: &mut NodeCore, cw: u16, now: Timestamp) {
        let actual = self.actual_counts();
        let od = core.od();
        let mut sw = self.power.statusword() | Statusword::REMOTE;
        let powered = !self.sto
            && matches!(
                self.power,
                PowerState::ReadyToSwitchOn
                    | PowerState::SwitchedOn
                    | PowerState::OperationEnabled
                    | PowerState::QuickStopActive
                    | PowerState::FaultReactionActive
            );
        sw.set(Statusword::VOLTAGE_ENABLED, powered);
        sw.set(Statusword::WARNING, self.sto);
        sw.set(Statusword::INTERNAL_LIMIT, self.limit_active);
        let window = od.get(self.s.position_window_counts) as f64;
        let window_time = Duration::from_millis(od.get(self.s.position_window_time) as u64);
        let halt = cw & Controlword::HALT.bits() != 0;
        if self.power == PowerState::OperationEnabled {
            match self.mode {
                Some(Mode::ProfilePosition) => {
                    sw.set(Statusword::OPERATION_SPECIFIC_12, self.set_point_acked);
                    sw.set(Statusword::OPERATION_SPECIFIC_13, self.fe_exceeded);
                    let reached = if halt {
                        self.profile.is_still()
                    } else if self.demand_done && (actual - self.target_counts).abs() <= window {
                        let since = *self.in_window_since.get_or_insert(now);
                        now.saturating_since(since) >= window_time
                    } else {
                        self.in_window_since = None;
                        false
                    };
                    sw.set(Statusword::TARGET_REACHED, reached);
                }
                Some(Mode::CyclicSyncPosition) => {
                    sw.set(Statusword::OPERATION_SPECIFIC_12, true);
                    sw.set(Statusword::OPERATION_SPECIFIC_13, self.fe_exceeded);
                }
                Some(Mode::ProfileVelocity) => {
                    let target = if halt {
                        0.0
                    } else {
                        od.get(self.s.target_velocity) as f64
                    };
                    let reached = (self.profile.velocity_counts_s - target).abs() < 1.0;
                    sw.set(Statusword::TARGET_REACHED, reached);
                    let speed = self.motor.speed_rad_s() * self.counts_per_rad;
                    let threshold = od.get(self.s.velocity_threshold) as f64;
                    sw.set(Statusword::OPERATION_SPECIFIC_12, speed.abs() <= threshold);
                }
                Some(Mode::Homing) => {
                    let done = self.homing == HomingPhase::Done;
                    sw.set(Statusword::OPERATION_SPECIFIC_12, done);
                    sw.set(
                        Statusword::OPERATION_SPECIFIC_13,
                        self.homing == HomingPhase::Error,
                    );
                    sw.set(
                        Statusword::TARGET_REACHED,
                        done || (halt && self.profile.is_still()),
                    );
                }
                None => {}
            }
        } else if self.power == PowerState::QuickStopActive {
            sw.set(Statusword::TARGET_REACHED, self.profile.is_still());
        }
        let home = self
            .mode
            .filter(|m| *m == Mode::Homing)
            .map(|_| od.get(self.s.homing_method) as i8)
            .unwrap_or(19);
        let inputs = if self.home_switch_active(home) {
            INPUT_HOME_SWITCH
        } else {
            0
        };
        let mode_display = self.mode.map_or(0, |m| i64::from(m.to_i8()));
        let velocity = self.motor.speed_rad_s() * self.counts_per_rad;
        let demand = self.profile.position_counts;
        let od = core.od_mut();
        od.set(self.s.statusword, i64::from(sw.bits()));
        od.set(self.s.mode_display, mode_display);
        od.set(self.s.position_actual, round(actual));
        od.set(self.s.position_demand, round(demand));
        od.set(self.s.velocity_actual, round(velocity));
        od.set(self.s.fe_actual, round(demand - actual));
        od.set(self.s.digital_inputs, inputs);
    }
}
