//! PDO layouts: the objects each process-data frame carries, and the named profiles.
//!
//! A device in the cell file gives either a named `profile` or its own `rpdo` / `tpdo` lists.
//! The layout decides the frame's length and so its share of the bus (see
//! [`busload`](crate::busload)). Object names follow CiA 402 / CiA 401; any other object is
//! written `0xINDEX:SUB/BITS`, e.g. `0x2010:01/16`.
//!
//! ```
//! use takt_sequences::pdo::{parse_object, profile};
//!
//! assert_eq!(parse_object("target_position").unwrap().bits, 32);
//! assert_eq!(parse_object("0x2010:01/16").unwrap().index, 0x2010);
//! let csp = profile("servo_csp").unwrap();
//! assert_eq!(csp.iter().map(|p| p.bytes()).collect::<Vec<_>>(), [6, 6]);
//! ```

/// Direction of a PDO, seen from the device (CiA 301 naming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Receive PDO: controller → device.
    Rpdo,
    /// Transmit PDO: device → controller.
    Tpdo,
}

/// When a PDO is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmission {
    /// On every `every`-th SYNC (CiA 301 transmission types 1–240).
    Sync {
        /// 1 = every SYNC.
        every: u8,
    },
    /// On change (types 254/255), no more often than the inhibit time.
    Event {
        /// Inhibit time (0x1800 sub 3), µs; `None` = unbounded.
        inhibit_us: Option<u32>,
        /// Event timer (0x1800 sub 5), ms.
        event_timer_ms: Option<u32>,
    },
}

/// One mapped object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedObject {
    /// Object index.
    pub index: u16,
    /// Sub-index.
    pub sub: u8,
    /// Length in bits.
    pub bits: u8,
    /// Name, if a known object.
    pub name: Option<&'static str>,
}

/// One PDO of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdo {
    /// RPDO or TPDO.
    pub direction: Direction,
    /// 1 to 4 (the default COB-ID set).
    pub number: u8,
    /// What it carries.
    pub map: Vec<MappedObject>,
    /// When it is sent.
    pub transmission: Transmission,
}

impl Pdo {
    /// Data length in bytes (mapped bits rounded up).
    pub fn bytes(&self) -> u8 {
        let bits: u32 = self.map.iter().map(|m| u32::from(m.bits)).sum();
        bits.div_ceil(8).min(255) as u8
    }

    /// The pre-defined connection set COB-ID for this PDO of `node` (CiA 301 §7.3.5).
    pub fn cob_id(&self, node: u8) -> u16 {
        let base: u16 = match self.direction {
            Direction::Tpdo => 0x180,
            Direction::Rpdo => 0x200,
        };
        base + 0x100 * (u16::from(self.number) - 1) + u16::from(node)
    }

    /// "RPDO1", "TPDO2".
    pub fn label(&self) -> String {
        match self.direction {
            Direction::Rpdo => format!("RPDO{}", self.number),
            Direction::Tpdo => format!("TPDO{}", self.number),
        }
    }
}

/// Known objects: name, index, sub-index, bits.
pub const OBJECTS: &[(&str, u16, u8, u8)] = &[
    ("controlword", 0x6040, 0, 16),
    ("statusword", 0x6041, 0, 16),
    ("error_code", 0x603F, 0, 16),
    ("modes_of_operation", 0x6060, 0, 8),
    ("modes_of_operation_display", 0x6061, 0, 8),
    ("position_actual", 0x6064, 0, 32),
    ("velocity_actual", 0x606C, 0, 32),
    ("torque_actual", 0x6077, 0, 16),
    ("target_position", 0x607A, 0, 32),
    ("profile_velocity", 0x6081, 0, 32),
    ("following_error_actual", 0x60F4, 0, 32),
    ("target_velocity", 0x60FF, 0, 32),
    ("digital_inputs", 0x6000, 1, 8),
    ("digital_inputs_2", 0x6000, 2, 8),
    ("digital_outputs", 0x6200, 1, 8),
    ("digital_outputs_2", 0x6200, 2, 8),
];

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Neither a known name nor `0xINDEX:SUB/BITS`.
    #[error("unknown object `{name}`")]
    Unknown {
        /// As written.
        name: String,
        /// A close known name.
        suggestion: Option<&'static str>,
    },
    /// `0x…` form with a bad part.
    #[error("`{0}` is not of the form 0xINDEX:SUB/BITS")]
    BadRaw(String),
}

/// Reads an object name or `0xINDEX:SUB/BITS`.
pub fn parse_object(s: &str) -> Result<MappedObject, ObjectError> {
    if let Some(&(name, index, sub, bits)) = OBJECTS.iter().find(|o| o.0 == s) {
        return Ok(MappedObject {
            index,
            sub,
            bits,
            name: Some(name),
        });
    }
    if let Some(raw) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        let bad = || ObjectError::BadRaw(s.to_owned());
        let (index, rest) = raw.split_once(':').ok_or_else(bad)?;
        let (sub, bits) = rest.split_once('/').ok_or_else(bad)?;
        let index = u16::from_str_radix(index, 16).map_err(|_| bad())?;
        let sub = u8::from_str_radix(sub.trim_start_matches("0x"), 16).map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        if !matches!(bits, 1 | 8 | 16 | 24 | 32 | 64) {
            return Err(bad());
        }
        return Ok(MappedObject {
            index,
            sub,
            bits,
            name: None,
        });
    }
    Err(ObjectError::Unknown {
        name: s.to_owned(),
        suggestion: crate::reader::did_you_mean(s, OBJECTS.iter().map(|o| o.0)),
    })
}

fn obj(name: &str) -> MappedObject {
    // Only called with names from OBJECTS (see `profile`), covered by the profile unit test.
    parse_object(name).unwrap_or(MappedObject {
        index: 0,
        sub: 0,
        bits: 0,
        name: None,
    })
}

fn pdo(direction: Direction, number: u8, names: &[&str], transmission: Transmission) -> Pdo {
    Pdo {
        direction,
        number,
        map: names.iter().map(|n| obj(n)).collect(),
        transmission,
    }
}

const EVERY_SYNC: Transmission = Transmission::Sync { every: 1 };

/// The PDOs of a named profile.
///
/// * `servo_csp`, `stepper_csp`: cyclic synchronous position; RPDO1 controlword + target
///   position and TPDO1 statusword + position actual, both on every SYNC.
/// * `servo_pp`: profile position; RPDO1 controlword + target position on change (inhibit
///   10 ms), TPDO1 statusword + position actual on every SYNC.
/// * `conveyor_pv`: profile velocity; RPDO1 controlword + target velocity on change (inhibit
///   10 ms), TPDO1 statusword + position actual on every SYNC (the position is what an index
///   move and a resync need).
/// * `io_8in_8out`: RPDO1 digital outputs on change (inhibit 10 ms), TPDO1 digital inputs on
///   change (inhibit 2 ms, event timer 100 ms).
pub fn profile(name: &str) -> Option<Vec<Pdo>> {
    use Direction::{Rpdo, Tpdo};
    let event = |inhibit_ms: u32, timer_ms: Option<u32>| Transmission::Event {
        inhibit_us: Some(inhibit_ms * 1000),
        event_timer_ms: timer_ms,
    };
    Some(match name {
        "servo_csp" | "stepper_csp" => vec![
            pdo(Rpdo, 1, &["controlword", "target_position"], EVERY_SYNC),
            pdo(Tpdo, 1, &["statusword", "position_actual"], EVERY_SYNC),
        ],
        "servo_pp" => vec![
            pdo(
                Rpdo,
                1,
                &["controlword", "target_position"],
                event(10, None),
            ),
            pdo(Tpdo, 1, &["statusword", "position_actual"], EVERY_SYNC),
        ],
        "conveyor_pv" => vec![
            pdo(
                Rpdo,
                1,
                &["controlword", "target_velocity"],
                event(10, None),
            ),
            pdo(Tpdo, 1, &["statusword", "position_actual"], EVERY_SYNC),
        ],
        "io_8in_8out" => vec![
            pdo(Rpdo, 1, &["digital_outputs"], event(10, None)),
            pdo(Tpdo, 1, &["digital_inputs"], event(2, Some(100))),
        ],
        _ => return None,
    })
}

/// The device kinds a profile is meant for.
pub fn profile_kinds(name: &str) -> &'static [&'static str] {
    match name {
        "servo_csp" | "servo_pp" => &["servo"],
        "stepper_csp" => &["stepper", "servo"],
        "conveyor_pv" => &["conveyor"],
        "io_8in_8out" => &["io"],
        _ => &[],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_maps_known_objects() {
        for name in crate::spec::PROFILE_NAMES {
            let pdos = profile(name).unwrap();
            assert!(!pdos.is_empty(), "{name}");
            for p in pdos {
                assert!(p.map.iter().all(|m| m.bits > 0), "{name}");
                assert!(p.bytes() <= 8);
            }
            assert!(!profile_kinds(name).is_empty());
        }
    }

    #[test]
    fn cob_ids_follow_the_predefined_connection_set() {
        let p = &profile("servo_csp").unwrap();
        assert_eq!(p[0].cob_id(1), 0x201);
        assert_eq!(p[1].cob_id(1), 0x181);
    }

    #[test]
    fn raw_objects() {
        assert_eq!(parse_object("0x6040:00/16").unwrap().name, None);
        assert!(matches!(
            parse_object("0x6040/16"),
            Err(ObjectError::BadRaw(_))
        ));
        assert!(matches!(
            parse_object("0x6040:00/12"),
            Err(ObjectError::BadRaw(_))
        ));
        assert_eq!(
            parse_object("statusword_"),
            Err(ObjectError::Unknown {
                name: "statusword_".into(),
                suggestion: Some("statusword")
            })
        );
    }
}
