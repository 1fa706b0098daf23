//! A restarted controller never moves an axis by itself (issues 5 and 8): with
//! `motion_waits_for_start`, start-up configures and starts every device and then waits,
//! drives disabled and axes not homed, until a start; only the start enables the drives and
//! homes the axes. Once in simulated time against the cycle, once against `takt run
//! --no-start` in real time over its control socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::Instant;

use takt_controller::axis::{HomingPhase, PowerState};
use takt_controller::commands::Command;
use takt_controller::control::client::{Client, Connection};
use takt_controller::control::protocol::{CommandName, StatusMsg};
use takt_controller::cycle::{CellController, CycleConfig};
use takt_controller::rt::Lockstep;
use takt_controller::safety::CellState;
use takt_controller::status::{Outbox, StartupPhase};
use takt_drivers::can::BusEvent;
use takt_sim::{SimConfig, demo_cell};

/// Every drive's position, mm, as the simulated world has it.
fn positions_mm(ls: &Lockstep) -> Vec<f64> {
    ls.sim
        .devices()
        .iter()
        .filter_map(|d| d.as_drive().map(|d| d.physical_mm()))
        .collect()
}

#[test]
fn start_up_waits_for_the_start_before_enabling_or_homing_anything() {
    let cfg = CycleConfig {
        motion_waits_for_start: true,
        ..CycleConfig::default()
    };
    let cell = CellController::new(&support::program(), cfg, Outbox::none(), None).unwrap();
    let config = SimConfig {
        seed: 5,
        trace: true,
        ..SimConfig::default()
    };
    let mut ls = Lockstep::new(&demo_cell(), config, cell).unwrap();
    let before = positions_mm(&ls);
    assert!(ls.run_until(Duration::from_secs(10), |l| l.cell.startup()
        == StartupPhase::AwaitingStart));
    // A minute with nobody pressing start: the devices run (SYNC, PDOs, heartbeats), the
    // drives stay disabled, nothing is homed, nothing moves.
    ls.run_until(Duration::from_secs(60), |_| false);
    assert_eq!(ls.cell.startup(), StartupPhase::AwaitingStart);
    assert_eq!(ls.cell.state(), CellState::Stopped);
    for (i, a) in ls.cell.plant.axes.iter().enumerate() {
        assert_ne!(a.power, PowerState::OperationEnabled, "axis {i}");
        assert!(a.conveyor || a.homing != HomingPhase::Homed, "axis {i}");
    }
    for d in ls.sim.devices().iter().filter_map(|d| d.as_drive()) {
        assert_ne!(d.power_state(), PowerState::OperationEnabled);
    }
    assert_eq!(positions_mm(&ls), before, "an axis moved before the start");
    // Every controlword the drives got (RPDO1 of nodes 1..=5) was "disable voltage".
    let controlwords: Vec<u16> = ls
        .sim
        .trace()
        .iter()
        .filter_map(|r| match r.event {
            BusEvent::Frame(f) if (0x201..=0x205).contains(&f.frame.standard_id()?) => {
                let d = f.frame.data();
                Some(u16::from_le_bytes([d[0], d[1]]))
            }
            _ => None,
        })
        .collect();
    assert!(
        controlwords.len() > 1000,
        "the drives' RPDOs run while the cell waits: {}",
        controlwords.len()
    );
    assert!(controlwords.iter().all(|&cw| cw == 0), "{controlwords:x?}");

    // The start enables, homes and runs the cell, which places parts as usual.
    let now = ls.now();
    assert!(ls.cell.command(Command::Start, now));
    assert!(ls.run_until(Duration::from_secs(10), |l| l.cell.state()
        == CellState::Execute));
    assert_eq!(ls.cell.startup(), StartupPhase::Ready);
    support::place(&mut ls, 2, Duration::from_secs(60));
    let truth = ls.sim.world().unwrap().truth();
    assert_eq!((truth.placed, truth.collisions), (2, 0));
}

/// `takt run` of the demo cell in real time with its control socket in a fresh directory.
struct Run {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls the status (at most `polls` times, 20 ms apart) until `pred` holds; before the
/// first cycle there is no status yet.
fn poll(c: &mut Client, polls: usize, pred: impl Fn(&StatusMsg) -> bool) -> StatusMsg {
    for _ in 0..polls {
        if let Ok(s) = c.status()
            && pred(&s)
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the status never showed what was waited for");
}

#[test]
fn takt_run_no_start_in_real_time_moves_nothing_until_the_operator_starts() {
    let dir = std::env::temp_dir().join(format!("takt-start-gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("control.sock");
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let child = Process::new(env!("CARGO_BIN_EXE_takt"))
        .arg("run")
        .arg(&cell)
        .args(support::REAL_TIME_TEST_WATCHDOG)
        .args(["--no-start", "--no-tui", "--socket"])
        .arg(&socket)
        .arg("--journal")
        .arg(dir.join("journal.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _run = Run { child, dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(c) = Client::connect(&socket) {
            break c;
        }
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    let waiting = poll(&mut c, 1000, |s| s.startup == "awaiting_start");
    // Watch it wait: 50 snapshots, a second or more of real time.
    for _ in 0..50 {
        let s = c.status().unwrap();
        assert_eq!(
            (s.cell.as_str(), s.startup.as_str()),
            ("stopped", "awaiting_start")
        );
        for (a, first) in s.axes.iter().zip(&waiting.axes) {
            assert_ne!(a.drive, "operation_enabled", "{}", a.name);
            assert!(a.conveyor || !a.homed, "{} homed before the start", a.name);
            assert_eq!(a.actual, first.actual, "{} moved before the start", a.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.command(CommandName::Start).unwrap().ok);
    let running = poll(&mut c, 1000, |s| s.cell == "execute");
    assert_eq!(running.startup, "ready");
    assert!(
        running
            .axes
            .iter()
            .all(|a| a.homed && a.drive == "operation_enabled")
    );
}
