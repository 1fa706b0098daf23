//! The world around the simulated devices, and its ground truth.
//!
//! It reads the physical axis positions from the drives and the I/O node's outputs, moves
//! parts along the conveyors (parts arrive on the infeed at random, seeded intervals, queue
//! against the end stop at the pick station, ride the outfeed away after placing), works the
//! vacuum gripper, and writes the I/O node's inputs: `part_at_pick`, `vacuum_ok` (true only
//! once vacuum has built up with the nozzle on a part), `guard_closed`, `estop_chain_ok`,
//! `light_curtain_clear`, and station sensors. An open e-stop chain also cuts the drives'
//! power stages (Safe Torque Off).
//!
//! It counts what really happened — parts arrived, picked, placed, dropped (released away
//! from the place station, or torn off the nozzle when the nozzle's acceleration, felt
//! through the springy suction cup, pulls harder than the vacuum holds), delivered,
//! and collisions (an X/Y move with Z below the safe height near a conveyor, the nozzle
//! driven below the belt surface, a belt running under a lowered nozzle) — for tests to
//! compare with what the controller counted.
//!
//! Coordinates are the machine's, in mm: X and Y in the horizontal plane, Z upwards with 0
//! at the top of travel (so lowering the nozzle makes Z negative).

use core::time::Duration;

use serde::{Deserialize, Serialize};
use takt_drivers::can::Timestamp;

use crate::device::Device;
use crate::rng::SimRng;

/// Parts a conveyor can carry at once; arrivals beyond wait.
pub const MAX_PARTS: usize = 64;
/// How long the nozzle must be clear before a new collision counts as another episode.
pub const COLLISION_CLEAR: Duration = Duration::from_millis(500);
/// How far below the safe height the nozzle may sit and still count as at it, mm: a
/// stepper holding Z at exactly `z_safe` under gravity stands a fraction of a micro-step
/// (well under a µm) below its command, which is not a crash.
pub const Z_SAFE_TOLERANCE_MM: f64 = 0.01;
/// World events kept for tests; later ones are counted but not kept.
pub const EVENT_LOG: usize = 4096;

/// When parts arrive on a conveyor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    /// Shortest gap between two arrivals, ms.
    pub min_interval_ms: u64,
    /// Mean gap between two arrivals, ms (exponentially distributed above the minimum).
    pub mean_interval_ms: u64,
}

/// A conveyor: a belt driven by one drive, laid out in the machine plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConveyorSpec {
    /// The drive moving the belt (device name).
    pub drive: String,
    /// Machine X/Y of the belt's start (where parts arrive), mm.
    pub origin_mm: [f64; 2],
    /// Unit direction of travel in the machine plane.
    pub direction: [f64; 2],
    /// Belt length, mm: parts past it leave the cell.
    pub length_mm: f64,
    /// Belt width, mm.
    pub width_mm: f64,
    /// Height of the belt surface, mm (machine Z).
    pub surface_z_mm: f64,
    /// End stop position along the belt, mm: parts queue against it.
    #[serde(default)]
    pub stop_mm: Option<f64>,
    /// Part length along the belt, mm: parts queue at this pitch.
    pub part_length_mm: f64,
    /// Random arrivals at the start of the belt, if any.
    #[serde(default)]
    pub arrivals: Option<Arrivals>,
}

/// A signal the world drives onto an I/O node input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputSignal {
    /// A part lies at the pick station (against the infeed's end stop).
    PartAtPick,
    /// Vacuum has built up with the nozzle on a part.
    VacuumOk,
    /// The guard door is closed.
    GuardClosed,
    /// The e-stop chain is closed.
    EstopChainOk,
    /// The light curtain is clear.
    LightCurtainClear,
    /// A part-present sensor on a conveyor.
    PartPresent {
        /// 0: infeed, 1: outfeed.
        conveyor: usize,
        /// Position along the belt, mm.
        at_mm: f64,
        /// Half-width of the sensing zone, mm.
        window_mm: f64,
    },
}

/// A named input of the I/O node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputWiring {
    /// Signal name (`part_at_pick`), as fault scenarios refer to it.
    pub name: String,
    /// Input bit, 0..=7.
    pub bit: u8,
    /// The bit reads low when the signal is true (an OSSD "low = clear" input).
    #[serde(default)]
    pub active_low: bool,
    /// What drives it.
    #[serde(flatten)]
    pub signal: InputSignal,
}

/// The world of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// Gantry axes (device names).
    pub x: String,
    /// Gantry Y.
    pub y: String,
    /// Gantry Z.
    pub z: String,
    /// The I/O node (device name).
    pub io: String,
    /// Infeed then outfeed conveyor.
    pub conveyors: [ConveyorSpec; 2],
    /// Machine X/Y of the pick station (over the infeed), mm.
    pub pick_mm: [f64; 2],
    /// Machine X/Y of the place station (over the outfeed), mm.
    pub place_mm: [f64; 2],
    /// Z at and above which the nozzle clears everything, mm.
    pub z_safe_mm: f64,
    /// Height of a part, mm: the nozzle touches a part on a belt at the belt's surface plus
    /// this.
    pub part_height_mm: f64,
    /// How close in X/Y the nozzle must be to a station, mm.
    pub xy_tolerance_mm: f64,
    /// Distance around a conveyor that counts as "near" it, mm.
    pub near_margin_mm: f64,
    /// Vacuum build-up time before a part holds, ms.
    pub vacuum_build_ms: u64,
    /// Acceleration above which a held part tears off, mm/s²: the suction cup holds the
    /// part with this much force per unit of the part's mass.
    pub grip_max_accel_mm_s2: f64,
    /// Natural frequency of the part on its suction cup, Hz: a bellows cup is a spring,
    /// so the part feels the nozzle's acceleration through it (a short jolt of a fraction of
    /// a millimetre barely stretches it; a hard stop does, and rings).
    #[serde(default = "default_grip_natural_hz")]
    pub grip_natural_hz: f64,
    /// Damping ratio of the part on its cup.
    #[serde(default = "default_grip_damping_ratio")]
    pub grip_damping_ratio: f64,
    /// Output bit of the vacuum valve.
    pub vacuum_output_bit: u8,
    /// The I/O node's inputs.
    pub inputs: Vec<InputWiring>,
}

fn default_grip_natural_hz() -> f64 {
    20.0
}

fn default_grip_damping_ratio() -> f64 {
    0.5
}

impl WorldSpec {
    /// The world of the demo cell, in the coordinates of config/cell.toml: the infeed runs
    /// along +X into an end stop under the pick station at (120, 40); the outfeed runs along
    /// +Y from the place station at (480, 320); Z counts upwards from its lowest point, the
    /// nozzle touches a part at 12 mm over the infeed and 20 mm over the outfeed and clears
    /// everything from 100 mm (`z_safe`). The light curtain's input is active low.
    pub fn demo() -> WorldSpec {
        let input = |name: &str, bit: u8, signal: InputSignal| InputWiring {
            name: name.to_owned(),
            bit,
            active_low: false,
            signal,
        };
        WorldSpec {
            x: "x".to_owned(),
            y: "y".to_owned(),
            z: "z".to_owned(),
            io: "io".to_owned(),
            conveyors: [
                ConveyorSpec {
                    drive: "infeed".to_owned(),
                    origin_mm: [-420.0, 40.0],
                    direction: [1.0, 0.0],
                    length_mm: 560.0,
                    width_mm: 60.0,
                    surface_z_mm: 2.0,
                    stop_mm: Some(540.0),
                    part_length_mm: 40.0,
                    arrivals: Some(Arrivals {
                        min_interval_ms: 1500,
                        mean_interval_ms: 4000,
                    }),
                },
                ConveyorSpec {
                    drive: "outfeed".to_owned(),
                    origin_mm: [480.0, 320.0],
                    direction: [0.0, 1.0],
                    length_mm: 600.0,
                    width_mm: 60.0,
                    surface_z_mm: 10.0,
                    stop_mm: None,
                    part_length_mm: 40.0,
                    arrivals: None,
                },
            ],
            pick_mm: [120.0, 40.0],
            place_mm: [480.0, 320.0],
            z_safe_mm: 100.0,
            part_height_mm: 10.0,
            xy_tolerance_mm: 2.0,
            near_margin_mm: 30.0,
            vacuum_build_ms: 60,
            grip_max_accel_mm_s2: 40_000.0,
            grip_natural_hz: default_grip_natural_hz(),
            grip_damping_ratio: default_grip_damping_ratio(),
            vacuum_output_bit: 0,
            inputs: vec![
                input("part_at_pick", 0, InputSignal::PartAtPick),
                input("vacuum_ok", 1, InputSignal::VacuumOk),
                input("guard_closed", 2, InputSignal::GuardClosed),
                input("estop_chain_ok", 3, InputSignal::EstopChainOk),
                InputWiring {
                    active_low: true,
                    ..input("light_curtain_clear", 4, InputSignal::LightCurtainClear)
                },
            ],
        }
    }

    /// The height at which the nozzle touches a part on conveyor `c`, mm.
    pub fn contact_z_mm(&self, c: usize) -> f64 {
        self.conveyors[c.min(1)].surface_z_mm + self.part_height_mm
    }
}

/// What really happened in the cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroundTruth {
    /// Parts that arrived on the infeed.
    pub arrived: u64,
    /// Parts lifted off the infeed.
    pub picked: u64,
    /// Parts set down at the place station.
    pub placed: u64,
    /// Parts lost between pick and place.
    pub dropped: u64,
    /// Parts carried off the end of the outfeed.
    pub delivered: u64,
    /// Collision episodes.
    pub collisions: u64,
}

/// Something that happened in the world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WorldEventKind {
    /// A part arrived on the infeed.
    Arrived {
        /// Its number.
        part: u32,
    },
    /// A part was lifted.
    Picked {
        /// Its number.
        part: u32,
    },
    /// A part was set down at the place station.
    Placed {
        /// Its number.
        part: u32,
    },
    /// A part fell.
    Dropped {
        /// Its number.
        part: u32,
        /// Machine X, Y, Z where it fell, mm.
        at_mm: [f64; 3],
    },
    /// A collision began.
    Collision {
        /// Machine X, Y, Z of the nozzle, mm.
        at_mm: [f64; 3],
        /// What kind.
        what: Collision,
    },
}

/// Kinds of collision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collision {
    /// X/Y moved with Z below the safe height near a conveyor.
    XyMoveBelowSafeHeight,
    /// The nozzle went below the belt surface.
    NozzleIntoBelt,
    /// A belt ran under the lowered nozzle.
    BeltUnderLoweredNozzle,
}

/// A world event with its time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldEvent {
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: WorldEventKind,
}

/// A fault forced onto an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputOverride {
    /// The input reads its real value.
    None,
    /// The input is stuck at a value.
    Stuck(bool),
    /// The input toggles every `period`, from `since`.
    Chatter {
        /// Toggle period.
        period: Duration,
        /// Start of chattering.
        since: Timestamp,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Part {
    id: u32,
    s_mm: f64,
}

#[derive(Clone, Debug)]
struct Belt {
    device: usize,
    parts: Vec<Part>,
    last_mm: Option<f64>,
    speed_mm_s: f64,
    next_arrival: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug)]
struct Axes {
    x: usize,
    y: usize,
    z: usize,
    io: usize,
}

/// Why a world could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// A device the world refers to is not in the cell, or not of the right kind.
    #[error("the world refers to device {0:?}, which is not a {1} in the cell")]
    UnknownDevice(String, &'static str),
    /// An input bit out of range.
    #[error("input {0:?} uses bit {1}; the I/O node has bits 0..=7")]
    BadBit(String, u8),
}

/// The world. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct World {
    spec: WorldSpec,
    axes: Axes,
    belts: [Belt; 2],
    held: Option<Part>,
    vacuum_since: Option<Timestamp>,
    next_part: u32,
    truth: GroundTruth,
    in_collision: bool,
    collision_clear_since: Option<Timestamp>,
    prev_velocity_mm_s: [f64; 3],
    /// A held part's displacement from its rest on the cup, mm, and its velocity, mm/s.
    cup_mm: [f64; 3],
    cup_mm_s: [f64; 3],
    guard_closed: bool,
    estop_ok: bool,
    light_curtain_clear: bool,
    overrides: [InputOverride; 8],
    events: Vec<WorldEvent>,
    events_total: u64,
}

fn find(devices: &[Device], name: &str, drive: bool) -> Result<usize, WorldError> {
    devices
        .iter()
        .position(|d| d.name() == name && (d.as_drive().is_some() == drive))
        .ok_or_else(|| {
            WorldError::UnknownDevice(name.to_owned(), if drive { "drive" } else { "I/O node" })
        })
}

impl World {
    /// The world of `spec` around `devices`.
    pub fn new(spec: WorldSpec, devices: &[Device]) -> Result<World, WorldError> {
        let axes = Axes {
            x: find(devices, &spec.x, true)?,
            y: find(devices, &spec.y, true)?,
            z: find(devices, &spec.z, true)?,
            io: find(devices, &spec.io, false)?,
        };
        for i in &spec.inputs {
            if i.bit > 7 {
                return Err(WorldError::BadBit(i.name.clone(), i.bit));
            }
        }
        let belt = |c: &ConveyorSpec| -> Result<Belt, WorldError> {
            Ok(Belt {
                device: find(devices, &c.drive, true)?,
                parts: Vec::with_capacity(MAX_PARTS),
                last_mm: None,
                speed_mm_s: 0.0,
                next_arrival: None,
            })
        };
        let belts = [belt(&spec.conveyors[0])?, belt(&spec.conveyors[1])?];
        Ok(World {
            spec,
            axes,
            belts,
            held: None,
            vacuum_since: None,
            next_part: 1,
            truth: GroundTruth::default(),
            in_collision: false,
            collision_clear_since: None,
            prev_velocity_mm_s: [0.0; 3],
            cup_mm: [0.0; 3],
            cup_mm_s: [0.0; 3],
            guard_closed: true,
            estop_ok: true,
            light_curtain_clear: true,
            overrides: [InputOverride::None; 8],
            events: Vec::with_capacity(EVENT_LOG),
            events_total: 0,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    /// What really happened so far.
    pub fn truth(&self) -> GroundTruth {
        self.truth
    }

    /// The events kept so far (the first [`EVENT_LOG`]).
    pub fn events(&self) -> &[WorldEvent] {
        &self.events
    }

    /// Parts on a conveyor (0: infeed, 1: outfeed) and their positions along it, mm.
    pub fn parts_on(&self, conveyor: usize) -> impl Iterator<Item = f64> + '_ {
        self.belts[conveyor].parts.iter().map(|p| p.s_mm)
    }

    /// True while the nozzle holds a part.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// Places a part on the infeed at `s_mm` along the belt (tests, scenarios).
    pub fn add_part(&mut self, conveyor: usize, s_mm: f64) {
        let belt = &mut self.belts[conveyor];
        if belt.parts.len() < MAX_PARTS {
            let id = self.next_part;
            self.next_part += 1;
            belt.parts.push(Part { id, s_mm });
            belt.parts
                .sort_unstable_by(|a, b| b.s_mm.total_cmp(&a.s_mm));
            if conveyor == 0 {
                self.truth.arrived += 1;
            }
        }
    }

    /// Opens or closes the guard door.
    pub fn set_guard_closed(&mut self, closed: bool) {
        self.guard_closed = closed;
    }

    /// Opens or closes the e-stop chain.
    pub fn set_estop_ok(&mut self, ok: bool) {
        self.estop_ok = ok;
    }

    /// Interrupts or clears the light curtain.
    pub fn set_light_curtain_clear(&mut self, clear: bool) {
        self.light_curtain_clear = clear;
    }

    /// The input bit of the signal `name`, if wired.
    pub fn input_bit(&self, name: &str) -> Option<u8> {
        self.spec
            .inputs
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.bit)
    }

    /// Forces an input bit (stuck, chattering) or releases it.
    pub fn set_override(&mut self, bit: u8, o: InputOverride) {
        if let Some(slot) = self.overrides.get_mut(usize::from(bit)) {
            *slot = o;
        }
    }

    fn log(&mut self, at: Timestamp, kind: WorldEventKind) {
        self.events_total += 1;
        if self.events.len() < EVENT_LOG {
            self.events.push(WorldEvent { at, kind });
        }
    }

    fn nozzle(&self, devices: &[Device]) -> ([f64; 3], [f64; 3]) {
        let axis = |i: usize| {
            devices[i]
                .as_drive()
                .map_or((0.0, 0.0), |d| (d.physical_mm(), d.velocity_mm_s()))
        };
        let (x, vx) = axis(self.axes.x);
        let (y, vy) = axis(self.axes.y);
        let (z, vz) = axis(self.axes.z);
        ([x, y, z], [vx, vy, vz])
    }

    fn near_conveyor(&self, c: usize, p: [f64; 3], margin: f64) -> bool {
        let spec = &self.spec.conveyors[c];
        let (dx, dy) = (p[0] - spec.origin_mm[0], p[1] - spec.origin_mm[1]);
        let along = dx * spec.direction[0] + dy * spec.direction[1];
        let across = -dx * spec.direction[1] + dy * spec.direction[0];
        along >= -margin
            && along <= spec.length_mm + margin
            && across.abs() <= spec.width_mm / 2.0 + margin
    }

    /// The nozzle is at `station` over conveyor `c`, down on a part's height.
    fn at_station(&self, station: [f64; 2], c: usize, p: [f64; 3]) -> bool {
        let tol = self.spec.xy_tolerance_mm;
        (p[0] - station[0]).abs() <= tol
            && (p[1] - station[1]).abs() <= tol
            && p[2] <= self.spec.contact_z_mm(c) + 1.0
    }

    fn part_at_pick(&self) -> bool {
        let c = &self.spec.conveyors[0];
        match (c.stop_mm, self.belts[0].parts.first()) {
            (Some(stop), Some(front)) => front.s_mm >= stop - 1.0,
            _ => false,
        }
    }

    fn move_belts(&mut self, now: Timestamp, dt_s: f64, devices: &[Device], rng: &mut SimRng) {
        for c in 0..2 {
            let pos = devices[self.belts[c].device]
                .as_drive()
                .map_or(0.0, |d| d.physical_mm());
            let spec = &self.spec.conveyors[c];
            let belt = &mut self.belts[c];
            let delta = belt.last_mm.map_or(0.0, |last| pos - last);
            belt.last_mm = Some(pos);
            belt.speed_mm_s = if dt_s > 0.0 { delta / dt_s } else { 0.0 };
            let mut limit = spec.stop_mm.unwrap_or(f64::INFINITY);
            for part in belt.parts.iter_mut() {
                part.s_mm = (part.s_mm + delta).min(limit).max(0.0);
                limit = part.s_mm - spec.part_length_mm;
            }
            let before = belt.parts.len();
            belt.parts.retain(|p| p.s_mm <= spec.length_mm);
            let gone = (before - belt.parts.len()) as u64;
            if c == 1 {
                self.truth.delivered += gone;
            }
            if let Some(a) = spec.arrivals {
                let belt = &mut self.belts[c];
                let due = *belt.next_arrival.get_or_insert(now);
                let clear = belt
                    .parts
                    .last()
                    .is_none_or(|p| p.s_mm >= spec.part_length_mm);
                if now >= due && clear && belt.parts.len() < MAX_PARTS {
                    let id = self.next_part;
                    self.next_part += 1;
                    belt.parts.push(Part { id, s_mm: 0.0 });
                    let extra = rng
                        .exponential(a.mean_interval_ms.saturating_sub(a.min_interval_ms) as f64);
                    let gap_ms = a.min_interval_ms as f64 + extra;
                    belt.next_arrival = Some(now + Duration::from_micros((gap_ms * 1000.0) as u64));
                    self.truth.arrived += 1;
                    self.log(now, WorldEventKind::Arrived { part: id });
                }
            }
        }
    }

    /// One step of `dt` at `now`: belts, gripper, collisions, then the I/O node's inputs
    /// and the drives' Safe Torque Off.
    pub fn step(&mut self, now: Timestamp, dt: Duration, devices: &mut [Device], rng: &mut SimRng) {
        let dt_s = dt.as_secs_f64();
        self.move_belts(now, dt_s, devices, rng);
        let (p, v) = self.nozzle(devices);
        let vacuum = devices[self.axes.io].outputs() & (1 << self.spec.vacuum_output_bit) != 0;

        // The gripper.
        let on_pick = self.at_station(self.spec.pick_mm, 0, p) && self.part_at_pick();
        let on_part = self.held.is_some() || on_pick;
        self.vacuum_since = match (vacuum && on_part, self.vacuum_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
            (false, _) => None,
        };
        let built = self.vacuum_since.is_some_and(|t| {
            now.saturating_since(t) >= Duration::from_millis(self.spec.vacuum_build_ms)
        });
        if self.held.is_none() && built && on_pick && !self.belts[0].parts.is_empty() {
            let part = self.belts[0].parts.remove(0);
            self.held = Some(part);
            self.cup_mm = [0.0; 3];
            self.cup_mm_s = [0.0; 3];
            self.truth.picked += 1;
            self.log(now, WorldEventKind::Picked { part: part.id });
        }
        if let Some(part) = self.held {
            // The part on its cup: a damped spring driven by the nozzle's acceleration
            // (semi-implicit Euler, stable at the world's step for the cup's frequency).
            // The cup lets go when its spring pulls harder than the vacuum holds.
            let w = core::f64::consts::TAU * self.spec.grip_natural_hz;
            let zeta = self.spec.grip_damping_ratio;
            let mut pull_sq = 0.0;
            let axes = v
                .iter()
                .zip(&self.prev_velocity_mm_s)
                .zip(self.cup_mm.iter_mut().zip(self.cup_mm_s.iter_mut()));
            for ((v, prev), (x, xv)) in axes {
                if dt_s > 0.0 {
                    let nozzle_accel = (v - prev) / dt_s;
                    let a = -nozzle_accel - w * w * *x - 2.0 * zeta * w * *xv;
                    *xv += a * dt_s;
                    *x += *xv * dt_s;
                }
                let pull = w * w * *x;
                pull_sq += pull * pull;
            }
            let accel = pull_sq.sqrt();
            if !vacuum || accel > self.spec.grip_max_accel_mm_s2 {
                self.held = None;
                self.vacuum_since = None;
                if vacuum || !self.at_station(self.spec.place_mm, 1, p) {
                    self.truth.dropped += 1;
                    self.log(
                        now,
                        WorldEventKind::Dropped {
                            part: part.id,
                            at_mm: p,
                        },
                    );
                } else {
                    self.truth.placed += 1;
                    self.log(now, WorldEventKind::Placed { part: part.id });
                    let spec = &self.spec.conveyors[1];
                    let s = (p[0] - spec.origin_mm[0]) * spec.direction[0]
                        + (p[1] - spec.origin_mm[1]) * spec.direction[1];
                    let belt = &mut self.belts[1];
                    if belt.parts.len() < MAX_PARTS {
                        belt.parts.push(Part {
                            id: part.id,
                            s_mm: s.max(0.0),
                        });
                        belt.parts
                            .sort_unstable_by(|a, b| b.s_mm.total_cmp(&a.s_mm));
                    }
                }
            }
        }
        self.prev_velocity_mm_s = v;

        // Collisions.
        let margin = self.spec.near_margin_mm;
        let near = |c: usize| self.near_conveyor(c, p, margin);
        let below_safe = p[2] < self.spec.z_safe_mm - Z_SAFE_TOLERANCE_MM;
        let xy_moving = v[0].hypot(v[1]) > 1.0;
        let collision = if below_safe && xy_moving && (near(0) || near(1)) {
            Some(Collision::XyMoveBelowSafeHeight)
        } else if (0..2)
            .any(|c| self.near_conveyor(c, p, 0.0) && p[2] < self.spec.conveyors[c].surface_z_mm)
        {
            Some(Collision::NozzleIntoBelt)
        } else if (0..2).any(|c| {
            self.near_conveyor(c, p, 0.0)
                && p[2] <= self.spec.contact_z_mm(c) + 1.0
                && self.belts[c].speed_mm_s.abs() > 1.0
        }) {
            Some(Collision::BeltUnderLoweredNozzle)
        } else {
            None
        };
        // One crash is one episode: it ends only after the nozzle has been clear for a
        // while, so a move that stutters through the zone is not counted twice.
        match (collision, self.in_collision) {
            (Some(what), false) => {
                self.in_collision = true;
                self.collision_clear_since = None;
                self.truth.collisions += 1;
                self.log(now, WorldEventKind::Collision { at_mm: p, what });
            }
            (Some(_), true) => self.collision_clear_since = None,
            (None, true) => {
                let since = *self.collision_clear_since.get_or_insert(now);
                if now.saturating_since(since) >= COLLISION_CLEAR {
                    self.in_collision = false;
                }
            }
            (None, false) => {}
        }

        // Inputs.
        let vacuum_ok = built && self.held.is_some();
        let part_at_pick = self.part_at_pick();
        let mut bits = 0u8;
        for i in &self.spec.inputs {
            let real = match i.signal {
                InputSignal::PartAtPick => part_at_pick,
                InputSignal::VacuumOk => vacuum_ok,
                InputSignal::GuardClosed => self.guard_closed,
                InputSignal::EstopChainOk => self.estop_ok,
                InputSignal::LightCurtainClear => self.light_curtain_clear,
                InputSignal::PartPresent {
                    conveyor,
                    at_mm,
                    window_mm,
                } => self.belts[conveyor.min(1)]
                    .parts
                    .iter()
                    .any(|p| (p.s_mm - at_mm).abs() <= window_mm),
            };
            let value = match self.overrides[usize::from(i.bit)] {
                InputOverride::None => real,
                InputOverride::Stuck(v) => v,
                InputOverride::Chatter { period, since } => {
                    let n = now.saturating_since(since).as_nanos() / period.as_nanos().max(1);
                    n % 2 == 0
                }
            };
            if value != i.active_low {
                bits |= 1 << i.bit;
            }
        }
        devices[self.axes.io].set_inputs(bits);
        for d in devices.iter_mut() {
            if let Some(drive) = d.as_drive_mut() {
                drive.set_safe_torque_off(!self.estop_ok);
            }
        }
    }
}
