//! pbxd: the office PBX daemon. `main.rs` wires the pieces; each module owns one concern.
//!
//! - [`sip`]: the SIP endpoint core and its tokio shell (UDP, TCP)
//! - [`registrar`]: the local registrar core (bindings, digest auth)
//! - [`store`]: SQLite, the only module with SQL
//! - [`persist`]: the store writer thread
//! - [`web`]: the HTTP status API (the web UI grows here)
//! - [`tls`]: the device's TLS identity
//! - [`media`]: DSP for the analog ports (DTMF, tones, FSK caller ID)
//! - [`config`], [`clock`], [`supervise`]: wiring
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod media;
pub mod persist;
pub mod registrar;
pub mod sip;
pub mod store;
pub mod supervise;
pub mod tls;
pub mod web;
