//! The SocketCAN backend and the commissioning commands on the kernel's own CAN stack.
//!
//! The host kernel has no CAN support, so the host test below boots the PREEMPT_RT VM and
//! runs this same test binary's guest-side tests there, against `vcan0`, with independent
//! peers: can-utils (`cansend`, `candump`) and python-canopen's `LocalNode`
//! (tests/peers/canopen_node.py). The host test fails unless every guest test ran and
//! passed.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::path::PathBuf;

use takt_tests::vm;

/// How many guest-side tests `mod guest` holds; the host test checks they all ran.
const GUEST_TESTS: usize = 5;

#[test]
fn socketcan_and_commissioning_on_the_rt_kernel() -> Result<(), Box<dyn Error>> {
    let out = vm::run_guest_tests(&std::env::current_exe()?, "guest::")?;
    let summary = out.libtest_summary();
    assert!(
        out.success() && summary.is_some_and(|s| s.ok && s.passed == GUEST_TESTS && s.failed == 0),
        "guest-side SocketCAN tests did not all pass (status {}, {summary:?}):\n{}\n{}",
        out.status,
        out.output,
        out.log
    );
    Ok(())
}

fn takt_binary() -> PathBuf {
    vm::takt_binary().expect("the takt binary")
}

mod guest {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use takt_drivers::can::candump::CandumpReader;
    use takt_drivers::can::{
        BusEvent, BusState, BusStateEvent, CanBus, CanId, Frame, SendError, SocketCanBus, Timestamp,
    };
    use takt_drivers::canopen::sdo::{Multiplexer, SdoRequest};
    use takt_drivers::canopen::{NmtCommand, NmtMessage, NodeId};

    use super::takt_binary;

    const IF: &str = "vcan0";

    fn recv_within(bus: &mut SocketCanBus, d: Duration) -> Option<BusEvent> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(ev) = bus.try_recv().expect("receive") {
                return Some(ev);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            bus.wait_readable(left).expect("poll");
        }
    }

    fn sh(cmd: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by socketcan_and_commissioning_on_the_rt_kernel"]
    fn frames_round_trip_through_the_kernel_with_receive_timestamps() {
        assert!(takt_tests::vm::in_vm());
        let mut a = SocketCanBus::open(IF).expect("open vcan0");
        let mut b = SocketCanBus::open(IF).expect("open vcan0");
        assert_eq!(a.interface(), IF);
        let frames = [
            Frame::standard(0x000, [0x01, 0x05]),
            Frame::standard(0x080, []),
            Frame::new(CanId::extended(0x18FF_50E5).unwrap(), &[1, 2, 3]).unwrap(),
            Frame::remote(CanId::standard(0x705).unwrap(), 1).unwrap(),
            Frame::standard(0x605, [0x40, 0x41, 0x60, 0, 0, 0, 0, 0]),
        ];
        let before = Timestamp::now_unix();
        for f in &frames {
            a.try_send(f).expect("send");
        }
        for f in &frames {
            let Some(BusEvent::Frame(got)) = recv_within(&mut b, Duration::from_secs(5)) else {
                panic!("frame {f} did not arrive");
            };
            assert_eq!(&got.frame, f);
            let after = Timestamp::now_unix();
            assert!(
                got.timestamp >= before && got.timestamp <= after,
                "kernel timestamp {:?} outside [{before:?}, {after:?}]",
                got.timestamp
            );
        }
        // Like every socket, the sender does not receive its own frames.
        assert!(recv_within(&mut a, Duration::from_millis(100)).is_none());

        // CAN FD: carried on vcan0 (vcan is FD-capable, MTU 72), refused with a clear error
        // on an interface limited to classic frames (MTU 16).
        let fd = Frame::fd(CanId::standard(0x123).unwrap(), &[0xAB; 12], true, false).unwrap();
        a.try_send(&fd).expect("FD send on vcan0");
        let Some(BusEvent::Frame(got)) = recv_within(&mut b, Duration::from_secs(5)) else {
            panic!("FD frame did not arrive");
        };
        assert_eq!(got.frame, fd);
        sh(
            "ip link add dev vcan16 type vcan && ip link set vcan16 mtu 16 && ip link set vcan16 up",
        );
        let mut classic = SocketCanBus::open("vcan16").expect("open vcan16");
        let refused = classic.try_send(&fd);
        assert!(
            matches!(refused, Err(SendError::Unsupported(_))),
            "an FD frame on a classic interface gave {refused:?}"
        );
        classic
            .try_send(&frames[0])
            .expect("a classic frame still goes");
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by socketcan_and_commissioning_on_the_rt_kernel"]
    fn error_frames_become_bus_state_events() {
        let mut bus = SocketCanBus::open(IF).expect("open vcan0");
        // cansend sends an 8-digit id with CAN_ERR_FLAG as an error frame, the way a CAN
        // controller driver reports fault confinement: bus-off, then error-passive with
        // counters (CAN_ERR_CNT), then restarted.
        sh("cansend vcan0 20000040#0000000000000000");
        sh("cansend vcan0 20000204#0030000000008800");
        sh("cansend vcan0 20000100#0000000000000000");
        let mut got = Vec::new();
        while let Some(ev) = recv_within(&mut bus, Duration::from_secs(2)) {
            if let BusEvent::State { event, .. } = ev {
                got.push(event);
            }
            if got.len() == 3 {
                break;
            }
        }
        assert_eq!(
            got,
            [
                BusStateEvent::StateChanged {
                    state: BusState::BusOff,
                    counters: None
                },
                BusStateEvent::StateChanged {
                    state: BusState::ErrorPassive,
                    counters: Some(takt_drivers::can::ErrorCounters { tx: 136, rx: 0 })
                },
                BusStateEvent::Restarted,
            ]
        );
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by socketcan_and_commissioning_on_the_rt_kernel"]
    fn candump_and_cansend_agree_with_takt_byte_for_byte() {
        let before = takt_tests::vm::can_receivers(IF);
        let candump = Command::new("candump")
            .args(["-L", "-n", "3", IF])
            .stdout(Stdio::piped())
            .spawn()
            .expect("candump runs");
        takt_tests::vm::wait_for_can_receivers(IF, before + 1);
        let mut bus = SocketCanBus::open(IF).expect("open vcan0");
        let node = NodeId::new(5).unwrap();
        let sent = [
            NmtMessage::to_node(NmtCommand::Start, node).encode(),
            SdoRequest::upload(Multiplexer::new(0x6041, 0)).encode(node),
            Frame::standard(0x080, []),
        ];
        for f in &sent {
            bus.try_send(f).expect("send");
        }
        let out = candump
            .wait_with_output()
            .expect("candump ends after 3 frames");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
            .collect();
        assert_eq!(
            lines,
            ["vcan0 000#0105", "vcan0 605#4041600000000000", "vcan0 080#"],
            "candump saw:\n{text}"
        );
        // takt's reader takes candump's log back to the same frames.
        let back: Vec<Frame> = CandumpReader::new(text.as_bytes())
            .map(|r| {
                *r.expect("candump line parses")
                    .event
                    .frame()
                    .expect("frame")
            })
            .collect();
        assert_eq!(back, sent);

        // And what cansend puts on the bus arrives in takt unchanged.
        sh(
            "cansend vcan0 705#05 && cansend vcan0 185#3702E8030000FF7F && cansend vcan0 12345678#R",
        );
        let expected = [
            Frame::standard(0x705, [0x05]),
            Frame::standard(0x185, [0x37, 0x02, 0xE8, 0x03, 0x00, 0x00, 0xFF, 0x7F]),
            Frame::remote(CanId::extended(0x1234_5678).unwrap(), 0).unwrap(),
        ];
        for f in &expected {
            let Some(BusEvent::Frame(got)) = recv_within(&mut bus, Duration::from_secs(5)) else {
                panic!("{f} from cansend did not arrive");
            };
            assert_eq!(&got.frame, f);
        }
    }

    struct Peer {
        child: Child,
        lines: std::sync::mpsc::Receiver<String>,
    }

    impl Peer {
        fn start(node: u8) -> Peer {
            let python = std::env::var("PYTHON3").unwrap_or_else(|_| "python3".into());
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/canopen_node.py");
            let mut child = Command::new(python)
                .args([
                    script,
                    "--iface",
                    IF,
                    "--node",
                    &node.to_string(),
                    "--heartbeat-ms",
                    "50",
                    "--duration",
                    "120",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("python peer starts");
            let stdout = child.stdout.take().expect("piped");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let peer = Peer { child, lines: rx };
            peer.expect_line("READY", Duration::from_secs(60));
            peer
        }

        fn expect_line(&self, prefix: &str, within: Duration) -> String {
            let deadline = Instant::now() + within;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) if line.starts_with(prefix) => return line,
                    Ok(_) => {}
                    Err(_) => panic!("the python peer never printed {prefix:?}"),
                }
            }
        }
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn takt(args: &[&str]) -> (bool, String, String) {
        let out = Command::new(takt_binary())
            .args(args)
            .output()
            .expect("takt runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn takt_ok(args: &[&str]) -> String {
        let (ok, stdout, stderr) = takt(args);
        assert!(ok, "takt {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by socketcan_and_commissioning_on_the_rt_kernel"]
    fn commissioning_commands_against_python_canopen() {
        let peer = Peer::start(5);
        let capture = std::env::temp_dir().join("takt-commissioning.log");
        let before = takt_tests::vm::can_receivers(IF);
        let mut dump = Command::new(takt_binary())
            .args(["dump", "--iface", IF, "--duration", "60s", "--write"])
            .arg(&capture)
            .stdout(Stdio::piped())
            .spawn()
            .expect("takt dump runs");
        takt_tests::vm::wait_for_can_receivers(IF, before + 1);

        let scan = takt_ok(&["bus", "scan", "--iface", IF, "--duration", "1s"]);
        let row = scan
            .lines()
            .find(|l| l.trim_start().starts_with("5 "))
            .unwrap_or_else(|| panic!("node 5 missing from the scan:\n{scan}"));
        assert!(row.contains("pre-operational"), "{row}");
        assert!(row.contains("0x00020192 (CiA 402 drive)"), "{row}");
        assert!(row.contains("takt peer drive 5"), "{row}");
        assert!(scan.contains("1 node(s)"), "{scan}");

        // Segmented upload (17 bytes) and typed reads.
        let name = takt_ok(&[
            "sdo", "read", "--iface", IF, "--node", "5", "0x1008", "--type", "str",
        ]);
        assert_eq!(name.trim(), "node 5 0x1008:00 = takt peer drive 5");
        let vendor = takt_ok(&[
            "sdo", "read", "--iface", IF, "--node", "5", "0x1018:1", "--type", "u32",
        ]);
        assert_eq!(vendor.trim(), "node 5 0x1018:01 = 2654 (0x00000A5E)");
        let status = takt_ok(&["sdo", "read", "--iface", IF, "--node", "5", "0x6041"]);
        assert!(
            status.contains("50 02  [2 bytes]  unsigned 592 (0x0250)"),
            "{status}"
        );

        // Expedited and segmented downloads, checked on the device's side.
        takt_ok(&[
            "sdo", "write", "--iface", IF, "--node", "5", "0x6040", "6", "--type", "u16",
        ]);
        assert_eq!(
            peer.expect_line("WRITE 0x6040", Duration::from_secs(5)),
            "WRITE 0x6040:00 0600"
        );
        takt_ok(&[
            "sdo", "write", "--iface", IF, "--node", "5", "0x607A", "-1000", "--type", "i32",
        ]);
        assert_eq!(
            peer.expect_line("WRITE 0x607A", Duration::from_secs(5)),
            "WRITE 0x607A:00 18fcffff"
        );
        let text = "pick and place, thirteen+";
        takt_ok(&[
            "sdo", "write", "--iface", IF, "--node", "5", "0x2000", text, "--type", "str",
        ]);
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            peer.expect_line("WRITE 0x2000", Duration::from_secs(5)),
            format!("WRITE 0x2000:00 {hex}")
        );
        let back = takt_ok(&[
            "sdo", "read", "--iface", IF, "--node", "5", "0x2000", "--type", "str",
        ]);
        assert_eq!(back.trim(), format!("node 5 0x2000:00 = {text}"));

        // The device's aborts reach the engineer with their meaning.
        let (ok, _, err) = takt(&["sdo", "read", "--iface", IF, "--node", "5", "0x5555"]);
        assert!(!ok);
        assert!(
            err.contains("0x5555:00") && err.to_lowercase().contains("does not exist"),
            "{err}"
        );
        let (ok, _, err) = takt(&[
            "sdo", "write", "--iface", IF, "--node", "5", "0x1000", "1", "--type", "u32",
        ]);
        assert!(!ok);
        assert!(
            err.to_lowercase().contains("read-only") || err.to_lowercase().contains("read only"),
            "{err}"
        );
        // A node that is not there times out, and says so.
        let (ok, _, err) = takt(&[
            "sdo",
            "read",
            "--iface",
            IF,
            "--node",
            "9",
            "0x1000",
            "--timeout",
            "100ms",
        ]);
        assert!(!ok);
        assert!(err.contains("node 9") && err.contains("timeout"), "{err}");

        // NMT, confirmed by the device's heartbeat.
        let start = takt_ok(&[
            "nmt",
            "start",
            "--iface",
            IF,
            "--node",
            "5",
            "--confirm",
            "2s",
        ]);
        assert!(start.contains("sent 000#0105"), "{start}");
        assert!(start.contains("node 5 confirmed: operational"), "{start}");
        peer.expect_line("NMT state=OPERATIONAL", Duration::from_secs(5));
        let reset = takt_ok(&[
            "nmt",
            "reset-comm",
            "--iface",
            IF,
            "--node",
            "all",
            "--confirm",
            "2s",
        ]);
        assert!(reset.contains("sent 000#8200"), "{reset}");
        assert!(reset.contains("node 5 confirmed: boot-up"), "{reset}");

        let (ok, _, err) = takt(&[
            "nmt",
            "start",
            "--iface",
            IF,
            "--node",
            "9",
            "--confirm",
            "300ms",
        ]);
        assert!(!ok && err.contains("node 9 sent no heartbeat"), "{err}");

        // The live dump saw it all, and its log reads back.
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(dump.id().to_string())
            .status();
        let _ = dump.wait();
        let decoded = takt_ok(&["dump", "--log", capture.to_str().unwrap(), "--node", "5"]);
        for expected in [
            "boot-up node 5",
            "NMT start node 5",
            "SDO request node 5",
            "SDO response node 5",
            "heartbeat node 5: operational",
        ] {
            assert!(
                decoded.to_lowercase().contains(&expected.to_lowercase()),
                "{expected:?} missing from the decoded capture:\n{decoded}"
            );
        }
        let from_log = takt_ok(&["bus", "scan", "--log", capture.to_str().unwrap()]);
        assert!(
            from_log.lines().any(|l| l.trim_start().starts_with("5 ")),
            "{from_log}"
        );
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by socketcan_and_commissioning_on_the_rt_kernel"]
    fn a_missing_interface_is_a_clear_error() {
        let (ok, _, err) = takt(&["sdo", "read", "--iface", "can7", "--node", "1", "0x1000"]);
        assert!(!ok);
        assert!(err.contains("can7") && err.contains("ip link"), "{err}");
    }
}
