//! The control protocol, version [`PROTOCOL_VERSION`]: line-delimited JSON over the control
//! socket (and, as the same typed messages, in-process).
//!
//! Every line is one JSON object, UTF-8, ended by `\n`, at most [`MAX_LINE_BYTES`] bytes.
//!
//! **Client → controller**: requests, each with a numeric `id` the reply carries back and an
//! `op`:
//!
//! | `op` | fields | what it does |
//! |---|---|---|
//! | `hello` | `protocol` (optional), `client` (optional name) | answers with a [`Hello`] (also sent unasked on connect) |
//! | `subscribe` | `status_hz` (optional, [`STATUS_HZ_MIN`]..=[`STATUS_HZ_MAX`], default [`STATUS_HZ_DEFAULT`]), `events` (optional, default true), `backlog` (optional, 0..=[`BACKLOG_EVENTS`], default all kept) | status snapshots at that rate, and every event; the reply says how many past events (`backlog`) follow it before the live ones |
//! | `unsubscribe` | | no more status or events |
//! | `status` | | one status snapshot, in the reply |
//! | `command` | `command`: one of `estop`, `reset`, `start`, `hold`, `resume`, `stop`, `step` | operators only; the reply comes once the cycle took or refused it |
//!
//! **Controller → client**: objects tagged by `type` ([`ServerMsg`]): `hello`, `reply`
//! (`ok`, or `error` with a [`ErrorCode`] and a sentence), `status` ([`StatusMsg`]),
//! `event` ([`Record`], the same record the journal holds), `dropped` (what this client
//! missed because it read too slowly) and `bye` (the controller is going away).
//!
//! A request's reply may be preceded by status and event messages; match replies by `id`.
//!
//! ```text
//! → {"id":1,"op":"subscribe","status_hz":2,"backlog":2}
//! ← {"type":"reply","id":1,"ok":true,"backlog":2}
//! ← {"type":"event","seq":37,"kind":"step","text":"thread 0: step pick_and_place.to_pick ...",...}
//! ← {"type":"event","seq":38,"kind":"bus_state","text":"bus can0: error active -> error warning, TEC 0, REC 96",...}
//! ← {"type":"status","seq":7,"cell":"execute",...}
//! → {"id":2,"op":"command","command":"estop"}
//! ← {"type":"event","seq":40,"kind":"command","text":"estop by uid 1000 (alice) accepted",...}
//! ← {"type":"reply","id":2,"ok":true,"journal_seq":40}
//! ```
//!
//! Compatibility: within one protocol version fields are only ever added; clients ignore
//! fields they do not know. A removed or changed field bumps [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::commands::Command;

/// The protocol version this controller speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest request line accepted, newline included; longer lines get
/// [`ErrorCode::LineTooLong`] and are skipped up to their newline.
pub const MAX_LINE_BYTES: usize = 4096;
/// Slowest status rate a subscriber may ask for.
pub const STATUS_HZ_MIN: f64 = 0.1;
/// Fastest status rate a subscriber may ask for (an operator screen needs no more; the
/// cycle makes a snapshot every 10 ms).
pub const STATUS_HZ_MAX: f64 = 50.0;
/// Status rate when the subscriber does not say.
pub const STATUS_HZ_DEFAULT: f64 = 10.0;
/// Past events the controller keeps for a subscriber that attaches mid-run (the newest
/// ones); well below a client's queue, so the backlog never crowds out live messages.
pub const BACKLOG_EVENTS: usize = 100;

/// A request, as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; the reply carries it back.
    pub id: u64,
    /// What is asked.
    #[serde(flatten)]
    pub op: Op,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Version handshake.
    Hello {
        /// The protocol version the client speaks; a different one is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u32>,
        /// The client's name, for the journal and logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Status snapshots at `status_hz` and (if `events`) every event.
    Subscribe {
        /// Snapshots per second.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_hz: Option<f64>,
        /// Also every event.
        #[serde(default = "yes")]
        events: bool,
        /// With `events`: first this many of the newest past events (none: every one
        /// kept, at most [`BACKLOG_EVENTS`]), oldest first, right after the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backlog: Option<usize>,
    },
    /// Stop the subscription.
    Unsubscribe,
    /// One status snapshot, in the reply.
    Status,
    /// A command to the cell (operators only).
    Command {
        /// Which.
        command: CommandName,
    },
}

fn yes() -> bool {
    true
}

/// The `op` names, for the "unknown op" error.
pub const OPS: [&str; 5] = ["hello", "subscribe", "unsubscribe", "status", "command"];

/// A command as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    /// Latch an e-stop.
    Estop,
    /// Aborted → Clearing → Stopped; never restarts motion.
    Reset,
    /// Stopped → Starting → Execute.
    Start,
    /// Execute → Holding → Held.
    Hold,
    /// Held → Execute.
    Resume,
    /// Stop at the end of the current pass.
    Stop,
    /// In Held: one step, then hold again.
    Step,
}

impl CommandName {
    /// Every command.
    pub const ALL: [CommandName; 7] = [
        CommandName::Estop,
        CommandName::Reset,
        CommandName::Start,
        CommandName::Hold,
        CommandName::Resume,
        CommandName::Stop,
        CommandName::Step,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Estop => "estop",
            CommandName::Reset => "reset",
            CommandName::Start => "start",
            CommandName::Hold => "hold",
            CommandName::Resume => "resume",
            CommandName::Stop => "stop",
            CommandName::Step => "step",
        }
    }

    /// The command by its wire name.
    pub fn parse(name: &str) -> Option<CommandName> {
        CommandName::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The cell's command.
    pub fn command(self) -> Command {
        match self {
            CommandName::Estop => Command::EStop,
            CommandName::Reset => Command::Reset,
            CommandName::Start => Command::Start,
            CommandName::Hold => Command::Hold,
            CommandName::Resume => Command::Resume,
            CommandName::Stop => Command::Stop,
            CommandName::Step => Command::SingleStep,
        }
    }

    /// The wire name of the cell's command.
    pub fn of(command: Command) -> CommandName {
        match command {
            Command::EStop => CommandName::Estop,
            Command::Reset => CommandName::Reset,
            Command::Start => CommandName::Start,
            Command::Hold => CommandName::Hold,
            Command::Resume => CommandName::Resume,
            Command::Stop => CommandName::Stop,
            Command::SingleStep => CommandName::Step,
        }
    }
}

/// What a peer may do, decided from its credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads status and events.
    Viewer,
    /// Also commands the cell.
    Operator,
}

/// Who sent a command, and from where (journaled with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// User id of the peer process.
    pub uid: u32,
    /// Its user name, when the password database knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its process id (0 in-process).
    pub pid: i32,
    /// Its role.
    pub role: Role,
    /// How it is connected: the socket path, or `in-process`, or `takt run` for the
    /// controller's own commands (the start at launch, the stop at the end).
    pub via: String,
    /// The name the client gave in `hello`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not JSON.
    MalformedJson,
    /// JSON, but not a request: no numeric `id`, wrong field types, missing fields.
    BadRequest,
    /// An `op` this controller does not know.
    UnknownOp,
    /// A `command` this controller does not know.
    UnknownCommand,
    /// The peer's role does not allow this (a viewer commanding).
    NotPermitted,
    /// The cell's state does not allow this command now (the cell is unchanged).
    NotAllowedInState,
    /// The line is longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// The protocol version asked for is not spoken here.
    UnsupportedVersion,
    /// The command queue is full or the controller is busy; try again.
    Busy,
    /// The controller is shutting down; the command was not taken.
    ShuttingDown,
    /// The journal could not record the command; it was taken but is not durable.
    JournalFailed,
}

/// An error reply's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable.
    pub code: ErrorCode,
    /// One sentence for a person.
    pub message: String,
}

/// The reply to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id (`null` when the request had none that could be read).
    pub id: Option<u64>,
    /// Done.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// For a command: the journal record of it (durable before this reply was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
    /// For `status`: the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<StatusMsg>>,
    /// For `subscribe` with events: how many past events follow this reply (the newest the
    /// controller kept, oldest first) before the live ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<usize>,
}

impl Reply {
    /// Success.
    pub fn ok(id: u64) -> Reply {
        Reply {
            id: Some(id),
            ok: true,
            error: None,
            journal_seq: None,
            status: None,
            backlog: None,
        }
    }

    /// Failure.
    pub fn error(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply {
            id,
            ok: false,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
            journal_seq: None,
            status: None,
            backlog: None,
        }
    }
}

/// The greeting, sent on connect and in answer to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// `takt <version>`.
    pub server: String,
    /// The cell's name.
    pub cell: String,
    /// The sequence it runs.
    pub sequence: String,
    /// What this peer may do.
    pub role: Role,
    /// The peer's uid as the controller sees it.
    pub uid: u32,
    /// Longest request line.
    pub max_line_bytes: usize,
    /// Status rate bounds.
    pub status_hz_min: f64,
    /// Status rate bounds.
    pub status_hz_max: f64,
    /// Command names this controller takes.
    pub commands: Vec<CommandName>,
}

/// Something the controller sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The greeting.
    Hello(Hello),
    /// The answer to a request.
    Reply(Reply),
    /// A status snapshot.
    Status(Box<StatusMsg>),
    /// An event (the journal's record of it).
    Event(Box<Record>),
    /// This client read too slowly: so many messages were dropped for it since the last
    /// notice. Status snapshots go first (the next one replaces them); events only when
    /// the queue holds nothing else.
    Dropped {
        /// Events this client missed (they are in the journal).
        events: u64,
        /// Status snapshots this client missed.
        status: u64,
    },
    /// The controller is going away (the run ended).
    Bye {
        /// Why.
        reason: String,
    },
}

/// One step of the sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMsg {
    /// `pick_and_place.to_pick`.
    pub name: String,
    /// `move`, `wait`, …
    pub kind: String,
    /// 1-based position in the sequence.
    pub number: usize,
    /// Steps in the sequence.
    pub of: usize,
}

/// A trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripMsg {
    /// `estop_command`, `interlock`, `following_error`, … (snake case of the cause).
    pub cause: String,
    /// A sentence, names looked up.
    pub text: String,
}

/// One axis or conveyor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisMsg {
    /// Name in the cell file.
    pub name: String,
    /// User unit: `mm` or `deg`.
    pub unit: String,
    /// A conveyor (endless, positions wrap meaninglessly).
    pub conveyor: bool,
    /// PLCopen state: `disabled`, `standstill`, `homing`, `moving`, `stopping`, `error_stop`.
    pub state: String,
    /// CiA 402 power state: `not_ready_to_switch_on`, …, `operation_enabled`, `fault`.
    pub drive: String,
    /// Set-point, user units.
    pub demand: f64,
    /// Position actual, user units.
    pub actual: f64,
    /// Following error, user units.
    pub following_error: f64,
    /// Homed.
    pub homed: bool,
}

/// One input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoMsg {
    /// Name in the cell file.
    pub name: String,
    /// Active (after active-low inversion for inputs), or switched on.
    pub value: bool,
}

/// One device on a bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMsg {
    /// Node-ID.
    pub node: u8,
    /// Name in the cell file.
    pub name: String,
    /// `servo`, `stepper`, `conveyor`, `io`.
    pub kind: String,
    /// Last NMT state in its heartbeat: `boot_up`, `stopped`, `operational`,
    /// `pre_operational`; `none` before the first one.
    pub nmt: String,
    /// Heartbeats arrive in time.
    pub alive: bool,
}

/// One CAN bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusMsg {
    /// Name in the cell file.
    pub name: String,
    /// SocketCAN interface.
    pub interface: String,
    /// Bit rate.
    pub bitrate_bit_s: u32,
    /// Load over the last status interval, percent of the bit rate (frames counted by the
    /// controller, worst-case stuffing).
    pub load_percent: f64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames the interface refused (transmit queue full, bus-off): the controller's error
    /// counter for this bus.
    pub tx_refused: u64,
    /// `bus_off` while the interface reports bus-off, else `refusing` when a frame was
    /// refused in the last interval, else `ok`.
    pub state: String,
    /// Fault-confinement state of the CAN interface (ISO 11898-1), as its error frames and
    /// restarts reported it: `error_active`, `error_warning` (an error counter reached 96),
    /// `error_passive` (128), `bus_off` (TEC above 255).
    #[serde(default = "error_active")]
    pub error_state: String,
    /// Transmit error counter (TEC) at the interface's last report (error frames and state
    /// changes carry it; its counting down between errors is not reported); 0 after a
    /// restart.
    #[serde(default)]
    pub tec: u8,
    /// Receive error counter (REC), likewise.
    #[serde(default)]
    pub rec: u8,
    /// Bus errors reported since the controller started (bit, stuff, form, ACK, CRC: one
    /// error frame each).
    #[serde(default)]
    pub bus_errors: u64,
    /// Times frames were lost to a full receive queue (socket or controller).
    #[serde(default)]
    pub rx_overflows: u64,
    /// Times the interface went bus-off.
    #[serde(default)]
    pub bus_offs: u64,
    /// Its devices.
    pub nodes: Vec<NodeMsg>,
}

fn error_active() -> String {
    "error_active".to_owned()
}

/// A timing distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramMsg {
    /// Upper bin edges in µs; the last bin is open.
    pub edges_us: Vec<u64>,
    /// Samples per bin (one more than `edges_us`).
    pub counts: Vec<u64>,
    /// Samples.
    pub samples: u64,
    /// Median, as the upper edge of its bin.
    pub p50_us: u64,
    /// 99.9th percentile, as the upper edge of its bin.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

/// The cycle's timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingMsg {
    /// The cycle period.
    pub period_us: u64,
    /// Wake-up latency (empty in simulated time).
    pub latency: HistogramMsg,
    /// Compute time of the step.
    pub compute: HistogramMsg,
    /// Cycles whose work ended after the next wake-up was due.
    pub overruns: u64,
    /// Events the cycle could not queue (its event queue was full).
    pub dropped_events: u64,
    /// Status snapshots the cycle could not queue (the newest wins; harmless).
    pub dropped_status: u64,
}

/// A production counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterMsg {
    /// Name in the sequence.
    pub name: String,
    /// Value.
    pub value: u64,
}

/// The status snapshot an operator screen shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMsg {
    /// Snapshot number (increases; gaps are snapshots this client did not get).
    pub seq: u64,
    /// Cycle time, seconds since the controller started.
    pub at_s: f64,
    /// Cycles run.
    pub cycles: u64,
    /// PackML state: `stopped`, `starting`, `execute`, `holding`, `held`, `stopping`,
    /// `aborting`, `aborted`, `clearing`.
    pub cell: String,
    /// Start-up: `awaiting_boot`, `configuring`, `awaiting_start`, `enabling`, `ready`,
    /// `failed`.
    pub startup: String,
    /// The main thread's current step (none at the end of a pass).
    pub step: Option<StepMsg>,
    /// Passes of the sequence completed.
    pub passes: u64,
    /// An e-stop (chain or command) is latched: the cell needs a reset.
    pub estop_latched: bool,
    /// The latched trip.
    pub trip: Option<TripMsg>,
    /// Axes, then conveyors.
    pub axes: Vec<AxisMsg>,
    /// Inputs.
    pub inputs: Vec<IoMsg>,
    /// Outputs.
    pub outputs: Vec<IoMsg>,
    /// Buses with their devices.
    pub buses: Vec<BusMsg>,
    /// Cycle timing.
    pub timing: TimingMsg,
    /// Production counters.
    pub counters: Vec<CounterMsg>,
    /// Time between the last two counts of the first counter (the takt time).
    pub takt_last_s: Option<f64>,
    /// Mean time per count of the first counter since the first count.
    pub takt_mean_s: Option<f64>,
}

/// An event or an operator command, as the journal records it and subscribers receive it.
///
/// Every record has `seq`, the times and `kind` + `text`; the other fields appear when
/// they apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Journal sequence number: increases by one per record, across rotations and restarts
    /// (a restart continues from the last record found).
    pub seq: u64,
    /// CLOCK_MONOTONIC when the record was made, ns.
    pub mono_ns: u64,
    /// Wall-clock time (UTC, RFC 3339, ms).
    pub wall: String,
    /// The cycle's time of the event, seconds since the controller started (virtual time in
    /// simulation); absent for records not from the cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_s: Option<f64>,
    /// What: `command`, `cell_state`, `trip`, `step`, `counted`, … (see the README).
    pub kind: String,
    /// A sentence, names looked up.
    pub text: String,
    /// State before (`cell_state`, `axis_state`); for a `command`, the cell's state the
    /// cycle took it in (what allowed or refused it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// State after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The axis's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axis: Option<String>,
    /// The bus's name (`bus_state`, `rx_overflow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// The device's node-ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u8>,
    /// The step's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The counter's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// The counter's total, the pass count, or a bus's receive overflows so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// A trip's cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// A trip's stop category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<u8>,
    /// A command's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandName>,
    /// Whether the cell's state allowed the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// Who sent the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Peer>,
    /// An EMCY error code, SDO abort code or object index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}

impl Record {
    /// A record of `kind` with `text` and nothing else set (seq and times are the
    /// journal's to fill).
    pub fn new(kind: &str, text: impl Into<String>) -> Record {
        Record {
            seq: 0,
            mono_ns: 0,
            wall: String::new(),
            cycle_s: None,
            kind: kind.to_owned(),
            text: text.into(),
            from: None,
            to: None,
            axis: None,
            bus: None,
            node: None,
            step: None,
            counter: None,
            total: None,
            cause: None,
            category: None,
            command: None,
            accepted: None,
            by: None,
            code: None,
        }
    }
}

/// Why a line is not a request: the reply to send.
pub fn parse_request(line: &str) -> Result<Request, Reply> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        Reply::error(
            None,
            ErrorCode::MalformedJson,
            format!("the line is not JSON: {e}"),
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err(Reply::error(
            None,
            ErrorCode::BadRequest,
            "a request is a JSON object with an id and an op",
        ));
    };
    let Some(id) = obj.get("id").and_then(serde_json::Value::as_u64) else {
        return Err(Reply::error(
            None,
            ErrorCode::BadRequest,
            "a request needs a numeric \"id\" (a non-negative integer)",
        ));
    };
    let Some(op) = obj.get("op").and_then(serde_json::Value::as_str) else {
        return Err(Reply::error(
            Some(id),
            ErrorCode::BadRequest,
            format!("a request needs an \"op\": one of {}", OPS.join(", ")),
        ));
    };
    let op = op.to_owned();
    if !OPS.contains(&op.as_str()) {
        return Err(Reply::error(
            Some(id),
            ErrorCode::UnknownOp,
            format!("unknown op \"{op}\": expected one of {}", OPS.join(", ")),
        ));
    }
    if op == "command" {
        match obj.get("command").and_then(serde_json::Value::as_str) {
            Some(name) if CommandName::parse(name).is_none() => {
                let known: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
                return Err(Reply::error(
                    Some(id),
                    ErrorCode::UnknownCommand,
                    format!(
                        "unknown command \"{name}\": expected one of {}",
                        known.join(", ")
                    ),
                ));
            }
            _ => {}
        }
    }
    serde_json::from_value(value).map_err(|e| {
        Reply::error(
            Some(id),
            ErrorCode::BadRequest,
            format!("not a valid \"{op}\" request: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> (Option<u64>, ErrorCode) {
        let e = parse_request(line).unwrap_err();
        (e.id, e.error.unwrap().code)
    }

    #[test]
    fn requests_parse_and_round_trip() {
        let r = parse_request(r#"{"id":3,"op":"command","command":"estop"}"#).unwrap();
        assert_eq!(
            r,
            Request {
                id: 3,
                op: Op::Command {
                    command: CommandName::Estop
                }
            }
        );
        let s = parse_request(r#"{"id":4,"op":"subscribe","status_hz":2.5}"#).unwrap();
        assert_eq!(
            s.op,
            Op::Subscribe {
                status_hz: Some(2.5),
                events: true,
                backlog: None,
            }
        );
        let line = serde_json::to_string(&s).unwrap();
        assert_eq!(parse_request(&line).unwrap(), s);
    }

    #[test]
    fn every_bad_request_names_its_error() {
        assert_eq!(code("{\"id\":1,"), (None, ErrorCode::MalformedJson));
        assert_eq!(code("[1,2]"), (None, ErrorCode::BadRequest));
        assert_eq!(code(r#"{"op":"status"}"#), (None, ErrorCode::BadRequest));
        assert_eq!(code(r#"{"id":5}"#), (Some(5), ErrorCode::BadRequest));
        assert_eq!(
            code(r#"{"id":6,"op":"launch"}"#),
            (Some(6), ErrorCode::UnknownOp)
        );
        assert_eq!(
            code(r#"{"id":7,"op":"command","command":"jump"}"#),
            (Some(7), ErrorCode::UnknownCommand)
        );
        assert_eq!(
            code(r#"{"id":8,"op":"command"}"#),
            (Some(8), ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"id":9,"op":"subscribe","status_hz":"fast"}"#),
            (Some(9), ErrorCode::BadRequest)
        );
    }

    #[test]
    fn command_names_map_both_ways() {
        for c in CommandName::ALL {
            assert_eq!(CommandName::of(c.command()), c);
            assert_eq!(CommandName::parse(c.as_str()), Some(c));
            let wire = serde_json::to_string(&c).unwrap();
            assert_eq!(wire, format!("\"{}\"", c.as_str()));
        }
    }
}
