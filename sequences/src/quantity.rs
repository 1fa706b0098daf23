//! Quantities with units: `"120 mm"`, `"500 mm/s"`, `"2 s"`, `"90 deg"`.
//!
//! Line engineers write every physical value as a string with its unit, so a misplaced
//! millimetre-for-metre or a velocity where a length belongs is caught before a drive moves.
//! A bare number where a unit is required is an error (see [`QuantityError::MissingUnit`]).
//!
//! ```
//! use takt_sequences::quantity::{Dim, Quantity};
//!
//! let q: Quantity = "1.5 m/s".parse().unwrap();
//! assert_eq!(q.dim, Dim::LinearVelocity);
//! assert_eq!(q.value, 1500.0); // stored in mm/s, the base unit of linear velocity
//! ```
//!
//! Every dimension has one base unit — mm, deg, s, %, bit/s, counts/mm, counts/deg — and
//! [`Quantity::value`] is always in it.

use std::fmt;
use std::str::FromStr;

/// The physical dimension of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Linear position or distance; base unit mm.
    Length,
    /// Angular position; base unit deg.
    Angle,
    /// Duration; base unit s.
    Time,
    /// mm/s.
    LinearVelocity,
    /// deg/s.
    AngularVelocity,
    /// mm/s².
    LinearAcceleration,
    /// deg/s².
    AngularAcceleration,
    /// mm/s³.
    LinearJerk,
    /// deg/s³.
    AngularJerk,
    /// Percent (of an axis maximum, of a bus's capacity).
    Percent,
    /// CAN bit rate; base unit bit/s.
    Bitrate,
    /// Encoder or step counts per mm.
    LinearScale,
    /// Encoder or step counts per degree.
    AngularScale,
}

impl Dim {
    /// What a line engineer calls this dimension, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Dim::Length => "a length",
            Dim::Angle => "an angle",
            Dim::Time => "a time",
            Dim::LinearVelocity | Dim::AngularVelocity => "a velocity",
            Dim::LinearAcceleration | Dim::AngularAcceleration => "an acceleration",
            Dim::LinearJerk | Dim::AngularJerk => "a jerk",
            Dim::Percent => "a percentage",
            Dim::Bitrate => "a bit rate",
            Dim::LinearScale | Dim::AngularScale => "a scaling (counts per unit)",
        }
    }

    /// The base unit [`Quantity::value`] is expressed in.
    pub fn base_unit(self) -> &'static str {
        match self {
            Dim::Length => "mm",
            Dim::Angle => "deg",
            Dim::Time => "s",
            Dim::LinearVelocity => "mm/s",
            Dim::AngularVelocity => "deg/s",
            Dim::LinearAcceleration => "mm/s²",
            Dim::AngularAcceleration => "deg/s²",
            Dim::LinearJerk => "mm/s³",
            Dim::AngularJerk => "deg/s³",
            Dim::Percent => "%",
            Dim::Bitrate => "bit/s",
            Dim::LinearScale => "counts/mm",
            Dim::AngularScale => "counts/deg",
        }
    }

    /// True for the dimensions of a rotary axis.
    pub fn is_angular(self) -> bool {
        matches!(
            self,
            Dim::Angle
                | Dim::AngularVelocity
                | Dim::AngularAcceleration
                | Dim::AngularJerk
                | Dim::AngularScale
        )
    }

    /// A regular expression (JSON Schema `pattern`) accepting the units of these dimensions.
    pub fn schema_pattern(dims: &[Dim]) -> String {
        let mut units: Vec<&str> = UNITS
            .iter()
            .filter(|u| dims.contains(&u.dim))
            .map(|u| u.name)
            .collect();
        // Longest first, so that `mm/s` is not cut short at `mm` by an alternation.
        units.sort_by_key(|u| std::cmp::Reverse(u.len()));
        let alternatives: Vec<String> = units.iter().map(|u| regex_escape(u)).collect();
        format!(
            r"^\s*[-+]?([0-9][0-9_]*)?(\.[0-9_]+)?([eE][-+]?[0-9]+)?\s*({})\s*$",
            alternatives.join("|")
        )
    }

    /// Some units of these dimensions, for hints: `mm, cm, m`.
    pub fn some_units(dims: &[Dim]) -> String {
        let mut out: Vec<&str> = Vec::new();
        for d in dims {
            let mut n = 0;
            for u in UNITS.iter().filter(|u| u.dim == *d && u.preferred) {
                if n < 3 && !out.contains(&u.name) {
                    out.push(u.name);
                    n += 1;
                }
            }
        }
        out.join(", ")
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A number with a dimension, in the dimension's base unit (see [`Dim::base_unit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// Magnitude in the base unit of `dim`.
    pub value: f64,
    /// What it measures.
    pub dim: Dim,
}

impl Quantity {
    /// The magnitude if the dimension is `dim`.
    pub fn of(self, dim: Dim) -> Option<f64> {
        (self.dim == dim).then_some(self.value)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", trim_float(self.value), self.dim.base_unit())
    }
}

/// Formats a float without a trailing `.0` and without float noise, for messages.
pub fn trim_float(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Why a quantity string could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantityError {
    /// The string is empty.
    #[error("empty quantity")]
    Empty,
    /// `"mm"`: a unit without a number.
    #[error("`{0}` has no number")]
    MissingNumber(String),
    /// `"120"`: a number without a unit.
    #[error("`{0}` has no unit")]
    MissingUnit(String),
    /// `"120 mn"`.
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The closest known unit, if one is close.
        suggestion: Option<&'static str>,
    },
    /// The number does not parse or is not finite.
    #[error("`{0}` is not a number")]
    BadNumber(String),
}

struct Unit {
    name: &'static str,
    dim: Dim,
    factor: f64,
    /// Shown in hints; spelling variants (`mm/s^2`, `mm/s2`) are accepted but not advertised.
    preferred: bool,
}

const fn u(name: &'static str, dim: Dim, factor: f64, preferred: bool) -> Unit {
    Unit {
        name,
        dim,
        factor,
        preferred,
    }
}

const RAD_DEG: f64 = 180.0 / std::f64::consts::PI;

static UNITS: &[Unit] = &[
    u("mm", Dim::Length, 1.0, true),
    u("cm", Dim::Length, 10.0, true),
    u("m", Dim::Length, 1000.0, true),
    u("µm", Dim::Length, 1e-3, false),
    u("um", Dim::Length, 1e-3, false),
    u("deg", Dim::Angle, 1.0, true),
    u("°", Dim::Angle, 1.0, false),
    u("rad", Dim::Angle, RAD_DEG, true),
    u("rev", Dim::Angle, 360.0, true),
    u("s", Dim::Time, 1.0, true),
    u("ms", Dim::Time, 1e-3, true),
    u("us", Dim::Time, 1e-6, false),
    u("µs", Dim::Time, 1e-6, false),
    u("min", Dim::Time, 60.0, true),
    u("mm/s", Dim::LinearVelocity, 1.0, true),
    u("m/s", Dim::LinearVelocity, 1000.0, true),
    u("m/min", Dim::LinearVelocity, 1000.0 / 60.0, true),
    u("mm/min", Dim::LinearVelocity, 1.0 / 60.0, false),
    u("deg/s", Dim::AngularVelocity, 1.0, true),
    u("rev/s", Dim::AngularVelocity, 360.0, true),
    u("rpm", Dim::AngularVelocity, 6.0, true),
    u("rev/min", Dim::AngularVelocity, 6.0, false),
    u("rad/s", Dim::AngularVelocity, RAD_DEG, false),
    u("mm/s²", Dim::LinearAcceleration, 1.0, true),
    u("mm/s^2", Dim::LinearAcceleration, 1.0, false),
    u("mm/s2", Dim::LinearAcceleration, 1.0, false),
    u("m/s²", Dim::LinearAcceleration, 1000.0, true),
    u("m/s^2", Dim::LinearAcceleration, 1000.0, false),
    u("m/s2", Dim::LinearAcceleration, 1000.0, false),
    u("deg/s²", Dim::AngularAcceleration, 1.0, true),
    u("deg/s^2", Dim::AngularAcceleration, 1.0, false),
    u("deg/s2", Dim::AngularAcceleration, 1.0, false),
    u("rad/s²", Dim::AngularAcceleration, RAD_DEG, false),
    u("rad/s^2", Dim::AngularAcceleration, RAD_DEG, false),
    u("mm/s³", Dim::LinearJerk, 1.0, true),
    u("mm/s^3", Dim::LinearJerk, 1.0, false),
    u("mm/s3", Dim::LinearJerk, 1.0, false),
    u("m/s³", Dim::LinearJerk, 1000.0, true),
    u("m/s^3", Dim::LinearJerk, 1000.0, false),
    u("m/s3", Dim::LinearJerk, 1000.0, false),
    u("deg/s³", Dim::AngularJerk, 1.0, true),
    u("deg/s^3", Dim::AngularJerk, 1.0, false),
    u("deg/s3", Dim::AngularJerk, 1.0, false),
    u("%", Dim::Percent, 1.0, true),
    u("bit/s", Dim::Bitrate, 1.0, true),
    u("kbit/s", Dim::Bitrate, 1e3, true),
    u("Mbit/s", Dim::Bitrate, 1e6, true),
    u("counts/mm", Dim::LinearScale, 1.0, true),
    u("counts/m", Dim::LinearScale, 1e-3, false),
    u("counts/deg", Dim::AngularScale, 1.0, true),
    u("counts/rev", Dim::AngularScale, 1.0 / 360.0, true),
];

/// Byte offsets of the number and the unit inside a quantity string, for carets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantityParts {
    /// Where the unit starts (byte offset into the string), or the string's length if none.
    pub unit_start: usize,
}

/// Splits `" 120.5 mm "` into number and unit and locates the unit.
pub fn split(s: &str) -> (&str, &str, QuantityParts) {
    let trimmed_start = s.len() - s.trim_start().len();
    let body = s.trim();
    let num_len = body
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '.'
                || c == '_'
                || ((c == '-' || c == '+')
                    && (i == 0 || body[..i].ends_with('e') || body[..i].ends_with('E')))
                || ((c == 'e' || c == 'E')
                    && i > 0
                    && body[i + 1..]
                        .chars()
                        .next()
                        .is_some_and(|n| n.is_ascii_digit() || n == '-' || n == '+')))
        })
        .map_or(body.len(), |(i, _)| i);
    let number = &body[..num_len];
    let rest = &body[num_len..];
    let unit = rest.trim_start();
    let unit_start = trimmed_start + num_len + (rest.len() - unit.len());
    (number, unit, QuantityParts { unit_start })
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (number, unit, _) = split(s);
        if number.is_empty() && unit.is_empty() {
            return Err(QuantityError::Empty);
        }
        if number.is_empty() {
            return Err(QuantityError::MissingNumber(s.trim().to_owned()));
        }
        let value: f64 = number
            .replace('_', "")
            .parse()
            .map_err(|_| QuantityError::BadNumber(number.to_owned()))?;
        if !value.is_finite() {
            return Err(QuantityError::BadNumber(number.to_owned()));
        }
        if unit.is_empty() {
            return Err(QuantityError::MissingUnit(s.trim().to_owned()));
        }
        match UNITS.iter().find(|u| u.name == unit) {
            Some(found) => Ok(Quantity {
                value: value * found.factor,
                dim: found.dim,
            }),
            None => Err(QuantityError::UnknownUnit {
                unit: unit.to_owned(),
                suggestion: closest_unit(unit),
            }),
        }
    }
}

fn closest_unit(unit: &str) -> Option<&'static str> {
    // Case slips (`MM`, `mbit/s`) are the most common; then one-letter typos.
    if let Some(u) = UNITS.iter().find(|u| u.name.eq_ignore_ascii_case(unit)) {
        return Some(u.name);
    }
    UNITS
        .iter()
        .filter(|u| u.preferred)
        .map(|u| (strsim::levenshtein(u.name, unit), u.name))
        .filter(|&(d, name)| d <= 1 || (d <= 2 && name.len() > 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn reads_units_into_base_units() {
        assert_eq!(
            q("120 mm"),
            Quantity {
                value: 120.0,
                dim: Dim::Length
            }
        );
        assert_eq!(
            q("0.5m"),
            Quantity {
                value: 500.0,
                dim: Dim::Length
            }
        );
        assert_eq!(q("150 ms").value, 0.15);
        assert_eq!(
            q("1 Mbit/s"),
            Quantity {
                value: 1e6,
                dim: Dim::Bitrate
            }
        );
        assert_eq!(q("100_000 mm/s³").dim, Dim::LinearJerk);
        assert_eq!(q("1e5 mm/s^3").value, 1e5);
        assert_eq!(q("-3 deg").value, -3.0);
        assert_eq!(q("80 %").dim, Dim::Percent);
        assert_eq!(q("3200 counts/rev").value, 3200.0 / 360.0);
        assert!((q("1 rad").value - 57.29577951308232).abs() < 1e-9);
    }

    #[test]
    fn rejects_what_a_line_engineer_gets_wrong() {
        assert_eq!(
            "120".parse::<Quantity>(),
            Err(QuantityError::MissingUnit("120".into()))
        );
        assert_eq!(
            "mm".parse::<Quantity>(),
            Err(QuantityError::MissingNumber("mm".into()))
        );
        assert_eq!(
            "120 mn".parse::<Quantity>(),
            Err(QuantityError::UnknownUnit {
                unit: "mn".into(),
                suggestion: Some("mm")
            })
        );
        assert_eq!(
            "1 mbit/s".parse::<Quantity>(),
            Err(QuantityError::UnknownUnit {
                unit: "mbit/s".into(),
                suggestion: Some("Mbit/s")
            })
        );
        assert_eq!("".parse::<Quantity>(), Err(QuantityError::Empty));
        assert!(matches!(
            "1.2.3 mm".parse::<Quantity>(),
            Err(QuantityError::BadNumber(_))
        ));
    }

    #[test]
    fn locates_the_unit_for_carets() {
        let (n, u, parts) = split("  12 mm/s ");
        assert_eq!((n, u), ("12", "mm/s"));
        assert_eq!(parts.unit_start, 5);
    }

    #[test]
    fn schema_pattern_accepts_only_the_right_dimension() {
        let p = Dim::schema_pattern(&[Dim::Length]);
        assert!(p.contains("mm") && !p.contains("mm\\/s"));
    }
}
