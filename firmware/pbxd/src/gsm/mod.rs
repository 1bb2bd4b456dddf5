//! The GSM/LTE gateway: the module as a trunk for calls, an SMS in- and outbox, and SIM
//! safety (a rejected PIN is never sent again).
//!
//! - [`core`]: [`Gateway`], the sans-IO core over `pbx_hal::modem`'s AT session.
//! - [`legs`]: the module's call as a leg of PBX calls ([`legs::GsmLegs`]).
//! - [`serial`]: the modem's tty as an async byte stream (termios via `nix`, `AsyncFd`).
//! - [`audio`]: the module's PCM ↔ RTP bridge (G.711 A-law, jitter buffer).
//! - `alsa_pcm` (feature `alsa`): a real module's PCM through ALSA (`--modem-pcm`).
//! - [`sim`]: the emulated module's control socket (`--hardware sim`).
//! - `shell`: the SIP task's end: call events to the module's leg, its commands out.
//! - [`task`]: the supervised tokio task wiring port, gateway, store and call layer.
//! - [`cli`]: `pbxctl gsm` and `pbxctl sms`.
//! - [`sms`]: checks for SMS typed by a user (number, text, parts).
//! - [`mobile`]: mobile number ranges per country (`--mobile on`).
//! - [`power`]: the module's power switch (board file `modem-power`, or the emulator's).

#[cfg(feature = "alsa")]
pub mod alsa_pcm;
pub mod audio;
pub mod cli;
pub mod core;
pub mod legs;
pub mod mobile;
pub mod power;
pub mod serial;
pub(crate) mod shell;
pub mod sim;
pub mod sms;
pub mod task;

#[cfg(test)]
mod tests;

pub use self::core::{Credentials, Gateway, GatewayEvent, GsmCallEvent, GsmStatus, SimStatus};
pub use self::task::{GsmLink, GsmSnapshot};
