//! Layout snapshots: the console drawn with ratatui's `TestBackend` at 80×24 and 200×60 for
//! a running, an e-stopped and a faulted demo cell, compared with the reviewed text in
//! `snapshots/*.txt`. After an intended change of layout:
//! `TAKT_BLESS=1 cargo test -p takt-controller console::snapshots` and review the diff.

use std::path::PathBuf;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::model::{
    AxisRow, BusPanel, CellModel, HistogramView, IoPoint, Link, NodeBeat, Production, StepProgress,
    Timing,
};
use super::ui::{Screen, draw};

fn axis(name: &str, state: &str, drive: &str, demand: f64, actual: f64) -> AxisRow {
    AxisRow {
        name: name.to_owned(),
        state: state.to_owned(),
        drive: drive.to_owned(),
        unit: "mm".to_owned(),
        demand,
        actual,
        following_error: actual - demand,
        homed: true,
        conveyor: name.ends_with("feed"),
    }
}

fn points(names: &[(&str, bool)]) -> Vec<IoPoint> {
    names
        .iter()
        .map(|&(name, on)| IoPoint {
            name: name.to_owned(),
            on,
        })
        .collect()
}

fn hist(p50: f64, p999: f64, max: f64, bins: &[(u64, u64)]) -> HistogramView {
    HistogramView {
        p50_us: p50,
        p99_9_us: p999,
        max_us: max,
        bins: bins
            .iter()
            .map(|&(edge, n)| (format!("≤{edge:>6} µs"), n))
            .collect(),
    }
}

/// The demo cell in the middle of a pass: Z going down at the pick.
fn running() -> Screen {
    let nodes = [
        (1, "x_drive"),
        (2, "y_drive"),
        (3, "z_drive"),
        (4, "infeed_drive"),
        (5, "outfeed_drive"),
        (10, "io"),
    ];
    let model = CellModel {
        cell_name: "demo-gantry".to_owned(),
        sequence_name: "pick_and_place".to_owned(),
        viewer: false,
        cell_state: "execute".to_owned(),
        startup: None,
        estop_latched: false,
        trip: None,
        step: StepProgress {
            name: "pick_and_place.z_down_pick".to_owned(),
            index: 4,
            total: 13,
        },
        axes: vec![
            axis("x", "standstill", "operation_enabled", 120.0, 120.004),
            axis("y", "standstill", "operation_enabled", 45.5, 45.498),
            axis("z", "moving", "operation_enabled", 62.375, 62.391),
            axis("infeed", "standstill", "operation_enabled", 1830.0, 1830.0),
            axis("outfeed", "standstill", "operation_enabled", 900.0, 900.0),
        ],
        inputs: points(&[
            ("part_at_pick", true),
            ("vacuum_ok", false),
            ("guard_closed", true),
            ("estop_chain_ok", true),
            ("light_curtain_clear", true),
        ]),
        outputs: points(&[
            ("vacuum_on", false),
            ("beacon_green", true),
            ("beacon_red", false),
        ]),
        buses: vec![BusPanel {
            name: "main (can0, 1000 kbit/s)".to_owned(),
            load_percent: 53.8,
            state: "ok".to_owned(),
            frames_in: 1_284_112,
            frames_out: 642_530,
            tx_refused: 0,
            error_state: "error_active".to_owned(),
            tec: 0,
            rec: 0,
            bus_errors: 0,
            rx_overflows: 0,
            bus_offs: 0,
            nodes: nodes
                .iter()
                .map(|&(node, name)| NodeBeat {
                    node,
                    name: name.to_owned(),
                    state: "operational".to_owned(),
                    alive: true,
                })
                .collect(),
        }],
        timing: Timing {
            period_us: 1000.0,
            cycles: 241_807,
            latency: hist(
                46.0,
                1800.0,
                3012.0,
                &[
                    (10, 120),
                    (20, 9_500),
                    (50, 160_000),
                    (100, 70_000),
                    (1000, 2_100),
                    (5000, 87),
                ],
            ),
            compute: hist(
                1.0,
                4.0,
                98.0,
                &[(1, 200_000), (2, 38_000), (5, 3_700), (10, 90), (100, 17)],
            ),
            overruns: 2,
            dropped_events: 0,
        },
        production: Production {
            counters: vec![("parts_placed".to_owned(), 57)],
            passes: 57,
            takt_time_s: Some(4.22),
            last_takt_s: Some(4.19),
        },
    };
    let mut screen = Screen::new("/run/takt/control.sock");
    screen.model = model;
    screen.link = Link::Up;
    let log = [
        "  236.412 s  step       pick_and_place.wait_part",
        "  237.020 s  step       pick_and_place.stop_infeed",
        "  237.031 s  step       pick_and_place.to_pick",
        "  237.640 s  step       pick_and_place.z_down_pick",
        "  240.611 s  counted    parts_placed = 56",
        "  241.530 s  step       pick_and_place.wait_part",
        "  241.902 s  counted    parts_placed = 57",
        "  241.910 s  step       pick_and_place.z_down_pick",
    ];
    for line in log {
        screen.log.push(line.to_owned());
    }
    screen.notice = Some(("start: accepted".to_owned(), false));
    screen
}

/// An operator pressed e-stop: the latch holds, the drives are in quick stop / disabled.
fn estopped() -> Screen {
    let mut s = running();
    let m = &mut s.model;
    m.cell_state = "aborted".to_owned();
    m.estop_latched = true;
    m.trip = Some("e-stop command by uid 1000 (alice) via /run/takt/control.sock".to_owned());
    m.step = StepProgress::default();
    for a in &mut m.axes {
        a.state = "disabled".to_owned();
        a.drive = "switch_on_disabled".to_owned();
    }
    m.outputs[1].on = false;
    m.outputs[2].on = true;
    s.log
        .push("  242.004 s  command    estop by uid 1000 (alice) accepted".to_owned());
    s.log
        .push("  242.004 s  trip       e-stop command, stop category 1".to_owned());
    s.log
        .push("  242.005 s  cell_state execute -> aborting".to_owned());
    s.log
        .push("  242.212 s  cell_state aborting -> aborted".to_owned());
    s.notice = Some(("e-stop: accepted".to_owned(), false));
    s
}

/// Z lost steps: following error, the cell tripped in category 1, the drive in fault.
fn faulted() -> Screen {
    let mut s = running();
    let m = &mut s.model;
    m.cell_state = "aborted".to_owned();
    m.trip = Some(
        "following error on axis z: 2.310 mm beyond its 1.000 mm window (stop category 1)"
            .to_owned(),
    );
    m.step = StepProgress::default();
    m.axes[2].state = "error_stop".to_owned();
    m.axes[2].drive = "fault".to_owned();
    m.axes[2].actual = m.axes[2].demand + 2.31;
    m.axes[2].following_error = 2.31;
    for a in &mut m.axes {
        if a.state == "standstill" {
            a.drive = "switch_on_disabled".to_owned();
            a.state = "disabled".to_owned();
        }
    }
    m.buses[0].nodes[2].state = "pre_operational".to_owned();
    m.buses[0].tx_refused = 3;
    m.buses[0].state = "refusing".to_owned();
    // A noisy bus: the interface's receive error counter past the warning level.
    m.buses[0].error_state = "error_warning".to_owned();
    m.buses[0].rec = 97;
    m.buses[0].bus_errors = 112;
    s.log
        .push("  242.311 s  emcy       node 3 (z_drive): 0x8611 following error".to_owned());
    s.log
        .push("  242.311 s  trip       following error on axis z, stop category 1".to_owned());
    s.notice = Some(("start: refused: not allowed in aborted".to_owned(), true));
    s
}

fn render(screen: &Screen, width: u16, height: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = terminal.draw(|f| draw(f, screen)) {
        panic!("draw: {e}");
    }
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, screen: &Screen, width: u16, height: u16) -> String {
    let text = render(screen, width, height);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/console/snapshots")
        .join(format!("{name}_{width}x{height}.txt"));
    if std::env::var_os("TAKT_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, &text) {
            panic!("{}: {e}", path.display());
        }
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == text,
        "the screen differs from {} (TAKT_BLESS=1 to accept):\n{text}",
        path.display()
    );
    text
}

/// Rows of `text` that contain `needle`.
fn rows_with(text: &str, needle: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

/// What an operator must see at any size: the state, every axis, every I/O point and the
/// help line with the e-stop key.
fn assert_essentials(text: &str, screen: &Screen) {
    let state = screen.model.cell_state.to_uppercase();
    assert!(!rows_with(text, &state).is_empty(), "state {state}");
    for a in &screen.model.axes {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("│{} ", a.name))),
            "axis {}",
            a.name
        );
    }
    for p in screen.model.inputs.iter().chain(&screen.model.outputs) {
        assert!(text.contains(&p.name), "I/O point {}", p.name);
    }
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("Space/F1 E-STOP"), "help line: {last}");
}

#[test]
fn running_80x24() {
    let s = running();
    let text = check("running", &s, 80, 24);
    assert_essentials(&text, &s);
    assert!(rows_with(&text, "E-STOP LATCHED").is_empty());
    // The log keeps the newest lines in view.
    assert!(text.contains("parts_placed = 57"));
    // No room for the bus panel: the bus, its interface's state and the heartbeats in one
    // line on the log's border.
    let bus = rows_with(
        &text,
        "main 53.8 %  error-active  TEC 0 REC 0  6/6 heartbeats",
    );
    assert_eq!(bus, [21], "{text}");
}

#[test]
fn running_200x60() {
    let s = running();
    let text = check("running", &s, 200, 60);
    assert_essentials(&text, &s);
    // The rich layout has every panel.
    for panel in [" buses ", " cycle ", " production ", " events ("] {
        assert!(text.contains(panel), "panel {panel}");
    }
    for node in ["x_drive", "outfeed_drive", "io"] {
        assert!(text.contains(node), "node {node}");
    }
    assert!(text.contains("wake-up latency: p50 46 µs"));
}

#[test]
fn estopped_80x24() {
    let s = estopped();
    let text = check("estopped", &s, 80, 24);
    assert_essentials(&text, &s);
    // The banner sits right under the state line, where the eye lands first.
    assert_eq!(rows_with(&text, "E-STOP LATCHED"), [2]);
}

#[test]
fn estopped_200x60() {
    let s = estopped();
    let text = check("estopped", &s, 200, 60);
    assert_essentials(&text, &s);
    assert_eq!(rows_with(&text, "E-STOP LATCHED"), [2]);
}

#[test]
fn faulted_80x24() {
    let s = faulted();
    let text = check("faulted", &s, 80, 24);
    assert_essentials(&text, &s);
    assert_eq!(rows_with(&text, "CELL TRIPPED"), [2]);
    assert_eq!(rows_with(&text, "following error on axis z: 2.310 mm"), [3]);
    assert!(rows_with(&text, "E-STOP LATCHED").is_empty());
    assert_eq!(
        rows_with(
            &text,
            "ERROR WARNING  TEC 0 REC 97  6/6 heartbeats  errors 112"
        ),
        [21],
        "{text}"
    );
}

#[test]
fn faulted_200x60() {
    let s = faulted();
    let text = check("faulted", &s, 200, 60);
    assert_essentials(&text, &s);
    assert!(text.contains("refused 3"));
    assert!(text.contains("FAULT"));
    assert!(text.contains("ERROR WARNING  REFUSING FRAMES"), "{text}");
    assert!(text.contains("TEC 0  REC 97  error frames 112"), "{text}");
}

#[test]
fn a_lost_connection_is_a_banner_and_the_axes_stay_visible_at_80x24() {
    let mut s = estopped();
    s.link = Link::Down {
        reason: "connection refused".to_owned(),
        attempts: 3,
        retry_in_ms: 2000,
    };
    let text = render(&s, 80, 24);
    assert_eq!(
        rows_with(&text, "NO CONNECTION TO THE CONTROLLER"),
        [2],
        "{text}"
    );
    assert_eq!(rows_with(&text, "E-STOP LATCHED"), [4], "{text}");
    assert_essentials(&text, &s);
}

#[test]
fn a_viewer_is_told_its_commands_are_refused() {
    let mut s = running();
    s.model.viewer = true;
    let text = render(&s, 80, 24);
    assert_eq!(rows_with(&text, "VIEW ONLY"), [0], "{text}");
    assert_essentials(&text, &s);
}
