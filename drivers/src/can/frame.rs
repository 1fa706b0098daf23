//! CAN frames and identifiers (ISO 11898-1): classic CAN 2.0A (11-bit) and 2.0B (29-bit)
//! data and remote frames, and CAN FD data frames of up to 64 bytes.
//!
//! A [`Frame`] is `Copy` and fixed-size so it can move through the cycle without allocation.

use super::Timestamp;

/// A CAN identifier: 11-bit standard (CAN 2.0A) or 29-bit extended (CAN 2.0B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CanId {
    /// An 11-bit identifier, `0x000..=0x7FF`.
    Standard(u16),
    /// A 29-bit identifier, `0x0000_0000..=0x1FFF_FFFF`.
    Extended(u32),
}

impl CanId {
    /// Largest standard identifier.
    pub const MAX_STANDARD: u16 = 0x7FF;
    /// Largest extended identifier.
    pub const MAX_EXTENDED: u32 = 0x1FFF_FFFF;

    /// An 11-bit identifier, or `None` if `raw` does not fit in 11 bits.
    pub const fn standard(raw: u16) -> Option<CanId> {
        if raw <= Self::MAX_STANDARD {
            Some(CanId::Standard(raw))
        } else {
            None
        }
    }

    /// A 29-bit identifier, or `None` if `raw` does not fit in 29 bits.
    pub const fn extended(raw: u32) -> Option<CanId> {
        if raw <= Self::MAX_EXTENDED {
            Some(CanId::Extended(raw))
        } else {
            None
        }
    }

    /// The numeric identifier, without the format.
    pub const fn raw(self) -> u32 {
        match self {
            CanId::Standard(id) => id as u32,
            CanId::Extended(id) => id,
        }
    }

    /// True for a 29-bit identifier.
    pub const fn is_extended(self) -> bool {
        matches!(self, CanId::Extended(_))
    }

    /// The key CAN arbitration uses: lower wins. A standard frame beats an extended one
    /// with the same 11 base bits (its IDE bit is dominant).
    pub const fn arbitration_key(self) -> u64 {
        match self {
            CanId::Standard(id) => ((id as u64) << 19) << 1,
            CanId::Extended(id) => (((id as u64) >> 18) << 20) | (1 << 19) | (id as u64 & 0x3_FFFF),
        }
    }
}

impl core::fmt::Display for CanId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CanId::Standard(id) => write!(f, "{id:03X}"),
            CanId::Extended(id) => write!(f, "{id:08X}"),
        }
    }
}

/// What kind of frame it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A classic CAN data frame, 0–8 bytes.
    Data,
    /// A classic CAN remote frame (RTR), requesting `len` bytes.
    Remote,
    /// A CAN FD data frame, 0–64 bytes (lengths above 8 restricted to the FD DLC steps).
    Fd {
        /// Bit-rate switch: the data phase runs at the data bit rate.
        brs: bool,
        /// Error-state indicator: the transmitter was error passive.
        esi: bool,
    },
}

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A classic frame carries at most 8 bytes.
    #[error("a classic CAN frame carries at most 8 data bytes, got {0}")]
    ClassicTooLong(usize),
    /// An FD frame carries at most 64 bytes, in the DLC steps 0–8, 12, 16, 20, 24, 32, 48, 64.
    #[error("a CAN FD frame carries 0-8, 12, 16, 20, 24, 32, 48 or 64 data bytes, got {0}")]
    FdBadLength(usize),
}

/// One CAN frame, fixed-size and `Copy`.
#[derive(Clone, Copy)]
pub struct Frame {
    id: CanId,
    kind: FrameKind,
    len: u8,
    data: [u8; 64],
}

impl Frame {
    /// A classic data frame carrying `data` (at most 8 bytes).
    pub fn new(id: CanId, data: &[u8]) -> Result<Frame, FrameError> {
        if data.len() > 8 {
            return Err(FrameError::ClassicTooLong(data.len()));
        }
        Ok(Self::from_parts(id, FrameKind::Data, data))
    }

    /// A classic data frame with an 11-bit id and exactly `N ≤ 8` bytes: the form the CANopen
    /// encoders use, checked at compile time so it cannot fail.
    pub const fn standard<const N: usize>(id: u16, data: [u8; N]) -> Frame {
        const { assert!(N <= 8, "a classic CAN frame carries at most 8 bytes") };
        let mut buf = [0u8; 64];
        let mut i = 0;
        while i < N {
            buf[i] = data[i];
            i += 1;
        }
        Frame {
            id: CanId::Standard(id & CanId::MAX_STANDARD),
            kind: FrameKind::Data,
            len: N as u8,
            data: buf,
        }
    }

    /// A classic remote frame requesting `len` (≤ 8) bytes.
    pub fn remote(id: CanId, len: usize) -> Result<Frame, FrameError> {
        if len > 8 {
            return Err(FrameError::ClassicTooLong(len));
        }
        let mut f = Self::from_parts(id, FrameKind::Remote, &[]);
        f.len = len as u8;
        Ok(f)
    }

    /// A CAN FD data frame.
    pub fn fd(id: CanId, data: &[u8], brs: bool, esi: bool) -> Result<Frame, FrameError> {
        if !Self::is_fd_length(data.len()) {
            return Err(FrameError::FdBadLength(data.len()));
        }
        Ok(Self::from_parts(id, FrameKind::Fd { brs, esi }, data))
    }

    /// True if `len` is a length a CAN FD frame can have.
    pub const fn is_fd_length(len: usize) -> bool {
        matches!(len, 0..=8 | 12 | 16 | 20 | 24 | 32 | 48 | 64)
    }

    fn from_parts(id: CanId, kind: FrameKind, data: &[u8]) -> Frame {
        let mut buf = [0u8; 64];
        buf[..data.len()].copy_from_slice(data);
        Frame {
            id,
            kind,
            len: data.len() as u8,
            data: buf,
        }
    }

    /// The identifier.
    pub const fn id(&self) -> CanId {
        self.id
    }

    /// The frame kind.
    pub const fn kind(&self) -> FrameKind {
        self.kind
    }

    /// True for a remote (RTR) frame.
    pub const fn is_remote(&self) -> bool {
        matches!(self.kind, FrameKind::Remote)
    }

    /// True for a CAN FD frame.
    pub const fn is_fd(&self) -> bool {
        matches!(self.kind, FrameKind::Fd { .. })
    }

    /// The data length (for a remote frame, the requested length).
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the frame carries no data bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data bytes (empty for a remote frame).
    pub fn data(&self) -> &[u8] {
        if self.is_remote() {
            &[]
        } else {
            &self.data[..self.len as usize]
        }
    }

    /// The standard 11-bit id, or `None` for an extended-id frame. CANopen uses only these.
    pub const fn standard_id(&self) -> Option<u16> {
        match self.id {
            CanId::Standard(id) => Some(id),
            CanId::Extended(_) => None,
        }
    }

    /// Bits the frame occupies on the wire in the worst case of bit stuffing, including the
    /// 3-bit interframe space (the formula of Linux `include/linux/can/length.h`). For a CAN FD
    /// frame this counts every bit at the nominal rate, an upper bound for bus-load planning.
    pub const fn worst_case_bits(&self) -> u32 {
        let n = self.len as u32;
        let data_bits = if self.is_remote() { 0 } else { n * 8 };
        match (self.kind, self.id) {
            (FrameKind::Fd { .. }, CanId::Standard(_)) => {
                let crc = if n > 16 { 21 } else { 17 };
                stuffed(28 + data_bits + crc) + 5 + crc / 4 + 1 + 10
            }
            (FrameKind::Fd { .. }, CanId::Extended(_)) => {
                let crc = if n > 16 { 21 } else { 17 };
                stuffed(47 + data_bits + crc) + 5 + crc / 4 + 1 + 10
            }
            // SOF..CRC (34 bits + data for 11-bit ids, 54 for 29-bit) is stuffed; CRC
            // delimiter, ACK slot + delimiter, EOF (7) and IFS (3) are not.
            (_, CanId::Standard(_)) => stuffed(34 + data_bits) + 13,
            (_, CanId::Extended(_)) => stuffed(54 + data_bits) + 13,
        }
    }
}

/// Bit count after worst-case stuffing: one stuff bit after the first five, then every four.
const fn stuffed(bits: u32) -> u32 {
    bits + (bits - 1) / 4
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.len == other.len
            && self.data() == other.data()
    }
}

impl Eq for Frame {}

impl core::hash::Hash for Frame {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.kind.hash(state);
        self.len.hash(state);
        self.data().hash(state);
    }
}

impl core::fmt::Debug for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Frame({self})")
    }
}

/// Displays the frame in candump's compact form, `123#DEADBEEF`, `123#R2`, `123##1AABB`.
impl core::fmt::Display for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}#", self.id)?;
        match self.kind {
            FrameKind::Remote => {
                write!(f, "R")?;
                if self.len > 0 {
                    write!(f, "{}", self.len)?;
                }
            }
            FrameKind::Fd { brs, esi } => {
                let flags = u8::from(brs) | (u8::from(esi) << 1);
                write!(f, "#{flags:X}")?;
            }
            FrameKind::Data => {}
        }
        for b in self.data() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// A received frame with the time it was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampedFrame {
    /// When the frame was received (or, on the virtual bus, when its last bit passed).
    pub timestamp: Timestamp,
    /// The frame.
    pub frame: Frame,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_case_bits_match_linux_length_h() {
        // length.h: CAN_FRAME_LEN_MAX for 11-bit/8 bytes is 111 bits unstuffed; with worst-case
        // stuffing and the 3-bit IFS the frame takes 135 bits (BRIEF.md).
        let f = Frame::standard(0x181, [0; 8]);
        assert_eq!(f.worst_case_bits(), 135);
        let empty = Frame::standard(0x080, []);
        // 34 stuffed bits -> 34 + 8 = 42, plus 13 unstuffed.
        assert_eq!(empty.worst_case_bits(), 55);
        let ext = Frame::new(CanId::extended(0x1234_5678).unwrap(), &[0; 8]).unwrap();
        assert_eq!(ext.worst_case_bits(), 160);
    }

    #[test]
    fn display_matches_candump_compact_form() {
        let f = Frame::standard(0x123, [0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(f.to_string(), "123#DEADBEEF");
        let r = Frame::remote(CanId::standard(0x701).unwrap(), 1).unwrap();
        assert_eq!(r.to_string(), "701#R1");
        let x = Frame::new(CanId::extended(0x1ABCDEF).unwrap(), &[1]).unwrap();
        assert_eq!(x.to_string(), "01ABCDEF#01");
        let fd = Frame::fd(CanId::standard(0x10).unwrap(), &[0xAA; 12], true, false).unwrap();
        assert_eq!(fd.to_string(), format!("010##1{}", "AA".repeat(12)));
    }

    #[test]
    fn lengths_are_checked() {
        let id = CanId::standard(1).unwrap();
        assert_eq!(Frame::new(id, &[0; 9]), Err(FrameError::ClassicTooLong(9)));
        assert_eq!(
            Frame::fd(id, &[0; 9], false, false),
            Err(FrameError::FdBadLength(9))
        );
        assert!(CanId::standard(0x800).is_none());
        assert!(CanId::extended(0x2000_0000).is_none());
    }

    #[test]
    fn arbitration_prefers_lower_ids_and_standard_over_extended() {
        let a = CanId::Standard(0x080).arbitration_key();
        let b = CanId::Standard(0x181).arbitration_key();
        assert!(a < b);
        let std_ = CanId::Standard(0x100).arbitration_key();
        let ext = CanId::Extended(0x100 << 18).arbitration_key();
        assert!(std_ < ext);
    }
}
