//! `takt check` and `takt schema`.
//!
//! `takt check config/cell.toml` reads the cell and every sequence, prints every problem on
//! stderr (file, line, column, a caret and a hint, rendered by miette), then on stdout what was
//! checked and the planned load of each bus. `--dry-run` also plans every move of one pass with
//! the axes' limits and prints the step timeline and the cycle time; `--timeline out.svg` draws
//! it. Exit status: 1 on errors, 0 otherwise (warnings included).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use takt_sequences::Checked;

mod dry_run;
mod timeline_svg;

/// Arguments of `takt check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The cell file (its sequences are found from it).
    pub cell: PathBuf,
    /// Plan every move of one pass and print the step timeline and the cycle time.
    #[arg(long)]
    pub dry_run: bool,
    /// Draw the dry run's timeline into this SVG file (implies --dry-run).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// Print the compiled program.
    #[arg(long)]
    pub listing: bool,
    /// Plain diagnostics: no colours, no Unicode box drawing.
    #[arg(long)]
    pub plain: bool,
}

/// Arguments of `takt schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which schema: `cell` or `sequence`; both (as one JSON object) if left out.
    #[arg(value_parser = ["cell", "sequence"])]
    pub which: Option<String>,
    /// Write `cell.schema.json` and `sequence.schema.json` into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Runs `takt check`.
pub fn check(args: CheckArgs) -> ExitCode {
    let checked = takt_sequences::check_file(&args.cell);
    print_diagnostics(&checked, args.plain);
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{}",
        report(&checked, &args.cell.display().to_string())
    );
    if checked.diagnostics.has_errors() {
        return ExitCode::FAILURE;
    }
    let Some(program) = &checked.program else {
        return ExitCode::FAILURE;
    };
    if args.listing {
        let _ = write!(out, "\n{}", program.listing());
    }
    if args.dry_run || args.timeline.is_some() {
        let run = dry_run::run(program);
        let _ = write!(out, "\n{}", dry_run::report(program, &run));
        if let Some(path) = &args.timeline {
            let svg = timeline_svg::render(program, &run);
            if let Err(e) = std::fs::write(path, svg) {
                eprintln!("takt check: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            let _ = writeln!(out, "timeline drawn to {}", path.display());
        }
    }
    ExitCode::SUCCESS
}

fn print_diagnostics(checked: &Checked, plain: bool) {
    // --plain: ASCII and no styles at all, for logs and CI; a pipe: Unicode without colour.
    let theme = if plain {
        miette::GraphicalTheme::none()
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let width = terminal_width();
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut err = std::io::stderr().lock();
    for d in checked.diagnostics.sorted() {
        let mut text = String::new();
        let _ = handler.render_report(&mut text, &checked.sources.report(&d));
        let _ = writeln!(err, "{text}");
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// The human-facing summary: what was checked, then the bus load per bus.
pub(crate) fn report(checked: &Checked, cell_path: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let sm = &checked.summary;
    let errors = checked.diagnostics.error_count();
    let warnings = checked.diagnostics.warning_count();
    let _ = writeln!(s, "takt check {cell_path}");
    let _ = writeln!(
        s,
        "  cell: {} bus{}, {} devices, {} axes, {} conveyors, {} inputs, {} outputs, {} teach points, {} interlocks",
        sm.buses,
        if sm.buses == 1 { "" } else { "es" },
        sm.devices,
        sm.axes,
        sm.conveyors,
        sm.inputs,
        sm.outputs,
        sm.teach_points,
        sm.interlocks
    );
    let _ = writeln!(
        s,
        "  sequences: {} ({} steps)",
        if sm.sequences.is_empty() {
            "none".to_owned()
        } else {
            sm.sequences.join(", ")
        },
        sm.steps
    );
    let _ = writeln!(
        s,
        "  checked: syntax, keys, names, units, soft limits, speeds, timeouts, parallel branches, repeats, calls, interlocks, reachability, bus load"
    );
    for load in &checked.bus_loads {
        let _ = writeln!(
            s,
            "\nbus {}: {} bit/s, SYNC every {} ms — planned load {:.1} % of {} % ceiling ({:.0} frames/s, worst-case stuffing)",
            load.bus,
            load.bitrate_bit_s,
            takt_sequences::quantity::trim_float(f64::from(load.sync_period_us) / 1000.0),
            load.load_percent,
            takt_sequences::quantity::trim_float(load.ceiling_percent),
            load.frames_per_s,
        );
        let _ = writeln!(
            s,
            "  {:<28} {:>6} {:>5} {:>5} {:>8} {:>7}",
            "frame", "COB-ID", "bytes", "bits", "per s", "load %"
        );
        for f in &load.frames {
            let _ = writeln!(
                s,
                "  {:<28} {:>6} {:>5} {:>5} {:>8} {:>7.2}",
                f.name,
                format!("0x{:03X}", f.cob_id),
                f.bytes,
                f.bits,
                takt_sequences::quantity::trim_float((f.per_s * 10.0).round() / 10.0),
                f.load_percent
            );
        }
        let _ = writeln!(
            s,
            "  {:<28} {:>6} {:>5} {:>5} {:>8} {:>7.2}",
            "total",
            "",
            "",
            "",
            format!("{:.0}", load.frames_per_s),
            load.load_percent
        );
    }
    let verdict = match (errors, warnings) {
        (0, 0) => "ok".to_owned(),
        (0, w) => format!("ok, {w} warning{}", if w == 1 { "" } else { "s" }),
        (e, w) => format!(
            "{e} error{}, {w} warning{}",
            if e == 1 { "" } else { "s" },
            if w == 1 { "" } else { "s" }
        ),
    };
    let _ = writeln!(s, "\nresult: {verdict}");
    s
}

/// Runs `takt schema`.
pub fn schema(args: SchemaArgs) -> ExitCode {
    use takt_sequences::schema::{cell_schema, sequence_schema, to_text};
    if let Some(dir) = args.out_dir {
        for (name, schema) in [
            ("cell.schema.json", cell_schema()),
            ("sequence.schema.json", sequence_schema()),
        ] {
            let path = dir.join(name);
            if let Err(e) =
                std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, to_text(&schema)))
            {
                eprintln!("takt schema: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        }
        return ExitCode::SUCCESS;
    }
    let text = match args.which.as_deref() {
        Some("cell") => to_text(&cell_schema()),
        Some("sequence") => to_text(&sequence_schema()),
        _ => to_text(&serde_json::json!({ "cell": cell_schema(), "sequence": sequence_schema() })),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_report_shows_the_bus_load_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let checked = takt_sequences::check_file(&path);
        let text = report(&checked, "config/cell.toml");
        assert!(
            text.contains("planned load 55.4 % of 70 % ceiling"),
            "{text}"
        );
        assert!(
            text.contains("x_drive TPDO1                 0x181     6   115      500    5.75"),
            "{text}"
        );
        assert!(text.contains("result: ok"), "{text}");
    }
}
