//! What the console shows, as plain data in display units: the screen is drawn from this
//! and nothing else, so a layout test builds one by hand and the live console fills it from
//! the control socket's status messages ([`super::feed`]).

use std::collections::VecDeque;

/// Lines of the event log kept for scrolling (older ones are dropped first).
pub const EVENT_LOG_LINES: usize = 2000;

/// Everything on the screen that comes from the controller.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CellModel {
    /// The cell's name.
    pub cell_name: String,
    /// The sequence that runs.
    pub sequence_name: String,
    /// This console may only watch: the controller refuses its commands (its user is
    /// neither root, the controller's own user, nor a configured operator).
    pub viewer: bool,
    /// PackML state, as its name (`Execute`, `Aborted`, ...).
    pub cell_state: String,
    /// Start-up phase, while the cell is not ready (`AwaitingBoot`, ...).
    pub startup: Option<String>,
    /// The e-stop latch is set: the banner shows until a reset clears it.
    pub estop_latched: bool,
    /// Why the cell tripped, while it is latched (e-stop or any other trip).
    pub trip: Option<String>,
    /// The step the main thread runs.
    pub step: StepProgress,
    /// Axes, then conveyors.
    pub axes: Vec<AxisRow>,
    /// Inputs of the I/O nodes.
    pub inputs: Vec<IoPoint>,
    /// Outputs of the I/O nodes.
    pub outputs: Vec<IoPoint>,
    /// One panel per bus.
    pub buses: Vec<BusPanel>,
    /// The real-time loop.
    pub timing: Timing,
    /// Production counters and takt time.
    pub production: Production,
}

/// Where the sequence is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepProgress {
    /// The step's path (`pick_and_place.z_down`), empty when none runs.
    pub name: String,
    /// 1-based position of the step in one pass, 0 when none runs.
    pub index: u32,
    /// Steps in one pass.
    pub total: u32,
}

/// One row of the axis table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AxisRow {
    /// Axis name in the cell file.
    pub name: String,
    /// PLCopen axis state (`standstill`, `moving`, `error_stop`, ...).
    pub state: String,
    /// CiA 402 power state of its drive (`operation_enabled`, `fault`, ...).
    pub drive: String,
    /// Unit of the three positions below (`mm`, `deg`).
    pub unit: String,
    /// Set-point.
    pub demand: f64,
    /// Position actual.
    pub actual: f64,
    /// Following error (actual − demand as the drive reports it).
    pub following_error: f64,
    /// Homed since start-up.
    pub homed: bool,
    /// A conveyor in profile velocity: it has no position set-point, so no demand and no
    /// following error to show.
    pub conveyor: bool,
}

/// One named input or output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoPoint {
    /// Name in the cell file.
    pub name: String,
    /// Live value.
    pub on: bool,
}

/// One bus.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BusPanel {
    /// Name in the cell file.
    pub name: String,
    /// Bus load over the last window, percent of the bit rate.
    pub load_percent: f64,
    /// `ok`, or `refusing` while the interface refuses frames.
    pub state: String,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames the interface refused (transmit queue full, bus-off): the error counter the
    /// controller keeps per bus.
    pub tx_refused: u64,
    /// Fault-confinement state of the CAN interface: `error_active`, `error_warning`,
    /// `error_passive`, `bus_off`.
    pub error_state: String,
    /// Transmit error counter, as last reported.
    pub tec: u8,
    /// Receive error counter, as last reported.
    pub rec: u8,
    /// Bus errors (error frames) reported since start.
    pub bus_errors: u64,
    /// Receive-queue overflows reported since start.
    pub rx_overflows: u64,
    /// Times the interface went bus-off.
    pub bus_offs: u64,
    /// The devices on it and their heartbeat.
    pub nodes: Vec<NodeBeat>,
}

/// A device's heartbeat as the controller's consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeBeat {
    /// Node-ID.
    pub node: u8,
    /// Device name in the cell file.
    pub name: String,
    /// NMT state from the last heartbeat (`operational`, `pre_operational`, ...; `none`
    /// before the first).
    pub state: String,
    /// Heartbeats arrive in time.
    pub alive: bool,
}

/// A fixed-bin histogram as the controller reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramView {
    /// Median, µs.
    pub p50_us: f64,
    /// 99.9th percentile, µs.
    pub p99_9_us: f64,
    /// Largest, µs.
    pub max_us: f64,
    /// Bins as (label such as `≤ 50 µs`, samples), in rising order.
    pub bins: Vec<(String, u64)>,
}

/// The real-time loop's statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timing {
    /// Cycle period, µs.
    pub period_us: f64,
    /// Cycles run.
    pub cycles: u64,
    /// Wake-up latency.
    pub latency: HistogramView,
    /// Compute time of the step.
    pub compute: HistogramView,
    /// Cycles whose work ended after the next wake-up was due.
    pub overruns: u64,
    /// Events the cycle could not queue.
    pub dropped_events: u64,
}

/// Production counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Production {
    /// Counters by name, in cell-file order (the first is the parts placed in the demo).
    pub counters: Vec<(String, u64)>,
    /// Passes of the sequence completed.
    pub passes: u64,
    /// Mean time between parts since the first, seconds.
    pub takt_time_s: Option<f64>,
    /// Time between the last two parts, seconds.
    pub last_takt_s: Option<f64>,
}

/// The state of the link to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The first connection is being made.
    Connecting,
    /// Status arrives.
    Up,
    /// The connection dropped (or was refused); the console retries.
    Down {
        /// Why, as the operating system or the controller said it.
        reason: String,
        /// Failed attempts since it dropped.
        attempts: u32,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
}

/// The event log: the newest line last, bounded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventLog {
    lines: VecDeque<String>,
}

impl EventLog {
    /// Appends a line; the oldest goes when the log is full.
    pub fn push(&mut self, line: String) {
        if self.lines.len() == EVENT_LOG_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Lines kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// No line yet.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The `rows` lines that end `scroll` lines above the newest one (a scroll past the
    /// oldest line shows the oldest ones).
    pub fn window(&self, rows: usize, scroll: usize) -> impl Iterator<Item = &str> {
        let end = self
            .lines
            .len()
            .saturating_sub(scroll)
            .max(rows.min(self.lines.len()));
        let start = end.saturating_sub(rows);
        self.lines.range(start..end).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_window_follows_the_newest_lines_and_scrolls_back() {
        let mut log = EventLog::default();
        for i in 0..10 {
            log.push(format!("e{i}"));
        }
        let w: Vec<_> = log.window(3, 0).collect();
        assert_eq!(w, ["e7", "e8", "e9"]);
        let w: Vec<_> = log.window(3, 2).collect();
        assert_eq!(w, ["e5", "e6", "e7"]);
        let w: Vec<_> = log.window(3, 100).collect();
        assert_eq!(w, ["e0", "e1", "e2"]);
    }

    #[test]
    fn event_log_drops_the_oldest_line_when_full() {
        let mut log = EventLog::default();
        for i in 0..EVENT_LOG_LINES + 5 {
            log.push(format!("e{i}"));
        }
        assert_eq!(log.len(), EVENT_LOG_LINES);
        assert_eq!(log.window(1, EVENT_LOG_LINES).next(), Some("e5"));
    }
}
