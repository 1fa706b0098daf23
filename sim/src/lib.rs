//! takt-sim: the simulated device set.
#![deny(missing_docs)]

pub mod cell;
pub mod cia402;
pub mod device;
pub mod drive;
pub mod io_node;
pub mod node;
pub mod od;
pub mod physics;
pub mod profile;
pub mod rng;
pub mod sdo_server;
pub mod world;
