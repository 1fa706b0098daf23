//! The dry run drawn as an SVG: one row per step (a Gantt chart), the conveyors' running times,
//! and each gantry axis's position over time, on one time axis in seconds.
//!
//! Written by hand — a few rectangles, lines and polylines — so no drawing library is needed.

use std::fmt::Write;

use takt_sequences::program::Program;

use super::dry_run::{Bar, DryRun};

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 250.0;
const RIGHT: f64 = 30.0;
const ROW: f64 = 20.0;
const PLOT_H: f64 = 90.0;

fn colour(what: &str) -> &'static str {
    match what.split_whitespace().next().unwrap_or("") {
        "move" => "#4e79a7",
        "wait" => "#f28e2b",
        "set" => "#8c8c8c",
        "run" | "stop" | "index" => "#59a14f",
        "dwell" => "#b07aa1",
        "parallel," => "#d9d9d9",
        "count" => "#c9a227",
        "fault" => "#e15759",
        _ => "#bab0ac",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick step giving 6 to 15 ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let mut step = 0.001;
    for m in [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0,
    ] {
        step = m;
        if span / m <= 15.0 {
            break;
        }
    }
    step
}

/// Renders the steady-state pass of a dry run.
pub fn render(p: &Program, run: &DryRun) -> String {
    let pass = &run.steady;
    let total = pass.duration_s.max(1e-3);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + t / total * plot_w;
    let axes: Vec<usize> = (0..p.axes.len()).filter(|i| !p.axes[*i].conveyor).collect();
    let belts: Vec<usize> = (0..p.axes.len()).filter(|i| p.axes[*i].conveyor).collect();

    let title_h = 56.0;
    let steps_top = title_h + 24.0;
    let steps_h = pass.bars.len() as f64 * ROW;
    let belts_top = steps_top + steps_h + 34.0;
    let belts_h = belts.len() as f64 * ROW;
    let plots_top = belts_top + belts_h + 34.0;
    let plots_h = axes.len() as f64 * (PLOT_H + 22.0);
    let axis_y = plots_top + plots_h + 4.0;
    let height = axis_y + 40.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="20" y="28" font-size="18" font-weight="bold" fill="#222">{} — one pass of {}: {:.3} s</text>"##,
        esc(&p.cell_name),
        esc(&p.sequence_name),
        pass.duration_s
    );
    let _ = writeln!(
        s,
        r##"<text x="20" y="47" fill="#555">dry run: moves planned with each axis's limits, waits taken as met at once; {:.1} parts/min at best (first pass from the start position: {:.3} s)</text>"##,
        if pass.duration_s > 0.0 {
            60.0 / pass.duration_s
        } else {
            0.0
        },
        run.first.duration_s
    );

    // Time grid across every section.
    let step = tick_step(total);
    let mut t = 0.0;
    while t <= total + 1e-9 {
        let gx = x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{axis_y:.1}" stroke="#e6e6e6"/>"##,
            steps_top - 6.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            axis_y + 16.0,
            trim(t)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#444"/>"##,
        LEFT + plot_w
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">time, s</text>"##,
        LEFT + plot_w / 2.0,
        axis_y + 34.0
    );

    // Steps.
    section(&mut s, "steps", steps_top - 10.0);
    for (i, b) in pass.bars.iter().enumerate() {
        let y = steps_top + i as f64 * ROW;
        step_row(&mut s, b, y, &x);
    }

    // Conveyors.
    section(&mut s, "conveyors running", belts_top - 10.0);
    for (k, &ax) in belts.iter().enumerate() {
        let y = belts_top + k as f64 * ROW;
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#222">{}</text>"##,
            LEFT - 8.0,
            y + 14.0,
            esc(&p.axes[ax].name)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w:.1}" height="{:.1}" fill="#f4f4f4"/>"##,
            y + 3.0,
            ROW - 6.0
        );
        for b in pass.belts.iter().filter(|b| b.axis.index() == ax) {
            let w = (x(b.end_s) - x(b.start_s)).max(1.0);
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#59a14f" rx="2"><title>{} running {:.3}–{:.3} s</title></rect>"##,
                x(b.start_s),
                y + 3.0,
                ROW - 6.0,
                esc(&p.axes[ax].name),
                b.start_s,
                b.end_s
            );
        }
    }

    // Axis positions.
    section(&mut s, "axis positions", plots_top - 10.0);
    for (k, &ax) in axes.iter().enumerate() {
        let a = &p.axes[ax];
        let unit = if a.rotary { "deg" } else { "mm" };
        let top = plots_top + k as f64 * (PLOT_H + 22.0);
        let lo = a.min_position_counts as f64 / a.counts_per_unit;
        let hi = a.max_position_counts as f64 / a.counts_per_unit;
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let y = |v: f64| top + PLOT_H - (v - lo) / (hi - lo) * PLOT_H;
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{PLOT_H}" fill="none" stroke="#bbb"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="bold" fill="#222">{} ({unit})</text>"##,
            LEFT - 52.0,
            top + PLOT_H / 2.0 + 4.0,
            esc(&a.name)
        );
        for v in [lo, (lo + hi) / 2.0, hi] {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666" font-size="11">{}</text>"##,
                LEFT - 6.0,
                y(v) + 4.0,
                trim(v)
            );
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
                y(v),
                LEFT + plot_w,
                y(v)
            );
        }
        let mut pts = String::new();
        let n = 600;
        for i in 0..=n {
            let t = total * f64::from(i) / f64::from(n);
            let pos = position_at(pass, ax, t);
            let _ = write!(pts, "{:.1},{:.1} ", x(t), y(pos));
        }
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#4e79a7" stroke-width="2"/>"##,
            pts.trim_end()
        );
    }
    s.push_str("</svg>\n");
    s
}

fn section(s: &mut String, title: &str, y: f64) {
    let _ = writeln!(
        s,
        r##"<text x="20" y="{y:.1}" font-weight="bold" fill="#222">{title}</text>"##
    );
}

fn step_row(s: &mut String, b: &Bar, y: f64, x: &dyn Fn(f64) -> f64) {
    let indent = 14.0 * b.depth as f64;
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
        20.0 + indent,
        y + 14.0,
        esc(&b.step)
    );
    let fill = colour(&b.what);
    let bx = x(b.start_s);
    if b.duration_s > 0.0 {
        let w = (x(b.start_s + b.duration_s) - bx).max(1.5);
        let stroke = if b.what.starts_with("parallel") {
            r##" stroke="#999""##
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r##"<rect x="{bx:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{fill}"{stroke} rx="2"><title>{}: {} ({:.3}–{:.3} s)</title></rect>"##,
            y + 3.0,
            ROW - 6.0,
            esc(&b.step),
            esc(&b.what),
            b.start_s,
            b.start_s + b.duration_s
        );
        let label = format!("{} · {:.0} ms", b.what, b.duration_s * 1000.0);
        label_beside(s, &label, bx, bx + w, y);
    } else {
        // An instant step: a diamond, so it is seen even at zero width.
        let cy = y + ROW / 2.0;
        let _ = writeln!(
            s,
            r##"<path d="M{bx:.1},{:.1} l5,5 l-5,5 l-5,-5 z" fill="{fill}"><title>{}: {} at {:.3} s</title></path>"##,
            cy - 5.0,
            esc(&b.step),
            esc(&b.what),
            b.start_s
        );
        label_beside(s, &b.what, bx - 4.0, bx + 4.0, y);
    }
}

/// A label right of a bar, or left of it when it would run off the picture.
fn label_beside(s: &mut String, text: &str, left: f64, right: f64, y: f64) {
    // 11 px DejaVu Sans averages about 6.5 px a character.
    let width = 6.5 * text.chars().count() as f64;
    let (lx, anchor) = if right + 5.0 + width > WIDTH - 4.0 {
        (left - 5.0, "end")
    } else {
        (right + 5.0, "start")
    };
    let _ = writeln!(
        s,
        r##"<text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#333" font-size="11">{}</text>"##,
        y + 14.0,
        esc(text)
    );
}

/// An axis's position at `t`: the last move that started by then, or the start position.
fn position_at(pass: &super::dry_run::Pass, axis: usize, t: f64) -> f64 {
    let mut pos = pass.start_positions.get(axis).copied().unwrap_or(0.0);
    for m in pass
        .moves
        .iter()
        .filter(|m| m.axis.index() == axis && m.start_s <= t)
    {
        pos = m.profile.sample(t - m.start_s).position;
    }
    pos
}

fn trim(v: f64) -> String {
    takt_sequences::quantity::trim_float((v * 1000.0).round() / 1000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_timeline_draws_steps_belts_and_axes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let program = takt_sequences::check_file(&path).program.unwrap();
        let run = super::super::dry_run::run(&program);
        let svg = render(&program, &run);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        // One position plot per gantry axis, one bar or diamond per step.
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(
            svg.matches("<title>").count() - run.steady.belts.len(),
            run.steady.bars.len()
        );
        // Every label stays inside the picture.
        for part in svg.split("<text x=\"").skip(1) {
            let x: f64 = part.split('"').next().unwrap().parse().unwrap();
            assert!((0.0..=WIDTH).contains(&x), "{x}");
        }
    }
}
