//! The simulator's own description of a cell: buses, devices (node-ID, drive mechanics,
//! I/O node), and the world around them; and [`demo_cell`], the three-axis gantry between
//! two conveyors of BRIEF.md.
//!
//! `sim` depends only on `drivers`, so it does not read `cell.toml` itself: the `takt`
//! binary maps a parsed cell file onto these types. They derive serde so a test or a tool
//! can also keep a simulated cell in TOML.

use serde::{Deserialize, Serialize};
use takt_drivers::canopen::NodeId;
use takt_drivers::canopen::cob;
use takt_drivers::canopen::pdo::comm::{COB_ID_INVALID, COB_ID_NO_RTR};

use crate::drive::{DriveDefaults, DriveSpec, HoldingBrake, MotorSpec};
use crate::node::{CommDefaults, PdoDefault};
use crate::physics::{ServoParams, StepperParams};
use crate::world::WorldSpec;

/// One CAN bus of the cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSpec {
    /// Interface name, as traces record it (`can0`).
    pub name: String,
    /// Bit rate, bit/s.
    pub bitrate: u32,
}

/// What a device is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
// Built once per device when a cell is set up and read in place after that: boxing the
// drive would add an indirection to every look at it and save nothing that matters.
#[allow(clippy::large_enum_variant)]
pub enum DeviceKind {
    /// A CiA 402 drive with its axis.
    Drive(DriveSpec),
    /// A CiA 401 I/O node with 8 inputs and 8 outputs.
    Io,
}

/// One device of the cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Its name in the cell (`x`, `infeed`, `io`).
    pub name: String,
    /// Node-ID, 1..=127.
    pub node: u8,
    /// Index of its bus in [`CellSpec::buses`].
    #[serde(default)]
    pub bus: usize,
    /// Producer heartbeat time at power-on (0x1017), ms; 0: off until configured.
    #[serde(default)]
    pub heartbeat_ms: u16,
    /// Power-on time after the start of the run, ms (a device that appears late).
    #[serde(default)]
    pub power_on_ms: u64,
    /// What it is.
    #[serde(flatten)]
    pub kind: DeviceKind,
}

/// A whole simulated cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSpec {
    /// A name for reports.
    pub name: String,
    /// The buses; devices refer to them by index.
    pub buses: Vec<BusSpec>,
    /// The devices.
    pub devices: Vec<DeviceSpec>,
    /// The world: conveyors with parts, gantry geometry, I/O wiring.
    #[serde(default)]
    pub world: Option<WorldSpec>,
}

impl CellSpec {
    /// The device named `name`.
    pub fn device(&self, name: &str) -> Option<&DeviceSpec> {
        self.devices.iter().find(|d| d.name == name)
    }
}

/// Vendor-ID the simulated devices report in 0x1018:01 ("takt" is not a registered vendor;
/// the value only has to be stable).
pub const VENDOR_ID: u32 = 0x0074_616B;

const DRIVE_RPDO1: &[(u16, u8, u8)] = &[(0x6040, 0, 16), (0x607A, 0, 32)];
const DRIVE_RPDO2: &[(u16, u8, u8)] = &[(0x6040, 0, 16), (0x60FF, 0, 32)];
const DRIVE_TPDO1: &[(u16, u8, u8)] = &[(0x6041, 0, 16), (0x6061, 0, 8)];
const DRIVE_TPDO2: &[(u16, u8, u8)] = &[(0x6041, 0, 16), (0x6064, 0, 32)];
const IO_RPDO1: &[(u16, u8, u8)] = &[(0x6200, 1, 8)];
const IO_TPDO1: &[(u16, u8, u8)] = &[(0x6000, 1, 8)];

fn pdo(
    base: u16,
    node: NodeId,
    valid: bool,
    transmission: u8,
    mapping: &'static [(u16, u8, u8)],
) -> PdoDefault {
    let id = u32::from(base + u16::from(node.get()));
    PdoDefault {
        cob_id: id | COB_ID_NO_RTR | if valid { 0 } else { COB_ID_INVALID },
        transmission,
        inhibit_100us: 0,
        event_timer_ms: 0,
        mapping,
    }
}

/// The factory communication defaults of a simulated drive on `node`: RPDO1 controlword +
/// target position and TPDO1 statusword + mode display, event-driven and valid; RPDO2
/// controlword + target velocity and TPDO2 statusword + position actual on every SYNC,
/// present but not valid until the controller enables them.
pub fn drive_comm(node: NodeId, spec: &DriveSpec, heartbeat_ms: u16) -> CommDefaults {
    let (kind, name) = match spec.motor {
        MotorSpec::Servo { .. } => (0x0002u32, "takt simulated servo drive"),
        MotorSpec::Stepper { .. } => (0x0003u32, "takt simulated stepper drive"),
    };
    CommDefaults {
        device_type: kind << 16 | 402,
        name: name.to_owned(),
        hardware_version: "sim".to_owned(),
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        identity: [
            VENDOR_ID,
            0x0402,
            0x0001_0000,
            0x5000 + u32::from(node.get()),
        ],
        heartbeat_ms,
        rpdo: [
            pdo(cob::RPDO[0], node, true, 255, DRIVE_RPDO1),
            pdo(cob::RPDO[1], node, false, 255, DRIVE_RPDO2),
            PdoDefault::unused(cob::RPDO[2] + u16::from(node.get())),
            PdoDefault::unused(cob::RPDO[3] + u16::from(node.get())),
        ],
        tpdo: [
            pdo(cob::TPDO[0], node, true, 255, DRIVE_TPDO1),
            pdo(cob::TPDO[1], node, false, 1, DRIVE_TPDO2),
            PdoDefault::unused(cob::TPDO[2] + u16::from(node.get())),
            PdoDefault::unused(cob::TPDO[3] + u16::from(node.get())),
        ],
    }
}

/// The factory communication defaults of a simulated I/O node on `node`: RPDO1 outputs and
/// TPDO1 inputs, event-driven and valid.
pub fn io_comm(node: NodeId, heartbeat_ms: u16) -> CommDefaults {
    CommDefaults {
        device_type: 0x0003_0191,
        name: "takt simulated I/O node".to_owned(),
        hardware_version: "sim".to_owned(),
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        identity: [
            VENDOR_ID,
            0x0401,
            0x0001_0000,
            0x5000 + u32::from(node.get()),
        ],
        heartbeat_ms,
        rpdo: [
            pdo(cob::RPDO[0], node, true, 255, IO_RPDO1),
            PdoDefault::unused(cob::RPDO[1] + u16::from(node.get())),
            PdoDefault::unused(cob::RPDO[2] + u16::from(node.get())),
            PdoDefault::unused(cob::RPDO[3] + u16::from(node.get())),
        ],
        tpdo: [
            pdo(cob::TPDO[0], node, true, 255, IO_TPDO1),
            PdoDefault::unused(cob::TPDO[1] + u16::from(node.get())),
            PdoDefault::unused(cob::TPDO[2] + u16::from(node.get())),
            PdoDefault::unused(cob::TPDO[3] + u16::from(node.get())),
        ],
    }
}

/// A servo axis of the demo gantry: a 20 000-count encoder on a 20 mm lead screw
/// (1000 counts/mm, as config/cell.toml scales X and Y), profile velocity and acceleration
/// at the axis' limits, following error window 2 mm for 50 ms, position window 0.1 mm;
/// software limits off until the controller sets them (they only mean something after
/// homing).
pub fn gantry_servo(
    travel_mm: f64,
    max_velocity_mm_s: f64,
    max_acceleration_mm_s2: f64,
    home_switch_mm: Option<f64>,
) -> DriveSpec {
    let counts_per_mm = 1000.0;
    let c = |mm: f64| (mm * counts_per_mm).round() as u32;
    DriveSpec {
        motor: MotorSpec::Servo {
            params: ServoParams::gantry(),
            counts_per_rev: 20_000,
        },
        mm_per_rev: 20.0,
        start_mm: 0.0,
        // Multi-turn absolute encoders, as config/cell.toml says of X and Y: a reboot keeps
        // the position, so the controller reads it back instead of homing.
        absolute_encoder: true,
        home_switch_mm,
        homing_search_mm: travel_mm,
        // Horizontal: nothing pulls on it, and it needs no brake.
        load_torque_nm: 0.0,
        holding_brake: None,
        defaults: DriveDefaults {
            profile_velocity_counts_s: c(max_velocity_mm_s),
            profile_acceleration_counts_s2: c(max_acceleration_mm_s2),
            profile_deceleration_counts_s2: c(max_acceleration_mm_s2),
            quick_stop_deceleration_counts_s2: c(2.0 * max_acceleration_mm_s2),
            following_error_window_counts: c(2.0),
            following_error_timeout_ms: 50,
            position_window_counts: c(0.1),
            position_window_time_ms: 5,
            software_limits_counts: [0, 0],
            quick_stop_option: 2,
            fault_reaction_option: 2,
            abort_connection_option: 1,
            homing_speeds_counts_s: [c(50.0), c(5.0)],
            homing_acceleration_counts_s2: c(1000.0),
            velocity_threshold_counts_s: c(1.0) as u16,
        },
    }
}

/// The Z axis of the demo gantry: a stepper with encoder on a 5 mm lead screw, 16
/// micro-steps (640 counts/mm), standing at the top of its 150 mm travel at power-on (Z
/// counts upwards), 600 mm/s and 5 m/s² as config/cell.toml allows, home switch just below
/// the top; no following error monitoring in the drive until the controller sets 0x6065
/// (an open-loop drive has none of its own). Gravity pulls it down; a holding brake holds
/// it whenever the drive gives no torque.
pub fn z_stepper() -> DriveSpec {
    let counts_per_mm = 3200.0 / 5.0;
    let c = |mm: f64| (mm * counts_per_mm).round() as u32;
    DriveSpec {
        motor: MotorSpec::Stepper {
            params: StepperParams::z_axis(),
            microsteps: 16,
        },
        mm_per_rev: 5.0,
        start_mm: 150.0,
        absolute_encoder: false,
        home_switch_mm: Some(148.0),
        homing_search_mm: 160.0,
        // A 3 kg slide and gripper on the 5 mm screw: 3 × 9.81 × 0.005 / 2π ≈ 0.023 N·m,
        // a little more than the screw's dry friction, so the unpowered axis would sink.
        load_torque_nm: 0.023,
        // The vertical axis's spring-applied brake: about 35 times the load's torque,
        // braking the moving axis at about 1.6 g (under the 4 g that tears a part off the
        // nozzle), gripping 20 ms after the drive drops it and letting go in 30 ms.
        holding_brake: Some(HoldingBrake {
            torque_nm: 0.8,
            engage_ms: 20,
            release_ms: 30,
        }),
        defaults: DriveDefaults {
            profile_velocity_counts_s: c(600.0),
            profile_acceleration_counts_s2: c(5000.0),
            profile_deceleration_counts_s2: c(5000.0),
            quick_stop_deceleration_counts_s2: c(8000.0),
            following_error_window_counts: u32::MAX,
            following_error_timeout_ms: 50,
            position_window_counts: c(0.2),
            position_window_time_ms: 5,
            software_limits_counts: [0, 0],
            quick_stop_option: 2,
            fault_reaction_option: 2,
            abort_connection_option: 1,
            homing_speeds_counts_s: [c(20.0), c(2.0)],
            homing_acceleration_counts_s2: c(500.0),
            velocity_threshold_counts_s: c(1.0) as u16,
        },
    }
}

/// A conveyor drive: a servo on a 100 mm-per-revolution roller with a 20 000-count encoder
/// (200 counts/mm, as config/cell.toml scales the conveyors), run in profile velocity at
/// `speed_mm_s` by default.
pub fn conveyor(speed_mm_s: f64) -> DriveSpec {
    let counts_per_mm = 200.0;
    let c = |mm: f64| (mm * counts_per_mm).round() as u32;
    DriveSpec {
        motor: MotorSpec::Servo {
            params: ServoParams {
                inertia_kg_m2: 2.0e-3,
                viscous_nm_s_per_rad: 0.02,
                coulomb_nm: 0.3,
                torque_limit_nm: 6.0,
                position_bandwidth_hz: 10.0,
                velocity_bandwidth_hz: 50.0,
            },
            counts_per_rev: 20_000,
        },
        mm_per_rev: 100.0,
        start_mm: 0.0,
        absolute_encoder: false,
        home_switch_mm: None,
        homing_search_mm: 0.0,
        load_torque_nm: 0.0,
        holding_brake: None,
        defaults: DriveDefaults {
            profile_velocity_counts_s: c(speed_mm_s),
            profile_acceleration_counts_s2: c(2000.0),
            profile_deceleration_counts_s2: c(2000.0),
            quick_stop_deceleration_counts_s2: c(4000.0),
            following_error_window_counts: c(20.0),
            following_error_timeout_ms: 200,
            position_window_counts: c(1.0),
            position_window_time_ms: 0,
            software_limits_counts: [0, 0],
            quick_stop_option: 2,
            fault_reaction_option: 2,
            abort_connection_option: 1,
            homing_speeds_counts_s: [c(50.0), c(5.0)],
            homing_acceleration_counts_s2: c(1000.0),
            velocity_threshold_counts_s: c(1.0) as u16,
        },
    }
}

/// The demo cell of BRIEF.md with the numbers of config/cell.toml, on one 1 Mbit/s bus
/// `can0`: nodes 1–3 the X, Y and Z axes (Z a stepper with encoder), 4 the infeed and 5 the
/// outfeed conveyor, 10 the I/O node, and the world with its conveyors, parts and gantry
/// geometry ([`WorldSpec::demo`]).
pub fn demo_cell() -> CellSpec {
    let dev = |name: &str, node: u8, kind: DeviceKind| DeviceSpec {
        name: name.to_owned(),
        node,
        bus: 0,
        heartbeat_ms: 0,
        power_on_ms: 0,
        kind,
    };
    CellSpec {
        name: "demo".to_owned(),
        buses: vec![BusSpec {
            name: "can0".to_owned(),
            bitrate: 1_000_000,
        }],
        devices: vec![
            dev(
                "x",
                1,
                DeviceKind::Drive(gantry_servo(600.0, 1500.0, 10_000.0, Some(2.0))),
            ),
            dev(
                "y",
                2,
                DeviceKind::Drive(gantry_servo(400.0, 1200.0, 8_000.0, Some(2.0))),
            ),
            dev("z", 3, DeviceKind::Drive(z_stepper())),
            dev("infeed", 4, DeviceKind::Drive(conveyor(250.0))),
            dev("outfeed", 5, DeviceKind::Drive(conveyor(400.0))),
            dev("io", 10, DeviceKind::Io),
        ],
        world: Some(WorldSpec::demo()),
    }
}
