//! Call control: calls between parties as plain state. Leg events and `now` go in;
//! commands to legs, media control and call records come out. No protocol, no
//! sockets, no clock: the SIP user agent (`sip::ua`) turns SIP into [`LegEvent`]s and
//! carries out [`Legs`] commands, and other kinds of legs (analog ports, GSM) can do
//! the same.
//!
//! A call is the caller's leg (side [`Side::Caller`]) and, once answered, one callee
//! leg ([`Side::Callee`]), with a media session anchored in the box between them.
//! While it rings, each extension rung is a leg of its own; the first to answer
//! becomes the callee and the others stop. Forwarding, ring groups, pickup, transfer,
//! feature codes and music on hold are decided here.

mod external;
mod fax;
mod features;
mod originate;
mod pickup;
mod ringback;

#[cfg(test)]
pub(crate) use ringback::FAILURE_TONE;
mod transfer;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::leg::{Cause, CauseKind, Gone, LegEvent, LegId, Legs, MediaPort, Party, RingTarget};
use super::trunk::{EmergencyRoute, ExternalLimits, TrunkTarget};
use crate::dialplan::{self, Caller, FeatureCode, NumberPlan, OutboundClass, Refusal, Route, Site};
use crate::gsm::legs::GSM_TRUNK;
use crate::media::sdp::{Codec, Negotiated};
use crate::registrar::Directory;
// The record's vocabulary is the store's: one set of words for calls, from core to CSV.
pub use crate::store::{CallDirection, Disposition, HangupSide as Hangup};
use crate::store::{ForwardTarget, RingGroup, RingStrategy, Severity};
use crate::trunk::{TrunkLink, TrunkLinks};

/// Whether `dialled` is an emergency call, in any form the dial plan accepts (such
/// calls are never shed under overload).
pub fn is_emergency(dialled: &str) -> bool {
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

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg (the INVITE we answered).
    Caller,
    /// The callee's leg (the INVITE we sent).
    Callee,
}

impl Side {
    /// The other side of the call.
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
}

/// Call settings (the SIP legs take the protocol timers from here too).
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
    /// SRTP in the offers we make (`--srtp`); see [`crate::media::SrtpMode`].
    pub srtp: crate::media::SrtpMode,
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
            srtp: crate::media::SrtpMode::Off,
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
    /// Where a call to the account's number `e164` on `trunk` rings (an extension,
    /// ring group or analog port number), if it is one of the account's numbers.
    fn did_destination(&self, trunk: &str, e164: &str) -> Option<String> {
        let _ = (trunk, e164);
        None
    }
    /// The account's number (E.164) `extension` presents on calls through `trunk`: one
    /// assigned to it, else the trunk's default; never one the account does not own.
    fn caller_id(&self, trunk: &str, extension: &str) -> Option<String> {
        let _ = (trunk, extension);
        None
    }
    /// The site's emergency caller ID (E.164), sent on every emergency call.
    fn emergency_caller_id(&self) -> Option<String> {
        None
    }
    /// Routes an emergency call tries after the registered trunks, in order (the GSM
    /// gateway returns `[EmergencyRoute::Gsm]` here once it is up).
    fn emergency_fallbacks(&self) -> Vec<EmergencyRoute> {
        Vec::new()
    }
    /// The GSM outbound route by prefix (issue 7): when `dialled` starts with the GSM
    /// prefix, the number to dial on the module (prefix stripped). `None`: not for GSM.
    fn gsm_prefix_route(&self, dialled: &str) -> Option<String> {
        let _ = dialled;
        None
    }
    /// Whether the installer confirmed that the SIM's terms allow its use in a gateway:
    /// ordinary calls over GSM need it, emergency calls never wait for it. Asked per
    /// call, so that a confirmation given a moment ago counts.
    fn gsm_gateway_confirmed(&self) -> bool {
        false
    }
    /// Whether the external call to `e164` goes out over the GSM module (all calls, mobile
    /// numbers, or because no cloud trunk can take it: `trunk_up` is false).
    fn gsm_takes_external(&self, e164: &str, trunk_up: bool) -> bool {
        let _ = (e164, trunk_up);
        false
    }
    /// Limits on `extension`'s external calls through `trunk` (none by default).
    fn external_limits(&self, extension: &str, trunk: &str) -> ExternalLimits {
        let _ = (extension, trunk);
        ExternalLimits::default()
    }
    /// Whether `extension` is locked for external calls (toll-fraud protection).
    fn external_locked(&self, extension: &str) -> bool {
        let _ = extension;
        false
    }
    /// Locks `extension` for external calls until an admin unlocks it.
    fn lock_external(&mut self, extension: &str, reason: &str) {
        let _ = (extension, reason);
    }
    /// Raises (or updates) the dashboard alert `key`.
    fn raise_alert(&mut self, key: &str, severity: Severity, message: &str) {
        let _ = (key, severity, message);
    }
    /// Clears the dashboard alert `key`, if open.
    fn clear_alert(&mut self, key: &str) {
        let _ = key;
    }
    /// Whether calls may be forwarded to external numbers (a site setting).
    fn external_forwarding_allowed(&self) -> bool {
        false
    }
    /// Whether `extension` may forward calls to external numbers (the site's setting
    /// unless the directory knows better per extension).
    fn external_forwarding_allowed_for(&self, extension: &str) -> bool {
        let _ = extension;
        self.external_forwarding_allowed()
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
    /// The site country's ringback tone, looped until stopped: a party waiting for
    /// a ringing callee that sends no early media (a transfer, click-to-dial).
    Ringback,
    /// The country's busy tone, looped until stopped.
    Busy,
    /// The country's congestion tone, looped until stopped.
    Congestion,
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

/// One finished call attempt, for the call records.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    /// Our number for the call (also the media session's).
    pub id: CallId,
    /// The caller leg's protocol reference (its SIP Call-ID).
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
    /// Why the call failed or was refused (none when answered).
    pub cause: Option<Cause>,
    /// The final status the caller got (200 when answered), filled in by the
    /// protocol layer from `cause`.
    pub sip_status: Option<u16>,
    /// Who hung up an answered call.
    pub hangup: Option<Hangup>,
    /// A call forwarded out: the extension (or ring group) whose forward it followed
    /// (the outbound leg counted as that party's call); `caller` stays the original
    /// caller and `normalised` is the external target.
    pub forwarded_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Click-to-dial: the caller's own phone rings; the number is dialled once it
    /// answers.
    Originating,
    /// Callee legs are ringing.
    Ringing,
    /// The caller (or a picker) was answered; waiting for it to confirm.
    Answering,
    /// Both sides talking.
    Up,
}

/// One extension (or trunk number) being rung for a call.
#[derive(Debug)]
struct Ring {
    leg: LegId,
    /// What it rings (an extension, or the external number).
    ext: String,
    /// Why it failed, once it has.
    failed: Option<Cause>,
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
    reference: String,
    /// The caller's leg, and whether it has been answered.
    a: LegId,
    a_answered: bool,
    /// The callee's leg once answered.
    b: Option<LegId>,
    /// Our relay ports: caller side, callee side.
    ports: (u16, u16),
    /// The caller's codec, offered first to callees (no transcoding when they take it).
    prefer: Option<Codec>,
    /// What rings now (the current routing round).
    rings: Vec<Ring>,
    /// Answered legs that have not confirmed yet.
    unconfirmed: Vec<LegId>,
    /// The side that put the call on hold (the other side hears music).
    held_by: Option<Side>,
    /// Trunk name and E.164 (or emergency) number of an outbound call.
    external: Option<(String, String)>,
    /// An emergency call: never limited, never pre-empted, tries every route.
    emergency: bool,
    /// Emergency routes not tried yet.
    routes: VecDeque<EmergencyRoute>,
    /// A call from a trunk: its name and the caller's E.164 number (if shown).
    inbound: Option<(String, Option<String>)>,
    /// The extension (or ring group) whose forward sends this call out: the outbound
    /// leg is its call (its limits and caller ID), and the record says so.
    forwarded_by: Option<String>,
    ring_deadline: Option<Instant>,
    early_media: bool,
    /// What is being rung now.
    target: Target,
    /// Numbers this call has been routed to (loop protection).
    hops: Vec<String>,
    /// A transfer in progress.
    transfer: Option<Transfer>,
    /// Where the call was transferred to, for the record.
    transferred_to: Option<String>,
    /// Click-to-dial: the box placed the caller's leg as an outgoing one, so it is
    /// neither answered nor refused by us, only hung up.
    originated: bool,
    /// Click-to-dial: where the call goes once the caller's phone answers.
    pending: Option<Dest>,
    /// Click-to-dial that failed: the user hears a busy or congestion tone until
    /// then, and the call ends with this failure.
    closing: Option<(Instant, Failure)>,
}

impl Call {
    fn port(&self, side: Side) -> u16 {
        match side {
            Side::Caller => self.ports.0,
            Side::Callee => self.ports.1,
        }
    }

    fn leg(&self, side: Side) -> Option<LegId> {
        match side {
            Side::Caller => Some(self.a),
            Side::Callee => self.b,
        }
    }

    fn number(&self, side: Side) -> String {
        match side {
            Side::Caller => self.caller.clone(),
            Side::Callee => self.callee.clone(),
        }
    }

    /// Every leg of the call except `except`.
    fn all_legs(&self) -> Vec<LegId> {
        let mut v = vec![self.a];
        v.extend(self.b);
        v.extend(self.rings.iter().map(|r| r.leg));
        v.extend(self.transfer.as_ref().and_then(|t| t.leg));
        v
    }
}

/// A transfer asked for by the party on `side` (through leg `requester`): that side
/// is replaced by the target once the target answers.
#[derive(Debug)]
struct Transfer {
    side: Side,
    requester: LegId,
    /// The number of the party that takes the side over.
    target: String,
    /// Blind: the new leg ringing the target.
    leg: Option<LegId>,
    /// Attended: the target's leg being moved here from `.1`, where it is on `.2`.
    moving: Option<(LegId, CallId, Side)>,
    /// When a blind transfer gives up ringing.
    deadline: Option<Instant>,
    /// The transferee hears ringback from us while the target rings.
    ringback: bool,
}

/// Where the dial plan sent a new call.
// One lives per new call for a moment: boxing the trunk would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Dest {
    Internal(String),
    /// Call pickup (`*8`, `**<ext>`): the caller's leg takes over a ringing call.
    Pickup(Option<String>),
    /// A feature code other than pickup: answered by the box itself.
    Feature(FeatureCode),
    Trunk {
        trunk: TrunkTarget,
        number: String,
        clir: bool,
        identity: Option<String>,
    },
    /// Out over the GSM module (issue 7): the number as the module dials it.
    Gsm(String),
    /// 110/112: the routes to try in order.
    Emergency {
        number: String,
        routes: VecDeque<EmergencyRoute>,
    },
}

impl Dest {
    /// The call's callee while it is being set up (`dialled` for feature codes).
    fn callee(&self, dialled: &str) -> String {
        match self {
            Dest::Internal(n) => n.clone(),
            Dest::Trunk { number, .. } | Dest::Emergency { number, .. } | Dest::Gsm(number) => {
                number.clone()
            }
            Dest::Feature(_) | Dest::Pickup(_) => dialled.to_owned(),
        }
    }
}

/// The destination currently ringing.
#[derive(Debug, Clone)]
enum Target {
    /// A number outside, through a trunk.
    Trunk,
    /// No one: the box answers a feature code itself.
    Feature,
    /// One extension (all its devices).
    Extension(String),
    /// A ring group; `next` is the next member to ring in an ordered group.
    Group { group: RingGroup, next: usize },
}

/// Why a call cannot go on: what the caller is told, and the record's outcome.
type Failure = (Cause, Disposition);

/// What a new incoming leg is, for records of calls refused before they existed.
struct Attempt<'a> {
    leg: LegId,
    caller: &'a str,
    dialled: &'a str,
    reference: &'a str,
    source: IpAddr,
    /// The trunk an incoming call came from.
    trunk: Option<&'a str>,
}

/// Call control.
#[derive(Debug)]
pub struct CallControl {
    cfg: CallConfig,
    next_call: CallId,
    calls: HashMap<CallId, Call>,
    /// Every leg of a live call: its call and the side it is (or will be) on.
    legs: HashMap<LegId, (CallId, Side)>,
    ended: VecDeque<CallSummary>,
    /// The cloud trunks' links as last seen (the SIP side keeps them current).
    trunks: Vec<TrunkLink>,
    /// Outbound external call starts per extension in the last minute (toll fraud).
    recent_external: HashMap<String, VecDeque<Instant>>,
}

/// What handlers get: the legs to command and the services.
struct Io<'a, 'b> {
    legs: &'a mut dyn Legs,
    env: &'b mut dyn CallServices,
}

impl CallControl {
    /// Call control with no calls.
    pub fn new(cfg: CallConfig) -> Self {
        Self {
            cfg,
            next_call: 1,
            calls: HashMap::new(),
            legs: HashMap::new(),
            ended: VecDeque::new(),
            trunks: Vec::new(),
            recent_external: HashMap::new(),
        }
    }

    /// The cloud trunks' current links (first registered one takes external calls).
    pub fn set_trunks(&mut self, links: &TrunkLinks) {
        if !self.trunks.iter().eq(links.iter()) {
            self.trunks = links.iter().cloned().collect();
        }
    }

    /// The settings.
    pub fn config(&self) -> &CallConfig {
        &self.cfg
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is live.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Live emergency calls (a firmware update never starts while one is up).
    pub fn emergency_len(&self) -> usize {
        self.calls.values().filter(|c| c.emergency).count()
    }

    /// Legs known (for leak checks: zero when idle).
    pub fn legs_known(&self) -> usize {
        self.legs.len()
    }

    /// A fresh call number, for records of attempts refused before call control saw
    /// them.
    pub fn allocate_id(&mut self) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        id
    }

    /// The next finished call's record.
    pub fn poll_ended(&mut self) -> Option<CallSummary> {
        self.ended.pop_front()
    }

    /// When [`CallControl::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .flat_map(|c| {
                [
                    c.ring_deadline,
                    c.transfer.as_ref().and_then(|t| t.deadline),
                    c.closing.as_ref().map(|(t, _)| *t),
                ]
            })
            .flatten()
            .min()
    }

    /// One event from a leg.
    pub fn handle_event(
        &mut self,
        now: Instant,
        event: LegEvent,
        legs: &mut dyn Legs,
        env: &mut dyn CallServices,
    ) {
        let io = &mut Io { legs, env };
        match event {
            LegEvent::Incoming {
                leg,
                caller,
                dialled,
                reference,
                source,
            } => {
                let attempt = Attempt {
                    leg,
                    caller: &caller,
                    dialled: &dialled,
                    reference: &reference,
                    source,
                    trunk: None,
                };
                self.incoming(now, &attempt, io)
            }
            LegEvent::IncomingTrunk {
                leg,
                trunk,
                called,
                caller,
                name,
                reference,
                source,
            } => {
                let from = external::FromTrunk {
                    leg,
                    trunk: &trunk,
                    called: &called,
                    caller: caller.as_deref(),
                    name,
                    reference: &reference,
                    source,
                };
                self.incoming_trunk(now, from, io)
            }
            LegEvent::Progress {
                leg,
                ringing,
                media,
            } => self.progress(leg, ringing, media, io),
            LegEvent::Answered { leg, media, peer } => self.answered(now, leg, media, peer, io),
            LegEvent::Confirmed { leg, media } => self.confirmed(leg, media, io),
            LegEvent::Failed { leg, cause } => self.leg_failed(now, leg, cause, io),
            LegEvent::HungUp { leg, gone } => self.hung_up(now, leg, gone, io),
            LegEvent::Renegotiated { leg, media } => {
                if let Some(&(id, side)) = self.legs.get(&leg) {
                    io.env.configure(id, side, &media);
                    self.hold_changed(id, side, media.direction.sends(), io);
                }
            }
            LegEvent::TransferRequested { leg, target } => self.blind(now, leg, &target, io),
            LegEvent::ReplaceRequested { leg, replaces } => self.attended(now, leg, replaces, io),
            LegEvent::MediaMoved { leg, result } => self.moved(now, leg, result, io),
        }
    }

    /// The relay saw no RTP for too long on an answered call: hang up both sides.
    pub fn handle_media_timeout(
        &mut self,
        now: Instant,
        id: CallId,
        legs: &mut dyn Legs,
        env: &mut dyn CallServices,
    ) {
        if self.calls.get(&id).is_some_and(|c| c.phase == Phase::Up) {
            let io = &mut Io { legs, env };
            let end = End::answered(Some("media time-out"), Some(Hangup::System));
            self.end_call(now, id, end, io);
        }
    }

    /// Fires due timers: ring time-outs and transfers that were not answered.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        legs: &mut dyn Legs,
        env: &mut dyn CallServices,
    ) {
        let io = &mut Io { legs, env };
        let due: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| {
                [
                    c.ring_deadline,
                    c.transfer.as_ref().and_then(|t| t.deadline),
                    c.closing.as_ref().map(|(t, _)| *t),
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
            if call.closing.as_ref().is_some_and(|(t, _)| *t <= now) {
                self.failure_tone_over(now, id, None, io);
                continue;
            }
            if call.ring_deadline.is_some_and(|t| t <= now) {
                call.ring_deadline = None;
                if call.phase == Phase::Ringing {
                    self.ring_timeout(now, id, io);
                    continue;
                }
                if call.phase == Phase::Originating {
                    let cause = Cause::with(CauseKind::NoAnswer, "your phone did not answer");
                    self.fail_call(now, id, failure(cause), io);
                    continue;
                }
            }
            let transfer_due = self
                .calls
                .get(&id)
                .and_then(|c| c.transfer.as_ref())
                .and_then(|t| t.deadline)
                .is_some_and(|t| t <= now);
            if transfer_due {
                self.transfer_timeout(id, io);
            }
        }
    }

    /// A new incoming leg: check the caller, route, open media, take the leg on.
    fn incoming(&mut self, now: Instant, at: &Attempt<'_>, io: &mut Io<'_, '_>) {
        let Some(profile) = io.env.extension(at.caller).filter(|p| p.enabled) else {
            io.legs.reject(at.leg, &Cause::new(CauseKind::Forbidden));
            return;
        };
        let dest = match self.resolve(now, at.caller, &profile, at.dialled, at.reference, io) {
            Ok(Dest::Pickup(extension)) => {
                return self.pickup(now, at, extension.as_deref(), io);
            }
            Ok(d) => d,
            Err((cause, disposition)) => {
                io.legs.reject(at.leg, &cause);
                self.record_refusal(now, at, disposition, cause);
                return;
            }
        };
        let callee = dest.callee(at.dialled);
        let caller_name = if profile.clir { None } else { profile.name };
        let Some(id) = self.open_call(now, at, caller_name, callee, io) else {
            return;
        };
        self.dispatch(now, id, dest, io);
    }

    /// Where `caller` (with `profile`) dialling `dialled` goes: the dial plan with the
    /// caller's class and the site, blocked ranges, the GSM prefix, the limits and
    /// toll-fraud protection on external calls (an attempt counts towards them), and
    /// emergency routes. `reference` names the attempt in alerts.
    fn resolve(
        &mut self,
        now: Instant,
        caller: &str,
        profile: &ExtensionProfile,
        dialled: &str,
        reference: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<Dest, Failure> {
        let site = io.env.site();
        let route = {
            let plan = PlanView(&*io.env);
            let who = Caller {
                extension: caller,
                class: profile.class,
                clir_permanent: profile.clir,
            };
            dialplan::route(&who, dialled, &site, &plan)
        };
        // The GSM prefix wins over the dial plan (emergency numbers excepted: they keep
        // their own routes, GSM among them).
        let gsm_prefixed = io
            .env
            .gsm_prefix_route(dialled)
            .filter(|_| !matches!(route, Ok(Route::Emergency { .. })));
        let no_trunk = |what: String| {
            (
                Cause::with(CauseKind::Congestion, what),
                Disposition::Failed,
            )
        };
        let dest = match route {
            _ if gsm_prefixed.is_some() => gsm_confirmed(io)
                .and_then(|()| self.external_allowed(now, caller, GSM_TRUNK, io))
                .map(|()| Dest::Gsm(gsm_prefixed.clone().unwrap_or_default())),
            Ok(Route::Extension { number }) | Ok(Route::RingGroup { number }) => {
                Ok(Dest::Internal(number))
            }
            Ok(Route::Feature(FeatureCode::Pickup)) => Ok(Dest::Pickup(None)),
            Ok(Route::Feature(FeatureCode::PickupExtension { extension })) => {
                Ok(Dest::Pickup(Some(extension)))
            }
            Ok(Route::Feature(f)) => Ok(Dest::Feature(f)),
            Ok(Route::External { e164, .. })
                if io
                    .env
                    .gsm_takes_external(&e164, self.trunk_for(&e164, io).is_some()) =>
            {
                gsm_confirmed(io)
                    .and_then(|()| self.external_allowed(now, caller, GSM_TRUNK, io))
                    .map(|()| Dest::Gsm(e164))
            }
            Ok(Route::External { e164, clir, .. }) => match self.trunk_for(&e164, io) {
                Some(trunk) => self
                    .external_allowed(now, caller, &trunk.name, io)
                    .map(|()| Dest::Trunk {
                        identity: io.env.caller_id(&trunk.name, caller),
                        trunk,
                        number: e164,
                        clir,
                    }),
                None => Err(no_trunk(format!("no trunk for {e164}"))),
            },
            Ok(Route::Emergency { number, .. }) => {
                let routes = self.emergency_routes(&number, io);
                if routes.is_empty() {
                    let why = format!("no route for emergency call {number}");
                    self.emergency_failed(reference, caller, &number, &why, io);
                    Err(no_trunk(why))
                } else {
                    Ok(Dest::Emergency { number, routes })
                }
            }
            Err(refusal) => Err(refused(&refusal)),
        };
        match dest {
            Ok(Dest::Internal(n))
                if !(io.env.extension(&n).is_some_and(|p| p.enabled)
                    || io.env.is_ring_group(&n)) =>
            {
                Err((Cause::new(CauseKind::NotFound), Disposition::Failed))
            }
            d => d,
        }
    }

    /// Rings what [`CallControl::resolve`] found for call `id`.
    fn dispatch(&mut self, now: Instant, id: CallId, dest: Dest, io: &mut Io<'_, '_>) {
        match dest {
            Dest::Internal(n) => self.route_to(now, id, &n, io),
            Dest::Feature(code) => self.run_feature(now, id, &code, io),
            Dest::Trunk {
                trunk,
                number,
                clir,
                identity,
            } => {
                let name = trunk.name.clone();
                let target = RingTarget::Trunk {
                    trunk,
                    number: number.clone(),
                    clir,
                    identity,
                };
                self.ring_trunk(now, id, target, &name, &number, io)
            }
            Dest::Gsm(number) => {
                let target = RingTarget::Gsm {
                    number: number.clone(),
                };
                self.ring_trunk(now, id, target, GSM_TRUNK, &number, io)
            }
            Dest::Emergency { number, routes } => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.emergency = true;
                    call.routes = routes;
                }
                self.next_emergency_route(now, id, &number, None, io)
            }
            // Pickup takes over another call: only an incoming leg can (see `incoming`).
            Dest::Pickup(_) => {
                let cause = Cause::with(CauseKind::Invalid, "call pickup is not a number to dial");
                self.fail_call(now, id, (cause, Disposition::Failed), io);
            }
        }
    }

    /// Opens media for a new call and takes its caller's leg on; `None` when that
    /// failed (the caller was refused and the attempt recorded).
    fn open_call(
        &mut self,
        now: Instant,
        at: &Attempt<'_>,
        caller_name: Option<String>,
        callee: String,
        io: &mut Io<'_, '_>,
    ) -> Option<CallId> {
        let id = self.next_call;
        let ports = match io.env.open(id) {
            Ok(p) => p,
            Err(e) => {
                let cause = Cause::with(CauseKind::Congestion, format!("media: {e}"));
                io.legs.reject(at.leg, &cause);
                self.record_refusal(now, at, Disposition::Failed, cause);
                return None;
            }
        };
        let media = MediaPort {
            port: ports.0,
            prefer: None,
        };
        let neg = match io.legs.accept(at.leg, media, false) {
            Ok(n) => n,
            Err(cause) => {
                io.env.close(id);
                self.record_refusal(now, at, Disposition::Failed, cause);
                return None;
            }
        };
        self.next_call += 1;
        if let Some(neg) = &neg {
            io.env.configure(id, Side::Caller, neg);
        }
        self.legs.insert(at.leg, (id, Side::Caller));
        self.calls.insert(
            id,
            Call {
                id,
                phase: Phase::Ringing,
                caller: at.caller.to_owned(),
                caller_name,
                dialled: at.dialled.to_owned(),
                callee: callee.clone(),
                start: now,
                answered: None,
                source_ip: at.source,
                dest_ip: None,
                reference: at.reference.to_owned(),
                a: at.leg,
                a_answered: false,
                b: None,
                ports,
                prefer: neg.map(|n| n.codec),
                rings: Vec::new(),
                unconfirmed: Vec::new(),
                held_by: None,
                external: None,
                emergency: false,
                routes: VecDeque::new(),
                inbound: None,
                forwarded_by: None,
                ring_deadline: None,
                early_media: false,
                target: Target::Extension(callee),
                hops: Vec::new(),
                transfer: None,
                transferred_to: None,
                originated: false,
                pending: None,
                closing: None,
            },
        );
        Some(id)
    }

    /// A callee leg rings or sends early media: the caller hears of it.
    fn progress(
        &mut self,
        leg: LegId,
        ringing: bool,
        media: Option<Negotiated>,
        io: &mut Io<'_, '_>,
    ) {
        let Some(&(id, _)) = self.legs.get(&leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.transfer.as_ref().and_then(|t| t.leg) == Some(leg) {
            self.transfer_progress(id, media.as_ref(), io);
            return;
        }
        if call.phase != Phase::Ringing || !call.rings.iter().any(|r| r.leg == leg) {
            return;
        }
        // Early media: the first callee to send it is heard through the relay.
        if let (Some(neg), false) = (&media, call.early_media) {
            io.env.configure(id, Side::Callee, neg);
            call.early_media = true;
            if call.originated {
                // Click-to-dial: the far end's own sound replaces our ringback.
                io.env.stop_playback(id, Side::Caller);
            }
        }
        let early = call.early_media;
        // Click-to-dial: the caller has answered already and hears early media
        // through the relay.
        if !call.originated {
            io.legs.progress(call.a, ringing && media.is_none(), early);
        }
    }

    fn answered(
        &mut self,
        now: Instant,
        leg: LegId,
        media: Negotiated,
        peer: IpAddr,
        io: &mut Io<'_, '_>,
    ) {
        let Some(&(id, side)) = self.legs.get(&leg) else {
            io.legs.hang_up(leg);
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.transfer.as_ref().and_then(|t| t.leg) == Some(leg) {
            self.transfer_answered(id, leg, media, peer, io);
            return;
        }
        if call.phase == Phase::Originating && leg == call.a {
            self.originator_answered(now, id, media, peer, io);
            return;
        }
        let Some(i) = call.rings.iter().position(|r| r.leg == leg) else {
            return;
        };
        if call.phase != Phase::Ringing || call.b.is_some() {
            // The call moved on while this one answered.
            call.rings.remove(i);
            self.legs.remove(&leg);
            io.legs.hang_up(leg);
            return;
        }
        io.env.configure(id, side, &media);
        let ring = call.rings.remove(i);
        let connected = call.external.clone().map(|(route, number)| {
            (
                route,
                number,
                call.emergency,
                call.caller.clone(),
                call.reference.clone(),
            )
        });
        call.dest_ip = Some(peer);
        call.callee = ring.ext;
        call.b = Some(leg);
        // The others stop ringing.
        self.stop_rings(id, io);
        if let Some((route, number, emergency, caller, reference)) = connected {
            self.external_connected(&route, &number, emergency, &caller, &reference, io);
        }
        self.answer_caller(now, id, io);
    }

    fn confirmed(&mut self, leg: LegId, media: Option<Negotiated>, io: &mut Io<'_, '_>) {
        let Some(&(id, side)) = self.legs.get(&leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(neg) = &media {
            io.env.configure(id, side, neg);
        }
        call.unconfirmed.retain(|l| *l != leg);
        if call.unconfirmed.is_empty() && call.phase == Phase::Answering {
            call.phase = Phase::Up;
            io.env.set_active(id, true);
        }
    }

    fn leg_failed(&mut self, now: Instant, leg: LegId, cause: Cause, io: &mut Io<'_, '_>) {
        let Some((id, _)) = self.legs.remove(&leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.transfer.as_ref().and_then(|t| t.leg) == Some(leg) {
            self.transfer_failed(id, cause, io);
            return;
        }
        if call.originated && leg == call.a {
            self.fail_call(now, id, failure(cause), io);
            return;
        }
        if let Some(r) = call.rings.iter_mut().find(|r| r.leg == leg) {
            if let (CauseKind::Balance, Some((trunk, _))) = (cause.kind, &call.external) {
                external::balance_refused(trunk, io);
            }
            r.failed = Some(cause);
            self.maybe_all_failed(now, id, io);
        }
    }

    fn hung_up(&mut self, now: Instant, leg: LegId, gone: Gone, io: &mut Io<'_, '_>) {
        let Some(&(id, side)) = self.legs.get(&leg) else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.closing.is_some() && call.a == leg {
            // The user hung up on the failure tone: the call ends as it failed.
            self.legs.remove(&leg);
            self.failure_tone_over(now, id, Some(leg), io);
            return;
        }
        if call.a != leg && call.b != Some(leg) {
            // A ringing or transfer leg gave up by itself.
            let cause = Cause::new(CauseKind::Unavailable);
            self.leg_failed(now, leg, cause, io);
            return;
        }
        self.legs.remove(&leg);
        let end = match gone {
            Gone::Cancelled(why) => End {
                disposition: Disposition::Cancelled,
                reason: Some(why.to_owned()),
                cause: Some(Cause::new(CauseKind::Cancelled)),
                hangup: None,
                done: Some(leg),
            },
            Gone::Normal => End {
                hangup: Some(match side {
                    Side::Caller => Hangup::Caller,
                    Side::Callee => Hangup::Callee,
                }),
                done: Some(leg),
                ..End::answered(None, None)
            },
            Gone::Lost(why) => End {
                done: Some(leg),
                ..End::answered(Some(&why), Some(Hangup::System))
            },
            Gone::Broken(why) => End {
                disposition: Disposition::Failed,
                done: Some(leg),
                ..End::answered(Some(&why), Some(Hangup::System))
            },
        };
        self.end_call(now, id, end, io);
    }

    /// When every leg of the current round has failed while ringing: forward on
    /// busy, ring the next member of an ordered group, or give the caller the most
    /// telling of the causes (declined, then busy, then the most specific).
    fn maybe_all_failed(&mut self, now: Instant, id: CallId, io: &mut Io<'_, '_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase != Phase::Ringing || call.rings.iter().any(|r| r.failed.is_none()) {
            return;
        }
        let best = call
            .rings
            .iter()
            .filter_map(|r| r.failed.clone())
            .filter(|c| !matches!(c.kind, CauseKind::NoAnswer | CauseKind::Cancelled))
            .min_by_key(|c| c.kind);
        let cause = best.unwrap_or_else(|| Cause::new(CauseKind::Unavailable));
        let busy = matches!(cause.kind, CauseKind::Busy | CauseKind::Declined);
        let next = match call.target.clone() {
            Target::Extension(n) => match io.env.extension(&n).and_then(|p| p.forward_busy) {
                Some(t) if busy => self.forward(now, id, &t, io),
                _ => Err(failure(cause)),
            },
            Target::Trunk if call.emergency => {
                let number = call.callee.clone();
                return self.next_emergency_route(now, id, &number, Some(cause), io);
            }
            Target::Trunk | Target::Feature => Err(failure(cause)),
            Target::Group { .. } => self.advance_group(now, id, io).map_err(|e| {
                if busy && e.0.kind == CauseKind::Unavailable {
                    failure(cause)
                } else {
                    e
                }
            }),
        };
        if let Err(f) = next {
            self.fail_call(now, id, f, io);
        }
    }

    /// Rings `number` (an extension or a ring group) for call `id`, following its
    /// forwarding; a dead end refuses the caller and ends the call.
    fn route_to(&mut self, now: Instant, id: CallId, number: &str, io: &mut Io<'_, '_>) {
        if let Err(f) = self.try_route(now, id, number, io) {
            self.fail_call(now, id, f, io);
        }
    }

    fn try_route(
        &mut self,
        now: Instant,
        id: CallId,
        number: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Failure> {
        let Some(call) = self.calls.get_mut(&id) else {
            return Ok(());
        };
        if call.hops.len() >= MAX_HOPS || call.hops.iter().any(|h| h == number) {
            return Err((
                Cause::with(CauseKind::Loop, "forwarding loop"),
                Disposition::Failed,
            ));
        }
        call.hops.push(number.to_owned());
        call.callee = number.to_owned();
        if let Some(group) = io.env.ring_group(number) {
            call.target = Target::Group { group, next: 0 };
            return self.advance_group(now, id, io);
        }
        let Some(p) = io.env.extension(number).filter(|p| p.enabled) else {
            return Err((Cause::new(CauseKind::NotFound), Disposition::Failed));
        };
        call.target = Target::Extension(number.to_owned());
        if let Some(t) = &p.forward_always {
            return self.forward(now, id, t, io);
        }
        if p.dnd {
            return match &p.forward_busy {
                Some(t) => self.forward(now, id, t, io),
                None => Err((
                    Cause::with(CauseKind::Busy, "do not disturb"),
                    Disposition::Busy,
                )),
            };
        }
        let ring_time = match p.forward_noanswer {
            Some(_) => Duration::from_secs(u64::from(p.noanswer_secs)),
            None => self.cfg.ring_timeout,
        };
        if self.ring(now, id, &[number.to_owned()], ring_time, io) == 0 {
            // Nothing reachable: where an unanswered call would go, else unavailable.
            return match p.forward_noanswer.or(p.forward_busy) {
                Some(t) => self.forward(now, id, &t, io),
                None => Err((Cause::new(CauseKind::Unavailable), Disposition::NoAnswer)),
            };
        }
        Ok(())
    }

    fn forward(
        &mut self,
        now: Instant,
        id: CallId,
        target: &ForwardTarget,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Failure> {
        match target {
            ForwardTarget::Internal(n) => self.try_route(now, id, n, io),
            // Checked per call: the installer may have forbidden it since the forward
            // was set (forwarding out costs money, DOMAIN.md).
            ForwardTarget::External(n) => {
                // The forwarding party: the extension or group being routed.
                let by = self
                    .calls
                    .get(&id)
                    .map(|c| c.callee.clone())
                    .unwrap_or_default();
                if !io.env.external_forwarding_allowed_for(&by) {
                    return Err((
                        Cause::with(
                            CauseKind::Forbidden,
                            "forwarding to external numbers is not allowed",
                        ),
                        Disposition::Blocked,
                    ));
                }
                self.forward_out(now, id, &by, n, io)
            }
        }
    }

    /// Rings the next part of a ring group: all members at once the first time for a
    /// simultaneous group, the next member with devices for an ordered one; then the
    /// group's no-answer target; then unavailable.
    fn advance_group(
        &mut self,
        now: Instant,
        id: CallId,
        io: &mut Io<'_, '_>,
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
                        Some(t) => self.forward(now, id, &t, io),
                        None => Err((
                            Cause::with(CauseKind::Unavailable, "nobody in the group answered"),
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
                .filter(|m| io.env.extension(m).is_some_and(|p| p.enabled && !p.dnd))
                .collect();
            if self.ring(now, id, &members, ring_time, io) > 0 {
                return Ok(());
            }
        }
    }

    /// Starts a new routing round: stops what still rings from the last one and rings
    /// every extension of `exts` as a leg of its own. Returns the legs started.
    fn ring(
        &mut self,
        now: Instant,
        id: CallId,
        exts: &[String],
        ring_time: Duration,
        io: &mut Io<'_, '_>,
    ) -> usize {
        self.stop_rings(id, io);
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        let from = Party {
            number: call.caller.clone(),
            name: call.caller_name.clone(),
        };
        let media = MediaPort {
            port: call.ports.1,
            prefer: call.prefer,
        };
        for ext in exts {
            let target = RingTarget::Extension(ext.clone());
            if let Ok(leg) = io.legs.ring(&target, &from, media) {
                self.legs.insert(leg, (id, Side::Callee));
                call.rings.push(Ring {
                    leg,
                    ext: ext.clone(),
                    failed: None,
                });
            }
        }
        if call.rings.is_empty() {
            return 0;
        }
        call.ring_deadline = Some(now + ring_time);
        call.rings.len()
    }

    /// Sends the call out through `target` (a trunk or the GSM gateway) for `number`
    /// (E.164 or emergency), on route `route`. Emergency calls ring as long as it takes.
    fn ring_trunk(
        &mut self,
        now: Instant,
        id: CallId,
        target: RingTarget,
        route: &str,
        number: &str,
        io: &mut Io<'_, '_>,
    ) {
        if let Err(cause) = self.try_ring_out(now, id, &target, route, number, io) {
            self.fail_call(now, id, failure(cause), io);
        }
    }

    /// Rings `target` as the call's only callee leg.
    fn try_ring_out(
        &mut self,
        now: Instant,
        id: CallId,
        target: &RingTarget,
        route: &str,
        number: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Cause> {
        self.stop_rings(id, io);
        let Some(call) = self.calls.get_mut(&id) else {
            return Ok(());
        };
        call.external = Some((route.to_owned(), number.to_owned()));
        call.target = Target::Trunk;
        let from = Party {
            number: call.caller.clone(),
            name: call.caller_name.clone(),
        };
        let media = MediaPort {
            port: call.ports.1,
            prefer: call.prefer,
        };
        let leg = io.legs.ring(target, &from, media)?;
        self.legs.insert(leg, (id, Side::Callee));
        call.rings.push(Ring {
            leg,
            ext: number.to_owned(),
            failed: None,
        });
        call.ring_deadline = (!call.emergency).then(|| now + self.cfg.ring_timeout);
        Ok(())
    }

    /// The ring time of the current round is over.
    fn ring_timeout(&mut self, now: Instant, id: CallId, io: &mut Io<'_, '_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let no_answer = || {
            (
                Cause::with(CauseKind::NoAnswer, "no answer"),
                Disposition::NoAnswer,
            )
        };
        let next = match call.target.clone() {
            Target::Extension(n) => match io.env.extension(&n).and_then(|p| p.forward_noanswer) {
                Some(t) => self.forward(now, id, &t, io),
                None => Err(no_answer()),
            },
            Target::Group { .. } => self.advance_group(now, id, io),
            Target::Trunk | Target::Feature => Err(no_answer()),
        };
        if let Err(f) = next {
            self.fail_call(now, id, f, io);
        }
    }

    /// The callee side is settled: the caller is answered.
    fn answer_caller(&mut self, now: Instant, id: CallId, io: &mut Io<'_, '_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.answered = Some(now);
        call.ring_deadline = None;
        if call.originated {
            // The caller's phone answered before the number was dialled; it heard
            // ringback (or early media) until now.
            call.phase = Phase::Up;
            if !call.early_media {
                io.env.stop_playback(id, Side::Caller);
            }
            io.env.set_active(id, true);
            return;
        }
        call.phase = Phase::Answering;
        call.a_answered = true;
        call.unconfirmed.push(call.a);
        io.legs.answer(call.a);
    }

    /// Stops every leg still ringing for call `id`.
    fn stop_rings(&mut self, id: CallId, io: &mut Io<'_, '_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        for r in call.rings.drain(..) {
            if r.failed.is_none() {
                io.legs.hang_up(r.leg);
            }
            self.legs.remove(&r.leg);
        }
    }

    /// Refuses the caller with `f` and ends the call.
    fn fail_call(&mut self, now: Instant, id: CallId, f: Failure, io: &mut Io<'_, '_>) {
        let Some(f) = self.failure_tone(now, id, f, io) else {
            return;
        };
        let (cause, disposition) = f;
        let end = End {
            disposition,
            reason: None,
            cause: Some(cause),
            hangup: None,
            done: None,
        };
        self.end_call(now, id, end, io);
    }

    /// Ends a call on every leg but `end.done`: refuses the caller if it was not
    /// answered, stops what rings, hangs up the rest; closes media; emits the record.
    fn end_call(&mut self, now: Instant, id: CallId, end: End, io: &mut Io<'_, '_>) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if call.emergency {
            self.emergency_ended(&call, &end, io);
        }
        for leg in call.all_legs() {
            if Some(leg) == end.done || self.legs.get(&leg).is_none_or(|(c, _)| *c != id) {
                continue;
            }
            if leg == call.a && !call.a_answered && !call.originated {
                let cause = end
                    .cause
                    .clone()
                    .unwrap_or_else(|| Cause::new(CauseKind::Failed));
                io.legs.reject(leg, &cause);
            } else if call
                .rings
                .iter()
                .any(|r| r.leg == leg && r.failed.is_some())
            {
                // Already over.
            } else {
                io.legs.hang_up(leg);
            }
        }
        self.legs.retain(|_, (c, _)| *c != id);
        io.env.close(id);
        let disposition = if call.answered.is_none() && end.disposition == Disposition::Answered {
            Disposition::Failed
        } else {
            end.disposition
        };
        self.ended.push_back(CallSummary {
            id,
            sip_call_id: call.reference,
            caller: call.caller,
            caller_name: call.caller_name,
            dialled: call.dialled,
            normalised: match (&call.external, &call.inbound) {
                (Some((_, n)), _) => Some(n.clone()),
                (None, Some((_, caller))) => caller.clone(),
                (None, None) => None,
            },
            // A forwarded call is in the forwarding party's call log; the target it
            // reached is the normalised number.
            destination: Some(call.forwarded_by.clone().unwrap_or(call.callee)),
            direction: match (&call.external, &call.inbound) {
                (Some(_), _) => CallDirection::Outbound,
                (None, Some(_)) => CallDirection::Inbound,
                (None, None) => CallDirection::Internal,
            },
            route: Some(match (call.external, call.inbound) {
                (Some((trunk, _)), _) | (None, Some((trunk, _))) => trunk,
                (None, None) => "internal".to_owned(),
            }),
            source_ip: Some(call.source_ip),
            dest_ip: call.dest_ip,
            start: call.start,
            answer: call.answered,
            end: now,
            disposition,
            reason: end
                .reason
                .or_else(|| call.transferred_to.map(|t| format!("transferred to {t}"))),
            cause: if call.answered.is_some() {
                None
            } else {
                end.cause
            },
            sip_status: None,
            hangup: end.hangup,
            forwarded_by: call.forwarded_by,
        });
    }

    /// A call refused before it had state still leaves a record.
    fn record_refusal(
        &mut self,
        now: Instant,
        at: &Attempt<'_>,
        disposition: Disposition,
        cause: Cause,
    ) {
        let id = self.allocate_id();
        self.ended.push_back(CallSummary {
            id,
            sip_call_id: at.reference.to_owned(),
            caller: at.caller.to_owned(),
            caller_name: None,
            dialled: at.dialled.to_owned(),
            normalised: None,
            destination: None,
            direction: if at.trunk.is_some() {
                CallDirection::Inbound
            } else {
                CallDirection::Internal
            },
            route: at.trunk.map(str::to_owned),
            source_ip: Some(at.source),
            dest_ip: None,
            start: now,
            answer: None,
            end: now,
            disposition,
            reason: None,
            cause: Some(cause),
            sip_status: None,
            hangup: None,
            forwarded_by: None,
        });
    }
}

/// How a call ends.
struct End {
    disposition: Disposition,
    reason: Option<String>,
    cause: Option<Cause>,
    hangup: Option<Hangup>,
    /// The leg that ended by itself (it gets no hang-up).
    done: Option<LegId>,
}

impl End {
    fn answered(reason: Option<&str>, hangup: Option<Hangup>) -> Self {
        Self {
            disposition: Disposition::Answered,
            reason: reason.map(str::to_owned),
            cause: None,
            hangup,
            done: None,
        }
    }
}

/// The cause and record outcome of a dial-plan refusal.
fn refused(r: &Refusal) -> Failure {
    match r {
        Refusal::Incomplete | Refusal::Invalid { .. } => (
            Cause::with(CauseKind::Incomplete, r.reason()),
            Disposition::Failed,
        ),
        Refusal::Unknown => (
            Cause::with(CauseKind::NotFound, r.reason()),
            Disposition::Failed,
        ),
        Refusal::Blocked { .. } | Refusal::NotAllowed { .. } => (
            Cause::with(CauseKind::Forbidden, r.reason()),
            Disposition::Blocked,
        ),
    }
}

/// Ordinary calls over GSM need the installer's confirmation (read per call).
fn gsm_confirmed(io: &Io<'_, '_>) -> Result<(), Failure> {
    if io.env.gsm_gateway_confirmed() {
        return Ok(());
    }
    Err((
        Cause::with(
            CauseKind::Forbidden,
            "GSM gateway use not confirmed (pbxctl gsm confirm-gateway-use)",
        ),
        Disposition::Failed,
    ))
}

/// The record's outcome for a cause.
fn failure(cause: Cause) -> Failure {
    let disposition = match cause.kind {
        CauseKind::Busy | CauseKind::Declined => Disposition::Busy,
        // The store's vocabulary: nobody took the call.
        CauseKind::NoAnswer | CauseKind::Unavailable => Disposition::NoAnswer,
        _ => Disposition::Failed,
    };
    (cause, disposition)
}

/// The directory seen as the dial plan's number plan.
struct PlanView<'a>(&'a dyn CallServices);

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
