//! A tiny SDO server for tests: an object dictionary of byte strings, expedited and
//! segmented transfers both ways, with the codecs of `canopen::sdo::frames` used from the
//! device side (as the simulator will use them). Faults can be switched on to exercise the
//! client's error paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure
#![allow(dead_code)]

use std::collections::BTreeMap;

use takt_drivers::can::Frame;
use takt_drivers::canopen::NodeId;
use takt_drivers::canopen::sdo::{AbortCode, InitiateData, Multiplexer, SdoRequest, SdoResponse};

#[derive(Debug)]
enum Transfer {
    Idle,
    Uploading {
        value: Vec<u8>,
        k: usize,
    },
    Downloading {
        mux: Multiplexer,
        size: Option<u32>,
        buf: Vec<u8>,
        toggle: bool,
    },
}

/// Faults the server can inject.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Answer nothing.
    pub mute: bool,
    /// Send upload segment `k` with the wrong toggle.
    pub wrong_toggle_at_segment: Option<usize>,
}

/// The server of one node.
#[derive(Debug)]
pub struct TinyServer {
    pub node: NodeId,
    pub objects: BTreeMap<Multiplexer, Vec<u8>>,
    pub faults: Faults,
    /// Aborts received from the client.
    pub aborts_received: Vec<AbortCode>,
    transfer: Transfer,
}

impl TinyServer {
    pub fn new(node: u8) -> TinyServer {
        TinyServer {
            node: NodeId::new(node).unwrap(),
            objects: BTreeMap::new(),
            faults: Faults::default(),
            aborts_received: Vec::new(),
            transfer: Transfer::Idle,
        }
    }

    pub fn with(mut self, index: u16, sub: u8, value: &[u8]) -> TinyServer {
        self.objects
            .insert(Multiplexer::new(index, sub), value.to_vec());
        self
    }

    pub fn get(&self, index: u16, sub: u8) -> Option<&[u8]> {
        self.objects
            .get(&Multiplexer::new(index, sub))
            .map(Vec::as_slice)
    }

    /// The response to `frame`, if it is a request for this node that needs one.
    pub fn handle(&mut self, frame: &Frame) -> Option<Frame> {
        let Ok((node, request)) = SdoRequest::decode(frame) else {
            return None;
        };
        if node != self.node {
            return None;
        }
        let response = self.respond(request)?;
        if self.faults.mute {
            return None;
        }
        Some(response.encode(self.node))
    }

    fn respond(&mut self, request: SdoRequest) -> Option<SdoResponse> {
        let abort = |mux, code| Some(SdoResponse::abort(mux, code));
        match request {
            SdoRequest::InitiateUpload { mux } => {
                let Some(value) = self.objects.get(&mux).cloned() else {
                    return abort(mux, AbortCode::ObjectDoesNotExist);
                };
                let response = SdoResponse::upload_initiate(mux, &value);
                if let SdoResponse::InitiateUpload {
                    data: InitiateData::Segmented { .. },
                    ..
                } = response
                {
                    self.transfer = Transfer::Uploading { value, k: 0 };
                }
                Some(response)
            }
            SdoRequest::UploadSegment { toggle } => {
                let Transfer::Uploading { value, k } = &mut self.transfer else {
                    return abort(Multiplexer::new(0, 0), AbortCode::InvalidCommandSpecifier);
                };
                if toggle != (*k % 2 == 1) {
                    self.transfer = Transfer::Idle;
                    return abort(Multiplexer::new(0, 0), AbortCode::ToggleBitNotAlternated);
                }
                let mut response = SdoResponse::upload_segment_of(value, *k)?;
                if self.faults.wrong_toggle_at_segment == Some(*k) {
                    if let SdoResponse::UploadSegment { toggle, .. } = &mut response {
                        *toggle = !*toggle;
                    }
                }
                *k += 1;
                if let SdoResponse::UploadSegment { last: true, .. } = response {
                    self.transfer = Transfer::Idle;
                }
                Some(response)
            }
            SdoRequest::InitiateDownload { mux, data } => {
                if !self.objects.contains_key(&mux) {
                    return abort(mux, AbortCode::ObjectDoesNotExist);
                }
                match data {
                    InitiateData::Expedited(e) => {
                        self.objects.insert(mux, e.as_slice().to_vec());
                    }
                    InitiateData::Segmented { size } => {
                        self.transfer = Transfer::Downloading {
                            mux,
                            size,
                            buf: Vec::new(),
                            toggle: false,
                        };
                    }
                }
                Some(SdoResponse::download_ack(mux))
            }
            SdoRequest::DownloadSegment { toggle, data, last } => {
                let Transfer::Downloading {
                    mux,
                    size,
                    buf,
                    toggle: expected,
                } = &mut self.transfer
                else {
                    return abort(Multiplexer::new(0, 0), AbortCode::InvalidCommandSpecifier);
                };
                let mux = *mux;
                if toggle != *expected {
                    self.transfer = Transfer::Idle;
                    return abort(mux, AbortCode::ToggleBitNotAlternated);
                }
                *expected = !*expected;
                buf.extend_from_slice(data.as_slice());
                if last {
                    if size.is_some_and(|s| s as usize != buf.len()) {
                        self.transfer = Transfer::Idle;
                        return abort(mux, AbortCode::TypeLengthMismatch);
                    }
                    let value = std::mem::take(buf);
                    self.objects.insert(mux, value);
                    self.transfer = Transfer::Idle;
                }
                Some(SdoResponse::download_segment_ack(toggle))
            }
            SdoRequest::Abort { code, .. } => {
                self.aborts_received.push(code);
                self.transfer = Transfer::Idle;
                None
            }
        }
    }
}
