//! pbxd: the office PBX daemon. `main.rs` wires the pieces; each module owns one concern.
//!
//! - [`sip`]: the SIP endpoint core and its tokio shell (UDP, TCP)
//! - [`call`]: the B2BUA: calls between phones, forks, records
//! - [`registrar`]: the local registrar core (bindings, digest auth)
//! - [`store`]: SQLite, the only module with SQL
//! - [`persist`]: the store writer thread
//! - [`web`]: the HTTPS API for installers and users (accounts, sessions), HTTP health
//! - [`tls`]: the device's TLS identity
//! - [`secret`]: secrets at rest (trunk passwords, SIM PIN) sealed with a device key
//! - [`diag`]: diagnostics for support: recent log lines in memory, the bundle's tar
//! - [`dialplan`]: dialled digits to a route (E.164, blocked ranges, emergency, classes)
//! - [`media`]: SDP offer/answer, the RTP relay, DSP for the analog ports
//! - [`line`](mod@line): the analog line (FXS) state machine: hook, digits, flash, tones, ringing
//! - [`gsm`]: the GSM/LTE module: calls, SMS, SIM PIN safety, status
//! - [`trunk`]: the cloud trunk: provider accounts, registration, numbers
//! - [`update`]: firmware updates (RAUC over D-Bus), the health gate after boot
//! - [`notify`]: systemd readiness and a watchdog that pings only while SIP answers
//! - [`cli_admin`]: `pbxctl alerts` and `pbxctl backup`
//! - [`config`], [`clock`], [`supervise`]: wiring
#![forbid(unsafe_code)]

pub mod call;
pub mod cli_admin;
pub mod clock;
pub mod config;
pub mod diag;
pub mod dialplan;
pub mod gsm;
pub mod line;
pub mod media;
pub mod notify;
pub mod persist;
pub mod registrar;
pub mod secret;
pub mod sip;
pub mod store;
pub mod supervise;
pub mod tls;
pub mod trunk;
pub mod update;
pub mod web;
