//! `takt sim fuzz`: deterministic simulation testing of the controller. Each seed runs the
//! cell for a shift of parts under a random schedule of faults drawn from that seed (lost
//! steps, reboots, silent devices, dropped and delayed frames, EMCY, bus-off, sensor
//! chatter, e-stops, guard openings), with an operator who presses reset and start after a
//! stop that needs it, and checks the six invariants of issue 7 on every cycle or at the
//! end. The controller and the simulated cell run in lockstep on the virtual clock, so a
//! seed replays byte for byte: a failure prints the one command that reproduces it.

use core::time::Duration;
use std::path::Path;

use takt_drivers::can::Timestamp;
use takt_sequences::Program;
use takt_sim::rng::SimRng;
use takt_sim::{CellSpec, Fault, FaultKind, SimConfig};

use crate::axis::PowerRequest;
use crate::commands::Command;
use crate::cycle::{CellController, CycleConfig};
use crate::resync::ResyncEvent;
use crate::rt::Lockstep;
use crate::safety::{CellState, TripCause};
use crate::status::{EventKind, Inbox, channels};

/// How long an Aborting stop may take before invariant 3 fails: the controller's abort
/// timeout plus half a second.
const SAFE_WITHIN: Duration = Duration::from_millis(3500);
/// How long the operator lets a stop stand before pressing reset (and then start).
const OPERATOR_DELAY: Duration = Duration::from_millis(800);

/// One seed's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Faults injected.
    pub faults: usize,
    /// Trips the controller raised.
    pub trips: u64,
    /// Axis resyncs done.
    pub resyncs: u64,
    /// Parts takt counted.
    pub counted: u64,
    /// Parts the world placed.
    pub placed: u64,
    /// The shift completed (else it ended in an explained hold).
    pub completed: bool,
    /// Simulated time, ms.
    pub simulated_ms: u64,
    /// The first invariant broken, if any.
    pub failure: Option<String>,
}

/// The fault schedule of `seed` for a shift of `parts` parts: one to four faults, each at a
/// random time inside the shift, each with a bounded duration.
pub fn schedule(seed: u64, parts: u64) -> Vec<Fault> {
    // A stream apart from the simulator's own (which the same seed drives).
    let mut rng = SimRng::new(seed ^ 0x7A4B_7F0C_5EED_F022);
    let pick = |rng: &mut SimRng, n: u64| rng.next_u64() % n.max(1);
    let span_ms = 4000 * parts.max(1);
    let count = 1 + pick(&mut rng, 4) as usize;
    let mut faults = Vec::with_capacity(count);
    for _ in 0..count {
        let at = Duration::from_millis(3000 + pick(&mut rng, span_ms));
        let ms = |rng: &mut SimRng, lo: u64, hi: u64| {
            Some(Duration::from_millis(lo + pick(rng, hi - lo)))
        };
        let node = |rng: &mut SimRng| [1u8, 2, 3, 4, 5, 10][pick(rng, 6) as usize];
        let (kind, lasts) = match pick(&mut rng, 12) {
            0 => (
                FaultKind::LoseSteps {
                    node: 3,
                    // Up to 1.75 mm: less than the 2 mm config/cell.toml keeps between
                    // z_safe and the conveyors' clearance. A stepper that loses more while
                    // X/Y move at z_safe hits the belt before any controller could react.
                    steps: 20 + pick(&mut rng, 50) as i32,
                },
                None,
            ),
            1 => (
                FaultKind::NodeReboot {
                    node: node(&mut rng),
                },
                None,
            ),
            2 => (
                FaultKind::NodeSilent {
                    node: node(&mut rng),
                },
                ms(&mut rng, 30, 1500),
            ),
            3 => {
                let n = node(&mut rng);
                (
                    FaultKind::DropFrames {
                        cob_id: 0x180 + u16::from(n),
                        mask: 0x7FF,
                        probability: 0.3 + 0.7 * rng.uniform(),
                    },
                    ms(&mut rng, 10, 400),
                )
            }
            4 => {
                let n = node(&mut rng);
                (
                    FaultKind::DelayFrames {
                        cob_id: 0x180 + u16::from(n),
                        mask: 0x7FF,
                        probability: 0.5,
                        delay_ms: 1.0 + 10.0 * rng.uniform(),
                    },
                    ms(&mut rng, 10, 400),
                )
            }
            5 => (
                FaultKind::Emcy {
                    node: 1 + pick(&mut rng, 5) as u8,
                    code: if rng.chance(0.5) { 0x8611 } else { 0x4210 },
                },
                None,
            ),
            6 => (FaultKind::BusOff { node: None }, ms(&mut rng, 10, 200)),
            7 => (
                FaultKind::BusOff {
                    node: Some(node(&mut rng)),
                },
                ms(&mut rng, 10, 300),
            ),
            8 => (
                FaultKind::SensorChatter {
                    input: if rng.chance(0.5) {
                        "part_at_pick"
                    } else {
                        "vacuum_ok"
                    }
                    .to_owned(),
                    period_ms: 1 + pick(&mut rng, 20),
                },
                ms(&mut rng, 10, 300),
            ),
            9 => (FaultKind::EstopOpen, ms(&mut rng, 100, 1500)),
            10 => (FaultKind::GuardOpen, ms(&mut rng, 100, 1500)),
            _ => (FaultKind::LightCurtainInterrupted, ms(&mut rng, 50, 800)),
        };
        faults.push(Fault::new(kind, at, lasts));
    }
    faults
}

/// True when a fault of this schedule can take a part off the nozzle (the I/O node that
/// drives the vacuum valve rebooted, fell silent or left the bus; the controller's
/// interface, which refreshes the valve output, went bus-off; a gantry drive rebooted and
/// dropped its axis with the part).
fn may_drop_parts(faults: &[Fault]) -> bool {
    faults.iter().any(|f| {
        matches!(
            f.kind,
            FaultKind::NodeReboot { node: 1..=3 | 10 }
                | FaultKind::NodeSilent { node: 10 }
                | FaultKind::BusOff { node: Some(10) }
                | FaultKind::BusOff { node: None }
        )
    })
}

/// The command that reproduces seed `seed`.
pub fn reproduce(cell: &Path, seed: u64, parts: u64) -> String {
    format!(
        "takt sim fuzz {} --seeds 1 --first {seed} --parts {parts}",
        cell.display()
    )
}

/// Runs seed `seed` of the fuzzer on `program` and the simulated `spec` for `parts` parts.
/// With `events`, every controller event and fault edge of the run is printed (to follow
/// a failing seed).
pub fn run_seed(
    program: &Program,
    spec: &CellSpec,
    seed: u64,
    parts: u64,
    events: bool,
) -> SeedReport {
    let faults = schedule(seed, parts);
    let mut report = SeedReport {
        seed,
        faults: faults.len(),
        trips: 0,
        resyncs: 0,
        counted: 0,
        placed: 0,
        completed: false,
        simulated_ms: 0,
        failure: None,
    };
    let (outbox, inbox) = channels(4096, 1);
    let cell = match CellController::new(program, CycleConfig::default(), outbox, None) {
        Ok(c) => c,
        Err(e) => {
            report.failure = Some(format!("controller: {e}"));
            return report;
        }
    };
    let config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let mut ls = match Lockstep::new(spec, config, cell) {
        Ok(l) => l,
        Err(e) => {
            report.failure = Some(format!("simulated cell: {e}"));
            return report;
        }
    };
    for f in &faults {
        if let Err(e) = ls.sim.add_fault(f.clone()) {
            report.failure = Some(format!("fault {f:?}: {e}"));
            return report;
        }
    }
    if events {
        for f in &faults {
            println!(
                "fault at {} ms for {:?} ms: {:?}",
                f.at_ms, f.for_ms, f.kind
            );
        }
    }
    let result = drive(
        &mut ls,
        &inbox,
        program,
        parts,
        &faults,
        events,
        &mut report,
    );
    report.counted = ls.cell.counter(0);
    report.trips = ls.cell.counters().trips;
    report.simulated_ms = ls.now().as_micros() / 1000;
    if let Some(w) = ls.sim.world() {
        report.placed = w.truth().placed;
    }
    if let Err(why) = result {
        report.failure = Some(why);
    }
    report
}

/// The drives of the gantry axes, by name, with their scale and following-error window.
fn gantry(program: &Program) -> Vec<(usize, String, f64, f64)> {
    program
        .axes
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.conveyor)
        .filter_map(|(i, a)| {
            let d = program.devices.get(a.device.index())?;
            let scale = a.counts_per_unit.max(1e-9);
            Some((
                i,
                d.name.clone(),
                scale,
                a.following_error_counts as f64 / scale,
            ))
        })
        .collect()
}

fn drive(
    ls: &mut Lockstep,
    inbox: &Inbox,
    program: &Program,
    parts: u64,
    faults: &[Fault],
    events: bool,
    report: &mut SeedReport,
) -> Result<(), String> {
    let axes = gantry(program);
    let limit = Duration::from_secs(30 + 10 * parts);
    let end = ls.now() + limit;
    // Start-up, then the operator's first start.
    if !ls.run_until(Duration::from_secs(15), |l| {
        l.cell.startup() == crate::status::StartupPhase::Ready
    }) {
        return Err(format!("start-up did not finish: {:?}", ls.cell.startup()));
    }
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    let mut estop_latched = false;
    let mut aborting_since: Option<Timestamp> = None;
    let mut state_since = ls.now();
    let mut last_state = ls.cell.state();
    let mut resuming = false;
    let mut stop_sent = false;
    let mut reported_loss = false;
    let mut last_trip: Option<Timestamp> = None;
    let mut last_press = Timestamp::ZERO;
    while ls.now() < end {
        ls.step();
        let now = ls.now();
        for e in inbox.events.try_iter() {
            if events && !matches!(e.kind, EventKind::Step { .. }) {
                println!("{}", crate::status::describe(program, &e));
            }
            match e.kind {
                EventKind::Resync(ResyncEvent::Axis { .. }) => report.resyncs += 1,
                EventKind::Resync(
                    ResyncEvent::ResumeHeld
                    | ResyncEvent::PersistLost
                    | ResyncEvent::PositionLost { .. },
                ) => reported_loss = true,
                _ => {}
            }
        }
        let state = ls.cell.state();
        if state != last_state {
            // Invariant 4: leaving Starting after a trip, every gantry axis believes what
            // the world says, within its following-error window.
            if last_state == CellState::Starting && state == CellState::Execute && resuming {
                for (i, name, scale, window_mm) in &axes {
                    let believed_mm = ls.cell.plant.axes[*i].demand_counts / scale;
                    let real_mm = ls
                        .sim
                        .device(name)
                        .and_then(|d| d.as_drive())
                        .map_or(believed_mm, |d| d.physical_mm());
                    if (believed_mm - real_mm).abs() > *window_mm {
                        return Err(format!(
                            "invariant 4: after the resync axis {} believes {believed_mm:.3} mm, the world has it at {real_mm:.3} mm",
                            program.axes[*i].name
                        ));
                    }
                }
                resuming = false;
            }
            last_state = state;
            state_since = now;
        }
        let in_state = now.saturating_since(state_since);
        if let Some(trip) = ls.cell.trip() {
            resuming = true;
            last_trip = Some(now);
            if matches!(trip, TripCause::EStopChain | TripCause::EStopCommand) {
                estop_latched = true;
            }
        }
        // Invariant 1: nothing is asked to move while the e-stop is latched, nor after it
        // until the operator's start.
        if estop_latched {
            if state == CellState::Starting {
                estop_latched = false;
            } else if ls.cell.plant.axes.iter().any(|a| {
                state != CellState::Aborting && a.request == PowerRequest::Enable
                    || a.move_owner.is_some()
                    || a.belt != crate::axis::BeltCommand::Stop
            }) {
                return Err(format!(
                    "invariant 1: a motion command while the e-stop is latched ({state:?})"
                ));
            }
        }
        // Invariant 3: a trip ends in a safe state within a bounded time.
        if state == CellState::Aborting {
            let since = *aborting_since.get_or_insert(now);
            if now.saturating_since(since) > SAFE_WITHIN {
                return Err(format!(
                    "invariant 3: still stopping {} ms after {:?}",
                    SAFE_WITHIN.as_millis(),
                    ls.cell.trip()
                ));
            }
        } else {
            aborting_since = None;
        }
        // Invariant 2: no collision.
        if let Some(w) = ls.sim.world() {
            if w.truth().collisions > 0 {
                return Err(format!(
                    "invariant 2: the world recorded a collision ({:?})",
                    w.events().iter().find(|e| matches!(
                        e.kind,
                        takt_sim::world::WorldEventKind::Collision { .. }
                    ))
                ));
            }
        }
        // The operator: reset after a stop that needs it, then start.
        let counted = ls.cell.counter(0);
        let ready =
            in_state >= OPERATOR_DELAY && now.saturating_since(last_press) >= OPERATOR_DELAY;
        let press = match state {
            CellState::Aborted if ready => Some(Command::Reset),
            CellState::Held if ls.cell.resume_held() && ready => Some(Command::Reset),
            CellState::Stopped if counted < parts && ready => Some(Command::Start),
            _ => None,
        };
        if let Some(c) = press {
            last_press = now;
            ls.cell.command(c, now);
        }
        if counted >= parts && !stop_sent {
            stop_sent = true;
            ls.cell.command(Command::Stop, now);
        }
        if stop_sent && state == CellState::Stopped {
            report.completed = true;
            break;
        }
    }
    let truth = ls.sim.world().map(|w| w.truth()).unwrap_or_default();
    if events && let Some(w) = ls.sim.world() {
        for e in w.events().iter().filter(|e| {
            !matches!(
                e.kind,
                takt_sim::world::WorldEventKind::Arrived { .. }
                    | takt_sim::world::WorldEventKind::Picked { .. }
            )
        }) {
            println!(
                "{:10.3} s  world: {:?}",
                e.at.as_micros() as f64 / 1e6,
                e.kind
            );
        }
    }
    let counted = ls.cell.counter(0);
    // Invariant 5: takt counted what the world placed; a part is lost only to a fault that
    // can take it off the nozzle, and then takt said so.
    let in_flight = u64::from(!report.completed);
    if truth.placed < counted || truth.placed > counted + in_flight {
        return Err(format!(
            "invariant 5: takt counted {counted}, the world placed {} ({truth:?})",
            truth.placed
        ));
    }
    if truth.dropped > 0 && !(may_drop_parts(faults) && reported_loss) {
        return Err(format!(
            "invariant 5: {} part(s) dropped {}",
            truth.dropped,
            if may_drop_parts(faults) {
                "and takt did not report it"
            } else {
                "without a fault that could drop one"
            }
        ));
    }
    // Invariant 6: the shift completed, or the cell stands in an explained hold.
    if !report.completed {
        // A fault the operator's reset and start cannot clear keeps tripping the cell: the
        // trip is on the operator's screen at the end of the shift.
        let recent =
            last_trip.is_some_and(|t| ls.now().saturating_since(t) <= Duration::from_secs(5));
        let explained = recent || ls.cell.trip().is_some() || ls.cell.resume_held();
        if !explained {
            return Err(format!(
                "invariant 6: {counted} of {parts} parts after {} s, cell {:?} without a reason, at instruction {} ({})",
                limit.as_secs(),
                ls.cell.state(),
                ls.cell.status_pc(),
                program
                    .code
                    .get(ls.cell.status_pc() as usize)
                    .map_or_else(|| "?".to_owned(), |i| format!("{i:?}"))
            ));
        }
    }
    Ok(())
}

/// Runs `seeds` seeds from `first`; prints a line per failure (with the command that
/// reproduces it) and a summary. The reports come back for the caller's exit status.
pub fn run_batch(
    cell_path: &Path,
    program: &Program,
    spec: &CellSpec,
    first: u64,
    seeds: u64,
    parts: u64,
    events: bool,
) -> Vec<SeedReport> {
    (first..first.saturating_add(seeds))
        .map(|seed| {
            let r = run_seed(program, spec, seed, parts, events);
            if let Some(why) = &r.failure {
                println!("seed {seed} FAILED: {why}");
                println!("  reproduce: {}", reproduce(cell_path, seed, parts));
            }
            r
        })
        .collect()
}
