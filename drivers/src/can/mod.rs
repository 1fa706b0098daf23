//! CAN transport: frame and identifier types, receive timestamps, the bus interface that
//! everything above uses, and its backends (SocketCAN, in-process virtual bus) plus the
//! candump `-L` log format.

mod bus;
pub mod candump;
mod frame;
pub mod socketcan;
#[cfg(any(test, feature = "proptest"))]
pub mod strategy;
mod time;
mod virtual_bus;

pub use self::socketcan::SocketCanBus;
pub use bus::{BusError, BusEvent, BusState, BusStateEvent, CanBus, ErrorCounters, SendError};
pub use frame::{CanId, Frame, FrameError, FrameKind, TimestampedFrame};
pub use time::Timestamp;
pub use virtual_bus::{VirtualBus, VirtualEndpoint};
