//! The dry run of `takt check --dry-run`: one pass of the sequence, timed by the motion planner.
//!
//! It walks the compiled program as the controller will, but with nothing but the planner:
//! every move and conveyor index is planned with the axes' limits from where the previous
//! steps left the axes; waits are taken as met at once (their real duration is the time parts
//! and sensors take, which only the simulated run of the controller knows); a `repeat … until`
//! runs once, a `repeat n` n times; a `goto` back to an earlier step ends the pass, as does the
//! end of the sequence. The pass is run twice: the first from the cell's `start_at` position,
//! the second from where the first ended — the steady-state cycle time.

use takt_sequences::program::{AxisId, Instr, InstrId, Program, RepeatUntil};

use crate::motion::{self, Limits, Profile};

/// One step's bar on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The step's name (`to_pick`, or `3` when unnamed).
    pub step: String,
    /// Short description: `move x y`, `wait part_at_pick`.
    pub what: String,
    /// Lane: 0 for the main thread, then one per parallel branch.
    pub lane: usize,
    /// Nesting depth, for indentation.
    pub depth: usize,
    /// Start, s from the start of the pass.
    pub start_s: f64,
    /// Duration, s.
    pub duration_s: f64,
}

/// One axis move on the timeline, for the position plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisMove {
    /// The axis.
    pub axis: AxisId,
    /// When it starts, s.
    pub start_s: f64,
    /// The planned profile, in the axis's user unit (mm or deg).
    pub profile: Profile,
}

/// A conveyor running, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeltRun {
    /// The conveyor.
    pub axis: AxisId,
    /// From, s.
    pub start_s: f64,
    /// To, s (the end of the pass if it keeps running).
    pub end_s: f64,
}

/// The result of one pass.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Step bars, in start order.
    pub bars: Vec<Bar>,
    /// Axis moves.
    pub moves: Vec<AxisMove>,
    /// Conveyor running intervals.
    pub belts: Vec<BeltRun>,
    /// Lane names (index = lane).
    pub lanes: Vec<String>,
    /// Duration of the pass, s.
    pub duration_s: f64,
    /// Axis positions (user units) at the start.
    pub start_positions: Vec<f64>,
    /// Things the reader should know (a pass cut short at a goto, a fault step).
    pub notes: Vec<String>,
}

/// Both passes.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// From `start_at`.
    pub first: Pass,
    /// From where the first pass ended: the cycle time of the running cell.
    pub steady: Pass,
}

#[derive(Clone)]
struct State {
    /// Positions in user units.
    positions: Vec<f64>,
    /// Belt velocities in user units per s (0 = stopped), and since when.
    belt_velocity: Vec<f64>,
    belt_since: Vec<f64>,
}

struct Walker<'p> {
    p: &'p Program,
    state: State,
    pass: Pass,
    slots: Vec<u32>,
}

fn limits(p: &Program, axis: AxisId, velocity_units_s: Option<f64>) -> Limits {
    let a = &p.axes[axis.index()];
    let c = a.counts_per_unit;
    Limits {
        max_velocity: velocity_units_s
            .unwrap_or(a.max_velocity_counts_s / c)
            .min(a.max_velocity_counts_s / c),
        max_acceleration: a.max_acceleration_counts_s2 / c,
        max_jerk: a.max_jerk_counts_s3 / c,
    }
}

/// Runs the dry run.
pub fn run(p: &Program) -> DryRun {
    let start = State {
        positions: p
            .axes
            .iter()
            .map(|a| a.start_position_counts as f64 / a.counts_per_unit)
            .collect(),
        belt_velocity: vec![0.0; p.axes.len()],
        belt_since: vec![0.0; p.axes.len()],
    };
    let (first, end) = pass(p, start);
    let (steady, _) = pass(p, end);
    DryRun { first, steady }
}

fn pass(p: &Program, start: State) -> (Pass, State) {
    let mut w = Walker {
        p,
        pass: Pass {
            lanes: vec![p.sequence_name.clone()],
            start_positions: start.positions.clone(),
            ..Pass::default()
        },
        state: start,
        slots: vec![0; usize::from(p.limits.repeat_slots)],
    };
    for (i, v) in w.state.belt_velocity.iter().enumerate() {
        if *v != 0.0 {
            w.state.belt_since[i] = 0.0;
        }
    }
    let end = w.thread(p.entry, 0.0, 0, 0);
    w.pass.duration_s = end;
    for (i, v) in w.state.belt_velocity.clone().into_iter().enumerate() {
        if v != 0.0 {
            w.pass.belts.push(BeltRun {
                axis: AxisId(i as u16),
                start_s: w.state.belt_since[i],
                end_s: end,
            });
            w.state.belt_since[i] = 0.0;
        }
    }
    w.pass
        .bars
        .sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.lane.cmp(&b.lane)));
    (w.pass, w.state)
}

impl Walker<'_> {
    fn bar(
        &mut self,
        step: takt_sequences::program::StepId,
        what: String,
        lane: usize,
        depth: usize,
        start_s: f64,
        duration_s: f64,
    ) {
        let path = self
            .p
            .steps
            .get(step.index())
            .map_or("?", |s| s.path.as_str());
        // Show the step's own name: the last segment of `sequence.step` (after any call prefix).
        let short = path.rsplit('/').next().unwrap_or(path);
        let short = short.split_once('.').map_or(short, |x| x.1).to_owned();
        self.pass.bars.push(Bar {
            step: short,
            what,
            lane,
            depth,
            start_s,
            duration_s,
        });
    }

    /// Runs one thread from `pc` until it ends (end of pass, a branch's join); returns the time.
    fn thread(&mut self, mut pc: InstrId, mut t: f64, lane: usize, depth: usize) -> f64 {
        let p = self.p;
        let mut steps_run = 0usize;
        while let Some(instr) = p.instr(pc) {
            steps_run += 1;
            if steps_run > 100_000 {
                self.pass
                    .notes
                    .push("stopped after 100000 instructions".into());
                return t;
            }
            let next = InstrId(pc.0 + 1);
            match *instr {
                Instr::Move {
                    step,
                    targets,
                    relative,
                    coordinated,
                } => {
                    let targets = &p.targets[targets.range()];
                    let mut starts = Vec::new();
                    let mut ends = Vec::new();
                    let mut lims = Vec::new();
                    for tg in targets {
                        let a = &p.axes[tg.axis.index()];
                        let c = a.counts_per_unit;
                        let from = self.state.positions[tg.axis.index()];
                        let to = if relative {
                            from + tg.position_counts as f64 / c
                        } else {
                            tg.position_counts as f64 / c
                        };
                        starts.push(from);
                        ends.push(to);
                        lims.push(limits(p, tg.axis, Some(tg.max_velocity_counts_s / c)));
                    }
                    let names: Vec<&str> = targets.iter().map(|tg| p.axis_name(tg.axis)).collect();
                    match motion::plan_move(&starts, &ends, &lims, coordinated) {
                        Ok(plan) => {
                            for (k, tg) in targets.iter().enumerate() {
                                if starts[k] != ends[k] {
                                    self.pass.moves.push(AxisMove {
                                        axis: tg.axis,
                                        start_s: t,
                                        profile: *plan.profile(k),
                                    });
                                }
                                self.state.positions[tg.axis.index()] = ends[k];
                            }
                            self.bar(
                                step,
                                format!("move {}", names.join(" ")),
                                lane,
                                depth,
                                t,
                                plan.duration(),
                            );
                            t += plan.duration();
                        }
                        Err(e) => {
                            self.pass.notes.push(format!(
                                "move {} could not be planned: {e}",
                                names.join(" ")
                            ));
                            self.bar(
                                step,
                                format!("move {} (not planned)", names.join(" ")),
                                lane,
                                depth,
                                t,
                                0.0,
                            );
                        }
                    }
                    pc = next;
                }
                Instr::Wait { step, cond, .. } => {
                    self.bar(
                        step,
                        format!(
                            "wait {}",
                            p.show_cond(cond).replace("in:", "").replace("out:", "")
                        ),
                        lane,
                        depth,
                        t,
                        0.0,
                    );
                    pc = next;
                }
                Instr::Set { step, writes } => {
                    let w: Vec<String> = p.output_writes[writes.range()]
                        .iter()
                        .map(|w| {
                            format!(
                                "{} {}",
                                p.outputs[w.output.index()].name,
                                if w.on { "on" } else { "off" }
                            )
                        })
                        .collect();
                    self.bar(step, format!("set {}", w.join(", ")), lane, depth, t, 0.0);
                    pc = next;
                }
                Instr::ConveyorRun {
                    step,
                    axis,
                    velocity_counts_s,
                } => {
                    let v = velocity_counts_s / p.axes[axis.index()].counts_per_unit;
                    self.belt_change(axis, v, t);
                    self.bar(
                        step,
                        format!("run {} at {:.0} mm/s", p.axis_name(axis), v),
                        lane,
                        depth,
                        t,
                        0.0,
                    );
                    pc = next;
                }
                Instr::ConveyorStop { step, axis } => {
                    let v = self.state.belt_velocity[axis.index()];
                    let d = motion::stopping_time(v, limits(p, axis, None));
                    self.bar(
                        step,
                        format!("stop {}", p.axis_name(axis)),
                        lane,
                        depth,
                        t,
                        d,
                    );
                    self.belt_change(axis, 0.0, t + d);
                    t += d;
                    pc = next;
                }
                Instr::ConveyorIndex {
                    step,
                    axis,
                    distance_counts,
                    max_velocity_counts_s,
                } => {
                    let c = p.axes[axis.index()].counts_per_unit;
                    let dist = distance_counts as f64 / c;
                    let prof =
                        Profile::plan(0.0, dist, limits(p, axis, Some(max_velocity_counts_s / c)));
                    let d = prof.map_or(0.0, |pr| pr.duration());
                    self.belt_change(axis, 1.0, t);
                    self.belt_change(axis, 0.0, t + d);
                    self.bar(
                        step,
                        format!(
                            "index {} by {} mm",
                            p.axis_name(axis),
                            takt_sequences::quantity::trim_float(dist)
                        ),
                        lane,
                        depth,
                        t,
                        d,
                    );
                    t += d;
                    pc = next;
                }
                Instr::Dwell { step, duration_us } => {
                    let d = duration_us as f64 / 1e6;
                    self.bar(step, "dwell".into(), lane, depth, t, d);
                    t += d;
                    pc = next;
                }
                Instr::Fork {
                    step,
                    branches,
                    join,
                    ..
                } => {
                    let start = t;
                    let mut end = t;
                    let starts: Vec<InstrId> = p.branch_starts[branches.range()].to_vec();
                    let bar_index = self.pass.bars.len();
                    self.bar(
                        step,
                        format!("parallel, {} branches", starts.len()),
                        lane,
                        depth,
                        t,
                        0.0,
                    );
                    for (k, b) in starts.into_iter().enumerate() {
                        let lane_b = self.pass.lanes.len();
                        let parent = self.pass.bars[bar_index].step.clone();
                        self.pass.lanes.push(format!("{parent} · {}", k + 1));
                        end = end.max(self.thread(b, start, lane_b, depth + 1));
                    }
                    self.pass.bars[bar_index].duration_s = end - start;
                    t = end;
                    pc = join;
                }
                Instr::Join { .. } => return t,
                Instr::RepeatStart { slot, .. } => {
                    if let Some(s) = self.slots.get_mut(slot.index()) {
                        *s = 0;
                    }
                    pc = next;
                }
                Instr::RepeatEnd {
                    slot, body, until, ..
                } => {
                    let done = self.slots.get_mut(slot.index()).is_none_or(|s| {
                        *s += 1;
                        match until {
                            RepeatUntil::Times(n) => *s >= n,
                            RepeatUntil::Condition { .. } => true,
                        }
                    });
                    pc = if done { next } else { body };
                }
                Instr::Count { step, counter, by } => {
                    self.bar(
                        step,
                        format!("count {} +{by}", p.counters[counter.index()]),
                        lane,
                        depth,
                        t,
                        0.0,
                    );
                    pc = next;
                }
                Instr::Jump { step, target } => {
                    if target <= pc {
                        let name = p.steps.get(step.index()).map_or("?", |s| s.path.as_str());
                        self.pass.notes.push(format!(
                            "the pass ends at `{name}`, which goes back to an earlier step"
                        ));
                        return t;
                    }
                    pc = target;
                }
                Instr::Fault { step, message } => {
                    self.bar(step, "fault".into(), lane, depth, t, 0.0);
                    self.pass.notes.push(format!(
                        "the pass ends at a fault step: {}",
                        p.messages[message.index()]
                    ));
                    return t;
                }
                Instr::End => return t,
            }
        }
        t
    }

    fn belt_change(&mut self, axis: AxisId, velocity: f64, t: f64) {
        let i = axis.index();
        let was = self.state.belt_velocity[i];
        if was != 0.0 && velocity == 0.0 && t > self.state.belt_since[i] {
            self.pass.belts.push(BeltRun {
                axis,
                start_s: self.state.belt_since[i],
                end_s: t,
            });
        }
        if was == 0.0 && velocity != 0.0 {
            self.state.belt_since[i] = t;
        }
        self.state.belt_velocity[i] = velocity;
    }
}

/// The text report: the steady-state timeline, and both cycle times.
pub fn report(p: &Program, run: &DryRun) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let pass = &run.steady;
    let _ = writeln!(
        s,
        "dry run of `{}` (moves planned with each axis's limits; waits taken as met at once)",
        p.sequence_name
    );
    let _ = writeln!(s, "  {:>7}  {:>7}  {:<24} what", "start s", "dur s", "step");
    for b in &pass.bars {
        let indent = "  ".repeat(b.depth);
        let _ = writeln!(
            s,
            "  {:>7.3}  {:>7.3}  {:<24} {}",
            b.start_s,
            b.duration_s,
            format!("{indent}{}", b.step),
            b.what
        );
    }
    for n in &pass.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    let _ = writeln!(
        s,
        "cycle time of one pass: {:.3} s ({:.1} parts/min at best); the first pass, from the start position: {:.3} s",
        pass.duration_s,
        if pass.duration_s > 0.0 {
            60.0 / pass.duration_s
        } else {
            0.0
        },
        run.first.duration_s
    );
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn demo() -> Program {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cell.toml");
        let checked = takt_sequences::check_file(&path);
        assert!(
            !checked.diagnostics.has_errors(),
            "{:?}",
            checked.diagnostics.list()
        );
        checked.program.unwrap()
    }

    #[test]
    fn demo_pass_is_timed_and_ends_where_it_started() {
        let p = demo();
        let run = run(&p);
        let pass = &run.steady;
        assert!(
            pass.duration_s > 0.5 && pass.duration_s < 5.0,
            "{}",
            pass.duration_s
        );
        // Steps never overlap within a lane, and parallel branches start together.
        for lane in 0..pass.lanes.len() {
            let bars: Vec<&Bar> = pass
                .bars
                .iter()
                .filter(|b| b.lane == lane && b.duration_s > 0.0)
                .collect();
            for w in bars.windows(2) {
                assert!(
                    w[1].start_s >= w[0].start_s + w[0].duration_s - 1e-9,
                    "{:?} overlaps {:?}",
                    w[0],
                    w[1]
                );
            }
        }
        let to_place = pass.bars.iter().find(|b| b.step == "to_place").unwrap();
        let branch_bars: Vec<&Bar> = pass.bars.iter().filter(|b| b.depth == 1).collect();
        assert!(
            branch_bars
                .iter()
                .all(|b| (b.start_s - to_place.start_s).abs() < 1e-12)
        );
        // The steady pass starts where the previous ended: at z_safe (102 mm in
        // config/cell.toml) after placing.
        let z = p.axes.iter().position(|a| a.name == "z").unwrap();
        assert!((pass.start_positions[z] - 102.0).abs() < 1e-9);
        assert!(run.first.duration_s > 0.5);
    }
}
