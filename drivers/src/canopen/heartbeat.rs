//! Heartbeat and boot-up (CiA 301 §7.2.8.3.2): a device's one-byte NMT state on
//! `0x700 + node`, state 0 meaning boot-up; the controller's own heartbeat producer; and a
//! heartbeat consumer per watched device with a boot deadline.
//!
//! A CiA 301 heartbeat consumer (object 0x1016) only starts timing after the first heartbeat,
//! so a device that never appears would never be noticed. [`HeartbeatConsumer`] adds the
//! controller's own boot deadline for that, and reports a boot-up in mid-run as a distinct
//! event: the device rebooted and lost its configuration and position.
//!
//! Node guarding (remote requests on `0x700 + node`, answered with bit 7 as a toggle) is not
//! used by takt; decoding ignores bit 7 so guarding answers still read as states.

use core::fmt;
use core::time::Duration;

use crate::can::{Frame, Timestamp};

use super::cob::HEARTBEAT;
use super::nmt::NmtState;
use super::ticker::Ticker;
use super::{DecodeError, NodeId, Service};

/// Bit 7 of the state byte: node-guarding toggle, 0 in heartbeats (CiA 301 §7.2.8.3.2).
pub const GUARD_TOGGLE: u8 = 0x80;

/// One heartbeat or boot-up frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The node that sent it.
    pub node: NodeId,
    /// Its NMT state; [`NmtState::BootUp`] for a boot-up message.
    pub state: NmtState,
}

impl Heartbeat {
    /// The boot-up message of `node`.
    pub const fn boot_up(node: NodeId) -> Heartbeat {
        Heartbeat {
            node,
            state: NmtState::BootUp,
        }
    }

    /// True for a boot-up message.
    pub const fn is_boot_up(&self) -> bool {
        matches!(self.state, NmtState::BootUp)
    }

    /// The frame: `0x700 + node`, one byte, the state.
    pub const fn encode(&self) -> Frame {
        Frame::standard(HEARTBEAT + self.node.get() as u16, [self.state.byte()])
    }

    /// Decodes a heartbeat or boot-up frame (one byte on `0x701..=0x77F`).
    pub fn decode(frame: &Frame) -> Result<Heartbeat, DecodeError> {
        let (node, data) = super::error::node_frame(frame, Service::Heartbeat, HEARTBEAT)?;
        let &[byte] = data else {
            return Err(DecodeError::WrongLength {
                service: Service::Heartbeat,
                expected: "1",
                got: data.len(),
            });
        };
        Ok(Heartbeat {
            node,
            state: NmtState::from_byte(byte & !GUARD_TOGGLE)?,
        })
    }
}

impl fmt::Display for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_boot_up() {
            write!(f, "boot-up node {}", self.node)
        } else {
            write!(f, "heartbeat node {}: {}", self.node, self.state)
        }
    }
}

/// The controller's own heartbeat (what devices watch through their 0x1016 so they stop
/// by themselves when the controller dies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatProducer {
    node: NodeId,
    state: NmtState,
    ticker: Ticker,
}

impl HeartbeatProducer {
    /// A producer for the controller's node-ID with `period` (object 0x1017; zero disables
    /// it). It reports [`NmtState::Operational`] until told otherwise.
    pub fn new(node: NodeId, period: Duration) -> HeartbeatProducer {
        HeartbeatProducer {
            node,
            state: NmtState::Operational,
            ticker: Ticker::new(period),
        }
    }

    /// The controller's node-ID.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The heartbeat period.
    pub fn period(&self) -> Duration {
        self.ticker.period()
    }

    /// The state the next heartbeats report.
    pub fn set_state(&mut self, state: NmtState) {
        self.state = state;
    }

    /// The boot-up frame to send once at start-up, before the first heartbeat.
    pub fn boot_up(&self) -> Frame {
        Heartbeat::boot_up(self.node).encode()
    }

    /// The heartbeat due at `now`, if one is. The first poll sends at once.
    pub fn poll(&mut self, now: Timestamp) -> Option<Frame> {
        if !self.ticker.poll(now) {
            return None;
        }
        Some(
            Heartbeat {
                node: self.node,
                state: self.state,
            }
            .encode(),
        )
    }
}

/// What a [`HeartbeatConsumer`] noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeartbeatEvent {
    /// The device sent boot-up: it appeared, and is waiting to be configured. Heartbeat
    /// timing has not started (its producer time may not be configured yet).
    BootUp {
        /// The device.
        node: NodeId,
    },
    /// The first heartbeat arrived: from now on a missing heartbeat is a fault.
    Started {
        /// The device.
        node: NodeId,
        /// Its state.
        state: NmtState,
    },
    /// The NMT state in the heartbeat changed.
    StateChanged {
        /// The device.
        node: NodeId,
        /// The previous state.
        from: NmtState,
        /// The new state.
        to: NmtState,
    },
    /// A boot-up arrived after the device had already been seen, without the controller
    /// having asked for a reset: the device rebooted and lost its configuration and state.
    Rebooted {
        /// The device.
        node: NodeId,
    },
    /// No heartbeat within the consumer time.
    Lost {
        /// The device.
        node: NodeId,
        /// The last state it reported.
        last_state: NmtState,
    },
    /// A heartbeat arrived again after [`HeartbeatEvent::Lost`].
    Recovered {
        /// The device.
        node: NodeId,
        /// Its state.
        state: NmtState,
    },
    /// The device sent nothing (no boot-up, no heartbeat) by the boot deadline.
    BootTimeout {
        /// The device.
        node: NodeId,
    },
}

impl HeartbeatEvent {
    /// The device the event is about.
    pub const fn node(&self) -> NodeId {
        match *self {
            HeartbeatEvent::BootUp { node }
            | HeartbeatEvent::Started { node, .. }
            | HeartbeatEvent::StateChanged { node, .. }
            | HeartbeatEvent::Rebooted { node }
            | HeartbeatEvent::Lost { node, .. }
            | HeartbeatEvent::Recovered { node, .. }
            | HeartbeatEvent::BootTimeout { node } => node,
        }
    }

    /// True for the events that mean the device is not what the controller believes:
    /// lost, rebooted, or never appeared.
    pub const fn is_fault(&self) -> bool {
        matches!(
            self,
            HeartbeatEvent::Rebooted { .. }
                | HeartbeatEvent::Lost { .. }
                | HeartbeatEvent::BootTimeout { .. }
        )
    }
}

impl fmt::Display for HeartbeatEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeartbeatEvent::BootUp { node } => write!(f, "node {node} booted"),
            HeartbeatEvent::Started { node, state } => {
                write!(f, "node {node} heartbeat started ({state})")
            }
            HeartbeatEvent::StateChanged { node, from, to } => {
                write!(f, "node {node} changed from {from} to {to}")
            }
            HeartbeatEvent::Rebooted { node } => {
                write!(f, "node {node} rebooted unexpectedly (boot-up mid-run)")
            }
            HeartbeatEvent::Lost { node, last_state } => {
                write!(f, "node {node} heartbeat lost (last state {last_state})")
            }
            HeartbeatEvent::Recovered { node, state } => {
                write!(f, "node {node} heartbeat recovered ({state})")
            }
            HeartbeatEvent::BootTimeout { node } => {
                write!(f, "node {node} did not appear by its boot deadline")
            }
        }
    }
}

/// Where a consumer is in watching its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet; a fault if nothing comes by `deadline`.
    AwaitingBoot { deadline: Timestamp },
    /// The boot deadline passed; anything that arrives later is still reported.
    BootTimedOut,
    /// Boot-up seen, no heartbeat yet.
    Booted,
    /// Heartbeats arriving; the last one at `last`.
    Watching { last: Timestamp, state: NmtState },
    /// Heartbeats stopped.
    Lost { state: NmtState },
}

/// Watches one device's heartbeat (the controller's side of object 0x1016, plus a boot
/// deadline). Feed it every frame with [`on_frame`](Self::on_frame) and call
/// [`poll`](Self::poll) once per cycle; both return at most one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConsumer {
    node: NodeId,
    timeout: Duration,
    boot_timeout: Duration,
    phase: Phase,
}

impl HeartbeatConsumer {
    /// A consumer for `node` that starts watching at `now`: the device must send boot-up or
    /// a heartbeat within `boot_timeout`, and once its heartbeat started, one at least every
    /// `timeout` (the consumer time; zero disables the heartbeat check, as in 0x1016).
    pub fn new(
        node: NodeId,
        timeout: Duration,
        boot_timeout: Duration,
        now: Timestamp,
    ) -> HeartbeatConsumer {
        HeartbeatConsumer {
            node,
            timeout,
            boot_timeout,
            phase: Phase::AwaitingBoot {
                deadline: now + boot_timeout,
            },
        }
    }

    /// The watched device.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The consumer time.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The last state the device reported, if its heartbeat has started.
    pub fn state(&self) -> Option<NmtState> {
        match self.phase {
            Phase::Watching { state, .. } | Phase::Lost { state } => Some(state),
            Phase::Booted => Some(NmtState::BootUp),
            Phase::AwaitingBoot { .. } | Phase::BootTimedOut => None,
        }
    }

    /// True while heartbeats arrive in time.
    pub fn is_alive(&self) -> bool {
        matches!(self.phase, Phase::Watching { .. })
    }

    /// The controller is about to reset the device (NMT reset node or communication): a
    /// boot-up is expected by `now + boot_timeout` and is not a fault.
    pub fn expect_boot(&mut self, now: Timestamp) {
        self.phase = Phase::AwaitingBoot {
            deadline: now + self.boot_timeout,
        };
    }

    /// Takes in a received frame; frames of other nodes and services are ignored, as are
    /// malformed frames on the device's heartbeat id (a dump shows those).
    pub fn on_frame(&mut self, frame: &Frame, now: Timestamp) -> Option<HeartbeatEvent> {
        if frame.standard_id() != Some(HEARTBEAT + self.node.get() as u16) {
            return None;
        }
        let hb = Heartbeat::decode(frame).ok()?;
        let node = self.node;
        if hb.is_boot_up() {
            let event = match self.phase {
                Phase::AwaitingBoot { .. } | Phase::BootTimedOut => HeartbeatEvent::BootUp { node },
                Phase::Booted | Phase::Watching { .. } | Phase::Lost { .. } => {
                    HeartbeatEvent::Rebooted { node }
                }
            };
            self.phase = Phase::Booted;
            return Some(event);
        }
        let state = hb.state;
        let event = match self.phase {
            Phase::AwaitingBoot { .. } | Phase::BootTimedOut | Phase::Booted => {
                Some(HeartbeatEvent::Started { node, state })
            }
            Phase::Watching { state: from, .. } if from != state => {
                Some(HeartbeatEvent::StateChanged {
                    node,
                    from,
                    to: state,
                })
            }
            Phase::Watching { .. } => None,
            Phase::Lost { .. } => Some(HeartbeatEvent::Recovered { node, state }),
        };
        self.phase = Phase::Watching { last: now, state };
        event
    }

    /// Checks the deadlines at `now`: boot deadline before the device appeared, consumer time
    /// once its heartbeat started. Each fault is reported once.
    pub fn poll(&mut self, now: Timestamp) -> Option<HeartbeatEvent> {
        let node = self.node;
        match self.phase {
            Phase::AwaitingBoot { deadline } if now > deadline => {
                self.phase = Phase::BootTimedOut;
                Some(HeartbeatEvent::BootTimeout { node })
            }
            Phase::Watching { last, state }
                if !self.timeout.is_zero() && now.saturating_since(last) > self.timeout =>
            {
                self.phase = Phase::Lost { state };
                Some(HeartbeatEvent::Lost {
                    node,
                    last_state: state,
                })
            }
            _ => None,
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

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn hb(n: u8, state: NmtState) -> Frame {
        Heartbeat {
            node: node(n),
            state,
        }
        .encode()
    }

    #[test]
    fn hand_worked_frames() {
        assert_eq!(hb(3, NmtState::Operational).to_string(), "703#05");
        assert_eq!(hb(3, NmtState::BootUp).to_string(), "703#00");
        assert_eq!(hb(3, NmtState::PreOperational).to_string(), "703#7F");
        assert_eq!(hb(127, NmtState::Stopped).to_string(), "77F#04");
        assert_eq!(
            Heartbeat::decode(&Frame::standard(0x703, [0x05])),
            Ok(Heartbeat {
                node: node(3),
                state: NmtState::Operational
            })
        );
        // A node-guarding answer with the toggle set still reads as its state.
        assert_eq!(
            Heartbeat::decode(&Frame::standard(0x703, [0x85])).map(|h| h.state),
            Ok(NmtState::Operational)
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(
            Heartbeat::decode(&Frame::standard(0x703, [0x03])),
            Err(DecodeError::UnknownNmtState(3))
        );
        assert!(matches!(
            Heartbeat::decode(&Frame::standard(0x703, [5, 0])),
            Err(DecodeError::WrongLength { got: 2, .. })
        ));
        assert!(matches!(
            Heartbeat::decode(&Frame::standard(0x700, [5])),
            Err(DecodeError::WrongCobId { id: 0x700, .. })
        ));
        assert!(matches!(
            Heartbeat::decode(&Frame::standard(0x780, [5])),
            Err(DecodeError::WrongCobId { id: 0x780, .. })
        ));
    }

    #[test]
    fn producer_sends_boot_up_then_every_period() {
        let mut p = HeartbeatProducer::new(node(100), Duration::from_millis(100));
        assert_eq!(p.boot_up().to_string(), "764#00");
        assert_eq!(p.poll(ms(0)).unwrap().to_string(), "764#05");
        assert_eq!(p.poll(ms(99)), None);
        p.set_state(NmtState::PreOperational);
        assert_eq!(p.poll(ms(100)).unwrap().to_string(), "764#7F");
        let disabled = &mut HeartbeatProducer::new(node(1), Duration::ZERO);
        assert_eq!(disabled.poll(ms(0)), None);
    }

    #[test]
    fn a_device_that_never_appears_is_a_boot_timeout() {
        let mut c = HeartbeatConsumer::new(
            node(4),
            Duration::from_millis(300),
            Duration::from_secs(5),
            ms(1000),
        );
        assert_eq!(c.poll(ms(6000)), None);
        // Other nodes' heartbeats do not count.
        assert_eq!(c.on_frame(&hb(5, NmtState::Operational), ms(6000)), None);
        assert_eq!(
            c.poll(ms(6001)),
            Some(HeartbeatEvent::BootTimeout { node: node(4) })
        );
        assert_eq!(c.poll(ms(7000)), None, "reported once");
        // Turning up late is still reported.
        assert_eq!(
            c.on_frame(&hb(4, NmtState::PreOperational), ms(8000)),
            Some(HeartbeatEvent::Started {
                node: node(4),
                state: NmtState::PreOperational
            })
        );
    }

    #[test]
    fn heartbeat_timing_starts_with_the_first_heartbeat_not_boot_up() {
        let mut c = HeartbeatConsumer::new(
            node(4),
            Duration::from_millis(300),
            Duration::from_secs(5),
            ms(0),
        );
        assert_eq!(
            c.on_frame(&hb(4, NmtState::BootUp), ms(100)),
            Some(HeartbeatEvent::BootUp { node: node(4) })
        );
        // No heartbeat for a long time after boot-up (0x1017 not configured yet): no fault,
        // and the boot deadline no longer applies.
        assert_eq!(c.poll(ms(60_000)), None);
        assert_eq!(
            c.on_frame(&hb(4, NmtState::PreOperational), ms(60_000)),
            Some(HeartbeatEvent::Started {
                node: node(4),
                state: NmtState::PreOperational
            })
        );
        assert!(c.is_alive());
        assert_eq!(
            c.on_frame(&hb(4, NmtState::PreOperational), ms(60_100)),
            None
        );
        assert_eq!(
            c.on_frame(&hb(4, NmtState::Operational), ms(60_200)),
            Some(HeartbeatEvent::StateChanged {
                node: node(4),
                from: NmtState::PreOperational,
                to: NmtState::Operational
            })
        );
        assert_eq!(
            c.poll(ms(60_500)),
            None,
            "exactly the consumer time is in time"
        );
        assert_eq!(
            c.poll(ms(60_501)),
            Some(HeartbeatEvent::Lost {
                node: node(4),
                last_state: NmtState::Operational
            })
        );
        assert_eq!(c.poll(ms(61_000)), None, "reported once");
        assert!(!c.is_alive());
        assert_eq!(
            c.on_frame(&hb(4, NmtState::Operational), ms(61_100)),
            Some(HeartbeatEvent::Recovered {
                node: node(4),
                state: NmtState::Operational
            })
        );
    }

    #[test]
    fn boot_up_mid_run_is_a_reboot_unless_expected() {
        let mut c = HeartbeatConsumer::new(
            node(2),
            Duration::from_millis(300),
            Duration::from_secs(5),
            ms(0),
        );
        c.on_frame(&hb(2, NmtState::Operational), ms(10));
        let ev = c.on_frame(&hb(2, NmtState::BootUp), ms(20));
        assert_eq!(ev, Some(HeartbeatEvent::Rebooted { node: node(2) }));
        assert!(ev.unwrap().is_fault());
        assert_eq!(c.state(), Some(NmtState::BootUp));
        c.on_frame(&hb(2, NmtState::PreOperational), ms(30));
        c.expect_boot(ms(40));
        assert_eq!(
            c.on_frame(&hb(2, NmtState::BootUp), ms(50)),
            Some(HeartbeatEvent::BootUp { node: node(2) })
        );
        c.expect_boot(ms(100));
        assert_eq!(
            c.poll(ms(5101)),
            Some(HeartbeatEvent::BootTimeout { node: node(2) })
        );
    }

    #[test]
    fn malformed_and_remote_frames_are_ignored() {
        let mut c = HeartbeatConsumer::new(
            node(2),
            Duration::from_millis(300),
            Duration::from_secs(5),
            ms(0),
        );
        let rtr = Frame::remote(crate::can::CanId::standard(0x702).unwrap(), 1).unwrap();
        assert_eq!(c.on_frame(&rtr, ms(1)), None);
        assert_eq!(c.on_frame(&Frame::standard(0x702, [9]), ms(1)), None);
        assert_eq!(c.state(), None);
    }

    fn any_state() -> impl Strategy<Value = NmtState> {
        prop_oneof![
            Just(NmtState::BootUp),
            Just(NmtState::Stopped),
            Just(NmtState::Operational),
            Just(NmtState::PreOperational),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(n in 1u8..=127, state in any_state()) {
            let h = Heartbeat { node: node(n), state };
            prop_assert_eq!(Heartbeat::decode(&h.encode()), Ok(h));
        }
    }
}
