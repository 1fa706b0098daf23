//! Hand-worked frames of every CiA 301 service, through the crate's public API as the CLI
//! and the simulator use it, in candump's compact notation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::time::Duration;

use takt_drivers::can::{Frame, Timestamp};
use takt_drivers::canopen::emcy::{CAN_OVERRUN, ErrorRegister};
use takt_drivers::canopen::sdo::{Multiplexer, SdoRequest, SdoResponse};
use takt_drivers::canopen::{
    Emergency, Heartbeat, HeartbeatProducer, Message, NmtCommand, NmtMessage, NmtState, NodeId,
    SyncCounter, SyncMessage, SyncProducer, decode,
};

fn node(n: u8) -> NodeId {
    NodeId::new(n).unwrap()
}

fn candump(f: Frame) -> String {
    f.to_string()
}

#[test]
fn nmt() {
    assert_eq!(
        candump(NmtMessage::to_node(NmtCommand::Start, node(5)).encode()),
        "000#0105"
    );
    assert_eq!(
        candump(NmtMessage::to_all(NmtCommand::Stop).encode()),
        "000#0200"
    );
    assert_eq!(
        candump(NmtMessage::to_node(NmtCommand::EnterPreOperational, node(1)).encode()),
        "000#8001"
    );
    assert_eq!(
        candump(NmtMessage::to_all(NmtCommand::ResetNode).encode()),
        "000#8100"
    );
    assert_eq!(
        candump(NmtMessage::to_node(NmtCommand::ResetCommunication, node(10)).encode()),
        "000#820A"
    );
}

#[test]
fn sync() {
    assert_eq!(candump(SyncMessage { counter: None }.encode()), "080#");
    let seven = SyncMessage {
        counter: Some(SyncCounter::new(7).unwrap()),
    };
    assert_eq!(candump(seven.encode()), "080#07");
    let mut producer = SyncProducer::new(Duration::from_millis(4), 0).unwrap();
    assert_eq!(
        producer.poll(Timestamp::ZERO).map(candump).as_deref(),
        Some("080#")
    );
}

#[test]
fn heartbeat_and_boot_up() {
    let hb = |state| {
        candump(
            Heartbeat {
                node: node(3),
                state,
            }
            .encode(),
        )
    };
    assert_eq!(hb(NmtState::Operational), "703#05");
    assert_eq!(hb(NmtState::BootUp), "703#00");
    assert_eq!(hb(NmtState::Stopped), "703#04");
    assert_eq!(hb(NmtState::PreOperational), "703#7F");
    let mut own = HeartbeatProducer::new(node(127), Duration::from_millis(100));
    assert_eq!(candump(own.boot_up()), "77F#00");
    assert_eq!(
        own.poll(Timestamp::ZERO).map(candump).as_deref(),
        Some("77F#05")
    );
}

#[test]
fn emcy() {
    let frame = Frame::standard(0x081, [0x10, 0x81, 0x11, 0, 0, 0, 0, 0]);
    assert_eq!(candump(frame), "081#1081110000000000");
    let e = Emergency::decode(&frame).unwrap();
    assert_eq!(e.code.0, CAN_OVERRUN);
    assert_eq!(e.code.description(), "CAN overrun (objects lost)");
    assert_eq!(
        e.register,
        ErrorRegister::GENERIC | ErrorRegister::COMMUNICATION
    );
    assert!(matches!(decode(&frame), Message::Emcy(d) if d == e));
}

#[test]
fn sdo_expedited() {
    let cw = Multiplexer::new(0x6040, 0);
    let sw = Multiplexer::new(0x6041, 0);
    let req = SdoRequest::download_expedited(cw, &0x0006u16.to_le_bytes()).unwrap();
    assert_eq!(candump(req.encode(node(1))), "601#2B40600006000000");
    assert_eq!(
        candump(SdoResponse::download_ack(cw).encode(node(1))),
        "581#6040600000000000"
    );
    assert_eq!(
        candump(SdoRequest::upload(sw).encode(node(1))),
        "601#4041600000000000"
    );
    assert_eq!(
        candump(
            SdoResponse::upload_expedited(sw, &0x0237u16.to_le_bytes())
                .unwrap()
                .encode(node(1))
        ),
        "581#4B41600037020000"
    );
}

#[test]
fn sdo_segmented_13_byte_string() {
    let name = Multiplexer::new(0x1008, 0);
    let value = b"takt servo X1";
    let upload: Vec<String> = std::iter::once(SdoResponse::upload_initiate(name, value))
        .chain((0..).map_while(|k| SdoResponse::upload_segment_of(value, k)))
        .map(|r| candump(r.encode(node(2))))
        .collect();
    assert_eq!(
        upload,
        [
            "582#410810000D000000",
            "582#0074616B74207365",
            "582#1372766F20583100"
        ]
    );
    assert_eq!(
        candump(SdoRequest::download_segmented(name, 13).encode(node(2))),
        "602#210810000D000000"
    );
}
