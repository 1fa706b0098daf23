//! candump `-L` logs written by takt open in python-can and cantools, and logs written by
//! python-can open in takt: the trace format is checked against independent readers and
//! writers, not only against itself.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use takt_drivers::can::candump::{CandumpReader, CandumpWriter};
use takt_drivers::can::{BusEvent, BusState, BusStateEvent, CanId, Frame, Timestamp};

fn python(script: &str, stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (tests/run installs python-can and cantools)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn sample_frames() -> Vec<(Timestamp, Frame)> {
    let t = |us: u64| Timestamp::from_micros(1_700_000_000_000_000 + us);
    vec![
        (t(0), Frame::standard(0x000, [0x01, 0x05])),
        (t(1_000), Frame::standard(0x080, [])),
        (
            t(1_250),
            Frame::standard(0x185, [0x37, 0x02, 0x10, 0x27, 0, 0, 0xFF, 0x7F]),
        ),
        (t(2_000), Frame::standard(0x705, [0x05])),
        (
            t(2_001),
            Frame::new(CanId::extended(0x18FF_50E5).unwrap(), &[0xAA, 0xBB]).unwrap(),
        ),
        (
            t(2_002),
            Frame::remote(CanId::standard(0x705).unwrap(), 1).unwrap(),
        ),
        (
            t(2_003),
            Frame::fd(CanId::standard(0x123).unwrap(), &[0x11; 12], true, false).unwrap(),
        ),
    ]
}

#[test]
fn python_can_reads_what_takt_writes() {
    let mut w = CandumpWriter::new(Vec::new());
    for (t, f) in sample_frames() {
        w.write_frame(t, "can0", &f).unwrap();
    }
    w.write_state(
        Timestamp::from_micros(1_700_000_000_003_000),
        "can0",
        &BusStateEvent::ProtocolError { counters: None },
    )
    .unwrap();
    w.write_state(
        Timestamp::from_micros(1_700_000_000_004_000),
        "can0",
        &BusStateEvent::StateChanged {
            state: BusState::BusOff,
            counters: None,
        },
    )
    .unwrap();
    let log = String::from_utf8(w.into_inner()).unwrap();
    let script = r#"
import sys, can, tempfile, os
path = os.path.join(tempfile.mkdtemp(), "takt.log")
open(path, "w").write(sys.stdin.read())
for m in can.CanutilsLogReader(path):
    kind = "E" if m.is_error_frame else ("R" if m.is_remote_frame else ("F" if m.is_fd else "D"))
    print(f"{m.timestamp:.6f} {m.channel} {kind} {m.arbitration_id:X} {int(m.is_extended_id)} {m.dlc} {bytes(m.data).hex().upper()} {int(m.bitrate_switch)}")
"#;
    let out = python(script, &log);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "1700000000.000000 can0 D 0 0 2 0105 0",
            "1700000000.001000 can0 D 80 0 0  0",
            "1700000000.001250 can0 D 185 0 8 370210270000FF7F 0",
            "1700000000.002000 can0 D 705 0 1 05 0",
            "1700000000.002001 can0 D 18FF50E5 1 2 AABB 0",
            "1700000000.002002 can0 R 705 0 1  0",
            "1700000000.002003 can0 F 123 0 12 111111111111111111111111 1",
            // python-can keeps only the time of an error frame (no channel, no data).
            "1700000000.003000 None E 0 1 0  0",
            // python-can 4.5 takes only bus-error frames (CAN_ERR_BUSERROR) for error
            // frames; candump's bus-off line (20000040#...) it reads as a data frame with
            // the error flag stripped. takt writes what candump writes.
            "1700000000.004000 can0 D 40 1 8 0000000000000000 0",
        ],
        "python-can read:\n{out}\nfrom takt's log:\n{log}"
    );
}

#[test]
fn takt_reads_what_python_can_writes() {
    let script = r#"
import sys, can, tempfile, os
path = os.path.join(tempfile.mkdtemp(), "py.log")
w = can.CanutilsLogWriter(path, channel="vcan0")
msgs = [
    can.Message(timestamp=1700000000.25, arbitration_id=0x605, data=bytes.fromhex("4041600000000000"), is_extended_id=False),
    can.Message(timestamp=1700000000.5, arbitration_id=0x1ABCDE, data=b"\x01", is_extended_id=True),
    can.Message(timestamp=1700000000.75, arbitration_id=0x705, is_remote_frame=True, dlc=1, is_extended_id=False),
    can.Message(timestamp=1700000001.0, arbitration_id=0x123, data=bytes(range(16)), is_fd=True, bitrate_switch=True, is_extended_id=False),
]
for m in msgs:
    w.on_message_received(m)
w.stop()
sys.stdout.write(open(path).read())
"#;
    let log = python(script, "");
    let records: Vec<_> = CandumpReader::new(log.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("takt cannot read python-can's log: {e}\n{log}"));
    let frames: Vec<(u64, Frame)> = records
        .iter()
        .map(|r| {
            assert_eq!(r.interface, "vcan0");
            match r.event {
                BusEvent::Frame(f) => (f.timestamp.as_micros(), f.frame),
                other => panic!("unexpected {other:?}"),
            }
        })
        .collect();
    let data16: Vec<u8> = (0..16).collect();
    assert_eq!(
        frames,
        [
            (
                1_700_000_000_250_000,
                Frame::standard(0x605, [0x40, 0x41, 0x60, 0, 0, 0, 0, 0])
            ),
            (
                1_700_000_000_500_000,
                Frame::new(CanId::extended(0x1A_BCDE).unwrap(), &[1]).unwrap()
            ),
            // python-can's writer leaves out a remote frame's length (`705#R`, not `705#R1`).
            (
                1_700_000_000_750_000,
                Frame::remote(CanId::standard(0x705).unwrap(), 0).unwrap()
            ),
            (
                1_700_000_001_000_000,
                Frame::fd(CanId::standard(0x123).unwrap(), &data16, true, false).unwrap()
            ),
        ],
        "{log}"
    );
}

#[test]
fn cantools_parses_what_takt_writes() {
    let mut w = CandumpWriter::new(Vec::new());
    for (t, f) in sample_frames()
        .into_iter()
        .filter(|(_, f)| !f.is_fd() && !f.is_remote())
    {
        w.write_frame(t, "can0", &f).unwrap();
    }
    let log = String::from_utf8(w.into_inner()).unwrap();
    let script = r#"
import sys
from cantools.logreader import Parser
for entry in Parser(sys.stdin):
    print(f"{entry.frame_id:X} {entry.data.hex().upper()} {entry.timestamp.timestamp():.6f}")
"#;
    let out = python(script, &log);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "0 0105 1700000000.000000",
            "80  1700000000.001000",
            "185 370210270000FF7F 1700000000.001250",
            "705 05 1700000000.002000",
            "18FF50E5 AABB 1700000000.002001",
        ],
        "cantools read:\n{out}\nfrom:\n{log}"
    );
}
