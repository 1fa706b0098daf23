//! The TIME object (CiA 301 §7.2.6): a TIME_OF_DAY broadcast on `0x100`, six bytes —
//! milliseconds after midnight (28 bits, the upper 4 bits of the 32-bit field reserved) and
//! days since 1 January 1984, both little-endian.

use core::fmt;

use crate::can::{Frame, Timestamp};

use super::cob::TIME;
use super::{DecodeError, Service};

/// Milliseconds in a day.
pub const MS_PER_DAY: u32 = 86_400_000;
/// Days from the Unix epoch (1970-01-01) to the CANopen epoch (1984-01-01).
pub const UNIX_DAYS_TO_1984: u64 = 5113;

/// A TIME_OF_DAY value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    /// Days since 1984-01-01 (that day is 0).
    pub days_since_1984: u16,
    /// Milliseconds after midnight, `0..86_400_000`.
    pub ms_after_midnight: u32,
}

impl TimeOfDay {
    /// The time of day of a Unix-epoch timestamp (as [`Timestamp::now_unix`] gives), or
    /// `None` before 1984 or after the 16-bit day count ends (2163).
    pub fn from_unix(t: Timestamp) -> Option<TimeOfDay> {
        let ms = t.as_nanos() / 1_000_000;
        let days = (ms / u64::from(MS_PER_DAY)).checked_sub(UNIX_DAYS_TO_1984)?;
        Some(TimeOfDay {
            days_since_1984: u16::try_from(days).ok()?,
            ms_after_midnight: (ms % u64::from(MS_PER_DAY)) as u32,
        })
    }

    /// The Unix-epoch timestamp of this time of day.
    pub fn to_unix(self) -> Timestamp {
        let days = UNIX_DAYS_TO_1984 + u64::from(self.days_since_1984);
        Timestamp::from_millis(days * u64::from(MS_PER_DAY) + u64::from(self.ms_after_midnight))
    }

    /// The frame: `100#` + 6 bytes.
    pub const fn encode(&self) -> Frame {
        let [a, b, c, d] = (self.ms_after_midnight & 0x0FFF_FFFF).to_le_bytes();
        let [e, f] = self.days_since_1984.to_le_bytes();
        Frame::standard(TIME, [a, b, c, d, e, f])
    }

    /// Decodes a TIME frame (id `0x100`, six bytes). The reserved upper four bits of the
    /// millisecond field are ignored.
    pub fn decode(frame: &Frame) -> Result<TimeOfDay, DecodeError> {
        let data = super::error::data_frame(frame, Service::Time, |id| id == TIME)?;
        let &[a, b, c, d, e, f] = data else {
            return Err(DecodeError::WrongLength {
                service: Service::Time,
                expected: "6",
                got: data.len(),
            });
        };
        let ms = u32::from_le_bytes([a, b, c, d]) & 0x0FFF_FFFF;
        if ms >= MS_PER_DAY {
            return Err(DecodeError::InvalidTimeOfDay(ms));
        }
        Ok(TimeOfDay {
            days_since_1984: u16::from_le_bytes([e, f]),
            ms_after_midnight: ms,
        })
    }

    /// The calendar date (year, month 1..=12, day 1..=31), proleptic Gregorian.
    pub fn date(self) -> (u32, u32, u32) {
        const fn is_leap(y: u32) -> bool {
            (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        }
        let mut days = u32::from(self.days_since_1984);
        let mut year = 1984;
        loop {
            let len = if is_leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let feb = if is_leap(year) { 29 } else { 28 };
        let months = [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut month = 1;
        for len in months {
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        (year, month, days + 1)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = self.date();
        let ms = self.ms_after_midnight;
        write!(
            f,
            "TIME {y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_worked_frame() {
        // 2000-03-01 12:00:00.000: 16 years from 1984 incl. leap years 1984, 88, 92, 96
        // → 16·365 + 4 = 5844 days to 2000-01-01, + 31 + 29 = 5904.
        let t = TimeOfDay {
            days_since_1984: 5904,
            ms_after_midnight: 12 * 3_600_000,
        };
        // 43_200_000 = 0x0293_2E00; 5904 = 0x1710.
        assert_eq!(t.encode().to_string(), "100#002E93021017");
        assert_eq!(t.to_string(), "TIME 2000-03-01 12:00:00.000");
        assert_eq!(TimeOfDay::decode(&t.encode()), Ok(t));
        assert_eq!(
            TimeOfDay::from_unix(Timestamp::from_millis(951_912_000_000)),
            Some(t)
        );
        assert_eq!(t.to_unix(), Timestamp::from_millis(951_912_000_000));
    }

    #[test]
    fn out_of_range() {
        assert_eq!(TimeOfDay::from_unix(Timestamp::from_millis(0)), None);
        let bad = Frame::standard(0x100, [0xFF, 0xFF, 0xFF, 0x0F, 0, 0]);
        assert_eq!(
            TimeOfDay::decode(&bad),
            Err(DecodeError::InvalidTimeOfDay(0x0FFF_FFFF))
        );
        assert!(matches!(
            TimeOfDay::decode(&Frame::standard(0x100, [0; 4])),
            Err(DecodeError::WrongLength { got: 4, .. })
        ));
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(days in any::<u16>(), ms in 0..MS_PER_DAY) {
            let t = TimeOfDay { days_since_1984: days, ms_after_midnight: ms };
            prop_assert_eq!(TimeOfDay::decode(&t.encode()), Ok(t));
            prop_assert_eq!(TimeOfDay::from_unix(t.to_unix()), Some(t));
            let (y, m, d) = t.date();
            prop_assert!((1984..=2163).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d));
        }
    }
}
