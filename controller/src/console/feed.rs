//! The console fed by the control protocol: status messages become the screen's model,
//! journal records become log lines, and commands go out without waiting for their reply
//! (the reply is matched by id later), so the screen never freezes on a slow controller.
//!
//! The subscription starts with the controller's last events (its backlog), so the log
//! tells what led to now. After a reconnection the ones already shown are left out: the
//! backlog is cut after the last record this console showed, when it is among them.

use std::collections::HashMap;
use std::time::Duration;

use super::model::{
    AxisRow, BusPanel, CellModel, HistogramView, IoPoint, NodeBeat, Production, StepProgress,
    Timing,
};
use super::{Source, Update};
use crate::commands::Command;
use crate::control::client::{ClientError, Connection};
use crate::control::protocol::{CommandName, HistogramMsg, Op, Record, Role, ServerMsg, StatusMsg};

/// Status snapshots per second the console asks for.
pub const STATUS_HZ: f64 = 10.0;

/// Messages taken in per [`Source::poll`], so a flood cannot starve the keyboard.
const POLL_BATCH: usize = 512;

/// A link made by `connect`, remade by it after a drop.
pub struct Attached<C, F> {
    connect: F,
    conn: Option<C>,
    /// Command requests waiting for their reply, by request id.
    waiting: HashMap<u64, Command>,
    /// The cell's and the sequence's names, from the controller's greeting.
    names: (String, String),
    /// The greeting said this client is a viewer.
    viewer: bool,
    /// The subscription's request id, until its reply arrives.
    subscription: Option<u64>,
    /// Past events the subscription's reply announced: how many, and those here so far.
    backlog: Option<(usize, Vec<Record>)>,
    /// The newest event shown, to find it in the backlog after a reconnection.
    last_shown: Option<Record>,
}

impl<C, F> std::fmt::Debug for Attached<C, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("connected", &self.conn.is_some())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl<C: Connection, F: FnMut() -> Result<C, ClientError>> Attached<C, F> {
    /// A link that connects with `connect`.
    pub fn new(connect: F) -> Attached<C, F> {
        Attached {
            connect,
            conn: None,
            waiting: HashMap::new(),
            names: (String::new(), String::new()),
            viewer: false,
            subscription: None,
            backlog: None,
            last_shown: None,
        }
    }

    fn show(&mut self, r: Record, out: &mut Vec<Update>) {
        out.push(Update::Event(log_line(&r)));
        self.last_shown = Some(r);
    }

    /// Shows a whole backlog, without what this console showed before it last lost the
    /// link (everything up to the last record shown, when the backlog holds it).
    fn show_backlog(&mut self, past: Vec<Record>, out: &mut Vec<Update>) {
        let seen = self
            .last_shown
            .as_ref()
            .and_then(|last| past.iter().rposition(|r| r == last))
            .map_or(0, |i| i + 1);
        for r in past.into_iter().skip(seen) {
            self.show(r, out);
        }
    }
}

impl<C: Connection, F: FnMut() -> Result<C, ClientError>> Source for Attached<C, F> {
    fn connect(&mut self) -> Result<(), String> {
        self.conn = None;
        self.waiting.clear();
        self.backlog = None;
        let mut conn = (self.connect)().map_err(|e| e.to_string())?;
        // The events kept from before come first, so the log tells what led here.
        let id = conn
            .send(Op::Subscribe {
                status_hz: Some(STATUS_HZ),
                events: true,
                backlog: None,
            })
            .map_err(|e| e.to_string())?;
        self.subscription = Some(id);
        let hello = conn.hello();
        self.names = (hello.cell.clone(), hello.sequence.clone());
        self.viewer = hello.role == Role::Viewer;
        self.conn = Some(conn);
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Update>) -> Result<(), String> {
        for _ in 0..POLL_BATCH {
            let Some(conn) = self.conn.as_mut() else {
                return Err("not connected".to_owned());
            };
            let msg = match conn.recv_timeout(Duration::ZERO) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    self.conn = None;
                    return Err(e.to_string());
                }
            };
            match msg {
                ServerMsg::Status(s) => {
                    let mut m = model(&s);
                    m.cell_name.clone_from(&self.names.0);
                    m.sequence_name.clone_from(&self.names.1);
                    m.viewer = self.viewer;
                    out.push(Update::Status(Box::new(m)));
                }
                ServerMsg::Event(r) => match &mut self.backlog {
                    Some((n, past)) => {
                        past.push(*r);
                        if past.len() >= *n
                            && let Some((_, past)) = self.backlog.take()
                        {
                            self.show_backlog(past, out);
                        }
                    }
                    None => self.show(*r, out),
                },
                ServerMsg::Reply(r) if r.id.is_some() && r.id == self.subscription => {
                    self.subscription = None;
                    match (r.ok, r.backlog) {
                        (true, Some(n)) if n > 0 => self.backlog = Some((n, Vec::with_capacity(n))),
                        (true, _) => {}
                        (false, _) => out.push(Update::Event(format!(
                            "the controller refused this console's subscription: {}",
                            r.error.map_or_else(String::new, |e| e.message)
                        ))),
                    }
                }
                ServerMsg::Reply(r) => {
                    if let Some(command) = r.id.and_then(|id| self.waiting.remove(&id)) {
                        let result = if r.ok {
                            Ok(())
                        } else {
                            Err(r.error.map_or_else(|| "refused".to_owned(), |e| e.message))
                        };
                        out.push(Update::Reply { command, result });
                    }
                }
                ServerMsg::Dropped { events, status } => out.push(Update::Event(format!(
                    "this console read too slowly: {events} events and {status} snapshots \
                     missed (the events are in the journal)"
                ))),
                ServerMsg::Bye { reason } => {
                    self.conn = None;
                    return Err(format!("the controller went away: {reason}"));
                }
                ServerMsg::Hello(_) => {}
            }
        }
        Ok(())
    }

    fn command(&mut self, command: Command) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else {
            return Err("not connected".to_owned());
        };
        match conn.send(Op::Command {
            command: CommandName::of(command),
        }) {
            Ok(id) => {
                self.waiting.insert(id, command);
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(e.to_string())
            }
        }
    }
}

/// One log line for a journal record: cycle time (or wall time), kind, text.
pub fn log_line(r: &Record) -> String {
    match r.cycle_s {
        Some(t) => format!("{t:9.3} s  {:<10} {}", r.kind, r.text),
        None => {
            // Wall time without the date: `2026-11-22T04:25:00.123Z` → `04:25:00.123`.
            let clock = r.wall.get(11..23).unwrap_or(&r.wall);
            format!("{clock:>11}  {:<10} {}", r.kind, r.text)
        }
    }
}

fn histogram(h: &HistogramMsg) -> HistogramView {
    let mut bins: Vec<(String, u64)> = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let label = match h.edges_us.get(i) {
                Some(edge) => format!("≤{edge:>6} µs"),
                None => format!(">{:>6} µs", h.edges_us.last().copied().unwrap_or(0)),
            };
            (label, n)
        })
        .collect();
    // Empty bins at either end say nothing; the ones between keep the shape honest.
    while bins.last().is_some_and(|b| b.1 == 0) {
        bins.pop();
    }
    let first = bins.iter().position(|b| b.1 > 0).unwrap_or(0);
    bins.drain(..first);
    HistogramView {
        p50_us: h.p50_us as f64,
        p99_9_us: h.p999_us as f64,
        max_us: h.max_us as f64,
        bins,
    }
}

/// The screen's model for a status message.
pub fn model(s: &StatusMsg) -> CellModel {
    CellModel {
        cell_name: String::new(),
        sequence_name: String::new(),
        viewer: false,
        cell_state: s.cell.clone(),
        startup: (s.startup != "ready").then(|| s.startup.clone()),
        estop_latched: s.estop_latched,
        trip: s.trip.as_ref().map(|t| t.text.clone()),
        step: s
            .step
            .as_ref()
            .map_or_else(StepProgress::default, |st| StepProgress {
                name: st.name.clone(),
                index: u32::try_from(st.number).unwrap_or(u32::MAX),
                total: u32::try_from(st.of).unwrap_or(u32::MAX),
            }),
        axes: s
            .axes
            .iter()
            .map(|a| AxisRow {
                name: a.name.clone(),
                state: a.state.clone(),
                drive: a.drive.clone(),
                unit: a.unit.clone(),
                demand: a.demand,
                actual: a.actual,
                following_error: a.following_error,
                homed: a.homed,
                conveyor: a.conveyor,
            })
            .collect(),
        inputs: io(&s.inputs),
        outputs: io(&s.outputs),
        buses: s
            .buses
            .iter()
            .map(|b| BusPanel {
                name: format!(
                    "{} ({}, {} kbit/s)",
                    b.name,
                    b.interface,
                    b.bitrate_bit_s / 1000
                ),
                load_percent: b.load_percent,
                state: b.state.clone(),
                frames_in: b.frames_in,
                frames_out: b.frames_out,
                tx_refused: b.tx_refused,
                error_state: b.error_state.clone(),
                tec: b.tec,
                rec: b.rec,
                bus_errors: b.bus_errors,
                rx_overflows: b.rx_overflows,
                bus_offs: b.bus_offs,
                nodes: b
                    .nodes
                    .iter()
                    .map(|n| NodeBeat {
                        node: n.node,
                        name: n.name.clone(),
                        state: n.nmt.clone(),
                        alive: n.alive,
                    })
                    .collect(),
            })
            .collect(),
        timing: Timing {
            period_us: s.timing.period_us as f64,
            cycles: s.cycles,
            latency: histogram(&s.timing.latency),
            compute: histogram(&s.timing.compute),
            overruns: s.timing.overruns,
            dropped_events: s.timing.dropped_events,
        },
        production: Production {
            counters: s
                .counters
                .iter()
                .map(|c| (c.name.clone(), c.value))
                .collect(),
            passes: s.passes,
            takt_time_s: s.takt_mean_s,
            last_takt_s: s.takt_last_s,
        },
    }
}

fn io(points: &[crate::control::protocol::IoMsg]) -> Vec<IoPoint> {
    points
        .iter()
        .map(|p| IoPoint {
            name: p.name.clone(),
            on: p.value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::Reply;

    /// A status line as the controller sends it (protocol v1).
    const STATUS: &str = r#"{"type":"status","seq":7,"at_s":12.5,"cycles":12500,
        "cell":"aborted","startup":"ready",
        "step":{"name":"pick_and_place.z_down_pick","kind":"move","number":4,"of":13},
        "passes":2,"estop_latched":true,
        "trip":{"cause":"estop_command","text":"e-stop command"},
        "axes":[{"name":"z","unit":"mm","conveyor":false,"state":"error_stop",
                 "drive":"quick_stop_active","demand":10.0,"actual":10.5,
                 "following_error":0.5,"homed":true}],
        "inputs":[{"name":"part_at_pick","value":true}],
        "outputs":[{"name":"vacuum_on","value":false}],
        "buses":[{"name":"main","interface":"can0","bitrate_bit_s":1000000,
                  "load_percent":53.8,"frames_in":10,"frames_out":20,"tx_refused":1,
                  "state":"refusing",
                  "nodes":[{"node":3,"name":"z_drive","kind":"stepper","nmt":"operational",
                            "alive":false}]}],
        "timing":{"period_us":1000,
                  "latency":{"edges_us":[10,20,50],"counts":[0,5,0,1],"samples":6,
                             "p50_us":20,"p999_us":100,"max_us":80},
                  "compute":{"edges_us":[1,2],"counts":[0,0,0],"samples":0,
                             "p50_us":0,"p999_us":0,"max_us":0},
                  "overruns":3,"dropped_events":0,"dropped_status":0},
        "counters":[{"name":"parts_placed","value":2}],
        "takt_last_s":4.1,"takt_mean_s":4.2}"#;

    #[test]
    fn a_status_message_becomes_the_screen_model() {
        let Ok(ServerMsg::Status(s)) = serde_json::from_str::<ServerMsg>(STATUS) else {
            panic!("the status line does not parse");
        };
        let m = model(&s);
        assert_eq!(m.cell_state, "aborted");
        assert_eq!(m.startup, None);
        assert!(m.estop_latched);
        assert_eq!(m.trip.as_deref(), Some("e-stop command"));
        assert_eq!((m.step.index, m.step.total), (4, 13));
        assert_eq!(m.axes[0].drive, "quick_stop_active");
        assert!((m.axes[0].following_error - 0.5).abs() < 1e-12);
        assert!(m.inputs[0].on && !m.outputs[0].on);
        assert_eq!(m.buses[0].name, "main (can0, 1000 kbit/s)");
        assert!(!m.buses[0].nodes[0].alive);
        assert_eq!(m.timing.overruns, 3);
        assert_eq!(m.production.counters, [("parts_placed".to_owned(), 2)]);
        assert_eq!(m.production.takt_time_s, Some(4.2));
        // Empty bins at the ends are left out, the ones between kept; the open bin named.
        let labels: Vec<_> = m.timing.latency.bins.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(labels, ["≤    20 µs", "≤    50 µs", ">    50 µs"]);
        assert!(m.timing.compute.bins.is_empty());
    }

    /// A connection that hands out a script of messages, its requests numbered from 1.
    struct Scripted {
        hello: crate::control::protocol::Hello,
        script: std::collections::VecDeque<ServerMsg>,
    }

    impl Connection for Scripted {
        fn hello(&self) -> &crate::control::protocol::Hello {
            &self.hello
        }

        fn send(&mut self, _op: Op) -> Result<u64, ClientError> {
            Ok(1)
        }

        fn recv_timeout(&mut self, _t: Duration) -> Result<Option<ServerMsg>, ClientError> {
            // The end of the script is the controller going away.
            self.script.pop_front().map(Some).ok_or(ClientError::Closed)
        }

        fn call(&mut self, _op: Op, _t: Duration) -> Result<Reply, ClientError> {
            Err(ClientError::Closed)
        }
    }

    fn event(seq: u64, text: &str) -> ServerMsg {
        let mut r = Record::new("step", text);
        r.seq = seq;
        r.wall = format!("2026-11-22T04:00:{seq:02}.000Z");
        r.cycle_s = Some(seq as f64);
        ServerMsg::Event(Box::new(r))
    }

    /// The reply to the subscription, announcing `backlog` past events.
    fn subscribed(backlog: usize) -> ServerMsg {
        ServerMsg::Reply(Reply {
            backlog: Some(backlog),
            ..Reply::ok(1)
        })
    }

    fn hello() -> crate::control::protocol::Hello {
        serde_json::from_str(
            r#"{"protocol":1,"server":"takt","cell":"c","sequence":"s","role":"operator",
                "uid":0,"max_line_bytes":4096,"status_hz_min":0.1,"status_hz_max":50.0,
                "commands":[]}"#,
        )
        .unwrap()
    }

    /// The texts of the log lines `source` gives until its link drops.
    fn lines<F: FnMut() -> Result<Scripted, ClientError>>(
        source: &mut Attached<Scripted, F>,
    ) -> Vec<String> {
        source.connect().unwrap();
        let mut out = Vec::new();
        assert!(source.poll(&mut out).is_err(), "the script ends the link");
        out.into_iter()
            .filter_map(|u| match u {
                Update::Event(line) => line.split_whitespace().last().map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_backlog_comes_first_and_a_reconnection_leaves_out_what_was_shown() {
        let scripts = vec![
            // Attached mid-run: two past events, then a live one; the link drops.
            vec![subscribed(2), event(1, "a"), event(2, "b"), event(3, "c")],
            // Back: the backlog overlaps what was shown; only the new one is shown.
            vec![subscribed(3), event(2, "b"), event(3, "c"), event(4, "d")],
            // A controller with another journal: its records are all new.
            vec![subscribed(2), event(1, "x"), event(2, "y")],
        ];
        let mut scripts = scripts.into_iter();
        let mut source = Attached::new(|| {
            Ok(Scripted {
                hello: hello(),
                script: scripts.next().unwrap_or_default().into(),
            })
        });
        assert_eq!(lines(&mut source), ["a", "b", "c"]);
        assert_eq!(lines(&mut source), ["d"]);
        assert_eq!(lines(&mut source), ["x", "y"]);
    }

    #[test]
    fn records_become_log_lines_with_cycle_or_wall_time() {
        let mut r = Record::new("trip", "e-stop command, stop category 1");
        r.cycle_s = Some(242.004);
        assert_eq!(
            log_line(&r),
            "  242.004 s  trip       e-stop command, stop category 1"
        );
        r.cycle_s = None;
        r.wall = "2026-11-22T04:25:00.123Z".to_owned();
        assert_eq!(
            log_line(&r),
            "04:25:00.123  trip       e-stop command, stop category 1"
        );
    }
}
