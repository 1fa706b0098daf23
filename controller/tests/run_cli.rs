//! `takt run` on the simulated cell: it places parts, ends with a summary, and the same
//! seed gives a byte-identical trace.

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
