//! `takt dump --log FILE --stats` on a trace whose truth is known: the simulated demo cell's
//! candump log (simulated time, deterministic for the seed). The bus load read back from the
//! log must equal the simulated bus model's own accounting, and the SYNC period the cell
//! file's, exactly.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// The number after `label` in `text`, with its decimals.
fn figure_after(text: &str, label: &str) -> f64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    text[at + label.len()..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in:\n{text}"))
}

#[test]
fn stats_of_a_simulated_trace_match_the_bus_model() {
    let takt = takt_tests::vm::takt_binary().unwrap();
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let trace = std::env::temp_dir().join(format!("takt-trace-stats-{}.log", std::process::id()));
    let run = Command::new(&takt)
        .arg("run")
        .arg(&cell)
        .args([
            "--fast",
            "--duration",
            "6s",
            "--no-socket",
            "--no-journal",
            "--trace",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{summary}");
    let stats = Command::new(&takt)
        .args(["dump", "--log"])
        .arg(&trace)
        .args(["--stats", "--bitrate", "1M"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success(), "{report}");
    // The simulated bus counts every frame at its worst-case stuffed length, as the reader
    // does: the same frames, the same bits, the same span.
    assert_eq!(
        figure_after(&summary, "bus can0: "),
        figure_after(&report, ": "),
        "frames:\n{summary}\n{report}"
    );
    assert_eq!(
        figure_after(&summary, "load "),
        figure_after(&report, "an upper bound): mean "),
        "load:\n{summary}\n{report}"
    );
    // config/cell.toml: sync_period = "2 ms".
    assert_eq!(figure_after(&report, "period mean "), 2.0, "{report}");
    assert!(
        figure_after(&report, "TPDO after SYNC: ") > 1000.0,
        "{report}"
    );
    assert!(
        figure_after(&report, "RPDO before SYNC: ") > 1000.0,
        "{report}"
    );
    let _ = std::fs::remove_file(&trace);
}
