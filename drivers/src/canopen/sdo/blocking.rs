//! One SDO transfer run to completion over any [`CanBus`], polling with the wall clock: for
//! the commissioning tools (`takt sdo read/write`), never for the cycle.
//!
//! ```no_run
//! use takt_drivers::can::VirtualBus;
//! use takt_drivers::canopen::{NodeId, sdo::{Multiplexer, SdoClient}};
//!
//! let bus = VirtualBus::new();
//! let mut endpoint = bus.endpoint("takt");
//! let mut client = SdoClient::new(NodeId::new(1)?, 1024);
//! let name = client.upload_blocking(&mut endpoint, Multiplexer::new(0x1008, 0))?;
//! println!("{}", String::from_utf8_lossy(name));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, Instant};

use crate::can::{BusError, CanBus, SendError, Timestamp};

use super::client::{SdoClient, SdoDone, SdoError, SdoStartError};
use super::frames::Multiplexer;

/// How long to sleep when nothing arrived, so that polling a non-blocking socket does not
/// burn a core; short against any SDO timeout.
pub const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// Most frames taken from the bus between two polls of the client.
const RECV_BATCH: usize = 256;

/// Why a blocking transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockingSdoError {
    /// The transfer failed at the SDO level (abort, timeout, protocol error).
    #[error(transparent)]
    Sdo(#[from] SdoError),
    /// The transfer could not start.
    #[error(transparent)]
    Start(#[from] SdoStartError),
    /// The bus refused a frame.
    #[error("sending on the bus failed: {0}")]
    Send(#[from] SendError),
    /// The bus failed while receiving.
    #[error("receiving from the bus failed: {0}")]
    Recv(#[from] BusError),
}

/// A monotonic clock starting at the first call, as [`Timestamp`]s.
struct WallClock(Instant);

impl WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

impl SdoClient {
    /// Reads `mux` from the client's node and returns the value, blocking the calling thread
    /// until the transfer ends (at most a timeout per response).
    pub fn upload_blocking<B: CanBus + ?Sized>(
        &mut self,
        bus: &mut B,
        mux: Multiplexer,
    ) -> Result<&[u8], BlockingSdoError> {
        let clock = WallClock(Instant::now());
        self.start_upload(mux, clock.now())?;
        self.run_blocking(bus, &clock)?;
        Ok(self.data())
    }

    /// Writes `data` to `mux` on the client's node, blocking the calling thread until the
    /// transfer ends (at most a timeout per response).
    pub fn download_blocking<B: CanBus + ?Sized>(
        &mut self,
        bus: &mut B,
        mux: Multiplexer,
        data: &[u8],
    ) -> Result<(), BlockingSdoError> {
        let clock = WallClock(Instant::now());
        self.start_download(mux, data, clock.now())?;
        self.run_blocking(bus, &clock)?;
        Ok(())
    }

    fn run_blocking<B: CanBus + ?Sized>(
        &mut self,
        bus: &mut B,
        clock: &WallClock,
    ) -> Result<SdoDone, BlockingSdoError> {
        loop {
            if let Some(frame) = self.poll(clock.now()) {
                let queued_at = Instant::now();
                loop {
                    match bus.try_send(&frame) {
                        Ok(()) => break,
                        // A full queue drains by itself; give it up to one SDO timeout.
                        Err(SendError::WouldBlock) if queued_at.elapsed() < self.timeout() => {
                            std::thread::sleep(IDLE_SLEEP);
                        }
                        Err(e) => {
                            self.cancel(super::AbortCode::GeneralError);
                            return Err(e.into());
                        }
                    }
                }
            }
            if let Some(outcome) = self.take_outcome() {
                // A failure may have queued an abort for the server; send it best-effort.
                if let Some(abort) = self.poll(clock.now()) {
                    let _ = bus.try_send(&abort);
                }
                return Ok(outcome?);
            }
            let mut received = false;
            // Bounded so that a busy bus cannot starve the timeout check above.
            for _ in 0..RECV_BATCH {
                let event = match bus.try_recv() {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(e) => {
                        self.cancel(super::AbortCode::GeneralError);
                        return Err(e.into());
                    }
                };
                received = true;
                if let Some(frame) = event.frame() {
                    self.on_frame(frame, clock.now());
                }
            }
            if !received {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
    }
}
