//! Service data objects (CiA 301 §7.2.4): confirmed access to one object dictionary entry of
//! one device, the controller being the client and each device a server.
//!
//! - [`abort`]: the abort codes (§7.2.4.3, table "SDO abort codes").
//! - [`frames`]: the protocol frames of §7.2.4.3, both directions, typed and byte-exact.
//! - [`client`]: the client as a non-blocking state machine for the cycle.
//! - [`blocking`]: one transfer run to completion over any bus, for commissioning tools.

pub mod abort;
pub mod blocking;
pub mod client;
pub mod frames;

pub use abort::AbortCode;
pub use blocking::BlockingSdoError;
pub use client::{
    DEFAULT_TIMEOUT, SdoClient, SdoDirection, SdoDone, SdoError, SdoErrorKind, SdoOutcome,
    SdoStartError,
};
pub use frames::{ExpeditedData, InitiateData, Multiplexer, SdoRequest, SdoResponse, SegmentData};
