//! A port's devices as the port thread ([`super::sim`]'s shell) sees them: the SLIC's
//! hook events and linefeed, and one 20 ms frame of audio each way. The emulator
//! (`sim::SimIo`: the driver on the virtual chip, a virtual phone) and a board
//! ([`BoardIo`]: the driver on spidev/GPIO, the PCM highway through ALSA) implement it,
//! so both run the same port code.

use std::time::Instant;

use pbx_hal::audio::AudioPort;
use pbx_hal::fxs::{FxsEvent, FxsPort, Linefeed};

/// A device of the port failed; the shell logs it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortIoError {
    /// The SLIC (its bus or pins).
    #[error("SLIC: {0}")]
    Slic(String),
    /// The PCM.
    #[error("PCM: {0}")]
    Audio(String),
}

/// What the port thread needs from a port's hardware.
pub trait PortIo {
    /// Brings simulated hardware up to `now` (a board's devices run by themselves).
    fn advance(&mut self, _now: Instant) {}
    /// The port's settings (at start and when they change): the emulator's phone
    /// follows the caller-ID mode; real hardware has nothing to set.
    fn set_profile(&mut self, _profile: &super::ports_config::PortProfile) {}
    /// The SLIC's next hook or ring-trip event.
    fn poll_event(&mut self, now: Instant) -> Result<Option<FxsEvent>, PortIoError>;
    /// Sets the linefeed; `off_hook` is the hook state the shell last saw.
    fn set_linefeed(&mut self, lf: Linefeed, off_hook: bool) -> Result<(), PortIoError>;
    /// One frame from the phone's microphone into `mic`.
    fn capture(&mut self, mic: &mut [i16]) -> Result<(), PortIoError>;
    /// One frame to the phone's earpiece.
    fn play(&mut self, ear: &[i16], off_hook: bool) -> Result<(), PortIoError>;
}

/// A board's port: the SLIC driver on its bus and pins, and the port's PCM.
#[derive(Debug)]
pub struct BoardIo<S, A> {
    /// The driver, initialised (bring-up done).
    pub slic: S,
    /// The port's audio (ALSA on the board).
    pub audio: A,
}

impl<S, A> PortIo for BoardIo<S, A>
where
    S: FxsPort,
    S::Error: std::fmt::Debug,
    A: AudioPort,
    A::Error: std::fmt::Display,
{
    fn poll_event(&mut self, now: Instant) -> Result<Option<FxsEvent>, PortIoError> {
        self.slic
            .poll_event(now)
            .map_err(|e| PortIoError::Slic(format!("{e:?}")))
    }

    fn set_linefeed(&mut self, lf: Linefeed, _off_hook: bool) -> Result<(), PortIoError> {
        self.slic
            .set_linefeed(lf)
            .map_err(|e| PortIoError::Slic(format!("{e:?}")))
    }

    fn capture(&mut self, mic: &mut [i16]) -> Result<(), PortIoError> {
        self.audio.read_frame(mic).map_err(|e| {
            // A lost frame is silence, not stale audio.
            mic.fill(0);
            PortIoError::Audio(e.to_string())
        })
    }

    fn play(&mut self, ear: &[i16], _off_hook: bool) -> Result<(), PortIoError> {
        self.audio
            .write_frame(ear)
            .map_err(|e| PortIoError::Audio(e.to_string()))
    }
}
