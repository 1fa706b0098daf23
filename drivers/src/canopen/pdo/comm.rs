//! PDO communication parameters (CiA 301 objects 0x1400..=0x15FF for RPDOs,
//! 0x1800..=0x19FF for TPDOs): which identifier the PDO uses and when it is sent.

use core::fmt;

use crate::can::CanId;

use super::PdoError;

/// Sub-index of the COB-ID entry (CiA 301 objects 0x1400/0x1800, sub 1).
pub const SUB_COB_ID: u8 = 1;
/// Sub-index of the transmission type (CiA 301 objects 0x1400/0x1800, sub 2).
pub const SUB_TRANSMISSION_TYPE: u8 = 2;
/// Sub-index of the inhibit time, 100 µs units (CiA 301 objects 0x1400/0x1800, sub 3).
pub const SUB_INHIBIT_TIME: u8 = 3;
/// Sub-index of the event timer, ms (CiA 301 objects 0x1400/0x1800, sub 5; for an RPDO the
/// deadline-monitoring time).
pub const SUB_EVENT_TIMER: u8 = 5;

/// Bit 31 of the COB-ID entry: the PDO is not valid (does not exist) (CiA 301 0x1400/0x1800
/// sub 1).
pub const COB_ID_INVALID: u32 = 1 << 31;
/// Bit 30 of the COB-ID entry: no RTR allowed on this PDO (CiA 301 0x1400/0x1800 sub 1).
pub const COB_ID_NO_RTR: u32 = 1 << 30;
/// Bit 29 of the COB-ID entry: 29-bit identifier (CiA 301 0x1400/0x1800 sub 1).
pub const COB_ID_EXTENDED: u32 = 1 << 29;

/// The COB-ID entry (sub 1) of a PDO communication parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoCobId {
    /// The identifier the PDO uses.
    pub id: CanId,
    /// The PDO exists and is used (bit 31 clear).
    pub valid: bool,
    /// Remote requests are allowed (bit 30 clear).
    pub rtr_allowed: bool,
}

impl PdoCobId {
    /// A valid PDO on the 11-bit `id` (masked to 11 bits), remote requests not allowed (RTR
    /// is discouraged by CiA for new designs).
    pub const fn standard(id: u16) -> PdoCobId {
        PdoCobId {
            id: CanId::Standard(id & CanId::MAX_STANDARD),
            valid: true,
            rtr_allowed: false,
        }
    }

    /// The same entry with the valid bit set as given.
    pub const fn with_valid(self, valid: bool) -> PdoCobId {
        PdoCobId { valid, ..self }
    }

    /// The 32-bit entry.
    pub const fn to_u32(self) -> u32 {
        let mut v = match self.id {
            CanId::Standard(id) => id as u32,
            CanId::Extended(id) => id | COB_ID_EXTENDED,
        };
        if !self.valid {
            v |= COB_ID_INVALID;
        }
        if !self.rtr_allowed {
            v |= COB_ID_NO_RTR;
        }
        v
    }

    /// Parses a 32-bit entry; an 11-bit entry with bits 11..=28 set is refused.
    pub const fn from_u32(v: u32) -> Result<PdoCobId, PdoError> {
        let id = if v & COB_ID_EXTENDED != 0 {
            CanId::Extended(v & CanId::MAX_EXTENDED)
        } else if v & 0x1FFF_F800 != 0 {
            return Err(PdoError::InvalidCobId(v));
        } else {
            CanId::Standard((v & 0x7FF) as u16)
        };
        Ok(PdoCobId {
            id,
            valid: v & COB_ID_INVALID == 0,
            rtr_allowed: v & COB_ID_NO_RTR == 0,
        })
    }
}

impl fmt::Display for PdoCobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#010X} (id {}, {}, {})",
            self.to_u32(),
            self.id,
            if self.valid { "valid" } else { "not valid" },
            if self.rtr_allowed {
                "RTR allowed"
            } else {
                "no RTR"
            }
        )
    }
}

/// When a PDO is sent (CiA 301 0x1400/0x1800 sub 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransmissionType {
    /// 0: synchronous, acyclic — on the SYNC after an event.
    SynchronousAcyclic,
    /// 1..=240: synchronous, on every n-th SYNC.
    SynchronousCyclic(u8),
    /// 252: synchronous, RTR only.
    SynchronousRtr,
    /// 253: event-driven, RTR only.
    EventRtr,
    /// 254: event-driven, manufacturer-specific event.
    EventManufacturer,
    /// 255: event-driven, device-profile event (CiA 402: on change, event timer).
    EventProfile,
}

impl TransmissionType {
    /// The byte in sub 2.
    pub const fn to_u8(self) -> u8 {
        match self {
            TransmissionType::SynchronousAcyclic => 0,
            TransmissionType::SynchronousCyclic(n) => n,
            TransmissionType::SynchronousRtr => 252,
            TransmissionType::EventRtr => 253,
            TransmissionType::EventManufacturer => 254,
            TransmissionType::EventProfile => 255,
        }
    }

    /// The transmission type of a byte; 241..=251 are reserved.
    pub const fn from_u8(b: u8) -> Result<TransmissionType, PdoError> {
        Ok(match b {
            0 => TransmissionType::SynchronousAcyclic,
            1..=240 => TransmissionType::SynchronousCyclic(b),
            252 => TransmissionType::SynchronousRtr,
            253 => TransmissionType::EventRtr,
            254 => TransmissionType::EventManufacturer,
            255 => TransmissionType::EventProfile,
            _ => return Err(PdoError::ReservedTransmissionType(b)),
        })
    }

    /// True for the types that act on SYNC (0..=240, 252).
    pub const fn is_synchronous(self) -> bool {
        matches!(
            self,
            TransmissionType::SynchronousAcyclic
                | TransmissionType::SynchronousCyclic(_)
                | TransmissionType::SynchronousRtr
        )
    }
}

impl fmt::Display for TransmissionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransmissionType::SynchronousAcyclic => f.write_str("synchronous acyclic (0)"),
            TransmissionType::SynchronousCyclic(n) => write!(f, "every {n} SYNC ({n})"),
            TransmissionType::SynchronousRtr => f.write_str("synchronous RTR-only (252)"),
            TransmissionType::EventRtr => f.write_str("event-driven RTR-only (253)"),
            TransmissionType::EventManufacturer => {
                f.write_str("event-driven, manufacturer-specific (254)")
            }
            TransmissionType::EventProfile => f.write_str("event-driven, device profile (255)"),
        }
    }
}

/// The communication parameters the controller sets on a PDO. Inhibit time and event timer
/// are optional because many devices do not implement them on RPDOs and abort the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoCommParams {
    /// COB-ID entry (sub 1).
    pub cob_id: PdoCobId,
    /// Transmission type (sub 2).
    pub transmission: TransmissionType,
    /// Minimum time between two transmissions, in 100 µs units (sub 3); `None`: leave as is.
    pub inhibit_100us: Option<u16>,
    /// Event timer in ms (sub 5): period of event-driven TPDOs, deadline of RPDOs; 0
    /// disables; `None`: leave as is.
    pub event_timer_ms: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cob_id_bits() {
        let c = PdoCobId::standard(0x185);
        assert_eq!(c.to_u32(), 0x4000_0185);
        assert_eq!(c.with_valid(false).to_u32(), 0xC000_0185);
        let rtr = PdoCobId {
            rtr_allowed: true,
            ..c
        };
        assert_eq!(rtr.to_u32(), 0x0000_0185);
        let ext = PdoCobId {
            id: CanId::Extended(0x1234_5678),
            valid: true,
            rtr_allowed: true,
        };
        assert_eq!(ext.to_u32(), 0x3234_5678);
        assert_eq!(
            PdoCobId::from_u32(0x0000_0985),
            Err(PdoError::InvalidCobId(0x985))
        );
    }

    #[test]
    fn transmission_types() {
        assert_eq!(
            TransmissionType::from_u8(1),
            Ok(TransmissionType::SynchronousCyclic(1))
        );
        assert_eq!(
            TransmissionType::from_u8(241),
            Err(PdoError::ReservedTransmissionType(241))
        );
        assert_eq!(
            TransmissionType::from_u8(251),
            Err(PdoError::ReservedTransmissionType(251))
        );
        assert!(TransmissionType::SynchronousRtr.is_synchronous());
        assert!(!TransmissionType::EventProfile.is_synchronous());
        for b in (0..=240).chain(252..=255) {
            assert_eq!(
                TransmissionType::from_u8(b).map(TransmissionType::to_u8),
                Ok(b)
            );
        }
    }

    proptest! {
        #[test]
        fn cob_id_round_trip(v in any::<u32>()) {
            if let Ok(c) = PdoCobId::from_u32(v) {
                prop_assert_eq!(c.to_u32(), v);
            }
        }
    }
}
