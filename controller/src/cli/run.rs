//! `takt run CELL`: run the cell.
//!
//! By default the cell runs on the simulated device set (crate takt-sim, the same mapping
//! of the cell file as `takt sim`), in lockstep with the controller and paced to real time:
//! the demo of the README. `--fast` drops the pacing (simulated time as fast as the CPU
//! allows), `--parts N` stops after N parts, `--seed S` seeds the simulated world (the same
//! command twice gives a byte-identical `--trace`), `--iface can0` runs on a real bus
//! instead. At the end a summary: parts placed by takt's count and by the world's, mean
//! takt time, trips and faults, cycle statistics, bus load.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use takt_drivers::can::{SocketCanBus, Timestamp};
use takt_sequences::Program;
use takt_sim::SimConfig;

use crate::commands::{Command, command_channel};
use crate::control::client::ClientError;
use crate::cycle::{Buses, CellController, CycleConfig};
use crate::rt::{Histogram, Lockstep, RtConfig, RtStats, Wake, prepare, run_periodic};
use crate::safety::CellState;
use crate::status::{WatchdogTrip, channels};

/// The seed used when none is given (printed in the summary).
pub const DEFAULT_SEED: u64 = 1;

/// Arguments of `takt run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The cell file.
    pub cell: PathBuf,
    /// Simulated time as fast as the CPU allows, instead of real time.
    #[arg(long)]
    pub fast: bool,
    /// Stop after this many parts (at the end of the pass that counts the last one).
    #[arg(long, value_name = "N")]
    pub parts: Option<u64>,
    /// Seed of the simulated world.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Write the candump -L trace of the simulated bus here.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Play a fault scenario (config/scenarios/*.toml) on the simulated cell: its faults
    /// at their times from the start of the run, as `takt sim run --scenario` does, to see
    /// or rehearse what the cell does about them.
    #[arg(long, value_name = "FILE", conflicts_with = "iface")]
    pub scenario: Option<PathBuf>,
    /// Run on this CAN interface instead of the simulated cell (the cell's first bus).
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// Stop after this much (simulated) time, e.g. 60s.
    #[arg(long, value_parser = super::sim::parse_duration)]
    pub duration: Option<Duration>,
    /// SCHED_FIFO priority of the cycle thread (real time only).
    #[arg(long, value_name = "1-99", default_value_t = 80)]
    pub priority: u8,
    /// Pin the cycle thread to this CPU.
    #[arg(long, value_name = "N")]
    pub cpu: Option<usize>,
    /// Refuse to run when the RT self-check falls short (see `takt rt-check`) or SCHED_FIFO
    /// and locked memory are refused, instead of warning.
    #[arg(long)]
    pub require_rt: bool,
    /// Do not start the cell: it waits in Stopped, drives disabled and axes not homed,
    /// for an operator's start through the control socket or the console (the service
    /// runs this way; a restart never moves an axis by itself). The default on a real
    /// bus (--iface); on the simulated cell the run starts by itself unless this is given.
    #[arg(long, conflicts_with = "auto_start")]
    pub no_start: bool,
    /// Start the cell without an operator on a real bus (--iface): enable the drives,
    /// home the axes and run the sequence as soon as the devices are configured. For test
    /// rigs and simulated devices behind a CAN interface, never for a cell people work at.
    #[arg(long, requires = "iface")]
    pub auto_start: bool,
    /// The cycle period, 0.25ms to 10ms. SYNC goes out every k cycles, k = the bus's SYNC
    /// period (cell file) over this, so it must divide every bus's SYNC period (the demo
    /// cell's 2ms: 0.25ms, 0.5ms, 1ms or 2ms). The simulated cell runs in lockstep, one
    /// cycle every period, ticking at most every 1ms inside it.
    #[arg(long, value_parser = super::sim::parse_duration, default_value = "1ms")]
    pub period: Duration,
    /// The watchdog time: a cycle whose work ends more than this after its planned
    /// wake-up trips the cell (cycle_overrun, stop category 1), like a PLC's watchdog.
    /// From the period to 1s [default: ten periods]
    #[arg(long, value_parser = super::sim::parse_duration, value_name = "TIME")]
    pub watchdog: Option<Duration>,
    /// The watchdog's sensitivity: this many overruns in a row (cycles whose work ends
    /// after the next wake-up was due) trip the cell.
    #[arg(long, value_name = "N", default_value_t = crate::rt::RtConfig::DEFAULT_WATCHDOG_PERIODS)]
    pub watchdog_overruns: u32,
    /// The control socket and the event journal.
    #[command(flatten)]
    pub control: crate::control::args::ControlArgs,
    /// Show the operator console while the cell runs (the default for a real-time run
    /// whose stdout is a terminal).
    #[arg(long, conflicts_with = "no_tui")]
    pub tui: bool,
    /// Print log lines instead of showing the operator console.
    #[arg(long)]
    pub no_tui: bool,
}

impl RunArgs {
    /// Whether takt run gives the first start itself. Motion — enabling the drives,
    /// homing, the sequence — always waits for a start; the simulated cell gets one at
    /// once (nothing real moves), a real bus only with --auto-start, so that whoever
    /// starts takt on a machine (or systemd restarting it) never moves an axis by
    /// starting the process.
    fn starts_itself(&self) -> bool {
        !self.no_start && (self.iface.is_none() || self.auto_start)
    }

    fn rt(&self) -> RtConfig {
        let defaults = RtConfig::for_period(self.period);
        RtConfig {
            priority: self.priority,
            cpu: self.cpu,
            require_rt: self.require_rt,
            watchdog: self.watchdog.unwrap_or(defaults.watchdog),
            trip_consecutive: self.watchdog_overruns,
            ..defaults
        }
    }
}

/// Runs `body` in a dedicated real-time thread (memory locked, SCHED_FIFO, absolute
/// wake-ups); warnings about what the system refused are printed once.
fn realtime<T: Send>(
    cfg: RtConfig,
    state: T,
    body: impl FnMut(&mut T, Wake) -> bool + Send,
) -> Result<(T, RtStats), String> {
    let mut body = body;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("takt-rt".to_owned())
            .spawn_scoped(s, move || {
                let setup = prepare(&cfg).map_err(|e| e.to_string())?;
                for w in &setup.warnings {
                    tracing::warn!("not real-time: {w}");
                }
                let mut state = state;
                let mut stats = RtStats {
                    fifo: setup.fifo,
                    locked: setup.locked,
                    ..RtStats::default()
                };
                run_periodic(&cfg, &mut stats, |wake| body(&mut state, wake));
                Ok((state, stats))
            })
            .map_err(|e| format!("cannot start the cycle thread: {e}"))?
            .join()
            .map_err(|_| "the cycle thread panicked".to_owned())?
    })
}

fn print_rt(stats: &RtStats) {
    println!(
        "  real time ({}, {}): wake-up latency p50 {:?}, p99.9 {:?}, max {:?}; overruns {} (longest run {}), skipped periods {}{}",
        if stats.fifo {
            "SCHED_FIFO"
        } else {
            "not SCHED_FIFO"
        },
        if stats.locked {
            "memory locked"
        } else {
            "memory not locked"
        },
        stats.latency.quantile(0.5),
        stats.latency.quantile(0.999),
        stats.latency.max(),
        stats.overruns,
        stats.max_consecutive_overruns,
        stats.skipped,
        if stats.tripped {
            "; the overrun trip rule fired"
        } else {
            ""
        }
    );
}

/// Runs `takt run`.
pub fn run(args: RunArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("takt run: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &RunArgs) -> Result<bool, String> {
    if !args.cell.is_file() {
        return Err(format!("cell file {} not found", args.cell.display()));
    }
    let checked = takt_sequences::check_file(&args.cell);
    let Some(program) = checked.program else {
        return Err(format!(
            "{} has errors: run `takt check {}` to see them",
            args.cell.display(),
            args.cell.display()
        ));
    };
    let (outbox, inbox) = channels(4096, 4);
    let (commands, queue) = command_channel(16);
    if args.period < Duration::from_micros(250) || args.period > Duration::from_millis(10) {
        return Err(format!(
            "--period {:?} is outside 0.25ms ..= 10ms",
            args.period
        ));
    }
    let operator = !args.control.no_socket || super::tui::wanted(args.tui, args.no_tui, args.fast);
    if !args.starts_itself() && (args.fast || !operator) {
        return Err(if args.fast {
            "--no-start waits for an operator's start, which a --fast run has no time for: drop --no-start".to_owned()
        } else {
            format!(
                "the cell would wait for an operator's start{} with no way to give it: serve the control socket (drop --no-socket) or show the console (--tui){}",
                if args.no_start {
                    " (--no-start)"
                } else {
                    " (a real bus: --iface)"
                },
                if args.iface.is_some() {
                    ", or pass --auto-start"
                } else {
                    ""
                }
            )
        });
    }
    let cycle = CycleConfig {
        period: args.period,
        motion_waits_for_start: true,
        ..CycleConfig::default()
    };
    let cell =
        CellController::new(&program, cycle, outbox, Some(queue)).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot install a signal handler: {e}"))?;
    }
    // The RT self-check, before anything moves; a real-time run also keeps the CPUs out
    // of deep C-states while it runs (released when the hold drops at the end).
    let _dma_latency = if args.fast {
        None
    } else {
        super::rt_check::at_start(args.priority, args.cpu, args.require_rt)?;
        crate::rt::CpuDmaLatencyHold::zero().ok()
    };
    // The control server's hub takes the cycle's events and status: the journal, the
    // tracing lines, the socket's clients.
    let server = args
        .control
        .start(&program, args.period, inbox, commands.clone())?;
    if super::tui::wanted(args.tui, args.no_tui, args.fast) {
        // The console talks to the cell through the server, in-process, like any operator.
        let mut local = Some(server.local("takt run --tui"));
        super::tui::start_beside(
            move || local.take().ok_or(ClientError::Closed),
            format!("in-process, {}", args.cell.display()),
        );
    }
    let ok = match &args.iface {
        Some(iface) => run_bus(args, iface, cell, &commands, &stop),
        None => run_sim(args, &program, cell, &commands, &stop),
    };
    super::tui::end_beside();
    drop(commands);
    let summary = server.finish();
    if ok.is_ok() {
        println!(
            "  control: {} clients, {} commands, {} journal records; {} events dropped for slow clients",
            summary.clients, summary.commands, summary.journaled, summary.dropped_for_clients
        );
    }
    if summary.journal_errors > 0 {
        eprintln!(
            "takt run: {} journal write or sync failures (see the log)",
            summary.journal_errors
        );
    }
    ok
}

/// Parts counted and when: for the takt time.
#[derive(Debug, Default)]
struct Tally {
    last_count: u64,
    first_at: Option<Timestamp>,
    last_at: Option<Timestamp>,
}

impl Tally {
    fn observe(&mut self, count: u64, now: Timestamp) {
        if count > self.last_count {
            if self.first_at.is_none() {
                self.first_at = Some(now);
            }
            self.last_at = Some(now);
            self.last_count = count;
        }
    }

    fn mean_takt(&self) -> Option<Duration> {
        let (a, b) = (self.first_at?, self.last_at?);
        (self.last_count > 1).then(|| b.saturating_since(a) / (self.last_count - 1) as u32)
    }
}

/// What ends a run.
fn should_end(
    cell: &CellController,
    args: &RunArgs,
    now: Timestamp,
    stop: &AtomicBool,
    stop_sent: &mut bool,
    commands: &crate::commands::CommandSender,
) -> bool {
    let target_reached = args.parts.is_some_and(|n| cell.counter(0) >= n);
    let timed_out = args
        .duration
        .is_some_and(|d| now.saturating_since(Timestamp::ZERO) >= d);
    let asked_to_end = target_reached || timed_out || stop.load(Ordering::Relaxed);
    if asked_to_end && !*stop_sent {
        *stop_sent = true;
        commands.send(Command::Stop);
    }
    // Once the run has its parts, its time or its signal, a trip ends it with the cell
    // aborted. Before, a trip whose fault class resumes by itself (`[resync]
    // auto_resume`) is waited for; while an operator can reset — the console is up, or
    // (in real time) the control socket is served — any trip is; without one the run
    // ends.
    let operator = super::tui::beside_up() || (!args.fast && !args.control.no_socket);
    if cell.state() == CellState::Aborted
        && (asked_to_end || !(operator || cell.resumes_by_itself()))
    {
        return true;
    }
    // Held for an operator (what the interrupted pass had done is gone, `[resync]
    // persist`): without one the run ends there too.
    if cell.state() == CellState::Held && cell.resume_held() && !operator {
        return true;
    }
    *stop_sent && matches!(cell.state(), CellState::Stopped)
        || (*stop_sent && timed_out && stop.load(Ordering::Relaxed))
}

fn run_sim(
    args: &RunArgs,
    program: &Program,
    cell: CellController,
    commands: &crate::commands::CommandSender,
    stop: &AtomicBool,
) -> Result<bool, String> {
    let spec = super::sim::cell(&args.cell, 0)?;
    let config = SimConfig {
        seed: args.seed,
        trace: args.trace.is_some(),
        ..SimConfig::default()
    };
    let mut ls =
        Lockstep::with_period(&spec, config, cell, args.period).map_err(|e| e.to_string())?;
    if let Some(path) = &args.scenario {
        super::sim::load_scenario(&mut ls.sim, path)?;
    }
    if args.starts_itself() {
        commands.send(Command::Start);
    }
    let wall_start = Instant::now();
    let mut tally = Tally::default();
    let mut stop_sent = false;
    // A run that cannot finish (a cell that never starts) still ends.
    let limit = args
        .duration
        .unwrap_or(Duration::from_secs(24 * 3600))
        .saturating_add(Duration::from_secs(60));
    let mut cycle = |ls: &mut Lockstep, trip: Option<WatchdogTrip>| {
        if let Some(watchdog) = trip {
            let now = ls.now();
            ls.cell.trip_overrun(watchdog, now);
        }
        let compute = ls.step();
        if args.fast {
            // The step's own compute time: no second pair of clock reads per cycle.
            ls.cell.timing_mut().record_compute(compute);
        }
        let now = ls.now();
        tally.observe(ls.cell.counter(0), now);
        !(should_end(&ls.cell, args, now, stop, &mut stop_sent, commands)
            || now.saturating_since(Timestamp::ZERO) > limit)
    };
    let mut rt_stats = None;
    if args.fast {
        while cycle(&mut ls, None) {}
    } else {
        // Paced by the real-time loop: one tick of the simulated cell per period.
        let (back, stats) = realtime(args.rt(), ls, |ls, wake| {
            let t0 = Instant::now();
            let go_on = cycle(ls, wake.trip);
            ls.cell
                .timing_mut()
                .record_wakeup(wake.late, args.period, t0.elapsed());
            go_on
        })?;
        ls = back;
        rt_stats = Some(stats);
    }
    let wall = wall_start.elapsed();
    let simulated = ls.now().saturating_since(Timestamp::ZERO);
    let truth = ls.sim.world().map(|w| w.truth());
    super::tui::end_beside();
    println!("takt run {}: seed {}", args.cell.display(), args.seed);
    println!(
        "  parts placed: {} (takt's count), {} (the simulated world's); dropped {}, collisions {}",
        ls.cell.counter(0),
        truth.map_or(0, |t| t.placed),
        truth.map_or(0, |t| t.dropped),
        truth.map_or(0, |t| t.collisions),
    );
    match tally.mean_takt() {
        Some(t) => println!("  mean takt time: {:.3} s", t.as_secs_f64()),
        None => println!("  mean takt time: (fewer than two parts)"),
    }
    println!(
        "  cell: {:?}; trips {}; last trip {:?}; simulated faults {}",
        ls.cell.state(),
        ls.cell.counters().trips,
        ls.cell.trip(),
        ls.sim.fault_log().len()
    );
    print_cycles(&ls.compute, ls.cell.counters(), ls.cell.dropped_events());
    for line in crate::status::describe_buses(ls.cell.program(), ls.cell.status()) {
        println!("  {line}");
    }
    if let Some(stats) = &rt_stats {
        print_rt(stats);
    }
    println!(
        "  time: {:.3} s simulated in {:.3} s ({:.0}x real time)",
        simulated.as_secs_f64(),
        wall.as_secs_f64(),
        simulated.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    );
    for (i, name) in ls.sim.bus_names().enumerate() {
        if let Some(s) = ls.sim.bus_stats(i) {
            println!(
                "  bus {name}: {} frames, load {:.1} % (peak {:.1} % over 100 ms)",
                s.frames,
                100.0 * s.load(),
                100.0 * s.peak_window_load
            );
        }
    }
    let _ = program;
    if let Some(path) = &args.trace {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ls.sim
            .write_trace(BufWriter::new(file))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let counts_agree = truth.is_none_or(|t| t.placed == ls.cell.counter(0));
    Ok(ended_well(&ls.cell, args) && counts_agree)
}

fn print_cycles(h: &Histogram, c: crate::cycle::CycleCounters, dropped: u64) {
    println!(
        "  cycles: {} (compute p50 {:?}, p99.9 {:?}, max {:?}, mean {:?}); frames in {}, out {}, refused {}; events dropped {}",
        c.cycles,
        h.quantile(0.5),
        h.quantile(0.999),
        h.max(),
        h.mean(),
        c.frames_in,
        c.frames_out,
        c.tx_refused,
        dropped
    );
}

fn run_bus(
    args: &RunArgs,
    iface: &str,
    cell: CellController,
    commands: &crate::commands::CommandSender,
    stop: &AtomicBool,
) -> Result<bool, String> {
    let bus =
        SocketCanBus::open(iface).map_err(|e| format!("cannot open CAN interface {iface}: {e}"))?;
    let io = Buses::new(vec![bus]);
    if args.starts_itself() {
        commands.send(Command::Start);
    }
    let mut tally = Tally::default();
    let mut stop_sent = false;
    let ((cell, _io), stats) = realtime(args.rt(), (cell, io), |(cell, io), wake| {
        let t0 = Instant::now();
        let now = wake.now;
        if let Some(watchdog) = wake.trip {
            cell.trip_overrun(watchdog, now);
        }
        cell.step(now, io);
        cell.timing_mut()
            .record_wakeup(wake.late, args.period, t0.elapsed());
        tally.observe(cell.counter(0), now);
        !should_end(cell, args, now, stop, &mut stop_sent, commands)
    })?;
    super::tui::end_beside();
    println!("takt run {} on {iface}", args.cell.display());
    println!("  parts placed: {} (takt's count)", cell.counter(0));
    if let Some(t) = tally.mean_takt() {
        println!("  mean takt time: {:.3} s", t.as_secs_f64());
    }
    println!(
        "  cell: {:?}; trips {}; last trip {:?}",
        cell.state(),
        cell.counters().trips,
        cell.trip()
    );
    print_cycles(&stats.compute, cell.counters(), cell.dropped_events());
    print_rt(&stats);
    for line in crate::status::describe_buses(cell.program(), cell.status()) {
        println!("  {line}");
    }
    Ok(ended_well(&cell, args))
}

/// Whether a run ended as asked: the parts it was asked for placed, and the cell neither
/// aborted nor held for an operator.
fn ended_well(cell: &CellController, args: &RunArgs) -> bool {
    let reached = args.parts.is_none_or(|n| cell.counter(0) >= n);
    let waiting = match cell.state() {
        CellState::Aborted => true,
        CellState::Held => cell.resume_held(),
        _ => false,
    };
    reached && !waiting
}
