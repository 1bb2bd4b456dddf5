//! `pbx-hal`: the appliance's hardware behind traits, each with a real backend and an
//! emulator that speaks the same interface, so the real driver code runs in tests.
//! Depends on nothing else in the workspace.
//!
//! - [`fxs`]: analog phone ports: the FXS port trait, a ProSLIC-class SLIC driver
//!   generic over embedded-hal, and an emulated SLIC with a virtual phone.
//! - [`audio`]: PCM frames of a port (8 kHz, 10/20 ms): the [`audio::AudioPort`] trait,
//!   an ALSA backend for the SLIC's PCM highway (feature `alsa`) and an in-memory one.
//! - [`modem`]: the GSM/LTE module: AT-command parsing and session as sans-IO cores,
//!   SMS PDU encoding and decoding.
#![warn(missing_docs, unreachable_pub)]

pub mod audio;
pub mod fxs;
pub mod modem;
