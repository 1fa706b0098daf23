//! Commissioning commands: `takt bus scan`, `takt sdo`, `takt nmt`, `takt dump`.

use std::process::ExitCode;

/// `takt bus ...`
#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// List the nodes seen on the bus (boot-up and heartbeat) with their NMT state.
    Scan,
}

/// `takt sdo ...`
#[derive(Debug, clap::Subcommand)]
pub enum SdoCommand {
    /// Read an object.
    Read,
}

/// Arguments of `takt nmt`.
#[derive(Debug, clap::Args)]
pub struct NmtArgs {}

/// Arguments of `takt dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {}

/// Runs `takt bus`.
pub fn bus(_cmd: BusCommand) -> ExitCode {
    ExitCode::FAILURE
}

/// Runs `takt sdo`.
pub fn sdo(_cmd: SdoCommand) -> ExitCode {
    ExitCode::FAILURE
}

/// Runs `takt nmt`.
pub fn nmt(_args: NmtArgs) -> ExitCode {
    ExitCode::FAILURE
}

/// Runs `takt dump`.
pub fn dump(_args: DumpArgs) -> ExitCode {
    ExitCode::FAILURE
}
