//! Helpers shared by the update tests.
#![allow(unreachable_pub)] // shared by several test crates
pub mod ddi_server;
pub mod rauc_rig;
