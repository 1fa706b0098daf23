//! CiA 402 (IEC 61800-7-201) vocabulary that the controller and the simulated drives both
//! speak: controlword 0x6040 and statusword 0x6041 bits, the power drive system states with
//! their statusword patterns (encoded by a drive, decoded by the controller with the
//! mask/value pairs of BRIEF.md), the device control commands, and the modes of operation
//! 0x6060.

use bitflags::bitflags;

bitflags! {
    /// Controlword 0x6040 (CiA 402 §6.2.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Controlword: u16 {
        /// Bit 0, switch on.
        const SWITCH_ON = 1 << 0;
        /// Bit 1, enable voltage.
        const ENABLE_VOLTAGE = 1 << 1;
        /// Bit 2, quick stop (active low: 0 requests a quick stop).
        const QUICK_STOP = 1 << 2;
        /// Bit 3, enable operation.
        const ENABLE_OPERATION = 1 << 3;
        /// Bit 4, operation-mode specific: new set-point (profile position), homing
        /// operation start (homing).
        const NEW_SET_POINT = 1 << 4;
        /// Bit 5, profile position: change set immediately.
        const CHANGE_IMMEDIATELY = 1 << 5;
        /// Bit 6, profile position: target is relative.
        const RELATIVE = 1 << 6;
        /// Bit 7, fault reset (acts on the rising edge).
        const FAULT_RESET = 1 << 7;
        /// Bit 8, halt.
        const HALT = 1 << 8;
        /// Bit 9, profile position: change on set-point.
        const CHANGE_ON_SET_POINT = 1 << 9;
    }
}

bitflags! {
    /// Statusword 0x6041 (CiA 402 §6.2.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Statusword: u16 {
        /// Bit 0, ready to switch on.
        const READY_TO_SWITCH_ON = 1 << 0;
        /// Bit 1, switched on.
        const SWITCHED_ON = 1 << 1;
        /// Bit 2, operation enabled.
        const OPERATION_ENABLED = 1 << 2;
        /// Bit 3, fault.
        const FAULT = 1 << 3;
        /// Bit 4, voltage enabled (power stage supplied).
        const VOLTAGE_ENABLED = 1 << 4;
        /// Bit 5, quick stop (active low: 0 while a quick stop is active).
        const QUICK_STOP = 1 << 5;
        /// Bit 6, switch on disabled.
        const SWITCH_ON_DISABLED = 1 << 6;
        /// Bit 7, warning.
        const WARNING = 1 << 7;
        /// Bit 9, remote: the controlword is processed.
        const REMOTE = 1 << 9;
        /// Bit 10, target reached.
        const TARGET_REACHED = 1 << 10;
        /// Bit 11, internal limit active (software position limit hit).
        const INTERNAL_LIMIT = 1 << 11;
        /// Bit 12, operation-mode specific: set-point acknowledge (profile position),
        /// homing attained (homing), speed zero (profile velocity), drive follows the
        /// command value (cyclic synchronous position).
        const OPERATION_SPECIFIC_12 = 1 << 12;
        /// Bit 13, operation-mode specific: following error (profile / cyclic synchronous
        /// position), homing error (homing).
        const OPERATION_SPECIFIC_13 = 1 << 13;
    }
}

/// The power drive system states (CiA 402 §6.1, Figure "State machine").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PowerState {
    /// Not ready to switch on: initialising after power-on (and, on the controller's side,
    /// nothing heard yet).
    #[default]
    NotReadyToSwitchOn,
    /// Switch on disabled.
    SwitchOnDisabled,
    /// Ready to switch on.
    ReadyToSwitchOn,
    /// Switched on: power stage on, no torque.
    SwitchedOn,
    /// Operation enabled: the drive follows its mode's demand.
    OperationEnabled,
    /// Quick stop active: decelerating (or holding, per 0x605A).
    QuickStopActive,
    /// Fault reaction active: stopping after a fault.
    FaultReactionActive,
    /// Fault.
    Fault,
}

impl PowerState {
    /// The state bits of the statusword (bits 0, 1, 2, 3, 5, 6).
    pub const fn statusword(self) -> Statusword {
        let bits = match self {
            PowerState::NotReadyToSwitchOn => 0x00,
            PowerState::SwitchOnDisabled => 0x40,
            PowerState::ReadyToSwitchOn => 0x21,
            PowerState::SwitchedOn => 0x23,
            PowerState::OperationEnabled => 0x27,
            PowerState::QuickStopActive => 0x07,
            PowerState::FaultReactionActive => 0x0F,
            PowerState::Fault => 0x08,
        };
        Statusword::from_bits_retain(bits)
    }

    /// The state a statusword shows, by the mask/value table of CiA 402 §6.2.2 (0x6F for
    /// the states told apart by bit 5, 0x4F for the others).
    pub const fn from_statusword(sw: u16) -> PowerState {
        match (sw & 0x4F, sw & 0x6F) {
            (_, 0x27) => PowerState::OperationEnabled,
            (_, 0x23) => PowerState::SwitchedOn,
            (_, 0x21) => PowerState::ReadyToSwitchOn,
            (_, 0x07) => PowerState::QuickStopActive,
            (0x40, _) => PowerState::SwitchOnDisabled,
            (0x0F, _) => PowerState::FaultReactionActive,
            (0x08, _) => PowerState::Fault,
            _ => PowerState::NotReadyToSwitchOn,
        }
    }

    /// True in fault or fault reaction.
    pub const fn is_fault(self) -> bool {
        matches!(self, PowerState::Fault | PowerState::FaultReactionActive)
    }

    /// True when the motor produces torque.
    pub const fn torque_on(self) -> bool {
        matches!(
            self,
            PowerState::OperationEnabled
                | PowerState::QuickStopActive
                | PowerState::FaultReactionActive
        )
    }
}

/// A device control command decoded from the controlword (CiA 402 §6.2.1, Table "Command
/// coding"); fault reset is an edge and is handled apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// xxxx x110: shutdown.
    Shutdown,
    /// xxxx 0111: switch on.
    SwitchOn,
    /// xxxx 1111: switch on + enable operation.
    EnableOperation,
    /// xxxx xx0x: disable voltage.
    DisableVoltage,
    /// xxxx x01x: quick stop.
    QuickStop,
}

impl Command {
    /// The controlword that gives this command (§6.2.1): shutdown 0x06, switch on 0x07,
    /// enable operation 0x0F, disable voltage 0x00, quick stop 0x02.
    pub const fn controlword(self) -> u16 {
        match self {
            Command::Shutdown => 0x06,
            Command::SwitchOn => 0x07,
            Command::EnableOperation => 0x0F,
            Command::DisableVoltage => 0x00,
            Command::QuickStop => 0x02,
        }
    }

    /// The command of a controlword.
    pub const fn decode(cw: u16) -> Command {
        if cw & 0x0002 == 0 {
            Command::DisableVoltage
        } else if cw & 0x0006 == 0x0002 {
            Command::QuickStop
        } else if cw & 0x0007 == 0x0006 {
            Command::Shutdown
        } else if cw & 0x000F == 0x0007 {
            Command::SwitchOn
        } else {
            Command::EnableOperation
        }
    }
}

/// Modes of operation 0x6060 (CiA 402 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 1: profile position.
    ProfilePosition,
    /// 3: profile velocity.
    ProfileVelocity,
    /// 6: homing.
    Homing,
    /// 8: cyclic synchronous position.
    CyclicSyncPosition,
}

impl Mode {
    /// The mode of a 0x6060 value, if supported.
    pub const fn from_i8(v: i8) -> Option<Mode> {
        match v {
            1 => Some(Mode::ProfilePosition),
            3 => Some(Mode::ProfileVelocity),
            6 => Some(Mode::Homing),
            8 => Some(Mode::CyclicSyncPosition),
            _ => None,
        }
    }

    /// The 0x6060 value.
    pub const fn to_i8(self) -> i8 {
        match self {
            Mode::ProfilePosition => 1,
            Mode::ProfileVelocity => 3,
            Mode::Homing => 6,
            Mode::CyclicSyncPosition => 8,
        }
    }

    /// Bit in 0x6502 supported drive modes.
    pub const fn supported_bit(self) -> u32 {
        1 << (self.to_i8() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statusword_patterns_match_the_brief() {
        let check = |s: PowerState, mask: u16, value: u16| {
            assert_eq!(s.statusword().bits() & mask, value, "{s:?}");
        };
        check(PowerState::NotReadyToSwitchOn, 0x4F, 0x00);
        check(PowerState::SwitchOnDisabled, 0x4F, 0x40);
        check(PowerState::ReadyToSwitchOn, 0x6F, 0x21);
        check(PowerState::SwitchedOn, 0x6F, 0x23);
        check(PowerState::OperationEnabled, 0x6F, 0x27);
        check(PowerState::QuickStopActive, 0x6F, 0x07);
        check(PowerState::FaultReactionActive, 0x4F, 0x0F);
        check(PowerState::Fault, 0x4F, 0x08);
    }

    #[test]
    fn statuswords_decode_to_the_state_that_made_them() {
        let all = [
            PowerState::NotReadyToSwitchOn,
            PowerState::SwitchOnDisabled,
            PowerState::ReadyToSwitchOn,
            PowerState::SwitchedOn,
            PowerState::OperationEnabled,
            PowerState::QuickStopActive,
            PowerState::FaultReactionActive,
            PowerState::Fault,
        ];
        for s in all {
            // With unrelated bits set (voltage enabled, warning, remote, target reached).
            let sw = s.statusword().bits() | 0x0690;
            assert_eq!(PowerState::from_statusword(sw), s, "{sw:#06x}");
        }
        assert_eq!(
            PowerState::from_statusword(0x0237),
            PowerState::OperationEnabled
        );
    }

    #[test]
    fn statuswords_seen_from_real_drives_decode() {
        assert_eq!(
            PowerState::from_statusword(0x0000),
            PowerState::NotReadyToSwitchOn
        );
        assert_eq!(
            PowerState::from_statusword(0x0040),
            PowerState::SwitchOnDisabled
        );
        assert_eq!(
            PowerState::from_statusword(0x0231),
            PowerState::ReadyToSwitchOn
        );
        assert_eq!(PowerState::from_statusword(0x0233), PowerState::SwitchedOn);
        assert_eq!(
            PowerState::from_statusword(0x1637),
            PowerState::OperationEnabled
        );
        assert_eq!(
            PowerState::from_statusword(0x0017),
            PowerState::QuickStopActive
        );
        assert_eq!(
            PowerState::from_statusword(0x001F),
            PowerState::FaultReactionActive
        );
        assert_eq!(PowerState::from_statusword(0x0218), PowerState::Fault);
    }

    #[test]
    fn commands_encode_and_decode_per_the_coding_table() {
        for c in [
            Command::Shutdown,
            Command::SwitchOn,
            Command::EnableOperation,
            Command::DisableVoltage,
            Command::QuickStop,
        ] {
            assert_eq!(Command::decode(c.controlword()), c);
        }
        assert_eq!(Command::decode(0x06), Command::Shutdown);
        assert_eq!(Command::decode(0x07), Command::SwitchOn);
        assert_eq!(Command::decode(0x0F), Command::EnableOperation);
        assert_eq!(Command::decode(0x02), Command::QuickStop);
        assert_eq!(Command::decode(0x00), Command::DisableVoltage);
        assert_eq!(Command::decode(0x1F), Command::EnableOperation);
    }
}
