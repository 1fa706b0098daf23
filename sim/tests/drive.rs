//! The simulated CiA 402 drive, driven over frames alone: power state machine, profile
//! position with the set-point handshake, quick stop, cyclic synchronous position, profile
//! velocity, homing, software limits, and a stepper that loses steps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use takt_drivers::can::Frame;
use takt_drivers::canopen::NmtCommand;
use takt_sim::cia402::PowerState;

use support::Rig;

const X_COUNTS_PER_MM: f64 = 1000.0;

#[test]
fn bring_up_and_a_profile_position_move_over_sdo() {
    let mut rig = Rig::demo("x");
    rig.run_ms(60);
    assert_eq!(
        rig.statusword() & 0x4F,
        0x40,
        "switch on disabled after boot"
    );
    rig.write(0x6060, 0, &[1]).unwrap();
    rig.controlword(0x06);
    assert_eq!(rig.wait_status(0x6F, 0x21, 10) & 0x6F, 0x21);
    rig.controlword(0x07);
    rig.wait_status(0x6F, 0x23, 10);
    rig.controlword(0x0F);
    rig.wait_status(0x6F, 0x27, 10);
    assert_eq!(rig.read(0x6061, 0).unwrap(), vec![1]);

    let target = (250.0 * X_COUNTS_PER_MM) as i32;
    rig.write(0x607A, 0, &target.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    let sw = rig.wait_status(0x1000, 0x1000, 20);
    assert_eq!(sw & 0x0400, 0, "target not reached while starting");
    rig.controlword(0x0F);
    rig.wait_status(0x1000, 0x0000, 20);
    // While moving, the servo lags its demand: the following error is real.
    rig.run_ms(100);
    let fe = rig.read_i32(0x60F4, 0);
    assert!(fe.abs() > 10, "following error while accelerating: {fe}");
    rig.wait_status(0x0400, 0x0400, 3000);
    let actual = rig.read_i32(0x6064, 0);
    assert!((actual - target).abs() <= 100, "{actual} vs {target}");
    let mm = rig.dev.as_drive().unwrap().physical_mm();
    assert!((mm - 250.0).abs() < 0.12, "{mm}");
}

#[test]
fn the_done_when_move_over_pdos_only() {
    let mut rig = Rig::demo("y");
    rig.run_ms(60);
    rig.nmt(NmtCommand::Start);
    // Mode through SDO once, everything else through RPDO1 (controlword + target) and
    // TPDO1 (statusword + mode display, on change).
    rig.write(0x6060, 0, &[1]).unwrap();
    let rpdo = |cw: u16, target: i32| {
        let mut d = [0u8; 6];
        d[..2].copy_from_slice(&cw.to_le_bytes());
        d[2..].copy_from_slice(&target.to_le_bytes());
        Frame::standard(0x202, d)
    };
    let last_sw = |rig: &Rig| {
        let f = rig.frames_on(0x182).last().unwrap().1;
        u16::from_le_bytes([f.data()[0], f.data()[1]])
    };
    for cw in [0x06, 0x07, 0x0F] {
        rig.send(rpdo(cw, 0));
        rig.run_ms(3);
    }
    assert_eq!(last_sw(&rig) & 0x6F, 0x27);
    rig.send(rpdo(0x1F, 20_000));
    rig.run_ms(3);
    assert_ne!(last_sw(&rig) & 0x1000, 0, "set-point acknowledged");
    rig.send(rpdo(0x0F, 20_000));
    let mut reached = false;
    for _ in 0..2000 {
        rig.step();
        if last_sw(&rig) & 0x1400 == 0x0400 {
            reached = true;
            break;
        }
    }
    assert!(reached);
    let p = rig.dev.core().od().value(0x6064, 0).unwrap();
    assert!((p - 20_000).abs() <= 100, "{p}");
}

#[test]
fn a_second_set_point_waits_unless_change_immediately() {
    let mut rig = Rig::demo("x");
    rig.enable(1);
    rig.write(0x607A, 0, &40_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.run_ms(50);
    // Buffered: the first move completes, then the second runs.
    rig.write(0x607A, 0, &10_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    let mut max_seen = 0;
    for _ in 0..2000 {
        max_seen = max_seen.max(rig.read_i32(0x6062, 0));
        if rig.statusword() & 0x0400 != 0 {
            break;
        }
    }
    assert!(
        max_seen >= 39_990,
        "reached the first target first: {max_seen}"
    );
    let p = rig.read_i32(0x6064, 0);
    assert!((p - 10_000).abs() < 100, "{p} {}", rig.read_i32(0x6062, 0));
    // Change immediately: the drive turns round at once.
    rig.write(0x607A, 0, &60_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.run_ms(30);
    rig.write(0x607A, 0, &0i32.to_le_bytes()).unwrap();
    rig.controlword(0x3F);
    rig.controlword(0x0F);
    let mut max_seen = 0;
    for _ in 0..2000 {
        max_seen = max_seen.max(rig.read_i32(0x6062, 0));
        if rig.statusword() & 0x0400 != 0 {
            break;
        }
    }
    assert!(max_seen < 40_000, "turned before 60000: {max_seen}");
    assert!(rig.read_i32(0x6064, 0).abs() < 100);
}

#[test]
fn quick_stop_decelerates_then_disables_per_0x605a() {
    let mut rig = Rig::demo("x");
    rig.enable(1);
    rig.write(0x607A, 0, &500_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.run_ms(150);
    rig.controlword(0x0B);
    let sw = rig.statusword();
    assert_eq!(sw & 0x6F, 0x07, "quick stop active: {sw:#06X}");
    rig.wait_status(0x4F, 0x40, 500);
    let p1 = rig.read_i32(0x6064, 0);
    rig.run_ms(100);
    assert!((rig.read_i32(0x6064, 0) - p1).abs() < 200, "stopped");
    assert!(p1 < 500_000);
    // Option 6: stay in quick stop active, and enable operation returns (transition 16).
    rig.write(0x605A, 0, &6i16.to_le_bytes()).unwrap();
    rig.controlword(0x06);
    rig.controlword(0x0F);
    rig.wait_status(0x6F, 0x27, 20);
    rig.controlword(0x0B);
    rig.run_ms(100);
    assert_eq!(rig.statusword() & 0x6F, 0x07);
    rig.controlword(0x0F);
    rig.wait_status(0x6F, 0x27, 20);
}

#[test]
fn cyclic_synchronous_position_takes_the_set_point_at_sync() {
    let mut rig = Rig::demo("x");
    rig.run_ms(60);
    // RPDO1 synchronous: its value is applied at the next SYNC only.
    rig.write(0x1400, 1, &0xC000_0201u32.to_le_bytes()).unwrap();
    rig.write(0x1400, 2, &[1]).unwrap();
    rig.write(0x1400, 1, &0x4000_0201u32.to_le_bytes()).unwrap();
    rig.nmt(NmtCommand::Start);
    rig.enable(8);
    let send = |rig: &mut Rig, target: i32| {
        let mut d = [0u8; 6];
        d[..2].copy_from_slice(&0x0Fu16.to_le_bytes());
        d[2..].copy_from_slice(&target.to_le_bytes());
        rig.send(Frame::standard(0x201, d));
    };
    send(&mut rig, 500);
    rig.run_ms(4);
    assert_eq!(
        rig.dev.core().od().value(0x607A, 0),
        Some(0),
        "not before SYNC"
    );
    for k in 1..=200 {
        // 2 ms SYNC; the set-point ramps at 100 counts per cycle (50 000 counts/s).
        send(&mut rig, 100 * k);
        rig.send(Frame::standard(0x080, []));
        rig.run_ms(2);
    }
    let demand = rig.dev.core().od().value(0x6062, 0).unwrap();
    assert!((demand - 20_000).abs() <= 100, "{demand}");
    let actual = rig.dev.core().od().value(0x6064, 0).unwrap();
    assert!(
        (actual - 20_000).abs() < 1_000,
        "follows with a lag: {actual}"
    );
    assert_ne!(
        rig.statusword() & 0x1000,
        0,
        "drive follows the command value"
    );
}

#[test]
fn profile_velocity_runs_a_conveyor() {
    let mut rig = Rig::demo("infeed");
    rig.enable(3);
    let v = 40_000i32; // 200 mm/s at 200 counts/mm
    rig.write(0x60FF, 0, &v.to_le_bytes()).unwrap();
    rig.run_ms(500);
    let actual = rig.read_i32(0x606C, 0);
    assert!((actual - v).abs() < 200, "{actual}");
    assert_ne!(rig.statusword() & 0x0400, 0, "velocity reached");
    let mm_s = rig.dev.as_drive().unwrap().velocity_mm_s();
    assert!((mm_s - 200.0).abs() < 5.0, "{mm_s}");
    rig.controlword(0x010F); // halt
    rig.run_ms(400);
    // Stopped: within the velocity threshold 0x606F (1 mm/s); dry friction against the
    // loop's integral may leave a slight hunt.
    let v = rig.read_i32(0x606C, 0);
    assert!(v.abs() <= 200, "{v}");
    assert_ne!(rig.statusword() & 0x1000, 0, "speed zero");
}

#[test]
fn homing_35_sets_the_home_offset_where_the_axis_stands() {
    let mut rig = Rig::demo("x");
    rig.enable(1);
    rig.write(0x607A, 0, &3_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.wait_status(0x0400, 0x0400, 500);
    rig.write(0x6060, 0, &[6]).unwrap();
    rig.write(0x6098, 0, &[35]).unwrap();
    rig.write(0x607C, 0, &(-1000i32).to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    let sw = rig.wait_status(0x1400, 0x1400, 20);
    assert_eq!(sw & 0x2000, 0);
    // Method 35 takes the actual position at that instant; the loop then settles the last
    // counts of lag within the position window.
    let p = rig.read_i32(0x6064, 0);
    assert!((p + 1000).abs() <= 150, "{p}");
}

#[test]
fn homing_on_the_home_switch_finds_its_edge() {
    for method in [19u8, 21] {
        let mut rig = Rig::demo("x");
        rig.enable(6);
        rig.write(0x6098, 0, &[method]).unwrap();
        rig.write(0x607C, 0, &500i32.to_le_bytes()).unwrap();
        rig.controlword(0x1F);
        rig.wait_status(0x3400, 0x1400, 20_000);
        // The switch edge of the demo X axis is at 2 mm; it reads 500 counts there.
        let drive = rig.dev.as_drive().unwrap();
        let at_edge =
            drive.position_actual_counts() as f64 - (drive.physical_mm() - 2.0) * X_COUNTS_PER_MM;
        assert!((at_edge - 500.0).abs() < 50.0, "method {method}: {at_edge}");
    }
}

#[test]
fn software_limits_clamp_targets() {
    let mut rig = Rig::demo("y");
    rig.enable(1);
    rig.write(0x607D, 2, &400_000i32.to_le_bytes()).unwrap();
    let max = rig.read_i32(0x607D, 2);
    rig.write(0x607A, 0, &(max + 50_000).to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    let sw = rig.statusword();
    assert_ne!(sw & 0x0800, 0, "internal limit active: {sw:#06X}");
    rig.controlword(0x0F);
    rig.wait_status(0x0400, 0x0400, 3000);
    assert!((rig.read_i32(0x6064, 0) - max).abs() <= 100);
}

#[test]
fn a_stepper_driven_too_hard_loses_steps_and_the_encoder_shows_it() {
    let mut rig = Rig::demo("z");
    rig.enable(1);
    // A gentle move first: encoder and demand agree.
    rig.write(0x607A, 0, &(-20_000i32).to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.wait_status(0x0400, 0x0400, 2000);
    let demand = rig.read_i32(0x6062, 0);
    let actual = rig.read_i32(0x6064, 0);
    assert!((demand - actual).abs() < 16, "{demand} vs {actual}");
    // Then far too hard: 60 m/s² at 300 mm/s.
    rig.write(0x6083, 0, &38_400_000u32.to_le_bytes()).unwrap();
    rig.write(0x6084, 0, &38_400_000u32.to_le_bytes()).unwrap();
    rig.write(0x6081, 0, &192_000u32.to_le_bytes()).unwrap();
    rig.write(0x607A, 0, &(-60_000i32).to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.controlword(0x0F);
    rig.run_ms(1000);
    let demand = rig.read_i32(0x6062, 0);
    let actual = rig.read_i32(0x6064, 0);
    assert_eq!(demand, -60_000);
    let lost = (demand - actual).abs();
    assert!(
        lost >= 64,
        "lost at least one electrical period: {lost} counts"
    );
    assert_eq!(
        rig.dev.as_drive().unwrap().power_state(),
        PowerState::OperationEnabled
    );
}

/// `name` booted with RPDO1 (controlword + target) synchronous, `configure`d over SDO,
/// started and enabled: the rig, its node-ID and where the axis stands, counts.
fn csp_rig(name: &str, configure: impl FnOnce(&mut Rig)) -> (Rig, u16, f64) {
    let mut rig = Rig::demo(name);
    let node = rig.node().get() as u16;
    rig.run_ms(60);
    rig.write(0x1400, 1, &(0xC000_0200u32 + u32::from(node)).to_le_bytes())
        .unwrap();
    rig.write(0x1400, 2, &[1]).unwrap();
    rig.write(0x1400, 1, &(0x4000_0200u32 + u32::from(node)).to_le_bytes())
        .unwrap();
    configure(&mut rig);
    rig.nmt(NmtCommand::Start);
    rig.enable(8);
    let start = rig.dev.core().od().value(0x6064, 0).unwrap() as f64;
    (rig, node, start)
}

/// Runs a CSP move of `travel` counts at `v` counts/s and `a` counts/s² on `name`, a
/// set-point every 2 ms SYNC as the controller sends them; returns the largest
/// |demand − actual| seen and the final error, in counts.
fn csp_move(name: &str, travel: f64, v: f64, a: f64) -> (i64, i64) {
    let (mut rig, node, start) = csp_rig(name, |_| {});
    let mut profile = takt_sim::profile::Profile::at(start);
    let mut worst = 0i64;
    let dt = 0.002;
    for _ in 0..3000 {
        profile.to_position(start + travel, v, a, a, dt);
        let mut d = [0u8; 6];
        d[..2].copy_from_slice(&0x0Fu16.to_le_bytes());
        d[2..].copy_from_slice(&(profile.position_counts.round() as i32).to_le_bytes());
        rig.send(Frame::standard(0x200 + node, d));
        rig.send(Frame::standard(0x080, []));
        rig.run_ms(2);
        let od = rig.dev.core().od();
        let fe = od.value(0x6062, 0).unwrap() - od.value(0x6064, 0).unwrap();
        worst = worst.max(fe.abs());
        if profile.is_still() && profile.position_counts == start + travel && worst > 0 {
            break;
        }
    }
    rig.run_ms(200);
    let od = rig.dev.core().od();
    let end = od.value(0x6064, 0).unwrap() - (start + travel) as i64;
    assert_eq!(
        rig.dev.as_drive().unwrap().power_state(),
        PowerState::OperationEnabled,
        "{name} did not fault"
    );
    (worst, end)
}

#[test]
fn the_axes_follow_the_cell_files_limits_in_csp_within_their_windows() {
    // X at config/cell.toml's limits: 1500 mm/s, 10 m/s², following error window 2 mm.
    let (worst, end) = csp_move("x", 500_000.0, 1_500_000.0, 10_000_000.0);
    assert!(
        worst > 5,
        "a real lag, small with the drive's velocity feed-forward: {worst}"
    );
    assert!(worst < 2_000, "inside the 2 mm window: {worst}");
    assert!(end.abs() < 100, "settles: {end}");
    // Z (the stepper): 600 mm/s, 5 m/s² down 130 mm, no step lost (1 mm = 640 counts).
    let (worst, end) = csp_move("z", -130.0 * 640.0, 600.0 * 640.0, 5000.0 * 640.0);
    assert!(worst < 640, "Z keeps its steps: {worst}");
    assert!(end.abs() < 32, "settles on its step grid: {end}");
}

#[test]
fn disable_operation_slows_down_first_unless_0x605c_says_coast() {
    for option in [1i16, 0] {
        let mut rig = Rig::demo("x");
        rig.enable(1);
        rig.write(0x605C, 0, &option.to_le_bytes()).unwrap();
        rig.write(0x607A, 0, &500_000i32.to_le_bytes()).unwrap();
        rig.controlword(0x1F);
        rig.controlword(0x0F);
        rig.run_ms(100);
        rig.controlword(0x07); // disable operation: transition 5
        let sw = rig.statusword();
        if option == 1 {
            assert_eq!(
                sw & 0x6F,
                0x27,
                "still enabled while slowing down: {sw:#06X}"
            );
            rig.wait_status(0x6F, 0x23, 500);
            let speed = rig.dev.as_drive().unwrap().velocity_mm_s();
            assert!(speed.abs() < 2.0, "stopped under control: {speed}");
        } else {
            assert_eq!(sw & 0x6F, 0x23, "at once: {sw:#06X}");
            let speed = rig.dev.as_drive().unwrap().velocity_mm_s();
            assert!(speed.abs() > 100.0, "coasting: {speed}");
        }
    }
}

/// Z's holding brake (CiA 402 brake control by the drive): transition 4 reports operation
/// enabled only once the brake has let go; with the power stage off it grips and holds
/// the axis that gravity pulls down; Safe Torque Off while Z runs down at full speed stops
/// it within the brake's engage time and braking distance instead of letting it coast.
#[test]
fn the_z_brake_lets_go_before_operation_enabled_and_grips_without_torque() {
    let mut rig = Rig::demo("z");
    rig.run_ms(60);
    let brake = |rig: &Rig| rig.dev.as_drive().unwrap().brake_engaged();
    let z_mm = |rig: &Rig| rig.dev.as_drive().unwrap().physical_mm();
    assert!(brake(&rig), "engaged after power-on");
    rig.write(0x6060, 0, &[1]).unwrap();
    rig.controlword(0x06);
    rig.wait_status(0x6F, 0x21, 50);
    rig.controlword(0x0F);
    assert_eq!(
        rig.statusword() & 0x6F,
        0x23,
        "switched on while the brake lets go"
    );
    rig.wait_status(0x6F, 0x27, 50);
    assert!(!brake(&rig));

    // Disable voltage: the brake grips and holds the axis against gravity.
    rig.controlword(0x00);
    rig.run_ms(50);
    assert!(brake(&rig));
    let held = z_mm(&rig);
    rig.run_ms(2000);
    assert!((z_mm(&rig) - held).abs() < 1e-6, "{held} -> {}", z_mm(&rig));
    // 0x60FE:01 bit 0 (set brake, enabled in 0x60FE:02) keeps it engaged on enable.
    rig.write(0x60FE, 2, &1u32.to_le_bytes()).unwrap();
    rig.write(0x60FE, 1, &1u32.to_le_bytes()).unwrap();
    rig.controlword(0x06);
    rig.wait_status(0x6F, 0x21, 50);
    rig.controlword(0x0F);
    rig.run_ms(200);
    assert_eq!(
        rig.statusword() & 0x6F,
        0x23,
        "held in switched on by 0x60FE"
    );
    rig.write(0x60FE, 1, &0u32.to_le_bytes()).unwrap();
    rig.wait_status(0x6F, 0x27, 50);

    // Down at full speed (600 mm/s), then STO: 20 ms coasting, then the brake.
    // Position actual counts from where Z stood at power-on (150 mm): 130 mm down.
    let target = (-130.0 * 640.0) as i32;
    rig.write(0x607A, 0, &target.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    rig.run_ms(200);
    let drive = rig.dev.as_drive().unwrap();
    let (at_sto, v) = (drive.physical_mm(), drive.velocity_mm_s());
    assert!(v < -590.0, "running down: {v} mm/s");
    rig.dev.as_drive_mut().unwrap().set_safe_torque_off(true);
    rig.run_ms(200);
    let drive = rig.dev.as_drive().unwrap();
    assert_eq!(drive.velocity_mm_s(), 0.0);
    assert!(brake(&rig));
    let ran_on = at_sto - drive.physical_mm();
    // 600 mm/s × 20 ms + 600² / (2 × 15.9 m/s²) ≈ 23 mm; without the brake Z would coast on
    // dry friction alone for some 45 cm.
    assert!((15.0..30.0).contains(&ran_on), "ran on {ran_on} mm");
}

/// A CSP move of `travel` counts at `v` counts/s and `a` counts/s² on `name` at a SYNC of
/// `sync_ms`, each set-point computed for its place on the SYNC grid but the SYNC frame
/// (with the set-point before it) arriving `jitter_ms[k % len]` off that place, as from a
/// host whose cycle wakes up late or early; with `interpolation`, 0x60C2 says the period.
/// Returns the largest |demand − actual| seen and the final error, in counts.
fn jittered_csp_move(
    name: &str,
    (travel, v, a): (f64, f64, f64),
    sync_ms: u64,
    jitter_ms: &[i64],
    interpolation: bool,
) -> (i64, i64) {
    let (mut rig, node, start) = csp_rig(name, |rig| {
        if interpolation {
            rig.write(0x60C2, 1, &[sync_ms as u8]).unwrap();
            rig.write(0x60C2, 2, &[(-3i8) as u8]).unwrap();
        }
    });
    let mut profile = takt_sim::profile::Profile::at(start);
    let mut worst = 0i64;
    // A SYNC that holds the axis where it stands first, as the controller starts CSP.
    let mut d = [0u8; 6];
    d[..2].copy_from_slice(&0x0Fu16.to_le_bytes());
    d[2..].copy_from_slice(&(start as i32).to_le_bytes());
    rig.send(Frame::standard(0x200 + node, d));
    rig.send(Frame::standard(0x080, []));
    let mut at_ms = 0i64;
    let mut standing = 0;
    for k in 1..3000i64 {
        profile.to_position(start + travel, v, a, a, sync_ms as f64 / 1000.0);
        let due = k * sync_ms as i64 + jitter_ms[k as usize % jitter_ms.len()];
        rig.run_ms((due - at_ms).max(0) as u64);
        at_ms = at_ms.max(due);
        let mut d = [0u8; 6];
        d[..2].copy_from_slice(&0x0Fu16.to_le_bytes());
        d[2..].copy_from_slice(&(profile.position_counts.round() as i32).to_le_bytes());
        rig.send(Frame::standard(0x200 + node, d));
        rig.send(Frame::standard(0x080, []));
        let od = rig.dev.core().od();
        let fe = od.value(0x6062, 0).unwrap() - od.value(0x6064, 0).unwrap();
        worst = worst.max(fe.abs());
        if profile.is_still() && profile.position_counts == start + travel {
            // The set-point stays, SYNC goes on: 30 periods to settle.
            standing += 1;
            if standing == 30 {
                break;
            }
        }
    }
    let od = rig.dev.core().od();
    let end = od.value(0x6064, 0).unwrap() - (start + travel) as i64;
    (worst, end)
}

#[test]
fn a_drive_told_its_interpolation_period_rides_out_sync_jitter() {
    // Z (the stepper) down 130 mm at 150 mm/s and 5 m/s², SYNC every 10 ms, each SYNC up
    // to 3 ms late or early on the wire (as a loaded emulated host delivers them).
    let z = (-130.0 * 640.0, 150.0 * 640.0, 5000.0 * 640.0);
    let jitter = [0, 2, -2, 3, -1, 1, -3];
    let (worst, end) = jittered_csp_move("z", z, 10, &[0], true);
    assert!(worst < 640 && end.abs() < 32, "on time: {worst} {end}");
    let (worst, end) = jittered_csp_move("z", z, 10, &jitter, true);
    assert!(worst < 640, "Z keeps its steps: {worst}");
    assert!(end.abs() < 32, "settles on its step grid: {end}");
    // Interpolating over the interval since the last SYNC instead turns each late or
    // early frame into a velocity step, and the stepper stalls.
    let (worst, end) = jittered_csp_move("z", z, 10, &jitter, false);
    assert!(worst >= 640 || end.abs() >= 32, "{worst} {end}");
}
