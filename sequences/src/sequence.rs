//! Sequence files: reading steps, and the checks that need the cell and all sequences.
//!
//! Steps are read into a tree ([`Step`]) whose nodes all live in one arena (`Vec<Step>`,
//! indexed by [`StepIx`]), so that checks across the tree — `goto` targets, reachability,
//! parallel branches that must not share an axis or output, the call graph — are walks over
//! indices.

use std::collections::{BTreeSet, HashMap};

use toml_edit::TableLike;

use crate::cell::{Cell, StrSpan, Symbol};
use crate::diag::{FileId, Span};
use crate::program::{AxisId, CondOp, OutputId};
use crate::quantity::{Dim, Quantity, trim_float};
use crate::reader::{Named, Reader, Tab, did_you_mean, one_of_list, span_or};
use crate::spec;

/// Index of a step in [`SequenceFile::steps`].
pub(crate) type StepIx = usize;

/// A list of steps run in order: a sequence's body, a repeat's body or a branch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Block {
    pub steps: Vec<StepIx>,
    /// The step this block belongs to (`None` for the sequence's body).
    pub owner: Option<StepIx>,
    /// True for a parallel branch: `goto` may not cross it.
    pub is_branch: bool,
    pub name: Option<String>,
}

/// Index into [`SequenceFile::blocks`].
pub(crate) type BlockIx = usize;

#[derive(Debug, Clone)]
pub(crate) enum Timeout {
    Fault,
    Retry(u16),
    Goto(Named),
}

#[derive(Debug, Clone)]
pub(crate) enum Speed {
    Percent(f64),
    Velocity(Quantity),
}

#[derive(Debug, Clone)]
pub(crate) enum ConveyorAction {
    Run,
    Stop,
    Index(f64),
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A step whose kind could not be read (already reported).
    Invalid,
    Move {
        relative: bool,
        coordinated: bool,
        speed: Option<(Speed, Span)>,
        /// Resolved targets: axis, position or distance in user units.
        resolved: Vec<(AxisId, f64)>,
    },
    Wait {
        cond: Option<Vec<CondOp>>,
        timeout_s: f64,
        on_timeout: Timeout,
        alarm: Option<String>,
    },
    Set(Vec<(OutputId, bool, Span)>),
    Conveyor {
        axis: Option<AxisId>,
        action: ConveyorAction,
        speed_units_s: f64,
    },
    Dwell(f64),
    Parallel(Vec<BlockIx>),
    Repeat {
        times: Option<u32>,
        until: Option<(Vec<CondOp>, u32)>,
        body: BlockIx,
    },
    Call(Named),
    Count(Named, u32),
    Goto(Named),
    Fault(String),
}

impl Kind {
    pub fn word(&self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::Move { .. } => "move",
            Kind::Wait { .. } => "wait",
            Kind::Set(_) => "set",
            Kind::Conveyor { .. } => "conveyor",
            Kind::Dwell(_) => "dwell",
            Kind::Parallel(_) => "parallel",
            Kind::Repeat { .. } => "repeat",
            Kind::Call(_) => "call",
            Kind::Count(..) => "count",
            Kind::Goto(_) => "goto",
            Kind::Fault(_) => "fault",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub name: Option<Named>,
    /// The step's header (`[[step]]`) or its table.
    pub span: Span,
    pub kind: Kind,
    /// The block it is in.
    pub block: BlockIx,
    /// 1-based position in its block, for unnamed steps' display names.
    pub ordinal: usize,
}

impl Step {
    pub fn display(&self) -> String {
        match &self.name {
            Some((n, _)) => format!("`{n}`"),
            None => format!("step {}", self.ordinal),
        }
    }
}

/// One sequence file, read.
#[derive(Debug, Clone)]
pub(crate) struct SequenceFile {
    pub name: String,
    pub file: FileId,
    pub steps: Vec<Step>,
    /// Block 0 is the body.
    pub blocks: Vec<Block>,
    pub by_name: HashMap<String, StepIx>,
}

impl SequenceFile {
    pub fn step_path(&self, ix: StepIx) -> String {
        let s = &self.steps[ix];
        match &s.name {
            Some((n, _)) => n.clone(),
            None => {
                // Unnamed steps are named by where they are: `7`, `to_place.gantry.1` in a
                // named branch, `to_place.2.1` in the second unnamed branch.
                let block = &self.blocks[s.block];
                let Some(owner) = block.owner else {
                    return s.ordinal.to_string();
                };
                let mut path = self.step_path(owner);
                if block.is_branch {
                    let branch = match &block.name {
                        Some(n) => n.clone(),
                        None => match &self.steps[owner].kind {
                            Kind::Parallel(bs) => {
                                (bs.iter().position(|b| *b == s.block).unwrap_or(0) + 1).to_string()
                            }
                            _ => String::new(),
                        },
                    };
                    path.push('.');
                    path.push_str(&branch);
                }
                path.push('.');
                path.push_str(&s.ordinal.to_string());
                path
            }
        }
    }
}

impl Reader<'_> {
    /// Reads a sequence file's steps, checking everything that needs only the cell.
    pub(crate) fn read_sequence(
        &mut self,
        name: &str,
        root: &dyn TableLike,
        cell: &Cell,
    ) -> SequenceFile {
        let file_span = self.whole_file();
        let top = self.table(
            root,
            &spec::SEQUENCE_FILE,
            file_span,
            format!("sequence `{name}`"),
        );
        let mut seq = SequenceFile {
            name: name.to_owned(),
            file: self.file,
            steps: Vec::new(),
            blocks: vec![Block::default()],
            by_name: HashMap::new(),
        };
        if let Some(e) = top.get("sequence") {
            if let Some(t) = e.item.as_table_like() {
                self.table(t, &spec::SEQUENCE, e.key, "`[sequence]`".into());
            }
        }
        if let Some(e) = top.get("step") {
            let tables = self.tables_of(e.item, e.key);
            if tables.is_empty() {
                self.diags
                    .error("no-steps", format!("sequence `{name}` has no steps"), e.key)
                    .help("add `[[step]]` tables");
            }
            self.read_block(&mut seq, cell, 0, tables);
        }
        seq
    }

    fn read_block(
        &mut self,
        seq: &mut SequenceFile,
        cell: &Cell,
        block: BlockIx,
        tables: Vec<(&dyn TableLike, Span)>,
    ) {
        for (ordinal, (t, span)) in tables.into_iter().enumerate() {
            let ix = seq.steps.len();
            seq.steps.push(Step {
                name: None,
                span,
                kind: Kind::Invalid,
                block,
                ordinal: ordinal + 1,
            });
            seq.blocks[block].steps.push(ix);
            let what = match t.get("name").and_then(|n| n.as_str()) {
                Some(n) => format!("step `{n}`"),
                None => format!("step {}", ordinal + 1),
            };
            let tab = self.table(t, &spec::STEP, span, what);
            if let Some((n, ns)) = tab.str("name") {
                if let Some(&prev) = seq.by_name.get(&n) {
                    let prev_span = seq.steps[prev].name.as_ref().map_or(span, |p| p.1);
                    self.diags
                        .error(
                            "duplicate-step",
                            format!("sequence `{}` already has a step `{n}`", seq.name),
                            ns,
                        )
                        .also(prev_span, "first here")
                        .help("step names are `goto` targets and must be unique in a sequence");
                } else {
                    seq.by_name.insert(n.clone(), ix);
                }
                seq.steps[ix].name = Some((n, ns));
            }
            let kind = self.read_kind(seq, cell, &tab, ix);
            seq.steps[ix].kind = kind;
        }
    }

    fn read_kind(
        &mut self,
        seq: &mut SequenceFile,
        cell: &Cell,
        tab: &Tab<'_>,
        ix: StepIx,
    ) -> Kind {
        let kinds: Vec<&str> = spec::STEP_KINDS
            .iter()
            .copied()
            .filter(|k| tab.has(k))
            .collect();
        if kinds.len() != 1 {
            return Kind::Invalid;
        }
        let span = tab.span;
        match kinds[0] {
            "move" => self.read_move(cell, tab),
            "wait" => {
                let cond = tab.str("wait").and_then(|(text, s)| {
                    let ss = StrSpan::new(self.sources.text(s), s, &text);
                    self.compile_condition(cell, &text, ss)
                });
                let timeout_s = match tab.qty("timeout") {
                    Some((q, s)) => {
                        if q.value <= 0.0 {
                            self.diags.error(
                                "timeout-zero",
                                "a timeout must be longer than zero",
                                s,
                            );
                        }
                        q.value
                    }
                    None => {
                        let wait_key = tab.get("wait").map_or(span, |e| e.key);
                        if !tab.written("timeout") {
                            self.diags
                                .error("wait-without-timeout", "a wait needs a timeout", wait_key)
                                .label("waits forever if the condition never comes")
                                .help("add `timeout = \"10 s\"`, and `on_timeout` if it should not fault: `\"fault\"`, `{ retry = 3 }` or `{ goto = \"step\" }`");
                        }
                        1.0
                    }
                };
                let on_timeout = match tab.get("on_timeout") {
                    Some(e) if e.variant == 1 => match e.item.as_table_like() {
                        Some(t) => {
                            let ot =
                                self.table(t, &spec::ON_TIMEOUT, e.value, "`on_timeout`".into());
                            match (ot.int("retry"), ot.str("goto")) {
                                (Some((n, _)), None) => Timeout::Retry(n as u16),
                                (None, Some(g)) => Timeout::Goto(g),
                                _ => {
                                    self.diags
                                        .error(
                                            "on-timeout-shape",
                                            "`on_timeout` takes either `retry` or `goto`",
                                            e.value,
                                        )
                                        .help("`{ retry = 3 }` or `{ goto = \"recover\" }`");
                                    Timeout::Fault
                                }
                            }
                        }
                        None => Timeout::Fault,
                    },
                    _ => Timeout::Fault,
                };
                Kind::Wait {
                    cond,
                    timeout_s,
                    on_timeout,
                    alarm: tab.str("alarm").map(|a| a.0),
                }
            }
            "set" => {
                let mut writes = Vec::new();
                if let Some(e) = tab.get("set") {
                    for (name, ns, v) in self.named(e.item, e.value) {
                        let Some(on) = v.as_bool() else { continue };
                        match cell.lookup(&name) {
                            Some(Symbol::Output(o)) => writes.push((o, on, ns)),
                            Some(Symbol::Input(_)) => {
                                self.diags
                                    .error(
                                        "set-input",
                                        format!("`{name}` is an input; only outputs can be set"),
                                        ns,
                                    )
                                    .help(format!(
                                        "to wait for it, use a wait step: `wait = \"{name}\"`"
                                    ));
                            }
                            other => {
                                let what = other.map_or(String::new(), |s| {
                                    format!(" (it is {})", s.describe())
                                });
                                let help = cell
                                    .suggest(&name, |s| matches!(s, Symbol::Output(_)))
                                    .map_or(
                                        "outputs are listed under `[outputs]` in the cell file"
                                            .into(),
                                        |n| format!("did you mean `{n}`?"),
                                    );
                                self.diags
                                    .error(
                                        "unknown-output",
                                        format!("no output is called `{name}`{what}"),
                                        ns,
                                    )
                                    .label("unknown output")
                                    .help(help);
                            }
                        }
                    }
                    if writes.is_empty() && e.item.as_table_like().is_some_and(|t| t.is_empty()) {
                        self.diags
                            .warning("empty-set", "this `set` switches nothing", e.value);
                    }
                }
                Kind::Set(writes)
            }
            "conveyor" => self.read_conveyor(cell, tab),
            "dwell" => {
                let d = tab.qty("dwell").map_or(0.0, |q| q.0.value);
                if let Some((q, s)) = tab.qty("dwell") {
                    if q.value < 0.0 {
                        self.diags
                            .error("negative-dwell", "a dwell cannot be negative", s);
                    }
                }
                Kind::Dwell(d)
            }
            "parallel" => {
                let mut branches = Vec::new();
                if let Some(e) = tab.get("parallel") {
                    let tables = self.tables_of(e.item, e.value);
                    if tables.len() < 2 {
                        self.diags
                            .warning("single-branch", "a parallel step with one branch runs nothing in parallel", e.key)
                            .help("add a second `[[step.parallel]]` branch, or write the steps directly");
                    }
                    for (i, (t, bs)) in tables.into_iter().enumerate() {
                        let bt = self.table(t, &spec::BRANCH, bs, format!("branch {}", i + 1));
                        let b = seq.blocks.len();
                        seq.blocks.push(Block {
                            steps: Vec::new(),
                            owner: Some(ix),
                            is_branch: true,
                            name: bt.str("name").map(|n| n.0),
                        });
                        branches.push(b);
                        if let Some(d) = bt.get("do") {
                            let steps = self.tables_of(d.item, d.value);
                            if steps.is_empty() {
                                self.diags.warning(
                                    "empty-branch",
                                    "this branch has no steps",
                                    d.key,
                                );
                            }
                            self.read_block(seq, cell, b, steps);
                        }
                    }
                }
                Kind::Parallel(branches)
            }
            "repeat" => {
                let (times, until) = match tab.get("repeat") {
                    Some(e) if e.variant == 0 => (e.item.as_integer().map(|n| n as u32), None),
                    Some(e) => {
                        let until = e.item.as_table_like().and_then(|t| {
                            let rt = self.table(t, &spec::REPEAT, e.value, "`repeat`".into());
                            let cond = rt.str("until").and_then(|(text, s)| {
                                let ss = StrSpan::new(self.sources.text(s), s, &text);
                                self.compile_condition(cell, &text, ss)
                            })?;
                            Some((cond, rt.int("max")?.0 as u32))
                        });
                        (None, until)
                    }
                    None => (None, None),
                };
                let body = seq.blocks.len();
                seq.blocks.push(Block {
                    steps: Vec::new(),
                    owner: Some(ix),
                    is_branch: false,
                    name: None,
                });
                match tab.get("do") {
                    Some(d) => {
                        let steps = self.tables_of(d.item, d.value);
                        if steps.is_empty() {
                            self.diags
                                .error("empty-repeat", "a repeat needs steps to repeat", d.key)
                                .help("add `[[step.do]]` tables after the repeat step");
                        }
                        self.read_block(seq, cell, body, steps);
                    }
                    None => {
                        self.diags
                            .error(
                                "empty-repeat",
                                "a repeat needs steps to repeat",
                                tab.get("repeat").map_or(span, |e| e.key),
                            )
                            .help("add `[[step.do]]` tables after the repeat step");
                    }
                }
                Kind::Repeat { times, until, body }
            }
            "call" => Kind::Call(tab.str("call").unwrap_or_default()),
            "count" => Kind::Count(
                tab.str("count").unwrap_or_default(),
                tab.int("by").map_or(1, |b| b.0 as u32),
            ),
            "goto" => Kind::Goto(tab.str("goto").unwrap_or_default()),
            "fault" => Kind::Fault(tab.str("fault").map(|f| f.0).unwrap_or_default()),
            _ => Kind::Invalid,
        }
    }

    fn read_speed(&mut self, tab: &Tab<'_>) -> Option<(Speed, Span)> {
        let (q, s) = tab.qty("speed")?;
        if q.dim == Dim::Percent {
            self.check_percent(q.value, s);
            Some((Speed::Percent(q.value), s))
        } else {
            if q.value <= 0.0 {
                self.diags
                    .error("speed-zero", "a speed must be more than zero", s);
            }
            Some((Speed::Velocity(q), s))
        }
    }

    fn read_move(&mut self, cell: &Cell, tab: &Tab<'_>) -> Kind {
        let relative = tab.bool("relative").is_some_and(|b| b.0);
        let coordinated = tab.bool("coordinated").is_none_or(|b| b.0);
        let speed = self.read_speed(tab);
        let axes = tab.names("axes");
        let mut resolved = Vec::new();
        let Some(e) = tab.get("move") else {
            return Kind::Invalid;
        };
        if e.variant == 0 {
            let (name, ns) = (e.item.as_str().unwrap_or_default().to_owned(), e.value);
            match cell.lookup(&name) {
                Some(Symbol::TeachPoint(i)) => {
                    let tp = &cell.teach_points[i];
                    if relative {
                        self.diags
                            .error(
                                "relative-teach-point",
                                "a relative move goes by distances, not to a teach point",
                                tab.get("relative").map_or(ns, |r| r.value),
                            )
                            .help(
                                "remove `relative`, or give distances: `move = { z = \"-10 mm\" }`",
                            );
                    }
                    match &axes {
                        Some(list) => {
                            for (a, asp) in list {
                                let Some(id) = self.resolve_axis(cell, a, *asp, false) else {
                                    continue;
                                };
                                match tp.coords.iter().find(|c| c.0 == id) {
                                    Some(&(_, v, _)) => resolved.push((id, v)),
                                    None => {
                                        self.diags
                                            .error("point-lacks-axis", format!("teach point `{name}` has no `{a}` coordinate"), *asp)
                                            .help(format!("add `{a}` to the teach point in the cell file, or leave `{a}` out of `axes`"));
                                    }
                                }
                            }
                        }
                        None => resolved.extend(tp.coords.iter().map(|c| (c.0, c.1))),
                    }
                    if tp.coords.is_empty() {
                        self.diags.error(
                            "empty-move",
                            format!("teach point `{name}` has no coordinates to move to"),
                            ns,
                        );
                    }
                }
                other => {
                    let what = other.map_or(String::new(), |s| {
                        format!(" (`{name}` is {})", s.describe())
                    });
                    let help = cell
                        .suggest(&name, |s| matches!(s, Symbol::TeachPoint(_)))
                        .map_or(
                            "teach points are listed under `[teach_points]` in the cell file"
                                .into(),
                            |n| format!("did you mean `{n}`?"),
                        );
                    self.diags
                        .error(
                            "unknown-teach-point",
                            format!("no teach point is called `{name}`{what}"),
                            ns,
                        )
                        .label("unknown teach point")
                        .help(help);
                }
            }
        } else {
            if let Some((_, asp)) = axes.as_ref().and_then(|a| a.first()) {
                self.diags
                    .error(
                        "axes-with-coordinates",
                        "`axes` selects axes of a teach point; coordinates already name their axes",
                        *asp,
                    )
                    .help("remove `axes`");
            }
            for (a, asp, v) in self.named(e.item, e.value) {
                let vs = span_or(asp, v.span());
                let Some(q) = v.as_str().and_then(|s| s.parse::<Quantity>().ok()) else {
                    continue;
                };
                let Some(id) = self.resolve_axis(cell, &a, asp, false) else {
                    continue;
                };
                let axis = cell.axis(id);
                if q.dim != axis.length_dim() {
                    self.diags
                        .error(
                            "axis-unit",
                            format!(
                                "`{a}` is {}, but this is {}",
                                if axis.config.rotary {
                                    "rotary"
                                } else {
                                    "linear"
                                },
                                q.dim.describe()
                            ),
                            vs,
                        )
                        .help(format!("write it in {}", axis.unit()));
                    continue;
                }
                if !relative && (q.value < axis.min || q.value > axis.max) {
                    self.diags
                        .error(
                            "outside-soft-limits",
                            format!(
                                "`{a}` to {} {} is outside its soft limits ({} to {} {})",
                                trim_float(q.value),
                                axis.unit(),
                                trim_float(axis.min),
                                trim_float(axis.max),
                                axis.unit()
                            ),
                            vs,
                        )
                        .label("outside the soft limits")
                        .help(format!(
                            "the axis may go from {} to {} {}",
                            trim_float(axis.min),
                            trim_float(axis.max),
                            axis.unit()
                        ));
                    continue;
                }
                if relative && (q.value.abs() > axis.max - axis.min) {
                    self.diags.error(
                        "outside-soft-limits",
                        format!(
                            "a relative move of {} {} is longer than `{a}`'s whole travel",
                            trim_float(q.value),
                            axis.unit()
                        ),
                        vs,
                    );
                    continue;
                }
                resolved.push((id, q.value));
            }
            if e.item.as_table_like().is_some_and(|t| t.is_empty()) {
                self.diags
                    .error("empty-move", "this move names no axis", e.value)
                    .help("for example `move = { x = \"120 mm\" }`");
            }
        }
        if let Some((Speed::Velocity(v), s)) = &speed {
            for (id, _) in &resolved {
                let axis = cell.axis(*id);
                if v.dim != axis.velocity_dim() {
                    self.diags.error("speed-unit", format!("speed {} does not fit `{}`, which is {}", v, axis.config.name, if axis.config.rotary { "rotary" } else { "linear" }), *s).help("give the speed as a percentage of each axis's maximum: `speed = \"50 %\"`");
                    break;
                }
                if v.value > axis.max_velocity * (1.0 + 1e-9) {
                    self.diags
                        .error(
                            "speed-over-max",
                            format!(
                                "speed {} is above the max_velocity of `{}` ({} {}/s)",
                                v,
                                axis.config.name,
                                trim_float(axis.max_velocity),
                                axis.unit()
                            ),
                            *s,
                        )
                        .label("too fast")
                        .help(format!(
                            "at most {} {}/s, or write it as a percentage: `speed = \"100 %\"`",
                            trim_float(axis.max_velocity),
                            axis.unit()
                        ));
                }
            }
        }
        Kind::Move {
            relative,
            coordinated,
            speed,
            resolved,
        }
    }

    fn read_conveyor(&mut self, cell: &Cell, tab: &Tab<'_>) -> Kind {
        let (name, ns) = tab.str("conveyor").unwrap_or_default();
        let axis = match cell.lookup(&name) {
            Some(Symbol::Conveyor(id)) => Some(id),
            Some(Symbol::Axis(_)) => {
                self.diags
                    .error(
                        "axis-not-conveyor",
                        format!("`{name}` is a gantry axis, not a conveyor"),
                        ns,
                    )
                    .help("move axes with a `move` step");
                None
            }
            other => {
                let what = other.map_or(String::new(), |s| format!(" (it is {})", s.describe()));
                let help = cell
                    .suggest(&name, |s| matches!(s, Symbol::Conveyor(_)))
                    .map_or(
                        "conveyors are listed under `[conveyors]` in the cell file".into(),
                        |n| format!("did you mean `{n}`?"),
                    );
                self.diags
                    .error(
                        "unknown-conveyor",
                        format!("no conveyor is called `{name}`{what}"),
                        ns,
                    )
                    .label("unknown conveyor")
                    .help(help);
                None
            }
        };
        let max = axis.map_or(f64::INFINITY, |a| cell.axis(a).max_velocity);
        let default = axis
            .and_then(|a| cell.conveyor_speeds.get(&a).copied())
            .unwrap_or(max / 2.0);
        let speed_units_s = match self.read_speed(tab) {
            Some((Speed::Percent(p), _)) => max * p / 100.0,
            Some((Speed::Velocity(v), s)) => {
                if v.value > max * (1.0 + 1e-9) {
                    self.diags
                        .error(
                            "speed-over-max",
                            format!(
                                "speed {v} is above the conveyor's max_velocity ({} mm/s)",
                                trim_float(max)
                            ),
                            s,
                        )
                        .label("too fast")
                        .help(format!("at most {} mm/s", trim_float(max)));
                }
                v.value
            }
            None => default,
        };
        let action = match tab.str("action").map(|a| a.0).as_deref() {
            Some("stop") => ConveyorAction::Stop,
            Some("index") => match tab.qty("distance") {
                Some((q, _)) => ConveyorAction::Index(q.value),
                None => {
                    self.diags
                        .error(
                            "index-without-distance",
                            "an index needs a distance",
                            tab.get("action").map_or(tab.span, |e| e.value),
                        )
                        .help("add `distance = \"150 mm\"` (one pitch)");
                    ConveyorAction::Index(0.0)
                }
            },
            Some(_) => ConveyorAction::Run,
            None => {
                self.diags
                    .error(
                        "conveyor-without-action",
                        format!("what should conveyor `{name}` do?"),
                        ns,
                    )
                    .help("add `action = \"run\"`, `\"stop\"` or `\"index\"` (with `distance`)");
                ConveyorAction::Run
            }
        };
        if !matches!(action, ConveyorAction::Index(_)) {
            if let Some(e) = tab.get("distance") {
                self.diags.warning(
                    "ignored-key",
                    "`distance` is only used by `action = \"index\"`",
                    e.key,
                );
            }
        }
        Kind::Conveyor {
            axis,
            action,
            speed_units_s,
        }
    }
}

// Checks across the whole set of sequences ---------------------------------------------------

/// Resources a step list commands, for the parallel-branch check.
#[derive(Debug, Clone, Default)]
struct Uses {
    axes: BTreeSet<AxisId>,
    outputs: BTreeSet<OutputId>,
}

pub(crate) struct SequenceSet<'c> {
    pub cell: &'c Cell,
    pub seqs: Vec<SequenceFile>,
    /// Sequences whose files did not parse (already reported): not "unknown".
    pub unparsed: Vec<String>,
}

impl SequenceSet<'_> {
    pub fn find(&self, name: &str) -> Option<usize> {
        self.seqs.iter().position(|s| s.name == name)
    }
}

impl Reader<'_> {
    /// Checks that need all sequences: calls, gotos, reachability, parallel conflicts.
    pub(crate) fn check_sequences(&mut self, set: &SequenceSet<'_>, entry: Option<&Named>) {
        let names: Vec<&str> = set.seqs.iter().map(|s| s.name.as_str()).collect();
        // Calls resolve.
        for seq in &set.seqs {
            for step in &seq.steps {
                if let Kind::Call((callee, cs)) = &step.kind {
                    if set.find(callee).is_none() && !set.unparsed.contains(callee) {
                        let help = did_you_mean(callee, names.iter().copied()).map_or_else(
                            || format!("sequences are {}", one_of_list(names.iter().copied())),
                            |n| format!("did you mean `{n}`?"),
                        );
                        self.diags
                            .error(
                                "unknown-sequence",
                                format!("no sequence is called `{callee}`"),
                                *cs,
                            )
                            .label("no such file in the sequences folder")
                            .help(help);
                    }
                }
            }
        }
        self.check_call_cycles(set);
        for seq in &set.seqs {
            self.check_gotos(seq);
            self.check_reachability(seq);
        }
        let mut memo = HashMap::new();
        for (i, seq) in set.seqs.iter().enumerate() {
            for step in &seq.steps {
                if let Kind::Parallel(branches) = &step.kind {
                    let uses: Vec<Uses> = branches
                        .iter()
                        .map(|b| block_uses(set, i, *b, &mut memo, &mut Vec::new()))
                        .collect();
                    for j in 0..uses.len() {
                        for k in 0..j {
                            let mut shared: Vec<String> = uses[j]
                                .axes
                                .intersection(&uses[k].axes)
                                .map(|a| format!("axis `{}`", set.cell.axis(*a).config.name))
                                .collect();
                            shared.extend(uses[j].outputs.intersection(&uses[k].outputs).map(
                                |o| format!("output `{}`", set.cell.outputs[o.index()].0.name),
                            ));
                            let what = match shared.len() {
                                0 => None,
                                1 => Some(shared[0].clone()),
                                n => Some(format!(
                                    "{} and {}",
                                    shared[..n - 1].join(", "),
                                    shared[n - 1]
                                )),
                            };
                            if let Some(what) = what {
                                let bname = |b: BlockIx, n: usize| {
                                    seq.blocks[b]
                                        .name
                                        .clone()
                                        .map_or(format!("branch {}", n + 1), |n| {
                                            format!("branch `{n}`")
                                        })
                                };
                                let first_step = seq.blocks[branches[j]]
                                    .steps
                                    .first()
                                    .map_or(step.span, |s| seq.steps[*s].span);
                                self.diags
                                    .error("parallel-conflict", format!("{} and {} both command {what}", bname(branches[k], k), bname(branches[j], j)), first_step)
                                    .label(format!("{} starts here", bname(branches[j], j)))
                                    .also(step.span, "the parallel step")
                                    .help("branches run at the same time: give each axis and output to one branch only");
                            }
                        }
                    }
                }
            }
        }
        if let Some((name, s)) = entry {
            if set.find(name).is_none() && !set.unparsed.contains(name) {
                let help = did_you_mean(name, names.iter().copied()).map_or_else(
                    || format!("sequences found: {}", one_of_list(names.iter().copied())),
                    |n| format!("did you mean `{n}`?"),
                );
                self.diags
                    .error(
                        "unknown-sequence",
                        format!("no sequence is called `{name}`"),
                        *s,
                    )
                    .label("no such file in the sequences folder")
                    .help(help);
            }
        }
    }

    fn check_call_cycles(&mut self, set: &SequenceSet<'_>) {
        // Depth-first search with colours; each back edge is one cycle, reported at its call.
        let n = set.seqs.len();
        let mut state = vec![0u8; n];
        let mut path: Vec<(usize, Span)> = Vec::new();
        fn visit(
            r: &mut Reader<'_>,
            set: &SequenceSet<'_>,
            i: usize,
            state: &mut Vec<u8>,
            path: &mut Vec<(usize, Span)>,
        ) {
            state[i] = 1;
            for step in &set.seqs[i].steps {
                let Kind::Call((callee, cs)) = &step.kind else {
                    continue;
                };
                let Some(j) = set.find(callee) else { continue };
                if state[j] == 1 {
                    // The sequences being visited, outermost first; the circle starts at `j`.
                    let mut visiting: Vec<usize> = path.iter().map(|p| p.0).collect();
                    visiting.push(i);
                    let start = visiting.iter().position(|&s| s == j).unwrap_or(0);
                    let mut chain: Vec<&str> = visiting[start..]
                        .iter()
                        .map(|&s| set.seqs[s].name.as_str())
                        .collect();
                    chain.push(callee);
                    let shown = if i == j {
                        format!("`{callee}` calls itself")
                    } else {
                        format!(
                            "calls go round in a circle: {}",
                            chain
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(" → ")
                        )
                    };
                    r.diags
                        .error("call-cycle", shown, *cs)
                        .label("this call closes the circle")
                        .help("a sequence may not call itself, directly or through others; repeat steps with `repeat` instead");
                } else if state[j] == 0 {
                    path.push((i, *cs));
                    visit(r, set, j, state, path);
                    path.pop();
                }
            }
            state[i] = 2;
        }
        for i in 0..n {
            if state[i] == 0 {
                visit(self, set, i, &mut state, &mut path);
            }
        }
    }

    fn check_gotos(&mut self, seq: &SequenceFile) {
        for (ix, step) in seq.steps.iter().enumerate() {
            let target = match &step.kind {
                Kind::Goto(t) => Some(t),
                Kind::Wait {
                    on_timeout: Timeout::Goto(t),
                    ..
                } => Some(t),
                _ => None,
            };
            let Some((name, ns)) = target else { continue };
            let Some(&t) = seq.by_name.get(name) else {
                let mut names: Vec<&str> = seq.by_name.keys().map(String::as_str).collect();
                names.sort_unstable();
                let help = did_you_mean(name, names.iter().copied())
                    .map_or("give the target step a `name`".into(), |n| {
                        format!("did you mean `{n}`?")
                    });
                self.diags
                    .error(
                        "unknown-step",
                        format!("sequence `{}` has no step `{name}`", seq.name),
                        *ns,
                    )
                    .label("unknown step")
                    .help(help);
                continue;
            };
            // The target must be in this step's block or an enclosing one, not across a branch.
            let mut b = seq.steps[ix].block;
            let target_block = seq.steps[t].block;
            let mut ok = false;
            loop {
                if b == target_block {
                    ok = true;
                    break;
                }
                if seq.blocks[b].is_branch {
                    break;
                }
                match seq.blocks[b].owner {
                    Some(o) => b = seq.steps[o].block,
                    None => break,
                }
            }
            if !ok {
                let why = if seq.blocks[seq.steps[ix].block].is_branch || crosses_branch(seq, ix) {
                    "a `goto` cannot leave a parallel branch"
                } else {
                    "a `goto` cannot jump into a repeat or a parallel branch"
                };
                self.diags
                    .error(
                        "goto-scope",
                        format!("cannot go to `{name}` from here"),
                        *ns,
                    )
                    .label(why)
                    .also(
                        seq.steps[t]
                            .name
                            .as_ref()
                            .map_or(seq.steps[t].span, |n| n.1),
                        "target",
                    )
                    .help("jump only to steps of the same list or of a list that encloses it");
            }
        }
    }

    fn check_reachability(&mut self, seq: &SequenceFile) {
        let n = seq.steps.len();
        let mut reached = vec![false; n];
        let mut work: Vec<StepIx> = seq.blocks[0].steps.first().copied().into_iter().collect();
        while let Some(ix) = work.pop() {
            if reached[ix] {
                continue;
            }
            reached[ix] = true;
            let step = &seq.steps[ix];
            let falls_through = !matches!(step.kind, Kind::Goto(_) | Kind::Fault(_));
            if falls_through {
                let block = &seq.blocks[step.block];
                if let Some(pos) = block.steps.iter().position(|s| *s == ix) {
                    if let Some(next) = block.steps.get(pos + 1) {
                        work.push(*next);
                    }
                }
            }
            match &step.kind {
                Kind::Goto((t, _))
                | Kind::Wait {
                    on_timeout: Timeout::Goto((t, _)),
                    ..
                } => {
                    if let Some(&t) = seq.by_name.get(t) {
                        work.push(t);
                    }
                }
                Kind::Parallel(bs) => work.extend(
                    bs.iter()
                        .filter_map(|b| seq.blocks[*b].steps.first().copied()),
                ),
                Kind::Repeat { body, .. } => work.extend(seq.blocks[*body].steps.first().copied()),
                _ => {}
            }
        }
        for block in &seq.blocks {
            if block.owner.is_some_and(|o| !reached[o]) {
                continue;
            }
            for (pos, &ix) in block.steps.iter().enumerate() {
                let prev_reached = pos == 0 || reached[block.steps[pos - 1]];
                if !reached[ix] && prev_reached {
                    let after = pos.checked_sub(1).map(|p| &seq.steps[block.steps[p]]);
                    let help = match after.map(|s| &s.kind) {
                        Some(Kind::Goto(_)) => {
                            "it follows a `goto`; name it and jump to it, or remove it"
                        }
                        Some(Kind::Fault(_)) => "it follows a `fault` step, which stops the cell",
                        _ => "nothing leads to it; name it and jump to it, or remove it",
                    };
                    self.diags
                        .warning(
                            "unreachable-step",
                            format!("{} is never reached", seq.steps[ix].display()),
                            seq.steps[ix].span,
                        )
                        .label("unreachable")
                        .help(help);
                }
            }
        }
    }
}

fn crosses_branch(seq: &SequenceFile, ix: StepIx) -> bool {
    let mut b = seq.steps[ix].block;
    loop {
        if seq.blocks[b].is_branch {
            return true;
        }
        match seq.blocks[b].owner {
            Some(o) => b = seq.steps[o].block,
            None => return false,
        }
    }
}

fn block_uses(
    set: &SequenceSet<'_>,
    seq_ix: usize,
    block: BlockIx,
    memo: &mut HashMap<usize, Uses>,
    stack: &mut Vec<usize>,
) -> Uses {
    let seq = &set.seqs[seq_ix];
    let mut u = Uses::default();
    for &s in &seq.blocks[block].steps {
        match &seq.steps[s].kind {
            Kind::Move { resolved, .. } => u.axes.extend(resolved.iter().map(|r| r.0)),
            Kind::Set(w) => u.outputs.extend(w.iter().map(|w| w.0)),
            Kind::Conveyor { axis: Some(a), .. } => {
                u.axes.insert(*a);
            }
            Kind::Parallel(bs) => {
                for b in bs {
                    let inner = block_uses(set, seq_ix, *b, memo, stack);
                    u.axes.extend(inner.axes);
                    u.outputs.extend(inner.outputs);
                }
            }
            Kind::Repeat { body, .. } => {
                let inner = block_uses(set, seq_ix, *body, memo, stack);
                u.axes.extend(inner.axes);
                u.outputs.extend(inner.outputs);
            }
            Kind::Call((callee, _)) => {
                let Some(j) = set.find(callee) else { continue };
                if stack.contains(&j) {
                    continue; // a cycle, reported elsewhere
                }
                let inner = match memo.get(&j) {
                    Some(m) => m.clone(),
                    None => {
                        stack.push(j);
                        let m = block_uses(set, j, 0, memo, stack);
                        stack.pop();
                        memo.insert(j, m.clone());
                        m
                    }
                };
                u.axes.extend(inner.axes);
                u.outputs.extend(inner.outputs);
            }
            _ => {}
        }
    }
    u
}

/// For the report: which step kinds a sequence set uses.
pub(crate) fn count_steps(seq: &SequenceFile) -> usize {
    seq.steps.len()
}
