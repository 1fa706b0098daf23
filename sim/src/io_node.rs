//! A simulated CiA 401 digital I/O node: eight digital inputs in 0x6000:01 and eight
//! digital outputs in 0x6200:01, exchanged by PDO (TPDO1 inputs on change, RPDO1 outputs by
//! default). On a communication error (a consumed heartbeat lost) the outputs go to their
//! error values: for each bit set in the error mode 0x6206:01 the output takes the bit of
//! the error value 0x6207:01 (CiA 401 §6.3), so a vacuum valve drops out when the
//! controller dies.
//!
//! The world sets the inputs and reads the outputs; which bit is which signal is the
//! cell's wiring.

use crate::node::{CoreEvents, NodeCore};
use crate::od::{Access, DataType, Entry, ObjectDictionary, OdError, Slot};

/// The CiA 401 entries of an 8-in / 8-out node.
pub fn io_entries() -> Vec<Entry> {
    use Access::{Const, ReadOnly, ReadWrite};
    use DataType::Unsigned8 as U8;
    vec![
        Entry::new(0x6000, 0, "read inputs 8-bit", U8, Const, 1),
        Entry::new(0x6000, 1, "digital inputs 1-8", U8, ReadOnly, 0).mappable(),
        Entry::new(0x6200, 0, "write outputs 8-bit", U8, Const, 1),
        Entry::new(0x6200, 1, "digital outputs 1-8", U8, ReadWrite, 0).mappable(),
        Entry::new(0x6206, 0, "error mode outputs 8-bit", U8, Const, 1),
        Entry::new(0x6206, 1, "error mode outputs 1-8", U8, ReadWrite, 0xFF),
        Entry::new(0x6207, 0, "error value outputs 8-bit", U8, Const, 1),
        Entry::new(0x6207, 1, "error value outputs 1-8", U8, ReadWrite, 0),
    ]
}

/// A simulated I/O node. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct IoNode {
    inputs: Slot,
    outputs: Slot,
    error_mode: Slot,
    error_value: Slot,
    input_bits: u8,
}

impl IoNode {
    /// The node, its slots resolved in `od` (which must hold [`io_entries`]).
    pub fn new(od: &ObjectDictionary) -> Result<IoNode, OdError> {
        Ok(IoNode {
            inputs: od.require(0x6000, 1)?,
            outputs: od.require(0x6200, 1)?,
            error_mode: od.require(0x6206, 1)?,
            error_value: od.require(0x6207, 1)?,
            input_bits: 0,
        })
    }

    /// Sets the inputs as the world sees them (published in the next update).
    pub fn set_inputs(&mut self, bits: u8) {
        self.input_bits = bits;
    }

    /// The inputs last set.
    pub fn inputs(&self) -> u8 {
        self.input_bits
    }

    /// The outputs as the controller (or the error reaction) last set them.
    pub fn outputs(&self, core: &NodeCore) -> u8 {
        core.od().get(self.outputs) as u8
    }

    /// One update after the core took in this step's frames.
    pub fn update(&mut self, core: &mut NodeCore, events: CoreEvents) {
        let od = core.od_mut();
        if events.heartbeat_lost || events.bus_off {
            let mask = od.get(self.error_mode) as u8;
            let value = od.get(self.error_value) as u8;
            let out = od.get(self.outputs) as u8;
            od.set(self.outputs, i64::from((out & !mask) | (value & mask)));
        }
        od.set(self.inputs, i64::from(self.input_bits));
    }
}
