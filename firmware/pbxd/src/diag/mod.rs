//! Diagnostics for support requests: the last log lines kept in memory ([`log_tail`])
//! and a plain tar writer for the support bundle ([`tar`]).

pub mod log_tail;
pub mod tar;
