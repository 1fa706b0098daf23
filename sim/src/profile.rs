//! The drive's own set-point generator (CiA 402 profile position and profile velocity
//! modes): an online trapezoidal profile that moves the position demand towards a target
//! within the profile velocity 0x6081, acceleration 0x6083 and deceleration 0x6084, and can
//! be re-targeted or stopped at any instant (change set immediately, halt, quick stop).
//!
//! Units are the drive's: position counts, counts/s, counts/s².

/// The demand position and velocity of one axis.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Profile {
    /// Position demand, counts.
    pub position_counts: f64,
    /// Velocity demand, counts/s.
    pub velocity_counts_s: f64,
}

impl Profile {
    /// A profile resting at `position_counts`.
    pub fn at(position_counts: f64) -> Profile {
        Profile {
            position_counts,
            velocity_counts_s: 0.0,
        }
    }

    /// True when resting.
    pub fn is_still(&self) -> bool {
        self.velocity_counts_s == 0.0
    }

    /// One step of `dt_s` towards `target_counts`; returns true once there (and resting).
    pub fn to_position(
        &mut self,
        target_counts: f64,
        max_velocity: f64,
        accel: f64,
        decel: f64,
        dt_s: f64,
    ) -> bool {
        let (accel, decel, vmax) = (accel.max(1.0), decel.max(1.0), max_velocity.max(0.0));
        let to_go = target_counts - self.position_counts;
        let v = self.velocity_counts_s;
        if to_go.abs() < 1e-9 && v.abs() <= decel * dt_s {
            self.position_counts = target_counts;
            self.velocity_counts_s = 0.0;
            return true;
        }
        let dir = to_go.signum();
        // The fastest speed from which the axis can still stop at the target.
        let stoppable = (2.0 * decel * to_go.abs()).sqrt();
        let wanted = dir * vmax.min(stoppable);
        let next = if v * dir < 0.0 {
            // Moving away from the target: brake first.
            v + dir * decel * dt_s
        } else if wanted.abs() > v.abs() {
            dir * (v.abs() + accel * dt_s).min(wanted.abs())
        } else {
            // Braking: follow the stopping curve, never faster than the deceleration
            // allows plus what keeps the discrete curve from overshooting.
            wanted
        };
        let step = next * dt_s;
        if (v * dir >= 0.0) && step.abs() >= to_go.abs() {
            self.position_counts = target_counts;
            self.velocity_counts_s = 0.0;
            return true;
        }
        self.velocity_counts_s = next;
        self.position_counts += step;
        false
    }

    /// One step of `dt_s` towards the velocity `target_counts_s`; returns true once there.
    pub fn to_velocity(&mut self, target_counts_s: f64, accel: f64, decel: f64, dt_s: f64) -> bool {
        let v = self.velocity_counts_s;
        let speeding_up = target_counts_s.abs() > v.abs() && target_counts_s * v >= 0.0;
        let rate = if speeding_up { accel } else { decel }.max(1.0);
        let dv = target_counts_s - v;
        let next = if dv.abs() <= rate * dt_s {
            target_counts_s
        } else {
            v + dv.signum() * rate * dt_s
        };
        self.velocity_counts_s = next;
        self.position_counts += next * dt_s;
        next == target_counts_s
    }

    /// One step of braking at `decel`; returns true once resting.
    pub fn stop(&mut self, decel: f64, dt_s: f64) -> bool {
        self.to_velocity(0.0, decel, decel, dt_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_reaches_its_target_within_the_limits() {
        let mut p = Profile::at(0.0);
        let dt = 1e-3;
        let mut t = 0;
        let mut vmax_seen: f64 = 0.0;
        let mut prev_v = 0.0;
        let mut amax_seen: f64 = 0.0;
        while !p.to_position(10_000.0, 20_000.0, 100_000.0, 100_000.0, dt) {
            vmax_seen = vmax_seen.max(p.velocity_counts_s);
            amax_seen = amax_seen.max(((p.velocity_counts_s - prev_v) / dt).abs());
            prev_v = p.velocity_counts_s;
            t += 1;
            assert!(t < 10_000);
            assert!(p.position_counts <= 10_000.0);
        }
        assert_eq!(p.position_counts, 10_000.0);
        assert!(vmax_seen <= 20_000.0 + 1e-9);
        assert!(amax_seen <= 100_000.0 * 1.5, "{amax_seen}");
        // 0.2 s to cruise speed and back, 0.3 s cruising: about 0.7 s.
        assert!((650..=760).contains(&t), "{t}");
    }

    #[test]
    fn retargeting_backwards_brakes_first() {
        let mut p = Profile::at(0.0);
        for _ in 0..100 {
            p.to_position(10_000.0, 20_000.0, 100_000.0, 100_000.0, 1e-3);
        }
        let mut n = 0;
        while !p.to_position(0.0, 20_000.0, 100_000.0, 100_000.0, 1e-3) {
            n += 1;
            assert!(n < 10_000);
        }
        assert_eq!(p.position_counts, 0.0);
    }

    #[test]
    fn velocity_ramps() {
        let mut p = Profile::at(0.0);
        let mut n = 0;
        while !p.to_velocity(1000.0, 10_000.0, 10_000.0, 1e-3) {
            n += 1;
        }
        assert_eq!(n, 99);
        while !p.stop(10_000.0, 1e-3) {}
        assert!(p.is_still());
    }
}
