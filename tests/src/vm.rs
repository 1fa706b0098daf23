//! Runs commands inside the takt test VM: Debian's PREEMPT_RT kernel booted under qemu,
//! with `vcan0` up and the host's root file system shared read-only, so host-built
//! binaries, can-utils and python3 run there at the same paths as on the host.
//!
//! The development and CI machines' own kernel has no CAN support, so everything that
//! needs SocketCAN or a real PREEMPT_RT kernel is tested through this module. The work is
//! done by two scripts (see `tests/vm/README.md`): `tests/vm/prepare.sh` downloads the
//! kernel and builds the initramfs once, `tests/vm/run.sh` boots one VM per command.
//!
//! ```no_run
//! use takt_tests::vm::{VmCommand, run_in_vm};
//! use std::time::Duration;
//!
//! let out = run_in_vm(&["cansend", "vcan0", "123#DEADBEEF"])?;
//! assert_eq!(out.status, 0, "{}", out.output);
//!
//! let out = VmCommand::new(["candump", "-L", "-n", "1", "vcan0"])
//!     .timeout(Duration::from_secs(60))
//!     .env("RUST_LOG", "debug")
//!     .run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Booting costs 5–15 s of wall time under TCG, so put related checks into one command
//! where that reads naturally. Tests that must run *inside* the guest are ordinary
//! `#[test]` functions marked `#[ignore = "guest-side: ..."]` and started from a host
//! test with [`run_guest_test`]; see `tests/tests/vm.rs`.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variable set to `1` for every command run in the VM.
pub const IN_VM_ENV: &str = "TAKT_IN_VM";

/// Wall-clock limit for one VM run (boot plus command) unless [`VmCommand::timeout`] says
/// otherwise. Generous because TCG on a busy 2-core machine is slow, yet finite so a hung
/// guest fails the test instead of the CI run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The line run.sh prints on stderr when (and only when) the command itself finished;
/// it tells the command's own 124 or 125 apart from the harness' failures.
const STATUS_LINE: &str = "takt-vm: command exited with status ";

/// True when this process runs inside the takt test VM (`TAKT_IN_VM` is set).
pub fn in_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// How many receivers (sockets' filters) the guest's CAN core lists for `iface` in
/// `/proc/net/can/rcvlist_all`; 0 when the file cannot be read. An interface without
/// receivers shows there as `(vcan0: no entry)`, which names it but is not counted: only
/// lines whose first field is the interface are receivers.
pub fn can_receivers(iface: &str) -> usize {
    std::fs::read_to_string("/proc/net/can/rcvlist_all")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(iface))
        .count()
}

/// Waits until `iface` has at least `n` receivers, so a listener started in the
/// background (candump, a served cell) cannot miss the first frame; panics after 20 s.
pub fn wait_for_can_receivers(iface: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while can_receivers(iface) < n {
        assert!(
            Instant::now() < deadline,
            "{n} receiver(s) on {iface} never came up (the CAN core lists {})",
            can_receivers(iface)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a command run in the VM left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmOutput {
    /// The command's exit status in the guest (128 + N when killed by signal N).
    pub status: i32,
    /// The command's stdout and stderr, merged in the order the guest wrote them (both
    /// travel over one virtio-serial port).
    pub output: String,
    /// The harness' own messages (run.sh's stderr): boot time, wall time, diagnostics.
    pub log: String,
}

impl VmOutput {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The last libtest summary line in [`output`](Self::output), for runs of a Rust test
    /// binary (see [`run_guest_tests`]).
    pub fn libtest_summary(&self) -> Option<LibtestSummary> {
        self.output.lines().rev().find_map(LibtestSummary::parse)
    }
}

/// Counts from libtest's closing line, `test result: ok. 1 passed; 0 failed; ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibtestSummary {
    /// libtest said `ok` rather than `FAILED`.
    pub ok: bool,
    /// Tests that ran and passed.
    pub passed: usize,
    /// Tests that ran and failed.
    pub failed: usize,
    /// Tests skipped as ignored.
    pub ignored: usize,
    /// Tests not selected by the filter.
    pub filtered_out: usize,
}

impl LibtestSummary {
    /// Parses one line of libtest output; `None` unless it is the summary line.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let (verdict, counts) = rest.split_once(". ")?;
        let ok = match verdict {
            "ok" => true,
            "FAILED" => false,
            _ => return None,
        };
        let mut summary = Self {
            ok,
            passed: 0,
            failed: 0,
            ignored: 0,
            filtered_out: 0,
        };
        let mut seen_passed = false;
        for part in counts.split("; ") {
            let Some((n, what)) = part.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                continue;
            };
            match what {
                "passed" => {
                    summary.passed = n;
                    seen_passed = true;
                }
                "failed" => summary.failed = n,
                "ignored" => summary.ignored = n,
                "filtered out" => summary.filtered_out = n,
                _ => {}
            }
        }
        seen_passed.then_some(summary)
    }
}

/// A command to run in the VM, with its options. [`run_in_vm`] is the short form.
#[derive(Debug, Clone)]
pub struct VmCommand {
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    env: Vec<(String, String)>,
}

impl VmCommand {
    /// A command (program and arguments). Arguments reach the guest unchanged, whatever
    /// characters they hold.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
        }
    }

    /// Directory to run in; default: this process' current directory. Host paths are
    /// guest paths, including directories under `/tmp`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Wall-clock limit for boot plus command; default [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds one environment variable for the command (on top of `TAKT_IN_VM`, `PATH`,
    /// `HOME`, `LANG` and `TERM`, which the harness always sets).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Prepares the VM if needed, boots it, runs the command and powers it off.
    ///
    /// `Ok` whenever the command ran to completion, whatever its status. `Err` when the
    /// VM could not be prepared or booted ([`io::ErrorKind::Other`]) or the timeout
    /// expired ([`io::ErrorKind::TimedOut`]); the message then carries the harness'
    /// diagnostics, including the guest console's last lines.
    pub fn run(&self) -> io::Result<VmOutput> {
        if self.args.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no command to run in the VM",
            ));
        }
        prepare()?;
        let mut cmd = Command::new(script("run.sh"));
        // Round up: a limit below one second would be refused by run.sh.
        let secs = self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0);
        cmd.arg("--timeout").arg(secs.max(1).to_string());
        if let Some(dir) = &self.cwd {
            cmd.arg("--cwd").arg(dir);
        }
        for (name, value) in &self.env {
            cmd.arg("--env").arg(format!("{name}={value}"));
        }
        cmd.arg("--").args(&self.args).stdin(Stdio::null());
        let out = cmd.output()?;
        let output = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        // Shown by the test harness when the calling test fails: boot and wall times.
        eprint!("{log}");
        let reported = log
            .lines()
            .filter_map(|l| l.strip_prefix(STATUS_LINE))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<i32>().ok())
            .next_back();
        match reported {
            Some(status) => Ok(VmOutput {
                status,
                output,
                log,
            }),
            None => {
                let kind = if out.status.code() == Some(124) {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                };
                Err(io::Error::new(
                    kind,
                    format!(
                        "the RT-kernel VM did not run {:?} to completion (run.sh {}):\n{log}\
                         --- command output so far ---\n{output}",
                        self.args, out.status
                    ),
                ))
            }
        }
    }
}

/// Runs `cmd` (program and arguments) in the VM from the current directory with the
/// default timeout. See [`VmCommand::run`] for what `Ok` and `Err` mean.
pub fn run_in_vm(cmd: &[&str]) -> io::Result<VmOutput> {
    VmCommand::new(cmd).run()
}

/// Runs the ignored tests of a Rust test binary whose names contain `filter` inside the
/// VM, one at a time (`--ignored --test-threads=1`), with `RUST_BACKTRACE=1` and `PYTHON3`
/// naming the host's real Python interpreter (see [`python3`]).
///
/// Guest-side tests are plain `#[test]` functions marked
/// `#[ignore = "guest-side: run inside the RT-kernel VM by <host test>"]`, so a host run
/// skips them; the host test passes its own binary, `std::env::current_exe()`. Check
/// [`VmOutput::libtest_summary`] to see that they really ran, or use [`run_guest_test`].
pub fn run_guest_tests(test_binary: &Path, filter: &str) -> io::Result<VmOutput> {
    guest_tests(test_binary, filter, false)
}

/// Runs exactly one guest-side test (by its full libtest name) inside the VM and fails
/// unless libtest reports it passed: `Err` carries the guest's output.
pub fn run_guest_test(test_binary: &Path, name: &str) -> io::Result<VmOutput> {
    let out = guest_tests(test_binary, name, true)?;
    match out.libtest_summary() {
        Some(s) if s.ok && s.passed == 1 && s.failed == 0 && out.success() => Ok(out),
        summary => Err(io::Error::other(format!(
            "guest-side test {name} did not pass in the VM (status {}, summary {summary:?}):\n{}",
            out.status, out.output
        ))),
    }
}

fn guest_tests(test_binary: &Path, filter: &str, exact: bool) -> io::Result<VmOutput> {
    let mut args: Vec<OsString> = vec![test_binary.into(), "--ignored".into()];
    if exact {
        args.push("--exact".into());
    }
    args.extend(["--test-threads=1".into(), filter.into()]);
    // Guest tests that start Python peers find the real interpreter in PYTHON3.
    VmCommand::new(args)
        .env("RUST_BACKTRACE", "1")
        .env("PYTHON3", python3()?.to_string_lossy())
        .run()
}

/// The `takt` binary built beside a test binary of this workspace (`target/<profile>/takt`),
/// for tests that run the command line, on the host or in the guest.
pub fn takt_binary() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let takt = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join("takt"))
        .ok_or_else(|| io::Error::other("test binaries live in target/<profile>/deps"))?;
    if takt.exists() {
        Ok(takt)
    } else {
        Err(io::Error::other(format!(
            "{} is missing: build the workspace first (tests/run does)",
            takt.display()
        )))
    }
}

/// The real python3 interpreter behind `python3` on the host's `PATH`.
///
/// Version-manager shims (pyenv) are shell scripts that fork several processes per call,
/// which costs seconds per start under TCG; the interpreter they lead to runs in the
/// guest just the same, with the same installed packages.
pub fn python3() -> io::Result<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .output()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        return Err(io::Error::other(format!(
            "python3 on the host cannot name its interpreter: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(PathBuf::from(path))
}

/// Runs `tests/vm/prepare.sh` once per process: it installs missing host packages,
/// downloads the RT kernel and builds the initramfs on first use, and returns at once
/// when all that is done. Concurrent callers in other processes wait on its lock.
pub fn prepare() -> io::Result<()> {
    static PREPARED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = PREPARED.get_or_init(|| {
        let out = Command::new(script("prepare.sh"))
            .arg("--quiet")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", script("prepare.sh").display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tests/vm/prepare.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    result.clone().map_err(io::Error::other)
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vm").join(name)
}

#[cfg(test)]
mod tests {
    use super::LibtestSummary;

    #[test]
    fn parses_libtest_summary_lines() {
        let ok = LibtestSummary::parse(
            "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.01s",
        );
        assert_eq!(
            ok,
            Some(LibtestSummary {
                ok: true,
                passed: 1,
                failed: 0,
                ignored: 0,
                filtered_out: 3
            })
        );
        let failed = LibtestSummary::parse(
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.20s",
        );
        assert_eq!(failed.map(|s| (s.ok, s.failed)), Some((false, 1)));
        assert_eq!(LibtestSummary::parse("test foo ... ok"), None);
        assert_eq!(LibtestSummary::parse("test result: maybe. 1 passed"), None);
    }
}
