//! COB-IDs of the CiA 301 pre-defined connection set, and classification of an identifier
//! into the service it carries.
//!
//! In the pre-defined connection set an 11-bit identifier is a 4-bit function code followed
//! by the 7-bit node-ID (CiA 301, "Pre-defined connection set"). Broadcast objects (NMT,
//! SYNC, TIME) use node-ID 0. Devices may be configured away from these defaults (0x1005,
//! 0x1014, PDO COB-IDs); a dump then shows such frames as [`Cob::Other`].

use crate::can::Frame;

use super::NodeId;
use super::pdo::{PdoDirection, PdoNumber};

/// NMT node control (CiA 301 §7.2.8.3.1): function code 0b0000, node-ID 0.
pub const NMT: u16 = 0x000;
/// SYNC (CiA 301 §7.2.5), the default of object 0x1005.
pub const SYNC: u16 = 0x080;
/// EMCY base (CiA 301 §7.2.7): `EMCY + node`, the default of object 0x1014.
pub const EMCY: u16 = 0x080;
/// TIME (CiA 301 §7.2.6), the default of object 0x1012.
pub const TIME: u16 = 0x100;
/// TPDO1..TPDO4 bases (CiA 301 §7.2.2): `TPDO[n-1] + node`, sent by the device.
pub const TPDO: [u16; 4] = [0x180, 0x280, 0x380, 0x480];
/// RPDO1..RPDO4 bases (CiA 301 §7.2.2): `RPDO[n-1] + node`, received by the device.
pub const RPDO: [u16; 4] = [0x200, 0x300, 0x400, 0x500];
/// SDO server→client base (CiA 301 §7.2.4): `SDO_RESPONSE + node`, device→controller.
pub const SDO_RESPONSE: u16 = 0x580;
/// SDO client→server base (CiA 301 §7.2.4): `SDO_REQUEST + node`, controller→device.
pub const SDO_REQUEST: u16 = 0x600;
/// NMT error control base (CiA 301 §7.2.8.3.2): heartbeat, boot-up and node guarding,
/// `HEARTBEAT + node`.
pub const HEARTBEAT: u16 = 0x700;

/// The service an 11-bit identifier carries in the pre-defined connection set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cob {
    /// NMT node control, `0x000`.
    Nmt,
    /// SYNC, `0x080`.
    Sync,
    /// Emergency from a node, `0x080 + node`.
    Emcy(NodeId),
    /// TIME, `0x100`.
    Time,
    /// A PDO: transmit (device→controller, `0x180/0x280/0x380/0x480 + node`) or receive
    /// (controller→device, `0x200/0x300/0x400/0x500 + node`), numbered from the device's side.
    Pdo {
        /// TPDO or RPDO, seen from the device.
        direction: PdoDirection,
        /// 1..=4 in the pre-defined connection set.
        number: PdoNumber,
        /// The device.
        node: NodeId,
    },
    /// SDO server→client, device→controller, `0x580 + node`.
    SdoResponse(NodeId),
    /// SDO client→server, controller→device, `0x600 + node`.
    SdoRequest(NodeId),
    /// Heartbeat, boot-up or node-guarding on `0x700 + node`.
    Heartbeat(NodeId),
    /// An identifier outside the pre-defined connection set (LSS, node-ID 0 slots, or
    /// identifiers a device was configured to use).
    Other(u16),
}

/// The service that `id` carries in the pre-defined connection set. Ids above `0x7FF` are
/// masked to 11 bits, as [`Frame::standard`] does.
pub const fn classify(id: u16) -> Cob {
    let id = id & 0x7FF;
    let function = id >> 7;
    let node = match NodeId::new((id & 0x7F) as u8) {
        Ok(node) => node,
        Err(_) => {
            return match id {
                NMT => Cob::Nmt,
                SYNC => Cob::Sync,
                TIME => Cob::Time,
                _ => Cob::Other(id),
            };
        }
    };
    match function {
        0b0001 => Cob::Emcy(node),
        0b0011 => pdo(PdoDirection::Transmit, 1, node),
        0b0100 => pdo(PdoDirection::Receive, 1, node),
        0b0101 => pdo(PdoDirection::Transmit, 2, node),
        0b0110 => pdo(PdoDirection::Receive, 2, node),
        0b0111 => pdo(PdoDirection::Transmit, 3, node),
        0b1000 => pdo(PdoDirection::Receive, 3, node),
        0b1001 => pdo(PdoDirection::Transmit, 4, node),
        0b1010 => pdo(PdoDirection::Receive, 4, node),
        0b1011 => Cob::SdoResponse(node),
        0b1100 => Cob::SdoRequest(node),
        0b1110 => Cob::Heartbeat(node),
        _ => Cob::Other(id),
    }
}

const fn pdo(direction: PdoDirection, n: u16, node: NodeId) -> Cob {
    Cob::Pdo {
        direction,
        number: PdoNumber::predefined(n),
        node,
    }
}

/// The service a frame's identifier carries, or `None` for an extended (29-bit) identifier,
/// which CiA 301 does not use.
pub const fn classify_frame(frame: &Frame) -> Option<Cob> {
    match frame.standard_id() {
        Some(id) => Some(classify(id)),
        None => None,
    }
}

impl Cob {
    /// The identifier of this object in the pre-defined connection set; `None` for a PDO
    /// numbered above 4, which has no default identifier.
    pub const fn cob_id(self) -> Option<u16> {
        let id = match self {
            Cob::Nmt => NMT,
            Cob::Sync => SYNC,
            Cob::Emcy(node) => EMCY + node.get() as u16,
            Cob::Time => TIME,
            Cob::Pdo {
                direction,
                number,
                node,
            } => match number.get() {
                n @ 1..=4 => {
                    let base = match direction {
                        PdoDirection::Transmit => TPDO[n as usize - 1],
                        PdoDirection::Receive => RPDO[n as usize - 1],
                    };
                    base + node.get() as u16
                }
                _ => return None,
            },
            Cob::SdoResponse(node) => SDO_RESPONSE + node.get() as u16,
            Cob::SdoRequest(node) => SDO_REQUEST + node.get() as u16,
            Cob::Heartbeat(node) => HEARTBEAT + node.get() as u16,
            Cob::Other(id) => id,
        };
        Some(id)
    }

    /// The node the object belongs to, for node-specific objects.
    pub const fn node(self) -> Option<NodeId> {
        match self {
            Cob::Emcy(node)
            | Cob::Pdo { node, .. }
            | Cob::SdoResponse(node)
            | Cob::SdoRequest(node)
            | Cob::Heartbeat(node) => Some(node),
            Cob::Nmt | Cob::Sync | Cob::Time | Cob::Other(_) => None,
        }
    }
}

impl core::fmt::Display for Cob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Cob::Nmt => f.write_str("NMT"),
            Cob::Sync => f.write_str("SYNC"),
            Cob::Emcy(node) => write!(f, "EMCY node {node}"),
            Cob::Time => f.write_str("TIME"),
            Cob::Pdo {
                direction,
                number,
                node,
            } => write!(f, "{direction}{number} node {node}"),
            Cob::SdoResponse(node) => write!(f, "SDO response node {node}"),
            Cob::SdoRequest(node) => write!(f, "SDO request node {node}"),
            Cob::Heartbeat(node) => write!(f, "heartbeat node {node}"),
            Cob::Other(id) => write!(f, "id {id:03X}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(n: u8) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn the_predefined_connection_set() {
        assert_eq!(classify(0x000), Cob::Nmt);
        assert_eq!(classify(0x080), Cob::Sync);
        assert_eq!(classify(0x081), Cob::Emcy(node(1)));
        assert_eq!(classify(0x0FF), Cob::Emcy(node(127)));
        assert_eq!(classify(0x100), Cob::Time);
        let pdo = |direction, n, id| Cob::Pdo {
            direction,
            number: PdoNumber::new(n).unwrap(),
            node: node(id),
        };
        assert_eq!(classify(0x185), pdo(PdoDirection::Transmit, 1, 5));
        assert_eq!(classify(0x205), pdo(PdoDirection::Receive, 1, 5));
        assert_eq!(classify(0x285), pdo(PdoDirection::Transmit, 2, 5));
        assert_eq!(classify(0x305), pdo(PdoDirection::Receive, 2, 5));
        assert_eq!(classify(0x385), pdo(PdoDirection::Transmit, 3, 5));
        assert_eq!(classify(0x405), pdo(PdoDirection::Receive, 3, 5));
        assert_eq!(classify(0x485), pdo(PdoDirection::Transmit, 4, 5));
        assert_eq!(classify(0x505), pdo(PdoDirection::Receive, 4, 5));
        assert_eq!(classify(0x58A), Cob::SdoResponse(node(10)));
        assert_eq!(classify(0x60A), Cob::SdoRequest(node(10)));
        assert_eq!(classify(0x70A), Cob::Heartbeat(node(10)));
        // Node-ID 0 slots and LSS are not in the set.
        for id in [
            0x101, 0x180, 0x200, 0x580, 0x600, 0x700, 0x7E4, 0x7E5, 0x680,
        ] {
            assert_eq!(classify(id), Cob::Other(id), "{id:03X}");
        }
    }

    #[test]
    fn extended_frames_are_not_classified() {
        let f = Frame::new(crate::can::CanId::extended(0x181).unwrap(), &[]).unwrap();
        assert_eq!(classify_frame(&f), None);
        assert_eq!(
            classify_frame(&Frame::standard(0x701, [0])),
            Some(Cob::Heartbeat(node(1)))
        );
    }

    proptest! {
        #[test]
        fn classify_and_cob_id_round_trip(id in 0u16..=0x7FF) {
            let cob = classify(id);
            prop_assert_eq!(cob.cob_id(), Some(id));
        }

        #[test]
        fn ids_above_11_bits_are_masked(id in any::<u16>()) {
            prop_assert_eq!(classify(id), classify(id & 0x7FF));
        }
    }
}
