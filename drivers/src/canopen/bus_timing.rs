//! Timing of a recorded CANopen bus: the SYNC period and its jitter, when PDOs travel
//! relative to SYNC, and the bus load, from the frames of a trace (a candump `-L` log read
//! with [`crate::can::candump::CandumpReader`]).
//!
//! This is what a maintenance engineer asks of a capture after an incident: did SYNC keep
//! its period, did every synchronous TPDO come back inside the SYNC window, how full was the
//! bus. CiA 301 §7.2.5 (SYNC) and §7.2.2 (PDO): synchronous RPDOs are written before the SYNC
//! they act on, synchronous TPDOs answer after it, so an RPDO is measured against the SYNC
//! that follows it and a TPDO against the SYNC before it.
//!
//! ```
//! use takt_drivers::can::{Frame, Timestamp, TimestampedFrame};
//! use takt_drivers::canopen::bus_timing::BusTiming;
//!
//! let mut timing = BusTiming::new(1_000_000);
//! for k in 0..4u64 {
//!     let t = Timestamp::from_millis(2 * k);
//!     timing.observe(&TimestampedFrame { timestamp: t, frame: Frame::standard(0x080, []) });
//!     let tpdo = Timestamp::from_micros(2000 * k + 150);
//!     timing.observe(&TimestampedFrame { timestamp: tpdo, frame: Frame::standard(0x181, [0; 8]) });
//! }
//! let report = timing.report();
//! assert_eq!(report.sync.count, 4);
//! assert_eq!(report.sync.period_mean_ns, 2_000_000);
//! assert_eq!(report.tpdo_after_sync.max_ns, 150_000);
//! ```

use core::time::Duration;

use crate::can::{Frame, Timestamp, TimestampedFrame};

use super::cob::{Cob, classify_frame};
use super::pdo::PdoDirection;

/// Bus load is also reported as its peak over windows this long.
pub const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// Summary statistics of a set of durations, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spread {
    /// How many.
    pub count: u64,
    /// The smallest.
    pub min_ns: u64,
    /// The mean.
    pub mean_ns: u64,
    /// The 99th percentile (nearest rank).
    pub p99_ns: u64,
    /// The largest.
    pub max_ns: u64,
}

impl Spread {
    fn of(mut values: Vec<u64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_unstable();
        let n = values.len();
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        // Nearest rank: the smallest value with at least 99 % of the samples at or below it.
        let rank = (n * 99).div_ceil(100).max(1);
        Spread {
            count: n as u64,
            min_ns: values[0],
            mean_ns: (sum / n as u128) as u64,
            p99_ns: values[rank - 1],
            max_ns: values[n - 1],
        }
    }
}

/// The SYNC producer as seen on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncTiming {
    /// SYNC frames.
    pub count: u64,
    /// Mean interval between consecutive SYNCs.
    pub period_mean_ns: u64,
    /// Standard deviation of the interval: the jitter.
    pub period_std_dev_ns: u64,
    /// Shortest interval.
    pub period_min_ns: u64,
    /// Longest interval.
    pub period_max_ns: u64,
}

/// Everything [`BusTiming`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct BusTimingReport {
    /// Frames (remote and error frames included as they are on the wire; bus-state events
    /// are not frames).
    pub frames: u64,
    /// From the first frame to the last.
    pub span: Duration,
    /// The SYNC producer.
    pub sync: SyncTiming,
    /// TPDOs (device→controller) after the SYNC before them.
    pub tpdo_after_sync: Spread,
    /// RPDOs (controller→device) before the SYNC after them.
    pub rpdo_before_sync: Spread,
    /// PDOs seen before the first SYNC or after the last one, not timed.
    pub pdos_untimed: u64,
    /// The nominal bit rate the load is computed for, bit/s.
    pub bitrate_bit_s: u32,
    /// Bits on the wire with worst-case stuffing ([`Frame::worst_case_bits`]): an upper bound.
    pub bits: u64,
    /// Mean load over the span, 0..=1 (worst-case stuffing).
    pub load: f64,
    /// The highest load over any [`LOAD_WINDOW`] ending at a frame, 0..=1.
    pub peak_window_load: f64,
}

/// Accumulates the frames of a trace, in time order.
#[derive(Debug, Clone)]
pub struct BusTiming {
    bitrate_bit_s: u32,
    frames: u64,
    bits: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    syncs: Vec<Timestamp>,
    /// TPDO offsets from the last SYNC.
    tpdo_ns: Vec<u64>,
    /// RPDOs waiting for the next SYNC.
    rpdo_pending: Vec<Timestamp>,
    rpdo_ns: Vec<u64>,
    untimed: u64,
    /// (time, bits) of the frames inside the current load window.
    window: std::collections::VecDeque<(Timestamp, u32)>,
    window_bits: u64,
    peak_window_bits: u64,
}

impl BusTiming {
    /// An empty accumulator for a bus at `bitrate_bit_s`.
    pub fn new(bitrate_bit_s: u32) -> BusTiming {
        BusTiming {
            bitrate_bit_s: bitrate_bit_s.max(1),
            frames: 0,
            bits: 0,
            first: None,
            last: None,
            syncs: Vec::new(),
            tpdo_ns: Vec::new(),
            rpdo_pending: Vec::new(),
            rpdo_ns: Vec::new(),
            untimed: 0,
            window: std::collections::VecDeque::new(),
            window_bits: 0,
            peak_window_bits: 0,
        }
    }

    /// Takes one frame; frames must come in time order (as a log has them).
    pub fn observe(&mut self, f: &TimestampedFrame) {
        let t = f.timestamp;
        self.frames += 1;
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.load(t, &f.frame);
        match classify_frame(&f.frame) {
            Some(Cob::Sync) => {
                for r in self.rpdo_pending.drain(..) {
                    self.rpdo_ns.push(t.as_nanos().saturating_sub(r.as_nanos()));
                }
                self.syncs.push(t);
            }
            Some(Cob::Pdo {
                direction: PdoDirection::Transmit,
                ..
            }) => match self.syncs.last() {
                Some(s) => self.tpdo_ns.push(t.as_nanos().saturating_sub(s.as_nanos())),
                None => self.untimed += 1,
            },
            Some(Cob::Pdo {
                direction: PdoDirection::Receive,
                ..
            }) => self.rpdo_pending.push(t),
            _ => {}
        }
    }

    fn load(&mut self, t: Timestamp, frame: &Frame) {
        let bits = frame.worst_case_bits();
        self.bits += u64::from(bits);
        self.window.push_back((t, bits));
        self.window_bits += u64::from(bits);
        // The window ends at this frame and reaches LOAD_WINDOW back.
        while let Some(&(t0, b0)) = self.window.front() {
            if t.saturating_since(t0) < LOAD_WINDOW {
                break;
            }
            self.window.pop_front();
            self.window_bits -= u64::from(b0);
        }
        self.peak_window_bits = self.peak_window_bits.max(self.window_bits);
    }

    /// What the frames so far show.
    pub fn report(&self) -> BusTimingReport {
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_since(a),
            _ => Duration::ZERO,
        };
        let intervals: Vec<u64> = self
            .syncs
            .windows(2)
            .map(|w| w[1].as_nanos().saturating_sub(w[0].as_nanos()))
            .collect();
        let sync = if intervals.is_empty() {
            SyncTiming {
                count: self.syncs.len() as u64,
                ..SyncTiming::default()
            }
        } else {
            let n = intervals.len() as f64;
            let mean = intervals.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = intervals
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            SyncTiming {
                count: self.syncs.len() as u64,
                period_mean_ns: mean.round() as u64,
                period_std_dev_ns: var.sqrt().round() as u64,
                period_min_ns: intervals.iter().copied().min().unwrap_or(0),
                period_max_ns: intervals.iter().copied().max().unwrap_or(0),
            }
        };
        let capacity = |d: Duration| d.as_secs_f64() * f64::from(self.bitrate_bit_s);
        let load = if span.is_zero() {
            0.0
        } else {
            self.bits as f64 / capacity(span)
        };
        BusTimingReport {
            frames: self.frames,
            span,
            sync,
            tpdo_after_sync: Spread::of(self.tpdo_ns.clone()),
            rpdo_before_sync: Spread::of(self.rpdo_ns.clone()),
            pdos_untimed: self.untimed + self.rpdo_pending.len() as u64,
            bitrate_bit_s: self.bitrate_bit_s,
            bits: self.bits,
            load,
            peak_window_load: self.peak_window_bits as f64 / capacity(LOAD_WINDOW),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64, id: u16, len: usize) -> TimestampedFrame {
        TimestampedFrame {
            timestamp: Timestamp::from_micros(us),
            frame: Frame::new(crate::can::CanId::standard(id).unwrap(), &[0u8; 8][..len]).unwrap(),
        }
    }

    #[test]
    fn sync_period_and_jitter_from_the_intervals() {
        let mut t = BusTiming::new(1_000_000);
        // Intervals 1900, 2100, 1900, 2100 µs: mean 2000, standard deviation 100.
        for us in [0, 1900, 4000, 5900, 8000] {
            t.observe(&at(us, 0x080, 0));
        }
        let r = t.report();
        assert_eq!(r.sync.count, 5);
        assert_eq!(r.sync.period_mean_ns, 2_000_000);
        assert_eq!(r.sync.period_std_dev_ns, 100_000);
        assert_eq!(r.sync.period_min_ns, 1_900_000);
        assert_eq!(r.sync.period_max_ns, 2_100_000);
    }

    #[test]
    fn tpdos_count_from_the_sync_before_rpdos_to_the_sync_after() {
        let mut t = BusTiming::new(1_000_000);
        t.observe(&at(50, 0x181, 8)); // before any SYNC: untimed
        t.observe(&at(900, 0x201, 6)); // RPDO1 node 1, 100 µs before the SYNC
        t.observe(&at(1000, 0x080, 0));
        t.observe(&at(1120, 0x181, 8)); // TPDO1 node 1, 120 µs after
        t.observe(&at(1300, 0x28A, 2)); // TPDO2 node 10, 300 µs after
        t.observe(&at(1400, 0x70A, 1)); // heartbeat: neither
        t.observe(&at(2950, 0x301, 4)); // RPDO2, never followed by a SYNC: untimed
        let r = t.report();
        assert_eq!(r.tpdo_after_sync.count, 2);
        assert_eq!(r.tpdo_after_sync.min_ns, 120_000);
        assert_eq!(r.tpdo_after_sync.max_ns, 300_000);
        assert_eq!(r.tpdo_after_sync.mean_ns, 210_000);
        assert_eq!(r.rpdo_before_sync.count, 1);
        assert_eq!(r.rpdo_before_sync.max_ns, 100_000);
        assert_eq!(r.pdos_untimed, 2);
        assert_eq!(r.frames, 7);
    }

    #[test]
    fn load_counts_worst_case_bits_over_the_span_and_the_peak_window() {
        let mut t = BusTiming::new(1_000_000);
        // 101 full frames 1 ms apart: 100 ms span, 135 bits each (BRIEF.md).
        for k in 0..=100u64 {
            t.observe(&at(k * 1000, 0x181, 8));
        }
        let r = t.report();
        assert_eq!(r.bits, 101 * 135);
        assert!(
            (r.load - 101.0 * 135.0 / 100_000.0).abs() < 1e-9,
            "{}",
            r.load
        );
        // A 100 ms window holds 100 of them (the one 100 ms back has left it).
        assert!((r.peak_window_load - 100.0 * 135.0 / 100_000.0).abs() < 1e-9);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let s = Spread::of((1..=200).collect());
        assert_eq!((s.p99_ns, s.max_ns, s.min_ns, s.count), (198, 200, 1, 200));
        assert_eq!(Spread::of(vec![]), Spread::default());
    }
}
