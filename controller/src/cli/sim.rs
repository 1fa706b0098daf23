//! `takt sim ...`: the simulated device set (crate takt-sim) from the command line.
//!
//! - `takt sim serve CELL --iface vcan0` serves the simulated cell in real time on a
//!   SocketCAN interface, so takt, can-utils, python-can or python-canopen talk to it
//!   through the kernel.
//! - `takt sim run CELL --duration 10s` runs it on the virtual clock, without a controller,
//!   and reports bus load and ground truth (and writes the candump trace if asked).
//!
//! Both take the cell file's path, but for now they simulate the built-in demo cell layout
//! of BRIEF.md (nodes 1–3 X/Y/Z, 4 and 5 the conveyors, 10 the I/O node): mapping a parsed
//! cell file onto the simulator's own cell description is not done yet.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use takt_drivers::can::SocketCanBus;
use takt_sim::{CellSpec, Scenario, Sim, SimConfig, demo_cell};

/// `takt sim ...`
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Serve the simulated cell in real time on a CAN interface (e.g. vcan0).
    Serve(ServeArgs),
    /// Run the simulated cell on the virtual clock, as fast as the CPU allows, without a
    /// controller; print bus load and what happened in the world.
    Run(RunArgs),
}

/// What both subcommands share.
#[derive(Debug, clap::Args)]
pub struct CellArgs {
    /// The cell file (the built-in demo cell layout is simulated; see `takt sim --help`).
    cell: PathBuf,
    /// Seed of the simulation's random generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A fault scenario to play (config/scenarios/*.toml).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Producer heartbeat time every device starts with, ms (0x1017; 0 = off until set).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    heartbeat_ms: u16,
}

/// Arguments of `takt sim serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    cell: CellArgs,
    /// The CAN interface to serve on (it must be up).
    #[arg(long, value_name = "IF")]
    iface: String,
    /// Stop after this long (e.g. 30s); default: until SIGINT or SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

/// Arguments of `takt sim run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    cell: CellArgs,
    /// Simulated time to run (e.g. 60s).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Write the candump -L trace of the run here.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

/// Runs `takt sim ...`.
pub fn sim(cmd: SimCommand) -> ExitCode {
    let result = match cmd {
        SimCommand::Serve(args) => serve(args),
        SimCommand::Run(args) => run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("takt sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cell(path: &Path, heartbeat_ms: u16) -> Result<CellSpec, String> {
    if !path.is_file() {
        return Err(format!("cell file {} not found", path.display()));
    }
    tracing::info!(
        cell = %path.display(),
        "simulating the built-in demo cell layout (nodes 1-5 and 10)"
    );
    let mut cell = demo_cell();
    for d in &mut cell.devices {
        d.heartbeat_ms = heartbeat_ms;
    }
    Ok(cell)
}

fn build(args: &CellArgs, trace: bool) -> Result<Sim, String> {
    let spec = cell(&args.cell, args.heartbeat_ms)?;
    let config = SimConfig {
        seed: args.seed,
        trace,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&spec, config).map_err(|e| e.to_string())?;
    if let Some(path) = &args.scenario {
        let scenario = Scenario::load(path).map_err(|e| e.to_string())?;
        sim.load_scenario(&scenario)
            .map_err(|e| format!("scenario {}: {e}", path.display()))?;
    }
    Ok(sim)
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut sim = build(&args.cell, false)?;
    let mut bus = SocketCanBus::open(&args.iface)
        .map_err(|e| format!("cannot open CAN interface {}: {e}", args.iface))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot install a signal handler: {e}"))?;
    }
    tracing::info!(iface = %args.iface, "serving the simulated cell");
    let report = takt_sim::serve::serve(&mut sim, &mut bus, args.duration, &stop)
        .map_err(|e| e.to_string())?;
    tracing::info!(
        ticks = report.ticks,
        received = report.received,
        sent = report.sent,
        lost = report.lost,
        late_ticks = report.late_ticks,
        "stopped serving"
    );
    Ok(())
}

fn run(args: RunArgs) -> Result<(), String> {
    let mut sim = build(&args.cell, args.trace.is_some())?;
    let started = Instant::now();
    sim.run_for(args.duration);
    let wall = started.elapsed();
    println!(
        "simulated {:.3} s in {:.3} s ({:.0}x real time)",
        args.duration.as_secs_f64(),
        wall.as_secs_f64(),
        args.duration.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    );
    for (i, name) in sim.bus_names().enumerate() {
        if let Some(s) = sim.bus_stats(i) {
            println!(
                "bus {name}: {} frames, load {:.1} % (peak {:.1} % over 100 ms), latency mean {:?} max {:?}",
                s.frames,
                100.0 * s.load(),
                100.0 * s.peak_window_load,
                s.mean_latency(),
                s.max_latency
            );
        }
    }
    if let Some(w) = sim.world() {
        let t = w.truth();
        println!(
            "world: {} parts arrived, {} picked, {} placed, {} dropped, {} delivered, {} collisions",
            t.arrived, t.picked, t.placed, t.dropped, t.delivered, t.collisions
        );
    }
    if let Some(path) = &args.trace {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        sim.write_trace(BufWriter::new(file))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `500ms`, `2s`, `1.5min`: a number and a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms or 30s"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "min" => value * 60.0,
        _ => return Err(format!("{text:?}: give a unit, ms, s or min")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}
