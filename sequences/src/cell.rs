//! The cell file: reading it, and every check that needs only the cell.
//!
//! Reading resolves names to indices as it goes and keeps each definition's span, so a later
//! problem ("teach point `pick` is outside the soft limits of `x`") can point at the line that
//! caused it.

use std::collections::HashMap;

use toml_edit::TableLike;

use crate::busload::{self, BusLoad};
use crate::diag::Span;
use crate::expr::{self, Expr, Operand};
use crate::pdo::{self, Direction, Pdo, Transmission};
use crate::program::{
    AxisConfig, AxisId, AxisState, BusConfig, BusId, CondOp, DeviceConfig, DeviceId, DeviceKind,
    FaultClass, InputId, IoPoint, OutputId, ResyncPolicy, StopCategories,
};
use crate::quantity::{Dim, Quantity, trim_float};
use crate::reader::{Named, Reader, Tab, did_you_mean, one_of_list, span_or};
use crate::spec;

/// A string value's span and, when it is written plainly, the span of its contents — so
/// offsets into the decoded string (a condition, a quantity) map onto the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrSpan {
    pub outer: Span,
    pub inner: Option<Span>,
}

impl StrSpan {
    pub fn new(reader_text: &str, outer: Span, value: &str) -> Self {
        let inner = (reader_text.len() >= 2 && reader_text[1..reader_text.len() - 1] == *value)
            .then(|| outer.within(1..reader_text.len() - 1));
        StrSpan { outer, inner }
    }

    pub fn at(&self, range: std::ops::Range<usize>) -> Span {
        match self.inner {
            Some(i) => {
                if range.start == range.end {
                    // An empty range (end of text) still needs a caret.
                    let s = i.within(range.start.saturating_sub(1)..range.start);
                    if s.start == s.end { i } else { s }
                } else {
                    i.within(range)
                }
            }
            None => self.outer,
        }
    }
}

/// What a name in the cell refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbol {
    Axis(AxisId),
    Conveyor(AxisId),
    Input(InputId),
    Output(OutputId),
    TeachPoint(usize),
}

impl Symbol {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Symbol::Axis(_) => "an axis",
            Symbol::Conveyor(_) => "a conveyor",
            Symbol::Input(_) => "an input",
            Symbol::Output(_) => "an output",
            Symbol::TeachPoint(_) => "a teach point",
        }
    }
}

/// A teach point: a name and some axis coordinates (user units).
#[derive(Debug, Clone)]
pub(crate) struct TeachPoint {
    pub span: Span,
    pub coords: Vec<(AxisId, f64, Span)>,
}

/// An axis with the facts checks need in user units.
#[derive(Debug, Clone)]
pub(crate) struct AxisDef {
    pub config: AxisConfig,
    /// `max_velocity` in user units per second, and where it was written.
    pub max_velocity: f64,
    pub min: f64,
    pub max: f64,
    pub min_span: Span,
    pub max_span: Span,
}

impl AxisDef {
    pub fn unit(&self) -> &'static str {
        if self.config.rotary { "deg" } else { "mm" }
    }

    pub fn length_dim(&self) -> Dim {
        if self.config.rotary {
            Dim::Angle
        } else {
            Dim::Length
        }
    }

    pub fn velocity_dim(&self) -> Dim {
        if self.config.rotary {
            Dim::AngularVelocity
        } else {
            Dim::LinearVelocity
        }
    }

    pub fn counts(&self, units: f64) -> i64 {
        (units * self.config.counts_per_unit).round() as i64
    }
}

/// `[resync]` as read; its condition is compiled with the cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResyncDef {
    pub auto_resume: u16,
    pub persist: Option<Vec<CondOp>>,
    pub hold_message: String,
}

/// An interlock as read; its condition is compiled with the cell, its step guards once the
/// sequences are known.
#[derive(Debug, Clone)]
pub(crate) struct InterlockDef {
    pub name: String,
    pub require: Vec<CondOp>,
    pub guards: GuardsDef,
}

#[derive(Debug, Clone)]
pub(crate) enum GuardsDef {
    AllMotion,
    Axes(u64),
    Steps(Vec<Named>),
}

/// Everything read from the cell file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    pub name: String,
    pub sequence: Option<Named>,
    pub sequences_dir: String,
    pub buses: Vec<(BusConfig, Span)>,
    pub devices: Vec<(DeviceConfig, Span)>,
    pub axes: Vec<AxisDef>,
    pub inputs: Vec<(IoPoint, Span)>,
    pub outputs: Vec<(IoPoint, Span)>,
    pub teach_points: Vec<TeachPoint>,
    pub interlocks: Vec<InterlockDef>,
    pub stop_categories: StopCategories,
    pub resync: ResyncDef,
    pub symbols: HashMap<String, (Symbol, Span)>,
    pub bus_loads: Vec<BusLoad>,
    pub bus_spans: Vec<BusSpans>,
    /// Default belt speed of each conveyor, mm/s.
    pub conveyor_speeds: HashMap<AxisId, f64>,
}

impl Cell {
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).map(|(s, _)| *s)
    }

    /// Close names of the wanted kinds, for "did you mean".
    pub fn suggest(&self, name: &str, want: impl Fn(Symbol) -> bool) -> Option<String> {
        let names: Vec<&str> = self
            .symbols
            .iter()
            .filter(|(_, (s, _))| want(*s))
            .map(|(n, _)| n.as_str())
            .collect();
        let mut sorted = names;
        sorted.sort_unstable();
        did_you_mean(name, sorted).map(str::to_owned)
    }

    pub fn axis(&self, id: AxisId) -> &AxisDef {
        &self.axes[id.index()]
    }

    pub fn teach_point(&self, name: &str) -> Option<&TeachPoint> {
        match self.lookup(name) {
            Some(Symbol::TeachPoint(i)) => self.teach_points.get(i),
            _ => None,
        }
    }
}

impl Reader<'_> {
    fn str_span(&self, span: Span, value: &str) -> StrSpan {
        StrSpan::new(self.sources.text(span), span, value)
    }

    /// Reads and checks the cell file.
    pub(crate) fn read_cell(&mut self, root: &dyn TableLike) -> Cell {
        let file_span = self.whole_file();
        let top = self.table(root, &spec::CELL_FILE, file_span, "the cell file".into());
        let mut cell = Cell {
            sequences_dir: "sequences".into(),
            ..Cell::default()
        };
        let mut start_at = None;
        if let Some(e) = top.get("cell") {
            if let Some(t) = e.item.as_table_like() {
                let tab = self.table(t, &spec::CELL, e.key, "`[cell]`".into());
                cell.name = tab.str("name").map(|n| n.0).unwrap_or_default();
                cell.sequence = tab.str("sequence");
                if let Some((dir, _)) = tab.str("sequences_dir") {
                    cell.sequences_dir = dir;
                }
                if let Some(start) = tab.str("start_at") {
                    start_at = Some(start);
                }
            }
        }
        self.read_buses(&top, &mut cell);
        self.read_devices(&top, &mut cell);
        self.read_axes(&top, &mut cell);
        self.read_conveyors(&top, &mut cell);
        self.read_io(&top, &mut cell, true);
        self.read_io(&top, &mut cell, false);
        self.read_teach_points(&top, &mut cell);
        self.set_start_positions(&mut cell, start_at);
        self.read_interlocks(&top, &mut cell);
        self.read_stop_categories(&top, &mut cell);
        self.read_resync(&top, &mut cell);
        self.check_bus_load(&mut cell);
        cell
    }

    fn define(&mut self, cell: &mut Cell, name: &str, span: Span, sym: Symbol) {
        if let Some((prev, prev_span)) = cell.symbols.get(name) {
            self.diags
                .error(
                    "duplicate-name",
                    format!("`{name}` is already {}", prev.describe()),
                    span,
                )
                .label(format!("defined again as {}", sym.describe()))
                .also(*prev_span, "first defined here")
                .help("axes, conveyors, inputs, outputs and teach points share one set of names, so that conditions can use them; rename one");
            return;
        }
        if expr_keyword(name) {
            self.diags
                .error(
                    "reserved-name",
                    format!("`{name}` is a word of the condition language"),
                    span,
                )
                .help("choose another name");
        }
        cell.symbols.insert(name.to_owned(), (sym, span));
    }

    fn named_tables<'t>(
        &mut self,
        top: &Tab<'t>,
        key: &str,
    ) -> Vec<(String, Span, &'t dyn TableLike)> {
        let Some(e) = top.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, span, item) in self.named(e.item, e.key) {
            match item.as_table_like() {
                Some(t) => out.push((name, span, t)),
                None => {
                    let vs = span_or(span, item.span());
                    self.diags
                        .error("wrong-type", format!("`{key}.{name}` must be a table"), vs)
                        .help(format!("write it as `[{key}.{name}]` followed by its keys"));
                }
            }
        }
        out
    }

    fn read_buses(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        for (name, span, t) in self.named_tables(top, "buses") {
            let tab = self.table(t, &spec::BUS, span, format!("bus `{name}`"));
            let bitrate = tab.qty("bitrate").map_or(1e6, |q| q.0.value);
            let sync = tab.qty("sync_period");
            if let Some((q, s)) = sync {
                if q.value < 250e-6 || q.value > 0.1 {
                    self.diags
                        .error("sync-period-range", format!("a SYNC period of {} is not practical", show_time(q.value)), s)
                        .help("CANopen cells run SYNC between 0.25 ms and 100 ms; 2 to 4 ms suits a five-drive cell at 1 Mbit/s");
                }
            }
            if let Some((q, s)) = tab.qty("bitrate") {
                if ![10e3, 20e3, 50e3, 100e3, 125e3, 250e3, 500e3, 800e3, 1e6].contains(&q.value) {
                    self.diags
                        .error(
                            "bitrate",
                            format!("{} is not a CANopen bit rate", show_bitrate(q.value)),
                            s,
                        )
                        .help(
                            "CiA 301 bit rates: 10, 20, 50, 125, 250, 500, 800 kbit/s and 1 Mbit/s",
                        );
                }
            }
            let ceiling = tab.qty("load_ceiling").map_or(70.0, |q| q.0.value);
            if let Some((q, s)) = tab.qty("load_ceiling") {
                if q.value <= 0.0 || q.value > 100.0 {
                    self.diags.error(
                        "load-ceiling",
                        "the load ceiling must be between 0 and 100 %",
                        s,
                    );
                }
            }
            let hb = tab.qty("controller_heartbeat").map_or(0.1, |q| q.0.value);
            cell.buses.push((
                BusConfig {
                    name: name.clone(),
                    interface: tab.str("interface").map(|s| s.0).unwrap_or_default(),
                    bitrate_bit_s: bitrate as u32,
                    sync_period_us: sync.map_or(2000, |q| (q.0.value * 1e6).round() as u32),
                    sync_counter: tab.bool("sync_counter").is_some_and(|b| b.0),
                    controller_node: tab.int("controller_node").map_or(127, |n| n.0 as u8),
                    controller_heartbeat_ms: (hb * 1000.0).round().clamp(0.0, 65535.0) as u16,
                    load_ceiling_percent: ceiling,
                },
                span,
            ));
            cell.bus_spans.push(BusSpans {
                sync: sync.map_or(span, |s| s.1),
                controller_node: tab.get("controller_node").map_or(span, |e| e.value),
            });
        }
        if cell.buses.is_empty() && top.has("buses") {
            self.diags
                .error("no-bus", "the cell has no bus", top.get("buses").map_or(top.span, |e| e.key))
                .help("add one: `[buses.can0]` with interface, bitrate, sync_period and controller_node");
        }
    }

    fn read_devices(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        let mut by_node: HashMap<(usize, u8), Span> = HashMap::new();
        for (name, span, t) in self.named_tables(top, "devices") {
            let tab = self.table(t, &spec::DEVICE, span, format!("device `{name}`"));
            let bus = match tab.str("bus") {
                Some((b, s)) => match cell.buses.iter().position(|(c, _)| c.name == b) {
                    Some(i) => i,
                    None => {
                        let names: Vec<&str> =
                            cell.buses.iter().map(|(c, _)| c.name.as_str()).collect();
                        let help = match did_you_mean(&b, names.iter().copied()) {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => format!("buses are {}", one_of_list(names)),
                        };
                        self.diags
                            .error("unknown-bus", format!("no bus is called `{b}`"), s)
                            .label("unknown bus")
                            .help(help);
                        0
                    }
                },
                None => {
                    if cell.buses.len() > 1 {
                        self.diags
                            .error(
                                "which-bus",
                                format!("device `{name}` does not say which bus it is on"),
                                span,
                            )
                            .help("the cell has several buses: add `bus = \"...\"`");
                    }
                    0
                }
            };
            let node = tab.int("node").map_or(0, |n| n.0 as u8);
            if let Some((_, s)) = tab.int("node") {
                if let Some(prev) = by_node.get(&(bus, node)) {
                    self.diags
                        .error(
                            "duplicate-node",
                            format!("node {node} is already taken on this bus"),
                            s,
                        )
                        .label("second device with this node id")
                        .also(*prev, "first here")
                        .help("every device on a bus needs its own node id");
                } else {
                    by_node.insert((bus, node), s);
                }
                if let Some((b, _)) = cell.buses.get(bus) {
                    if b.controller_node == node {
                        self.diags
                            .error(
                                "node-is-controller",
                                format!("node {node} is the controller's own node id"),
                                s,
                            )
                            .also(
                                cell.bus_spans.get(bus).map_or(s, |b| b.controller_node),
                                "controller_node",
                            )
                            .help("give the device or the controller another node id");
                    }
                }
            }
            let kind = match tab.str("kind").map(|k| k.0).as_deref() {
                Some("stepper") => DeviceKind::Stepper,
                Some("conveyor") => DeviceKind::Conveyor,
                Some("io") => DeviceKind::Io,
                _ => DeviceKind::Servo,
            };
            let pdos = self.read_pdos(&tab, &name, span);
            let heartbeat_ms = tab
                .qty("heartbeat")
                .map_or(100.0, |q| q.0.value * 1000.0)
                .round()
                .clamp(0.0, 65535.0) as u16;
            cell.devices.push((
                DeviceConfig {
                    name,
                    bus: BusId(bus as u16),
                    node,
                    kind,
                    heartbeat_ms,
                    pdos,
                },
                span,
            ));
        }
    }

    fn read_pdos(&mut self, tab: &Tab<'_>, name: &str, span: Span) -> Vec<Pdo> {
        let profile = tab.str("profile");
        let has_layout = tab.has("rpdo") || tab.has("tpdo");
        if let Some((p, s)) = &profile {
            if has_layout {
                self.diags
                    .error(
                        "profile-and-layout",
                        format!("device `{name}` has both a `profile` and its own PDOs"),
                        *s,
                    )
                    .help("keep one: the named profile, or the `rpdo` / `tpdo` lists");
            }
            if let Some((kind, ks)) = tab.str("kind") {
                if !pdo::profile_kinds(p).contains(&kind.as_str()) {
                    self.diags
                        .warning(
                            "profile-for-other-kind",
                            format!(
                                "profile `{p}` is meant for {} devices, not `{kind}`",
                                one_of_list(pdo::profile_kinds(p).iter().copied())
                            ),
                            *s,
                        )
                        .also(ks, "kind");
                }
            }
            return pdo::profile(p).unwrap_or_default();
        }
        if !has_layout {
            // A layout written with a refused value was reported already; only a device
            // with no layout at all is told it has none.
            if ["profile", "rpdo", "tpdo"].iter().any(|k| tab.written(k)) {
                return Vec::new();
            }
            self.diags
                .error("no-pdo-layout", format!("device `{name}` has no PDO layout"), span)
                .help(format!("add a named profile, e.g. `profile = \"servo_csp\"` ({}), or `rpdo` / `tpdo` lists", one_of_list(spec::PROFILE_NAMES.iter().copied())));
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, direction) in [("rpdo", Direction::Rpdo), ("tpdo", Direction::Tpdo)] {
            let Some(e) = tab.get(key) else { continue };
            let tables = self.tables_of(e.item, e.value);
            if tables.len() > 4 {
                self.diags
                    .error(
                        "too-many-pdos",
                        format!(
                            "device `{name}` has {} {key}s; the pre-defined connection set has 4",
                            tables.len()
                        ),
                        e.key,
                    )
                    .help("map more objects into each PDO, up to 8 bytes");
            }
            for (i, (t, ts)) in tables.into_iter().enumerate().take(4) {
                let pt = self.table(
                    t,
                    &spec::PDO,
                    ts,
                    format!("{} {}{}", name, key.to_uppercase(), i + 1),
                );
                let mut map = Vec::new();
                for (obj, os) in pt.names("map").unwrap_or_default() {
                    match pdo::parse_object(&obj) {
                        Ok(m) => map.push(m),
                        Err(err) => {
                            let help = match &err {
                                pdo::ObjectError::Unknown { suggestion: Some(s), .. } => format!("did you mean `{s}`?"),
                                _ => "name a CiA 402 / 401 object (`statusword`, `position_actual`, `digital_inputs`, …) or write `0xINDEX:SUB/BITS`".into(),
                            };
                            self.diags
                                .error("unknown-object", err.to_string(), os)
                                .help(help);
                        }
                    }
                }
                let p = Pdo {
                    direction,
                    number: (i + 1) as u8,
                    map,
                    transmission: Transmission::Sync { every: 1 },
                };
                let bits: u32 = p.map.iter().map(|m| u32::from(m.bits)).sum();
                if bits > 64 {
                    self.diags
                        .error(
                            "pdo-too-long",
                            format!("{} maps {bits} bits; a CAN frame carries 64", p.label()),
                            pt.get("map").map_or(ts, |e| e.value),
                        )
                        .help("split the objects over two PDOs");
                }
                let transmission = match pt.str("transmission").map(|t| t.0).as_deref() {
                    Some("event") => {
                        let inhibit = pt.qty("inhibit").map(|q| (q.0.value * 1e6).round() as u32);
                        if inhibit.is_none_or(|i| i == 0) {
                            self.diags
                                .error("unbounded-pdo", format!("event-driven {} of `{name}` has no inhibit time, so its bus load has no bound", p.label()), pt.get("transmission").map_or(ts, |e| e.value))
                                .help("add `inhibit = \"10 ms\"` (the shortest time between two frames); the load is counted at one frame per inhibit time");
                        }
                        Transmission::Event {
                            inhibit_us: inhibit,
                            event_timer_ms: pt
                                .qty("event_timer")
                                .map(|q| (q.0.value * 1000.0).round() as u32),
                        }
                    }
                    _ => {
                        for k in ["inhibit", "event_timer"] {
                            if let Some(e) = pt.get(k) {
                                self.diags
                                    .warning(
                                        "ignored-key",
                                        format!("`{k}` only applies to `transmission = \"event\"`"),
                                        e.key,
                                    )
                                    .help("remove it, or make the PDO event-driven");
                            }
                        }
                        Transmission::Sync {
                            every: pt.int("every").map_or(1, |n| n.0 as u8),
                        }
                    }
                };
                out.push(Pdo { transmission, ..p });
            }
        }
        out
    }

    fn device_ref(
        &mut self,
        cell: &Cell,
        tab: &Tab<'_>,
        kinds: &[DeviceKind],
        what: &str,
    ) -> Option<DeviceId> {
        let (name, s) = tab.str("device")?;
        let Some(i) = cell.devices.iter().position(|(d, _)| d.name == name) else {
            let names: Vec<&str> = cell.devices.iter().map(|(d, _)| d.name.as_str()).collect();
            let help = match did_you_mean(&name, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("devices are {}", one_of_list(names)),
            };
            self.diags
                .error("unknown-device", format!("no device is called `{name}`"), s)
                .label("unknown device")
                .help(help);
            return None;
        };
        let kind = cell.devices[i].0.kind;
        if !kinds.contains(&kind) {
            self.diags
                .error(
                    "device-kind",
                    format!(
                        "`{name}` is {} device, it cannot drive {what}",
                        kind_name(kind)
                    ),
                    s,
                )
                .also(cell.devices[i].1, "defined here")
                .help(format!(
                    "{what} needs a device of kind {}",
                    one_of_list(kinds.iter().map(|k| kind_word(*k)))
                ));
        }
        Some(DeviceId(i as u16))
    }

    fn read_axes(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        let mut used: HashMap<u16, Span> = HashMap::new();
        for (name, span, t) in self.named_tables(top, "axes") {
            let tab = self.table(t, &spec::AXIS, span, format!("axis `{name}`"));
            let device = self.device_ref(
                cell,
                &tab,
                &[DeviceKind::Servo, DeviceKind::Stepper],
                "an axis",
            );
            if let (Some(d), Some(e)) = (device, tab.get("device")) {
                if let Some(prev) = used.insert(d.0, e.value) {
                    self.diags
                        .error(
                            "device-used-twice",
                            "this drive already drives another axis",
                            e.value,
                        )
                        .also(prev, "first used here")
                        .help("one drive moves one axis");
                }
            }
            let scale = tab.qty("scale");
            let rotary = scale.is_some_and(|(q, _)| q.dim.is_angular());
            let counts_per_unit = scale.map_or(1.0, |q| q.0.value);
            if let Some((q, s)) = scale {
                if q.value <= 0.0 {
                    self.diags
                        .error("scale", "the scale must be positive", s)
                        .help("invert the direction in the drive (0x607E), not here");
                }
            }
            // Every length-like value of a rotary axis must be an angle and vice versa.
            let unit_ok = |reader: &mut Self, key: &str| -> Option<(f64, Span)> {
                let (q, s) = tab.qty(key)?;
                if scale.is_some() && q.dim.is_angular() != rotary {
                    reader
                        .diags
                        .error(
                            "axis-unit",
                            format!(
                                "`{key}` of axis `{name}` is {}, but the axis is {}",
                                q.dim.describe(),
                                if rotary {
                                    "rotary (its scale is per deg)"
                                } else {
                                    "linear (its scale is per mm)"
                                }
                            ),
                            s,
                        )
                        .help(format!("write it in {}", if rotary { "deg" } else { "mm" }));
                    return None;
                }
                Some((q.value, s))
            };
            let min = unit_ok(self, "min_position");
            let max = unit_ok(self, "max_position");
            let vmax = unit_ok(self, "max_velocity");
            let amax = unit_ok(self, "max_acceleration");
            let jmax = unit_ok(self, "max_jerk");
            let fe = unit_ok(self, "following_error");
            let inpos = unit_ok(self, "in_position");
            for (v, key) in [
                (vmax, "max_velocity"),
                (amax, "max_acceleration"),
                (jmax, "max_jerk"),
                (fe, "following_error"),
            ] {
                if let Some((x, s)) = v {
                    if x <= 0.0 {
                        self.diags.error(
                            "not-positive",
                            format!("`{key}` must be more than zero"),
                            s,
                        );
                    }
                }
            }
            if let (Some((lo, _)), Some((hi, hs))) = (min, max) {
                if lo >= hi {
                    self.diags
                        .error("limits-order", format!("soft limits are empty: min_position {} is not below max_position {}", trim_float(lo), trim_float(hi)), hs)
                        .help("swap them");
                }
            }
            let mut homing_method = 35i8;
            let mut homing_offset = 0.0;
            if let Some(e) = tab.get("homing") {
                if let Some(ht) = e.item.as_table_like() {
                    let h =
                        self.table(ht, &spec::HOMING, e.key, format!("homing of axis `{name}`"));
                    homing_method = h.int("method").map_or(35, |m| m.0 as i8);
                    if let Some((q, s)) = h.qty("offset") {
                        if q.dim.is_angular() == rotary {
                            homing_offset = q.value;
                        } else {
                            self.diags
                                .error(
                                    "axis-unit",
                                    format!(
                                        "homing offset of axis `{name}` is {}",
                                        q.dim.describe()
                                    ),
                                    s,
                                )
                                .label(format!("{} unit", q.dim.describe()))
                                .help(format!(
                                    "the axis is {}: write the offset in {}",
                                    if rotary { "rotary" } else { "linear" },
                                    if rotary { "deg" } else { "mm" }
                                ));
                        }
                    }
                    if let (Some((q, s)), Some((v, vs))) = (h.qty("speed"), vmax) {
                        if q.value > v {
                            self.diags
                                .error(
                                    "speed-over-max",
                                    format!("homing speed {} is above the axis's max_velocity", q),
                                    s,
                                )
                                .also(vs, "max_velocity")
                                .help("home slower than the axis may move");
                        }
                    }
                }
            }
            let resync = match tab.str("resync").map(|r| r.0).as_deref() {
                Some("rehome") => ResyncPolicy::Rehome,
                _ => ResyncPolicy::Reread,
            };
            let fe_units = fe.map_or(1.0, |f| f.0);
            let id = AxisId(cell.axes.len() as u16);
            let (lo, hi) = (min.map_or(0.0, |m| m.0), max.map_or(0.0, |m| m.0));
            let c = |u: f64| (u * counts_per_unit).round() as i64;
            cell.axes.push(AxisDef {
                config: AxisConfig {
                    name: name.clone(),
                    device: device.unwrap_or(DeviceId(0)),
                    conveyor: false,
                    rotary,
                    counts_per_unit,
                    min_position_counts: c(lo),
                    max_position_counts: c(hi),
                    max_velocity_counts_s: vmax.map_or(1.0, |v| v.0) * counts_per_unit,
                    max_acceleration_counts_s2: amax.map_or(1.0, |v| v.0) * counts_per_unit,
                    max_jerk_counts_s3: jmax.map_or(1.0, |v| v.0) * counts_per_unit,
                    following_error_counts: c(fe_units),
                    in_position_counts: c(inpos.map_or(fe_units / 4.0, |v| v.0)).max(1),
                    homing_method,
                    homing_offset_counts: c(homing_offset),
                    resync,
                    start_position_counts: c(homing_offset.clamp(lo, hi.max(lo))),
                },
                max_velocity: vmax.map_or(f64::INFINITY, |v| v.0),
                min: lo,
                max: hi,
                min_span: min.map_or(span, |v| v.1),
                max_span: max.map_or(span, |v| v.1),
            });
            self.define(cell, &name, span, Symbol::Axis(id));
        }
    }

    fn read_conveyors(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        for (name, span, t) in self.named_tables(top, "conveyors") {
            let tab = self.table(t, &spec::CONVEYOR, span, format!("conveyor `{name}`"));
            let device = self.device_ref(cell, &tab, &[DeviceKind::Conveyor], "a conveyor");
            let counts_per_unit = tab.qty("scale").map_or(1.0, |q| q.0.value);
            let vmax = tab.qty("max_velocity");
            let amax = tab.qty("max_acceleration").map_or(1.0, |q| q.0.value);
            // Without a jerk limit, reach full acceleration in 20 ms: gentle on a belt.
            let jmax = tab.qty("max_jerk").map_or(amax / 0.02, |q| q.0.value);
            let vmax_units = vmax.map_or(1.0, |q| q.0.value);
            let speed = match tab.qty("speed") {
                Some((q, s)) if q.dim == Dim::Percent => {
                    self.check_percent(q.value, s);
                    vmax_units * q.value / 100.0
                }
                Some((q, s)) => {
                    if let Some((vq, vs)) = vmax {
                        if q.value > vq.value {
                            self.diags
                                .error(
                                    "speed-over-max",
                                    format!("speed {q} is above the conveyor's max_velocity {vq}"),
                                    s,
                                )
                                .also(vs, "max_velocity");
                        }
                    }
                    q.value
                }
                None => vmax_units / 2.0,
            };
            let id = AxisId(cell.axes.len() as u16);
            cell.axes.push(AxisDef {
                config: AxisConfig {
                    name: name.clone(),
                    device: device.unwrap_or(DeviceId(0)),
                    conveyor: true,
                    rotary: false,
                    counts_per_unit,
                    min_position_counts: i64::MIN,
                    max_position_counts: i64::MAX,
                    max_velocity_counts_s: vmax_units * counts_per_unit,
                    max_acceleration_counts_s2: amax * counts_per_unit,
                    max_jerk_counts_s3: jmax * counts_per_unit,
                    following_error_counts: (5.0 * counts_per_unit).round() as i64,
                    in_position_counts: (0.5 * counts_per_unit).round().max(1.0) as i64,
                    homing_method: 35,
                    homing_offset_counts: 0,
                    resync: ResyncPolicy::Reread,
                    start_position_counts: 0,
                },
                max_velocity: vmax_units,
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
                min_span: span,
                max_span: span,
            });
            cell.conveyor_speeds.insert(id, speed);
            self.define(cell, &name, span, Symbol::Conveyor(id));
        }
    }

    pub(crate) fn check_percent(&mut self, p: f64, s: Span) {
        if p <= 0.0 || p > 100.0 {
            self.diags
                .error(
                    "speed-percent",
                    format!("a speed of {} % is not between 0 and 100 %", trim_float(p)),
                    s,
                )
                .help("percent of the axis's max_velocity: `\"80 %\"`");
        }
    }

    fn read_io(&mut self, top: &Tab<'_>, cell: &mut Cell, inputs: bool) {
        let key = if inputs { "inputs" } else { "outputs" };
        let mut bits: HashMap<(u16, u8), Span> = HashMap::new();
        for (name, span, t) in self.named_tables(top, key) {
            let what = if inputs { "input" } else { "output" };
            let tab = self.table(t, &spec::IO_POINT, span, format!("{what} `{name}`"));
            let device = self.device_ref(cell, &tab, &[DeviceKind::Io], "an I/O point");
            let bit = tab.int("bit").map_or(0, |b| b.0 as u8);
            if let (Some(d), Some((_, bs))) = (device, tab.int("bit")) {
                if let Some(prev) = bits.insert((d.0, bit), bs) {
                    self.diags
                        .error(
                            "bit-used-twice",
                            format!("bit {bit} of this node is already an {what}"),
                            bs,
                        )
                        .also(prev, "first here")
                        .help("every I/O point needs its own bit");
                }
                // The bit must be carried by the node's PDOs, or it is never read or written.
                let dev = &cell.devices[d.index()].0;
                let dir = if inputs {
                    Direction::Tpdo
                } else {
                    Direction::Rpdo
                };
                let base = if inputs { 0x6000 } else { 0x6200 };
                let mapped: u32 = dev
                    .pdos
                    .iter()
                    .filter(|p| p.direction == dir)
                    .flat_map(|p| p.map.iter())
                    .filter(|m| m.index == base)
                    .map(|m| u32::from(m.bits))
                    .sum();
                if u32::from(bit) >= mapped && !dev.pdos.is_empty() {
                    self.diags
                        .error("bit-not-mapped", format!("bit {bit} is not carried by `{}`'s PDOs, which map {mapped} {what} bits", dev.name), bs)
                        .help(format!("use a bit from 0 to {}, or map more {what}s (`{}`) into a {}", mapped.saturating_sub(1), if inputs { "digital_inputs_2" } else { "digital_outputs_2" }, if inputs { "TPDO" } else { "RPDO" }));
                }
            }
            let point = IoPoint {
                name: name.clone(),
                device: device.unwrap_or(DeviceId(0)),
                bit,
                active_low: tab.str("active").is_some_and(|a| a.0 == "low"),
            };
            if inputs {
                let id = InputId(cell.inputs.len() as u16);
                cell.inputs.push((point, span));
                self.define(cell, &name, span, Symbol::Input(id));
            } else {
                let id = OutputId(cell.outputs.len() as u16);
                cell.outputs.push((point, span));
                self.define(cell, &name, span, Symbol::Output(id));
            }
        }
    }

    fn read_teach_points(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        let Some(e) = top.get("teach_points") else {
            return;
        };
        for (name, span, item) in self.named(e.item, e.key) {
            let Some(t) = item.as_table_like() else {
                self.diags
                    .error(
                        "wrong-type",
                        format!("teach point `{name}` must be a table of coordinates"),
                        span_or(span, item.span()),
                    )
                    .help(format!(
                        "for example `{name} = {{ x = \"120 mm\", y = \"40 mm\" }}`"
                    ));
                continue;
            };
            let mut coords = Vec::new();
            for (axis, aspan, v) in self.named(item, span) {
                let vs = span_or(aspan, v.span());
                let field = spec::CELL_FILE
                    .field("teach_points")
                    .unwrap_or(&spec::CELL_FILE.fields[0]);
                if self
                    .check_value(
                        v,
                        &spec::Ty::Qty(&[Dim::Length, Dim::Angle]),
                        &axis,
                        field,
                        vs,
                    )
                    .is_none()
                {
                    continue;
                }
                let Some(q) = v.as_str().and_then(|s| s.parse::<Quantity>().ok()) else {
                    continue;
                };
                let Some(id) = self.resolve_axis(cell, &axis, aspan, false) else {
                    continue;
                };
                let a = cell.axis(id);
                if q.dim != a.length_dim() {
                    self.diags
                        .error(
                            "axis-unit",
                            format!(
                                "`{axis}` is {}, but `{}` is {}",
                                if a.config.rotary { "rotary" } else { "linear" },
                                v.as_str().unwrap_or(""),
                                q.dim.describe()
                            ),
                            vs,
                        )
                        .help(format!("write it in {}", a.unit()));
                } else if q.value < a.min || q.value > a.max {
                    let (limit, limit_span) = if q.value < a.min {
                        (a.min, a.min_span)
                    } else {
                        (a.max, a.max_span)
                    };
                    self.diags
                        .error("outside-soft-limits", format!("teach point `{name}` puts `{axis}` at {} {}, outside its soft limits ({} to {} {})", trim_float(q.value), a.unit(), trim_float(a.min), trim_float(a.max), a.unit()), vs)
                        .label("outside the soft limits")
                        .also(limit_span, "the soft limit")
                        .help(format!("the nearest allowed position is {} {} (see the axis's {})", trim_float(limit), a.unit(), if q.value < a.min { "min_position" } else { "max_position" }));
                }
                // Kept even when wrong (already reported), so that uses of the teach point
                // elsewhere are not reported as missing this axis too.
                coords.push((id, q.value, vs));
            }
            if t.is_empty() {
                self.diags.warning(
                    "empty-teach-point",
                    format!("teach point `{name}` has no coordinates"),
                    span,
                );
            }
            let id = cell.teach_points.len();
            cell.teach_points.push(TeachPoint { span, coords });
            self.define(cell, &name, span, Symbol::TeachPoint(id));
        }
    }

    fn set_start_positions(&mut self, cell: &mut Cell, start_at: Option<Named>) {
        let start = match start_at {
            Some((name, s)) => match cell.teach_point(&name) {
                Some(tp) => Some(tp.clone()),
                None => {
                    let help = cell
                        .suggest(&name, |s| matches!(s, Symbol::TeachPoint(_)))
                        .map_or("name a teach point".into(), |n| {
                            format!("did you mean `{n}`?")
                        });
                    self.diags
                        .error(
                            "unknown-teach-point",
                            format!("no teach point is called `{name}`"),
                            s,
                        )
                        .help(help);
                    None
                }
            },
            None => cell.teach_point("home").cloned(),
        };
        if let Some(tp) = start {
            for (axis, v, _) in tp.coords {
                let a = &mut cell.axes[axis.index()];
                a.config.start_position_counts = (v * a.config.counts_per_unit).round() as i64;
            }
        }
    }

    /// Resolves a gantry axis (or, with `conveyors`, any axis) by name, with a diagnostic.
    pub(crate) fn resolve_axis(
        &mut self,
        cell: &Cell,
        name: &str,
        span: Span,
        conveyors: bool,
    ) -> Option<AxisId> {
        match cell.lookup(name) {
            Some(Symbol::Axis(id)) => Some(id),
            Some(Symbol::Conveyor(id)) if conveyors => Some(id),
            Some(Symbol::Conveyor(_)) => {
                self.diags
                    .error(
                        "conveyor-not-axis",
                        format!("`{name}` is a conveyor, not a gantry axis"),
                        span,
                    )
                    .help("move conveyors with a `conveyor` step");
                None
            }
            other => {
                let what = other.map_or(String::new(), |s| format!(" (it is {})", s.describe()));
                let help = cell
                    .suggest(name, |s| {
                        matches!(s, Symbol::Axis(_))
                            || (conveyors && matches!(s, Symbol::Conveyor(_)))
                    })
                    .map_or_else(
                        || {
                            format!(
                                "axes are {}",
                                one_of_list(axis_names(cell, conveyors).iter().map(String::as_str))
                            )
                        },
                        |n| format!("did you mean `{n}`?"),
                    );
                self.diags
                    .error(
                        "unknown-axis",
                        format!("no axis is called `{name}`{what}"),
                        span,
                    )
                    .label("not an axis")
                    .help(help);
                None
            }
        }
    }

    fn read_interlocks(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        for (name, span, t) in self.named_tables(top, "interlocks") {
            let tab = self.table(t, &spec::INTERLOCK, span, format!("interlock `{name}`"));
            let require = match tab.str("require") {
                Some((text, s)) => {
                    let ss = self.str_span(s, &text);
                    self.compile_condition(cell, &text, ss)
                }
                None => None,
            };
            let guards = match tab.get("guards") {
                Some(e) if e.variant == 0 => Some(GuardsDef::AllMotion),
                Some(e) => e.item.as_table_like().map(|gt| {
                    let g = self.table(gt, &spec::GUARDS, e.value, format!("guards of interlock `{name}`"));
                    match (g.names("axes"), g.names("steps")) {
                        (Some(_), Some(_)) | (None, None) => {
                            self.diags
                                .error("guards-shape", "an interlock guards either axes or steps", e.value)
                                .help("write `guards = { axes = [\"x\", \"y\"] }` or `guards = { steps = [\"pick_and_place.z_down\"] }`; use two interlocks for both");
                            GuardsDef::AllMotion
                        }
                        (Some(axes), None) => {
                            let mut mask = 0u64;
                            for (a, s) in axes {
                                if let Some(id) = self.resolve_axis(cell, &a, s, true) {
                                    mask |= 1 << id.0.min(63);
                                }
                            }
                            GuardsDef::Axes(mask)
                        }
                        (None, Some(steps)) => GuardsDef::Steps(steps),
                    }
                }),
                None => None,
            };
            if let (Some(require), Some(guards)) = (require, guards) {
                cell.interlocks.push(InterlockDef {
                    name,
                    require,
                    guards,
                });
            }
        }
    }

    fn read_resync(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        let Some(e) = top.get("resync") else {
            return;
        };
        let Some(t) = e.item.as_table_like() else {
            return;
        };
        let tab = self.table(t, &spec::RESYNC, e.key, "`[resync]`".into());
        for (name, s) in tab.names("auto_resume").unwrap_or_default() {
            match FaultClass::from_key(&name) {
                Some(FaultClass::Estop | FaultClass::Interlock) => {
                    self.diags
                        .error(
                            "auto-resume-safety",
                            format!("a stop by `{name}` cannot resume by itself"),
                            s,
                        )
                        .label("needs the operator")
                        .help("IEC 60204-1 (9.2.5.3, 9.2.5.4) wants a manual reset before an e-stop or a guard stop is left, and a reset must not restart the machine: remove it from `auto_resume`");
                }
                Some(class) => cell.resync.auto_resume |= class.bit(),
                None => {
                    let keys = FaultClass::ALL.iter().map(|c| c.key());
                    self.diags
                        .error(
                            "unknown-fault-class",
                            format!("no fault class is called `{name}`"),
                            s,
                        )
                        .label("not a fault class")
                        .help(format!("fault classes are {}", one_of_list(keys)));
                }
            }
        }
        if let Some((text, s)) = tab.str("persist") {
            let ss = self.str_span(s, &text);
            cell.resync.persist = self.compile_condition(cell, &text, ss);
        }
        if let Some((text, _)) = tab.str("hold_message") {
            cell.resync.hold_message = text;
        }
    }

    fn read_stop_categories(&mut self, top: &Tab<'_>, cell: &mut Cell) {
        let Some(e) = top.get("stop_categories") else {
            return;
        };
        let Some(t) = e.item.as_table_like() else {
            return;
        };
        let tab = self.table(
            t,
            &spec::STOP_CATEGORIES,
            e.key,
            "`[stop_categories]`".into(),
        );
        let sc = &mut cell.stop_categories;
        let get = |k: &str, d: u8| tab.int(k).map_or(d, |v| v.0 as u8);
        *sc = StopCategories {
            estop: get("estop", sc.estop),
            interlock: get("interlock", sc.interlock),
            following_error: get("following_error", sc.following_error),
            heartbeat_lost: get("heartbeat_lost", sc.heartbeat_lost),
            drive_fault: get("drive_fault", sc.drive_fault),
            cycle_overrun: get("cycle_overrun", sc.cycle_overrun),
            sequence_fault: get("sequence_fault", sc.sequence_fault),
            stale_feedback: get("stale_feedback", sc.stale_feedback),
            rebooted: get("rebooted", sc.rebooted),
            bus_off: get("bus_off", sc.bus_off),
            position_jump: get("position_jump", sc.position_jump),
        };
        if let Some((2, s)) = tab.int("estop") {
            self.diags
                .error("estop-category", "an emergency stop must be stop category 0 or 1", s)
                .label("category 2 keeps power on")
                .help("IEC 60204-1 (9.2.5.4.2) allows only category 0 or 1 for an emergency stop; write `estop = 1` (controlled stop, then power removed)");
        }
    }

    fn check_bus_load(&mut self, cell: &mut Cell) {
        let devices: Vec<DeviceConfig> = cell.devices.iter().map(|(d, _)| d.clone()).collect();
        for (i, (bus, span)) in cell.buses.iter().enumerate() {
            let (load, _unbounded) = busload::bus_load(bus, i, &devices);
            if load.load_percent > load.ceiling_percent {
                let sync_span = cell.bus_spans.get(i).map_or(*span, |b| b.sync);
                let fit = fitting_sync_period_ms(bus, i, &devices);
                let biggest: Vec<String> = {
                    let mut f = load.frames.clone();
                    f.sort_by(|a, b| b.load_percent.total_cmp(&a.load_percent));
                    f.iter()
                        .take(3)
                        .map(|f| format!("{} {:.1} %", f.name, f.load_percent))
                        .collect()
                };
                let mut help = format!("largest shares: {}. ", biggest.join(", "));
                match fit {
                    Some(ms) => help.push_str(&format!("A SYNC period of {} ms fits under {} %; ", trim_float(ms), trim_float(load.ceiling_percent))),
                    None => help.push_str("No SYNC period up to 100 ms fits: the event-driven traffic alone is too much; "),
                };
                help.push_str(
                    "or use event-driven PDOs (profile position), or move devices to a second bus.",
                );
                self.diags
                    .error(
                        "bus-load",
                        format!(
                            "bus `{}` is planned at {:.1} % load, above its {} % ceiling",
                            bus.name,
                            load.load_percent,
                            trim_float(load.ceiling_percent)
                        ),
                        sync_span,
                    )
                    .label(format!("{:.1} % at this SYNC period", load.load_percent))
                    .help(help);
            }
            cell.bus_loads.push(load);
        }
    }
}

/// The shortest SYNC period, in steps of 0.5 ms, that brings the bus under its ceiling.
fn fitting_sync_period_ms(bus: &BusConfig, index: usize, devices: &[DeviceConfig]) -> Option<f64> {
    (1..=200)
        .map(|half_ms| f64::from(half_ms) * 0.5)
        .find(|ms| {
            let trial = BusConfig {
                sync_period_us: (ms * 1000.0) as u32,
                ..bus.clone()
            };
            busload::bus_load(&trial, index, devices).0.load_percent <= bus.load_ceiling_percent
        })
}

fn axis_names(cell: &Cell, conveyors: bool) -> Vec<String> {
    cell.axes
        .iter()
        .filter(|a| conveyors || !a.config.conveyor)
        .map(|a| a.config.name.clone())
        .collect()
}

fn kind_name(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Servo => "a servo",
        DeviceKind::Stepper => "a stepper",
        DeviceKind::Conveyor => "a conveyor",
        DeviceKind::Io => "an I/O",
    }
}

fn kind_word(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Servo => "servo",
        DeviceKind::Stepper => "stepper",
        DeviceKind::Conveyor => "conveyor",
        DeviceKind::Io => "io",
    }
}

fn expr_keyword(name: &str) -> bool {
    matches!(name, "and" | "or" | "not" | "at" | "true" | "false")
}

fn show_time(s: f64) -> String {
    if s < 1.0 {
        format!("{} ms", trim_float(s * 1000.0))
    } else {
        format!("{} s", trim_float(s))
    }
}

fn show_bitrate(b: f64) -> String {
    if b >= 1e6 {
        format!("{} Mbit/s", trim_float(b / 1e6))
    } else {
        format!("{} kbit/s", trim_float(b / 1e3))
    }
}

/// Spans of bus keys that diagnostics elsewhere point at.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BusSpans {
    pub sync: Span,
    pub controller_node: Span,
}

// Conditions ---------------------------------------------------------------------------------

impl Reader<'_> {
    /// Parses, resolves and type-checks a condition; returns its postfix form.
    pub(crate) fn compile_condition(
        &mut self,
        cell: &Cell,
        text: &str,
        ss: StrSpan,
    ) -> Option<Vec<CondOp>> {
        match expr::parse(text) {
            Err(e) => {
                let d = self.diags.error(
                    "condition-syntax",
                    format!("condition: {}", e.message),
                    ss.at(e.span.clone()),
                );
                d.label(e.message.clone());
                if let Some(h) = e.help {
                    d.help(h);
                }
                None
            }
            Ok(ast) => {
                let mut out = Vec::new();
                self.lower(cell, &ast, ss, &mut out).then_some(out)
            }
        }
    }

    fn lower(&mut self, cell: &Cell, e: &Expr, ss: StrSpan, out: &mut Vec<CondOp>) -> bool {
        match e {
            Expr::Const(b) => {
                out.push(CondOp::Const(*b));
                true
            }
            Expr::Not(a) => {
                let ok = self.lower(cell, a, ss, out);
                out.push(CondOp::Not);
                ok
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let ok_a = self.lower(cell, a, ss, out);
                let ok_b = self.lower(cell, b, ss, out);
                out.push(if matches!(e, Expr::And(..)) {
                    CondOp::And
                } else {
                    CondOp::Or
                });
                ok_a && ok_b
            }
            Expr::Ref { name, state } => {
                let span = ss.at(name.span.clone());
                match (cell.lookup(&name.text), state) {
                    (Some(Symbol::Input(i)), None) => {
                        out.push(CondOp::Input(i));
                        true
                    }
                    (Some(Symbol::Output(o)), None) => {
                        out.push(CondOp::Output(o));
                        true
                    }
                    (Some(Symbol::Axis(a) | Symbol::Conveyor(a)), Some(st)) => {
                        let state = match st.text.as_str() {
                            "homed" => AxisState::Homed,
                            "enabled" => AxisState::Enabled,
                            "moving" => AxisState::Moving,
                            "stopped" => AxisState::Stopped,
                            "in_position" => AxisState::InPosition,
                            "fault" => AxisState::Fault,
                            other => {
                                let help = did_you_mean(other, expr::AXIS_STATES.iter().copied())
                                    .map_or_else(
                                        || {
                                            format!(
                                                "states are {}",
                                                one_of_list(expr::AXIS_STATES.iter().copied())
                                            )
                                        },
                                        |s| format!("did you mean `{s}`?"),
                                    );
                                self.diags
                                    .error(
                                        "unknown-state",
                                        format!("axes have no state `{other}`"),
                                        ss.at(st.span.clone()),
                                    )
                                    .help(help);
                                return false;
                            }
                        };
                        out.push(CondOp::State(a, state));
                        true
                    }
                    (Some(Symbol::Axis(_) | Symbol::Conveyor(_)), None) => {
                        self.diags
                            .error("position-not-condition", format!("`{}` is a position, not a condition", name.text), span)
                            .label("a position")
                            .help(format!("compare it (`{0} >= 120 mm`, `{0} at home`) or test a state (`{0}.stopped`)", name.text));
                        false
                    }
                    (Some(Symbol::TeachPoint(i)), _) => {
                        let axis = cell.teach_points[i]
                            .coords
                            .first()
                            .map_or("x", |c| cell.axis(c.0).config.name.as_str());
                        self.diags
                            .error(
                                "point-not-condition",
                                format!("`{}` is a teach point, not a condition", name.text),
                                span,
                            )
                            .help(format!(
                                "test an axis against it: `{axis} at {}`",
                                name.text
                            ));
                        false
                    }
                    (Some(sym @ (Symbol::Input(_) | Symbol::Output(_))), Some(st)) => {
                        self.diags
                            .error(
                                "state-of-io",
                                format!(
                                    "`{}` is {} and has no state `{}`",
                                    name.text,
                                    sym.describe(),
                                    st.text
                                ),
                                ss.at(st.span.clone()),
                            )
                            .help(format!(
                                "an I/O point is itself a condition: write `{}` or `not {}`",
                                name.text, name.text
                            ));
                        false
                    }
                    (None, _) => {
                        let help = cell
                            .suggest(&name.text, |s| !matches!(s, Symbol::TeachPoint(_)))
                            .map_or("conditions use inputs, outputs, axes and conveyors of the cell file".into(), |n| format!("did you mean `{n}`?"));
                        self.diags
                            .error(
                                "unknown-name",
                                format!("no input, output or axis is called `{}`", name.text),
                                span,
                            )
                            .label("unknown name")
                            .help(help);
                        false
                    }
                }
            }
            Expr::Compare { axis, op, rhs } => {
                let Some(a) = self.cond_axis(cell, &axis.text, ss.at(axis.span.clone())) else {
                    return false;
                };
                let Some(counts) = self.operand_counts(cell, a, rhs, ss) else {
                    return false;
                };
                out.push(CondOp::Compare {
                    axis: a,
                    op: *op,
                    position_counts: counts,
                });
                true
            }
            Expr::At { axis, point } => {
                let Some(a) = self.cond_axis(cell, &axis.text, ss.at(axis.span.clone())) else {
                    return false;
                };
                let Some(counts) = self.operand_counts(cell, a, &Operand::Point(point.clone()), ss)
                else {
                    return false;
                };
                out.push(CondOp::At {
                    axis: a,
                    position_counts: counts,
                    window_counts: cell.axis(a).config.in_position_counts,
                });
                true
            }
        }
    }

    fn cond_axis(&mut self, cell: &Cell, name: &str, span: Span) -> Option<AxisId> {
        if let Some(Symbol::Conveyor(_)) = cell.lookup(name) {
            self.diags
                .error(
                    "conveyor-position",
                    format!(
                        "`{name}` is a conveyor: its position runs on forever and is not compared"
                    ),
                    span,
                )
                .help(format!("test its state instead: `{name}.stopped`"));
            return None;
        }
        self.resolve_axis(cell, name, span, false)
    }

    fn operand_counts(
        &mut self,
        cell: &Cell,
        a: AxisId,
        rhs: &Operand,
        ss: StrSpan,
    ) -> Option<i64> {
        let axis = cell.axis(a);
        match rhs {
            Operand::Quantity(q, r) => {
                if q.dim != axis.length_dim() {
                    self.diags
                        .error(
                            "condition-unit",
                            format!(
                                "`{}` is compared with {}, but it is {} axis",
                                axis.config.name,
                                q.dim.describe(),
                                if axis.config.rotary {
                                    "a rotary"
                                } else {
                                    "a linear"
                                }
                            ),
                            ss.at(r.clone()),
                        )
                        .help(format!("write the position in {}", axis.unit()));
                    return None;
                }
                Some(axis.counts(q.value))
            }
            Operand::Point(p) => {
                let Some(tp) = cell.teach_point(&p.text) else {
                    let help = cell
                        .suggest(&p.text, |s| matches!(s, Symbol::TeachPoint(_)))
                        .map_or(
                            "compare with a teach point or a quantity like `120 mm`".into(),
                            |n| format!("did you mean `{n}`?"),
                        );
                    self.diags
                        .error(
                            "unknown-teach-point",
                            format!("no teach point is called `{}`", p.text),
                            ss.at(p.span.clone()),
                        )
                        .help(help);
                    return None;
                };
                match tp.coords.iter().find(|c| c.0 == a) {
                    Some(&(_, v, _)) => Some(axis.counts(v)),
                    None => {
                        self.diags
                            .error("point-lacks-axis", format!("teach point `{}` has no `{}` coordinate", p.text, axis.config.name), ss.at(p.span.clone()))
                            .also(tp.span, "defined here")
                            .help(format!("add `{} = \"… {}\"` to the teach point, or compare with a quantity", axis.config.name, axis.unit()));
                        None
                    }
                }
            }
        }
    }
}
