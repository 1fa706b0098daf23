//! The demo cell of BRIEF.md checks clean and compiles to the expected program.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;

fn demo() -> takt_sequences::Checked {
    takt_sequences::check_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml"))
}

fn render_all(c: &takt_sequences::Checked) -> String {
    c.diagnostics
        .sorted()
        .iter()
        .map(|d| c.sources.render_plain(d, 100))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_checks_clean() {
    let c = demo();
    let text = render_all(&c);
    assert_eq!(c.diagnostics.list().len(), 0, "{text}");
    assert!(c.program.is_some());
}

/// The compiled program of the demo matches the reviewed listing in `demo_program.listing`.
/// After an intended change: `TAKT_BLESS=1 cargo test -p takt-sequences --test demo`.
#[test]
fn demo_program_matches_its_listing() {
    let listing = demo().program.unwrap().listing();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/demo_program.listing");
    if std::env::var_os("TAKT_BLESS").is_some() {
        std::fs::write(&path, &listing).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == listing,
        "compiled program differs from {}:\n{listing}",
        path.display()
    );
}

/// The planned bus load of the demo: the table `takt check` prints.
#[test]
fn demo_bus_load() {
    let c = demo();
    assert_eq!(c.bus_loads.len(), 1);
    let load = &c.bus_loads[0];
    // SYNC 55 bits + 3 CSP drives and 2 conveyor TPDOs at 115 bits every 2 ms, the I/O TPDO
    // (65 bits) at its 2 ms inhibit, the event RPDOs at 10 ms, 7 heartbeats at 100 ms.
    let bits_per_s =
        500.0 * (55.0 + 8.0 * 115.0 + 65.0) + 100.0 * (2.0 * 115.0 + 65.0) + 10.0 * 7.0 * 65.0;
    assert!(
        (load.load_percent - bits_per_s / 1e4).abs() < 1e-9,
        "{}",
        load.load_percent
    );
    assert!(load.load_percent < load.ceiling_percent);
    assert_eq!(load.frames.len(), 20);
    assert_eq!(load.frames[0].name, "SYNC");
}
