//! The registration client for one trunk, sans-IO: REGISTER with digest, refresh at half
//! the granted expiry, failover across the resolved targets, back-off with jitter, NAT
//! keep-alive and the public address learned from the registrar's Via.
//!
//! Run loop (the shell does exactly this; see `crate::sip::trunks`):
//! ```text
//! let mut reg = Registration::new(cfg, now, seed);      // asks for Resolve first
//! loop {
//!     while let Some(out) = reg.poll_output() {
//!         Resolve             -> resolve the registrar, then reg.handle_targets(now, result)
//!         Transmit{..}        -> send the bytes on the flow
//!         Changed             -> refresh TrunkLinks and the status row from reg.link()
//!     }
//!     sleep until reg.poll_timeout(); reg.handle_timeout(now)
//!     a response with our Call-ID -> reg.handle_response(now, &msg)
//! }
//! ```

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use pbx_sip::auth::{authorize, select_challenge, Challenge};
use pbx_sip::message::{Contacts, HeaderName, Message, MessageBuilder, Method, Uri};
use pbx_sip::transaction::{
    ClientNonInvite, Reliability, TimerConfig, TransactionEvent, TransactionInput,
    TransactionOutput,
};

use super::{TrunkAuth, TrunkLink, TrunkState};
use crate::registrar::{Flow, Transport};

/// First back-off after a failed round; doubles per failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(30);
/// Longest back-off, and the wait after 403 or refused credentials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30 * 60);
/// NAT keep-alive interval: below the 30 s UDP time-out of many NAT boxes.
pub const KEEPALIVE: Duration = Duration::from_secs(25);
/// How long a CRLF pong may take on TCP/TLS before the flow counts as dead (RFC 5626
/// sec. 4.4.1: 10 s).
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest refresh interval we accept, whatever the registrar grants.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// How often a removed trunk's un-REGISTER is sent (each a full transaction) before the
/// client gives up and lets the binding lapse at its expiry.
pub const UNREGISTER_TRIES: u32 = 3;

/// What one trunk's client is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Trunk name.
    pub name: String,
    /// SIP domain: Request-URI, From and To host.
    pub domain: String,
    /// SIP-ID (AOR user).
    pub user: String,
    /// Digest credentials.
    pub auth: Option<TrunkAuth>,
    /// Transport to the registrar.
    pub transport: Transport,
    /// Registration interval asked for.
    pub expires: Duration,
    /// NAT keep-alive interval.
    pub keepalive: Duration,
    /// SIP timers (T1, T2, T4).
    pub timers: TimerConfig,
    /// The account's SRTP mode, handed on to its link for the trunk's calls.
    pub srtp: crate::media::SrtpMode,
}

/// One place to send the REGISTER: the registrar's (or outbound proxy's) address and our
/// local address toward it (for Via and Contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Where to send.
    pub remote: SocketAddr,
    /// Our address on the path.
    pub local: SocketAddr,
}

/// The shell's resolution of the registrar and outbound proxy (RFC 3263).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Targets to try, in order.
    pub targets: Vec<Target>,
    /// All addresses of registrar and proxy (requests from them are the provider's).
    pub peers: Vec<IpAddr>,
}

/// What the client asks of its shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutput {
    /// Resolve the registrar and answer with [`Registration::handle_targets`].
    Resolve,
    /// Send `data` on `flow` (UDP: a datagram to `flow.remote`; streams: on the
    /// connection to `flow.remote`, opened by the shell if needed).
    Transmit {
        /// The flow to send on.
        flow: Flow,
        /// Serialised message or keep-alive.
        data: Vec<u8>,
    },
    /// The link (state, flow, public address, peers) changed: read [`Registration::link`].
    Changed,
    /// The stream `flow` is dead (no pong): close the connection. The REGISTER that
    /// follows must go on a new connection, so this comes before it.
    Close {
        /// The flow to close.
        flow: Flow,
    },
}

/// Why the current REGISTER is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the shell's targets.
    Resolving,
    /// A REGISTER transaction runs.
    Sending,
    /// Registered; refresh armed.
    Idle,
    /// Waiting out a back-off (or the long wait after 403 / bad credentials).
    Waiting,
}

/// One trunk's registration client.
#[derive(Debug)]
pub struct Registration {
    cfg: RegisterConfig,
    phase: Phase,
    state: TrunkState,
    resolved: Resolved,
    /// Index into `resolved.targets` of the target in use.
    current: usize,
    /// Targets tried in this round (failover stops when all were tried).
    tried: usize,
    call_id: String,
    from_tag: String,
    cseq: u32,
    branch_seq: u64,
    tx: Option<ClientNonInvite>,
    /// The latest challenge and how many requests used its nonce.
    challenge: Option<(Challenge, bool, u32)>,
    /// Whether the request in flight answered a challenge received just before it.
    answered_fresh: bool,
    /// Why the stream failed, for the status.
    last_error: Option<String>,
    /// 423 raised the interval: what we ask now.
    expires: Duration,
    public: Option<SocketAddr>,
    /// A Contact registered before the public address was known: removed (expires=0)
    /// with the next REGISTER.
    stale_contact: Option<SocketAddr>,
    flow: Option<Flow>,
    registered_until: Option<Instant>,
    refresh_at: Option<Instant>,
    retry_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// A ping went out on a stream: its pong is due by then.
    pong_due: Option<Instant>,
    failures: u32,
    rng: u64,
    /// When the trunk last stopped being registered (or started).
    down_since: Instant,
    /// Removed or disabled: the un-REGISTER in progress.
    leaving: Option<Leaving>,
    out: VecDeque<RegisterOutput>,
}

/// A removed trunk's un-REGISTER: how many were sent and whether the client is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaving {
    tries: u32,
    done: bool,
}

impl Registration {
    /// A client that starts by asking its shell to resolve the registrar. `seed` feeds
    /// the Call-ID, tags, branches and back-off jitter.
    pub fn new(cfg: RegisterConfig, now: Instant, seed: u64) -> Self {
        let mut rng = seed | 1;
        let call_id = format!("{:016x}{:016x}@pbxd", next(&mut rng), next(&mut rng));
        let from_tag = format!("{:x}", next(&mut rng));
        let expires = cfg.expires;
        let mut reg = Registration {
            cfg,
            phase: Phase::Resolving,
            state: TrunkState::Registering,
            resolved: Resolved {
                targets: Vec::new(),
                peers: Vec::new(),
            },
            current: 0,
            tried: 0,
            call_id,
            from_tag,
            cseq: 0,
            branch_seq: 0,
            tx: None,
            challenge: None,
            answered_fresh: false,
            last_error: None,
            expires,
            public: None,
            stale_contact: None,
            flow: None,
            registered_until: None,
            refresh_at: None,
            retry_at: None,
            keepalive_at: None,
            pong_due: None,
            failures: 0,
            rng,
            down_since: now,
            leaving: None,
            out: VecDeque::new(),
        };
        reg.out.push_back(RegisterOutput::Resolve);
        reg.out.push_back(RegisterOutput::Changed);
        reg
    }

    /// The configuration.
    pub fn config(&self) -> &RegisterConfig {
        &self.cfg
    }

    /// The current state.
    pub fn state(&self) -> &TrunkState {
        &self.state
    }

    /// Until when the registration holds (while registered).
    pub fn registered_until(&self) -> Option<Instant> {
        self.registered_until
            .filter(|_| self.state == TrunkState::Registered)
    }

    /// Since when the trunk has not been registered (`None` while registered).
    pub fn down_since(&self) -> Option<Instant> {
        (self.state != TrunkState::Registered).then_some(self.down_since)
    }

    /// When the next attempt after a failure is due.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The address REGISTERs currently go to.
    pub fn target_remote(&self) -> Option<SocketAddr> {
        self.target().map(|t| t.remote)
    }

    /// This REGISTER dialog's Call-ID (responses carrying it belong to this client).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The contract view for the SIP user agent and call control.
    pub fn link(&self) -> TrunkLink {
        TrunkLink {
            name: self.cfg.name.clone(),
            domain: self.cfg.domain.clone(),
            user: self.cfg.user.clone(),
            auth: self.cfg.auth.clone(),
            flow: self.flow.filter(|_| self.state == TrunkState::Registered),
            peers: self.resolved.peers.clone(),
            public: self.public,
            state: self.state.clone(),
            srtp: Some(self.cfg.srtp),
        }
    }

    /// The shell's answer to [`RegisterOutput::Resolve`]: targets, or why there are none.
    pub fn handle_targets(&mut self, now: Instant, resolved: Result<Resolved, String>) {
        if self.phase != Phase::Resolving {
            return;
        }
        match resolved {
            Ok(r) if !r.targets.is_empty() => {
                let peers_changed = r.peers != self.resolved.peers;
                self.resolved = r;
                self.current = 0;
                self.tried = 1;
                if peers_changed {
                    self.out.push_back(RegisterOutput::Changed);
                }
                self.send_register(now);
            }
            Ok(_) => self.fail_round(
                now,
                TrunkState::Unreachable(format!("{} resolves to no address", self.cfg.domain)),
            ),
            Err(why) => self.fail_round(now, TrunkState::Unreachable(why)),
        }
    }

    /// A response whose Call-ID is ours. Returns whether it was ours (stale responses of
    /// finished transactions are absorbed too).
    pub fn handle_response(&mut self, now: Instant, msg: &Message) -> bool {
        if msg.call_id().ok() != Some(self.call_id.as_str()) {
            return false;
        }
        let Some(tx) = self.tx.as_mut() else {
            return true;
        };
        let ours = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            == tx
                .request()
                .top_via()
                .ok()
                .and_then(|v| v.branch().map(str::to_owned));
        if ours {
            tx.handle(now, TransactionInput::Received(msg.clone()));
            self.pump_tx(now);
        }
        true
    }

    /// The stream to the registrar failed (connect refused, reset, TLS error).
    pub fn handle_transport_error(&mut self, now: Instant, why: &str) {
        if let Some(tx) = self.tx.as_mut() {
            tx.handle(now, TransactionInput::TransportError);
            self.last_error = Some(why.to_owned());
            self.pump_tx(now);
        } else if self.state == TrunkState::Registered {
            // The registered flow broke: register again at once (RFC 5626 sec. 4.4).
            self.last_error = Some(why.to_owned());
            self.start_round(now);
        }
    }

    /// Fires due timers: transaction retransmissions, refresh, retry, keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tx) = self.tx.as_mut() {
            if tx.poll_timeout().is_some_and(|t| t <= now) {
                tx.handle(now, TransactionInput::Timeout);
                self.pump_tx(now);
            }
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = Some(now + self.cfg.keepalive);
            if let Some(flow) = self.flow.filter(|_| self.state == TrunkState::Registered) {
                // RFC 5626 sec. 3.5.1 double-CRLF ping; on UDP it refreshes the NAT binding.
                self.out.push_back(RegisterOutput::Transmit {
                    flow,
                    data: b"\r\n\r\n".to_vec(),
                });
                if flow.transport != Transport::Udp && self.pong_due.is_none() {
                    self.pong_due = Some(now + PONG_TIMEOUT);
                }
            }
        }
        if self.pong_due.is_some_and(|t| t <= now) {
            self.pong_due = None;
            self.flow_dead(now);
        }
        if self.registered_until.is_some_and(|t| t <= now) && self.state == TrunkState::Registered {
            self.set_state(now, TrunkState::Unreachable("registration expired".into()));
        }
        if self.refresh_at.is_some_and(|t| t <= now) && self.phase == Phase::Idle {
            self.refresh_at = None;
            self.tried = 1;
            self.send_register(now);
        }
        if self.retry_at.is_some_and(|t| t <= now) && self.phase == Phase::Waiting {
            self.retry_at = None;
            if self.leaving.is_some() {
                // The same registrar that holds the binding; no new resolution.
                self.send_register(now);
            } else {
                self.start_round(now);
            }
        }
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<RegisterOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tx.as_ref().and_then(ClientNonInvite::poll_timeout),
            self.keepalive_at,
            self.pong_due,
            self.registered_until
                .filter(|_| self.state == TrunkState::Registered),
            self.refresh_at.filter(|_| self.phase == Phase::Idle),
            self.retry_at.filter(|_| self.phase == Phase::Waiting),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A CRLF pong arrived from `remote` (RFC 5626 sec. 4.4.1): the flow is alive.
    /// Returns whether it was this client's flow.
    pub fn handle_pong(&mut self, remote: SocketAddr) -> bool {
        let ours =
            self.cfg.transport != Transport::Udp && self.flow.is_some_and(|f| f.remote == remote);
        if ours {
            self.pong_due = None;
        }
        ours
    }

    /// Whether a pong is awaited, and until when.
    pub fn pong_due(&self) -> Option<Instant> {
        self.pong_due
    }

    /// No pong within [`PONG_TIMEOUT`]: the connection (or a NAT binding on its path) is
    /// gone although no error was seen. Close it and register again at once on a new
    /// connection; until that succeeds the trunk is down and its flow unusable.
    fn flow_dead(&mut self, now: Instant) {
        let Some(flow) = self.flow.take() else {
            return;
        };
        self.out.push_back(RegisterOutput::Close { flow });
        self.tx = None;
        self.registered_until = None;
        self.refresh_at = None;
        self.keepalive_at = None;
        self.pong_due = None;
        self.tried = 1;
        self.set_state(
            now,
            TrunkState::Unreachable(format!(
                "no keep-alive answer from {} within {} s: registering on a new connection",
                flow.remote,
                PONG_TIMEOUT.as_secs()
            )),
        );
        self.send_register(now);
    }

    fn start_round(&mut self, _now: Instant) {
        self.phase = Phase::Resolving;
        self.tx = None;
        self.out.push_back(RegisterOutput::Resolve);
    }

    fn target(&self) -> Option<Target> {
        self.resolved.targets.get(self.current).copied()
    }

    fn flow_to(&self, t: Target) -> Flow {
        Flow {
            transport: self.cfg.transport,
            remote: t.remote,
            local: t.local,
        }
    }

    /// Our Contact address: the public one once the registrar told us, else local.
    fn contact_addr(&self, t: Target) -> SocketAddr {
        self.public.unwrap_or(t.local)
    }

    /// The trunk is being removed or disabled: an un-REGISTER (`Expires: 0`, our Contact
    /// with `expires=0`, RFC 3261 sec. 10.2.2) on the registered flow, answered with the
    /// latest challenge's credentials, so the provider stops routing calls to us at once.
    /// It runs as a transaction: a new challenge is answered, and a lost or refused one
    /// (time-out, transport error, 5xx) is sent again after the client's back-off, up to
    /// [`UNREGISTER_TRIES`] times; then the binding lapses at its expiry. The outputs
    /// come from [`Self::poll_output`]; [`Self::finished`] says when to drop the client.
    /// Returns false (and the client is finished) when it was not registered.
    pub fn unregister(&mut self, now: Instant) -> bool {
        let registered = self.flow.is_some() && self.state == TrunkState::Registered;
        self.set_state_quiet(TrunkState::Disabled);
        self.tx = None;
        self.phase = Phase::Waiting;
        if !registered || self.target().is_none() {
            self.leaving = Some(Leaving {
                tries: 0,
                done: true,
            });
            return false;
        }
        self.leaving = Some(Leaving {
            tries: 1,
            done: false,
        });
        self.send_register(now);
        true
    }

    /// A removed trunk's client has nothing more to send: its un-REGISTER was answered,
    /// refused for good, or every try failed.
    pub fn finished(&self) -> bool {
        self.leaving.is_some_and(|l| l.done)
    }

    /// How many un-REGISTERs this (removed) client has started.
    pub fn unregister_tries(&self) -> u32 {
        self.leaving.map_or(0, |l| l.tries)
    }

    /// The un-REGISTER got its answer, or was refused in a way a retry cannot fix.
    fn leave_done(&mut self, why: &str) {
        self.tx = None;
        self.retry_at = None;
        self.phase = Phase::Waiting;
        self.last_error = Some(why.to_owned());
        if let Some(l) = self.leaving.as_mut() {
            l.done = true;
        }
    }

    /// The un-REGISTER was lost or the registrar was in trouble: again after the back-off,
    /// unless all tries are used.
    fn leave_retry(&mut self, now: Instant, why: String) {
        let Some(l) = self.leaving.as_mut() else {
            return;
        };
        if l.tries >= UNREGISTER_TRIES {
            self.leave_done(&format!("un-REGISTER given up: {why}"));
            return;
        }
        l.tries += 1;
        self.tx = None;
        self.last_error = Some(why);
        self.retry_at = Some(now + self.backoff());
        self.phase = Phase::Waiting;
    }

    fn set_state_quiet(&mut self, state: TrunkState) {
        self.state = state;
        self.flow = None;
        self.registered_until = None;
        self.refresh_at = None;
        self.retry_at = None;
        self.keepalive_at = None;
        self.pong_due = None;
    }

    fn send_register(&mut self, now: Instant) {
        let Some(t) = self.target() else {
            self.start_round(now);
            return;
        };
        self.phase = Phase::Sending;
        let msg = self.build_register(t, self.leaving.is_some());
        let reliability = match self.cfg.transport {
            Transport::Udp => Reliability::Unreliable,
            _ => Reliability::Reliable,
        };
        match ClientNonInvite::new(msg, self.cfg.timers, reliability, now) {
            Ok(tx) => {
                self.tx = Some(tx);
                self.pump_tx(now);
            }
            // Our own request always has a branch and a method that fits.
            Err(e) => self.fail_round(now, TrunkState::Failed(format!("internal: {e}"))),
        }
    }

    /// The next REGISTER to `t`: with our Contact for the interval asked, or with
    /// `unregister` its removal (Expires 0).
    fn build_register(&mut self, t: Target, unregister: bool) -> Message {
        self.cseq += 1;
        self.branch_seq += 1;
        let branch = format!("z9hG4bK{:x}{:x}", next(&mut self.rng), self.branch_seq);
        let transport = self.cfg.transport;
        let uri = Uri::sip(None, &self.cfg.domain, None);
        let aor = format!("<sip:{}@{}>", self.cfg.user, self.cfg.domain);
        let contact = self.contact_addr(t);
        let param = match transport {
            Transport::Udp => String::new(),
            other => format!(";transport={}", other.as_str().to_ascii_lowercase()),
        };
        let mut b = MessageBuilder::request(Method::Register, uri)
            .header(
                HeaderName::Via,
                format!(
                    "SIP/2.0/{} {};rport;branch={branch}",
                    transport.as_str(),
                    host_port(t.local)
                ),
            )
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, format!("{aor};tag={}", self.from_tag))
            .header(HeaderName::To, aor)
            .header(HeaderName::CallId, self.call_id.clone())
            .header(HeaderName::CSeq, format!("{} REGISTER", self.cseq))
            .header(
                HeaderName::Contact,
                format!(
                    "<sip:{}@{}{param}>{}",
                    self.cfg.user,
                    host_port(contact),
                    if unregister { ";expires=0" } else { "" }
                ),
            )
            .header(
                HeaderName::Expires,
                if unregister {
                    "0".to_owned()
                } else {
                    self.expires.as_secs().to_string()
                },
            )
            .header(HeaderName::UserAgent, "pbxd");
        if let Some(old) = self.stale_contact.filter(|_| !unregister) {
            b = b.header(
                HeaderName::Contact,
                format!(
                    "<sip:{}@{}{param}>;expires=0",
                    self.cfg.user,
                    host_port(old)
                ),
            );
        }
        self.answered_fresh = false;
        if let (Some((ch, proxy, nc)), Some(auth)) = (self.challenge.as_mut(), &self.cfg.auth) {
            *nc += 1;
            let cnonce = format!("{:x}", next(&mut self.rng));
            let digest_uri = format!("sip:{}", self.cfg.domain);
            if let Ok(value) = authorize(
                ch,
                "REGISTER",
                &digest_uri,
                &auth.user,
                &auth.password,
                &cnonce,
                *nc,
            ) {
                let name = if *proxy {
                    HeaderName::ProxyAuthorization
                } else {
                    HeaderName::Authorization
                };
                b = b.header(name, value);
                self.answered_fresh = *nc == 1;
            }
        }
        b.build()
    }

    /// Moves the transaction's outputs: transmissions to the shell, the final response
    /// or failure to the client logic.
    fn pump_tx(&mut self, now: Instant) {
        let Some(t) = self.target() else {
            return;
        };
        let flow = self.flow_to(t);
        loop {
            let Some(tx) = self.tx.as_mut() else {
                return;
            };
            let Some(out) = tx.poll_output() else {
                return;
            };
            match out {
                TransactionOutput::Transmit(msg) => self.out.push_back(RegisterOutput::Transmit {
                    flow,
                    data: msg.to_bytes(),
                }),
                TransactionOutput::ToTu(resp) => self.on_response(now, t, &resp),
                TransactionOutput::Event(TransactionEvent::TimedOut(_)) => {
                    let why = format!("no answer from {}", t.remote);
                    self.tx = None;
                    if self.leaving.is_some() {
                        self.leave_retry(now, why);
                    } else {
                        self.next_target(now, TrunkState::Unreachable(why));
                    }
                }
                TransactionOutput::Event(TransactionEvent::TransportFailed) => {
                    let why = format!(
                        "cannot reach {}: {}",
                        t.remote,
                        self.last_error
                            .take()
                            .unwrap_or_else(|| "transport error".into())
                    );
                    self.tx = None;
                    if self.leaving.is_some() {
                        self.leave_retry(now, why);
                    } else {
                        self.next_target(now, TrunkState::Unreachable(why));
                    }
                }
                TransactionOutput::Event(TransactionEvent::Terminated) => {}
            }
        }
    }

    fn on_response(&mut self, now: Instant, t: Target, resp: &Message) {
        let Some(status) = resp.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        // The transaction may linger (Timer K) but we are done with it.
        self.tx = None;
        let line = format!("{status} {}", resp.reason().unwrap_or(""));
        if self.leaving.is_some() {
            self.on_unregister_response(now, status, line, resp);
            return;
        }
        match status {
            200..=299 => self.on_success(now, t, resp),
            401 | 407 => self.on_challenge(now, status == 407, resp),
            403 => {
                self.challenge = None;
                self.wait(now, TrunkState::Forbidden, BACKOFF_MAX);
            }
            423 => {
                let min = resp.min_expires().ok().flatten().map(u64::from);
                match min {
                    Some(m) if m > self.expires.as_secs() && m <= 86_400 => {
                        self.expires = Duration::from_secs(m);
                        self.send_register(now);
                    }
                    _ => self.fail_round(now, TrunkState::Failed(line)),
                }
            }
            // Server trouble: another server may do (RFC 3263 sec. 4.3).
            500..=599 => self.next_target(now, TrunkState::Failed(line)),
            _ => self.fail_round(now, TrunkState::Failed(line)),
        }
    }

    /// The answer to an un-REGISTER: done on 2xx; a challenge is answered once per
    /// nonce; server trouble is retried; anything else cannot be fixed by retrying.
    fn on_unregister_response(&mut self, now: Instant, status: u16, line: String, resp: &Message) {
        match status {
            200..=299 => self.leave_done("unregistered"),
            401 | 407 => {
                let name = if status == 407 {
                    HeaderName::ProxyAuthenticate
                } else {
                    HeaderName::WwwAuthenticate
                };
                match select_challenge(resp.header_all(&name)) {
                    // A fresh challenge to credentials just sent: the password is wrong.
                    Some(ch) if self.cfg.auth.is_some() && (!self.answered_fresh || ch.stale) => {
                        self.challenge = Some((ch, status == 407, 0));
                        self.send_register(now);
                    }
                    _ => self.leave_done(&format!("un-REGISTER refused: {line}")),
                }
            }
            500..=599 => self.leave_retry(now, line),
            _ => self.leave_done(&format!("un-REGISTER refused: {line}")),
        }
    }

    fn on_challenge(&mut self, now: Instant, proxy: bool, resp: &Message) {
        let name = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let Some(ch) = select_challenge(resp.header_all(&name)) else {
            self.fail_round(
                now,
                TrunkState::Failed("challenge without a supported digest algorithm".into()),
            );
            return;
        };
        // Credentials for a challenge we had just received were refused: the password is
        // wrong. A stale nonce is answered again, silently (RFC 3261 sec. 22.4).
        if self.cfg.auth.is_none() || (self.answered_fresh && !ch.stale) {
            self.challenge = None;
            self.wait(now, TrunkState::AuthFailed, BACKOFF_MAX);
            return;
        }
        self.challenge = Some((ch, proxy, 0));
        self.send_register(now);
    }

    fn on_success(&mut self, now: Instant, t: Target, resp: &Message) {
        let contact = self.contact_addr(t);
        let granted = granted_expiry(resp, contact).unwrap_or(self.expires);
        let seen = public_addr(resp, t.local);
        let flow = self.flow_to(t);
        self.failures = 0;
        self.flow = Some(flow);
        self.registered_until = Some(now + granted);
        self.refresh_at = Some(now + (granted / 2).max(MIN_REFRESH));
        self.retry_at = None;
        self.phase = Phase::Idle;
        if self.keepalive_at.is_none() {
            self.keepalive_at = Some(now + self.cfg.keepalive);
        }
        self.stale_contact = None;
        let public_changed = seen.is_some() && seen != self.public;
        if public_changed {
            self.public = seen;
        }
        self.set_state(now, TrunkState::Registered);
        if public_changed {
            self.out.push_back(RegisterOutput::Changed);
            // Register the address the provider can reach (RFC 3581): re-REGISTER with it.
            if seen != Some(contact) {
                self.stale_contact = Some(contact);
                self.send_register(now);
            }
        }
    }

    /// Tries the next target of this round, or ends the round with `state`.
    fn next_target(&mut self, now: Instant, state: TrunkState) {
        if self.tried < self.resolved.targets.len() {
            self.current = (self.current + 1) % self.resolved.targets.len();
            self.tried += 1;
            // A new server knows nothing of the old one's nonces.
            self.challenge = None;
            self.send_register(now);
        } else {
            self.fail_round(now, state);
        }
    }

    /// Every target failed: back off 30 s doubling to 30 min, each with jitter
    /// (between half and all of the step, RFC 5626 sec. 4.5 style).
    fn fail_round(&mut self, now: Instant, state: TrunkState) {
        let delay = self.backoff();
        self.wait(now, state, delay);
    }

    /// The next back-off, counting this failure.
    fn backoff(&mut self) -> Duration {
        let step = BACKOFF_MIN
            .saturating_mul(1u32 << self.failures.min(10))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        let jitter_ms = next(&mut self.rng) % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter_ms)
    }

    fn wait(&mut self, now: Instant, state: TrunkState, delay: Duration) {
        self.tx = None;
        self.phase = Phase::Waiting;
        self.retry_at = Some(now + delay);
        self.refresh_at = None;
        self.registered_until = None;
        self.keepalive_at = None;
        self.pong_due = None;
        self.flow = None;
        self.set_state(now, state);
    }

    fn set_state(&mut self, now: Instant, state: TrunkState) {
        if state == self.state {
            self.out.push_back(RegisterOutput::Changed);
            return;
        }
        if self.state == TrunkState::Registered {
            self.down_since = now;
        }
        self.state = state;
        self.out.push_back(RegisterOutput::Changed);
    }
}

/// `host:port` with IPv6 in brackets.
fn host_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// The expiry the registrar granted our contact: its `expires` parameter, else the
/// Expires header.
fn granted_expiry(resp: &Message, contact: SocketAddr) -> Option<Duration> {
    let ours = |uri: &Uri| {
        let host = uri.host().trim_start_matches('[').trim_end_matches(']');
        host.parse::<IpAddr>().ok() == Some(contact.ip())
            && uri.port().unwrap_or(5060) == contact.port()
    };
    let from_contact = match resp.contacts() {
        Ok(Contacts::List(list)) => list
            .iter()
            .find(|c| ours(&c.uri))
            .and_then(|c| c.param("expires").flatten().and_then(|v| v.parse().ok())),
        _ => None,
    };
    let secs: u64 = from_contact.or_else(|| resp.expires().ok().flatten().map(u64::from))?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Our address as the registrar saw it: `received` and `rport` of the top Via
/// (RFC 3581), defaulting to what we sent.
fn public_addr(resp: &Message, local: SocketAddr) -> Option<SocketAddr> {
    let via = resp.top_via().ok()?;
    let ip = match via.received() {
        Some(r) => r
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
        None => local.ip(),
    };
    let port = via.rport().flatten().unwrap_or(local.port());
    Some(SocketAddr::new(ip, port))
}

/// xorshift64*: enough for tags, branches and jitter, and deterministic in tests.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
