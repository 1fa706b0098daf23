//! SDO abort codes (CiA 301 §7.2.4.3, Table "SDO abort codes"): the 32-bit reason a
//! client or server gives when it aborts a transfer, sent little-endian in bytes 4..8 of the
//! abort frame.

use core::fmt;

macro_rules! abort_codes {
    ($( $name:ident = $code:literal, $text:literal; )*) => {
        /// An SDO abort code. Codes CiA 301 does not list (manufacturer-specific ones) are
        /// kept as [`AbortCode::Unknown`], so every `u32` round-trips.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AbortCode {
            $(
                #[doc = concat!("`", stringify!($code), "`: ", $text, ".")]
                $name,
            )*
            /// A code CiA 301 does not define.
            Unknown(u32),
        }

        impl AbortCode {
            /// The code for a number; numbers CiA 301 does not define become
            /// [`AbortCode::Unknown`].
            pub const fn from_u32(code: u32) -> AbortCode {
                match code {
                    $( $code => AbortCode::$name, )*
                    other => AbortCode::Unknown(other),
                }
            }

            /// The number on the wire.
            pub const fn as_u32(self) -> u32 {
                match self {
                    $( AbortCode::$name => $code, )*
                    AbortCode::Unknown(code) => code,
                }
            }

            /// What the code means, as CiA 301 describes it.
            pub const fn description(self) -> &'static str {
                match self {
                    $( AbortCode::$name => $text, )*
                    AbortCode::Unknown(_) => "abort code not defined by CiA 301",
                }
            }

            /// Every code CiA 301 defines, for tests and tables.
            pub const ALL: &'static [AbortCode] = &[ $( AbortCode::$name, )* ];
        }
    };
}

abort_codes! {
    ToggleBitNotAlternated = 0x0503_0000, "toggle bit not alternated";
    Timeout = 0x0504_0000, "SDO protocol timed out";
    InvalidCommandSpecifier = 0x0504_0001, "client/server command specifier not valid or unknown";
    InvalidBlockSize = 0x0504_0002, "invalid block size (block mode only)";
    InvalidSequenceNumber = 0x0504_0003, "invalid sequence number (block mode only)";
    CrcError = 0x0504_0004, "CRC error (block mode only)";
    OutOfMemory = 0x0504_0005, "out of memory";
    UnsupportedAccess = 0x0601_0000, "unsupported access to an object";
    ReadOfWriteOnly = 0x0601_0001, "attempt to read a write-only object";
    WriteOfReadOnly = 0x0601_0002, "attempt to write a read-only object";
    ObjectDoesNotExist = 0x0602_0000, "object does not exist in the object dictionary";
    CannotBeMapped = 0x0604_0041, "object cannot be mapped to the PDO";
    PdoLengthExceeded = 0x0604_0042,
        "the number and length of the objects to be mapped would exceed the PDO length";
    ParameterIncompatible = 0x0604_0043, "general parameter incompatibility";
    InternalIncompatibility = 0x0604_0047, "general internal incompatibility in the device";
    HardwareError = 0x0606_0000, "access failed due to a hardware error";
    TypeLengthMismatch = 0x0607_0010,
        "data type does not match, length of service parameter does not match";
    LengthTooHigh = 0x0607_0012,
        "data type does not match, length of service parameter too high";
    LengthTooLow = 0x0607_0013,
        "data type does not match, length of service parameter too low";
    SubIndexDoesNotExist = 0x0609_0011, "sub-index does not exist";
    InvalidValue = 0x0609_0030, "invalid value for parameter (download only)";
    ValueTooHigh = 0x0609_0031, "value of parameter written too high (download only)";
    ValueTooLow = 0x0609_0032, "value of parameter written too low (download only)";
    MaxLessThanMin = 0x0609_0036, "maximum value is less than minimum value";
    ResourceNotAvailable = 0x060A_0023, "resource not available: SDO connection";
    GeneralError = 0x0800_0000, "general error";
    CannotTransfer = 0x0800_0020, "data cannot be transferred or stored to the application";
    LocalControl = 0x0800_0021,
        "data cannot be transferred or stored to the application because of local control";
    DeviceState = 0x0800_0022,
        "data cannot be transferred or stored to the application because of the present device state";
    NoObjectDictionary = 0x0800_0023,
        "object dictionary dynamic generation failed or no object dictionary is present";
    NoDataAvailable = 0x0800_0024, "no data available";
}

impl From<u32> for AbortCode {
    fn from(code: u32) -> AbortCode {
        AbortCode::from_u32(code)
    }
}

impl From<AbortCode> for u32 {
    fn from(code: AbortCode) -> u32 {
        code.as_u32()
    }
}

impl fmt::Display for AbortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010X} ({})", self.as_u32(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_code_of_the_table() {
        let table: [(u32, AbortCode); 31] = [
            (0x0503_0000, AbortCode::ToggleBitNotAlternated),
            (0x0504_0000, AbortCode::Timeout),
            (0x0504_0001, AbortCode::InvalidCommandSpecifier),
            (0x0504_0002, AbortCode::InvalidBlockSize),
            (0x0504_0003, AbortCode::InvalidSequenceNumber),
            (0x0504_0004, AbortCode::CrcError),
            (0x0504_0005, AbortCode::OutOfMemory),
            (0x0601_0000, AbortCode::UnsupportedAccess),
            (0x0601_0001, AbortCode::ReadOfWriteOnly),
            (0x0601_0002, AbortCode::WriteOfReadOnly),
            (0x0602_0000, AbortCode::ObjectDoesNotExist),
            (0x0604_0041, AbortCode::CannotBeMapped),
            (0x0604_0042, AbortCode::PdoLengthExceeded),
            (0x0604_0043, AbortCode::ParameterIncompatible),
            (0x0604_0047, AbortCode::InternalIncompatibility),
            (0x0606_0000, AbortCode::HardwareError),
            (0x0607_0010, AbortCode::TypeLengthMismatch),
            (0x0607_0012, AbortCode::LengthTooHigh),
            (0x0607_0013, AbortCode::LengthTooLow),
            (0x0609_0011, AbortCode::SubIndexDoesNotExist),
            (0x0609_0030, AbortCode::InvalidValue),
            (0x0609_0031, AbortCode::ValueTooHigh),
            (0x0609_0032, AbortCode::ValueTooLow),
            (0x0609_0036, AbortCode::MaxLessThanMin),
            (0x060A_0023, AbortCode::ResourceNotAvailable),
            (0x0800_0000, AbortCode::GeneralError),
            (0x0800_0020, AbortCode::CannotTransfer),
            (0x0800_0021, AbortCode::LocalControl),
            (0x0800_0022, AbortCode::DeviceState),
            (0x0800_0023, AbortCode::NoObjectDictionary),
            (0x0800_0024, AbortCode::NoDataAvailable),
        ];
        assert_eq!(AbortCode::ALL.len(), table.len());
        for (raw, code) in table {
            assert_eq!(AbortCode::from_u32(raw), code);
            assert_eq!(code.as_u32(), raw);
        }
        assert_eq!(
            AbortCode::from_u32(0x0800_0000).to_string(),
            "0x08000000 (general error)"
        );
        assert_eq!(
            AbortCode::from(0x1234_5678),
            AbortCode::Unknown(0x1234_5678)
        );
    }

    proptest! {
        #[test]
        fn every_u32_round_trips(raw in any::<u32>()) {
            prop_assert_eq!(u32::from(AbortCode::from(raw)), raw);
        }
    }
}
