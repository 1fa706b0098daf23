//! Faults a simulated run can inject, scheduled through the API or from TOML scenario
//! files (`config/scenarios/*.toml`):
//!
//! ```toml
//! name = "z-loses-steps"
//! description = "Z loses 12 full steps on its way down"
//! seed = 7
//!
//! [[fault]]
//! kind = "lose-steps"
//! at_ms = 2500
//! node = 3
//! steps = 12
//!
//! [[fault]]
//! kind = "drop-frames"
//! at_ms = 1000
//! for_ms = 200
//! cob_id = 0x181
//! probability = 0.5
//! ```
//!
//! Frame faults (drop, delay, corrupt, bus errors) match identifiers by `cob_id` under `mask` (default
//! all 11 bits) with a probability, within `at_ms .. at_ms + for_ms`. Node faults: a node
//! falls silent, reboots (boot-up, dictionary back to defaults), loses steps, raises an
//! EMCY, or goes bus-off (node absent: the controller's interface). World faults: a sensor
//! stuck or chattering, the e-stop chain opened, the guard opened, the light curtain
//! interrupted. A fault without `for_ms` lasts to the end of the run (instant ones just
//! happen at `at_ms`).

use core::time::Duration;

use serde::{Deserialize, Serialize};
use takt_drivers::can::Timestamp;

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultKind {
    /// Matching frames never reach the wire.
    DropFrames {
        /// Identifier to match.
        cob_id: u16,
        /// Mask applied before matching (default 0x7FF: the exact identifier).
        #[serde(default = "full_mask")]
        mask: u16,
        /// Chance that a matching frame is hit (default 1).
        #[serde(default = "certain")]
        probability: f64,
    },
    /// Matching frames wait before arbitrating.
    DelayFrames {
        /// Identifier to match.
        cob_id: u16,
        /// Mask applied before matching.
        #[serde(default = "full_mask")]
        mask: u16,
        /// Chance that a matching frame is hit.
        #[serde(default = "certain")]
        probability: f64,
        /// The delay, ms.
        delay_ms: f64,
    },
    /// Matching frames have their data bytes altered on the wire.
    CorruptFrames {
        /// Identifier to match.
        cob_id: u16,
        /// Mask applied before matching.
        #[serde(default = "full_mask")]
        mask: u16,
        /// Chance that a matching frame is hit.
        #[serde(default = "certain")]
        probability: f64,
    },
    /// Matching frames are destroyed by error frames and retransmitted (CRC, stuff or form
    /// errors from a noisy bus): they cost bus time and arrive late, and the controller
    /// interface's error counters move, to error passive and bus-off if it goes on.
    BusErrors {
        /// Identifier to match.
        cob_id: u16,
        /// Mask applied before matching.
        #[serde(default = "full_mask")]
        mask: u16,
        /// Chance that one transmission of a matching frame is hit.
        #[serde(default = "certain")]
        probability: f64,
    },
    /// The node's transmitter stops: it keeps running but sends nothing.
    NodeSilent {
        /// The node.
        node: u8,
    },
    /// The node reboots: boot-up message, dictionary back to defaults, homing lost.
    NodeReboot {
        /// The node.
        node: u8,
    },
    /// A stepper axis loses full steps.
    LoseSteps {
        /// The drive.
        node: u8,
        /// Full steps lost (positive: the axis ends up behind a positive move).
        steps: i32,
    },
    /// The node raises an internal error with an EMCY (a drive faults).
    Emcy {
        /// The node.
        node: u8,
        /// The CiA 301 / CiA 402 error code.
        code: u16,
    },
    /// A bus-off episode: the node (or the controller's interface) is off the bus.
    BusOff {
        /// The node; absent: the controller.
        #[serde(default)]
        node: Option<u8>,
    },
    /// An I/O input reads a fixed value.
    SensorStuck {
        /// Signal name in the world's wiring (`part_at_pick`).
        input: String,
        /// The value the signal is stuck at (its meaning: for an active-low input, `true`
        /// still means "clear", and the bit reads low).
        value: bool,
    },
    /// An I/O input toggles on its own.
    SensorChatter {
        /// Signal name.
        input: String,
        /// Toggle period, ms.
        period_ms: u64,
    },
    /// The e-stop chain opens (drives lose their power stages).
    EstopOpen,
    /// The guard door opens.
    GuardOpen,
    /// The light curtain is interrupted.
    LightCurtainInterrupted,
}

fn full_mask() -> u16 {
    0x7FF
}

fn certain() -> f64 {
    1.0
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// When it starts, ms after the start of the run.
    pub at_ms: u64,
    /// How long it lasts, ms; absent: to the end of the run.
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// Which bus, for frame faults and the controller's bus-off (default the first).
    #[serde(default)]
    pub bus: usize,
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// A fault of `kind` at `at` for `duration` (none: to the end) on bus 0.
    pub fn new(kind: FaultKind, at: Duration, duration: Option<Duration>) -> Fault {
        Fault {
            at_ms: at.as_millis() as u64,
            for_ms: duration.map(|d| d.as_millis() as u64),
            bus: 0,
            kind,
        }
    }

    /// When it starts.
    pub fn start(&self) -> Timestamp {
        Timestamp::from_millis(self.at_ms)
    }

    /// When it ends, if it does.
    pub fn end(&self) -> Option<Timestamp> {
        self.for_ms.map(|d| Timestamp::from_millis(self.at_ms + d))
    }
}

/// A fault scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: Option<String>,
    /// The seed it was written for (the caller's seed wins when given).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How long to run it, ms.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// The faults.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// What a controller running the cell through it must do (checked by the
    /// controller's scenario tests).
    #[serde(default)]
    pub expect: Option<Expectation>,
}

/// The expected outcome of a scenario for the controller.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The fault class (a key of the cell file's `[stop_categories]`) of the first trip;
    /// absent: the cell must not trip at all.
    #[serde(default)]
    pub trip: Option<String>,
    /// The stop category of that trip.
    #[serde(default)]
    pub category: Option<u8>,
    /// The cell resumes by itself (the cell file's `auto_resume`), without the operator.
    #[serde(default)]
    pub resumes_by_itself: bool,
    /// At least this many axis resyncs.
    #[serde(default)]
    pub resyncs_at_least: u64,
    /// Parts the cell completes, counted by takt and placed in the world alike.
    #[serde(default)]
    pub parts: u64,
    /// A node the controller must configure completely again (it rebooted).
    #[serde(default)]
    pub reconfigured: Option<u8>,
    /// Parts the fault takes off the nozzle; the controller must then hold instead of
    /// resuming (the operator clears the cell and resets).
    #[serde(default)]
    pub dropped: u64,
}

/// Why a scenario could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not describe a scenario.
    #[error("scenario {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Scenario {
    /// Parses a scenario from TOML text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        Scenario::from_toml(&text, &shown)
    }
}

/// What the schedule does at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edge {
    /// The fault at this index starts.
    Start(usize),
    /// The fault at this index ends.
    End(usize),
}

/// Faults sorted into start and end instants, walked as the run advances.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schedule {
    pub faults: Vec<Fault>,
    edges: Vec<(Timestamp, Edge)>,
    next: usize,
}

impl Schedule {
    pub fn add(&mut self, fault: Fault) {
        let i = self.faults.len();
        let (start, end) = (fault.start(), fault.end());
        // Room for this fault's edges and for an end decided when it starts (bus-off),
        // so that stepping never grows the list.
        self.edges.reserve(3);
        self.faults.push(fault);
        // Keep the edges of the instants not yet reached sorted; equal times keep their
        // order of addition, so runs replay exactly.
        let pos = |edges: &[(Timestamp, Edge)], t: Timestamp, from: usize| {
            from + edges[from..].partition_point(|(at, _)| *at <= t)
        };
        let p = pos(&self.edges, start, self.next);
        self.edges.insert(p, (start, Edge::Start(i)));
        if let Some(end) = end {
            let p = pos(&self.edges, end, self.next);
            self.edges.insert(p, (end, Edge::End(i)));
        }
    }

    /// Adds one edge for an existing fault (an end decided when it started).
    pub fn add_edge(&mut self, at: Timestamp, edge: Edge) {
        let p = self.next + self.edges[self.next..].partition_point(|(t, _)| *t <= at);
        self.edges.insert(p, (at, edge));
    }

    /// The next edge due at or before `now`.
    pub fn due(&mut self, now: Timestamp) -> Option<Edge> {
        let (at, edge) = *self.edges.get(self.next)?;
        if at <= now {
            self.next += 1;
            Some(edge)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_example_parses() {
        let text = r#"
name = "z-loses-steps"
description = "Z loses 12 full steps on its way down"
seed = 7

[[fault]]
kind = "lose-steps"
at_ms = 2500
node = 3
steps = 12

[[fault]]
kind = "drop-frames"
at_ms = 1000
for_ms = 200
cob_id = 0x181
probability = 0.5
"#;
        let s = Scenario::from_toml(text, "example.toml").unwrap();
        assert_eq!(s.faults.len(), 2);
        assert_eq!(
            s.faults[0].kind,
            FaultKind::LoseSteps { node: 3, steps: 12 }
        );
        assert_eq!(
            s.faults[1].kind,
            FaultKind::DropFrames {
                cob_id: 0x181,
                mask: 0x7FF,
                probability: 0.5
            }
        );
        let bad = Scenario::from_toml(
            "name = \"x\"\n[[fault]]\nkind = \"meteor\"\nat_ms = 1\n",
            "bad.toml",
        );
        assert!(matches!(bad, Err(ScenarioError::Parse { .. })));
    }

    #[test]
    fn edges_come_in_time_order() {
        let mut s = Schedule::default();
        s.add(Fault::new(
            FaultKind::GuardOpen,
            Duration::from_millis(50),
            Some(Duration::from_millis(10)),
        ));
        s.add(Fault::new(
            FaultKind::EstopOpen,
            Duration::from_millis(20),
            None,
        ));
        assert_eq!(s.due(Timestamp::from_millis(10)), None);
        assert_eq!(s.due(Timestamp::from_millis(100)), Some(Edge::Start(1)));
        assert_eq!(s.due(Timestamp::from_millis(100)), Some(Edge::Start(0)));
        assert_eq!(s.due(Timestamp::from_millis(100)), Some(Edge::End(0)));
        assert_eq!(s.due(Timestamp::from_millis(100)), None);
    }
}
