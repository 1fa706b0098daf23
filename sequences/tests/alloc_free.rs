//! The compiled program executes without allocating: conditions evaluate on a fixed stack, and
//! a walk over the instructions — threads, repeat counters and retry counters sized from
//! `ProgramLimits` once — runs thousands of passes of the demo with zero allocations.
//!
//! Allocations are counted on the test thread only (takt-alloc-count).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;

use takt_sequences::program::{
    AxisId, AxisState, CellView, InputId, Instr, InstrId, OnTimeout, OutputId, Program, RepeatUntil,
};

#[global_allocator]
static GLOBAL: takt_alloc_count::CountingAllocator = takt_alloc_count::CountingAllocator;

/// A cell where every input is on and every axis is where it was last sent.
struct Cell {
    positions: [i64; 8],
    inputs: u64,
}

impl CellView for Cell {
    fn input(&self, input: InputId) -> bool {
        self.inputs & (1 << input.0) != 0
    }
    fn output(&self, _: OutputId) -> bool {
        false
    }
    fn position_counts(&self, axis: AxisId) -> i64 {
        self.positions[axis.index()]
    }
    fn axis_state(&self, _: AxisId, state: AxisState) -> bool {
        matches!(
            state,
            AxisState::Homed | AxisState::Enabled | AxisState::Stopped | AxisState::InPosition
        )
    }
}

/// Buffers an executor allocates once, from the program's limits.
struct Executor {
    /// Program counter of each running thread.
    threads: Vec<Option<InstrId>>,
    /// Where a thread that forked goes on, and (fork id, branches still running).
    parked: Vec<Option<(InstrId, u16, u16)>>,
    repeat: Vec<u32>,
    retries: Vec<u16>,
}

impl Executor {
    fn new(p: &Program) -> Self {
        let l = p.limits;
        Executor {
            threads: vec![None; usize::from(l.max_threads)],
            parked: vec![None; usize::from(l.max_threads)],
            repeat: vec![0; usize::from(l.repeat_slots)],
            retries: vec![0; usize::from(l.retry_slots)],
        }
    }

    /// One pass: every instruction completes at once, threads run round-robin. Returns the
    /// number of instructions executed.
    fn pass(&mut self, p: &Program, cell: &mut Cell) -> u32 {
        let mut executed = 0;
        self.threads[0] = Some(p.entry);
        loop {
            let mut progressed = false;
            for i in 0..self.threads.len() {
                let Some(pc) = self.threads[i] else { continue };
                let next = InstrId(pc.0 + 1);
                executed += 1;
                progressed = true;
                self.threads[i] = match *p.instr(pc).unwrap() {
                    Instr::Move {
                        targets, relative, ..
                    } => {
                        for t in &p.targets[targets.range()] {
                            let pos = &mut cell.positions[t.axis.index()];
                            *pos = if relative {
                                *pos + t.position_counts
                            } else {
                                t.position_counts
                            };
                        }
                        Some(next)
                    }
                    Instr::Wait {
                        cond, on_timeout, ..
                    } => {
                        if p.eval(cond, cell) {
                            Some(next)
                        } else {
                            match on_timeout {
                                OnTimeout::Retry { slot, .. } => {
                                    self.retries[slot.index()] += 1;
                                    Some(pc)
                                }
                                OnTimeout::Goto(t) => Some(t),
                                OnTimeout::Fault => None,
                            }
                        }
                    }
                    Instr::Fork {
                        fork,
                        branches,
                        join,
                        ..
                    } => {
                        let starts = &p.branch_starts[branches.range()];
                        for s in starts {
                            let free = (0..self.threads.len())
                                .find(|&k| {
                                    k != i && self.threads[k].is_none() && self.parked[k].is_none()
                                })
                                .expect("max_threads covers every branch");
                            self.threads[free] = Some(*s);
                        }
                        self.parked[i] = Some((join, fork, starts.len() as u16));
                        None
                    }
                    Instr::Join { fork } => {
                        if let Some(w) = self
                            .parked
                            .iter_mut()
                            .flatten()
                            .find(|w| w.1 == fork && w.2 > 0)
                        {
                            w.2 -= 1;
                        }
                        None
                    }
                    Instr::RepeatStart { slot, .. } => {
                        self.repeat[slot.index()] = 0;
                        Some(next)
                    }
                    Instr::RepeatEnd {
                        slot, body, until, ..
                    } => {
                        self.repeat[slot.index()] += 1;
                        let n = self.repeat[slot.index()];
                        let done = match until {
                            RepeatUntil::Times(times) => n >= times,
                            RepeatUntil::Condition { cond, max } => p.eval(cond, cell) || n >= max,
                        };
                        Some(if done { next } else { body })
                    }
                    Instr::Jump { target, .. } => Some(target),
                    Instr::End | Instr::Fault { .. } => None,
                    _ => Some(next),
                };
            }
            for i in 0..self.threads.len() {
                if let Some((at, _, 0)) = self.parked[i] {
                    self.parked[i] = None;
                    self.threads[i] = Some(at);
                    progressed = true;
                }
            }
            if !progressed {
                return executed;
            }
        }
    }
}

fn demo() -> Program {
    takt_sequences::check_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml"))
        .program
        .unwrap()
}

#[test]
fn conditions_and_passes_do_not_allocate() {
    let p = demo();
    let mut exec = Executor::new(&p);
    let mut cell = Cell {
        positions: [0; 8],
        inputs: u64::MAX,
    };
    let ((executed, interlocks_true), allocations) = takt_alloc_count::allocations_in(|| {
        let mut executed = 0;
        let mut interlocks_true = 0;
        for _ in 0..2000 {
            executed += exec.pass(&p, &mut cell);
            for il in &p.interlocks {
                interlocks_true += usize::from(p.eval(il.require, &cell));
            }
        }
        (executed, interlocks_true)
    });
    assert_eq!(allocations, 0, "allocations while executing");
    // Every instruction of the demo ran in every pass (17 steps, 20 instructions).
    assert_eq!(executed, 2000 * p.code.len() as u32);
    assert!(interlocks_true > 0);
}
