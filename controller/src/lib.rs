//! takt-controller: the controller of a CANopen production cell, and the `takt` command.
#![deny(missing_docs)]

pub mod axis;
pub mod cli;
pub mod commands;
pub mod console;
pub mod control;
pub mod cycle;
pub mod motion;
pub mod resync;
pub mod rt;
pub mod safety;
pub mod sequencer;
pub mod status;
