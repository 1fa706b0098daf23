//! Any CAN frame decoded as CANopen: the service its identifier carries in the pre-defined
//! connection set (CiA 301), decoded by that service's codec. `takt dump` prints one
//! [`Message`] per frame; the cycle may use [`decode`] too, as it neither allocates nor
//! panics, whatever the frame (any id, length, remote or extended or FD).
//!
//! ```
//! use takt_drivers::can::Frame;
//! use takt_drivers::canopen::decode;
//!
//! let frame = Frame::standard(0x581, [0x4B, 0x41, 0x60, 0x00, 0x37, 0x02, 0x00, 0x00]);
//! assert_eq!(decode(&frame).to_string(), "SDO response node 1: upload 0x6041:00 = expedited 37 02");
//! ```

use core::fmt;

use crate::can::Frame;

use super::cob::{self, Cob};
use super::emcy::Emergency;
use super::heartbeat::Heartbeat;
use super::hex::Hex;
use super::nmt::NmtMessage;
use super::pdo::{PdoDirection, PdoNumber, PdoPayload};
use super::sdo::{SdoRequest, SdoResponse};
use super::sync::SyncMessage;
use super::time::TimeOfDay;
use super::{DecodeError, NodeId};

/// A frame decoded as CANopen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// NMT node control.
    Nmt(NmtMessage),
    /// SYNC.
    Sync(SyncMessage),
    /// Emergency.
    Emcy(Emergency),
    /// TIME_OF_DAY.
    Time(TimeOfDay),
    /// A PDO, its payload raw (the mapping lives in the device's configuration).
    Pdo {
        /// TPDO (from the device) or RPDO (to the device).
        direction: PdoDirection,
        /// 1..=4.
        number: PdoNumber,
        /// The device.
        node: NodeId,
        /// The payload.
        data: PdoPayload,
    },
    /// A remote request for a TPDO.
    PdoRemoteRequest {
        /// TPDO or RPDO slot of the id.
        direction: PdoDirection,
        /// 1..=4.
        number: PdoNumber,
        /// The device.
        node: NodeId,
    },
    /// SDO client→server (controller→device).
    SdoRequest {
        /// The server node.
        node: NodeId,
        /// The request.
        request: SdoRequest,
    },
    /// SDO server→client (device→controller).
    SdoResponse {
        /// The server node.
        node: NodeId,
        /// The response.
        response: SdoResponse,
    },
    /// Heartbeat, or boot-up (state [`super::NmtState::BootUp`]).
    Heartbeat(Heartbeat),
    /// A node-guarding remote request on `0x700 + node`.
    NodeGuardRequest {
        /// The guarded node.
        node: NodeId,
    },
    /// A frame on an identifier outside the pre-defined connection set (or extended).
    Unknown(Frame),
    /// A frame on a CANopen identifier that does not decode as that service.
    Invalid {
        /// What the identifier announced.
        cob: Cob,
        /// Why it does not decode.
        error: DecodeError,
        /// The frame.
        frame: Frame,
    },
}

/// Decodes `frame` as CANopen. Never fails and never panics: frames that do not decode are
/// [`Message::Invalid`] (with a typed error) or [`Message::Unknown`].
pub fn decode(frame: &Frame) -> Message {
    let Some(cob) = cob::classify_frame(frame) else {
        return Message::Unknown(*frame);
    };
    let invalid = |error| Message::Invalid {
        cob,
        error,
        frame: *frame,
    };
    if frame.is_fd() {
        return invalid(DecodeError::FdFrame);
    }
    let decoded = match cob {
        Cob::Nmt => NmtMessage::decode(frame).map(Message::Nmt),
        Cob::Sync => SyncMessage::decode(frame).map(Message::Sync),
        Cob::Emcy(_) => Emergency::decode(frame).map(Message::Emcy),
        Cob::Time => TimeOfDay::decode(frame).map(Message::Time),
        Cob::Pdo {
            direction,
            number,
            node,
        } => Ok(if frame.is_remote() {
            Message::PdoRemoteRequest {
                direction,
                number,
                node,
            }
        } else {
            Message::Pdo {
                direction,
                number,
                node,
                data: PdoPayload::from_slice(frame.data()),
            }
        }),
        Cob::SdoRequest(_) => {
            SdoRequest::decode(frame).map(|(node, request)| Message::SdoRequest { node, request })
        }
        Cob::SdoResponse(_) => SdoResponse::decode(frame)
            .map(|(node, response)| Message::SdoResponse { node, response }),
        Cob::Heartbeat(node) if frame.is_remote() => Ok(Message::NodeGuardRequest { node }),
        Cob::Heartbeat(_) => Heartbeat::decode(frame).map(Message::Heartbeat),
        Cob::Other(_) => Ok(Message::Unknown(*frame)),
    };
    decoded.unwrap_or_else(invalid)
}

impl Message {
    /// The node the message is from or for, when it is node-specific (NMT: its target).
    pub fn node(&self) -> Option<NodeId> {
        match self {
            Message::Nmt(m) => match m.target {
                super::NmtTarget::All => None,
                super::NmtTarget::Node(n) => Some(n),
            },
            Message::Emcy(e) => Some(e.node),
            Message::Pdo { node, .. }
            | Message::PdoRemoteRequest { node, .. }
            | Message::SdoRequest { node, .. }
            | Message::SdoResponse { node, .. }
            | Message::NodeGuardRequest { node } => Some(*node),
            Message::Heartbeat(h) => Some(h.node),
            Message::Invalid { cob, .. } => cob.node(),
            Message::Sync(_) | Message::Time(_) | Message::Unknown(_) => None,
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Nmt(m) => write!(f, "{m}"),
            Message::Sync(s) => write!(f, "{s}"),
            Message::Emcy(e) => write!(f, "{e}"),
            Message::Time(t) => write!(f, "{t}"),
            Message::Pdo {
                direction,
                number,
                node,
                data,
            } => write!(
                f,
                "{direction}{number} node {node}: [{}]",
                Hex(data.as_slice())
            ),
            Message::PdoRemoteRequest {
                direction,
                number,
                node,
            } => write!(f, "{direction}{number} node {node}: remote request"),
            Message::SdoRequest { node, request } => {
                write!(f, "SDO request node {node}: {request}")
            }
            Message::SdoResponse { node, response } => {
                write!(f, "SDO response node {node}: {response}")
            }
            Message::Heartbeat(h) => write!(f, "{h}"),
            Message::NodeGuardRequest { node } => {
                write!(f, "node guarding request node {node}")
            }
            Message::Unknown(frame) => write!(f, "unknown {frame}"),
            Message::Invalid { cob, error, frame } => {
                write!(f, "invalid {cob} ({frame}): {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::can::CanId;
    use crate::can::strategy::any_frame;
    use proptest::prelude::*;

    fn line(frame: Frame) -> String {
        decode(&frame).to_string()
    }

    #[test]
    fn dump_lines_read_well() {
        assert_eq!(
            line(Frame::standard(0x000, [0x01, 0x05])),
            "NMT start node 5"
        );
        assert_eq!(
            line(Frame::standard(0x000, [0x82, 0x00])),
            "NMT reset communication all nodes"
        );
        assert_eq!(line(Frame::standard(0x080, [])), "SYNC");
        assert_eq!(line(Frame::standard(0x080, [7])), "SYNC counter 7");
        assert_eq!(
            line(Frame::standard(0x081, [0x10, 0x81, 0x11, 0, 0, 0, 0, 0])),
            "EMCY node 1: 0x8110 CAN overrun (objects lost); error register 0x11 (generic, \
             communication); manufacturer 00 00 00 00 00"
        );
        assert_eq!(
            line(Frame::standard(0x183, [0x37, 0x02, 0x18, 0xFC, 0xFF, 0xFF])),
            "TPDO1 node 3: [37 02 18 FC FF FF]"
        );
        assert_eq!(line(Frame::standard(0x503, [])), "RPDO4 node 3: []");
        assert_eq!(
            line(Frame::remote(CanId::standard(0x283).unwrap(), 8).unwrap()),
            "TPDO2 node 3: remote request"
        );
        assert_eq!(
            line(Frame::standard(
                0x601,
                [0x2B, 0x40, 0x60, 0x00, 0x06, 0x00, 0x00, 0x00]
            )),
            "SDO request node 1: download 0x6040:00 expedited 06 00"
        );
        assert_eq!(
            line(Frame::standard(0x581, [0x60, 0x40, 0x60, 0, 0, 0, 0, 0])),
            "SDO response node 1: download 0x6040:00 ok"
        );
        assert_eq!(
            line(Frame::standard(
                0x581,
                [0x80, 0x40, 0x60, 0x00, 0x00, 0x00, 0x02, 0x06]
            )),
            "SDO response node 1: abort 0x6040:00: 0x06020000 (object does not exist in the \
             object dictionary)"
        );
        assert_eq!(
            line(Frame::standard(0x602, [0x60, 0, 0, 0, 0, 0, 0, 0])),
            "SDO request node 2: upload segment t=0"
        );
        assert_eq!(
            line(Frame::standard(0x703, [0x05])),
            "heartbeat node 3: operational"
        );
        assert_eq!(line(Frame::standard(0x703, [0x00])), "boot-up node 3");
        assert_eq!(
            line(Frame::remote(CanId::standard(0x703).unwrap(), 1).unwrap()),
            "node guarding request node 3"
        );
        assert_eq!(
            line(Frame::standard(0x7E5, [0x04, 0x01])),
            "unknown 7E5#0401"
        );
        assert_eq!(
            line(Frame::new(CanId::extended(0x181).unwrap(), &[1]).unwrap()),
            "unknown 00000181#01"
        );
        assert_eq!(
            line(Frame::standard(0x703, [0x05, 0x00])),
            "invalid heartbeat node 3 (703#0500): heartbeat frame with 2 data bytes; expected 1"
        );
        assert_eq!(
            line(Frame::standard(0x100, [1, 2, 3, 4, 5, 6])),
            "TIME 1988-03-21 18:41:45.985"
        );
    }

    #[test]
    fn remote_and_fd_frames_on_canopen_ids_are_invalid() {
        let rtr = Frame::remote(CanId::standard(0x601).unwrap(), 8).unwrap();
        assert!(matches!(
            decode(&rtr),
            Message::Invalid {
                error: DecodeError::RemoteFrame { .. },
                ..
            }
        ));
        let fd = Frame::fd(CanId::standard(0x181).unwrap(), &[0; 12], false, false).unwrap();
        assert!(matches!(
            decode(&fd),
            Message::Invalid {
                error: DecodeError::FdFrame,
                ..
            }
        ));
    }

    proptest! {
        #[test]
        fn any_frame_decodes_without_panic(frame in any_frame()) {
            let m = decode(&frame);
            let _ = m.to_string();
            let _ = m.node();
            // Every per-service decoder, whatever the id.
            let _ = NmtMessage::decode(&frame);
            let _ = SyncMessage::decode(&frame);
            let _ = Emergency::decode(&frame);
            let _ = TimeOfDay::decode(&frame);
            let _ = SdoRequest::decode(&frame);
            let _ = SdoResponse::decode(&frame);
            let _ = Heartbeat::decode(&frame);
        }

        #[test]
        fn standard_data_frames_on_canopen_ids_decode_to_their_service(id in 0u16..=0x7FF, d in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let frame = Frame::new(CanId::standard(id).unwrap(), &d).unwrap();
            let m = decode(&frame);
            match cob::classify(id) {
                Cob::Other(_) => prop_assert!(matches!(m, Message::Unknown(_))),
                cob => prop_assert!(!matches!(m, Message::Unknown(_)), "{cob} gave {m}"),
            }
        }
    }
}
