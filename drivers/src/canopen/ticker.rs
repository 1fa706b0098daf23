//! A fixed-period schedule on the caller's clock, shared by the SYNC and heartbeat producers.
//!
//! Due times stay on the grid `first + k·period`, so a producer polled with jitter does not
//! drift; when polls were missed, the missed slots are skipped (counted, not sent in a
//! burst), because a burst of SYNCs or heartbeats would mislead every consumer on the bus.

use core::time::Duration;

use crate::can::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticker {
    period_ns: u64,
    next_due: Option<Timestamp>,
    skipped: u64,
}

impl Ticker {
    /// A schedule with `period`; zero disables it (as 0 does in 0x1006 and 0x1017).
    pub(crate) fn new(period: Duration) -> Ticker {
        Ticker {
            period_ns: u64::try_from(period.as_nanos()).unwrap_or(u64::MAX),
            next_due: None,
            skipped: 0,
        }
    }

    pub(crate) fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// Slots that passed without a poll and were skipped.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Restart so the next poll fires at once.
    pub(crate) fn restart(&mut self) {
        self.next_due = None;
    }

    /// True if a slot is due at `now`; the first poll is always due.
    pub(crate) fn poll(&mut self, now: Timestamp) -> bool {
        if self.period_ns == 0 {
            return false;
        }
        let due = match self.next_due {
            None => now,
            Some(due) if now < due => return false,
            Some(due) => due,
        };
        let late_ns = now.as_nanos() - due.as_nanos();
        let missed = late_ns / self.period_ns;
        self.skipped = self.skipped.saturating_add(missed);
        let next = due
            .as_nanos()
            .saturating_add(missed.saturating_add(1).saturating_mul(self.period_ns));
        self.next_due = Some(Timestamp::from_nanos(next));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_on_the_grid_without_drift_and_skips_missed_slots() {
        let mut t = Ticker::new(Duration::from_millis(10));
        assert!(t.poll(Timestamp::from_millis(3)));
        assert!(!t.poll(Timestamp::from_millis(12)));
        // Late by 2 ms: the next slot stays at 23, not 24 + 10.
        assert!(t.poll(Timestamp::from_millis(14)));
        assert!(!t.poll(Timestamp::from_millis(22)));
        assert!(t.poll(Timestamp::from_millis(23)));
        // 33, 43 and 53 missed: one fire, two skipped.
        assert!(t.poll(Timestamp::from_millis(55)));
        assert_eq!(t.skipped(), 2);
        assert!(!t.poll(Timestamp::from_millis(62)));
        assert!(t.poll(Timestamp::from_millis(63)));
    }

    #[test]
    fn zero_period_never_fires() {
        let mut t = Ticker::new(Duration::ZERO);
        assert!(!t.poll(Timestamp::ZERO));
        assert!(!t.poll(Timestamp::from_millis(1000)));
    }
}
