//! The one bus interface everything above the transport uses.
//!
//! Receive and send never block: a cycle that polls the bus must never wait on it. A full
//! transmit queue is reported as [`SendError::WouldBlock`] so the caller can count it and
//! retry in a later cycle. Besides frames, a bus reports changes of its error state
//! (ISO 11898-1 fault confinement) as [`BusStateEvent`]s, with the error counters when the
//! backend knows them.

use core::time::Duration;

use super::{Frame, Timestamp, TimestampedFrame};

/// The fault-confinement state of the controller's CAN interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BusState {
    /// Error counters below 96: normal operation.
    #[default]
    ErrorActive,
    /// An error counter reached 96 (warning level).
    ErrorWarning,
    /// An error counter reached 128: the interface only sends passive error flags.
    ErrorPassive,
    /// The transmit error counter passed 255: the interface is off the bus.
    BusOff,
}

/// Transmit and receive error counters (TEC, REC) of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ErrorCounters {
    /// Transmit error counter.
    pub tx: u8,
    /// Receive error counter.
    pub rx: u8,
}

/// A change of the bus's error state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusStateEvent {
    /// The interface entered `state` (warning, passive or bus-off), or returned to
    /// error-active.
    StateChanged {
        /// The new state.
        state: BusState,
        /// Error counters at the change, when the backend reports them.
        counters: Option<ErrorCounters>,
    },
    /// The interface left bus-off and was restarted (automatically or by request).
    Restarted,
    /// Frames were lost because a receive queue overflowed (socket or controller).
    RxOverflow,
    /// A protocol or transceiver error was reported (bit, stuff, form, ACK, CRC errors).
    ProtocolError {
        /// Error counters at the error, when the backend reports them.
        counters: Option<ErrorCounters>,
    },
}

/// Something the bus delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A frame arrived.
    Frame(TimestampedFrame),
    /// The bus's error state changed.
    State {
        /// When the backend saw the change.
        timestamp: Timestamp,
        /// What changed.
        event: BusStateEvent,
    },
}

impl BusEvent {
    /// The frame, if this event is one.
    pub fn frame(&self) -> Option<&Frame> {
        match self {
            BusEvent::Frame(f) => Some(&f.frame),
            BusEvent::State { .. } => None,
        }
    }

    /// When the event happened.
    pub fn timestamp(&self) -> Timestamp {
        match self {
            BusEvent::Frame(f) => f.timestamp,
            BusEvent::State { timestamp, .. } => *timestamp,
        }
    }
}

/// Why a frame was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The transmit queue is full: nothing was sent; try again in a later cycle.
    #[error("transmit queue full (back-pressure); the frame was not sent")]
    WouldBlock,
    /// The interface is off the bus (bus-off) or down.
    #[error("the CAN interface is down or bus-off")]
    BusDown,
    /// The backend cannot send this kind of frame (an FD frame on a classic-only interface).
    #[error("the interface cannot send this frame: {0}")]
    Unsupported(&'static str),
    /// Any other operating-system error.
    #[error("send failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Why receiving failed (other than "nothing there", which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// An operating-system error on the socket.
    #[error("receive failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer endpoints are gone (virtual bus).
    #[error("the bus was closed")]
    Closed,
}

/// A CAN bus as the controller, the simulator and the commissioning tools see it.
pub trait CanBus {
    /// The next received frame or bus-state event, or `None` if nothing is waiting. Never
    /// blocks.
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError>;

    /// Queues `frame` for transmission. Never blocks: a full queue is
    /// [`SendError::WouldBlock`].
    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError>;

    /// The interface name (`can0`, `vcan0`, or the virtual endpoint's name), as candump logs
    /// record it.
    fn interface(&self) -> &str;

    /// Waits until a frame (or bus-state event) can be received or `timeout` has passed,
    /// for loops outside the cycle that would otherwise spin. Returns false only when
    /// nothing arrived. A bus that cannot wait for its peers (the virtual bus, whose peers
    /// run on the same thread) sleeps for `timeout` and says to look.
    fn wait_readable(&self, timeout: Duration) -> std::io::Result<bool> {
        std::thread::sleep(timeout);
        Ok(true)
    }
}

impl<B: CanBus + ?Sized> CanBus for &mut B {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError> {
        (**self).try_recv()
    }
    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError> {
        (**self).try_send(frame)
    }
    fn interface(&self) -> &str {
        (**self).interface()
    }
    fn wait_readable(&self, timeout: Duration) -> std::io::Result<bool> {
        (**self).wait_readable(timeout)
    }
}

impl<B: CanBus + ?Sized> CanBus for Box<B> {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError> {
        (**self).try_recv()
    }
    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError> {
        (**self).try_send(frame)
    }
    fn interface(&self) -> &str {
        (**self).interface()
    }
    fn wait_readable(&self, timeout: Duration) -> std::io::Result<bool> {
        (**self).wait_readable(timeout)
    }
}
