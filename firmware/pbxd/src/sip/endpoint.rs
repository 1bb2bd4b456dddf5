//! The SIP endpoint of the daemon as a sans-IO core: bytes and flows in, bytes and
//! flows out. It runs the edge checks (guard, parser, validation, RFC 3581 Via
//! handling), the server transactions, and dispatches requests to the registrar.
//!
//! Run loop (the shell in `task.rs` does exactly this):
//! feed `handle_datagram` / `handle_frame` / `handle_timeout`, drain `poll_output`
//! until `None`, sleep until `poll_timeout()`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use pbx_sip::message::{
    parse_with, validate_request, Frame, HeaderName, Limits, Message, MessageBuilder, Method,
    ParseError, Rejection,
};
use pbx_sip::transaction::{
    Dispatch, Reliability, TimerConfig, TransactionEvent, TransactionKey, TransactionOutput,
    Transactions,
};

use super::guard::{AuthGuard, GuardConfig, NewBlock, Verdict};
use super::ua::{CallContext, CallOutput, SipCalls};
use crate::call::{CallConfig, CallServices, CallSummary};
use crate::registrar::{Directory, Flow, Registrar, RegistrarEvent, Transport};
use crate::trunk::clients::{TrunkClients, TrunkEvent};
use crate::trunk::register::RegisterOutput;
use crate::trunk::TrunkLinks;

/// Methods we answer, for Allow headers (RFC 3261 sec. 20.5).
pub use super::ua::ALLOW;

/// What the endpoint asks of its shell.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointOutput {
    /// Send these bytes on `flow` (UDP: to `dest`; TCP: on the connection to `flow.remote`).
    Transmit {
        /// The flow to send on.
        flow: Flow,
        /// Destination address (for UDP; equals `flow.remote` on streams).
        dest: SocketAddr,
        /// The serialized message.
        data: Vec<u8>,
    },
    /// Something to persist or log.
    Event(EndpointEvent),
    /// Close the stream connection of `flow` (a trunk's flow that stopped answering
    /// keep-alives); what is sent on the same remote afterwards opens a new one.
    Close {
        /// The flow to close.
        flow: Flow,
    },
}

/// Events for persistence and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// A registrar change (bindings saved or removed).
    Registrar(RegistrarEvent),
    /// A source was blocked after repeated authentication failures.
    SourceBlocked(NewBlock),
    /// A call ended: close its media, write its record.
    CallEnded(Box<CallSummary>),
    /// Input was dropped without an answer (logged at debug level by the shell).
    Dropped {
        /// Where it came from.
        source: SocketAddr,
        /// Why it was dropped.
        why: String,
    },
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests answered.
    pub requests: u64,
    /// Packets dropped from blocked sources.
    pub blocked_drops: u64,
    /// Packets dropped by the rate limit.
    pub rate_limited: u64,
    /// Malformed messages (answered or dropped).
    pub malformed: u64,
}

/// The daemon's SIP endpoint core.
#[derive(Debug)]
pub struct Endpoint {
    registrar: Registrar,
    calls: SipCalls,
    guard: AuthGuard,
    limits: Limits,
    udp: Transactions,
    stream: Transactions,
    /// The flow each live server transaction answers on.
    flows: HashMap<TransactionKey, Flow>,
    out: VecDeque<EndpointOutput>,
    stats: EndpointStats,
    /// The cloud trunks as the registration client sees them.
    trunks: TrunkLinks,
    /// The trunks' registration clients (they keep `trunks` current).
    registrations: TrunkClients,
    /// Trunk events for the shell (resolve, status changed).
    trunk_events: VecDeque<TrunkEvent>,
}

impl Endpoint {
    /// An endpoint around a registrar, with default call settings.
    pub fn new(registrar: Registrar, guard: GuardConfig, timers: TimerConfig) -> Self {
        Self::with_calls(
            registrar,
            SipCalls::new(CallConfig::default(), 0x5eed),
            guard,
            timers,
        )
    }

    /// An endpoint around a registrar and a B2BUA.
    pub fn with_calls(
        registrar: Registrar,
        calls: SipCalls,
        guard: GuardConfig,
        timers: TimerConfig,
    ) -> Self {
        Self {
            registrar,
            calls,
            guard: AuthGuard::new(guard),
            limits: Limits::default(),
            udp: Transactions::new(timers, Reliability::Unreliable),
            stream: Transactions::new(timers, Reliability::Reliable),
            flows: HashMap::new(),
            out: VecDeque::new(),
            stats: EndpointStats::default(),
            trunks: TrunkLinks::default(),
            registrations: TrunkClients::default(),
            trunk_events: VecDeque::new(),
        }
    }

    /// The registrar (read-only: bindings for listings).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The registrar, to restore bindings at start.
    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    /// The cloud trunks' current links.
    pub fn trunks(&self) -> &TrunkLinks {
        &self.trunks
    }

    /// The cloud trunks' links, kept current by the registration client.
    pub fn trunks_mut(&mut self) -> &mut TrunkLinks {
        &mut self.trunks
    }

    /// The trunks' registration clients.
    pub fn registrations(&self) -> &TrunkClients {
        &self.registrations
    }

    /// The trunks' registration clients, to add, replace or remove them (then call
    /// [`Endpoint::pump_registrations`]).
    pub fn registrations_mut(&mut self) -> &mut TrunkClients {
        &mut self.registrations
    }

    /// Moves the registration clients' outputs: messages to the shell's queue, link
    /// changes into [`Endpoint::trunks`], resolve requests and status changes to
    /// [`Endpoint::poll_trunk_event`].
    pub fn pump_registrations(&mut self) {
        while let Some((name, out)) = self.registrations.poll_output() {
            match out {
                RegisterOutput::Transmit { flow, data } => {
                    self.out.push_back(EndpointOutput::Transmit {
                        flow,
                        dest: flow.remote,
                        data,
                    })
                }
                RegisterOutput::Changed => {
                    if let Some(reg) = self.registrations.get(&name) {
                        self.trunks.upsert(reg.link());
                    }
                    self.trunk_events.push_back(TrunkEvent::Changed(name));
                }
                RegisterOutput::Resolve => self.trunk_events.push_back(TrunkEvent::Resolve(name)),
                RegisterOutput::Close { flow } => {
                    self.out.push_back(EndpointOutput::Close { flow })
                }
            }
        }
    }

    /// The next trunk event for the shell.
    pub fn poll_trunk_event(&mut self) -> Option<TrunkEvent> {
        self.trunk_events.pop_front()
    }

    /// The brute-force guard, to restore or lift blocks.
    pub fn guard_mut(&mut self) -> &mut AuthGuard {
        &mut self.guard
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Live transactions (for leak checks).
    pub fn transactions(&self) -> usize {
        self.udp.len() + self.stream.len()
    }

    /// Load shedding: while on, new calls get 503 with Retry-After (emergency calls
    /// excepted).
    pub fn set_overloaded(&mut self, on: bool) {
        self.calls.set_overloaded(on);
    }

    /// The B2BUA (read-only: live calls, leak checks).
    pub fn calls(&self) -> &SipCalls {
        &self.calls
    }

    /// A one-shot sound ended on call `id`.
    pub fn handle_playback_done(
        &mut self,
        now: Instant,
        id: u64,
        side: crate::call::Side,
        env: &mut dyn CallServices,
    ) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_playback_done(now, id, side, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// A hook transition on analog port `port`.
    pub fn handle_port_hook(
        &mut self,
        now: Instant,
        port: usize,
        event: crate::line::HookEvent,
        env: &mut dyn CallServices,
    ) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_port_hook(now, port, event, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// 20 ms of audio from the phone on analog port `port`.
    pub fn handle_port_audio(
        &mut self,
        now: Instant,
        port: usize,
        frame: &[i16],
        env: &mut dyn CallServices,
    ) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_port_audio(now, port, frame, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// Analog port `port` heard a fax or modem tone on its call (see
    /// [`SipCalls::handle_port_fax`]).
    pub fn handle_port_fax(&mut self, now: Instant, port: usize, env: &mut dyn CallServices) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_port_fax(now, port, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// A call event from the GSM module; `destination`: where inbound GSM calls ring.
    pub fn handle_gsm_event(
        &mut self,
        now: Instant,
        event: crate::gsm::GsmCallEvent,
        destination: Option<&str>,
        env: &mut dyn CallServices,
    ) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls
            .handle_gsm_event(now, event, destination, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// The GSM module refused to dial for `leg`.
    pub fn handle_gsm_dial_failed(
        &mut self,
        now: Instant,
        leg: u64,
        why: &str,
        env: &mut dyn CallServices,
    ) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_gsm_dial_failed(now, leg, why, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// The next instruction for the modem task.
    pub fn poll_gsm_output(&mut self) -> Option<crate::gsm::legs::GsmOutput> {
        self.calls.poll_gsm_output()
    }

    /// The analog ports' lines, to change their settings.
    pub fn port_legs_mut(&mut self) -> Option<&mut crate::line::legs::PortLegs> {
        self.calls.ports_mut()
    }

    /// The next instruction for an analog port's shell: (port, output).
    pub fn poll_port_output(&mut self) -> Option<(usize, crate::line::legs::PortOutput)> {
        self.calls.poll_port_output()
    }

    /// Click-to-dial: rings `extension`, then dials `number` for it once it answers.
    /// `Err`: refused (a blocked number, no phone reachable), and no phone rang.
    pub fn originate(
        &mut self,
        now: Instant,
        extension: &str,
        number: &str,
        env: &mut dyn CallServices,
    ) -> Result<u64, crate::call::Cause> {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        let r = self.calls.originate(now, extension, number, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
        r
    }

    /// The relay saw no media on call `id` for too long.
    pub fn handle_media_timeout(&mut self, now: Instant, id: u64, env: &mut dyn CallServices) {
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_media_timeout(now, id, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// Handles one UDP datagram.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        now_unix: u64,
        flow: Flow,
        data: &[u8],
        env: &mut impl CallServices,
    ) {
        if !self.admit(now, flow.remote) {
            return;
        }
        // Keep-alives from phones behind NAT: CRLF (RFC 5626 sec. 4.4.1), ignored on UDP.
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            return;
        }
        if data.len() > self.limits.max_message_size {
            self.drop_input(flow.remote, "oversized datagram");
            return;
        }
        let parsed = parse_with(data, &self.limits);
        self.handle_parsed(now, now_unix, flow, parsed, env);
    }

    /// Handles one frame decoded from a TCP or TLS stream.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        now_unix: u64,
        flow: Flow,
        frame: Result<Frame, ParseError>,
        env: &mut impl CallServices,
    ) {
        if !self.admit(now, flow.remote) {
            return;
        }
        match frame {
            // RFC 5626 sec. 3.5.1: answer a double-CRLF ping with a single CRLF pong.
            Ok(Frame::KeepAlive) => self.out.push_back(EndpointOutput::Transmit {
                flow,
                dest: flow.remote,
                data: b"\r\n".to_vec(),
            }),
            // The registrar's answer to a trunk's ping (only outgoing streams report it).
            Ok(Frame::Pong) => {
                self.registrations.handle_pong(flow.remote);
            }
            Ok(Frame::Message(msg)) => self.handle_parsed(now, now_unix, flow, Ok(msg), env),
            Err(e) => self.handle_parsed(now, now_unix, flow, Err(e), env),
        }
    }

    /// Fires due timers (transactions, binding expiry, calls).
    pub fn handle_timeout(&mut self, now: Instant, env: &mut impl CallServices) {
        self.registrations.handle_timeout(now);
        self.pump_registrations();
        self.udp.handle_timeout(now);
        self.stream.handle_timeout(now);
        self.registrar.handle_timeout(now);
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        self.calls.handle_timeout(now, &mut ctx);
        self.pump_calls(now);
        self.drain(now, 0, env);
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<EndpointOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.udp.poll_timeout(),
            self.stream.poll_timeout(),
            self.registrar.poll_timeout(),
            self.calls.poll_timeout(),
            self.registrations.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn admit(&mut self, now: Instant, source: SocketAddr) -> bool {
        match self.guard.check(now, source.ip()) {
            Verdict::Allow => true,
            Verdict::Blocked => {
                self.stats.blocked_drops += 1;
                false
            }
            Verdict::RateLimited => {
                self.stats.rate_limited += 1;
                false
            }
        }
    }

    fn handle_parsed(
        &mut self,
        now: Instant,
        now_unix: u64,
        flow: Flow,
        parsed: Result<Message, ParseError>,
        env: &mut impl CallServices,
    ) {
        let msg = match parsed {
            Ok(msg) => msg,
            Err(e) => {
                self.stats.malformed += 1;
                match (e.rejection(), e.partial()) {
                    (Some(rej), Some(partial)) => self.reject(flow, partial, &rej),
                    _ => self.drop_input(flow.remote, &format!("unparseable: {e}")),
                }
                return;
            }
        };
        if !msg.is_request() {
            // Responses to the trunks' REGISTERs never reach the call layer.
            if self.registrations.handle_response(now, &msg) {
                self.pump_registrations();
                return;
            }
            match self.table(flow.transport).handle_message(now, msg) {
                Ok(Dispatch::Stray(resp)) => self.calls.handle_stray_response(&resp),
                Ok(_) => {}
                Err(e) => self.drop_input(flow.remote, &format!("bad response: {e}")),
            }
            self.pump_calls(now);
            self.drain(now, now_unix, env);
            return;
        }
        if let Err(rej) = validate_request(&msg) {
            self.stats.malformed += 1;
            self.reject(flow, &msg, &rej);
            return;
        }
        let msg = with_received(msg, flow.remote);
        let table = self.table(flow.transport);
        match table.handle_message(now, msg) {
            Ok(Dispatch::Created(key)) | Ok(Dispatch::Matched(key)) => {
                self.flows.entry(key).or_insert(flow);
            }
            // An ACK for a 2xx (its own transaction, sec. 17.1.1.3) goes to the calls.
            Ok(Dispatch::Stray(ack)) => {
                let mut ctx = CallContext {
                    registrar: &mut self.registrar,
                    services: env,
                    trunks: &self.trunks,
                };
                self.calls.handle_ack(now, &ack, &mut ctx);
                self.pump_calls(now);
            }
            Err(e) => self.drop_input(flow.remote, &format!("no transaction: {e}")),
        }
        self.drain(now, now_unix, env);
    }

    /// Housekeeping (every few seconds): drops bindings of extensions removed or
    /// disabled meanwhile, and forgets guard state that no longer matters. Kept off the
    /// timer path, which fires for every lingering transaction.
    pub fn handle_housekeeping(&mut self, now: Instant, env: &mut impl CallServices) {
        self.registrar.drop_unknown_users(env);
        self.drain(now, 0, env);
        self.guard.purge(now);
    }

    /// Carries out what the B2BUA asked for: responses on its server transactions,
    /// new client transactions, ACKs, and call records.
    fn pump_calls(&mut self, now: Instant) {
        while let Some(out) = self.calls.poll_output() {
            match out {
                CallOutput::Respond { key, response } => {
                    let Some(flow) = self.flows.get(&key).copied() else {
                        continue;
                    };
                    if let Err(e) = self
                        .table(flow.transport)
                        .send_response(now, &key, response)
                    {
                        self.drop_input(flow.remote, &format!("cannot answer: {e}"));
                    }
                }
                CallOutput::Request { flow, request } => {
                    match self.table(flow.transport).send_request(now, request) {
                        // Its first output (the request) is transmitted by `drain`,
                        // which needs the flow.
                        Ok(key) => {
                            self.flows.insert(key, flow);
                        }
                        Err(e) => self.drop_input(flow.remote, &format!("cannot send: {e}")),
                    }
                }
                CallOutput::Send { flow, message } => {
                    self.out.push_back(EndpointOutput::Transmit {
                        flow,
                        dest: flow.remote,
                        data: message.to_bytes(),
                    })
                }
                CallOutput::Abandon { key } => {
                    if let Some(flow) = self.flows.get(&key).copied() {
                        self.table(flow.transport).abandon(&key);
                    }
                }
                CallOutput::Ended(summary) => self
                    .out
                    .push_back(EndpointOutput::Event(EndpointEvent::CallEnded(summary))),
            }
        }
    }

    /// Moves transaction and registrar outputs to the shell's queue, answering the
    /// requests handed to the TU.
    fn drain(&mut self, now: Instant, now_unix: u64, env: &mut dyn CallServices) {
        loop {
            let next = self
                .udp
                .poll_output()
                .map(|o| (Transport::Udp, o))
                .or_else(|| self.stream.poll_output().map(|o| (Transport::Tcp, o)));
            let Some((transport, (key, output))) = next else {
                break;
            };
            match output {
                TransactionOutput::Transmit(msg) => self.transmit(&key, &msg),
                TransactionOutput::ToTu(msg) if !msg.is_request() => {
                    let mut ctx = CallContext {
                        registrar: &mut self.registrar,
                        services: env,
                        trunks: &self.trunks,
                    };
                    self.calls.handle_response(now, &key, &msg, &mut ctx);
                    self.pump_calls(now);
                }
                TransactionOutput::ToTu(req) => {
                    let Some(flow) = self.flows.get(&key).copied() else {
                        continue;
                    };
                    self.stats.requests += 1;
                    if let Some(resp) = self.respond(now, now_unix, &key, &req, flow, env) {
                        if let Err(e) = self.table(transport).send_response(now, &key, resp) {
                            self.drop_input(flow.remote, &format!("cannot answer: {e}"));
                        }
                    }
                    self.pump_calls(now);
                }
                TransactionOutput::Event(TransactionEvent::Terminated) => {
                    self.flows.remove(&key);
                    self.calls.transaction_terminated(&key);
                }
                TransactionOutput::Event(
                    TransactionEvent::TimedOut(_) | TransactionEvent::TransportFailed,
                ) => {
                    let mut ctx = CallContext {
                        registrar: &mut self.registrar,
                        services: env,
                        trunks: &self.trunks,
                    };
                    self.calls.handle_transaction_failure(now, &key, &mut ctx);
                    self.pump_calls(now);
                }
            }
        }
        while let Some(ev) = self.registrar.poll_event() {
            match ev {
                RegistrarEvent::AuthFailed { ip, .. } => {
                    if let Some(block) = self.guard.record_failure(now, ip) {
                        self.out
                            .push_back(EndpointOutput::Event(EndpointEvent::SourceBlocked(block)));
                    }
                }
                RegistrarEvent::AuthSucceeded { ip } => self.guard.record_success(ip),
                other => self
                    .out
                    .push_back(EndpointOutput::Event(EndpointEvent::Registrar(other))),
            }
        }
    }

    /// The transaction user: the final response to a new request, or `None` when the
    /// B2BUA took it and answers by itself.
    fn respond(
        &mut self,
        now: Instant,
        now_unix: u64,
        key: &TransactionKey,
        req: &Message,
        flow: Flow,
        env: &mut dyn CallServices,
    ) -> Option<Message> {
        let Some(method) = req.method() else {
            return Some(MessageBuilder::response_to(req, 400, "Bad Request").build());
        };
        let in_dialog = req.to_header().map(|t| t.tag().is_some()).unwrap_or(false);
        let mut ctx = CallContext {
            registrar: &mut self.registrar,
            services: env,
            trunks: &self.trunks,
        };
        if in_dialog && *method != Method::Register && *method != Method::Cancel {
            if self.calls.handle_in_dialog(now, key, req, &mut ctx) {
                return None;
            }
            return Some(
                MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist").build(),
            );
        }
        Some(match method {
            Method::Invite => {
                self.calls
                    .handle_invite(now, now_unix, key.clone(), req, flow, &mut ctx);
                return None;
            }
            Method::Cancel => {
                let table = self.table(flow.transport);
                let invite = table.invite_for_cancel(key);
                let known = invite.as_ref().is_some_and(|k| self.calls.knows_invite(k));
                if let (Some(invite), true) = (invite, known) {
                    // 200 for the CANCEL first, then 487 for the INVITE (sec. 9.2).
                    // sec. 9.2: the To tag of the INVITE's responses.
                    let mut ok = MessageBuilder::response_to(req, 200, "OK");
                    if let Some(tag) = self.calls.caller_tag(&invite) {
                        ok = ok.set_to_tag(&tag);
                    }
                    let ok = ok.build();
                    if let Err(e) = self.table(flow.transport).send_response(now, key, ok) {
                        self.drop_input(flow.remote, &format!("cannot answer: {e}"));
                    }
                    let mut ctx = CallContext {
                        registrar: &mut self.registrar,
                        services: env,
                        trunks: &self.trunks,
                    };
                    self.calls.handle_cancel(now, &invite, &mut ctx);
                    return None;
                }
                MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist").build()
            }
            Method::Register => {
                let dir: &mut dyn Directory = env;
                self.registrar
                    .handle_register(now, now_unix, req, flow, dir)
            }
            Method::Options => MessageBuilder::response_to(req, 200, "OK")
                .set_to_tag(&tag_for(req))
                .header(HeaderName::Allow, ALLOW)
                .header(HeaderName::Accept, "application/sdp")
                // No option tags yet: we must not claim outbound or path we do not do.
                .header(HeaderName::Supported, "")
                .build(),
            // Outside a dialog there is nothing to end.
            Method::Bye => {
                MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist").build()
            }
            m if m.is_known() => MessageBuilder::response_to(req, 405, "Method Not Allowed")
                .header(HeaderName::Allow, ALLOW)
                .build(),
            _ => MessageBuilder::response_to(req, 501, "Not Implemented")
                .header(HeaderName::Allow, ALLOW)
                .build(),
        })
    }

    fn transmit(&mut self, key: &TransactionKey, msg: &Message) {
        let Some(flow) = self.flows.get(key).copied() else {
            return;
        };
        // Our requests go where the peer's flow is (its NAT binding or connection).
        let dest = if msg.is_request() {
            flow.remote
        } else {
            response_destination(msg, flow)
        };
        self.out.push_back(EndpointOutput::Transmit {
            flow,
            dest,
            data: msg.to_bytes(),
        });
    }

    /// Answers a malformed request statelessly (there is no valid transaction to keep).
    fn reject(&mut self, flow: Flow, req: &Message, rej: &Rejection) {
        if req.method() == Some(&Method::Ack) {
            // An ACK is never answered (RFC 3261 sec. 17.2.3), malformed or not.
            self.drop_input(flow.remote, &format!("malformed ACK: {}", rej.reason));
            return;
        }
        if req.top_via().is_err() {
            self.drop_input(
                flow.remote,
                &format!("{} {} (no Via)", rej.status, rej.reason),
            );
            return;
        }
        let req = with_received(req.clone(), flow.remote);
        let resp = MessageBuilder::response_to(&req, rej.status, &rej.reason).build();
        self.out.push_back(EndpointOutput::Transmit {
            flow,
            dest: response_destination(&resp, flow),
            data: resp.to_bytes(),
        });
    }

    fn drop_input(&mut self, source: SocketAddr, why: &str) {
        self.out
            .push_back(EndpointOutput::Event(EndpointEvent::Dropped {
                source,
                why: why.to_owned(),
            }));
    }

    fn table(&mut self, transport: Transport) -> &mut Transactions {
        match transport {
            Transport::Udp => &mut self.udp,
            Transport::Tcp | Transport::Tls => &mut self.stream,
        }
    }

    /// Lifts a brute-force block (installer action); true if one was active.
    pub fn lift_block(&mut self, ip: IpAddr) -> bool {
        self.guard.lift_block(ip)
    }
}

/// RFC 3581 and RFC 3261 sec. 18.2.1: record where the request really came from in its
/// top Via, so that responses (which copy the Vias) find their way back through NAT.
fn with_received(mut msg: Message, source: SocketAddr) -> Message {
    let Ok(mut via) = msg.top_via() else {
        return msg;
    };
    let ip = source.ip().to_string();
    let wants_rport = via.rport().is_some();
    if wants_rport || via.host.trim_start_matches('[').trim_end_matches(']') != ip {
        via.params.set("received", Some(ip.as_str()));
    }
    if wants_rport {
        via.params
            .set("rport", Some(source.port().to_string().as_str()));
    }
    msg.set_top_via(&via);
    msg
}

/// Where a response goes (RFC 3261 sec. 18.2.2 with RFC 3581): the connection it came
/// on for streams; for UDP, `received` (else sent-by) with `rport` (else the Via port).
fn response_destination(resp: &Message, flow: Flow) -> SocketAddr {
    if flow.transport != Transport::Udp {
        return flow.remote;
    }
    let Ok(via) = resp.top_via() else {
        return flow.remote;
    };
    let ip = via
        .received()
        .and_then(|r| r.parse::<IpAddr>().ok())
        .or_else(|| {
            via.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
        .unwrap_or(flow.remote.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port_or_default(),
    };
    SocketAddr::new(ip, port)
}

/// A stable To-tag for stateless answers (OPTIONS): derived from the request's
/// Call-ID and CSeq so retransmissions get the same tag.
fn tag_for(req: &Message) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.call_id().unwrap_or("").hash(&mut h);
    req.header(&HeaderName::CSeq).unwrap_or("").hash(&mut h);
    format!("{:016x}", h.finish())
}
