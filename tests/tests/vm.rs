//! The RT-kernel VM harness works: the guest runs Debian's PREEMPT_RT kernel with `vcan0`
//! up, can-utils and Python's raw CAN sockets work there, commands and their exit status
//! cross the boundary unchanged, and a Rust test binary can run its own guest-side tests
//! in the VM.
//!
//! These tests fail rather than skip when the VM cannot be prepared or booted: SocketCAN
//! and PREEMPT_RT proof depend on it, and a silent skip would hide the loss. Each host
//! test boots one VM (5–15 s under TCG), so related checks share a boot.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use takt_tests::vm::{self, VmCommand};

/// A test error printed with its Display form: a harness error carries the guest's
/// console and output over many lines, which Debug would squash into one escaped string.
struct Failure(String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

type TestResult = Result<(), Failure>;

/// The guest-side half of one boot: prints one labelled line per fact, and the host side
/// asserts on them, so a failure shows every fact at once.
const GUEST_CHECKS: &str = r#"
set -u
echo "uname-v: $(uname -v)"
echo "realtime: $(cat /sys/kernel/realtime 2>/dev/null || echo absent)"
echo "in-vm: ${TAKT_IN_VM:-unset}"
echo "vcan0-link: $(ip -o link show vcan0)"

# candump exits by itself after one frame (-n 1); it is listening once its receiver shows
# up in the CAN core's receive list, so cansend cannot race ahead of it. A receiver's line
# starts with the interface; an empty list reads "(vcan0: no entry)", which must not count.
timeout 60 candump -L -n 1 vcan0 >/tmp/capture.log 2>&1 &
dump=$!
for _ in $(seq 200); do
    awk '$1 == "vcan0" { found = 1 } END { exit !found }' /proc/net/can/rcvlist_all 2>/dev/null && break
    sleep 0.05
done
cansend vcan0 123#DEADBEEF
wait "$dump"
echo "candump-status: $?"
sed 's/^/capture: /' /tmp/capture.log

"$PYTHON3" - <<'PY'
import socket
import struct

# struct can_frame: 32-bit id, length, 3 bytes padding, 8 data bytes.
FRAME = "=IB3x8s"
rx = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
rx.bind(("vcan0",))
rx.settimeout(20)
tx = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
tx.bind(("vcan0",))
tx.send(struct.pack(FRAME, 0x321, 4, bytes([1, 2, 3, 4])))
can_id, dlc, data = struct.unpack(FRAME, rx.recv(16))
print("python-raw: rx vcan0 %03X#%s" % (can_id, data[:dlc].hex().upper()))
PY
echo "python-status: $?"
"#;

fn line<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or("")
}

#[test]
fn guest_runs_preempt_rt_with_vcan0_can_utils_and_python_raw_sockets() -> TestResult {
    let python3 = vm::python3()?;
    let out = VmCommand::new(["bash", "-c", GUEST_CHECKS])
        .env("PYTHON3", python3.to_string_lossy())
        .run()?;
    let o = &out.output;
    assert_eq!(out.status, 0, "guest checks failed:\n{o}");

    let uname = line(o, "uname-v:");
    let realtime = line(o, "realtime:");
    assert!(
        uname.contains("PREEMPT_RT") || realtime == "1",
        "guest kernel is not PREEMPT_RT (uname -v {uname:?}, /sys/kernel/realtime {realtime:?}):\n{o}"
    );
    assert_eq!(line(o, "in-vm:"), "1", "TAKT_IN_VM not set:\n{o}");

    let link = line(o, "vcan0-link:");
    let flags = link
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(flags, _)| flags)
        .unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "UP") && link.contains("link/can"),
        "vcan0 is not an up CAN interface: {link:?}\n{o}"
    );

    assert_eq!(line(o, "candump-status:"), "0", "candump failed:\n{o}");
    assert!(
        line(o, "capture:").ends_with("vcan0 123#DEADBEEF"),
        "candump did not capture cansend's frame:\n{o}"
    );

    assert_eq!(line(o, "python-status:"), "0", "python3 failed:\n{o}");
    assert_eq!(
        line(o, "python-raw:"),
        "rx vcan0 321#01020304",
        "python3 raw CAN socket round trip failed:\n{o}"
    );
    Ok(())
}

#[test]
fn arguments_exit_status_and_tmp_cwd_cross_into_the_vm_unchanged() -> TestResult {
    // A directory under /tmp is hidden by the guest's tmpfs unless the harness maps it.
    let dir = std::env::temp_dir().join(format!("takt-vm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("from-host.txt"), "written on the host\n")?;
    let args = [
        "two words",
        "$HOME",
        "quote'd \"twice\"",
        "*",
        "",
        "back\\slash",
        "ü",
    ];
    let mut cmd = vec![
        "sh",
        "-c",
        r#"cat from-host.txt; for a in "$@"; do printf '[%s]\n' "$a"; done; exit 7"#,
        "sh",
    ];
    cmd.extend(args);
    let result = VmCommand::new(cmd).cwd(&dir).run();
    std::fs::remove_dir_all(&dir)?;
    let out = result?;

    let mut expected = String::from("written on the host\n");
    for a in args {
        expected.push_str(&format!("[{a}]\n"));
    }
    assert_eq!(out.output, expected);
    assert_eq!(out.status, 7, "exit status lost:\n{}", out.output);
    Ok(())
}

#[test]
fn a_hung_vm_is_reported_as_a_timeout() {
    let started = std::time::Instant::now();
    let result = VmCommand::new(["sleep", "600"])
        .timeout(Duration::from_secs(2))
        .run();
    match result {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        Ok(out) => panic!("expected a timeout, got {out:?}"),
    }
    // run.sh's `timeout --kill-after=5` bounds it even if qemu ignores SIGTERM.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn guest_side_tests_of_this_binary_run_inside_the_vm() -> TestResult {
    let out = vm::run_guest_test(
        &std::env::current_exe()?,
        "guest_side_sees_vcan0_on_rt_kernel",
    )?;
    let summary = out.libtest_summary();
    assert!(
        matches!(summary, Some(s) if s.ok && s.passed == 1 && s.failed == 0),
        "guest-side test did not run and pass: {summary:?}\n{}",
        out.output
    );
    Ok(())
}

#[test]
#[ignore = "guest-side: run inside the RT-kernel VM by guest_side_tests_of_this_binary_run_inside_the_vm"]
fn guest_side_sees_vcan0_on_rt_kernel() -> TestResult {
    assert!(vm::in_vm(), "guest-side test run outside the VM");
    assert!(Path::new("/sys/class/net/vcan0").exists(), "no vcan0");
    assert_eq!(std::fs::read_to_string("/sys/kernel/realtime")?.trim(), "1");
    Ok(())
}
