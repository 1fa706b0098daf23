//! Motor and load models behind the simulated drives, so that following error, settling and
//! lost steps come out of mechanics rather than being made up.
//!
//! - [`Servo`]: a rotary motor driving a rigid load (inertia, viscous and Coulomb friction,
//!   torque limit) under the drive's own cascaded loop: a proportional position loop with
//!   velocity feed-forward around a PI velocity loop, at the drive's loop rate. The position
//!   lag during acceleration is the following error a real servo shows.
//! - [`Stepper`]: a two-phase hybrid stepper run open loop: the rotor is pulled towards the
//!   commanded micro-step angle by a torque `T(ω)·sin(p·(θcmd − θ))` (`p` = full steps / 4
//!   pole pairs, `T(ω)` the pull-out torque falling with speed). When the demanded
//!   acceleration needs more torque than that, the load angle passes ±π/p and the rotor
//!   slips whole electrical periods (four full steps each): steps are lost, and only the
//!   encoder sees it.
//!
//! Both carry what acts on the load besides the motor ([`Motor::set_external`]): a constant
//! load torque (gravity on a vertical axis, referred to the motor through the screw) and the
//! torque of a holding brake while it grips, which acts like dry friction: it holds the
//! load at rest against anything weaker and brakes a moving one.
//!
//! State is `[θ rad, ω rad/s]` in an `nalgebra::Vector2`, integrated semi-implicitly
//! (`ω += a·dt; θ += ω·dt`), which stays stable for the loop gains used at the sub-step
//! rates the drives run.

use core::f64::consts::TAU;

use nalgebra::{Matrix2, Vector2};
use serde::{Deserialize, Serialize};

/// Below this speed (rad/s) friction may hold the load at rest.
const STANDSTILL_RAD_S: f64 = 1e-4;

/// Mechanics and tuning of a servo axis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServoParams {
    /// Motor plus reflected load inertia, kg·m².
    pub inertia_kg_m2: f64,
    /// Viscous friction, N·m per rad/s.
    pub viscous_nm_s_per_rad: f64,
    /// Coulomb (dry) friction, N·m.
    pub coulomb_nm: f64,
    /// Peak torque the drive can deliver, N·m.
    pub torque_limit_nm: f64,
    /// Position loop bandwidth, Hz (proportional gain 2π·f, 1/s).
    pub position_bandwidth_hz: f64,
    /// Velocity loop bandwidth, Hz.
    pub velocity_bandwidth_hz: f64,
}

impl ServoParams {
    /// A small AC servo on a belt or screw axis: well damped, ~25 Hz position loop.
    pub const fn gantry() -> ServoParams {
        ServoParams {
            inertia_kg_m2: 2.0e-4,
            viscous_nm_s_per_rad: 1.0e-3,
            coulomb_nm: 0.05,
            torque_limit_nm: 2.4,
            position_bandwidth_hz: 25.0,
            velocity_bandwidth_hz: 120.0,
        }
    }
}

/// Mechanics of a stepper axis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepperParams {
    /// Full steps per revolution (200 for a 1.8° motor).
    pub full_steps_per_rev: u32,
    /// Holding torque at standstill, N·m.
    pub holding_torque_nm: f64,
    /// Speed at which the pull-out torque has fallen to half, rev/s (back-EMF).
    pub corner_speed_rev_s: f64,
    /// Rotor plus reflected load inertia, kg·m².
    pub inertia_kg_m2: f64,
    /// Mechanical viscous damping, N·m per rad/s (drag at any speed).
    pub damping_nm_s_per_rad: f64,
    /// The driver's electrical damping of the rotor's motion relative to the commanded
    /// field, N·m per rad/s: it quells the resonance without dragging at constant speed.
    pub electrical_damping_nm_s_per_rad: f64,
    /// Coulomb friction, N·m.
    pub coulomb_nm: f64,
}

impl StepperParams {
    /// A NEMA 24 stepper on a 5 mm lead screw carrying a vacuum gripper: enough pull-out
    /// torque for 5 m/s² at 600 mm/s (120 rev/s) with margin, not for much more.
    pub const fn z_axis() -> StepperParams {
        StepperParams {
            full_steps_per_rev: 200,
            holding_torque_nm: 2.4,
            corner_speed_rev_s: 40.0,
            inertia_kg_m2: 4.0e-5,
            damping_nm_s_per_rad: 2.0e-4,
            electrical_damping_nm_s_per_rad: 0.01,
            coulomb_nm: 0.02,
        }
    }

    /// Pole pairs of the rotor: one electrical period is four full steps.
    pub fn pole_pairs(&self) -> f64 {
        f64::from(self.full_steps_per_rev) / 4.0
    }
}

/// Rigid-body step shared by both motors: semi-implicit Euler with friction that can hold
/// the load at rest.
fn integrate(
    x: &mut Vector2<f64>,
    drive_torque_nm: f64,
    inertia: f64,
    viscous: f64,
    coulomb: f64,
    dt: f64,
) {
    let omega = x[1];
    let accel = if omega.abs() < STANDSTILL_RAD_S && drive_torque_nm.abs() <= coulomb {
        // Static friction balances the drive torque: the load stays put.
        x[1] = 0.0;
        0.0
    } else {
        let friction = if omega.abs() < STANDSTILL_RAD_S {
            coulomb * drive_torque_nm.signum()
        } else {
            coulomb * omega.signum()
        };
        (drive_torque_nm - viscous * omega - friction) / inertia
    };
    // x' = A·x + B·a with A = [1 dt; 0 1], B = [dt²; dt]: the semi-implicit step.
    let a = Matrix2::new(1.0, dt, 0.0, 1.0);
    let b = Vector2::new(dt * dt, dt);
    let next = a * *x + b * accel;
    // Dry friction stops a decelerating load; it never reverses it.
    if omega != 0.0 && next[1].signum() != omega.signum() && drive_torque_nm.abs() <= coulomb {
        *x = Vector2::new(next[0], 0.0);
    } else {
        *x = next;
    }
}

/// A servo motor with its load and the drive's position and velocity loops.
#[derive(Clone, Debug)]
pub struct Servo {
    params: ServoParams,
    /// Position loop gain, 1/s.
    kp: f64,
    /// Velocity loop proportional gain, N·m·s/rad.
    kv: f64,
    /// Velocity loop integral gain, N·m/rad.
    ki: f64,
    state: Vector2<f64>,
    integral_nm: f64,
    torque_nm: f64,
    external: External,
}

impl Servo {
    /// A servo at rest at angle 0.
    pub fn new(params: ServoParams) -> Servo {
        let kv = params.inertia_kg_m2 * TAU * params.velocity_bandwidth_hz;
        Servo {
            params,
            kp: TAU * params.position_bandwidth_hz,
            kv,
            ki: kv * TAU * params.velocity_bandwidth_hz / 5.0,
            state: Vector2::zeros(),
            integral_nm: 0.0,
            torque_nm: 0.0,
            external: External::default(),
        }
    }

    /// Rotor angle, rad.
    pub fn angle_rad(&self) -> f64 {
        self.state[0]
    }

    /// Rotor speed, rad/s.
    pub fn speed_rad_s(&self) -> f64 {
        self.state[1]
    }

    /// Torque applied in the last step, N·m.
    pub fn torque_nm(&self) -> f64 {
        self.torque_nm
    }

    /// One loop period of `dt_s`: with `enabled` the drive's loops track the demand angle
    /// and speed; without, the torque is off and the load coasts against friction.
    pub fn step(&mut self, demand_rad: f64, demand_rad_s: f64, enabled: bool, dt_s: f64) {
        let p = &self.params;
        if !enabled && self.state[1] == 0.0 && self.external.held(p.coulomb_nm) {
            // At rest without torque, friction holds the load: the step would change
            // nothing, so it is skipped (exactly the same result, for idle drives' sake).
            self.integral_nm = 0.0;
            self.torque_nm = 0.0;
            return;
        }
        let (kp, kv, ki) = (self.kp, self.kv, self.ki);
        let torque = if enabled {
            let speed_cmd = demand_rad_s + kp * (demand_rad - self.state[0]);
            let speed_err = speed_cmd - self.state[1];
            let unclamped = kv * speed_err + self.integral_nm;
            let torque = unclamped.clamp(-p.torque_limit_nm, p.torque_limit_nm);
            // Anti-windup: integrate only while the output is not saturated.
            if torque == unclamped {
                self.integral_nm += ki * speed_err * dt_s;
            }
            torque
        } else {
            self.integral_nm = 0.0;
            0.0
        };
        self.torque_nm = torque;
        integrate(
            &mut self.state,
            torque - self.external.load_torque_nm,
            p.inertia_kg_m2,
            p.viscous_nm_s_per_rad,
            p.coulomb_nm + self.external.brake_torque_nm,
            dt_s,
        );
    }
}

/// An open-loop stepper motor with its load.
#[derive(Clone, Debug)]
pub struct Stepper {
    params: StepperParams,
    state: Vector2<f64>,
    /// Commanded angle minus the angle the rotor is pulled to: grows by whole step angles
    /// when a fault makes the driver lose steps.
    slip_rad: f64,
    /// Where the driver's micro-step counter holds the field, rad: it moves only while the
    /// phases are energized, so a drive that re-bases its demand on the encoder while
    /// disabled finds the field where the rotor rests when it energizes again.
    phase_rad: f64,
    torque_nm: f64,
    external: External,
}

impl Stepper {
    /// A stepper at rest at angle 0.
    pub fn new(params: StepperParams) -> Stepper {
        Stepper {
            params,
            state: Vector2::zeros(),
            slip_rad: 0.0,
            phase_rad: 0.0,
            torque_nm: 0.0,
            external: External::default(),
        }
    }

    /// Rotor angle, rad (what the encoder reads).
    pub fn angle_rad(&self) -> f64 {
        self.state[0]
    }

    /// Rotor speed, rad/s.
    pub fn speed_rad_s(&self) -> f64 {
        self.state[1]
    }

    /// Torque in the last step, N·m.
    pub fn torque_nm(&self) -> f64 {
        self.torque_nm
    }

    /// The angle of one full step, rad.
    pub fn full_step_rad(&self) -> f64 {
        TAU / f64::from(self.params.full_steps_per_rev)
    }

    /// Loses `full_steps` full steps at once (positive: the rotor ends up that far behind
    /// a positive command), as when the driver misses step pulses.
    pub fn lose_steps(&mut self, full_steps: i32) {
        // The rotor never made those steps: it stays aligned with the phase currents, which
        // now lag the step count.
        let lost = f64::from(full_steps) * self.full_step_rad();
        self.slip_rad += lost;
        self.phase_rad -= lost;
        self.state[0] -= lost;
    }

    /// One period of `dt_s` with the phases `energized` at `command_rad`, the field turning
    /// at `command_rad_s`.
    pub fn step(&mut self, command_rad: f64, command_rad_s: f64, energized: bool, dt_s: f64) {
        let p = &self.params;
        if energized {
            self.phase_rad = command_rad - self.slip_rad;
        } else {
            // The demand may follow the encoder while the phases are off; the field stays
            // where the counter left it.
            self.slip_rad = command_rad - self.phase_rad;
        }
        if !energized && self.state[1] == 0.0 && self.external.held(p.coulomb_nm) {
            // At rest without current, friction holds the rotor (see `Servo::step`).
            self.torque_nm = 0.0;
            return;
        }
        let torque = if energized {
            let speed_rev_s = self.state[1].abs() / TAU;
            let pull_out = p.holding_torque_nm / (1.0 + speed_rev_s / p.corner_speed_rev_s);
            let load_angle = p.pole_pairs() * (command_rad - self.slip_rad - self.state[0]);
            // Damping acts through the same field, so only near equilibrium: once the rotor
            // slips past a quarter period it no longer helps it keep up.
            let damping = p.electrical_damping_nm_s_per_rad
                * (command_rad_s - self.state[1])
                * load_angle.cos().max(0.0);
            // The driver's current limit bounds both together.
            (pull_out * load_angle.sin() + damping).clamp(-pull_out, pull_out)
        } else {
            0.0
        };
        self.torque_nm = torque;
        integrate(
            &mut self.state,
            torque - self.external.load_torque_nm,
            p.inertia_kg_m2,
            p.damping_nm_s_per_rad,
            p.coulomb_nm + self.external.brake_torque_nm,
            dt_s,
        );
    }
}

/// What acts on a motor's load besides the motor itself.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct External {
    /// Constant load torque, N·m; positive pulls towards negative angles (gravity on a
    /// vertical axis that counts upwards).
    load_torque_nm: f64,
    /// Torque of the holding brake while it grips, N·m (0 when released).
    brake_torque_nm: f64,
}

impl External {
    /// True when friction (`coulomb_nm`) and the brake hold a load at rest against the
    /// load torque.
    fn held(&self, coulomb_nm: f64) -> bool {
        self.load_torque_nm.abs() <= coulomb_nm + self.brake_torque_nm
    }
}

/// Either motor, as a drive holds it.
#[derive(Clone, Debug)]
pub enum Motor {
    /// A closed-loop servo.
    Servo(Servo),
    /// An open-loop stepper with an encoder.
    Stepper(Stepper),
}

impl Motor {
    /// Rotor angle, rad.
    pub fn angle_rad(&self) -> f64 {
        match self {
            Motor::Servo(s) => s.angle_rad(),
            Motor::Stepper(s) => s.angle_rad(),
        }
    }

    /// Rotor speed, rad/s.
    pub fn speed_rad_s(&self) -> f64 {
        match self {
            Motor::Servo(s) => s.speed_rad_s(),
            Motor::Stepper(s) => s.speed_rad_s(),
        }
    }

    /// Torque in the last step, N·m.
    pub fn torque_nm(&self) -> f64 {
        match self {
            Motor::Servo(s) => s.torque_nm(),
            Motor::Stepper(s) => s.torque_nm(),
        }
    }

    /// Sets what acts on the load besides the motor from now on: a constant load torque
    /// (N·m, positive towards negative angles: gravity on an axis that counts upwards)
    /// and the torque of a holding brake that grips (0: released).
    pub fn set_external(&mut self, load_torque_nm: f64, brake_torque_nm: f64) {
        let e = External {
            load_torque_nm,
            brake_torque_nm,
        };
        match self {
            Motor::Servo(s) => s.external = e,
            Motor::Stepper(s) => s.external = e,
        }
    }

    /// One period towards the demand; `enabled` is the drive's power stage.
    pub fn step(&mut self, demand_rad: f64, demand_rad_s: f64, enabled: bool, dt_s: f64) {
        match self {
            Motor::Servo(s) => s.step(demand_rad, demand_rad_s, enabled, dt_s),
            Motor::Stepper(s) => s.step(demand_rad, demand_rad_s, enabled, dt_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_profile(motor: &mut Motor, accel_rad_s2: f64, seconds: f64) -> (f64, f64) {
        let dt = 250e-6;
        let (mut pos, mut vel) = (0.0, 0.0);
        let mut worst_lag: f64 = 0.0;
        let steps = (seconds / dt) as usize;
        for k in 0..steps {
            // A triangular profile: speed up for the first half, slow down for the second.
            let a = if k < steps / 2 {
                accel_rad_s2
            } else {
                -accel_rad_s2
            };
            vel += a * dt;
            pos += vel * dt;
            motor.step(pos, vel, true, dt);
            worst_lag = worst_lag.max((pos - motor.angle_rad()).abs());
        }
        (pos, worst_lag)
    }

    #[test]
    fn a_servo_lags_while_accelerating_and_settles_at_rest() {
        let mut m = Motor::Servo(Servo::new(ServoParams::gantry()));
        let (_, lag) = run_profile(&mut m, 2000.0, 0.1);
        assert!(
            lag > 1e-3,
            "an accelerating servo shows following error, got {lag}"
        );
        assert!(lag < 0.2, "but a small one, got {lag}");
        let target = m.angle_rad() + 0.5;
        for _ in 0..8000 {
            m.step(target, 0.0, true, 250e-6);
        }
        assert!((m.angle_rad() - target).abs() < 1e-3);
    }

    #[test]
    fn a_servo_without_torque_coasts_to_a_stop() {
        let mut s = Servo::new(ServoParams::gantry());
        s.state[1] = 50.0;
        for _ in 0..40_000 {
            s.step(0.0, 0.0, false, 250e-6);
        }
        assert_eq!(s.speed_rad_s(), 0.0);
        assert!(s.angle_rad() > 0.0);
    }

    #[test]
    fn a_stepper_follows_gentle_moves_and_loses_steps_on_violent_ones() {
        let params = StepperParams::z_axis();
        let mut gentle = Motor::Stepper(Stepper::new(params));
        let (cmd, _) = run_profile(&mut gentle, 500.0, 0.2);
        for _ in 0..4000 {
            gentle.step(cmd, 0.0, true, 250e-6);
        }
        let step = TAU / 200.0;
        let err = gentle.angle_rad() - cmd;
        assert!(err.abs() < step / 2.0, "no step lost: {err} rad off");

        let mut violent = Motor::Stepper(Stepper::new(params));
        let (cmd, _) = run_profile(&mut violent, 200_000.0, 0.02);
        for _ in 0..8000 {
            violent.step(cmd, 0.0, true, 250e-6);
        }
        let lost = (cmd - violent.angle_rad()) / step;
        assert!(
            lost.abs() >= 3.5,
            "the rotor slipped whole electrical periods: {lost}"
        );
        // It rests at an equilibrium: a multiple of four full steps behind.
        let periods = lost / 4.0;
        assert!((periods - periods.round()).abs() < 0.1, "{lost}");
    }

    #[test]
    fn gravity_sinks_an_unpowered_axis_unless_the_brake_grips() {
        let params = StepperParams::z_axis();
        let mut free = Motor::Stepper(Stepper::new(params));
        free.set_external(params.coulomb_nm + 0.005, 0.0);
        let mut braked = Motor::Stepper(Stepper::new(params));
        braked.set_external(params.coulomb_nm + 0.005, 0.8);
        for _ in 0..4000 {
            free.step(0.0, 0.0, false, 250e-6);
            braked.step(0.0, 0.0, false, 250e-6);
        }
        assert!(free.angle_rad() < -1.0, "{}", free.angle_rad());
        assert_eq!(braked.angle_rad(), 0.0);
    }

    #[test]
    fn a_stepper_energized_again_finds_its_field_where_the_rotor_rests() {
        // One full step lost: the rotor rests a quarter of an electrical period from where
        // the step count says; a field that came back there would pull with full torque.
        let mut s = Stepper::new(StepperParams::z_axis());
        s.lose_steps(1);
        for _ in 0..400 {
            s.step(0.0, 0.0, true, 250e-6);
        }
        let rest = s.angle_rad();
        // Disabled, the demand is re-based on the encoder; energized again, nothing moves.
        for _ in 0..400 {
            s.step(rest, 0.0, false, 250e-6);
        }
        for _ in 0..4000 {
            s.step(rest, 0.0, true, 250e-6);
            assert!(
                (s.angle_rad() - rest).abs() < 1e-6,
                "{}",
                s.angle_rad() - rest
            );
        }
    }

    #[test]
    fn injected_step_loss_shows_on_the_encoder() {
        let mut s = Stepper::new(StepperParams::z_axis());
        s.lose_steps(3);
        for _ in 0..8000 {
            s.step(0.0, 0.0, true, 250e-6);
        }
        assert!((s.angle_rad() + 3.0 * s.full_step_rad()).abs() < 1e-3);
    }
}
