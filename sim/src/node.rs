//! The CiA 301 core every simulated device shares: NMT responder (§7.2.8.3.1, boot-up,
//! pre-operational / operational / stopped, reset node and reset communication restoring
//! defaults), SDO server (§7.2.4), heartbeat producer 0x1017 and consumer 0x1016 with the
//! error behaviour 0x1029 (§7.2.8.3.2, §7.5.2.32), EMCY producer 0x1014/0x1015 with the
//! error register 0x1001 and error history 0x1003 (§7.2.7), SYNC consumer 0x1005, and four
//! RPDOs and TPDOs (0x1400/0x1600, 0x1800/0x1A00, §7.2.2) run as the controller configured
//! them through SDO: synchronous (every n-th SYNC, acyclic), event-driven with inhibit time
//! and event timer, RTR, and RPDO deadline monitoring (EMCY 0x8250).
//!
//! The profile-specific part of a device (a CiA 402 drive, a CiA 401 I/O node) owns the
//! entries from 0x2000 on and reads and writes them through [`Slot`]s; this core tells it
//! what happened through [`CoreEvents`]. Frames leave through a bounded [`Outbox`]. Nothing
//! here allocates after construction.

use core::time::Duration;
use std::collections::VecDeque;

use takt_drivers::can::{Frame, Timestamp};
use takt_drivers::canopen::cob::{self, HEARTBEAT, SDO_REQUEST};
use takt_drivers::canopen::pdo::{
    MappingEntry, PdoCobId, PdoMapping, PdoPayload, TransmissionType,
    comm::{COB_ID_INVALID, COB_ID_NO_RTR},
};
use takt_drivers::canopen::sdo::AbortCode;
use takt_drivers::canopen::{
    EmcyCode, Emergency, ErrorRegister, Heartbeat, NmtCommand, NmtMessage, NmtState, NodeId,
};

use crate::od::{Access, DataType, Entry, ObjectDictionary, OdError, Slot};
use crate::sdo_server::{SdoServer, WriteCheck};

/// PDOs per direction each simulated device has (the pre-defined connection set's four).
pub const PDOS: usize = 4;
/// Frames a device may have waiting to go on the bus; more are dropped and counted, as a
/// full transmit queue in a real CAN controller would.
pub const OUTBOX_DEPTH: usize = 64;
/// Entries in the pre-defined error field 0x1003.
pub const ERROR_HISTORY: u8 = 8;
/// Consumer heartbeat entries in 0x1016.
pub const HEARTBEAT_CONSUMERS: u8 = 4;

/// EMCY 0x8130: life guard or heartbeat error (CiA 301 Table "Emergency error codes").
pub const EMCY_HEARTBEAT: u16 = 0x8130;
/// EMCY 0x8100: communication, generic (CiA 301) — a drive's fault when its own bus-off
/// triggers the abort connection option 0x6007.
pub const EMCY_COMMUNICATION: u16 = 0x8100;
/// EMCY 0x8140: recovered from bus-off.
pub const EMCY_RECOVERED_FROM_BUS_OFF: u16 = 0x8140;
/// EMCY 0x8210: PDO not processed due to length error.
pub const EMCY_PDO_LENGTH: u16 = 0x8210;
/// EMCY 0x8250: RPDO timeout (deadline monitoring through the RPDO event timer).
pub const EMCY_RPDO_TIMEOUT: u16 = 0x8250;

/// The NMT state of a device, including the initialisation it passes through after power-on
/// and resets (CiA 301 Figure "NMT state diagram").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Powering up or resetting: deaf and mute until it sends its boot-up message.
    Initialising,
    /// SDO, EMCY, SYNC, heartbeat; no PDOs.
    PreOperational,
    /// Everything runs.
    Operational,
    /// Only NMT and heartbeat.
    Stopped,
}

impl NodeState {
    /// The state its heartbeat reports.
    pub const fn heartbeat(self) -> NmtState {
        match self {
            NodeState::Initialising => NmtState::BootUp,
            NodeState::PreOperational => NmtState::PreOperational,
            NodeState::Operational => NmtState::Operational,
            NodeState::Stopped => NmtState::Stopped,
        }
    }

    const fn serves_sdo(self) -> bool {
        matches!(self, NodeState::PreOperational | NodeState::Operational)
    }
}

/// What happened in the core since the profile part last looked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreEvents {
    /// The device finished booting (power-on or reset) and sent its boot-up message.
    pub booted: bool,
    /// A reset node restored every default: the application must start over.
    pub application_reset: bool,
    /// A SYNC arrived (in pre-operational or operational).
    pub sync: bool,
    /// A consumed heartbeat timed out (0x1016): the application's communication-error
    /// reaction applies (0x6007 on a drive, 0x6206/0x6207 on an I/O node).
    pub heartbeat_lost: bool,
    /// The node's own CAN controller went bus-off: a communication error like a lost
    /// heartbeat (CiA 402 names bus-off among the events of 0x6007), so the same reaction
    /// applies.
    pub bus_off: bool,
    /// Entries were written by SDO or an RPDO.
    pub written: bool,
}

/// A device's bounded transmit queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    frames: VecDeque<Frame>,
    dropped: u64,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            frames: VecDeque::with_capacity(OUTBOX_DEPTH),
            dropped: 0,
        }
    }

    /// Queues `frame`; a full queue drops it and counts.
    pub fn push(&mut self, frame: Frame) {
        if self.frames.len() < OUTBOX_DEPTH {
            self.frames.push_back(frame);
        } else {
            self.dropped += 1;
        }
    }

    /// The oldest queued frame.
    pub fn pop(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn clear(&mut self) {
        self.frames.clear();
    }
}

/// The default of one PDO, as the device leaves the factory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdoDefault {
    /// COB-ID entry (sub 1), including the valid and RTR bits.
    pub cob_id: u32,
    /// Transmission type (sub 2).
    pub transmission: u8,
    /// Inhibit time in 100 µs (sub 3).
    pub inhibit_100us: u16,
    /// Event timer in ms (sub 5).
    pub event_timer_ms: u16,
    /// Mapping entries (index, sub-index, bits); at most 8.
    pub mapping: &'static [(u16, u8, u8)],
}

impl PdoDefault {
    /// A PDO that exists but is not valid and maps nothing, on `cob_id`.
    pub const fn unused(cob_id: u16) -> PdoDefault {
        PdoDefault {
            cob_id: COB_ID_INVALID | COB_ID_NO_RTR | cob_id as u32,
            transmission: 255,
            inhibit_100us: 0,
            event_timer_ms: 0,
            mapping: &[],
        }
    }
}

/// The identity and communication defaults of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommDefaults {
    /// 0x1000 device type.
    pub device_type: u32,
    /// 0x1008 manufacturer device name.
    pub name: String,
    /// 0x1009 hardware version.
    pub hardware_version: String,
    /// 0x100A software version.
    pub software_version: String,
    /// 0x1018 vendor-ID, product code, revision, serial number.
    pub identity: [u32; 4],
    /// 0x1017 producer heartbeat time, ms (0: off).
    pub heartbeat_ms: u16,
    /// RPDO 1..=4 defaults (COB-IDs given as offsets from the node-ID are resolved by the
    /// caller).
    pub rpdo: [PdoDefault; PDOS],
    /// TPDO 1..=4 defaults.
    pub tpdo: [PdoDefault; PDOS],
}

/// The CiA 301 entries 0x1000..=0x1BFF of a device with `node` and these defaults.
pub fn comm_entries(node: NodeId, d: &CommDefaults) -> Vec<Entry> {
    use Access::{Const, ReadOnly, ReadWrite};
    use DataType::{Unsigned8 as U8, Unsigned16 as U16, Unsigned32 as U32};
    let n = i64::from(node.get());
    let mut v = vec![
        Entry::new(
            0x1000,
            0,
            "device type",
            U32,
            Const,
            i64::from(d.device_type),
        ),
        Entry::new(0x1001, 0, "error register", U8, ReadOnly, 0).mappable(),
        Entry::new(0x1003, 0, "number of errors", U8, ReadWrite, 0),
        Entry::new(
            0x1005,
            0,
            "COB-ID SYNC",
            U32,
            ReadWrite,
            i64::from(cob::SYNC),
        ),
        Entry::new(0x1006, 0, "communication cycle period", U32, ReadWrite, 0),
        Entry::text(0x1008, 0, "manufacturer device name", Const, &d.name, 0),
        Entry::text(
            0x1009,
            0,
            "manufacturer hardware version",
            Const,
            &d.hardware_version,
            0,
        ),
        Entry::text(
            0x100A,
            0,
            "manufacturer software version",
            Const,
            &d.software_version,
            0,
        ),
        Entry::new(
            0x1014,
            0,
            "COB-ID EMCY",
            U32,
            ReadWrite,
            i64::from(cob::EMCY) + n,
        ),
        Entry::new(0x1015, 0, "inhibit time EMCY", U16, ReadWrite, 0),
        Entry::new(
            0x1016,
            0,
            "consumer heartbeat time",
            U8,
            Const,
            i64::from(HEARTBEAT_CONSUMERS),
        ),
        Entry::new(
            0x1017,
            0,
            "producer heartbeat time",
            U16,
            ReadWrite,
            i64::from(d.heartbeat_ms),
        ),
        Entry::new(0x1018, 0, "identity object", U8, Const, 4),
        Entry::new(0x1018, 1, "vendor-ID", U32, Const, i64::from(d.identity[0])),
        Entry::new(
            0x1018,
            2,
            "product code",
            U32,
            Const,
            i64::from(d.identity[1]),
        ),
        Entry::new(
            0x1018,
            3,
            "revision number",
            U32,
            Const,
            i64::from(d.identity[2]),
        ),
        Entry::new(
            0x1018,
            4,
            "serial number",
            U32,
            Const,
            i64::from(d.identity[3]),
        ),
        Entry::new(0x1029, 0, "error behaviour", U8, Const, 1),
        Entry::new(0x1029, 1, "communication error", U8, ReadWrite, 0).range(0, 2),
    ];
    for k in 1..=ERROR_HISTORY {
        v.push(Entry::new(
            0x1003,
            k,
            "standard error field",
            U32,
            ReadOnly,
            0,
        ));
    }
    for k in 1..=HEARTBEAT_CONSUMERS {
        v.push(Entry::new(
            0x1016,
            k,
            "consumer heartbeat time",
            U32,
            ReadWrite,
            0,
        ));
    }
    for (i, (pdo, is_rpdo)) in d
        .rpdo
        .iter()
        .map(|p| (p, true))
        .chain(d.tpdo.iter().map(|p| (p, false)))
        .enumerate()
    {
        let k = (i % PDOS) as u16;
        let (comm, map) = if is_rpdo {
            (0x1400 + k, 0x1600 + k)
        } else {
            (0x1800 + k, 0x1A00 + k)
        };
        v.push(Entry::new(comm, 0, "highest sub-index", U8, Const, 5));
        v.push(Entry::new(
            comm,
            1,
            "COB-ID",
            U32,
            ReadWrite,
            i64::from(pdo.cob_id),
        ));
        v.push(Entry::new(
            comm,
            2,
            "transmission type",
            U8,
            ReadWrite,
            i64::from(pdo.transmission),
        ));
        v.push(Entry::new(
            comm,
            3,
            "inhibit time",
            U16,
            ReadWrite,
            i64::from(pdo.inhibit_100us),
        ));
        v.push(Entry::new(
            comm,
            5,
            "event timer",
            U16,
            ReadWrite,
            i64::from(pdo.event_timer_ms),
        ));
        v.push(
            Entry::new(
                map,
                0,
                "number of mapped objects",
                U8,
                ReadWrite,
                pdo.mapping.len() as i64,
            )
            .range(0, 8),
        );
        for s in 1..=8u8 {
            let value = pdo
                .mapping
                .get(usize::from(s) - 1)
                .map_or(0, |&(i, sub, bits)| {
                    MappingEntry::new(i, sub, bits).to_u32()
                });
            v.push(Entry::new(
                map,
                s,
                "mapped object",
                U32,
                ReadWrite,
                i64::from(value),
            ));
        }
    }
    v
}

#[derive(Clone, Copy, Debug)]
struct CommSlots {
    error_register: Slot,
    error_count: Slot,
    error_field: [Slot; ERROR_HISTORY as usize],
    sync_cob: Slot,
    emcy_cob: Slot,
    emcy_inhibit: Slot,
    consumers: [Slot; HEARTBEAT_CONSUMERS as usize],
    heartbeat: Slot,
    comm_error: Slot,
}

impl CommSlots {
    fn resolve(od: &ObjectDictionary) -> Result<CommSlots, OdError> {
        let mut error_field = [od.require(0x1003, 0)?; ERROR_HISTORY as usize];
        for (k, s) in error_field.iter_mut().enumerate() {
            *s = od.require(0x1003, k as u8 + 1)?;
        }
        let mut consumers = [od.require(0x1016, 1)?; HEARTBEAT_CONSUMERS as usize];
        for (k, s) in consumers.iter_mut().enumerate() {
            *s = od.require(0x1016, k as u8 + 1)?;
        }
        Ok(CommSlots {
            error_register: od.require(0x1001, 0)?,
            error_count: od.require(0x1003, 0)?,
            error_field,
            sync_cob: od.require(0x1005, 0)?,
            emcy_cob: od.require(0x1014, 0)?,
            emcy_inhibit: od.require(0x1015, 0)?,
            consumers,
            heartbeat: od.require(0x1017, 0)?,
            comm_error: od.require(0x1029, 1)?,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Pdo {
    valid: bool,
    cob: u16,
    rtr_allowed: bool,
    transmission: TransmissionType,
    inhibit: Duration,
    event_timer: Duration,
    mapping: PdoMapping,
    slots: [Option<Slot>; 8],
    /// TPDO: last payload sent; RPDO: payload waiting for the next SYNC.
    payload: Option<PdoPayload>,
    last: Option<Timestamp>,
    sync_count: u8,
    timed_out: bool,
}

/// A set of 11-bit CAN identifiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CobSet([u64; 32]);

impl CobSet {
    fn insert(&mut self, id: u16) {
        let id = usize::from(id & 0x7FF);
        self.0[id >> 6] |= 1 << (id & 63);
    }

    fn contains(&self, id: u16) -> bool {
        let id = usize::from(id & 0x7FF);
        self.0[id >> 6] >> (id & 63) & 1 == 1
    }
}

/// Bit k set: `pdos[k]` is valid.
fn valid_mask(pdos: &[Pdo; PDOS]) -> u8 {
    pdos.iter()
        .enumerate()
        .fold(0, |m, (k, p)| m | u8::from(p.valid) << k)
}

impl Pdo {
    const NONE: Pdo = Pdo {
        valid: false,
        cob: 0,
        rtr_allowed: false,
        transmission: TransmissionType::EventProfile,
        inhibit: Duration::ZERO,
        event_timer: Duration::ZERO,
        mapping: PdoMapping::empty(),
        slots: [None; 8],
        payload: None,
        last: None,
        sync_count: 0,
        timed_out: false,
    };

    fn load(od: &ObjectDictionary, comm: u16, map: u16) -> Pdo {
        let get = |i: u16, s: u8| od.value(i, s).unwrap_or(0);
        let Ok(cob_id) = PdoCobId::from_u32(get(comm, 1) as u32) else {
            return Pdo::NONE;
        };
        let Ok(transmission) = TransmissionType::from_u8(get(comm, 2) as u8) else {
            return Pdo::NONE;
        };
        let n = (get(map, 0) as usize).min(8);
        let mut entries = [MappingEntry::new(0, 0, 0); 8];
        let mut slots = [None; 8];
        for k in 0..n {
            let e = MappingEntry::from_u32(get(map, k as u8 + 1) as u32);
            entries[k] = e;
            slots[k] = od.slot(e.index, e.sub);
        }
        let mapping = PdoMapping::new(&entries[..n]).unwrap_or(PdoMapping::empty());
        Pdo {
            valid: cob_id.valid && !cob_id.id.is_extended(),
            cob: cob_id.id.raw() as u16,
            rtr_allowed: cob_id.rtr_allowed,
            transmission,
            inhibit: Duration::from_micros(100 * get(comm, 3) as u64),
            event_timer: Duration::from_millis(get(comm, 5) as u64),
            mapping,
            slots,
            ..Pdo::NONE
        }
    }

    fn sample(&self, od: &ObjectDictionary) -> PdoPayload {
        let mut values = [0u64; 8];
        for (v, s) in values.iter_mut().zip(&self.slots[..self.mapping.len()]) {
            *v = s.map_or(0, |s| od.get(s) as u64);
        }
        self.mapping
            .pack(&values[..self.mapping.len()])
            .unwrap_or(PdoPayload::from_slice(&[]))
    }

    fn apply(&self, od: &mut ObjectDictionary, payload: &PdoPayload) {
        let Ok(values) = self.mapping.unpack(payload.as_slice()) else {
            return;
        };
        for (i, s) in self.slots[..self.mapping.len()].iter().enumerate() {
            if let (Some(s), Some(v)) = (s, values.signed(i)) {
                od.set(*s, v);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Consumer {
    node: u8,
    timeout: Duration,
    last: Option<Timestamp>,
    lost: bool,
}

/// How long a reset node takes before the boot-up message, and a reset communication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootTimes {
    /// Power-on or reset node to boot-up.
    pub reset_node: Duration,
    /// Reset communication to boot-up.
    pub reset_communication: Duration,
}

impl Default for BootTimes {
    fn default() -> Self {
        BootTimes {
            reset_node: Duration::from_millis(50),
            reset_communication: Duration::from_millis(5),
        }
    }
}

/// The CiA 301 part of one simulated device. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct NodeCore {
    node: NodeId,
    od: ObjectDictionary,
    slots: CommSlots,
    state: NodeState,
    boot_at: Option<Timestamp>,
    boot_times: BootTimes,
    sdo: SdoServer,
    next_heartbeat: Option<Timestamp>,
    consumers: [Consumer; HEARTBEAT_CONSUMERS as usize],
    rpdo: [Pdo; PDOS],
    tpdo: [Pdo; PDOS],
    /// Bit k: `rpdo[k]` / `tpdo[k]` is valid (set with them in `reload`). Every frame on
    /// the bus and every step pass over the PDOs of every node; the masks keep them from
    /// reading the few hundred bytes of each unused one.
    valid_rpdos: u8,
    valid_tpdos: u8,
    /// The 11-bit identifiers `on_frame` acts on, one bit each (set in `reload`): every
    /// frame on the bus reaches every node, and most are another node's PDOs.
    listens: CobSet,
    emcy_last: Option<Timestamp>,
    emcy_pending: VecDeque<Frame>,
    events: CoreEvents,
    outbox: Outbox,
    /// Transmitter switched off by a fault: frames are discarded.
    mute: bool,
    /// Off the bus (bus-off fault): neither sends nor receives.
    off_bus: bool,
}

impl NodeCore {
    /// A device with `node` whose dictionary holds `entries` (the CiA 301 ones from
    /// [`comm_entries`] plus its profile's), powered on at `power_on`.
    pub fn new(
        node: NodeId,
        entries: Vec<Entry>,
        boot_times: BootTimes,
        power_on: Timestamp,
    ) -> Result<NodeCore, OdError> {
        let od = ObjectDictionary::new(entries)?;
        let slots = CommSlots::resolve(&od)?;
        let sdo = SdoServer::new(od.max_value_len());
        let mut core = NodeCore {
            node,
            od,
            slots,
            state: NodeState::Initialising,
            boot_at: Some(power_on + boot_times.reset_node),
            boot_times,
            sdo,
            next_heartbeat: None,
            consumers: [Consumer::default(); HEARTBEAT_CONSUMERS as usize],
            rpdo: [Pdo::NONE; PDOS],
            tpdo: [Pdo::NONE; PDOS],
            valid_rpdos: 0,
            valid_tpdos: 0,
            listens: CobSet::default(),
            emcy_last: None,
            emcy_pending: VecDeque::with_capacity(8),
            events: CoreEvents::default(),
            outbox: Outbox::new(),
            mute: false,
            off_bus: false,
        };
        core.reload();
        Ok(core)
    }

    /// The node-ID.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The NMT state.
    pub fn state(&self) -> NodeState {
        self.state
    }

    /// The object dictionary.
    pub fn od(&self) -> &ObjectDictionary {
        &self.od
    }

    /// The object dictionary, for the profile part's own updates.
    pub fn od_mut(&mut self) -> &mut ObjectDictionary {
        &mut self.od
    }

    /// The events since the last call, cleared.
    pub fn take_events(&mut self) -> CoreEvents {
        core::mem::take(&mut self.events)
    }

    /// The transmit queue.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// True while a fault keeps the transmitter off.
    pub fn is_mute(&self) -> bool {
        self.mute
    }

    /// Switches the transmitter off (a node falls silent) or back on.
    pub fn set_mute(&mut self, mute: bool) {
        self.mute = mute;
        if mute {
            self.outbox.clear();
        }
    }

    /// Takes the device off the bus (bus-off) or brings it back; coming back it reports
    /// EMCY 0x8140, as CiA 301 devices do after recovering.
    pub fn set_off_bus(&mut self, off: bool) {
        if off == self.off_bus {
            return;
        }
        self.off_bus = off;
        if off {
            self.outbox.clear();
            self.events.bus_off = true;
        } else {
            let register =
                ErrorRegister::from_bits_retain(self.od.get(self.slots.error_register) as u8)
                    | ErrorRegister::COMMUNICATION;
            self.emcy(EMCY_RECOVERED_FROM_BUS_OFF, register, [0; 5]);
        }
    }

    /// True while off the bus.
    pub fn is_off_bus(&self) -> bool {
        self.off_bus
    }

    /// False when [`NodeCore::on_frame`] would certainly ignore `frame`: off the bus, or
    /// an identifier it does not act on (another node's PDO, most of the bus). Cheap
    /// enough to ask before handing it every frame.
    #[inline]
    pub fn may_take(&self, frame: &Frame) -> bool {
        !self.off_bus
            && frame
                .standard_id()
                .is_some_and(|id| self.listens.contains(id))
    }

    /// Resets the device as NMT reset node would (a reboot fault), at `now`.
    pub fn reboot(&mut self, now: Timestamp) {
        self.reset(NmtCommand::ResetNode, now);
    }

    fn reset(&mut self, command: NmtCommand, now: Timestamp) {
        let (range, delay) = if command == NmtCommand::ResetNode {
            self.events.application_reset = true;
            (0x0000..=0xFFFF, self.boot_times.reset_node)
        } else {
            (0x1000..=0x1FFF, self.boot_times.reset_communication)
        };
        self.od.restore_defaults(range);
        self.state = NodeState::Initialising;
        self.boot_at = Some(now + delay);
        self.outbox.clear();
        self.emcy_pending.clear();
        self.sdo.reset();
        self.reload();
    }

    /// Re-reads the communication objects into the running PDOs and consumers, after
    /// they were written or reset.
    fn reload(&mut self) {
        for k in 0..PDOS as u16 {
            self.rpdo[k as usize] = Pdo::load(&self.od, 0x1400 + k, 0x1600 + k);
            self.tpdo[k as usize] = Pdo::load(&self.od, 0x1800 + k, 0x1A00 + k);
        }
        self.valid_rpdos = valid_mask(&self.rpdo);
        self.valid_tpdos = valid_mask(&self.tpdo);
        for (c, s) in self.consumers.iter_mut().zip(self.slots.consumers) {
            let v = self.od.get(s) as u32;
            let node = ((v >> 16) & 0x7F) as u8;
            let timeout = Duration::from_millis(u64::from(v & 0xFFFF));
            if c.node != node || c.timeout != timeout {
                *c = Consumer {
                    node,
                    timeout,
                    last: None,
                    lost: false,
                };
            }
        }
        let mut listens = CobSet::default();
        listens.insert(cob::NMT);
        listens.insert(SDO_REQUEST + u16::from(self.node.get()));
        for c in &self.consumers {
            if c.node != 0 && !c.timeout.is_zero() {
                listens.insert(HEARTBEAT + u16::from(c.node));
            }
        }
        listens.insert(self.od.get(self.slots.sync_cob) as u16);
        for r in self.rpdo.iter().filter(|r| r.valid) {
            listens.insert(r.cob);
        }
        for t in self.tpdo.iter().filter(|t| t.valid && t.rtr_allowed) {
            listens.insert(t.cob);
        }
        self.listens = listens;
    }

    /// Sends an EMCY with `code` and sets the error register to `register` (CiA 301
    /// §7.2.7); code 0x0000 (error reset) keeps the history. Not sent in stopped or while
    /// initialising, or when 0x1014 is marked invalid.
    pub fn emcy(&mut self, code: u16, register: ErrorRegister, manufacturer: [u8; 5]) {
        self.od
            .set(self.slots.error_register, i64::from(register.bits()));
        if code != 0 {
            let count = (self.od.get(self.slots.error_count) as u8).min(ERROR_HISTORY - 1);
            for k in (0..usize::from(count)).rev() {
                let v = self.od.get(self.slots.error_field[k]);
                self.od.set(self.slots.error_field[k + 1], v);
            }
            self.od.set(self.slots.error_field[0], i64::from(code));
            self.od.set(self.slots.error_count, i64::from(count + 1));
        }
        if !matches!(
            self.state,
            NodeState::PreOperational | NodeState::Operational
        ) {
            return;
        }
        let cob = self.od.get(self.slots.emcy_cob) as u32;
        if cob & COB_ID_INVALID != 0 {
            return;
        }
        let e = Emergency {
            node: self.node,
            code: EmcyCode(code),
            register,
            manufacturer,
        };
        let mut frame = e.encode();
        if cob & 0x7FF != u32::from(cob::EMCY) + u32::from(self.node.get()) {
            frame = PdoPayload::from_slice(frame.data()).to_frame(cob as u16);
        }
        if self.emcy_pending.len() < self.emcy_pending.capacity() {
            self.emcy_pending.push_back(frame);
        }
    }

    /// The error register (0x1001).
    pub fn error_register(&self) -> ErrorRegister {
        ErrorRegister::from_bits_retain(self.od.get(self.slots.error_register) as u8)
    }

    fn send(&mut self, frame: Frame) {
        if !self.mute && !self.off_bus {
            self.outbox.push(frame);
        }
    }

    /// Checks a write to the communication objects (0x1000..=0x1FFF) for what CiA 301
    /// demands beyond type and range: PDO mappings changed only while the PDO is not valid
    /// and its mapping disabled, mapped objects that exist and are mappable, mappings that
    /// fit a frame, COB-IDs not changed while valid, no reserved transmission types.
    fn check_comm(od: &ObjectDictionary, slot: Slot, value: i64) -> Result<(), AbortCode> {
        let mux = od.entry(slot).mux();
        let (index, sub) = (mux.index, mux.sub);
        let cob_valid = |comm: u16| {
            od.value(comm, 1)
                .is_some_and(|v| (v as u32) & COB_ID_INVALID == 0)
        };
        match index {
            0x1003 if value != 0 => Err(AbortCode::InvalidValue),
            0x1400..=0x1403 | 0x1800..=0x1803 => match sub {
                1 => {
                    let old = od.get(slot) as u32;
                    let new = value as u32;
                    let Ok(parsed) = PdoCobId::from_u32(new) else {
                        return Err(AbortCode::InvalidValue);
                    };
                    if parsed.id.is_extended() {
                        return Err(AbortCode::InvalidValue);
                    }
                    let both_valid = old & COB_ID_INVALID == 0 && new & COB_ID_INVALID == 0;
                    if both_valid && (old & 0x7FF) != (new & 0x7FF) {
                        return Err(AbortCode::InvalidValue);
                    }
                    Ok(())
                }
                2 => match TransmissionType::from_u8(value as u8) {
                    Err(_) => Err(AbortCode::InvalidValue),
                    Ok(TransmissionType::SynchronousRtr | TransmissionType::EventRtr)
                        if index < 0x1800 =>
                    {
                        Err(AbortCode::InvalidValue)
                    }
                    Ok(_) => Ok(()),
                },
                _ => Ok(()),
            },
            0x1600..=0x1603 | 0x1A00..=0x1A03 => {
                let comm = index - 0x200;
                if cob_valid(comm) {
                    return Err(AbortCode::DeviceState);
                }
                let is_rpdo = index < 0x1A00;
                if sub == 0 {
                    let mut bits = 0u32;
                    for k in 1..=(value as u8).min(8) {
                        let e = MappingEntry::from_u32(od.value(index, k).unwrap_or(0) as u32);
                        check_mapped(od, e, is_rpdo)?;
                        bits += u32::from(e.bits);
                    }
                    if bits > 64 {
                        return Err(AbortCode::PdoLengthExceeded);
                    }
                    return Ok(());
                }
                if od.value(index, 0).unwrap_or(0) != 0 {
                    return Err(AbortCode::DeviceState);
                }
                if value == 0 {
                    return Ok(());
                }
                check_mapped(od, MappingEntry::from_u32(value as u32), is_rpdo)
            }
            _ => Ok(()),
        }
    }

    /// Takes in one frame from the bus at `now`. `check` is the profile's check of writes
    /// to its own entries (0x2000 on).
    pub fn on_frame(&mut self, frame: &Frame, now: Timestamp, check: WriteCheck<'_>) {
        if self.off_bus || self.state == NodeState::Initialising {
            return;
        }
        let Some(id) = frame.standard_id() else {
            return;
        };
        if frame.is_fd() || !self.listens.contains(id) {
            return;
        }
        if id == cob::NMT {
            if let Ok(msg) = NmtMessage::decode(frame) {
                if msg.target.addresses(self.node) {
                    self.on_nmt(msg.command, now);
                }
            }
            return;
        }
        if id == SDO_REQUEST + u16::from(self.node.get()) {
            if self.state.serves_sdo() && !frame.is_remote() && frame.len() == 8 {
                let combined = |od: &ObjectDictionary, s: Slot, v: i64, b: &[u8]| {
                    if od.entry(s).mux().index < 0x2000 {
                        NodeCore::check_comm(od, s, v)
                    } else {
                        check(od, s, v, b)
                    }
                };
                let served = self
                    .sdo
                    .on_request(&mut self.od, frame.data(), now, &combined);
                if let Some(slot) = served.written {
                    self.on_written(slot);
                }
                if let Some(r) = served.response {
                    self.send(r.encode(self.node));
                }
            }
            return;
        }
        if id & 0x780 == HEARTBEAT && !frame.is_remote() && frame.len() == 1 {
            let from = (id & 0x7F) as u8;
            for c in &mut self.consumers {
                if c.node == from && c.node != 0 && !c.timeout.is_zero() {
                    c.last = Some(now);
                    c.lost = false;
                }
            }
            return;
        }
        if i64::from(id) == self.od.get(self.slots.sync_cob) & 0x7FF {
            if matches!(
                self.state,
                NodeState::PreOperational | NodeState::Operational
            ) {
                self.on_sync(now);
            }
            return;
        }
        if self.state != NodeState::Operational {
            return;
        }
        if frame.is_remote() {
            for k in 0..PDOS {
                let t = self.tpdo[k];
                if t.valid && t.rtr_allowed && t.cob == id {
                    let payload = match t.transmission {
                        TransmissionType::SynchronousRtr => {
                            t.payload.unwrap_or_else(|| t.sample(&self.od))
                        }
                        _ => t.sample(&self.od),
                    };
                    self.send(payload.to_frame(t.cob));
                    self.tpdo[k].last = Some(now);
                }
            }
            return;
        }
        for k in 0..PDOS {
            if self.valid_rpdos >> k & 1 == 0 {
                continue;
            }
            // By reference: a PDO with its mapping is a few hundred bytes, and every frame
            // on the bus passes here for every node.
            let r = &self.rpdo[k];
            if r.cob != id {
                continue;
            }
            let synchronous = r.transmission.is_synchronous();
            if frame.len() < r.mapping.byte_len() {
                let register = self.error_register() | ErrorRegister::COMMUNICATION;
                self.emcy(EMCY_PDO_LENGTH, register, [0; 5]);
                continue;
            }
            let payload = PdoPayload::from_slice(frame.data());
            let r = &mut self.rpdo[k];
            r.last = Some(now);
            r.timed_out = false;
            if synchronous {
                r.payload = Some(payload);
            } else {
                self.rpdo[k].apply(&mut self.od, &payload);
                self.events.written = true;
            }
        }
    }

    fn on_written(&mut self, slot: Slot) {
        self.events.written = true;
        let mux = self.od.entry(slot).mux();
        match mux.index {
            0x1003 => {
                for s in self.slots.error_field {
                    self.od.set(s, 0);
                }
                self.od.set(self.slots.error_count, 0);
            }
            0x1005 | 0x1016 | 0x1400..=0x1BFF => self.reload(),
            0x1017 => self.next_heartbeat = None,
            _ => {}
        }
    }

    fn on_nmt(&mut self, command: NmtCommand, now: Timestamp) {
        match command {
            NmtCommand::Start => {
                if self.state != NodeState::Operational {
                    self.state = NodeState::Operational;
                    // Event-driven TPDOs send their current values on entering operational.
                    for t in &mut self.tpdo {
                        t.payload = None;
                        t.last = None;
                    }
                }
            }
            NmtCommand::Stop => self.state = NodeState::Stopped,
            NmtCommand::EnterPreOperational => self.state = NodeState::PreOperational,
            NmtCommand::ResetNode | NmtCommand::ResetCommunication => self.reset(command, now),
        }
    }

    fn on_sync(&mut self, now: Timestamp) {
        self.events.sync = true;
        if self.state != NodeState::Operational {
            return;
        }
        for k in 0..PDOS {
            // Only a valid RPDO ever holds a payload (`on_frame`).
            if self.valid_rpdos >> k & 1 == 0 {
                continue;
            }
            if let Some(p) = self.rpdo[k].payload.take() {
                self.rpdo[k].apply(&mut self.od, &p);
                self.events.written = true;
            }
        }
        for k in 0..PDOS {
            if self.valid_tpdos >> k & 1 == 0 {
                continue;
            }
            // By reference, as in on_frame: every node sees every SYNC.
            let t = &mut self.tpdo[k];
            let due = match t.transmission {
                TransmissionType::SynchronousCyclic(n) => {
                    let c = t.sync_count + 1;
                    t.sync_count = if c >= n { 0 } else { c };
                    c >= n
                }
                TransmissionType::SynchronousAcyclic => Some(t.sample(&self.od)) != t.payload,
                TransmissionType::SynchronousRtr => {
                    t.payload = Some(t.sample(&self.od));
                    false
                }
                _ => false,
            };
            if due {
                let payload = t.sample(&self.od);
                let cob = t.cob;
                t.payload = Some(payload);
                t.last = Some(now);
                self.send(payload.to_frame(cob));
            }
        }
    }

    /// Boots the device when its boot time has come; call first in each step.
    pub fn poll_boot(&mut self, now: Timestamp) {
        if let Some(at) = self.boot_at {
            if now >= at {
                self.boot_at = None;
                self.state = NodeState::PreOperational;
                self.events.booted = true;
                self.send(Heartbeat::boot_up(self.node).encode());
                let period = self.heartbeat_period();
                self.next_heartbeat = (!period.is_zero()).then(|| now + period);
            }
        }
    }

    fn heartbeat_period(&self) -> Duration {
        Duration::from_millis(self.od.get(self.slots.heartbeat) as u64)
    }

    /// Sends what is due at `now` after the profile part updated its entries: EMCYs,
    /// heartbeat, event-driven TPDOs; and watches consumed heartbeats and RPDO deadlines.
    pub fn produce(&mut self, now: Timestamp) {
        if self.state == NodeState::Initialising || self.off_bus {
            return;
        }
        if let Some(r) = self.sdo.poll(now) {
            self.send(r.encode(self.node));
        }
        let inhibit = Duration::from_micros(100 * self.od.get(self.slots.emcy_inhibit) as u64);
        while !self.emcy_pending.is_empty() {
            if self
                .emcy_last
                .is_some_and(|t| now.saturating_since(t) < inhibit)
            {
                break;
            }
            if let Some(f) = self.emcy_pending.pop_front() {
                self.send(f);
                self.emcy_last = Some(now);
            }
        }
        let period = self.heartbeat_period();
        if period.is_zero() {
            self.next_heartbeat = None;
        } else {
            match self.next_heartbeat {
                None => self.next_heartbeat = Some(now + period),
                Some(at) if now >= at => {
                    let hb = Heartbeat {
                        node: self.node,
                        state: self.state.heartbeat(),
                    };
                    self.send(hb.encode());
                    let next = at + period;
                    self.next_heartbeat = Some(if next <= now { now + period } else { next });
                }
                Some(_) => {}
            }
        }
        self.watch_consumers(now);
        if self.state != NodeState::Operational {
            return;
        }
        for k in 0..PDOS {
            if self.valid_rpdos >> k & 1 == 0 {
                continue;
            }
            let r = &self.rpdo[k];
            if !r.event_timer.is_zero() && !r.timed_out {
                if let Some(last) = r.last {
                    if now.saturating_since(last) > r.event_timer {
                        self.rpdo[k].timed_out = true;
                        let register = self.error_register() | ErrorRegister::COMMUNICATION;
                        self.emcy(EMCY_RPDO_TIMEOUT, register, [0; 5]);
                    }
                }
            }
        }
        for k in 0..PDOS {
            if self.valid_tpdos >> k & 1 == 0 {
                continue;
            }
            // By reference: a PDO is over a hundred bytes, and this runs every step.
            let t = &self.tpdo[k];
            if !matches!(
                t.transmission,
                TransmissionType::EventManufacturer | TransmissionType::EventProfile
            ) {
                continue;
            }
            let since = t.last.map(|l| now.saturating_since(l));
            if since.is_some_and(|s| s < t.inhibit) {
                continue;
            }
            let payload = t.sample(&self.od);
            let changed = t.payload != Some(payload);
            let timer = !t.event_timer.is_zero() && since.is_none_or(|s| s >= t.event_timer);
            if changed || timer {
                let cob = t.cob;
                self.send(payload.to_frame(cob));
                self.tpdo[k].payload = Some(payload);
                self.tpdo[k].last = Some(now);
            }
        }
    }

    fn watch_consumers(&mut self, now: Timestamp) {
        let mut lost = false;
        for c in &mut self.consumers {
            if let Some(last) = c.last {
                if !c.lost && now.saturating_since(last) > c.timeout {
                    c.lost = true;
                    lost = true;
                }
            }
        }
        if lost {
            self.events.heartbeat_lost = true;
            let register = self.error_register() | ErrorRegister::COMMUNICATION;
            self.emcy(EMCY_HEARTBEAT, register, [0; 5]);
            match self.od.get(self.slots.comm_error) {
                0 if self.state == NodeState::Operational => {
                    self.state = NodeState::PreOperational;
                }
                2 => self.state = NodeState::Stopped,
                _ => {}
            }
        }
    }
}

fn check_mapped(od: &ObjectDictionary, e: MappingEntry, is_rpdo: bool) -> Result<(), AbortCode> {
    let slot = od.find(takt_drivers::canopen::sdo::Multiplexer::new(e.index, e.sub))?;
    let entry = od.entry(slot);
    let access_ok = if is_rpdo {
        entry.access().writable()
    } else {
        entry.access().readable()
    };
    if !entry.is_mappable() || !access_ok || entry.data_type().bits() != Some(e.bits) {
        return Err(AbortCode::CannotBeMapped);
    }
    Ok(())
}
