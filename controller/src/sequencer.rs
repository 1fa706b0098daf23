//! The sequencer: executes the compiled program ([`takt_sequences::Program`]) inside the
//! cycle, without allocating.
//!
//! Every buffer is sized at start-up from [`ProgramLimits`](takt_sequences::program::ProgramLimits):
//! one program counter per thread (`max_threads`), one move slot per thread, the repeat and
//! retry counter slots. A thread runs instructions until one has to wait (a move in
//! progress, a wait, a dwell, a conveyor that has not stopped yet); instant instructions
//! (outputs, counters, jumps, conveyor runs) chain within one cycle, bounded so that a
//! jump loop cannot hang the cycle.
//!
//! An interrupted pass (a trip) keeps every thread's program counter; the instruction each
//! was running starts anew on the next start, re-planned from where the axes really stand.
//! So nothing done is done twice (a counter step is instant, never half done) and nothing
//! undone is skipped.

use takt_drivers::can::Timestamp;
use takt_sequences::Program;
use takt_sequences::program::{AxisId, Instr, OnTimeout, RepeatUntil};

use crate::axis::{AxisState, BeltCommand};
use crate::cycle::Plant;
use crate::motion::{Limits, MAX_MOVE_AXES, MovePlan, plan_move};
use crate::safety::{TripCause, axis_blocked, step_blocked};
use crate::status::{EventKind, Outbox};

/// Instant instructions one thread may chain in one cycle.
const CHAIN_LIMIT: usize = 64;
/// No thread.
const NONE: u16 = u16::MAX;
/// How long a finished move may take to come into its in-position window, s.
pub const SETTLE_S: f64 = 0.5;
/// How long a wait's condition must hold without a break before the wait passes.
pub const WAIT_DEBOUNCE: core::time::Duration = core::time::Duration::from_millis(25);

#[derive(Debug, Clone, Copy)]
struct Thread {
    active: bool,
    pc: u32,
    /// The instruction at `pc` has been started (its side effects done).
    entered: bool,
    since: Timestamp,
    parent: u16,
    /// Branches of this thread's fork still running.
    children: u16,
    /// Where the conveyor index at `pc` must end, counts, once it started: an interrupted
    /// index resumes to the same target (the remaining distance), not the full pitch again.
    index_target: Option<i64>,
    /// Since when the condition of the wait at `pc` has held without a break.
    true_since: Option<Timestamp>,
}

impl Thread {
    const IDLE: Thread = Thread {
        active: false,
        pc: 0,
        entered: false,
        since: Timestamp::ZERO,
        parent: NONE,
        children: 0,
        index_target: None,
        true_since: None,
    };
}

#[derive(Debug, Clone, Copy)]
struct MoveSlot {
    plan: Option<MovePlan>,
    axes: [u16; MAX_MOVE_AXES],
    targets: [f64; MAX_MOVE_AXES],
    n: usize,
    t0: Timestamp,
}

impl MoveSlot {
    const EMPTY: MoveSlot = MoveSlot {
        plan: None,
        axes: [0; MAX_MOVE_AXES],
        targets: [0.0; MAX_MOVE_AXES],
        n: 0,
        t0: Timestamp::ZERO,
    };
}

/// How the sequencer may proceed this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Start instructions freely.
    Run,
    /// Finish running instructions; start no new one (Holding / Held).
    Hold,
    /// Start at most this many new instructions, then hold (single step).
    Step,
}

/// What a cycle of the sequencer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (or holding).
    Running,
    /// A pass ended and the cell was asked to stop at its end.
    PassEndedStop,
    /// The cell must trip.
    Trip(TripCause),
}

/// The executor. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Sequencer {
    threads: Vec<Thread>,
    moves: Vec<MoveSlot>,
    repeat: Vec<u32>,
    retry: Vec<u32>,
    entry: u32,
    passes: u64,
    /// Stop at the end of the current pass.
    pub stop_at_end: bool,
    stepped: bool,
}

impl Sequencer {
    /// An executor sized for `program`; nothing runs until [`Sequencer::begin`].
    pub fn new(program: &Program) -> Sequencer {
        let l = program.limits;
        let threads = usize::from(l.max_threads.max(1));
        Sequencer {
            threads: vec![Thread::IDLE; threads],
            moves: vec![MoveSlot::EMPTY; threads],
            repeat: vec![0; usize::from(l.repeat_slots)],
            retry: vec![0; usize::from(l.retry_slots)],
            entry: program.entry.0,
            passes: 0,
            stop_at_end: false,
            stepped: false,
        }
    }

    /// Passes completed.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// The main thread's instruction.
    pub fn main_pc(&self) -> u32 {
        self.threads.first().map_or(0, |t| t.pc)
    }

    /// True when no pass is under way (before the first start, or after a stop at the end
    /// of a pass).
    pub fn is_idle(&self) -> bool {
        !self.threads.iter().any(|t| t.active)
    }

    /// Starts a pass at the entry unless one is under way (then it resumes).
    pub fn begin(&mut self) {
        if self.is_idle() {
            self.threads[0] = Thread {
                active: true,
                pc: self.entry,
                ..Thread::IDLE
            };
        }
        self.stepped = false;
    }

    /// Interrupts the pass (a trip): motions are released, and each thread's instruction
    /// will start anew on resume.
    pub fn interrupt(&mut self, plant: &mut Plant) {
        for (i, t) in self.threads.iter_mut().enumerate() {
            if t.active && t.children == 0 {
                t.entered = false;
            }
            self.moves[i].plan = None;
        }
        for a in &mut plant.axes {
            a.move_owner = None;
        }
    }

    /// Abandons the pass under way (the operator cleared the cell after a resume was
    /// refused): the next start begins a new pass at the entry.
    pub fn abandon(&mut self) {
        for (t, m) in self.threads.iter_mut().zip(self.moves.iter_mut()) {
            *t = Thread::IDLE;
            m.plan = None;
        }
    }

    /// The encoder of conveyor `axis` was reset (its drive rebooted) and now reads
    /// `shift_counts` more for the same belt position: an index under way keeps its
    /// remaining distance.
    pub fn shift_index_target(&mut self, program: &Program, axis: u16, shift_counts: i64) {
        for t in &mut self.threads {
            let indexes_axis = matches!(
                program.instr(takt_sequences::program::InstrId(t.pc)),
                Some(Instr::ConveyorIndex { axis: a, .. }) if a.0 == axis
            );
            if let (true, Some(target)) = (indexes_axis, t.index_target.as_mut()) {
                *target += shift_counts;
            }
        }
    }

    /// True when no thread is inside a motion instruction (Holding may become Held).
    pub fn at_boundary(&self, program: &Program) -> bool {
        self.threads.iter().all(|t| {
            !t.active
                || t.children > 0
                || !t.entered
                || matches!(
                    program.instr(takt_sequences::program::InstrId(t.pc)),
                    Some(Instr::Wait { .. } | Instr::Dwell { .. })
                )
        })
    }

    /// The set-point of axis `i` of `thread`'s move at time `t`, counts.
    pub fn setpoint(&self, thread: u16, i: u8, t: Timestamp) -> Option<f64> {
        let slot = self.moves.get(usize::from(thread))?;
        let plan = slot.plan.as_ref()?;
        let s = t.saturating_since(slot.t0).as_secs_f64();
        Some(plan.sample(usize::from(i), s).position)
    }

    /// One cycle of every thread.
    pub fn step(
        &mut self,
        program: &Program,
        plant: &mut Plant,
        now: Timestamp,
        gate: Gate,
        out: &mut Outbox,
    ) -> Outcome {
        for t in 0..self.threads.len() {
            let mut chained = 0;
            while self.threads[t].active && self.threads[t].children == 0 {
                chained += 1;
                if chained > CHAIN_LIMIT {
                    break;
                }
                if !self.threads[t].entered {
                    match gate {
                        Gate::Hold => break,
                        Gate::Step if self.stepped => break,
                        Gate::Step => self.stepped = true,
                        Gate::Run => {}
                    }
                }
                match self.advance(program, plant, now, t, out) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(outcome) => return outcome,
                }
            }
        }
        Outcome::Running
    }

    /// Works on thread `t`'s instruction. Ok(true): it finished, go on; Ok(false): it waits.
    fn advance(
        &mut self,
        program: &Program,
        plant: &mut Plant,
        now: Timestamp,
        t: usize,
        out: &mut Outbox,
    ) -> Result<bool, Outcome> {
        let th = self.threads[t];
        let pc = th.pc;
        let Some(&instr) = program.instr(takt_sequences::program::InstrId(pc)) else {
            return Err(Outcome::Trip(TripCause::SequenceFault { instr: pc }));
        };
        let first = !th.entered;
        if first {
            self.threads[t].entered = true;
            self.threads[t].since = now;
            if !matches!(instr, Instr::Join { .. } | Instr::End) {
                out.event(
                    now,
                    EventKind::Step {
                        thread: t as u16,
                        instr: pc,
                    },
                );
            }
        }
        let elapsed_us = now.saturating_since(self.threads[t].since).as_micros() as u64;
        let fault = |instr| Err(Outcome::Trip(TripCause::SequenceFault { instr }));
        match instr {
            Instr::Set { writes, .. } => {
                for w in program.output_writes.get(writes.range()).unwrap_or(&[]) {
                    plant.set_output(program, w.output, w.on);
                }
                self.next(t);
                Ok(true)
            }
            Instr::Wait {
                cond,
                timeout_us,
                on_timeout,
                ..
            } => {
                if first && let OnTimeout::Retry { slot, .. } = on_timeout {
                    if let Some(r) = self.retry.get_mut(slot.index()) {
                        *r = 0;
                    }
                }
                if first {
                    self.threads[t].true_since = None;
                }
                if program.eval(cond, &*plant) {
                    // Debounced: a chattering sensor (a vacuum switch fluttering, a light
                    // barrier flickering) must not pass a wait on one sample (found by the
                    // fuzzer: a part counted that was never picked).
                    let since = *self.threads[t].true_since.get_or_insert(now);
                    if now.saturating_since(since) >= WAIT_DEBOUNCE {
                        self.next(t);
                        return Ok(true);
                    }
                    return Ok(false);
                }
                self.threads[t].true_since = None;
                if elapsed_us < timeout_us {
                    return Ok(false);
                }
                match on_timeout {
                    OnTimeout::Fault => fault(pc),
                    OnTimeout::Retry { slot, max } => {
                        let r = self.retry.get_mut(slot.index());
                        let n = r.map_or(u32::MAX, |r| {
                            *r += 1;
                            *r
                        });
                        if n > u32::from(max) {
                            return fault(pc);
                        }
                        out.event(now, EventKind::Alarm { instr: pc });
                        self.threads[t].since = now;
                        Ok(false)
                    }
                    OnTimeout::Goto(target) => {
                        self.jump(t, target.0);
                        Ok(true)
                    }
                }
            }
            Instr::ConveyorRun {
                step,
                axis,
                velocity_counts_s,
            } => {
                self.check_guards(program, plant, pc, step, Some(axis))?;
                let a = &mut plant.axes[axis.index()];
                a.belt = BeltCommand::Run { velocity_counts_s };
                a.state = AxisState::Moving;
                self.next(t);
                Ok(true)
            }
            Instr::ConveyorStop { axis, .. } => {
                let a = &mut plant.axes[axis.index()];
                if first {
                    a.belt = BeltCommand::Stop;
                }
                if a.is_standing() && matches!(a.belt, BeltCommand::Stop) {
                    a.state = AxisState::Standstill;
                    self.next(t);
                    return Ok(true);
                }
                Ok(false)
            }
            Instr::ConveyorIndex {
                step,
                axis,
                distance_counts,
                max_velocity_counts_s,
            } => {
                if first {
                    self.check_guards(program, plant, pc, step, Some(axis))?;
                    let a = &mut plant.axes[axis.index()];
                    let v = max_velocity_counts_s.min(a.limits.max_velocity);
                    let target = *self.threads[t]
                        .index_target
                        .get_or_insert(a.actual_counts + distance_counts);
                    let remaining = target - a.actual_counts;
                    if remaining.abs() <= a.in_position_counts {
                        // Resumed after the belt had (nearly) arrived: nothing left to do.
                        self.threads[t].index_target = None;
                        a.state = AxisState::Standstill;
                        self.next(t);
                        return Ok(true);
                    }
                    a.belt = BeltCommand::Index {
                        target_counts: target,
                        velocity_counts_s: v * (remaining as f64).signum(),
                    };
                    a.state = AxisState::Moving;
                    return Ok(false);
                }
                let a = &mut plant.axes[axis.index()];
                if matches!(a.belt, BeltCommand::Stop) && a.is_standing() {
                    a.state = AxisState::Standstill;
                    self.threads[t].index_target = None;
                    self.next(t);
                    return Ok(true);
                }
                Ok(false)
            }
            Instr::Move {
                step,
                targets,
                relative,
                coordinated,
            } => {
                if first {
                    return self
                        .start_move(
                            program,
                            plant,
                            now,
                            t,
                            pc,
                            step,
                            targets.range(),
                            relative,
                            coordinated,
                        )
                        .map(|()| false);
                }
                let slot = &self.moves[t];
                let done = slot
                    .plan
                    .as_ref()
                    .is_none_or(|p| p.is_done(now.saturating_since(slot.t0).as_secs_f64()));
                let in_position = (0..slot.n).all(|i| {
                    let a = &plant.axes[usize::from(slot.axes[i])];
                    (a.actual_counts as f64 - slot.targets[i]).abs() <= a.in_position_counts as f64
                });
                // Done long since and still not in position: the axis lost its position
                // by less than its following-error window but more than its in-position
                // window (a stepper's few lost steps), and would wait here forever (found by
                // the fuzzer, seed 60). A following error: the cell resyncs it.
                let settled_long_ago = slot.plan.as_ref().is_some_and(|p| {
                    p.is_done(now.saturating_since(slot.t0).as_secs_f64() - SETTLE_S)
                });
                if settled_long_ago && !in_position {
                    let off = (0..slot.n)
                        .find(|&i| {
                            let a = &plant.axes[usize::from(slot.axes[i])];
                            (a.actual_counts as f64 - slot.targets[i]).abs()
                                > a.in_position_counts as f64
                        })
                        .unwrap_or(0);
                    let axis = slot.axes[off];
                    return Err(Outcome::Trip(TripCause::FollowingError { axis }));
                }
                if done && in_position {
                    for i in 0..slot.n {
                        let a = &mut plant.axes[usize::from(slot.axes[i])];
                        a.move_owner = None;
                        a.demand_counts = slot.targets[i];
                        a.state = AxisState::Standstill;
                    }
                    self.moves[t].plan = None;
                    self.next(t);
                    return Ok(true);
                }
                Ok(false)
            }
            Instr::Dwell { duration_us, .. } => {
                if elapsed_us >= duration_us {
                    self.next(t);
                    return Ok(true);
                }
                Ok(false)
            }
            Instr::Fork { branches, join, .. } => {
                let starts = program.branch_starts.get(branches.range()).unwrap_or(&[]);
                let mut started = 0u16;
                for s in starts {
                    let Some(free) = self.threads.iter().position(|x| !x.active) else {
                        return fault(pc);
                    };
                    self.threads[free] = Thread {
                        active: true,
                        pc: s.0,
                        entered: false,
                        since: now,
                        parent: t as u16,
                        children: 0,
                        index_target: None,
                        true_since: None,
                    };
                    started += 1;
                }
                // The forking thread continues at the join once every branch has ended.
                self.threads[t].pc = join.0;
                self.threads[t].entered = false;
                self.threads[t].children = started;
                Ok(false)
            }
            Instr::Join { .. } => {
                let parent = self.threads[t].parent;
                self.threads[t] = Thread::IDLE;
                if let Some(p) = self.threads.get_mut(usize::from(parent)) {
                    p.children = p.children.saturating_sub(1);
                }
                Ok(false)
            }
            Instr::RepeatStart { slot, .. } => {
                if let Some(r) = self.repeat.get_mut(slot.index()) {
                    *r = 0;
                }
                self.next(t);
                Ok(true)
            }
            Instr::RepeatEnd {
                slot, body, until, ..
            } => {
                let n = self.repeat.get_mut(slot.index()).map_or(u32::MAX, |r| {
                    *r += 1;
                    *r
                });
                let again = match until {
                    RepeatUntil::Times(times) => n < times,
                    RepeatUntil::Condition { cond, max } => {
                        if program.eval(cond, &*plant) {
                            false
                        } else if n >= max {
                            return fault(pc);
                        } else {
                            true
                        }
                    }
                };
                if again {
                    self.jump(t, body.0);
                } else {
                    self.next(t);
                }
                Ok(true)
            }
            Instr::Count { counter, by, .. } => {
                if let Some(c) = plant.counters.get_mut(counter.index()) {
                    *c += u64::from(by);
                    out.event(
                        now,
                        EventKind::Counted {
                            counter: counter.0,
                            total: *c,
                        },
                    );
                }
                self.next(t);
                Ok(true)
            }
            Instr::Jump { target, .. } => {
                self.jump(t, target.0);
                Ok(true)
            }
            Instr::Fault { .. } => fault(pc),
            Instr::End => {
                if first {
                    // The pass ends on the next cycle, so a stop asked for as the last part
                    // is counted ends this pass, not the next one.
                    return Ok(false);
                }
                self.passes += 1;
                out.event(
                    now,
                    EventKind::PassDone {
                        passes: self.passes,
                    },
                );
                if self.stop_at_end {
                    self.threads[t] = Thread::IDLE;
                    return Err(Outcome::PassEndedStop);
                }
                self.jump(t, self.entry);
                // One pass per cycle at most: the next starts on the next cycle.
                Ok(false)
            }
        }
    }

    fn next(&mut self, t: usize) {
        let th = &mut self.threads[t];
        th.pc += 1;
        th.entered = false;
    }

    fn jump(&mut self, t: usize, target: u32) {
        let th = &mut self.threads[t];
        th.pc = target;
        th.entered = false;
    }

    fn check_guards(
        &self,
        program: &Program,
        plant: &Plant,
        pc: u32,
        step: takt_sequences::program::StepId,
        axis: Option<AxisId>,
    ) -> Result<(), Outcome> {
        let blocked = match axis {
            Some(a) => axis_blocked(program, plant, a),
            None => None,
        }
        .or_else(|| step_blocked(program, plant, step));
        match blocked {
            Some(interlock) => Err(Outcome::Trip(TripCause::Refused {
                interlock,
                instr: pc,
            })),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_move(
        &mut self,
        program: &Program,
        plant: &mut Plant,
        now: Timestamp,
        t: usize,
        pc: u32,
        step: takt_sequences::program::StepId,
        range: std::ops::Range<usize>,
        relative: bool,
        coordinated: bool,
    ) -> Result<(), Outcome> {
        let fault = Outcome::Trip(TripCause::SequenceFault { instr: pc });
        let targets = program.targets.get(range).ok_or(fault)?;
        let n = targets.len();
        if n == 0 || n > MAX_MOVE_AXES {
            return Err(fault);
        }
        let mut starts = [0.0; MAX_MOVE_AXES];
        let mut ends = [0.0; MAX_MOVE_AXES];
        let mut limits = [Limits {
            max_velocity: 1.0,
            max_acceleration: 1.0,
            max_jerk: 1.0,
        }; MAX_MOVE_AXES];
        let mut slot = MoveSlot::EMPTY;
        for (i, target) in targets.iter().enumerate() {
            let a = plant.axes.get(target.axis.index()).ok_or(fault)?;
            if a.move_owner.is_some() || a.conveyor {
                return Err(fault);
            }
            self.check_guards(program, plant, pc, step, Some(target.axis))?;
            starts[i] = a.demand_counts;
            let goal = if relative {
                a.demand_counts.round() as i64 + target.position_counts
            } else {
                target.position_counts
            };
            if goal < a.min_position_counts || goal > a.max_position_counts {
                return Err(Outcome::Trip(TripCause::SoftLimit {
                    axis: target.axis.0,
                }));
            }
            ends[i] = goal as f64;
            limits[i] = Limits {
                max_velocity: target.max_velocity_counts_s.min(a.limits.max_velocity),
                ..a.limits
            };
            slot.axes[i] = target.axis.0;
            slot.targets[i] = ends[i];
        }
        let plan =
            plan_move(&starts[..n], &ends[..n], &limits[..n], coordinated).map_err(|_| fault)?;
        slot.plan = Some(plan);
        slot.n = n;
        slot.t0 = now;
        for i in 0..n {
            let a = &mut plant.axes[usize::from(slot.axes[i])];
            a.move_owner = Some((t as u16, i as u8));
            a.state = AxisState::Moving;
        }
        self.moves[t] = slot;
        Ok(())
    }
}
