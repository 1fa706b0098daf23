//! Emergency messages (CiA 301 §7.2.7): error code, error register (object 0x1001) and five
//! manufacturer-specific bytes, sent by a device on `0x080 + node` when an internal error
//! occurs or is cleared (error code 0x0000, "error reset").
//!
//! Error codes are grouped by their high byte (CiA 301 Table "Emergency error codes");
//! device profiles refine them, e.g. CiA 402 0x8611 "following error", which the
//! controller treats as a reason to resync the axis.

use core::fmt;

use bitflags::bitflags;

use crate::can::Frame;

use super::cob::EMCY;
use super::{DecodeError, NodeId, Service};

bitflags! {
    /// The error register (CiA 301 object 0x1001), copied into every EMCY.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ErrorRegister: u8 {
        /// Bit 0, generic error (CiA 301 0x1001): set whenever any error is present.
        const GENERIC = 1 << 0;
        /// Bit 1, current (CiA 301 0x1001).
        const CURRENT = 1 << 1;
        /// Bit 2, voltage (CiA 301 0x1001).
        const VOLTAGE = 1 << 2;
        /// Bit 3, temperature (CiA 301 0x1001).
        const TEMPERATURE = 1 << 3;
        /// Bit 4, communication error: overrun, error state (CiA 301 0x1001).
        const COMMUNICATION = 1 << 4;
        /// Bit 5, device-profile specific (CiA 301 0x1001).
        const DEVICE_PROFILE = 1 << 5;
        /// Bit 6, reserved, always 0 (CiA 301 0x1001); kept when decoding.
        const RESERVED = 1 << 6;
        /// Bit 7, manufacturer specific (CiA 301 0x1001).
        const MANUFACTURER = 1 << 7;
    }
}

impl fmt::Display for ErrorRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04X}", self.bits())?;
        if self.is_empty() {
            return Ok(());
        }
        f.write_str(" (")?;
        let names = [
            (ErrorRegister::GENERIC, "generic"),
            (ErrorRegister::CURRENT, "current"),
            (ErrorRegister::VOLTAGE, "voltage"),
            (ErrorRegister::TEMPERATURE, "temperature"),
            (ErrorRegister::COMMUNICATION, "communication"),
            (ErrorRegister::DEVICE_PROFILE, "device profile"),
            (ErrorRegister::RESERVED, "reserved bit 6"),
            (ErrorRegister::MANUFACTURER, "manufacturer"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// Error code 0x0000: error reset or no error (CiA 301 Table "Emergency error codes").
pub const ERROR_RESET: u16 = 0x0000;
/// 0x8110: CAN overrun, objects lost (CiA 301 Table "Emergency error codes").
pub const CAN_OVERRUN: u16 = 0x8110;
/// 0x8120: CAN in error passive mode (CiA 301 Table "Emergency error codes").
pub const CAN_ERROR_PASSIVE: u16 = 0x8120;
/// 0x8130: life guard error or heartbeat error (CiA 301 Table "Emergency error codes").
pub const HEARTBEAT_ERROR: u16 = 0x8130;
/// 0x8140: recovered from bus off (CiA 301 Table "Emergency error codes").
pub const RECOVERED_FROM_BUS_OFF: u16 = 0x8140;
/// 0x8611: following error (CiA 402 error codes).
pub const FOLLOWING_ERROR: u16 = 0x8611;

/// The class of an emergency error code, from its high byte or nibble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmcyErrorClass {
    /// 0x00xx: error reset or no error.
    NoError,
    /// 0x10xx: generic error.
    Generic,
    /// 0x2xxx: current.
    Current,
    /// 0x3xxx: voltage.
    Voltage,
    /// 0x4xxx: temperature.
    Temperature,
    /// 0x50xx: device hardware.
    DeviceHardware,
    /// 0x6xxx: device software.
    DeviceSoftware,
    /// 0x70xx: additional modules.
    AdditionalModules,
    /// 0x8xxx: monitoring (0x81xx communication, 0x82xx protocol, 0x83xx..0x8Axx CiA 402
    /// control loops).
    Monitoring,
    /// 0x90xx: external error.
    External,
    /// 0xF0xx: additional functions.
    AdditionalFunctions,
    /// 0xFFxx: device specific.
    DeviceSpecific,
    /// A code in none of the ranges CiA 301 defines.
    Reserved,
}

impl EmcyErrorClass {
    /// A short name.
    pub const fn name(self) -> &'static str {
        match self {
            EmcyErrorClass::NoError => "error reset or no error",
            EmcyErrorClass::Generic => "generic error",
            EmcyErrorClass::Current => "current",
            EmcyErrorClass::Voltage => "voltage",
            EmcyErrorClass::Temperature => "temperature",
            EmcyErrorClass::DeviceHardware => "device hardware",
            EmcyErrorClass::DeviceSoftware => "device software",
            EmcyErrorClass::AdditionalModules => "additional modules",
            EmcyErrorClass::Monitoring => "monitoring",
            EmcyErrorClass::External => "external error",
            EmcyErrorClass::AdditionalFunctions => "additional functions",
            EmcyErrorClass::DeviceSpecific => "device specific",
            EmcyErrorClass::Reserved => "reserved error code",
        }
    }
}

impl fmt::Display for EmcyErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An emergency error code (CiA 301 §7.2.7.1, 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmcyCode(pub u16);

impl EmcyCode {
    /// The class, from the high byte or nibble.
    pub const fn class(self) -> EmcyErrorClass {
        let hi = (self.0 >> 8) as u8;
        match hi {
            0x00 => EmcyErrorClass::NoError,
            0x10 => EmcyErrorClass::Generic,
            0x20..=0x2F => EmcyErrorClass::Current,
            0x30..=0x3F => EmcyErrorClass::Voltage,
            0x40..=0x4F => EmcyErrorClass::Temperature,
            0x50 => EmcyErrorClass::DeviceHardware,
            0x60..=0x6F => EmcyErrorClass::DeviceSoftware,
            0x70 => EmcyErrorClass::AdditionalModules,
            0x80..=0x8F => EmcyErrorClass::Monitoring,
            0x90 => EmcyErrorClass::External,
            0xF0 => EmcyErrorClass::AdditionalFunctions,
            0xFF => EmcyErrorClass::DeviceSpecific,
            _ => EmcyErrorClass::Reserved,
        }
    }

    /// True for 0x0000, which clears the device's errors ("error reset").
    pub const fn is_reset(self) -> bool {
        self.0 == ERROR_RESET
    }

    /// The most specific name known for this code: an exact code, else its sub-group (high
    /// byte), else its class.
    pub const fn description(self) -> &'static str {
        match self.0 {
            CAN_OVERRUN => return "CAN overrun (objects lost)",
            CAN_ERROR_PASSIVE => return "CAN in error passive mode",
            HEARTBEAT_ERROR => return "life guard error or heartbeat error",
            RECOVERED_FROM_BUS_OFF => return "recovered from bus off",
            0x8150 => return "CAN-ID collision",
            0x8210 => return "PDO not processed due to length error",
            0x8220 => return "PDO length exceeded",
            0x8230 => return "DAM MPDO not processed, destination object not available",
            0x8240 => return "unexpected SYNC data length",
            0x8250 => return "RPDO timeout",
            FOLLOWING_ERROR => return "following error (CiA 402)",
            0x8612 => return "reference limit (CiA 402)",
            _ => {}
        }
        match (self.0 >> 8) as u8 {
            0x21 => "current, device input side",
            0x22 => "current inside the device",
            0x23 => "current, device output side",
            0x31 => "mains voltage",
            0x32 => "voltage inside the device",
            0x33 => "output voltage",
            0x41 => "ambient temperature",
            0x42 => "device temperature",
            0x61 => "internal software",
            0x62 => "user software",
            0x63 => "data set",
            0x81 => "communication",
            0x82 => "protocol error",
            0x83 => "torque control (CiA 402)",
            0x84 => "velocity speed controller (CiA 402)",
            0x85 => "position controller (CiA 402)",
            0x86 => "positioning controller (CiA 402)",
            0x87 => "sync controller (CiA 402)",
            _ => self.class().name(),
        }
    }
}

impl fmt::Display for EmcyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06X} {}", self.0, self.description())
    }
}

/// One emergency message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Emergency {
    /// The device that sent it.
    pub node: NodeId,
    /// The error code.
    pub code: EmcyCode,
    /// The device's error register at the time.
    pub register: ErrorRegister,
    /// Manufacturer-specific error information.
    pub manufacturer: [u8; 5],
}

impl Emergency {
    /// The frame: `0x080 + node`, 8 bytes: code (little-endian), register, manufacturer bytes.
    pub const fn encode(&self) -> Frame {
        let [lo, hi] = self.code.0.to_le_bytes();
        let m = self.manufacturer;
        Frame::standard(
            EMCY + self.node.get() as u16,
            [lo, hi, self.register.bits(), m[0], m[1], m[2], m[3], m[4]],
        )
    }

    /// Decodes an EMCY frame. CiA 301 prescribes 8 bytes; shorter frames of at least code
    /// and register (3 bytes) are accepted, the missing manufacturer bytes read as zero,
    /// because some devices send them and a dump should still show their errors.
    pub fn decode(frame: &Frame) -> Result<Emergency, DecodeError> {
        let (node, data) = super::error::node_frame(frame, Service::Emcy, EMCY)?;
        let [lo, hi, register, rest @ ..] = data else {
            return Err(DecodeError::WrongLength {
                service: Service::Emcy,
                expected: "8 (at least 3)",
                got: data.len(),
            });
        };
        let mut manufacturer = [0u8; 5];
        // A classic frame has at most 8 bytes, so `rest` has at most 5.
        let n = rest.len().min(5);
        manufacturer[..n].copy_from_slice(&rest[..n]);
        Ok(Emergency {
            node,
            code: EmcyCode(u16::from_le_bytes([*lo, *hi])),
            register: ErrorRegister::from_bits_retain(*register),
            manufacturer,
        })
    }
}

impl fmt::Display for Emergency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.manufacturer;
        write!(
            f,
            "EMCY node {}: {}; error register {}; manufacturer {:02X} {:02X} {:02X} {:02X} {:02X}",
            self.node, self.code, self.register, m[0], m[1], m[2], m[3], m[4]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn can_overrun_from_node_1() {
        let f = Frame::standard(0x081, [0x10, 0x81, 0x11, 0, 0, 0, 0, 0]);
        assert_eq!(f.to_string(), "081#1081110000000000");
        let e = Emergency::decode(&f).unwrap();
        assert_eq!(e.node.get(), 1);
        assert_eq!(e.code, EmcyCode(CAN_OVERRUN));
        assert_eq!(e.code.class(), EmcyErrorClass::Monitoring);
        assert_eq!(
            e.register,
            ErrorRegister::GENERIC | ErrorRegister::COMMUNICATION
        );
        assert_eq!(e.encode(), f);
        assert_eq!(
            e.to_string(),
            "EMCY node 1: 0x8110 CAN overrun (objects lost); error register 0x11 (generic, \
             communication); manufacturer 00 00 00 00 00"
        );
    }

    #[test]
    fn classes_and_names() {
        let cases = [
            (0x0000, EmcyErrorClass::NoError, "error reset or no error"),
            (0x1000, EmcyErrorClass::Generic, "generic error"),
            (
                0x2310,
                EmcyErrorClass::Current,
                "current, device output side",
            ),
            (0x3210, EmcyErrorClass::Voltage, "voltage inside the device"),
            (0x4210, EmcyErrorClass::Temperature, "device temperature"),
            (0x5000, EmcyErrorClass::DeviceHardware, "device hardware"),
            (0x6100, EmcyErrorClass::DeviceSoftware, "internal software"),
            (
                0x7000,
                EmcyErrorClass::AdditionalModules,
                "additional modules",
            ),
            (0x8100, EmcyErrorClass::Monitoring, "communication"),
            (
                0x8120,
                EmcyErrorClass::Monitoring,
                "CAN in error passive mode",
            ),
            (
                0x8130,
                EmcyErrorClass::Monitoring,
                "life guard error or heartbeat error",
            ),
            (0x8140, EmcyErrorClass::Monitoring, "recovered from bus off"),
            (
                0x8611,
                EmcyErrorClass::Monitoring,
                "following error (CiA 402)",
            ),
            (0x9000, EmcyErrorClass::External, "external error"),
            (
                0xF000,
                EmcyErrorClass::AdditionalFunctions,
                "additional functions",
            ),
            (0xFF42, EmcyErrorClass::DeviceSpecific, "device specific"),
            (0xA000, EmcyErrorClass::Reserved, "reserved error code"),
        ];
        for (code, class, name) in cases {
            assert_eq!(EmcyCode(code).class(), class, "{code:04X}");
            assert_eq!(EmcyCode(code).description(), name, "{code:04X}");
        }
        assert!(EmcyCode(0).is_reset());
    }

    #[test]
    fn short_and_bad_frames() {
        let short = Emergency::decode(&Frame::standard(0x085, [0x11, 0x86, 0x21])).unwrap();
        assert_eq!(short.code, EmcyCode(FOLLOWING_ERROR));
        assert_eq!(short.manufacturer, [0; 5]);
        assert!(matches!(
            Emergency::decode(&Frame::standard(0x085, [0x11, 0x86])),
            Err(DecodeError::WrongLength { got: 2, .. })
        ));
        // 0x080 is SYNC, not the EMCY of a node 0.
        assert!(matches!(
            Emergency::decode(&Frame::standard(0x080, [0; 8])),
            Err(DecodeError::WrongCobId { id: 0x080, .. })
        ));
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            node in 1u8..=127,
            code in any::<u16>(),
            register in any::<u8>(),
            manufacturer in any::<[u8; 5]>(),
        ) {
            let e = Emergency {
                node: NodeId::new(node).unwrap(),
                code: EmcyCode(code),
                register: ErrorRegister::from_bits_retain(register),
                manufacturer,
            };
            prop_assert_eq!(Emergency::decode(&e.encode()), Ok(e));
        }
    }
}
