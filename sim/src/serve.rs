//! Serving a simulated cell in real time on a real interface (`takt sim serve ... --iface
//! vcan0`), so the controller, can-utils, python-can or python-canopen talk to it through the
//! kernel.
//!
//! The loop wakes when a frame arrives or at the next of its ticks (absolute deadlines one
//! tick apart), whichever comes first, takes every frame the interface received, steps the
//! cell with [`Sim::step_external`] to the monotonic time since start — each frame
//! delivered at the time the kernel stamped it with, so a SYNC is latched when it came
//! even if the loop woke late — and sends what the devices queued. The kernel's bus does
//! the timing, so the simulator's bus model is not used here; faults from a scenario still
//! apply on the same schedule. A transmit queue that is full keeps the frames for the next
//! wake-up, in order.

use core::time::Duration;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use takt_drivers::can::{BusError, CanBus, Frame, SendError, Timestamp, TimestampedFrame};

use crate::engine::Sim;

/// Frames the serving loop keeps when the interface refuses them; older ones are dropped.
pub const BACKLOG: usize = 1024;

/// What a serving run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Ticks run (wake-ups for a frame between ticks are not counted).
    pub ticks: u64,
    /// Frames received from the interface.
    pub received: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames the interface refused for good, or that overflowed the backlog.
    pub lost: u64,
    /// Ticks that started more than one tick late (the host could not keep up).
    pub late_ticks: u64,
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Receiving failed.
    #[error("receiving from {iface} failed: {source}")]
    Recv {
        /// The interface.
        iface: String,
        /// Why.
        source: BusError,
    },
}

/// Serves `sim` on `bus` until `stop` is set or `duration` has passed.
pub fn serve<B: CanBus>(
    sim: &mut Sim,
    bus: &mut B,
    duration: Option<Duration>,
    stop: &AtomicBool,
) -> Result<ServeReport, ServeError> {
    let tick = sim.config().tick;
    // The virtual clock goes on from where the cell stands, so serving can resume.
    let base = sim.now();
    let start = Instant::now();
    // Frames are stamped by the kernel on the Unix clock; the cell's clock starts now.
    let start_unix = Timestamp::now_unix();
    let recv_error = |bus: &B, source| ServeError::Recv {
        iface: bus.interface().to_owned(),
        source,
    };
    let mut report = ServeReport::default();
    let mut received: Vec<TimestampedFrame> = Vec::with_capacity(BACKLOG);
    let mut sent: Vec<Frame> = Vec::with_capacity(BACKLOG);
    let mut backlog: VecDeque<Frame> = VecDeque::with_capacity(BACKLOG);
    let mut next_tick = start;
    while !stop.load(Ordering::Relaxed) {
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        let left = next_tick.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            bus.wait_readable(left)
                .map_err(|e| recv_error(bus, BusError::Io(e)))?;
        }
        received.clear();
        while received.len() < BACKLOG {
            match bus.try_recv() {
                Ok(Some(event)) => {
                    if let Some(&frame) = event.frame() {
                        let at = base + event.timestamp().saturating_since(start_unix);
                        received.push(TimestampedFrame {
                            timestamp: at,
                            frame,
                        });
                    }
                }
                Ok(None) => break,
                Err(source) => return Err(recv_error(bus, source)),
            }
        }
        report.received += received.len() as u64;
        sent.clear();
        sim.step_external(base + start.elapsed(), &received, &mut sent);
        for f in sent.drain(..) {
            if backlog.len() >= BACKLOG {
                backlog.pop_front();
                report.lost += 1;
            }
            backlog.push_back(f);
        }
        while let Some(f) = backlog.front() {
            match bus.try_send(f) {
                Ok(()) => {
                    report.sent += 1;
                    backlog.pop_front();
                }
                Err(SendError::WouldBlock) => break,
                Err(_) => {
                    report.lost += 1;
                    backlog.pop_front();
                }
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            report.ticks += 1;
            next_tick += tick;
            if now > next_tick {
                report.late_ticks += 1;
                // Too far behind to catch up: start counting again from now.
                next_tick = now + tick;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, demo_cell};
    use takt_drivers::can::VirtualBus;

    #[test]
    fn serves_boot_ups_and_answers_sdo_in_real_time() {
        let bus = VirtualBus::new();
        let mut cell_end = bus.endpoint("vcan0");
        let mut peer = bus.endpoint("peer");
        let mut sim = Sim::new(&demo_cell(), SimConfig::default()).unwrap();
        let stop = AtomicBool::new(false);
        let report = serve(
            &mut sim,
            &mut cell_end,
            Some(Duration::from_millis(80)),
            &stop,
        )
        .unwrap();
        assert!(report.ticks >= 40, "{report:?}");
        let mut boots = Vec::new();
        while let Some(e) = peer.try_recv().unwrap() {
            boots.push(e.frame().unwrap().to_string());
        }
        assert_eq!(
            boots,
            ["701#00", "702#00", "703#00", "704#00", "705#00", "70A#00"]
        );
        peer.try_send(&Frame::standard(0x60A, [0x40, 0x00, 0x10, 0, 0, 0, 0, 0]))
            .unwrap();
        serve(
            &mut sim,
            &mut cell_end,
            Some(Duration::from_millis(5)),
            &stop,
        )
        .unwrap();
        let answer = peer.try_recv().unwrap().unwrap();
        assert_eq!(answer.frame().unwrap().to_string(), "58A#4300100091010300");
    }
}
