//! The SDO client (CiA 301 §7.2.4.3) as a non-blocking state machine for one server node:
//! the controller reads (uploads) and writes (downloads) device objects with it from inside
//! the cycle.
//!
//! Per cycle the owner feeds received frames to [`SdoClient::on_frame`], then calls
//! [`SdoClient::poll`] for the frame to send (and to check the timeout), and picks up the
//! result with [`SdoClient::take_outcome`]. Expedited transfers carry 1..=4 bytes in one
//! frame pair; anything else is segmented, 7 bytes per segment, with the toggle bit checked
//! on every answer. Data lives in a buffer allocated once at construction, so a running
//! transfer never allocates; block transfer is not implemented.
//!
//! ```
//! use takt_drivers::can::{Frame, Timestamp};
//! use takt_drivers::canopen::{NodeId, sdo::{Multiplexer, SdoClient, SdoDone}};
//!
//! let mut client = SdoClient::new(NodeId::new(1)?, 64);
//! let t0 = Timestamp::ZERO;
//! client.start_upload(Multiplexer::new(0x6041, 0), t0)?;
//! assert_eq!(client.poll(t0).unwrap().to_string(), "601#4041600000000000");
//! client.on_frame(&Frame::standard(0x581, [0x4B, 0x41, 0x60, 0, 0x37, 0x02, 0, 0]), t0);
//! assert!(matches!(client.take_outcome(), Some(Ok(SdoDone::Uploaded { len: 2, .. }))));
//! assert_eq!(client.data(), &[0x37, 0x02]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::time::Duration;

use crate::can::{Frame, Timestamp};

use super::AbortCode;
use super::frames::{InitiateData, Multiplexer, SEGMENT_MAX, SdoRequest, SdoResponse};
use crate::canopen::cob::SDO_RESPONSE;
use crate::canopen::{DecodeError, NodeId};

/// Default time the client waits for each server response before aborting with
/// 0x0504_0000.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// Read or write, from the client's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdoDirection {
    /// Read: the server uploads the value to the client.
    Upload,
    /// Write: the client downloads the value to the server.
    Download,
}

impl fmt::Display for SdoDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SdoDirection::Upload => "upload (read)",
            SdoDirection::Download => "download (write)",
        })
    }
}

/// How a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdoErrorKind {
    /// The server aborted with this code.
    #[error("the device aborted: {0}")]
    ServerAbort(AbortCode),
    /// No response within the client's timeout.
    #[error("no response within the timeout")]
    Timeout,
    /// A segment response carried the wrong toggle bit.
    #[error("toggle bit not alternated in the device's response")]
    ToggleMismatch,
    /// The server answered with a response that does not fit the transfer's state.
    #[error("unexpected response from the device (command byte {0:#04X})")]
    UnexpectedResponse(u8),
    /// The server's response could not be decoded.
    #[error("malformed response from the device: {0}")]
    MalformedResponse(DecodeError),
    /// The server answered for another object.
    #[error("the device answered for {0} instead")]
    WrongMultiplexer(Multiplexer),
    /// The uploaded value does not fit the client's buffer.
    #[error(
        "the value ({size} bytes or more) does not fit the client's buffer of {capacity} bytes"
    )]
    BufferTooSmall {
        /// The size the server indicated, or the bytes received so far.
        size: usize,
        /// The client's buffer size.
        capacity: usize,
    },
    /// A segmented upload ended with a different number of bytes than announced.
    #[error("the device announced {indicated} bytes but sent {received}")]
    SizeMismatch {
        /// The size in the initiate upload response.
        indicated: u32,
        /// The bytes received.
        received: usize,
    },
    /// The owner cancelled the transfer.
    #[error("cancelled by the controller")]
    Cancelled,
}

/// Why an SDO transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SDO {direction} {mux} on node {node}: {kind}{}", SentAbort(*.sent_abort))]
pub struct SdoError {
    /// The server node.
    pub node: NodeId,
    /// The object of the transfer.
    pub mux: Multiplexer,
    /// Read or write.
    pub direction: SdoDirection,
    /// What went wrong.
    pub kind: SdoErrorKind,
    /// The abort the client sent to the server, if it sent one.
    pub sent_abort: Option<AbortCode>,
}

struct SentAbort(Option<AbortCode>);

impl fmt::Display for SentAbort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(f, " (sent abort {:#010X})", code.as_u32()),
            None => Ok(()),
        }
    }
}

/// Why a transfer could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdoStartError {
    /// A transfer is already running on this client.
    #[error("an SDO transfer to this node is already running")]
    Busy,
    /// The value is longer than the client's buffer.
    #[error("{len} bytes do not fit the SDO client's buffer of {capacity} bytes")]
    TooLong {
        /// The value's length.
        len: usize,
        /// The client's buffer size.
        capacity: usize,
    },
}

/// A finished transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdoDone {
    /// The value was read; [`SdoClient::data`] holds its `len` bytes.
    Uploaded {
        /// The object read.
        mux: Multiplexer,
        /// Bytes read.
        len: usize,
    },
    /// The value was written.
    Downloaded {
        /// The object written.
        mux: Multiplexer,
    },
}

/// The outcome of a transfer.
pub type SdoOutcome = Result<SdoDone, SdoError>;

/// What the client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    InitiateDownload {
        expedited: bool,
    },
    /// Waiting for the ack of the segment that ends at byte `end` with toggle `toggle`.
    DownloadSegment {
        toggle: bool,
        end: usize,
    },
    InitiateUpload,
    UploadSegment {
        toggle: bool,
        size: Option<u32>,
    },
}

/// An SDO client for one server node. See the [module docs](self).
#[derive(Debug)]
pub struct SdoClient {
    node: NodeId,
    timeout: Duration,
    buffer: Box<[u8]>,
    len: usize,
    phase: Phase,
    mux: Multiplexer,
    direction: SdoDirection,
    /// When the last request left (or was queued, before it was handed out).
    since: Timestamp,
    outbox: Option<Frame>,
    outcome: Option<SdoOutcome>,
}

impl SdoClient {
    /// A client for `node` with a buffer of `capacity` bytes (the longest value it can read
    /// or write), allocated here once, and the [`DEFAULT_TIMEOUT`].
    pub fn new(node: NodeId, capacity: usize) -> SdoClient {
        SdoClient {
            node,
            timeout: DEFAULT_TIMEOUT,
            buffer: vec![0; capacity].into_boxed_slice(),
            len: 0,
            phase: Phase::Idle,
            mux: Multiplexer::new(0, 0),
            direction: SdoDirection::Upload,
            since: Timestamp::ZERO,
            outbox: None,
            outcome: None,
        }
    }

    /// The same client with another response timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> SdoClient {
        self.timeout = timeout;
        self
    }

    /// Sets the response timeout for transfers from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The response timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The server node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The longest value the client can transfer.
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// True while a transfer runs.
    pub fn is_busy(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The object of the running or last transfer.
    pub fn mux(&self) -> Multiplexer {
        self.mux
    }

    /// The bytes of the last successful upload (or received so far during one, or of the
    /// last download).
    pub fn data(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    /// Starts reading `mux` at `now`. An outcome not yet taken is dropped.
    pub fn start_upload(&mut self, mux: Multiplexer, now: Timestamp) -> Result<(), SdoStartError> {
        if self.is_busy() {
            return Err(SdoStartError::Busy);
        }
        self.begin(mux, SdoDirection::Upload, now);
        self.len = 0;
        self.phase = Phase::InitiateUpload;
        self.send(SdoRequest::upload(mux));
        Ok(())
    }

    /// Starts writing `data` to `mux` at `now`: expedited for 1..=4 bytes, segmented
    /// otherwise (including an empty value). An outcome not yet taken is dropped.
    pub fn start_download(
        &mut self,
        mux: Multiplexer,
        data: &[u8],
        now: Timestamp,
    ) -> Result<(), SdoStartError> {
        if self.is_busy() {
            return Err(SdoStartError::Busy);
        }
        let Some(buf) = self.buffer.get_mut(..data.len()) else {
            return Err(SdoStartError::TooLong {
                len: data.len(),
                capacity: self.buffer.len(),
            });
        };
        buf.copy_from_slice(data);
        self.len = data.len();
        self.begin(mux, SdoDirection::Download, now);
        match SdoRequest::download_expedited(mux, data) {
            Some(request) => {
                self.phase = Phase::InitiateDownload { expedited: true };
                self.send(request);
            }
            None => {
                self.phase = Phase::InitiateDownload { expedited: false };
                // The buffer is a slice, so its length (and `len`) fits in memory; a value
                // over 4 GiB cannot be announced and is refused by the u32 conversion.
                let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
                self.send(SdoRequest::download_segmented(mux, size));
            }
        }
        Ok(())
    }

    /// Aborts the running transfer with `code` (sent to the server); the outcome is
    /// [`SdoErrorKind::Cancelled`]. Does nothing when idle.
    pub fn cancel(&mut self, code: AbortCode) {
        if self.is_busy() {
            self.fail(SdoErrorKind::Cancelled, Some(code));
        }
    }

    /// The next frame to send, if any, and the timeout check at `now`. The caller owns the
    /// returned frame: if the bus refuses it (would block), keep it and retry. The response
    /// timeout runs from the moment a request is handed out here.
    pub fn poll(&mut self, now: Timestamp) -> Option<Frame> {
        if let Some(frame) = self.outbox.take() {
            self.since = now;
            return Some(frame);
        }
        if self.is_busy() && now.saturating_since(self.since) > self.timeout {
            self.fail(SdoErrorKind::Timeout, Some(AbortCode::Timeout));
            return self.outbox.take();
        }
        None
    }

    /// The outcome of the last transfer, once, after it finished.
    pub fn take_outcome(&mut self) -> Option<SdoOutcome> {
        self.outcome.take()
    }

    /// The outcome of the last transfer, without taking it.
    pub fn outcome(&self) -> Option<&SdoOutcome> {
        self.outcome.as_ref()
    }

    /// Takes in a received frame. Returns true if it was a response from this client's
    /// server while a transfer was running (and so was consumed); every other frame is
    /// ignored.
    pub fn on_frame(&mut self, frame: &Frame, now: Timestamp) -> bool {
        if !self.is_busy()
            || frame.standard_id() != Some(SDO_RESPONSE + u16::from(self.node.get()))
            || frame.is_remote()
            || frame.is_fd()
        {
            return false;
        }
        match SdoResponse::from_bytes(frame.data()) {
            Ok(response) => self.on_response(response, now),
            Err(e) => {
                let code = match e {
                    DecodeError::UnknownSdoCommand(_) | DecodeError::SdoBlockTransfer(_) => {
                        AbortCode::InvalidCommandSpecifier
                    }
                    _ => AbortCode::GeneralError,
                };
                self.fail(SdoErrorKind::MalformedResponse(e), Some(code));
            }
        }
        true
    }

    fn on_response(&mut self, response: SdoResponse, now: Timestamp) {
        if let SdoResponse::Abort { code, .. } = response {
            // Servers do not always repeat the multiplexer in segment aborts; any abort on
            // this channel ends the one running transfer.
            self.fail(SdoErrorKind::ServerAbort(code), None);
            return;
        }
        match (self.phase, response) {
            (Phase::InitiateDownload { expedited }, SdoResponse::InitiateDownload { mux }) => {
                if !self.check_mux(mux) {
                    return;
                }
                if expedited {
                    self.finish(SdoDone::Downloaded { mux: self.mux });
                } else {
                    self.send_download_segment(0, false, now);
                }
            }
            (
                Phase::DownloadSegment { toggle, end },
                SdoResponse::DownloadSegment { toggle: t },
            ) => {
                if t != toggle {
                    self.fail(
                        SdoErrorKind::ToggleMismatch,
                        Some(AbortCode::ToggleBitNotAlternated),
                    );
                } else if end >= self.len {
                    self.finish(SdoDone::Downloaded { mux: self.mux });
                } else {
                    self.send_download_segment(end, !toggle, now);
                }
            }
            (Phase::InitiateUpload, SdoResponse::InitiateUpload { mux, data }) => {
                if !self.check_mux(mux) {
                    return;
                }
                self.on_initiate_upload(data, now);
            }
            (
                Phase::UploadSegment { toggle, size },
                SdoResponse::UploadSegment {
                    toggle: t,
                    data,
                    last,
                },
            ) => {
                if t != toggle {
                    self.fail(
                        SdoErrorKind::ToggleMismatch,
                        Some(AbortCode::ToggleBitNotAlternated),
                    );
                    return;
                }
                let bytes = data.as_slice();
                let end = self.len + bytes.len();
                let Some(dst) = self.buffer.get_mut(self.len..end) else {
                    let capacity = self.buffer.len();
                    self.fail(
                        SdoErrorKind::BufferTooSmall {
                            size: end,
                            capacity,
                        },
                        Some(AbortCode::OutOfMemory),
                    );
                    return;
                };
                dst.copy_from_slice(bytes);
                self.len = end;
                if !last {
                    self.phase = Phase::UploadSegment {
                        toggle: !toggle,
                        size,
                    };
                    self.queue(SdoRequest::upload_segment(!toggle), now);
                    return;
                }
                match size {
                    Some(indicated) if usize::try_from(indicated).ok() != Some(self.len) => {
                        // The server considers the transfer complete: nothing to abort.
                        self.fail(
                            SdoErrorKind::SizeMismatch {
                                indicated,
                                received: self.len,
                            },
                            None,
                        );
                    }
                    _ => self.finish(SdoDone::Uploaded {
                        mux: self.mux,
                        len: self.len,
                    }),
                }
            }
            (_, other) => {
                self.fail(
                    SdoErrorKind::UnexpectedResponse(other.to_bytes()[0]),
                    Some(AbortCode::InvalidCommandSpecifier),
                );
            }
        }
    }

    fn on_initiate_upload(&mut self, data: InitiateData, now: Timestamp) {
        let capacity = self.buffer.len();
        match data {
            InitiateData::Expedited(e) => {
                let bytes = e.as_slice();
                match self.buffer.get_mut(..bytes.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(bytes);
                        self.len = bytes.len();
                        self.finish(SdoDone::Uploaded {
                            mux: self.mux,
                            len: self.len,
                        });
                    }
                    // The expedited transfer is complete on the server's side: no abort.
                    None => self.fail(
                        SdoErrorKind::BufferTooSmall {
                            size: bytes.len(),
                            capacity,
                        },
                        None,
                    ),
                }
            }
            InitiateData::Segmented { size } => {
                if let Some(indicated) = size {
                    let fits = usize::try_from(indicated).is_ok_and(|n| n <= capacity);
                    if !fits {
                        let size = usize::try_from(indicated).unwrap_or(usize::MAX);
                        self.fail(
                            SdoErrorKind::BufferTooSmall { size, capacity },
                            Some(AbortCode::OutOfMemory),
                        );
                        return;
                    }
                }
                self.len = 0;
                self.phase = Phase::UploadSegment {
                    toggle: false,
                    size,
                };
                self.queue(SdoRequest::upload_segment(false), now);
            }
        }
    }

    fn check_mux(&mut self, got: Multiplexer) -> bool {
        if got == self.mux {
            return true;
        }
        self.fail(
            SdoErrorKind::WrongMultiplexer(got),
            Some(AbortCode::GeneralError),
        );
        false
    }

    fn send_download_segment(&mut self, start: usize, toggle: bool, now: Timestamp) {
        let end = (start + SEGMENT_MAX).min(self.len);
        let last = end == self.len;
        // start ≤ end ≤ len ≤ capacity and end - start ≤ 7, so both the slice and the
        // segment constructor succeed.
        let request = self
            .buffer
            .get(start..end)
            .and_then(|chunk| SdoRequest::download_segment(toggle, chunk, last));
        match request {
            Some(request) => {
                self.phase = Phase::DownloadSegment { toggle, end };
                self.queue(request, now);
            }
            // Unreachable by the invariant above; ending the transfer is safer in the cycle
            // than a panic.
            None => self.fail(SdoErrorKind::Cancelled, Some(AbortCode::GeneralError)),
        }
    }

    fn begin(&mut self, mux: Multiplexer, direction: SdoDirection, now: Timestamp) {
        self.mux = mux;
        self.direction = direction;
        self.since = now;
        self.outcome = None;
    }

    fn send(&mut self, request: SdoRequest) {
        self.outbox = Some(request.encode(self.node));
    }

    fn queue(&mut self, request: SdoRequest, now: Timestamp) {
        self.since = now;
        self.send(request);
    }

    fn finish(&mut self, done: SdoDone) {
        self.phase = Phase::Idle;
        self.outcome = Some(Ok(done));
    }

    fn fail(&mut self, kind: SdoErrorKind, abort: Option<AbortCode>) {
        self.phase = Phase::Idle;
        self.outbox = abort.map(|code| SdoRequest::abort(self.mux, code).encode(self.node));
        self.outcome = Some(Err(SdoError {
            node: self.node,
            mux: self.mux,
            direction: self.direction,
            kind,
            sent_abort: abort,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: u8 = 1;
    const STATUSWORD: Multiplexer = Multiplexer::new(0x6041, 0);
    const CONTROLWORD: Multiplexer = Multiplexer::new(0x6040, 0);
    const DEVICE_NAME: Multiplexer = Multiplexer::new(0x1008, 0);

    struct Harness {
        client: SdoClient,
        now: Timestamp,
    }

    impl Harness {
        fn new(capacity: usize) -> Harness {
            Harness {
                client: SdoClient::new(NodeId::new(NODE).unwrap(), capacity),
                now: Timestamp::ZERO,
            }
        }

        fn advance_ms(&mut self, ms: u64) {
            self.now = self.now + Duration::from_millis(ms);
        }

        /// The frame the client sends now, in candump form.
        fn sent(&mut self) -> Option<String> {
            self.client.poll(self.now).map(|f| f.to_string())
        }

        fn reply(&mut self, data: [u8; 8]) {
            let consumed = self
                .client
                .on_frame(&Frame::standard(0x580 + NODE as u16, data), self.now);
            assert!(consumed, "reply not consumed");
        }

        fn reply_with(&mut self, response: SdoResponse) {
            self.reply(response.to_bytes());
        }

        fn outcome(&mut self) -> SdoOutcome {
            self.client.take_outcome().expect("transfer finished")
        }

        fn error_kind(&mut self) -> (SdoErrorKind, Option<AbortCode>) {
            let e = self.outcome().expect_err("transfer failed");
            (e.kind, e.sent_abort)
        }
    }

    #[test]
    fn expedited_download_of_the_controlword() {
        let mut h = Harness::new(16);
        h.client
            .start_download(CONTROLWORD, &[0x06, 0x00], h.now)
            .unwrap();
        assert_eq!(h.sent().as_deref(), Some("601#2B40600006000000"));
        assert_eq!(h.sent(), None);
        assert!(h.client.is_busy());
        h.reply([0x60, 0x40, 0x60, 0x00, 0, 0, 0, 0]);
        assert!(!h.client.is_busy());
        assert_eq!(h.outcome(), Ok(SdoDone::Downloaded { mux: CONTROLWORD }));
        assert_eq!(h.client.take_outcome(), None, "taken once");
    }

    #[test]
    fn expedited_upload_of_the_statusword() {
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        assert_eq!(h.sent().as_deref(), Some("601#4041600000000000"));
        h.reply([0x4B, 0x41, 0x60, 0x00, 0x37, 0x02, 0x00, 0x00]);
        assert_eq!(
            h.outcome(),
            Ok(SdoDone::Uploaded {
                mux: STATUSWORD,
                len: 2
            })
        );
        assert_eq!(h.client.data(), &[0x37, 0x02]);
    }

    #[test]
    fn segmented_upload_of_a_13_byte_device_name() {
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        assert_eq!(h.sent().as_deref(), Some("601#4008100000000000"));
        h.reply([0x41, 0x08, 0x10, 0x00, 13, 0, 0, 0]);
        assert_eq!(h.sent().as_deref(), Some("601#6000000000000000"));
        h.reply([0x00, b't', b'a', b'k', b't', b' ', b's', b'e']);
        assert_eq!(h.sent().as_deref(), Some("601#7000000000000000"));
        // 6 bytes: n = 1, c = 1, t = 1.
        h.reply([0x13, b'r', b'v', b'o', b' ', b'X', b'1', 0]);
        assert_eq!(h.sent(), None);
        assert_eq!(
            h.outcome(),
            Ok(SdoDone::Uploaded {
                mux: DEVICE_NAME,
                len: 13
            })
        );
        assert_eq!(h.client.data(), b"takt servo X1");
    }

    #[test]
    fn segmented_upload_without_size_indicated() {
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x40, 0x08, 0x10, 0x00, 0, 0, 0, 0]);
        assert_eq!(h.sent().as_deref(), Some("601#6000000000000000"));
        h.reply([0x05, b'a', b'b', b'c', b'd', b'e', 0, 0]);
        assert_eq!(
            h.outcome(),
            Ok(SdoDone::Uploaded {
                mux: DEVICE_NAME,
                len: 5
            })
        );
        assert_eq!(h.client.data(), b"abcde");
    }

    /// Runs a segmented download of `value` against a correct server and returns the
    /// frames the client sent.
    fn download_frames(value: &[u8]) -> Vec<String> {
        let mut h = Harness::new(64);
        h.client.start_download(DEVICE_NAME, value, h.now).unwrap();
        let mut frames = vec![h.sent().unwrap()];
        h.reply_with(SdoResponse::download_ack(DEVICE_NAME));
        while let Some(f) = h.sent() {
            let toggle = frames.len() % 2 == 0;
            frames.push(f);
            h.reply_with(SdoResponse::download_segment_ack(toggle));
        }
        assert_eq!(h.outcome(), Ok(SdoDone::Downloaded { mux: DEVICE_NAME }));
        frames
    }

    #[test]
    fn segmented_downloads_of_odd_lengths() {
        assert_eq!(
            download_frames(b"takt servo X1"),
            [
                "601#210810000D000000",
                "601#0074616B74207365", // t=0, 7 bytes
                "601#1372766F20583100", // t=1, 6 bytes (n=1), last
            ]
        );
        // Empty: announced as 0 bytes, one empty last segment (n = 7).
        assert_eq!(
            download_frames(b""),
            ["601#2108100000000000", "601#0F00000000000000"]
        );
        assert_eq!(
            download_frames(b"12345"),
            ["601#2108100005000000", "601#0531323334350000"]
        );
        assert_eq!(
            download_frames(b"1234567"),
            ["601#2108100007000000", "601#0131323334353637"]
        );
        assert_eq!(
            download_frames(b"12345678"),
            [
                "601#2108100008000000",
                "601#0031323334353637",
                "601#1D38000000000000", // t=1, 1 byte (n=6), last
            ]
        );
        // Exactly two full segments: the second is the last one with n = 0.
        assert_eq!(download_frames(&[0xAA; 14])[2], "601#11AAAAAAAAAAAAAA");
    }

    #[test]
    fn expedited_downloads_of_every_length() {
        for (value, frame) in [
            (&[0x11][..], "601#2F40600011000000"),
            (&[0x11, 0x22], "601#2B40600011220000"),
            (&[0x11, 0x22, 0x33], "601#2740600011223300"),
            (&[0x11, 0x22, 0x33, 0x44], "601#2340600011223344"),
        ] {
            let mut h = Harness::new(8);
            h.client.start_download(CONTROLWORD, value, h.now).unwrap();
            assert_eq!(h.sent().as_deref(), Some(frame));
        }
    }

    #[test]
    fn toggle_error_in_an_upload_aborts() {
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x41, 0x08, 0x10, 0x00, 13, 0, 0, 0]);
        h.sent();
        // First segment must carry t = 0; this one says 1.
        h.reply([0x10, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(h.sent().as_deref(), Some("601#8008100000000305"));
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::ToggleMismatch,
                Some(AbortCode::ToggleBitNotAlternated)
            )
        );
        assert!(!h.client.is_busy());
    }

    #[test]
    fn toggle_error_in_a_download_aborts() {
        let mut h = Harness::new(64);
        h.client
            .start_download(DEVICE_NAME, &[0; 20], h.now)
            .unwrap();
        h.sent();
        h.reply_with(SdoResponse::download_ack(DEVICE_NAME));
        h.sent();
        h.reply_with(SdoResponse::download_segment_ack(false));
        h.sent();
        // Second segment has t = 1; the server acknowledges t = 0.
        h.reply_with(SdoResponse::download_segment_ack(false));
        assert_eq!(h.sent().as_deref(), Some("601#8008100000000305"));
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::ToggleMismatch,
                Some(AbortCode::ToggleBitNotAlternated)
            )
        );
    }

    #[test]
    fn timeout_sends_abort_after_the_configured_time() {
        let mut h = Harness::new(16);
        h.client.set_timeout(Duration::from_millis(100));
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.advance_ms(5);
        // The timeout runs from when the request is handed out, not when it was queued.
        assert!(h.sent().is_some());
        h.advance_ms(100);
        assert_eq!(h.sent(), None);
        assert!(h.client.is_busy());
        h.advance_ms(1);
        assert_eq!(h.sent().as_deref(), Some("601#8041600000000405"));
        assert_eq!(
            h.error_kind(),
            (SdoErrorKind::Timeout, Some(AbortCode::Timeout))
        );
        assert_eq!(h.sent(), None);
    }

    #[test]
    fn default_timeout_is_500_ms_and_restarts_with_each_segment() {
        let mut h = Harness::new(64);
        assert_eq!(h.client.timeout(), Duration::from_millis(500));
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.advance_ms(400);
        h.reply([0x41, 0x08, 0x10, 0x00, 13, 0, 0, 0]);
        h.sent();
        h.advance_ms(400);
        assert_eq!(
            h.sent(),
            None,
            "800 ms in total, but 400 ms since the last request"
        );
        h.advance_ms(101);
        assert_eq!(h.sent().as_deref(), Some("601#8008100000000405"));
        assert_eq!(h.error_kind().0, SdoErrorKind::Timeout);
    }

    #[test]
    fn server_aborts_in_every_phase() {
        let abort = |code: u32| {
            let c = code.to_le_bytes();
            [0x80, 0x08, 0x10, 0x00, c[0], c[1], c[2], c[3]]
        };
        // Initiate upload.
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply(abort(0x0602_0000));
        assert_eq!(h.sent(), None, "no abort answers an abort");
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::ServerAbort(AbortCode::ObjectDoesNotExist),
                None
            )
        );
        // Mid upload.
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x41, 0x08, 0x10, 0x00, 13, 0, 0, 0]);
        h.sent();
        h.reply(abort(0x0800_0022));
        assert_eq!(
            h.error_kind().0,
            SdoErrorKind::ServerAbort(AbortCode::DeviceState)
        );
        // Initiate download.
        let mut h = Harness::new(64);
        h.client
            .start_download(DEVICE_NAME, &[1, 2], h.now)
            .unwrap();
        h.sent();
        h.reply(abort(0x0601_0002));
        assert_eq!(
            h.error_kind().0,
            SdoErrorKind::ServerAbort(AbortCode::WriteOfReadOnly)
        );
        // Mid download, with a manufacturer-specific code.
        let mut h = Harness::new(64);
        h.client
            .start_download(DEVICE_NAME, &[0; 10], h.now)
            .unwrap();
        h.sent();
        h.reply_with(SdoResponse::download_ack(DEVICE_NAME));
        h.sent();
        h.reply(abort(0x1234_5678));
        assert_eq!(
            h.error_kind().0,
            SdoErrorKind::ServerAbort(AbortCode::Unknown(0x1234_5678))
        );
    }

    #[test]
    fn unexpected_and_malformed_responses_abort() {
        // A download ack while uploading.
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        h.reply([0x60, 0x41, 0x60, 0x00, 0, 0, 0, 0]);
        assert_eq!(h.sent().as_deref(), Some("601#8041600001000405"));
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::UnexpectedResponse(0x60),
                Some(AbortCode::InvalidCommandSpecifier)
            )
        );
        // An answer for another object.
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        h.reply([0x4B, 0x40, 0x60, 0x00, 0x37, 0x02, 0x00, 0x00]);
        assert_eq!(h.sent().as_deref(), Some("601#8041600000000008"));
        assert_eq!(
            h.error_kind().0,
            SdoErrorKind::WrongMultiplexer(Multiplexer::new(0x6040, 0))
        );
        // A short frame on the SDO response id.
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        assert!(
            h.client
                .on_frame(&Frame::standard(0x581, [0x4B, 0x41]), h.now)
        );
        assert_eq!(h.sent().as_deref(), Some("601#8041600000000008"));
        assert!(matches!(
            h.error_kind(),
            (
                SdoErrorKind::MalformedResponse(DecodeError::WrongLength { got: 2, .. }),
                _
            )
        ));
        // A block-transfer answer.
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        h.reply([0xC0, 0x41, 0x60, 0, 0, 0, 0, 0]);
        assert_eq!(h.sent().as_deref(), Some("601#8041600001000405"));
    }

    #[test]
    fn values_larger_than_the_buffer() {
        let mut h = Harness::new(8);
        assert_eq!(
            h.client.start_download(DEVICE_NAME, &[0; 9], h.now),
            Err(SdoStartError::TooLong {
                len: 9,
                capacity: 8
            })
        );
        assert!(!h.client.is_busy());
        // Announced size too large: abort at once.
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x41, 0x08, 0x10, 0x00, 13, 0, 0, 0]);
        assert_eq!(h.sent().as_deref(), Some("601#8008100005000405"));
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::BufferTooSmall {
                    size: 13,
                    capacity: 8
                },
                Some(AbortCode::OutOfMemory)
            )
        );
        // Size not announced: abort when the buffer would overflow.
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x40, 0x08, 0x10, 0x00, 0, 0, 0, 0]);
        h.sent();
        h.reply([0x00, 1, 2, 3, 4, 5, 6, 7]);
        h.sent();
        h.reply([0x10, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(h.sent().as_deref(), Some("601#8008100005000405"));
        assert_eq!(
            h.error_kind().0,
            SdoErrorKind::BufferTooSmall {
                size: 14,
                capacity: 8
            }
        );
    }

    #[test]
    fn announced_size_must_match() {
        let mut h = Harness::new(64);
        h.client.start_upload(DEVICE_NAME, h.now).unwrap();
        h.sent();
        h.reply([0x41, 0x08, 0x10, 0x00, 10, 0, 0, 0]);
        h.sent();
        h.reply([0x05, 1, 2, 3, 4, 5, 0, 0]);
        assert_eq!(h.sent(), None);
        assert_eq!(
            h.error_kind(),
            (
                SdoErrorKind::SizeMismatch {
                    indicated: 10,
                    received: 5
                },
                None
            )
        );
    }

    #[test]
    fn other_frames_are_ignored() {
        let mut h = Harness::new(16);
        // Idle: even our own response id is ignored.
        assert!(!h.client.on_frame(
            &Frame::standard(0x581, [0x60, 0x40, 0x60, 0, 0, 0, 0, 0]),
            h.now
        ));
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        for f in [
            Frame::standard(0x582, [0x4B, 0x41, 0x60, 0, 1, 2, 0, 0]),
            Frame::standard(0x601, [0x4B, 0x41, 0x60, 0, 1, 2, 0, 0]),
            Frame::standard(0x701, [0x05]),
            Frame::remote(crate::can::CanId::standard(0x581).unwrap(), 8).unwrap(),
            Frame::new(
                crate::can::CanId::extended(0x581).unwrap(),
                &[0x4B, 0x41, 0x60, 0, 1, 2, 0, 0],
            )
            .unwrap(),
        ] {
            assert!(!h.client.on_frame(&f, h.now), "{f}");
        }
        assert!(h.client.is_busy());
    }

    #[test]
    fn busy_and_cancel() {
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        assert_eq!(
            h.client.start_upload(STATUSWORD, h.now),
            Err(SdoStartError::Busy)
        );
        assert_eq!(
            h.client.start_download(STATUSWORD, &[1], h.now),
            Err(SdoStartError::Busy)
        );
        h.sent();
        h.client.cancel(AbortCode::GeneralError);
        assert_eq!(h.sent().as_deref(), Some("601#8041600000000008"));
        assert_eq!(
            h.error_kind(),
            (SdoErrorKind::Cancelled, Some(AbortCode::GeneralError))
        );
        // And the client is free again.
        h.client.start_upload(STATUSWORD, h.now).unwrap();
    }

    #[test]
    fn errors_read_well() {
        let mut h = Harness::new(16);
        h.client.start_upload(STATUSWORD, h.now).unwrap();
        h.sent();
        h.advance_ms(501);
        h.sent();
        let e = h.outcome().unwrap_err();
        assert_eq!(
            e.to_string(),
            "SDO upload (read) 0x6041:00 on node 1: no response within the timeout (sent abort \
             0x05040000)"
        );
    }
}
