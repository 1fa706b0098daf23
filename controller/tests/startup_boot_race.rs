//! Start-up when the devices power up together with takt (as `takt sim serve` and `takt
//! run` do when a script starts both): their own boot-ups are already waiting when the
//! first cycle sends the NMT reset, and the boot-ups that answer the reset follow. Only
//! the answers count; a boot-up from before the reset must not make the answer look like
//! a reboot (which tripped the cell before it had run). When the devices' own boot-ups come
//! only after the reset, the answers follow them: a second boot-up before the devices are
//! started restarts that device's configuration instead of tripping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::VecDeque;

use takt_controller::cycle::{CellController, CycleConfig, CycleIo};
use takt_controller::safety::TripCause;
use takt_controller::status::Outbox;
use takt_drivers::can::{BusEvent, Frame, Timestamp, TimestampedFrame};

/// One bus played by the test: what the devices sent, and what the controller sent.
#[derive(Default)]
struct Wire {
    to_controller: VecDeque<Frame>,
    from_controller: Vec<Frame>,
}

impl CycleIo for Wire {
    fn recv_event(&mut self, bus: usize) -> Option<BusEvent> {
        assert_eq!(bus, 0, "the demo cell has one bus");
        let frame = self.to_controller.pop_front()?;
        Some(BusEvent::Frame(TimestampedFrame {
            timestamp: Timestamp::ZERO,
            frame,
        }))
    }

    fn send(&mut self, _bus: usize, frame: &Frame) -> bool {
        self.from_controller.push(*frame);
        true
    }
}

/// The boot-up of every device of config/cell.toml.
fn boot_ups() -> Vec<Frame> {
    [1u16, 2, 3, 4, 5, 10]
        .iter()
        .map(|node| Frame::standard(0x700 + node, [0]))
        .collect()
}

/// The demo cell's controller before its first cycle, and its bus.
fn demo_controller() -> (CellController, Wire) {
    let cell = CellController::new(
        &support::program(),
        CycleConfig::default(),
        Outbox::none(),
        None,
    )
    .unwrap();
    (cell, Wire::default())
}

#[test]
fn boot_ups_waiting_before_the_reset_do_not_make_its_answers_reboots() {
    let (mut cell, mut wire) = demo_controller();
    // The devices powered up as takt started: their boot-ups are already waiting.
    wire.to_controller.extend(boot_ups());
    cell.step(Timestamp::from_millis(1), &mut wire);
    assert_eq!(
        wire.from_controller[0].to_string(),
        "000#8200",
        "the first cycle resets every device's communication"
    );
    // The answers to the reset.
    wire.to_controller.extend(boot_ups());
    for ms in 2..50 {
        cell.step(Timestamp::from_millis(ms), &mut wire);
    }
    assert_eq!(cell.trip(), None, "{:?}", cell.counters());
    assert_eq!(cell.counters().trips, 0);
    // Configuration started: SDO requests went to the devices.
    assert!(
        wire.from_controller
            .iter()
            .any(|f| f.standard_id() == Some(0x601)),
        "no SDO request to node 1"
    );
}

/// The first cycle sends the reset; the devices' own boot-ups arrive after it, and the
/// second cycle starts configuring.
fn boot_ups_after_the_reset(cell: &mut CellController, wire: &mut Wire) {
    cell.step(Timestamp::from_millis(1), wire);
    wire.to_controller.extend(boot_ups());
    cell.step(Timestamp::from_millis(2), wire);
}

/// SDO requests the controller sent to node 1 (COB-ID 0x601).
fn requests_to_node_1(wire: &Wire) -> Vec<String> {
    wire.from_controller
        .iter()
        .filter(|f| f.standard_id() == Some(0x601))
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_boot_up_after_the_reset_followed_by_its_answer_restarts_configuration() {
    let (mut cell, mut wire) = demo_controller();
    boot_ups_after_the_reset(&mut cell, &mut wire);
    let first = requests_to_node_1(&wire);
    assert_eq!(first.len(), 1, "{first:?}");
    // Then the answers to the reset: the devices lost what was written, so it begins again
    // with the same first write.
    wire.to_controller.extend(boot_ups());
    for ms in 3..50 {
        cell.step(Timestamp::from_millis(ms), &mut wire);
    }
    assert_eq!(cell.trip(), None, "{:?}", cell.counters());
    assert_eq!(cell.counters().trips, 0);
    let again = requests_to_node_1(&wire);
    assert!(again.len() >= 2, "{again:?}");
    assert_eq!(
        again[1], first[0],
        "configuration restarts from its first write"
    );
}

#[test]
fn a_device_that_keeps_rebooting_during_configuration_trips_the_cell() {
    let (mut cell, mut wire) = demo_controller();
    boot_ups_after_the_reset(&mut cell, &mut wire);
    // Three more boot-ups are taken as fresh starts; the fifth is a reboot loop.
    for ms in 3..6 {
        wire.to_controller.push_back(Frame::standard(0x701, [0]));
        cell.step(Timestamp::from_millis(ms), &mut wire);
        assert_eq!(cell.trip(), None, "boot-up at {ms} ms");
    }
    wire.to_controller.push_back(Frame::standard(0x701, [0]));
    cell.step(Timestamp::from_millis(6), &mut wire);
    assert!(
        matches!(cell.trip(), Some(TripCause::Rebooted { node: 1 })),
        "{:?}",
        cell.trip()
    );
}
