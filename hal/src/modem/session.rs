//! The AT session as a sans-IO core: one command in flight, URCs demultiplexed from
//! responses (also in the middle of one), per-command time-outs, the two-step SMS send, and
//! a recovery hint after repeated time-outs.
//!
//! Run loop (the shell): `send` commands; write every `poll_transmit` to the port; feed
//! bytes read to `handle_input`; drain `poll_event` to `None`; sleep until `poll_timeout`
//! and call `handle_timeout` (a spurious call is a no-op).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::command::{Command, CommandKind};
use super::lines::{GarbageKind, LineItem, LineSplitter, DEFAULT_MAX_LINE};
use super::pdu::{self, SubmitPdu};
use super::response::{
    self, CallInfo, CallerId, Classified, CmeError, CmgrHeader, FinalResult, Operator, ParseError,
    PinCounters, Registration, SignalQuality, SimState, Urc,
};

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Consecutive time-outs after which [`ModemEvent::RecoveryNeeded`] is emitted.
    pub max_consecutive_timeouts: u32,
    /// After a command times out, ask the modem at once with a bare `AT` (ahead of the
    /// queue, its own short time-out): no answer to that either starts recovery without
    /// waiting for more commands to time out. Probes report no `CommandCompleted`.
    pub probe_after_timeout: bool,
    /// How long to wait for the `> ` prompt after `AT+CMGS=<len>`.
    pub prompt_timeout: Duration,
    /// Commands that may wait behind the one in flight.
    pub max_queue: usize,
    /// Longest modem line kept.
    pub max_line: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_consecutive_timeouts: 3,
            probe_after_timeout: false,
            prompt_timeout: Duration::from_secs(5),
            max_queue: 16,
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// Identifies a command from `send` to its [`ModemEvent::CommandCompleted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

/// A command could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Too many commands waiting.
    #[error("modem command queue full ({0} waiting)")]
    QueueFull(usize),
}

/// A stored SMS read with `AT+CMGR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSms {
    /// The `+CMGR:` header.
    pub header: CmgrHeader,
    /// The PDU octets (SMSC field first); decode with [`pdu::decode_deliver`].
    pub pdu: Vec<u8>,
}

/// The typed result of a successful command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// `OK` and nothing else of interest.
    Ok,
    /// `CONNECT`.
    Connect(Option<String>),
    /// `AT+CPIN?`.
    SimState(SimState),
    /// `AT+QPINC="SC"`.
    PinCounters(PinCounters),
    /// `AT+CREG?` / `AT+CEREG?`.
    Registration(Registration),
    /// `AT+COPS?`.
    Operator(Operator),
    /// `AT+CSQ`.
    Signal(SignalQuality),
    /// `AT+CLCC` (empty when no call).
    Calls(Vec<CallInfo>),
    /// `AT+CEER`.
    CallEndReason(String),
    /// `AT+CMGS`: the message reference.
    SmsSent {
        /// TP-MR.
        reference: u8,
    },
    /// `AT+CMGR`: `None` if the index is empty.
    SmsRead(Option<StoredSms>),
    /// `AT+CMGL`: the indexes of the stored messages (read each with `AT+CMGR`).
    SmsList(Vec<u16>),
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `ERROR`.
    #[error("modem answered ERROR")]
    Error,
    /// `+CME ERROR`.
    #[error("{0}")]
    Cme(CmeError),
    /// `+CMS ERROR`.
    #[error("+CMS ERROR: {0}")]
    Cms(u16),
    /// `NO CARRIER` to ATD/ATA.
    #[error("no carrier")]
    NoCarrier,
    /// `BUSY`.
    #[error("busy")]
    Busy,
    /// `NO ANSWER`.
    #[error("no answer")]
    NoAnswer,
    /// `NO DIALTONE`.
    #[error("no dial tone")]
    NoDialtone,
    /// No final result within the command's time-out.
    #[error("no answer from the modem within {0:?}")]
    Timeout(Duration),
    /// `OK`, but the expected information line was missing or unreadable.
    #[error("unexpected response: {0}")]
    Malformed(#[from] ParseError),
    /// Dropped by [`Session::reset`].
    #[error("aborted by a session reset")]
    Aborted,
}

/// Input the session dropped; the shell logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discarded {
    /// Over-long or binary line.
    Garbage(GarbageKind),
    /// A URC that did not parse.
    Malformed(ParseError),
    /// A final result with no command in flight (e.g. late, after a time-out).
    StrayResult(FinalResult),
    /// A `> ` prompt nobody waited for.
    UnexpectedPrompt,
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModemEvent {
    /// A command finished.
    CommandCompleted {
        /// From [`Session::send`].
        id: CommandId,
        /// Which command.
        kind: CommandKind,
        /// Typed result.
        result: Result<Response, CommandError>,
    },
    /// `RING`.
    IncomingCall,
    /// `+CLIP`.
    CallerId(CallerId),
    /// `+CMTI`: read it with `AT+CMGR=<index>`.
    SmsReceived {
        /// Storage.
        storage: String,
        /// Index.
        index: u16,
    },
    /// `+CREG`/`+CEREG` unsolicited.
    RegistrationChanged {
        /// From `+CEREG`.
        eps: bool,
        /// New state.
        registration: Registration,
    },
    /// `+CLCC` unsolicited.
    CallStatus(CallInfo),
    /// `NO CARRIER` outside call setup: the remote side hung up.
    RemoteHangup,
    /// `BUSY` outside call setup.
    RemoteBusy,
    /// `NO ANSWER` outside call setup.
    RemoteNoAnswer,
    /// `NO DIALTONE` outside call setup.
    NoDialtone,
    /// `+CPIN` unsolicited (SIM removed, ready, ...).
    SimState(SimState),
    /// `+QIND` (Quectel), text after the colon.
    ModuleIndication(String),
    /// Another unsolicited line.
    Unsolicited(String),
    /// Input that was dropped.
    Discarded(Discarded),
    /// Several commands in a row got no answer. `attempt` counts these events since the
    /// modem last answered anything: 1 = send ATZ, 2 or more = power-cycle the module.
    RecoveryNeeded {
        /// Time-outs in a row.
        consecutive_timeouts: u32,
        /// Recovery round since the last answer, from 1.
        attempt: u32,
    },
}

#[derive(Debug)]
enum Phase {
    /// `AT+CMGS=<len>` sent; the PDU goes out after the prompt.
    AwaitPrompt(SubmitPdu),
    AwaitFinal,
}

#[derive(Debug)]
struct InFlight {
    id: CommandId,
    kind: CommandKind,
    phase: Phase,
    deadline: Instant,
    timeout: Duration,
    info: Vec<String>,
}

/// The AT session core.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    lines: LineSplitter,
    queue: VecDeque<(CommandId, Command)>,
    in_flight: Option<InFlight>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ModemEvent>,
    next_id: u64,
    consecutive_timeouts: u32,
    recovery_attempts: u32,
    /// The liveness probe queued or in flight (see [`SessionConfig::probe_after_timeout`]).
    probe: Option<CommandId>,
}

impl Session {
    /// A session with nothing in flight.
    pub fn new(config: SessionConfig) -> Self {
        Session {
            lines: LineSplitter::new(config.max_line),
            config,
            queue: VecDeque::new(),
            in_flight: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 0,
            consecutive_timeouts: 0,
            recovery_attempts: 0,
            probe: None,
        }
    }

    /// Queue a command; it is transmitted at once if nothing is in flight.
    pub fn send(&mut self, now: Instant, cmd: Command) -> Result<CommandId, SendError> {
        if self.queue.len() >= self.config.max_queue {
            return Err(SendError::QueueFull(self.queue.len()));
        }
        let id = CommandId(self.next_id);
        self.next_id += 1;
        self.queue.push_back((id, cmd));
        self.start_next(now);
        Ok(id)
    }

    /// Bytes read from the modem.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.lines.handle_bytes(bytes);
        while let Some(item) = self.lines.poll_item() {
            match item {
                LineItem::Echo => {}
                LineItem::Garbage(g) => self.discard(Discarded::Garbage(g)),
                LineItem::Prompt => self.on_prompt(now),
                LineItem::Line(l) => self.on_line(now, l),
            }
        }
    }

    /// Time has passed; fails the command in flight if its deadline is reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(f) = &self.in_flight else { return };
        if now < f.deadline {
            return;
        }
        if matches!(f.phase, Phase::AwaitPrompt(_)) {
            // Leave a half-open SMS input mode (TS 27.005 §3.5.1: ESC cancels).
            self.transmit.push_back(vec![0x1B]);
        }
        let timeout = f.timeout;
        let was_probe = self.probe.is_some_and(|p| p == f.id);
        self.consecutive_timeouts += 1;
        let recover =
            was_probe || self.consecutive_timeouts >= self.config.max_consecutive_timeouts;
        if was_probe {
            // Nobody waits for the probe's result: only its silence counts.
            self.in_flight = None;
            self.probe = None;
            self.lines.expect_echo(None);
            self.start_next(now);
        } else {
            if self.config.probe_after_timeout && !recover {
                // Ahead of what waits: a hung modem is found in one short time-out, not
                // after every queued command ran into its own.
                let id = CommandId(self.next_id);
                self.next_id += 1;
                self.queue.push_front((id, Command::At));
                self.probe = Some(id);
            }
            self.finish(now, Err(CommandError::Timeout(timeout)));
        }
        if recover {
            self.recovery_attempts += 1;
            self.events.push_back(ModemEvent::RecoveryNeeded {
                consecutive_timeouts: self.consecutive_timeouts,
                attempt: self.recovery_attempts,
            });
            self.consecutive_timeouts = 0;
        }
    }

    /// Fail every queued and in-flight command with [`CommandError::Aborted`] and forget
    /// partial input: after the shell reset or power-cycled the module.
    pub fn reset(&mut self) {
        let probe = self.probe.take();
        if let Some(f) = self.in_flight.take().filter(|f| Some(f.id) != probe) {
            self.events.push_back(ModemEvent::CommandCompleted {
                id: f.id,
                kind: f.kind,
                result: Err(CommandError::Aborted),
            });
        }
        for (id, cmd) in self.queue.drain(..) {
            if Some(id) == probe {
                continue;
            }
            self.events.push_back(ModemEvent::CommandCompleted {
                id,
                kind: cmd.kind(),
                result: Err(CommandError::Aborted),
            });
        }
        self.transmit.clear();
        self.lines.clear();
        self.consecutive_timeouts = 0;
    }

    /// Next bytes to write to the modem.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }

    /// The command in flight, if any.
    pub fn in_flight(&self) -> Option<CommandKind> {
        self.in_flight.as_ref().map(|f| f.kind)
    }

    fn discard(&mut self, d: Discarded) {
        self.events.push_back(ModemEvent::Discarded(d));
    }

    fn start_next(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        let Some((id, cmd)) = self.queue.pop_front() else {
            return;
        };
        let kind = cmd.kind();
        let line = cmd.line();
        self.lines.expect_echo(Some(line.as_bytes()));
        let mut bytes = line.into_bytes();
        bytes.push(b'\r');
        self.transmit.push_back(bytes);
        let (phase, timeout) = match cmd {
            Command::SendSms(pdu) => (Phase::AwaitPrompt(pdu), self.config.prompt_timeout),
            _ => (Phase::AwaitFinal, kind.timeout()),
        };
        self.in_flight = Some(InFlight {
            id,
            kind,
            phase,
            deadline: now + timeout,
            timeout,
            info: Vec::new(),
        });
    }

    fn on_prompt(&mut self, now: Instant) {
        let Some(f) = &mut self.in_flight else {
            return self.discard(Discarded::UnexpectedPrompt);
        };
        let Phase::AwaitPrompt(pdu) = std::mem::replace(&mut f.phase, Phase::AwaitFinal) else {
            return self.discard(Discarded::UnexpectedPrompt);
        };
        let hex = pdu.to_hex();
        self.lines.expect_echo(Some(hex.as_bytes()));
        let mut bytes = hex.into_bytes();
        bytes.push(0x1A); // Ctrl-Z sends
        self.transmit.push_back(bytes);
        f.timeout = f.kind.timeout();
        f.deadline = now + f.timeout;
    }

    fn on_line(&mut self, now: Instant, line: String) {
        match response::classify(&line, self.in_flight()) {
            Classified::Final(r) => {
                if self.in_flight.is_none() {
                    return self.discard(Discarded::StrayResult(r));
                }
                self.consecutive_timeouts = 0;
                self.recovery_attempts = 0;
                let result = match r {
                    FinalResult::Ok => self.typed_response(),
                    FinalResult::Connect(t) => Ok(Response::Connect(t)),
                    FinalResult::Error => Err(CommandError::Error),
                    FinalResult::Cme(e) => Err(CommandError::Cme(e)),
                    FinalResult::Cms(n) => Err(CommandError::Cms(n)),
                    FinalResult::NoCarrier => Err(CommandError::NoCarrier),
                    FinalResult::Busy => Err(CommandError::Busy),
                    FinalResult::NoAnswer => Err(CommandError::NoAnswer),
                    FinalResult::NoDialtone => Err(CommandError::NoDialtone),
                };
                self.finish(now, result);
            }
            Classified::Info(l) => {
                if let Some(f) = &mut self.in_flight {
                    f.info.push(l);
                }
            }
            Classified::Urc(u) => self.events.push_back(match u {
                Urc::Ring => ModemEvent::IncomingCall,
                Urc::CallerId(c) => ModemEvent::CallerId(c),
                Urc::SmsReceived(s) => ModemEvent::SmsReceived {
                    storage: s.storage,
                    index: s.index,
                },
                Urc::Registration { eps, registration } => {
                    ModemEvent::RegistrationChanged { eps, registration }
                }
                Urc::CallStatus(c) => ModemEvent::CallStatus(c),
                Urc::SimState(s) => ModemEvent::SimState(s),
                Urc::ModuleIndication(s) => ModemEvent::ModuleIndication(s),
                Urc::NoCarrier => ModemEvent::RemoteHangup,
                Urc::Busy => ModemEvent::RemoteBusy,
                Urc::NoAnswer => ModemEvent::RemoteNoAnswer,
                Urc::NoDialtone => ModemEvent::NoDialtone,
                Urc::Other(s) => ModemEvent::Unsolicited(s),
            }),
            Classified::Malformed(e) => self.discard(Discarded::Malformed(e)),
        }
    }

    /// Build the typed answer from the information lines, after `OK`.
    fn typed_response(&self) -> Result<Response, CommandError> {
        use CommandKind as K;
        let Some(f) = &self.in_flight else {
            return Ok(Response::Ok);
        };
        let find = |prefix: &str| f.info.iter().position(|l| l.starts_with(prefix));
        let one = |prefix: &'static str| -> Result<&str, CommandError> {
            find(prefix).map(|i| f.info[i].as_str()).ok_or_else(|| {
                CommandError::Malformed(ParseError {
                    what: prefix,
                    line: f.info.join(" | "),
                })
            })
        };
        let r = match f.kind {
            K::QuerySimState => response::parse_sim_state(one("+CPIN:")?).map(Response::SimState),
            K::QueryPinCounters => {
                response::parse_pin_counters(one("+QPINC:")?).map(Response::PinCounters)
            }
            K::QueryRegistration => {
                response::parse_registration_query(one("+CREG:")?).map(Response::Registration)
            }
            K::QueryEpsRegistration => {
                response::parse_registration_query(one("+CEREG:")?).map(Response::Registration)
            }
            K::QueryOperator => response::parse_operator(one("+COPS:")?).map(Response::Operator),
            K::QuerySignal => response::parse_signal(one("+CSQ:")?).map(Response::Signal),
            K::ListCalls => f
                .info
                .iter()
                .filter(|l| l.starts_with("+CLCC:"))
                .map(|l| response::parse_call(l))
                .collect::<Result<_, _>>()
                .map(Response::Calls),
            K::QueryCallEndReason => {
                response::parse_call_end_reason(one("+CEER:")?).map(Response::CallEndReason)
            }
            K::SendSms => response::parse_sms_sent(one("+CMGS:")?)
                .map(|reference| Response::SmsSent { reference }),
            K::ReadSms => match find("+CMGR:") {
                None => Ok(Response::SmsRead(None)),
                Some(i) => {
                    let header = response::parse_cmgr_header(&f.info[i])?;
                    let hex = f.info.get(i + 1).map_or("", String::as_str);
                    let pdu = pdu::from_hex(hex).map_err(|_| ParseError {
                        what: "+CMGR PDU",
                        line: hex.to_owned(),
                    })?;
                    Ok(Response::SmsRead(Some(StoredSms { header, pdu })))
                }
            },
            // `+CMGL: <index>,<stat>,[<alpha>],<length>`, each followed by its PDU.
            K::ListSms => f
                .info
                .iter()
                .filter_map(|l| l.strip_prefix("+CMGL:"))
                .map(|l| {
                    let index = l.split(',').next().unwrap_or("").trim();
                    index.parse::<u16>().map_err(|_| ParseError {
                        what: "+CMGL",
                        line: l.to_owned(),
                    })
                })
                .collect::<Result<_, _>>()
                .map(Response::SmsList),
            _ => Ok(Response::Ok),
        };
        r.map_err(CommandError::Malformed)
    }

    fn finish(&mut self, now: Instant, result: Result<Response, CommandError>) {
        if let Some(f) = self.in_flight.take() {
            self.lines.expect_echo(None);
            if self.probe.is_some_and(|p| p == f.id) {
                // The modem answered the probe: it lives; nobody waits for the result.
                self.probe = None;
                return self.start_next(now);
            }
            self.events.push_back(ModemEvent::CommandCompleted {
                id: f.id,
                kind: f.kind,
                result,
            });
        }
        self.start_next(now);
    }
}
