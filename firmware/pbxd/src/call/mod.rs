//! Call control: the B2BUA that connects the office's phones (issue 3).
//!
//! - [`core`]: calls as sans-IO state: legs, forks, media session, records
//! - [`dialog`]: one SIP dialog of a leg (sec. 12)
//! - [`ids`]: tags, branches and Call-IDs
//! - [`trunk`]: where external and emergency calls go

pub mod core;
pub mod dialog;
pub mod ids;
#[cfg(test)]
mod tests;
pub mod trunk;

pub use self::core::{
    CallConfig, CallContext, CallControl, CallDirection, CallDirectory, CallId, CallOutput,
    CallServices, CallSummary, Disposition, ExtensionProfile, Hangup, MediaControl, Side, Sound,
    ALLOW,
};
