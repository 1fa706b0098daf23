//! The one seeded random number generator of a simulated run (ChaCha8): part arrivals,
//! frame faults with a probability, corrupted bytes. Every draw goes through here, in a
//! fixed order per step, so the same seed gives the same run. Floats are made from the top
//! 53 bits of a `u64` by hand rather than through a distribution crate, so the sequence
//! cannot change under a dependency update.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The run's random source.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        if p >= 1.0 {
            return true;
        }
        if p <= 0.0 {
            return false;
        }
        self.uniform() < p
    }

    /// An exponentially distributed draw with mean `mean`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = SimRng::new(8);
        assert_ne!(SimRng::new(7).next_u64(), c.next_u64());
        let u = a.uniform();
        assert!((0.0..1.0).contains(&u));
    }
}
