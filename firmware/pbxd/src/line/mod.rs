//! The analog line (FXS) state machine: hook, digits, flash, tones, caller ID, ringing.
//!
//! Sans-IO: one [`Line`] per port, fed with timestamped hook transitions, 20 ms audio
//! frames from the phone, call-layer events and the current time; it answers with
//! [`LineOutput`]s (drained with [`Line::poll_output`]) and the next deadline
//! ([`Line::poll_timeout`]). It never reads a clock, touches hardware or speaks SIP: the
//! shell maps [`Linefeed`] onto `pbx_hal::fxs::FxsPort::set_linefeed` (same variants),
//! generates [`Tone`]s with [`crate::media::dsp::tone`], modulates caller ID with
//! [`crate::media::dsp::callerid::modulate_bytes`], and turns [`CallEvent`]s into calls.
//!
//! # Hook timing
//! Only raw hook transitions arrive; their `at` stamps decide. An on-hook period
//! ("break") of length `d` is, with all bounds inclusive:
//!
//! | break `d` | while dialling | while connected | elsewhere off-hook |
//! |---|---|---|---|
//! | `< 15 ms` ([`PULSE_BREAK_MIN`]) | glitch, ignored | glitch, ignored | ignored |
//! | `15..=200 ms` ([`PULSE_BREAK_MAX`]) | one dial pulse | flash if `>= flash_min` | ignored |
//! | `201..=300 ms` | ignored (the pulse train so far is dropped) | flash | ignored |
//! | `> 300 ms` ([`LineConfig::flash_max`]) | hang-up | hang-up | hang-up |
//!
//! Flash window default [`FLASH_MIN`]..=[`FLASH_MAX`] (80..=300 ms), configurable. A
//! pulse digit ends when the loop stays closed for [`PULSE_DIGIT_GAP`] (300 ms) after
//! the last pulse; 1..=9 pulses are that digit, 10 is `0`, more is an invalid digit
//! (congestion). Reference: DAHDI's `dahdi_config.h` counts a break of 15..=200 ms
//! (`DAHDI_MINPULSETIME`, `DAHDI_MAXPULSETIME`) as a pulse, the same window as here; its
//! flash reaches up to `DAHDI_DEFAULT_RXFLASHTIME` = 1250 ms, while we follow issue 4
//! (flash 80..=300 ms, so a hang-up is seen after 0.3 s).
//!
//! A hang-up is decided by the hook event that ends the break (`d > flash_max`) or, if
//! the phone stays on-hook, by the timer at `break + flash_max + 1 ms`. The shell must
//! hand pending hook events to [`Line::handle_hook`] before it fires a timeout.
//!
//! # Timers
//! | what | default |
//! |---|---|
//! | dial tone without any digit, then howler | [`FIRST_DIGIT_TIMEOUT`] 30 s |
//! | inter-digit timeout | [`INTER_DIGIT_TIMEOUT`] 5 s |
//! | busy/congestion tone before the howler | [`TONE_BEFORE_HOWLER`] 30 s |
//! | howler, then silence (line parked until on-hook) | [`HOWLER_DURATION`] 60 s |
//! | ring cadence (DE) | 1 s on, 4 s off |
//! | caller ID after the end of the first ring | [`CID_AFTER_RING`] 500 ms |
//!
//! After the howler the line plays silence with the feed kept active instead of opening
//! the loop: an open linefeed cannot see the phone hang up.
//!
//! # Digits
//! DTMF (the [`DtmfDetector`] fed with the phone's audio while dialling, digit taken at
//! its start) and pulses both append to the dialled string; the first one stops the
//! dial tone. After each digit [`LinePlan::completeness`] decides: `Complete` dials at
//! once, `Invalid` plays congestion, `NeedMore` waits for the next digit or the
//! inter-digit timeout, after which [`LinePlan::dial_on_timeout`] decides between dialling
//! and congestion.
//!
//! # Calls
//! - Outgoing: `Dial` → [`LineState::Calling`] (silence); `remote_ringing` → ringback;
//!   `remote_answered` → connected (silence: the shell bridges the call's audio);
//!   `remote_busy` → busy tone, `remote_failed` → congestion; then the howler.
//! - Incoming (only when idle, else [`LineError::Busy`]): ring 1 s, on-hook transmission
//!   feed, MDMF caller ID 500 ms after the first ring, ring again after 4 s off. Off-hook
//!   while ringing (ring trip) stops the ringing and sends `Answer` in the same call.
//! - Connected: a flash sends `Flash` (hold, enquiry, toggle and transfer are
//!   [`legs`]'s); `remote_hung_up` → busy tone, then howler, then silence.
//! - Second calls ([`Line::set_second_call`]): while another call of the port is held or
//!   waiting, a flash is reported in every off-hook phase (while dialling only outside a
//!   pulse train and only if `>= flash_min`), and a hang-up always sends `HangUp`.
//!   [`Line::enquiry`] gives the special dial tone for a second number,
//!   [`Line::resume`] goes back to talking, [`Line::call_waiting`] plays the waiting tone
//!   and the type-2 caller ID ([`waiting`]).
//! - Message waiting ([`Line::set_message_waiting`]): dial tone becomes the special dial
//!   tone.
//! - A hang-up (on-hook longer than the flash window) in any state sends `HangUp` if a call
//!   exists and returns to idle.

pub mod board;
#[cfg(all(test, feature = "alsa"))]
mod board_tests;
pub mod cli;
pub mod country;
pub mod cpe;
pub mod fax;
#[cfg(test)]
mod flash_hil_tests;
#[cfg(test)]
mod hil_tests;
pub mod legs;
pub mod port_io;
pub mod ports_config;
pub mod ports_sync;
pub mod sim;
pub mod sound;
#[cfg(test)]
mod tests;
pub mod waiting;

pub use country::Country;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialplan::{self, Caller, Completeness, NumberPlan, OutboundClass, Site};
use crate::media::dsp::callerid::{self, Absence, CidDateTime};
use crate::media::dsp::dtmf::{DtmfDetector, DtmfEventKind};
use crate::media::dsp::tone::{self, ToneSpec};

/// Shortest break counted as a dial pulse; shorter breaks are contact bounce.
pub const PULSE_BREAK_MIN: Duration = Duration::from_millis(15);
/// Longest break counted as a dial pulse.
pub const PULSE_BREAK_MAX: Duration = Duration::from_millis(200);
/// Loop closed this long after the last pulse ends the digit.
pub const PULSE_DIGIT_GAP: Duration = Duration::from_millis(300);
/// Default shortest hook flash.
pub const FLASH_MIN: Duration = Duration::from_millis(80);
/// Default longest hook flash; a longer break is a hang-up.
pub const FLASH_MAX: Duration = Duration::from_millis(300);
/// Off-hook with dial tone and no digit this long: howler.
pub const FIRST_DIGIT_TIMEOUT: Duration = Duration::from_secs(30);
/// No further digit this long: dial (or congestion).
pub const INTER_DIGIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Busy or congestion tone this long, then the howler.
pub const TONE_BEFORE_HOWLER: Duration = Duration::from_secs(30);
/// Special-information tone before congestion: three of its 2.06 s cycles.
pub const SIT_BEFORE_CONGESTION: Duration = Duration::from_millis(3 * 2060);
/// Howler this long, then silence until the phone hangs up.
pub const HOWLER_DURATION: Duration = Duration::from_secs(60);
/// Caller ID starts this long after the first ring ends (ETSI EN 300 659-1: >= 500 ms).
pub const CID_AFTER_RING: Duration = Duration::from_millis(500);
/// Longest dialled string collected (the dial plan's own limit).
pub const MAX_DIGITS: usize = 32;

/// Hook state reported by the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Loop closed: handset lifted (or ring trip).
    OffHook,
    /// Loop open.
    OnHook,
}

/// A raw hook transition and when the port saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookEvent {
    /// The new hook state.
    pub hook: Hook,
    /// When it changed (the port's interrupt time stamp).
    pub at: Instant,
}

/// DC feed of the line; maps one to one onto `pbx_hal::fxs::Linefeed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linefeed {
    /// No feed (not used by the line logic itself; the hal's reset state).
    Open,
    /// Normal feed: idle, dialling, talking, and between rings. "Ringing off".
    ForwardActive,
    /// Reversed polarity (not used yet).
    ReverseActive,
    /// Reduced feed for on-hook data: caller ID between the first and second ring.
    OnHookTransmission,
    /// Ring voltage on the line: "ringing on". The line logic times the cadence.
    Ringing,
}

/// What the shell plays towards the phone: [`Line::tone_spec`] gives the port's
/// country's version ([`Tone::spec_for`]), [`Tone::spec`] the German one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// No local tone: the call's audio when connected, else silence.
    Silence,
    /// Dial tone.
    Dial,
    /// Ringback (the called party is alerted).
    Ringback,
    /// Busy.
    Busy,
    /// Congestion (reorder): number invalid or the call failed.
    Congestion,
    /// Off-hook warning.
    Howler,
    /// Call waiting: a burst over the connected call ([`Line::call_waiting`]).
    CallWaiting,
    /// Special dial tone: the dial tone interrupted, 400 ms on, 40 ms off (ETSI TR 101
    /// 041-1 "special dial tone"): after a hook flash (enquiry) and when a voicemail
    /// message is waiting ([`Line::set_message_waiting`]).
    SpecialDial,
    /// Special-information tone (the network refused the service), then congestion.
    SpecialInformation,
}

impl Tone {
    /// The German tone to generate, `None` for silence.
    #[must_use]
    pub fn spec(self) -> Option<ToneSpec> {
        match self {
            Tone::Silence => None,
            Tone::Dial => Some(tone::DIAL_TONE_DE),
            Tone::Ringback => Some(tone::RINGBACK_DE),
            Tone::Busy => Some(tone::BUSY_DE),
            Tone::Congestion => Some(tone::CONGESTION_DE),
            Tone::Howler => Some(tone::HOWLER),
            Tone::CallWaiting => Some(tone::CALL_WAITING_DE),
            Tone::SpecialDial => Tone::SpecialDial.spec_for(Country::De),
            Tone::SpecialInformation => Some(tone::SPECIAL_INFORMATION),
        }
    }
}

/// What the line asks of the call layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Place a call from this port to `digits`.
    Dial {
        /// The dialled string as collected (`0-9 * # A-D`).
        digits: String,
    },
    /// The phone answered the incoming call.
    Answer,
    /// The phone hung up; end the call.
    HangUp,
    /// Hook flash during a call, or while a second call (held or waiting) exists.
    Flash,
}

/// One instruction from the line to its shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutput {
    /// Set the DC feed.
    Linefeed(Linefeed),
    /// Play this tone from now on (replaces the previous one).
    Play(Tone),
    /// Send this ETSI EN 300 659-3 MDMF call set-up message (checksum included) as an
    /// on-hook V.23 FSK burst now (`media::dsp::callerid::modulate_bytes`).
    SendCallerId(Vec<u8>),
    /// Play the CPE alerting signal (CAS, [`crate::media::dsp::tone::CAS`]) now, over
    /// the call: a type-2 caller ID follows if the phone acknowledges it.
    SendCas,
    /// Send this MDMF message as an off-hook (type 2) V.23 FSK burst now (80 bits of
    /// mark, no channel seizure), over the call.
    SendCallerIdOffHook(Vec<u8>),
    /// Mute (`true`) or restore (`false`) the call's audio both ways while type-2
    /// caller ID signals: the far party to the port (nothing under the CAS and FSK)
    /// and the port's microphone to the far party (who must not hear the phone's DTMF
    /// acknowledgement).
    MuteCall(bool),
    /// To the call layer.
    Call(CallEvent),
}

/// The caller of an incoming call, as the call layer knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    /// Calling number, if known.
    pub number: Option<String>,
    /// Calling name, if known.
    pub name: Option<String>,
    /// The caller withheld the identity (CLIR): sent as "private".
    pub withheld: bool,
    /// Local date and time to send (the line has no clock).
    pub datetime: Option<CidDateTime>,
}

impl CallerId {
    /// The MDMF message. Characters that cannot be sent are dropped and overlong fields
    /// cut, so a strange display name never costs the caller ID.
    #[must_use]
    pub fn mdmf(&self) -> Vec<u8> {
        let clean = |s: &str, max: usize| -> String {
            s.chars()
                .filter(|c| (' '..='~').contains(c))
                .take(max)
                .collect()
        };
        let absence = if self.withheld {
            Absence::Private
        } else {
            Absence::Unavailable
        };
        let number = (!self.withheld)
            .then(|| {
                self.number
                    .as_deref()
                    .map(|n| clean(n, callerid::MAX_NUMBER_LEN))
            })
            .flatten()
            .filter(|n| !n.is_empty());
        let name = (!self.withheld)
            .then(|| {
                self.name
                    .as_deref()
                    .map(|n| clean(n, callerid::MAX_NAME_LEN))
            })
            .flatten()
            .filter(|n| !n.is_empty());
        let msg = callerid::CallerId {
            datetime: self.datetime,
            number_absent: number.is_none().then_some(absence),
            number,
            name_absent: name.is_none().then_some(absence),
            name,
        };
        match msg.encode_mdmf() {
            Ok(bytes) => bytes,
            // Only an out-of-range date can still fail: send without it.
            Err(_) => callerid::CallerId {
                datetime: None,
                ..msg
            }
            .encode_mdmf()
            .unwrap_or_default(),
        }
    }
}

/// Why the outgoing call did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// Network or PBX congestion, no route.
    Congestion,
    /// The number does not exist or was refused by the dial plan.
    Rejected,
    /// The callee cannot be reached (not registered, timeout).
    Unreachable,
    /// The network refused the service (the provider's "no balance"): the
    /// special-information tone, then congestion.
    Refused,
}

/// The dial plan as the line needs it while digits arrive.
pub trait LinePlan {
    /// Whether `dialled` is complete, needs more digits, or can never be dialled.
    fn completeness(&self, dialled: &str) -> Completeness;
    /// After the inter-digit timeout on a `NeedMore` string: dial it (`true`) or play
    /// congestion.
    fn dial_on_timeout(&self, dialled: &str) -> bool;
}

/// [`LinePlan`] from the site settings and a number directory, via
/// [`dialplan::completeness`] and [`dialplan::route`].
#[derive(Debug, Clone)]
pub struct SitePlan<P> {
    /// Numbering settings.
    pub site: Site,
    /// Extensions and ring groups.
    pub plan: P,
}

impl<P: NumberPlan> LinePlan for SitePlan<P> {
    fn completeness(&self, dialled: &str) -> Completeness {
        dialplan::completeness(dialled, &self.site, &self.plan)
    }

    fn dial_on_timeout(&self, dialled: &str) -> bool {
        // The outbound class is the call layer's check; here only "is it a number".
        let anyone = Caller {
            extension: "",
            class: OutboundClass::International,
            clir_permanent: false,
        };
        dialplan::route(&anyone, dialled, &self.site, &self.plan).is_ok()
    }
}

/// Per-port settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineConfig {
    /// Shortest hook flash.
    pub flash_min: Duration,
    /// Longest hook flash; a longer break is a hang-up. At least [`PULSE_BREAK_MAX`].
    pub flash_max: Duration,
    /// Inter-digit timeout.
    pub inter_digit: Duration,
    /// Dial tone without digits this long gives the howler.
    pub first_digit: Duration,
    /// Ring burst.
    pub ring_on: Duration,
    /// Pause between ring bursts.
    pub ring_off: Duration,
    /// Send caller ID after the first ring.
    pub caller_id: bool,
    /// A second call to the port while it is in a call waits (tone, type-2 caller ID)
    /// instead of getting busy.
    pub call_waiting: bool,
    /// Tones and ring cadence. A country with a multi-step ring cadence (GB's double
    /// ring) uses it while `ring_on`/`ring_off` are its first step, as
    /// [`LineConfig::for_country`] sets them; other values ring a simple cadence.
    pub country: Country,
}

impl LineConfig {
    /// Defaults with `country`'s tones and ring cadence.
    #[must_use]
    pub fn for_country(country: Country) -> Self {
        let (ring_on, ring_off) = country.ring_cadence()[0];
        LineConfig {
            ring_on,
            ring_off,
            country,
            ..LineConfig::default()
        }
    }

    /// Ring step `i` (ring, pause) of the cadence in force.
    fn ring_step(&self, i: usize) -> (Duration, Duration) {
        let steps = self.country.ring_cadence();
        if steps.len() > 1 && steps[0] == (self.ring_on, self.ring_off) {
            steps[i % steps.len()]
        } else {
            (self.ring_on, self.ring_off)
        }
    }
}

impl Default for LineConfig {
    /// German defaults.
    fn default() -> Self {
        LineConfig {
            flash_min: FLASH_MIN,
            flash_max: FLASH_MAX,
            inter_digit: INTER_DIGIT_TIMEOUT,
            first_digit: FIRST_DIGIT_TIMEOUT,
            ring_on: Duration::from_secs(1),
            ring_off: Duration::from_secs(4),
            caller_id: true,
            call_waiting: true,
            country: Country::De,
        }
    }
}

/// Errors of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The configuration's windows overlap wrongly.
    #[error("bad line configuration: {0}")]
    Config(&'static str),
    /// An incoming call while the line is not idle.
    #[error("line busy")]
    Busy,
}

/// Coarse state, e.g. for `pbxctl ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineState {
    /// On-hook, no call.
    Idle,
    /// An incoming call rings the phone.
    Ringing,
    /// Off-hook, collecting digits.
    Dialling,
    /// A call was placed and is not answered yet.
    Calling,
    /// In a call.
    Connected,
    /// Off-hook without a call, playing busy, congestion, howler or silence.
    Failed,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Ringing {
        /// Next cadence edge.
        edge: Instant,
        /// Ring voltage on now.
        on: bool,
        /// When to send the caller ID (after the first ring), until sent.
        cid: Option<(Instant, Vec<u8>)>,
        /// The first ring burst has ended.
        first_done: bool,
        /// Index of the cadence step in progress.
        step: usize,
    },
    Dialling {
        digits: String,
        /// Start of the current timeout: entering or the last digit.
        since: Instant,
        pulses: u8,
        last_make: Instant,
        dtmf: Box<DtmfDetector>,
    },
    Calling,
    Connected,
    /// Off-hook, no call: `tone` until `until` then the next stage.
    Failed {
        until: Option<Instant>,
    },
}

/// One analog line. See the module docs.
#[derive(Debug)]
pub struct Line {
    config: LineConfig,
    plan: Box<dyn LinePlan + Send>,
    phase: Phase,
    hook: Hook,
    /// Start of the current on-hook period, while off-hook phases await its meaning.
    break_at: Option<Instant>,
    linefeed: Linefeed,
    tone: Tone,
    out: VecDeque<LineOutput>,
    /// Another call of this port is on hold or waiting: a flash means something in
    /// every off-hook phase, and a hang-up always reaches the call layer.
    second_call: bool,
    /// A call waits while this one is connected.
    waiting: Option<waiting::Waiting>,
    /// A voicemail message waits: dial tone is the special dial tone.
    message_waiting: bool,
}

impl std::fmt::Debug for dyn LinePlan + Send {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinePlan")
    }
}

impl Line {
    /// An idle, on-hook line. Its first output sets the feed to forward active.
    pub fn new(config: LineConfig, plan: Box<dyn LinePlan + Send>) -> Result<Self, LineError> {
        if config.flash_min > config.flash_max {
            return Err(LineError::Config("flash_min exceeds flash_max"));
        }
        if config.flash_max < PULSE_BREAK_MAX {
            return Err(LineError::Config("flash_max below the longest dial pulse"));
        }
        if config.ring_on.is_zero() || config.ring_off.is_zero() {
            return Err(LineError::Config("ring cadence needs on and off time"));
        }
        let mut out = VecDeque::new();
        out.push_back(LineOutput::Linefeed(Linefeed::ForwardActive));
        Ok(Line {
            config,
            plan,
            phase: Phase::Idle,
            hook: Hook::OnHook,
            break_at: None,
            linefeed: Linefeed::ForwardActive,
            tone: Tone::Silence,
            out,
            second_call: false,
            waiting: None,
            message_waiting: false,
        })
    }

    /// The tone to generate for `tone` in this port's country, `None` for silence.
    #[must_use]
    pub fn tone_spec(&self, tone: Tone) -> Option<ToneSpec> {
        tone.spec_for(self.config.country)
    }

    /// Coarse state.
    #[must_use]
    pub fn state(&self) -> LineState {
        match self.phase {
            Phase::Idle => LineState::Idle,
            Phase::Ringing { .. } => LineState::Ringing,
            Phase::Dialling { .. } => LineState::Dialling,
            Phase::Calling => LineState::Calling,
            Phase::Connected => LineState::Connected,
            Phase::Failed { .. } => LineState::Failed,
        }
    }

    /// Digits collected so far while dialling (empty otherwise).
    #[must_use]
    pub fn dialled(&self) -> &str {
        match &self.phase {
            Phase::Dialling { digits, .. } => digits,
            _ => "",
        }
    }

    /// Last reported hook state.
    #[must_use]
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The feed last asked for.
    #[must_use]
    pub fn linefeed(&self) -> Linefeed {
        self.linefeed
    }

    /// The tone last asked for.
    #[must_use]
    pub fn tone(&self) -> Tone {
        self.tone
    }

    /// Next output for the shell.
    pub fn poll_output(&mut self) -> Option<LineOutput> {
        self.out.pop_front()
    }

    /// A raw hook transition.
    pub fn handle_hook(&mut self, now: Instant, event: HookEvent) {
        // Deadlines before the transition (a pulse digit's gap, a hang-up) come first.
        self.handle_timeout(event.at.min(now));
        if event.hook == self.hook {
            self.handle_timeout(now);
            return;
        }
        self.hook = event.hook;
        match event.hook {
            Hook::OnHook => self.on_hook(event.at),
            Hook::OffHook => self.off_hook(event.at),
        }
        self.handle_timeout(now);
    }

    /// A 20 ms frame of 8 kHz linear audio from the phone.
    pub fn handle_audio(&mut self, now: Instant, frame: &[i16]) {
        self.handle_timeout(now);
        if self.hook != Hook::OffHook {
            return;
        }
        if let Some(w) = self.waiting.as_mut() {
            w.handle_audio(now, frame);
            return;
        }
        let Phase::Dialling { dtmf, .. } = &mut self.phase else {
            return;
        };
        dtmf.handle_samples(frame);
        let mut started = Vec::new();
        while let Some(ev) = dtmf.poll_event() {
            if ev.kind == DtmfEventKind::Start {
                started.push(ev.digit);
            }
        }
        for digit in started {
            self.digit(now, digit);
        }
    }

    /// Fire every deadline up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each step changes the state so that its deadline moves on; bounded anyway.
        for _ in 0..64 {
            match self.poll_timeout() {
                Some(t) if t <= now => self.fire(t),
                _ => return,
            }
        }
    }

    /// The next deadline, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hang_up = self
            .break_at
            .map(|b| b + self.config.flash_max + Duration::from_millis(1));
        let waiting = self.waiting.as_ref().map(waiting::Waiting::poll_timeout);
        [hang_up, waiting, self.phase_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn phase_timeout(&self) -> Option<Instant> {
        if self.break_at.is_some() {
            return None;
        }
        match &self.phase {
            Phase::Idle | Phase::Calling | Phase::Connected => None,
            Phase::Ringing { edge, cid, .. } => {
                Some(cid.as_ref().map_or(*edge, |(t, _)| (*t).min(*edge)))
            }
            Phase::Dialling {
                digits,
                since,
                pulses,
                last_make,
                ..
            } => Some(if *pulses > 0 {
                *last_make + PULSE_DIGIT_GAP
            } else if digits.is_empty() {
                *since + self.config.first_digit
            } else {
                *since + self.config.inter_digit
            }),
            Phase::Failed { until } => *until,
        }
    }

    /// An incoming call: start ringing. `Err(Busy)` unless idle.
    pub fn incoming(&mut self, now: Instant, caller: CallerId) -> Result<(), LineError> {
        self.handle_timeout(now);
        if !matches!(self.phase, Phase::Idle) || self.hook != Hook::OnHook {
            return Err(LineError::Busy);
        }
        let cid = self
            .config
            .caller_id
            .then(|| (now + self.config.ring_on + CID_AFTER_RING, caller.mdmf()));
        self.phase = Phase::Ringing {
            edge: now + self.config.ring_on,
            on: true,
            cid,
            first_done: false,
            step: 0,
        };
        self.set_linefeed(Linefeed::Ringing);
        Ok(())
    }

    /// The called party is being alerted.
    pub fn remote_ringing(&mut self, now: Instant) {
        self.handle_timeout(now);
        if matches!(self.phase, Phase::Calling) {
            self.set_tone(Tone::Ringback);
        }
    }

    /// The called party answered.
    pub fn remote_answered(&mut self, now: Instant) {
        self.handle_timeout(now);
        if matches!(self.phase, Phase::Calling) {
            self.phase = Phase::Connected;
            self.set_tone(Tone::Silence);
        }
    }

    /// The called party is busy; the call is over.
    pub fn remote_busy(&mut self, now: Instant) {
        self.handle_timeout(now);
        if matches!(self.phase, Phase::Calling) {
            self.fail(now, Tone::Busy);
        }
    }

    /// The call could not be placed; it is over.
    pub fn remote_failed(&mut self, now: Instant, why: CallFailure) {
        self.handle_timeout(now);
        if matches!(self.phase, Phase::Calling) {
            if why == CallFailure::Refused {
                self.phase = Phase::Failed {
                    until: Some(now + SIT_BEFORE_CONGESTION),
                };
                self.set_tone(Tone::SpecialInformation);
            } else {
                self.fail(now, Tone::Congestion);
            }
        }
    }

    /// The other side ended the call (or the caller gave up while ringing).
    pub fn remote_hung_up(&mut self, now: Instant) {
        self.handle_timeout(now);
        match self.phase {
            Phase::Calling | Phase::Connected => self.fail(now, Tone::Busy),
            Phase::Ringing { .. } => {
                self.phase = Phase::Idle;
                self.set_linefeed(Linefeed::ForwardActive);
            }
            _ => {}
        }
    }

    /// Whether another call of this port is on hold or waiting (the call layer's
    /// word): flashes then count in every off-hook phase, and a hang-up is always
    /// reported (to transfer, or to ring the phone again).
    pub fn set_second_call(&mut self, now: Instant, second: bool) {
        self.handle_timeout(now);
        self.second_call = second;
    }

    /// After a flash put the call on hold: dial a second party (enquiry), with the
    /// special dial tone. Only from a connected call.
    pub fn enquiry(&mut self, now: Instant) {
        self.handle_timeout(now);
        if matches!(self.phase, Phase::Connected) && self.hook == Hook::OffHook {
            self.drop_waiting();
            self.second_call = true;
            self.start_dialling(now);
            self.set_tone(Tone::SpecialDial);
        }
    }

    /// Back to talking (a held call resumed, a waiting call taken) from any off-hook
    /// phase.
    pub fn resume(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.hook == Hook::OffHook && !matches!(self.phase, Phase::Idle | Phase::Ringing { .. })
        {
            self.drop_waiting();
            self.phase = Phase::Connected;
            self.set_tone(Tone::Silence);
        }
    }

    /// A second call arrives while this one is connected: the call-waiting tone over
    /// the call and, when caller ID is on, the type-2 caller ID. `Err(Busy)` when the
    /// line is not in a call, call waiting is off or a call already waits.
    pub fn call_waiting(&mut self, now: Instant, caller: CallerId) -> Result<(), LineError> {
        self.handle_timeout(now);
        let connected = matches!(self.phase, Phase::Connected) && self.hook == Hook::OffHook;
        if !self.config.call_waiting || !connected || self.waiting.is_some() || self.second_call {
            return Err(LineError::Busy);
        }
        let msg = self.config.caller_id.then(|| caller.mdmf());
        self.waiting = Some(waiting::Waiting::start(now, self.config.country, msg));
        self.second_call = true;
        if let LineOutput::Play(t) = waiting::Waiting::first_output() {
            self.set_tone(t);
        }
        Ok(())
    }

    /// The waiting call was taken or gave up: the tone stops.
    pub fn end_waiting(&mut self, now: Instant) {
        self.handle_timeout(now);
        if self.drop_waiting() && self.tone == Tone::CallWaiting {
            self.set_tone(Tone::Silence);
        }
    }

    /// Whether a call waits, and whether the phone acknowledged its CAS.
    #[must_use]
    pub fn waiting(&self) -> Option<bool> {
        self.waiting.as_ref().map(waiting::Waiting::acked)
    }

    /// A voicemail message waits (or no longer): dial tone becomes the special dial
    /// tone. Changes the tone at once if the phone is listening to dial tone.
    pub fn set_message_waiting(&mut self, now: Instant, on: bool) {
        self.handle_timeout(now);
        self.message_waiting = on;
        if let Phase::Dialling { digits, pulses, .. } = &self.phase {
            if digits.is_empty() && *pulses == 0 && !self.second_call {
                self.set_tone(if on { Tone::SpecialDial } else { Tone::Dial });
            }
        }
    }

    fn on_hook(&mut self, at: Instant) {
        match &mut self.phase {
            // On-hook phases: nothing to time.
            Phase::Idle | Phase::Ringing { .. } => {}
            // A pulse digit whose gap had passed was ended by `handle_timeout(at)` already.
            Phase::Dialling { .. } | Phase::Calling | Phase::Connected | Phase::Failed { .. } => {
                self.break_at = Some(at);
            }
        }
    }

    fn off_hook(&mut self, at: Instant) {
        if let Some(b) = self.break_at.take() {
            let d = at.saturating_duration_since(b);
            if d > self.config.flash_max {
                self.hang_up();
            } else {
                self.short_break(at, d);
                return;
            }
        }
        match self.phase {
            Phase::Idle => self.start_dialling(at),
            Phase::Ringing { .. } => {
                // Ring trip: stop ringing now and answer.
                self.phase = Phase::Connected;
                self.set_linefeed(Linefeed::ForwardActive);
                self.set_tone(Tone::Silence);
                self.out.push_back(LineOutput::Call(CallEvent::Answer));
            }
            // Off-hook phases get here only after a missed on-hook; nothing to do.
            _ => {}
        }
    }

    /// A break of `d <= flash_max` ending at `at` in an off-hook phase.
    fn short_break(&mut self, at: Instant, d: Duration) {
        if d < PULSE_BREAK_MIN {
            return;
        }
        match &mut self.phase {
            Phase::Dialling { pulses, .. }
                if self.second_call && *pulses == 0 && d >= self.config.flash_min =>
            {
                // Back to the other call: a break this long outside a pulse train is
                // a flash while a call is held (a 10 pps dial breaks for ~60 ms).
                self.out.push_back(LineOutput::Call(CallEvent::Flash));
            }
            Phase::Dialling {
                pulses, last_make, ..
            } => {
                if d <= PULSE_BREAK_MAX {
                    let first = *pulses == 0;
                    *pulses = pulses.saturating_add(1);
                    *last_make = at;
                    if first {
                        self.set_tone(Tone::Silence);
                    }
                } else {
                    // Neither pulse nor hang-up: drop the half-dialled digit.
                    *pulses = 0;
                }
            }
            Phase::Connected if d >= self.config.flash_min => {
                self.out.push_back(LineOutput::Call(CallEvent::Flash));
            }
            Phase::Calling | Phase::Failed { .. }
                if self.second_call && d >= self.config.flash_min =>
            {
                self.out.push_back(LineOutput::Call(CallEvent::Flash));
            }
            _ => {}
        }
    }

    fn hang_up(&mut self) {
        if self.second_call || matches!(self.phase, Phase::Calling | Phase::Connected) {
            self.out.push_back(LineOutput::Call(CallEvent::HangUp));
        }
        self.second_call = false;
        self.drop_waiting();
        self.phase = Phase::Idle;
        self.set_tone(Tone::Silence);
        self.set_linefeed(Linefeed::ForwardActive);
    }

    fn start_dialling(&mut self, at: Instant) {
        self.phase = Phase::Dialling {
            digits: String::new(),
            since: at,
            pulses: 0,
            last_make: at,
            dtmf: Box::new(DtmfDetector::new()),
        };
        self.set_tone(if self.message_waiting {
            Tone::SpecialDial
        } else {
            Tone::Dial
        });
    }

    /// Ends the call waiting, if any (whether there was one); restores the call's
    /// audio if the type-2 signalling had muted it.
    fn drop_waiting(&mut self) -> bool {
        let Some(w) = self.waiting.take() else {
            return false;
        };
        if w.muting() {
            self.out.push_back(LineOutput::MuteCall(false));
        }
        true
    }

    fn fail(&mut self, now: Instant, tone: Tone) {
        self.drop_waiting();
        self.phase = Phase::Failed {
            until: Some(now + TONE_BEFORE_HOWLER),
        };
        self.set_tone(tone);
    }

    fn fire(&mut self, t: Instant) {
        if let Some(b) = self.break_at {
            if t >= b + self.config.flash_max {
                self.break_at = None;
                self.hang_up();
                return;
            }
        }
        if let Some(w) = self.waiting.as_mut() {
            if w.poll_timeout() <= t {
                let mut out = Vec::new();
                w.fire(t, &mut out);
                for o in out {
                    match o {
                        LineOutput::Play(tone) => self.set_tone(tone),
                        other => self.out.push_back(other),
                    }
                }
                return;
            }
        }
        match &mut self.phase {
            Phase::Idle | Phase::Calling | Phase::Connected => {}
            Phase::Ringing {
                edge,
                on,
                cid,
                first_done,
                step,
            } => {
                if let Some((when, msg)) = cid.take_if(|(when, _)| *when <= *edge) {
                    debug_assert!(when <= t);
                    self.out.push_back(LineOutput::SendCallerId(msg));
                    return;
                }
                let ring = !*on;
                *on = ring;
                if ring {
                    // Too late for this pause (a cadence shorter than the CID needs).
                    *cid = None;
                }
                if ring {
                    *step += 1;
                }
                let (ring_on, ring_off) = self.config.ring_step(*step);
                *edge = t + if ring { ring_on } else { ring_off };
                let feed = if ring {
                    Linefeed::Ringing
                } else if !*first_done && cid.is_some() {
                    Linefeed::OnHookTransmission
                } else {
                    Linefeed::ForwardActive
                };
                if !ring {
                    *first_done = true;
                }
                self.set_linefeed(feed);
            }
            Phase::Dialling { pulses, digits, .. } => {
                if *pulses > 0 {
                    self.end_pulse_digit(t);
                } else if digits.is_empty() {
                    self.phase = Phase::Failed {
                        until: Some(t + HOWLER_DURATION),
                    };
                    self.set_tone(Tone::Howler);
                } else if self.plan.dial_on_timeout(digits) {
                    let digits = std::mem::take(digits);
                    self.dial(digits);
                } else {
                    self.fail(t, Tone::Congestion);
                }
            }
            Phase::Failed { until } if self.tone == Tone::SpecialInformation => {
                *until = Some(t + TONE_BEFORE_HOWLER);
                self.set_tone(Tone::Congestion);
            }
            Phase::Failed { until } => {
                if self.tone == Tone::Howler {
                    *until = None;
                    self.set_tone(Tone::Silence);
                } else {
                    *until = Some(t + HOWLER_DURATION);
                    self.set_tone(Tone::Howler);
                }
            }
        }
    }

    fn end_pulse_digit(&mut self, t: Instant) {
        let Phase::Dialling { pulses, .. } = &mut self.phase else {
            return;
        };
        let n = std::mem::take(pulses);
        match n {
            1..=9 => self.digit(t, char::from(b'0' + n)),
            10 => self.digit(t, '0'),
            _ => self.fail(t, Tone::Congestion),
        }
    }

    fn digit(&mut self, now: Instant, digit: char) {
        let Phase::Dialling { digits, since, .. } = &mut self.phase else {
            return;
        };
        digits.push(digit);
        *since = now;
        let verdict = if digits.len() > MAX_DIGITS {
            Completeness::Invalid
        } else {
            self.plan.completeness(digits)
        };
        match verdict {
            Completeness::NeedMore => self.set_tone(Tone::Silence),
            Completeness::Complete => {
                let digits = std::mem::take(digits);
                self.set_tone(Tone::Silence);
                self.dial(digits);
            }
            Completeness::Invalid => self.fail(now, Tone::Congestion),
        }
    }

    fn dial(&mut self, digits: String) {
        self.phase = Phase::Calling;
        self.set_tone(Tone::Silence);
        self.out
            .push_back(LineOutput::Call(CallEvent::Dial { digits }));
    }

    fn set_tone(&mut self, tone: Tone) {
        if self.tone != tone {
            self.tone = tone;
            self.out.push_back(LineOutput::Play(tone));
        }
    }

    fn set_linefeed(&mut self, feed: Linefeed) {
        if self.linefeed != feed {
            self.linefeed = feed;
            self.out.push_back(LineOutput::Linefeed(feed));
        }
    }
}
