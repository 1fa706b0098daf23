//! The cycle's fixed-size records as people read them: status snapshots and events turned
//! into protocol messages, names looked up in the [`Program`]. Non-RT side only (this
//! allocates and formats).

use takt_drivers::can::Timestamp;
use takt_sequences::Program;
use takt_sequences::program::{AxisConfig, AxisId};

use crate::safety::TripCause;
use crate::status::{CoarseHistogram, Event, EventKind, Status, step_index};

use super::protocol::{
    AxisMsg, BusMsg, CommandName, CounterMsg, HistogramMsg, IoMsg, NodeMsg, Record, StatusMsg,
    StepMsg, TimingMsg, TripMsg,
};

/// Bus load is averaged over at least this long (shorter status intervals would make it
/// jump with every SYNC).
const LOAD_WINDOW_S: f64 = 0.1;

/// `CamelCase` (a `Debug` variant name, fields cut off) as `snake_case`.
pub fn snake(debug: &str) -> String {
    let name = debug.split([' ', '{', '(']).next().unwrap_or(debug);
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn name_of(d: impl std::fmt::Debug) -> String {
    snake(&format!("{d:?}")).replace("e_stop", "estop")
}

/// The user unit of an axis's positions.
fn axis_unit(cfg: &AxisConfig) -> &'static str {
    if cfg.rotary { "deg" } else { "mm" }
}

/// A `Debug` variant name as words: `FollowingError` → `following error`.
fn words(debug: &str) -> String {
    snake(debug).replace("e_stop", "e-stop").replace('_', " ")
}

#[derive(Debug, Default, Clone, Copy)]
struct BusWindow {
    at: Timestamp,
    bits: u64,
    refused: u64,
    load_percent: f64,
    refusing: bool,
}

/// Takt time from the first counter's `Counted` events.
#[derive(Debug, Default, Clone, Copy)]
struct Takt {
    first: Option<(Timestamp, u64)>,
    last: Option<(Timestamp, u64)>,
    last_interval_s: Option<f64>,
}

impl Takt {
    fn count(&mut self, at: Timestamp, total: u64) {
        if let Some((prev_at, prev_total)) = self.last
            && total > prev_total
        {
            self.last_interval_s =
                Some(at.saturating_since(prev_at).as_secs_f64() / (total - prev_total) as f64);
        }
        if self.first.is_none() {
            self.first = Some((at, total));
        }
        self.last = Some((at, total));
    }

    fn mean_s(&self) -> Option<f64> {
        let ((a, n0), (b, n1)) = (self.first?, self.last?);
        (n1 > n0).then(|| b.saturating_since(a).as_secs_f64() / (n1 - n0) as f64)
    }
}

/// Turns the cycle's records into messages for one controller run.
#[derive(Debug)]
pub struct View {
    program: Program,
    period_ns: u64,
    seq: u64,
    buses: Vec<BusWindow>,
    takt: Takt,
}

impl View {
    /// A view of `program` run at `period`.
    pub fn new(program: Program, period: std::time::Duration) -> View {
        let buses = vec![BusWindow::default(); program.buses.len()];
        View {
            program,
            period_ns: u64::try_from(period.as_nanos()).unwrap_or(u64::MAX),
            seq: 0,
            buses,
            takt: Takt::default(),
        }
    }

    /// The program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// A status message from a snapshot (numbered in the order they are made).
    pub fn status(&mut self, s: &Status) -> StatusMsg {
        self.seq += 1;
        let p = &self.program;
        let axes = p
            .axes
            .iter()
            .zip(&s.axis[..usize::from(s.axes)])
            .enumerate()
            .map(|(i, (cfg, a))| {
                let id = AxisId(i as u16);
                AxisMsg {
                    name: cfg.name.clone(),
                    unit: axis_unit(cfg).to_owned(),
                    conveyor: cfg.conveyor,
                    state: name_of(a.state),
                    drive: name_of(a.power),
                    demand: p.to_units(id, a.demand_counts),
                    actual: p.to_units(id, a.actual_counts as f64),
                    following_error: p.to_units(id, a.following_error_counts as f64),
                    homed: a.homed,
                }
            })
            .collect();
        let io = |points: &[takt_sequences::program::IoPoint], bits: u64| {
            points
                .iter()
                .enumerate()
                .map(|(i, io)| IoMsg {
                    name: io.name.clone(),
                    value: i < 64 && bits >> i & 1 == 1,
                })
                .collect::<Vec<_>>()
        };
        let mut buses = Vec::with_capacity(p.buses.len());
        for (b, cfg) in p.buses.iter().enumerate() {
            let now = s.bus.get(b).copied().unwrap_or_default();
            let Some(w) = self.buses.get_mut(b) else {
                continue;
            };
            let dt = s.at.saturating_since(w.at).as_secs_f64();
            if dt >= LOAD_WINDOW_S {
                let bits = now.bits.saturating_sub(w.bits) as f64;
                w.load_percent = 100.0 * bits / dt / f64::from(cfg.bitrate_bit_s.max(1));
                w.refusing = now.tx_refused > w.refused;
                w.at = s.at;
                w.bits = now.bits;
                w.refused = now.tx_refused;
            }
            let nodes = p
                .devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.bus.index() == b)
                .map(|(i, d)| {
                    let n = s.node.get(i).copied().unwrap_or_default();
                    NodeMsg {
                        node: d.node,
                        name: d.name.clone(),
                        kind: name_of(d.kind),
                        nmt: n.nmt.map_or_else(|| "none".to_owned(), name_of),
                        alive: n.alive,
                    }
                })
                .collect();
            buses.push(BusMsg {
                name: cfg.name.clone(),
                interface: cfg.interface.clone(),
                bitrate_bit_s: cfg.bitrate_bit_s,
                load_percent: w.load_percent,
                frames_in: now.frames_in,
                frames_out: now.frames_out,
                tx_refused: now.tx_refused,
                state: if now.bus_off {
                    "bus_off"
                } else if w.refusing {
                    "refusing"
                } else {
                    "ok"
                }
                .to_owned(),
                error_state: name_of(now.state),
                tec: now.tec,
                rec: now.rec,
                bus_errors: now.bus_errors,
                rx_overflows: now.rx_overflows,
                bus_offs: now.bus_offs,
                nodes,
            });
        }
        let step = step_index(p, s.instr).and_then(|i| {
            p.steps.get(i).map(|st| StepMsg {
                name: st.path.clone(),
                kind: st.kind.to_owned(),
                number: i + 1,
                of: p.steps.len(),
            })
        });
        StatusMsg {
            seq: self.seq,
            at_s: s.at.as_micros() as f64 / 1e6,
            cycles: s.cycles,
            cell: name_of(s.cell),
            startup: name_of(s.startup),
            step,
            passes: s.passes,
            estop_latched: s.estop_latched,
            trip: s.trip.map(|t| TripMsg {
                cause: name_of(t),
                text: self.trip_text(t),
            }),
            axes,
            inputs: io(&p.inputs, s.inputs),
            outputs: io(&p.outputs, s.outputs),
            buses,
            timing: TimingMsg {
                period_us: if s.timing.period_ns > 0 {
                    s.timing.period_ns / 1000
                } else {
                    self.period_ns / 1000
                },
                latency: histogram(&s.timing.latency),
                compute: histogram(&s.timing.compute),
                overruns: s.timing.overruns,
                dropped_events: s.dropped_events,
                dropped_status: s.dropped_status,
            },
            counters: p
                .counters
                .iter()
                .zip(&s.counters[..usize::from(s.counter_count)])
                .map(|(name, &value)| CounterMsg {
                    name: name.clone(),
                    value,
                })
                .collect(),
            takt_last_s: self.takt.last_interval_s,
            takt_mean_s: self.takt.mean_s(),
        }
    }

    fn axis(&self, axis: u16) -> String {
        self.program.axis_name(AxisId(axis)).to_owned()
    }

    fn step(&self, instr: u32) -> String {
        step_index(&self.program, instr)
            .and_then(|i| self.program.steps.get(i))
            .map_or_else(|| "(end of pass)".to_owned(), |s| s.path.clone())
    }

    fn bus(&self, bus: u8) -> String {
        self.program
            .buses
            .get(usize::from(bus))
            .map_or_else(|| format!("bus {bus}"), |b| b.name.clone())
    }

    fn node(&self, node: u8) -> String {
        self.program
            .devices
            .iter()
            .find(|d| d.node == node)
            .map_or_else(
                || format!("node {node}"),
                |d| format!("{} (node {node})", d.name),
            )
    }

    /// A trip cause as a sentence. Built from the cause's `Debug` form, with every index
    /// field (`axis`, `node`, `interlock`, `instr`, `bus`) replaced by its name, so a new
    /// cause reads well without a change here.
    pub fn trip_text(&self, cause: TripCause) -> String {
        let debug = format!("{cause:?}");
        let what = words(&debug);
        let Some(fields) = debug
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map(|(fields, _)| fields)
        else {
            return what;
        };
        let named: Vec<String> = fields
            .split(',')
            .filter_map(|f| f.split_once(':'))
            .map(|(k, v)| {
                let (k, v) = (k.trim(), v.trim());
                let n = v.parse::<u32>().ok();
                match (k, n) {
                    ("axis", Some(i)) => format!("axis {}", self.axis(i as u16)),
                    ("node", Some(i)) => self.node(i as u8),
                    ("instr", Some(i)) => format!("step {}", self.step(i)),
                    ("interlock", Some(i)) => format!(
                        "interlock {}",
                        self.program
                            .interlocks
                            .get(i as usize)
                            .map_or("?", |il| il.name.as_str())
                    ),
                    ("bus", Some(i)) => format!(
                        "bus {}",
                        self.program
                            .buses
                            .get(i as usize)
                            .map_or("?", |b| b.name.as_str())
                    ),
                    _ => format!("{k} {v}"),
                }
            })
            .collect();
        format!("{what}: {}", named.join(", "))
    }

    /// The record of an event (seq and times left for the journal to fill, except the
    /// cycle time).
    pub fn record(&mut self, e: &Event) -> Record {
        let mut r = match e.kind {
            EventKind::CellState { from, to } => {
                let mut r = Record::new("cell_state", format!("cell {from:?} -> {to:?}"));
                r.from = Some(name_of(from));
                r.to = Some(name_of(to));
                r
            }
            EventKind::Startup(p) => {
                let mut r = Record::new("startup", format!("start-up: {p:?}"));
                r.to = Some(name_of(p));
                r
            }
            EventKind::Booted { node } => {
                let mut r = Record::new("booted", format!("{} booted", self.node(node)));
                r.node = Some(node);
                r
            }
            EventKind::BootTimeout { node } => {
                let mut r = Record::new(
                    "boot_timeout",
                    format!("{} did not boot by the deadline", self.node(node)),
                );
                r.node = Some(node);
                r
            }
            EventKind::Configured { node } => {
                let mut r = Record::new("configured", format!("{} configured", self.node(node)));
                r.node = Some(node);
                r
            }
            EventKind::ConfigFailed {
                node,
                index,
                sub,
                abort,
            } => {
                let mut r = Record::new(
                    "config_failed",
                    format!(
                        "{}: writing {index:#06X}:{sub:02X} failed (abort {abort:#010X})",
                        self.node(node)
                    ),
                );
                r.node = Some(node);
                r.code = Some(abort);
                r
            }
            EventKind::Homed { axis } => {
                let mut r = Record::new("homed", format!("axis {} homed", self.axis(axis)));
                r.axis = Some(self.axis(axis));
                r
            }
            EventKind::AxisState { axis, from, to } => {
                let mut r = Record::new(
                    "axis_state",
                    format!("axis {}: {from:?} -> {to:?}", self.axis(axis)),
                );
                r.axis = Some(self.axis(axis));
                r.from = Some(name_of(from));
                r.to = Some(name_of(to));
                r
            }
            EventKind::Step { thread, instr } => {
                let step = self.step(instr);
                let mut r = Record::new(
                    "step",
                    format!("thread {thread}: step {step} (the one before it is done)"),
                );
                r.step = Some(step);
                r
            }
            EventKind::Counted { counter, total } => {
                let name = self
                    .program
                    .counters
                    .get(usize::from(counter))
                    .map_or("?", String::as_str)
                    .to_owned();
                if counter == 0 {
                    self.takt.count(e.at, total);
                }
                let mut r = Record::new("counted", format!("{name} = {total}"));
                r.counter = Some(name);
                r.total = Some(total);
                r
            }
            EventKind::Alarm { instr } => {
                let step = self.step(instr);
                let mut r = Record::new("alarm", format!("alarm at step {step} (retrying)"));
                r.step = Some(step);
                r
            }
            EventKind::Watchdog(w) => Record::new("watchdog", w.describe()),
            EventKind::FollowingError {
                axis,
                error_counts,
                window_counts,
                syncs,
            } => {
                let (id, name) = (AxisId(axis), self.axis(axis));
                let unit = self.program.axes.get(id.index()).map_or("", axis_unit);
                let in_units = |c: i64| self.program.to_units(id, c as f64);
                let mut r = Record::new(
                    "following_error",
                    format!(
                        "axis {name}: following error {:.3} {unit} for {syncs} SYNCs in a row \
                         (window {:.3} {unit})",
                        in_units(error_counts),
                        in_units(window_counts)
                    ),
                );
                r.axis = Some(name);
                r
            }
            EventKind::Trip { cause, category } => {
                let mut r = Record::new(
                    "trip",
                    format!("trip: {}; stop category {category}", self.trip_text(cause)),
                );
                r.cause = Some(name_of(cause));
                r.category = Some(category);
                r
            }
            EventKind::Emcy { node, code } => {
                let mut r = Record::new(
                    "emcy",
                    format!("EMCY from {}: {code:#06X}", self.node(node)),
                );
                r.node = Some(node);
                r.code = Some(u32::from(code));
                r
            }
            EventKind::Resync(ev) => {
                Record::new("resync", crate::resync::describe(&self.program, ev))
            }
            EventKind::RxOverflow { bus, total } => {
                let name = self.bus(bus);
                let mut r = Record::new(
                    "rx_overflow",
                    format!(
                        "bus {name}: received frames lost to a full receive queue ({total} so far)"
                    ),
                );
                r.bus = Some(name);
                r.total = Some(total);
                r
            }
            EventKind::BusState {
                bus,
                from,
                to,
                tec,
                rec,
            } => {
                let name = self.bus(bus);
                let mut r = Record::new(
                    "bus_state",
                    format!(
                        "bus {name}: {} -> {}, TEC {tec}, REC {rec}",
                        words(&format!("{from:?}")),
                        words(&format!("{to:?}"))
                    ),
                );
                r.bus = Some(name);
                r.from = Some(name_of(from));
                r.to = Some(name_of(to));
                r
            }
            EventKind::PassDone { passes } => {
                let mut r = Record::new("pass_done", format!("pass {passes} done"));
                r.total = Some(passes);
                r
            }
            EventKind::Command {
                command,
                accepted,
                state,
                ..
            } => {
                let name = CommandName::of(command);
                let state = name_of(state);
                let mut r = Record::new(
                    "command",
                    if accepted {
                        format!("{} accepted", name.as_str())
                    } else {
                        format!(
                            "{} refused: not allowed while the cell is {state}",
                            name.as_str()
                        )
                    },
                );
                r.command = Some(name);
                r.accepted = Some(accepted);
                r.from = Some(state);
                r
            }
        };
        r.cycle_s = Some(e.at.as_micros() as f64 / 1e6);
        r
    }
}

fn histogram(h: &CoarseHistogram) -> HistogramMsg {
    HistogramMsg {
        edges_us: CoarseHistogram::EDGES_US.to_vec(),
        counts: h.counts.to_vec(),
        samples: h.samples,
        p50_us: h.quantile_us(0.5),
        p999_us: h.quantile_us(0.999),
        max_us: h.max_ns.div_ceil(1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_become_snake_case() {
        assert_eq!(snake("OperationEnabled"), "operation_enabled");
        assert_eq!(snake("Interlock { interlock: 2 }"), "interlock");
        assert_eq!(snake("Execute"), "execute");
        assert_eq!(name_of(TripCause::EStopCommand), "estop_command");
    }
}
