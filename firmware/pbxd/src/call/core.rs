//! The B2BUA core: calls between the office's phones as plain state, SIP messages and
//! `now` in, SIP messages and call events out (no sockets, no clock).
//!
//! A call is the caller's leg (A: the INVITE we answer) and the callee's leg (B: the
//! INVITEs we send, one fork per registered contact, of which the first to answer
//! becomes the B dialog), with a media session anchored in the box between them. The
//! caller sees one dialog whatever the forks do: provisional responses are relayed
//! with our own To tag, and the SDP each side sees is ours.
//!
//! The endpoint (`sip/endpoint.rs`) owns the transactions; this core says what to send
//! on which transaction ([`CallOutput`]) and is told what arrives.

mod features;
mod liveness;
mod pickup;
mod prack;
mod transfer;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Method, Scheme, Uri};
use pbx_sip::transaction::TransactionKey;

use super::dialog::{host_of, our_contact, our_via, Dialog};
use super::ids::Ids;
use super::trunk::TrunkTarget;
use crate::dialplan::{self, Caller, FeatureCode, NumberPlan, OutboundClass, Refusal, Route, Site};
use crate::media::sdp::{self, Codec, Direction, LocalMedia, Negotiated, Origin, Sdp};
use crate::registrar::{Directory, Flow, Registrar};
// The record's vocabulary is the store's: one set of words for calls, from core to CSV.
pub use crate::store::{CallDirection, Disposition, HangupSide as Hangup};
use crate::store::{ForwardTarget, RingGroup, RingStrategy};

/// Seconds a caller turned away under overload is asked to wait (RFC 3261 sec. 21.5.4).
const OVERLOAD_RETRY_AFTER: u32 = 5;

/// Whether the INVITE is an emergency call, in any form the dial plan accepts.
fn is_emergency(req: &Message) -> bool {
    let Some(dialled) = req.request_uri().and_then(|u| u.user()) else {
        return false;
    };
    let who = Caller {
        extension: "",
        class: OutboundClass::InternalOnly,
        clir_permanent: false,
    };
    let nobody = crate::dialplan::StaticPlan::default();
    matches!(
        dialplan::route(&who, dialled, &Site::default(), &nobody),
        Ok(Route::Emergency { .. })
    )
}

/// Most forwarding steps one call may take (a chain longer than this is a loop or a
/// misconfiguration; the caller gets 482).
const MAX_HOPS: usize = 5;

/// A call's number within this process.
pub type CallId = u64;

/// Methods the B2BUA answers (with the registrar's), for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, PRACK";

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg (the INVITE we answered).
    Caller,
    /// The callee's leg (the INVITE we sent).
    Callee,
}

/// B2BUA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CallConfig {
    /// How long a callee may ring before the caller gets 408.
    pub ring_timeout: Duration,
    /// RFC 3261 T1 (2xx retransmission start, ACK wait is 64 T1).
    pub t1: Duration,
    /// RFC 3261 T2 (2xx retransmission cap).
    pub t2: Duration,
    /// Codecs we offer and accept, preferred first.
    pub codecs: Vec<Codec>,
    /// The payload type of telephone-event in our offers.
    pub telephone_event: u8,
    /// How often answered calls are checked with in-dialog OPTIONS (`None`: never).
    pub ping_interval: Option<Duration>,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(60),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            // G.711 A-law first: the German network's codec, no transcoding to the trunk.
            codecs: vec![Codec::Pcma, Codec::Pcmu, Codec::G722],
            telephone_event: 101,
            ping_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// What the call layer knows of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionProfile {
    /// Display name shown to callees.
    pub name: Option<String>,
    /// Disabled extensions cannot call or be called.
    pub enabled: bool,
    /// What the extension may dial.
    pub class: OutboundClass,
    /// Caller ID suppressed on every call.
    pub clir: bool,
    /// Do not disturb: callers get busy.
    pub dnd: bool,
    /// Forward every call here.
    pub forward_always: Option<ForwardTarget>,
    /// Forward when busy (or on do-not-disturb, or when no phone is registered).
    pub forward_busy: Option<ForwardTarget>,
    /// Forward when not answered within `noanswer_secs`.
    pub forward_noanswer: Option<ForwardTarget>,
    /// Ring time before forwarding on no answer.
    pub noanswer_secs: u32,
    /// Phones in the same pickup group may take each other's ringing calls (`*8`).
    pub pickup_group: Option<u8>,
}

impl ExtensionProfile {
    /// An enabled extension with no features set.
    pub fn plain(name: Option<String>) -> Self {
        Self {
            name,
            enabled: true,
            class: OutboundClass::National,
            clir: false,
            dnd: false,
            forward_always: None,
            forward_busy: None,
            forward_noanswer: None,
            noanswer_secs: 20,
            pickup_group: None,
        }
    }
}

/// Where the call layer looks up extensions and site settings (the store in the
/// daemon, a map in tests). Extends the registrar's [`Directory`], whose secrets
/// authenticate INVITEs.
pub trait CallDirectory: Directory {
    /// The extension `number`, if it exists.
    fn extension(&self, number: &str) -> Option<ExtensionProfile>;
    /// The ring group `number`, if it exists.
    fn ring_group(&self, number: &str) -> Option<RingGroup>;
    /// Whether `number` is a ring group.
    fn is_ring_group(&self, number: &str) -> bool {
        self.ring_group(number).is_some()
    }
    /// Whether an extension or ring group is longer than `prefix` and starts with it.
    fn is_prefix_of_internal(&self, prefix: &str) -> bool;
    /// The site's numbering settings.
    fn site(&self) -> Site;
    /// The trunk that takes a call to `number` now (`emergency`: 110/112 and the like,
    /// which any trunk must take), if any.
    fn trunk_for(&self, number: &str, emergency: bool) -> Option<TrunkTarget> {
        let _ = (number, emergency);
        None
    }
    /// Whether calls may be forwarded to external numbers (a site setting).
    fn external_forwarding_allowed(&self) -> bool {
        false
    }
    /// Applies a feature code for `extension` (do-not-disturb, forwarding); returns
    /// what was done in a few words, or why not.
    fn apply_feature(&mut self, extension: &str, code: &FeatureCode) -> Result<String, String> {
        let _ = (extension, code);
        Err("feature codes are not available".into())
    }
}

/// Sounds the box plays into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// Music on hold, looped until stopped.
    Hold,
    /// The confirmation tone for a feature code, once.
    Confirmation,
}

/// The RTP relay as the call layer drives it (the media service in the daemon).
pub trait MediaControl {
    /// Plays `sound` to `side` instead of what the other side sends.
    fn play(&mut self, call: CallId, side: Side, sound: Sound) {
        let _ = (call, side, sound);
    }
    /// Back to relaying the other side to `side`.
    fn stop_playback(&mut self, call: CallId, side: Side) {
        let _ = (call, side);
    }
    /// Opens a relay session for `call`; returns our RTP ports towards the caller and
    /// the callee.
    fn open(&mut self, call: CallId) -> Result<(u16, u16), String>;
    /// Tells the relay what one leg negotiated (again after every re-negotiation).
    fn configure(&mut self, call: CallId, side: Side, negotiated: &Negotiated);
    /// Answered calls are watched for media time-outs.
    fn set_active(&mut self, call: CallId, active: bool);
    /// Closes the session (its quality report goes with the call's record).
    fn close(&mut self, call: CallId);
}

/// Everything outside the core that calls need: the directory and the relay.
pub trait CallServices: CallDirectory + MediaControl {}

impl<T: CallDirectory + MediaControl> CallServices for T {}

/// What the core needs from its surroundings for one input.
pub struct CallContext<'a> {
    /// Digest authentication and the location service.
    pub registrar: &'a mut Registrar,
    /// Extensions, settings and the RTP relay.
    pub services: &'a mut dyn CallServices,
}

/// One finished call attempt, for the call records.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// Our number for the call (also the media session's).
    pub id: CallId,
    /// The caller's SIP Call-ID.
    pub sip_call_id: String,
    /// Calling extension.
    pub caller: String,
    /// Its display name.
    pub caller_name: Option<String>,
    /// What was dialled.
    pub dialled: String,
    /// E.164 form for external numbers.
    pub normalised: Option<String>,
    /// The extension rung.
    pub destination: Option<String>,
    /// Internal or outbound.
    pub direction: CallDirection,
    /// Route taken ("internal", later trunk names).
    pub route: Option<String>,
    /// Where the caller's signalling came from.
    pub source_ip: Option<IpAddr>,
    /// Where the answering callee was.
    pub dest_ip: Option<IpAddr>,
    /// INVITE received.
    pub start: Instant,
    /// Callee answered.
    pub answer: Option<Instant>,
    /// Call over.
    pub end: Instant,
    /// Outcome.
    pub disposition: Disposition,
    /// Why, in words ("486 Busy Here", "blocked range 0900", "media time-out").
    pub reason: Option<String>,
    /// The final status the caller got (200 when answered).
    pub sip_status: Option<u16>,
    /// Who hung up an answered call.
    pub hangup: Option<Hangup>,
}

/// What the endpoint must do for the core.
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
    /// A call ended: write its record, close its media.
    Ended(Box<CallSummary>),
    /// End client transaction `key` now (sec. 9.1: no answer to our CANCEL).
    Abandon {
        /// The transaction.
        key: TransactionKey,
    },
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

#[derive(Debug)]
struct Fork {
    /// The extension this fork rings.
    ext: String,
    /// The routing round it belongs to (forwarding and ordered groups start new ones).
    round: u32,
    key: TransactionKey,
    invite: Message,
    flow: Flow,
    state: ForkState,
    /// CANCEL wanted but no provisional response yet.
    cancel_pending: bool,
    final_status: Option<(u16, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Forks are ringing.
    Ringing,
    /// 2xx sent to the caller, waiting for its ACK.
    Answering,
    /// Both sides talking.
    Up,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    phase: Phase,
    caller: String,
    caller_name: Option<String>,
    dialled: String,
    callee: String,
    start: Instant,
    answered: Option<Instant>,
    source_ip: IpAddr,
    dest_ip: Option<IpAddr>,
    /// The caller's INVITE transaction and the dialog we form with it.
    a_key: TransactionKey,
    a_invite: Message,
    a: Dialog,
    /// Our SDP answer to the caller's offer (or, for a late offer, our offer).
    a_sdp: Vec<u8>,
    /// The caller sent no offer: ours is in the 2xx, its answer comes in the ACK.
    late_offer: bool,
    a_local: LocalMedia,
    a_origin: Origin,
    /// The 2xx we sent the caller, retransmitted until ACK (UDP).
    /// Our 2xx answers not yet ACKed (the caller's; a picker's), retransmitted on
    /// unreliable transports until their ACK (sec. 13.3.1.4).
    pending_oks: Vec<(Side, TransactionKey, Message)>,
    retransmit_at: Option<Instant>,
    retransmit_every: Duration,
    ack_deadline: Option<Instant>,
    /// Our offer towards the callee.
    b_local: LocalMedia,
    b_origin: Origin,
    forks: Vec<Fork>,
    /// The callee dialog once answered.
    b: Option<Dialog>,
    /// The ACKs we sent for the 2xx that formed each side's dialog (resent when the
    /// 2xx is retransmitted), for dialogs we started.
    acks: HashMap<Side, Message>,
    /// A transfer in progress (REFER).
    transfer: Option<Transfer>,
    /// Where the call was transferred to, for the record.
    transferred_to: Option<String>,
    /// The caller offered or required 100rel: our provisionals are reliable.
    rel100: bool,
    /// RSeq of our last reliable provisional, and the one awaiting PRACK.
    rseq: u32,
    reliable: Option<prack::Reliable>,
    /// Our SDP answer went out in a reliable provisional: the 2xx carries none.
    answered_reliably: bool,
    /// The side that put the call on hold (the other side hears music).
    held_by: Option<Side>,
    /// Trunk name and E.164 (or emergency) number of an outbound call.
    external: Option<(String, String)>,
    /// RFC 4028 session interval agreed with the caller, and when it runs out.
    session: Option<Duration>,
    session_deadline: Option<Instant>,
    /// Next in-dialog OPTIONS ping.
    ping_at: Option<Instant>,
    ring_deadline: Option<Instant>,
    early_media: bool,
    /// What is being rung now.
    target: Target,
    /// Numbers this call has been routed to (loop protection).
    hops: Vec<String>,
    /// The callee leg's Call-ID, From value and CSeq (forks share them; each routing
    /// round takes the next CSeq).
    b_call_id: String,
    b_from: String,
    b_cseq: u32,
}

/// Why a call cannot go on: the caller's final response and the record's words.
type Failure = (u16, String, Disposition);

/// A transfer requested by one side with REFER (RFC 3515): the other side stays, the
/// transferor's side is replaced by the target once it answers.
#[derive(Debug)]
struct Transfer {
    /// The transferor's side.
    side: Side,
    /// The number the transferor asked for.
    target: String,
    /// Blind transfer: INVITEs to the target's phones. Attended transfer: none.
    forks: Vec<Fork>,
    /// Our From (with tag) and Call-ID on the new leg.
    from: String,
    call_id: String,
    /// When a blind transfer gives up ringing.
    deadline: Option<Instant>,
}

/// Where the dial plan sent a new call.
enum Dest {
    Internal(String),
    /// A feature code other than pickup: answered by the box itself.
    Feature(FeatureCode),
    Trunk {
        trunk: TrunkTarget,
        number: String,
        clir: bool,
        emergency: bool,
    },
}

/// The destination currently ringing.
#[derive(Debug, Clone)]
enum Target {
    /// A number outside, through a trunk.
    Trunk,
    /// No one: the box answers a feature code itself.
    Feature,
    /// One extension (all its phones).
    Extension(String),
    /// A ring group; `next` is the next member to ring in an ordered group.
    Group { group: RingGroup, next: usize },
}

/// A fork that outlived its call.
#[derive(Debug)]
struct Orphan {
    invite: Message,
    flow: Flow,
    cancelled: bool,
    /// 64*T1 after the call ended: a callee that never answers the CANCEL must not
    /// keep the INVITE transaction alive forever (sec. 9.1).
    deadline: Instant,
}

/// What a client transaction of ours belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientRole {
    Fork(CallId, usize),
    /// A fork whose call is over: CANCEL it when it rings, ACK and BYE it if it
    /// answers anyway (the 2xx can cross our CANCEL).
    Orphan,
    /// An INVITE of a blind transfer to its target.
    TransferFork(CallId, usize),
    /// The re-INVITE that moves an attended transfer's target into `call`, out of
    /// `from_call` where it is on `from_side`.
    ReInvite {
        call: CallId,
        from_call: CallId,
        from_side: Side,
    },
    /// An in-dialog OPTIONS checking that a phone still knows the call.
    Ping(CallId),
    /// BYE, CANCEL, NOTIFY answers: nothing to do but absorb.
    Other,
}

/// The B2BUA core.
#[derive(Debug)]
pub struct CallControl {
    cfg: CallConfig,
    ids: Ids,
    next_call: CallId,
    calls: HashMap<CallId, Call>,
    /// Caller INVITE transactions -> call.
    by_server_key: HashMap<TransactionKey, CallId>,
    /// Our client transactions -> what they belong to.
    by_client_key: HashMap<TransactionKey, ClientRole>,
    /// (Call-ID, our tag) -> call and leg, for in-dialog requests.
    by_dialog: HashMap<(String, String), (CallId, Side)>,
    /// The shell measured the SIP task as saturated: new calls get 503.
    overloaded: bool,
    /// INVITEs of forks whose call ended, until their transactions end or, at the
    /// deadline, are abandoned.
    orphans: HashMap<TransactionKey, Orphan>,
    out: VecDeque<CallOutput>,
}

/// A refusal before any call state exists.
struct Early {
    status: u16,
    reason: String,
    warning: Option<String>,
    /// 420: the option tags we do not support.
    unsupported: Option<String>,
    /// 422: our minimum session interval.
    min_se: Option<u32>,
    /// 503 under overload: when to try again, seconds.
    retry_after: Option<u32>,
    disposition: Option<Disposition>,
}

impl Early {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            warning: None,
            unsupported: None,
            min_se: None,
            retry_after: None,
            disposition: Some(Disposition::Failed),
        }
    }
}

impl CallControl {
    /// A B2BUA with no calls; `seed` must be random per process start.
    pub fn new(cfg: CallConfig, seed: u64) -> Self {
        Self {
            cfg,
            ids: Ids::new(seed),
            next_call: 1,
            calls: HashMap::new(),
            by_server_key: HashMap::new(),
            by_client_key: HashMap::new(),
            by_dialog: HashMap::new(),
            orphans: HashMap::new(),
            overloaded: false,
            out: VecDeque::new(),
        }
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is live.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Entries in the lookup tables (for leak checks: zero when idle and all
    /// transactions have ended).
    pub fn table_sizes(&self) -> [usize; 4] {
        [
            self.by_server_key.len(),
            self.by_client_key.len(),
            self.by_dialog.len(),
            self.orphans.len(),
        ]
    }

    /// Our To tag towards the caller of the INVITE `key` (for the 200 to its CANCEL).
    pub fn caller_tag(&self, key: &TransactionKey) -> Option<String> {
        let id = self.by_server_key.get(key)?;
        self.calls.get(id).map(|c| c.a.local_tag.clone())
    }

    /// Turns load shedding on or off (the shell's measure of how busy it is).
    pub fn set_overloaded(&mut self, on: bool) {
        self.overloaded = on;
    }

    /// Whether new calls are being turned away.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Whether server transaction `key` is the INVITE of a live call (for CANCEL).
    pub fn knows_invite(&self, key: &TransactionKey) -> bool {
        self.by_server_key
            .get(key)
            .is_some_and(|id| self.calls.contains_key(id))
    }

    /// The next thing for the endpoint to do.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.out.pop_front()
    }

    /// When [`CallControl::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .flat_map(|c| {
                [
                    c.ring_deadline,
                    c.retransmit_at,
                    c.ack_deadline,
                    c.transfer.as_ref().and_then(|t| t.deadline),
                    c.session_deadline,
                    c.ping_at,
                    c.reliable.as_ref().map(|r| r.next()),
                ]
            })
            .flatten();
        let orphans = self.orphans.values().map(|o| o.deadline);
        calls.chain(orphans).min()
    }

    /// A new INVITE (no To tag) on server transaction `key` from `flow`.
    pub fn handle_invite(
        &mut self,
        now: Instant,
        now_unix: u64,
        key: TransactionKey,
        req: &Message,
        flow: Flow,
        ctx: &mut CallContext<'_>,
    ) {
        match self.start_call(now, now_unix, &key, req, flow, ctx) {
            Ok(()) => {}
            Err(None) => {}
            Err(Some(early)) => {
                let mut b = MessageBuilder::response_to(req, early.status, &early.reason)
                    .set_to_tag(&self.ids.tag());
                if let Some(w) = &early.warning {
                    b = b.header(HeaderName::Other("Warning".into()), w.clone());
                }
                if early.status == 405 {
                    b = b.header(HeaderName::Allow, ALLOW);
                }
                if let Some(u) = &early.unsupported {
                    b = b.header(HeaderName::Unsupported, u.clone());
                }
                if let Some(secs) = early.retry_after {
                    b = b.header(HeaderName::Other("Retry-After".into()), secs.to_string());
                }
                if let Some(m) = early.min_se {
                    b = b.header(HeaderName::Other("Min-SE".into()), m.to_string());
                }
                self.out.push_back(CallOutput::Respond {
                    key,
                    response: b.build(),
                });
                if let Some(disposition) = early.disposition {
                    self.record_refusal(now, req, flow, disposition, &early);
                }
            }
        }
    }

    /// `Err(None)`: answered already (a challenge); `Err(Some)`: refuse with it.
    fn start_call(
        &mut self,
        now: Instant,
        now_unix: u64,
        key: &TransactionKey,
        req: &Message,
        flow: Flow,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Option<Early>> {
        let silent = |status, reason: &str| {
            Some(Early {
                status,
                reason: reason.to_owned(),
                warning: None,
                unsupported: None,
                min_se: None,
                retry_after: None,
                disposition: None,
            })
        };
        // Overload: new calls are turned away cheaply (before digest work), except
        // emergency calls, which always get a chance (DOMAIN.md).
        if self.overloaded && !is_emergency(req) {
            let mut e = Early::new(503, "Service Unavailable: overloaded");
            e.retry_after = Some(OVERLOAD_RETRY_AFTER);
            // No record: writing one per refused call would add to the load.
            e.disposition = None;
            return Err(Some(e));
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            return Err(silent(483, "Too Many Hops"));
        }
        let Some(ruri) = req.request_uri() else {
            return Err(silent(400, "Bad Request"));
        };
        if !matches!(ruri.scheme(), Scheme::Sip | Scheme::Sips)
            || !ctx.registrar.serves_host(ruri.host())
        {
            return Err(silent(403, "Forbidden: domain not served here"));
        }
        // The caller is the From user, proven by digest (407 like a proxy would).
        let from = req
            .from_header()
            .map_err(|e| silent(400, &format!("Bad Request: {e}")))?;
        let caller = from.uri.user().unwrap_or("").to_owned();
        if let Err(resp) = ctx.registrar.authenticate_request(
            now_unix,
            req,
            &caller,
            flow.remote.ip(),
            &mut *ctx.services,
        ) {
            self.out.push_back(CallOutput::Respond {
                key: key.clone(),
                response: resp,
            });
            return Err(None);
        }
        let Some(profile) = ctx.services.extension(&caller).filter(|p| p.enabled) else {
            return Err(silent(403, "Forbidden"));
        };
        if req.header(&HeaderName::Contact).is_none() {
            return Err(silent(400, "Bad Request: INVITE without Contact"));
        }
        liveness::check_require(req).map_err(Some)?;
        let session = liveness::session_interval(req).map_err(Some)?;
        // An INVITE without SDP (late offer): our offer goes in the 2xx, the caller's
        // answer comes in its ACK (RFC 3261 sec. 13.2.1).
        let offer = if req.body().is_empty() {
            None
        } else {
            Some(
                Sdp::parse(req.body())
                    .map_err(|e| Some(Early::new(400, format!("Bad Request: {e}"))))?,
            )
        };

        let dialled = ruri.user().unwrap_or("").to_owned();
        let site = ctx.services.site();
        let route = {
            let plan = PlanView(&*ctx.services);
            let who = Caller {
                extension: &caller,
                class: profile.class,
                clir_permanent: profile.clir,
            };
            dialplan::route(&who, &dialled, &site, &plan)
        };
        let no_trunk = |what: String, warning: &str| {
            let mut e = Early::new(503, format!("Service Unavailable: {what}"));
            e.warning = Some(format!("399 pbxd \"{warning}\""));
            Some(e)
        };
        let dest = match route {
            Ok(Route::Extension { number }) | Ok(Route::RingGroup { number }) => {
                Dest::Internal(number)
            }
            Ok(Route::Feature(FeatureCode::Pickup)) => {
                let offer = offer.as_ref().ok_or_else(pickup_needs_offer)?;
                return self
                    .pickup(now, key, req, flow, offer, &caller, None, ctx)
                    .map_err(Some);
            }
            Ok(Route::Feature(FeatureCode::PickupExtension { extension })) => {
                let offer = offer.as_ref().ok_or_else(pickup_needs_offer)?;
                return self
                    .pickup(now, key, req, flow, offer, &caller, Some(&extension), ctx)
                    .map_err(Some);
            }
            Ok(Route::Feature(f)) => Dest::Feature(f),
            Ok(Route::External { e164, clir, .. }) => match ctx.services.trunk_for(&e164, false) {
                Some(trunk) => Dest::Trunk {
                    trunk,
                    number: e164,
                    clir,
                    emergency: false,
                },
                None => {
                    return Err(no_trunk(
                        "no trunk configured".into(),
                        &format!("no trunk for {e164}"),
                    ))
                }
            },
            Ok(Route::Emergency { number, .. }) => match ctx.services.trunk_for(&number, true) {
                // The emergency centre must see who calls: CLIR never applies.
                Some(trunk) => Dest::Trunk {
                    trunk,
                    number,
                    clir: false,
                    emergency: true,
                },
                None => {
                    return Err(no_trunk(
                        format!("no trunk for emergency call {number}"),
                        "emergency route has no trunk",
                    ))
                }
            },
            Err(refusal) => return Err(Some(refusal_early(&refusal))),
        };
        if let Dest::Internal(n) = &dest {
            let exists = ctx.services.extension(n).is_some_and(|p| p.enabled)
                || ctx.services.is_ring_group(n);
            if !exists {
                return Err(Some(Early::new(404, "Not Found")));
            }
        }
        let callee = match &dest {
            Dest::Internal(n) => n.clone(),
            Dest::Trunk { number, .. } => number.clone(),
            Dest::Feature(_) => dialled.clone(),
        };

        // Media: our answer to the caller is fixed now, whichever fork answers.
        let id = self.next_call;
        let (port_a, port_b) = ctx
            .services
            .open(id)
            .map_err(|e| Some(Early::new(503, format!("Service Unavailable: media: {e}"))))?;
        let a_local = LocalMedia {
            addr: flow.local.ip(),
            port: port_a,
            codecs: self.cfg.codecs.clone(),
            telephone_event: Some(self.cfg.telephone_event),
            ptime: 20,
            direction: Direction::SendRecv,
        };
        let a_origin = Origin::new(self.ids.sdp_session());
        let (a_sdp, a_neg) = match &offer {
            None => (sdp::offer(&a_local, &a_origin), None),
            Some(offer) => match sdp::answer(offer, &a_local, &a_origin) {
                Ok((body, neg)) => (body, Some(neg)),
                Err(e) => {
                    ctx.services.close(id);
                    let mut early = Early::new(488, "Not Acceptable Here");
                    early.warning = Some(sdp::warning_header(&e, &host_of(flow.local.ip())));
                    return Err(Some(early));
                }
            },
        };
        let a_tag = self.ids.tag();
        let Some(a_dialog) = Dialog::as_uas(req, &a_tag, flow) else {
            ctx.services.close(id);
            return Err(silent(400, "Bad Request: cannot form a dialog"));
        };
        self.next_call += 1;
        // Offer the callee the codec the caller chose first, then the rest: the relay
        // transcodes when the callee picks another.
        let mut b_codecs = Vec::with_capacity(self.cfg.codecs.len());
        if let Some(neg) = &a_neg {
            ctx.services.configure(id, Side::Caller, neg);
            b_codecs.push(neg.codec);
        }
        for c in &self.cfg.codecs {
            if !b_codecs.contains(c) {
                b_codecs.push(*c);
            }
        }
        let b_local = LocalMedia {
            addr: flow.local.ip(),
            port: port_b,
            codecs: b_codecs,
            telephone_event: Some(self.cfg.telephone_event),
            ptime: 20,
            direction: Direction::SendRecv,
        };
        let b_origin = Origin::new(self.ids.sdp_session());

        let trying = MessageBuilder::response_to(req, 100, "Trying").build();
        self.out.push_back(CallOutput::Respond {
            key: key.clone(),
            response: trying,
        });

        let b_call_id = self.ids.call_id();
        let b_tag = self.ids.tag();
        let realm = ctx.registrar.config().realm.clone();
        let display = if profile.clir {
            None
        } else {
            profile.name.clone()
        };
        let b_from = match &display {
            Some(n) => format!("\"{}\" <sip:{caller}@{realm}>;tag={b_tag}", quote(n)),
            None => format!("<sip:{caller}@{realm}>;tag={b_tag}"),
        };
        self.by_server_key.insert(key.clone(), id);
        self.by_dialog
            .insert((a_dialog.call_id.clone(), a_tag), (id, Side::Caller));
        self.by_dialog
            .insert((b_call_id.clone(), b_tag), (id, Side::Callee));
        self.calls.insert(
            id,
            Call {
                id,
                phase: Phase::Ringing,
                caller,
                caller_name: display,
                dialled,
                callee: callee.clone(),
                start: now,
                answered: None,
                source_ip: flow.remote.ip(),
                dest_ip: None,
                a_key: key.clone(),
                a_invite: req.clone(),
                a: a_dialog,
                a_sdp,
                late_offer: offer.is_none(),
                a_local,
                a_origin,
                pending_oks: Vec::new(),
                retransmit_at: None,
                retransmit_every: self.cfg.t1,
                ack_deadline: None,
                b_local,
                b_origin,
                forks: Vec::new(),
                b: None,
                acks: HashMap::new(),
                transfer: None,
                transferred_to: None,
                rel100: prack::wants(req, "100rel"),
                rseq: self.ids.sdp_session() as u32 & 0x7fff_ffff,
                reliable: None,
                answered_reliably: false,
                held_by: None,
                external: None,
                session,
                session_deadline: None,
                ping_at: None,
                ring_deadline: None,
                early_media: false,
                target: Target::Extension(callee.clone()),
                hops: Vec::new(),
                b_call_id,
                b_from,
                b_cseq: 0,
            },
        );
        match dest {
            Dest::Internal(n) => self.route_to(now, id, &n, ctx),
            Dest::Feature(code) => self.run_feature(now, id, &code, ctx),
            Dest::Trunk {
                trunk,
                number,
                clir,
                emergency,
            } => self.ring_trunk(now, id, trunk, &number, clir, emergency, ctx),
        }
        Ok(())
    }

    /// A response to one of our client transactions.
    pub fn handle_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(status) = resp.status() else {
            return;
        };
        match self.by_client_key.get(key).copied() {
            Some(ClientRole::Fork(id, i)) => match status {
                100 => {}
                101..=199 => self.fork_provisional(now, id, i, resp, ctx),
                200..=299 => self.fork_answered(now, id, i, resp, ctx),
                _ => self.fork_failed(now, id, i, status, resp.reason().unwrap_or(""), ctx),
            },
            Some(ClientRole::Orphan) => self.orphan_response(key, status, resp),
            Some(ClientRole::TransferFork(id, i)) => self.transfer_response(now, id, i, resp, ctx),
            Some(ClientRole::ReInvite {
                call,
                from_call,
                from_side,
            }) => self.reinvite_response(now, key, (call, from_call, from_side), resp, ctx),
            Some(ClientRole::Ping(id)) if status >= 200 => {
                self.ping_answered(now, id, Some(status), ctx)
            }
            Some(ClientRole::Ping(_)) | Some(ClientRole::Other) | None => {}
        }
    }

    /// A fork of an ended call answered: CANCEL it once it rings, end it if it
    /// answered anyway.
    fn orphan_response(&mut self, key: &TransactionKey, status: u16, resp: &Message) {
        let Some(o) = self.orphans.get_mut(key) else {
            return;
        };
        match status {
            101..=199 if !o.cancelled => {
                o.cancelled = true;
                let cancel = cancel_for(&o.invite);
                let flow = o.flow;
                self.send_other(flow, cancel);
            }
            200..=299 => {
                let (invite, flow) = (o.invite.clone(), o.flow);
                self.ack_and_bye(&invite, resp, flow);
            }
            _ => {}
        }
    }

    /// Completes a 2xx we do not want (sec. 13.2.2.4: every 2xx is ACKed) and ends
    /// that dialog at once.
    fn ack_and_bye(&mut self, invite: &Message, resp: &Message, flow: Flow) {
        let Some(mut dialog) = Dialog::as_uac(invite, resp, flow) else {
            return;
        };
        let cseq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        let ack = dialog.ack(cseq, &mut self.ids);
        self.out.push_back(CallOutput::Send {
            flow: dialog.flow,
            message: ack,
        });
        let bye = dialog.request(Method::Bye, &mut self.ids);
        self.send_other(dialog.flow, bye);
    }

    /// A 2xx that no client transaction matched (a retransmission after Timer M):
    /// ACK it again if it is our callee's, else ACK and hang up (a fork answering
    /// after another won).
    pub fn handle_stray_response(&mut self, resp: &Message) {
        if !matches!(resp.status(), Some(200..=299)) {
            return;
        }
        let (Ok(call_id), Ok(from)) = (resp.call_id(), resp.from_header()) else {
            return;
        };
        let Some(tag) = from.tag() else {
            return;
        };
        let Some((id, side)) = self
            .by_dialog
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
        else {
            return;
        };
        let to_tag = resp
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        if let Some(call) = self.calls.get(&id) {
            let dialog = dialog_ref(call, side);
            if let (Some(d), Some(ack)) = (dialog, call.acks.get(&side)) {
                if Some(d.remote_tag.as_str()) == to_tag.as_deref() {
                    self.out.push_back(CallOutput::Send {
                        flow: d.flow,
                        message: ack.clone(),
                    });
                }
            }
        }
    }

    /// A client transaction of ours timed out or could not be sent.
    pub fn handle_transaction_failure(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        ctx: &mut CallContext<'_>,
    ) {
        match self.by_client_key.get(key).copied() {
            Some(ClientRole::Fork(id, i)) => {
                self.fork_failed(now, id, i, 408, "Request Timeout", ctx)
            }
            Some(ClientRole::Ping(id)) => self.ping_answered(now, id, None, ctx),
            _ => {}
        }
    }

    /// A transaction ended: forget it. The caller's INVITE transaction stays known
    /// while its call lives (CANCEL and 2xx retransmissions need it).
    pub fn transaction_terminated(&mut self, key: &TransactionKey) {
        self.by_client_key.remove(key);
        self.orphans.remove(key);
        if let Some(id) = self.by_server_key.get(key) {
            if !self.calls.contains_key(id) {
                self.by_server_key.remove(key);
            }
        }
    }

    /// A CANCEL for the INVITE transaction `invite_key` (already answered 200 by the
    /// endpoint when the INVITE exists).
    pub fn handle_cancel(
        &mut self,
        now: Instant,
        invite_key: &TransactionKey,
        ctx: &mut CallContext<'_>,
    ) -> bool {
        let Some(id) = self.by_server_key.get(invite_key).copied() else {
            return false;
        };
        let ringing = self
            .calls
            .get(&id)
            .is_some_and(|c| c.phase == Phase::Ringing);
        if ringing {
            self.refuse_caller(id, 487, "Request Terminated");
            self.end_call(
                now,
                id,
                Disposition::Cancelled,
                Some("cancelled by caller"),
                Some(487),
                None,
                ctx,
            );
        }
        true
    }

    /// An ACK outside the INVITE transaction (for our 2xx).
    pub fn handle_ack(&mut self, now: Instant, ack: &Message, ctx: &mut CallContext<'_>) {
        let Some((id, side)) = self.dialog_of(ack) else {
            return;
        };

        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Answering || !dialog_ref(call, side).is_some_and(|d| d.matches(ack))
        {
            return;
        }
        if side == Side::Caller && call.late_offer {
            call.late_offer = false;
            let mut local = call.a_local.clone();
            local.addr = call.a.flow.local.ip();
            let neg = Sdp::parse(ack.body())
                .ok()
                .and_then(|a| sdp::accept_answer(&local, &a).ok());
            match neg {
                Some(neg) => ctx.services.configure(id, Side::Caller, &neg),
                None => {
                    // sec. 13.2.1: the ACK must carry the answer; without one there is
                    // no media to relay.
                    call.pending_oks.clear();
                    call.phase = Phase::Up;
                    self.end_call(
                        now,
                        id,
                        Disposition::Failed,
                        Some("no usable SDP answer in the ACK"),
                        Some(200),
                        Some(Hangup::System),
                        ctx,
                    );
                    return;
                }
            }
        }
        call.pending_oks.retain(|(s, _, _)| *s != side);
        if call.pending_oks.is_empty() {
            call.phase = Phase::Up;
            call.retransmit_at = None;
            call.ack_deadline = None;
            ctx.services.set_active(id, true);
            self.start_pings(now, id);
        }
    }

    /// A request with a To tag on server transaction `key`: BYE, re-INVITE, UPDATE,
    /// INFO, OPTIONS in a dialog. Returns false if it belongs to no dialog of ours
    /// (the endpoint answers 481).
    pub fn handle_in_dialog(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Message,
        ctx: &mut CallContext<'_>,
    ) -> bool {
        let Some((id, side)) = self.dialog_of(req) else {
            return false;
        };
        let Some(method) = req.method().cloned() else {
            return false;
        };
        if method == Method::Ack {
            self.handle_ack(now, req, ctx);
            return true;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        // Ordering per sec. 12.2.2: a lower CSeq than the last is out of order.
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(dialog) = dialog_mut(call, side) else {
            return false;
        };
        if !dialog.matches(req) {
            return false;
        }
        if cseq <= dialog.remote_cseq {
            let resp =
                MessageBuilder::response_to(req, 500, "Server Internal Error: CSeq out of order")
                    .build();
            self.out.push_back(CallOutput::Respond {
                key: key.clone(),
                response: resp,
            });
            return true;
        }
        dialog.remote_cseq = cseq;
        match method {
            Method::Bye => {
                let ok = MessageBuilder::response_to(req, 200, "OK").build();
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: ok,
                });
                if side == Side::Caller && call.phase == Phase::Ringing {
                    // A BYE on the early dialog (sec. 15): the caller gave up.
                    self.refuse_caller(id, 487, "Request Terminated");
                    self.end_call(
                        now,
                        id,
                        Disposition::Cancelled,
                        Some("caller hung up while ringing"),
                        Some(487),
                        None,
                        ctx,
                    );
                } else {
                    let who = match side {
                        Side::Caller => Hangup::Caller,
                        Side::Callee => Hangup::Callee,
                    };
                    self.end_call(
                        now,
                        id,
                        Disposition::Answered,
                        None,
                        Some(200),
                        Some(who),
                        ctx,
                    );
                }
            }
            // Glare (RFC 3261 sec. 14.2): our own re-INVITE on this dialog is pending.
            Method::Invite | Method::Update if self.reinvite_pending(id, side) => {
                let resp = MessageBuilder::response_to(req, 491, "Request Pending").build();
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: resp,
                });
            }
            Method::Invite | Method::Update => {
                let mut resp = self.renegotiate(id, side, req, ctx);
                if side == Side::Caller && resp.status() == Some(200) {
                    // A refresh by the caller (RFC 4028 sec. 10) restarts its timer.
                    self.session_refreshed(now, id);
                    for (name, value) in self.session_headers(id) {
                        resp.set_header(name, &value);
                    }
                }
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: resp,
                });
            }
            Method::Prack => {
                let resp = self.handle_prack(id, req);
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: resp,
                });
            }
            Method::Refer => {
                // The 202 goes out before the first NOTIFY the transfer queues.
                let mark = self.out.len();
                let resp = self.handle_refer(now, id, side, req, ctx);
                self.out.insert(
                    mark.min(self.out.len()),
                    CallOutput::Respond {
                        key: key.clone(),
                        response: resp,
                    },
                );
            }
            Method::Info | Method::Options => {
                let ok = MessageBuilder::response_to(req, 200, "OK").build();
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: ok,
                });
            }
            _ => {
                let resp = MessageBuilder::response_to(req, 501, "Not Implemented")
                    .header(HeaderName::Allow, ALLOW)
                    .build();
                self.out.push_back(CallOutput::Respond {
                    key: key.clone(),
                    response: resp,
                });
            }
        }
        true
    }

    /// Whether a re-INVITE of ours on `side` of call `id` awaits its answer.
    fn reinvite_pending(&self, id: CallId, side: Side) -> bool {
        self.by_client_key.values().any(|r| {
            matches!(r, ClientRole::ReInvite { from_call, from_side, .. }
                if *from_call == id && *from_side == side)
        })
    }

    /// Answers a re-INVITE or UPDATE on one leg from the box's side of the media: the
    /// relay follows the new address and direction (hold and resume), the other leg is
    /// left alone (its media keeps flowing to the box).
    fn renegotiate(
        &mut self,
        id: CallId,
        side: Side,
        req: &Message,
        ctx: &mut CallContext<'_>,
    ) -> Message {
        let Some(call) = self.calls.get_mut(&id) else {
            return MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist")
                .build();
        };
        let (local, origin, flow) = match side {
            Side::Caller => (&call.a_local, &mut call.a_origin, call.a.flow),
            Side::Callee => match &call.b {
                Some(d) => (&call.b_local, &mut call.b_origin, d.flow),
                None => return MessageBuilder::response_to(req, 491, "Request Pending").build(),
            },
        };
        let mut local = local.clone();
        local.addr = flow.local.ip();
        let mut hold = None;
        let body = if req.body().is_empty() {
            // No offer: ours goes in the 2xx, the answer comes in the ACK, which we
            // take as it comes (the relay latches on the peer's packets anyway).
            sdp::offer(&local, origin)
        } else {
            let offer = match Sdp::parse(req.body()) {
                Ok(o) => o,
                Err(e) => {
                    return MessageBuilder::response_to(req, 400, &format!("Bad Request: {e}"))
                        .build()
                }
            };
            origin.bump();
            match sdp::answer(&offer, &local, origin) {
                Ok((body, neg)) => {
                    ctx.services.configure(id, side, &neg);
                    hold = Some(neg.direction);
                    body
                }
                Err(e) => {
                    return MessageBuilder::response_to(req, 488, "Not Acceptable Here")
                        .header(
                            HeaderName::Other("Warning".into()),
                            sdp::warning_header(&e, &host_of(flow.local.ip())),
                        )
                        .build()
                }
            }
        };
        let tag = match side {
            Side::Caller => call.a.local_tag.clone(),
            Side::Callee => String::new(),
        };
        let mut b = MessageBuilder::response_to(req, 200, "OK");
        if !tag.is_empty() {
            b = b.set_to_tag(&tag);
        }
        let resp = b
            .header(HeaderName::Contact, our_contact(flow))
            .header(HeaderName::Allow, ALLOW)
            .body("application/sdp", body)
            .build();
        if let Some(ours) = hold {
            self.hold_changed(id, side, ours, ctx);
        }
        resp
    }

    /// The relay saw no RTP for too long on an answered call: hang up both sides.
    pub fn handle_media_timeout(&mut self, now: Instant, id: CallId, ctx: &mut CallContext<'_>) {
        if self.calls.get(&id).is_some_and(|c| c.phase == Phase::Up) {
            self.end_call(
                now,
                id,
                Disposition::Answered,
                Some("media time-out"),
                Some(200),
                Some(Hangup::System),
                ctx,
            );
        }
    }

    /// Fires due timers: ring time-outs, 2xx retransmissions, missing ACKs, forks
    /// that never answered our CANCEL.
    pub fn handle_timeout(&mut self, now: Instant, ctx: &mut CallContext<'_>) {
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
        let due: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| {
                [
                    c.ring_deadline,
                    c.retransmit_at,
                    c.ack_deadline,
                    c.transfer.as_ref().and_then(|t| t.deadline),
                    c.session_deadline,
                    c.ping_at,
                    c.reliable.as_ref().map(|r| r.next()),
                ]
                .into_iter()
                .flatten()
                .any(|t| t <= now)
            })
            .map(|c| c.id)
            .collect();
        for id in due {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.ring_deadline.is_some_and(|t| t <= now) {
                call.ring_deadline = None;
                if call.phase == Phase::Ringing {
                    self.ring_timeout(now, id, ctx);
                    continue;
                }
            }
            if self
                .calls
                .get(&id)
                .and_then(|c| c.transfer.as_ref())
                .and_then(|t| t.deadline)
                .is_some_and(|t| t <= now)
            {
                self.transfer_timeout(id);
            }
            self.liveness_timeout(now, id, ctx);
            self.prack_timeout(now, id);
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.ack_deadline.is_some_and(|t| t <= now) {
                // sec. 13.3.1.4: no ACK within 64*T1 ends the dialog with a BYE.
                self.end_call(
                    now,
                    id,
                    Disposition::Answered,
                    Some("no ACK from caller"),
                    Some(200),
                    Some(Hangup::System),
                    ctx,
                );
                continue;
            }
            if call.retransmit_at.is_some_and(|t| t <= now) {
                for (_, key, ok) in &call.pending_oks {
                    self.out.push_back(CallOutput::Respond {
                        key: key.clone(),
                        response: ok.clone(),
                    });
                }
                call.retransmit_every = (call.retransmit_every * 2).min(self.cfg.t2);
                call.retransmit_at = Some(now + call.retransmit_every);
            }
        }
    }

    fn dialog_of(&self, req: &Message) -> Option<(CallId, Side)> {
        let call_id = req.call_id().ok()?;
        let to = req.to_header().ok()?;
        let tag = to.tag()?;
        self.by_dialog
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }

    fn fork_provisional(
        &mut self,
        now: Instant,
        id: CallId,
        i: usize,
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        let mut cancel = None;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        if fork.state == ForkState::Calling {
            fork.state = ForkState::Ringing;
            if fork.cancel_pending {
                cancel = Some(i);
            }
        }
        let stale = fork.round != call.b_cseq;
        if call.phase != Phase::Ringing || cancel.is_some() || stale {
            if let Some(i) = cancel {
                self.cancel_fork(id, i);
            }
            return;
        }
        let status = resp.status().unwrap_or(180);
        // Early media: the callee's SDP in a 183 (or 180) is taken as its answer, and
        // the caller gets ours in a 183 so it plays what the relay forwards.
        let mut with_sdp = false;
        if !resp.body().is_empty() && !call.early_media {
            if let Ok(ans) = Sdp::parse(resp.body()) {
                if let Ok(neg) = sdp::accept_answer(&call.b_local, &ans) {
                    ctx.services.configure(id, Side::Callee, &neg);
                    call.early_media = true;
                    with_sdp = true;
                }
            }
        }
        let reason = if status == 183 || with_sdp {
            "Session Progress"
        } else {
            "Ringing"
        };
        let code = if with_sdp { 183 } else { status };
        let mut b = MessageBuilder::response_to(&call.a_invite, code, reason)
            .set_to_tag(&call.a.local_tag)
            .header(HeaderName::Contact, our_contact(call.a.flow));
        // With a late offer our SDP is an offer, which belongs in the 2xx.
        if (with_sdp || call.early_media) && !call.late_offer {
            b = b.body("application/sdp", call.a_sdp.clone());
        }
        let response = b.build();
        self.send_provisional(now, id, response);
    }

    fn fork_answered(
        &mut self,
        now: Instant,
        id: CallId,
        i: usize,
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        let Some(dialog) = Dialog::as_uac(&fork.invite, resp, fork.flow) else {
            return;
        };
        let cseq = fork.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let ack = dialog.ack(cseq, &mut self.ids);
        if call.b.is_some() || call.phase != Phase::Ringing || fork.round != call.b_cseq {
            // Another fork won, the call moved on, or the caller left: ACK, then hang
            // this one up.
            if call
                .b
                .as_ref()
                .is_some_and(|d| d.remote_tag == dialog.remote_tag)
            {
                // A retransmission of the winner's 2xx.
                self.out.push_back(CallOutput::Send {
                    flow: dialog.flow,
                    message: ack,
                });
                return;
            }
            fork.state = ForkState::Done;
            let (invite, flow) = (fork.invite.clone(), fork.flow);
            self.ack_and_bye(&invite, resp, flow);
            return;
        }
        fork.state = ForkState::Answered;
        let answer = Sdp::parse(resp.body())
            .ok()
            .and_then(|a| sdp::accept_answer(&call.b_local, &a).ok());
        let Some(neg) = answer else {
            // A 2xx without a usable answer: complete the handshake, then end it.
            fork.state = ForkState::Done;
            fork.final_status = Some((488, "Not Acceptable Here".into()));
            let (invite, flow) = (fork.invite.clone(), fork.flow);
            self.ack_and_bye(&invite, resp, flow);
            self.maybe_all_failed(now, id, ctx);
            return;
        };
        ctx.services.configure(id, Side::Callee, &neg);
        self.out.push_back(CallOutput::Send {
            flow: dialog.flow,
            message: ack.clone(),
        });
        call.dest_ip = Some(fork.flow.remote.ip());
        call.callee = fork.ext.clone();
        call.b = Some(dialog);
        call.acks.insert(Side::Callee, ack);
        self.answer_caller(now, id);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        // The other forks stop ringing.
        let others: Vec<usize> = (0..call.forks.len()).filter(|j| *j != i).collect();
        for j in others {
            self.cancel_fork(id, j);
        }
    }

    /// The callee side is settled: the caller gets our 200 (retransmitted until its
    /// ACK), ringing stops.
    fn answer_caller(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answered = Some(now);
        call.phase = Phase::Answering;
        call.ring_deadline = None;
        let mut b = MessageBuilder::response_to(&call.a_invite, 200, "OK")
            .set_to_tag(&call.a.local_tag)
            .header(HeaderName::Contact, our_contact(call.a.flow))
            .header(HeaderName::Allow, ALLOW)
            .header(HeaderName::Supported, liveness::SUPPORTED);
        let key = call.a_key.clone();
        let reliable = call.a.flow.transport != crate::registrar::Transport::Udp;
        let body = (!call.answered_reliably).then(|| call.a_sdp.clone());
        call.reliable = None;
        for (name, value) in self.session_headers(id) {
            b = b.header(name, value);
        }
        let ok = match body {
            Some(body) => b.body("application/sdp", body).build(),
            None => b.build(),
        };
        self.session_refreshed(now, id);
        self.send_ok(now, id, Side::Caller, key, ok, reliable);
    }

    /// Sends a 2xx to an INVITE and keeps it for retransmission until its ACK.
    fn send_ok(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        key: TransactionKey,
        ok: Message,
        reliable: bool,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        self.out.push_back(CallOutput::Respond {
            key: key.clone(),
            response: ok.clone(),
        });
        call.pending_oks.push((side, key, ok));
        if !reliable && call.retransmit_at.is_none() {
            call.retransmit_every = self.cfg.t1;
            call.retransmit_at = Some(now + self.cfg.t1);
        }
        call.ack_deadline = Some(now + self.cfg.t1 * 64);
    }

    fn fork_failed(
        &mut self,
        now: Instant,
        id: CallId,
        i: usize,
        status: u16,
        reason: &str,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        if fork.state == ForkState::Answered {
            return;
        }
        fork.state = ForkState::Done;
        fork.final_status = Some((status, reason.to_owned()));
        self.maybe_all_failed(now, id, ctx);
    }

    /// When every fork of the current round has failed while ringing: forward on busy,
    /// ring the next member of an ordered group, or give the caller the best of the
    /// answers (sec. 16.7 step 6, simplified: 6xx, then busy, then the lowest 4xx).
    fn maybe_all_failed(&mut self, now: Instant, id: CallId, ctx: &mut CallContext<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let round = call.b_cseq;
        let current = || call.forks.iter().filter(|f| f.round == round);
        if call.phase != Phase::Ringing || current().any(|f| f.state != ForkState::Done) {
            return;
        }
        let finals: Vec<(u16, String)> = current().filter_map(|f| f.final_status.clone()).collect();
        let best = finals
            .iter()
            .find(|(s, _)| *s >= 600)
            .or_else(|| finals.iter().find(|(s, _)| *s == 486))
            .or_else(|| {
                finals
                    .iter()
                    .filter(|(s, _)| (400..500).contains(s) && *s != 408 && *s != 487)
                    .min_by_key(|(s, _)| *s)
            })
            .or_else(|| finals.iter().min_by_key(|(s, _)| *s))
            .cloned();
        let (status, reason) = match best {
            // Authentication towards a phone is not the caller's business.
            Some((401 | 407, _)) | None => (480, "Temporarily Unavailable".to_owned()),
            Some((408, _)) => (480, "Temporarily Unavailable".to_owned()),
            Some(sr) => sr,
        };
        let busy = matches!(status, 486 | 600 | 603);
        let next = match call.target.clone() {
            Target::Extension(n) => match ctx.services.extension(&n).and_then(|p| p.forward_busy) {
                Some(t) if busy => self.forward(now, id, &t, ctx),
                _ => Err(failure(status, &reason)),
            },
            Target::Trunk | Target::Feature => Err(failure(status, &reason)),
            Target::Group { .. } => self.advance_group(now, id, ctx).map_err(|e| {
                if busy && e.0 == 480 {
                    failure(status, &reason)
                } else {
                    e
                }
            }),
        };
        if let Err(f) = next {
            self.fail_call(now, id, f, ctx);
        }
    }

    /// Rings `number` (an extension or a ring group) for call `id`, following its
    /// forwarding; a dead end refuses the caller and ends the call.
    fn route_to(&mut self, now: Instant, id: CallId, number: &str, ctx: &mut CallContext<'_>) {
        if let Err(f) = self.try_route(now, id, number, ctx) {
            self.fail_call(now, id, f, ctx);
        }
    }

    fn try_route(
        &mut self,
        now: Instant,
        id: CallId,
        number: &str,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Failure> {
        let Some(call) = self.calls.get_mut(&id) else {
            return Ok(());
        };
        if call.hops.len() >= MAX_HOPS || call.hops.iter().any(|h| h == number) {
            return Err((
                482,
                "Loop Detected: forwarding loop".into(),
                Disposition::Failed,
            ));
        }
        call.hops.push(number.to_owned());
        call.callee = number.to_owned();
        if let Some(group) = ctx.services.ring_group(number) {
            call.target = Target::Group { group, next: 0 };
            return self.advance_group(now, id, ctx);
        }
        let Some(p) = ctx.services.extension(number).filter(|p| p.enabled) else {
            return Err((404, "Not Found".into(), Disposition::Failed));
        };
        call.target = Target::Extension(number.to_owned());
        if let Some(t) = &p.forward_always {
            return self.forward(now, id, t, ctx);
        }
        if p.dnd {
            return match &p.forward_busy {
                Some(t) => self.forward(now, id, t, ctx),
                None => Err((486, "Busy Here: do not disturb".into(), Disposition::Busy)),
            };
        }
        let ring_time = match p.forward_noanswer {
            Some(_) => Duration::from_secs(u64::from(p.noanswer_secs)),
            None => self.cfg.ring_timeout,
        };
        if self.ring(now, id, &[number.to_owned()], ring_time, ctx) == 0 {
            // No phone registered: where an unanswered call would go, else 480.
            return match p.forward_noanswer.or(p.forward_busy) {
                Some(t) => self.forward(now, id, &t, ctx),
                None => Err((480, "Temporarily Unavailable".into(), Disposition::NoAnswer)),
            };
        }
        Ok(())
    }

    fn forward(
        &mut self,
        now: Instant,
        id: CallId,
        target: &ForwardTarget,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Failure> {
        match target {
            ForwardTarget::Internal(n) => self.try_route(now, id, n, ctx),
            // Checked per call: the installer may have forbidden it since the forward
            // was set (forwarding out costs money, DOMAIN.md).
            ForwardTarget::External(_) if !ctx.services.external_forwarding_allowed() => Err((
                403,
                "Forbidden: forwarding to external numbers is not allowed".into(),
                Disposition::Blocked,
            )),
            ForwardTarget::External(n) => Err((
                503,
                format!("Service Unavailable: no trunk to forward to {n}"),
                Disposition::Failed,
            )),
        }
    }

    /// Rings the next part of a ring group: all members at once the first time for a
    /// simultaneous group, the next member with phones for an ordered one; then the
    /// group's no-answer target; then 480.
    fn advance_group(
        &mut self,
        now: Instant,
        id: CallId,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Failure> {
        loop {
            let Some(Call {
                target: Target::Group { group, next },
                ..
            }) = self.calls.get_mut(&id)
            else {
                return Ok(());
            };
            let ring_time = Duration::from_secs(u64::from(group.ring_secs));
            let members: Vec<String> = match group.strategy {
                RingStrategy::Simultaneous if *next == 0 => group.members.clone(),
                RingStrategy::Ordered if *next < group.members.len() => {
                    vec![group.members[*next].clone()]
                }
                _ => {
                    return match group.noanswer_target.clone() {
                        Some(t) => self.forward(now, id, &t, ctx),
                        None => Err((
                            480,
                            "Temporarily Unavailable: nobody in the group answered".into(),
                            Disposition::NoAnswer,
                        )),
                    }
                }
            };
            *next = match group.strategy {
                RingStrategy::Simultaneous => group.members.len(),
                RingStrategy::Ordered => *next + 1,
            };
            // Members on do-not-disturb are skipped; their own forwarding does not
            // apply to group calls.
            let members: Vec<String> = members
                .into_iter()
                .filter(|m| {
                    ctx.services
                        .extension(m)
                        .is_some_and(|p| p.enabled && !p.dnd)
                })
                .collect();
            if self.ring(now, id, &members, ring_time, ctx) > 0 {
                return Ok(());
            }
        }
    }

    /// Starts a new routing round: cancels what still rings from the last one and
    /// sends an INVITE to every registered phone of `exts`. Returns the forks started.
    fn ring(
        &mut self,
        now: Instant,
        id: CallId,
        exts: &[String],
        ring_time: Duration,
        ctx: &mut CallContext<'_>,
    ) -> usize {
        let n = self.calls.get(&id).map_or(0, |c| c.forks.len());
        for i in 0..n {
            self.cancel_fork(id, i);
        }
        let realm = ctx.registrar.config().realm.clone();
        let mut targets = Vec::new();
        for ext in exts {
            let aor = format!("{ext}@{realm}");
            for b in ctx.registrar.bindings().get(&aor, now) {
                if let Ok(uri) = Uri::parse(&b.contact) {
                    targets.push((ext.clone(), uri, b.flow));
                }
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        if targets.is_empty() {
            return 0;
        }
        call.b_cseq += 1;
        let cseq = call.b_cseq;
        let mut started = 0;
        for (ext, uri, bflow) in targets {
            let mut local = call.b_local.clone();
            local.addr = bflow.local.ip();
            let body = sdp::offer(&local, &call.b_origin);
            let invite = MessageBuilder::request(Method::Invite, uri)
                .header(
                    HeaderName::Via,
                    our_via(bflow, &self.ids.branch()).to_string(),
                )
                .header(HeaderName::MaxForwards, "70")
                .header(HeaderName::From, call.b_from.clone())
                .header(HeaderName::To, format!("<sip:{ext}@{realm}>"))
                .header(HeaderName::CallId, call.b_call_id.clone())
                .header(HeaderName::CSeq, format!("{cseq} INVITE"))
                .header(HeaderName::Contact, our_contact(bflow))
                .header(HeaderName::Allow, ALLOW)
                .body("application/sdp", body)
                .build();
            let Ok(fkey) = TransactionKey::for_client_request(&invite) else {
                continue;
            };
            self.by_client_key
                .insert(fkey.clone(), ClientRole::Fork(id, call.forks.len()));
            self.out.push_back(CallOutput::Request {
                flow: bflow,
                request: invite.clone(),
            });
            call.forks.push(Fork {
                ext,
                round: cseq,
                key: fkey,
                invite,
                flow: bflow,
                state: ForkState::Calling,
                cancel_pending: false,
                final_status: None,
            });
            started += 1;
        }
        call.ring_deadline = Some(now + ring_time);
        started
    }

    /// Sends the call to a trunk: one INVITE for `number` (E.164 or emergency) on the
    /// trunk's flow. CLIR asks the provider to hide the caller (`Privacy: id`, RFC 3323)
    /// and sends an anonymous From. Emergency calls ring as long as it takes.
    #[allow(clippy::too_many_arguments)]
    fn ring_trunk(
        &mut self,
        now: Instant,
        id: CallId,
        trunk: TrunkTarget,
        number: &str,
        clir: bool,
        emergency: bool,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let _ = ctx;
        call.external = Some((trunk.name.clone(), number.to_owned()));
        call.target = Target::Trunk;
        call.b_cseq += 1;
        let cseq = call.b_cseq;
        let flow = trunk.flow;
        let mut local = call.b_local.clone();
        local.addr = flow.local.ip();
        let from = if clir {
            let tag = call.b_from.rsplit(";tag=").next().unwrap_or("").to_owned();
            format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={tag}")
        } else {
            call.b_from.clone()
        };
        let mut b = MessageBuilder::request(Method::Invite, trunk.request_uri(number))
            .header(
                HeaderName::Via,
                our_via(flow, &self.ids.branch()).to_string(),
            )
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, from)
            .header(HeaderName::To, format!("<sip:{number}@{}>", trunk.host))
            .header(HeaderName::CallId, call.b_call_id.clone())
            .header(HeaderName::CSeq, format!("{cseq} INVITE"))
            .header(HeaderName::Contact, our_contact(flow))
            .header(HeaderName::Allow, ALLOW);
        if clir {
            b = b.header(HeaderName::Other("Privacy".into()), "id");
        }
        let invite = b
            .body("application/sdp", sdp::offer(&local, &call.b_origin))
            .build();
        let Ok(key) = TransactionKey::for_client_request(&invite) else {
            return;
        };
        self.by_client_key
            .insert(key.clone(), ClientRole::Fork(id, call.forks.len()));
        self.out.push_back(CallOutput::Request {
            flow,
            request: invite.clone(),
        });
        call.forks.push(Fork {
            ext: number.to_owned(),
            round: cseq,
            key,
            invite,
            flow,
            state: ForkState::Calling,
            cancel_pending: false,
            final_status: None,
        });
        call.ring_deadline = (!emergency).then(|| now + self.cfg.ring_timeout);
    }

    /// The ring time of the current round is over.
    fn ring_timeout(&mut self, now: Instant, id: CallId, ctx: &mut CallContext<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let next = match call.target.clone() {
            Target::Extension(n) => {
                match ctx.services.extension(&n).and_then(|p| p.forward_noanswer) {
                    Some(t) => self.forward(now, id, &t, ctx),
                    None => Err((
                        408,
                        "Request Timeout: no answer".into(),
                        Disposition::NoAnswer,
                    )),
                }
            }
            Target::Group { .. } => self.advance_group(now, id, ctx),
            Target::Trunk | Target::Feature => Err((
                408,
                "Request Timeout: no answer".into(),
                Disposition::NoAnswer,
            )),
        };
        if let Err(f) = next {
            self.fail_call(now, id, f, ctx);
        }
    }

    /// Refuses the caller with `f` and ends the call.
    fn fail_call(&mut self, now: Instant, id: CallId, f: Failure, ctx: &mut CallContext<'_>) {
        let (status, reason, disposition) = f;
        self.refuse_caller(id, status, &reason);
        let why = format!("{status} {reason}");
        self.end_call(now, id, disposition, Some(&why), Some(status), None, ctx);
    }

    /// Sends a final non-2xx to the caller's INVITE.
    fn refuse_caller(&mut self, id: CallId, status: u16, reason: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let resp = MessageBuilder::response_to(&call.a_invite, status, reason)
            .set_to_tag(&call.a.local_tag)
            .build();
        self.out.push_back(CallOutput::Respond {
            key: call.a_key.clone(),
            response: resp,
        });
    }

    /// CANCELs one fork (sec. 9.1), or notes to do so once it has rung.
    fn cancel_fork(&mut self, id: CallId, i: usize) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        if let Some((flow, cancel)) = cancel_of(fork) {
            self.send_other(flow, cancel);
        }
    }

    fn send_other(&mut self, flow: Flow, request: Message) {
        if let Ok(key) = TransactionKey::for_client_request(&request) {
            self.by_client_key.insert(key, ClientRole::Other);
        }
        self.out.push_back(CallOutput::Request { flow, request });
    }

    /// Ends a call on every leg: cancels ringing forks, BYEs confirmed dialogs except
    /// the one that hung up, closes media, and emits the record.
    #[allow(clippy::too_many_arguments)]
    fn end_call(
        &mut self,
        now: Instant,
        id: CallId,
        disposition: Disposition,
        reason: Option<&str>,
        status: Option<u16>,
        hangup: Option<Hangup>,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if hangup != Some(Hangup::Caller) && matches!(call.phase, Phase::Answering | Phase::Up) {
            let bye = call.a.request(Method::Bye, &mut self.ids);
            let flow = call.a.flow;
            self.send_other(flow, bye);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if hangup != Some(Hangup::Callee) {
            if let Some(d) = call.b.as_mut() {
                let bye = d.request(Method::Bye, &mut self.ids);
                let flow = d.flow;
                self.send_other(flow, bye);
            }
        }
        let n = self.calls.get(&id).map_or(0, |c| c.forks.len());
        for i in 0..n {
            self.cancel_fork(id, i);
        }
        let n = self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .map_or(0, |t| t.forks.len());
        for i in 0..n {
            self.cancel_transfer_fork(id, i);
        }
        ctx.services.close(id);
        self.finish(now, id, disposition, reason, status, hangup);
    }

    /// Removes the call from the tables and emits its record. Forks that have not
    /// answered become orphans until their transactions end.
    fn finish(
        &mut self,
        now: Instant,
        id: CallId,
        disposition: Disposition,
        reason: Option<&str>,
        status: Option<u16>,
        hangup: Option<Hangup>,
    ) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        // A late CANCEL for the caller's INVITE now finds no call (481).
        self.by_server_key.retain(|_, v| *v != id);
        self.by_dialog.retain(|_, (v, _)| *v != id);
        let transfer_forks = call
            .transfer
            .iter()
            .flat_map(|t| t.forks.iter().enumerate());
        let forks = call
            .forks
            .iter()
            .enumerate()
            .map(|(i, f)| (ClientRole::Fork(id, i), f))
            .chain(transfer_forks.map(|(i, f)| (ClientRole::TransferFork(id, i), f)));
        for (role, fork) in forks {
            if self.by_client_key.get(&fork.key) != Some(&role) {
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
                    fork.key.clone(),
                    Orphan {
                        invite: fork.invite.clone(),
                        flow: fork.flow,
                        cancelled,
                        deadline: now + self.cfg.t1 * 64,
                    },
                );
            }
        }
        self.out.push_back(CallOutput::Ended(Box::new(CallSummary {
            id,
            sip_call_id: call.a.call_id.clone(),
            caller: call.caller,
            caller_name: call.caller_name,
            dialled: call.dialled,
            normalised: call.external.as_ref().map(|(_, n)| n.clone()),
            destination: Some(call.callee),
            direction: if call.external.is_some() {
                CallDirection::Outbound
            } else {
                CallDirection::Internal
            },
            route: Some(
                call.external
                    .map_or_else(|| "internal".to_owned(), |(trunk, _)| trunk),
            ),
            source_ip: Some(call.source_ip),
            dest_ip: call.dest_ip,
            start: call.start,
            answer: call.answered,
            end: now,
            disposition: if call.answered.is_none() && disposition == Disposition::Answered {
                Disposition::Failed
            } else {
                disposition
            },
            reason: reason
                .map(str::to_owned)
                .or_else(|| call.transferred_to.map(|t| format!("transferred to {t}"))),
            sip_status: status,
            hangup,
        })));
    }

    /// A call refused before it had state still leaves a record.
    fn record_refusal(
        &mut self,
        now: Instant,
        req: &Message,
        flow: Flow,
        disposition: Disposition,
        early: &Early,
    ) {
        let caller = req
            .from_header()
            .ok()
            .and_then(|f| f.uri.user().map(str::to_owned))
            .unwrap_or_default();
        let dialled = req
            .request_uri()
            .and_then(|u| u.user().map(str::to_owned))
            .unwrap_or_default();
        let id = self.next_call;
        self.next_call += 1;
        self.out.push_back(CallOutput::Ended(Box::new(CallSummary {
            id,
            sip_call_id: req.call_id().unwrap_or("").to_owned(),
            caller,
            caller_name: None,
            dialled,
            normalised: None,
            destination: None,
            direction: CallDirection::Internal,
            route: None,
            source_ip: Some(flow.remote.ip()),
            dest_ip: None,
            start: now,
            answer: None,
            end: now,
            disposition,
            reason: Some(early.reason.clone()),
            sip_status: Some(early.status),
            hangup: None,
        })));
    }
}

/// Stops a fork: the CANCEL to send if it has rung (sec. 9.1), else a note to send
/// it once it does.
fn cancel_of(fork: &mut Fork) -> Option<(Flow, Message)> {
    match fork.state {
        ForkState::Calling => {
            fork.cancel_pending = true;
            None
        }
        ForkState::Ringing => {
            fork.state = ForkState::Done;
            fork.final_status
                .get_or_insert((487, "Request Terminated".into()));
            Some((fork.flow, cancel_for(&fork.invite)))
        }
        ForkState::Answered | ForkState::Done => None,
    }
}

/// The CANCEL for our INVITE (sec. 9.1: same Request-URI, Call-ID, From, To, CSeq
/// number and top Via).
fn cancel_for(invite: &Message) -> Message {
    let uri = invite
        .request_uri()
        .cloned()
        .unwrap_or_else(|| Uri::sip(None, "invalid", None));
    let mut b = MessageBuilder::request(Method::Cancel, uri);
    if let Ok(via) = invite.top_via() {
        b = b.header(HeaderName::Via, via.to_string());
    }
    b = b.header(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = invite.header(&name) {
            b = b.header(name.clone(), v.to_owned());
        }
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    b.header(HeaderName::CSeq, format!("{seq} CANCEL")).build()
}

fn refusal_early(r: &Refusal) -> Early {
    let status = r.sip_status();
    let reason = r.reason();
    let phrase = match status {
        403 => format!("Forbidden: {reason}"),
        404 => "Not Found".to_owned(),
        484 => "Address Incomplete".to_owned(),
        _ => format!("Bad Request: {reason}"),
    };
    let mut e = Early::new(status, phrase);
    e.warning = Some(format!("399 pbxd \"{}\"", quote(&reason)));
    if matches!(r, Refusal::Blocked { .. } | Refusal::NotAllowed { .. }) {
        e.disposition = Some(Disposition::Blocked);
    }
    e
}

/// A picker's answer must come from its own offer: without one there is nothing to
/// answer in the 2xx that takes over the call.
fn pickup_needs_offer() -> Option<Early> {
    Some(Early::new(
        488,
        "Not Acceptable Here: pickup needs an SDP offer",
    ))
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The directory seen as the dial plan's number plan.
struct PlanView<'a>(&'a dyn CallDirectory);

impl NumberPlan for PlanView<'_> {
    fn is_extension(&self, n: &str) -> bool {
        self.0.extension(n).is_some()
    }

    fn is_ring_group(&self, n: &str) -> bool {
        self.0.is_ring_group(n)
    }

    fn is_prefix_of_internal(&self, prefix: &str) -> bool {
        self.0.is_prefix_of_internal(prefix)
    }
}

fn failure(status: u16, reason: &str) -> Failure {
    let disposition = match status {
        486 | 600 | 603 => Disposition::Busy,
        // The store's vocabulary: nobody took the call.
        408 | 480 => Disposition::NoAnswer,
        _ => Disposition::Failed,
    };
    (status, reason.to_owned(), disposition)
}

fn dialog_ref(call: &Call, side: Side) -> Option<&Dialog> {
    match side {
        Side::Caller => Some(&call.a),
        Side::Callee => call.b.as_ref(),
    }
}

fn dialog_mut(call: &mut Call, side: Side) -> Option<&mut Dialog> {
    match side {
        Side::Caller => Some(&mut call.a),
        Side::Callee => call.b.as_mut(),
    }
}
