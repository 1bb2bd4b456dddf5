//! The SIP user agent of the B2BUA: every SIP dialog of a call is a leg of call control
//! ([`crate::call`]). Raw SIP and `now` go in; SIP to send, [`LegEvent`]s and refusal
//! records come out. It owns everything SIP about a leg: dialogs, the 2xx/ACK handshake,
//! CANCEL, forking to every contact of an extension, PRACK, session timers, pings,
//! REFER/Replaces, SDP offer/answer; call control decides what happens to calls.
//!
//! - [`calls`]: [`SipCalls`], the user agent and call control wired together, as the
//!   endpoint drives them
//! - `uas`: incoming INVITEs (the caller's leg); `uac`: outgoing INVITEs and their forks
//! - `in_dialog`: BYE, re-INVITE/UPDATE, PRACK, REFER and what we send in dialogs
//! - [`cause`]: call-control causes as SIP statuses and back
//! - [`dialog`], [`ids`]: dialog state (sec. 12) and identifiers

pub mod calls;
pub mod cause;
pub mod dialog;
pub mod fax_g711;
#[cfg(test)]
mod fax_tests;
#[cfg(test)]
mod gsm_tests;
pub mod ids;
mod in_dialog;
mod liveness;
mod prack;
#[cfg(test)]
mod tests;
mod trunk;
#[cfg(test)]
mod trunk_tests;
mod uac;
mod uas;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use pbx_sip::message::{Message, Method};
use pbx_sip::transaction::TransactionKey;

use self::dialog::Dialog;
use self::ids::Ids;
use crate::call::{CallConfig, CallSummary, LegEvent, LegId};
use crate::media::sdp::{Codec, LocalMedia, Origin};
use crate::registrar::Flow;

pub use self::calls::{CallContext, SipCalls};

/// Methods the B2BUA answers (with the registrar's), for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, PRACK";

/// What the endpoint must do for the user agent.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// Send a response on server transaction `key`.
    Respond {
        /// The transaction.
        key: TransactionKey,
        /// The response.
        response: Message,
    },
    /// Start a client transaction for `request` on `flow`.
    Request {
        /// Where to send.
        flow: Flow,
        /// The request (its key is `TransactionKey::for_client_request`).
        request: Message,
    },
    /// Send outside any transaction (an ACK for a 2xx).
    Send {
        /// Where to send.
        flow: Flow,
        /// The message.
        message: Message,
    },
    /// A call ended: write its record.
    Ended(Box<CallSummary>),
    /// End client transaction `key` now (sec. 9.1: no answer to our CANCEL).
    Abandon {
        /// The transaction.
        key: TransactionKey,
    },
}

/// A leg's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not answered yet.
    Early,
    /// We answered (2xx sent), waiting for the ACK.
    Answering,
    /// Established.
    Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response came: CANCEL is allowed now (sec. 9.1).
    Ringing,
    /// This fork answered.
    Answered,
    /// Final non-2xx, or cancelled.
    Done,
}

/// One INVITE of an outgoing leg (one per contact of the extension rung).
#[derive(Debug)]
struct Fork {
    key: TransactionKey,
    invite: Message,
    flow: Flow,
    state: ForkState,
    /// CANCEL wanted but no provisional response yet.
    cancel_pending: bool,
    final_status: Option<u16>,
    /// Why it failed, when the response says more than its status (trunk refusals).
    final_cause: Option<crate::call::Cause>,
    /// Towards a trunk: its name and credentials for the provider's challenges.
    trunk: Option<(String, Option<crate::trunk::TrunkAuth>)>,
    /// A challenge has been answered already (a second one means bad credentials).
    challenged: bool,
}

/// The caller's side of an incoming INVITE.
#[derive(Debug)]
struct Uas {
    key: TransactionKey,
    invite: Message,
    flow: Flow,
    /// From a trunk: its account's SRTP mode (`None`: the global `--srtp`).
    trunk_srtp: Option<crate::media::SrtpMode>,
    /// From a trunk: our public address as its registrar saw it, for Contact and SDP.
    trunk_public: Option<std::net::SocketAddr>,
    /// The caller's offer (none: a late offer, ours goes in the 2xx).
    offer: Option<crate::media::sdp::Sdp>,
    /// Our answer (or, for a late offer, our offer) once accepted.
    sdp: Vec<u8>,
    late_offer: bool,
    /// Our 2xx until its ACK, retransmitted on unreliable transports (sec. 13.3.1.4).
    pending_ok: Option<Message>,
    retransmit_at: Option<Instant>,
    retransmit_every: Duration,
    ack_deadline: Option<Instant>,
    /// The caller offered or required 100rel: our provisionals are reliable.
    rel100: bool,
    /// RSeq of our last reliable provisional, and the one awaiting PRACK.
    rseq: u32,
    reliable: Option<prack::Reliable>,
    /// Our SDP answer went out in a reliable provisional: the 2xx carries none.
    answered_reliably: bool,
    /// RFC 4028 session interval agreed with the caller, and when it runs out.
    session: Option<Duration>,
    session_deadline: Option<Instant>,
}

/// Our INVITEs of an outgoing leg.
#[derive(Debug)]
struct Uac {
    forks: Vec<Fork>,
    /// The ACK for the 2xx that formed the dialog (resent when the 2xx is).
    ack: Option<Message>,
    /// Early media was taken from a provisional response.
    early_media: bool,
}

#[derive(Debug)]
enum Role {
    Uas(Box<Uas>),
    Uac(Box<Uac>),
}

/// One leg: a SIP dialog (or the INVITEs that may form one) and our media towards it.
#[derive(Debug)]
struct Leg {
    role: Role,
    phase: Phase,
    /// The dialog, once there is one (at once for incoming legs, on answer for ours).
    dialog: Option<Dialog>,
    /// Our media towards this leg (port 0 until call control gives one).
    local: LocalMedia,
    origin: Origin,
    /// Next in-dialog OPTIONS ping.
    ping_at: Option<Instant>,
    /// A REFER awaiting call control's verdict: its transaction and request.
    refer: Option<(TransactionKey, Message)>,
    /// Our re-INVITE in flight (a crossing one gets 491).
    reinvite: Option<TransactionKey>,
    /// Towards a trunk behind NAT: our public address as its registrar saw it, for the
    /// SDP of every offer and answer on this leg.
    public: Option<std::net::SocketAddr>,
}

impl Leg {
    fn uas(&self) -> Option<&Uas> {
        match &self.role {
            Role::Uas(u) => Some(u),
            Role::Uac(_) => None,
        }
    }

    fn uas_mut(&mut self) -> Option<&mut Uas> {
        match &mut self.role {
            Role::Uas(u) => Some(u),
            Role::Uac(_) => None,
        }
    }

    fn uac_mut(&mut self) -> Option<&mut Uac> {
        match &mut self.role {
            Role::Uac(u) => Some(u),
            Role::Uas(_) => None,
        }
    }

    /// Our media towards this leg as seen on `flow` (our address on that flow).
    fn local_on(&self, flow: Flow) -> LocalMedia {
        let mut l = self.local.clone();
        l.addr = self.public.map_or(flow.local.ip(), |p| p.ip());
        l
    }
}

/// A fork that outlived its leg.
#[derive(Debug)]
struct Orphan {
    invite: Message,
    flow: Flow,
    cancelled: bool,
    /// 64*T1 after the leg ended: a callee that never answers the CANCEL must not
    /// keep the INVITE transaction alive forever (sec. 9.1).
    deadline: Instant,
}

/// What a client transaction of ours belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientRole {
    Fork(LegId, usize),
    /// A fork whose leg is gone: CANCEL it when it rings, ACK and BYE it if it
    /// answers anyway (the 2xx can cross our CANCEL).
    Orphan,
    /// Our re-INVITE moving a leg's media.
    ReInvite(LegId),
    /// Our re-INVITE to G.711 for a fax ([`fax_g711`]).
    FaxReInvite(LegId),
    /// An in-dialog OPTIONS checking that a phone still knows the call.
    Ping(LegId),
    /// BYE, CANCEL, NOTIFY answers: nothing to do but absorb.
    Other,
}

/// The SIP user agent: legs and the tables that find them.
#[derive(Debug)]
pub struct SipLegs {
    cfg: CallConfig,
    ids: Ids,
    next_leg: LegId,
    legs: HashMap<LegId, Leg>,
    /// Incoming INVITE transactions -> leg.
    by_server_key: HashMap<TransactionKey, LegId>,
    /// Our client transactions -> what they belong to.
    by_client_key: HashMap<TransactionKey, ClientRole>,
    /// (Call-ID, our tag) -> leg, for in-dialog requests and stray 2xx.
    by_dialog: HashMap<(String, String), LegId>,
    /// INVITEs of forks whose leg ended, until their transactions end or, at the
    /// deadline, are abandoned.
    orphans: HashMap<TransactionKey, Orphan>,
    /// The shell measured the SIP task as saturated: new calls get 503.
    overloaded: bool,
    out: VecDeque<CallOutput>,
    events: VecDeque<LegEvent>,
    /// Records of INVITEs refused before call control saw them (ids not yet given).
    refusals: VecDeque<CallSummary>,
    /// The codec each leg negotiated last (for [`fax_g711`]).
    codecs: HashMap<LegId, Codec>,
    /// Legs asked to switch to G.711 for a fax, and how that goes.
    fax: HashMap<LegId, fax_g711::FaxG711>,
}

impl SipLegs {
    /// A user agent with no legs; `seed` must be random per process start.
    pub fn new(cfg: CallConfig, seed: u64) -> Self {
        Self {
            cfg,
            ids: Ids::new(seed),
            next_leg: 1,
            legs: HashMap::new(),
            by_server_key: HashMap::new(),
            by_client_key: HashMap::new(),
            by_dialog: HashMap::new(),
            orphans: HashMap::new(),
            overloaded: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
            refusals: VecDeque::new(),
            codecs: HashMap::new(),
            fax: HashMap::new(),
        }
    }

    /// Entries in the lookup tables and live legs (for leak checks: zero when idle
    /// and all transactions have ended).
    pub fn table_sizes(&self) -> [usize; 5] {
        [
            self.by_server_key.len(),
            self.by_client_key.len(),
            self.by_dialog.len(),
            self.orphans.len(),
            self.legs.len(),
        ]
    }

    /// Our To tag towards the caller of the INVITE `key` (for the 200 to its CANCEL).
    pub fn caller_tag(&self, key: &TransactionKey) -> Option<String> {
        let leg = self.by_server_key.get(key)?;
        self.legs
            .get(leg)
            .and_then(|l| l.dialog.as_ref())
            .map(|d| d.local_tag.clone())
    }

    /// Whether server transaction `key` is the INVITE of a live leg (for CANCEL).
    pub fn knows_invite(&self, key: &TransactionKey) -> bool {
        self.by_server_key
            .get(key)
            .is_some_and(|l| self.legs.contains_key(l))
    }

    /// The next thing for the endpoint to do.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.out.pop_front()
    }

    /// The next event for call control.
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        let event = self.events.pop_front()?;
        let media = match &event {
            LegEvent::Progress { leg, media, .. } | LegEvent::Confirmed { leg, media } => {
                media.as_ref().map(|m| (*leg, m.codec))
            }
            LegEvent::Answered { leg, media, .. } | LegEvent::Renegotiated { leg, media } => {
                Some((*leg, media.codec))
            }
            LegEvent::MediaMoved {
                leg,
                result: Ok((media, _)),
            } => Some((*leg, media.codec)),
            _ => None,
        };
        if let Some((leg, codec)) = media {
            self.note_codec(leg, codec);
        }
        Some(event)
    }

    /// The next record of a refused INVITE.
    pub fn poll_refusal(&mut self) -> Option<CallSummary> {
        self.refusals.pop_front()
    }

    /// When [`SipLegs::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let legs = self.legs.values().flat_map(|l| {
            let uas = l.uas();
            [
                uas.and_then(|u| u.retransmit_at),
                uas.and_then(|u| u.ack_deadline),
                uas.and_then(|u| u.reliable.as_ref().map(|r| r.next())),
                uas.and_then(|u| u.session_deadline),
                l.ping_at,
            ]
        });
        let orphans = self.orphans.values().map(|o| o.deadline);
        legs.flatten()
            .chain(orphans)
            .chain(self.fax_next_timeout())
            .min()
    }

    /// A response to one of our client transactions.
    pub fn handle_response(&mut self, now: Instant, key: &TransactionKey, resp: &Message) {
        let Some(status) = resp.status() else {
            return;
        };
        match self.by_client_key.get(key).copied() {
            Some(ClientRole::Fork(leg, i)) => match status {
                100 => {}
                101..=199 => self.fork_provisional(leg, i, resp),
                200..=299 => self.fork_answered(now, leg, i, resp),
                401 | 407 if self.answer_challenge(leg, i, resp) => {}
                _ => self.fork_refused(now, leg, i, resp),
            },
            Some(ClientRole::Orphan) => self.orphan_response(key, status, resp),
            Some(ClientRole::ReInvite(leg)) => self.reinvite_response(key, leg, resp),
            Some(ClientRole::FaxReInvite(leg)) => {
                self.fax_reinvite_response(now, key, leg, status, Some(resp))
            }
            Some(ClientRole::Ping(leg)) if status >= 200 => {
                self.ping_answered(now, leg, Some(status))
            }
            Some(ClientRole::Ping(_)) | Some(ClientRole::Other) | None => {}
        }
    }

    /// A client transaction of ours timed out or could not be sent.
    pub fn handle_transaction_failure(&mut self, now: Instant, key: &TransactionKey) {
        match self.by_client_key.get(key).copied() {
            Some(ClientRole::Fork(leg, i)) => self.fork_failed(now, leg, i, 408),
            Some(ClientRole::Ping(leg)) => self.ping_answered(now, leg, None),
            Some(ClientRole::ReInvite(leg)) => {
                self.by_client_key.remove(key);
                self.reinvite_failed(leg, 408);
            }
            Some(ClientRole::FaxReInvite(leg)) => {
                self.fax_reinvite_response(now, key, leg, 408, None)
            }
            _ => {}
        }
    }

    /// A transaction ended: forget it. An incoming INVITE's transaction stays known
    /// while its leg lives (CANCEL and 2xx retransmissions need it).
    pub fn transaction_terminated(&mut self, key: &TransactionKey) {
        self.by_client_key.remove(key);
        self.orphans.remove(key);
        if let Some(leg) = self.by_server_key.get(key) {
            if !self.legs.contains_key(leg) {
                self.by_server_key.remove(key);
            }
        }
    }

    /// Fires due timers: 2xx retransmissions, missing ACKs, reliable provisionals,
    /// session timers, pings, forks that never answered our CANCEL.
    pub fn handle_timeout(&mut self, now: Instant) {
        let lapsed: Vec<TransactionKey> = self
            .orphans
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in lapsed {
            self.orphans.remove(&key);
            self.by_client_key.remove(&key);
            self.out.push_back(CallOutput::Abandon { key });
        }
        let due: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(_, l)| {
                let uas = l.uas();
                [
                    uas.and_then(|u| u.retransmit_at),
                    uas.and_then(|u| u.ack_deadline),
                    uas.and_then(|u| u.reliable.as_ref().map(|r| r.next())),
                    uas.and_then(|u| u.session_deadline),
                    l.ping_at,
                ]
                .into_iter()
                .flatten()
                .any(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for leg in due {
            self.uas_timeout(now, leg);
            self.liveness_timeout(now, leg);
        }
        self.fax_timeout(now);
    }

    fn new_leg_id(&mut self) -> LegId {
        let id = self.next_leg;
        self.next_leg += 1;
        id
    }

    /// Our media on `port` at `addr`, offering `prefer` first.
    fn local_media(&self, addr: std::net::IpAddr, port: u16, prefer: Option<Codec>) -> LocalMedia {
        let mut codecs = Vec::with_capacity(self.cfg.codecs.len());
        codecs.extend(prefer);
        for c in &self.cfg.codecs {
            if !codecs.contains(c) {
                codecs.push(*c);
            }
        }
        LocalMedia {
            addr,
            port,
            codecs,
            telephone_event: Some(self.cfg.telephone_event),
            ptime: 20,
            direction: crate::media::sdp::Direction::SendRecv,
            // A fresh key per leg (kept for its re-INVITEs); answers follow the peer.
            srtp: crate::media::sdp::LocalSrtp::new(self.cfg.srtp),
        }
    }

    /// Starts a client transaction that needs no follow-up.
    fn send_other(&mut self, flow: Flow, request: Message) {
        if let Ok(key) = TransactionKey::for_client_request(&request) {
            self.by_client_key.insert(key, ClientRole::Other);
        }
        self.out.push_back(CallOutput::Request { flow, request });
    }

    /// Sends a BYE on the leg's dialog, if it has one.
    fn send_bye(&mut self, leg: LegId) {
        let Some(d) = self.legs.get_mut(&leg).and_then(|l| l.dialog.as_mut()) else {
            return;
        };
        let bye = d.request(Method::Bye, &mut self.ids);
        let flow = d.flow;
        self.send_other(flow, bye);
    }

    /// Forgets a leg: its tables go, its unanswered forks become orphans until their
    /// transactions end.
    fn drop_leg(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.remove(&id) else {
            return;
        };
        self.by_server_key.retain(|_, l| *l != id);
        self.by_dialog.retain(|_, l| *l != id);
        self.by_client_key
            .retain(|_, r| !matches!(r, ClientRole::Ping(l) | ClientRole::ReInvite(l) if *l == id));
        self.by_client_key
            .retain(|_, r| !matches!(r, ClientRole::FaxReInvite(l) if *l == id));
        self.codecs.remove(&id);
        self.fax.remove(&id);
        if let Role::Uac(uac) = leg.role {
            for (i, fork) in uac.forks.into_iter().enumerate() {
                if self.by_client_key.get(&fork.key) != Some(&ClientRole::Fork(id, i)) {
                    continue;
                }
                if fork.state == ForkState::Answered {
                    self.by_client_key.remove(&fork.key);
                } else {
                    // Still ringing, or cancelled with the 2xx possibly crossing it.
                    let cancelled = fork.state == ForkState::Done;
                    self.by_client_key
                        .insert(fork.key.clone(), ClientRole::Orphan);
                    self.orphans.insert(
                        fork.key,
                        Orphan {
                            invite: fork.invite,
                            flow: fork.flow,
                            cancelled,
                            deadline: now + self.cfg.t1 * 64,
                        },
                    );
                }
            }
        }
    }

    /// The leg ended by itself: call control hears of it.
    fn leg_gone(&mut self, now: Instant, leg: LegId, gone: crate::call::Gone) {
        self.drop_leg(now, leg);
        self.events.push_back(LegEvent::HungUp { leg, gone });
    }

    fn dialog_of(&self, req: &Message) -> Option<LegId> {
        let call_id = req.call_id().ok()?;
        let to = req.to_header().ok()?;
        let tag = to.tag()?;
        self.by_dialog
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
