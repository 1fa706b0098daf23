//! takt-tests: end-to-end tests and the RT-kernel VM harness.

pub mod cell_variant;
pub mod vm;
