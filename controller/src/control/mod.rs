//! The operator's way in: a local control socket speaking a versioned line-delimited JSON
//! protocol ([`protocol`]), a blocking client of it ([`client`]), the server that runs
//! beside the cycle in `takt run`, and the durable event journal.
//!
//! Nothing here runs in the cycle: the cycle's status snapshots and events arrive through
//! its bounded queues, and commands leave through the bounded command queue.

pub mod args;
pub mod client;
pub mod journal;
pub mod protocol;
pub mod server;
pub mod view;
