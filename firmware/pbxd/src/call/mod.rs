//! Call control: calls between parties, whatever carries them (issue 3).
//!
//! - [`leg`]: what call control knows of a leg: events in, commands out, causes
//! - [`core`]: calls as sans-IO state: routing, forwarding, groups, pickup, transfer,
//!   features, media session, records
//! - [`trunk`]: where external and emergency calls go
//!
//! Call control speaks no SIP: `sip::ua` is the SIP user agent that turns dialogs
//! into legs.

pub mod core;
pub mod leg;
#[cfg(test)]
mod tests;
pub mod trunk;

pub use self::core::{
    is_emergency, CallConfig, CallControl, CallDirection, CallDirectory, CallId, CallServices,
    CallSummary, Disposition, ExtensionProfile, Hangup, MediaControl, Side, Sound,
};
pub use self::leg::{
    Cause, CauseKind, Gone, LegEvent, LegId, Legs, MediaPort, Party, RingTarget, TransferStatus,
};
