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

#[test]
fn show_listing() {
    let c = demo();
    println!("{}", c.program.unwrap().listing());
    for l in &c.bus_loads {
        println!("{} {:.2}%", l.bus, l.load_percent);
        for f in &l.frames {
            println!(
                "  {:<28} 0x{:03X} {} {} {:.1} {:.2}",
                f.name, f.cob_id, f.bytes, f.bits, f.per_s, f.load_percent
            );
        }
    }
    println!("{:?}", c.summary);
}
