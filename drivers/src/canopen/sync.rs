//! The SYNC object (CiA 301 §7.2.5) and the controller's SYNC producer.
//!
//! SYNC is an empty broadcast frame on `0x080`, or a one-byte frame carrying a counter when
//! the producer's "synchronous counter overflow value" (object 0x1019) is 2..=240: the counter
//! starts at 1 and wraps back to 1 after reaching the overflow value. Devices with
//! synchronous PDOs (transmission types 0..=240) act on each SYNC; the SYNC period is
//! object 0x1006 (communication cycle period).

use core::fmt;
use core::time::Duration;

use crate::can::{Frame, Timestamp};

use super::cob::SYNC;
use super::ticker::Ticker;
use super::{DecodeError, Service};

/// Largest SYNC counter and counter-overflow value (CiA 301 object 0x1019).
pub const MAX_COUNTER: u8 = 240;

/// A SYNC counter value, `1..=240`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncCounter(u8);

impl SyncCounter {
    /// The counter `raw`, or an error if it is not `1..=240`.
    pub const fn new(raw: u8) -> Result<SyncCounter, DecodeError> {
        if raw >= 1 && raw <= MAX_COUNTER {
            Ok(SyncCounter(raw))
        } else {
            Err(DecodeError::InvalidSyncCounter(raw))
        }
    }

    /// The counter as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// One SYNC frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyncMessage {
    /// The counter, when the producer counts (0x1019 ≠ 0).
    pub counter: Option<SyncCounter>,
}

impl SyncMessage {
    /// The frame: `080#` or `080#<counter>`.
    pub const fn encode(&self) -> Frame {
        match self.counter {
            None => Frame::standard(SYNC, []),
            Some(c) => Frame::standard(SYNC, [c.get()]),
        }
    }

    /// Decodes a SYNC frame (id `0x080`, zero or one byte).
    pub fn decode(frame: &Frame) -> Result<SyncMessage, DecodeError> {
        let data = super::error::data_frame(frame, Service::Sync, |id| id == SYNC)?;
        match *data {
            [] => Ok(SyncMessage { counter: None }),
            [c] => Ok(SyncMessage {
                counter: Some(SyncCounter::new(c)?),
            }),
            _ => Err(DecodeError::WrongLength {
                service: Service::Sync,
                expected: "0 or 1",
                got: data.len(),
            }),
        }
    }
}

impl fmt::Display for SyncMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.counter {
            None => f.write_str("SYNC"),
            Some(c) => write!(f, "SYNC counter {}", c.get()),
        }
    }
}

/// Why a SYNC producer cannot be configured as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncConfigError {
    /// 0x1019 allows 0 (no counter) or 2..=240; 1 and 241..=255 are reserved.
    #[error(
        "SYNC counter overflow value {0} is reserved: use 0 (no counter) or 2..=240 (object 0x1019)"
    )]
    InvalidCounterOverflow(u8),
}

/// The controller's SYNC producer: a SYNC every `period` on the caller's clock.
///
/// The first [`poll`](SyncProducer::poll) sends at once; later SYNCs stay on the grid of the
/// first one. A poll that comes late by more than a period skips the missed SYNCs (counted in
/// [`skipped`](SyncProducer::skipped)) rather than sending a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProducer {
    ticker: Ticker,
    overflow: u8,
    next_counter: u8,
}

impl SyncProducer {
    /// A producer with `period` (zero disables it) and the counter overflow value of object
    /// 0x1019 (0: no counter; 2..=240: count 1..=value).
    pub fn new(period: Duration, counter_overflow: u8) -> Result<SyncProducer, SyncConfigError> {
        if counter_overflow == 1 || counter_overflow > MAX_COUNTER {
            return Err(SyncConfigError::InvalidCounterOverflow(counter_overflow));
        }
        Ok(SyncProducer {
            ticker: Ticker::new(period),
            overflow: counter_overflow,
            next_counter: 1,
        })
    }

    /// The SYNC period.
    pub fn period(&self) -> Duration {
        self.ticker.period()
    }

    /// SYNC slots skipped because polls came too late.
    pub fn skipped(&self) -> u64 {
        self.ticker.skipped()
    }

    /// Restarts the schedule and the counter: the next poll sends a SYNC with counter 1, as
    /// after an NMT state change of the producer.
    pub fn restart(&mut self) {
        self.ticker.restart();
        self.next_counter = 1;
    }

    /// The SYNC frame due at `now`, if one is.
    pub fn poll(&mut self, now: Timestamp) -> Option<Frame> {
        if !self.ticker.poll(now) {
            return None;
        }
        let counter = if self.overflow == 0 {
            None
        } else {
            let c = self.next_counter;
            self.next_counter = if c >= self.overflow { 1 } else { c + 1 };
            Some(SyncCounter(c))
        };
        Some(SyncMessage { counter }.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_worked_frames() {
        assert_eq!(SyncMessage { counter: None }.encode().to_string(), "080#");
        let seven = SyncMessage {
            counter: Some(SyncCounter::new(7).unwrap()),
        };
        assert_eq!(seven.encode().to_string(), "080#07");
        assert_eq!(SyncMessage::decode(&Frame::standard(0x080, [7])), Ok(seven));
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(
            SyncMessage::decode(&Frame::standard(0x080, [0])),
            Err(DecodeError::InvalidSyncCounter(0))
        );
        assert_eq!(
            SyncMessage::decode(&Frame::standard(0x080, [241])),
            Err(DecodeError::InvalidSyncCounter(241))
        );
        assert!(matches!(
            SyncMessage::decode(&Frame::standard(0x080, [1, 2])),
            Err(DecodeError::WrongLength { got: 2, .. })
        ));
        let rtr = Frame::remote(crate::can::CanId::standard(0x80).unwrap(), 0).unwrap();
        assert!(matches!(
            SyncMessage::decode(&rtr),
            Err(DecodeError::RemoteFrame { .. })
        ));
    }

    #[test]
    fn producer_counts_1_to_overflow_and_wraps() {
        let mut p = SyncProducer::new(Duration::from_millis(2), 3).unwrap();
        let mut sent = Vec::new();
        for ms in 0..14 {
            if let Some(f) = p.poll(Timestamp::from_millis(ms)) {
                sent.push(f.to_string());
            }
        }
        assert_eq!(
            sent,
            [
                "080#01", "080#02", "080#03", "080#01", "080#02", "080#03", "080#01"
            ]
        );
        p.restart();
        assert_eq!(
            p.poll(Timestamp::from_millis(14)).map(|f| f.to_string()),
            Some("080#01".into())
        );
    }

    #[test]
    fn producer_without_counter_sends_empty_frames_every_period() {
        let mut p = SyncProducer::new(Duration::from_millis(4), 0).unwrap();
        let times: Vec<u64> = (0..20)
            .filter(|&ms| p.poll(Timestamp::from_millis(ms)).is_some())
            .collect();
        assert_eq!(times, [0, 4, 8, 12, 16]);
        assert_eq!(p.poll(Timestamp::from_millis(100)).unwrap().len(), 0);
        assert_eq!(p.skipped(), 20);
    }

    #[test]
    fn reserved_overflow_values_are_refused() {
        assert_eq!(
            SyncProducer::new(Duration::from_millis(1), 1),
            Err(SyncConfigError::InvalidCounterOverflow(1))
        );
        assert_eq!(
            SyncProducer::new(Duration::from_millis(1), 241),
            Err(SyncConfigError::InvalidCounterOverflow(241))
        );
        assert!(SyncProducer::new(Duration::from_millis(1), 240).is_ok());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(counter in proptest::option::of(1u8..=240)) {
            let msg = SyncMessage { counter: counter.map(|c| SyncCounter::new(c).unwrap()) };
            prop_assert_eq!(SyncMessage::decode(&msg.encode()), Ok(msg));
        }
    }
}
