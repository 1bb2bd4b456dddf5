//! The FXS port trait: what the line logic may ask of an analog phone port.

use std::time::{Duration, Instant};

/// The DC feed state of the line (the SLIC's "linefeed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linefeed {
    /// No loop current; the line is disconnected (also the state after reset).
    Open,
    /// Normal talking/idle battery feed, tip positive relative to ring.
    ForwardActive,
    /// Active feed with reversed polarity (signals answer or end of call to some phones).
    ReverseActive,
    /// Reduced feed that lets on-hook phones receive data (caller ID before the first ring).
    OnHookTransmission,
    /// Ring signal on the line; the chip's ring timers decide the cadence.
    Ringing,
}

/// Hook state of the attached phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookState {
    /// Handset down: no loop current.
    OnHook,
    /// Handset lifted: loop closed.
    OffHook,
}

/// Something the port observed, stamped with the time the IRQ was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FxsEvent {
    /// The loop closed (`off_hook: true`) or opened. Pulse digits and hook flashes are
    /// sequences of these; their timing is the caller's business.
    HookChanged {
        /// New state: `true` when the handset was lifted.
        off_hook: bool,
        /// When the interrupt was handled (the `now` given to `poll_event`).
        at: Instant,
    },
    /// The phone went off-hook while ringing; the port has already stopped ringing and
    /// switched to [`Linefeed::ForwardActive`].
    RingTripped {
        /// When the interrupt was handled.
        at: Instant,
    },
}

/// Ring cadence: ring for `on`, pause for `off`, repeat. `off == 0` rings continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingCadence {
    /// Length of a ring burst.
    pub on: Duration,
    /// Silence between bursts.
    pub off: Duration,
}

impl RingCadence {
    /// A cadence of `on` ringing and `off` silence.
    pub fn new(on: Duration, off: Duration) -> Self {
        Self { on, off }
    }

    /// The German (and many European) cadence: 1 s on, 4 s off.
    pub fn de() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(4))
    }
}

/// Sample format on the PCM highway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcmCodec {
    /// 16-bit linear samples (two 8-bit timeslots).
    Linear16,
    /// G.711 A-law (Europe).
    ALaw,
    /// G.711 µ-law (North America, Japan).
    MuLaw,
}

/// Where the port's audio sits on the PCM highway and how it is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmConfig {
    /// 8-bit timeslot (counted from the frame sync) the port transmits in.
    pub timeslot_tx: u16,
    /// 8-bit timeslot the port receives from.
    pub timeslot_rx: u16,
    /// Sample coding.
    pub codec: PcmCodec,
}

/// One analog phone port. Synchronous; time is passed in, never read.
///
/// The run loop polls `poll_event` whenever the interrupt may have fired (or on a tick)
/// until it returns `Ok(None)`.
pub trait FxsPort {
    /// Error of the backend (bus, pin, chip faults).
    type Error;

    /// Next pending event, or `None`. Events are stamped with `now`, the time the
    /// interrupt is handled.
    fn poll_event(&mut self, now: Instant) -> Result<Option<FxsEvent>, Self::Error>;
    /// Set the DC feed state.
    fn set_linefeed(&mut self, linefeed: Linefeed) -> Result<(), Self::Error>;
    /// Start ringing with `cadence`, beginning with a ring burst.
    fn start_ringing(&mut self, cadence: RingCadence) -> Result<(), Self::Error>;
    /// Stop ringing and return to the linefeed in force before ringing started.
    fn stop_ringing(&mut self) -> Result<(), Self::Error>;
    /// Reverse (or restore) the line polarity of the active and on-hook-transmission feeds.
    fn set_polarity(&mut self, reversed: bool) -> Result<(), Self::Error>;
    /// Set the PCM timeslots and coding, and enable PCM.
    fn configure_pcm(&mut self, config: PcmConfig) -> Result<(), Self::Error>;
    /// Hook state as of the last event returned by `poll_event`.
    fn hook_state(&self) -> HookState;
}
