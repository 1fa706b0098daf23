//! The control socket and the journal of `takt run`, end to end against the binary:
//! every bad request gets its error, a viewer may not command, 100 clients at once and a
//! client that never reads leave the cycle untouched, and after SIGKILL the journal holds
//! every command that was acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use takt_controller::control::client::{Client, Connection};
use takt_controller::control::journal;
use takt_controller::control::protocol::{
    CommandName, ErrorCode, Record, Reply, ServerMsg, StatusMsg,
};

/// A `takt run` of the demo cell with its socket and journal in a fresh directory.
struct Controller {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    journal: PathBuf,
}

impl Controller {
    fn spawn(name: &str, extra: &[&str]) -> Controller {
        let dir = std::env::temp_dir().join(format!("takt-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("control.sock");
        let journal = dir.join("journal.jsonl");
        let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let child = Command::new(env!("CARGO_BIN_EXE_takt"))
            .arg("run")
            .arg(&cell)
            .arg("--socket")
            .arg(&socket)
            .arg("--journal")
            .arg(&journal)
            .args(support::REAL_TIME_TEST_WATCHDOG)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let c = Controller {
            child,
            dir,
            socket,
            journal,
        };
        // The process starts up in real time: wait for its socket to answer.
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&c.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "the controller never served its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    /// Status snapshots until `pred` holds (at most `limit` of them, 10 per second).
    fn wait_for(&self, limit: usize, pred: impl Fn(&StatusMsg) -> bool) -> StatusMsg {
        let mut c = self.client();
        assert!(c.subscribe(Some(10.0), false).unwrap().ok);
        let mut last = None;
        for _ in 0..limit {
            if let Some(ServerMsg::Status(s)) = c.recv_timeout(Duration::from_secs(2)).unwrap() {
                if pred(&s) {
                    return *s;
                }
                last = Some(s);
            }
        }
        let last = last.map(|s| (s.cell, s.startup, s.trip, s.timing.overruns));
        panic!(
            "the cell never reached the state asked for; last (cell, start-up, trip, overruns): {last:?}"
        );
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn error_code(r: &Reply) -> Option<ErrorCode> {
    r.error.as_ref().map(|e| e.code)
}

/// Reads messages until the reply to request `id` (or the one without an id).
fn reply_to(c: &mut Client, id: Option<u64>) -> Reply {
    for _ in 0..1000 {
        if let Some(ServerMsg::Reply(r)) = c.recv_timeout(Duration::from_secs(5)).unwrap()
            && r.id == id
        {
            return r;
        }
    }
    panic!("no reply to {id:?}");
}

#[test]
fn bad_requests_get_their_error_and_the_connection_goes_on() {
    let ctl = Controller::spawn("errors", &[]);
    ctl.wait_for(100, |s| s.cell == "execute");
    let mut c = ctl.client();
    assert_eq!(c.hello().protocol, 1);
    c.send_raw(b"{\"id\": 1, \"op\": ").unwrap();
    assert_eq!(
        error_code(&reply_to(&mut c, None)),
        Some(ErrorCode::MalformedJson)
    );
    c.send_raw(br#"{"id":2,"op":"command","command":"self_destruct"}"#)
        .unwrap();
    assert_eq!(
        error_code(&reply_to(&mut c, Some(2))),
        Some(ErrorCode::UnknownCommand)
    );
    c.send_raw(br#"{"id":3,"op":"teleport"}"#).unwrap();
    assert_eq!(
        error_code(&reply_to(&mut c, Some(3))),
        Some(ErrorCode::UnknownOp)
    );
    let mut long = br#"{"id":4,"op":"status","pad":""#.to_vec();
    long.extend(std::iter::repeat_n(b'x', 10_000));
    long.extend_from_slice(b"\"}");
    c.send_raw(&long).unwrap();
    assert_eq!(
        error_code(&reply_to(&mut c, None)),
        Some(ErrorCode::LineTooLong)
    );
    c.send_raw(br#"{"id":5,"op":"subscribe","status_hz":1000}"#)
        .unwrap();
    assert_eq!(
        error_code(&reply_to(&mut c, Some(5))),
        Some(ErrorCode::BadRequest)
    );
    // A command the state does not allow: refused, the cell unchanged, still journaled.
    let r = c.command(CommandName::Resume).unwrap();
    assert_eq!(error_code(&r), Some(ErrorCode::NotAllowedInState), "{r:?}");
    assert!(r.journal_seq.is_some());
    // The connection is still good.
    let s = c.status().unwrap();
    assert_eq!(s.cell, "execute");
    assert_eq!(s.axes.len(), 5);
    assert_eq!(s.inputs.len(), 5);
    assert_eq!(s.buses.len(), 1);
    assert_eq!(s.buses[0].nodes.len(), 6);
    assert!(
        s.buses[0]
            .nodes
            .iter()
            .all(|n| n.alive && n.nmt == "operational")
    );
    assert!(s.step.is_some());
    // E-stop, then reset: each acknowledged, the latch visible in between.
    assert!(c.command(CommandName::Estop).unwrap().ok);
    let s = ctl.wait_for(50, |s| s.cell == "aborted");
    assert!(s.estop_latched);
    assert_eq!(s.trip.unwrap().cause, "estop_command");
    assert!(c.command(CommandName::Reset).unwrap().ok);
    ctl.wait_for(50, |s| s.cell == "stopped" && !s.estop_latched);
    // As `socat` does: send, close the sending side, read to the end — every reply owed
    // arrives before the connection closes.
    let mut once = UnixStream::connect(&ctl.socket).unwrap();
    once.write_all(
        b"{\"id\":7,\"op\":\"status\"}\n{\"id\":8,\"op\":\"command\",\"command\":\"start\"}\n",
    )
    .unwrap();
    once.shutdown(std::net::Shutdown::Write).unwrap();
    let replies: Vec<Reply> = BufReader::new(once)
        .lines()
        .filter_map(|l| match serde_json::from_str(&l.unwrap()) {
            Ok(ServerMsg::Reply(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(replies.iter().all(|r| r.ok), "{replies:?}");
}

#[test]
fn a_viewer_may_watch_but_not_command() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Never a silent pass: without root the refusal is not tested, so say so and fail
        // unless whoever runs the tests chose to skip it.
        assert!(
            std::env::var_os("TAKT_SKIP_ROOT_TESTS").is_some(),
            "a_viewer_may_watch_but_not_command runs a client as another user (uid 65534) \
             and needs root: run the tests as root (CI does), or set TAKT_SKIP_ROOT_TESTS=1 \
             to skip it knowingly"
        );
        eprintln!(
            "SKIPPED a_viewer_may_watch_but_not_command: not root and TAKT_SKIP_ROOT_TESTS is \
             set; a viewer's refusal is NOT tested in this run"
        );
        return;
    }
    // nobody (65534) may open the socket through its group, and is no operator.
    let mut ctl = Controller::spawn("viewer", &["--socket-group", "65534"]);
    ctl.wait_for(100, |s| s.cell == "execute");
    let as_nobody = |action: &str| {
        Command::new(env!("CARGO_BIN_EXE_takt"))
            .args(["ctl", "--socket"])
            .arg(&ctl.socket)
            .arg(action)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let out = as_nobody("estop");
    let reply: Reply = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(!out.status.success());
    assert_eq!(error_code(&reply), Some(ErrorCode::NotPermitted));
    let out = as_nobody("status");
    assert!(out.status.success());
    let status: StatusMsg = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!status.estop_latched, "the viewer's e-stop was not taken");
    // Every record is written as it happens: what is there when the controller dies is
    // the whole story.
    ctl.child.kill().unwrap();
    ctl.child.wait().unwrap();
    let (records, bad) = journal::read(&ctl.journal).unwrap();
    assert!(bad.is_empty());
    assert!(
        !records
            .iter()
            .any(|r| r.command == Some(CommandName::Estop)),
        "a refused viewer command never reaches the cell"
    );
}

#[test]
fn a_hundred_clients_and_one_that_never_reads_leave_the_cycle_alone() {
    let ctl = Controller::spawn("crowd", &[]);
    let before = ctl.wait_for(100, |s| s.cell == "execute");
    // Subscribed to everything at the fastest rate, and never reading a byte.
    let mut stalled = UnixStream::connect(&ctl.socket).unwrap();
    stalled
        .write_all(b"{\"id\":1,\"op\":\"subscribe\",\"status_hz\":50}\n")
        .unwrap();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let socket = ctl.socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).unwrap();
                assert!(c.subscribe(Some(20.0), true).unwrap().ok);
                let mut statuses = 0;
                while statuses < 5 {
                    if let Some(ServerMsg::Status(_)) =
                        c.recv_timeout(Duration::from_secs(5)).unwrap()
                    {
                        statuses += 1;
                    }
                }
                c.status().unwrap().cycles
            })
        })
        .collect();
    let served = clients
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&cycles| cycles > before.cycles)
        .count();
    assert_eq!(served, 100, "every client got its status stream and reply");
    let after = ctl.client().status().unwrap();
    assert!(after.cycles > before.cycles + 250, "the cell kept cycling");
    assert_eq!(
        after.timing.dropped_events, 0,
        "the cycle never lost an event"
    );
    // The cycle never waits on the hub or a client (one that did would stall behind the
    // client that never reads, and the cycle count above would stand still); what could
    // still reach it is CPU contention, which SCHED_FIFO keeps off it. On a shared 2-core
    // machine running the rest of the suite, starting a hundred client threads causes the
    // odd overrun (one in 630 cycles was seen), so allow five plus one in two hundred —
    // a cycle that waited on each 20 Hz status publication would overrun in one in fifty.
    let cycles = after.cycles - before.cycles;
    let overruns = after.timing.overruns - before.timing.overruns;
    assert!(
        overruns * 200 <= cycles + 1000,
        "{overruns} overruns in {cycles} cycles while the clients came and went"
    );
    assert!(after.timing.latency.samples > 0);
    drop(stalled);
}

#[test]
fn a_client_that_reads_too_slowly_is_told_what_it_missed() {
    // Simulated time as fast as the CPU allows: events come faster than anyone reads.
    let ctl = Controller::spawn("slow", &["--fast", "--duration", "100000s"]);
    let stalled = UnixStream::connect(&ctl.socket).unwrap();
    (&stalled)
        .write_all(b"{\"id\":1,\"op\":\"subscribe\",\"status_hz\":50}\n")
        .unwrap();
    // Let the cycle run far ahead: some 30 events a pass, ~1200 in all, well past what
    // the socket buffer (~200 KiB, ~700 events) and the client's queue (256) hold.
    ctl.wait_for(1000, |s| s.passes >= 40);
    let mut reader = BufReader::new(&stalled);
    let mut line = String::new();
    let mut told = None;
    for _ in 0..5000 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if let Ok(ServerMsg::Dropped { events, .. }) = serde_json::from_str(&line) {
            told = Some(events);
            break;
        }
    }
    let dropped = told.expect("a dropped notice");
    assert!(dropped > 0, "events were dropped for the slow client");
    let s = ctl.client().status().unwrap();
    assert_eq!(
        s.timing.dropped_events, 0,
        "the cycle never lost an event to a slow client"
    );
}

#[test]
fn after_sigkill_the_journal_holds_every_acknowledged_command() {
    let mut ctl = Controller::spawn("sigkill", &[]);
    ctl.wait_for(100, |s| s.cell == "execute");
    // An operator's screen: every event it is shown has been told to an operator, so it
    // must be in the journal too.
    let mut watcher = ctl.client();
    assert!(watcher.subscribe(Some(0.1), true).unwrap().ok);
    let mut c = ctl.client();
    let mut acknowledged = Vec::new();
    for command in [
        CommandName::Hold,
        CommandName::Step,
        CommandName::Resume,
        CommandName::Hold,
        CommandName::Resume,
        CommandName::Estop,
        CommandName::Start,
        CommandName::Reset,
    ] {
        let r = c.command(command).unwrap();
        // Taken or refused by the state, every answered command is acknowledged.
        let seq = r.journal_seq.unwrap_or_else(|| panic!("{r:?}"));
        acknowledged.push((seq, command, r.ok));
    }
    // Everything the screen was sent up to the last acknowledgement (its own record
    // included), and maybe a little more.
    let last_ack = acknowledged.last().unwrap().0;
    let mut shown = Vec::new();
    while shown.last().is_none_or(|r: &Record| r.seq < last_ack) {
        if let Some(ServerMsg::Event(r)) = watcher.recv_timeout(Duration::from_secs(5)).unwrap() {
            shown.push(*r);
        }
    }
    // Mid-run, right after the last acknowledgement.
    ctl.child.kill().unwrap();
    ctl.child.wait().unwrap();
    // Whatever else the dead controller's socket still held for the screen.
    while let Ok(Some(m)) = watcher.recv_timeout(Duration::from_millis(100)) {
        if let ServerMsg::Event(r) = m {
            shown.push(*r);
        }
    }
    // The file parses: every line a whole record, the last one ended.
    let mut lines = 0;
    for f in journal::files(&ctl.journal) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends mid-line",
            f.display()
        );
        for line in text.lines() {
            serde_json::from_str::<Record>(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", f.display()));
            lines += 1;
        }
    }
    let (records, bad) = journal::read(&ctl.journal).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), lines);
    assert_eq!(records.first().unwrap().seq, 1);
    assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    for (seq, command, ok) in &acknowledged {
        let r = records
            .iter()
            .find(|r| r.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged {command:?} (#{seq}) not in the journal"));
        assert_eq!(r.kind, "command");
        assert_eq!(r.command, Some(*command));
        assert_eq!(r.accepted, Some(*ok));
        let by = r.by.as_ref().unwrap();
        assert_eq!(by.uid, me);
        assert_eq!(by.via, ctl.socket.display().to_string());
        assert!(by.pid > 0);
    }
    assert!(
        acknowledged.iter().filter(|a| a.2).count() >= 4,
        "{acknowledged:?}"
    );
    // Every event an operator was shown, exactly as shown.
    assert!(shown.len() > acknowledged.len(), "{shown:?}");
    for e in &shown {
        assert!(records.contains(e), "shown but not journaled: {e:?}");
    }
}

#[test]
fn a_watch_that_attaches_mid_run_starts_with_the_past_events() {
    let ctl = Controller::spawn("backlog", &[]);
    // Start-up done (boot-ups, configuration, homing: more than a dozen events); whatever
    // the cell does next — a trip on a loaded machine too — adds to them.
    ctl.wait_for(100, |s| s.startup == "ready");
    // `takt ctl watch` prints every message after its subscription's reply.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args(["ctl", "--socket"])
        .arg(&ctl.socket)
        .args(["watch", "--hz", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(watch.stdout.take().unwrap()).lines() {
        match serde_json::from_str::<ServerMsg>(&line.unwrap()).unwrap() {
            ServerMsg::Event(r) => events.push(*r),
            ServerMsg::Status(_) => break,
            other => panic!("before the first status: {other:?}"),
        }
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    // Start-up alone (boot-ups, configuration, homing) is more than a dozen events: the
    // watcher sees them although it came after.
    assert!(events.len() >= 12, "{events:?}");
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    if events[0].seq > 1 {
        assert!(events.len() >= 100, "the backlog holds the newest 100");
    } else {
        assert_eq!(events[0].kind, "controller_start");
    }
    assert!(events.iter().any(|r| r.kind == "startup"), "{events:?}");
    // More than the controller keeps is refused, saying why.
    let out = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args(["ctl", "--socket"])
        .arg(&ctl.socket)
        .args(["watch", "--backlog", "101"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let reply: Reply = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error_code(&reply), Some(ErrorCode::BadRequest));
    assert!(reply.error.unwrap().message.contains("100 past events"));
    // They are the journal's own records.
    let (records, bad) = journal::read(&ctl.journal).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    for e in &events {
        assert!(records.contains(e), "{e:?} is not in the journal");
    }
}

#[test]
fn the_readmes_socat_examples_work() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let examples: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("echo '") && l.contains("| socat"))
        .collect();
    assert!(examples.len() >= 2, "{examples:?}");
    assert!(
        Command::new("socat").arg("-V").output().is_ok(),
        "socat is not installed: install it (tests/run does)"
    );
    let ctl = Controller::spawn("socat", &[]);
    ctl.wait_for(100, |s| s.startup == "ready");
    for example in examples {
        // As a shell runs it, in its own process group so the watch can be ended whole.
        let mut sh = Command::new("sh")
            .args(["-c", example])
            .env("S", &ctl.socket)
            .process_group(0)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = sh.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut replies = Vec::new();
        let mut statuses = 0;
        // To its end, or (a watch) until it has streamed two snapshots.
        while statuses < 2 {
            match lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => match serde_json::from_str::<ServerMsg>(&line) {
                    Ok(ServerMsg::Reply(r)) => replies.push(r),
                    Ok(ServerMsg::Status(_)) => statuses += 1,
                    Ok(_) => {}
                    Err(e) => panic!("{example}: {e}: {line}"),
                },
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("{example}: {e}"),
            }
        }
        // SAFETY: kill has no memory preconditions; the group is the example's own.
        unsafe { libc::kill(-(sh.id() as i32), libc::SIGKILL) };
        sh.wait().unwrap();
        assert_eq!(replies.len(), 1, "{example}: {replies:?}");
        assert!(replies[0].ok, "{example}: {replies:?}");
        if example.contains("subscribe") {
            assert_eq!(statuses, 2, "{example} streams status");
        }
    }
}
