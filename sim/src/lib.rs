//! takt-sim: the simulated device set.
#![deny(missing_docs)]

pub mod bus;
pub mod cell;
pub mod cia402;
pub mod device;
pub mod drive;
pub mod engine;
pub mod fault;
pub mod io_node;
pub mod node;
pub mod od;
pub mod physics;
pub mod profile;
pub mod rng;
pub mod sdo_server;
pub mod serve;
pub mod world;

pub use cell::{CellSpec, demo_cell};
pub use engine::{Controller, Sim, SimConfig, SimError, TraceRecord};
pub use fault::{Fault, FaultKind, Scenario};
