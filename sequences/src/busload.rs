//! Planned bus load: how much of each CAN bus the configured traffic takes, at worst.
//!
//! The model, per bus, in frames per second times worst-case bits per frame over the bit rate:
//!
//! * **SYNC**: one frame per SYNC period, 0 data bytes (1 with `sync_counter`).
//! * **Cyclic PDOs** (`transmission = "sync"`): once every `every`-th SYNC, each RPDO and TPDO
//!   at its mapped length.
//! * **Event-driven PDOs** (`transmission = "event"`): at their worst case, one per inhibit
//!   time (a value that changes all the time, like a moving position, sends at exactly that
//!   rate). An event-driven PDO without an inhibit time has no bound and is refused by the
//!   check; its event timer alone does not bound it.
//! * **Heartbeats**: every device's (1 byte, at its `heartbeat` period) and the controller's
//!   own (at `controller_heartbeat`).
//!
//! Not counted: SDO transfers (commissioning and start-up only), EMCY (sporadic, on faults),
//! NMT commands. The ceiling (70 % by default) is the headroom for them and for the
//! arbitration delays a full bus causes.
//!
//! Every frame is counted at its worst-case length with bit stuffing, see
//! [`worst_case_frame_bits`].

use crate::pdo::Transmission;
use crate::program::{BusConfig, DeviceConfig};

/// Worst-case length on the wire of a classic CAN frame with an 11-bit identifier and
/// `data_bytes` data bytes, in bits, including the 3-bit interframe space.
///
/// Of the 47 + 8n bits of a frame, the 34 + 8n from start-of-frame to the CRC are subject to
/// bit stuffing; in the worst case a stuff bit follows the first 5 equal bits and then every 4,
/// giving s(b) = b + (b − 1) / 4 (integer division) bits; the 13 bits of CRC delimiter, ACK,
/// end-of-frame and interframe space are not stuffed. This is the formula of Linux
/// `include/linux/can/length.h`: 135 bits for 8 data bytes, 55 for none.
///
/// ```
/// use takt_sequences::busload::worst_case_frame_bits;
/// assert_eq!(worst_case_frame_bits(8), 135);
/// assert_eq!(worst_case_frame_bits(0), 55);
/// ```
pub fn worst_case_frame_bits(data_bytes: u8) -> u32 {
    let stuffed_region = 34 + 8 * u32::from(data_bytes.min(8));
    stuffed_region + (stuffed_region - 1) / 4 + 13
}

/// One kind of frame on a bus and its share.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameLoad {
    /// What it is: `SYNC`, `x_drive TPDO1`, `heartbeat io`.
    pub name: String,
    /// COB-ID.
    pub cob_id: u16,
    /// Data bytes.
    pub bytes: u8,
    /// Worst-case bits on the wire.
    pub bits: u32,
    /// Frames per second, at worst.
    pub per_s: f64,
    /// Share of the bus, percent.
    pub load_percent: f64,
}

/// The planned load of one bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BusLoad {
    /// Bus name.
    pub bus: String,
    /// Bit rate.
    pub bitrate_bit_s: u32,
    /// SYNC period.
    pub sync_period_us: u32,
    /// The frames, in COB-ID order.
    pub frames: Vec<FrameLoad>,
    /// Total frames per second.
    pub frames_per_s: f64,
    /// Total load, percent.
    pub load_percent: f64,
    /// The configured ceiling, percent.
    pub ceiling_percent: f64,
}

/// A PDO whose load has no upper bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbounded {
    /// Device name.
    pub device: String,
    /// `TPDO1` etc.
    pub pdo: String,
}

/// Computes the planned load of `bus` from the devices on it.
pub fn bus_load(
    bus: &BusConfig,
    bus_index: usize,
    devices: &[DeviceConfig],
) -> (BusLoad, Vec<Unbounded>) {
    let bitrate = f64::from(bus.bitrate_bit_s.max(1));
    let sync_per_s = 1e6 / f64::from(bus.sync_period_us.max(1));
    let mut frames = Vec::new();
    let mut unbounded = Vec::new();
    let mut push = |name: String, cob_id: u16, bytes: u8, per_s: f64| {
        let bits = worst_case_frame_bits(bytes);
        frames.push(FrameLoad {
            name,
            cob_id,
            bytes,
            bits,
            per_s,
            load_percent: per_s * f64::from(bits) / bitrate * 100.0,
        });
    };
    push("SYNC".into(), 0x080, u8::from(bus.sync_counter), sync_per_s);
    for d in devices.iter().filter(|d| d.bus.index() == bus_index) {
        for p in &d.pdos {
            let per_s = match p.transmission {
                Transmission::Sync { every } => sync_per_s / f64::from(every.max(1)),
                Transmission::Event {
                    inhibit_us: Some(us),
                    ..
                } if us > 0 => 1e6 / f64::from(us),
                Transmission::Event { .. } => {
                    unbounded.push(Unbounded {
                        device: d.name.clone(),
                        pdo: p.label(),
                    });
                    continue;
                }
            };
            push(
                format!("{} {}", d.name, p.label()),
                p.cob_id(d.node),
                p.bytes(),
                per_s,
            );
        }
        if d.heartbeat_ms > 0 {
            push(
                format!("{} heartbeat", d.name),
                0x700 + u16::from(d.node),
                1,
                1000.0 / f64::from(d.heartbeat_ms),
            );
        }
    }
    if bus.controller_heartbeat_ms > 0 {
        push(
            "controller heartbeat".into(),
            0x700 + u16::from(bus.controller_node),
            1,
            1000.0 / f64::from(bus.controller_heartbeat_ms),
        );
    }
    frames.sort_by_key(|f| f.cob_id);
    let load_percent = frames.iter().map(|f| f.load_percent).sum();
    let frames_per_s = frames.iter().map(|f| f.per_s).sum();
    (
        BusLoad {
            bus: bus.name.clone(),
            bitrate_bit_s: bus.bitrate_bit_s,
            sync_period_us: bus.sync_period_us,
            frames,
            frames_per_s,
            load_percent,
            ceiling_percent: bus.load_ceiling_percent,
        },
        unbounded,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::program::{BusId, DeviceKind};

    #[test]
    fn frame_lengths_match_the_kernel_formula() {
        let expected = [55, 65, 75, 85, 95, 105, 115, 125, 135];
        for (n, bits) in expected.iter().enumerate() {
            assert_eq!(worst_case_frame_bits(n as u8), *bits, "{n} bytes");
        }
    }

    fn bus(sync_us: u32) -> BusConfig {
        BusConfig {
            name: "can0".into(),
            interface: "can0".into(),
            bitrate_bit_s: 1_000_000,
            sync_period_us: sync_us,
            sync_counter: false,
            controller_node: 127,
            controller_heartbeat_ms: 0,
            load_ceiling_percent: 70.0,
        }
    }

    fn csp_axis(node: u8) -> DeviceConfig {
        DeviceConfig {
            name: format!("axis{node}"),
            bus: BusId(0),
            node,
            kind: DeviceKind::Servo,
            heartbeat_ms: 0,
            pdos: crate::pdo::profile("servo_csp").unwrap_or_default(),
        }
    }

    /// BRIEF.md: at a 1 ms SYNC on 1 Mbit/s, CSP fits only about two axes under 70 %.
    #[test]
    fn csp_at_one_millisecond_fits_two_axes() {
        let two = [csp_axis(1), csp_axis(2)];
        let three = [csp_axis(1), csp_axis(2), csp_axis(3)];
        let (l2, _) = bus_load(&bus(1000), 0, &two);
        let (l3, _) = bus_load(&bus(1000), 0, &three);
        assert!(l2.load_percent < 70.0, "{}", l2.load_percent);
        assert!(l3.load_percent > 70.0, "{}", l3.load_percent);
        // SYNC 55 bits + 2 × 2 × 115 bits per millisecond.
        assert!((l2.load_percent - (55.0 + 460.0) / 10.0).abs() < 1e-9);
    }

    #[test]
    fn event_pdo_without_inhibit_is_unbounded() {
        let mut d = csp_axis(1);
        d.pdos[0].transmission = Transmission::Event {
            inhibit_us: None,
            event_timer_ms: Some(100),
        };
        let (_, unbounded) = bus_load(&bus(2000), 0, &[d]);
        assert_eq!(unbounded.len(), 1);
    }
}
