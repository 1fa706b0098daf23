//! NMT node control (CiA 301 §7.2.8.3.1) and the NMT states a device reports in its
//! heartbeat (§7.2.8.3.2).
//!
//! The controller, as NMT manager, sends two-byte frames on `0x000`: the command specifier
//! and the target node-ID, 0 addressing every node.

use core::fmt;

use crate::can::Frame;

use super::cob::NMT;
use super::{DecodeError, NodeId, Service};

/// Command specifier "start remote node" (CiA 301 §7.2.8.3.1): to operational.
pub const CS_START: u8 = 0x01;
/// Command specifier "stop remote node" (CiA 301 §7.2.8.3.1): to stopped.
pub const CS_STOP: u8 = 0x02;
/// Command specifier "enter pre-operational" (CiA 301 §7.2.8.3.1).
pub const CS_ENTER_PRE_OPERATIONAL: u8 = 0x80;
/// Command specifier "reset node" (CiA 301 §7.2.8.3.1): application and communication.
pub const CS_RESET_NODE: u8 = 0x81;
/// Command specifier "reset communication" (CiA 301 §7.2.8.3.1).
pub const CS_RESET_COMMUNICATION: u8 = 0x82;

/// An NMT node-control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NmtCommand {
    /// Start remote node: enter operational (PDOs run).
    Start,
    /// Stop remote node: enter stopped (only NMT and error control run).
    Stop,
    /// Enter pre-operational (SDO, no PDOs).
    EnterPreOperational,
    /// Reset the application and communication; the device reboots and sends boot-up.
    ResetNode,
    /// Reset communication parameters; the device sends boot-up.
    ResetCommunication,
}

impl NmtCommand {
    /// The command specifier byte.
    pub const fn specifier(self) -> u8 {
        match self {
            NmtCommand::Start => CS_START,
            NmtCommand::Stop => CS_STOP,
            NmtCommand::EnterPreOperational => CS_ENTER_PRE_OPERATIONAL,
            NmtCommand::ResetNode => CS_RESET_NODE,
            NmtCommand::ResetCommunication => CS_RESET_COMMUNICATION,
        }
    }

    /// The command for a specifier byte.
    pub const fn from_specifier(cs: u8) -> Result<NmtCommand, DecodeError> {
        Ok(match cs {
            CS_START => NmtCommand::Start,
            CS_STOP => NmtCommand::Stop,
            CS_ENTER_PRE_OPERATIONAL => NmtCommand::EnterPreOperational,
            CS_RESET_NODE => NmtCommand::ResetNode,
            CS_RESET_COMMUNICATION => NmtCommand::ResetCommunication,
            other => return Err(DecodeError::UnknownNmtCommand(other)),
        })
    }

    /// The state a device enters on this command (after boot-up, for the resets).
    pub const fn resulting_state(self) -> NmtState {
        match self {
            NmtCommand::Start => NmtState::Operational,
            NmtCommand::Stop => NmtState::Stopped,
            NmtCommand::EnterPreOperational
            | NmtCommand::ResetNode
            | NmtCommand::ResetCommunication => NmtState::PreOperational,
        }
    }
}

impl fmt::Display for NmtCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NmtCommand::Start => "start",
            NmtCommand::Stop => "stop",
            NmtCommand::EnterPreOperational => "enter pre-operational",
            NmtCommand::ResetNode => "reset node",
            NmtCommand::ResetCommunication => "reset communication",
        })
    }
}

/// Whom an NMT command addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NmtTarget {
    /// Every node (node-ID byte 0).
    All,
    /// One node.
    Node(NodeId),
}

impl NmtTarget {
    /// The node-ID byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            NmtTarget::All => 0,
            NmtTarget::Node(node) => node.get(),
        }
    }

    /// True if a device with node-ID `node` must act on a command to this target.
    pub fn addresses(self, node: NodeId) -> bool {
        match self {
            NmtTarget::All => true,
            NmtTarget::Node(n) => n == node,
        }
    }
}

impl fmt::Display for NmtTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NmtTarget::All => f.write_str("all nodes"),
            NmtTarget::Node(node) => write!(f, "node {node}"),
        }
    }
}

/// One NMT node-control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NmtMessage {
    /// The command.
    pub command: NmtCommand,
    /// Whom it addresses.
    pub target: NmtTarget,
}

impl NmtMessage {
    /// `command` to one node.
    pub const fn to_node(command: NmtCommand, node: NodeId) -> NmtMessage {
        NmtMessage {
            command,
            target: NmtTarget::Node(node),
        }
    }

    /// `command` to every node.
    pub const fn to_all(command: NmtCommand) -> NmtMessage {
        NmtMessage {
            command,
            target: NmtTarget::All,
        }
    }

    /// The frame: `000#<cs><node>`.
    pub const fn encode(&self) -> Frame {
        Frame::standard(NMT, [self.command.specifier(), self.target.byte()])
    }

    /// Decodes an NMT frame (id `0x000`, exactly two bytes).
    pub fn decode(frame: &Frame) -> Result<NmtMessage, DecodeError> {
        let data = super::error::data_frame(frame, Service::Nmt, |id| id == NMT)?;
        let &[cs, target] = data else {
            return Err(DecodeError::WrongLength {
                service: Service::Nmt,
                expected: "2",
                got: data.len(),
            });
        };
        let command = NmtCommand::from_specifier(cs)?;
        let target = match target {
            0 => NmtTarget::All,
            n => NmtTarget::Node(NodeId::new(n).map_err(|_| DecodeError::InvalidNmtTarget(n))?),
        };
        Ok(NmtMessage { command, target })
    }
}

impl fmt::Display for NmtMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NMT {} {}", self.command, self.target)
    }
}

/// The NMT state of a device as its heartbeat reports it (CiA 301 §7.2.8.3.2, Table
/// "States of the heartbeat protocol").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NmtState {
    /// 0: boot-up, sent once when the device enters pre-operational after initialisation.
    BootUp,
    /// 4: stopped.
    Stopped,
    /// 5: operational.
    Operational,
    /// 127 (0x7F): pre-operational.
    PreOperational,
}

impl NmtState {
    /// The state byte of a heartbeat.
    pub const fn byte(self) -> u8 {
        match self {
            NmtState::BootUp => 0,
            NmtState::Stopped => 4,
            NmtState::Operational => 5,
            NmtState::PreOperational => 127,
        }
    }

    /// The state for a heartbeat byte's low seven bits.
    pub const fn from_byte(b: u8) -> Result<NmtState, DecodeError> {
        Ok(match b {
            0 => NmtState::BootUp,
            4 => NmtState::Stopped,
            5 => NmtState::Operational,
            127 => NmtState::PreOperational,
            other => return Err(DecodeError::UnknownNmtState(other)),
        })
    }
}

impl fmt::Display for NmtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NmtState::BootUp => "boot-up",
            NmtState::Stopped => "stopped",
            NmtState::Operational => "operational",
            NmtState::PreOperational => "pre-operational",
        })
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
    fn hand_worked_frames() {
        let start5 = NmtMessage::to_node(NmtCommand::Start, node(5)).encode();
        assert_eq!(start5.to_string(), "000#0105");
        assert_eq!(
            NmtMessage::to_all(NmtCommand::ResetCommunication)
                .encode()
                .to_string(),
            "000#8200"
        );
        assert_eq!(
            NmtMessage::to_node(NmtCommand::EnterPreOperational, node(127))
                .encode()
                .to_string(),
            "000#807F"
        );
        assert_eq!(
            NmtMessage::to_node(NmtCommand::Stop, node(1))
                .encode()
                .to_string(),
            "000#0201"
        );
        assert_eq!(
            NmtMessage::to_node(NmtCommand::ResetNode, node(10))
                .encode()
                .to_string(),
            "000#810A"
        );
        assert_eq!(
            NmtMessage::decode(&start5),
            Ok(NmtMessage::to_node(NmtCommand::Start, node(5)))
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(
            NmtMessage::decode(&Frame::standard(0, [0x03, 1])),
            Err(DecodeError::UnknownNmtCommand(3))
        );
        assert_eq!(
            NmtMessage::decode(&Frame::standard(0, [0x01, 0x80])),
            Err(DecodeError::InvalidNmtTarget(0x80))
        );
        assert!(matches!(
            NmtMessage::decode(&Frame::standard(0, [0x01])),
            Err(DecodeError::WrongLength { got: 1, .. })
        ));
        assert!(matches!(
            NmtMessage::decode(&Frame::standard(0x701, [0x01, 1])),
            Err(DecodeError::WrongCobId { id: 0x701, .. })
        ));
    }

    #[test]
    fn states_round_trip() {
        for s in [
            NmtState::BootUp,
            NmtState::Stopped,
            NmtState::Operational,
            NmtState::PreOperational,
        ] {
            assert_eq!(NmtState::from_byte(s.byte()), Ok(s));
        }
        assert_eq!(NmtState::from_byte(1), Err(DecodeError::UnknownNmtState(1)));
    }

    fn any_command() -> impl Strategy<Value = NmtCommand> {
        prop_oneof![
            Just(NmtCommand::Start),
            Just(NmtCommand::Stop),
            Just(NmtCommand::EnterPreOperational),
            Just(NmtCommand::ResetNode),
            Just(NmtCommand::ResetCommunication),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(command in any_command(), target in 0u8..=127) {
            let msg = match target {
                0 => NmtMessage::to_all(command),
                n => NmtMessage::to_node(command, node(n)),
            };
            prop_assert_eq!(NmtMessage::decode(&msg.encode()), Ok(msg));
        }
    }
}
