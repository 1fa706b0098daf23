//! Random frames — any id, length, remote, extended or FD — fed to every decoder and to the
//! state machines mid-transfer: typed errors or ignored frames, never a panic, and the SDO
//! client always ends in a consistent state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::time::Duration;

use proptest::prelude::*;
use takt_drivers::can::strategy::any_frame;
use takt_drivers::can::{Frame, Timestamp};
use takt_drivers::canopen::sdo::{Multiplexer, SdoClient, SdoRequest, SdoResponse};
use takt_drivers::canopen::{
    Emergency, Heartbeat, HeartbeatConsumer, NmtMessage, NodeId, SyncMessage, TimeOfDay, decode,
};

/// Mostly plausible SDO responses for node 1, sometimes anything.
fn sdo_traffic() -> impl Strategy<Value = Frame> {
    let response = (any::<[u8; 8]>(), 0u8..8).prop_map(|(mut b, scs)| {
        b[0] = (scs << 5) | (b[0] & 0x1F);
        Frame::standard(0x581, b)
    });
    prop_oneof![6 => response, 1 => any_frame()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_decoder_survives_any_frame(frame in any_frame()) {
        let _ = decode(&frame).to_string();
        let _ = NmtMessage::decode(&frame);
        let _ = SyncMessage::decode(&frame);
        let _ = Emergency::decode(&frame);
        let _ = TimeOfDay::decode(&frame);
        let _ = Heartbeat::decode(&frame);
        let _ = SdoRequest::decode(&frame);
        let _ = SdoResponse::decode(&frame);
        let mut consumer = HeartbeatConsumer::new(
            NodeId::new(1).unwrap(), Duration::from_millis(100), Duration::from_secs(1), Timestamp::ZERO);
        let _ = consumer.on_frame(&frame, Timestamp::from_millis(1));
        let _ = consumer.poll(Timestamp::from_millis(2));
    }

    #[test]
    fn the_sdo_client_survives_any_responses(
        upload in any::<bool>(),
        len in 0usize..40,
        traffic in proptest::collection::vec((sdo_traffic(), 0u64..300), 0..24),
    ) {
        let mut client = SdoClient::new(NodeId::new(1).unwrap(), 32);
        let mux = Multiplexer::new(0x2000, 0);
        let mut now = Timestamp::ZERO;
        let started = if upload {
            client.start_upload(mux, now).is_ok()
        } else {
            client.start_download(mux, &vec![0xA5; len], now).is_ok()
        };
        prop_assert_eq!(started, upload || len <= 32);
        let mut outcomes = 0;
        for (frame, wait_ms) in traffic {
            if let Some(f) = client.poll(now) {
                // Whatever the client sends is a well-formed request to node 1.
                let (node, _) = SdoRequest::decode(&f).unwrap();
                prop_assert_eq!(node.get(), 1);
            }
            client.on_frame(&frame, now);
            now = now + Duration::from_millis(wait_ms);
            if let Some(outcome) = client.take_outcome() {
                outcomes += 1;
                prop_assert!(!client.is_busy());
                if let Ok(done) = outcome {
                    prop_assert!(client.data().len() <= client.capacity(), "{done:?}");
                }
            }
        }
        // At most one outcome per started transfer, and a running transfer still times out.
        prop_assert!(outcomes <= 1);
        if client.is_busy() {
            // Hand out any pending request (its timeout starts then), then let it expire.
            client.poll(now);
            now = now + Duration::from_secs(1);
            client.poll(now);
            prop_assert!(!client.is_busy());
            prop_assert!(client.take_outcome().unwrap().is_err());
        }
    }
}
