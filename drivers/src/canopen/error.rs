//! Why a frame is not a valid CANopen message of the service its identifier says.
//!
//! One error type serves every decoder so that a traffic dump (and the cycle, which ignores
//! most of them) handles them alike. Every decoder checks the frame's shape first
//! (11-bit id, classic data frame, length per CiA 301 §7.2) and then its content.

use core::fmt;

use crate::can::{CanId, Frame};

use super::NodeId;

/// The CiA 301 communication services, for error messages and classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Network management, §7.2.8.3.1.
    Nmt,
    /// Synchronisation object, §7.2.5.
    Sync,
    /// Emergency object, §7.2.7.
    Emcy,
    /// Time stamp object, §7.2.6.
    Time,
    /// Process data object, §7.2.2.
    Pdo,
    /// SDO client→server (controller→device), §7.2.4.
    SdoRequest,
    /// SDO server→client (device→controller), §7.2.4.
    SdoResponse,
    /// NMT error control: heartbeat, boot-up and node guarding, §7.2.8.3.2.
    Heartbeat,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Nmt => "NMT",
            Service::Sync => "SYNC",
            Service::Emcy => "EMCY",
            Service::Time => "TIME",
            Service::Pdo => "PDO",
            Service::SdoRequest => "SDO request",
            Service::SdoResponse => "SDO response",
            Service::Heartbeat => "heartbeat",
        })
    }
}

/// Why a frame could not be decoded as the CANopen message its identifier announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// CANopen (CiA 301) uses 11-bit identifiers only.
    #[error("extended identifier {0:08X}: CiA 301 uses 11-bit identifiers")]
    ExtendedId(u32),
    /// CANopen FD (CiA 1301) is not supported; this stack speaks classic CAN.
    #[error("CAN FD frame: this CANopen stack speaks classic CAN only")]
    FdFrame,
    /// A remote frame where the service only uses data frames.
    #[error("remote frame where {service} uses data frames")]
    RemoteFrame {
        /// The service the identifier belongs to.
        service: Service,
    },
    /// The identifier does not belong to the service the decoder was asked for.
    #[error("identifier {id:03X} is not a {service} identifier")]
    WrongCobId {
        /// The service the decoder decodes.
        service: Service,
        /// The identifier of the frame.
        id: u16,
    },
    /// The data length is not one the service allows.
    #[error("{service} frame with {got} data bytes; expected {expected}")]
    WrongLength {
        /// The service.
        service: Service,
        /// What the service allows, for the message.
        expected: &'static str,
        /// The frame's data length.
        got: usize,
    },
    /// An NMT command specifier CiA 301 does not define.
    #[error("unknown NMT command specifier {0:#04X}")]
    UnknownNmtCommand(u8),
    /// An NMT target that is neither 0 (all nodes) nor a node-ID.
    #[error("NMT target {0} is neither 0 (all nodes) nor a node-ID 1..=127")]
    InvalidNmtTarget(u8),
    /// A heartbeat state CiA 301 does not define.
    #[error("unknown NMT state {0:#04X} in heartbeat")]
    UnknownNmtState(u8),
    /// A SYNC counter outside `1..=240`.
    #[error("SYNC counter {0} outside 1..=240")]
    InvalidSyncCounter(u8),
    /// A TIME_OF_DAY whose milliseconds are not within one day.
    #[error("TIME_OF_DAY with {0} ms after midnight (a day has 86400000)")]
    InvalidTimeOfDay(u32),
    /// An SDO command specifier CiA 301 does not define (for this direction).
    #[error("unknown SDO command specifier in command byte {0:#04X}")]
    UnknownSdoCommand(u8),
    /// An SDO block transfer frame; block transfer is not implemented.
    #[error("SDO block transfer (command byte {0:#04X}) is not supported")]
    SdoBlockTransfer(u8),
}

/// The data of `frame` if it is a classic data frame with an 11-bit id that `id_ok` accepts.
pub(crate) fn data_frame(
    frame: &Frame,
    service: Service,
    id_ok: impl FnOnce(u16) -> bool,
) -> Result<&[u8], DecodeError> {
    let id = match frame.id() {
        CanId::Standard(id) => id,
        CanId::Extended(id) => return Err(DecodeError::ExtendedId(id)),
    };
    if !id_ok(id) {
        return Err(DecodeError::WrongCobId { service, id });
    }
    if frame.is_fd() {
        return Err(DecodeError::FdFrame);
    }
    if frame.is_remote() {
        return Err(DecodeError::RemoteFrame { service });
    }
    Ok(frame.data())
}

/// The node and data of a node-specific object on `base + node`.
pub(crate) fn node_frame(
    frame: &Frame,
    service: Service,
    base: u16,
) -> Result<(NodeId, &[u8]), DecodeError> {
    let mut node = None;
    let data = data_frame(frame, service, |id| {
        node = id
            .checked_sub(base)
            .and_then(|n| u8::try_from(n).ok())
            .and_then(|n| NodeId::new(n).ok());
        node.is_some()
    })?;
    match node {
        Some(node) => Ok((node, data)),
        // data_frame only succeeds when the closure found a node.
        None => Err(DecodeError::WrongCobId { service, id: base }),
    }
}
