//! The operator console in a real terminal: `takt run config/cell.toml` under `tmux` at
//! 80×24, the e-stop key sent with `send-keys`, the screen read back with `capture-pane`;
//! then the controller asked through its control socket whether it latched the e-stop,
//! and its journal read for the operator's command; reset and start from the console (each
//! confirmed with y) run the cell again. Quitting the console must leave the
//! controller running. `takt tui` attached to a controller that has run a while shows its
//! past events and its bus at once. Every wait polls with a deadline; none sleeps a fixed
//! time.
//!
//! Needs `tmux` (tests/run installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use takt_controller::control::client::{Client, Connection};
use takt_controller::control::protocol::{CommandName, Record};

/// A private tmux server, killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("takt-{name}-{}", std::process::id()),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}): install it (tests/run does)"));
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "takt"]).stdout)
            .into_owned()
    }

    /// The session's pane in a terminal of `width`×`height` running `sh -c script` in `dir`.
    fn start(&self, dir: &Path, width: u16, height: u16, script: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "takt",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            dir.to_str().unwrap(),
            "sh",
            "-c",
            script,
        ]);
    }

    /// Polls the screen until `done` holds, at most `limit`; the last screen either way.
    fn wait_for(&self, limit: Duration, done: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let ok = poll(limit, || {
            last = self.screen();
            done(&last)
        });
        (ok, last)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Calls `f` every 50 ms until it returns `true` or `limit` passes; whether it did.
fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn journal_has_estop(path: &Path) -> Result<Record, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .find(|r| r.command == Some(CommandName::Estop) && r.accepted == Some(true))
        .ok_or(text)
}

fn journal_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn estop_key_in_a_real_terminal_latches_the_controller_is_journaled_and_reset_and_start_run_it_again()
 {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("takt-tui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("control.sock");
    let journal = dir.join("journal.jsonl");
    // The pane outlives takt so a failure still shows what it printed; the shell traps
    // Ctrl-C (its child gets the default action back, and takt its own handler). The cycle
    // runs at 2 ms (the demo cell's SYNC period) with the tests' watchdog: this tests the
    // console, not the host's virtual CPUs (see support::REAL_TIME_TEST_WATCHDOG).
    let script = format!(
        "trap : INT; '{}' run config/cell.toml --period 2ms {} --tui --socket '{}' --journal '{}' 2>'{}'; \
         echo TAKT EXITED $?; sleep 600",
        env!("CARGO_BIN_EXE_takt"),
        support::REAL_TIME_TEST_WATCHDOG.join(" "),
        socket.display(),
        journal.display(),
        dir.join("stderr").display(),
    );
    let tmux = Tmux::new("estop");
    tmux.start(&root, 80, 24, &script);

    // The console is up and attached: the help line, the axes, and no connection banner.
    let (up, screen) = tmux.wait_for(Duration::from_secs(60), |s| {
        s.contains("Space/F1 E-STOP") && s.contains("gantry-1") && s.contains("│z ")
    });
    assert!(up, "the console did not come up:\n{screen}");
    assert!(!screen.contains("E-STOP LATCHED"), "{screen}");

    tmux.cmd(&["send-keys", "-t", "takt", "Space"]);
    let (latched, screen) =
        tmux.wait_for(Duration::from_secs(20), |s| s.contains("E-STOP LATCHED"));
    assert!(latched, "no e-stop banner after Space:\n{screen}");
    println!("{screen}");

    // The controller itself latched it (not just the screen).
    let mut client = Client::connect(&socket).unwrap();
    let mut status = client.status().unwrap();
    let ok = poll(Duration::from_secs(10), || {
        status = client.status().unwrap();
        status.estop_latched && status.cell == "aborted"
    });
    assert!(
        ok,
        "controller: latched {} cell {}",
        status.estop_latched, status.cell
    );
    assert_eq!(
        status.trip.as_ref().map(|t| t.cause.as_str()),
        Some("estop_command")
    );

    // And the journal has the operator's e-stop, accepted, from the console.
    let mut found = Err(String::new());
    poll(Duration::from_secs(10), || {
        found = journal_has_estop(&journal);
        found.is_ok()
    });
    let record =
        found.unwrap_or_else(|text| panic!("no accepted estop command in the journal:\n{text}"));
    let by = record.by.expect("the command names who sent it");
    assert_eq!(by.via, "in-process");

    // Reset and start from the console, each confirmed with y: the banner goes, the cell
    // runs again.
    tmux.cmd(&["send-keys", "-t", "takt", "c"]);
    let (asked, screen) = tmux.wait_for(Duration::from_secs(10), |s| s.contains("(y/n)"));
    assert!(asked, "c did not ask y/n:\n{screen}");
    tmux.cmd(&["send-keys", "-t", "takt", "y"]);
    let ok = poll(Duration::from_secs(20), || {
        status = client.status().unwrap();
        !status.estop_latched && status.cell == "stopped"
    });
    assert!(
        ok,
        "after reset: latched {} cell {}",
        status.estop_latched, status.cell
    );
    let (cleared, screen) =
        tmux.wait_for(Duration::from_secs(10), |s| !s.contains("E-STOP LATCHED"));
    assert!(cleared, "the banner stayed after the reset:\n{screen}");
    tmux.cmd(&["send-keys", "-t", "takt", "g"]);
    tmux.wait_for(Duration::from_secs(10), |s| s.contains("(y/n)"));
    tmux.cmd(&["send-keys", "-t", "takt", "y"]);
    let ok = poll(Duration::from_secs(30), || {
        status = client.status().unwrap();
        status.cell == "execute"
    });
    assert!(
        ok,
        "after start: cell {} trip {:?} startup {} overruns {} wake-up latency {:?} compute {:?}\n\
         the journal's last lines:\n{}",
        status.cell,
        status.trip,
        status.startup,
        status.timing.overruns,
        status.timing.latency,
        status.timing.compute,
        journal_tail(&journal, 30)
    );
    let (running, screen) = tmux.wait_for(Duration::from_secs(10), |s| s.contains("EXECUTE"));
    assert!(
        running,
        "the console does not show the cell running:\n{screen}"
    );

    // Quitting the console leaves the controller running.
    tmux.cmd(&["send-keys", "-t", "takt", "q"]);
    let (gone, screen) = tmux.wait_for(Duration::from_secs(10), |s| !s.contains("Space/F1 E-STOP"));
    assert!(gone, "q did not leave the console:\n{screen}");
    assert!(!screen.contains("TAKT EXITED"), "{screen}");
    let before = client.status().unwrap().cycles;
    assert!(
        poll(Duration::from_secs(10), || client
            .status()
            .is_ok_and(|s| s.cycles > before)),
        "the controller stopped cycling when the console left"
    );

    // Ctrl-C ends the run, with its summary.
    tmux.cmd(&["send-keys", "-t", "takt", "C-c"]);
    let (ended, screen) = tmux.wait_for(Duration::from_secs(30), |s| s.contains("TAKT EXITED"));
    assert!(ended, "takt did not end on Ctrl-C:\n{screen}");
    assert!(screen.contains("parts placed:"), "{screen}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its parent).
fn ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn takt_tui_says_when_no_controller_answers_and_ends_when_its_terminal_goes_away() {
    let dir = std::env::temp_dir().join(format!("takt-tui-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("nobody-here.sock");
    // SIGHUP ignored, as under nohup: the console must notice the hang-up itself.
    let script = format!(
        "trap '' HUP; exec '{}' tui --socket '{}'",
        env!("CARGO_BIN_EXE_takt"),
        socket.display()
    );
    let tmux = Tmux::new("hup");
    tmux.start(&dir, 80, 24, &script);
    let (shown, screen) = tmux.wait_for(Duration::from_secs(20), |s| {
        s.contains("NO CONNECTION TO THE CONTROLLER") && s.contains("Space/F1 E-STOP")
    });
    assert!(shown, "no connection banner:\n{screen}");
    let pid = String::from_utf8_lossy(
        &tmux
            .cmd(&["display-message", "-p", "-t", "takt", "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .to_owned();
    assert!(!ended(&pid), "takt tui is not running as the pane ({pid})");
    tmux.cmd(&["kill-session", "-t", "takt"]);
    if !poll(Duration::from_secs(10), || ended(&pid)) {
        // Not left behind spinning when the test fails.
        let _ = Command::new("kill").args(["-9", &pid]).status();
        panic!("takt tui (pid {pid}) still runs after its terminal went away");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A process killed when the test ends however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn takt_tui_attached_mid_run_shows_the_past_events_and_the_bus_at_once() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("takt-tui-attach-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("control.sock");
    let _controller = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_takt"))
            .current_dir(&root)
            .args(["run", "config/cell.toml", "--no-tui", "--socket"])
            .arg(&socket)
            .arg("--journal")
            .arg(dir.join("journal.jsonl"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut client = None;
    assert!(
        poll(Duration::from_secs(20), || {
            client = Client::connect(&socket).ok();
            client.is_some()
        }),
        "the controller never served its socket"
    );
    let mut client = client.unwrap();
    // Start-up done; what the cell does next (a trip on a loaded machine too) only adds
    // events.
    assert!(
        poll(Duration::from_secs(30), || client
            .status()
            .is_ok_and(|s| s.startup == "ready")),
        "the cell never finished its start-up"
    );
    let tmux = Tmux::new("attach");
    tmux.start(
        &dir,
        80,
        24,
        &format!(
            "'{}' tui --socket '{}'",
            env!("CARGO_BIN_EXE_takt"),
            socket.display()
        ),
    );
    // The first screen with the cell on it already has start-up's events in its log
    // (boot-ups, configuration, homing, the start: more than a dozen), not only what
    // happened after the console attached.
    let (up, screen) = tmux.wait_for(Duration::from_secs(20), |s| s.contains("│z "));
    assert!(up, "the console did not come up:\n{screen}");
    let logged: usize = screen
        .split_once("events (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no event log:\n{screen}"));
    assert!(logged >= 12, "{logged} events at attach:\n{screen}");
    // The bus in one line on the log's border: its interface healthy, every heartbeat in.
    assert!(
        screen.contains("error-active  TEC 0 REC 0  6/6 heartbeats"),
        "{screen}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
