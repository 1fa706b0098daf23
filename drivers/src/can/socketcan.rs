//! SocketCAN backend: a raw CAN socket on a Linux network interface (`can0`, `vcan0`, ...),
//! built on the `socketcan` crate.
//!
//! The socket is non-blocking, receives classic and CAN FD frames, stamps each received frame
//! with the kernel's receive time (`SO_TIMESTAMPNS`), and subscribes to every error class so
//! the interface's fault-confinement changes arrive as [`BusStateEvent`]s (Linux
//! `include/uapi/linux/can/error.h`). Like every other socket on the interface, it does not
//! receive its own frames.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socketcan::{
    CanAnyFrame, CanDataFrame, CanErrorFrame, CanFdFrame, CanFdSocket, CanFrame, CanRemoteFrame,
    EmbeddedFrame, ExtendedId, Id, Socket, SocketOptions, StandardId,
};

use super::{
    BusError, BusEvent, BusState, BusStateEvent, CanBus, CanId, ErrorCounters, Frame, FrameKind,
    SendError, Timestamp, TimestampedFrame,
};

/// Error classes in the id word of a SocketCAN error frame (`linux/can/error.h`).
pub(crate) mod err {
    /// Controller problem; details in data byte 1.
    pub const CRTL: u32 = 0x0004;
    /// Protocol violation; details in data bytes 2 and 3.
    pub const PROT: u32 = 0x0008;
    /// Transceiver status; details in data byte 4.
    pub const TRX: u32 = 0x0010;
    /// No ACK received on transmission.
    pub const ACK: u32 = 0x0020;
    /// The interface went bus-off.
    pub const BUSOFF: u32 = 0x0040;
    /// Bus error (may flood; the kernel rate-limits on request).
    pub const BUSERROR: u32 = 0x0080;
    /// The interface was restarted after bus-off.
    pub const RESTARTED: u32 = 0x0100;
    /// Data bytes 6 and 7 carry the TX and RX error counters.
    pub const CNT: u32 = 0x0200;

    /// Data byte 1 of a controller-problem frame.
    pub const CRTL_RX_OVERFLOW: u8 = 0x01;
    pub const CRTL_TX_OVERFLOW: u8 = 0x02;
    pub const CRTL_RX_WARNING: u8 = 0x04;
    pub const CRTL_TX_WARNING: u8 = 0x08;
    pub const CRTL_RX_PASSIVE: u8 = 0x10;
    pub const CRTL_TX_PASSIVE: u8 = 0x20;
    pub const CRTL_ACTIVE: u8 = 0x40;
}

/// A CAN bus on a SocketCAN interface.
#[derive(Debug)]
pub struct SocketCanBus {
    socket: CanFdSocket,
    interface: String,
    /// A second event decoded from the same error frame, delivered on the next receive.
    pending: Option<BusEvent>,
}

impl SocketCanBus {
    /// Opens a non-blocking raw CAN socket on `interface`, with receive timestamps and all
    /// error classes enabled.
    pub fn open(interface: &str) -> io::Result<SocketCanBus> {
        let socket = CanFdSocket::open(interface).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open CAN interface {interface:?}: {e} (is it up? `ip link show {interface}`)"),
            )
        })?;
        socket.set_nonblocking(true)?;
        socket.set_recv_timestamp(true)?;
        socket.set_error_filter_accept_all()?;
        Ok(SocketCanBus {
            socket,
            interface: interface.to_owned(),
            pending: None,
        })
    }
}

impl CanBus for SocketCanBus {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError> {
        if let Some(ev) = self.pending.take() {
            return Ok(Some(ev));
        }
        let (frame, stamps) = match self.socket.read_frame_with_timestamps() {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(BusError::Io(e)),
        };
        let timestamp = stamps
            .socket
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Timestamp::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
            .unwrap_or_else(Timestamp::now_unix);
        let frame = match frame {
            CanAnyFrame::Normal(f) => from_data(&f),
            CanAnyFrame::Remote(f) => from_remote(&f),
            CanAnyFrame::Fd(f) => from_fd(&f),
            CanAnyFrame::Error(f) => {
                let (first, second) = decode_error_frame(&f);
                self.pending = second.map(|event| BusEvent::State { timestamp, event });
                return Ok(first.map(|event| BusEvent::State { timestamp, event }));
            }
        };
        Ok(frame.map(|frame| BusEvent::Frame(TimestampedFrame { timestamp, frame })))
    }

    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError> {
        let id = to_socketcan_id(frame.id());
        let result = match frame.kind() {
            FrameKind::Data => {
                let f = CanDataFrame::new(id, frame.data())
                    .ok_or(SendError::Unsupported("data length"))?;
                self.socket.write_frame(&CanFrame::Data(f))
            }
            FrameKind::Remote => {
                let f = CanRemoteFrame::new_remote(id, frame.len())
                    .ok_or(SendError::Unsupported("remote length"))?;
                self.socket.write_frame(&CanFrame::Remote(f))
            }
            FrameKind::Fd { brs, esi } => {
                let mut f =
                    CanFdFrame::new(id, frame.data()).ok_or(SendError::Unsupported("FD length"))?;
                f.set_brs(brs);
                f.set_esi(esi);
                self.socket.write_frame(&f)
            }
        };
        result.map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => SendError::WouldBlock,
            Some(libc::ENETDOWN) | Some(libc::ENETUNREACH) => SendError::BusDown,
            // The CAN core refuses a frame longer than the interface's MTU (EMSGSIZE; older
            // kernels said EINVAL).
            Some(libc::EMSGSIZE) | Some(libc::EINVAL) if frame.is_fd() => {
                SendError::Unsupported("the interface is not in CAN FD mode (mtu 72)")
            }
            _ => SendError::Io(e),
        })
    }

    fn interface(&self) -> &str {
        &self.interface
    }

    /// `ppoll(2)` on the socket, to the nanosecond (`poll` rounds to milliseconds, which
    /// made a sub-millisecond wait a spin).
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        if self.pending.is_some() {
            return Ok(true);
        }
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: `pfd` and `ts` are valid for the duration of the call, nfds is 1, and a
        // null signal mask leaves the thread's mask as it is.
        let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, core::ptr::null()) };
        match n {
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }
}

fn to_socketcan_id(id: CanId) -> Id {
    // Both constructors accept every value our CanId can hold (it is range-checked when
    // made), so the fallbacks are unreachable; they keep this free of unwrap.
    match id {
        CanId::Standard(raw) => Id::Standard(StandardId::new(raw).unwrap_or(StandardId::MAX)),
        CanId::Extended(raw) => Id::Extended(ExtendedId::new(raw).unwrap_or(ExtendedId::MAX)),
    }
}

fn from_socketcan_id(id: Id) -> CanId {
    match id {
        Id::Standard(s) => CanId::Standard(s.as_raw()),
        Id::Extended(e) => CanId::Extended(e.as_raw()),
    }
}

fn from_data(f: &CanDataFrame) -> Option<Frame> {
    Frame::new(from_socketcan_id(f.id()), f.data()).ok()
}

fn from_remote(f: &CanRemoteFrame) -> Option<Frame> {
    Frame::remote(from_socketcan_id(f.id()), f.dlc()).ok()
}

fn from_fd(f: &CanFdFrame) -> Option<Frame> {
    Frame::fd(from_socketcan_id(f.id()), f.data(), f.is_brs(), f.is_esi()).ok()
}

/// Maps a SocketCAN error frame to at most two bus-state events (a frame can report, say,
/// bus-off together with counters; or a state change together with an RX overflow).
fn decode_error_frame(f: &CanErrorFrame) -> (Option<BusStateEvent>, Option<BusStateEvent>) {
    decode_error_bits(f.error_bits(), f.data())
}

pub(crate) fn decode_error_bits(
    bits: u32,
    data: &[u8],
) -> (Option<BusStateEvent>, Option<BusStateEvent>) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let counters = (bits & err::CNT != 0).then(|| ErrorCounters {
        tx: byte(6),
        rx: byte(7),
    });
    if bits & err::BUSOFF != 0 {
        return (
            Some(BusStateEvent::StateChanged {
                state: BusState::BusOff,
                counters,
            }),
            None,
        );
    }
    if bits & err::RESTARTED != 0 {
        return (Some(BusStateEvent::Restarted), None);
    }
    let mut first = None;
    let mut second = None;
    if bits & err::CRTL != 0 {
        let ctrl = byte(1);
        let state = if ctrl & (err::CRTL_RX_PASSIVE | err::CRTL_TX_PASSIVE) != 0 {
            Some(BusState::ErrorPassive)
        } else if ctrl & (err::CRTL_RX_WARNING | err::CRTL_TX_WARNING) != 0 {
            Some(BusState::ErrorWarning)
        } else if ctrl & err::CRTL_ACTIVE != 0 {
            Some(BusState::ErrorActive)
        } else {
            None
        };
        first = state.map(|state| BusStateEvent::StateChanged { state, counters });
        if ctrl & (err::CRTL_RX_OVERFLOW | err::CRTL_TX_OVERFLOW) != 0 {
            second = Some(BusStateEvent::RxOverflow);
        }
    }
    if bits & (err::PROT | err::TRX | err::ACK | err::BUSERROR) != 0 {
        let proto = BusStateEvent::ProtocolError { counters };
        if first.is_none() {
            first = Some(proto);
        } else if second.is_none() {
            second = Some(proto);
        }
    }
    if first.is_none() {
        first = second.take();
    }
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_off_is_reported_with_counters() {
        let (a, b) = decode_error_bits(err::BUSOFF | err::CNT, &[0, 0, 0, 0, 0, 0, 255, 7]);
        assert_eq!(
            a,
            Some(BusStateEvent::StateChanged {
                state: BusState::BusOff,
                counters: Some(ErrorCounters { tx: 255, rx: 7 })
            })
        );
        assert_eq!(b, None);
    }

    #[test]
    fn controller_states_map_to_fault_confinement() {
        let ev = |ctrl: u8| decode_error_bits(err::CRTL, &[0, ctrl, 0, 0, 0, 0, 0, 0]).0;
        let state = |s| {
            Some(BusStateEvent::StateChanged {
                state: s,
                counters: None,
            })
        };
        assert_eq!(ev(err::CRTL_TX_WARNING), state(BusState::ErrorWarning));
        assert_eq!(ev(err::CRTL_RX_PASSIVE), state(BusState::ErrorPassive));
        assert_eq!(ev(err::CRTL_ACTIVE), state(BusState::ErrorActive));
        assert_eq!(ev(err::CRTL_RX_OVERFLOW), Some(BusStateEvent::RxOverflow));
        assert_eq!(
            decode_error_bits(err::RESTARTED, &[0; 8]).0,
            Some(BusStateEvent::Restarted)
        );
    }

    #[test]
    fn state_change_and_overflow_in_one_frame_give_two_events() {
        let (a, b) = decode_error_bits(
            err::CRTL | err::ACK,
            &[
                0,
                err::CRTL_TX_PASSIVE | err::CRTL_RX_OVERFLOW,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
        );
        assert!(matches!(
            a,
            Some(BusStateEvent::StateChanged {
                state: BusState::ErrorPassive,
                ..
            })
        ));
        assert_eq!(b, Some(BusStateEvent::RxOverflow));
        let (a, b) = decode_error_bits(err::ACK, &[0; 8]);
        assert_eq!(a, Some(BusStateEvent::ProtocolError { counters: None }));
        assert_eq!(b, None);
    }

    #[test]
    fn opening_a_missing_interface_names_it() {
        let e = SocketCanBus::open("takt-no-such-if").unwrap_err();
        assert!(e.to_string().contains("takt-no-such-if"), "{e}");
    }
}
