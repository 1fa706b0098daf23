//! The `takt` command line: one subcommand per job a user comes with.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod check;
mod commissioning;
mod ctl;
mod journal;
mod rt_check;
mod run;
pub mod sim;
mod tui;

/// takt — motion-control coordinator for CANopen production cells.
///
/// Line engineers validate cell and sequence files with `takt check`; commissioning engineers
/// bring up a bus with `takt bus scan`, `takt sdo`, `takt nmt` and `takt dump`.
#[derive(Debug, Parser)]
#[command(
    name = "takt",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where a newcomer starts, by job.
const EXAMPLES: &str = "\
Examples:
  Check the demo cell, its bus load and one pass of its sequence:
    takt check config/cell.toml --dry-run
  Run the demo cell on the simulated devices (real time; --fast for simulated time):
    takt run config/cell.toml
    takt run config/cell.toml --fast --parts 100
  Watch and operate a running cell (e-stop: Space or F1):
    takt tui
  Command it from a script, and read afterwards who did what:
    takt ctl status
    takt ctl estop
    takt journal --kind command,trip --since 1h
  See who is on a bus, read a drive's statusword, watch the traffic:
    takt bus scan --iface can0
    takt sdo read --iface can0 --node 1 0x6041
    takt dump --iface can0
  Run the simulated cell, or serve it on a (virtual) CAN interface:
    takt sim run config/cell.toml --duration 60s
    takt sim serve config/cell.toml --iface vcan0

Each command has its own help: takt help <command>.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a cell file and its sequences; report every error with file, line and column.
    Check(check::CheckArgs),
    /// Print the JSON Schemas of the cell and sequence files (for taplo / Even Better TOML).
    Schema(check::SchemaArgs),
    /// Bus-level commissioning: find the nodes on a bus.
    #[command(subcommand)]
    Bus(commissioning::BusCommand),
    /// Read or write a device's object dictionary through SDO.
    #[command(subcommand)]
    Sdo(commissioning::SdoCommand),
    /// Send an NMT command (start, stop, preop, reset, reset-comm) to one node or all.
    Nmt(commissioning::NmtArgs),
    /// Show live traffic (or a candump log) decoded as CANopen.
    Dump(commissioning::DumpArgs),
    /// Run the cell: on the simulated device set in real time (default), `--fast`, or on a
    /// real bus with `--iface`.
    Run(Box<run::RunArgs>),
    /// The simulated cell: serve it on a CAN interface, or run it on the virtual clock.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Read the event journal (across rotated files): --since, --kind, --follow.
    Journal(journal::JournalArgs),
    /// Talk to a running controller through its control socket: status, watch, estop,
    /// reset, start, hold, resume, stop, step.
    Ctl(ctl::CtlArgs),
    /// The operator console: attach to a running controller through its control socket.
    Tui(tui::TuiArgs),
    /// Check this host for real time (PREEMPT_RT, RLIMIT_RTPRIO/MEMLOCK, CPU isolation,
    /// /dev/cpu_dma_latency) and say how to fix what falls short.
    RtCheck(rt_check::RtCheckArgs),
    /// Measure: `takt bench latency` (wake-up latency of the real-time loop).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Sets up `tracing` output on stderr, journald-friendly (no colours when not a terminal).
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Held back while the console owns the terminal (its log shows the events).
        .with_writer(crate::console::terminal::QuietWhileHeld)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::check(args),
        Command::Schema(args) => check::schema(args),
        Command::Bus(cmd) => commissioning::bus(cmd),
        Command::Sdo(cmd) => commissioning::sdo(cmd),
        Command::Nmt(args) => commissioning::nmt(args),
        Command::Dump(args) => commissioning::dump(args),
        Command::Run(args) => run::run(*args),
        Command::Sim(cmd) => sim::sim(cmd),
        Command::Journal(args) => journal::journal(args),
        Command::Ctl(args) => ctl::ctl(args),
        Command::Tui(args) => tui::tui(args),
        Command::RtCheck(args) => rt_check::rt_check(args),
        Command::Bench(cmd) => bench::bench(cmd),
    }
}
