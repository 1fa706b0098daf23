//! takt-drivers: the CAN transport and the CANopen network stack of takt.
//!
//! - [`can`]: frames, timestamps, the [`can::CanBus`] interface, the SocketCAN and
//!   virtual-bus backends, and candump `-L` log files.
//! - [`canopen`]: CiA 301 services (NMT, SYNC, EMCY, heartbeat, SDO, PDO).
//! - [`cia402`]: the CiA 402 drive profile's controlword, statusword, states and modes.
//!
//! ```
//! use takt_drivers::can::{CanBus, CanId, Frame, VirtualBus};
//!
//! let bus = VirtualBus::new();
//! let mut controller = bus.endpoint("controller");
//! let mut device = bus.endpoint("device");
//! let frame = Frame::new(CanId::standard(0x701).unwrap(), &[0x00]).unwrap();
//! controller.try_send(&frame).unwrap();
//! let got = device.try_recv().unwrap().unwrap();
//! assert_eq!(got.frame().unwrap(), &frame);
//! ```
#![deny(missing_docs)]

pub mod can;
pub mod canopen;
pub mod cia402;
