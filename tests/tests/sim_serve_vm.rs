//! `takt sim serve` on the kernel's own CAN stack, checked by independent peers.
//!
//! The host test boots the PREEMPT_RT VM and runs this binary's guest-side test there: it
//! starts `takt sim serve config/cell.toml --iface vcan0` in the background, captures the
//! boot-up messages with can-utils' `candump -L` and checks them byte for byte, then lets
//! python-canopen's RemoteNode (tests/peers/sim_conformance.py) take a simulated drive
//! through NMT, SDO reads (0x1000, 0x1018, 0x1008 segmented, an abort), the CiA 402 power
//! state machine and a profile-position move over SDO.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::path::PathBuf;

use takt_tests::vm;

#[test]
fn takt_sim_serve_passes_conformance_on_the_rt_kernel() -> Result<(), Box<dyn Error>> {
    vm::run_guest_test(&std::env::current_exe()?, "guest::serve_conformance")?;
    Ok(())
}

fn takt_binary() -> PathBuf {
    vm::takt_binary().expect("the takt binary")
}

mod guest {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::takt_binary;

    const IF: &str = "vcan0";

    /// Kills the child when the test ends, however it ends.
    struct Killed(Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    #[ignore = "guest-side: run inside the RT-kernel VM by takt_sim_serve_passes_conformance_on_the_rt_kernel"]
    fn serve_conformance() {
        assert!(takt_tests::vm::in_vm(), "runs only inside the RT-kernel VM");
        let capture = std::env::temp_dir().join("takt-sim-serve-bootups.log");
        // candump exits by itself after the six boot-up messages.
        let dump = Command::new("candump")
            .args(["-L", "-n", "6", IF])
            .stdout(Stdio::from(std::fs::File::create(&capture).unwrap()))
            .spawn()
            .expect("candump starts");
        let mut dump = Killed(dump);
        takt_tests::vm::wait_for_can_receivers(IF, 1);

        let cell = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/cell.toml");
        let serve = Command::new(takt_binary())
            .args(["sim", "serve", cell, "--iface", IF, "--duration", "240s"])
            .stdin(Stdio::null())
            .spawn()
            .expect("takt sim serve starts");
        let _serve = Killed(serve);

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = dump.0.try_wait().unwrap() {
                assert!(status.success(), "candump failed: {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no six boot-up messages within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(&capture).unwrap();
        // Byte for byte after the timestamp: the interface, then id#data.
        let frames: Vec<&str> = log
            .lines()
            .map(|l| l.split_once(") ").map_or(l, |(_, rest)| rest))
            .collect();
        assert_eq!(
            frames,
            [
                "vcan0 701#00",
                "vcan0 702#00",
                "vcan0 703#00",
                "vcan0 704#00",
                "vcan0 705#00",
                "vcan0 70A#00"
            ],
            "candump -L capture:\n{log}"
        );
        for line in log.lines() {
            assert!(
                line.starts_with('(') && line.as_bytes().get(11) == Some(&b'.'),
                "candump -L timestamp format: {line:?}"
            );
        }

        let python = std::env::var("PYTHON3").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/sim_conformance.py");
        let out = Command::new(python)
            .args([script, "--iface", IF, "--node", "1", "--target", "20000"])
            .output()
            .expect("python peer runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("ALL PASSED"),
            "python-canopen conformance failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        for check in [
            "PASS 0x1000 device type 0x00020192",
            "PASS 0x1008 segmented upload 'takt simulated servo drive'",
            "PASS abort 0x06020000",
            "PASS controlword 0x06 -> ready to switch on",
            "PASS controlword 0x07 -> switched on",
            "PASS controlword 0x0F -> operation enabled",
            "PASS new set-point acknowledged",
            "PASS target reached",
        ] {
            assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
        }
    }
}
