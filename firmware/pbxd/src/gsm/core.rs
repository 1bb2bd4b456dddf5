//! The gateway as a sans-IO core: it drives the AT [`Session`] through start-up (echo off,
//! numeric errors, SIM state, PIN through [`PinGuard`], caller ID, registration URCs, PDU
//! mode, new-SMS indications), keeps the module's status, receives and sends SMS, and
//! carries one voice call.
//!
//! Run loop (see [`super::task`]): feed bytes to `handle_input`, call `handle_timeout` at
//! `poll_timeout`, write every `poll_transmit`, drain `poll_event`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use pbx_hal::modem::command::{Command, CommandKind, DialNumber, InvalidArgument, Pin, Puk};
use pbx_hal::modem::pdu::{self, Body, Reassembler, SubmitOptions, Timestamp};
use pbx_hal::modem::pin::{PinGuard, PinOutcome};
use pbx_hal::modem::response::{CallDirection, CallInfo, CallState, CmeError, RegStatus, SimState};
use pbx_hal::modem::session::{
    CommandError, CommandId, Discarded, ModemEvent, Response, Session, SessionConfig,
};

/// How often signal, registration and operator are read while idle.
pub const STATUS_POLL: Duration = Duration::from_secs(30);
/// How often `AT+CLCC` is read while a call is set up or up (the EC25 reports
/// alerting and answer only there).
pub const CALL_POLL: Duration = Duration::from_secs(1);
/// How long to wait for `+CLIP` after `RING` before ringing without a number.
pub const CLIP_WAIT: Duration = Duration::from_millis(500);
/// After `ATZ` or a power-cycle: time for the module to boot before start-up again.
pub const REBOOT_WAIT: Duration = Duration::from_secs(2);

/// PIN and PUK as the admin stored them, with the SIM's earlier verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The PIN to use once at start.
    pub pin: Option<Pin>,
    /// The SIM rejected this PIN: never send it.
    pub pin_rejected: bool,
    /// The admin allowed the PIN to use the SIM's last attempt.
    pub pin_last_attempt_ok: bool,
    /// PUK and the new PIN to set with it.
    pub puk: Option<(Puk, Pin)>,
    /// The SIM rejected this PUK: never send it.
    pub puk_rejected: bool,
}

/// The SIM as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimStatus {
    /// Not known yet (start-up, module not answering).
    Unknown,
    /// Ready.
    Ready,
    /// Waiting for the PIN.
    PinRequired,
    /// Waiting for the PUK.
    PukRequired,
    /// No SIM in the slot.
    NotInserted,
    /// Another state, as the module names it.
    Other(String),
}

impl SimStatus {
    /// Short text for status listings.
    pub fn label(&self) -> String {
        match self {
            SimStatus::Unknown => "unknown".into(),
            SimStatus::Ready => "ready".into(),
            SimStatus::PinRequired => "PIN needed".into(),
            SimStatus::PukRequired => "PUK needed".into(),
            SimStatus::NotInserted => "no SIM".into(),
            SimStatus::Other(s) => s.clone(),
        }
    }
}

/// The module's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GsmStatus {
    /// The modem answered its last command.
    pub responding: bool,
    /// SIM state.
    pub sim: SimStatus,
    /// Circuit-switched registration (`+CREG`).
    pub cs: Option<RegStatus>,
    /// LTE registration (`+CEREG`).
    pub eps: Option<RegStatus>,
    /// Operator name.
    pub operator: Option<String>,
    /// Signal in dBm.
    pub signal_dbm: Option<i16>,
    /// PIN attempts left, if known.
    pub pin_left: Option<u8>,
    /// PUK attempts left, if known.
    pub puk_left: Option<u8>,
    /// The last problem, for the installer.
    pub last_error: Option<String>,
}

impl GsmStatus {
    /// Registered at home or roaming (circuit-switched or LTE).
    pub fn registered(&self) -> bool {
        self.cs.is_some_and(RegStatus::is_registered)
            || self.eps.is_some_and(RegStatus::is_registered)
    }

    /// Short registration text for status listings.
    pub fn registration_label(&self) -> String {
        let best = match (self.cs, self.eps) {
            (Some(c), _) if c.is_registered() => Some(c),
            (_, Some(e)) if e.is_registered() => Some(e),
            (c, e) => c.or(e),
        };
        match best {
            None => "unknown",
            Some(RegStatus::Home) => "home",
            Some(RegStatus::Roaming) => "roaming",
            Some(RegStatus::Searching) => "searching",
            Some(RegStatus::Denied) => "denied",
            Some(RegStatus::NotRegistered) => "not registered",
            Some(RegStatus::Unknown) => "unknown",
            Some(RegStatus::Other(8)) => "emergency only",
            Some(RegStatus::Other(_)) => "other",
        }
        .into()
    }

    /// Only emergency services (TS 27.007 `<stat>` 8, "attached for emergency bearer
    /// services only").
    pub fn emergency_only(&self) -> bool {
        self.cs == Some(RegStatus::Other(8)) || self.eps == Some(RegStatus::Other(8))
    }
}

/// A voice call's progress, for the call layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GsmCallEvent {
    /// A call comes in (caller's number if sent).
    Incoming {
        /// The caller, `None` when withheld or unavailable.
        number: Option<String>,
    },
    /// Our outgoing call rings at the far end.
    Alerting,
    /// The call is connected (far end answered, or we answered).
    Answered,
    /// The call ended.
    Ended {
        /// Why, for logs and the call record.
        reason: String,
    },
}

/// What the gateway reports to its shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEvent {
    /// [`Gateway::status`] changed.
    StatusChanged,
    /// The SIM took the PIN.
    PinAccepted,
    /// The SIM rejected the PIN: store the rejection, never send it again.
    PinRejected {
        /// PIN attempts left, if known.
        attempts_left: Option<u8>,
    },
    /// The SIM took the PUK (the new PIN is now its PIN).
    PukAccepted,
    /// The SIM rejected the PUK: store the rejection.
    PukRejected {
        /// PUK attempts left, if known.
        attempts_left: Option<u8>,
    },
    /// An SMS arrived (all parts joined).
    SmsReceived {
        /// Sender number or name.
        from: String,
        /// The text (8-bit data shown as hex).
        text: String,
        /// Parts it came in.
        parts: u8,
        /// Service-centre time stamp.
        timestamp: Timestamp,
    },
    /// Sending an SMS ended.
    SmsFinished {
        /// The caller's id from [`Gateway::send_sms`].
        id: i64,
        /// Parts sent, or why it failed.
        result: Result<usize, String>,
    },
    /// The modem does not answer and a reset did not help: power-cycle it.
    PowerCycleNeeded,
    /// The module restarted (reset, power-cycle or on its own).
    ModemRestarted,
    /// Call progress.
    Call(GsmCallEvent),
    /// Something for the log (dropped input, failed housekeeping command).
    Log(String),
}

/// A call could not be placed or acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GsmCallError {
    /// The number is not dialable.
    #[error(transparent)]
    Number(#[from] InvalidArgument),
    /// The module carries one call at a time.
    #[error("the GSM module is busy with another call")]
    Busy,
    /// No usable SIM or network (only emergency numbers may still be dialled).
    #[error("the GSM module cannot call now: {0}")]
    NotReady(String),
    /// No call to answer or hang up.
    #[error("no GSM call")]
    NoCall,
    /// The modem's command queue is full.
    #[error("the GSM module is not answering")]
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    /// RING seen, waiting for +CLIP.
    Ringing {
        announced: bool,
    },
    /// Answered by us: ATA in flight.
    Answering,
    Dialing,
    Alerting,
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Call {
    outgoing: bool,
    phase: CallPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Start-up and housekeeping: errors are logged.
    Setup,
    /// The last start-up command (errors logged too).
    SetupDone,
    SimState,
    Counters,
    Pin,
    Puk,
    Status,
    ReadSms(u16),
    /// `AT+CMGL` at start-up: messages left on the SIM.
    ListSms,
    DeleteSms,
    SmsPart {
        id: i64,
        last: bool,
        parts: usize,
    },
    Dial,
    Answer,
    HangUp,
    ListCalls,
    Reset,
    /// A bare `AT` before a dial: a hung module shows in its short time-out instead of
    /// the dial's minutes.
    Alive,
}

/// The GSM gateway core.
#[derive(Debug)]
pub struct Gateway {
    session: Session,
    guard: PinGuard,
    creds: Credentials,
    status: GsmStatus,
    /// Start-up after SIM ready is done (caller ID, PDU mode, URCs on).
    network_setup: bool,
    /// Those commands were answered: calls and SMS can be taken.
    setup_done: bool,
    purposes: HashMap<CommandId, Purpose>,
    reassembler: Reassembler,
    failed_sms: Vec<i64>,
    next_concat_ref: u8,
    call: Option<Call>,
    status_poll_at: Option<Instant>,
    call_poll_at: Option<Instant>,
    clip_wait_until: Option<Instant>,
    restart_at: Option<Instant>,
    events: VecDeque<GatewayEvent>,
}

impl Gateway {
    /// A gateway that starts the module at once.
    pub fn new(now: Instant, creds: Credentials) -> Self {
        let mut g = Gateway {
            // A command without an answer is followed by an `AT` probe, and the probe's
            // silence starts recovery: a hung module is found within that command's
            // time-out, not at the next status poll.
            session: Session::new(SessionConfig {
                probe_after_timeout: true,
                ..SessionConfig::default()
            }),
            guard: PinGuard::new(),
            creds,
            status: GsmStatus {
                responding: false,
                sim: SimStatus::Unknown,
                cs: None,
                eps: None,
                operator: None,
                signal_dbm: None,
                pin_left: None,
                puk_left: None,
                last_error: None,
            },
            network_setup: false,
            setup_done: false,
            purposes: HashMap::new(),
            reassembler: Reassembler::default(),
            failed_sms: Vec::new(),
            next_concat_ref: 0,
            call: None,
            status_poll_at: None,
            call_poll_at: None,
            clip_wait_until: None,
            restart_at: None,
            events: VecDeque::new(),
        };
        g.start_up(now);
        g
    }

    /// The module's status.
    pub fn status(&self) -> &GsmStatus {
        &self.status
    }

    /// SIM ready, registered, no call in progress: an ordinary call can go out or come in.
    pub fn can_take_call(&self) -> bool {
        self.status.responding
            && self.setup_done
            && self.status.sim == SimStatus::Ready
            && self.status.registered()
            && self.call.is_none()
    }

    /// An emergency call can go out: SIM present and ready (German rules want a working
    /// SIM), registered or attached for emergency services only.
    pub fn is_emergency_capable(&self) -> bool {
        self.status.responding
            && self.status.sim == SimStatus::Ready
            && (self.status.registered() || self.status.emergency_only())
    }

    /// SMS can be handed over now.
    pub fn can_send_sms(&self) -> bool {
        self.status.responding
            && self.setup_done
            && self.status.sim == SimStatus::Ready
            && self.status.registered()
    }

    /// A call is in progress.
    pub fn in_call(&self) -> bool {
        self.call.is_some()
    }

    /// New PIN/PUK from the admin. Tried at once if the SIM is waiting for one.
    pub fn set_credentials(&mut self, now: Instant, creds: Credentials) {
        if creds == self.creds {
            return;
        }
        self.creds = creds;
        if matches!(
            self.status.sim,
            SimStatus::PinRequired | SimStatus::PukRequired
        ) {
            self.send(now, Command::QueryPinCounters, Purpose::Counters);
        }
    }

    /// Bytes read from the modem.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.session.handle_input(now, bytes);
        self.drain_session(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        self.drain_session(now);
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            self.start_up(now);
        }
        if self.clip_wait_until.is_some_and(|t| t <= now) {
            self.clip_wait_until = None;
            self.announce_incoming(None);
        }
        if self.call_poll_at.is_some_and(|t| t <= now) {
            self.call_poll_at = None;
            if self.call.is_some() {
                self.send(now, Command::ListCalls, Purpose::ListCalls);
            }
        }
        if self.status_poll_at.is_some_and(|t| t <= now) {
            self.status_poll_at = Some(now + STATUS_POLL);
            self.poll_status(now);
        }
    }

    /// Bytes to write to the modem.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.session.poll_timeout(),
            self.status_poll_at,
            self.call_poll_at,
            self.clip_wait_until,
            self.restart_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The shell power-cycled the module: start again once it booted.
    pub fn modem_power_cycled(&mut self, now: Instant) {
        self.session.reset();
        self.drain_session(now);
        self.module_restarted(now);
        self.restart_at = Some(now + REBOOT_WAIT);
    }

    /// Send an SMS; the result comes as [`GatewayEvent::SmsFinished`] with `id`. A text
    /// that cannot be encoded (more than 255 parts) or a bad number fails at once.
    pub fn send_sms(&mut self, now: Instant, id: i64, number: &str, text: &str) {
        if !self.can_send_sms() {
            let why = format!(
                "GSM module not ready (SIM {}, network {})",
                self.status.sim.label(),
                self.status.registration_label()
            );
            return self.events.push_back(GatewayEvent::SmsFinished {
                id,
                result: Err(why),
            });
        }
        let opts = SubmitOptions {
            validity: Some(0xAD), // 7 days, what the provider's SMS centre keeps anyway
            status_report: false,
            concat_ref: self.next_concat_ref,
        };
        self.next_concat_ref = self.next_concat_ref.wrapping_add(1);
        let parts = match pdu::encode_submit(number, text, &opts) {
            Ok(p) => p,
            Err(e) => {
                return self.events.push_back(GatewayEvent::SmsFinished {
                    id,
                    result: Err(e.to_string()),
                })
            }
        };
        let n = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            let purpose = Purpose::SmsPart {
                id,
                last: i + 1 == n,
                parts: n,
            };
            if self
                .session
                .send(now, Command::SendSms(p))
                .map(|cid| {
                    self.purposes.insert(cid, purpose);
                })
                .is_err()
            {
                self.failed_sms.push(id);
                self.events.push_back(GatewayEvent::SmsFinished {
                    id,
                    result: Err("the GSM module's queue is full; try again".into()),
                });
                break;
            }
        }
    }

    /// Place a voice call. Emergency numbers go out whenever the module answers.
    pub fn dial(
        &mut self,
        now: Instant,
        number: &str,
        emergency: bool,
    ) -> Result<(), GsmCallError> {
        let n = DialNumber::new(number)?;
        if self.call.is_some() {
            return Err(GsmCallError::Busy);
        }
        if !emergency && !self.can_take_call() {
            return Err(GsmCallError::NotReady(format!(
                "SIM {}, network {}",
                self.status.sim.label(),
                self.status.registration_label()
            )));
        }
        self.send(now, Command::At, Purpose::Alive);
        let cid = self
            .session
            .send(now, Command::Dial(n))
            .map_err(|_| GsmCallError::Queue)?;
        self.purposes.insert(cid, Purpose::Dial);
        self.call = Some(Call {
            outgoing: true,
            phase: CallPhase::Dialing,
        });
        Ok(())
    }

    /// Answer the ringing incoming call.
    pub fn answer(&mut self, now: Instant) -> Result<(), GsmCallError> {
        match &mut self.call {
            Some(c) if matches!(c.phase, CallPhase::Ringing { .. }) => {
                c.phase = CallPhase::Answering;
            }
            _ => return Err(GsmCallError::NoCall),
        }
        self.clip_wait_until = None;
        self.send(now, Command::Answer, Purpose::Answer);
        Ok(())
    }

    /// Hang up the call (no event follows: the caller ended it).
    pub fn hang_up(&mut self, now: Instant) -> Result<(), GsmCallError> {
        if self.call.take().is_none() {
            return Err(GsmCallError::NoCall);
        }
        self.clip_wait_until = None;
        self.call_poll_at = None;
        self.send(now, Command::HangUp, Purpose::HangUp);
        Ok(())
    }

    // ----- internals -----

    fn send(&mut self, now: Instant, cmd: Command, purpose: Purpose) {
        match self.session.send(now, cmd) {
            Ok(id) => {
                self.purposes.insert(id, purpose);
            }
            Err(e) => self
                .events
                .push_back(GatewayEvent::Log(format!("modem command dropped: {e}"))),
        }
    }

    fn start_up(&mut self, now: Instant) {
        self.network_setup = false;
        self.setup_done = false;
        self.send(now, Command::At, Purpose::Setup);
        self.send(now, Command::EchoOff, Purpose::Setup);
        self.send(now, Command::EnableNumericErrors, Purpose::Setup);
        self.send(now, Command::QuerySimState, Purpose::SimState);
        if self.status_poll_at.is_none() {
            self.status_poll_at = Some(now + STATUS_POLL);
        }
    }

    fn setup_network(&mut self, now: Instant) {
        if self.network_setup {
            return;
        }
        self.network_setup = true;
        for cmd in [
            Command::EnableCallerId,
            Command::SetPduMode,
            Command::EnableSmsIndications,
            // Call audio over the module's PCM interface (the audio bridge's path).
            Command::SetPcmInterface,
            Command::EnableRegistrationUrcs { eps: false },
        ] {
            self.send(now, cmd, Purpose::Setup);
        }
        // Messages that arrived while the box was off (or before the SIM was ready) are
        // on the SIM without a +CMTI: read them into the inbox like new ones.
        self.send(now, Command::ListSms, Purpose::ListSms);
        self.send(
            now,
            Command::EnableRegistrationUrcs { eps: true },
            Purpose::SetupDone,
        );
        self.poll_status(now);
    }

    fn poll_status(&mut self, now: Instant) {
        if self.status.sim != SimStatus::Ready {
            // Also notices a SIM put in, or a modem that came back.
            self.send(now, Command::QuerySimState, Purpose::SimState);
            return;
        }
        // AT+COPS? may take minutes to answer: asked at start-up and when the module
        // registers, not in every poll.
        let first = self.status.operator.is_none();
        for cmd in [
            Command::QueryRegistration,
            Command::QueryEpsRegistration,
            Command::QuerySignal,
        ] {
            self.send(now, cmd, Purpose::Status);
        }
        if first {
            self.send(now, Command::QueryOperator, Purpose::Status);
        }
    }

    fn changed(&mut self) {
        if self.events.back() != Some(&GatewayEvent::StatusChanged) {
            self.events.push_back(GatewayEvent::StatusChanged);
        }
    }

    fn set_error(&mut self, e: Option<String>) {
        if self.status.last_error != e {
            self.status.last_error = e;
            self.changed();
        }
    }

    fn drain_session(&mut self, now: Instant) {
        while let Some(ev) = self.session.poll_event() {
            self.on_modem_event(now, ev);
        }
    }

    fn on_modem_event(&mut self, now: Instant, ev: ModemEvent) {
        match ev {
            ModemEvent::CommandCompleted { id, kind, result } => {
                let purpose = self.purposes.remove(&id).unwrap_or(Purpose::Setup);
                if !matches!(
                    result,
                    Err(CommandError::Timeout(_) | CommandError::Aborted)
                ) && !self.status.responding
                {
                    self.status.responding = true;
                    self.changed();
                }
                self.on_completed(now, purpose, kind, result);
            }
            // Repeated RINGs of the same call change nothing.
            ModemEvent::IncomingCall if self.call.is_none() => {
                self.call = Some(Call {
                    outgoing: false,
                    phase: CallPhase::Ringing { announced: false },
                });
                self.clip_wait_until = Some(now + CLIP_WAIT);
            }
            ModemEvent::CallerId(c) => {
                if matches!(
                    self.call,
                    Some(Call {
                        phase: CallPhase::Ringing { announced: false },
                        ..
                    })
                ) {
                    self.clip_wait_until = None;
                    self.announce_incoming(c.number);
                }
            }
            ModemEvent::RemoteHangup => self.end_call("remote hang-up"),
            ModemEvent::RemoteBusy => self.end_call("busy"),
            ModemEvent::RemoteNoAnswer => self.end_call("no answer"),
            ModemEvent::NoDialtone => self.end_call("no network"),
            ModemEvent::CallStatus(c) => self.on_call_info(&[c]),
            ModemEvent::SmsReceived { index, .. } => {
                self.send(now, Command::ReadSms(index), Purpose::ReadSms(index));
            }
            ModemEvent::RegistrationChanged { eps, registration } => {
                let slot = if eps {
                    &mut self.status.eps
                } else {
                    &mut self.status.cs
                };
                if *slot != Some(registration.status) {
                    *slot = Some(registration.status);
                    self.changed();
                    if registration.status.is_registered() {
                        self.send(now, Command::QueryOperator, Purpose::Status);
                    }
                }
            }
            ModemEvent::SimState(s) => self.on_sim_state(now, s),
            ModemEvent::Unsolicited(u) if u == "RDY" => {
                // The module rebooted on its own (or after our reset): start again.
                self.module_restarted(now);
                self.start_up(now);
            }
            ModemEvent::Unsolicited(_) | ModemEvent::ModuleIndication(_) => {}
            ModemEvent::Discarded(d) => {
                let what = match d {
                    Discarded::Garbage(g) => format!("garbage from the modem skipped: {g:?}"),
                    Discarded::Malformed(e) => format!("modem line skipped: {e}"),
                    Discarded::StrayResult(r) => format!("late modem result skipped: {r:?}"),
                    Discarded::UnexpectedPrompt => "unexpected SMS prompt skipped".into(),
                };
                self.events.push_back(GatewayEvent::Log(what));
            }
            ModemEvent::RecoveryNeeded { attempt, .. } => {
                self.status.responding = false;
                self.set_error(Some("the modem does not answer".into()));
                self.changed();
                self.session.reset();
                self.drain_session(now);
                self.module_restarted(now);
                if attempt <= 1 {
                    self.send(now, Command::Reset, Purpose::Reset);
                } else {
                    self.events.push_back(GatewayEvent::PowerCycleNeeded);
                    // Back off while the module stays dead (at most once a minute).
                    self.restart_at = Some(now + REBOOT_WAIT * attempt.min(30));
                }
            }
            _ => {}
        }
    }

    /// Whatever was going on with the module is gone: calls end, SIM and network are
    /// unknown until asked again; PDU mode and URCs must be set again.
    fn module_restarted(&mut self, _now: Instant) {
        self.end_call("GSM module restarted");
        self.network_setup = false;
        self.setup_done = false;
        self.status.sim = SimStatus::Unknown;
        self.status.cs = None;
        self.status.eps = None;
        self.guard.record_sim_state(SimState::NotReady);
        self.events.push_back(GatewayEvent::ModemRestarted);
        self.changed();
    }

    fn on_completed(
        &mut self,
        now: Instant,
        purpose: Purpose,
        kind: CommandKind,
        result: Result<Response, CommandError>,
    ) {
        if purpose == Purpose::SetupDone && self.network_setup {
            self.setup_done = true;
            self.changed();
        }
        match (purpose, result) {
            (Purpose::ListSms, Ok(Response::SmsList(indexes))) => {
                for index in indexes {
                    // A +CMTI during start-up may have asked for it already.
                    let pending = self
                        .purposes
                        .values()
                        .any(|p| *p == Purpose::ReadSms(index));
                    if !pending {
                        self.send(now, Command::ReadSms(index), Purpose::ReadSms(index));
                    }
                }
            }
            (Purpose::SimState, Ok(Response::SimState(s))) => self.on_sim_state(now, s),
            (Purpose::SimState, Err(CommandError::Cme(CmeError::Code(10)))) => {
                self.on_sim_state(now, SimState::NotInserted)
            }
            (Purpose::Counters, Ok(Response::PinCounters(c))) => {
                self.guard.record_counters(c);
                self.status.pin_left = Some(c.pin_left);
                self.status.puk_left = Some(c.puk_left);
                self.changed();
                self.try_code(now);
            }
            (Purpose::Counters, Err(e)) => {
                // Unknown counters: the guard refuses unless the admin confirmed.
                self.events
                    .push_back(GatewayEvent::Log(format!("PIN counters unknown: {e}")));
                self.try_code(now);
            }
            (Purpose::Pin, r) => self.on_pin_result(now, &r, false),
            (Purpose::Puk, r) => self.on_pin_result(now, &r, true),
            (Purpose::Status, Ok(r)) => self.on_status(kind, r),
            (Purpose::ReadSms(index), r) => self.on_sms_read(now, index, r),
            (Purpose::SmsPart { id, last, parts }, r) => {
                if self.failed_sms.contains(&id) {
                    if last {
                        self.failed_sms.retain(|x| *x != id);
                    }
                    return;
                }
                match r {
                    Ok(_) if last => self.events.push_back(GatewayEvent::SmsFinished {
                        id,
                        result: Ok(parts),
                    }),
                    Ok(_) => {}
                    Err(e) => {
                        if !last {
                            self.failed_sms.push(id);
                        }
                        self.events.push_back(GatewayEvent::SmsFinished {
                            id,
                            result: Err(sms_error(&e)),
                        });
                    }
                }
            }
            (Purpose::Dial, Ok(_)) if self.call.is_some() => {
                self.call_poll_at = Some(now + CALL_POLL);
            }
            (Purpose::Dial | Purpose::Answer, Err(e)) => self.end_call(&e.to_string()),
            (Purpose::Answer, Ok(_)) => {
                if let Some(c) = &mut self.call {
                    c.phase = CallPhase::Active;
                    self.call_poll_at = Some(now + CALL_POLL);
                    self.events
                        .push_back(GatewayEvent::Call(GsmCallEvent::Answered));
                }
            }
            (Purpose::ListCalls, Ok(Response::Calls(calls))) => {
                self.on_call_info(&calls);
                self.call_poll_at = self.call.map(|_| now + CALL_POLL);
            }
            (Purpose::ListCalls, Err(_)) if self.call.is_some() => {
                self.call_poll_at = Some(now + CALL_POLL);
            }
            (Purpose::Reset, Ok(_)) => {
                self.restart_at = Some(now + Duration::from_millis(300));
            }
            // No answer to ATZ either: try the start-up again after a while (its
            // time-outs lead to the next recovery round).
            (Purpose::Reset, Err(_)) => self.restart_at = Some(now + REBOOT_WAIT),
            // Its silence is the session's to act on (probe, then recovery).
            (Purpose::Alive, _) => {}
            (_, Err(e)) => self.events.push_back(GatewayEvent::Log(format!(
                "modem command {kind:?} failed: {e}"
            ))),
            _ => {}
        }
    }

    fn on_sim_state(&mut self, now: Instant, s: SimState) {
        self.guard.record_sim_state(s.clone());
        let sim = match s {
            SimState::Ready => SimStatus::Ready,
            SimState::PinRequired => SimStatus::PinRequired,
            SimState::PukRequired => SimStatus::PukRequired,
            SimState::NotInserted => SimStatus::NotInserted,
            SimState::NotReady => SimStatus::Unknown,
            SimState::Other(o) => SimStatus::Other(o),
            other => SimStatus::Other(format!("{other:?}")),
        };
        let was = std::mem::replace(&mut self.status.sim, sim.clone());
        if was != sim {
            self.changed();
        }
        match sim {
            SimStatus::Ready => {
                if matches!(
                    self.status.last_error.as_deref(),
                    Some(e) if e.starts_with("SIM") || e.starts_with("PIN") || e.starts_with("PUK")
                ) {
                    self.set_error(None);
                }
                self.setup_network(now);
            }
            SimStatus::PinRequired | SimStatus::PukRequired if was != sim => {
                self.send(now, Command::QueryPinCounters, Purpose::Counters);
            }
            SimStatus::NotInserted => {
                self.status.cs = None;
                self.status.eps = None;
                self.end_call("SIM removed");
            }
            _ => {}
        }
    }

    /// The SIM waits for PIN or PUK and the counters are fresh: send the stored code,
    /// unless the SIM rejected it before or it would spend an unconfirmed last attempt.
    fn try_code(&mut self, now: Instant) {
        match self.status.sim {
            SimStatus::PinRequired => {
                let Some(pin) = self.creds.pin.clone() else {
                    return self.set_error(Some(
                        "SIM PIN needed: enter it with `pbxctl gsm pin`".into(),
                    ));
                };
                if self.creds.pin_rejected {
                    return self.set_error(Some(format!(
                        "PIN rejected, {} attempts left: enter the right PIN",
                        left(self.status.pin_left)
                    )));
                }
                match self.guard.check_pin(&pin, self.creds.pin_last_attempt_ok) {
                    Ok(cmd) => self.send(now, cmd, Purpose::Pin),
                    Err(e) => self.set_error(Some(format!("PIN not sent: {e}"))),
                }
            }
            SimStatus::PukRequired => {
                let Some((puk, new_pin)) = self.creds.puk.clone() else {
                    return self.set_error(Some(
                        "SIM blocked, PUK needed: enter it with `pbxctl gsm puk`".into(),
                    ));
                };
                if self.creds.puk_rejected {
                    return self.set_error(Some(format!(
                        "PUK rejected, {} attempts left: enter the right PUK",
                        left(self.status.puk_left)
                    )));
                }
                // The PUK is entered by the admin for exactly this; no second confirmation
                // while more than one attempt is left.
                let confirmed = self.status.puk_left.is_some_and(|n| n > 1);
                match self.guard.check_puk(&puk, &new_pin, confirmed) {
                    Ok(cmd) => self.send(now, cmd, Purpose::Puk),
                    Err(e) => self.set_error(Some(format!("PUK not sent: {e}"))),
                }
            }
            _ => {}
        }
    }

    fn on_pin_result(&mut self, now: Instant, r: &Result<Response, CommandError>, puk: bool) {
        match self.guard.record_result(r) {
            PinOutcome::Accepted => {
                self.events.push_back(if puk {
                    GatewayEvent::PukAccepted
                } else {
                    GatewayEvent::PinAccepted
                });
                if puk {
                    if let Some((_, new_pin)) = self.creds.puk.take() {
                        self.creds.pin = Some(new_pin);
                        self.creds.pin_rejected = false;
                    }
                }
                self.status.pin_left = None;
                self.status.puk_left = None;
                self.set_error(None);
                self.send(now, Command::QuerySimState, Purpose::SimState);
            }
            PinOutcome::Rejected { attempts_left } => {
                if puk {
                    self.creds.puk_rejected = true;
                    self.status.puk_left = attempts_left.or(self.status.puk_left);
                    self.events
                        .push_back(GatewayEvent::PukRejected { attempts_left });
                    self.set_error(Some(format!(
                        "PUK rejected, {} attempts left",
                        left(attempts_left)
                    )));
                } else {
                    self.creds.pin_rejected = true;
                    self.status.pin_left = attempts_left;
                    self.events
                        .push_back(GatewayEvent::PinRejected { attempts_left });
                    self.set_error(Some(format!(
                        "PIN rejected, {} attempts left",
                        left(attempts_left)
                    )));
                }
                // Ask the SIM for its state (PIN or PUK now) and exact counters.
                self.send(now, Command::QuerySimState, Purpose::SimState);
            }
            PinOutcome::Unknown | PinOutcome::NotPending => {
                self.send(now, Command::QuerySimState, Purpose::SimState);
            }
        }
        self.changed();
    }

    fn on_status(&mut self, kind: CommandKind, r: Response) {
        let before = self.status.clone();
        match r {
            Response::Registration(reg) if kind == CommandKind::QueryEpsRegistration => {
                self.status.eps = Some(reg.status);
            }
            Response::Registration(reg) => self.status.cs = Some(reg.status),
            Response::Operator(op) => self.status.operator = op.name,
            Response::Signal(s) => self.status.signal_dbm = s.rssi_dbm,
            _ => {}
        }
        if self.status != before {
            self.changed();
        }
    }

    fn on_sms_read(&mut self, now: Instant, index: u16, r: Result<Response, CommandError>) {
        match r {
            Ok(Response::SmsRead(Some(stored))) => match pdu::decode_deliver(&stored.pdu) {
                Ok(d) => {
                    if let Some(msg) = self.reassembler.push(d) {
                        let text = match msg.body {
                            Body::Text(t) => t,
                            Body::Binary(b) => pdu::to_hex(&b),
                        };
                        self.events.push_back(GatewayEvent::SmsReceived {
                            from: msg.sender.to_string(),
                            text,
                            parts: msg.parts,
                            timestamp: msg.timestamp,
                        });
                    }
                }
                Err(e) => self.events.push_back(GatewayEvent::Log(format!(
                    "SMS at index {index} unreadable, deleted: {e}"
                ))),
            },
            Ok(_) => return,
            Err(e) => {
                return self.events.push_back(GatewayEvent::Log(format!(
                    "cannot read SMS at index {index}: {e}"
                )))
            }
        }
        // Held in the inbox (or the reassembler) now: free the SIM's slot.
        self.send(now, Command::DeleteSms(index), Purpose::DeleteSms);
    }

    fn announce_incoming(&mut self, number: Option<String>) {
        if let Some(c) = &mut self.call {
            if let CallPhase::Ringing { announced: false } = c.phase {
                c.phase = CallPhase::Ringing { announced: true };
                self.events
                    .push_back(GatewayEvent::Call(GsmCallEvent::Incoming { number }));
            }
        }
    }

    fn on_call_info(&mut self, calls: &[CallInfo]) {
        let Some(call) = &mut self.call else { return };
        let ours = calls
            .iter()
            .find(|c| (c.direction == CallDirection::Outgoing) == call.outgoing);
        let Some(info) = ours else {
            // AT+CLCC lists no call: it ended without a URC we saw.
            if matches!(
                call.phase,
                CallPhase::Active | CallPhase::Alerting | CallPhase::Dialing
            ) {
                self.end_call("call no longer listed by the module");
            }
            return;
        };
        match (call.phase, info.state) {
            (CallPhase::Dialing, CallState::Alerting) => {
                call.phase = CallPhase::Alerting;
                self.events
                    .push_back(GatewayEvent::Call(GsmCallEvent::Alerting));
            }
            (CallPhase::Dialing | CallPhase::Alerting, CallState::Active) => {
                call.phase = CallPhase::Active;
                self.events
                    .push_back(GatewayEvent::Call(GsmCallEvent::Answered));
            }
            _ => {}
        }
    }

    fn end_call(&mut self, reason: &str) {
        if self.call.take().is_some() {
            self.clip_wait_until = None;
            self.call_poll_at = None;
            self.events
                .push_back(GatewayEvent::Call(GsmCallEvent::Ended {
                    reason: reason.to_owned(),
                }));
        }
    }
}

fn left(n: Option<u8>) -> String {
    n.map_or_else(|| "unknown".into(), |n| n.to_string())
}

/// A delivery error as the installer reads it.
fn sms_error(e: &CommandError) -> String {
    match e {
        // TS 27.005 §3.2.5.
        CommandError::Cms(330) => "SMS centre address unknown (+CMS ERROR: 330)".into(),
        CommandError::Cms(331) => "no network service (+CMS ERROR: 331)".into(),
        CommandError::Cms(n) => format!("the network refused the SMS (+CMS ERROR: {n})"),
        other => format!("the modem did not send the SMS: {other}"),
    }
}
