//! SDO protocol frames (CiA 301 §7.2.4.3): the expedited and segmented download and upload
//! protocols and abort, both directions, as typed values with byte-exact codecs.
//!
//! Every SDO frame has 8 data bytes. Byte 0 is the command byte: the top three bits are the
//! client command specifier (`ccs`, requests on `0x600 + node`) or server command specifier
//! (`scs`, responses on `0x580 + node`), followed by `t` (toggle), `n` (unused bytes),
//! `e` (expedited), `s` (size indicated) or `c` (no more segments), depending on the service.
//! Initiate and abort frames carry the multiplexer (index little-endian, sub-index) in bytes
//! 1..=3; segment frames carry up to 7 data bytes in bytes 1..=7.
//!
//! The controller uses [`SdoRequest::encode`] and [`SdoResponse::decode`]; a device-side SDO
//! server (the simulator) uses [`SdoRequest::decode`] and the [`SdoResponse`] constructors.
//!
//! ```
//! use takt_drivers::canopen::{NodeId, sdo::{Multiplexer, SdoRequest, SdoResponse}};
//!
//! let node = NodeId::new(1)?;
//! let controlword = Multiplexer::new(0x6040, 0);
//! let request = SdoRequest::download_expedited(controlword, &0x0006u16.to_le_bytes()).unwrap();
//! assert_eq!(request.encode(node).to_string(), "601#2B40600006000000");
//! assert_eq!(SdoResponse::download_ack(controlword).encode(node).to_string(), "581#6040600000000000");
//! # Ok::<(), takt_drivers::canopen::NodeIdError>(())
//! ```

use core::fmt;

use crate::can::Frame;

use super::AbortCode;
use crate::canopen::cob::{SDO_REQUEST, SDO_RESPONSE};
use crate::canopen::hex::Hex;
use crate::canopen::{DecodeError, NodeId, Service};

/// Client command specifier "download segment request" (CiA 301 §7.2.4.3), bits 7..5.
pub const CCS_DOWNLOAD_SEGMENT: u8 = 0;
/// Client command specifier "initiate download request" (CiA 301 §7.2.4.3).
pub const CCS_INITIATE_DOWNLOAD: u8 = 1;
/// Client command specifier "initiate upload request" (CiA 301 §7.2.4.3).
pub const CCS_INITIATE_UPLOAD: u8 = 2;
/// Client command specifier "upload segment request" (CiA 301 §7.2.4.3).
pub const CCS_UPLOAD_SEGMENT: u8 = 3;
/// Server command specifier "upload segment response" (CiA 301 §7.2.4.3).
pub const SCS_UPLOAD_SEGMENT: u8 = 0;
/// Server command specifier "download segment response" (CiA 301 §7.2.4.3).
pub const SCS_DOWNLOAD_SEGMENT: u8 = 1;
/// Server command specifier "initiate upload response" (CiA 301 §7.2.4.3).
pub const SCS_INITIATE_UPLOAD: u8 = 2;
/// Server command specifier "initiate download response" (CiA 301 §7.2.4.3).
pub const SCS_INITIATE_DOWNLOAD: u8 = 3;
/// Command specifier "abort transfer", both directions (CiA 301 §7.2.4.3).
pub const CS_ABORT: u8 = 4;
/// Command specifier of block download (ccs) / block upload response (scs), not supported.
pub const CS_BLOCK_DOWNLOAD: u8 = 5;
/// Command specifier of block upload (ccs) / block download response (scs), not supported.
pub const CS_BLOCK_UPLOAD: u8 = 6;

/// Bit 4 of a segment command byte: the toggle `t` (CiA 301 §7.2.4.3).
pub const TOGGLE: u8 = 0x10;
/// Bit 1 of an initiate command byte: expedited transfer `e` (CiA 301 §7.2.4.3).
pub const EXPEDITED: u8 = 0x02;
/// Bit 0 of an initiate command byte: size indicated `s` (CiA 301 §7.2.4.3).
pub const SIZE_INDICATED: u8 = 0x01;
/// Bit 0 of a segment command byte: no more segments `c` (CiA 301 §7.2.4.3).
pub const LAST_SEGMENT: u8 = 0x01;

/// Most data bytes in an expedited transfer.
pub const EXPEDITED_MAX: usize = 4;
/// Data bytes in a full segment.
pub const SEGMENT_MAX: usize = 7;

/// An object dictionary entry: index and sub-index, the SDO "multiplexer".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiplexer {
    /// The object index.
    pub index: u16,
    /// The sub-index.
    pub sub: u8,
}

impl Multiplexer {
    /// The entry `index:sub`.
    pub const fn new(index: u16, sub: u8) -> Multiplexer {
        Multiplexer { index, sub }
    }

    const fn bytes(self) -> [u8; 3] {
        let [lo, hi] = self.index.to_le_bytes();
        [lo, hi, self.sub]
    }

    const fn from_bytes(b: &[u8; 8]) -> Multiplexer {
        Multiplexer {
            index: u16::from_le_bytes([b[1], b[2]]),
            sub: b[3],
        }
    }
}

impl fmt::Display for Multiplexer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06X}:{:02X}", self.index, self.sub)
    }
}

/// The 1..=4 data bytes of an expedited transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpeditedData {
    // Bytes past `len` are zero, so derived equality compares only the data.
    bytes: [u8; 4],
    len: u8,
    size_indicated: bool,
}

impl ExpeditedData {
    /// `data` (1..=4 bytes) with its size indicated, as a client or server should send it;
    /// `None` for an empty or longer slice.
    pub fn new(data: &[u8]) -> Option<ExpeditedData> {
        if data.is_empty() || data.len() > EXPEDITED_MAX {
            return None;
        }
        let mut bytes = [0u8; 4];
        bytes[..data.len()].copy_from_slice(data);
        Some(ExpeditedData {
            bytes,
            len: data.len() as u8,
            size_indicated: true,
        })
    }

    /// Four bytes with the size not indicated (`e = 1, s = 0`): the receiver cannot tell how
    /// many of them are data and takes all four.
    pub const fn size_not_indicated(bytes: [u8; 4]) -> ExpeditedData {
        ExpeditedData {
            bytes,
            len: 4,
            size_indicated: false,
        }
    }

    /// The data bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// True if the frame says how many bytes are data.
    pub const fn size_indicated(&self) -> bool {
        self.size_indicated
    }

    const fn command_bits(&self) -> u8 {
        if self.size_indicated {
            ((4 - self.len) << 2) | EXPEDITED | SIZE_INDICATED
        } else {
            EXPEDITED
        }
    }
}

/// The data bytes of a segment, 0..=7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentData {
    // Bytes past `len` are zero, so derived equality compares only the data.
    bytes: [u8; 7],
    len: u8,
}

impl SegmentData {
    /// Up to seven bytes; `None` for a longer slice.
    pub fn new(data: &[u8]) -> Option<SegmentData> {
        if data.len() > SEGMENT_MAX {
            return None;
        }
        let mut bytes = [0u8; 7];
        bytes[..data.len()].copy_from_slice(data);
        Some(SegmentData {
            bytes,
            len: data.len() as u8,
        })
    }

    /// The data bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn to_bytes(self, command: u8) -> [u8; 8] {
        let b = self.bytes;
        [command, b[0], b[1], b[2], b[3], b[4], b[5], b[6]]
    }

    fn command_bits(&self, toggle: bool, last: bool) -> u8 {
        toggle_bit(toggle) | ((7 - self.len) << 1) | if last { LAST_SEGMENT } else { 0 }
    }

    fn from_frame(b: &[u8; 8]) -> SegmentData {
        let n = usize::from((b[0] >> 1) & 0x07);
        // n ≤ 7, so the data runs 1..=8-n within the 8 bytes.
        SegmentData::new(&b[1..8 - n]).unwrap_or(SegmentData {
            bytes: [0; 7],
            len: 0,
        })
    }
}

/// What an initiate frame announces: expedited data in the frame, or a segmented transfer to
/// follow, with its size if indicated. Initiate download requests and initiate upload
/// responses share this layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InitiateData {
    /// The data is in this frame.
    Expedited(ExpeditedData),
    /// Segments follow; `size` in bytes when indicated.
    Segmented {
        /// The total size, when the sender indicated it.
        size: Option<u32>,
    },
}

impl InitiateData {
    fn to_bytes(self, specifier: u8, mux: Multiplexer) -> [u8; 8] {
        let [i0, i1, s] = mux.bytes();
        let (bits, d) = match self {
            InitiateData::Expedited(e) => (e.command_bits(), e.bytes),
            InitiateData::Segmented { size: Some(size) } => (SIZE_INDICATED, size.to_le_bytes()),
            InitiateData::Segmented { size: None } => (0, [0; 4]),
        };
        [specifier << 5 | bits, i0, i1, s, d[0], d[1], d[2], d[3]]
    }

    fn from_bytes(b: &[u8; 8]) -> InitiateData {
        let c = b[0];
        let d = [b[4], b[5], b[6], b[7]];
        match (c & EXPEDITED != 0, c & SIZE_INDICATED != 0) {
            (true, true) => {
                let len = 4 - usize::from((c >> 2) & 0x03);
                // len is 1..=4, always a valid expedited length.
                InitiateData::Expedited(
                    ExpeditedData::new(&d[..len]).unwrap_or(ExpeditedData::size_not_indicated(d)),
                )
            }
            (true, false) => InitiateData::Expedited(ExpeditedData::size_not_indicated(d)),
            (false, true) => InitiateData::Segmented {
                size: Some(u32::from_le_bytes(d)),
            },
            (false, false) => InitiateData::Segmented { size: None },
        }
    }
}

impl fmt::Display for InitiateData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitiateData::Expedited(e) if e.size_indicated() => {
                write!(f, "expedited {}", Hex(e.as_slice()))
            }
            InitiateData::Expedited(e) => {
                write!(f, "expedited {} (size not indicated)", Hex(e.as_slice()))
            }
            InitiateData::Segmented { size: Some(n) } => write!(f, "segmented, {n} bytes"),
            InitiateData::Segmented { size: None } => f.write_str("segmented, size not indicated"),
        }
    }
}

const fn toggle_bit(toggle: bool) -> u8 {
    if toggle { TOGGLE } else { 0 }
}

fn abort_bytes(mux: Multiplexer, code: AbortCode) -> [u8; 8] {
    let [i0, i1, s] = mux.bytes();
    let c = code.as_u32().to_le_bytes();
    [CS_ABORT << 5, i0, i1, s, c[0], c[1], c[2], c[3]]
}

fn abort_code(b: &[u8; 8]) -> AbortCode {
    AbortCode::from_u32(u32::from_le_bytes([b[4], b[5], b[6], b[7]]))
}

fn eight_bytes(data: &[u8], service: Service) -> Result<&[u8; 8], DecodeError> {
    data.try_into().map_err(|_| DecodeError::WrongLength {
        service,
        expected: "8",
        got: data.len(),
    })
}

/// An SDO frame from client to server (controller→device, `0x600 + node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdoRequest {
    /// Initiate download (write): expedited data, or the announcement of segments.
    InitiateDownload {
        /// The entry written.
        mux: Multiplexer,
        /// Expedited data or segmented announcement.
        data: InitiateData,
    },
    /// One segment of a segmented download.
    DownloadSegment {
        /// The toggle bit: 0 for the first segment, alternating after.
        toggle: bool,
        /// The segment's data.
        data: SegmentData,
        /// No more segments follow.
        last: bool,
    },
    /// Initiate upload (read).
    InitiateUpload {
        /// The entry read.
        mux: Multiplexer,
    },
    /// Request for the next segment of a segmented upload.
    UploadSegment {
        /// The toggle bit: 0 for the first segment, alternating after.
        toggle: bool,
    },
    /// The client aborts the transfer.
    Abort {
        /// The entry of the transfer.
        mux: Multiplexer,
        /// Why.
        code: AbortCode,
    },
}

impl SdoRequest {
    /// An expedited download of 1..=4 bytes; `None` for other lengths.
    pub fn download_expedited(mux: Multiplexer, data: &[u8]) -> Option<SdoRequest> {
        Some(SdoRequest::InitiateDownload {
            mux,
            data: InitiateData::Expedited(ExpeditedData::new(data)?),
        })
    }

    /// The start of a segmented download of `size` bytes.
    pub const fn download_segmented(mux: Multiplexer, size: u32) -> SdoRequest {
        SdoRequest::InitiateDownload {
            mux,
            data: InitiateData::Segmented { size: Some(size) },
        }
    }

    /// A download segment of 0..=7 bytes; `None` for a longer slice.
    pub fn download_segment(toggle: bool, data: &[u8], last: bool) -> Option<SdoRequest> {
        Some(SdoRequest::DownloadSegment {
            toggle,
            data: SegmentData::new(data)?,
            last,
        })
    }

    /// An initiate upload request.
    pub const fn upload(mux: Multiplexer) -> SdoRequest {
        SdoRequest::InitiateUpload { mux }
    }

    /// An upload segment request.
    pub const fn upload_segment(toggle: bool) -> SdoRequest {
        SdoRequest::UploadSegment { toggle }
    }

    /// An abort from the client.
    pub const fn abort(mux: Multiplexer, code: AbortCode) -> SdoRequest {
        SdoRequest::Abort { mux, code }
    }

    /// The 8 data bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        match *self {
            SdoRequest::InitiateDownload { mux, data } => data.to_bytes(CCS_INITIATE_DOWNLOAD, mux),
            SdoRequest::DownloadSegment { toggle, data, last } => {
                data.to_bytes(CCS_DOWNLOAD_SEGMENT << 5 | data.command_bits(toggle, last))
            }
            SdoRequest::InitiateUpload { mux } => {
                let [i0, i1, s] = mux.bytes();
                [CCS_INITIATE_UPLOAD << 5, i0, i1, s, 0, 0, 0, 0]
            }
            SdoRequest::UploadSegment { toggle } => [
                CCS_UPLOAD_SEGMENT << 5 | toggle_bit(toggle),
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            SdoRequest::Abort { mux, code } => abort_bytes(mux, code),
        }
    }

    /// Parses the 8 data bytes of a request.
    pub fn from_bytes(data: &[u8]) -> Result<SdoRequest, DecodeError> {
        let b = eight_bytes(data, Service::SdoRequest)?;
        let c = b[0];
        Ok(match c >> 5 {
            CCS_DOWNLOAD_SEGMENT => SdoRequest::DownloadSegment {
                toggle: c & TOGGLE != 0,
                data: SegmentData::from_frame(b),
                last: c & LAST_SEGMENT != 0,
            },
            CCS_INITIATE_DOWNLOAD => SdoRequest::InitiateDownload {
                mux: Multiplexer::from_bytes(b),
                data: InitiateData::from_bytes(b),
            },
            CCS_INITIATE_UPLOAD => SdoRequest::InitiateUpload {
                mux: Multiplexer::from_bytes(b),
            },
            CCS_UPLOAD_SEGMENT => SdoRequest::UploadSegment {
                toggle: c & TOGGLE != 0,
            },
            CS_ABORT => SdoRequest::Abort {
                mux: Multiplexer::from_bytes(b),
                code: abort_code(b),
            },
            CS_BLOCK_DOWNLOAD | CS_BLOCK_UPLOAD => return Err(DecodeError::SdoBlockTransfer(c)),
            _ => return Err(DecodeError::UnknownSdoCommand(c)),
        })
    }

    /// The frame to `node`: `0x600 + node`.
    pub fn encode(&self, node: NodeId) -> Frame {
        Frame::standard(SDO_REQUEST + u16::from(node.get()), self.to_bytes())
    }

    /// Decodes a request frame on `0x601..=0x67F`: the server node it addresses and the
    /// request.
    pub fn decode(frame: &Frame) -> Result<(NodeId, SdoRequest), DecodeError> {
        let (node, data) =
            crate::canopen::error::node_frame(frame, Service::SdoRequest, SDO_REQUEST)?;
        Ok((node, SdoRequest::from_bytes(data)?))
    }
}

impl fmt::Display for SdoRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdoRequest::InitiateDownload { mux, data } => write!(f, "download {mux} {data}"),
            SdoRequest::DownloadSegment { toggle, data, last } => write!(
                f,
                "download segment t={} [{}]{}",
                u8::from(*toggle),
                Hex(data.as_slice()),
                if *last { " last" } else { "" }
            ),
            SdoRequest::InitiateUpload { mux } => write!(f, "upload {mux}"),
            SdoRequest::UploadSegment { toggle } => {
                write!(f, "upload segment t={}", u8::from(*toggle))
            }
            SdoRequest::Abort { mux, code } => write!(f, "abort {mux}: {code}"),
        }
    }
}

/// An SDO frame from server to client (device→controller, `0x580 + node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdoResponse {
    /// The server accepted an initiate download (and, if expedited, stored the data).
    InitiateDownload {
        /// The entry written.
        mux: Multiplexer,
    },
    /// The server received a download segment.
    DownloadSegment {
        /// The toggle bit of the segment it acknowledges.
        toggle: bool,
    },
    /// The server answers an initiate upload: expedited data, or announcement of segments.
    InitiateUpload {
        /// The entry read.
        mux: Multiplexer,
        /// Expedited data or segmented announcement.
        data: InitiateData,
    },
    /// One segment of a segmented upload.
    UploadSegment {
        /// The toggle bit of the request it answers.
        toggle: bool,
        /// The segment's data.
        data: SegmentData,
        /// No more segments follow.
        last: bool,
    },
    /// The server aborts the transfer.
    Abort {
        /// The entry of the transfer.
        mux: Multiplexer,
        /// Why.
        code: AbortCode,
    },
}

impl SdoResponse {
    /// Acknowledges an initiate download.
    pub const fn download_ack(mux: Multiplexer) -> SdoResponse {
        SdoResponse::InitiateDownload { mux }
    }

    /// Acknowledges a download segment with its toggle.
    pub const fn download_segment_ack(toggle: bool) -> SdoResponse {
        SdoResponse::DownloadSegment { toggle }
    }

    /// An expedited upload of 1..=4 bytes, size indicated; `None` for other lengths.
    pub fn upload_expedited(mux: Multiplexer, data: &[u8]) -> Option<SdoResponse> {
        Some(SdoResponse::InitiateUpload {
            mux,
            data: InitiateData::Expedited(ExpeditedData::new(data)?),
        })
    }

    /// The answer to an initiate upload of an entry of `size` bytes: expedited when it fits
    /// in 4 bytes (and is not empty), else the announcement of a segmented upload. A server
    /// calls this with the whole value and then serves segments of `value[7·k..]`.
    pub fn upload_initiate(mux: Multiplexer, value: &[u8]) -> SdoResponse {
        match ExpeditedData::new(value) {
            Some(e) => SdoResponse::InitiateUpload {
                mux,
                data: InitiateData::Expedited(e),
            },
            None => {
                SdoResponse::upload_segmented(mux, u32::try_from(value.len()).unwrap_or(u32::MAX))
            }
        }
    }

    /// The announcement of a segmented upload of `size` bytes.
    pub const fn upload_segmented(mux: Multiplexer, size: u32) -> SdoResponse {
        SdoResponse::InitiateUpload {
            mux,
            data: InitiateData::Segmented { size: Some(size) },
        }
    }

    /// An upload segment of 0..=7 bytes; `None` for a longer slice.
    pub fn upload_segment(toggle: bool, data: &[u8], last: bool) -> Option<SdoResponse> {
        Some(SdoResponse::UploadSegment {
            toggle,
            data: SegmentData::new(data)?,
            last,
        })
    }

    /// Upload segment number `k` (0-based) of `value`, with the toggle and last flag that
    /// segment must have; `None` past the end. The first segment of an empty value is an
    /// empty last segment.
    pub fn upload_segment_of(value: &[u8], k: usize) -> Option<SdoResponse> {
        let start = k.checked_mul(SEGMENT_MAX)?;
        if start > value.len() || (start == value.len() && k > 0) {
            return None;
        }
        let end = (start + SEGMENT_MAX).min(value.len());
        SdoResponse::upload_segment(k % 2 == 1, &value[start..end], end == value.len())
    }

    /// An abort from the server.
    pub const fn abort(mux: Multiplexer, code: AbortCode) -> SdoResponse {
        SdoResponse::Abort { mux, code }
    }

    /// The 8 data bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        match *self {
            SdoResponse::InitiateDownload { mux } => {
                let [i0, i1, s] = mux.bytes();
                [SCS_INITIATE_DOWNLOAD << 5, i0, i1, s, 0, 0, 0, 0]
            }
            SdoResponse::DownloadSegment { toggle } => [
                SCS_DOWNLOAD_SEGMENT << 5 | toggle_bit(toggle),
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            SdoResponse::InitiateUpload { mux, data } => data.to_bytes(SCS_INITIATE_UPLOAD, mux),
            SdoResponse::UploadSegment { toggle, data, last } => {
                data.to_bytes(SCS_UPLOAD_SEGMENT << 5 | data.command_bits(toggle, last))
            }
            SdoResponse::Abort { mux, code } => abort_bytes(mux, code),
        }
    }

    /// Parses the 8 data bytes of a response.
    pub fn from_bytes(data: &[u8]) -> Result<SdoResponse, DecodeError> {
        let b = eight_bytes(data, Service::SdoResponse)?;
        let c = b[0];
        Ok(match c >> 5 {
            SCS_UPLOAD_SEGMENT => SdoResponse::UploadSegment {
                toggle: c & TOGGLE != 0,
                data: SegmentData::from_frame(b),
                last: c & LAST_SEGMENT != 0,
            },
            SCS_DOWNLOAD_SEGMENT => SdoResponse::DownloadSegment {
                toggle: c & TOGGLE != 0,
            },
            SCS_INITIATE_UPLOAD => SdoResponse::InitiateUpload {
                mux: Multiplexer::from_bytes(b),
                data: InitiateData::from_bytes(b),
            },
            SCS_INITIATE_DOWNLOAD => SdoResponse::InitiateDownload {
                mux: Multiplexer::from_bytes(b),
            },
            CS_ABORT => SdoResponse::Abort {
                mux: Multiplexer::from_bytes(b),
                code: abort_code(b),
            },
            CS_BLOCK_DOWNLOAD | CS_BLOCK_UPLOAD => return Err(DecodeError::SdoBlockTransfer(c)),
            _ => return Err(DecodeError::UnknownSdoCommand(c)),
        })
    }

    /// The frame from `node`: `0x580 + node`.
    pub fn encode(&self, node: NodeId) -> Frame {
        Frame::standard(SDO_RESPONSE + u16::from(node.get()), self.to_bytes())
    }

    /// Decodes a response frame on `0x581..=0x5FF`: the server node that sent it and the
    /// response.
    pub fn decode(frame: &Frame) -> Result<(NodeId, SdoResponse), DecodeError> {
        let (node, data) =
            crate::canopen::error::node_frame(frame, Service::SdoResponse, SDO_RESPONSE)?;
        Ok((node, SdoResponse::from_bytes(data)?))
    }
}

impl fmt::Display for SdoResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdoResponse::InitiateDownload { mux } => write!(f, "download {mux} ok"),
            SdoResponse::DownloadSegment { toggle } => {
                write!(f, "download segment t={} ok", u8::from(*toggle))
            }
            SdoResponse::InitiateUpload { mux, data } => write!(f, "upload {mux} = {data}"),
            SdoResponse::UploadSegment { toggle, data, last } => write!(
                f,
                "upload segment t={} [{}]{}",
                u8::from(*toggle),
                Hex(data.as_slice()),
                if *last { " last" } else { "" }
            ),
            SdoResponse::Abort { mux, code } => write!(f, "abort {mux}: {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(n: u8) -> NodeId {
        NodeId::new(n).unwrap()
    }

    const CW: Multiplexer = Multiplexer::new(0x6040, 0);
    const SW: Multiplexer = Multiplexer::new(0x6041, 0);
    const NAME: Multiplexer = Multiplexer::new(0x1008, 0);

    #[test]
    fn expedited_download_of_the_controlword() {
        let req = SdoRequest::download_expedited(CW, &[0x06, 0x00]).unwrap();
        let frame = req.encode(node(1));
        assert_eq!(frame.to_string(), "601#2B40600006000000");
        assert_eq!(SdoRequest::decode(&frame), Ok((node(1), req)));
        let ack = SdoResponse::download_ack(CW).encode(node(1));
        assert_eq!(ack.to_string(), "581#6040600000000000");
        assert_eq!(
            SdoResponse::decode(&ack),
            Ok((node(1), SdoResponse::InitiateDownload { mux: CW }))
        );
    }

    #[test]
    fn expedited_command_bytes_for_each_length() {
        let cmd = |len: usize| {
            SdoRequest::download_expedited(CW, &[0xAA; 4][..len])
                .unwrap()
                .to_bytes()[0]
        };
        assert_eq!([cmd(1), cmd(2), cmd(3), cmd(4)], [0x2F, 0x2B, 0x27, 0x23]);
        let up = |len: usize| {
            SdoResponse::upload_expedited(SW, &[0xAA; 4][..len])
                .unwrap()
                .to_bytes()[0]
        };
        assert_eq!([up(1), up(2), up(3), up(4)], [0x4F, 0x4B, 0x47, 0x43]);
        assert!(SdoRequest::download_expedited(CW, &[]).is_none());
        assert!(SdoRequest::download_expedited(CW, &[0; 5]).is_none());
    }

    #[test]
    fn expedited_upload_of_the_statusword() {
        let req = SdoRequest::upload(SW).encode(node(1));
        assert_eq!(req.to_string(), "601#4041600000000000");
        let resp = Frame::standard(0x581, [0x4B, 0x41, 0x60, 0x00, 0x37, 0x02, 0x00, 0x00]);
        assert_eq!(resp.to_string(), "581#4B41600037020000");
        let (n, r) = SdoResponse::decode(&resp).unwrap();
        assert_eq!(n, node(1));
        assert_eq!(r, SdoResponse::upload_expedited(SW, &[0x37, 0x02]).unwrap());
        assert_eq!(r.encode(node(1)), resp);
        assert_eq!(r.to_string(), "upload 0x6041:00 = expedited 37 02");
        // Size not indicated: all four bytes.
        let unsized_ = Frame::standard(0x581, [0x42, 0x41, 0x60, 0x00, 1, 2, 3, 4]);
        assert_eq!(
            SdoResponse::decode(&unsized_).unwrap().1,
            SdoResponse::InitiateUpload {
                mux: SW,
                data: InitiateData::Expedited(ExpeditedData::size_not_indicated([1, 2, 3, 4]))
            }
        );
    }

    #[test]
    fn segmented_upload_of_a_13_byte_device_name() {
        let name = b"takt servo X1";
        assert_eq!(name.len(), 13);
        let init = SdoResponse::upload_initiate(NAME, name);
        assert_eq!(init.encode(node(2)).to_string(), "582#410810000D000000");
        let seg0 = SdoResponse::upload_segment_of(name, 0).unwrap();
        // t=0, n=0, c=0: "takt se"
        assert_eq!(seg0.encode(node(2)).to_string(), "582#0074616B74207365");
        let seg1 = SdoResponse::upload_segment_of(name, 1).unwrap();
        // t=1, 6 bytes so n=1, c=1: 0x10 | 1<<1 | 1 = 0x13, "rvo X1", one zero pad byte.
        assert_eq!(seg1.encode(node(2)).to_string(), "582#1372766F20583100");
        assert_eq!(SdoResponse::upload_segment_of(name, 2), None);
        assert_eq!(
            SdoRequest::upload_segment(false)
                .encode(node(2))
                .to_string(),
            "602#6000000000000000"
        );
        assert_eq!(
            SdoRequest::upload_segment(true).encode(node(2)).to_string(),
            "602#7000000000000000"
        );
        // An empty value is one empty last segment: n=7, c=1.
        assert_eq!(
            SdoResponse::upload_segment_of(b"", 0).unwrap().to_bytes(),
            [0x0F, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(SdoResponse::upload_segment_of(b"", 1), None);
        // Exactly 14 bytes: two full segments, the second last.
        let v = [7u8; 14];
        assert_eq!(
            SdoResponse::upload_segment_of(&v, 1).unwrap().to_bytes()[0],
            0x11
        );
        assert_eq!(SdoResponse::upload_segment_of(&v, 2), None);
    }

    #[test]
    fn segmented_download_frames() {
        let init = SdoRequest::download_segmented(NAME, 13).encode(node(2));
        assert_eq!(init.to_string(), "602#210810000D000000");
        let seg = SdoRequest::download_segment(true, b"rvo X1", true).unwrap();
        assert_eq!(seg.encode(node(2)).to_string(), "602#1372766F20583100");
        assert_eq!(SdoRequest::decode(&seg.encode(node(2))), Ok((node(2), seg)));
        assert_eq!(SdoResponse::download_segment_ack(true).to_bytes()[0], 0x30);
        assert_eq!(SdoResponse::download_segment_ack(false).to_bytes()[0], 0x20);
    }

    #[test]
    fn abort_frames() {
        let a = SdoResponse::abort(CW, AbortCode::ObjectDoesNotExist).encode(node(1));
        assert_eq!(a.to_string(), "581#8040600000000206");
        let t = SdoRequest::abort(CW, AbortCode::Timeout).encode(node(1));
        assert_eq!(t.to_string(), "601#8040600000000405");
        assert_eq!(
            SdoRequest::decode(&t),
            Ok((node(1), SdoRequest::abort(CW, AbortCode::Timeout)))
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert!(matches!(
            SdoResponse::decode(&Frame::standard(0x581, [0x60, 0x40, 0x60])),
            Err(DecodeError::WrongLength { got: 3, .. })
        ));
        assert_eq!(
            SdoResponse::decode(&Frame::standard(0x581, [0xE0, 0, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::UnknownSdoCommand(0xE0))
        );
        assert_eq!(
            SdoRequest::decode(&Frame::standard(0x601, [0xC0, 0, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::SdoBlockTransfer(0xC0))
        );
        assert!(matches!(
            SdoRequest::decode(&Frame::standard(0x581, [0; 8])),
            Err(DecodeError::WrongCobId { id: 0x581, .. })
        ));
    }

    fn any_mux() -> impl Strategy<Value = Multiplexer> {
        (any::<u16>(), any::<u8>()).prop_map(|(i, s)| Multiplexer::new(i, s))
    }

    fn any_initiate() -> impl Strategy<Value = InitiateData> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..=4)
                .prop_map(|d| InitiateData::Expedited(ExpeditedData::new(&d).unwrap())),
            any::<[u8; 4]>()
                .prop_map(|d| InitiateData::Expedited(ExpeditedData::size_not_indicated(d))),
            proptest::option::of(any::<u32>()).prop_map(|size| InitiateData::Segmented { size }),
        ]
    }

    fn any_segment() -> impl Strategy<Value = SegmentData> {
        proptest::collection::vec(any::<u8>(), 0..=7).prop_map(|d| SegmentData::new(&d).unwrap())
    }

    fn any_request() -> impl Strategy<Value = SdoRequest> {
        prop_oneof![
            (any_mux(), any_initiate())
                .prop_map(|(mux, data)| SdoRequest::InitiateDownload { mux, data }),
            (any::<bool>(), any_segment(), any::<bool>()).prop_map(|(toggle, data, last)| {
                SdoRequest::DownloadSegment { toggle, data, last }
            }),
            any_mux().prop_map(|mux| SdoRequest::InitiateUpload { mux }),
            any::<bool>().prop_map(|toggle| SdoRequest::UploadSegment { toggle }),
            (any_mux(), any::<u32>()).prop_map(|(mux, c)| SdoRequest::Abort {
                mux,
                code: AbortCode::from(c)
            }),
        ]
    }

    fn any_response() -> impl Strategy<Value = SdoResponse> {
        prop_oneof![
            any_mux().prop_map(|mux| SdoResponse::InitiateDownload { mux }),
            any::<bool>().prop_map(|toggle| SdoResponse::DownloadSegment { toggle }),
            (any_mux(), any_initiate())
                .prop_map(|(mux, data)| SdoResponse::InitiateUpload { mux, data }),
            (any::<bool>(), any_segment(), any::<bool>())
                .prop_map(|(toggle, data, last)| SdoResponse::UploadSegment { toggle, data, last }),
            (any_mux(), any::<u32>()).prop_map(|(mux, c)| SdoResponse::Abort {
                mux,
                code: AbortCode::from(c)
            }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in any_request(), n in 1u8..=127) {
            prop_assert_eq!(SdoRequest::decode(&req.encode(node(n))), Ok((node(n), req)));
        }

        #[test]
        fn responses_round_trip(resp in any_response(), n in 1u8..=127) {
            prop_assert_eq!(SdoResponse::decode(&resp.encode(node(n))), Ok((node(n), resp)));
        }

        #[test]
        fn any_8_bytes_decode_without_panic_and_re_encode_stably(b in any::<[u8; 8]>()) {
            // Decoding normalises reserved bits; a second round trip must be exact.
            if let Ok(req) = SdoRequest::from_bytes(&b) {
                prop_assert_eq!(SdoRequest::from_bytes(&req.to_bytes()), Ok(req));
            }
            if let Ok(resp) = SdoResponse::from_bytes(&b) {
                prop_assert_eq!(SdoResponse::from_bytes(&resp.to_bytes()), Ok(resp));
            }
        }

        #[test]
        fn upload_segments_reassemble(value in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut out = Vec::new();
            let mut k = 0;
            while let Some(SdoResponse::UploadSegment { toggle, data, last }) =
                SdoResponse::upload_segment_of(&value, k)
            {
                prop_assert_eq!(toggle, k % 2 == 1);
                out.extend_from_slice(data.as_slice());
                k += 1;
                if last { break; }
            }
            prop_assert_eq!(out, value);
        }
    }
}
