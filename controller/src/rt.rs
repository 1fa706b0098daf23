//! Runtimes of the cycle: the same [`CellController::step`] driven either in lockstep with
//! the simulated cell on its virtual clock ([`Lockstep`]), as fast as the CPU allows or
//! paced to real time, or (issue 5's RT thread) by a SCHED_FIFO thread on SocketCAN.
//!
//! The runtime owns the clock and the bus; the cycle never reads either itself.

use core::time::Duration;
use std::time::Instant;

use takt_drivers::can::Timestamp;
use takt_sim::{CellSpec, Sim, SimConfig, SimError};

use crate::cycle::CellController;

/// Fixed-size histogram of durations in 1 µs bins up to 10 ms (longer ones go in the last
/// bin), for compute time and wake-up latency. No allocation after construction.
#[derive(Debug, Clone)]
pub struct Histogram {
    bins: Box<[u64]>,
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Histogram {
    const BINS: usize = 10_000;

    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            bins: vec![0; Self::BINS].into_boxed_slice(),
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let bin = usize::try_from(ns / 1000)
            .unwrap_or(usize::MAX)
            .min(Self::BINS - 1);
        self.bins[bin] += 1;
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The mean.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((self.sum_ns / u128::from(self.count)) as u64)
    }

    /// The upper edge of the bin holding quantile `q` (0..=1), 1 µs resolution.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(i as u64 + 1)
                    .min(self.max().max(Duration::from_micros(i as u64)));
            }
        }
        self.max()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The controller and the simulated cell in lockstep on the virtual clock: each tick of the
/// simulator runs one cycle of the controller, which sees exactly the frames the simulated
/// bus delivered by then.
#[derive(Debug)]
pub struct Lockstep {
    /// The simulated cell.
    pub sim: Sim,
    /// The controller.
    pub cell: CellController,
    /// Compute time of the controller's step, per cycle (measured around the step, outside
    /// it).
    pub compute: Histogram,
}

impl Lockstep {
    /// Builds the simulated cell `spec` with `config` (its tick is the cycle period) around
    /// `cell`.
    pub fn new(
        spec: &CellSpec,
        config: SimConfig,
        cell: CellController,
    ) -> Result<Lockstep, SimError> {
        Ok(Lockstep {
            sim: Sim::new(spec, config)?,
            cell,
            compute: Histogram::new(),
        })
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.sim.now()
    }

    /// One tick of the cell and one cycle of the controller.
    pub fn step(&mut self) {
        let cell = &mut self.cell;
        let compute = &mut self.compute;
        self.sim.step(|io, now| {
            let t0 = Instant::now();
            cell.step(now, io);
            compute.record(t0.elapsed());
        });
    }

    /// Steps until `done` holds or the virtual clock has advanced by `limit`; true if
    /// `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Lockstep) -> bool) -> bool {
        let end = self.sim.now() + limit;
        while self.sim.now() < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }
}
