//! A Quectel EC25-class modem as a sans-IO core: bytes in from the host, bytes out to it,
//! time passed in. The test drives the network side (calls, SMS, registration, faults)
//! through the script methods.
//!
//! Answers follow TS 27.007 / 27.005 with `ATV1` framing: information lines and final
//! result codes as `<CR><LF>text<CR><LF>`, echo of every byte in command state while `ATE1`.
//! Like the EC25, `ATD<n>;` answers `OK` at once and call progress comes unsolicited
//! (`BUSY`, `NO ANSWER`, `NO CARRIER`); `AT+CLCC` shows the call states.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::modem::pdu::{self, Address, PduError, Submit, Timestamp};
use crate::modem::response::{PinCounters, RegStatus, SimState};

/// PIN attempts a SIM allows before it wants the PUK.
pub const PIN_ATTEMPTS: u8 = 3;
/// PUK attempts a SIM allows before it is blocked for good.
pub const PUK_ATTEMPTS: u8 = 10;

/// How the emulated module and its SIM start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec25Config {
    /// The SIM's PIN; `None` = PIN lock off (the SIM is ready at once).
    pub pin: Option<String>,
    /// The SIM's PUK (8 digits).
    pub puk: String,
    /// Whether a SIM is in the slot.
    pub sim_inserted: bool,
    /// Operator name for `AT+COPS?`.
    pub operator: String,
    /// Registration once the SIM is ready (TS 27.007 `<stat>`).
    pub registration: RegStatus,
    /// `AT+CSQ` `<rssi>` (0..=31, 99 unknown).
    pub rssi: u8,
    /// `<n>` of `AT+CREG=<n>` and `AT+CEREG=<n>` in the stored profile (1 = URCs on).
    pub registration_urcs: u8,
    /// Emergency numbers dialled even without SIM or PIN (3GPP TS 22.101 §10).
    pub emergency_numbers: Vec<String>,
    /// Time from `ATD` to the remote side alerting.
    pub alert_delay: Duration,
    /// Time between repeated `RING`s of an incoming call.
    pub ring_interval: Duration,
    /// Time from a reset to `RDY`.
    pub boot_time: Duration,
    /// Service-centre time stamp put on delivered SMS.
    pub sms_timestamp: Timestamp,
}

impl Default for Ec25Config {
    fn default() -> Self {
        Ec25Config {
            pin: Some("1234".into()),
            puk: "12345678".into(),
            sim_inserted: true,
            operator: "Emulated Telecom".into(),
            registration: RegStatus::Home,
            rssi: 20,
            registration_urcs: 1,
            emergency_numbers: vec!["112".into(), "110".into(), "911".into()],
            alert_delay: Duration::from_millis(200),
            ring_interval: Duration::from_secs(3),
            boot_time: Duration::from_millis(500),
            sms_timestamp: Timestamp {
                year: 2026,
                month: 1,
                day: 2,
                hour: 3,
                minute: 4,
                second: 5,
                tz_quarter_hours: 4,
            },
        }
    }
}

/// A script step that did not fit the emulator's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// No call in a state the step applies to.
    #[error("no call to act on")]
    NoCall,
    /// A call is already up (the emulator has one line).
    #[error("a call is already in progress")]
    CallInProgress,
    /// The SMS could not be encoded.
    #[error("cannot encode the SMS: {0}")]
    Pdu(#[from] PduError),
}

/// The SIM's lock state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Ready,
    Pin,
    Puk,
    Blocked,
}

/// `+CLCC` `<stat>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// 0: connected.
    Active,
    /// 2: outgoing, network not yet alerting.
    Dialing,
    /// 3: outgoing, remote phone ringing.
    Alerting,
    /// 4: incoming, not answered.
    Incoming,
}

impl CallPhase {
    fn code(self) -> u8 {
        match self {
            CallPhase::Active => 0,
            CallPhase::Dialing => 2,
            CallPhase::Alerting => 3,
            CallPhase::Incoming => 4,
        }
    }
}

/// The one call the emulator carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedCall {
    /// Whether the host dialled it.
    pub outgoing: bool,
    /// The remote number.
    pub number: String,
    /// Its state.
    pub phase: CallPhase,
    /// Whether it is an emergency call.
    pub emergency: bool,
}

/// An SMS the host sent with `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// The reference the emulator answered with `+CMGS: <mr>`.
    pub reference: u8,
    /// The PDU as received (SMSC field first).
    pub pdu: Vec<u8>,
    /// The decoded SMS-SUBMIT.
    pub submit: Submit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Alert,
    Ring,
    Boot,
}

#[derive(Debug)]
enum Input {
    /// Command state: collecting a line.
    Command,
    /// After `AT+CMGS=<len>` and the prompt: hex digits until Ctrl-Z.
    Pdu { tpdu_len: usize },
}

/// TS 27.007 §9.2 / TS 27.005 §3.2.5 errors the emulator uses.
#[derive(Debug, Clone, Copy)]
enum Cme {
    NotAllowed = 3,
    SimNotInserted = 10,
    SimPinRequired = 11,
    SimPukRequired = 12,
    IncorrectPassword = 16,
    NoNetwork = 30,
    SimBlocked = 262,
}

impl Cme {
    fn text(self) -> &'static str {
        match self {
            Cme::NotAllowed => "operation not allowed",
            Cme::SimNotInserted => "SIM not inserted",
            Cme::SimPinRequired => "SIM PIN required",
            Cme::SimPukRequired => "SIM PUK required",
            Cme::IncorrectPassword => "incorrect password",
            Cme::NoNetwork => "no network service",
            Cme::SimBlocked => "SIM blocked",
        }
    }
}

/// The emulated module.
#[derive(Debug)]
pub struct Ec25 {
    config: Ec25Config,
    // SIM
    sim_inserted: bool,
    pin: Option<String>,
    lock: Lock,
    pin_left: u8,
    puk_left: u8,
    // Network
    registration: RegStatus,
    rssi: u8,
    creg_n: u8,
    cereg_n: u8,
    // Settings (reset by ATZ and a reboot)
    echo: bool,
    cmee: u8,
    clip: bool,
    pdu_mode: bool,
    // Calls and SMS
    call: Option<EmulatedCall>,
    last_end_reason: String,
    stored: BTreeMap<u16, (u8, Vec<u8>)>,
    next_mr: u8,
    next_concat_ref: u8,
    sent: Vec<SentSms>,
    // I/O
    input: Input,
    line: Vec<u8>,
    output: VecDeque<Vec<u8>>,
    timers: [(Timer, Option<Instant>); 3],
    last_now: Option<Instant>,
    // Faults
    silent: bool,
    /// The supply is switched off (the board's power GPIO).
    powered_off: bool,
    reset_on_next_command: bool,
    booting: bool,
    garbage: Option<Vec<u8>>,
    commands_seen: u64,
    // Audio: the PCM interface in memory (a far-end tone source and a sink)
    qdai: Option<String>,
    far_tone: Option<f32>,
    far_samples: u64,
    far_heard: VecDeque<i16>,
}

/// Samples in one 20 ms PCM frame at 8 kHz.
pub const PCM_FRAME: usize = 160;
/// What the far end heard is kept this long (200 ms).
const HEARD_SAMPLES: usize = 1600;

impl Ec25 {
    /// A module that has booted (as if `RDY` was sent before the host opened the port).
    pub fn new(config: Ec25Config) -> Self {
        let mut m = Ec25 {
            sim_inserted: config.sim_inserted,
            pin: config.pin.clone(),
            lock: Lock::Ready,
            pin_left: PIN_ATTEMPTS,
            puk_left: PUK_ATTEMPTS,
            registration: RegStatus::NotRegistered,
            rssi: config.rssi,
            creg_n: config.registration_urcs,
            cereg_n: config.registration_urcs,
            echo: true,
            cmee: 0,
            clip: false,
            pdu_mode: true,
            call: None,
            last_end_reason: "No cause information available".into(),
            stored: BTreeMap::new(),
            next_mr: 1,
            next_concat_ref: 0,
            sent: Vec::new(),
            input: Input::Command,
            line: Vec::new(),
            output: VecDeque::new(),
            timers: [
                (Timer::Alert, None),
                (Timer::Ring, None),
                (Timer::Boot, None),
            ],
            last_now: None,
            silent: false,
            powered_off: false,
            reset_on_next_command: false,
            booting: false,
            garbage: None,
            commands_seen: 0,
            qdai: None,
            far_tone: None,
            far_samples: 0,
            far_heard: VecDeque::new(),
            config,
        };
        m.power_on_sim();
        // Boot-time URCs went out before the host opened the port.
        m.output.clear();
        m
    }

    // ----- the host side -----

    /// Bytes the host wrote to the serial port.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.last_now = Some(now);
        if self.silent || self.booting || self.powered_off {
            return;
        }
        for &b in bytes {
            if self.silent || self.booting {
                return;
            }
            match self.input {
                Input::Command => self.command_byte(now, b),
                Input::Pdu { tpdu_len } => self.pdu_byte(b, tpdu_len),
            }
        }
    }

    /// Time has passed: alerting, repeated rings, end of a reboot.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        for i in 0..self.timers.len() {
            let (timer, at) = self.timers[i];
            if at.is_some_and(|t| t <= now) {
                self.timers[i].1 = None;
                self.fire(now, timer);
            }
        }
    }

    /// Next bytes the module sends to the host.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// When `handle_timeout` must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().filter_map(|(_, at)| *at).min()
    }

    // ----- the test's script -----

    /// Put a SIM in: it asks for its PIN again (counters stay: they live on the SIM).
    pub fn insert_sim(&mut self) {
        self.sim_inserted = true;
        self.lock = self.lock_at_power_on();
        let state = self.cpin_text();
        self.urc(&format!("+CPIN: {state}"));
        self.update_registration();
    }

    /// Pull the SIM: registration is lost, a call drops.
    pub fn remove_sim(&mut self) {
        self.sim_inserted = false;
        self.urc("+CPIN: NOT INSERTED");
        if self.call.take().is_some() {
            self.last_end_reason = "Radio link failure".into();
            self.urc("NO CARRIER");
        }
        self.set_registration(RegStatus::NotRegistered);
    }

    /// Change the SIM's PIN (`None` = lock off); the SIM behaves as after a power-up.
    pub fn set_pin(&mut self, pin: Option<&str>) {
        self.pin = pin.map(str::to_owned);
        self.power_on_sim();
    }

    /// PIN and PUK attempts left on the SIM.
    pub fn pin_attempts_left(&self) -> PinCounters {
        PinCounters {
            pin_left: self.pin_left,
            puk_left: self.puk_left,
        }
    }

    /// The SIM state as `AT+CPIN?` would report it.
    pub fn sim_state(&self) -> SimState {
        if !self.sim_inserted {
            return SimState::NotInserted;
        }
        match self.lock {
            Lock::Ready => SimState::Ready,
            Lock::Pin => SimState::PinRequired,
            Lock::Puk => SimState::PukRequired,
            Lock::Blocked => SimState::Other("SIM blocked".into()),
        }
    }

    /// Change the network registration; sends `+CREG`/`+CEREG` if enabled and it changed.
    pub fn set_registration(&mut self, stat: RegStatus) {
        if stat == self.registration {
            return;
        }
        self.registration = stat;
        let code = reg_code(stat);
        if self.creg_n >= 1 {
            self.urc(&format!("+CREG: {code}"));
        }
        if self.cereg_n >= 1 {
            self.urc(&format!("+CEREG: {code}"));
        }
    }

    /// Change the signal (`+CSQ` `<rssi>`, 0..=31 or 99).
    pub fn set_signal(&mut self, rssi: u8) {
        self.rssi = rssi;
    }

    /// A call comes in: `RING` (and `+CLIP` when enabled), repeated until answered.
    pub fn incoming_call(&mut self, number: &str) -> Result<(), ScriptError> {
        if self.call.is_some() {
            return Err(ScriptError::CallInProgress);
        }
        self.call = Some(EmulatedCall {
            outgoing: false,
            number: number.to_owned(),
            phase: CallPhase::Incoming,
            emergency: false,
        });
        self.ring();
        Ok(())
    }

    /// The called party picks up.
    pub fn remote_answers(&mut self) -> Result<(), ScriptError> {
        match &mut self.call {
            Some(c) if c.outgoing && c.phase != CallPhase::Active => {
                c.phase = CallPhase::Active;
                self.set_timer(Timer::Alert, None);
                Ok(())
            }
            _ => Err(ScriptError::NoCall),
        }
    }

    /// The called party is busy: `BUSY`.
    pub fn remote_busy(&mut self) -> Result<(), ScriptError> {
        self.end_outgoing_setup("BUSY", "User busy")
    }

    /// Nobody picks up: `NO ANSWER`.
    pub fn remote_no_answer(&mut self) -> Result<(), ScriptError> {
        self.end_outgoing_setup("NO ANSWER", "No answer")
    }

    /// The remote side ends the call (or the caller gives up ringing): `NO CARRIER`.
    pub fn remote_hangup(&mut self) -> Result<(), ScriptError> {
        if self.call.take().is_none() {
            return Err(ScriptError::NoCall);
        }
        self.set_timer(Timer::Alert, None);
        self.set_timer(Timer::Ring, None);
        self.last_end_reason = "Normal call clearing".into();
        self.urc("NO CARRIER");
        Ok(())
    }

    /// The current call, if any.
    pub fn call(&self) -> Option<&EmulatedCall> {
        self.call.as_ref()
    }

    /// An SMS arrives from `from`: stored as DELIVER PDU(s) (split like a real network
    /// would), each announced with `+CMTI: "SM",<index>`. Returns the indexes.
    pub fn deliver_sms(&mut self, from: &str, text: &str) -> Result<Vec<u16>, ScriptError> {
        let sender = Address::parse_destination(from)?;
        let concat_ref = self.next_concat_ref;
        self.next_concat_ref = concat_ref.wrapping_add(1);
        let parts = pdu::encode_deliver(&sender, self.config.sms_timestamp, text, concat_ref)?;
        let mut indexes = Vec::new();
        for p in parts {
            let index = (1..=u16::MAX)
                .find(|i| !self.stored.contains_key(i))
                .unwrap_or(u16::MAX);
            self.stored.insert(index, (0, p));
            self.urc(&format!("+CMTI: \"SM\",{index}"));
            indexes.push(index);
        }
        Ok(indexes)
    }

    /// Indexes of stored SMS.
    pub fn stored_sms(&self) -> Vec<u16> {
        self.stored.keys().copied().collect()
    }

    /// SMS the host sent, oldest first.
    pub fn sent_sms(&self) -> &[SentSms] {
        &self.sent
    }

    /// AT command lines the module read, including one lost to a reset (a silent or
    /// booting module reads none).
    pub fn commands_seen(&self) -> u64 {
        self.commands_seen
    }

    /// Fault: answer nothing (no echo, no result, no URC) until [`Ec25::wake_up`].
    pub fn go_silent(&mut self) {
        self.silent = true;
    }

    /// End [`Ec25::go_silent`].
    pub fn wake_up(&mut self) {
        self.silent = false;
    }

    /// The module's supply, as the board's power GPIO switches it. Off: nothing is
    /// answered, a call drops, pending output is lost (a hung firmware is cured too). On:
    /// a fresh boot with the same SIM: `RDY` after the boot time, then the PIN is asked
    /// for again (its attempt counters live on the SIM and stay).
    pub fn set_power(&mut self, now: Instant, on: bool) {
        self.last_now = Some(now);
        if on == self.is_powered() {
            return;
        }
        if on {
            self.powered_off = false;
            self.silent = false;
            self.reboot(now);
        } else {
            self.reboot(now);
            self.set_timer(Timer::Boot, None);
            self.booting = false;
            self.powered_off = true;
        }
    }

    /// Whether the supply is on.
    #[must_use]
    pub fn is_powered(&self) -> bool {
        !self.powered_off
    }

    /// Fault: put `bytes` in the middle of the next answer, before its final result code.
    pub fn inject_garbage(&mut self, bytes: &[u8]) {
        self.garbage = Some(bytes.to_vec());
    }

    /// Fault: the module resets while handling the next command line. That command gets
    /// no answer, a call drops, settings return to the profile, and after the boot time
    /// the module sends `RDY` (and asks for the PIN again).
    pub fn reset_mid_command(&mut self) {
        self.reset_on_next_command = true;
    }

    /// An SMS that was on the SIM before the host started (no `+CMTI`): what
    /// `AT+CMGL` finds. Returns the indexes.
    pub fn preload_sms(&mut self, from: &str, text: &str) -> Result<Vec<u16>, ScriptError> {
        let indexes = self.deliver_sms(from, text)?;
        self.output.clear();
        Ok(indexes)
    }

    // ----- the PCM interface (in memory) -----

    /// The far end speaks a sine of `hz` (`None`: silence) while a call is connected.
    pub fn set_far_end_tone(&mut self, hz: Option<f32>) {
        self.far_tone = hz;
    }

    /// 20 ms of the far end's voice from the module's PCM output, while a call is
    /// connected (`None` otherwise: the PCM clock carries no call).
    pub fn pcm_from_module(&mut self) -> Option<Vec<i16>> {
        if !self
            .call
            .as_ref()
            .is_some_and(|c| c.phase == CallPhase::Active)
        {
            return None;
        }
        let mut frame = vec![0i16; PCM_FRAME];
        if let Some(hz) = self.far_tone {
            for (i, s) in frame.iter_mut().enumerate() {
                let n = self.far_samples + i as u64;
                let phase = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / 8000.0;
                // About -10 dBm0.
                *s = (phase.sin() * 7000.0) as i16;
            }
        }
        self.far_samples += PCM_FRAME as u64;
        Some(frame)
    }

    /// Audio the host plays into the module's PCM input: the far end hears it while a
    /// call is connected.
    pub fn pcm_to_module(&mut self, frame: &[i16]) {
        if !self
            .call
            .as_ref()
            .is_some_and(|c| c.phase == CallPhase::Active)
        {
            return;
        }
        self.far_heard.extend(frame.iter().copied());
        while self.far_heard.len() > HEARD_SAMPLES {
            self.far_heard.pop_front();
        }
    }

    /// What the far end heard in the last 200 ms of the call.
    pub fn far_end_heard(&self) -> Vec<i16> {
        self.far_heard.iter().copied().collect()
    }

    /// The digital audio interface the host set with `AT+QDAI=...` (its arguments).
    pub fn pcm_interface(&self) -> Option<&str> {
        self.qdai.as_deref()
    }

    // ----- internals -----

    fn lock_at_power_on(&self) -> Lock {
        match (&self.pin, self.pin_left, self.puk_left) {
            (_, _, 0) => Lock::Blocked,
            (_, 0, _) => Lock::Puk,
            (Some(_), _, _) => Lock::Pin,
            (None, _, _) => Lock::Ready,
        }
    }

    fn power_on_sim(&mut self) {
        self.lock = self.lock_at_power_on();
        self.update_registration();
    }

    fn sim_ready(&self) -> bool {
        self.sim_inserted && self.lock == Lock::Ready
    }

    /// Registered only with a usable SIM.
    fn update_registration(&mut self) {
        let stat = if self.sim_ready() {
            self.config.registration
        } else {
            RegStatus::NotRegistered
        };
        self.set_registration(stat);
    }

    fn set_timer(&mut self, t: Timer, at: Option<Instant>) {
        if let Some(slot) = self.timers.iter_mut().find(|(k, _)| *k == t) {
            slot.1 = at;
        }
    }

    /// A timer armed from a script step runs from the last time the emulator was given.
    fn after(&self, d: Duration) -> Option<Instant> {
        self.last_now.map(|n| n + d)
    }

    fn fire(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Alert => {
                if let Some(c) = &mut self.call {
                    if c.phase == CallPhase::Dialing {
                        c.phase = CallPhase::Alerting;
                    }
                }
            }
            Timer::Ring => {
                if self
                    .call
                    .as_ref()
                    .is_some_and(|c| c.phase == CallPhase::Incoming)
                {
                    self.last_now = Some(now);
                    self.ring();
                }
            }
            Timer::Boot => {
                self.booting = false;
                self.urc("RDY");
                let state = self.cpin_text();
                self.urc(&format!("+CPIN: {state}"));
            }
        }
    }

    fn ring(&mut self) {
        let Some(c) = &self.call else { return };
        let clip = self.clip.then(|| {
            let toa = if c.number.starts_with('+') { 145 } else { 129 };
            format!("+CLIP: \"{}\",{toa},,,,0", c.number)
        });
        self.urc("RING");
        if let Some(clip) = clip {
            self.urc(&clip);
        }
        self.set_timer(Timer::Ring, self.after(self.config.ring_interval));
    }

    fn end_outgoing_setup(&mut self, urc: &str, reason: &str) -> Result<(), ScriptError> {
        match &self.call {
            Some(c) if c.outgoing && c.phase != CallPhase::Active => {
                self.call = None;
                self.set_timer(Timer::Alert, None);
                self.last_end_reason = reason.into();
                self.urc(urc);
                Ok(())
            }
            _ => Err(ScriptError::NoCall),
        }
    }

    fn emit(&mut self, bytes: Vec<u8>) {
        if !self.silent && !bytes.is_empty() {
            self.output.push_back(bytes);
        }
    }

    fn urc(&mut self, line: &str) {
        if self.booting || self.powered_off {
            return;
        }
        self.emit(format!("\r\n{line}\r\n").into_bytes());
    }

    /// Information lines, then the final result code (with injected garbage before it).
    fn answer(&mut self, info: &[String], result: &str) {
        let mut out = Vec::new();
        for l in info {
            out.extend_from_slice(format!("\r\n{l}\r\n").as_bytes());
        }
        if let Some(g) = self.garbage.take() {
            out.extend_from_slice(&g);
        }
        out.extend_from_slice(format!("\r\n{result}\r\n").as_bytes());
        self.emit(out);
    }

    fn ok(&mut self) {
        self.answer(&[], "OK");
    }

    fn ok_with(&mut self, info: String) {
        self.answer(&[info], "OK");
    }

    fn cme(&mut self, e: Cme) {
        let text = match self.cmee {
            0 => "ERROR".to_owned(),
            1 => format!("+CME ERROR: {}", e as u16),
            _ => format!("+CME ERROR: {}", e.text()),
        };
        self.answer(&[], &text);
    }

    fn cms(&mut self, code: u16) {
        let text = if self.cmee == 0 {
            "ERROR".to_owned()
        } else {
            format!("+CMS ERROR: {code}")
        };
        self.answer(&[], &text);
    }

    fn command_byte(&mut self, now: Instant, b: u8) {
        if self.echo {
            self.emit(vec![b]);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                self.command_line(now, &line);
            }
            b'\n' => {}
            // Backspace (S5) edits the line, as on a terminal.
            0x08 => {
                self.line.pop();
            }
            // A line longer than a module's buffer is dropped.
            _ if self.line.len() >= 2048 => self.line.clear(),
            _ => self.line.push(b),
        }
    }

    fn pdu_byte(&mut self, b: u8, tpdu_len: usize) {
        match b {
            0x1A => {
                self.input = Input::Command;
                let hex = std::mem::take(&mut self.line);
                self.submit(&hex, tpdu_len);
            }
            0x1B => {
                // ESC cancels the message (TS 27.005 §3.5.1).
                self.input = Input::Command;
                self.line.clear();
            }
            b'\r' | b'\n' => {}
            _ => {
                if self.echo {
                    self.emit(vec![b]);
                }
                if self.line.len() < 2 * 200 {
                    self.line.push(b);
                }
            }
        }
    }

    fn submit(&mut self, hex: &[u8], tpdu_len: usize) {
        let Some(octets) = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| pdu::from_hex(h).ok())
        else {
            return self.cms(304);
        };
        // The length counts the TPDU only, without the SMSC field (TS 27.005 §4.3).
        let smsc_len = octets.first().map_or(0, |&n| usize::from(n) + 1);
        if octets.len() != smsc_len + tpdu_len {
            return self.cms(304);
        }
        let submit = match pdu::decode_submit(&octets) {
            Ok(s) => s,
            Err(_) => return self.cms(304),
        };
        let reference = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        self.sent.push(SentSms {
            reference,
            pdu: octets,
            submit,
        });
        self.ok_with(format!("+CMGS: {reference}"));
    }

    fn command_line(&mut self, now: Instant, raw: &[u8]) {
        let Ok(text) = std::str::from_utf8(raw) else {
            return;
        };
        let text = text.trim();
        // A module ignores anything that is not an AT command line.
        let Some(start) = text.to_ascii_uppercase().find("AT") else {
            return;
        };
        self.commands_seen += 1;
        if std::mem::take(&mut self.reset_on_next_command) {
            return self.reboot(now);
        }
        let cmd = text[start..].to_ascii_uppercase();
        self.execute(now, &cmd);
    }

    fn reboot(&mut self, now: Instant) {
        self.booting = true;
        self.line.clear();
        self.input = Input::Command;
        self.output.clear();
        self.garbage = None;
        if self.call.take().is_some() {
            self.last_end_reason = "Radio link failure".into();
        }
        self.set_timer(Timer::Alert, None);
        self.set_timer(Timer::Ring, None);
        self.echo = true;
        self.cmee = 0;
        self.clip = false;
        self.pdu_mode = true;
        self.creg_n = self.config.registration_urcs;
        self.cereg_n = self.config.registration_urcs;
        self.power_on_sim();
        self.set_timer(Timer::Boot, Some(now + self.config.boot_time));
    }

    fn cpin_text(&self) -> &'static str {
        if !self.sim_inserted {
            return "NOT INSERTED";
        }
        match self.lock {
            Lock::Ready => "READY",
            Lock::Pin => "SIM PIN",
            Lock::Puk | Lock::Blocked => "SIM PUK",
        }
    }

    /// The SIM check most commands need: the error to answer, if any.
    fn sim_error(&self) -> Option<Cme> {
        if !self.sim_inserted {
            return Some(Cme::SimNotInserted);
        }
        match self.lock {
            Lock::Ready => None,
            Lock::Pin => Some(Cme::SimPinRequired),
            Lock::Puk => Some(Cme::SimPukRequired),
            Lock::Blocked => Some(Cme::SimBlocked),
        }
    }

    fn execute(&mut self, now: Instant, cmd: &str) {
        let body = &cmd[2..];
        match body {
            "" => self.ok(),
            "E0" => {
                self.echo = false;
                self.ok();
            }
            "E" | "E1" => {
                self.echo = true;
                self.ok();
            }
            "Z" | "Z0" => {
                self.echo = true;
                self.cmee = 0;
                self.clip = false;
                self.ok();
            }
            "A" => self.answer_call(),
            "H" | "H0" | "+CHUP" => {
                if self.call.take().is_some() {
                    self.last_end_reason = "Normal call clearing".into();
                }
                self.set_timer(Timer::Alert, None);
                self.set_timer(Timer::Ring, None);
                self.ok();
            }
            "+CPIN?" => match self.sim_error() {
                Some(e @ (Cme::SimNotInserted | Cme::SimBlocked)) => self.cme(e),
                _ => {
                    let s = self.cpin_text();
                    self.ok_with(format!("+CPIN: {s}"));
                }
            },
            "+QPINC?" | "+QPINC=\"SC\"" => {
                if !self.sim_inserted {
                    return self.cme(Cme::SimNotInserted);
                }
                let mut info = vec![format!(
                    "+QPINC: \"SC\",{},{}",
                    self.pin_left, self.puk_left
                )];
                if body == "+QPINC?" {
                    info.push(format!("+QPINC: \"P2\",{PIN_ATTEMPTS},{PUK_ATTEMPTS}"));
                }
                self.answer(&info, "OK");
            }
            "+CREG?" => {
                let l = format!("+CREG: {},{}", self.creg_n, reg_code(self.registration));
                self.ok_with(l);
            }
            "+CEREG?" => {
                let l = format!("+CEREG: {},{}", self.cereg_n, reg_code(self.registration));
                self.ok_with(l);
            }
            "+COPS?" => {
                let l = if self.registration.is_registered() {
                    format!("+COPS: 0,0,\"{}\",7", self.config.operator)
                } else {
                    "+COPS: 0".to_owned()
                };
                self.ok_with(l);
            }
            "+CSQ" => {
                let l = format!("+CSQ: {},99", self.rssi);
                self.ok_with(l);
            }
            "+CLCC" => {
                let info: Vec<String> = self
                    .call
                    .iter()
                    .map(|c| {
                        let toa = if c.number.starts_with('+') { 145 } else { 129 };
                        format!(
                            "+CLCC: 1,{},{},0,0,\"{}\",{toa}",
                            u8::from(!c.outgoing),
                            c.phase.code(),
                            c.number
                        )
                    })
                    .collect();
                self.answer(&info, "OK");
            }
            "+CLIP?" => {
                let l = format!("+CLIP: {},1", u8::from(self.clip));
                self.ok_with(l);
            }
            "+CEER" => {
                let l = format!("+CEER: \"{}\"", self.last_end_reason);
                self.ok_with(l);
            }
            "+CMGF?" => {
                let l = format!("+CMGF: {}", u8::from(!self.pdu_mode));
                self.ok_with(l);
            }
            _ => self.execute_with_args(now, body),
        }
    }

    fn execute_with_args(&mut self, now: Instant, body: &str) {
        if let Some(rest) = body.strip_prefix('D') {
            return self.dial(now, rest);
        }
        let Some((name, args)) = body.split_once('=') else {
            return self.answer(&[], "ERROR");
        };
        let n: Option<u16> = args.parse().ok();
        match (name, n) {
            ("+CMEE", Some(v @ 0..=2)) => {
                self.cmee = v as u8;
                self.ok();
            }
            ("+CLIP", Some(v @ 0..=1)) => {
                self.clip = v == 1;
                self.ok();
            }
            ("+CREG", Some(v @ 0..=2)) => {
                self.creg_n = v as u8;
                self.ok();
            }
            ("+CEREG", Some(v @ 0..=2)) => {
                self.cereg_n = v as u8;
                self.ok();
            }
            ("+CMGF", Some(v @ 0..=1)) => {
                self.pdu_mode = v == 0;
                self.ok();
            }
            ("+CPIN", _) => self.enter_pin(args),
            // New-message indications: the emulator always announces with +CMTI.
            ("+CNMI", _) => self.ok(),
            ("+CMGS", Some(len)) => self.start_submit(usize::from(len)),
            ("+CMGR", Some(i)) => self.read_sms(i),
            ("+CMGD", _) => self.delete_sms(args),
            ("+CMGL", Some(4)) if self.pdu_mode => self.list_sms(),
            // The PCM interface (Quectel): kept, so a test can check it was set.
            ("+QDAI", _) if !args.is_empty() => {
                self.qdai = Some(args.to_owned());
                self.ok();
            }
            _ => self.answer(&[], "ERROR"),
        }
    }

    fn enter_pin(&mut self, args: &str) {
        let codes: Vec<&str> = args
            .split(',')
            .map(|a| a.trim().trim_matches('"'))
            .collect();
        if let Some(e @ (Cme::SimNotInserted | Cme::SimBlocked)) = self.sim_error() {
            return self.cme(e);
        }
        let ok_code = |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit());
        if !codes.iter().all(|c| ok_code(c)) {
            return self.cme(Cme::NotAllowed);
        }
        match (self.lock, codes.as_slice()) {
            (Lock::Pin, [pin]) => {
                if self.pin.as_deref() == Some(*pin) {
                    self.pin_left = PIN_ATTEMPTS;
                    self.lock = Lock::Ready;
                    self.ok();
                    self.update_registration();
                } else {
                    self.pin_left = self.pin_left.saturating_sub(1);
                    if self.pin_left == 0 {
                        self.lock = Lock::Puk;
                    }
                    self.cme(Cme::IncorrectPassword);
                }
            }
            // The PIN alone while the SIM wants the PUK costs nothing.
            (Lock::Puk, [_]) => self.cme(Cme::SimPukRequired),
            (Lock::Puk | Lock::Pin, [puk, new_pin]) => {
                if self.lock == Lock::Pin {
                    return self.cme(Cme::NotAllowed);
                }
                if *puk == self.config.puk {
                    self.pin = Some((*new_pin).to_owned());
                    self.pin_left = PIN_ATTEMPTS;
                    self.puk_left = PUK_ATTEMPTS;
                    self.lock = Lock::Ready;
                    self.ok();
                    self.update_registration();
                } else {
                    self.puk_left = self.puk_left.saturating_sub(1);
                    if self.puk_left == 0 {
                        self.lock = Lock::Blocked;
                    }
                    self.cme(Cme::IncorrectPassword);
                }
            }
            _ => self.cme(Cme::NotAllowed),
        }
    }

    fn is_emergency(&self, number: &str) -> bool {
        self.config.emergency_numbers.iter().any(|e| e == number)
    }

    fn dial(&mut self, now: Instant, rest: &str) {
        let Some(number) = rest.strip_suffix(';') else {
            // Data calls are not offered.
            return self.answer(&[], "NO CARRIER");
        };
        let valid = !number.is_empty()
            && number
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
        if !valid {
            return self.answer(&[], "ERROR");
        }
        if self.call.is_some() {
            return self.cme(Cme::NotAllowed);
        }
        let emergency = self.is_emergency(number);
        if !emergency {
            if let Some(e) = self.sim_error() {
                return self.cme(e);
            }
            if !self.registration.is_registered() {
                return self.cme(Cme::NoNetwork);
            }
        }
        self.call = Some(EmulatedCall {
            outgoing: true,
            number: number.to_owned(),
            phase: CallPhase::Dialing,
            emergency,
        });
        self.set_timer(Timer::Alert, Some(now + self.config.alert_delay));
        self.ok();
    }

    fn answer_call(&mut self) {
        match &mut self.call {
            Some(c) if c.phase == CallPhase::Incoming => {
                c.phase = CallPhase::Active;
                self.set_timer(Timer::Ring, None);
                self.ok();
            }
            _ => self.answer(&[], "NO CARRIER"),
        }
    }

    fn start_submit(&mut self, tpdu_len: usize) {
        if !self.pdu_mode {
            return self.cms(303);
        }
        if !self.sim_inserted {
            return self.cms(310);
        }
        match self.lock {
            Lock::Ready => {}
            Lock::Pin => return self.cms(311),
            Lock::Puk | Lock::Blocked => return self.cms(316),
        }
        if !self.registration.is_registered() {
            return self.cms(331);
        }
        if !(7..=176).contains(&tpdu_len) {
            return self.cms(304);
        }
        self.input = Input::Pdu { tpdu_len };
        self.emit(b"\r\n> ".to_vec());
    }

    fn read_sms(&mut self, index: u16) {
        if let Some(e) = self.sim_error() {
            return self.cme(e);
        }
        let Some((stat, pdu)) = self.stored.get_mut(&index) else {
            // The EC25 answers a bare OK for an empty index.
            return self.ok();
        };
        let header = format!("+CMGR: {stat},,{}", pdu.len().saturating_sub(1));
        let hex = pdu::to_hex(pdu);
        *stat = 1; // now read
        self.answer(&[header, hex], "OK");
    }

    /// `AT+CMGL=4`: every stored message, `+CMGL: <index>,<stat>,,<length>` then its PDU.
    fn list_sms(&mut self) {
        if let Some(e) = self.sim_error() {
            return self.cme(e);
        }
        let mut info = Vec::new();
        for (index, (stat, pdu)) in self.stored.iter_mut() {
            info.push(format!(
                "+CMGL: {index},{stat},,{}",
                pdu.len().saturating_sub(1)
            ));
            info.push(pdu::to_hex(pdu));
            *stat = 1;
        }
        self.answer(&info, "OK");
    }

    fn delete_sms(&mut self, args: &str) {
        let mut it = args.split(',').map(str::trim);
        let index: Option<u16> = it.next().and_then(|s| s.parse().ok());
        let flag: u8 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        match (index, flag) {
            (_, 4) => self.stored.clear(),
            (Some(i), 0) => {
                self.stored.remove(&i);
            }
            _ => return self.cms(321),
        }
        self.ok();
    }
}

fn reg_code(s: RegStatus) -> u8 {
    match s {
        RegStatus::NotRegistered => 0,
        RegStatus::Home => 1,
        RegStatus::Searching => 2,
        RegStatus::Denied => 3,
        RegStatus::Unknown => 4,
        RegStatus::Roaming => 5,
        RegStatus::Other(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulated clock's origin: any instant will do, time then moves by hand.
    #[allow(clippy::disallowed_methods)]
    fn t0() -> Instant {
        Instant::now()
    }

    /// Feed one command line and return everything the module sent back.
    fn exchange(m: &mut Ec25, now: Instant, bytes: &[u8]) -> String {
        m.handle_input(now, bytes);
        let out: Vec<u8> = std::iter::from_fn(|| m.poll_output()).flatten().collect();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn quiet(config: Ec25Config) -> (Ec25, Instant) {
        let now = t0();
        let mut m = Ec25::new(config);
        assert_eq!(exchange(&mut m, now, b"ATE0\r"), "ATE0\r\r\nOK\r\n");
        (m, now)
    }

    #[test]
    fn pin_attempts_count_down_to_puk_then_blocked() {
        let (mut m, now) = quiet(Ec25Config::default());
        struct Case {
            line: &'static [u8],
            answer: &'static str,
            left: (u8, u8),
        }
        let cases = [
            // Bare ERROR until AT+CMEE=1.
            Case {
                line: b"AT+CPIN=\"0000\"\r",
                answer: "\r\nERROR\r\n",
                left: (2, 10),
            },
            Case {
                line: b"AT+CMEE=1\r",
                answer: "\r\nOK\r\n",
                left: (2, 10),
            },
            Case {
                line: b"AT+CPIN=0000\r",
                answer: "\r\n+CME ERROR: 16\r\n",
                left: (1, 10),
            },
            Case {
                line: b"AT+QPINC?\r",
                answer: "\r\n+QPINC: \"SC\",1,10\r\n\r\n+QPINC: \"P2\",3,10\r\n\r\nOK\r\n",
                left: (1, 10),
            },
            Case {
                line: b"AT+CPIN=\"0000\"\r",
                answer: "\r\n+CME ERROR: 16\r\n",
                left: (0, 10),
            },
            Case {
                line: b"AT+CPIN?\r",
                answer: "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n",
                left: (0, 10),
            },
            // The right PIN alone no longer helps and costs nothing.
            Case {
                line: b"AT+CPIN=\"1234\"\r",
                answer: "\r\n+CME ERROR: 12\r\n",
                left: (0, 10),
            },
            Case {
                line: b"AT+CPIN=\"00000000\",\"4321\"\r",
                answer: "\r\n+CME ERROR: 16\r\n",
                left: (0, 9),
            },
            Case {
                line: b"AT+CPIN=\"12345678\",\"4321\"\r",
                answer: "\r\nOK\r\n\r\n+CREG: 1\r\n\r\n+CEREG: 1\r\n",
                left: (3, 10),
            },
            Case {
                line: b"AT+CPIN?\r",
                answer: "\r\n+CPIN: READY\r\n\r\nOK\r\n",
                left: (3, 10),
            },
        ];
        for c in cases {
            let cmd = String::from_utf8_lossy(c.line).into_owned();
            assert_eq!(exchange(&mut m, now, c.line), c.answer, "{cmd:?}");
            let p = m.pin_attempts_left();
            assert_eq!((p.pin_left, p.puk_left), c.left, "{cmd:?}");
        }
    }

    #[test]
    fn ten_wrong_puks_block_the_sim() {
        let (mut m, now) = quiet(Ec25Config::default());
        exchange(&mut m, now, b"AT+CMEE=1\r");
        for _ in 0..3 {
            exchange(&mut m, now, b"AT+CPIN=9999\r");
        }
        for left in (0..10).rev() {
            let a = exchange(&mut m, now, b"AT+CPIN=\"00000000\",\"1111\"\r");
            assert_eq!(a, "\r\n+CME ERROR: 16\r\n");
            assert_eq!(m.pin_attempts_left().puk_left, left);
        }
        assert_eq!(
            exchange(&mut m, now, b"AT+CPIN=\"12345678\",\"1111\"\r"),
            "\r\n+CME ERROR: 262\r\n"
        );
        assert_eq!(m.sim_state(), SimState::Other("SIM blocked".into()));
    }

    #[test]
    fn emergency_numbers_need_no_sim() {
        let (mut m, now) = quiet(Ec25Config {
            sim_inserted: false,
            ..Ec25Config::default()
        });
        exchange(&mut m, now, b"AT+CMEE=1\r");
        assert_eq!(
            exchange(&mut m, now, b"ATD030123;\r"),
            "\r\n+CME ERROR: 10\r\n"
        );
        assert_eq!(exchange(&mut m, now, b"ATD112;\r"), "\r\nOK\r\n");
        let call = m.call().cloned().unwrap();
        assert!(call.emergency && call.outgoing && call.phase == CallPhase::Dialing);
        m.handle_timeout(now + Duration::from_secs(1));
        assert_eq!(m.call().unwrap().phase, CallPhase::Alerting);
        assert_eq!(
            exchange(&mut m, now, b"AT+CLCC\r"),
            "\r\n+CLCC: 1,0,3,0,0,\"112\",129\r\n\r\nOK\r\n"
        );
    }

    #[test]
    fn echo_is_per_byte_until_ate0_and_unknown_commands_fail() {
        let now = t0();
        let mut m = Ec25::new(Ec25Config::default());
        assert_eq!(
            exchange(&mut m, now, b"AT+CSQ\r"),
            "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
        );
        assert_eq!(exchange(&mut m, now, b"AT+FOO\r"), "AT+FOO\r\r\nERROR\r\n");
        // Not an AT line: ignored, as a module does.
        assert_eq!(exchange(&mut m, now, b"hello\r"), "hello\r");
    }

    #[test]
    fn incoming_call_rings_again_until_answered() {
        let (mut m, now) = quiet(Ec25Config {
            pin: None,
            ..Ec25Config::default()
        });
        exchange(&mut m, now, b"AT+CLIP=1\r");
        m.incoming_call("+4930123").unwrap();
        let ring = "\r\nRING\r\n\r\n+CLIP: \"+4930123\",145,,,,0\r\n";
        assert_eq!(exchange(&mut m, now, b""), ring);
        let next = m.poll_timeout().unwrap();
        assert_eq!(next, now + Duration::from_secs(3));
        m.handle_timeout(next);
        assert_eq!(exchange(&mut m, next, b""), ring);
        assert_eq!(exchange(&mut m, next, b"ATA\r"), "\r\nOK\r\n");
        assert_eq!(m.poll_timeout(), None);
        m.remote_hangup().unwrap();
        assert_eq!(exchange(&mut m, next, b""), "\r\nNO CARRIER\r\n");
        assert_eq!(m.remote_hangup(), Err(ScriptError::NoCall));
    }

    #[test]
    fn pcm_carries_audio_both_ways_only_while_connected_and_qdai_is_kept() {
        let (mut m, now) = quiet(Ec25Config {
            pin: None,
            ..Ec25Config::default()
        });
        assert_eq!(
            exchange(&mut m, now, b"AT+QDAI=1,1,0,1,0,0,1,1\r"),
            "\r\nOK\r\n"
        );
        assert_eq!(m.pcm_interface(), Some("1,1,0,1,0,0,1,1"));
        m.set_far_end_tone(Some(1000.0));
        m.incoming_call("+4930123").unwrap();
        assert_eq!(m.pcm_from_module(), None, "no audio while ringing");
        m.pcm_to_module(&[100; PCM_FRAME]);
        assert!(m.far_end_heard().is_empty());
        exchange(&mut m, now, b"ATA\r");
        let frame = m.pcm_from_module().unwrap();
        assert_eq!(frame.len(), PCM_FRAME);
        assert!(frame.iter().any(|&s| s > 5000));
        m.pcm_to_module(&[100; PCM_FRAME]);
        assert_eq!(m.far_end_heard(), vec![100; PCM_FRAME]);
        m.remote_hangup().unwrap();
        assert_eq!(m.pcm_from_module(), None);
    }

    #[test]
    fn cmgl_lists_what_was_on_the_sim() {
        let (mut m, now) = quiet(Ec25Config {
            pin: None,
            ..Ec25Config::default()
        });
        let idx = m.preload_sms("+4917012345", "Hallo").unwrap();
        assert_eq!(exchange(&mut m, now, b""), "", "no +CMTI for old messages");
        let out = exchange(&mut m, now, b"AT+CMGL=4\r");
        assert!(
            out.starts_with(&format!("\r\n+CMGL: {},0,,", idx[0])),
            "{out:?}"
        );
        assert!(out.ends_with("\r\nOK\r\n"));
        // Listed once: read now.
        let again = exchange(&mut m, now, b"AT+CMGL=4\r");
        assert!(
            again.contains(&format!("+CMGL: {},1,,", idx[0])),
            "{again:?}"
        );
    }

    #[test]
    fn cmgs_checks_the_length_and_decodes_the_pdu() {
        let (mut m, now) = quiet(Ec25Config {
            pin: None,
            ..Ec25Config::default()
        });
        exchange(&mut m, now, b"AT+CMEE=1\r");
        let pdu = pdu::encode_submit("+49301234", "hi", &pdu::SubmitOptions::default()).unwrap();
        let p = &pdu[0];
        let wrong = format!("AT+CMGS={}\r", p.tpdu_len() + 1);
        assert_eq!(exchange(&mut m, now, wrong.as_bytes()), "\r\n> ");
        let body = format!("{}\x1a", p.to_hex());
        assert_eq!(
            exchange(&mut m, now, body.as_bytes()),
            "\r\n+CMS ERROR: 304\r\n"
        );
        let right = format!("AT+CMGS={}\r", p.tpdu_len());
        assert_eq!(exchange(&mut m, now, right.as_bytes()), "\r\n> ");
        assert_eq!(
            exchange(&mut m, now, body.as_bytes()),
            "\r\n+CMGS: 1\r\n\r\nOK\r\n"
        );
        assert_eq!(m.sent_sms().len(), 1);
        assert_eq!(m.sent_sms()[0].submit.body, pdu::Body::Text("hi".into()));
    }

    #[test]
    fn power_off_is_silence_and_power_on_a_fresh_boot_with_the_same_sim() {
        let (mut m, now) = quiet(Ec25Config::default());
        // One wrong PIN: the SIM remembers it across the power cycle.
        assert!(exchange(&mut m, now, b"AT+CPIN=0000\r").contains("ERROR"));
        let left = m.pin_attempts_left();
        m.go_silent();
        assert_eq!(exchange(&mut m, now, b"AT\r"), "", "hung");
        m.set_power(now, false);
        assert!(!m.is_powered());
        assert_eq!(exchange(&mut m, now, b"AT\r"), "", "off");
        assert_eq!(m.poll_timeout(), None, "no boot while off");
        m.set_power(now, true);
        assert_eq!(exchange(&mut m, now, b"AT\r"), "", "booting");
        let t = m.poll_timeout().expect("boot timer");
        m.handle_timeout(t);
        assert_eq!(
            exchange(&mut m, t, b""),
            "\r\nRDY\r\n\r\n+CPIN: SIM PIN\r\n",
            "fresh boot, the hang is gone"
        );
        assert_eq!(m.pin_attempts_left(), left);
        assert_eq!(
            exchange(&mut m, t, b"AT\r"),
            "AT\r\r\nOK\r\n",
            "echo is back on"
        );
    }

    #[test]
    fn reset_mid_command_drops_the_answer_and_says_rdy_later() {
        let (mut m, now) = quiet(Ec25Config::default());
        m.reset_mid_command();
        assert_eq!(exchange(&mut m, now, b"AT+CSQ\r"), "");
        assert_eq!(exchange(&mut m, now, b"AT\r"), "", "booting");
        let t = m.poll_timeout().unwrap();
        m.handle_timeout(t);
        assert_eq!(
            exchange(&mut m, t, b""),
            "\r\nRDY\r\n\r\n+CPIN: SIM PIN\r\n"
        );
        // Echo is back on after the reboot.
        assert_eq!(exchange(&mut m, t, b"AT\r"), "AT\r\r\nOK\r\n");
    }
}
