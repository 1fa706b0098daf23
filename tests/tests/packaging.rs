//! The deployment artefacts of packaging/ (issue 8): the systemd unit passes
//! `systemd-analyze verify` and asks only for options `takt run` has, and the Debian package
//! built by cargo-deb holds the binary, the unit and what it needs, the example cell and its
//! schema.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("takt-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn unit_text() -> String {
    fs::read_to_string(workspace().join("packaging/takt.service")).unwrap()
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    // verify checks that ExecStart's program exists: point it at the binary just built.
    let takt = takt_tests::vm::takt_binary().unwrap();
    let dir = scratch("unit");
    let unit = dir.join("takt.service");
    fs::write(
        &unit,
        unit_text().replace("/usr/bin/takt", &takt.to_string_lossy()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs (apt install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are warnings with status 0: any output is a failure.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_never_starts_motion_and_asks_for_real_time() {
    let text = unit_text();
    let keys: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert_eq!(value("LimitMEMLOCK"), Some("infinity"));
    assert_eq!(value("LimitRTPRIO"), Some("95"));
    assert_eq!(value("Type"), Some("simple"));
    assert_eq!(value("Restart"), Some("on-failure"));
    assert_eq!(value("StartLimitBurst"), Some("3"));
    // ExecStart, its continuation lines joined.
    let exec = text
        .split("\nExecStart=")
        .nth(1)
        .unwrap()
        .split('\n')
        .scan(true, |more, line| {
            let take = *more;
            *more = line.trim_end().ends_with('\\');
            take.then_some(line.trim_end_matches('\\'))
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert!(exec.contains("--no-start"), "{exec}");
    assert!(exec.contains("--require-rt"), "{exec}");
    // Every option the unit gives exists in `takt run`.
    let help = Command::new(takt_tests::vm::takt_binary().unwrap())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let options: Vec<&str> = exec
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(options.len() >= 8, "{options:?}");
    for option in options {
        assert!(help.contains(option), "takt run has no {option}:\n{help}");
    }
}

#[test]
fn the_debian_package_holds_binary_unit_cell_and_schema() {
    let root = workspace();
    // The release binary is what the package ships (a no-op when tests/run built it).
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "takt-controller",
            "--bin",
            "takt",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(build.success());
    let out_dir = scratch("deb");
    let deb = Command::new(env!("CARGO"))
        .args([
            "deb",
            "-p",
            "takt-controller",
            "--no-build",
            "--fast",
            "--quiet",
            "-o",
        ])
        .arg(&out_dir)
        .current_dir(&root)
        .output()
        .expect("cargo deb runs (cargo install --locked cargo-deb)");
    assert!(
        deb.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&deb.stderr)
    );
    let package = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb was written");
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&package)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for path in [
        "./usr/bin/takt",
        "./usr/lib/systemd/system/takt.service",
        "./usr/lib/sysusers.d/takt.conf",
        "./usr/lib/udev/rules.d/60-takt.rules",
        "./etc/default/takt",
        "./usr/share/doc/takt/examples/80-can0.network",
        "./usr/share/takt/config/cell.toml",
        "./usr/share/takt/config/sequences/pick_and_place.toml",
        "./usr/share/takt/config/schema/cell.schema.json",
        "./usr/share/takt/config/schema/sequence.schema.json",
    ] {
        assert!(files.contains(&path), "{path} missing from:\n{listing}");
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/takt")),
        "the binary is executable:\n{listing}"
    );
    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&package)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(field("Package"), "takt");
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));
    // /etc/default/takt is a conffile: an upgrade keeps the site's settings.
    let info = Command::new("dpkg-deb")
        .args(["-I"])
        .arg(&package)
        .arg("conffiles")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&info.stdout).trim(),
        "/etc/default/takt"
    );
    let _ = fs::remove_dir_all(&out_dir);
}
