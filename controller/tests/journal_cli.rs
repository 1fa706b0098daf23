//! `takt journal` reads what `takt run` journaled: every record across rotated files, in
//! order, filtered by kind and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

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
