//! Compilation of the constructs the demo does not use: calls (inlined), nested parallel
//! branches, repeats, retries and gotos — every index resolves and every buffer is sized.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;

use takt_sequences::program::{Instr, OnTimeout, Program, RepeatUntil};
use takt_sequences::{MemorySource, check_source};

fn compile(seqs: &[(&str, &str)]) -> Program {
    let cell = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/_base_cell.toml"),
    )
    .unwrap();
    let c = check_source("cell.toml", &cell, &MemorySource::new(seqs.iter().copied()));
    let text: Vec<String> = c
        .diagnostics
        .sorted()
        .iter()
        .map(|d| c.sources.render_plain(d, 100))
        .collect();
    assert!(!c.diagnostics.has_errors(), "{}", text.join("\n"));
    c.program.unwrap()
}

const MAIN: &str = r#"
[[step]]
name = "start"
wait = "part_present"
timeout = "5 s"
on_timeout = { retry = 2 }

[[step]]
name = "both"
[[step.parallel]]
name = "gantry"
[[step.parallel.do]]
call = "pick_part"
[[step.parallel]]
name = "belt"
[[step.parallel.do]]
repeat = 3
[[step.parallel.do.do]]
conveyor = "belt"
action = "index"
distance = "50 mm"

[[step]]
name = "again"
repeat = { until = "not part_present", max = 5 }
[[step.do]]
call = "pick_part"
[[step.do]]
wait = "vacuum_ok"
timeout = "1 s"
on_timeout = { goto = "give_up" }

[[step]]
count = "cycles"

[[step]]
goto = "start"

[[step]]
name = "give_up"
fault = "vacuum lost"
"#;

const PICK: &str = r#"
[[step]]
move = "pick"
[[step]]
name = "down"
move = { z = "-20 mm" }
relative = true
speed = "50 %"
[[step]]
set = { vacuum_on = true }
"#;

#[test]
fn calls_repeats_branches_and_jumps_resolve() {
    let p = compile(&[("main", MAIN), ("pick_part", PICK)]);
    let n = p.code.len() as u32;
    // Every jump target, branch start and join is an instruction of the program.
    for instr in &p.code {
        match *instr {
            Instr::Jump { target, .. } => assert!(target.0 < n),
            Instr::Wait {
                on_timeout: OnTimeout::Goto(t),
                ..
            } => assert!(t.0 < n),
            Instr::Fork { branches, join, .. } => {
                assert!(join.0 < n);
                assert!(p.branch_starts[branches.range()].iter().all(|s| s.0 < n));
            }
            Instr::RepeatEnd { body, .. } => assert!(body.0 < n),
            _ => {}
        }
    }
    // `pick_part` is inlined twice, each copy with its own steps.
    let moves = p
        .code
        .iter()
        .filter(|i| matches!(i, Instr::Move { relative: true, .. }))
        .count();
    assert_eq!(moves, 2);
    assert!(
        p.steps
            .iter()
            .any(|s| s.path == "main.both.gantry.1/pick_part.down")
    );
    assert!(
        p.steps
            .iter()
            .any(|s| s.path == "main.again.1/pick_part.down")
    );
    // The goto back to `start` targets the first instruction; the timeout goto the fault.
    let Instr::Jump { target, .. } = p
        .code
        .iter()
        .find(|i| matches!(i, Instr::Jump { .. }))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(target.0, 0);
    let gives_up = p.code.iter().find_map(|i| match i {
        Instr::Wait {
            on_timeout: OnTimeout::Goto(t),
            ..
        } => Some(*t),
        _ => None,
    });
    assert!(matches!(
        p.instr(gives_up.unwrap()),
        Some(Instr::Fault { .. })
    ));
    // Sizes: the parked main thread plus two branches; two repeats; one retrying wait.
    assert_eq!(p.limits.max_threads, 3);
    assert_eq!(p.limits.repeat_slots, 2);
    assert_eq!(p.limits.retry_slots, 1);
    assert!(p.code.iter().any(|i| matches!(
        i,
        Instr::RepeatEnd {
            until: RepeatUntil::Condition { max: 5, .. },
            ..
        }
    )));
    assert!(p.code.iter().any(|i| matches!(
        i,
        Instr::RepeatEnd {
            until: RepeatUntil::Times(3),
            ..
        }
    )));
    assert_eq!(p.counters, ["cycles"]);
    // Relative moves carry distances in counts at the reduced speed (z: 640 counts/mm).
    let rel = p.code.iter().find_map(|i| match i {
        Instr::Move {
            targets,
            relative: true,
            ..
        } => Some(p.targets[targets.range()][0]),
        _ => None,
    });
    let rel = rel.unwrap();
    assert_eq!(rel.position_counts, -20 * 640);
    assert!((rel.max_velocity_counts_s - 0.5 * 600.0 * 640.0).abs() < 1e-6);
}

/// Unsynchronized and velocity-limited moves carry the right per-axis velocities.
#[test]
fn speeds_become_counts_per_second() {
    let main = r#"
[[step]]
move = { x = "100 mm", z = "50 mm" }
speed = "300 mm/s"
coordinated = false
"#;
    let p = compile(&[("main", main)]);
    let Instr::Move {
        targets,
        coordinated,
        ..
    } = p.code[0]
    else {
        panic!()
    };
    assert!(!coordinated);
    let t = &p.targets[targets.range()];
    assert_eq!(
        (t[0].position_counts, t[1].position_counts),
        (100_000, 32_000)
    );
    assert!((t[0].max_velocity_counts_s - 300_000.0).abs() < 1e-6);
    assert!((t[1].max_velocity_counts_s - 300.0 * 640.0).abs() < 1e-6);
}
