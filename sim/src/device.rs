//! One simulated device: the CiA 301 [`NodeCore`] plus its profile — a CiA 402 [`Drive`] or
//! a CiA 401 [`IoNode`] — stepped in the order a real device works: frames in, application
//! update, frames out.

use core::time::Duration;

use takt_drivers::can::{Frame, Timestamp};
use takt_drivers::canopen::NodeId;
use takt_drivers::canopen::sdo::AbortCode;

use crate::drive::{Drive, DriveSpec, drive_entries};
use crate::io_node::{IoNode, io_entries};
use crate::node::{BootTimes, CommDefaults, NodeCore, comm_entries};
use crate::od::{ObjectDictionary, OdError, Slot};

/// The profile part of a device.
#[derive(Clone, Debug)]
pub enum DeviceProfile {
    /// A CiA 402 drive (boxed: it is much larger than an I/O node).
    Drive(Box<Drive>),
    /// A CiA 401 I/O node.
    Io(IoNode),
}

/// A simulated device. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Device {
    name: String,
    core: NodeCore,
    profile: DeviceProfile,
}

fn no_check(_: &ObjectDictionary, _: Slot, _: i64, _: &[u8]) -> Result<(), AbortCode> {
    Ok(())
}

fn drive_check(od: &ObjectDictionary, slot: Slot, value: i64, _: &[u8]) -> Result<(), AbortCode> {
    Drive::check_write(od, slot, value)
}

impl Device {
    /// A drive named `name` on `node`, powered on at `power_on`, its motor stepped
    /// `substeps` times per update.
    pub fn drive(
        name: &str,
        node: NodeId,
        comm: &CommDefaults,
        spec: DriveSpec,
        boot: BootTimes,
        power_on: Timestamp,
        substeps: u32,
    ) -> Result<Device, OdError> {
        let mut entries = comm_entries(node, comm);
        entries.extend(drive_entries(&spec.defaults));
        let core = NodeCore::new(node, entries, boot, power_on)?;
        let drive = Drive::new(spec, core.od(), substeps)?;
        Ok(Device {
            name: name.to_owned(),
            core,
            profile: DeviceProfile::Drive(Box::new(drive)),
        })
    }

    /// An I/O node named `name` on `node`, powered on at `power_on`.
    pub fn io(
        name: &str,
        node: NodeId,
        comm: &CommDefaults,
        boot: BootTimes,
        power_on: Timestamp,
    ) -> Result<Device, OdError> {
        let mut entries = comm_entries(node, comm);
        entries.extend(io_entries());
        let core = NodeCore::new(node, entries, boot, power_on)?;
        let io = IoNode::new(core.od())?;
        Ok(Device {
            name: name.to_owned(),
            core,
            profile: DeviceProfile::Io(io),
        })
    }

    /// The device's name in the cell.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its node-ID.
    pub fn node(&self) -> NodeId {
        self.core.node()
    }

    /// The CiA 301 part.
    pub fn core(&self) -> &NodeCore {
        &self.core
    }

    /// The CiA 301 part, for faults and tests.
    pub fn core_mut(&mut self) -> &mut NodeCore {
        &mut self.core
    }

    /// The drive, if this device is one.
    pub fn as_drive(&self) -> Option<&Drive> {
        match &self.profile {
            DeviceProfile::Drive(d) => Some(d),
            DeviceProfile::Io(_) => None,
        }
    }

    /// The drive, mutably, if this device is one.
    pub fn as_drive_mut(&mut self) -> Option<&mut Drive> {
        match &mut self.profile {
            DeviceProfile::Drive(d) => Some(d),
            DeviceProfile::Io(_) => None,
        }
    }

    /// The I/O node, if this device is one.
    pub fn as_io(&self) -> Option<&IoNode> {
        match &self.profile {
            DeviceProfile::Io(io) => Some(io),
            DeviceProfile::Drive(_) => None,
        }
    }

    /// Sets an I/O node's inputs (no effect on a drive).
    pub fn set_inputs(&mut self, bits: u8) {
        if let DeviceProfile::Io(io) = &mut self.profile {
            io.set_inputs(bits);
        }
    }

    /// An I/O node's outputs (0 for a drive).
    pub fn outputs(&self) -> u8 {
        match &self.profile {
            DeviceProfile::Io(io) => io.outputs(&self.core),
            DeviceProfile::Drive(_) => 0,
        }
    }

    /// Raises a device fault with an EMCY of `code`: a drive enters its fault reaction; an
    /// I/O node only reports it.
    pub fn raise_error(&mut self, code: u16) {
        match &mut self.profile {
            DeviceProfile::Drive(d) => d.fault(&mut self.core, code),
            DeviceProfile::Io(_) => {
                let register =
                    self.core.error_register() | takt_drivers::canopen::ErrorRegister::GENERIC;
                self.core.emcy(code, register, [0; 5]);
            }
        }
    }

    /// Boots the device when its time has come: call first in each step.
    pub fn poll_boot(&mut self, now: Timestamp) {
        self.core.poll_boot(now);
    }

    /// Takes in a frame received at `now`.
    pub fn on_frame(&mut self, frame: &Frame, now: Timestamp) {
        let check = match self.profile {
            DeviceProfile::Drive(_) => drive_check,
            DeviceProfile::Io(_) => no_check,
        };
        self.core.on_frame(frame, now, &check);
    }

    /// Runs the profile for `dt` up to `now`.
    pub fn update(&mut self, now: Timestamp, dt: Duration) {
        let events = self.core.take_events();
        match &mut self.profile {
            DeviceProfile::Drive(d) => d.update(&mut self.core, events, now, dt),
            DeviceProfile::Io(io) => io.update(&mut self.core, events),
        }
    }

    /// Queues what is due at `now` (heartbeat, EMCY, TPDOs) in the core's outbox.
    pub fn produce(&mut self, now: Timestamp) {
        self.core.produce(now);
    }

    /// The next frame the device wants to send.
    pub fn pop_frame(&mut self) -> Option<Frame> {
        self.core.outbox().pop()
    }

    /// One whole step on its own: boot, the frames received, update, produce.
    pub fn step<'a>(
        &mut self,
        received: impl IntoIterator<Item = &'a Frame>,
        now: Timestamp,
        dt: Duration,
    ) {
        self.poll_boot(now);
        for f in received {
            self.on_frame(f, now);
        }
        self.update(now, dt);
        self.produce(now);
    }
}
