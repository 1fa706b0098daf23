//! What the cycle costs, measured around the controller's step alone (the simulated cell
//! runs in the same loop, untimed):
//!
//! - `cycle/demo`: the demo cell placing parts (3 axes, 2 conveyors, the I/O node, one bus);
//! - `cycle/64-axes-8-buses`: 64 CSP axes on 8 buses, moved eight at a time in eight
//!   parallel branches;
//!
//! then, printed after criterion's own report: per-cycle compute p50 / p99.9 / max for both
//! (over every cycle, and over the cycles the thread was not preempted in),
//! the lockstep factor over real time (controller and simulated demo cell together, by the
//! wall clock and by the thread's CPU time), and
//! the e-stop reaction in cycles (from the cycle that receives the I/O node's PDO with the
//! e-stop chain open to the cycle whose frames carry the quick-stop controlwords).
//!
//! `cargo bench -p takt-controller --bench cycle`

// A benchmark set-up that fails should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use core::time::Duration;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use takt_controller::commands::Command;
use takt_controller::cycle::{CellController, CycleConfig};
use takt_controller::rt::{Histogram, Lockstep};
use takt_controller::safety::CellState;
use takt_controller::status::{Outbox, StartupPhase};
use takt_drivers::can::BusEvent;
use takt_sequences::Program;
use takt_sequences::program::{
    AxisConfig, AxisId, BusConfig, BusId, CounterId, DeviceConfig, DeviceId, DeviceKind,
    IndexRange, Instr, InstrId, MoveTarget, ProgramLimits, ResyncPolicy, StepId, StepInfo,
    StopCategories,
};
use takt_sim::cell::{BusSpec, DeviceKind as SimKind, DeviceSpec, gantry_servo};
use takt_sim::{CellSpec, SimConfig, demo_cell};

fn demo_program() -> Program {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    takt_sequences::check_file(&path)
        .program
        .expect("config/cell.toml checks")
}

fn running(program: &Program, spec: &CellSpec, trace: bool) -> Lockstep {
    let cell = CellController::new(program, CycleConfig::default(), Outbox::none(), None)
        .expect("controller");
    let config = SimConfig {
        seed: 1,
        trace,
        ..SimConfig::default()
    };
    let mut ls = Lockstep::new(spec, config, cell).expect("sim");
    assert!(ls.run_until(Duration::from_secs(20), |l| l.cell.startup()
        == StartupPhase::Ready));
    let now = ls.now();
    ls.cell.command(Command::Start, now);
    assert!(ls.run_until(Duration::from_secs(5), |l| l.cell.state()
        == CellState::Execute));
    ls
}

/// 64 servo axes, 8 on each of 8 buses (node 1..=8), CSP at a 4 ms SYNC; the sequence
/// moves each bus's 8 axes together in its own parallel branch, out and back, and counts.
fn big() -> (Program, CellSpec) {
    let buses = 8;
    let per_bus = 8;
    let mut p = demo_program();
    p.cell_name = "bench-64".into();
    p.buses = (0..buses)
        .map(|b| BusConfig {
            name: format!("can{b}"),
            interface: format!("can{b}"),
            bitrate_bit_s: 1_000_000,
            sync_period_us: 4000,
            sync_counter: false,
            controller_node: 127,
            controller_heartbeat_ms: 100,
            load_ceiling_percent: 70.0,
        })
        .collect();
    let csp = takt_sequences::pdo::profile("servo_csp").unwrap();
    p.devices.clear();
    p.axes.clear();
    for b in 0..buses {
        for k in 0..per_bus {
            let i = b * per_bus + k;
            p.devices.push(DeviceConfig {
                name: format!("drive{i}"),
                bus: BusId(b as u16),
                node: (k + 1) as u8,
                kind: DeviceKind::Servo,
                heartbeat_ms: 100,
                pdos: csp.clone(),
            });
            p.axes.push(AxisConfig {
                name: format!("a{i}"),
                device: DeviceId(i as u16),
                conveyor: false,
                rotary: false,
                counts_per_unit: 1000.0,
                min_position_counts: 0,
                max_position_counts: 600_000,
                max_velocity_counts_s: 1_500_000.0,
                max_acceleration_counts_s2: 10_000_000.0,
                max_jerk_counts_s3: 100_000_000.0,
                following_error_counts: 2000,
                in_position_counts: 100,
                homing_method: 35,
                homing_offset_counts: 0,
                resync: ResyncPolicy::Reread,
                start_position_counts: 0,
            });
        }
    }
    p.inputs.clear();
    p.outputs.clear();
    p.interlocks.clear();
    p.guarded_steps.clear();
    p.cond_ops.clear();
    p.output_writes.clear();
    p.messages.clear();
    p.counters = vec!["passes".into()];
    p.stop_categories = StopCategories::default();
    p.steps = vec![StepInfo {
        path: "bench.move".into(),
        kind: "move",
        location: ("bench".into(), 1, 1),
    }];
    let step = StepId(0);
    p.targets.clear();
    p.code.clear();
    p.branch_starts.clear();
    let join = 1 + 3 * buses as u32;
    p.code.push(Instr::Fork {
        step,
        fork: 0,
        branches: IndexRange {
            start: 0,
            len: buses as u32,
        },
        join: InstrId(join),
    });
    for b in 0..buses {
        p.branch_starts.push(InstrId(p.code.len() as u32));
        for goal in [100_000 + 10_000 * b as i64, 0] {
            let start = p.targets.len() as u32;
            for k in 0..per_bus {
                p.targets.push(MoveTarget {
                    axis: AxisId((b * per_bus + k) as u16),
                    position_counts: goal + 1000 * k as i64,
                    max_velocity_counts_s: 1_500_000.0,
                });
            }
            p.code.push(Instr::Move {
                step,
                targets: IndexRange {
                    start,
                    len: per_bus as u32,
                },
                relative: false,
                coordinated: true,
            });
        }
        p.code.push(Instr::Join { fork: 0 });
    }
    p.code.push(Instr::Count {
        step,
        counter: CounterId(0),
        by: 1,
    });
    p.code.push(Instr::End);
    p.entry = InstrId(0);
    p.limits = ProgramLimits {
        max_threads: 1 + buses as u16,
        repeat_slots: 0,
        retry_slots: 0,
        max_cond_stack: 1,
        max_move_axes: per_bus as u16,
    };
    let spec = CellSpec {
        name: "bench-64".into(),
        buses: (0..buses)
            .map(|b| BusSpec {
                name: format!("can{b}"),
                bitrate: 1_000_000,
            })
            .collect(),
        devices: (0..buses * per_bus)
            .map(|i| DeviceSpec {
                name: format!("drive{i}"),
                node: (i % per_bus + 1) as u8,
                bus: i / per_bus,
                heartbeat_ms: 0,
                power_on_ms: 0,
                kind: SimKind::Drive(gantry_servo(600.0, 1500.0, 10_000.0, None)),
            })
            .collect(),
        world: None,
    };
    (p, spec)
}

/// The step's compute time, over every cycle and over the cycles during which the thread
/// was not preempted (on a machine shared with other work, a cycle that spans a context
/// switch measures the neighbour, and those alone can fill the tail).
#[derive(Default)]
struct Tail {
    unpreempted: Histogram,
    preempted: u64,
}

fn report(name: &str, ls: &Lockstep, tail: &Tail) {
    let h = &ls.compute;
    let u = &tail.unpreempted;
    println!(
        "{name}: {} cycles, compute p50 {:?}, p99.9 {:?}, max {:?}, mean {:?}; trips {}; \
         the {} cycles not preempted: p50 {:?}, p99.9 {:?}, max {:?} ({} preempted)",
        h.count(),
        h.quantile(0.5),
        h.quantile(0.999),
        h.max(),
        h.mean(),
        ls.cell.counters().trips,
        u.count(),
        u.quantile(0.5),
        u.quantile(0.999),
        u.max(),
        tail.preempted
    );
}

/// Involuntary context switches of the calling thread so far.
fn preemptions() -> i64 {
    // SAFETY: rusage is plain data, zeroed is valid; getrusage writes one into it.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_nivcsw
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn timed_steps(ls: &mut Lockstep, tail: &mut Tail, iters: u64) -> Duration {
    let before = ls.compute.total();
    for _ in 0..iters {
        // Read outside the step's own timing.
        let switches = preemptions();
        let compute = ls.step();
        if preemptions() == switches {
            tail.unpreempted.record(compute);
        } else {
            tail.preempted += 1;
        }
    }
    ls.compute.total().saturating_sub(before)
}

fn cycle(c: &mut Criterion) {
    let mut demo = running(&demo_program(), &demo_cell(), false);
    let mut tail = Tail::default();
    c.bench_function("cycle/demo", |b| {
        b.iter_custom(|iters| timed_steps(&mut demo, &mut tail, iters))
    });
    report("cycle/demo", &demo, &tail);
    assert!(demo.cell.trip().is_none(), "{:?}", demo.cell.trip());

    let (program, spec) = big();
    let mut big = running(&program, &spec, false);
    let mut tail = Tail::default();
    c.bench_function("cycle/64-axes-8-buses", |b| {
        b.iter_custom(|iters| timed_steps(&mut big, &mut tail, iters))
    });
    report("cycle/64-axes-8-buses", &big, &tail);
    assert!(big.cell.trip().is_none(), "{:?}", big.cell.trip());
    assert!(big.cell.counter(0) > 0, "the 64 axes moved");

    // Lockstep factor: controller and simulated demo cell together, 120 s simulated; by
    // the wall clock, and by this thread's CPU time (what a core of its own would give on
    // a machine shared with other work).
    let mut ls = running(&demo_program(), &demo_cell(), false);
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    let start = ls.now();
    ls.run_until(Duration::from_secs(120), |_| false);
    let wall = t0.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu0);
    let simulated = ls.now().saturating_since(start);
    println!(
        "lockstep: {:.1} s simulated in {:.3} s: {:.0}x real time; {:.3} s of CPU: {:.0}x ({} parts)",
        simulated.as_secs_f64(),
        wall.as_secs_f64(),
        simulated.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        simulated.as_secs_f64() / cpu.as_secs_f64(),
        ls.cell.counter(0)
    );

    // E-stop reaction, from the bus trace.
    let mut ls = running(&demo_program(), &demo_cell(), true);
    ls.run_until(Duration::from_millis(5321), |_| false);
    let opened = ls.now();
    ls.sim.world_mut().unwrap().set_estop_ok(false);
    ls.run_until(Duration::from_millis(100), |_| false);
    let tick = 1_000_000u64;
    let frames = ls.sim.trace().iter().filter_map(|r| match r.event {
        BusEvent::Frame(f) if f.timestamp >= opened => Some(f),
        _ => None,
    });
    let mut input_seen = None;
    let mut quick_stop = None;
    for f in frames {
        let id = f.frame.standard_id().unwrap_or(0);
        let d = f.frame.data();
        if id == 0x18A && input_seen.is_none() && d.first().is_some_and(|b| b & 0b1000 == 0) {
            // Delivered at the end of its last bit; the controller reads it in the next
            // cycle that starts at or after that.
            input_seen = Some(f.timestamp.as_nanos().div_ceil(tick));
        }
        if input_seen.is_some()
            && (0x201..=0x205).contains(&id)
            && d.len() >= 2
            && matches!(u16::from_le_bytes([d[0], d[1]]), 0x02 | 0x00)
        {
            // Queued at the start of the cycle it was sent in.
            quick_stop = Some(f.timestamp.as_nanos() / tick);
            break;
        }
    }
    let (seen, stop) = (input_seen.unwrap(), quick_stop.unwrap());
    println!(
        "e-stop reaction: input PDO read in cycle {seen}, quick-stop controlwords sent in cycle {stop}: {} cycles",
        stop.saturating_sub(seen)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = cycle
}
criterion_main!(benches);
