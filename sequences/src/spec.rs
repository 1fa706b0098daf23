//! The shape of the cell and sequence files: every table, every key, its type and its doc.
//!
//! One description serves three readers: the [`reader`](crate::reader) checks files against it
//! (unknown keys with a "did you mean", missing keys, wrong types), [`schema`](crate::schema)
//! turns it into the JSON Schemas editors use for completion, and the hints of diagnostics quote
//! its examples. Because all three read the same statics, the schema cannot drift from what
//! `takt check` accepts.

use crate::quantity::Dim;

/// The type of a key's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string.
    Str,
    /// A name of something defined elsewhere (a string, checked to resolve later).
    Name,
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// A quantity string of one of these dimensions.
    Qty(&'static [Dim]),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An array of names.
    Names,
    /// A condition expression (see [`expr`](crate::expr)).
    Expr,
    /// A table of known keys.
    Table(&'static TableSpec),
    /// An array of tables (`[[step]]`).
    Array(&'static TableSpec),
    /// A table whose keys are names chosen by the engineer, each of this type.
    MapOf(&'static Ty),
    /// Any one of these types.
    OneOf(&'static [Ty]),
}

/// One key of a table.
#[derive(Debug)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Must be present (for steps: when the step's kind applies).
    pub required: bool,
    /// One sentence for editors and hints.
    pub doc: &'static str,
    /// How a line engineer would write it: the right-hand side of `key = ...`.
    pub example: &'static str,
    /// For step keys: the step kinds this key belongs to (empty: every kind).
    pub only: &'static [&'static str],
}

/// A table of known keys.
#[derive(Debug)]
pub struct TableSpec {
    /// Identifier in the JSON Schema `definitions`.
    pub id: &'static str,
    /// What one of these is called in messages: "axis", "step".
    pub what: &'static str,
    /// Doc for editors.
    pub doc: &'static str,
    /// The keys.
    pub fields: &'static [Field],
    /// Keys of which exactly one must be present (the step kinds); empty if none.
    pub one_of: &'static [&'static str],
}

impl TableSpec {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn f(
    name: &'static str,
    ty: Ty,
    required: bool,
    doc: &'static str,
    example: &'static str,
) -> Field {
    Field {
        name,
        ty,
        required,
        doc,
        example,
        only: &[],
    }
}

const fn step_f(
    name: &'static str,
    ty: Ty,
    doc: &'static str,
    example: &'static str,
    only: &'static [&'static str],
) -> Field {
    Field {
        name,
        ty,
        required: false,
        doc,
        example,
        only,
    }
}

const LENGTH_OR_ANGLE: &[Dim] = &[Dim::Length, Dim::Angle];
const VELOCITY: &[Dim] = &[Dim::LinearVelocity, Dim::AngularVelocity];
const NODE_ID: Ty = Ty::Int { min: 1, max: 127 };

/// Names of the built-in PDO profiles (see [`pdo`](crate::pdo)).
pub const PROFILE_NAMES: &[&str] = &[
    "servo_csp",
    "servo_pp",
    "stepper_csp",
    "conveyor_pv",
    "io_8in_8out",
];
/// Device kinds.
pub const DEVICE_KINDS: &[&str] = &["servo", "stepper", "conveyor", "io"];
/// Step kinds: the keys that say what a step does.
pub const STEP_KINDS: &[&str] = &[
    "move", "wait", "set", "conveyor", "dwell", "parallel", "repeat", "call", "count", "goto",
    "fault",
];

/// The cell file.
pub static CELL_FILE: TableSpec = TableSpec {
    id: "cell_file",
    what: "cell file",
    doc: "A takt cell: buses, devices, axes, I/O, teach points, interlocks, stop categories.",
    fields: &[
        f(
            "cell",
            Ty::Table(&CELL),
            true,
            "The cell's name and the sequence it runs.",
            "{ name = \"gantry-1\", sequence = \"pick_and_place\" }",
        ),
        f(
            "buses",
            Ty::MapOf(&Ty::Table(&BUS)),
            true,
            "CAN buses, by name.",
            "{ can0 = { interface = \"can0\", bitrate = \"1 Mbit/s\", sync_period = \"2 ms\", controller_node = 127 } }",
        ),
        f(
            "devices",
            Ty::MapOf(&Ty::Table(&DEVICE)),
            true,
            "CANopen devices (drives, I/O nodes), by name.",
            "{ x_drive = { node = 1, kind = \"servo\", profile = \"servo_csp\" } }",
        ),
        f(
            "axes",
            Ty::MapOf(&Ty::Table(&AXIS)),
            false,
            "Gantry axes, by name; each is driven by one drive.",
            "{ x = { device = \"x_drive\", scale = \"1000 counts/mm\" } }",
        ),
        f(
            "conveyors",
            Ty::MapOf(&Ty::Table(&CONVEYOR)),
            false,
            "Conveyors, by name; each is driven by one drive in profile velocity.",
            "{ infeed = { device = \"infeed_drive\", scale = \"100 counts/mm\" } }",
        ),
        f(
            "inputs",
            Ty::MapOf(&Ty::Table(&IO_POINT)),
            false,
            "Digital inputs (sensors), by name.",
            "{ part_at_pick = { device = \"io\", bit = 0 } }",
        ),
        f(
            "outputs",
            Ty::MapOf(&Ty::Table(&IO_POINT)),
            false,
            "Digital outputs (valves, lamps), by name.",
            "{ vacuum_on = { device = \"io\", bit = 0 } }",
        ),
        f(
            "teach_points",
            Ty::MapOf(&Ty::MapOf(&Ty::Qty(LENGTH_OR_ANGLE))),
            false,
            "Named positions; a teach point may give only some axes.",
            "{ pick = { x = \"120 mm\", y = \"40 mm\" } }",
        ),
        f(
            "interlocks",
            Ty::MapOf(&Ty::Table(&INTERLOCK)),
            false,
            "Conditions that must hold for motion to run, by name.",
            "{ guard = { require = \"guard_closed and estop_chain_ok\", guards = \"motion\" } }",
        ),
        f(
            "stop_categories",
            Ty::Table(&STOP_CATEGORIES),
            false,
            "IEC 60204-1 stop category (0, 1 or 2) per fault class.",
            "{ estop = 1 }",
        ),
        f(
            "resync",
            Ty::Table(&RESYNC),
            false,
            "Resync and resume after a lost position.",
            "{ auto_resume = [\"following_error\"] }",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static CELL: TableSpec = TableSpec {
    id: "cell",
    what: "cell",
    doc: "The cell's name and the sequence it runs.",
    fields: &[
        f(
            "name",
            Ty::Str,
            true,
            "The cell's name, shown to operators.",
            "\"gantry-1\"",
        ),
        f(
            "sequence",
            Ty::Name,
            true,
            "The sequence the cell runs, one pass per part: a file in the sequences folder, without `.toml`.",
            "\"pick_and_place\"",
        ),
        f(
            "sequences_dir",
            Ty::Str,
            false,
            "Folder of the sequence files, relative to this file (default `sequences`).",
            "\"sequences\"",
        ),
        f(
            "start_at",
            Ty::Name,
            false,
            "Teach point the axes stand at when a pass starts, for the dry run (default `home` if defined).",
            "\"home\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static BUS: TableSpec = TableSpec {
    id: "bus",
    what: "bus",
    doc: "A CAN bus and its CANopen network timing.",
    fields: &[
        f(
            "interface",
            Ty::Str,
            true,
            "SocketCAN interface name.",
            "\"can0\"",
        ),
        f(
            "bitrate",
            Ty::Qty(&[Dim::Bitrate]),
            true,
            "CAN bit rate.",
            "\"1 Mbit/s\"",
        ),
        f(
            "sync_period",
            Ty::Qty(&[Dim::Time]),
            true,
            "Period of the SYNC the controller sends; cyclic PDOs go once per SYNC.",
            "\"2 ms\"",
        ),
        f(
            "sync_counter",
            Ty::Bool,
            false,
            "SYNC carries a 1-byte counter (CiA 301 0x1019).",
            "false",
        ),
        f(
            "controller_node",
            NODE_ID,
            true,
            "The controller's own node id (its heartbeat is 0x700 + id).",
            "127",
        ),
        f(
            "controller_heartbeat",
            Ty::Qty(&[Dim::Time]),
            false,
            "Period of the controller's heartbeat, consumed by every drive (default 100 ms).",
            "\"100 ms\"",
        ),
        f(
            "load_ceiling",
            Ty::Qty(&[Dim::Percent]),
            false,
            "Highest planned bus load accepted (default 70 %).",
            "\"70 %\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static DEVICE: TableSpec = TableSpec {
    id: "device",
    what: "device",
    doc: "A CANopen device on a bus.",
    fields: &[
        f(
            "bus",
            Ty::Name,
            false,
            "The bus it is on (may be left out when the cell has one bus).",
            "\"can0\"",
        ),
        f("node", NODE_ID, true, "CANopen node id, 1 to 127.", "1"),
        f(
            "kind",
            Ty::Enum(DEVICE_KINDS),
            true,
            "What the device is.",
            "\"servo\"",
        ),
        f(
            "profile",
            Ty::Enum(PROFILE_NAMES),
            false,
            "A named PDO layout; give either this or `rpdo` / `tpdo`.",
            "\"servo_csp\"",
        ),
        f(
            "rpdo",
            Ty::Array(&PDO),
            false,
            "PDOs the controller sends to the device (at most 4).",
            "[{ map = [\"controlword\", \"target_position\"] }]",
        ),
        f(
            "tpdo",
            Ty::Array(&PDO),
            false,
            "PDOs the device sends to the controller (at most 4).",
            "[{ map = [\"statusword\", \"position_actual\"] }]",
        ),
        f(
            "heartbeat",
            Ty::Qty(&[Dim::Time]),
            false,
            "The device's heartbeat period (0x1017, default 100 ms).",
            "\"100 ms\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static PDO: TableSpec = TableSpec {
    id: "pdo",
    what: "PDO",
    doc: "One PDO: the objects it carries and when it is sent.",
    fields: &[
        f(
            "map",
            Ty::Names,
            true,
            "Mapped objects, by name (`statusword`) or as `0xINDEX:SUB/BITS`.",
            "[\"statusword\", \"position_actual\"]",
        ),
        f(
            "transmission",
            Ty::Enum(&["sync", "event"]),
            false,
            "`sync`: sent on SYNC (default); `event`: sent on change.",
            "\"sync\"",
        ),
        f(
            "every",
            Ty::Int { min: 1, max: 240 },
            false,
            "For `sync`: sent every n-th SYNC (default 1).",
            "1",
        ),
        f(
            "inhibit",
            Ty::Qty(&[Dim::Time]),
            false,
            "For `event`: shortest time between two transmissions; bounds its bus load.",
            "\"10 ms\"",
        ),
        f(
            "event_timer",
            Ty::Qty(&[Dim::Time]),
            false,
            "For `event`: sent at least this often.",
            "\"100 ms\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static AXIS: TableSpec = TableSpec {
    id: "axis",
    what: "axis",
    doc: "A gantry axis driven by one servo or stepper drive.",
    fields: &[
        f(
            "device",
            Ty::Name,
            true,
            "The drive of this axis.",
            "\"x_drive\"",
        ),
        f(
            "scale",
            Ty::Qty(&[Dim::LinearScale, Dim::AngularScale]),
            true,
            "Drive counts per mm (linear) or per deg / rev (rotary).",
            "\"1000 counts/mm\"",
        ),
        f(
            "min_position",
            Ty::Qty(LENGTH_OR_ANGLE),
            true,
            "Lower soft limit.",
            "\"0 mm\"",
        ),
        f(
            "max_position",
            Ty::Qty(LENGTH_OR_ANGLE),
            true,
            "Upper soft limit.",
            "\"600 mm\"",
        ),
        f(
            "max_velocity",
            Ty::Qty(VELOCITY),
            true,
            "Fastest the axis may move.",
            "\"1500 mm/s\"",
        ),
        f(
            "max_acceleration",
            Ty::Qty(&[Dim::LinearAcceleration, Dim::AngularAcceleration]),
            true,
            "Largest acceleration and deceleration.",
            "\"10000 mm/s²\"",
        ),
        f(
            "max_jerk",
            Ty::Qty(&[Dim::LinearJerk, Dim::AngularJerk]),
            true,
            "Largest jerk (rate of change of acceleration).",
            "\"100000 mm/s³\"",
        ),
        f(
            "following_error",
            Ty::Qty(LENGTH_OR_ANGLE),
            true,
            "Largest allowed gap between demanded and actual position (0x6065).",
            "\"2 mm\"",
        ),
        f(
            "in_position",
            Ty::Qty(LENGTH_OR_ANGLE),
            false,
            "Window for \"arrived\" and for `at` in conditions (default a quarter of `following_error`).",
            "\"0.1 mm\"",
        ),
        f(
            "homing",
            Ty::Table(&HOMING),
            true,
            "How the axis finds its zero.",
            "{ method = 35, offset = \"0 mm\" }",
        ),
        f(
            "resync",
            Ty::Enum(&["reread", "rehome"]),
            true,
            "After a lost position: read the actual position back (`reread`, needs an encoder) or home again (`rehome`).",
            "\"reread\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static HOMING: TableSpec = TableSpec {
    id: "homing",
    what: "homing",
    doc: "CiA 402 homing.",
    fields: &[
        f(
            "method",
            Ty::Int {
                min: -128,
                max: 127,
            },
            true,
            "CiA 402 homing method (0x6098); 35 = current position.",
            "35",
        ),
        f(
            "offset",
            Ty::Qty(LENGTH_OR_ANGLE),
            false,
            "Position of the home point (0x607C, default 0).",
            "\"0 mm\"",
        ),
        f(
            "speed",
            Ty::Qty(VELOCITY),
            false,
            "Search speed (0x6099).",
            "\"50 mm/s\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static CONVEYOR: TableSpec = TableSpec {
    id: "conveyor",
    what: "conveyor",
    doc: "A conveyor belt driven in profile velocity; it has no soft limits.",
    fields: &[
        f(
            "device",
            Ty::Name,
            true,
            "The conveyor's drive.",
            "\"infeed_drive\"",
        ),
        f(
            "scale",
            Ty::Qty(&[Dim::LinearScale]),
            true,
            "Drive counts per mm of belt travel.",
            "\"100 counts/mm\"",
        ),
        f(
            "max_velocity",
            Ty::Qty(&[Dim::LinearVelocity]),
            true,
            "Fastest belt speed.",
            "\"500 mm/s\"",
        ),
        f(
            "max_acceleration",
            Ty::Qty(&[Dim::LinearAcceleration]),
            true,
            "Largest acceleration and deceleration.",
            "\"2000 mm/s²\"",
        ),
        f(
            "max_jerk",
            Ty::Qty(&[Dim::LinearJerk]),
            false,
            "Largest jerk (default: acceleration reached in 20 ms).",
            "\"100000 mm/s³\"",
        ),
        f(
            "speed",
            Ty::Qty(&[Dim::LinearVelocity, Dim::Percent]),
            false,
            "Belt speed when a step does not say (default 50 % of max).",
            "\"300 mm/s\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static IO_POINT: TableSpec = TableSpec {
    id: "io_point",
    what: "I/O point",
    doc: "One digital input or output of an I/O node.",
    fields: &[
        f("device", Ty::Name, true, "The I/O node.", "\"io\""),
        f(
            "bit",
            Ty::Int { min: 0, max: 63 },
            true,
            "Bit number within the node's digital inputs or outputs.",
            "0",
        ),
        f(
            "active",
            Ty::Enum(&["high", "low"]),
            false,
            "`low` for normally-closed contacts: the point is true when the wire is low (default `high`).",
            "\"high\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static INTERLOCK: TableSpec = TableSpec {
    id: "interlock",
    what: "interlock",
    doc: "A condition that must hold for the guarded motion to start or go on.",
    fields: &[
        f(
            "require",
            Ty::Expr,
            true,
            "The condition, over inputs, outputs and axis positions.",
            "\"guard_closed and estop_chain_ok\"",
        ),
        f(
            "guards",
            Ty::OneOf(&[Ty::Enum(&["motion"]), Ty::Table(&GUARDS)]),
            true,
            "What stops when the condition is false: `\"motion\"` (all motion), or `{ axes = [...] }` / `{ steps = [...] }`.",
            "\"motion\"",
        ),
        f(
            "description",
            Ty::Str,
            false,
            "Shown to the operator when the interlock holds the cell.",
            "\"close the guard\"",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static GUARDS: TableSpec = TableSpec {
    id: "guards",
    what: "guards",
    doc: "The axes or steps an interlock guards.",
    fields: &[
        f(
            "axes",
            Ty::Names,
            false,
            "Axes and conveyors that may not move while the condition is false.",
            "[\"x\", \"y\"]",
        ),
        f(
            "steps",
            Ty::Names,
            false,
            "Steps that may not start while the condition is false (`sequence.step`).",
            "[\"pick_and_place.z_down_pick\"]",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static STOP_CATEGORIES: TableSpec = TableSpec {
    id: "stop_categories",
    what: "stop categories",
    doc: "IEC 60204-1 stop category per fault class: 0 = remove power at once, 1 = controlled stop then remove power, 2 = controlled stop, power kept.",
    fields: &[
        f(
            "estop",
            Ty::Int { min: 0, max: 2 },
            false,
            "E-stop chain opened (0 or 1; default 1).",
            "1",
        ),
        f(
            "interlock",
            Ty::Int { min: 0, max: 2 },
            false,
            "An interlock opened during motion (default 2).",
            "2",
        ),
        f(
            "following_error",
            Ty::Int { min: 0, max: 2 },
            false,
            "Following error beyond the window (default 1).",
            "1",
        ),
        f(
            "heartbeat_lost",
            Ty::Int { min: 0, max: 2 },
            false,
            "A device's heartbeat missed (default 1).",
            "1",
        ),
        f(
            "drive_fault",
            Ty::Int { min: 0, max: 2 },
            false,
            "A drive reported a fault (default 0).",
            "0",
        ),
        f(
            "cycle_overrun",
            Ty::Int { min: 0, max: 2 },
            false,
            "The controller cycle overran its trip rule (default 1).",
            "1",
        ),
        f(
            "sequence_fault",
            Ty::Int { min: 0, max: 2 },
            false,
            "A wait timed out or a `fault` step ran (default 2).",
            "2",
        ),
        f(
            "stale_feedback",
            Ty::Int { min: 0, max: 2 },
            false,
            "A drive's feedback PDO stopped coming (default 1).",
            "1",
        ),
        f(
            "rebooted",
            Ty::Int { min: 0, max: 2 },
            false,
            "A device sent boot-up while the cell ran: it rebooted (default 1).",
            "1",
        ),
        f(
            "bus_off",
            Ty::Int { min: 0, max: 2 },
            false,
            "The controller's CAN interface went bus-off (default 1).",
            "1",
        ),
        f(
            "position_jump",
            Ty::Int { min: 0, max: 2 },
            false,
            "A position actual jumped further than the axis can move in one SYNC (default 1).",
            "1",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static RESYNC: TableSpec = TableSpec {
    id: "resync",
    what: "resync",
    doc: "After a fault that lost a position: which fault classes resync and resume by themselves, and what must hold for the interrupted pass to resume.",
    fields: &[
        f(
            "auto_resume",
            Ty::Names,
            false,
            "Fault classes (keys of `[stop_categories]`) after which the cell resyncs and resumes without the operator; the others wait for reset and start. Never `estop` or `interlock`.",
            "[\"following_error\", \"heartbeat_lost\"]",
        ),
        f(
            "persist",
            Ty::Expr,
            false,
            "What the interrupted pass has done that must still be so when it resumes: if this held when the cell stopped and no longer does (the part left the nozzle), the cell holds with `hold_message` instead of guessing.",
            "\"vacuum_ok\"",
        ),
        f(
            "hold_message",
            Ty::Str,
            false,
            "What the operator reads when `persist` is false.",
            "\"the part is no longer on the nozzle\"",
        ),
    ],
    one_of: &[],
};

/// A sequence file.
pub static SEQUENCE_FILE: TableSpec = TableSpec {
    id: "sequence_file",
    what: "sequence file",
    doc: "A takt sequence: steps run one after the other. The file name is the sequence's name.",
    fields: &[
        f(
            "sequence",
            Ty::Table(&SEQUENCE),
            false,
            "About this sequence.",
            "{ description = \"one part from infeed to outfeed\" }",
        ),
        f(
            "step",
            Ty::Array(&STEP),
            true,
            "The steps, in order: one `[[step]]` table each.",
            "[{ name = \"to_pick\", move = \"pick\" }]",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static SEQUENCE: TableSpec = TableSpec {
    id: "sequence",
    what: "sequence",
    doc: "About this sequence.",
    fields: &[f(
        "description",
        Ty::Str,
        false,
        "What the sequence does, for people.",
        "\"one part from infeed to outfeed\"",
    )],
    one_of: &[],
};

const MOVE: &[&str] = &["move"];
const WAIT: &[&str] = &["wait"];
const CONV: &[&str] = &["conveyor"];
const MOVE_CONV: &[&str] = &["move", "conveyor"];

/// One step of a sequence.
pub static STEP: TableSpec = TableSpec {
    id: "step",
    what: "step",
    doc: "One step. Exactly one of move, wait, set, conveyor, dwell, parallel, repeat, call, count, goto, fault says what it does.",
    fields: &[
        step_f(
            "name",
            Ty::Str,
            "The step's name: shown to operators, target of `goto`, unique in the sequence.",
            "\"to_pick\"",
            &[],
        ),
        step_f(
            "move",
            Ty::OneOf(&[Ty::Name, Ty::MapOf(&Ty::Qty(LENGTH_OR_ANGLE))]),
            "Move axes to a teach point, or to coordinates `{ x = \"120 mm\" }`.",
            "\"pick\"",
            &[],
        ),
        step_f(
            "wait",
            Ty::Expr,
            "Wait until a condition holds; needs `timeout`.",
            "\"part_at_pick\"",
            &[],
        ),
        step_f(
            "set",
            Ty::MapOf(&Ty::Bool),
            "Switch outputs on or off.",
            "{ vacuum_on = true }",
            &[],
        ),
        step_f(
            "conveyor",
            Ty::Name,
            "Run, stop or index a conveyor; needs `action`.",
            "\"infeed\"",
            &[],
        ),
        step_f(
            "dwell",
            Ty::Qty(&[Dim::Time]),
            "Do nothing for a while.",
            "\"150 ms\"",
            &[],
        ),
        step_f(
            "parallel",
            Ty::Array(&BRANCH),
            "Branches that run together; the step ends when all have ended.",
            "[{ do = [{ move = \"place\" }] }, { do = [{ conveyor = \"infeed\", action = \"run\" }] }]",
            &[],
        ),
        step_f(
            "repeat",
            Ty::OneOf(&[
                Ty::Int {
                    min: 1,
                    max: 1_000_000,
                },
                Ty::Table(&REPEAT),
            ]),
            "Run the `do` steps n times, or until a condition holds (with a `max`).",
            "3",
            &[],
        ),
        step_f(
            "call",
            Ty::Name,
            "Run another sequence, then go on.",
            "\"purge_gripper\"",
            &[],
        ),
        step_f(
            "count",
            Ty::Name,
            "Add to a named production counter.",
            "\"parts_placed\"",
            &[],
        ),
        step_f(
            "goto",
            Ty::Name,
            "Go on at the named step.",
            "\"wait_part\"",
            &[],
        ),
        step_f(
            "fault",
            Ty::Str,
            "Stop the cell with this fault message.",
            "\"gripper lost the part\"",
            &[],
        ),
        step_f(
            "relative",
            Ty::Bool,
            "Coordinates are distances from where the axes are, not positions.",
            "false",
            MOVE,
        ),
        step_f(
            "speed",
            Ty::Qty(&[Dim::Percent, Dim::LinearVelocity, Dim::AngularVelocity]),
            "Speed as % of each axis's maximum, or as a velocity (default 100 %).",
            "\"80 %\"",
            MOVE_CONV,
        ),
        step_f(
            "coordinated",
            Ty::Bool,
            "All axes arrive together (default true).",
            "true",
            MOVE,
        ),
        step_f(
            "axes",
            Ty::Names,
            "Move only these axes of the teach point.",
            "[\"x\", \"y\"]",
            MOVE,
        ),
        step_f(
            "timeout",
            Ty::Qty(&[Dim::Time]),
            "How long to wait before `on_timeout`.",
            "\"10 s\"",
            WAIT,
        ),
        step_f(
            "on_timeout",
            Ty::OneOf(&[Ty::Enum(&["fault"]), Ty::Table(&ON_TIMEOUT)]),
            "`\"fault\"` (default), `{ retry = n }` (alarm, wait again up to n times, then fault) or `{ goto = \"step\" }`.",
            "{ retry = 3 }",
            WAIT,
        ),
        step_f(
            "alarm",
            Ty::Str,
            "Message shown to the operator when the wait times out.",
            "\"no part arrived\"",
            WAIT,
        ),
        step_f(
            "action",
            Ty::Enum(&["run", "stop", "index"]),
            "What the conveyor does: `run` (and go on), `stop` (wait until stopped), `index` (move by `distance`).",
            "\"index\"",
            CONV,
        ),
        step_f(
            "distance",
            Ty::Qty(&[Dim::Length]),
            "How far `index` moves the belt.",
            "\"150 mm\"",
            CONV,
        ),
        step_f(
            "by",
            Ty::Int {
                min: 1,
                max: 1_000_000,
            },
            "How much `count` adds (default 1).",
            "1",
            &["count"],
        ),
        step_f(
            "do",
            Ty::Array(&STEP),
            "The steps a `repeat` runs.",
            "[{ move = \"pick\" }]",
            &["repeat"],
        ),
    ],
    one_of: STEP_KINDS,
};

/// Spec of one table.
pub static BRANCH: TableSpec = TableSpec {
    id: "branch",
    what: "branch",
    doc: "One branch of a `parallel` step.",
    fields: &[
        f(
            "name",
            Ty::Str,
            false,
            "The branch's name, for the timeline.",
            "\"gantry\"",
        ),
        f(
            "do",
            Ty::Array(&STEP),
            true,
            "The branch's steps.",
            "[{ move = \"place\" }]",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static REPEAT: TableSpec = TableSpec {
    id: "repeat",
    what: "repeat",
    doc: "Repeat until a condition holds, at most `max` times.",
    fields: &[
        f(
            "until",
            Ty::Expr,
            true,
            "Checked after each pass.",
            "\"tray_full\"",
        ),
        f(
            "max",
            Ty::Int {
                min: 1,
                max: 1_000_000,
            },
            true,
            "Most passes; a repeat is always bounded.",
            "10",
        ),
    ],
    one_of: &[],
};

/// Spec of one table.
pub static ON_TIMEOUT: TableSpec = TableSpec {
    id: "on_timeout",
    what: "on_timeout",
    doc: "What a wait does when its timeout runs out.",
    fields: &[
        f(
            "retry",
            Ty::Int { min: 1, max: 100 },
            false,
            "Raise an alarm and wait again, at most this many times; then fault.",
            "3",
        ),
        f(
            "goto",
            Ty::Name,
            false,
            "Go on at the named step.",
            "\"recover\"",
        ),
    ],
    one_of: &[],
};
