//! The object dictionary of a simulated device (CiA 301 §7.4): entries addressed by index
//! and sub-index, each with a data type (CiA 301 §7.1), an access type, a default and an
//! optional value range, and whether it may be mapped into a PDO.
//!
//! Values are kept as numbers (`i64`, wide enough for every type up to UNSIGNED32) or, for
//! VISIBLE_STRING entries, as bytes in a buffer sized when the dictionary is built. Entries
//! are sorted once; the device's own code resolves the entries it touches every step to
//! [`Slot`]s at construction, so the step reads and writes them by position, without
//! searching or allocating.

use takt_drivers::canopen::sdo::{AbortCode, Multiplexer};

/// A CiA 301 basic data type (§7.1.4), the subset the simulated devices use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// BOOLEAN, one byte on the wire.
    Boolean,
    /// INTEGER8.
    Integer8,
    /// INTEGER16.
    Integer16,
    /// INTEGER32.
    Integer32,
    /// UNSIGNED8.
    Unsigned8,
    /// UNSIGNED16.
    Unsigned16,
    /// UNSIGNED32.
    Unsigned32,
    /// VISIBLE_STRING: any length up to the entry's capacity.
    VisibleString,
}

impl DataType {
    /// Bytes on the wire; `None` for a string.
    pub const fn size(self) -> Option<usize> {
        match self {
            DataType::Boolean | DataType::Integer8 | DataType::Unsigned8 => Some(1),
            DataType::Integer16 | DataType::Unsigned16 => Some(2),
            DataType::Integer32 | DataType::Unsigned32 => Some(4),
            DataType::VisibleString => None,
        }
    }

    /// Bits a PDO mapping of this type takes.
    pub const fn bits(self) -> Option<u8> {
        match self.size() {
            Some(n) => Some((n * 8) as u8),
            None => None,
        }
    }

    const fn is_signed(self) -> bool {
        matches!(
            self,
            DataType::Integer8 | DataType::Integer16 | DataType::Integer32
        )
    }

    /// The smallest and largest value of the type.
    pub const fn limits(self) -> (i64, i64) {
        match self {
            DataType::Boolean => (0, 1),
            DataType::Integer8 => (i8::MIN as i64, i8::MAX as i64),
            DataType::Integer16 => (i16::MIN as i64, i16::MAX as i64),
            DataType::Integer32 => (i32::MIN as i64, i32::MAX as i64),
            DataType::Unsigned8 => (0, u8::MAX as i64),
            DataType::Unsigned16 => (0, u16::MAX as i64),
            DataType::Unsigned32 => (0, u32::MAX as i64),
            DataType::VisibleString => (0, 0),
        }
    }

    /// The value of `raw` little-endian bytes (as many as the type has), sign-extended for
    /// the signed types.
    pub fn from_le(self, raw: &[u8]) -> i64 {
        let mut b = [0u8; 8];
        let n = raw.len().min(8);
        b[..n].copy_from_slice(&raw[..n]);
        let v = u64::from_le_bytes(b);
        match (self.size(), self.is_signed()) {
            (Some(size), true) => {
                let shift = 64 - 8 * size as u32;
                ((v << shift) as i64) >> shift
            }
            _ => v as i64,
        }
    }
}

/// Who may read and write an entry (CiA 301 §7.4.3, "Access").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read only; the device itself updates it.
    ReadOnly,
    /// Write only.
    WriteOnly,
    /// Read and write.
    ReadWrite,
    /// Read only and never changes.
    Const,
}

impl Access {
    /// True if an SDO client may read it.
    pub const fn readable(self) -> bool {
        !matches!(self, Access::WriteOnly)
    }

    /// True if an SDO client may write it.
    pub const fn writable(self) -> bool {
        matches!(self, Access::WriteOnly | Access::ReadWrite)
    }
}

/// The position of an entry in its dictionary, resolved once and used every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u16);

impl Slot {
    /// The position.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug)]
struct Text {
    default: Box<[u8]>,
    buf: Box<[u8]>,
    len: usize,
}

/// One entry of the dictionary.
#[derive(Clone, Debug)]
pub struct Entry {
    mux: Multiplexer,
    name: &'static str,
    data_type: DataType,
    access: Access,
    mappable: bool,
    default: i64,
    min: i64,
    max: i64,
    /// 64 minus the type's width in bits (0 for strings, which hold no number).
    wrap_shift: u32,
    signed: bool,
    text: Option<Text>,
}

impl Entry {
    /// A numeric entry with its default, its type's full range, not PDO-mappable.
    pub fn new(
        index: u16,
        sub: u8,
        name: &'static str,
        data_type: DataType,
        access: Access,
        default: i64,
    ) -> Entry {
        let (min, max) = data_type.limits();
        Entry {
            mux: Multiplexer::new(index, sub),
            name,
            data_type,
            access,
            mappable: false,
            default,
            min,
            max,
            wrap_shift: data_type.size().map_or(0, |n| 64 - 8 * n as u32),
            signed: data_type.is_signed(),
            text: None,
        }
    }

    /// A VISIBLE_STRING entry holding `default`, writable up to `capacity` bytes when its
    /// access allows.
    pub fn text(
        index: u16,
        sub: u8,
        name: &'static str,
        access: Access,
        default: &str,
        capacity: usize,
    ) -> Entry {
        let capacity = capacity.max(default.len());
        let mut buf = vec![0u8; capacity].into_boxed_slice();
        buf[..default.len()].copy_from_slice(default.as_bytes());
        Entry {
            text: Some(Text {
                default: default.as_bytes().into(),
                buf,
                len: default.len(),
            }),
            ..Entry::new(index, sub, name, DataType::VisibleString, access, 0)
        }
    }

    /// The same entry, restricted to `min..=max` for writes (CiA 301 abort 0x0609_0031/32
    /// outside).
    pub fn range(mut self, min: i64, max: i64) -> Entry {
        self.min = min;
        self.max = max;
        self
    }

    /// The same entry, allowed in PDO mappings.
    pub fn mappable(mut self) -> Entry {
        self.mappable = true;
        self
    }

    /// Index and sub-index.
    pub fn mux(&self) -> Multiplexer {
        self.mux
    }

    /// The entry's name, for dumps.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its data type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// Its access type.
    pub fn access(&self) -> Access {
        self.access
    }

    /// True if it may be mapped into a PDO.
    pub fn is_mappable(&self) -> bool {
        self.mappable
    }
}

/// Why a dictionary could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OdError {
    /// Two entries with the same index and sub-index.
    #[error("object {0} is defined twice")]
    Duplicate(Multiplexer),
    /// More entries than a [`Slot`] can address.
    #[error("too many entries in one object dictionary")]
    TooLarge,
    /// An entry the device's own code needs is not in its dictionary.
    #[error("object {0} is missing from the dictionary")]
    Missing(Multiplexer),
}

/// The number an entry holds, kept apart from the entry's description: the values a device
/// reads and writes every step then lie together in a few cache lines, instead of one
/// line of a ~100-byte entry each.
#[derive(Clone, Copy, Debug)]
struct Value {
    value: i64,
    /// The entry's `wrap_shift`.
    wrap_shift: u32,
    /// The entry's `signed`.
    signed: bool,
}

/// The object dictionary of one device.
#[derive(Clone, Debug)]
pub struct ObjectDictionary {
    entries: Vec<Entry>,
    /// Parallel to `entries`.
    values: Vec<Value>,
}

impl ObjectDictionary {
    /// A dictionary of `entries`, in any order.
    pub fn new(mut entries: Vec<Entry>) -> Result<ObjectDictionary, OdError> {
        if entries.len() > usize::from(u16::MAX) {
            return Err(OdError::TooLarge);
        }
        entries.sort_by_key(|e| e.mux);
        for w in entries.windows(2) {
            if w[0].mux == w[1].mux {
                return Err(OdError::Duplicate(w[0].mux));
            }
        }
        let values = entries
            .iter()
            .map(|e| Value {
                value: e.default,
                wrap_shift: e.wrap_shift,
                signed: e.signed,
            })
            .collect();
        Ok(ObjectDictionary { entries, values })
    }

    /// Every entry, sorted by index and sub-index.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `mux`, or the abort code an SDO server answers for it: object or
    /// sub-index does not exist (CiA 301 0x0602_0000, 0x0609_0011).
    pub fn find(&self, mux: Multiplexer) -> Result<Slot, AbortCode> {
        match self.entries.binary_search_by_key(&mux, |e| e.mux) {
            // The constructor caps the length at u16::MAX, so the position fits.
            Ok(i) => Ok(Slot(i as u16)),
            Err(i) => {
                let same_index = |j: usize| {
                    self.entries
                        .get(j)
                        .is_some_and(|e: &Entry| e.mux.index == mux.index)
                };
                if same_index(i) || (i > 0 && same_index(i - 1)) {
                    Err(AbortCode::SubIndexDoesNotExist)
                } else {
                    Err(AbortCode::ObjectDoesNotExist)
                }
            }
        }
    }

    /// The slot of `index:sub`, if it exists.
    pub fn slot(&self, index: u16, sub: u8) -> Option<Slot> {
        self.find(Multiplexer::new(index, sub)).ok()
    }

    /// The slot of `index:sub`, which the device's own code needs.
    pub fn require(&self, index: u16, sub: u8) -> Result<Slot, OdError> {
        self.slot(index, sub)
            .ok_or(OdError::Missing(Multiplexer::new(index, sub)))
    }

    /// The entry in `slot`.
    pub fn entry(&self, slot: Slot) -> &Entry {
        &self.entries[slot.get()]
    }

    /// The numeric value in `slot`.
    pub fn get(&self, slot: Slot) -> i64 {
        self.values[slot.get()].value
    }

    /// Sets the numeric value in `slot` from the device's side: no access or range checks,
    /// but the value is wrapped to the entry's type as the wire would carry it.
    pub fn set(&mut self, slot: Slot, value: i64) {
        let e = &mut self.values[slot.get()];
        // Shifts instead of a match on the type: this runs several times per device and
        // step. Wrapping to the type's width is truncation plus sign or zero extension.
        let shift = e.wrap_shift;
        e.value = if e.signed {
            (value << shift) >> shift
        } else {
            (((value as u64) << shift) >> shift) as i64
        };
    }

    /// The value of `index:sub`, if the entry exists (for tests and tools).
    pub fn value(&self, index: u16, sub: u8) -> Option<i64> {
        self.slot(index, sub).map(|s| self.get(s))
    }

    /// The text of a string entry (empty for numeric ones).
    pub fn text(&self, slot: Slot) -> &[u8] {
        match &self.entries[slot.get()].text {
            Some(t) => &t.buf[..t.len],
            None => &[],
        }
    }

    /// The value in `slot` as it goes on the wire, written to the start of `out`; returns
    /// its length. `out` must hold the longest string of the dictionary
    /// ([`ObjectDictionary::max_value_len`]).
    pub fn read_bytes(&self, slot: Slot, out: &mut [u8]) -> usize {
        let e = &self.entries[slot.get()];
        match (&e.text, e.data_type.size()) {
            (Some(t), _) => {
                let n = t.len.min(out.len());
                out[..n].copy_from_slice(&t.buf[..n]);
                n
            }
            (None, Some(size)) => {
                let n = size.min(out.len());
                out[..n].copy_from_slice(&self.values[slot.get()].value.to_le_bytes()[..n]);
                n
            }
            (None, None) => 0,
        }
    }

    /// The longest value any entry can hold, in bytes (at least 8).
    pub fn max_value_len(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.text.as_ref().map_or(8, |t| t.buf.len()))
            .max()
            .unwrap_or(8)
            .max(8)
    }

    /// Checks an SDO write of `data` to `slot` against access, length and range (CiA 301
    /// abort codes 0x0601_0002, 0x0607_0012/13, 0x0609_0031/32) and returns the numeric
    /// value it would store (0 for a string).
    pub fn check_write(&self, slot: Slot, data: &[u8]) -> Result<i64, AbortCode> {
        let e = &self.entries[slot.get()];
        if !e.access.writable() {
            return Err(AbortCode::WriteOfReadOnly);
        }
        if let Some(t) = &e.text {
            return if data.len() > t.buf.len() {
                Err(AbortCode::LengthTooHigh)
            } else {
                Ok(0)
            };
        }
        let size = e.data_type.size().unwrap_or(0);
        if data.len() > size {
            return Err(AbortCode::LengthTooHigh);
        }
        if data.len() < size {
            return Err(AbortCode::LengthTooLow);
        }
        let v = e.data_type.from_le(data);
        if v > e.max {
            return Err(AbortCode::ValueTooHigh);
        }
        if v < e.min {
            return Err(AbortCode::ValueTooLow);
        }
        Ok(v)
    }

    /// Stores a write already checked by [`ObjectDictionary::check_write`].
    pub fn store(&mut self, slot: Slot, data: &[u8], value: i64) {
        let e = &mut self.entries[slot.get()];
        match &mut e.text {
            Some(t) => {
                let n = data.len().min(t.buf.len());
                t.buf[..n].copy_from_slice(&data[..n]);
                t.len = n;
            }
            None => self.values[slot.get()].value = value,
        }
    }

    /// Puts every entry whose index lies in `indices` back to its default (CiA 301 reset
    /// node: all; reset communication: 0x1000..=0x1FFF).
    pub fn restore_defaults(&mut self, indices: core::ops::RangeInclusive<u16>) {
        for (e, v) in self.entries.iter_mut().zip(&mut self.values) {
            if indices.contains(&e.mux.index) {
                v.value = e.default;
                if let Some(t) = &mut e.text {
                    let n = t.default.len();
                    t.buf[..n].copy_from_slice(&t.default);
                    t.len = n;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn od() -> ObjectDictionary {
        ObjectDictionary::new(vec![
            Entry::new(
                0x6040,
                0,
                "controlword",
                DataType::Unsigned16,
                Access::ReadWrite,
                0,
            ),
            Entry::new(0x1018, 0, "identity", DataType::Unsigned8, Access::Const, 4),
            Entry::new(0x1018, 1, "vendor", DataType::Unsigned32, Access::Const, 7),
            Entry::new(
                0x607A,
                0,
                "target",
                DataType::Integer32,
                Access::ReadWrite,
                0,
            )
            .range(-1000, 1000),
            Entry::text(0x1008, 0, "name", Access::Const, "takt sim drive", 0),
        ])
        .unwrap()
    }

    #[test]
    fn missing_objects_and_sub_indices_have_distinct_aborts() {
        let od = od();
        assert_eq!(
            od.find(Multiplexer::new(0x1018, 9)),
            Err(AbortCode::SubIndexDoesNotExist)
        );
        assert_eq!(
            od.find(Multiplexer::new(0x1019, 0)),
            Err(AbortCode::ObjectDoesNotExist)
        );
        assert!(od.find(Multiplexer::new(0x1018, 1)).is_ok());
    }

    #[test]
    fn writes_are_checked_for_access_length_and_range() {
        let od = od();
        let target = od.slot(0x607A, 0).unwrap();
        assert_eq!(
            od.check_write(target, &1001i32.to_le_bytes()),
            Err(AbortCode::ValueTooHigh)
        );
        assert_eq!(
            od.check_write(target, &(-1001i32).to_le_bytes()),
            Err(AbortCode::ValueTooLow)
        );
        assert_eq!(
            od.check_write(target, &[1, 2]),
            Err(AbortCode::LengthTooLow)
        );
        assert_eq!(od.check_write(target, &(-5i32).to_le_bytes()), Ok(-5));
        let vendor = od.slot(0x1018, 1).unwrap();
        assert_eq!(
            od.check_write(vendor, &[0; 4]),
            Err(AbortCode::WriteOfReadOnly)
        );
    }

    #[test]
    fn signed_values_round_trip_through_bytes() {
        let mut od = od();
        let target = od.slot(0x607A, 0).unwrap();
        od.set(target, -2);
        let mut buf = [0u8; 16];
        let n = od.read_bytes(target, &mut buf);
        assert_eq!(&buf[..n], &[0xFE, 0xFF, 0xFF, 0xFF]);
        od.set(target, 0x1_0000_0001);
        assert_eq!(od.get(target), 1, "values wrap to the type's width");
        od.restore_defaults(0x6000..=0x9FFF);
        assert_eq!(od.get(target), 0);
        let name = od.slot(0x1008, 0).unwrap();
        assert_eq!(od.text(name), b"takt sim drive");
    }
}
