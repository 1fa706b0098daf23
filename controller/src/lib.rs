//! takt-controller: the controller of a CANopen production cell, and the `takt` command.
#![deny(missing_docs)]

pub mod cli;
pub mod motion;
