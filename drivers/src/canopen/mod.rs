//! CANopen CiA 301 network services, as typed frames and small non-blocking state machines.
//!
//! One protocol concept per module, each naming the CiA 301 section it implements:
//!
//! | module | service | COB-ID (predefined connection set) |
//! |---|---|---|
//! | [`cob`] | classification of identifiers | all |
//! | [`nmt`] | network management commands, NMT states | `0x000` |
//! | [`sync`] | SYNC object and producer | `0x080` |
//! | [`emcy`] | emergency messages and error codes | `0x080 + node` |
//! | [`time`] | TIME_OF_DAY | `0x100` |
//! | [`pdo`] | PDO parameters, mapping, payload packing, configuration | `0x180..=0x57F` |
//! | [`sdo`] | SDO abort codes, frames, client | `0x580 + node`, `0x600 + node` |
//! | [`heartbeat`] | heartbeat / boot-up, producer and consumer | `0x700 + node` |
//! | [`message`] | any frame decoded as CANopen, for traffic dumps | all |
//! | [`bus_timing`] | SYNC period and jitter, PDO timing, bus load of a trace | all |
//!
//! The controller is the NMT manager and SDO client; devices (nodes) are SDO servers.
//! Everything that runs inside the controller's cycle takes the time as an argument (`now`),
//! never blocks and never allocates after construction; `Display` impls are for tools.
//!
//! ```
//! use takt_drivers::canopen::{NodeId, nmt::{NmtCommand, NmtMessage}};
//!
//! let node = NodeId::new(5)?;
//! let frame = NmtMessage::to_node(NmtCommand::Start, node).encode();
//! assert_eq!(frame.to_string(), "000#0105");
//! # Ok::<(), takt_drivers::canopen::NodeIdError>(())
//! ```

pub mod bus_timing;
pub mod cob;
pub mod emcy;
pub mod heartbeat;
pub mod message;
pub mod nmt;
pub mod pdo;
pub mod sdo;
pub mod sync;
pub mod time;

mod error;
mod hex;
mod ticker;

pub use cob::{Cob, classify, classify_frame};
pub use emcy::{EmcyCode, EmcyErrorClass, Emergency, ErrorRegister};
pub use error::{DecodeError, Service};
pub use heartbeat::{Heartbeat, HeartbeatConsumer, HeartbeatEvent, HeartbeatProducer};
pub use message::{Message, decode};
pub use nmt::{NmtCommand, NmtMessage, NmtState, NmtTarget};
pub use pdo::{PdoDirection, PdoId, PdoMapping};
pub use sdo::{AbortCode, SdoClient, SdoError};
pub use sync::{SyncCounter, SyncMessage, SyncProducer};
pub use time::TimeOfDay;

/// A CANopen node-ID, `1..=127` (CiA 301: node-ID 0 is reserved for "all nodes" in
/// NMT commands and is not the identity of any device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u8);

/// Why a number is not a node-ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node-ID {0} is out of range: a CANopen node-ID is 1..=127")]
pub struct NodeIdError(pub u8);

impl NodeId {
    /// Lowest node-ID.
    pub const MIN: NodeId = NodeId(1);
    /// Highest node-ID.
    pub const MAX: NodeId = NodeId(127);

    /// The node-ID `raw`, or an error if it is not `1..=127`.
    pub const fn new(raw: u8) -> Result<NodeId, NodeIdError> {
        if raw >= 1 && raw <= 127 {
            Ok(NodeId(raw))
        } else {
            Err(NodeIdError(raw))
        }
    }

    /// The node-ID as a number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Every node-ID, `1..=127`, for bus scans.
    pub fn all() -> impl Iterator<Item = NodeId> {
        (1..=127).map(NodeId)
    }
}

impl TryFrom<u8> for NodeId {
    type Error = NodeIdError;
    fn try_from(raw: u8) -> Result<NodeId, NodeIdError> {
        NodeId::new(raw)
    }
}

impl From<NodeId> for u8 {
    fn from(node: NodeId) -> u8 {
        node.0
    }
}

impl core::fmt::Display for NodeId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_1_to_127() {
        assert_eq!(NodeId::new(0), Err(NodeIdError(0)));
        assert_eq!(NodeId::new(128), Err(NodeIdError(128)));
        assert_eq!(NodeId::new(1).map(NodeId::get), Ok(1));
        assert_eq!(NodeId::new(127).map(NodeId::get), Ok(127));
        assert_eq!(NodeId::all().count(), 127);
        assert_eq!(NodeId::try_from(200u8), Err(NodeIdError(200)));
    }
}
