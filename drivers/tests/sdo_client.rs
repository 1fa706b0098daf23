//! The SDO client against a tiny in-test SDO server over the virtual bus: every transfer
//! length both ways, each error path end to end, and the blocking convenience for tools.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Faults, TinyServer};
use takt_drivers::can::{CanBus, Frame, Timestamp, VirtualBus, VirtualEndpoint};
use takt_drivers::canopen::NodeId;
use takt_drivers::canopen::sdo::{
    AbortCode, BlockingSdoError, Multiplexer, SdoClient, SdoDone, SdoErrorKind, SdoOutcome,
};

const NODE: u8 = 7;
const OBJ: Multiplexer = Multiplexer::new(0x2000, 1);

struct Cell {
    bus: VirtualBus,
    controller: VirtualEndpoint,
    device: VirtualEndpoint,
    sniffer: VirtualEndpoint,
    client: SdoClient,
    server: TinyServer,
    now: Timestamp,
}

impl Cell {
    fn new(server: TinyServer) -> Cell {
        let bus = VirtualBus::new();
        Cell {
            controller: bus.endpoint("takt"),
            device: bus.endpoint("device"),
            sniffer: bus.endpoint("sniffer"),
            bus,
            client: SdoClient::new(NodeId::new(NODE).unwrap(), 256),
            server,
            now: Timestamp::ZERO,
        }
    }

    /// Runs 1 ms cycles of controller and device in lockstep until the transfer ends.
    fn run(&mut self) -> SdoOutcome {
        for _ in 0..10_000 {
            self.bus.set_time(self.now);
            while let Some(ev) = self.controller.try_recv().unwrap() {
                self.client.on_frame(ev.frame().unwrap(), self.now);
            }
            if let Some(frame) = self.client.poll(self.now) {
                self.controller.try_send(&frame).unwrap();
            }
            while let Some(ev) = self.device.try_recv().unwrap() {
                if let Some(reply) = self.server.handle(ev.frame().unwrap()) {
                    self.device.try_send(&reply).unwrap();
                }
            }
            if let Some(outcome) = self.client.take_outcome() {
                // Let a final abort reach the server.
                if let Some(frame) = self.client.poll(self.now) {
                    self.controller.try_send(&frame).unwrap();
                    while let Some(ev) = self.device.try_recv().unwrap() {
                        self.server.handle(ev.frame().unwrap());
                    }
                }
                return outcome;
            }
            self.now = self.now + Duration::from_millis(1);
        }
        panic!("transfer did not end");
    }

    fn sniffed(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.sniffer.try_recv().unwrap())
            .map(|ev| *ev.frame().unwrap())
            .collect()
    }
}

fn value(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 37 + 11) as u8).collect()
}

/// Requests a client sends for a value of `len` bytes: the initiate, plus one per segment
/// for segmented transfers (an empty value still takes one empty segment).
fn requests_for(len: usize) -> usize {
    if (1..=4).contains(&len) {
        1
    } else {
        1 + len.div_ceil(7).max(1)
    }
}

#[test]
fn uploads_of_every_length_from_0_to_30_bytes() {
    for len in 0..=30 {
        let v = value(len);
        let mut cell = Cell::new(TinyServer::new(NODE).with(0x2000, 1, &v));
        cell.client.start_upload(OBJ, cell.now).unwrap();
        assert_eq!(
            cell.run(),
            Ok(SdoDone::Uploaded { mux: OBJ, len }),
            "len {len}"
        );
        assert_eq!(cell.client.data(), &v[..], "len {len}");
        let frames = cell.sniffed();
        let requests = frames
            .iter()
            .filter(|f| f.standard_id() == Some(0x607))
            .count();
        assert_eq!(requests, requests_for(len), "len {len}");
        assert_eq!(
            frames.len(),
            2 * requests,
            "one response per request, len {len}"
        );
    }
}

#[test]
fn downloads_of_every_length_from_0_to_30_bytes() {
    for len in 0..=30 {
        let v = value(len);
        let mut cell = Cell::new(TinyServer::new(NODE).with(0x2000, 1, b"old"));
        cell.client.start_download(OBJ, &v, cell.now).unwrap();
        assert_eq!(
            cell.run(),
            Ok(SdoDone::Downloaded { mux: OBJ }),
            "len {len}"
        );
        assert_eq!(cell.server.get(0x2000, 1), Some(&v[..]), "len {len}");
        let requests = cell
            .sniffed()
            .iter()
            .filter(|f| f.standard_id() == Some(0x607))
            .count();
        assert_eq!(requests, requests_for(len), "len {len}");
    }
}

#[test]
fn a_missing_object_is_a_typed_server_abort() {
    let mut cell = Cell::new(TinyServer::new(NODE));
    cell.client
        .start_upload(Multiplexer::new(0x6099, 2), cell.now)
        .unwrap();
    let e = cell.run().unwrap_err();
    assert_eq!(
        e.kind,
        SdoErrorKind::ServerAbort(AbortCode::ObjectDoesNotExist)
    );
    assert_eq!(e.sent_abort, None);
    assert_eq!(
        cell.sniffed().last().unwrap().to_string(),
        "587#8099600200000206"
    );
}

#[test]
fn a_wrong_toggle_from_the_server_is_aborted_with_0x05030000() {
    let mut server = TinyServer::new(NODE).with(0x2000, 1, &value(20));
    server.faults = Faults {
        wrong_toggle_at_segment: Some(1),
        ..Faults::default()
    };
    let mut cell = Cell::new(server);
    cell.client.start_upload(OBJ, cell.now).unwrap();
    let e = cell.run().unwrap_err();
    assert_eq!(e.kind, SdoErrorKind::ToggleMismatch);
    assert_eq!(
        cell.server.aborts_received,
        [AbortCode::ToggleBitNotAlternated]
    );
    assert_eq!(
        cell.sniffed().last().unwrap().to_string(),
        "607#8000200100000305"
    );
}

#[test]
fn a_silent_server_times_out_and_is_sent_0x05040000() {
    let mut server = TinyServer::new(NODE).with(0x2000, 1, &value(3));
    server.faults.mute = true;
    let mut cell = Cell::new(server);
    cell.client.start_upload(OBJ, cell.now).unwrap();
    let e = cell.run().unwrap_err();
    assert_eq!(e.kind, SdoErrorKind::Timeout);
    assert_eq!(
        cell.now,
        Timestamp::from_millis(501),
        "default timeout 500 ms"
    );
    assert_eq!(cell.server.aborts_received, [AbortCode::Timeout]);
    let frames: Vec<String> = cell.sniffed().iter().map(ToString::to_string).collect();
    assert_eq!(frames, ["607#4000200100000000", "607#8000200100000405"]);
}

#[test]
fn writing_a_missing_object_is_aborted_at_initiate() {
    let mut cell = Cell::new(TinyServer::new(NODE));
    cell.client
        .start_download(Multiplexer::new(0x1008, 0), &value(13), cell.now)
        .unwrap();
    let e = cell.run().unwrap_err();
    assert_eq!(
        e.kind,
        SdoErrorKind::ServerAbort(AbortCode::ObjectDoesNotExist)
    );
    // Only the initiate went out: no segment follows an abort.
    let requests = cell
        .sniffed()
        .iter()
        .filter(|f| f.standard_id() == Some(0x607))
        .count();
    assert_eq!(requests, 1);
}

/// Runs `server` on its own thread and endpoint until the returned flag is set.
fn serve(
    bus: &VirtualBus,
    mut server: TinyServer,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<TinyServer>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut endpoint = bus.endpoint("device");
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match endpoint.try_recv().unwrap() {
                Some(ev) => {
                    if let Some(reply) = server.handle(ev.frame().unwrap()) {
                        endpoint.try_send(&reply).unwrap();
                    }
                }
                None => std::thread::yield_now(),
            }
        }
        server
    });
    (stop, handle)
}

#[test]
fn blocking_read_and_write_for_tools() {
    let bus = VirtualBus::new();
    let mut takt = bus.endpoint("takt");
    let (stop, handle) = serve(
        &bus,
        TinyServer::new(NODE)
            .with(0x1008, 0, b"takt servo X1")
            .with(0x6041, 0, &[0x37, 0x02])
            .with(0x6040, 0, &[0, 0]),
    );
    let mut client = SdoClient::new(NodeId::new(NODE).unwrap(), 64);
    assert_eq!(
        client
            .upload_blocking(&mut takt, Multiplexer::new(0x1008, 0))
            .unwrap(),
        b"takt servo X1"
    );
    assert_eq!(
        client
            .upload_blocking(&mut takt, Multiplexer::new(0x6041, 0))
            .unwrap(),
        &[0x37, 0x02]
    );
    client
        .download_blocking(&mut takt, Multiplexer::new(0x6040, 0), &[0x06, 0x00])
        .unwrap();
    client
        .download_blocking(
            &mut takt,
            Multiplexer::new(0x1008, 0),
            b"renamed by the CLI",
        )
        .unwrap();
    let err = client
        .upload_blocking(&mut takt, Multiplexer::new(0x1234, 0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlockingSdoError::Sdo(e) if e.kind == SdoErrorKind::ServerAbort(AbortCode::ObjectDoesNotExist)
        ),
        "{err}"
    );
    let err = client
        .download_blocking(&mut takt, Multiplexer::new(0x1008, 0), &[0; 65])
        .unwrap_err();
    assert!(matches!(err, BlockingSdoError::Start(_)), "{err}");
    stop.store(true, Ordering::Relaxed);
    let server = handle.join().unwrap();
    assert_eq!(server.get(0x6040, 0), Some(&[0x06, 0x00][..]));
    assert_eq!(server.get(0x1008, 0), Some(&b"renamed by the CLI"[..]));
}

#[test]
fn blocking_timeout_sends_the_abort() {
    let bus = VirtualBus::new();
    let mut takt = bus.endpoint("takt");
    let mut sniffer = bus.endpoint("sniffer");
    let mut client =
        SdoClient::new(NodeId::new(NODE).unwrap(), 64).with_timeout(Duration::from_millis(20));
    let started = std::time::Instant::now();
    let err = client
        .upload_blocking(&mut takt, Multiplexer::new(0x6041, 0))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert!(
        matches!(err, BlockingSdoError::Sdo(e) if e.kind == SdoErrorKind::Timeout),
        "{err}"
    );
    let frames: Vec<String> = std::iter::from_fn(|| sniffer.try_recv().unwrap())
        .map(|ev| ev.frame().unwrap().to_string())
        .collect();
    assert_eq!(frames, ["607#4041600000000000", "607#8041600000000405"]);
    // The client is free for the next transfer.
    assert!(!client.is_busy());
}
