//! Motion planning: jerk-limited, time-synchronized point-to-point moves.
//!
//! ```
//! use takt_controller::motion::{plan_move, Limits};
//!
//! let z = Limits { max_velocity: 600.0, max_acceleration: 5000.0, max_jerk: 1e5 };
//! let x = Limits { max_velocity: 1500.0, max_acceleration: 10000.0, max_jerk: 1e5 };
//! // X 0 → 120 mm and Z 140 → 10 mm, arriving together.
//! let plan = plan_move(&[0.0, 140.0], &[120.0, 10.0], &[x, z], true).unwrap();
//! assert!((plan.duration() - plan.profile(1).duration()).abs() < 1e-9);
//! let mid = plan.sample(0, plan.duration() / 2.0); // no allocation
//! assert!(mid.position > 0.0 && mid.position < 120.0);
//! ```
//!
//! Every move starts and ends at rest, so each axis follows the classic seven-phase S-curve:
//! jerk up, constant acceleration, jerk down, cruise, and the mirror image to stop. Its
//! time-optimal form has a closed-form solution. A move is *planned* once, at its start
//! ([`plan_move`], a few microseconds); *sampling* it at any time ([`MovePlan::sample`]) is a
//! handful of multiplications on a `Copy` value, with no allocation — what a real-time cycle
//! needs every millisecond.
//!
//! **Time synchronization.** For a coordinated move the slowest axis sets the duration; every
//! other axis is slowed to arrive at the same instant by lowering its cruise velocity (found by
//! bisection: the duration of a rest-to-rest S-curve falls strictly as its cruise velocity
//! rises), keeping its own acceleration and jerk limits. This is the same notion of
//! time-synchronized as ruckig's default.
//!
//! **Why not ruckig.** The `ruckig` crate (0.19.4, C++ through cxx) was evaluated for this: it
//! builds here (C++20, ~65 s, and compiles its cloud client in), and its offline `calculate`
//! gives the same durations as this module (0.38667 s for Z 140 → 10 mm at 600 mm/s,
//! 5000 mm/s², 1e5 mm/s³). But its Rust wrapper allocates on every call of the per-cycle path:
//! `Trajectory::at_time` returns three fresh `Vec`s (3 allocations per sample) and
//! `Ruckig::update` copies every parameter vector both ways (15 allocations per cycle for
//! 3 axes), measured with a counting global allocator; and it brings a C++ toolchain into the
//! build. takt's moves all start and end at rest, where the closed form is short and exact, so
//! this hand-written planner is kept: zero allocations per sample, no C++ build, same
//! durations. ruckig's strengths (moves from a non-zero state, waypoints) are not needed until
//! resync re-plans from a moving state; resync first stops the cell (BRIEF.md), so it also
//! starts from rest.

/// Most axes one move can command (the fixed size of a [`MovePlan`]).
pub const MAX_MOVE_AXES: usize = 8;

/// Kinematic limits of one axis, in any consistent unit (mm, deg or counts) per s, s², s³.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest speed.
    pub max_velocity: f64,
    /// Largest acceleration and deceleration.
    pub max_acceleration: f64,
    /// Largest jerk.
    pub max_jerk: f64,
}

/// Why a move could not be planned.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A limit is zero, negative or not finite.
    #[error("axis {axis}: limits must be positive and finite")]
    InvalidLimits {
        /// Index of the axis in the move.
        axis: usize,
    },
    /// A start or target is not finite.
    #[error("axis {axis}: start and target must be finite")]
    NonFinite {
        /// Index of the axis in the move.
        axis: usize,
    },
    /// More axes than [`MAX_MOVE_AXES`], or slices of different lengths.
    #[error("a move takes 1 to {MAX_MOVE_AXES} axes, with one start, target and limits each")]
    BadAxisCount,
    /// Asked to finish sooner than the limits allow.
    #[error("axis {axis}: cannot finish in {duration_s} s within its limits")]
    TooShort {
        /// Index of the axis in the move.
        axis: usize,
        /// The requested duration.
        duration_s: f64,
    },
}

/// Position, velocity and acceleration at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Position.
    pub position: f64,
    /// Velocity.
    pub velocity: f64,
    /// Acceleration.
    pub acceleration: f64,
}

/// A rest-to-rest seven-phase S-curve for one axis.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Profile {
    /// Phase start times, and the end time at index 7.
    times: [f64; 8],
    /// State at each phase start, and the final state at index 7.
    states: [Sample; 8],
    /// Jerk during each phase.
    jerks: [f64; 7],
}

/// Phase durations of a rest-to-rest S-curve: jerk time, constant-acceleration time, cruise.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    t_jerk: f64,
    t_accel: f64,
    t_cruise: f64,
}

impl Shape {
    fn duration(self) -> f64 {
        4.0 * self.t_jerk + 2.0 * self.t_accel + self.t_cruise
    }
}

/// Time to accelerate from rest to `v` and the shape of that ramp.
fn ramp(v: f64, a: f64, j: f64) -> (f64, f64) {
    if v * j < a * a {
        // The acceleration limit is never reached: a pure jerk-up / jerk-down ramp.
        ((v / j).sqrt(), 0.0)
    } else {
        (a / j, v / a - a / j)
    }
}

/// The time-optimal shape for `distance` (≥ 0) cruising at no more than `v`.
fn optimal_shape(distance: f64, v: f64, a: f64, j: f64) -> Shape {
    if distance <= 0.0 {
        return Shape {
            t_jerk: 0.0,
            t_accel: 0.0,
            t_cruise: 0.0,
        };
    }
    let (tj, ta) = ramp(v, a, j);
    // Distance covered by accelerating to v and braking from it again.
    let ramp_distance = v * (2.0 * tj + ta);
    if ramp_distance <= distance {
        return Shape {
            t_jerk: tj,
            t_accel: ta,
            t_cruise: (distance - ramp_distance) / v,
        };
    }
    // v is not reached: find the peak velocity whose two ramps cover exactly the distance.
    let peak_no_accel_limit = (distance * j.sqrt() / 2.0).powf(2.0 / 3.0);
    let peak = if peak_no_accel_limit * j < a * a {
        peak_no_accel_limit
    } else {
        let b = a / j;
        (a / 2.0) * (-b + (b * b + 4.0 * distance / a).sqrt())
    };
    let (tj, ta) = ramp(peak, a, j);
    Shape {
        t_jerk: tj,
        t_accel: ta,
        t_cruise: 0.0,
    }
}

/// The peak velocity of a shape.
/// The cruise velocity at which a move of `distance` (> 0) with these limits takes exactly
/// `duration_s`, which is at least its time-optimal duration. Closed form, so that the
/// cost of a stretched axis does not depend on the precision asked for (a bisection took
/// ~50 shape evaluations per axis: 64 axes starting together overran the cycle's tail).
///
/// With ramps of duration T_r(v) to and from cruise, the move lasts T = T_r(v) + d / v on
/// its falling branch. At or above v = a²/j the ramps reach the acceleration limit,
/// T_r = v/a + a/j, and T(v) is a quadratic in v; below it T_r = 2·sqrt(v/j), and with
/// u = sqrt(v/j), 2u³ - T·u² + d/j = 0, solved by Newton's method from the left, where
/// the convex, falling T(u) makes the iterates rise monotonically onto the root.
fn cruise_velocity_for(distance: f64, duration_s: f64, a: f64, j: f64) -> f64 {
    let (d, t) = (distance, duration_s);
    let b = t - a / j;
    let disc = b * b - 4.0 * d / a;
    if disc >= 0.0 {
        let v = (a / 2.0) * (b - disc.sqrt());
        if v * j >= a * a {
            return v;
        }
    }
    let k = d / j;
    // 2u + k/u² > T here: left of the root.
    let mut u = (k / t).sqrt();
    for _ in 0..64 {
        let f = 2.0 * u + k / (u * u) - t;
        let slope = 2.0 - 2.0 * k / (u * u * u);
        let next = u - f / slope;
        // Converged (no more rise), or NaN from a degenerate input: keep the last iterate.
        if next.partial_cmp(&u) != Some(core::cmp::Ordering::Greater) {
            break;
        }
        u = next;
    }
    j * u * u
}

fn peak_velocity(shape: Shape, a: f64, j: f64) -> f64 {
    let a_peak = (j * shape.t_jerk).min(a);
    a_peak * (shape.t_jerk + shape.t_accel)
}

impl Profile {
    /// The time-optimal profile from `start` to `target`.
    pub fn plan(start: f64, target: f64, limits: Limits) -> Result<Profile, PlanError> {
        check(0, start, target, limits)?;
        let d = (target - start).abs();
        let shape = optimal_shape(
            d,
            limits.max_velocity,
            limits.max_acceleration,
            limits.max_jerk,
        );
        Ok(Self::from_shape(start, target, shape, limits))
    }

    /// A profile from `start` to `target` that takes exactly `duration_s` (at least the
    /// time-optimal duration), by cruising slower.
    pub fn plan_with_duration(
        start: f64,
        target: f64,
        limits: Limits,
        duration_s: f64,
    ) -> Result<Profile, PlanError> {
        check(0, start, target, limits)?;
        let d = (target - start).abs();
        let (a, j) = (limits.max_acceleration, limits.max_jerk);
        let fastest = optimal_shape(d, limits.max_velocity, a, j);
        if duration_s < fastest.duration() * (1.0 - 1e-12) {
            return Err(PlanError::TooShort {
                axis: 0,
                duration_s,
            });
        }
        if d == 0.0 || duration_s <= fastest.duration() {
            return Ok(Self::from_shape(start, target, fastest, limits));
        }
        let v = cruise_velocity_for(d, duration_s, a, j).min(peak_velocity(fastest, a, j));
        let mut shape = optimal_shape(d, v, a, j);
        // Absorb the last rounding into the cruise so the duration is exact.
        shape.t_cruise = (shape.t_cruise + duration_s - shape.duration()).max(0.0);
        Ok(Self::from_shape(start, target, shape, limits))
    }

    fn from_shape(start: f64, target: f64, shape: Shape, limits: Limits) -> Profile {
        let sign = if target >= start { 1.0 } else { -1.0 };
        let jerk = if shape.t_jerk > 0.0 {
            sign * limits.max_jerk
        } else {
            0.0
        };
        let durations = [
            shape.t_jerk,
            shape.t_accel,
            shape.t_jerk,
            shape.t_cruise,
            shape.t_jerk,
            shape.t_accel,
            shape.t_jerk,
        ];
        let jerks = [jerk, 0.0, -jerk, 0.0, -jerk, 0.0, jerk];
        let mut p = Profile {
            jerks,
            ..Profile::default()
        };
        p.states[0] = Sample {
            position: start,
            velocity: 0.0,
            acceleration: 0.0,
        };
        for k in 0..7 {
            p.times[k + 1] = p.times[k] + durations[k];
            p.states[k + 1] = advance(p.states[k], jerks[k], durations[k]);
        }
        // Integration rounding must not leave the axis a hair off its target, or moving.
        p.states[7] = Sample {
            position: target,
            velocity: 0.0,
            acceleration: 0.0,
        };
        p
    }

    /// A profile that stays at `position`.
    pub fn hold(position: f64) -> Profile {
        let s = Sample {
            position,
            velocity: 0.0,
            acceleration: 0.0,
        };
        Profile {
            states: [s; 8],
            ..Profile::default()
        }
    }

    /// Total duration, s.
    pub fn duration(&self) -> f64 {
        self.times[7]
    }

    /// Start position.
    pub fn start(&self) -> f64 {
        self.states[0].position
    }

    /// Target position.
    pub fn target(&self) -> f64 {
        self.states[7].position
    }

    /// The state `t` seconds after the start; before 0 the start, after the end the target.
    pub fn sample(&self, t: f64) -> Sample {
        if t <= 0.0 {
            return self.states[0];
        }
        if t >= self.times[7] {
            return self.states[7];
        }
        let mut k = 0;
        while k < 6 && t >= self.times[k + 1] {
            k += 1;
        }
        advance(self.states[k], self.jerks[k], t - self.times[k])
    }

    /// Largest |velocity| and |acceleration| reached, for checks and displays.
    pub fn peaks(&self) -> (f64, f64) {
        let v = self
            .states
            .iter()
            .map(|s| s.velocity.abs())
            .fold(0.0, f64::max);
        let a = self
            .states
            .iter()
            .map(|s| s.acceleration.abs())
            .fold(0.0, f64::max);
        (v, a)
    }
}

fn advance(s: Sample, jerk: f64, dt: f64) -> Sample {
    Sample {
        position: s.position
            + s.velocity * dt
            + s.acceleration * dt * dt / 2.0
            + jerk * dt * dt * dt / 6.0,
        velocity: s.velocity + s.acceleration * dt + jerk * dt * dt / 2.0,
        acceleration: s.acceleration + jerk * dt,
    }
}

fn check(axis: usize, start: f64, target: f64, l: Limits) -> Result<(), PlanError> {
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !(ok(l.max_velocity) && ok(l.max_acceleration) && ok(l.max_jerk)) {
        return Err(PlanError::InvalidLimits { axis });
    }
    if !(start.is_finite() && target.is_finite()) {
        return Err(PlanError::NonFinite { axis });
    }
    Ok(())
}

/// A planned move of up to [`MAX_MOVE_AXES`] axes. `Copy`, fixed size: it can live in the
/// cycle's state and be replaced at each move start without touching the heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovePlan {
    profiles: [Profile; MAX_MOVE_AXES],
    axes: usize,
    duration_s: f64,
}

impl MovePlan {
    /// Number of axes.
    pub fn axes(&self) -> usize {
        self.axes
    }

    /// Duration of the whole move (its slowest axis), s.
    pub fn duration(&self) -> f64 {
        self.duration_s
    }

    /// One axis's profile.
    pub fn profile(&self, axis: usize) -> &Profile {
        &self.profiles[axis.min(MAX_MOVE_AXES - 1)]
    }

    /// The state of one axis `t` seconds after the move's start.
    pub fn sample(&self, axis: usize, t: f64) -> Sample {
        self.profile(axis).sample(t)
    }

    /// Positions of all axes at `t`, written into `out` (as many as both have).
    pub fn positions_at(&self, t: f64, out: &mut [f64]) {
        for (o, p) in out.iter_mut().zip(&self.profiles[..self.axes]) {
            *o = p.sample(t).position;
        }
    }

    /// True once every axis has arrived.
    pub fn is_done(&self, t: f64) -> bool {
        t >= self.duration_s
    }
}

/// Plans a move of several axes from `starts` to `targets`. With `synchronized`, every axis
/// arrives when the slowest does; otherwise each moves as fast as its limits allow.
pub fn plan_move(
    starts: &[f64],
    targets: &[f64],
    limits: &[Limits],
    synchronized: bool,
) -> Result<MovePlan, PlanError> {
    let n = starts.len();
    if n == 0 || n > MAX_MOVE_AXES || targets.len() != n || limits.len() != n {
        return Err(PlanError::BadAxisCount);
    }
    let mut plan = MovePlan {
        profiles: [Profile::default(); MAX_MOVE_AXES],
        axes: n,
        duration_s: 0.0,
    };
    for i in 0..n {
        check(i, starts[i], targets[i], limits[i])?;
        plan.profiles[i] = Profile::plan(starts[i], targets[i], limits[i])?;
        plan.duration_s = plan.duration_s.max(plan.profiles[i].duration());
    }
    if synchronized {
        for i in 0..n {
            if plan.profiles[i].duration() < plan.duration_s && starts[i] != targets[i] {
                plan.profiles[i] =
                    Profile::plan_with_duration(starts[i], targets[i], limits[i], plan.duration_s)
                        .map_err(|e| match e {
                            PlanError::TooShort { duration_s, .. } => PlanError::TooShort {
                                axis: i,
                                duration_s,
                            },
                            other => other,
                        })?;
            }
        }
    }
    Ok(plan)
}

/// Time for a belt running at `velocity` to stop, jerk-limited (rest at the end).
pub fn stopping_time(velocity: f64, limits: Limits) -> f64 {
    let v = velocity.abs();
    if v <= 0.0 || limits.max_acceleration <= 0.0 || limits.max_jerk <= 0.0 {
        return 0.0;
    }
    let (tj, ta) = ramp(v, limits.max_acceleration, limits.max_jerk);
    2.0 * tj + ta
}

/// Distance a belt covers while ramping between rest and `velocity`.
pub fn ramp_distance(velocity: f64, limits: Limits) -> f64 {
    velocity.abs() * stopping_time(velocity, limits) / 2.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const X: Limits = Limits {
        max_velocity: 1500.0,
        max_acceleration: 10000.0,
        max_jerk: 1e5,
    };
    const Y: Limits = Limits {
        max_velocity: 1200.0,
        max_acceleration: 8000.0,
        max_jerk: 1e5,
    };
    const Z: Limits = Limits {
        max_velocity: 600.0,
        max_acceleration: 5000.0,
        max_jerk: 1e5,
    };

    /// Samples densely and checks the limits, the end state and continuity.
    fn assert_within(p: &Profile, l: Limits, target: f64) {
        let n = 20_000;
        let mut prev = p.sample(0.0);
        for i in 1..=n {
            let t = p.duration() * f64::from(i) / f64::from(n);
            let s = p.sample(t);
            assert!(
                s.velocity.abs() <= l.max_velocity * (1.0 + 1e-9),
                "v {} at {t}",
                s.velocity
            );
            assert!(
                s.acceleration.abs() <= l.max_acceleration * (1.0 + 1e-9),
                "a {} at {t}",
                s.acceleration
            );
            let dt = p.duration() / f64::from(n);
            assert!(
                (s.position - prev.position).abs() <= l.max_velocity * dt * (1.0 + 1e-6) + 1e-9
            );
            prev = s;
        }
        let end = p.sample(p.duration());
        assert!((end.position - target).abs() < 1e-9);
        assert_eq!((end.velocity, end.acceleration), (0.0, 0.0));
        // Integration must land where the closed form says, not only at the clamped end.
        let just_before = p.sample(p.duration() * (1.0 - 1e-9));
        assert!(
            (just_before.position - target).abs() < 1e-6,
            "{} vs {target}",
            just_before.position
        );
    }

    #[test]
    fn long_move_reaches_velocity_and_matches_ruckig() {
        let p = Profile::plan(140.0, 10.0, Z).unwrap();
        // The duration ruckig 0.19.4's offline calculate gives for the same move.
        assert!(
            (p.duration() - 0.386_666_666_666_666_6).abs() < 1e-9,
            "{}",
            p.duration()
        );
        assert!((p.peaks().0 - 600.0).abs() < 1e-9);
        assert_within(&p, Z, 10.0);
    }

    #[test]
    fn short_moves_do_not_reach_velocity_or_acceleration() {
        for d in [0.001, 0.5, 5.0, 20.0, 60.0] {
            let p = Profile::plan(0.0, d, X).unwrap();
            assert!(p.peaks().0 < X.max_velocity);
            assert_within(&p, X, d);
        }
        let tiny = Profile::plan(0.0, 0.5, X).unwrap();
        assert!(
            tiny.peaks().1 < X.max_acceleration,
            "0.5 mm never reaches full acceleration"
        );
    }

    #[test]
    fn zero_move_is_instant() {
        let p = Profile::plan(5.0, 5.0, X).unwrap();
        assert_eq!(p.duration(), 0.0);
        assert_eq!(p.sample(1.0).position, 5.0);
    }

    #[test]
    fn synchronized_axes_arrive_together_within_their_limits() {
        let starts = [0.0, 0.0, 100.0];
        let targets = [480.0, 320.0, 100.0];
        let plan = plan_move(&starts, &targets, &[X, Y, Z], true).unwrap();
        let fastest_x = Profile::plan(0.0, 480.0, X).unwrap().duration();
        let fastest_y = Profile::plan(0.0, 320.0, Y).unwrap().duration();
        assert!((plan.duration() - fastest_x.max(fastest_y)).abs() < 1e-12);
        for (i, l) in [X, Y].into_iter().enumerate() {
            assert!(
                (plan.profile(i).duration() - plan.duration()).abs() < 1e-9,
                "axis {i}"
            );
            assert_within(plan.profile(i), l, targets[i]);
        }
        assert_eq!(plan.profile(2).duration(), 0.0);
    }

    #[test]
    fn unsynchronized_axes_go_as_fast_as_they_can() {
        let plan = plan_move(&[0.0, 0.0], &[480.0, 10.0], &[X, Y], false).unwrap();
        assert!(plan.profile(1).duration() < plan.profile(0).duration() / 2.0);
    }

    #[test]
    fn stretching_is_exact_and_never_faster() {
        let p = Profile::plan_with_duration(0.0, 100.0, X, 1.234).unwrap();
        assert!((p.duration() - 1.234).abs() < 1e-12);
        assert_within(&p, X, 100.0);
        assert!(matches!(
            Profile::plan_with_duration(0.0, 100.0, X, 0.01),
            Err(PlanError::TooShort { .. })
        ));
    }

    #[test]
    fn stretched_moves_of_every_shape_take_exactly_their_duration_within_limits() {
        // Short moves (jerk-only ramps), long ones (acceleration-limited ramps), and
        // stretches from barely to ten times the optimum: each lands on its target at
        // exactly the duration asked, inside every limit.
        for distance in [0.001, 0.5, 3.0, 40.0, 100.0, 600.0] {
            let fastest = Profile::plan(0.0, distance, X).unwrap().duration();
            for stretch in [1.000_001, 1.01, 1.3, 2.0, 10.0] {
                let t = fastest * stretch;
                let p = Profile::plan_with_duration(0.0, distance, X, t).unwrap();
                assert!(
                    (p.duration() - t).abs() <= 1e-9 * t,
                    "{distance} in {t}: {}",
                    p.duration()
                );
                assert_within(&p, X, distance);
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let bad = Limits {
            max_velocity: 0.0,
            ..X
        };
        assert_eq!(
            plan_move(&[0.0], &[1.0], &[bad], true),
            Err(PlanError::InvalidLimits { axis: 0 })
        );
        assert_eq!(
            plan_move(&[f64::NAN], &[1.0], &[X], true),
            Err(PlanError::NonFinite { axis: 0 })
        );
        assert_eq!(plan_move(&[], &[], &[], true), Err(PlanError::BadAxisCount));
    }

    #[test]
    fn belt_stopping() {
        let belt = Limits {
            max_velocity: 500.0,
            max_acceleration: 2000.0,
            max_jerk: 1e5,
        };
        // 250 mm/s: 20 ms jerk ramp reaches 2000 mm/s², so 0.02 + 0.125 - 0.02 + 0.02 s.
        assert!((stopping_time(250.0, belt) - 0.145).abs() < 1e-12);
        assert!((ramp_distance(250.0, belt) - 250.0 * 0.145 / 2.0).abs() < 1e-12);
    }
}
