//! Runtimes of the cycle: the same [`CellController::step`] driven either in lockstep with
//! the simulated cell on its virtual clock ([`Lockstep`]), as fast as the CPU allows, or by
//! the real-time loop ([`run_periodic`]) on SocketCAN or paced to real time.
//!
//! The runtime owns the clock and the bus; the cycle never reads either itself.
//!
//! The real-time loop follows the PREEMPT_RT practice (and cyclictest's): memory locked
//! with `mlockall(MCL_CURRENT | MCL_FUTURE)`, SCHED_FIFO at a configurable priority (via
//! `thread-priority`), optional CPU affinity, and wake-ups at absolute times on
//! CLOCK_MONOTONIC (`clock_nanosleep(TIMER_ABSTIME)`), so a late cycle never shifts the ones
//! after it. Wake-up latency and compute time go into fixed-size histograms. An overrun is
//! a cycle whose work ends after the next wake-up was due; like a PLC watchdog (the watchdog
//! time and sensitivity of CODESYS, TwinCAT's watchdog cycles), N overruns in a row or one
//! cycle whose work ends more than the watchdog time after its planned wake-up trips the
//! cell (stop category `cycle_overrun`).

use core::time::Duration;
use std::time::Instant;

use takt_drivers::can::Timestamp;
use takt_sim::{CellSpec, Sim, SimConfig, SimError};
use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

use crate::cycle::CellController;
use crate::status::WatchdogTrip;

pub mod check;

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

    /// The sum of every sample.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.sum_ns).unwrap_or(u64::MAX))
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

/// The controller and the simulated cell in lockstep on the virtual clock: each cycle of the
/// controller runs at the start of one or more ticks of the simulator (one by default: the
/// tick is the cycle period), and sees exactly the frames the simulated bus delivered by
/// then.
#[derive(Debug)]
pub struct Lockstep {
    /// The simulated cell.
    pub sim: Sim,
    /// The controller.
    pub cell: CellController,
    /// Compute time of the controller's step, per cycle (measured around the step, outside
    /// it).
    pub compute: Histogram,
    /// Ticks of the simulator per cycle of the controller.
    ticks_per_cycle: u32,
}

/// The longest tick the simulated cell takes for a cycle period (see
/// [`Lockstep::with_period`]).
pub const LOCKSTEP_MAX_TICK: Duration = Duration::from_millis(1);

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
            ticks_per_cycle: 1,
        })
    }

    /// Builds the simulated cell for a controller that runs every `period` (250 µs to
    /// 10 ms): the simulator ticks every `period / k`, k the fewest whole ticks of at most
    /// [`LOCKSTEP_MAX_TICK`], with its drives' loops every 250 µs (4 kHz) whatever the
    /// tick. A simulated device acts on a frame at the tick after it arrives, as if its
    /// firmware polled every tick: a tick as long as a 2 ms cycle would add a whole period
    /// to every SYNC → TPDO round trip, which a real drive answers within the period. At
    /// 1 ms this is [`Lockstep::new`] with `config` unchanged.
    pub fn with_period(
        spec: &CellSpec,
        config: SimConfig,
        cell: CellController,
        period: Duration,
    ) -> Result<Lockstep, SimError> {
        let period_ns = period.as_nanos().max(1);
        let max_ns = LOCKSTEP_MAX_TICK.as_nanos();
        let k = period_ns.div_ceil(max_ns).max(1);
        let tick = Duration::from_nanos(u64::try_from(period_ns / k).unwrap_or(u64::MAX));
        let substeps = u32::try_from((tick.as_nanos() + 125_000) / 250_000)
            .unwrap_or(u32::MAX)
            .max(1);
        let config = SimConfig {
            tick,
            substeps,
            ..config
        };
        Ok(Lockstep {
            sim: Sim::new(spec, config)?,
            cell,
            compute: Histogram::new(),
            ticks_per_cycle: u32::try_from(k).unwrap_or(u32::MAX),
        })
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.sim.now()
    }

    /// One tick of the cell and one cycle of the controller; returns the controller's
    /// compute time for the cycle (also recorded in [`Lockstep::compute`]), so a caller
    /// that keeps its own statistics need not read the clock again.
    pub fn step(&mut self) -> Duration {
        let cell = &mut self.cell;
        let compute = &mut self.compute;
        let mut took = Duration::ZERO;
        self.sim.step(|io, now| {
            let t0 = Instant::now();
            cell.step(now, io);
            took = t0.elapsed();
            compute.record(took);
        });
        // The rest of the cycle's period: the cell runs on, frames wait for the next cycle.
        for _ in 1..self.ticks_per_cycle {
            self.sim.step(|_, _| {});
        }
        took
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

/// Settings of the real-time loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtConfig {
    /// The cycle period, 250 µs to 10 ms.
    pub period: Duration,
    /// SCHED_FIFO priority, 1..=99.
    pub priority: u8,
    /// Pin the thread to this CPU.
    pub cpu: Option<usize>,
    /// Refuse to run without SCHED_FIFO and locked memory.
    pub require_rt: bool,
    /// Trip after this many overruns in a row.
    pub trip_consecutive: u32,
    /// Trip on one cycle whose work ends more than this after its planned wake-up: the
    /// watchdog time, one period ..= [`RtConfig::MAX_WATCHDOG`].
    pub watchdog: Duration,
}

impl RtConfig {
    /// The longest watchdog time: a cell that may stand unsupervised longer is not
    /// watched.
    pub const MAX_WATCHDOG: Duration = Duration::from_secs(1);
    /// The default watchdog time and overrun count are this many periods and overruns.
    pub const DEFAULT_WATCHDOG_PERIODS: u32 = 10;

    /// The defaults for this period: priority 80, no CPU pinned, RT failures warned about,
    /// and a PLC-like watchdog rather than a hair trigger (a shared or virtual host wakes a
    /// few milliseconds late now and then even under SCHED_FIFO): ten overruns in a row,
    /// or one cycle ending more than ten periods after its planned wake-up.
    pub fn for_period(period: Duration) -> RtConfig {
        RtConfig {
            period,
            priority: 80,
            cpu: None,
            require_rt: false,
            trip_consecutive: RtConfig::DEFAULT_WATCHDOG_PERIODS,
            watchdog: period.saturating_mul(RtConfig::DEFAULT_WATCHDOG_PERIODS),
        }
    }
}

impl Default for RtConfig {
    fn default() -> Self {
        RtConfig::for_period(Duration::from_millis(1))
    }
}

/// Why the real-time set-up failed (with `--require-rt`) or what it could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtError {
    /// The period is out of range.
    #[error("cycle period {0:?} is outside 250 µs ..= 10 ms")]
    Period(Duration),
    /// The priority is out of range.
    #[error("SCHED_FIFO priority {0} is outside 1..=99")]
    Priority(u8),
    /// The watchdog time is shorter than the period or longer than the longest.
    #[error("watchdog time {watchdog:?} is outside the period ({period:?}) ..= 1 s")]
    Watchdog {
        /// The watchdog time asked for.
        watchdog: Duration,
        /// The cycle period.
        period: Duration,
    },
    /// The watchdog's overrun count is zero.
    #[error("the watchdog's overruns in a row must be at least 1")]
    WatchdogOverruns,
    /// SCHED_FIFO was refused.
    #[error(
        "SCHED_FIFO priority {priority} refused ({reason}): raise RLIMIT_RTPRIO (systemd LimitRTPRIO={priority}, or `ulimit -r {priority}`) or grant CAP_SYS_NICE"
    )]
    Fifo {
        /// The priority asked for.
        priority: u8,
        /// What the system said.
        reason: String,
    },
    /// mlockall was refused.
    #[error(
        "mlockall refused (errno {0}): raise RLIMIT_MEMLOCK (systemd LimitMEMLOCK=infinity, or `ulimit -l unlimited`) or grant CAP_IPC_LOCK"
    )]
    MemLock(i32),
    /// The CPU affinity was refused.
    #[error("pinning to CPU {cpu} refused (errno {errno})")]
    Affinity {
        /// The CPU.
        cpu: usize,
        /// errno.
        errno: i32,
    },
}

/// What the real-time set-up achieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtSetup {
    /// The thread runs SCHED_FIFO.
    pub fifo: bool,
    /// Memory is locked.
    pub locked: bool,
    /// What could not be done (each a warning the caller shows).
    pub warnings: Vec<RtError>,
}

/// Prepares the calling thread for real time: memory lock, CPU affinity, SCHED_FIFO. A
/// failure is an error with `require_rt`, a warning in [`RtSetup::warnings`] otherwise.
pub fn prepare(cfg: &RtConfig) -> Result<RtSetup, RtError> {
    if cfg.period < Duration::from_micros(250) || cfg.period > Duration::from_millis(10) {
        return Err(RtError::Period(cfg.period));
    }
    if !(1..=99).contains(&cfg.priority) {
        return Err(RtError::Priority(cfg.priority));
    }
    if cfg.watchdog < cfg.period || cfg.watchdog > RtConfig::MAX_WATCHDOG {
        return Err(RtError::Watchdog {
            watchdog: cfg.watchdog,
            period: cfg.period,
        });
    }
    if cfg.trip_consecutive == 0 {
        return Err(RtError::WatchdogOverruns);
    }
    let mut setup = RtSetup::default();
    let fail = |e: RtError, setup: &mut RtSetup| {
        if cfg.require_rt {
            Err(e)
        } else {
            setup.warnings.push(e);
            Ok(())
        }
    };
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    let locked = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if locked == 0 {
        setup.locked = true;
    } else {
        fail(RtError::MemLock(errno()), &mut setup)?;
    }
    if let Some(cpu) = cfg.cpu {
        // SAFETY: cpu_set_t is plain data, zeroed is the empty set; CPU_SET writes inside it
        // (it checks the index against the set's size), and sched_setaffinity reads
        // exactly size_of::<cpu_set_t>() bytes from it.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            fail(
                RtError::Affinity {
                    cpu,
                    errno: errno(),
                },
                &mut setup,
            )?;
        }
    }
    let fifo = ThreadPriorityValue::try_from(cfg.priority)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(p),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
            )
            .map_err(|e| format!("{e:?}"))
        });
    match fifo {
        Ok(()) => setup.fifo = true,
        Err(reason) => fail(
            RtError::Fifo {
                priority: cfg.priority,
                reason,
            },
            &mut setup,
        )?,
    }
    Ok(setup)
}

/// The PM QoS request that keeps every CPU out of deep C-states while it is held: 0 µs
/// written to `/dev/cpu_dma_latency`, in force for as long as the file stays open (as
/// cyclictest does). Dropping it releases the request.
#[derive(Debug)]
pub struct CpuDmaLatencyHold {
    _file: std::fs::File,
}

impl CpuDmaLatencyHold {
    /// Opens `/dev/cpu_dma_latency` and asks for 0 µs wake-up latency.
    pub fn zero() -> std::io::Result<CpuDmaLatencyHold> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(check::CPU_DMA_LATENCY)?;
        // The device takes a binary s32 in host byte order.
        file.write_all(&0i32.to_ne_bytes())?;
        Ok(CpuDmaLatencyHold { _file: file })
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// CLOCK_MONOTONIC now, ns.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline_ns` (absolute), restarting on signals.
fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null with
        // TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                core::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// What the real-time loop measured.
#[derive(Debug, Clone, Default)]
pub struct RtStats {
    /// Wake-up latency: actual wake-up minus the planned absolute time.
    pub latency: Histogram,
    /// Work per cycle: wake-up to the end of the step.
    pub compute: Histogram,
    /// Cycles run.
    pub cycles: u64,
    /// Cycles whose work ended after the next wake-up was due.
    pub overruns: u64,
    /// Longest run of consecutive overruns.
    pub max_consecutive_overruns: u32,
    /// Periods skipped because a cycle ran past them.
    pub skipped: u64,
    /// The overrun trip rule fired.
    pub tripped: bool,
    /// The thread ran SCHED_FIFO.
    pub fifo: bool,
    /// Memory was locked.
    pub locked: bool,
}

/// One wake-up of [`run_periodic`]'s loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The cycle's time, since the loop started.
    pub now: Timestamp,
    /// How long after its planned absolute time the thread woke (the whole of it, also
    /// when it is more than a period).
    pub late: Duration,
    /// The watchdog fired since the last wake-up: the cell should trip.
    pub trip: Option<WatchdogTrip>,
}

/// Runs `body` every `cfg.period` at absolute times on CLOCK_MONOTONIC until it returns
/// false. `body` gets the [`Wake`]: the cycle's time, how late it woke, and what the
/// watchdog saw if it fired since its last call. Call [`prepare`] first, on the same thread.
pub fn run_periodic(cfg: &RtConfig, stats: &mut RtStats, mut body: impl FnMut(Wake) -> bool) {
    let period_ns = u64::try_from(cfg.period.as_nanos())
        .unwrap_or(1_000_000)
        .max(1);
    let watchdog_ns = u64::try_from(cfg.watchdog.as_nanos()).unwrap_or(u64::MAX);
    let start = monotonic_ns();
    let mut k: u64 = 1;
    let mut consecutive = 0u32;
    let mut trip = None;
    let us = |d: u64| u32::try_from(d / 1000).unwrap_or(u32::MAX);
    loop {
        let planned = start + k * period_ns;
        sleep_until_ns(planned);
        let woke = monotonic_ns();
        let late = Duration::from_nanos(woke.saturating_sub(planned));
        stats.latency.record(late);
        let go_on = body(Wake {
            now: Timestamp::from_nanos(woke - start),
            late,
            trip,
        });
        trip = None;
        let end = monotonic_ns();
        stats
            .compute
            .record(Duration::from_nanos(end.saturating_sub(woke)));
        stats.cycles += 1;
        if !go_on {
            return;
        }
        let next = planned + period_ns;
        if end > next {
            stats.overruns += 1;
            consecutive += 1;
            stats.max_consecutive_overruns = stats.max_consecutive_overruns.max(consecutive);
            let long = end - planned > watchdog_ns;
            if consecutive >= cfg.trip_consecutive || long {
                trip = Some(WatchdogTrip {
                    ended_after_us: us(end - planned),
                    in_a_row: consecutive,
                    watchdog_us: us(watchdog_ns),
                    trip_in_a_row: cfg.trip_consecutive,
                });
                stats.tripped = true;
            }
            // Skip the periods already past rather than running a burst of late cycles.
            let behind = (end - start) / period_ns;
            stats.skipped += behind.saturating_sub(k + 1);
            k = behind + 1;
        } else {
            consecutive = 0;
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_in_microsecond_bins() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 1000);
        // The upper edge of the 1 µs bin holding the quantile.
        assert_eq!(h.quantile(0.5), Duration::from_micros(501));
        assert_eq!(h.quantile(0.999), Duration::from_micros(1000));
        assert_eq!(h.max(), Duration::from_micros(1000));
        h.record(Duration::from_secs(1));
        assert_eq!(
            h.max(),
            Duration::from_secs(1),
            "beyond the last bin, still the max"
        );
    }

    #[test]
    fn the_periodic_loop_keeps_to_absolute_time_and_counts_overruns() {
        let cfg = RtConfig::default();
        // Without --require-rt a refused SCHED_FIFO or memory lock is a warning, not an error.
        let setup = prepare(&cfg).unwrap();
        assert!(setup.fifo || !setup.warnings.is_empty());
        // Three cycles far over their period: overruns, and the long-cycle trip rule.
        let three_long = |cfg: &RtConfig| {
            let mut stats = RtStats::default();
            let mut n = 0;
            let mut trips = Vec::new();
            run_periodic(cfg, &mut stats, |wake| {
                n += 1;
                trips.extend(wake.trip.map(|t| (n, t)));
                if (50..53).contains(&n) {
                    std::thread::sleep(Duration::from_millis(12));
                }
                n < 200
            });
            (stats, trips)
        };
        let t0 = Instant::now();
        let (stats, trips) = three_long(&cfg);
        let wall = t0.elapsed();
        assert_eq!(stats.cycles, 200);
        assert!(stats.overruns >= 3, "{stats:?}");
        assert!(stats.tripped, "one cycle over the 10 ms watchdog trips");
        // The next wake-up carries what the watchdog saw (the host may add trips of its own).
        let &(_, trip) = trips.iter().find(|(n, _)| *n == 51).expect("a trip at 51");
        assert!(trip.ended_after_us >= 12_000, "{trip:?}");
        assert_eq!(
            (trip.in_a_row, trip.watchdog_us, trip.trip_in_a_row),
            (1, 10_000, 10)
        );
        assert!(
            stats.skipped >= 30,
            "late periods are skipped, not run in a burst"
        );
        // 200 periods plus the skipped ones, on the absolute grid.
        let expected = Duration::from_millis(200 + stats.skipped);
        assert!(
            wall + Duration::from_millis(5) >= expected,
            "{wall:?} vs {expected:?}"
        );
        assert!(
            prepare(&RtConfig {
                period: Duration::from_micros(100),
                ..cfg
            })
            .is_err()
        );

        // A longer watchdog time lets the same three cycles pass (three overruns in a row,
        // fewer than ten); one shorter than the period, or zero overruns, is refused.
        let lenient = RtConfig {
            watchdog: Duration::from_millis(50),
            ..cfg
        };
        let (stats, trips) = three_long(&lenient);
        assert!(stats.overruns >= 3 && !stats.tripped, "{stats:?}");
        assert_eq!(trips, []);
        for bad in [
            RtConfig {
                watchdog: Duration::from_micros(500),
                ..cfg
            },
            RtConfig {
                watchdog: Duration::from_secs(2),
                ..cfg
            },
            RtConfig {
                trip_consecutive: 0,
                ..cfg
            },
        ] {
            assert!(prepare(&bad).is_err(), "{bad:?}");
        }
    }
}
