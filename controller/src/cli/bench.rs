//! `takt bench latency`: the wake-up latency of the real-time loop, idle and busy.
//!
//! The loop is the one `takt run` uses ([`crate::rt::run_periodic`]: SCHED_FIFO, locked
//! memory, absolute wake-ups on CLOCK_MONOTONIC), measured the way cyclictest measures:
//! wake-up latency is the time read right after the wake-up minus the absolute time the
//! thread asked to wake at. *Idle* runs an empty cycle; *busy* runs the demo cell and its
//! simulated devices in lockstep in every cycle, as `takt run` does, so the caches and the
//! allocator look like production's. `/dev/cpu_dma_latency` is held at 0 during the run when
//! it can be, as cyclictest holds it, so the two compare on equal terms.
//!
//! The figures depend on the host, not on takt: compare them with `cyclictest` run with the
//! same period, priority and length on the same host (tests/vm/latency.sh does, in the
//! RT-kernel VM), never with absolute numbers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use takt_sim::SimConfig;

use crate::commands::{Command, command_channel};
use crate::cycle::{CellController, CycleConfig};
use crate::rt::{CpuDmaLatencyHold, Histogram, Lockstep, RtConfig, RtStats, prepare, run_periodic};
use crate::status::channels;

/// `takt bench ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Wake-up latency of the real-time loop, idle and with the demo cell in lockstep.
    Latency(LatencyArgs),
}

/// Which loads to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// An empty cycle.
    Idle,
    /// The demo cell and its simulated devices in lockstep, every cycle.
    Busy,
    /// Idle, then busy.
    Both,
}

/// Arguments of `takt bench latency`.
#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Cycles per load (cyclictest's `-l`).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub cycles: u64,
    /// The cycle period (cyclictest's `-i`), 0.25ms to 10ms.
    #[arg(long, value_parser = super::sim::parse_duration, default_value = "1ms")]
    pub period: Duration,
    /// SCHED_FIFO priority (cyclictest's `-p`).
    #[arg(long, value_name = "1-99", default_value_t = 80)]
    pub priority: u8,
    /// Pin the loop to this CPU (cyclictest's `-a`).
    #[arg(long, value_name = "N")]
    pub cpu: Option<usize>,
    /// Which loads to run.
    #[arg(long, value_enum, default_value_t = Load::Both)]
    pub load: Load,
    /// The cell run by the busy load.
    #[arg(long, value_name = "CELL", default_value = "config/cell.toml")]
    pub cell: PathBuf,
}

/// Runs `takt bench ...`.
pub fn bench(cmd: BenchCommand) -> ExitCode {
    match cmd {
        BenchCommand::Latency(args) => match latency(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("takt bench latency: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// One load's measurement.
struct Measured {
    name: &'static str,
    stats: RtStats,
    compute: Option<Histogram>,
}

fn latency(args: &LatencyArgs) -> Result<(), String> {
    if args.cycles == 0 {
        return Err("--cycles must be at least 1".into());
    }
    let cfg = RtConfig {
        priority: args.priority,
        cpu: args.cpu,
        ..RtConfig::for_period(args.period)
    };
    let hold = CpuDmaLatencyHold::zero();
    let mut results = Vec::new();
    if matches!(args.load, Load::Idle | Load::Both) {
        let (_, stats) = measure(&cfg, 0u64, |n, _| {
            *n += 1;
            *n < args.cycles
        })?;
        results.push(Measured {
            name: "idle",
            stats,
            compute: None,
        });
    }
    if matches!(args.load, Load::Busy | Load::Both) {
        let spec = super::sim::cell(&args.cell, 0)?;
        let program = takt_sequences::check_file(&args.cell)
            .program
            .ok_or_else(|| {
                format!(
                    "{} has errors: run `takt check {}` to see them",
                    args.cell.display(),
                    args.cell.display()
                )
            })?;
        let (outbox, inbox) = channels(4096, 4);
        let (commands, queue) = command_channel(16);
        let cell = CellController::new(&program, CycleConfig::default(), outbox, Some(queue))
            .map_err(|e| e.to_string())?;
        let ls = Lockstep::new(&spec, SimConfig::default(), cell).map_err(|e| e.to_string())?;
        commands.send(Command::Start);
        // The events leave through the bounded queue and are drained off the RT thread, as
        // in `takt run`.
        let drain = std::thread::spawn(move || while inbox.events.recv().is_ok() {});
        let mut n = 0u64;
        let (ls, stats) = measure(&cfg, ls, |ls, _| {
            ls.step();
            n += 1;
            n < args.cycles
        })?;
        results.push(Measured {
            name: "busy",
            stats,
            compute: Some(ls.compute.clone()),
        });
        drop(ls);
        let _ = drain.join();
    }
    print(args, &results, hold.is_ok());
    Ok(())
}

/// Runs `body` in a real-time thread set up as `takt run`'s, until it returns false.
fn measure<T: Send>(
    cfg: &RtConfig,
    state: T,
    body: impl FnMut(&mut T, bool) -> bool + Send,
) -> Result<(T, RtStats), String> {
    let mut body = body;
    let cfg = *cfg;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("takt-rt".to_owned())
            .spawn_scoped(s, move || {
                let setup = prepare(&cfg).map_err(|e| e.to_string())?;
                for w in &setup.warnings {
                    eprintln!("takt bench latency: not real-time: {w}");
                }
                let mut state = state;
                let mut stats = RtStats {
                    fifo: setup.fifo,
                    locked: setup.locked,
                    ..RtStats::default()
                };
                // A benchmark measures overruns; it has no cell to trip.
                run_periodic(&cfg, &mut stats, |wake| {
                    body(&mut state, wake.trip.is_some())
                });
                Ok((state, stats))
            })
            .map_err(|e| format!("cannot start the measuring thread: {e}"))?
            .join()
            .map_err(|_| "the measuring thread panicked".to_owned())?
    })
}

fn us(d: Duration) -> u128 {
    d.as_micros()
}

fn print(args: &LatencyArgs, results: &[Measured], held: bool) {
    let rt = results.first().map(|m| &m.stats);
    println!(
        "takt bench latency: {} cycles of {:?}, SCHED_FIFO {} ({}), {}, memory {}, /dev/cpu_dma_latency {}",
        args.cycles,
        args.period,
        args.priority,
        if rt.is_some_and(|s| s.fifo) {
            "granted"
        } else {
            "REFUSED"
        },
        args.cpu
            .map_or_else(|| "not pinned".into(), |c| format!("CPU {c}")),
        if rt.is_some_and(|s| s.locked) {
            "locked"
        } else {
            "NOT locked"
        },
        if held { "held at 0" } else { "not held" }
    );
    println!(
        "{:<6} {:>8} {:>7} {:>7} {:>9} {:>7} {:>9}",
        "load", "cycles", "p50_us", "p99_us", "p99.9_us", "max_us", "overruns"
    );
    for m in results {
        let h = &m.stats.latency;
        println!(
            "{:<6} {:>8} {:>7} {:>7} {:>9} {:>7} {:>9}",
            m.name,
            m.stats.cycles,
            us(h.quantile(0.5)),
            us(h.quantile(0.99)),
            us(h.quantile(0.999)),
            us(h.max()),
            m.stats.overruns
        );
    }
    for m in results {
        if let Some(c) = &m.compute {
            println!(
                "{} compute per cycle (controller + simulated cell): p50 {} us, p99 {} us, max {} us",
                m.name,
                us(c.quantile(0.5)),
                us(c.quantile(0.99)),
                us(c.max())
            );
        }
    }
}
