//! Random and mutated files never panic the checker, and every problem found has a valid
//! location: a caret a line engineer can follow.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;

use proptest::prelude::*;
use takt_sequences::{Checked, MemorySource, check_source};

fn demo_cell() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml"))
        .unwrap()
}

fn demo_sequence() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sequences/pick_and_place.toml"),
    )
    .unwrap()
}

fn check(cell: &str, seq: &str) -> Checked {
    check_source(
        "cell.toml",
        cell,
        &MemorySource::new([("pick_and_place", seq)]),
    )
}

/// Every diagnostic points inside its file, on char boundaries; a file that did not compile
/// says why.
fn assert_located(c: &Checked) {
    for d in c.diagnostics.list() {
        let s = d
            .span
            .unwrap_or_else(|| panic!("diagnostic without a location: {d:?}"));
        let text = &c.sources.file(s.file).text;
        assert!(s.start <= s.end && s.end as usize <= text.len(), "{d:?}");
        assert!(
            text.is_char_boundary(s.start as usize) && text.is_char_boundary(s.end as usize),
            "{d:?}"
        );
        let (line, col) = c.sources.line_col(s);
        assert!(line >= 1 && col >= 1);
        // Rendering must not panic either.
        let _ = c.sources.render_plain(d, 80);
    }
    if c.program.is_none() {
        assert!(c.diagnostics.has_errors(), "no program and no error");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    DropLine { line: usize },
    ReplaceWord { at: usize, word: &'static str },
}

const WORDS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[step]]",
    "{",
    "}",
    "=",
    "\n",
    "120",
    "\"120 mm\"",
    "\"1 s\"",
    "true",
    "mm",
    "x",
    "pick",
    "move",
    "wait",
    "timeout",
    "parallel",
    "repeat",
    "call",
    "\"pick_and_place\"",
    "# c",
    "µ",
    "→",
    "0x",
    "-",
    "[axes.q]",
    "goto = \"to_pick\"",
    "and",
    "not",
    "(",
    ")",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), prop::sample::select(WORDS)).prop_map(|(at, w)| Mutation::Insert {
            at,
            text: w.to_owned()
        }),
        (any::<usize>(), "[ -~]{0,12}").prop_map(|(at, text)| Mutation::Insert { at, text }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        any::<usize>().prop_map(|line| Mutation::DropLine { line }),
        (any::<usize>(), prop::sample::select(WORDS))
            .prop_map(|(at, word)| Mutation::ReplaceWord { at, word }),
    ]
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut s = text.to_owned();
    let n = s.len().max(1);
    match m {
        Mutation::Delete { at, len } => {
            let a = floor_boundary(&s, at % n);
            let b = floor_boundary(&s, a + len);
            s.replace_range(a..b, "");
        }
        Mutation::Insert { at, text } => {
            let a = floor_boundary(&s, at % n);
            s.insert_str(a, text);
        }
        Mutation::ReplaceWord { at, word } => {
            let a = floor_boundary(&s, at % n);
            let b = s[a..]
                .find(|c: char| c.is_whitespace())
                .map_or(s.len(), |i| a + i);
            s.replace_range(a..b, word);
        }
        Mutation::DuplicateLine { line } | Mutation::DropLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                if matches!(m, Mutation::DropLine { .. }) {
                    lines.remove(i);
                } else {
                    lines.insert(i, lines[i]);
                }
            }
            s = lines.join("\n");
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (i, j) = (a % lines.len(), b % lines.len());
                lines.swap(i, j);
            }
            s = lines.join("\n");
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_cell_files(ms in prop::collection::vec(mutation(), 1..6)) {
        let mut cell = demo_cell();
        for m in &ms {
            cell = apply(&cell, m);
        }
        assert_located(&check(&cell, &demo_sequence()));
    }

    #[test]
    fn mutated_sequence_files(ms in prop::collection::vec(mutation(), 1..6)) {
        let mut seq = demo_sequence();
        for m in &ms {
            seq = apply(&seq, m);
        }
        assert_located(&check(&demo_cell(), &seq));
    }

    #[test]
    fn random_text(cell in "\\PC{0,300}", seq in "[\\[\\]a-z_= \"{}\n.0-9%,#]{0,300}") {
        assert_located(&check(&cell, &seq));
        assert_located(&check(&demo_cell(), &seq));
    }
}

#[test]
fn the_unmutated_demo_compiles() {
    let c = check(&demo_cell(), &demo_sequence());
    assert_located(&c);
    assert!(c.program.is_some());
}
