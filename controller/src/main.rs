//! The `takt` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = takt_controller::cli::Cli::parse();
    takt_controller::cli::init_logging(cli.verbose);
    takt_controller::cli::run(cli)
}
