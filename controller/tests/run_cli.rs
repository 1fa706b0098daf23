//! `takt run` on the simulated cell: it places parts, ends with a summary, the same seed
//! gives a byte-identical trace, and a fault the cell file lets resume by itself does not
//! end the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn run(trace: &Path, seed: &str) -> String {
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args([
            "run",
            cell.to_str().unwrap(),
            "--fast",
            "--parts",
            "3",
            "--seed",
            seed,
        ])
        .arg("--trace")
        .arg(trace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn takt_run_fast_places_the_parts_asked_for_and_replays_byte_for_byte() {
    let dir = std::env::temp_dir().join(format!("takt-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.log"), dir.join("b.log"));
    let summary = run(&a, "7");
    assert!(summary.contains("seed 7"), "{summary}");
    assert!(
        summary.contains(
            "parts placed: 3 (takt's count), 3 (the simulated world's); dropped 0, collisions 0"
        ),
        "{summary}"
    );
    assert!(summary.contains("mean takt time"), "{summary}");
    run(&b, "7");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `takt run config/cell.toml --fast --parts 3 --scenario SCENARIO`: whether it
/// succeeded, its stdout and its stderr.
fn run_scenario(scenario: &Path) -> (bool, String, String) {
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_takt"))
        .arg("run")
        .arg(cell)
        .args(["--fast", "--parts", "3", "--scenario"])
        .arg(scenario)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_fault_that_resumes_by_itself_does_not_end_the_run() {
    // Z loses 1.5 mm of steps 4 s in (config/scenarios/z-loses-steps.toml): the cell trips
    // on following error, which config/cell.toml's `[resync] auto_resume` lists. Without
    // an operator the run used to end at the trip, aborted, with one part placed.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, stdout, stderr) = run_scenario(&root.join("config/scenarios/z-loses-steps.toml"));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "parts placed: 3 (takt's count), 3 (the simulated world's); dropped 0, collisions 0"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("cell: Stopped; trips 1; last trip None; simulated faults 1"),
        "{stdout}"
    );
    assert!(stderr.contains("trip: following error: axis z"), "{stderr}");
    assert!(
        stderr.contains("the cell file lets this fault resume by itself"),
        "{stderr}"
    );
}

#[test]
fn a_cell_held_for_an_operator_ends_a_run_without_one() {
    // The I/O node reboots while the gantry carries a part: its outputs reset, the vacuum
    // drops and the part falls. The reboot trip resumes by itself, the resync finds no
    // vacuum where the pass had a part and the cell holds for an operator, who is not
    // there: the run ends, failing, instead of waiting for ever (it did, once trips
    // resumed by themselves: 25,000 s of simulated time before the run's own limit).
    let dir = std::env::temp_dir().join(format!("takt-run-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("io-reboot.toml");
    std::fs::write(
        &scenario,
        "name = \"io-reboot\"\n\
         description = \"node 10 (I/O) reboots while a part is carried\"\n\
         duration_ms = 15000\n\
         [[fault]]\n\
         kind = \"node-reboot\"\n\
         at_ms = 4200\n\
         node = 10\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run_scenario(&scenario);
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("cell: Held; trips 1;"), "{stdout}");
    assert!(stdout.contains("dropped 1"), "{stdout}");
    assert!(stderr.contains("held instead of resuming"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scenario_is_refused_on_a_real_bus() {
    let out = Command::new(env!("CARGO_BIN_EXE_takt"))
        .args([
            "run",
            "cell.toml",
            "--iface",
            "can0",
            "--scenario",
            "x.toml",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--scenario"), "{stderr}");
}
