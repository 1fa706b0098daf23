//! proptest strategies for CAN frames, shared by the property tests of every codec and of the
//! candump format (and by other crates' tests, with the `proptest` feature).

use proptest::prelude::*;

use super::{CanId, Frame};

/// Any frame: standard and extended ids, classic data of 0–8 bytes, remote frames, and CAN FD
/// frames of every FD length with random bytes and flags. Weighted towards classic 11-bit
/// data frames, the bulk of CANopen traffic.
pub fn any_frame() -> impl Strategy<Value = Frame> {
    let std_id = (0u16..=CanId::MAX_STANDARD).prop_map(CanId::Standard);
    let ext_id = (0u32..=CanId::MAX_EXTENDED).prop_map(CanId::Extended);
    let id = prop_oneof![4 => std_id, 1 => ext_id];
    let fd_len = prop_oneof![
        0usize..=8,
        Just(12),
        Just(16),
        Just(20),
        Just(24),
        Just(32),
        Just(48),
        Just(64)
    ];
    prop_oneof![
        4 => (id.clone(), proptest::collection::vec(any::<u8>(), 0..=8))
            .prop_map(|(id, d)| Frame::new(id, &d).unwrap_or_else(|_| unreachable!("0-8 bytes"))),
        1 => (id.clone(), 0usize..=8)
            .prop_map(|(id, n)| Frame::remote(id, n).unwrap_or_else(|_| unreachable!("0-8 bytes"))),
        1 => (id, fd_len, any::<[u8; 64]>(), any::<bool>(), any::<bool>()).prop_map(
            |(id, n, d, brs, esi)| {
                Frame::fd(id, &d[..n], brs, esi).unwrap_or_else(|_| unreachable!("an FD length"))
            }
        ),
    ]
}
