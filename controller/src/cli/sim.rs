//! `takt sim ...`: the simulated device set (crate takt-sim) from the command line.
//!
//! - `takt sim serve CELL --iface vcan0` serves the simulated cell in real time on a
//!   SocketCAN interface, so takt, can-utils, python-can or python-canopen talk to it
//!   through the kernel.
//! - `takt sim run CELL --duration 10s` runs it on the virtual clock, without a controller,
//!   and reports bus load and ground truth (and writes the candump trace if asked).
//!
//! Both read the cell file (as `takt check` does) and map it onto the simulator's own cell
//! description: buses (interface, bit rate), devices (node-IDs, kinds), each drive's axis
//! (scale, travel, velocity and acceleration limits, following error and in-position
//! windows, where it stands at power-on) and the I/O node's wiring (input bits, active-low
//! inputs, the vacuum output). The world's geometry — conveyor layout, pick and place
//! stations, heights — is the built-in demo world's, which matches config/cell.toml's teach
//! points; a cell file with errors falls back to the built-in demo cell, with a warning.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use takt_drivers::can::SocketCanBus;
use takt_sequences::Program;
use takt_sequences::program::DeviceKind as CellDeviceKind;
use takt_sim::cell::{BusSpec, DeviceKind, DeviceSpec, conveyor, gantry_servo, z_stepper};
use takt_sim::drive::{DriveSpec, MotorSpec};
use takt_sim::world::{InputSignal, InputWiring, WorldSpec};
use takt_sim::{CellSpec, Scenario, Sim, SimConfig, demo_cell};

/// `takt sim ...`
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Serve the simulated cell in real time on a CAN interface (e.g. vcan0).
    Serve(ServeArgs),
    /// Run the simulated cell on the virtual clock, as fast as the CPU allows, without a
    /// controller; print bus load and what happened in the world.
    Run(RunArgs),
    /// Deterministic simulation testing: the controller runs the cell for a shift of parts
    /// under a random, seeded schedule of faults per seed, and the six invariants of
    /// resync are checked; a failing seed prints the command that reproduces it.
    Fuzz(FuzzArgs),
}

/// Arguments of `takt sim fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// The cell file.
    cell: PathBuf,
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Parts per shift.
    #[arg(long, default_value_t = 4)]
    parts: u64,
    /// Print every fault and controller event of each seed (to follow a failing one).
    #[arg(long)]
    events: bool,
    /// Succeed with up to this many failing seeds (a ratchet for known, listed failure
    /// classes; the failures are printed all the same).
    #[arg(long, default_value_t = 0)]
    max_failures: usize,
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
        SimCommand::Fuzz(args) => fuzz_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("takt sim: {message}");
            ExitCode::FAILURE
        }
    }
}

pub mod fuzz;

fn fuzz_command(args: FuzzArgs) -> Result<(), String> {
    let checked = takt_sequences::check_file(&args.cell);
    let program = checked
        .program
        .ok_or_else(|| format!("{} has errors: see `takt check`", args.cell.display()))?;
    let spec = cell(&args.cell, 0)?;
    let started = Instant::now();
    let reports = fuzz::run_batch(
        &args.cell,
        &program,
        &spec,
        args.first,
        args.seeds,
        args.parts,
        args.events,
    );
    let wall = started.elapsed().as_secs_f64();
    let failed = reports.iter().filter(|r| r.failure.is_some()).count();
    let completed = reports
        .iter()
        .filter(|r| r.completed && r.failure.is_none())
        .count();
    let held = reports
        .iter()
        .filter(|r| !r.completed && r.failure.is_none())
        .count();
    let trips: u64 = reports.iter().map(|r| r.trips).sum();
    let resyncs: u64 = reports.iter().map(|r| r.resyncs).sum();
    let simulated_s: f64 = reports.iter().map(|r| r.simulated_ms as f64 / 1000.0).sum();
    println!(
        "{} seeds ({}..{}), {} parts each: {} passed, {} failed; of those passed, {} completed the shift and {} ended in an explained hold; {} trips, {} axis resyncs; {:.0} s simulated in {:.1} s: {:.1} seeds/s",
        reports.len(),
        args.first,
        args.first.saturating_add(args.seeds),
        args.parts,
        reports.len() - failed,
        failed,
        completed,
        held,
        trips,
        resyncs,
        simulated_s,
        wall,
        reports.len() as f64 / wall.max(1e-9)
    );
    if failed > args.max_failures {
        return Err(format!(
            "{failed} seed(s) broke an invariant (at most {} allowed)",
            args.max_failures
        ));
    }
    Ok(())
}

/// The simulator's cell for the cell file at `path` (see the module docs), every device
/// starting with producer heartbeat `heartbeat_ms`.
pub fn cell(path: &Path, heartbeat_ms: u16) -> Result<CellSpec, String> {
    if !path.is_file() {
        return Err(format!("cell file {} not found", path.display()));
    }
    let checked = takt_sequences::check_file(path);
    let mut cell = match &checked.program {
        Some(program) => {
            let cell = from_program(program);
            tracing::info!(
                cell = %path.display(),
                devices = cell.devices.len(),
                "simulating the cell file's buses, devices, axes and wiring"
            );
            cell
        }
        None => {
            tracing::warn!(
                cell = %path.display(),
                "the cell file has errors (see `takt check`): simulating the built-in demo cell"
            );
            demo_cell()
        }
    };
    for d in &mut cell.devices {
        d.heartbeat_ms = heartbeat_ms;
    }
    Ok(cell)
}

/// The simulator's cell for a checked cell file. See the module docs for what is mapped.
fn from_program(program: &Program) -> CellSpec {
    let mut world = WorldSpec::demo();
    let mut devices = Vec::with_capacity(program.devices.len());
    let mut conveyors = Vec::new();
    for (index, d) in program.devices.iter().enumerate() {
        let axis = program.axes.iter().find(|a| a.device.index() == index);
        let kind = match (d.kind, axis) {
            (CellDeviceKind::Io, _) => {
                world.io = d.name.clone();
                DeviceKind::Io
            }
            (kind, Some(axis)) => {
                let scale = axis.counts_per_unit.max(1e-9);
                let mm = |counts: f64| counts / scale;
                let mut spec = match kind {
                    CellDeviceKind::Stepper => z_stepper(),
                    CellDeviceKind::Conveyor => conveyor(mm(axis.max_velocity_counts_s)),
                    _ => gantry_servo(
                        mm((axis.max_position_counts - axis.min_position_counts) as f64),
                        mm(axis.max_velocity_counts_s),
                        mm(axis.max_acceleration_counts_s2),
                        None,
                    ),
                };
                scale_axis(&mut spec, scale);
                if !axis.conveyor {
                    spec.start_mm = mm(axis.start_position_counts as f64);
                    // A switch homing method (CiA 402 19/21) finds its edge at the home
                    // offset; the others need no switch.
                    spec.home_switch_mm = matches!(axis.homing_method, 19 | 21)
                        .then(|| mm(axis.homing_offset_counts as f64));
                    let clamp = |v: f64| v.clamp(0.0, f64::from(u32::MAX)) as u32;
                    spec.defaults.profile_velocity_counts_s = clamp(axis.max_velocity_counts_s);
                    spec.defaults.profile_acceleration_counts_s2 =
                        clamp(axis.max_acceleration_counts_s2);
                    spec.defaults.profile_deceleration_counts_s2 =
                        clamp(axis.max_acceleration_counts_s2);
                    spec.defaults.position_window_counts = clamp(axis.in_position_counts as f64);
                    match axis.name.as_str() {
                        "x" => world.x = d.name.clone(),
                        "y" => world.y = d.name.clone(),
                        "z" => world.z = d.name.clone(),
                        _ => {}
                    }
                } else {
                    conveyors.push((axis.name.clone(), d.name.clone()));
                }
                DeviceKind::Drive(spec)
            }
            // A drive without an axis still answers on the bus, as a servo.
            (_, None) => DeviceKind::Drive(gantry_servo(100.0, 100.0, 1000.0, None)),
        };
        devices.push(DeviceSpec {
            name: d.name.clone(),
            node: d.node,
            bus: d.bus.index(),
            heartbeat_ms: 0,
            power_on_ms: 0,
            kind,
        });
    }
    // The infeed feeds the pick station; the other conveyor carries parts away.
    conveyors.sort_by_key(|(axis, _)| axis != "infeed");
    for (slot, (_, device)) in world.conveyors.iter_mut().zip(conveyors) {
        slot.drive = device;
    }
    let signal = |name: &str| match name {
        "part_at_pick" => Some(InputSignal::PartAtPick),
        "vacuum_ok" => Some(InputSignal::VacuumOk),
        "guard_closed" => Some(InputSignal::GuardClosed),
        "estop_chain_ok" => Some(InputSignal::EstopChainOk),
        "light_curtain_clear" => Some(InputSignal::LightCurtainClear),
        _ => None,
    };
    world.inputs = program
        .inputs
        .iter()
        .filter_map(|i| {
            Some(InputWiring {
                name: i.name.clone(),
                bit: i.bit,
                active_low: i.active_low,
                signal: signal(&i.name)?,
            })
        })
        .collect();
    if let Some(vacuum) = program.outputs.iter().find(|o| o.name == "vacuum_on") {
        world.vacuum_output_bit = vacuum.bit;
    }
    CellSpec {
        name: program.cell_name.clone(),
        buses: program
            .buses
            .iter()
            .map(|b| BusSpec {
                name: b.interface.clone(),
                bitrate: b.bitrate_bit_s,
            })
            .collect(),
        devices,
        world: Some(world),
    }
}

/// Gives `spec`'s mechanics `counts_per_mm` by choosing the travel per motor revolution.
fn scale_axis(spec: &mut DriveSpec, counts_per_mm: f64) {
    let counts_per_rev = match spec.motor {
        MotorSpec::Servo { counts_per_rev, .. } => f64::from(counts_per_rev),
        MotorSpec::Stepper { params, microsteps } => {
            f64::from(params.full_steps_per_rev) * f64::from(microsteps)
        }
    };
    let old = spec.counts_per_mm();
    spec.mm_per_rev = counts_per_rev / counts_per_mm;
    // Defaults were in the old counts: keep their meaning in mm.
    let k = counts_per_mm / old;
    let d = &mut spec.defaults;
    let [fast, slow] = &mut d.homing_speeds_counts_s;
    for v in [
        &mut d.profile_velocity_counts_s,
        &mut d.profile_acceleration_counts_s2,
        &mut d.profile_deceleration_counts_s2,
        &mut d.quick_stop_deceleration_counts_s2,
        &mut d.position_window_counts,
        &mut d.homing_acceleration_counts_s2,
        fast,
        slow,
    ] {
        *v = (f64::from(*v) * k).round() as u32;
    }
    d.velocity_threshold_counts_s = (f64::from(d.velocity_threshold_counts_s) * k)
        .round()
        .min(f64::from(u16::MAX)) as u16;
    if d.following_error_window_counts != u32::MAX {
        d.following_error_window_counts =
            (f64::from(d.following_error_window_counts) * k).round() as u32;
    }
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
        load_scenario(&mut sim, path)?;
    }
    Ok(sim)
}

/// Schedules the faults of the scenario file `path` on `sim`.
pub fn load_scenario(sim: &mut Sim, path: &Path) -> Result<(), String> {
    let scenario = Scenario::load(path).map_err(|e| e.to_string())?;
    sim.load_scenario(&scenario)
        .map_err(|e| format!("scenario {}: {e}", path.display()))
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
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_cell_file_maps_onto_the_simulator() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let cell = cell(&path, 0).unwrap();
        let nodes: Vec<(String, u8)> = cell
            .devices
            .iter()
            .map(|d| (d.name.clone(), d.node))
            .collect();
        assert_eq!(
            nodes,
            [
                ("x_drive".to_owned(), 1),
                ("y_drive".to_owned(), 2),
                ("z_drive".to_owned(), 3),
                ("infeed_drive".to_owned(), 4),
                ("outfeed_drive".to_owned(), 5),
                ("io".to_owned(), 10)
            ]
        );
        assert_eq!(cell.buses[0].bitrate, 1_000_000);
        let drive = |name: &str| match &cell.device(name).unwrap().kind {
            DeviceKind::Drive(d) => d.clone(),
            DeviceKind::Io => panic!("{name} is a drive"),
        };
        assert!((drive("x_drive").counts_per_mm() - 1000.0).abs() < 1e-9);
        assert!((drive("z_drive").counts_per_mm() - 640.0).abs() < 1e-9);
        assert!((drive("infeed_drive").counts_per_mm() - 200.0).abs() < 1e-9);
        assert_eq!(
            drive("z_drive").start_mm,
            150.0,
            "Z stands at home, the top"
        );
        assert_eq!(
            drive("x_drive").defaults.following_error_window_counts,
            2000
        );
        let world = cell.world.as_ref().unwrap();
        assert_eq!((world.x.as_str(), world.z.as_str()), ("x_drive", "z_drive"));
        assert_eq!(world.conveyors[0].drive, "infeed_drive");
        let curtain = world
            .inputs
            .iter()
            .find(|i| i.name == "light_curtain_clear")
            .unwrap();
        assert!(curtain.active_low);
        // And it runs.
        let mut sim = Sim::new(&cell, SimConfig::default()).unwrap();
        sim.run_for(Duration::from_millis(100));
        assert_eq!(sim.bus_stats(0).unwrap().frames, 6, "six boot-ups");
    }
}
