//! PDO mapping parameters (CiA 301 objects 0x1600..=0x17FF for RPDOs, 0x1A00..=0x1BFF for
//! TPDOs) and packing of PDO payloads by a mapping.
//!
//! Sub 0 holds the number of mapped objects; sub 1..=n each hold one entry,
//! `index << 16 | sub-index << 8 | length in bits`. Mapped objects are laid out in entry
//! order from bit 0 of byte 0 upwards, each little-endian, and together carry at most the
//! 64 bits of a classic CAN frame. takt maps at most 8 objects per PDO (enough for any
//! byte-aligned layout); packing is bit-exact, so sub-byte entries work too.

use core::fmt;

use crate::can::{CanId, Frame};

use super::PdoError;

/// Sub-index of the number of mapped objects (CiA 301 objects 0x1600/0x1A00, sub 0).
pub const SUB_COUNT: u8 = 0;
/// Most entries in a [`PdoMapping`].
pub const MAX_ENTRIES: usize = 8;
/// Most bits in a classic CAN PDO.
pub const MAX_BITS: u32 = 64;

/// One mapped object: index, sub-index and length in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MappingEntry {
    /// The object index.
    pub index: u16,
    /// The sub-index.
    pub sub: u8,
    /// The length in bits (8 for a u8, 16 for a u16/i16, 32 for a u32/i32).
    pub bits: u8,
}

impl MappingEntry {
    /// The entry `index:sub` of `bits` bits.
    pub const fn new(index: u16, sub: u8, bits: u8) -> MappingEntry {
        MappingEntry { index, sub, bits }
    }

    /// The 32-bit mapping value: `index << 16 | sub << 8 | bits`.
    pub const fn to_u32(self) -> u32 {
        (self.index as u32) << 16 | (self.sub as u32) << 8 | self.bits as u32
    }

    /// The entry of a 32-bit mapping value.
    pub const fn from_u32(v: u32) -> MappingEntry {
        MappingEntry {
            index: (v >> 16) as u16,
            sub: (v >> 8) as u8,
            bits: v as u8,
        }
    }
}

impl fmt::Display for MappingEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06X}:{:02X}/{}", self.index, self.sub, self.bits)
    }
}

/// A PDO mapping of up to 8 entries and 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoMapping {
    entries: [MappingEntry; MAX_ENTRIES],
    count: u8,
    total_bits: u8,
}

impl PdoMapping {
    /// A mapping of `entries`, checked: at most 8, each 1..=64 bits, together at most 64.
    pub fn new(entries: &[MappingEntry]) -> Result<PdoMapping, PdoError> {
        if entries.len() > MAX_ENTRIES {
            return Err(PdoError::TooManyEntries(entries.len()));
        }
        let mut total: u32 = 0;
        for e in entries {
            if e.bits == 0 || u32::from(e.bits) > MAX_BITS {
                return Err(PdoError::InvalidEntryLength(e.bits));
            }
            total += u32::from(e.bits);
        }
        if total > MAX_BITS {
            return Err(PdoError::TooManyBits(total));
        }
        let mut all = [MappingEntry::new(0, 0, 0); MAX_ENTRIES];
        all[..entries.len()].copy_from_slice(entries);
        Ok(PdoMapping {
            entries: all,
            count: entries.len() as u8,
            total_bits: total as u8,
        })
    }

    /// The empty mapping (a PDO carrying nothing).
    pub const fn empty() -> PdoMapping {
        PdoMapping {
            entries: [MappingEntry::new(0, 0, 0); MAX_ENTRIES],
            count: 0,
            total_bits: 0,
        }
    }

    /// The mapped entries.
    pub fn entries(&self) -> &[MappingEntry] {
        &self.entries[..usize::from(self.count)]
    }

    /// The number of entries (sub 0).
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// True for a mapping without entries.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Mapped bits.
    pub const fn total_bits(&self) -> u32 {
        self.total_bits as u32
    }

    /// Payload length in bytes: the mapped bits rounded up.
    pub const fn byte_len(&self) -> usize {
        (self.total_bits as usize).div_ceil(8)
    }

    /// Packs one value per entry into a payload. Each value is truncated to its entry's
    /// width, so a signed value passed as `i64 as u64` packs as two's complement.
    pub fn pack(&self, values: &[u64]) -> Result<PdoPayload, PdoError> {
        if values.len() != self.len() {
            return Err(PdoError::WrongValueCount {
                expected: self.len(),
                got: values.len(),
            });
        }
        let mut acc: u64 = 0;
        let mut offset: u32 = 0;
        for (e, &v) in self.entries().iter().zip(values) {
            // offset < 64 here: every entry has at least one bit and all fit in 64.
            acc |= (v & mask(e.bits)) << offset;
            offset += u32::from(e.bits);
        }
        Ok(PdoPayload {
            bytes: acc.to_le_bytes(),
            len: self.byte_len() as u8,
        })
    }

    /// Unpacks a received payload into one value per entry. A payload shorter than the
    /// mapping is an error; extra bytes are ignored, as CiA 301 allows.
    pub fn unpack(&self, data: &[u8]) -> Result<PdoValues, PdoError> {
        let needed = self.byte_len();
        if data.len() < needed {
            return Err(PdoError::PayloadTooShort {
                needed,
                got: data.len(),
            });
        }
        let mut raw = [0u8; 8];
        raw[..needed].copy_from_slice(&data[..needed]);
        let acc = u64::from_le_bytes(raw);
        let mut out = PdoValues {
            values: [0; MAX_ENTRIES],
            bits: [0; MAX_ENTRIES],
            count: self.count,
        };
        let mut offset: u32 = 0;
        for (i, e) in self.entries().iter().enumerate() {
            out.values[i] = (acc >> offset) & mask(e.bits);
            out.bits[i] = e.bits;
            offset += u32::from(e.bits);
        }
        Ok(out)
    }
}

impl fmt::Display for PdoMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

const fn mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// A packed PDO payload, 0..=8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoPayload {
    bytes: [u8; 8],
    len: u8,
}

impl PdoPayload {
    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The payload of a received frame (its first 8 bytes).
    pub fn from_slice(data: &[u8]) -> PdoPayload {
        let n = data.len().min(8);
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&data[..n]);
        PdoPayload {
            bytes,
            len: n as u8,
        }
    }

    /// The PDO frame on the 11-bit `cob_id` (masked to 11 bits).
    pub fn to_frame(&self, cob_id: u16) -> Frame {
        match Frame::new(
            CanId::Standard(cob_id & CanId::MAX_STANDARD),
            self.as_slice(),
        ) {
            Ok(frame) => frame,
            // A payload holds at most 8 bytes, which every classic frame carries.
            Err(_) => Frame::standard(cob_id, []),
        }
    }
}

/// The values unpacked from a PDO, one per mapping entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoValues {
    values: [u64; MAX_ENTRIES],
    bits: [u8; MAX_ENTRIES],
    count: u8,
}

impl PdoValues {
    /// The raw (zero-extended) values.
    pub fn as_slice(&self) -> &[u64] {
        &self.values[..usize::from(self.count)]
    }

    /// Entry `i` zero-extended.
    pub fn get(&self, i: usize) -> Option<u64> {
        self.as_slice().get(i).copied()
    }

    /// Entry `i` sign-extended from its width (for INTEGER16/32 objects such as position
    /// actual 0x6064).
    pub fn signed(&self, i: usize) -> Option<i64> {
        let v = self.get(i)?;
        let bits = u32::from(self.bits[i]);
        let shift = 64 - bits;
        Some(((v << shift) as i64) >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn csp_tpdo() -> PdoMapping {
        // statusword (16) + position actual value (32): a typical CiA 402 TPDO1.
        PdoMapping::new(&[
            MappingEntry::new(0x6041, 0, 16),
            MappingEntry::new(0x6064, 0, 32),
        ])
        .unwrap()
    }

    #[test]
    fn entry_encoding() {
        assert_eq!(MappingEntry::new(0x6064, 0, 32).to_u32(), 0x6064_0020);
        assert_eq!(MappingEntry::new(0x6041, 0, 16).to_u32(), 0x6041_0010);
        assert_eq!(
            MappingEntry::from_u32(0x607A_0020),
            MappingEntry::new(0x607A, 0, 32)
        );
    }

    #[test]
    fn pack_and_unpack_a_402_tpdo() {
        let m = csp_tpdo();
        assert_eq!(m.byte_len(), 6);
        let p = m.pack(&[0x0237, (-1000i32) as u32 as u64]).unwrap();
        assert_eq!(p.as_slice(), &[0x37, 0x02, 0x18, 0xFC, 0xFF, 0xFF]);
        assert_eq!(p.to_frame(0x181).to_string(), "181#370218FCFFFF");
        let v = m.unpack(p.as_slice()).unwrap();
        assert_eq!(v.get(0), Some(0x0237));
        assert_eq!(v.signed(1), Some(-1000));
        assert_eq!(v.get(1), Some(0xFFFF_FC18));
        assert_eq!(v.get(2), None);
        // Sign-extended negative values are truncated to their width.
        assert_eq!(m.pack(&[0x0237, (-1000i64) as u64]).unwrap(), p);
    }

    #[test]
    fn sub_byte_entries() {
        let m = PdoMapping::new(&[
            MappingEntry::new(0x6000, 1, 1),
            MappingEntry::new(0x6000, 2, 1),
            MappingEntry::new(0x0005, 0, 6),
            MappingEntry::new(0x6001, 0, 4),
        ])
        .unwrap();
        assert_eq!(m.byte_len(), 2);
        let p = m.pack(&[1, 0, 0, 0xA]).unwrap();
        assert_eq!(p.as_slice(), &[0x01, 0x0A]);
        assert_eq!(m.unpack(&[0x02, 0x0A]).unwrap().as_slice(), &[0, 1, 0, 0xA]);
    }

    #[test]
    fn limits() {
        let e = MappingEntry::new(0x6064, 0, 32);
        assert_eq!(
            PdoMapping::new(&[MappingEntry::new(0x6000, 1, 8); 9]),
            Err(PdoError::TooManyEntries(9))
        );
        assert_eq!(
            PdoMapping::new(&[e, e, MappingEntry::new(0x6041, 0, 8)]),
            Err(PdoError::TooManyBits(72))
        );
        assert_eq!(
            PdoMapping::new(&[MappingEntry::new(0x6041, 0, 0)]),
            Err(PdoError::InvalidEntryLength(0))
        );
        assert_eq!(
            PdoMapping::new(&[MappingEntry::new(0x6041, 0, 65)]),
            Err(PdoError::InvalidEntryLength(65))
        );
        let full = PdoMapping::new(&[MappingEntry::new(0x2000, 0, 64)]).unwrap();
        assert_eq!(full.pack(&[u64::MAX]).unwrap().as_slice(), &[0xFF; 8]);
        assert_eq!(
            csp_tpdo().unpack(&[0; 5]),
            Err(PdoError::PayloadTooShort { needed: 6, got: 5 })
        );
        assert_eq!(
            csp_tpdo().pack(&[1]),
            Err(PdoError::WrongValueCount {
                expected: 2,
                got: 1
            })
        );
        // Longer payloads are fine.
        assert!(csp_tpdo().unpack(&[0; 8]).is_ok());
        assert_eq!(
            PdoMapping::empty().pack(&[]).unwrap().as_slice(),
            &[] as &[u8]
        );
    }

    fn any_mapping() -> impl Strategy<Value = PdoMapping> {
        proptest::collection::vec(1u8..=64, 0..=8)
            .prop_filter("fits 64 bits", |b| {
                b.iter().map(|&x| u32::from(x)).sum::<u32>() <= 64
            })
            .prop_map(|bits| {
                let entries: Vec<_> = bits
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| MappingEntry::new(0x2000 + i as u16, 0, b))
                    .collect();
                PdoMapping::new(&entries).unwrap()
            })
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trip(m in any_mapping(), seed in any::<[u64; 8]>()) {
            let values: Vec<u64> = m.entries().iter().zip(seed).map(|(e, v)| v & mask(e.bits)).collect();
            let p = m.pack(&values).unwrap();
            prop_assert_eq!(p.as_slice().len(), m.byte_len());
            let unpacked = m.unpack(p.as_slice()).unwrap();
            prop_assert_eq!(unpacked.as_slice(), &values[..]);
        }

        #[test]
        fn entry_round_trip(v in any::<u32>()) {
            prop_assert_eq!(MappingEntry::from_u32(v).to_u32(), v);
        }

        #[test]
        fn unpack_never_panics(m in any_mapping(), data in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let _ = m.unpack(&data);
        }
    }
}
