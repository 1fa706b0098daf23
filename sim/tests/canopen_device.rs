//! The CiA 301 core of a simulated device, exercised over a drivers `VirtualBus` with the
//! drivers' `SdoClient` as the peer: NMT, boot-up, heartbeat producer and consumer, SDO
//! (expedited, segmented, aborts), EMCY, and PDOs configured through SDO.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use takt_drivers::can::Frame;
use takt_drivers::canopen::emcy::FOLLOWING_ERROR;
use takt_drivers::canopen::pdo::{
    MappingEntry, PdoCobId, PdoCommParams, PdoConfig, PdoConfigStatus, PdoConfigurator, PdoId,
    PdoMapping, TransmissionType,
};
use takt_drivers::canopen::sdo::{AbortCode, SdoClient, SdoErrorKind};
use takt_drivers::canopen::{Emergency, Heartbeat, NmtCommand, NmtState};
use takt_sim::node::NodeState;

use support::Rig;

fn abort_of(r: Result<impl std::fmt::Debug, takt_drivers::canopen::SdoError>) -> AbortCode {
    match r {
        Err(e) => match e.kind {
            SdoErrorKind::ServerAbort(code) => code,
            other => panic!("expected an abort, got {other:?}"),
        },
        Ok(v) => panic!("expected an abort, got {v:?}"),
    }
}

#[test]
fn boot_up_then_heartbeat_in_each_nmt_state() {
    let mut rig = Rig::demo("x");
    rig.run_ms(49);
    assert!(rig.seen.is_empty(), "silent while initialising");
    rig.run_ms(2);
    assert_eq!(rig.seen.len(), 1);
    assert_eq!(rig.seen[0].1.to_string(), "701#00");
    rig.write(0x1017, 0, &100u16.to_le_bytes()).unwrap();
    rig.run_ms(250);
    let beats = rig.frames_on(0x701);
    assert!(beats.len() >= 3, "{beats:?}");
    assert_eq!(beats.last().unwrap().1.data(), &[0x7F]);
    rig.nmt(NmtCommand::Start);
    rig.run_ms(120);
    assert_eq!(rig.frames_on(0x701).last().unwrap().1.data(), &[0x05]);
    rig.nmt(NmtCommand::Stop);
    rig.run_ms(120);
    assert_eq!(rig.frames_on(0x701).last().unwrap().1.data(), &[0x04]);
    assert_eq!(rig.dev.core().state(), NodeState::Stopped);
    // A stopped node serves no SDO.
    let mut c = SdoClient::new(rig.node(), 16);
    c.start_upload(
        takt_drivers::canopen::sdo::Multiplexer::new(0x1000, 0),
        rig.now,
    )
    .unwrap();
    let req = c.poll(rig.now).unwrap();
    let before = rig.seen.len();
    rig.send(req);
    rig.run_ms(5);
    assert!(
        rig.seen[before..]
            .iter()
            .all(|(_, f)| f.standard_id() != Some(0x581))
    );
    rig.nmt(NmtCommand::EnterPreOperational);
    assert_eq!(rig.dev.core().state(), NodeState::PreOperational);
}

#[test]
fn identity_and_segmented_reads() {
    let mut rig = Rig::demo("z");
    rig.run_ms(60);
    assert_eq!(
        rig.read_u32(0x1000, 0),
        0x0003_0192,
        "a CiA 402 stepper drive"
    );
    assert_eq!(rig.read(0x1018, 0).unwrap(), vec![4]);
    assert_eq!(rig.read_u32(0x1018, 1), takt_sim::cell::VENDOR_ID);
    assert_eq!(rig.read_u32(0x1018, 4), 0x5003);
    let name = rig.read(0x1008, 0).unwrap();
    assert_eq!(name, b"takt simulated stepper drive");
    // Segmented download into a string, read back.
    rig.write(0x2001, 0, b"Z axis, vacuum gripper").unwrap();
    assert_eq!(rig.read(0x2001, 0).unwrap(), b"Z axis, vacuum gripper");
    let io = Rig::demo("io").dev.core().od().value(0x1000, 0);
    assert_eq!(io, Some(0x0003_0191));
}

#[test]
fn sdo_aborts_carry_the_cia301_codes() {
    let mut rig = Rig::demo("x");
    rig.run_ms(60);
    assert_eq!(abort_of(rig.read(0x2FFF, 0)), AbortCode::ObjectDoesNotExist);
    assert_eq!(
        abort_of(rig.read(0x1018, 9)),
        AbortCode::SubIndexDoesNotExist
    );
    assert_eq!(
        abort_of(rig.write(0x6041, 0, &[0, 0])),
        AbortCode::WriteOfReadOnly
    );
    assert_eq!(
        abort_of(rig.write(0x1000, 0, &[0; 4])),
        AbortCode::WriteOfReadOnly
    );
    assert_eq!(
        abort_of(rig.write(0x605A, 0, &9i16.to_le_bytes())),
        AbortCode::ValueTooHigh
    );
    assert_eq!(
        abort_of(rig.write(0x6040, 0, &[1, 2, 3, 4])),
        AbortCode::LengthTooHigh
    );
    assert_eq!(
        abort_of(rig.write(0x6040, 0, &[1])),
        AbortCode::LengthTooLow
    );
    assert_eq!(
        abort_of(rig.write(0x6060, 0, &[4])),
        AbortCode::InvalidValue,
        "torque mode unsupported"
    );
    assert_eq!(
        abort_of(rig.write(0x6098, 0, &[1])),
        AbortCode::InvalidValue,
        "homing method 1 unsupported"
    );
    // Wrong state: a mapping changes only while its PDO is not valid.
    assert_eq!(abort_of(rig.write(0x1A00, 0, &[0])), AbortCode::DeviceState);
    // A valid PDO's COB-ID cannot move.
    assert_eq!(
        abort_of(rig.write(0x1800, 1, &0x4000_0190u32.to_le_bytes())),
        AbortCode::InvalidValue
    );
    // Reserved transmission type.
    assert_eq!(
        abort_of(rig.write(0x1801, 2, &[245])),
        AbortCode::InvalidValue
    );
    // Mapping a read-only object into an RPDO, and an unmappable one into a TPDO.
    rig.write(0x1401, 1, &0xC000_0301u32.to_le_bytes()).unwrap();
    rig.write(0x1601, 0, &[0]).unwrap();
    assert_eq!(
        abort_of(rig.write(
            0x1601,
            1,
            &MappingEntry::new(0x6041, 0, 16).to_u32().to_le_bytes()
        )),
        AbortCode::CannotBeMapped
    );
    assert_eq!(
        abort_of(rig.write(
            0x1601,
            1,
            &MappingEntry::new(0x6085, 0, 32).to_u32().to_le_bytes()
        )),
        AbortCode::CannotBeMapped
    );
    assert_eq!(
        abort_of(rig.write(
            0x1601,
            1,
            &MappingEntry::new(0x7777, 0, 32).to_u32().to_le_bytes()
        )),
        AbortCode::ObjectDoesNotExist
    );
    // Too many bits.
    for k in 1..=3u8 {
        rig.write(
            0x1601,
            k,
            &MappingEntry::new(0x607A, 0, 32).to_u32().to_le_bytes(),
        )
        .unwrap();
    }
    assert_eq!(
        abort_of(rig.write(0x1601, 0, &[3])),
        AbortCode::PdoLengthExceeded
    );
    // The device keeps serving after every abort.
    assert_eq!(rig.read_u32(0x1000, 0), 0x0002_0192);
}

#[test]
fn reset_node_and_reset_communication_restore_defaults() {
    let mut rig = Rig::demo("y");
    rig.run_ms(60);
    let default_velocity = rig.read_u32(0x6081, 0);
    rig.write(0x6081, 0, &1234u32.to_le_bytes()).unwrap();
    rig.write(0x1017, 0, &50u16.to_le_bytes()).unwrap();
    rig.nmt(NmtCommand::ResetCommunication);
    rig.run_ms(10);
    assert_eq!(
        rig.read_u32(0x1017, 0),
        0,
        "communication objects back to defaults"
    );
    assert_eq!(rig.read_u32(0x6081, 0), 1234, "application objects kept");
    let boots = rig
        .frames_on(0x702)
        .iter()
        .filter(|(_, f)| f.data() == [0])
        .count();
    assert_eq!(boots, 2, "boot-up after power-on and after the reset");
    rig.nmt(NmtCommand::ResetNode);
    rig.run_ms(60);
    assert_eq!(rig.read_u32(0x6081, 0), default_velocity);
    let boots = rig
        .frames_on(0x702)
        .iter()
        .filter(|(_, f)| f.data() == [0])
        .count();
    assert_eq!(boots, 3);
}

#[test]
fn heartbeat_consumer_loss_reports_emcy_and_applies_0x6007() {
    let mut rig = Rig::demo("x");
    rig.enable(1);
    // Watch the controller (node 127) with a 50 ms timeout.
    rig.write(0x1016, 1, &((127u32 << 16) | 50).to_le_bytes())
        .unwrap();
    let beat = Heartbeat {
        node: takt_drivers::canopen::NodeId::new(127).unwrap(),
        state: NmtState::Operational,
    }
    .encode();
    for _ in 0..10 {
        rig.send(beat);
        rig.run_ms(20);
    }
    assert_eq!(
        rig.statusword() & 0x6F,
        0x27,
        "still enabled while the controller beats"
    );
    rig.run_ms(80);
    let emcys: Vec<_> = rig
        .frames_on(0x081)
        .iter()
        .map(|(_, f)| Emergency::decode(f).unwrap().code.0)
        .collect();
    assert!(emcys.contains(&0x8130), "{emcys:x?}");
    assert_eq!(rig.statusword() & 0x4F, 0x08, "0x6007 = 1: fault");
    assert_eq!(rig.read_u32(0x603F, 0), 0x8130);
}

/// Configures `pdo` of the rig's device through SDO with the drivers' configurator (the
/// same SDO sequence takt uses).
fn configure(rig: &mut Rig, pdo: PdoId, config: &PdoConfig) {
    let mut client = SdoClient::new(rig.node(), 64);
    let mut conf = PdoConfigurator::new(pdo, config);
    for _ in 0..500 {
        match conf.poll(&mut client, rig.now) {
            PdoConfigStatus::Done => return,
            PdoConfigStatus::Failed(e) => panic!("{e}"),
            PdoConfigStatus::InProgress { .. } => {}
        }
        if let Some(f) = client.poll(rig.now) {
            rig.send(f);
        }
        rig.step();
        let seen: Vec<Frame> = rig.seen.drain(..).map(|(_, f)| f).collect();
        for f in &seen {
            client.on_frame(f, rig.now);
        }
    }
    panic!("{pdo:?} not configured in 500 steps");
}

#[test]
fn pdos_run_as_configured_through_sdo() {
    let mut rig = Rig::demo("x");
    rig.run_ms(60);
    // TPDO2: statusword + position actual on every second SYNC, via the drivers'
    // configurator (the same SDO sequence takt uses).
    let config = PdoConfig {
        comm: PdoCommParams {
            cob_id: PdoCobId::standard(0x281),
            transmission: TransmissionType::SynchronousCyclic(2),
            inhibit_100us: None,
            event_timer_ms: None,
        },
        mapping: PdoMapping::new(&[
            MappingEntry::new(0x6041, 0, 16),
            MappingEntry::new(0x6064, 0, 32),
        ])
        .unwrap(),
    };
    configure(&mut rig, PdoId::tpdo(2).unwrap(), &config);
    rig.nmt(NmtCommand::Start);
    rig.run_ms(5);
    // TPDO1 (event-driven) sent its value on entering operational.
    assert_eq!(rig.frames_on(0x181).len(), 1);
    for _ in 0..6 {
        rig.send(Frame::standard(0x080, []));
        rig.run_ms(2);
    }
    let tpdo2 = rig.frames_on(0x281);
    assert_eq!(tpdo2.len(), 3, "every second SYNC");
    assert_eq!(tpdo2[0].1.len(), 6);
    // RPDO1 (controlword + target) drives the state machine.
    let before = rig.frames_on(0x181).len();
    rig.send(Frame::standard(0x201, [0x06, 0, 0, 0, 0, 0]));
    rig.run_ms(3);
    let tpdo1 = rig.frames_on(0x181);
    assert_eq!(tpdo1.len(), before + 1, "statusword change sent at once");
    assert_eq!(tpdo1.last().unwrap().1.data()[0] & 0x6F, 0x21);
    // A short RPDO is refused with EMCY 0x8210.
    rig.send(Frame::standard(0x201, [0x07]));
    rig.run_ms(2);
    let emcy = rig.frames_on(0x081);
    assert_eq!(
        Emergency::decode(&emcy.last().unwrap().1).unwrap().code.0,
        0x8210
    );
}

#[test]
fn the_sync_and_rpdo_identifiers_follow_the_dictionary() {
    // A device acts on a frame by its identifier as its dictionary stands: rewriting the
    // SYNC's COB-ID (0x1005) or an RPDO's (0x1400) moves what it answers at once, and the
    // old identifiers become someone else's frames.
    let mut rig = Rig::demo("x");
    rig.run_ms(60);
    let every_sync = PdoConfig {
        comm: PdoCommParams {
            cob_id: PdoCobId::standard(0x281),
            transmission: TransmissionType::SynchronousCyclic(1),
            inhibit_100us: None,
            event_timer_ms: None,
        },
        mapping: PdoMapping::new(&[MappingEntry::new(0x6041, 0, 16)]).unwrap(),
    };
    configure(&mut rig, PdoId::tpdo(2).unwrap(), &every_sync);
    let rpdo1 = rig.read_u32(0x1400, 1);
    rig.write(0x1400, 1, &(rpdo1 | 0x8000_0000).to_le_bytes())
        .unwrap();
    rig.write(0x1400, 1, &0x301u32.to_le_bytes()).unwrap();
    rig.write(0x1005, 0, &0x090u32.to_le_bytes()).unwrap();
    rig.nmt(NmtCommand::Start);
    rig.run_ms(5);
    rig.send(Frame::standard(0x080, []));
    rig.run_ms(2);
    assert!(rig.frames_on(0x281).is_empty(), "0x080 is no SYNC now");
    rig.send(Frame::standard(0x090, []));
    rig.run_ms(2);
    assert_eq!(rig.frames_on(0x281).len(), 1, "0x090 is");
    // RPDO1 (controlword + target) now listens on 0x301, not 0x201.
    rig.send(Frame::standard(0x201, [0x06, 0, 0, 0, 0, 0]));
    rig.run_ms(3);
    assert_eq!(rig.statusword() & 0x6F, 0x40, "switch on disabled still");
    rig.send(Frame::standard(0x301, [0x06, 0, 0, 0, 0, 0]));
    rig.run_ms(3);
    assert_eq!(rig.statusword() & 0x6F, 0x21, "ready to switch on");
}

#[test]
fn following_error_faults_with_emcy_0x8611_and_fault_reset_needs_a_rising_edge() {
    let mut rig = Rig::demo("x");
    rig.enable(1);
    rig.write(0x6065, 0, &5u32.to_le_bytes()).unwrap();
    rig.write(0x6066, 0, &2u16.to_le_bytes()).unwrap();
    rig.write(0x607A, 0, &50_000i32.to_le_bytes()).unwrap();
    rig.controlword(0x1F);
    let sw = rig.wait_status(0x4F, 0x08, 500);
    assert_eq!(sw & 0x4F, 0x08);
    assert_eq!(rig.read_u32(0x603F, 0), u32::from(FOLLOWING_ERROR));
    let emcy = rig.frames_on(0x081);
    let e = Emergency::decode(&emcy[0].1).unwrap();
    assert_eq!(e.code.0, 0x8611);
    assert!(e.register.bits() & 1 != 0);
    // Bit 7 held high does nothing; only its rising edge resets.
    rig.controlword(0x80);
    rig.run_ms(2);
    assert_eq!(
        rig.statusword() & 0x4F,
        0x40,
        "rising edge: switch on disabled"
    );
    assert_eq!(rig.read_u32(0x603F, 0), 0);
    let last = Emergency::decode(&rig.frames_on(0x081).last().unwrap().1).unwrap();
    assert_eq!(last.code.0, 0, "error reset EMCY");
}
