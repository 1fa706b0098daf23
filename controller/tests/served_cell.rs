//! The simulated cell served the way `takt sim serve` serves it on a real interface
//! ([`Sim::step_external`]: every frame delivered at the time it came, the physics in
//! between), with the controller on a 10 ms cycle whose wake-ups come late by a seeded
//! random amount, as on a host that is not real-time. This is the RT-kernel VM's run
//! (tests/tests/deploy_vm.rs) without the VM: the same code paths, deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;
use std::collections::VecDeque;
use std::path::Path;

use takt_controller::commands::Command;
use takt_controller::cycle::{CellController, CycleConfig, CycleIo};
use takt_controller::safety::CellState;
use takt_controller::status::Outbox;
use takt_drivers::can::{BusEvent, Frame, Timestamp, TimestampedFrame};
use takt_sim::{Sim, SimConfig};

/// The controller's end of the one bus: what reached it, and what it sent this cycle.
#[derive(Default)]
struct Wire {
    to_controller: VecDeque<TimestampedFrame>,
    from_controller: Vec<Frame>,
}

impl CycleIo for Wire {
    fn recv_event(&mut self, _bus: usize) -> Option<BusEvent> {
        self.to_controller.pop_front().map(BusEvent::Frame)
    }

    fn send(&mut self, _bus: usize, frame: &Frame) -> bool {
        self.from_controller.push(*frame);
        true
    }
}

/// config/cell.toml with its SYNC at 10 ms, the VM run's cell.
fn cell_at_10_ms() -> std::path::PathBuf {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let text = std::fs::read_to_string(config.join("cell.toml")).unwrap();
    assert!(
        text.contains("sync_period = \"2 ms\""),
        "config/cell.toml changed"
    );
    let text = text.replacen("sync_period = \"2 ms\"", "sync_period = \"10 ms\"", 1);
    let text = text.replacen(
        "[cell]\n",
        &format!(
            "[cell]\nsequences_dir = {:?}\n",
            config.join("sequences").display().to_string()
        ),
        1,
    );
    let path = std::env::temp_dir().join(format!("takt-served-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `seconds` of the served cell with wake-ups up to `late_us` late; returns the parts
/// placed, or the trip.
fn served(seconds: u64, late_us: u64) -> Result<u64, String> {
    let path = cell_at_10_ms();
    let program = takt_sequences::check_file(&path).program.unwrap();
    let spec = takt_controller::cli::sim::cell(&path, 0).unwrap();
    let _ = std::fs::remove_file(&path);
    let cfg = CycleConfig {
        period: Duration::from_millis(10),
        ..CycleConfig::default()
    };
    let mut cell = CellController::new(&program, cfg, Outbox::none(), None).unwrap();
    let mut sim = Sim::new(&spec, SimConfig::default()).unwrap();
    let mut wire = Wire::default();
    let mut sent = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for k in 0..seconds * 100 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let now_us = k * 10_000 + rng % (late_us + 1);
        // The served cell's own ticks (1 ms) up to the controller's wake-up.
        let mut t = sim.now().as_micros() as u64;
        while t + 1000 <= now_us {
            t += 1000;
            sent.clear();
            sim.step_external(Timestamp::from_micros(t), &[], &mut sent);
            wire.to_controller
                .extend(sent.iter().map(|&frame| TimestampedFrame {
                    timestamp: Timestamp::from_micros(t),
                    frame,
                }));
        }
        let now = Timestamp::from_micros(now_us);
        wire.from_controller.clear();
        cell.step(now, &mut wire);
        if cell.state() == CellState::Stopped && k % 50 == 0 {
            cell.command(Command::Start, now);
        }
        if let Some(trip) = cell.trip() {
            return Err(format!("{trip:?} at {} ms", now_us / 1000));
        }
        // On the wire 20 µs apart (a 1 Mbit/s frame is 50-130 µs; a virtual CAN is faster).
        let frames: Vec<TimestampedFrame> = wire
            .from_controller
            .iter()
            .enumerate()
            .map(|(i, &frame)| TimestampedFrame {
                timestamp: Timestamp::from_micros(now_us + 20 * (i as u64 + 1)),
                frame,
            })
            .collect();
        let end = Timestamp::from_micros(now_us + 20 * (frames.len() as u64 + 1));
        sent.clear();
        sim.step_external(end, &frames, &mut sent);
        wire.to_controller
            .extend(sent.iter().map(|&frame| TimestampedFrame {
                timestamp: end,
                frame,
            }));
    }
    Ok(cell.counter(0) as u64)
}

#[test]
fn the_served_cell_places_parts_with_the_cycle_waking_on_time() {
    let parts = served(30, 0).unwrap();
    assert!(parts >= 5, "{parts} parts in 30 s");
}

#[test]
fn the_served_cell_places_parts_with_wake_ups_up_to_a_millisecond_late() {
    // The RT-kernel VM's guest wakes the cycle 0.2-0.7 ms late at the median: SYNC frames
    // leave off their grid and the drives (0x60C2) stay on it.
    let parts = served(30, 1000).unwrap();
    assert!(parts >= 5, "{parts} parts in 30 s");
}

#[test]
fn the_served_cell_places_parts_with_wake_ups_up_to_three_milliseconds_late() {
    // A third of the period: the drives lock their grid onto the SYNCs (a late one moves it
    // by a 32nd of its offset) and run through the set-points alone, bridging a late one
    // along the set-points' velocity and acceleration. The drive model before shifted its
    // grid for good on a SYNC more than half a period late and started each segment from
    // wherever the demand stood, and Z's stepper stalled here after 11 s.
    let parts = served(60, 3000).unwrap();
    assert!(parts >= 12, "{parts} parts in 60 s");
}
