//! `takt rt-check` and `takt run --require-rt` on this host: both follow the library's
//! verdict on the same facts. On a host that is not PREEMPT_RT (the development and CI
//! machines) `--require-rt` refuses to start and names each fix; on a tuned host it runs.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use takt_controller::rt::check::{RtWanted, assess, gather};

#[test]
fn require_rt_refuses_exactly_when_the_self_check_falls_short() {
    let takt = takt_tests::vm::takt_binary().unwrap();
    let cell = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
    let report = assess(
        &gather(),
        &RtWanted {
            priority: 80,
            cpu: None,
        },
    );

    let check = Command::new(&takt)
        .args(["rt-check", "--priority", "80"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.success(), report.ready(), "{printed}");
    for f in &report.findings {
        assert!(
            printed.contains(&f.detail),
            "{:?} missing:\n{printed}",
            f.check
        );
    }

    let run = Command::new(&takt)
        .arg("run")
        .arg(&cell)
        .args([
            "--require-rt",
            "--duration",
            "1s",
            "--no-socket",
            "--no-journal",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    if report.ready() {
        assert!(run.status.success(), "{stderr}");
    } else {
        assert!(!run.status.success(), "ran despite shortfalls:\n{stderr}");
        assert!(
            stderr.contains("this host falls short of real time"),
            "{stderr}"
        );
        for f in report.shortfalls() {
            let fix = f.fix.as_deref().unwrap();
            assert!(
                stderr.contains(fix),
                "fix for {:?} missing:\n{stderr}",
                f.check
            );
        }
        // Nothing ran: no summary.
        assert!(
            run.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
}
