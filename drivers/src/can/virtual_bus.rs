//! The virtual bus: an in-process CAN bus with any number of endpoints, for the simulator
//! and tests.
//!
//! A frame sent by one endpoint is delivered to every other endpoint (as SocketCAN delivers
//! to every other socket on an interface), stamped with the bus's current time, in the order
//! the sends happened: delivery is deterministic. Receive queues are allocated when the
//! endpoint is made and are bounded; a full queue drops the frame and reports
//! [`BusStateEvent::RxOverflow`] once, like a socket whose receive buffer overflowed. The bus
//! neither allocates nor blocks after set-up. It models no bit timing: the simulator's bus
//! model adds arbitration and transmission time on top.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    BusError, BusEvent, BusStateEvent, CanBus, Frame, SendError, Timestamp, TimestampedFrame,
};

/// Default receive-queue depth of an endpoint, in frames.
pub const DEFAULT_QUEUE_DEPTH: usize = 4096;

#[derive(Debug)]
struct Queue {
    name: String,
    open: bool,
    frames: VecDeque<TimestampedFrame>,
    /// The queue's bound; `VecDeque` may reserve more than asked, so it is kept apart.
    depth: usize,
    overflowed: bool,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Inner {
    now: Timestamp,
    queues: Vec<Queue>,
    frames_sent: u64,
}

/// An in-process CAN bus. Cloning gives another handle to the same bus.
#[derive(Clone, Debug, Default)]
pub struct VirtualBus {
    inner: Arc<Mutex<Inner>>,
}

impl VirtualBus {
    /// A bus with no endpoints, its clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queues half-updated in a way that
        // matters to a test harness, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new endpoint with the default queue depth.
    pub fn endpoint(&self, name: &str) -> VirtualEndpoint {
        self.endpoint_with_depth(name, DEFAULT_QUEUE_DEPTH)
    }

    /// A new endpoint whose receive queue holds `depth` frames.
    pub fn endpoint_with_depth(&self, name: &str, depth: usize) -> VirtualEndpoint {
        let mut inner = self.lock();
        inner.queues.push(Queue {
            name: name.to_owned(),
            open: true,
            frames: VecDeque::with_capacity(depth.max(1)),
            depth: depth.max(1),
            overflowed: false,
            dropped: 0,
        });
        VirtualEndpoint {
            bus: self.clone(),
            index: inner.queues.len() - 1,
            name: name.to_owned(),
        }
    }

    /// Sets the bus clock; frames sent from now on are stamped with `now`.
    pub fn set_time(&self, now: Timestamp) {
        self.lock().now = now;
    }

    /// The bus clock.
    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    /// Frames sent on the bus so far.
    pub fn frames_sent(&self) -> u64 {
        self.lock().frames_sent
    }

    /// Frames dropped because the named endpoint's queue was full.
    pub fn dropped(&self, endpoint: &str) -> u64 {
        self.lock()
            .queues
            .iter()
            .filter(|q| q.name == endpoint)
            .map(|q| q.dropped)
            .sum()
    }
}

/// One endpoint of a [`VirtualBus`]. Dropping it detaches it from the bus.
#[derive(Debug)]
pub struct VirtualEndpoint {
    bus: VirtualBus,
    index: usize,
    name: String,
}

impl VirtualEndpoint {
    /// The bus this endpoint is on.
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }
}

impl CanBus for VirtualEndpoint {
    fn try_recv(&mut self) -> Result<Option<BusEvent>, BusError> {
        let mut inner = self.bus.lock();
        let now = inner.now;
        let q = &mut inner.queues[self.index];
        if q.overflowed {
            q.overflowed = false;
            return Ok(Some(BusEvent::State {
                timestamp: now,
                event: BusStateEvent::RxOverflow,
            }));
        }
        Ok(q.frames.pop_front().map(BusEvent::Frame))
    }

    fn try_send(&mut self, frame: &Frame) -> Result<(), SendError> {
        let mut inner = self.bus.lock();
        let stamped = TimestampedFrame {
            timestamp: inner.now,
            frame: *frame,
        };
        inner.frames_sent += 1;
        for (i, q) in inner.queues.iter_mut().enumerate() {
            if i == self.index || !q.open {
                continue;
            }
            if q.frames.len() >= q.depth {
                q.overflowed = true;
                q.dropped += 1;
            } else {
                q.frames.push_back(stamped);
            }
        }
        Ok(())
    }

    fn interface(&self) -> &str {
        &self.name
    }
}

impl Drop for VirtualEndpoint {
    fn drop(&mut self) {
        let mut inner = self.bus.lock();
        let q = &mut inner.queues[self.index];
        q.open = false;
        q.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_endpoint_receives_in_send_order() {
        let bus = VirtualBus::new();
        let mut a = bus.endpoint("a");
        let mut b = bus.endpoint("b");
        let mut c = bus.endpoint("c");
        bus.set_time(Timestamp::from_millis(5));
        a.try_send(&Frame::standard(0x100, [1])).unwrap();
        b.try_send(&Frame::standard(0x080, [])).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| c.try_recv().unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].frame().unwrap().standard_id(), Some(0x100));
        assert_eq!(got[1].frame().unwrap().standard_id(), Some(0x080));
        assert_eq!(got[0].timestamp(), Timestamp::from_millis(5));
        // The sender does not hear itself.
        assert_eq!(
            a.try_recv()
                .unwrap()
                .unwrap()
                .frame()
                .unwrap()
                .standard_id(),
            Some(0x080)
        );
        assert!(a.try_recv().unwrap().is_none());
    }

    #[test]
    fn a_full_queue_drops_and_reports_overflow_once() {
        let bus = VirtualBus::new();
        let mut tx = bus.endpoint("tx");
        let mut rx = bus.endpoint_with_depth("rx", 2);
        for i in 0..5u8 {
            tx.try_send(&Frame::standard(0x200, [i])).unwrap();
        }
        assert_eq!(bus.dropped("rx"), 3);
        assert!(matches!(
            rx.try_recv().unwrap(),
            Some(BusEvent::State {
                event: BusStateEvent::RxOverflow,
                ..
            })
        ));
        assert_eq!(
            rx.try_recv().unwrap().unwrap().frame().unwrap().data(),
            &[0]
        );
        assert_eq!(
            rx.try_recv().unwrap().unwrap().frame().unwrap().data(),
            &[1]
        );
        assert!(rx.try_recv().unwrap().is_none());
    }

    #[test]
    fn a_dropped_endpoint_no_longer_queues() {
        let bus = VirtualBus::new();
        let mut tx = bus.endpoint("tx");
        let rx = bus.endpoint("rx");
        drop(rx);
        tx.try_send(&Frame::standard(0x1, [])).unwrap();
        assert_eq!(bus.dropped("rx"), 0);
    }
}
