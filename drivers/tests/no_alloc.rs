//! The cyclic-path functions of the CANopen stack never allocate: a counting global
//! allocator counts allocations made on the test's own thread (so tests running in parallel
//! do not disturb each other) while each path runs thousands of cycles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::time::Duration;

use takt_drivers::can::{Frame, Timestamp};
use takt_drivers::canopen::emcy::Emergency;
use takt_drivers::canopen::heartbeat::{Heartbeat, HeartbeatConsumer, HeartbeatProducer};
use takt_drivers::canopen::nmt::{NmtCommand, NmtMessage, NmtState};
use takt_drivers::canopen::pdo::{
    MappingEntry, PdoCobId, PdoCommParams, PdoConfig, PdoConfigStatus, PdoConfigurator, PdoId,
    PdoMapping, TransmissionType,
};
use takt_drivers::canopen::sdo::{Multiplexer, SdoClient, SdoRequest, SdoResponse};
use takt_drivers::canopen::sync::SyncProducer;
use takt_drivers::canopen::{NodeId, decode};

#[global_allocator]
static GLOBAL: takt_alloc_count::CountingAllocator = takt_alloc_count::CountingAllocator;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    takt_alloc_count::allocations_in(f).1
}

fn node(n: u8) -> NodeId {
    NodeId::new(n).unwrap()
}

#[test]
fn the_counter_counts() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
    assert_eq!(allocations_in(|| ()), 0);
}

#[test]
fn pdo_pack_and_unpack() {
    let mapping = PdoMapping::new(&[
        MappingEntry::new(0x6041, 0, 16),
        MappingEntry::new(0x6064, 0, 32),
        MappingEntry::new(0x6061, 0, 8),
    ])
    .unwrap();
    let mut checksum = 0u64;
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            let payload = mapping
                .pack(&[i & 0xFFFF, i.wrapping_mul(7919), 8])
                .unwrap();
            let frame = payload.to_frame(0x181);
            let values = mapping.unpack(frame.data()).unwrap();
            checksum =
                checksum.wrapping_add(values.get(1).unwrap() ^ values.signed(0).unwrap() as u64);
        }
    });
    std::hint::black_box(checksum);
    assert_eq!(n, 0);
}

#[test]
fn heartbeat_producer_and_consumer() {
    let mut producer = HeartbeatProducer::new(node(100), Duration::from_millis(100));
    let mut consumers: Vec<HeartbeatConsumer> = (1..=5)
        .map(|n| {
            HeartbeatConsumer::new(
                node(n),
                Duration::from_millis(300),
                Duration::from_secs(5),
                Timestamp::ZERO,
            )
        })
        .collect();
    let frames: Vec<Frame> = (1..=5)
        .map(|n| {
            Heartbeat {
                node: node(n),
                state: NmtState::Operational,
            }
            .encode()
        })
        .collect();
    let boot = Heartbeat::boot_up(node(3)).encode();
    let mut events = 0usize;
    let n = allocations_in(|| {
        for ms in 0..20_000u64 {
            let now = Timestamp::from_millis(ms);
            if producer.poll(now).is_some() {
                events += 1;
            }
            for c in consumers.iter_mut() {
                // Devices 1..=4 beat every 100 ms; device 5 stops at 10 s.
                for f in &frames {
                    if ms % 100 == 0 && !(f.standard_id() == Some(0x705) && ms > 10_000) {
                        events += usize::from(c.on_frame(f, now).is_some());
                    }
                }
                if ms == 15_000 {
                    events += usize::from(c.on_frame(&boot, now).is_some());
                }
                events += usize::from(c.poll(now).is_some());
            }
        }
    });
    std::hint::black_box(events);
    assert_eq!(n, 0);
    assert!(!consumers[4].is_alive(), "node 5's heartbeat was lost");
}

#[test]
fn sync_producer_and_nmt_encode() {
    let mut sync = SyncProducer::new(Duration::from_millis(2), 240).unwrap();
    let mut sent = 0usize;
    let n = allocations_in(|| {
        for us in (0..20_000_000u64).step_by(250) {
            if let Some(f) = sync.poll(Timestamp::from_micros(us)) {
                sent += f.len();
            }
        }
        let f = NmtMessage::to_node(NmtCommand::Start, node(5)).encode();
        sent += f.len();
    });
    std::hint::black_box(sent);
    assert_eq!(n, 0);
}

#[test]
fn emcy_and_whole_frame_decoding() {
    let frames = [
        Frame::standard(0x081, [0x10, 0x81, 0x11, 0, 0, 0, 0, 0]),
        Frame::standard(0x085, [0x11, 0x86, 0x21, 1, 2, 3, 4, 5]),
        Frame::standard(0x185, [1, 2, 3, 4, 5, 6]),
        Frame::standard(0x585, [0x4B, 0x41, 0x60, 0, 0x37, 0x02, 0, 0]),
        Frame::standard(0x705, [0x05]),
        Frame::standard(0x080, [3]),
        Frame::standard(0x703, [0x05, 0x00]),
        Frame::standard(0x7E5, [0x04]),
    ];
    let mut seen = 0usize;
    let n = allocations_in(|| {
        for _ in 0..2_000 {
            for f in &frames {
                if let Ok(e) = Emergency::decode(f) {
                    seen += usize::from(e.code.0 >> 8);
                }
                seen += decode(f).node().map_or(0, |n| usize::from(n.get()));
            }
        }
    });
    std::hint::black_box(seen);
    assert_eq!(n, 0);
}

#[test]
fn sdo_client_stepping_transfers() {
    let device_name = Multiplexer::new(0x1008, 0);
    let mut client = SdoClient::new(node(2), 64);
    // Responses of a segmented upload of a 13-byte value, built before counting.
    let value = b"takt servo X1";
    let mut upload = vec![SdoResponse::upload_initiate(device_name, value).encode(node(2))];
    upload.extend(
        (0..).map_while(|k| SdoResponse::upload_segment_of(value, k).map(|r| r.encode(node(2)))),
    );
    let download_acks = [
        SdoResponse::download_ack(device_name).encode(node(2)),
        SdoResponse::download_segment_ack(false).encode(node(2)),
        SdoResponse::download_segment_ack(true).encode(node(2)),
    ];
    let mut total = 0usize;
    let n = allocations_in(|| {
        let mut now = Timestamp::ZERO;
        for _ in 0..1_000 {
            client.start_upload(device_name, now).unwrap();
            for response in &upload {
                total += client.poll(now).map_or(0, |f| f.len());
                client.on_frame(response, now);
                now = now + Duration::from_millis(1);
            }
            total += client
                .take_outcome()
                .unwrap()
                .map_or(0, |_| client.data().len());
            client.start_download(device_name, value, now).unwrap();
            for ack in &download_acks {
                total += client.poll(now).map_or(0, |f| f.len());
                client.on_frame(ack, now);
                now = now + Duration::from_millis(1);
            }
            assert!(client.take_outcome().unwrap().is_ok());
            // A timeout, abort included.
            client.start_upload(device_name, now).unwrap();
            total += client.poll(now).map_or(0, |f| f.len());
            now = now + Duration::from_secs(1);
            total += client.poll(now).map_or(0, |f| f.len());
            assert!(client.take_outcome().unwrap().is_err());
        }
    });
    std::hint::black_box(total);
    assert_eq!(n, 0);
}

#[test]
fn pdo_configuration_steps() {
    let config = PdoConfig {
        comm: PdoCommParams {
            cob_id: PdoCobId::standard(0x182),
            transmission: TransmissionType::EventProfile,
            inhibit_100us: Some(10),
            event_timer_ms: Some(50),
        },
        mapping: PdoMapping::new(&[
            MappingEntry::new(0x6041, 0, 16),
            MappingEntry::new(0x6064, 0, 32),
        ])
        .unwrap(),
    };
    let mut client = SdoClient::new(node(2), 16);
    let acks: Vec<Frame> = PdoConfigurator::new(PdoId::tpdo(1).unwrap(), &config)
        .steps()
        .iter()
        .map(|s| SdoResponse::download_ack(s.mux).encode(node(2)))
        .collect();
    let mut done = 0;
    let n = allocations_in(|| {
        for _ in 0..500 {
            let mut cfg = PdoConfigurator::new(PdoId::tpdo(1).unwrap(), &config);
            let mut now = Timestamp::ZERO;
            let mut acks = acks.iter();
            loop {
                match cfg.poll(&mut client, now) {
                    PdoConfigStatus::InProgress { .. } => {}
                    PdoConfigStatus::Done => break,
                    PdoConfigStatus::Failed(e) => panic!("{e:?}"),
                }
                if let Some(f) = client.poll(now) {
                    let _ = SdoRequest::decode(&f);
                    client.on_frame(acks.next().unwrap(), now);
                }
                now = now + Duration::from_millis(1);
            }
            done += 1;
        }
    });
    assert_eq!(done, 500);
    assert_eq!(n, 0);
}
