//! Golden tests of diagnostics: one small broken cell or sequence per check.
//!
//! Each `tests/cases/NAME.case` holds files separated by `#@ cell.toml` / `#@ sequences/X.toml`
//! lines (a case without a cell uses `_base_cell.toml`; without `main`, `_base_main.toml`) and
//! a first line `#! expect: code …` naming the diagnostics it is about. The rendered
//! diagnostics — one summary line (severity, code, file:line:column, message) and miette's
//! drawing without colours — are compared with `NAME.expected`.
//!
//! After an intended change of wording: `TAKT_BLESS=1 cargo test -p takt-sequences --test
//! golden`, then read the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::{Path, PathBuf};

use takt_sequences::{Checked, MemorySource, Severity, check_source};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

struct Case {
    expect: Vec<String>,
    cell: String,
    sequences: Vec<(String, String)>,
}

fn parse_case(text: &str) -> Case {
    let dir = cases_dir();
    let mut expect = Vec::new();
    let mut cell = None;
    let mut sequences: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    let flush = |cur: Option<(String, String)>,
                 cell: &mut Option<String>,
                 seqs: &mut Vec<(String, String)>| {
        if let Some((name, body)) = cur {
            if name == "cell.toml" {
                *cell = Some(body);
            } else {
                let stem = name
                    .trim_start_matches("sequences/")
                    .trim_end_matches(".toml")
                    .to_owned();
                seqs.push((stem, body));
            }
        }
    };
    for line in text.lines() {
        if let Some(codes) = line.strip_prefix("#! expect:") {
            expect = codes.split_whitespace().map(str::to_owned).collect();
        } else if let Some(name) = line.strip_prefix("#@ ") {
            flush(current.take(), &mut cell, &mut sequences);
            current = Some((name.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(current.take(), &mut cell, &mut sequences);
    let base_cell = cell.is_none();
    let cell =
        cell.unwrap_or_else(|| std::fs::read_to_string(dir.join("_base_cell.toml")).unwrap());
    if !sequences.iter().any(|s| s.0 == "main") {
        // A cell of its own gets a main sequence that needs nothing from it.
        let main = if base_cell {
            std::fs::read_to_string(dir.join("_base_main.toml")).unwrap()
        } else {
            "[[step]]\ndwell = \"1 s\"\n".to_owned()
        };
        sequences.push(("main".into(), main));
    }
    Case {
        expect,
        cell,
        sequences,
    }
}

fn check_case(case: &Case) -> Checked {
    let source = MemorySource::new(case.sequences.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    check_source("cell.toml", &case.cell, &source)
}

/// The golden text: a summary line and miette's drawing per diagnostic.
fn render(checked: &Checked) -> String {
    let mut out = String::new();
    for d in checked.diagnostics.sorted() {
        let (file, line, col) = match d.span {
            Some(s) => {
                let (l, c) = checked.sources.line_col(s);
                (checked.sources.file(s.file).name.clone(), l, c)
            }
            None => ("-".into(), 0, 0),
        };
        let sev = if d.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        out.push_str(&format!(
            "{sev}[{}] {file}:{line}:{col}: {}\n",
            d.code, d.message
        ));
        out.push_str(&checked.sources.render_plain(&d, 90));
        out.push('\n');
    }
    out
}

#[test]
fn every_case_matches_its_golden_output() {
    let bless = std::env::var_os("TAKT_BLESS").is_some();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "the golden cases are missing");
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case = parse_case(&std::fs::read_to_string(path).unwrap());
        let checked = check_case(&case);
        let codes: Vec<&str> = checked.diagnostics.list().iter().map(|d| d.code).collect();
        for want in &case.expect {
            if !codes.contains(&want.as_str()) {
                failures.push(format!(
                    "{name}: expected a `{want}` diagnostic, got {codes:?}"
                ));
            }
        }
        assert!(checked.program.is_none() || !checked.diagnostics.has_errors());
        let text = render(&checked);
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == text => {}
            Ok(expected) => {
                let first = expected
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                failures.push(format!(
                    "{name}: output differs from {} at line {}:\n  expected: {:?}\n  actual:   {:?}",
                    expected_path.display(),
                    first + 1,
                    expected.lines().nth(first).unwrap_or(""),
                    text.lines().nth(first).unwrap_or("")
                ));
            }
            Err(_) => failures.push(format!(
                "{name}: no {} (run with TAKT_BLESS=1)",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every location in every golden case is inside its file and on a char boundary.
#[test]
fn every_location_is_valid() {
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "case") {
            continue;
        }
        let checked = check_case(&parse_case(&std::fs::read_to_string(&path).unwrap()));
        for d in checked.diagnostics.list() {
            let s = d.span.expect("every diagnostic of a case has a location");
            let text = &checked.sources.file(s.file).text;
            assert!(
                s.start <= s.end && (s.end as usize) <= text.len(),
                "{}: {d:?}",
                path.display()
            );
            assert!(
                text.is_char_boundary(s.start as usize) && text.is_char_boundary(s.end as usize)
            );
        }
    }
}

/// The first draft with six mistakes reports all six, not just the first.
#[test]
fn all_errors_of_a_file_are_reported() {
    let case = parse_case(&std::fs::read_to_string(cases_dir().join("many_errors.case")).unwrap());
    let checked = check_case(&case);
    assert!(
        checked.diagnostics.error_count() >= 6,
        "{}",
        render(&checked)
    );
}
