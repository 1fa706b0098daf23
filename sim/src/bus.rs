//! The timed CAN bus model (ISO 11898-1 at the frame level).
//!
//! Every endpoint (each device on the bus, and the controller) has a transmit FIFO, as a
//! SocketCAN interface or a simple CAN controller does. Whenever the bus is idle, the head
//! frames of all queues that are ready arbitrate, and the lowest identifier wins
//! ([`CanId::arbitration_key`](takt_drivers::can::CanId::arbitration_key)). The winner
//! occupies the bus for its worst-case stuffed length including the interframe space
//! ([`Frame::worst_case_bits`], as Linux `can/length.h` counts it) at the bus's bit rate;
//! receivers get it when its last bit (end of frame, before the interframe space) has
//! passed. So an overloaded bus shows up as frames that leave late — measured per bus as
//! queueing latency — and as bus load.
//!
//! Frame faults act here: a matching frame can be dropped (it never reaches the wire),
//! delayed (it waits on a delay line before arbitrating), corrupted (its data bytes are
//! altered on the wire, undetected), or destroyed by a bus error (an error frame cuts it
//! off halfway and the transmitter sends it again, as CAN does). Bus errors move the
//! controller interface's error counters (ISO 11898-1 fault confinement: +8 for a
//! transmitter, +1 for a receiver, −1 per good frame) through error warning (96) and
//! error passive (128) to bus-off (above 255), which the controller hears of as bus-state
//! events. Everything is sized at construction; stepping allocates nothing.

use core::time::Duration;
use std::collections::VecDeque;

use takt_drivers::can::{
    BusError, BusEvent, BusState, BusStateEvent, CanBus, ErrorCounters, Frame, SendError,
    Timestamp, TimestampedFrame,
};

use crate::rng::SimRng;

/// Frames each endpoint's transmit queue holds.
pub const TX_QUEUE_DEPTH: usize = 256;
/// Frames in flight to receivers the bus holds.
pub const DELIVERY_DEPTH: usize = 4096;
/// Frame faults active at once on one bus.
pub const MAX_FRAME_FAULTS: usize = 16;
/// Window over which the peak bus load is measured.
pub const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// What a frame fault does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrameAction {
    /// The frame never reaches the wire.
    Drop,
    /// The frame waits this long before it arbitrates.
    Delay(Duration),
    /// The frame's data bytes are altered on the wire (a random non-zero XOR per byte).
    Corrupt,
    /// An error frame destroys the frame halfway; its sender tries again.
    Error,
}

/// Bits an error frame adds after the point of the error: error flag and its echo (up to
/// 12) and the error delimiter (8).
pub const ERROR_FRAME_BITS: u32 = 20;
/// How long the controller interface stays bus-off after its counters drove it there
/// before it restarts (SocketCAN's `restart-ms`).
pub const RESTART_AFTER_BUS_OFF: Duration = Duration::from_millis(100);

/// Something that happened on the wire, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire<'a> {
    /// A frame went over the wire.
    Frame(&'a Delivery),
    /// The controller interface reported a bus error or changed its error state.
    State {
        /// When.
        at: Timestamp,
        /// What.
        event: BusStateEvent,
    },
}

/// A frame fault: frames whose id matches `id & mask`, with `probability`, until `until`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameFault {
    /// Identifier to match after masking.
    pub id: u16,
    /// Mask applied to frame identifiers before comparing.
    pub mask: u16,
    /// Chance that a matching frame is hit.
    pub probability: f64,
    /// What happens to it.
    pub action: FrameAction,
    /// End of the fault (exclusive); `None`: to the end of the run.
    pub until: Option<Timestamp>,
    /// A tag that names the fault in reports.
    pub tag: u32,
}

impl FrameFault {
    fn matches(&self, frame: &Frame) -> bool {
        frame
            .standard_id()
            .is_some_and(|id| id & self.mask == self.id & self.mask)
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    frame: Frame,
    ready_at: Timestamp,
    /// Endpoint that sent it (for the delay line: the original sender).
    from: usize,
    /// Already went through the frame faults (a delayed frame is not hit twice).
    faulted: bool,
}

/// A frame on its way to the receivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// When its last bit passed.
    pub at: Timestamp,
    /// The frame as it was on the wire.
    pub frame: Frame,
    /// The sending endpoint.
    pub from: usize,
}

/// What the frame faults did on one bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Frames dropped.
    pub dropped: u64,
    /// Frames delayed.
    pub delayed: u64,
    /// Frames corrupted.
    pub corrupted: u64,
    /// Frames destroyed by bus errors (each retransmitted).
    pub bus_errors: u64,
}

/// Measurements of one bus.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BusStats {
    /// Frames that went over the wire.
    pub frames: u64,
    /// Time the bus was occupied, ns.
    pub busy_ns: u64,
    /// Time observed, ns.
    pub elapsed_ns: u64,
    /// Highest load over any [`LOAD_WINDOW`], 0..=1.
    pub peak_window_load: f64,
    /// Longest a frame waited between being queued and starting on the wire.
    pub max_latency: Duration,
    /// Sum of all queueing latencies, ns (mean = this / frames).
    pub total_latency_ns: u64,
    /// Frames refused because a transmit queue was full.
    pub tx_overflows: u64,
    /// Frames lost because the controller's receive queue was full.
    pub rx_overflows: u64,
    /// Frame fault effects.
    pub faults: FaultCounts,
}

impl BusStats {
    /// Load over the whole run, 0..=1.
    pub fn load(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.busy_ns as f64 / self.elapsed_ns as f64
        }
    }

    /// Mean queueing latency.
    pub fn mean_latency(&self) -> Duration {
        Duration::from_nanos(self.total_latency_ns.checked_div(self.frames).unwrap_or(0))
    }
}

/// One simulated CAN bus. Endpoint 0 is the controller; devices are 1.. in the order they
/// were attached.
#[derive(Debug)]
pub struct TimedBus {
    name: String,
    bitrate: u32,
    free_at: Timestamp,
    observed_until: Timestamp,
    queues: Vec<VecDeque<Pending>>,
    /// Depth of each endpoint's transmit queue (the controller's may differ).
    depths: Vec<usize>,
    delay_line: VecDeque<Pending>,
    deliveries: VecDeque<Delivery>,
    faults: Vec<FrameFault>,
    stats: BusStats,
    window_start: Timestamp,
    window_busy_ns: u64,
    // The controller's end.
    inbox: VecDeque<BusEvent>,
    inbox_overflowed: bool,
    controller_state: BusState,
    controller_off_until: Option<Timestamp>,
    tec: u16,
    rec: u16,
    now: Timestamp,
}

impl TimedBus {
    /// A bus named `name` (as traces record it) at `bitrate` bit/s with `devices` device
    /// endpoints besides the controller's.
    pub fn new(name: &str, bitrate: u32, devices: usize) -> TimedBus {
        TimedBus::with_controller_queue(name, bitrate, devices, TX_QUEUE_DEPTH)
    }

    /// A bus whose controller end queues at most `controller_queue` frames for
    /// transmission, as a SocketCAN interface's `txqueuelen` bounds it (more are refused
    /// with [`SendError::WouldBlock`]).
    pub fn with_controller_queue(
        name: &str,
        bitrate: u32,
        devices: usize,
        controller_queue: usize,
    ) -> TimedBus {
        let depths: Vec<usize> = (0..=devices)
            .map(|i| {
                if i == 0 {
                    controller_queue.max(1)
                } else {
                    TX_QUEUE_DEPTH
                }
            })
            .collect();
        let queues = depths.iter().map(|&d| VecDeque::with_capacity(d)).collect();
        TimedBus {
            name: name.to_owned(),
            bitrate: bitrate.max(1),
            free_at: Timestamp::ZERO,
            observed_until: Timestamp::ZERO,
            queues,
            depths,
            delay_line: VecDeque::with_capacity(TX_QUEUE_DEPTH),
            deliveries: VecDeque::with_capacity(DELIVERY_DEPTH),
            faults: Vec::with_capacity(MAX_FRAME_FAULTS),
            stats: BusStats::default(),
            window_start: Timestamp::ZERO,
            window_busy_ns: 0,
            inbox: VecDeque::with_capacity(DELIVERY_DEPTH),
            inbox_overflowed: false,
            controller_state: BusState::ErrorActive,
            controller_off_until: None,
            tec: 0,
            rec: 0,
            now: Timestamp::ZERO,
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bit rate, bit/s.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Measurements so far.
    pub fn stats(&self) -> BusStats {
        self.stats
    }

    /// Time `frame` occupies the wire, interframe space included.
    pub fn frame_time(&self, frame: &Frame) -> Duration {
        self.bits_time(frame.worst_case_bits())
    }

    fn bits_time(&self, bits: u32) -> Duration {
        Duration::from_nanos(u64::from(bits) * 1_000_000_000 / u64::from(self.bitrate))
    }

    /// Queues `frame` from `endpoint`, ready to arbitrate at `at`. A full queue refuses it.
    pub fn submit(&mut self, endpoint: usize, frame: Frame, at: Timestamp) -> bool {
        let Some(q) = self.queues.get_mut(endpoint) else {
            return false;
        };
        if q.len() >= self.depths[endpoint] {
            self.stats.tx_overflows += 1;
            return false;
        }
        q.push_back(Pending {
            frame,
            ready_at: at,
            from: endpoint,
            faulted: false,
        });
        true
    }

    /// Adds a frame fault; returns false when [`MAX_FRAME_FAULTS`] are active.
    pub fn add_fault(&mut self, fault: FrameFault) -> bool {
        if self.faults.len() >= MAX_FRAME_FAULTS {
            return false;
        }
        self.faults.push(fault);
        true
    }

    /// Removes the frame fault tagged `tag`.
    pub fn remove_fault(&mut self, tag: u32) {
        self.faults.retain(|f| f.tag != tag);
    }

    /// Empties `endpoint`'s transmit queue (a node going bus-off loses what it had queued).
    pub fn flush(&mut self, endpoint: usize) {
        if let Some(q) = self.queues.get_mut(endpoint) {
            q.clear();
        }
    }

    /// Runs the bus up to `until`: every transmission that starts before it. Frames put on
    /// the wire are handed to `on_wire` (for traces) and queued for delivery.
    pub fn advance(
        &mut self,
        until: Timestamp,
        rng: &mut SimRng,
        on_wire: &mut impl FnMut(Wire<'_>),
    ) {
        loop {
            // The earliest moment any head frame is ready.
            let mut earliest: Option<Timestamp> = None;
            for q in self.queues.iter().chain(core::iter::once(&self.delay_line)) {
                if let Some(p) = q.front() {
                    earliest = Some(earliest.map_or(p.ready_at, |e| e.min(p.ready_at)));
                }
            }
            let Some(earliest) = earliest else { break };
            let start = earliest.max(self.free_at);
            if start >= until {
                break;
            }
            // Arbitration among every head ready at `start`.
            let mut winner: Option<(u64, usize)> = None;
            let n = self.queues.len();
            for i in 0..=n {
                let head = if i < n {
                    self.queues[i].front()
                } else {
                    self.delay_line.front()
                };
                if let Some(p) = head {
                    if p.ready_at <= start {
                        let key = p.frame.id().arbitration_key();
                        if winner.is_none_or(|(k, _)| key < k) {
                            winner = Some((key, i));
                        }
                    }
                }
            }
            let Some((_, q)) = winner else { break };
            let popped = if q < n {
                self.queues[q].pop_front()
            } else {
                self.delay_line.pop_front()
            };
            let Some(mut p) = popped else { break };
            if !p.faulted {
                p.faulted = true;
                match self.apply_faults(&mut p, start, rng) {
                    Some(FrameAction::Drop) => continue,
                    Some(FrameAction::Error) => {
                        self.bus_error(start, &p, on_wire);
                        // The sender tries again at once, and the fault may hit again.
                        p.faulted = false;
                        if q < n {
                            self.queues[q].push_front(p);
                        } else {
                            self.delay_line.push_front(p);
                        }
                        continue;
                    }
                    Some(FrameAction::Delay(d)) => {
                        p.ready_at = start + d;
                        // The delay line stays sorted by release time.
                        let at = self
                            .delay_line
                            .iter()
                            .position(|q| q.ready_at > p.ready_at)
                            .unwrap_or(self.delay_line.len());
                        if self.delay_line.len() < TX_QUEUE_DEPTH {
                            self.delay_line.insert(at, p);
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let bits = p.frame.worst_case_bits();
            let duration = self.bits_time(bits);
            let end_of_frame = start + self.bits_time(bits.saturating_sub(3));
            self.free_at = start + duration;
            let latency = start.saturating_since(p.ready_at);
            self.stats.frames += 1;
            self.stats.busy_ns += duration.as_nanos() as u64;
            self.stats.total_latency_ns += latency.as_nanos() as u64;
            self.stats.max_latency = self.stats.max_latency.max(latency);
            self.account_window(start, duration);
            let d = Delivery {
                at: end_of_frame,
                frame: p.frame,
                from: p.from,
            };
            on_wire(Wire::Frame(&d));
            if self.tec > 0 || self.rec > 0 {
                if p.from == 0 {
                    self.tec = self.tec.saturating_sub(1);
                } else {
                    self.rec = self.rec.saturating_sub(1);
                }
                self.update_error_state(end_of_frame, on_wire);
            }
            if self.deliveries.len() < DELIVERY_DEPTH {
                self.deliveries.push_back(d);
            }
        }
        // Faults that ended within this window acted on the frames before their end only.
        self.faults.retain(|f| f.until.is_none_or(|u| u > until));
        if until > self.observed_until {
            self.stats.elapsed_ns += until.saturating_since(self.observed_until).as_nanos() as u64;
            self.observed_until = until;
        }
    }

    /// An error frame destroys `p` at `start`: bus time, counters, events.
    fn bus_error(&mut self, start: Timestamp, p: &Pending, on_wire: &mut impl FnMut(Wire<'_>)) {
        let bits = p.frame.worst_case_bits() / 2 + ERROR_FRAME_BITS;
        let duration = self.bits_time(bits);
        self.free_at = start + duration;
        self.stats.busy_ns += duration.as_nanos() as u64;
        self.stats.faults.bus_errors += 1;
        self.account_window(start, duration);
        if self.controller_state == BusState::BusOff {
            return;
        }
        if p.from == 0 {
            self.tec += 8;
        } else {
            self.rec = (self.rec + 1).min(255);
        }
        let at = start + duration;
        let event = BusStateEvent::ProtocolError {
            counters: Some(self.counters()),
        };
        self.push_state(at, event);
        on_wire(Wire::State { at, event });
        self.update_error_state(at, on_wire);
    }

    fn counters(&self) -> ErrorCounters {
        ErrorCounters {
            tx: self.tec.min(255) as u8,
            rx: self.rec.min(255) as u8,
        }
    }

    /// Moves the controller interface to the state its counters call for (ISO 11898-1
    /// fault confinement), reporting a change.
    fn update_error_state(&mut self, at: Timestamp, on_wire: &mut impl FnMut(Wire<'_>)) {
        let worst = self.tec.max(self.rec);
        let state = if self.tec > 255 {
            BusState::BusOff
        } else if worst >= 128 {
            BusState::ErrorPassive
        } else if worst >= 96 {
            BusState::ErrorWarning
        } else {
            BusState::ErrorActive
        };
        if state == self.controller_state || self.controller_state == BusState::BusOff {
            return;
        }
        if state == BusState::BusOff {
            let event = self.controller_bus_off(at, at + RESTART_AFTER_BUS_OFF);
            on_wire(Wire::State { at, event });
            return;
        }
        self.controller_state = state;
        let event = BusStateEvent::StateChanged {
            state,
            counters: Some(self.counters()),
        };
        self.push_state(at, event);
        on_wire(Wire::State { at, event });
    }

    fn account_window(&mut self, start: Timestamp, duration: Duration) {
        if start.saturating_since(self.window_start) >= LOAD_WINDOW {
            let load = self.window_busy_ns as f64 / LOAD_WINDOW.as_nanos() as f64;
            self.stats.peak_window_load = self.stats.peak_window_load.max(load);
            self.window_start = start;
            self.window_busy_ns = 0;
        }
        self.window_busy_ns += duration.as_nanos() as u64;
    }

    fn apply_faults(
        &mut self,
        p: &mut Pending,
        start: Timestamp,
        rng: &mut SimRng,
    ) -> Option<FrameAction> {
        for f in &self.faults {
            let active = f.until.is_none_or(|u| start < u);
            if !active || !f.matches(&p.frame) || !rng.chance(f.probability) {
                continue;
            }
            match f.action {
                FrameAction::Drop => self.stats.faults.dropped += 1,
                FrameAction::Delay(_) => self.stats.faults.delayed += 1,
                // Counted when the error frame goes on the wire.
                FrameAction::Error => {}
                FrameAction::Corrupt => {
                    self.stats.faults.corrupted += 1;
                    let mut data = [0u8; 8];
                    let n = p.frame.len().min(8);
                    data[..n].copy_from_slice(&p.frame.data()[..n]);
                    let noise = rng.next_u64().to_le_bytes();
                    for (b, x) in data.iter_mut().zip(noise) {
                        // Never XOR with 0: every byte really changes.
                        *b ^= x | 1;
                    }
                    if let Ok(f) = Frame::new(p.frame.id(), &data[..n]) {
                        p.frame = f;
                    }
                }
            }
            return Some(f.action);
        }
        None
    }

    /// The next delivery whose last bit passed by `now`.
    pub fn pop_delivery(&mut self, now: Timestamp) -> Option<Delivery> {
        match self.deliveries.front() {
            Some(d) if d.at <= now => self.deliveries.pop_front(),
            _ => None,
        }
    }

    /// Hands a delivered frame to the controller's receive queue.
    pub fn to_controller(&mut self, d: &Delivery) {
        if d.from == 0 || self.controller_state == BusState::BusOff {
            return;
        }
        if self.inbox.len() < DELIVERY_DEPTH {
            self.inbox.push_back(BusEvent::Frame(TimestampedFrame {
                timestamp: d.at,
                frame: d.frame,
            }));
        } else {
            // Like a socket whose receive buffer overflowed: frames are lost, and the
            // controller hears of it once it has drained the queue.
            self.stats.rx_overflows += 1;
            self.inbox_overflowed = true;
        }
    }

    /// Sets the controller's clock (frames it sends now are ready at `now`), and ends a
    /// bus-off episode that is over.
    pub fn set_now(&mut self, now: Timestamp) -> Option<BusStateEvent> {
        self.now = now;
        if let Some(until) = self.controller_off_until {
            if now >= until {
                self.controller_off_until = None;
                self.controller_state = BusState::ErrorActive;
                self.tec = 0;
                self.rec = 0;
                self.push_state(now, BusStateEvent::Restarted);
                return Some(BusStateEvent::Restarted);
            }
        }
        None
    }

    /// Puts the controller's interface bus-off until `until`.
    pub fn controller_bus_off(&mut self, now: Timestamp, until: Timestamp) -> BusStateEvent {
        self.controller_state = BusState::BusOff;
        self.controller_off_until = Some(until);
        self.queues[0].clear();
        let event = BusStateEvent::StateChanged {
            state: BusState::BusOff,
            counters: None,
        };
        self.push_state(now, event);
        event
    }

    fn push_state(&mut self, at: Timestamp, event: BusStateEvent) {
        if self.inbox.len() < DELIVERY_DEPTH {
            self.inbox.push_back(BusEvent::State {
                timestamp: at,
                event,
            });
        }
    }

    /// The controller's end of the bus, as a [`CanBus`].
    pub fn controller(&mut self) -> ControllerPort<'_> {
        ControllerPort { bus: self }
    }
}

/// The controller's end of a [`TimedBus`]: what the cycle under test talks to.
#[derive(Debug)]
pub struct ControllerPort<'a> {
    bus: &'a mut TimedBus,
}

impl ControllerPort<'_> {
    /// True while the controller's interface is bus-off (the state a SocketCAN interface
    /// reports through its error frames and netlink).
    pub fn is_bus_off(&self) -> bool {
        self.bus.controller_state == BusState::BusOff
    }
}

impl CanBus for ControllerPort<'_> {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError> {
        let event = self.bus.inbox.pop_front();
        if event.is_none() && self.bus.inbox_overflowed {
            self.bus.inbox_overflowed = false;
            return Ok(Some(BusEvent::State {
                timestamp: self.bus.now,
                event: BusStateEvent::RxOverflow,
            }));
        }
        Ok(event)
    }

    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError> {
        if self.bus.controller_state == BusState::BusOff {
            return Err(SendError::BusDown);
        }
        let now = self.bus.now;
        if self.bus.submit(0, *frame, now) {
            Ok(())
        } else {
            Err(SendError::WouldBlock)
        }
    }

    fn interface(&self) -> &str {
        &self.bus.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bus: &mut TimedBus, until_us: u64) -> Vec<Delivery> {
        let mut rng = SimRng::new(1);
        let mut out = Vec::new();
        bus.advance(Timestamp::from_micros(until_us), &mut rng, &mut |w| {
            if let Wire::Frame(d) = w {
                out.push(*d);
            }
        });
        out
    }

    #[test]
    fn lower_ids_win_and_frames_take_their_worst_case_time() {
        let mut bus = TimedBus::new("can0", 1_000_000, 2);
        let t0 = Timestamp::ZERO;
        bus.submit(1, Frame::standard(0x181, [0; 8]), t0);
        bus.submit(2, Frame::standard(0x080, []), t0);
        bus.submit(0, Frame::standard(0x601, [0; 8]), t0);
        let out = run(&mut bus, 1000);
        let ids: Vec<_> = out.iter().map(|d| d.frame.standard_id().unwrap()).collect();
        assert_eq!(ids, [0x080, 0x181, 0x601]);
        // SYNC: 55 bits, delivered after 52 (its interframe space is not waited for).
        assert_eq!(out[0].at, Timestamp::from_micros(52));
        // 0x181 starts at 55 µs and takes 135: its last bit at 55 + 132.
        assert_eq!(out[1].at, Timestamp::from_micros(55 + 132));
        assert_eq!(out[2].at, Timestamp::from_micros(55 + 135 + 132));
        assert_eq!(bus.stats().busy_ns, (55 + 135 + 135) * 1000);
        assert_eq!(bus.stats().max_latency, Duration::from_micros(190));
    }

    #[test]
    fn a_frame_that_starts_after_the_horizon_waits() {
        let mut bus = TimedBus::new("can0", 500_000, 1);
        bus.submit(1, Frame::standard(0x181, [0; 8]), Timestamp::ZERO);
        bus.submit(1, Frame::standard(0x181, [1; 8]), Timestamp::ZERO);
        let out = run(&mut bus, 100);
        assert_eq!(out.len(), 1, "only the first starts before 100 µs");
        assert_eq!(out[0].at, Timestamp::from_micros(264));
        assert_eq!(bus.pop_delivery(Timestamp::from_micros(263)), None);
        assert!(bus.pop_delivery(Timestamp::from_micros(264)).is_some());
        let out = run(&mut bus, 1000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].at, Timestamp::from_micros(270 + 264));
    }

    #[test]
    fn the_controller_queue_pushes_back_and_a_full_inbox_reports_overflow() {
        let mut bus = TimedBus::with_controller_queue("can0", 1_000_000, 1, 2);
        let mut port = bus.controller();
        port.try_send(&Frame::standard(0x601, [0; 8])).unwrap();
        port.try_send(&Frame::standard(0x601, [0; 8])).unwrap();
        assert!(matches!(
            port.try_send(&Frame::standard(0x601, [0; 8])),
            Err(SendError::WouldBlock)
        ));
        for k in 0..DELIVERY_DEPTH + 3 {
            bus.to_controller(&Delivery {
                at: Timestamp::from_micros(k as u64),
                frame: Frame::standard(0x181, [1]),
                from: 1,
            });
        }
        assert_eq!(bus.stats().rx_overflows, 3);
        let mut port = bus.controller();
        let mut frames = 0;
        let mut last = None;
        while let Some(e) = port.try_recv().unwrap() {
            match e {
                BusEvent::Frame(_) => frames += 1,
                BusEvent::State { event, .. } => last = Some(event),
            }
        }
        assert_eq!(frames, DELIVERY_DEPTH);
        assert_eq!(last, Some(BusStateEvent::RxOverflow));
    }

    #[test]
    fn bus_errors_retransmit_and_drive_the_controller_to_bus_off() {
        let mut bus = TimedBus::new("can0", 1_000_000, 1);
        bus.add_fault(FrameFault {
            id: 0x181,
            mask: 0x7FF,
            probability: 1.0,
            action: FrameAction::Error,
            until: Some(Timestamp::from_micros(500)),
            tag: 1,
        });
        bus.submit(1, Frame::standard(0x181, [0; 8]), Timestamp::ZERO);
        let out = run(&mut bus, 2000);
        // Destroyed until the fault ends at 500 µs, then it gets through.
        assert_eq!(out.len(), 1);
        assert!(out[0].at > Timestamp::from_micros(500));
        let errors = bus.stats().faults.bus_errors;
        assert!(errors >= 5, "{errors}");
        // As a receiver, the controller's REC went up by one per error.
        let mut port = bus.controller();
        let mut protocol = 0;
        while let Some(e) = port.try_recv().unwrap() {
            if let BusEvent::State {
                event: BusStateEvent::ProtocolError { counters },
                ..
            } = e
            {
                protocol += 1;
                assert_eq!(counters.unwrap().tx, 0);
            }
        }
        assert_eq!(protocol, errors);

        // The controller's own frames destroyed: +8 each, warning, passive, bus-off.
        let mut bus = TimedBus::new("can0", 1_000_000, 1);
        bus.add_fault(FrameFault {
            id: 0x601,
            mask: 0x7FF,
            probability: 1.0,
            action: FrameAction::Error,
            until: None,
            tag: 1,
        });
        bus.controller()
            .try_send(&Frame::standard(0x601, [0; 8]))
            .unwrap();
        let mut states = Vec::new();
        let mut rng = SimRng::new(1);
        bus.advance(Timestamp::from_millis(10), &mut rng, &mut |w| {
            if let Wire::State {
                event: BusStateEvent::StateChanged { state, .. },
                ..
            } = w
            {
                states.push(state);
            }
        });
        assert_eq!(
            states,
            [
                BusState::ErrorWarning,
                BusState::ErrorPassive,
                BusState::BusOff
            ]
        );
        assert!(matches!(
            bus.controller().try_send(&Frame::standard(0x601, [0; 8])),
            Err(SendError::BusDown)
        ));
        assert_eq!(
            bus.set_now(Timestamp::from_millis(200)),
            Some(BusStateEvent::Restarted)
        );
    }

    #[test]
    fn faults_drop_delay_and_corrupt() {
        let mut bus = TimedBus::new("can0", 1_000_000, 1);
        let fault = |action, id| FrameFault {
            id,
            mask: 0x7FF,
            probability: 1.0,
            action,
            until: None,
            tag: id.into(),
        };
        bus.add_fault(fault(FrameAction::Drop, 0x181));
        bus.add_fault(fault(FrameAction::Delay(Duration::from_millis(5)), 0x281));
        bus.add_fault(fault(FrameAction::Corrupt, 0x381));
        for id in [0x181, 0x281, 0x381] {
            bus.submit(1, Frame::standard(id, [0x55; 4]), Timestamp::ZERO);
        }
        let out = run(&mut bus, 10_000);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].frame.standard_id(), Some(0x381));
        assert!(out[0].frame.data().iter().all(|&b| b != 0x55));
        assert_eq!(out[1].frame.standard_id(), Some(0x281));
        assert!(out[1].at > Timestamp::from_millis(5));
        let s = bus.stats().faults;
        assert_eq!((s.dropped, s.delayed, s.corrupted), (1, 1, 1));
    }
}
