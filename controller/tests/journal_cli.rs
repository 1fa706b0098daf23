//! `takt journal` reads what `takt run` journaled: every record across rotated files, in
//! order, filtered by kind and time; `--follow` waits for a journal not yet written and
//! prints every record as it comes, across rotations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use takt_controller::control::protocol::Record;

fn takt(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn takt_journal_reads_a_rotated_journal_in_order_and_filters_it() {
    let dir = std::env::temp_dir().join(format!("takt-journal-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal.jsonl");
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    takt(&[
        "run",
        cell.to_str().unwrap(),
        "--fast",
        "--parts",
        "2",
        "--no-socket",
        "--journal",
        journal.to_str().unwrap(),
        "--journal-max-bytes",
        "4000",
        "--journal-keep",
        "100",
    ]);
    assert!(dir.join("journal.jsonl.1").exists(), "the journal rotated");
    let j = journal.to_str().unwrap();
    let records: Vec<Record> = takt(&["journal", j, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>());
    assert_eq!(records.first().unwrap().kind, "controller_start");
    assert_eq!(records.last().unwrap().kind, "controller_stop");
    let counted: Vec<u64> = records
        .iter()
        .filter(|r| r.kind == "counted")
        .filter_map(|r| r.total)
        .collect();
    assert_eq!(counted, [1, 2], "every counter change, once");
    // takt run's own start and stop, journaled as commands of the controller's user.
    let commands = takt(&["journal", j, "--kind", "command,trip"]);
    assert_eq!(commands.lines().count(), 2, "{commands}");
    assert!(commands.contains("start by uid") && commands.contains("via takt run"));
    assert_eq!(
        takt(&["journal", j, "--since", "1h"]).lines().count(),
        records.len()
    );
    assert_eq!(
        takt(&["journal", j, "--since", "2999-01-01T00:00:00Z"])
            .lines()
            .count(),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `takt journal --follow` runs until killed: also when the test fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn takt_journal_follow_waits_for_the_journal_and_prints_every_record_across_rotations() {
    let dir = std::env::temp_dir().join(format!("takt-journal-follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal.jsonl");
    let j = journal.to_str().unwrap();
    // Following a journal no controller has written yet.
    let mut follow = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_takt"))
            .args(["journal", j, "--follow", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = follow.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // A small journal limit: the run rotates its journal many times, several times between
    // two looks of the follower, which prints while the controller writes.
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let mut run = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args(["run", cell.to_str().unwrap(), "--fast", "--parts", "4"])
        .args(["--no-socket", "--journal", j])
        .args(["--journal-max-bytes", "4000", "--journal-keep", "1000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut followed: Vec<Record> = Vec::new();
    while followed.last().is_none_or(|r| r.kind != "controller_stop") {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("takt journal --follow stopped after {followed:?}"));
        followed.push(serde_json::from_str(&line).unwrap());
    }
    assert!(run.wait().unwrap().success());
    assert!(dir.join("journal.jsonl.3").exists(), "the journal rotated");
    drop(follow);
    // Every record once, in order, as the whole journal holds them.
    let all: Vec<Record> = takt(&["journal", j, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(followed, all);
    assert_eq!(followed.first().unwrap().kind, "controller_start");
    let _ = std::fs::remove_dir_all(&dir);
}
