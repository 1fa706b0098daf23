//! The SDO write sequence that configures one PDO on a device, in the order CiA 301
//! requires (§7.2.2, "PDO mapping procedure"):
//!
//! 1. COB-ID entry with bit 31 set: the PDO is invalid while it changes;
//! 2. transmission type, then inhibit time and event timer if given;
//! 3. 0 to mapping sub 0: mapping disabled;
//! 4. each mapping entry to sub 1..=n;
//! 5. n to mapping sub 0: mapping enabled (the device checks it here);
//! 6. COB-ID entry with bit 31 clear: the PDO is valid again (skipped if the configuration
//!    leaves the PDO invalid).
//!
//! The device must be in pre-operational (or the PDO invalid) for most devices to accept
//! this. [`PdoConfigurator`] walks the list with an [`SdoClient`], one write per step,
//! without blocking or allocating, and reports which step failed with which abort code.

use core::fmt;

use crate::can::Timestamp;
use crate::canopen::sdo::{
    AbortCode, Multiplexer, SdoClient, SdoError, SdoErrorKind, SdoStartError,
};

use super::PdoId;
use super::comm::{
    PdoCommParams, SUB_COB_ID, SUB_EVENT_TIMER, SUB_INHIBIT_TIME, SUB_TRANSMISSION_TYPE,
};
use super::mapping::{MAX_ENTRIES, PdoMapping, SUB_COUNT};

/// The most steps a configuration takes: COB-ID, three parameters, clear, 8 entries,
/// count, COB-ID.
pub const MAX_STEPS: usize = 6 + MAX_ENTRIES + 1;

/// Everything the controller sets on one PDO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoConfig {
    /// Communication parameters.
    pub comm: PdoCommParams,
    /// Mapping.
    pub mapping: PdoMapping,
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PdoConfigStepKind {
    /// Write the COB-ID with bit 31 set (PDO invalid).
    Invalidate,
    /// Write the transmission type.
    TransmissionType,
    /// Write the inhibit time.
    InhibitTime,
    /// Write the event timer.
    EventTimer,
    /// Write 0 to the mapping count.
    ClearMapping,
    /// Write mapping entry `n` (1-based).
    MapEntry(u8),
    /// Write the number of entries to the mapping count.
    SetMappingCount,
    /// Write the COB-ID with bit 31 clear (PDO valid).
    Validate,
}

impl fmt::Display for PdoConfigStepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PdoConfigStepKind::Invalidate => f.write_str("invalidate the PDO (COB-ID bit 31 set)"),
            PdoConfigStepKind::TransmissionType => f.write_str("transmission type"),
            PdoConfigStepKind::InhibitTime => f.write_str("inhibit time"),
            PdoConfigStepKind::EventTimer => f.write_str("event timer"),
            PdoConfigStepKind::ClearMapping => f.write_str("disable the mapping (count 0)"),
            PdoConfigStepKind::MapEntry(n) => write!(f, "mapping entry {n}"),
            PdoConfigStepKind::SetMappingCount => f.write_str("enable the mapping (count n)"),
            PdoConfigStepKind::Validate => f.write_str("validate the PDO (COB-ID bit 31 clear)"),
        }
    }
}

/// One SDO download of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdoConfigStep {
    /// What the step does.
    pub kind: PdoConfigStepKind,
    /// The object written.
    pub mux: Multiplexer,
    value: [u8; 4],
    len: u8,
}

impl PdoConfigStep {
    const fn new(kind: PdoConfigStepKind, mux: Multiplexer, value: u32, len: u8) -> PdoConfigStep {
        PdoConfigStep {
            kind,
            mux,
            value: value.to_le_bytes(),
            len,
        }
    }

    /// The bytes written (1, 2 or 4, little-endian, by the object's data type).
    pub fn data(&self) -> &[u8] {
        &self.value[..usize::from(self.len)]
    }

    /// The value written.
    pub const fn value(&self) -> u32 {
        u32::from_le_bytes(self.value)
    }
}

impl fmt::Display for PdoConfigStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: write {:#0w$X} to {}",
            self.kind,
            self.value(),
            self.mux,
            w = 2 + 2 * usize::from(self.len)
        )
    }
}

/// The step list of `config` for `pdo`, in CiA 301 order.
pub fn pdo_config_steps(pdo: PdoId, config: &PdoConfig) -> ([PdoConfigStep; MAX_STEPS], usize) {
    let comm = |sub| Multiplexer::new(pdo.comm_index(), sub);
    let map = |sub| Multiplexer::new(pdo.mapping_index(), sub);
    let mut steps =
        [PdoConfigStep::new(PdoConfigStepKind::Invalidate, comm(SUB_COB_ID), 0, 0); MAX_STEPS];
    let mut n = 0;
    let mut push = |step| {
        steps[n] = step;
        n += 1;
    };
    let c = &config.comm;
    push(PdoConfigStep::new(
        PdoConfigStepKind::Invalidate,
        comm(SUB_COB_ID),
        c.cob_id.with_valid(false).to_u32(),
        4,
    ));
    push(PdoConfigStep::new(
        PdoConfigStepKind::TransmissionType,
        comm(SUB_TRANSMISSION_TYPE),
        u32::from(c.transmission.to_u8()),
        1,
    ));
    if let Some(t) = c.inhibit_100us {
        push(PdoConfigStep::new(
            PdoConfigStepKind::InhibitTime,
            comm(SUB_INHIBIT_TIME),
            u32::from(t),
            2,
        ));
    }
    if let Some(t) = c.event_timer_ms {
        push(PdoConfigStep::new(
            PdoConfigStepKind::EventTimer,
            comm(SUB_EVENT_TIMER),
            u32::from(t),
            2,
        ));
    }
    push(PdoConfigStep::new(
        PdoConfigStepKind::ClearMapping,
        map(SUB_COUNT),
        0,
        1,
    ));
    for (i, e) in config.mapping.entries().iter().enumerate() {
        // At most 8 entries, so i + 1 fits in a u8.
        let sub = (i + 1) as u8;
        push(PdoConfigStep::new(
            PdoConfigStepKind::MapEntry(sub),
            map(sub),
            e.to_u32(),
            4,
        ));
    }
    push(PdoConfigStep::new(
        PdoConfigStepKind::SetMappingCount,
        map(SUB_COUNT),
        config.mapping.len() as u32,
        1,
    ));
    if c.cob_id.valid {
        push(PdoConfigStep::new(
            PdoConfigStepKind::Validate,
            comm(SUB_COB_ID),
            c.cob_id.to_u32(),
            4,
        ));
    }
    (steps, n)
}

/// Why a step of a PDO configuration failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdoStepFailure {
    /// The SDO write failed (abort, timeout, ...).
    #[error(transparent)]
    Sdo(SdoError),
    /// The SDO write could not start (the client's buffer is smaller than 4 bytes).
    #[error(transparent)]
    Start(SdoStartError),
}

/// A PDO configuration failed at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuring {pdo}: step {number} of {total} ({step}) failed: {failure}")]
pub struct PdoConfigError {
    /// The PDO.
    pub pdo: PdoId,
    /// The failed step, 1-based.
    pub number: usize,
    /// Steps in the configuration.
    pub total: usize,
    /// The failed step.
    pub step: PdoConfigStep,
    /// Why it failed.
    pub failure: PdoStepFailure,
}

impl PdoConfigError {
    /// The abort code the device answered with, if it aborted the write.
    pub fn abort_code(&self) -> Option<AbortCode> {
        match self.failure {
            PdoStepFailure::Sdo(SdoError {
                kind: SdoErrorKind::ServerAbort(code),
                ..
            }) => Some(code),
            _ => None,
        }
    }
}

/// Where a configuration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdoConfigStatus {
    /// Step `number` (1-based) of `total` is running or about to start.
    InProgress {
        /// The current step, 1-based.
        number: usize,
        /// Steps in the configuration.
        total: usize,
    },
    /// Every step succeeded.
    Done,
    /// A step failed; the remaining steps were not attempted.
    Failed(PdoConfigError),
}

/// Walks a PDO configuration with an [`SdoClient`] for the device. While it runs it owns the
/// client's transfers: call [`poll`](Self::poll) each cycle after feeding the client its
/// frames and before taking the client's frame to send; do not start other transfers on the
/// client or take its outcomes meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdoConfigurator {
    pdo: PdoId,
    steps: [PdoConfigStep; MAX_STEPS],
    count: usize,
    next: usize,
    waiting: bool,
    failed: Option<PdoConfigError>,
}

impl PdoConfigurator {
    /// A configurator for `config` on `pdo`; nothing is sent before the first poll.
    pub fn new(pdo: PdoId, config: &PdoConfig) -> PdoConfigurator {
        let (steps, count) = pdo_config_steps(pdo, config);
        PdoConfigurator {
            pdo,
            steps,
            count,
            next: 0,
            waiting: false,
            failed: None,
        }
    }

    /// The PDO.
    pub fn pdo(&self) -> PdoId {
        self.pdo
    }

    /// Every step, in order.
    pub fn steps(&self) -> &[PdoConfigStep] {
        &self.steps[..self.count]
    }

    /// Advances: collects the outcome of the running write, starts the next one.
    pub fn poll(&mut self, client: &mut SdoClient, now: Timestamp) -> PdoConfigStatus {
        if let Some(e) = self.failed {
            return PdoConfigStatus::Failed(e);
        }
        if self.waiting {
            match client.take_outcome() {
                None => return self.in_progress(),
                Some(Ok(_)) => {
                    self.waiting = false;
                    self.next += 1;
                }
                Some(Err(e)) => return self.fail(PdoStepFailure::Sdo(e)),
            }
        }
        let Some(step) = self.steps().get(self.next).copied() else {
            return PdoConfigStatus::Done;
        };
        match client.start_download(step.mux, step.data(), now) {
            Ok(()) => self.waiting = true,
            // Someone else's transfer is still running: try again next cycle.
            Err(SdoStartError::Busy) => {}
            Err(e) => return self.fail(PdoStepFailure::Start(e)),
        }
        self.in_progress()
    }

    fn in_progress(&self) -> PdoConfigStatus {
        PdoConfigStatus::InProgress {
            number: self.next + 1,
            total: self.count,
        }
    }

    fn fail(&mut self, failure: PdoStepFailure) -> PdoConfigStatus {
        let e = PdoConfigError {
            pdo: self.pdo,
            number: self.next + 1,
            total: self.count,
            step: self.steps[self.next],
            failure,
        };
        self.failed = Some(e);
        PdoConfigStatus::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::can::Frame;
    use crate::canopen::NodeId;
    use crate::canopen::pdo::{MappingEntry, PdoCobId, TransmissionType};
    use crate::canopen::sdo::{SdoRequest, SdoResponse};

    fn tpdo1_config() -> PdoConfig {
        PdoConfig {
            comm: PdoCommParams {
                cob_id: PdoCobId::standard(0x181),
                transmission: TransmissionType::SynchronousCyclic(1),
                inhibit_100us: None,
                event_timer_ms: Some(0),
            },
            mapping: PdoMapping::new(&[
                MappingEntry::new(0x6041, 0, 16),
                MappingEntry::new(0x6064, 0, 32),
            ])
            .unwrap(),
        }
    }

    #[test]
    fn the_step_list_in_cia_301_order() {
        let pdo = PdoId::tpdo(1).unwrap();
        let c = PdoConfigurator::new(pdo, &tpdo1_config());
        let node = NodeId::new(1).unwrap();
        let frames: Vec<String> = c
            .steps()
            .iter()
            .map(|s| {
                SdoRequest::download_expedited(s.mux, s.data())
                    .unwrap()
                    .encode(node)
                    .to_string()
            })
            .collect();
        assert_eq!(
            frames,
            [
                "601#23001801810100C0", // 0x1800:01 = 0xC000_0181 (invalid, no RTR)
                "601#2F00180201000000", // 0x1800:02 = 1 (every SYNC)
                "601#2B00180500000000", // 0x1800:05 = 0 ms
                "601#2F001A0000000000", // 0x1A00:00 = 0
                "601#23001A0110004160", // 0x1A00:01 = 0x6041_0010
                "601#23001A0220006460", // 0x1A00:02 = 0x6064_0020
                "601#2F001A0002000000", // 0x1A00:00 = 2
                "601#2300180181010040", // 0x1800:01 = 0x4000_0181 (valid)
            ]
        );
        assert_eq!(
            c.steps()[0].to_string(),
            "invalidate the PDO (COB-ID bit 31 set): write 0xC0000181 to 0x1800:01"
        );
    }

    #[test]
    fn an_invalid_pdo_is_not_validated_at_the_end() {
        let mut config = tpdo1_config();
        config.comm.cob_id = config.comm.cob_id.with_valid(false);
        let c = PdoConfigurator::new(PdoId::rpdo(2).unwrap(), &config);
        let last = c.steps().last().unwrap();
        assert_eq!(last.kind, PdoConfigStepKind::SetMappingCount);
        assert_eq!(last.mux, Multiplexer::new(0x1601, 0));
    }

    /// Answers every expedited download with an ack, except `fail_at` (0-based), aborted with
    /// `code`.
    fn run(fail_at: Option<(usize, AbortCode)>) -> (PdoConfigStatus, Vec<Frame>) {
        let node = NodeId::new(1).unwrap();
        let mut client = SdoClient::new(node, 16);
        let mut cfg = PdoConfigurator::new(PdoId::tpdo(1).unwrap(), &tpdo1_config());
        let mut sent = Vec::new();
        for ms in 0..100 {
            let now = Timestamp::from_millis(ms);
            let status = cfg.poll(&mut client, now);
            if !matches!(status, PdoConfigStatus::InProgress { .. }) {
                return (status, sent);
            }
            if let Some(frame) = client.poll(now) {
                let (_, req) = SdoRequest::decode(&frame).unwrap();
                let SdoRequest::InitiateDownload { mux, .. } = req else {
                    panic!("unexpected {req}");
                };
                let reply = match fail_at {
                    Some((k, code)) if k == sent.len() => SdoResponse::abort(mux, code),
                    _ => SdoResponse::download_ack(mux),
                };
                sent.push(frame);
                client.on_frame(&reply.encode(node), now);
            }
        }
        panic!("configuration did not finish");
    }

    #[test]
    fn runs_every_step_through_the_sdo_client() {
        let (status, sent) = run(None);
        assert_eq!(status, PdoConfigStatus::Done);
        assert_eq!(sent.len(), 8);
    }

    #[test]
    fn reports_the_failed_step_and_its_abort_code() {
        let (status, sent) = run(Some((4, AbortCode::CannotBeMapped)));
        let PdoConfigStatus::Failed(e) = status else {
            panic!("expected failure, got {status:?}");
        };
        assert_eq!(sent.len(), 5, "nothing after the failed step");
        assert_eq!(e.number, 5);
        assert_eq!(e.step.kind, PdoConfigStepKind::MapEntry(1));
        assert_eq!(e.abort_code(), Some(AbortCode::CannotBeMapped));
        assert_eq!(
            e.to_string(),
            "configuring TPDO1: step 5 of 8 (mapping entry 1: write 0x60410010 to 0x1A00:01) \
             failed: SDO download (write) 0x1A00:01 on node 1: the device aborted: 0x06040041 \
             (object cannot be mapped to the PDO)"
        );
    }
}
