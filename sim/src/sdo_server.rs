//! The SDO server of a simulated device (CiA 301 §7.2.4): expedited and segmented upload and
//! download against its [`ObjectDictionary`], with the abort codes a conforming device
//! answers — missing object or sub-index, write to a read-only entry, read of a write-only
//! one, wrong length, value out of range, toggle bit not alternated, unknown or block
//! command specifier, and the device's own refusals (invalid value, wrong device state).
//!
//! Frames are built with the drivers' [`SdoResponse`] constructors; the server holds one
//! transfer at a time in a buffer sized for the dictionary's longest value, so serving
//! never allocates. A segmented transfer left hanging by the client is aborted with
//! 0x0504_0000 after [`SEGMENT_TIMEOUT`].

use core::time::Duration;

use takt_drivers::can::Timestamp;
use takt_drivers::canopen::sdo::{
    AbortCode, InitiateData, Multiplexer, SdoRequest, SdoResponse, frames::SEGMENT_MAX,
};

use crate::od::{ObjectDictionary, Slot};

/// How long the server waits for the next segment request before it aborts the transfer.
pub const SEGMENT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    Idle,
    Upload {
        mux: Multiplexer,
        len: usize,
        next: usize,
    },
    Download {
        mux: Multiplexer,
        slot: Slot,
        size: Option<u32>,
        toggle: bool,
    },
}

/// What serving one request gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Served {
    /// The response to send, if any (a client's abort gets none).
    pub response: Option<SdoResponse>,
    /// The entry the request wrote, so the device can react to it.
    pub written: Option<Slot>,
}

impl Served {
    fn reply(response: SdoResponse) -> Served {
        Served {
            response: Some(response),
            written: None,
        }
    }
}

/// The device-specific check of a write, after the dictionary's own checks passed: slot,
/// the value as a number, the raw bytes.
pub type WriteCheck<'a> = &'a dyn Fn(&ObjectDictionary, Slot, i64, &[u8]) -> Result<(), AbortCode>;

/// One SDO server channel.
#[derive(Clone, Debug)]
pub struct SdoServer {
    transfer: Transfer,
    buf: Box<[u8]>,
    len: usize,
    since: Timestamp,
}

impl SdoServer {
    /// A server whose buffer holds `capacity` bytes (the dictionary's longest value).
    pub fn new(capacity: usize) -> SdoServer {
        SdoServer {
            transfer: Transfer::Idle,
            buf: vec![0; capacity.max(8)].into_boxed_slice(),
            len: 0,
            since: Timestamp::ZERO,
        }
    }

    /// Forgets any transfer in progress (NMT reset, leaving a state that serves SDO).
    pub fn reset(&mut self) {
        self.transfer = Transfer::Idle;
        self.len = 0;
    }

    /// True while a segmented transfer is open.
    pub fn is_busy(&self) -> bool {
        self.transfer != Transfer::Idle
    }

    fn abort(&mut self, mux: Multiplexer, code: AbortCode) -> Served {
        self.transfer = Transfer::Idle;
        Served::reply(SdoResponse::abort(mux, code))
    }

    fn transfer_mux(&self) -> Multiplexer {
        match self.transfer {
            Transfer::Upload { mux, .. } | Transfer::Download { mux, .. } => mux,
            Transfer::Idle => Multiplexer::new(0, 0),
        }
    }

    /// The abort for a transfer the client abandoned, once [`SEGMENT_TIMEOUT`] has passed.
    pub fn poll(&mut self, now: Timestamp) -> Option<SdoResponse> {
        if self.is_busy() && now.saturating_since(self.since) > SEGMENT_TIMEOUT {
            let mux = self.transfer_mux();
            return self.abort(mux, AbortCode::Timeout).response;
        }
        None
    }

    /// Serves one request frame's data bytes (already addressed to this node).
    pub fn on_request(
        &mut self,
        od: &mut ObjectDictionary,
        data: &[u8],
        now: Timestamp,
        check: WriteCheck<'_>,
    ) -> Served {
        self.since = now;
        let request = match SdoRequest::from_bytes(data) {
            Ok(r) => r,
            Err(_) => {
                let mux = self.transfer_mux();
                return self.abort(mux, AbortCode::InvalidCommandSpecifier);
            }
        };
        match request {
            SdoRequest::InitiateUpload { mux } => self.initiate_upload(od, mux),
            SdoRequest::UploadSegment { toggle } => self.upload_segment(toggle),
            SdoRequest::InitiateDownload { mux, data } => {
                self.initiate_download(od, mux, data, check)
            }
            SdoRequest::DownloadSegment { toggle, data, last } => {
                self.download_segment(od, toggle, data.as_slice(), last, check)
            }
            SdoRequest::Abort { .. } => {
                self.transfer = Transfer::Idle;
                Served::default()
            }
        }
    }

    fn initiate_upload(&mut self, od: &ObjectDictionary, mux: Multiplexer) -> Served {
        let slot = match od.find(mux) {
            Ok(s) => s,
            Err(code) => return self.abort(mux, code),
        };
        if !od.entry(slot).access().readable() {
            return self.abort(mux, AbortCode::ReadOfWriteOnly);
        }
        let len = od.read_bytes(slot, &mut self.buf);
        let value = &self.buf[..len];
        let response = SdoResponse::upload_initiate(mux, value);
        self.transfer = match response {
            SdoResponse::InitiateUpload {
                data: InitiateData::Segmented { .. },
                ..
            } => Transfer::Upload { mux, len, next: 0 },
            _ => Transfer::Idle,
        };
        Served::reply(response)
    }

    fn upload_segment(&mut self, toggle: bool) -> Served {
        let Transfer::Upload { mux, len, next } = self.transfer else {
            return self.abort(Multiplexer::new(0, 0), AbortCode::InvalidCommandSpecifier);
        };
        if toggle != (next % 2 == 1) {
            return self.abort(mux, AbortCode::ToggleBitNotAlternated);
        }
        let Some(segment) = SdoResponse::upload_segment_of(&self.buf[..len], next) else {
            return self.abort(mux, AbortCode::GeneralError);
        };
        let done = (next + 1) * SEGMENT_MAX >= len;
        self.transfer = if done {
            Transfer::Idle
        } else {
            Transfer::Upload {
                mux,
                len,
                next: next + 1,
            }
        };
        Served::reply(segment)
    }

    fn initiate_download(
        &mut self,
        od: &mut ObjectDictionary,
        mux: Multiplexer,
        data: InitiateData,
        check: WriteCheck<'_>,
    ) -> Served {
        let slot = match od.find(mux) {
            Ok(s) => s,
            Err(code) => return self.abort(mux, code),
        };
        if !od.entry(slot).access().writable() {
            return self.abort(mux, AbortCode::WriteOfReadOnly);
        }
        match data {
            InitiateData::Expedited(e) => {
                let bytes = if e.size_indicated() {
                    e.as_slice()
                } else {
                    // Size not indicated: the entry's own size says how many of the four
                    // bytes are data.
                    let n = od.entry(slot).data_type().size().unwrap_or(4).min(4);
                    &e.as_slice()[..n]
                };
                self.transfer = Transfer::Idle;
                self.write(od, slot, mux, bytes, check, SdoResponse::download_ack(mux))
            }
            InitiateData::Segmented { size } => {
                if size.is_some_and(|s| s as usize > self.buf.len()) {
                    return self.abort(mux, AbortCode::LengthTooHigh);
                }
                self.len = 0;
                self.transfer = Transfer::Download {
                    mux,
                    slot,
                    size,
                    toggle: false,
                };
                Served::reply(SdoResponse::download_ack(mux))
            }
        }
    }

    fn download_segment(
        &mut self,
        od: &mut ObjectDictionary,
        toggle: bool,
        data: &[u8],
        last: bool,
        check: WriteCheck<'_>,
    ) -> Served {
        let Transfer::Download {
            mux,
            slot,
            size,
            toggle: expected,
        } = self.transfer
        else {
            return self.abort(Multiplexer::new(0, 0), AbortCode::InvalidCommandSpecifier);
        };
        if toggle != expected {
            return self.abort(mux, AbortCode::ToggleBitNotAlternated);
        }
        let end = self.len + data.len();
        if end > self.buf.len() {
            return self.abort(mux, AbortCode::LengthTooHigh);
        }
        self.buf[self.len..end].copy_from_slice(data);
        self.len = end;
        let ack = SdoResponse::download_segment_ack(toggle);
        if !last {
            self.transfer = Transfer::Download {
                mux,
                slot,
                size,
                toggle: !toggle,
            };
            return Served::reply(ack);
        }
        self.transfer = Transfer::Idle;
        if size.is_some_and(|s| s as usize != self.len) {
            return self.abort(mux, AbortCode::TypeLengthMismatch);
        }
        // Copied out so the write can borrow the dictionary and the buffer apart.
        let mut value = [0u8; 8];
        let len = self.len;
        if od.entry(slot).data_type().size().is_some() {
            if len > 8 {
                return self.abort(mux, AbortCode::LengthTooHigh);
            }
            value[..len].copy_from_slice(&self.buf[..len]);
            return self.write(od, slot, mux, &value[..len], check, ack);
        }
        let buf = core::mem::take(&mut self.buf);
        let served = self.write(od, slot, mux, &buf[..len], check, ack);
        self.buf = buf;
        served
    }

    fn write(
        &mut self,
        od: &mut ObjectDictionary,
        slot: Slot,
        mux: Multiplexer,
        bytes: &[u8],
        check: WriteCheck<'_>,
        ack: SdoResponse,
    ) -> Served {
        let value = match od.check_write(slot, bytes) {
            Ok(v) => v,
            Err(code) => return self.abort(mux, code),
        };
        if let Err(code) = check(od, slot, value, bytes) {
            return self.abort(mux, code);
        }
        od.store(slot, bytes, value);
        Served {
            response: Some(ack),
            written: Some(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::od::{Access, DataType, Entry};

    fn od() -> ObjectDictionary {
        ObjectDictionary::new(vec![
            Entry::new(
                0x6040,
                0,
                "controlword",
                DataType::Unsigned16,
                Access::ReadWrite,
                0,
            ),
            Entry::new(
                0x6041,
                0,
                "statusword",
                DataType::Unsigned16,
                Access::ReadOnly,
                0x250,
            ),
            Entry::text(0x1008, 0, "name", Access::Const, "takt simulated drive", 0),
            Entry::text(0x2001, 0, "label", Access::ReadWrite, "", 32),
        ])
        .unwrap()
    }

    fn ok(_: &ObjectDictionary, _: Slot, _: i64, _: &[u8]) -> Result<(), AbortCode> {
        Ok(())
    }

    fn serve(s: &mut SdoServer, od: &mut ObjectDictionary, r: SdoRequest) -> Option<SdoResponse> {
        s.on_request(od, &r.to_bytes(), Timestamp::ZERO, &ok)
            .response
    }

    #[test]
    fn expedited_read_write_and_aborts() {
        let mut od = od();
        let mut s = SdoServer::new(od.max_value_len());
        let cw = Multiplexer::new(0x6040, 0);
        let r = serve(
            &mut s,
            &mut od,
            SdoRequest::download_expedited(cw, &[6, 0]).unwrap(),
        );
        assert_eq!(r, Some(SdoResponse::download_ack(cw)));
        assert_eq!(od.value(0x6040, 0), Some(6));
        let sw = Multiplexer::new(0x6041, 0);
        let r = serve(&mut s, &mut od, SdoRequest::upload(sw));
        assert_eq!(r, SdoResponse::upload_expedited(sw, &[0x50, 0x02]));
        let r = serve(
            &mut s,
            &mut od,
            SdoRequest::download_expedited(sw, &[0, 0]).unwrap(),
        );
        assert_eq!(r, Some(SdoResponse::abort(sw, AbortCode::WriteOfReadOnly)));
        let r = serve(
            &mut s,
            &mut od,
            SdoRequest::download_expedited(cw, &[0, 0, 0, 0]).unwrap(),
        );
        assert_eq!(r, Some(SdoResponse::abort(cw, AbortCode::LengthTooHigh)));
        let missing = Multiplexer::new(0x6099, 1);
        let r = serve(&mut s, &mut od, SdoRequest::upload(missing));
        assert_eq!(
            r,
            Some(SdoResponse::abort(missing, AbortCode::ObjectDoesNotExist))
        );
    }

    #[test]
    fn segmented_upload_and_download_with_toggle_checks() {
        let mut od = od();
        let mut s = SdoServer::new(od.max_value_len());
        let name = Multiplexer::new(0x1008, 0);
        let r = serve(&mut s, &mut od, SdoRequest::upload(name));
        assert_eq!(r, Some(SdoResponse::upload_segmented(name, 20)));
        let mut got = Vec::new();
        for k in 0..3 {
            match serve(&mut s, &mut od, SdoRequest::upload_segment(k % 2 == 1)) {
                Some(SdoResponse::UploadSegment { data, last, .. }) => {
                    got.extend_from_slice(data.as_slice());
                    assert_eq!(last, k == 2);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, b"takt simulated drive");
        // A repeated toggle is refused.
        serve(&mut s, &mut od, SdoRequest::upload(name));
        serve(&mut s, &mut od, SdoRequest::upload_segment(false));
        let r = serve(&mut s, &mut od, SdoRequest::upload_segment(false));
        assert_eq!(
            r,
            Some(SdoResponse::abort(name, AbortCode::ToggleBitNotAlternated))
        );

        let label = Multiplexer::new(0x2001, 0);
        let text = b"X axis, gantry";
        serve(
            &mut s,
            &mut od,
            SdoRequest::download_segmented(label, text.len() as u32),
        );
        serve(
            &mut s,
            &mut od,
            SdoRequest::download_segment(false, &text[..7], false).unwrap(),
        );
        let r = serve(
            &mut s,
            &mut od,
            SdoRequest::download_segment(true, &text[7..], true).unwrap(),
        );
        assert_eq!(r, Some(SdoResponse::download_segment_ack(true)));
        assert_eq!(od.text(od.slot(0x2001, 0).unwrap()), text);
    }

    #[test]
    fn abandoned_transfers_time_out_and_garbage_is_refused() {
        let mut od = od();
        let mut s = SdoServer::new(od.max_value_len());
        let name = Multiplexer::new(0x1008, 0);
        serve(&mut s, &mut od, SdoRequest::upload(name));
        assert!(s.poll(Timestamp::from_millis(500)).is_none());
        assert_eq!(
            s.poll(Timestamp::from_millis(1500)),
            Some(SdoResponse::abort(name, AbortCode::Timeout))
        );
        let r = s.on_request(&mut od, &[0xE0, 0, 0, 0, 0, 0, 0, 0], Timestamp::ZERO, &ok);
        assert!(matches!(
            r.response,
            Some(SdoResponse::Abort {
                code: AbortCode::InvalidCommandSpecifier,
                ..
            })
        ));
    }
}
