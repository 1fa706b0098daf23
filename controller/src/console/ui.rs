//! Drawing the console: one pure function from [`Screen`] to a frame, so the same code draws
//! the terminal and the layout snapshots.
//!
//! Space is given in the order an operator needs it: the e-stop / trip / connection
//! banners, the cell state and step, the axes, the I/O; then the event log, the buses, the
//! cycle timing and the production panel take what is left, and a panel that does not fit
//! is left out whole rather than drawn cut. At 80×24 that is banner, state, axes, I/O and a
//! few lines of log, with each bus (load, interface state, error counters, heartbeats) in
//! one line on the log's bottom border; from 160 columns the buses, timing and production
//! sit in a right-hand column.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::keys::{HELP, HELP_SHORT, question};
use super::model::{BusPanel, CellModel, EventLog, HistogramView, Link};
use crate::commands::Command;

/// Everything the console draws: the controller's model plus the console's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    /// What the controller last reported.
    pub model: CellModel,
    /// The link to the controller.
    pub link: Link,
    /// Where the console is attached (socket path, or "in-process").
    pub source: String,
    /// Events received.
    pub log: EventLog,
    /// Lines the log is scrolled back from the newest.
    pub scroll: usize,
    /// A command waiting for its y/n.
    pub pending: Option<Command>,
    /// The answer to the last command, or another short notice, and whether it is bad news.
    pub notice: Option<(String, bool)>,
}

impl Screen {
    /// An empty screen attached to `source`.
    pub fn new(source: impl Into<String>) -> Screen {
        Screen {
            model: CellModel::default(),
            link: Link::Connecting,
            source: source.into(),
            log: EventLog::default(),
            scroll: 0,
            pending: None,
            notice: None,
        }
    }
}

/// Columns from which the wide layout (a right-hand column) is used.
const WIDE_COLUMNS: u16 = 160;
/// Rows the event log needs to be worth showing (borders and two lines).
const LOG_MIN_ROWS: u16 = 4;

const ESTOP_STYLE: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Red)
    .add_modifier(Modifier::BOLD);
const TRIP_STYLE: Style = Style::new()
    .fg(Color::Black)
    .bg(Color::Yellow)
    .add_modifier(Modifier::BOLD);
const LINK_STYLE: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Magenta)
    .add_modifier(Modifier::BOLD);

/// Cuts `rows` rows off the top of `area`.
fn take_top(area: &mut Rect, rows: u16) -> Rect {
    let rows = rows.min(area.height);
    let top = Rect {
        height: rows,
        ..*area
    };
    area.y += rows;
    area.height -= rows;
    top
}

/// Cuts `rows` rows off the bottom of `area`.
fn take_bottom(area: &mut Rect, rows: u16) -> Rect {
    let rows = rows.min(area.height);
    area.height -= rows;
    Rect {
        y: area.y + area.height,
        height: rows,
        ..*area
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, screen: &Screen) {
    let mut area = frame.area();
    frame.render_widget(Clear, area);
    let help = take_bottom(&mut area, 1);
    draw_help(frame, help);
    let notice = take_bottom(&mut area, 1);
    draw_notice(frame, notice, screen);

    let header = take_top(&mut area, 1);
    draw_header(frame, header, screen);
    let state = take_top(&mut area, 1);
    draw_state(frame, state, &screen.model);

    if screen.link != Link::Up {
        let rows = take_top(&mut area, 2);
        draw_link_banner(frame, rows, &screen.link);
    }
    let m = &screen.model;
    if m.estop_latched {
        let rows = take_top(&mut area, 3);
        draw_estop_banner(frame, rows, m);
    } else if let Some(trip) = &m.trip {
        // The cause gets a second line when it needs one, never more.
        let cause_rows = (trip.chars().count() as u16)
            .div_ceil(area.width.max(1))
            .clamp(1, 2);
        let rows = take_top(&mut area, 1 + cause_rows);
        draw_trip_banner(frame, rows, trip);
    }

    if area.width >= WIDE_COLUMNS {
        draw_wide(frame, area, screen);
    } else {
        draw_narrow(frame, area, screen);
    }
}

fn draw_narrow(frame: &mut Frame, mut area: Rect, screen: &Screen) {
    let m = &screen.model;
    let axes = take_top(&mut area, axes_rows(m));
    draw_axes(frame, axes, m);
    let io_h = io_rows(m, area.width);
    if area.height >= io_h {
        let io = take_top(&mut area, io_h);
        draw_io(frame, io, m);
    }
    // What is left goes to the log first; the buses and timing only when the log still
    // keeps a useful height.
    let buses_h = buses_rows(&m.buses);
    let panel = area.height >= buses_h + timing_rows() + LOG_MIN_ROWS + 4;
    if panel {
        let buses = take_bottom(&mut area, buses_h);
        draw_buses(frame, buses, &m.buses);
        let timing = take_bottom(&mut area, timing_rows());
        draw_timing(frame, timing, m);
    }
    // Without the panel the buses are one line: on the log's bottom border, or on a row
    // of their own when the log does not fit.
    let summary = (!panel && !m.buses.is_empty())
        .then(|| bus_summary(&m.buses, usize::from(area.width.saturating_sub(2))));
    if area.height >= LOG_MIN_ROWS {
        draw_log(frame, area, screen, summary);
    } else if let Some(line) = summary
        && area.height >= 1
    {
        frame.render_widget(Paragraph::new(line), take_top(&mut area, 1));
    }
}

fn draw_wide(frame: &mut Frame, area: Rect, screen: &Screen) {
    let m = &screen.model;
    let left_w = area.width * 11 / 20;
    let mut left = Rect {
        width: left_w,
        ..area
    };
    let mut right = Rect {
        x: area.x + left_w,
        width: area.width - left_w,
        ..area
    };
    let axes = take_top(&mut left, axes_rows(m));
    draw_axes(frame, axes, m);
    let io_h = io_rows(m, left.width);
    if left.height >= io_h {
        let io = take_top(&mut left, io_h);
        draw_io(frame, io, m);
    }
    if left.height >= LOG_MIN_ROWS {
        draw_log(frame, left, screen, None);
    }
    let prod_h = production_rows(m);
    if right.height >= prod_h {
        let prod = take_top(&mut right, prod_h);
        draw_production(frame, prod, m);
    }
    if right.height >= timing_rows() {
        let timing = take_top(&mut right, timing_rows());
        draw_timing(frame, timing, m);
    }
    if right.height >= 3 {
        draw_buses(frame, right, &m.buses);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, screen: &Screen) {
    let m = &screen.model;
    let parts = m.production.counters.first().map_or(0, |(_, n)| *n);
    let takt = m
        .production
        .takt_time_s
        .map_or_else(|| "-".to_owned(), |t| format!("{t:.2} s"));
    let stale = if screen.link == Link::Up {
        ""
    } else {
        " (last known)"
    };
    let right = format!(
        "{}parts {parts}  takt {takt} ",
        if m.viewer { "VIEW ONLY  " } else { "" }
    );
    let right_w = right.chars().count() as u16;
    let left = Rect {
        width: area.width.saturating_sub(right_w + 1),
        ..area
    };
    let line = Line::from(vec![
        Span::styled(" takt ", Style::new().add_modifier(Modifier::REVERSED)),
        Span::raw(if m.cell_name.is_empty() {
            format!(" {}{stale}", screen.source)
        } else {
            format!(
                " {} · {} · {}{stale}",
                m.cell_name, m.sequence_name, screen.source
            )
        }),
    ]);
    frame.render_widget(Paragraph::new(line), left);
    frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), area);
}

fn state_style(state: &str) -> Style {
    match state {
        "execute" => Style::new().fg(Color::Black).bg(Color::Green),
        "aborting" | "aborted" => Style::new().fg(Color::White).bg(Color::Red),
        "holding" | "held" | "stopping" | "clearing" | "starting" => {
            Style::new().fg(Color::Black).bg(Color::Yellow)
        }
        _ => Style::new().add_modifier(Modifier::REVERSED),
    }
}

fn draw_state(frame: &mut Frame, area: Rect, m: &CellModel) {
    let state = if m.cell_state.is_empty() {
        "-"
    } else {
        &m.cell_state
    };
    let mut spans = vec![
        Span::raw(" cell "),
        Span::styled(
            format!(" {} ", state.to_uppercase()),
            state_style(state).add_modifier(Modifier::BOLD),
        ),
    ];
    if let Some(s) = &m.startup {
        // The one phase an operator must act on says so in words.
        let s = if s == "awaiting_start" {
            "waiting for start to enable and home"
        } else {
            s
        };
        spans.push(Span::raw(format!(" start-up: {s}")));
    }
    let step = if m.step.index == 0 {
        " step -".to_owned()
    } else {
        format!(" step {}/{} {}", m.step.index, m.step.total, m.step.name)
    };
    spans.push(Span::raw(step));
    let text_w = spans.iter().map(Span::width).sum::<usize>() as u16 + 1;
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    // The progress through one pass, in whatever room is left on the line.
    let bar_w = area.width.saturating_sub(text_w + 1).min(40);
    if bar_w >= 10 && m.step.total > 0 {
        let done =
            usize::from(bar_w) * m.step.index.min(m.step.total) as usize / m.step.total as usize;
        let bar = format!(
            "{}{}",
            "█".repeat(done),
            "░".repeat(usize::from(bar_w) - done)
        );
        let r = Rect {
            x: area.x + area.width - bar_w - 1,
            width: bar_w,
            ..area
        };
        frame.render_widget(Paragraph::new(bar).style(Style::new().fg(Color::Cyan)), r);
    }
}

fn draw_estop_banner(frame: &mut Frame, area: Rect, m: &CellModel) {
    let cause = m.trip.as_deref().unwrap_or("operator e-stop");
    let lines = vec![
        Line::from("█ E-STOP LATCHED █"),
        Line::from(format!("{cause} · cell {}", m.cell_state)),
        Line::from("clear the cause, then c reset (y/n) and g start (y/n)"),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .style(ESTOP_STYLE),
        area,
    );
}

fn draw_trip_banner(frame: &mut Frame, area: Rect, trip: &str) {
    let lines = vec![
        Line::from("CELL TRIPPED · c reset (y/n), then g start (y/n)"),
        Line::from(trip.to_owned()),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true })
            .style(TRIP_STYLE),
        area,
    );
}

fn draw_link_banner(frame: &mut Frame, area: Rect, link: &Link) {
    let (first, second) = match link {
        Link::Up => return,
        Link::Connecting => (
            "CONNECTING TO THE CONTROLLER".to_owned(),
            "nothing shown here is live yet".to_owned(),
        ),
        Link::Down {
            reason,
            attempts,
            retry_in_ms,
        } => (
            format!(
                "NO CONNECTION TO THE CONTROLLER · retry in {:.1} s (attempt {attempts})",
                *retry_in_ms as f64 / 1000.0
            ),
            format!("{reason} · the controller does not depend on this console"),
        ),
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)])
            .alignment(Alignment::Center)
            .style(LINK_STYLE),
        area,
    );
}

fn axes_rows(m: &CellModel) -> u16 {
    m.axes.len() as u16 + 3
}

/// A CiA 402 power state, short enough for the axis table at 80 columns.
fn drive_short(state: &str) -> &str {
    match state {
        "not_ready_to_switch_on" => "not ready",
        "switch_on_disabled" => "sw-on disabled",
        "ready_to_switch_on" => "ready",
        "switched_on" => "switched on",
        "operation_enabled" => "enabled",
        "quick_stop_active" => "QUICK STOP",
        "fault_reaction_active" => "FAULT REACTION",
        "fault" => "FAULT",
        other => other,
    }
}

fn draw_axes(frame: &mut Frame, area: Rect, m: &CellModel) {
    let header = Row::new([
        "axis", "state", "drive", "demand", "actual", "f.error", "homed", "",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let right = |text: String| Cell::from(Line::from(text).alignment(Alignment::Right));
    let rows = m.axes.iter().map(|a| {
        let state_style = match a.state.as_str() {
            "error_stop" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            "moving" | "homing" => Style::new().fg(Color::Cyan),
            "disabled" => Style::new().fg(Color::DarkGray),
            _ => Style::new(),
        };
        let drive_style = match a.drive.as_str() {
            "fault" | "fault_reaction_active" | "quick_stop_active" => {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            }
            "operation_enabled" => Style::new().fg(Color::Green),
            _ => Style::new(),
        };
        Row::new([
            Cell::from(a.name.clone()),
            Cell::from(a.state.clone()).style(state_style),
            Cell::from(drive_short(&a.drive).to_owned()).style(drive_style),
            right(if a.conveyor {
                "-".to_owned()
            } else {
                format!("{:.2}", a.demand)
            }),
            right(format!("{:.2}", a.actual)),
            right(if a.conveyor {
                "-".to_owned()
            } else {
                format!("{:.3}", a.following_error)
            }),
            Cell::from(if a.homed { "yes" } else { "no" }),
            Cell::from(a.unit.clone()),
        ])
    });
    let widths = [
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(3),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::bordered().title(" axes "));
    frame.render_widget(table, area);
}

/// Width of one I/O cell in the grid.
fn io_cell_width(m: &CellModel) -> u16 {
    let longest = m
        .inputs
        .iter()
        .chain(&m.outputs)
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0);
    longest as u16 + 4
}

fn io_columns(m: &CellModel, width: u16) -> usize {
    usize::from(((width.saturating_sub(2 + 5)) / io_cell_width(m)).max(1))
}

fn io_rows(m: &CellModel, width: u16) -> u16 {
    let cols = io_columns(m, width);
    (m.inputs.len().div_ceil(cols) + m.outputs.len().div_ceil(cols)) as u16 + 2
}

fn draw_io(frame: &mut Frame, area: Rect, m: &CellModel) {
    let cols = io_columns(m, area.width);
    let cell_w = usize::from(io_cell_width(m));
    let mut lines = Vec::new();
    for (label, points) in [("in  ", &m.inputs), ("out ", &m.outputs)] {
        for (row, chunk) in points.chunks(cols).enumerate() {
            let mut spans = vec![Span::styled(
                if row == 0 { label } else { "    " },
                Style::new().add_modifier(Modifier::BOLD),
            )];
            for p in chunk {
                let (mark, style) = if p.on {
                    (
                        "●",
                        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                    )
                } else {
                    ("○", Style::new().fg(Color::DarkGray))
                };
                spans.push(Span::styled(mark, style));
                spans.push(Span::raw(format!(" {:<w$}", p.name, w = cell_w - 2)));
            }
            lines.push(Line::from(spans));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" I/O  ● on  ○ off ")),
        area,
    );
}

fn draw_log(frame: &mut Frame, area: Rect, screen: &Screen, bottom: Option<Line<'static>>) {
    let rows = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = screen
        .log
        .window(rows, screen.scroll)
        .map(Line::from)
        .collect();
    let title = if screen.scroll == 0 {
        format!(" events ({}) ", screen.log.len())
    } else {
        format!(
            " events ({}) · scrolled back {} · End = newest ",
            screen.log.len(),
            screen.scroll
        )
    };
    let mut block = Block::bordered().title(title);
    if let Some(line) = bottom {
        block = block.title_bottom(line);
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn buses_rows(buses: &[BusPanel]) -> u16 {
    buses.iter().map(|b| 3 + b.nodes.len() as u16).sum::<u16>() + 2
}

const BAD: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
const WARN: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);

/// A CAN interface's fault-confinement state as the screen shows it: quiet while
/// error-active, loud otherwise.
fn error_state(state: &str) -> (String, Style) {
    match state {
        "error_active" | "" => ("error-active".to_owned(), Style::new()),
        "error_warning" => ("ERROR WARNING".to_owned(), WARN),
        "error_passive" => ("ERROR PASSIVE".to_owned(), BAD),
        "bus_off" => ("BUS-OFF".to_owned(), BAD),
        other => (other.to_uppercase(), BAD),
    }
}

/// A count that is bad news when not zero.
fn count(label: &str, n: u64, style: Style) -> [Span<'static>; 2] {
    [
        Span::raw(format!("  {label} ")),
        Span::styled(n.to_string(), if n > 0 { style } else { Style::new() }),
    ]
}

fn draw_buses(frame: &mut Frame, area: Rect, buses: &[BusPanel]) {
    let mut lines = Vec::new();
    for b in buses {
        let (state, state_style) = error_state(&b.error_state);
        let mut first = vec![
            Span::styled(b.name.clone(), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw("  load "),
            Span::styled(
                format!("{:.1} %", b.load_percent),
                if b.load_percent > 70.0 {
                    BAD
                } else {
                    Style::new()
                },
            ),
            Span::raw("  "),
            Span::styled(state, state_style),
        ];
        if b.state == "refusing" {
            first.push(Span::styled("  REFUSING FRAMES", BAD));
        }
        lines.push(Line::from(first));
        let mut errors = vec![Span::raw(format!("  TEC {}  REC {}", b.tec, b.rec))];
        errors.extend(count("error frames", b.bus_errors, WARN));
        errors.extend(count("overflows", b.rx_overflows, BAD));
        errors.extend(count("bus-off", b.bus_offs, BAD));
        lines.push(Line::from(errors));
        let mut frames = vec![Span::raw(format!(
            "  frames in {}  out {}",
            b.frames_in, b.frames_out
        ))];
        frames.extend(count("refused", b.tx_refused, BAD));
        lines.push(Line::from(frames));
        for n in &b.nodes {
            let (beat, style) = if n.alive {
                ("heartbeat ok  ", Style::new())
            } else {
                ("HEARTBEAT LOST", BAD)
            };
            lines.push(Line::from(vec![
                Span::raw(format!(
                    "  node {:>3} {:<14} {:<16}",
                    n.node, n.name, n.state
                )),
                Span::styled(beat, style),
            ]));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" buses ")),
        area,
    );
}

/// Every bus in one line of at most `width` columns, for a screen without room for the bus
/// panel: load, the interface's state and error counters, the heartbeats, then the counts
/// of what went wrong so far that fit whole (the most important first; the line is cut
/// only when even the essentials do not fit).
fn bus_summary(buses: &[BusPanel], width: usize) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, b) in buses.iter().enumerate() {
        spans.push(Span::raw(if i == 0 { " " } else { " │ " }));
        // `main (can0, 1000 kbit/s)`: the name alone.
        let name = b.name.split(" (").next().unwrap_or(&b.name);
        let (state, state_style) = error_state(&b.error_state);
        spans.push(Span::styled(
            name.to_owned(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(
            format!(" {:.1} %  ", b.load_percent),
            if b.load_percent > 70.0 {
                BAD
            } else {
                Style::new()
            },
        ));
        spans.push(Span::styled(state, state_style));
        spans.push(Span::raw(format!("  TEC {} REC {}  ", b.tec, b.rec)));
        let lost: Vec<&str> = b
            .nodes
            .iter()
            .filter(|n| !n.alive)
            .map(|n| n.name.as_str())
            .collect();
        if lost.is_empty() {
            spans.push(Span::raw(format!("{0}/{0} heartbeats", b.nodes.len())));
        } else {
            spans.push(Span::styled(
                format!("HEARTBEAT LOST {}", lost.join(" ")),
                BAD,
            ));
        }
        for (label, n, style) in [
            ("errors", b.bus_errors, WARN),
            ("refused", b.tx_refused, BAD),
            ("overflows", b.rx_overflows, BAD),
            ("bus-off", b.bus_offs, BAD),
        ] {
            let label = format!("  {label} ");
            let value = n.to_string();
            let used: usize = spans.iter().map(Span::width).sum();
            // The trailing space before the border is kept.
            if n > 0 && used + label.len() + value.len() < width {
                spans.push(Span::raw(label));
                spans.push(Span::styled(value, style));
            }
        }
    }
    if !spans.is_empty() {
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

/// Bins each histogram shows.
const HIST_BARS: usize = 8;

fn timing_rows() -> u16 {
    2 * (HIST_BARS as u16 + 1) + 2
}

fn histogram_lines(title: &str, h: &HistogramView, width: usize) -> Vec<String> {
    let mut out = vec![format!(
        "{title}: p50 {:.0} µs  p99.9 {:.0} µs  max {:.0} µs",
        h.p50_us, h.p99_9_us, h.max_us
    )];
    if h.bins.is_empty() {
        out.push("(no samples)".to_owned());
        return out;
    }
    let peak = h.bins.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let label_w = h
        .bins
        .iter()
        .map(|b| b.0.chars().count())
        .max()
        .unwrap_or(0);
    let bar_w = width.saturating_sub(label_w + 10).max(1);
    for (label, n) in h.bins.iter().take(HIST_BARS) {
        // Every non-empty bin shows at least one block: a rare long cycle must be visible.
        let len = ((*n as f64 / peak as f64) * bar_w as f64).ceil() as usize;
        out.push(format!(
            "{label:>label_w$} {:<bar_w$} {n}",
            "█".repeat(len.min(bar_w))
        ));
    }
    out
}

fn draw_timing(frame: &mut Frame, area: Rect, m: &CellModel) {
    let t = &m.timing;
    let block = Block::bordered().title(format!(
        " cycle · period {:.0} µs · {} cycles · overruns {} · events dropped {} ",
        t.period_us, t.cycles, t.overruns, t.dropped_events
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    for (title, h) in [("wake-up latency", &t.latency), ("compute", &t.compute)] {
        let mut hl = histogram_lines(title, h, usize::from(inner.width));
        hl.resize(HIST_BARS + 1, String::new());
        lines.extend(hl.into_iter().map(Line::from));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn production_rows(m: &CellModel) -> u16 {
    m.production.counters.len() as u16 + 5
}

fn draw_production(frame: &mut Frame, area: Rect, m: &CellModel) {
    let p = &m.production;
    let mut lines: Vec<Line> = p
        .counters
        .iter()
        .map(|(name, n)| Line::from(format!("{name:<20} {n:>10}")))
        .collect();
    lines.push(Line::from(format!("{:<20} {:>10}", "passes", p.passes)));
    let secs = |t: Option<f64>| t.map_or_else(|| "-".to_owned(), |t| format!("{t:.2} s"));
    lines.push(Line::from(format!(
        "{:<20} {:>10}",
        "takt time (mean)",
        secs(p.takt_time_s)
    )));
    lines.push(Line::from(format!(
        "{:<20} {:>10}",
        "takt time (last)",
        secs(p.last_takt_s)
    )));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" production ")),
        area,
    );
}

fn draw_notice(frame: &mut Frame, area: Rect, screen: &Screen) {
    if let Some(command) = screen.pending {
        frame.render_widget(
            Paragraph::new(format!(" {} ", question(command))).style(TRIP_STYLE),
            area,
        );
    } else if let Some((text, bad)) = &screen.notice {
        let style = if *bad {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        frame.render_widget(Paragraph::new(format!(" {text}")).style(style), area);
    }
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let help = if area.width as usize > HELP.chars().count() + 1 {
        HELP
    } else {
        HELP_SHORT
    };
    frame.render_widget(
        Paragraph::new(format!(" {help}")).style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
    );
}
