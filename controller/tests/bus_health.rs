//! The health of each bus's CAN interface reaches the operator: the simulated bus model's
//! error counters and fault-confinement state (bus errors on a noisy bus, error warning and
//! error passive, bus-off and its restart) show in the cycle's status snapshot, in the
//! status message of the control protocol, and as `bus_state` journal records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::path::Path;

use takt_controller::control::view::View;
use takt_controller::rt::Lockstep;
use takt_controller::status::{BusStatus, Event, EventKind, Inbox, channels, describe_buses};
use takt_drivers::can::BusState;
use takt_sim::Scenario;

/// The demo cell started, with `scenario` loaded and every event kept.
fn cell_with(scenario: &Scenario) -> (Lockstep, Inbox) {
    let (outbox, inbox) = channels(1 << 16, 1);
    let mut ls = support::lockstep_full(1, |_| {}, outbox);
    ls.sim.load_scenario(scenario).unwrap();
    support::start(&mut ls);
    (ls, inbox)
}

fn scenario_file(name: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Scenario::load(&root.join(format!("config/scenarios/{name}.toml"))).unwrap()
}

/// Steps until the virtual clock reads `at`, calling `each` with the bus's status after every
/// cycle.
fn run_to(ls: &mut Lockstep, at: Duration, mut each: impl FnMut(&BusStatus)) {
    while ls.now().as_nanos() < at.as_nanos() as u64 {
        ls.step();
        each(&ls.cell.status().bus[0]);
    }
}

/// The bus-state changes among `events`, as (from, to).
fn bus_states(events: &[Event]) -> Vec<(BusState, BusState)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::BusState {
                bus: 0, from, to, ..
            } => Some((from, to)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_noisy_bus_shows_its_error_frames_and_receive_error_counter() {
    let (mut ls, inbox) = cell_with(&scenario_file("noisy-bus"));
    assert_eq!(ls.cell.status().bus[0].bus_errors, 0, "a clean start");
    let mut max_rec = 0;
    // The scenario destroys a third of node 1's TPDOs from 1 s to 3 s.
    run_to(&mut ls, Duration::from_millis(3500), |b| {
        max_rec = max_rec.max(b.rec);
    });
    let b = ls.cell.status().bus[0];
    assert!(
        b.bus_errors >= 50,
        "every error frame counted: {}",
        b.bus_errors
    );
    assert!(max_rec > 0, "the receive error counter moved");
    assert_eq!(b.tec, 0, "the controller's own frames were not hit");
    assert_eq!(b.bus_offs, 0);
    assert_eq!(b.state, BusState::ErrorActive);
    // The protocol's status carries the counts.
    let mut view = View::new(support::program(), Duration::from_millis(1));
    let msg = view.status(ls.cell.status());
    let bus = &msg.buses[0];
    assert_eq!(bus.bus_errors, b.bus_errors);
    assert_eq!(bus.error_state, "error_active");
    let json = serde_json::to_value(&msg).unwrap();
    assert_eq!(json["buses"][0]["bus_errors"], b.bus_errors);
    assert_eq!(json["buses"][0]["rec"], b.rec);
    let events: Vec<Event> = inbox.events.try_iter().collect();
    // Whether the noise reached the warning level depends on the draw; every change that
    // did happen went back to error-active.
    let changes = bus_states(&events);
    assert!(
        changes.last().is_none_or(|c| c.1 == BusState::ErrorActive),
        "{changes:?}"
    );
}

#[test]
fn error_frames_on_every_transmission_drive_the_interface_error_passive_and_back() {
    // Every transmission of node 1's TPDO1 destroyed for 300 ms: it retransmits at once
    // and fails again, so the receive error counter climbs past 96 and 128.
    let scenario = Scenario::from_toml(
        r#"
        name = "babbling"
        description = "node 1's TPDO1 destroyed by error frames on every try"
        duration_ms = 3000
        [[fault]]
        kind = "bus-errors"
        at_ms = 1000
        for_ms = 300
        cob_id = 0x181
        "#,
        "babbling",
    )
    .unwrap();
    let (mut ls, inbox) = cell_with(&scenario);
    let mut passive = None;
    let mut view = View::new(support::program(), Duration::from_millis(1));
    run_to(&mut ls, Duration::from_millis(1300), |b| {
        if passive.is_none() && b.state == BusState::ErrorPassive {
            passive = Some(*b);
        }
    });
    let p = passive.expect("the interface went error passive");
    assert!(p.rec >= 128, "REC {} at error passive", p.rec);
    // What the operator's screen gets while it lasts.
    let msg = view.status(ls.cell.status());
    assert_eq!(msg.buses[0].error_state, "error_passive");
    assert!(msg.buses[0].rec >= 128);
    // Frames received without error count the REC back down after the noise.
    run_to(&mut ls, Duration::from_millis(3000), |_| {});
    let b = ls.cell.status().bus[0];
    assert_eq!(b.state, BusState::ErrorActive, "{b:?}");
    assert!(b.rec < 96);
    let events: Vec<Event> = inbox.events.try_iter().collect();
    use BusState::{ErrorActive, ErrorPassive, ErrorWarning};
    assert_eq!(
        bus_states(&events),
        [
            (ErrorActive, ErrorWarning),
            (ErrorWarning, ErrorPassive),
            (ErrorPassive, ErrorWarning),
            (ErrorWarning, ErrorActive),
        ]
    );
    // The journal's record of the change names the bus and both states.
    let e = events
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EventKind::BusState {
                    to: ErrorPassive,
                    ..
                }
            )
        })
        .unwrap();
    let r = view.record(e);
    assert_eq!(r.kind, "bus_state");
    assert_eq!(r.bus.as_deref(), Some("can0"));
    assert_eq!(
        (r.from.as_deref(), r.to.as_deref()),
        (Some("error_warning"), Some("error_passive"))
    );
    let EventKind::BusState { rec, .. } = e.kind else {
        unreachable!()
    };
    assert!(rec >= 128);
    assert_eq!(
        r.text,
        format!("bus can0: error warning -> error passive, TEC 0, REC {rec}")
    );
}

#[test]
fn a_bus_off_episode_is_counted_and_shown_until_the_interface_restarts() {
    let (mut ls, inbox) = cell_with(&scenario_file("bus-off"));
    let mut seen_off = None;
    // The controller's interface is bus-off from 3 s for 50 ms, then restarts (after
    // the simulated interface's restart-ms).
    run_to(&mut ls, Duration::from_millis(3500), |b| {
        if seen_off.is_none() && b.state == BusState::BusOff {
            seen_off = Some(*b);
        }
    });
    let off = seen_off.expect("the status showed bus-off");
    assert!(off.bus_off);
    assert_eq!(off.bus_offs, 1);
    let b = ls.cell.status().bus[0];
    assert_eq!((b.state, b.bus_offs, b.tec), (BusState::ErrorActive, 1, 0));
    // Node 5's own bus-off at 9 s is the node's, not the controller interface's.
    run_to(&mut ls, Duration::from_millis(9500), |_| {});
    assert_eq!(ls.cell.status().bus[0].bus_offs, 1);
    let events: Vec<Event> = inbox.events.try_iter().collect();
    assert_eq!(
        bus_states(&events),
        [
            (BusState::ErrorActive, BusState::BusOff),
            (BusState::BusOff, BusState::ErrorActive)
        ]
    );
    let mut view = View::new(support::program(), Duration::from_millis(1));
    let msg = view.status(ls.cell.status());
    assert_eq!(msg.buses[0].bus_offs, 1);
    // As a run's summary prints it.
    let lines = describe_buses(&support::program(), ls.cell.status());
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("bus can0 interface: error-active (TEC 0, REC 0 at the last report)")
            && lines[0].contains("bus-off 1;"),
        "{lines:?}"
    );
}

#[test]
fn frames_lost_to_a_full_receive_queue_are_counted_and_journaled() {
    use takt_controller::cycle::{Buses, CellController, CycleConfig};
    use takt_drivers::can::{CanBus, Frame, Timestamp, VirtualBus};

    // The controller on a virtual bus whose receive queue holds two frames, as a socket
    // with a small receive buffer: the generic path every SocketCAN interface takes.
    let program = support::program();
    let (outbox, inbox) = channels(256, 1);
    let mut cell = CellController::new(&program, CycleConfig::default(), outbox, None).unwrap();
    let bus = VirtualBus::new();
    let mut device = bus.endpoint("device");
    let mut io = Buses::new(vec![bus.endpoint_with_depth("controller", 2)]);
    cell.step(Timestamp::from_millis(1), &mut io);
    for i in 0..5u8 {
        device.try_send(&Frame::standard(0x701, [i])).unwrap();
    }
    cell.step(Timestamp::from_millis(2), &mut io);
    let b = cell.status().bus[0];
    assert_eq!((b.rx_overflows, b.frames_in), (1, 2));
    let events: Vec<Event> = inbox.events.try_iter().collect();
    let lost: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::RxOverflow { .. }))
        .collect();
    assert_eq!(lost.len(), 1, "{events:?}");
    let mut view = View::new(program, Duration::from_millis(1));
    let r = view.record(lost[0]);
    assert_eq!(r.kind, "rx_overflow");
    assert_eq!((r.bus.as_deref(), r.total), (Some("can0"), Some(1)));
}

#[test]
fn the_cycles_frame_counts_match_its_buses_metered_counts() {
    // The summary's `frames in/out` (the cycle's counters) and the bus line's (each bus's
    // metered I/O) once differed by the start-up's boot-up frame; a capture of the wire
    // (the VM test's candump) holds the bus's count.
    let mut ls = support::lockstep(1);
    support::start(&mut ls);
    ls.run_until(Duration::from_secs(3), |_| false);
    let c = ls.cell.counters();
    let bus = ls.cell.status().bus[0];
    assert!(c.frames_out > 1000, "{c:?}");
    assert_eq!((c.frames_in, c.frames_out), (bus.frames_in, bus.frames_out));
}
