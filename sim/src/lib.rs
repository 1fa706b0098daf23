//! takt-sim: the simulated device set — CiA 402 drives, conveyors and a CiA 401 I/O node
//! that speak real CANopen frames, with motor physics, a world that keeps ground truth, a
//! timed bus model, seeded faults, and a deterministic engine that runs in lockstep with
//! any cycle function.
//!
//! ```
//! use core::time::Duration;
//! use takt_drivers::can::{CanBus, Frame};
//! use takt_sim::{Fault, FaultKind, Sim, SimConfig, demo_cell};
//!
//! let mut sim = Sim::new(&demo_cell(), SimConfig { seed: 7, trace: true, ..SimConfig::default() })?;
//! // Node 3 (the Z stepper) loses 12 full steps after one second.
//! sim.add_fault(Fault::new(FaultKind::LoseSteps { node: 3, steps: 12 }, Duration::from_secs(1), None))?;
//! // The cycle under test gets the controller's end of the bus and the virtual time.
//! sim.step(|bus, _now| {
//!     bus.try_send(&Frame::standard(0x000, [0x01, 0x00])).unwrap(); // NMT start all
//! });
//! sim.run_for(Duration::from_millis(100));
//! println!("{}", sim.trace_text()); // candump -L, byte-identical for the same seed
//! # Ok::<(), takt_sim::SimError>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`od`], [`sdo_server`], [`node`] | CiA 301 device core: object dictionary, SDO server, NMT, heartbeat, EMCY, PDOs |
//! | [`cia402`], [`drive`], [`profile`], [`physics`] | CiA 402 drive: state machine, modes, set-point generator, motor and load |
//! | [`io_node`] | CiA 401 digital I/O node |
//! | [`device`] | one device: core plus profile |
//! | [`world`] | conveyors, parts, gripper, sensors, collisions: the ground truth |
//! | [`bus`] | timed CAN bus: arbitration, worst-case frame times, load, frame faults |
//! | [`fault`] | fault kinds and TOML scenarios |
//! | [`engine`] | the deterministic engine on a virtual clock |
//! | [`serve`] | serving the cell in real time on SocketCAN |
//! | [`cell`] | the simulator's cell description and the demo cell of BRIEF.md |
#![deny(missing_docs)]

pub mod bus;
pub mod cell;
/// The CiA 402 vocabulary lives in the drivers, shared with the controller.
pub use takt_drivers::cia402;
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
