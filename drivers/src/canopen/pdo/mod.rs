//! Process data objects (CiA 301 §7.2.2): unconfirmed frames whose payload is a fixed
//! layout of object values, configured through the object dictionary.
//!
//! Directions are named from the device's side, as CiA 301 does: a TPDO is sent by the
//! device (its inputs: statusword, position actual), an RPDO is received by it (its outputs:
//! controlword, target position).
//!
//! - [`comm`]: communication parameters (0x1400.., 0x1800..): COB-ID, transmission type,
//!   inhibit time, event timer.
//! - [`mapping`]: mapping parameters (0x1600.., 0x1A00..) and packing of payloads.
//! - [`configure`]: the SDO write sequence that (re)configures one PDO on a device.

pub mod comm;
pub mod configure;
pub mod mapping;

use core::fmt;

use super::NodeId;
use super::cob;

pub use comm::{PdoCobId, PdoCommParams, TransmissionType};
pub use configure::{
    PdoConfig, PdoConfigError, PdoConfigStatus, PdoConfigStep, PdoConfigStepKind, PdoConfigurator,
    PdoStepFailure, pdo_config_steps,
};
pub use mapping::{MappingEntry, PdoMapping, PdoPayload, PdoValues};

/// RPDO communication parameter base index (CiA 301 object 0x1400): RPDO n at `0x1400 + n - 1`.
pub const RPDO_COMM_BASE: u16 = 0x1400;
/// RPDO mapping parameter base index (CiA 301 object 0x1600): RPDO n at `0x1600 + n - 1`.
pub const RPDO_MAPPING_BASE: u16 = 0x1600;
/// TPDO communication parameter base index (CiA 301 object 0x1800): TPDO n at `0x1800 + n - 1`.
pub const TPDO_COMM_BASE: u16 = 0x1800;
/// TPDO mapping parameter base index (CiA 301 object 0x1A00): TPDO n at `0x1A00 + n - 1`.
pub const TPDO_MAPPING_BASE: u16 = 0x1A00;
/// Most PDOs per direction a device can have (512 parameter objects per range).
pub const MAX_PDO_NUMBER: u16 = 512;

/// Why a PDO parameter or payload is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdoError {
    /// PDO numbers are 1..=512.
    #[error("PDO number {0} is out of range 1..=512")]
    InvalidNumber(u16),
    /// 241..=251 are reserved transmission types.
    #[error("transmission type {0} is reserved (241..=251)")]
    ReservedTransmissionType(u8),
    /// A COB-ID entry whose identifier does not fit its format (bits 11..=28 set on an
    /// 11-bit id).
    #[error("PDO COB-ID entry {0:#010X} is not a valid 11-bit or 29-bit identifier")]
    InvalidCobId(u32),
    /// takt maps at most 8 objects per PDO.
    #[error("{0} mapping entries; at most 8 are supported")]
    TooManyEntries(usize),
    /// A mapping entry of 0 or more than 64 bits.
    #[error("mapping entry of {0} bits; entries are 1..=64 bits")]
    InvalidEntryLength(u8),
    /// The mapped objects exceed a classic CAN frame.
    #[error("mapped objects total {0} bits; a PDO carries at most 64")]
    TooManyBits(u32),
    /// Packing was given a different number of values than the mapping has entries.
    #[error("{got} values for a mapping of {expected} entries")]
    WrongValueCount {
        /// Entries in the mapping.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A received PDO is shorter than its mapping (a device would raise EMCY 0x8210).
    #[error("PDO of {got} bytes is shorter than its mapping of {needed} bytes")]
    PayloadTooShort {
        /// Bytes the mapping needs.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
}

/// Which side sends the PDO, seen from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PdoDirection {
    /// TPDO: the device transmits (controller receives).
    Transmit,
    /// RPDO: the device receives (controller transmits).
    Receive,
}

impl fmt::Display for PdoDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PdoDirection::Transmit => "TPDO",
            PdoDirection::Receive => "RPDO",
        })
    }
}

/// A PDO number, `1..=512`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PdoNumber(u16);

impl PdoNumber {
    /// The number `n`, or an error outside `1..=512`.
    pub const fn new(n: u16) -> Result<PdoNumber, PdoError> {
        if n >= 1 && n <= MAX_PDO_NUMBER {
            Ok(PdoNumber(n))
        } else {
            Err(PdoError::InvalidNumber(n))
        }
    }

    /// For the four PDOs of the pre-defined connection set; callers pass 1..=4.
    pub(crate) const fn predefined(n: u16) -> PdoNumber {
        PdoNumber(n)
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for PdoNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One PDO of a device: direction and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoId {
    /// TPDO or RPDO.
    pub direction: PdoDirection,
    /// Its number.
    pub number: PdoNumber,
}

impl PdoId {
    /// TPDO `n`.
    pub const fn tpdo(n: u16) -> Result<PdoId, PdoError> {
        match PdoNumber::new(n) {
            Ok(number) => Ok(PdoId {
                direction: PdoDirection::Transmit,
                number,
            }),
            Err(e) => Err(e),
        }
    }

    /// RPDO `n`.
    pub const fn rpdo(n: u16) -> Result<PdoId, PdoError> {
        match PdoNumber::new(n) {
            Ok(number) => Ok(PdoId {
                direction: PdoDirection::Receive,
                number,
            }),
            Err(e) => Err(e),
        }
    }

    /// The communication parameter object: 0x1400/0x1800 + n - 1.
    pub const fn comm_index(self) -> u16 {
        let base = match self.direction {
            PdoDirection::Receive => RPDO_COMM_BASE,
            PdoDirection::Transmit => TPDO_COMM_BASE,
        };
        base + self.number.0 - 1
    }

    /// The mapping parameter object: 0x1600/0x1A00 + n - 1.
    pub const fn mapping_index(self) -> u16 {
        let base = match self.direction {
            PdoDirection::Receive => RPDO_MAPPING_BASE,
            PdoDirection::Transmit => TPDO_MAPPING_BASE,
        };
        base + self.number.0 - 1
    }

    /// The COB-ID of this PDO of `node` in the pre-defined connection set (PDOs 1..=4).
    pub const fn default_cob_id(self, node: NodeId) -> Option<u16> {
        cob::Cob::Pdo {
            direction: self.direction,
            number: self.number,
            node,
        }
        .cob_id()
    }
}

impl fmt::Display for PdoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.direction, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_indices() {
        let t1 = PdoId::tpdo(1).unwrap();
        let r4 = PdoId::rpdo(4).unwrap();
        assert_eq!((t1.comm_index(), t1.mapping_index()), (0x1800, 0x1A00));
        assert_eq!((r4.comm_index(), r4.mapping_index()), (0x1403, 0x1603));
        let r512 = PdoId::rpdo(512).unwrap();
        assert_eq!((r512.comm_index(), r512.mapping_index()), (0x15FF, 0x17FF));
        assert_eq!(PdoId::tpdo(0), Err(PdoError::InvalidNumber(0)));
        assert_eq!(PdoId::tpdo(513), Err(PdoError::InvalidNumber(513)));
        let node = NodeId::new(3).unwrap();
        assert_eq!(t1.default_cob_id(node), Some(0x183));
        assert_eq!(r4.default_cob_id(node), Some(0x503));
        assert_eq!(PdoId::tpdo(5).unwrap().default_cob_id(node), None);
        assert_eq!(r4.to_string(), "RPDO4");
    }
}
