//! Lowering checked sequences to the flat [`Program`].
//!
//! Runs only when checking found no error, so every name resolves and every value has its
//! type; what cannot happen is skipped rather than reported again. Calls are inlined: each
//! call site gets its own copy of the callee's instructions (and its own repeat and retry
//! slots), which keeps the executor free of a call stack.

use std::collections::HashMap;

use crate::cell::{Cell, GuardsDef};
use crate::diag::Sources;
use crate::program::{
    CondOp, CondRef, CounterId, Guards, IndexRange, Instr, InstrId, Interlock, MessageId,
    MoveTarget, OnTimeout, OutputWrite, Program, ProgramLimits, RepeatUntil, ResyncConfig, SlotId,
    StepId, StepInfo,
};
use crate::sequence::{BlockIx, ConveyorAction, Kind, SequenceSet, Speed, StepIx, Timeout};

struct Compiler<'a> {
    cell: &'a Cell,
    set: &'a SequenceSet<'a>,
    sources: &'a Sources,
    prog: Program,
    counters: HashMap<String, CounterId>,
    forks: u16,
    /// Every compiled copy of each (sequence, step), for step guards.
    copies: HashMap<(usize, StepIx), Vec<StepId>>,
}

/// Compiles the cell and the sequence `entry` (an index into `set.seqs`).
pub(crate) fn compile(
    cell: &Cell,
    set: &SequenceSet<'_>,
    entry: usize,
    sources: &Sources,
    step_guards: &[Vec<(usize, StepIx)>],
) -> Program {
    let mut c = Compiler {
        cell,
        set,
        sources,
        prog: Program {
            cell_name: cell.name.clone(),
            sequence_name: set.seqs[entry].name.clone(),
            buses: cell.buses.iter().map(|b| b.0.clone()).collect(),
            devices: cell.devices.iter().map(|d| d.0.clone()).collect(),
            axes: cell.axes.iter().map(|a| a.config.clone()).collect(),
            inputs: cell.inputs.iter().map(|p| p.0.clone()).collect(),
            outputs: cell.outputs.iter().map(|p| p.0.clone()).collect(),
            counters: Vec::new(),
            interlocks: Vec::new(),
            guarded_steps: Vec::new(),
            stop_categories: cell.stop_categories,
            resync: ResyncConfig {
                auto_resume: cell.resync.auto_resume,
                persist: None,
                hold_message: cell.resync.hold_message.clone(),
            },
            code: Vec::new(),
            entry: InstrId(0),
            cond_ops: Vec::new(),
            targets: Vec::new(),
            output_writes: Vec::new(),
            branch_starts: Vec::new(),
            steps: Vec::new(),
            messages: Vec::new(),
            limits: ProgramLimits::default(),
        },
        counters: HashMap::new(),
        forks: 0,
        copies: HashMap::new(),
    };
    c.sequence(entry, "", &mut Vec::new());
    c.prog.code.push(Instr::End);
    c.prog.limits.max_threads = threads(set, entry, 0, &mut Vec::new()) as u16;
    if let Some(ops) = &cell.resync.persist {
        c.prog.resync.persist = Some(c.cond(ops));
    }
    let mut guard_lists = step_guards.iter();
    for il in &cell.interlocks {
        let require = c.cond(&il.require);
        let guards = match &il.guards {
            GuardsDef::AllMotion => Guards::AllMotion,
            GuardsDef::Axes(mask) => Guards::Axes(*mask),
            GuardsDef::Steps(_) => {
                let start = c.prog.guarded_steps.len() as u32;
                for key in guard_lists.next().into_iter().flatten() {
                    if let Some(ids) = c.copies.get(key) {
                        c.prog.guarded_steps.extend(ids.iter().copied());
                    }
                }
                Guards::Steps(IndexRange {
                    start,
                    len: c.prog.guarded_steps.len() as u32 - start,
                })
            }
        };
        c.prog.interlocks.push(Interlock {
            name: il.name.clone(),
            require,
            guards,
        });
    }
    c.prog
}

/// Most threads alive at once in a block: a parallel step parks its own thread and runs one
/// per branch, each of which may fork again.
fn threads(set: &SequenceSet<'_>, seq_ix: usize, block: BlockIx, stack: &mut Vec<usize>) -> usize {
    let seq = &set.seqs[seq_ix];
    let mut most = 1;
    for &s in &seq.blocks[block].steps {
        let n = match &seq.steps[s].kind {
            Kind::Parallel(bs) => {
                1 + bs
                    .iter()
                    .map(|b| threads(set, seq_ix, *b, stack))
                    .sum::<usize>()
            }
            Kind::Repeat { body, .. } => threads(set, seq_ix, *body, stack),
            Kind::Call((callee, _)) => match set.find(callee) {
                Some(j) if !stack.contains(&j) => {
                    stack.push(j);
                    let n = threads(set, j, 0, stack);
                    stack.pop();
                    n
                }
                _ => 1,
            },
            _ => 1,
        };
        most = most.max(n);
    }
    most
}

fn range(start: usize, end: usize) -> IndexRange {
    IndexRange {
        start: start as u32,
        len: (end - start) as u32,
    }
}

/// Postfix stack depth of a condition.
fn stack_depth(ops: &[CondOp]) -> usize {
    let (mut depth, mut most) = (0usize, 0usize);
    for op in ops {
        match op {
            CondOp::Not => {}
            CondOp::And | CondOp::Or => depth = depth.saturating_sub(1),
            _ => depth += 1,
        }
        most = most.max(depth);
    }
    most
}

impl Compiler<'_> {
    fn cond(&mut self, ops: &[CondOp]) -> CondRef {
        let start = self.prog.cond_ops.len();
        self.prog.cond_ops.extend_from_slice(ops);
        let depth = stack_depth(ops) as u16;
        self.prog.limits.max_cond_stack = self.prog.limits.max_cond_stack.max(depth);
        CondRef(range(start, self.prog.cond_ops.len()))
    }

    fn message(&mut self, text: &str) -> MessageId {
        let id = MessageId(self.prog.messages.len() as u16);
        self.prog.messages.push(text.to_owned());
        id
    }

    fn here(&self) -> InstrId {
        InstrId(self.prog.code.len() as u32)
    }

    fn sequence(&mut self, seq_ix: usize, prefix: &str, stack: &mut Vec<usize>) {
        stack.push(seq_ix);
        let mut starts: HashMap<StepIx, InstrId> = HashMap::new();
        let mut fixups: Vec<(usize, StepIx)> = Vec::new();
        self.block(seq_ix, 0, prefix, stack, &mut starts, &mut fixups);
        // Jumps are patched once every step of this copy has its address.
        for (at, target) in fixups {
            let Some(&to) = starts.get(&target) else {
                continue;
            };
            match &mut self.prog.code[at] {
                Instr::Jump { target, .. } => *target = to,
                Instr::Wait {
                    on_timeout: OnTimeout::Goto(t),
                    ..
                } => *t = to,
                _ => {}
            }
        }
        stack.pop();
    }

    fn block(
        &mut self,
        seq_ix: usize,
        block: BlockIx,
        prefix: &str,
        stack: &mut Vec<usize>,
        starts: &mut HashMap<StepIx, InstrId>,
        fixups: &mut Vec<(usize, StepIx)>,
    ) {
        let set = self.set;
        let seq = &set.seqs[seq_ix];
        for &ix in &seq.blocks[block].steps {
            let step = &seq.steps[ix];
            let (line, col) = self.sources.line_col(step.span);
            let step_id = StepId(self.prog.steps.len() as u16);
            self.prog.steps.push(StepInfo {
                path: format!("{prefix}{}.{}", seq.name, seq.step_path(ix)),
                kind: step.kind.word(),
                location: (self.sources.file(seq.file).name.clone(), line, col),
            });
            self.copies.entry((seq_ix, ix)).or_default().push(step_id);
            starts.insert(ix, self.here());
            match &step.kind {
                Kind::Invalid => {}
                Kind::Move {
                    relative,
                    coordinated,
                    speed,
                    resolved,
                    ..
                } => {
                    let start = self.prog.targets.len();
                    for &(axis, value) in resolved {
                        let a = self.cell.axis(axis);
                        let vmax = a.config.max_velocity_counts_s;
                        let v = match speed {
                            Some((Speed::Percent(p), _)) => vmax * p / 100.0,
                            Some((Speed::Velocity(q), _)) => {
                                (q.value * a.config.counts_per_unit).min(vmax)
                            }
                            None => vmax,
                        };
                        self.prog.targets.push(MoveTarget {
                            axis,
                            position_counts: a.counts(value),
                            max_velocity_counts_s: v,
                        });
                    }
                    let n = (self.prog.targets.len() - start) as u16;
                    self.prog.limits.max_move_axes = self.prog.limits.max_move_axes.max(n);
                    self.prog.code.push(Instr::Move {
                        step: step_id,
                        targets: range(start, self.prog.targets.len()),
                        relative: *relative,
                        coordinated: *coordinated,
                    });
                }
                Kind::Wait {
                    cond,
                    timeout_s,
                    on_timeout,
                    alarm,
                } => {
                    let cond = self.cond(cond.as_deref().unwrap_or(&[CondOp::Const(false)]));
                    let on_timeout = match on_timeout {
                        Timeout::Fault => OnTimeout::Fault,
                        Timeout::Retry(n) => {
                            let slot = SlotId(self.prog.limits.retry_slots);
                            self.prog.limits.retry_slots += 1;
                            OnTimeout::Retry { slot, max: *n }
                        }
                        Timeout::Goto((name, _)) => {
                            if let Some(&t) = seq.by_name.get(name) {
                                fixups.push((self.prog.code.len(), t));
                            }
                            OnTimeout::Goto(InstrId(0))
                        }
                    };
                    let alarm = alarm.as_deref().map(|a| self.message(a));
                    self.prog.code.push(Instr::Wait {
                        step: step_id,
                        cond,
                        timeout_us: (timeout_s * 1e6).round() as u64,
                        on_timeout,
                        alarm,
                    });
                }
                Kind::Set(writes) => {
                    let start = self.prog.output_writes.len();
                    self.prog
                        .output_writes
                        .extend(writes.iter().map(|w| OutputWrite {
                            output: w.0,
                            on: w.1,
                        }));
                    self.prog.code.push(Instr::Set {
                        step: step_id,
                        writes: range(start, self.prog.output_writes.len()),
                    });
                }
                Kind::Conveyor {
                    axis: Some(axis),
                    action,
                    speed_units_s,
                } => {
                    let cpu = self.cell.axis(*axis).config.counts_per_unit;
                    let velocity = speed_units_s * cpu;
                    self.prog.code.push(match action {
                        ConveyorAction::Run => Instr::ConveyorRun {
                            step: step_id,
                            axis: *axis,
                            velocity_counts_s: velocity,
                        },
                        ConveyorAction::Stop => Instr::ConveyorStop {
                            step: step_id,
                            axis: *axis,
                        },
                        ConveyorAction::Index(d) => Instr::ConveyorIndex {
                            step: step_id,
                            axis: *axis,
                            distance_counts: (d * cpu).round() as i64,
                            max_velocity_counts_s: velocity,
                        },
                    });
                }
                Kind::Conveyor { axis: None, .. } => {}
                Kind::Dwell(s) => self.prog.code.push(Instr::Dwell {
                    step: step_id,
                    duration_us: (s * 1e6).round() as u64,
                }),
                Kind::Parallel(branches) => {
                    let fork = self.forks;
                    self.forks += 1;
                    let fork_at = self.prog.code.len();
                    let table_start = self.prog.branch_starts.len();
                    // Reserve the branch table so that nested forks get their own ranges.
                    self.prog
                        .branch_starts
                        .extend(branches.iter().map(|_| InstrId(0)));
                    self.prog.code.push(Instr::Fork {
                        step: step_id,
                        fork,
                        branches: range(table_start, table_start + branches.len()),
                        join: InstrId(0),
                    });
                    for (k, b) in branches.iter().enumerate() {
                        self.prog.branch_starts[table_start + k] = self.here();
                        self.block(seq_ix, *b, prefix, stack, starts, fixups);
                        self.prog.code.push(Instr::Join { fork });
                    }
                    let join = self.here();
                    if let Instr::Fork { join: j, .. } = &mut self.prog.code[fork_at] {
                        *j = join;
                    }
                }
                Kind::Repeat { times, until, body } => {
                    let slot = SlotId(self.prog.limits.repeat_slots);
                    self.prog.limits.repeat_slots += 1;
                    self.prog.code.push(Instr::RepeatStart {
                        step: step_id,
                        slot,
                    });
                    let body_start = self.here();
                    self.block(seq_ix, *body, prefix, stack, starts, fixups);
                    let until = match (times, until) {
                        (_, Some((cond, max))) => RepeatUntil::Condition {
                            cond: self.cond(cond),
                            max: *max,
                        },
                        (Some(n), None) => RepeatUntil::Times(*n),
                        (None, None) => RepeatUntil::Times(1),
                    };
                    self.prog.code.push(Instr::RepeatEnd {
                        step: step_id,
                        slot,
                        body: body_start,
                        until,
                    });
                }
                Kind::Call((callee, _)) => {
                    if let Some(j) = set.find(callee) {
                        if !stack.contains(&j) {
                            let prefix = format!("{prefix}{}.{}/", seq.name, seq.step_path(ix));
                            self.sequence(j, &prefix, stack);
                        }
                    }
                }
                Kind::Count((name, _), by) => {
                    let next = CounterId(self.counters.len() as u16);
                    let counter = *self.counters.entry(name.clone()).or_insert(next);
                    if counter == next {
                        self.prog.counters.push(name.clone());
                    }
                    self.prog.code.push(Instr::Count {
                        step: step_id,
                        counter,
                        by: *by,
                    });
                }
                Kind::Goto((name, _)) => {
                    if let Some(&t) = seq.by_name.get(name) {
                        fixups.push((self.prog.code.len(), t));
                    }
                    self.prog.code.push(Instr::Jump {
                        step: step_id,
                        target: InstrId(0),
                    });
                }
                Kind::Fault(text) => {
                    let message = self.message(text);
                    self.prog.code.push(Instr::Fault {
                        step: step_id,
                        message,
                    });
                }
            }
        }
    }
}
