//! `takt check` and `takt schema`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `takt check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The cell file (its sequences are found from it).
    pub cell: PathBuf,
}

/// Arguments of `takt schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {}

/// Runs `takt check`.
pub fn check(_args: CheckArgs) -> ExitCode {
    eprintln!("takt check: not built yet");
    ExitCode::FAILURE
}

/// Runs `takt schema`.
pub fn schema(_args: SchemaArgs) -> ExitCode {
    eprintln!("takt schema: not built yet");
    ExitCode::FAILURE
}
