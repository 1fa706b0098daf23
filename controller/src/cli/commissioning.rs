//! Commissioning commands: `takt bus scan`, `takt sdo read|write`, `takt nmt`, `takt dump`.
//!
//! These are tools for a commissioning engineer at a real bus (`can0`, or `vcan0`), run from
//! a shell, outside any cycle: they may block, allocate and print. `bus scan` and `dump` also
//! read a candump `-L` log instead of a live interface.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use takt_drivers::can::candump::{CandumpReader, CandumpWriter};
use takt_drivers::can::{BusEvent, CanBus, Frame, SendError, SocketCanBus, Timestamp};
use takt_drivers::canopen::bus_timing::{BusTiming, BusTimingReport, LOAD_WINDOW};
use takt_drivers::canopen::sdo::{InitiateData, Multiplexer, SdoClient, SdoRequest, SdoResponse};
use takt_drivers::canopen::{
    Message, NmtCommand, NmtMessage, NmtState, NodeId, decode, heartbeat::Heartbeat,
};

/// `takt bus ...`
#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// List the nodes on the bus: each node that sends a boot-up or heartbeat, or answers an
    /// SDO read of its device type (0x1000), with its NMT state, device type and name.
    Scan(ScanArgs),
}

/// Where frames come from: a live interface or a candump log.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// The CAN interface, e.g. can0 or vcan0 (it must be up).
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// A candump -L log file to read instead of a live interface.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// Arguments of `takt bus scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    source: Source,
    /// How long to listen for heartbeats and SDO answers (live interface only).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    duration: Duration,
    /// Only listen; do not send SDO requests to find silent nodes.
    #[arg(long)]
    listen_only: bool,
}

/// `takt sdo ...`
#[derive(Debug, clap::Subcommand)]
pub enum SdoCommand {
    /// Read an object from a node's object dictionary (SDO upload).
    Read(SdoReadArgs),
    /// Write an object in a node's object dictionary (SDO download).
    Write(SdoWriteArgs),
}

/// The object to access and on which node.
#[derive(Debug, clap::Args)]
pub struct SdoTarget {
    /// The CAN interface, e.g. can0 or vcan0.
    #[arg(long, value_name = "IF")]
    iface: String,
    /// The node-ID of the device, 1-127.
    #[arg(long, value_parser = parse_node)]
    node: NodeId,
    /// The object: INDEX[:SUB], e.g. 0x6041 or 0x1018:1 (sub-index 0 if omitted).
    #[arg(value_parser = parse_mux, value_name = "INDEX[:SUB]")]
    object: Multiplexer,
    /// How long to wait for each answer of the device.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    timeout: Duration,
}

/// Arguments of `takt sdo read`.
#[derive(Debug, clap::Args)]
pub struct SdoReadArgs {
    #[command(flatten)]
    target: SdoTarget,
    /// How to show the value; without it, every reading that fits the length is shown.
    #[arg(long = "type", value_enum)]
    ty: Option<ValueType>,
}

/// Arguments of `takt sdo write`.
#[derive(Debug, clap::Args)]
pub struct SdoWriteArgs {
    #[command(flatten)]
    target: SdoTarget,
    /// The value: a number (decimal, 0x hex, negative for signed types), a string for
    /// --type str, or hex bytes for --type bytes.
    #[arg(allow_hyphen_values = true)]
    value: String,
    /// The object's data type; it sets how many bytes are written.
    #[arg(long = "type", value_enum)]
    ty: ValueType,
}

/// CANopen basic data types (CiA 301 §7.1.4), as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueType {
    /// UNSIGNED8
    U8,
    /// UNSIGNED16
    U16,
    /// UNSIGNED32
    U32,
    /// UNSIGNED64
    U64,
    /// INTEGER8
    I8,
    /// INTEGER16
    I16,
    /// INTEGER32
    I32,
    /// INTEGER64
    I64,
    /// REAL32
    F32,
    /// VISIBLE_STRING
    Str,
    /// OCTET_STRING / DOMAIN, as hex bytes (e.g. 0102ff or 01:02:ff)
    Bytes,
}

/// The NMT command to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NmtVerb {
    /// Start remote node: to operational (PDOs run).
    Start,
    /// Stop remote node: to stopped (only NMT and heartbeat).
    Stop,
    /// Enter pre-operational (SDO works, PDOs do not).
    Preop,
    /// Reset node: application and communication reset to defaults; the node boots again.
    Reset,
    /// Reset communication: communication parameters back to defaults; the node boots again.
    ResetComm,
}

impl From<NmtVerb> for NmtCommand {
    fn from(v: NmtVerb) -> NmtCommand {
        match v {
            NmtVerb::Start => NmtCommand::Start,
            NmtVerb::Stop => NmtCommand::Stop,
            NmtVerb::Preop => NmtCommand::EnterPreOperational,
            NmtVerb::Reset => NmtCommand::ResetNode,
            NmtVerb::ResetComm => NmtCommand::ResetCommunication,
        }
    }
}

/// Which nodes an NMT command addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeOrAll {
    /// One node.
    Node(NodeId),
    /// Every node (node 0 in the NMT frame).
    All,
}

/// Arguments of `takt nmt`.
#[derive(Debug, clap::Args)]
pub struct NmtArgs {
    /// The command.
    #[arg(value_enum)]
    command: NmtVerb,
    /// The CAN interface, e.g. can0 or vcan0.
    #[arg(long, value_name = "IF")]
    iface: String,
    /// The node-ID (1-127), or `all`.
    #[arg(long, value_parser = parse_node_or_all, value_name = "N|all")]
    node: NodeOrAll,
    /// After sending, wait up to this long for the node's heartbeat (or boot-up) to confirm
    /// the new state, and fail if it does not come.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    confirm: Option<Duration>,
}

/// Arguments of `takt dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    #[command(flatten)]
    source: Source,
    /// Show only frames of this node (its EMCY, PDOs, SDO and heartbeat; NMT commands
    /// addressed to it; SYNC).
    #[arg(long, value_parser = parse_node)]
    node: Option<NodeId>,
    /// Stop after this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this long (live interface only).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Also record the traffic into this candump -L log (live interface only).
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Instead of the frames, print the bus timing of the log: SYNC period and jitter, PDO
    /// timing relative to SYNC, bus load (--log only; every frame counts, --node aside).
    #[arg(long, requires = "log")]
    stats: bool,
    /// The bus's bit rate for --stats' load, bit/s (1000000, 500k, 1M).
    #[arg(long, value_parser = parse_bitrate, default_value = "1M", requires = "stats")]
    bitrate: u32,
}

/// What went wrong in a commissioning command, worded for the person at the bus.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Sdo(#[from] takt_drivers::canopen::sdo::BlockingSdoError),
    #[error("{path}: {source}")]
    Log {
        path: PathBuf,
        source: takt_drivers::can::candump::ReadError,
    },
    #[error("sending on {iface} failed: {source}")]
    Send { iface: String, source: SendError },
    #[error("receiving on {iface} failed: {source}")]
    Recv {
        iface: String,
        source: takt_drivers::can::BusError,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotConfirmed(String),
}

fn finish(result: Result<(), ToolError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `takt bus`.
pub fn bus(cmd: BusCommand) -> ExitCode {
    match cmd {
        BusCommand::Scan(args) => finish(scan(args)),
    }
}

/// Runs `takt sdo`.
pub fn sdo(cmd: SdoCommand) -> ExitCode {
    finish(match cmd {
        SdoCommand::Read(args) => sdo_read(args),
        SdoCommand::Write(args) => sdo_write(args),
    })
}

/// Runs `takt nmt`.
pub fn nmt(args: NmtArgs) -> ExitCode {
    finish(nmt_send(args))
}

/// Runs `takt dump`.
pub fn dump(args: DumpArgs) -> ExitCode {
    finish(run_dump(args))
}

// ---------------------------------------------------------------------------------------
// Argument parsing

fn parse_number(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else {
        t.parse::<u64>()
    };
    parsed.map_err(|_| format!("{text:?} is not a number (decimal, or hex with 0x)"))
}

fn parse_bitrate(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (digits, scale) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1_000),
        None => match t.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (t, 1),
        },
    };
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{text:?} is not a bit rate such as 1000000, 500k or 1M"))
}

fn parse_node(text: &str) -> Result<NodeId, String> {
    let n = parse_number(text)?;
    u8::try_from(n)
        .ok()
        .and_then(|n| NodeId::new(n).ok())
        .ok_or_else(|| format!("node-ID {text} is out of range: a CANopen node-ID is 1-127"))
}

fn parse_node_or_all(text: &str) -> Result<NodeOrAll, String> {
    if text.eq_ignore_ascii_case("all") {
        Ok(NodeOrAll::All)
    } else {
        parse_node(text).map(NodeOrAll::Node)
    }
}

fn parse_mux(text: &str) -> Result<Multiplexer, String> {
    let (index, sub) = text.split_once(':').unwrap_or((text, "0"));
    let index = parse_number(index)
        .ok()
        .and_then(|i| u16::try_from(i).ok())
        .ok_or_else(|| format!("{index:?} is not an object index; write it like 0x6041"))?;
    let sub = parse_number(sub)
        .ok()
        .and_then(|s| u8::try_from(s).ok())
        .ok_or_else(|| format!("{sub:?} is not a sub-index 0-255; write it like 0x1018:1"))?;
    Ok(Multiplexer::new(index, sub))
}

/// Parses `1s`, `500ms`, `250us`, `2.5s`, `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write it like 500ms, 2s or 1.5s"))?;
    let scale = match unit.trim() {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "" => {
            return Err(format!(
                "{text:?} needs a unit: ms, s or min (e.g. {text}s)"
            ));
        }
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s or min"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// Encodes `value` as the little-endian bytes of `ty` (CiA 301 §7.1.6).
fn encode_value(ty: ValueType, value: &str) -> Result<Vec<u8>, String> {
    let v = value.trim();
    let unsigned = |bits: u32| -> Result<u64, String> {
        let n = parse_number(v)?;
        if bits < 64 && n >> bits != 0 {
            return Err(format!("{v} does not fit in {bits} bits"));
        }
        Ok(n)
    };
    let signed = |bits: u32| -> Result<i64, String> {
        let n: i64 = if let Some(rest) = v.strip_prefix('-') {
            let mag = parse_number(rest)?;
            0i64.checked_sub_unsigned(mag)
                .ok_or_else(|| format!("{v} is out of range"))?
        } else {
            i64::try_from(parse_number(v)?).map_err(|_| format!("{v} is out of range"))?
        };
        let min = -(1i128 << (bits - 1));
        let max = (1i128 << (bits - 1)) - 1;
        if (n as i128) < min || (n as i128) > max {
            return Err(format!("{v} does not fit in a signed {bits}-bit integer"));
        }
        Ok(n)
    };
    Ok(match ty {
        ValueType::U8 => (unsigned(8)? as u8).to_le_bytes().to_vec(),
        ValueType::U16 => (unsigned(16)? as u16).to_le_bytes().to_vec(),
        ValueType::U32 => (unsigned(32)? as u32).to_le_bytes().to_vec(),
        ValueType::U64 => unsigned(64)?.to_le_bytes().to_vec(),
        ValueType::I8 => (signed(8)? as i8).to_le_bytes().to_vec(),
        ValueType::I16 => (signed(16)? as i16).to_le_bytes().to_vec(),
        ValueType::I32 => (signed(32)? as i32).to_le_bytes().to_vec(),
        ValueType::I64 => signed(64)?.to_le_bytes().to_vec(),
        ValueType::F32 => v
            .parse::<f32>()
            .map_err(|_| format!("{v:?} is not a number"))?
            .to_le_bytes()
            .to_vec(),
        ValueType::Str => value.as_bytes().to_vec(),
        ValueType::Bytes => {
            let hex: String = v
                .chars()
                .filter(|c| !matches!(c, ':' | ' ' | '.'))
                .collect();
            if hex.len() % 2 != 0 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "{v:?} is not hex bytes; write them like 0102ff or 01:02:ff"
                ));
            }
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?
        }
    })
}

/// Shows `data` as `ty`, or — without a type — every reading its length allows.
fn format_value(data: &[u8], ty: Option<ValueType>) -> String {
    let hex = data
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    let le = |n: usize| -> Option<u64> {
        (data.len() == n).then(|| {
            data.iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        })
    };
    let sign = |v: u64, bits: u32| -> i64 { ((v << (64 - bits)) as i64) >> (64 - bits) };
    let printable = !data.is_empty() && data.iter().all(|&b| (0x20..0x7F).contains(&b));
    match ty {
        Some(ValueType::Str) => String::from_utf8_lossy(data).into_owned(),
        Some(ValueType::Bytes) => hex,
        Some(t) => {
            let (bits, signed) = match t {
                ValueType::U8 => (8, false),
                ValueType::U16 => (16, false),
                ValueType::U32 => (32, false),
                ValueType::U64 => (64, false),
                ValueType::I8 => (8, true),
                ValueType::I16 => (16, true),
                ValueType::I32 => (32, true),
                ValueType::I64 => (64, true),
                _ => (32, false),
            };
            match le(bits / 8) {
                None => format!(
                    "{hex} ({} bytes, not the {} bytes of {t:?})",
                    data.len(),
                    bits / 8
                ),
                Some(v) if t == ValueType::F32 => format!("{}", f32::from_bits(v as u32)),
                Some(v) if signed => format!("{}", sign(v, bits as u32)),
                Some(v) => format!("{v} (0x{v:0width$X})", width = bits / 4),
            }
        }
        None => {
            let mut out = format!("{hex}  [{} bytes]", data.len());
            if let Some(bits) = [1usize, 2, 4, 8].into_iter().find(|&n| n == data.len()) {
                if let Some(v) = le(bits) {
                    let bits = bits as u32 * 8;
                    out.push_str(&format!(
                        "  unsigned {v} (0x{v:0w$X}), signed {}",
                        sign(v, bits),
                        w = bits as usize / 4
                    ));
                }
            }
            if printable && data.len() > 1 {
                out.push_str(&format!("  text {:?}", String::from_utf8_lossy(data)));
            }
            out
        }
    }
}

// ---------------------------------------------------------------------------------------
// Live bus helpers

fn open(iface: &str) -> Result<SocketCanBus, ToolError> {
    Ok(SocketCanBus::open(iface)?)
}

/// Sends `frame`, waiting out a full transmit queue for up to a second.
fn send(bus: &mut SocketCanBus, frame: &Frame) -> Result<(), ToolError> {
    let start = Instant::now();
    loop {
        match bus.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(SendError::WouldBlock) if start.elapsed() < Duration::from_secs(1) => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(source) => {
                return Err(ToolError::Send {
                    iface: bus.interface().to_owned(),
                    source,
                });
            }
        }
    }
}

/// The next event within `deadline`, waiting on the socket rather than spinning.
fn recv_until(bus: &mut SocketCanBus, deadline: Instant) -> Result<Option<BusEvent>, ToolError> {
    loop {
        match bus.try_recv() {
            Ok(Some(ev)) => return Ok(Some(ev)),
            Ok(None) => {}
            Err(source) => {
                return Err(ToolError::Recv {
                    iface: bus.interface().to_owned(),
                    source,
                });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        bus.wait_readable(left.min(Duration::from_millis(50)))?;
    }
}

// ---------------------------------------------------------------------------------------
// takt sdo

fn sdo_read(args: SdoReadArgs) -> Result<(), ToolError> {
    let t = &args.target;
    let mut bus = open(&t.iface)?;
    let mut client = SdoClient::new(t.node, 64 * 1024).with_timeout(t.timeout);
    let data = client.upload_blocking(&mut bus, t.object)?;
    println!(
        "node {} {} = {}",
        t.node,
        t.object,
        format_value(data, args.ty)
    );
    Ok(())
}

fn sdo_write(args: SdoWriteArgs) -> Result<(), ToolError> {
    let t = &args.target;
    let bytes = encode_value(args.ty, &args.value).map_err(ToolError::Usage)?;
    let mut bus = open(&t.iface)?;
    let mut client = SdoClient::new(t.node, bytes.len().max(8)).with_timeout(t.timeout);
    client.download_blocking(&mut bus, t.object, &bytes)?;
    println!(
        "node {} {} := {} ({} bytes written)",
        t.node,
        t.object,
        format_value(&bytes, Some(args.ty)),
        bytes.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// takt nmt

fn nmt_send(args: NmtArgs) -> Result<(), ToolError> {
    let command = NmtCommand::from(args.command);
    let message = match args.node {
        NodeOrAll::Node(node) => NmtMessage::to_node(command, node),
        NodeOrAll::All => NmtMessage::to_all(command),
    };
    let mut bus = open(&args.iface)?;
    let frame = message.encode();
    send(&mut bus, &frame)?;
    println!("sent {frame}  ({})", decode(&frame));
    let Some(window) = args.confirm else {
        return Ok(());
    };
    // A reset answers with a boot-up; the other commands show in the next heartbeat.
    let expected = match command {
        NmtCommand::ResetNode | NmtCommand::ResetCommunication => NmtState::BootUp,
        other => other.resulting_state(),
    };
    let deadline = Instant::now() + window;
    let mut confirmed: BTreeMap<u8, NmtState> = BTreeMap::new();
    while let Some(ev) = recv_until(&mut bus, deadline)? {
        let Some(Ok(hb)) = ev.frame().map(Heartbeat::decode) else {
            continue;
        };
        let wanted = match args.node {
            NodeOrAll::Node(n) => hb.node == n,
            NodeOrAll::All => true,
        };
        if wanted && hb.state == expected {
            println!("node {} confirmed: {}", hb.node, hb.state);
            confirmed.insert(hb.node.get(), hb.state);
            if let NodeOrAll::Node(_) = args.node {
                return Ok(());
            }
        }
    }
    match args.node {
        NodeOrAll::Node(n) => Err(ToolError::NotConfirmed(format!(
            "node {n} sent no heartbeat or boot-up showing {expected} within {window:?}; \
             is its heartbeat producer (0x1017) configured?"
        ))),
        NodeOrAll::All if confirmed.is_empty() => Err(ToolError::NotConfirmed(format!(
            "no node confirmed {expected} within {window:?}"
        ))),
        NodeOrAll::All => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// takt bus scan

/// What a scan learnt about one node.
#[derive(Debug, Default)]
struct SeenNode {
    state: Option<NmtState>,
    heartbeats: u64,
    boot_ups: u64,
    device_type: Option<u32>,
    name: Option<String>,
    emcys: u64,
    frames: u64,
}

fn note(nodes: &mut BTreeMap<u8, SeenNode>, frame: &Frame) {
    let message = decode(frame);
    let Some(node) = message.node() else {
        return;
    };
    // An NMT command names its target, not its sender: it says nothing about who is there.
    if matches!(message, Message::Nmt(_) | Message::SdoRequest { .. }) {
        return;
    }
    let seen = nodes.entry(node.get()).or_default();
    seen.frames += 1;
    match message {
        Message::Heartbeat(hb) if hb.is_boot_up() => {
            seen.boot_ups += 1;
            seen.state = Some(NmtState::PreOperational);
        }
        Message::Heartbeat(hb) => {
            seen.heartbeats += 1;
            seen.state = Some(hb.state);
        }
        Message::Emcy(_) => seen.emcys += 1,
        Message::SdoResponse {
            response:
                SdoResponse::InitiateUpload {
                    mux,
                    data: InitiateData::Expedited(data),
                },
            ..
        } if mux == Multiplexer::new(0x1000, 0) => {
            if let &[b0, b1, b2, b3] = data.as_slice() {
                seen.device_type = Some(u32::from_le_bytes([b0, b1, b2, b3]));
            }
        }
        _ => {}
    }
}

fn describe_device_type(t: u32) -> String {
    let profile = t & 0xFFFF;
    let what = match profile {
        0 => "no profile".to_owned(),
        401 => "CiA 401 I/O".to_owned(),
        402 => "CiA 402 drive".to_owned(),
        p => format!("CiA {p}"),
    };
    format!("{t:#010X} ({what})")
}

fn scan(args: ScanArgs) -> Result<(), ToolError> {
    let mut nodes: BTreeMap<u8, SeenNode> = BTreeMap::new();
    if let Some(path) = &args.source.log {
        let file = File::open(path).map_err(|e| {
            ToolError::Usage(format!("cannot open the log {}: {e}", path.display()))
        })?;
        for record in CandumpReader::new(BufReader::new(file)) {
            let record = record.map_err(|source| ToolError::Log {
                path: path.clone(),
                source,
            })?;
            if let Some(frame) = record.event.frame() {
                note(&mut nodes, frame);
            }
        }
    } else if let Some(iface) = &args.source.iface {
        scan_live(iface, &args, &mut nodes)?;
    }
    print_scan(&nodes);
    Ok(())
}

fn scan_live(
    iface: &str,
    args: &ScanArgs,
    nodes: &mut BTreeMap<u8, SeenNode>,
) -> Result<(), ToolError> {
    let mut bus = open(iface)?;
    let deadline = Instant::now() + args.duration;
    // Every node is asked for its device type at once; the answers come back while the scan
    // listens for heartbeats. A full transmit queue only delays the remaining requests.
    let mut to_ask: Vec<Frame> = if args.listen_only {
        Vec::new()
    } else {
        let mut frames: Vec<Frame> = NodeId::all()
            .map(|n| SdoRequest::upload(Multiplexer::new(0x1000, 0)).encode(n))
            .collect();
        // Sent from the back, so node 1 is asked first.
        frames.reverse();
        frames
    };
    while Instant::now() < deadline {
        while let Some(frame) = to_ask.last() {
            match bus.try_send(frame) {
                Ok(()) => {
                    to_ask.pop();
                }
                Err(SendError::WouldBlock) => break,
                Err(source) => {
                    return Err(ToolError::Send {
                        iface: iface.to_owned(),
                        source,
                    });
                }
            }
        }
        let next_wake = if to_ask.is_empty() {
            deadline
        } else {
            Instant::now() + Duration::from_millis(1)
        };
        if let Some(BusEvent::Frame(f)) = recv_until(&mut bus, next_wake.min(deadline))? {
            note(nodes, &f.frame);
        }
    }
    // The name (0x1008) of each node that answered, one at a time: optional in CiA 301, so
    // an abort only leaves it blank.
    for (&id, seen) in nodes.iter_mut() {
        if seen.device_type.is_none() {
            continue;
        }
        let Ok(node) = NodeId::new(id) else { continue };
        let mut client = SdoClient::new(node, 256).with_timeout(Duration::from_millis(200));
        if let Ok(name) = client.upload_blocking(&mut bus, Multiplexer::new(0x1008, 0)) {
            seen.name = Some(
                String::from_utf8_lossy(name)
                    .trim_end_matches('\0')
                    .to_owned(),
            );
        }
    }
    Ok(())
}

fn print_scan(nodes: &BTreeMap<u8, SeenNode>) {
    if nodes.is_empty() {
        println!("no nodes found (no boot-up, heartbeat or SDO answer); check bitrate and wiring");
        return;
    }
    println!(
        "{:>4}  {:<16} {:>10} {:>8}  {:<28} name",
        "node", "state", "heartbeats", "boot-ups", "device type"
    );
    for (id, n) in nodes {
        let state = n
            .state
            .map_or_else(|| "(no heartbeat)".to_owned(), |s| s.to_string());
        let device = n
            .device_type
            .map_or_else(|| "-".to_owned(), describe_device_type);
        let mut name = n.name.clone().unwrap_or_else(|| "-".to_owned());
        if n.emcys > 0 {
            name.push_str(&format!("  ({} EMCY)", n.emcys));
        }
        println!(
            "{id:>4}  {state:<16} {:>10} {:>8}  {device:<28} {name}",
            n.heartbeats, n.boot_ups
        );
    }
    println!("{} node(s)", nodes.len());
}

// ---------------------------------------------------------------------------------------
// takt dump

fn concerns(message: &Message, node: NodeId) -> bool {
    match message {
        Message::Sync(_) => true,
        Message::Nmt(m) => m.target.addresses(node),
        other => other.node() == Some(node),
    }
}

fn dump_line(out: &mut impl Write, time: Timestamp, iface: &str, frame: &Frame) -> io::Result<()> {
    let micros = time.as_micros();
    let frame_text = frame.to_string();
    writeln!(
        out,
        "({:>6}.{:06}) {iface} {frame_text:<28} {}",
        micros / 1_000_000,
        micros % 1_000_000,
        decode(frame)
    )
}

fn print_timing(out: &mut impl Write, path: &Path, r: &BusTimingReport) -> io::Result<()> {
    let ms = |ns: u64| ns as f64 / 1e6;
    writeln!(
        out,
        "{}: {} frames over {:.3} s",
        path.display(),
        r.frames,
        r.span.as_secs_f64()
    )?;
    let s = &r.sync;
    writeln!(
        out,
        "  SYNC: {} frames, period mean {:.3} ms, jitter (std dev) {:.3} ms, min {:.3} ms, max {:.3} ms",
        s.count,
        ms(s.period_mean_ns),
        ms(s.period_std_dev_ns),
        ms(s.period_min_ns),
        ms(s.period_max_ns)
    )?;
    for (name, p) in [
        ("TPDO after SYNC", &r.tpdo_after_sync),
        ("RPDO before SYNC", &r.rpdo_before_sync),
    ] {
        writeln!(
            out,
            "  {name}: {} frames, min {:.3} ms, mean {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            p.count,
            ms(p.min_ns),
            ms(p.mean_ns),
            ms(p.p99_ns),
            ms(p.max_ns)
        )?;
    }
    writeln!(out, "  PDOs outside any SYNC window: {}", r.pdos_untimed)?;
    writeln!(
        out,
        "  bus load at {} bit/s (worst-case bit stuffing, an upper bound): mean {:.1} %, peak {:.1} % over {} ms",
        r.bitrate_bit_s,
        100.0 * r.load,
        100.0 * r.peak_window_load,
        LOAD_WINDOW.as_millis()
    )
}

fn run_dump(args: DumpArgs) -> Result<(), ToolError> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut shown = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let wanted = |frame: &Frame| args.node.is_none_or(|n| concerns(&decode(frame), n));
    if let Some(path) = &args.source.log {
        if args.write.is_some() || args.duration.is_some() {
            return Err(ToolError::Usage(
                "--write and --duration apply to a live interface, not to --log".into(),
            ));
        }
        let file = File::open(path).map_err(|e| {
            ToolError::Usage(format!("cannot open the log {}: {e}", path.display()))
        })?;
        let mut timing = args.stats.then(|| BusTiming::new(args.bitrate));
        for record in CandumpReader::new(BufReader::new(file)) {
            if shown >= limit {
                break;
            }
            let record = match record {
                Ok(r) => r,
                // A damaged line is reported where it is and the rest of the log still shows.
                Err(takt_drivers::can::candump::ReadError::Parse(e)) => {
                    out.flush()?;
                    eprintln!("{}: {e}", path.display());
                    continue;
                }
                Err(source) => {
                    return Err(ToolError::Log {
                        path: path.clone(),
                        source,
                    });
                }
            };
            if let Some(timing) = &mut timing {
                if let BusEvent::Frame(f) = &record.event {
                    timing.observe(f);
                    shown += 1;
                }
                continue;
            }
            match record.event {
                BusEvent::Frame(f) if wanted(&f.frame) => {
                    dump_line(&mut out, f.timestamp, &record.interface, &f.frame)?;
                    shown += 1;
                }
                BusEvent::State { timestamp, event } => {
                    writeln!(
                        out,
                        "({:>6}.{:06}) {} bus state: {event:?}",
                        timestamp.as_micros() / 1_000_000,
                        timestamp.as_micros() % 1_000_000,
                        record.interface
                    )?;
                }
                BusEvent::Frame(_) => {}
            }
        }
        if let Some(timing) = &timing {
            print_timing(&mut out, path, &timing.report())?;
        }
        out.flush()?;
        return Ok(());
    }
    let Some(iface) = args.source.iface.as_deref() else {
        return Err(ToolError::Usage("give --iface or --log".into()));
    };
    let mut bus = open(iface)?;
    let mut writer = match &args.write {
        Some(path) => Some(CandumpWriter::new(BufWriter::new(
            File::create(path)
                .map_err(|e| ToolError::Usage(format!("cannot create {}: {e}", path.display())))?,
        ))),
        None => None,
    };
    // Ctrl-C (or SIGTERM from a supervisor) ends the dump cleanly, so the --write log is
    // complete; the flag is checked at least every second.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let start = Instant::now();
    let end = args.duration.map(|d| start + d);
    let mut first: Option<Timestamp> = None;
    while shown < limit && !stop.load(Ordering::Relaxed) {
        let horizon = Instant::now() + Duration::from_secs(1);
        let deadline = end.map_or(horizon, |e| e.min(horizon));
        let event = recv_until(&mut bus, deadline)?;
        if let Some(ev) = event {
            if let Some(w) = writer.as_mut() {
                w.write_event(iface, &ev)?;
            }
            // Live times are shown relative to the first frame, as candump -t d would not:
            // the absolute time is in the --write log.
            let t0 = *first.get_or_insert(ev.timestamp());
            let rel =
                Timestamp::from_nanos(ev.timestamp().as_nanos().saturating_sub(t0.as_nanos()));
            match ev {
                BusEvent::Frame(f) if wanted(&f.frame) => {
                    dump_line(&mut out, rel, iface, &f.frame)?;
                    out.flush()?;
                    shown += 1;
                }
                BusEvent::State { event, .. } => {
                    writeln!(out, "{iface} bus state: {event:?}")?;
                    out.flush()?;
                }
                BusEvent::Frame(_) => {}
            }
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
    }
    if let Some(mut w) = writer {
        w.flush()?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_rates_parse_plain_or_with_k_and_m() {
        assert_eq!(parse_bitrate("1000000"), Ok(1_000_000));
        assert_eq!(parse_bitrate("500k"), Ok(500_000));
        assert_eq!(parse_bitrate("1M"), Ok(1_000_000));
        assert!(parse_bitrate("0").is_err());
        assert!(parse_bitrate("1 Mbit/s").unwrap_err().contains("500k"));
        assert!(parse_bitrate("5000M").is_err(), "overflows u32");
    }

    #[test]
    fn objects_parse_with_and_without_sub_index() {
        assert_eq!(parse_mux("0x6041"), Ok(Multiplexer::new(0x6041, 0)));
        assert_eq!(parse_mux("0x1018:1"), Ok(Multiplexer::new(0x1018, 1)));
        assert_eq!(parse_mux("0x1A00:0x02"), Ok(Multiplexer::new(0x1A00, 2)));
        assert!(parse_mux("0x10000").unwrap_err().contains("object index"));
        assert!(parse_mux("0x1018:256").unwrap_err().contains("sub-index"));
    }

    #[test]
    fn nodes_and_durations_parse_with_clear_errors() {
        assert_eq!(parse_node("5").map(NodeId::get), Ok(5));
        assert!(parse_node("0").unwrap_err().contains("1-127"));
        assert!(parse_node("128").unwrap_err().contains("1-127"));
        assert_eq!(parse_node_or_all("ALL"), Ok(NodeOrAll::All));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn values_encode_little_endian_and_check_range() {
        assert_eq!(encode_value(ValueType::U16, "6"), Ok(vec![6, 0]));
        assert_eq!(encode_value(ValueType::U16, "0x1234"), Ok(vec![0x34, 0x12]));
        assert_eq!(
            encode_value(ValueType::I32, "-2"),
            Ok(vec![0xFE, 0xFF, 0xFF, 0xFF])
        );
        assert_eq!(encode_value(ValueType::I8, "-128"), Ok(vec![0x80]));
        assert!(encode_value(ValueType::I8, "128").is_err());
        assert!(
            encode_value(ValueType::U8, "256")
                .unwrap_err()
                .contains("8 bits")
        );
        assert_eq!(encode_value(ValueType::Str, "abc"), Ok(b"abc".to_vec()));
        assert_eq!(
            encode_value(ValueType::Bytes, "01:02:ff"),
            Ok(vec![1, 2, 0xFF])
        );
        assert!(encode_value(ValueType::Bytes, "123").is_err());
    }

    #[test]
    fn values_show_every_reading_when_untyped() {
        assert_eq!(
            format_value(&[0x37, 0x02], None),
            "37 02  [2 bytes]  unsigned 567 (0x0237), signed 567"
        );
        assert_eq!(
            format_value(&[0xFE, 0xFF, 0xFF, 0xFF], Some(ValueType::I32)),
            "-2"
        );
        assert_eq!(
            format_value(&[0x37, 0x02], Some(ValueType::U16)),
            "567 (0x0237)"
        );
        assert!(format_value(b"takt", None).ends_with("text \"takt\""));
        assert!(format_value(&[1, 2, 3], Some(ValueType::U32)).contains("not the 4 bytes"));
    }
}
