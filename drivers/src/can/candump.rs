//! candump `-L` log files: the line format of can-utils (`candump -L`, `canplayer`,
//! `log2asc`), python-can's `CanutilsLogWriter`/`Reader` and cantools.
//!
//! ```text
//! (1700000000.123456) can0 123#DEADBEEF      classic data, 11-bit id (3 hex digits)
//! (1700000000.123500) can0 1ABCDEF0#01       29-bit id (8 hex digits)
//! (1700000000.124000) can0 701#R             remote frame; `701#R1` requests 1 byte
//! (1700000000.125000) can0 123##1DEADBEEF    CAN FD; the nibble after `##` holds BRS (1), ESI (2)
//! (1700000000.126000) can0 20000040#0000000000000000   error frame (CAN_ERR_FLAG): bus-off
//! ```
//!
//! The reader accepts what those tools write: any number of fraction digits in the
//! timestamp, lower- or upper-case hex, the `_X` length-8 DLC suffix (ignored), and trailing
//! fields after the frame (ignored). Error frames become [`BusStateEvent`]s, so a trace of a
//! bus-off episode reads back as one. Every malformed line is a [`ParseError`] with its line
//! and column; the reader carries on with the next line.

use std::io::{self, BufRead, Write};

use super::socketcan::{decode_error_bits, err};
use super::{BusEvent, BusState, BusStateEvent, CanId, Frame, Timestamp, TimestampedFrame};

/// The error flag in a SocketCAN id word (`CAN_ERR_FLAG`), as candump prints it.
const CAN_ERR_FLAG: u32 = 0x2000_0000;

/// One record of a log: when, on which interface, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The interface name recorded in the line (`can0`).
    pub interface: String,
    /// The frame, or the bus-state event an error frame stands for.
    pub event: BusEvent,
}

/// A line that is not a valid candump `-L` record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column of the offending character.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Reads candump `-L` records from a buffered reader, one per line; blank lines are skipped.
#[derive(Debug)]
pub struct CandumpReader<R> {
    input: R,
    line: String,
    line_no: usize,
    pending: Option<LogRecord>,
}

impl<R: BufRead> CandumpReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        CandumpReader {
            input,
            line: String::new(),
            line_no: 0,
            pending: None,
        }
    }
}

/// Why reading a log failed: the file could not be read, or a line is malformed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading the underlying file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A line is malformed.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl<R: BufRead> Iterator for CandumpReader<R> {
    type Item = Result<LogRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.pending.take() {
            return Some(Ok(r));
        }
        loop {
            self.line.clear();
            match self.input.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
            self.line_no += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            return Some(match parse_line(&self.line, self.line_no) {
                Ok((first, second)) => {
                    self.pending = second;
                    Ok(first)
                }
                Err(e) => Err(e.into()),
            });
        }
    }
}

/// Parses one candump `-L` line. An error frame may stand for two events; the second is
/// returned separately.
pub fn parse_line(
    line: &str,
    line_no: usize,
) -> Result<(LogRecord, Option<LogRecord>), ParseError> {
    let fail = |column: usize, message: String| ParseError {
        line: line_no,
        column,
        message,
    };
    let text = line.trim_end_matches(['\n', '\r']);
    let lead = text.len() - text.trim_start().len();
    let rest = &text[lead..];
    // Timestamp `(sec.frac)`.
    let Some(after_paren) = rest.strip_prefix('(') else {
        return Err(fail(
            lead + 1,
            "expected '(' starting the timestamp, as in (1700000000.123456)".into(),
        ));
    };
    let Some(close) = after_paren.find(')') else {
        return Err(fail(lead + 2, "the timestamp has no closing ')'".into()));
    };
    let ts_text = &after_paren[..close];
    let timestamp = parse_timestamp(ts_text).ok_or_else(|| {
        fail(
            lead + 2,
            format!(
                "{ts_text:?} is not a timestamp; expected seconds.fraction, as in 1700000000.123456"
            ),
        )
    })?;
    let mut col = lead + 1 + close + 2; // 1-based column just after ')'
    let after = &after_paren[close + 1..];
    let mut fields = Fields { text: after, col };
    let Some((iface, _)) = fields.next() else {
        return Err(fail(
            col,
            "expected an interface name after the timestamp".into(),
        ));
    };
    let Some((frame_text, frame_col)) = fields.next() else {
        return Err(fail(
            col + after.len(),
            "expected a frame such as 123#DEADBEEF after the interface name".into(),
        ));
    };
    col = frame_col;
    let parsed =
        parse_frame(frame_text).map_err(|(offset, message)| fail(col + offset, message))?;
    let record = |event| LogRecord {
        interface: iface.to_owned(),
        event,
    };
    match parsed {
        Parsed::Frame(frame) => Ok((
            record(BusEvent::Frame(TimestampedFrame { timestamp, frame })),
            None,
        )),
        Parsed::Error { bits, data } => {
            let (a, b) = decode_error_bits(bits, &data);
            let Some(a) = a else {
                return Err(fail(
                    col,
                    format!(
                        "error frame with class bits {bits:#x} carries no bus-state information takt reads"
                    ),
                ));
            };
            let state = |event| BusEvent::State { timestamp, event };
            Ok((record(state(a)), b.map(|b| record(state(b)))))
        }
    }
}

/// Whitespace-separated fields with their 1-based columns.
struct Fields<'a> {
    text: &'a str,
    col: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, usize);
    fn next(&mut self) -> Option<(&'a str, usize)> {
        let trimmed = self.text.trim_start();
        self.col += self.text.len() - trimmed.len();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let field = &trimmed[..end];
        let at = self.col;
        self.col += end;
        self.text = &trimmed[end..];
        Some((field, at))
    }
}

fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let mut nanos: u64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    Some(Timestamp::from_nanos(
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
    ))
}

enum Parsed {
    Frame(Frame),
    Error { bits: u32, data: [u8; 8] },
}

/// Parses `ID#DATA`, `ID#R[len]`, `ID##FDATA`; errors carry a 0-based offset into `text`.
fn parse_frame(text: &str) -> Result<Parsed, (usize, String)> {
    let Some(hash) = text.find('#') else {
        return Err((
            0,
            format!("{text:?} is not a frame; expected ID#DATA such as 123#DEADBEEF"),
        ));
    };
    let id_text = &text[..hash];
    let id_raw = parse_hex_u32(id_text).ok_or_else(|| {
        (
            0,
            format!("{id_text:?} is not a hex CAN id (3 digits for 11-bit, 8 for 29-bit)"),
        )
    })?;
    let body = &text[hash + 1..];
    let body_off = hash + 1;
    if id_text.len() == 8 && id_raw & CAN_ERR_FLAG != 0 {
        let mut data = [0u8; 8];
        parse_hex_bytes(body, &mut data).map_err(|(o, m)| (body_off + o, m))?;
        return Ok(Parsed::Error {
            bits: id_raw & !CAN_ERR_FLAG,
            data,
        });
    }
    let id = match id_text.len() {
        3 => CanId::standard(id_raw as u16),
        8 => CanId::extended(id_raw),
        n => {
            return Err((
                0,
                format!("a CAN id has 3 hex digits (11-bit) or 8 (29-bit), got {n}"),
            ));
        }
    }
    .ok_or_else(|| (0, format!("{id_text} is out of range for its id format")))?;
    if let Some(fd) = body.strip_prefix('#') {
        let mut chars = fd.chars();
        let flags = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(|| {
            (
                body_off + 1,
                "a CAN FD frame needs a flags digit after '##' (0-F)".to_owned(),
            )
        })?;
        let mut data = [0u8; 64];
        let n = parse_hex_bytes(&fd[1..], &mut data).map_err(|(o, m)| (body_off + 2 + o, m))?;
        let frame = Frame::fd(id, &data[..n], flags & 1 != 0, flags & 2 != 0)
            .map_err(|e| (body_off + 2, e.to_string()))?;
        return Ok(Parsed::Frame(frame));
    }
    if let Some(r) = body.strip_prefix(['R', 'r']) {
        let len_text = r.split('_').next().unwrap_or("");
        let len = match len_text {
            "" => 0,
            d => d.parse::<usize>().ok().filter(|&n| n <= 8).ok_or_else(|| {
                (
                    body_off + 1,
                    format!("{d:?} is not a remote-frame length 0-8"),
                )
            })?,
        };
        let frame = Frame::remote(id, len).map_err(|e| (body_off, e.to_string()))?;
        return Ok(Parsed::Frame(frame));
    }
    let mut data = [0u8; 64];
    let hex = body.split('_').next().unwrap_or("");
    let n = parse_hex_bytes(hex, &mut data[..8]).map_err(|(o, m)| (body_off + o, m))?;
    let frame = Frame::new(id, &data[..n]).map_err(|e| (body_off, e.to_string()))?;
    Ok(Parsed::Frame(frame))
}

fn parse_hex_u32(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Parses pairs of hex digits (optionally separated by '.', as `cansend` accepts) into `out`.
fn parse_hex_bytes(text: &str, out: &mut [u8]) -> Result<usize, (usize, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() {
        if bytes[i] == b'.' {
            i += 1;
            continue;
        }
        let hi = (bytes[i] as char).to_digit(16);
        let lo = bytes.get(i + 1).and_then(|&b| (b as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err((
                i,
                format!(
                    "{:?} is not a pair of hex digits",
                    &text[i..text.len().min(i + 2)]
                ),
            ));
        };
        if n == out.len() {
            return Err((i, format!("too many data bytes: at most {}", out.len())));
        }
        out[n] = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    Ok(n)
}

/// Writes candump `-L` records.
#[derive(Debug)]
pub struct CandumpWriter<W> {
    out: W,
}

impl<W: Write> CandumpWriter<W> {
    /// A writer to `out`. Wrap files in a `BufWriter`.
    pub fn new(out: W) -> Self {
        CandumpWriter { out }
    }

    /// Writes one frame received (or sent) on `interface` at `timestamp`.
    pub fn write_frame(
        &mut self,
        timestamp: Timestamp,
        interface: &str,
        frame: &Frame,
    ) -> io::Result<()> {
        write_timestamp(&mut self.out, timestamp)?;
        writeln!(self.out, " {interface} {frame}")
    }

    /// Writes a bus-state event as the SocketCAN error frame that reports it.
    pub fn write_state(
        &mut self,
        timestamp: Timestamp,
        interface: &str,
        event: &BusStateEvent,
    ) -> io::Result<()> {
        let (bits, data) = encode_error(event);
        write_timestamp(&mut self.out, timestamp)?;
        write!(self.out, " {interface} {:08X}#", bits | CAN_ERR_FLAG)?;
        for b in data {
            write!(self.out, "{b:02X}")?;
        }
        writeln!(self.out)
    }

    /// Writes either kind of event.
    pub fn write_event(&mut self, interface: &str, event: &BusEvent) -> io::Result<()> {
        match event {
            BusEvent::Frame(f) => self.write_frame(f.timestamp, interface, &f.frame),
            BusEvent::State { timestamp, event } => self.write_state(*timestamp, interface, event),
        }
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_timestamp(out: &mut impl Write, t: Timestamp) -> io::Result<()> {
    let micros = t.as_micros();
    write!(
        out,
        "({:010}.{:06})",
        micros / 1_000_000,
        micros % 1_000_000
    )
}

fn encode_error(event: &BusStateEvent) -> (u32, [u8; 8]) {
    let mut data = [0u8; 8];
    let with_counters = |bits: u32, data: &mut [u8; 8], c: &Option<super::ErrorCounters>| {
        if let Some(c) = c {
            data[6] = c.tx;
            data[7] = c.rx;
            bits | err::CNT
        } else {
            bits
        }
    };
    match event {
        BusStateEvent::StateChanged { state, counters } => {
            let bits = match state {
                BusState::BusOff => err::BUSOFF,
                BusState::ErrorActive => {
                    data[1] = err::CRTL_ACTIVE;
                    err::CRTL
                }
                BusState::ErrorWarning => {
                    data[1] = err::CRTL_RX_WARNING | err::CRTL_TX_WARNING;
                    err::CRTL
                }
                BusState::ErrorPassive => {
                    data[1] = err::CRTL_RX_PASSIVE | err::CRTL_TX_PASSIVE;
                    err::CRTL
                }
            };
            (with_counters(bits, &mut data, counters), data)
        }
        BusStateEvent::Restarted => (err::RESTARTED, data),
        BusStateEvent::RxOverflow => {
            data[1] = err::CRTL_RX_OVERFLOW;
            (err::CRTL, data)
        }
        // SocketCAN drivers report a bus error as PROT | BUSERROR; python-can reads only
        // frames with BUSERROR as error frames.
        BusStateEvent::ProtocolError { counters } => (
            with_counters(err::PROT | err::BUSERROR, &mut data, counters),
            data,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::can::strategy::any_frame;
    use proptest::prelude::*;

    fn read_all(text: &str) -> Vec<Result<LogRecord, String>> {
        CandumpReader::new(text.as_bytes())
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    fn frame_of(r: &LogRecord) -> (Timestamp, Frame) {
        match r.event {
            BusEvent::Frame(f) => (f.timestamp, f.frame),
            BusEvent::State { .. } => panic!("expected a frame, got {r:?}"),
        }
    }

    #[test]
    fn reads_every_frame_form() {
        let log = "(1700000000.123456) can0 123#DEADBEEF\n\
                   (1700000000.123500) can0 1ABCDEF0#01\n\
                   \n\
                   (1700000000.124000) vcan0 701#R\n\
                   (1700000000.124001) vcan0 701#r1\n\
                   (1700000000.125000) can1 123##1DEADBEEF\n\
                   (1700000000.5) can0 080#\n\
                   (1700000000.000001) can0 123#1122334455667788_E T\n";
        let got: Vec<_> = read_all(log).into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 7);
        let (t, f) = frame_of(&got[0]);
        assert_eq!(t, Timestamp::from_micros(1_700_000_000_123_456));
        assert_eq!(f, Frame::standard(0x123, [0xDE, 0xAD, 0xBE, 0xEF]));
        assert_eq!(got[0].interface, "can0");
        assert_eq!(frame_of(&got[1]).1.id(), CanId::Extended(0x1ABC_DEF0));
        assert_eq!(
            frame_of(&got[2]).1,
            Frame::remote(CanId::Standard(0x701), 0).unwrap()
        );
        assert_eq!(
            frame_of(&got[3]).1,
            Frame::remote(CanId::Standard(0x701), 1).unwrap()
        );
        assert_eq!(got[2].interface, "vcan0");
        let fd = frame_of(&got[4]).1;
        assert_eq!(
            fd.kind(),
            crate::can::FrameKind::Fd {
                brs: true,
                esi: false
            }
        );
        assert_eq!(fd.data(), &[0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(
            frame_of(&got[5]).0,
            Timestamp::from_millis(1_700_000_000_500)
        );
        assert!(frame_of(&got[5]).1.is_empty());
        assert_eq!(
            frame_of(&got[6]).1.data(),
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
    }

    #[test]
    fn writes_what_candump_writes() {
        let mut w = CandumpWriter::new(Vec::new());
        let t = Timestamp::from_micros(1_700_000_000_123_456);
        w.write_frame(t, "can0", &Frame::standard(0x123, [0xDE, 0xAD, 0xBE, 0xEF]))
            .unwrap();
        w.write_frame(
            t,
            "can0",
            &Frame::remote(CanId::Standard(0x701), 0).unwrap(),
        )
        .unwrap();
        w.write_frame(
            Timestamp::from_millis(5),
            "can0",
            &Frame::standard(0x80, []),
        )
        .unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(
            text,
            "(1700000000.123456) can0 123#DEADBEEF\n(1700000000.123456) can0 701#R\n(0000000000.005000) can0 080#\n"
        );
    }

    #[test]
    fn error_frames_read_back_as_bus_state_events() {
        let mut w = CandumpWriter::new(Vec::new());
        let t = Timestamp::from_millis(1);
        let events = [
            BusStateEvent::StateChanged {
                state: BusState::ErrorPassive,
                counters: Some(crate::can::ErrorCounters { tx: 130, rx: 0 }),
            },
            BusStateEvent::StateChanged {
                state: BusState::BusOff,
                counters: None,
            },
            BusStateEvent::Restarted,
            BusStateEvent::RxOverflow,
            BusStateEvent::StateChanged {
                state: BusState::ErrorWarning,
                counters: None,
            },
            BusStateEvent::StateChanged {
                state: BusState::ErrorActive,
                counters: None,
            },
            BusStateEvent::ProtocolError {
                counters: Some(crate::can::ErrorCounters { tx: 8, rx: 9 }),
            },
        ];
        for e in &events {
            w.write_state(t, "can0", e).unwrap();
        }
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert!(
            text.starts_with("(0000000000.001000) can0 20000204#0030000000008200\n"),
            "{text}"
        );
        let back: Vec<_> = read_all(&text)
            .into_iter()
            .map(|r| match r.unwrap().event {
                BusEvent::State { event, .. } => event,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, events);
    }

    #[test]
    fn malformed_lines_are_located_and_reading_continues() {
        let log = "can0 123#00\n\
                   (17x) can0 123#00\n\
                   (1.0) can0\n\
                   (1.0) can0 12#00\n\
                   (1.0) can0 123#0G\n\
                   (1.0) can0 123#001122334455667788\n\
                   (1.0) can0 123#R9\n\
                   (1.0) can0 123##X00\n\
                   (1.0) can0 123##0AAAAAAAAAAAAAAAAAAAA\n\
                   (1.0) can0 123#42\n";
        let got = read_all(log);
        assert_eq!(got.len(), 10);
        let errs: Vec<_> = got[..9].iter().map(|r| r.clone().unwrap_err()).collect();
        assert_eq!(
            errs[0],
            "line 1, column 1: expected '(' starting the timestamp, as in (1700000000.123456)"
        );
        assert!(
            errs[1].starts_with("line 2, column 2: \"17x\" is not a timestamp"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("line 3, column 11: expected a frame"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].starts_with("line 4, column 12: a CAN id has 3 hex digits"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4].starts_with("line 5, column 16: \"0G\" is not a pair of hex digits"),
            "{}",
            errs[4]
        );
        assert!(
            errs[5].starts_with("line 6, column 32: too many data bytes"),
            "{}",
            errs[5]
        );
        assert!(
            errs[6].starts_with("line 7, column 17: \"9\" is not a remote-frame length"),
            "{}",
            errs[6]
        );
        assert!(
            errs[7].starts_with("line 8, column 17: a CAN FD frame needs a flags digit"),
            "{}",
            errs[7]
        );
        assert!(errs[8].contains("CAN FD frame carries"), "{}", errs[8]);
        assert!(got[9].is_ok());
    }

    proptest! {
        #[test]
        fn frames_round_trip(frames in proptest::collection::vec((any_frame(), any::<u64>()), 1..20)) {
            let mut w = CandumpWriter::new(Vec::new());
            for (f, t) in &frames {
                w.write_frame(Timestamp::from_micros(t / 1_000_000), "can0", f).unwrap();
            }
            let text = String::from_utf8(w.into_inner()).unwrap();
            let back: Vec<_> = read_all(&text).into_iter().map(|r| frame_of(&r.unwrap())).collect();
            prop_assert_eq!(back.len(), frames.len());
            for ((t, f), (orig, ot)) in back.iter().zip(&frames) {
                prop_assert_eq!(f, orig);
                prop_assert_eq!(t.as_micros(), ot / 1_000_000);
            }
        }

        #[test]
        fn random_lines_never_panic(line in "\\PC{0,60}") {
            let _ = parse_line(&line, 1);
        }

        #[test]
        fn near_valid_lines_never_panic(line in "\\(1[0-9.]{0,12}\\) [a-z0-9]{0,5} [0-9A-Fa-f#R_.]{0,40}") {
            if let Err(e) = parse_line(&line, 7) {
                prop_assert_eq!(e.line, 7);
                prop_assert!(e.column >= 1 && e.column <= line.chars().count() + 1);
            }
        }
    }
}
