//! `pbx-sip`: the SIP protocol core of pbxd, in the sans-IO style of quinn-proto.
//!
//! Nothing in this crate touches a socket, a thread or a clock: messages come in as
//! bytes, time comes in as an argument, and what must be sent (and when the next timer
//! fires) comes out of `poll_*` methods. The daemon's `sip` module owns the I/O.
//!
//! - [`message`]: RFC 3261 sec. 25 parser and serializer, typed headers, and the mapping
//!   of malformed input to SIP responses.
//! - [`transaction`]: client and server transactions (RFC 3261 sec. 17, RFC 6026).
//! - [`auth`]: digest authentication (RFC 7616, RFC 8760), server and client side.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod message;
pub mod transaction;
