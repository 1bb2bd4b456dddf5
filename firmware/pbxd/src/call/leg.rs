//! Legs as call control sees them: one party of a call, whatever carries it (a SIP
//! dialog today; an analog port, the GSM module or the trunk tomorrow). Call control
//! reads [`LegEvent`]s and drives legs through [`Legs`]; it never sees the protocol
//! underneath, and each protocol maps [`Cause`]s to its own words (SIP statuses in
//! `sip::ua::cause`).

use std::net::IpAddr;

use crate::media::sdp::{Codec, Negotiated};

use super::trunk::TrunkTarget;

/// A leg's number within this process (never reused).
pub type LegId = u64;

/// Why a leg failed or is refused, in the call layer's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CauseKind {
    /// The party declined (a "reject" key).
    Declined,
    /// The party is busy (or on do-not-disturb).
    Busy,
    /// Not allowed: blocked range, outbound class, policy.
    Forbidden,
    /// The provider refuses outgoing calls for want of balance or credit (402).
    Balance,
    /// No such number.
    NotFound,
    /// Nobody took the call in time, or no phone is reachable now.
    Unavailable,
    /// The number lacks digits or is not a number.
    Incomplete,
    /// No common media (codecs, transport).
    Unacceptable,
    /// Forwarding went round in a circle.
    Loop,
    /// The request is malformed.
    Invalid,
    /// Another change is in progress; try again.
    Pending,
    /// The call or dialog named does not exist (any more).
    NoSuchCall,
    /// Rang until the ring time ran out.
    NoAnswer,
    /// The caller gave up.
    Cancelled,
    /// The box cannot take it now (no trunk, no media port, overload).
    Congestion,
    /// Anything else that went wrong.
    Failed,
}

/// A [`CauseKind`] with the words that explain it ("do not disturb", "blocked range
/// 0900: premium-rate service").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// What kind of failure.
    pub kind: CauseKind,
    /// Why, for people: reason phrases, warnings, call records.
    pub detail: Option<String>,
}

impl Cause {
    /// A cause without words.
    pub fn new(kind: CauseKind) -> Self {
        Self { kind, detail: None }
    }

    /// A cause with its explanation.
    pub fn with(kind: CauseKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
        }
    }
}

/// Who a call appears to come from, as shown to the called party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The calling number (an extension).
    pub number: String,
    /// The display name (`None`: none, or suppressed).
    pub name: Option<String>,
}

/// The media side a leg is bridged to: our relay port for it, and the codec to
/// offer first (the other side's, so that the relay need not transcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPort {
    /// Our RTP port for this leg.
    pub port: u16,
    /// The codec to prefer in our offer.
    pub prefer: Option<Codec>,
}

/// What a new outgoing leg rings.
// Built once per leg and borrowed: the size difference costs nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingTarget {
    /// Every reachable device of an extension.
    Extension(String),
    /// A number outside, through a trunk.
    Trunk {
        /// The trunk.
        trunk: TrunkTarget,
        /// E.164 with `+`, or the emergency number as dialled.
        number: String,
        /// Hide the caller (CLIR).
        clir: bool,
        /// The account's number (E.164) to present as caller ID (`From`,
        /// `P-Preferred-Identity`); `None`: the trunk's SIP-ID.
        identity: Option<String>,
    },
    /// A number through the GSM gateway (issue 7), e.g. an emergency call whose trunks
    /// all failed. Legs that cannot reach a gateway refuse it.
    Gsm {
        /// The number as dialled (110/112) or E.164.
        number: String,
    },
}

/// How a transfer requested on a leg is going (the requester hears of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// Taken on: the target is being reached.
    Accepted,
    /// Not taken on.
    Refused(Cause),
    /// The target answered: the requester's part is over.
    Done,
    /// The target could not be reached.
    Failed(Cause),
}

/// How a leg ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    /// Hung up normally.
    Normal,
    /// The caller gave up before the call was answered (the words say how).
    Cancelled(&'static str),
    /// The leg's peer vanished or broke its protocol after answering; the leg ended
    /// itself (the words go in the call record).
    Lost(String),
    /// The leg's set-up could not be completed (no media answer after all).
    Broken(String),
}

/// What a leg reports. Events about a leg the call layer has hung up do not come.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// A new incoming leg: someone (already authenticated) calls `dialled`.
    Incoming {
        /// The new leg.
        leg: LegId,
        /// The calling extension.
        caller: String,
        /// What was dialled.
        dialled: String,
        /// The protocol's reference for the call (SIP Call-ID), for the record.
        reference: String,
        /// Where the caller is.
        source: IpAddr,
    },
    /// A new incoming leg from a cloud trunk: the provider (trusted by its address)
    /// delivers a call to one of the account's numbers.
    IncomingTrunk {
        /// The new leg.
        leg: LegId,
        /// The trunk's name.
        trunk: String,
        /// The called number as the provider may have put it, most specific first
        /// (P-Called-Party-ID, Request-URI, To): the first that is one of the
        /// account's numbers is taken.
        called: Vec<String>,
        /// The caller's number as sent (`None`: anonymous or withheld).
        caller: Option<String>,
        /// The caller's display name, if sent and not withheld.
        name: Option<String>,
        /// The protocol's reference for the call (SIP Call-ID), for the record.
        reference: String,
        /// Where the INVITE came from.
        source: IpAddr,
    },
    /// An outgoing leg rings (`ringing`) or reports progress; with early media when
    /// the far end already sends audio.
    Progress {
        /// The leg.
        leg: LegId,
        /// Ringing (rather than other progress).
        ringing: bool,
        /// Early media negotiated on it.
        media: Option<Negotiated>,
    },
    /// An outgoing leg answered with `media`.
    Answered {
        /// The leg.
        leg: LegId,
        /// What it negotiated.
        media: Negotiated,
        /// Where the answering device is.
        peer: IpAddr,
    },
    /// An incoming leg we answered confirmed it; `media` is its answer when our answer
    /// carried the offer.
    Confirmed {
        /// The leg.
        leg: LegId,
        /// Media from a late answer.
        media: Option<Negotiated>,
    },
    /// An outgoing leg failed before answering.
    Failed {
        /// The leg.
        leg: LegId,
        /// Why.
        cause: Cause,
    },
    /// The leg ended.
    HungUp {
        /// The leg.
        leg: LegId,
        /// How.
        gone: Gone,
    },
    /// The leg's party changed its media (hold: our direction towards it stops
    /// sending; resume; a new address or codec).
    Renegotiated {
        /// The leg.
        leg: LegId,
        /// What it negotiated now.
        media: Negotiated,
    },
    /// The leg's party asks to be replaced by `target` (blind transfer).
    TransferRequested {
        /// The transferor's leg.
        leg: LegId,
        /// The number asked for.
        target: String,
    },
    /// The leg's party asks to be replaced by the other party of the call that leg
    /// `replaces` belongs to (attended transfer).
    ReplaceRequested {
        /// The transferor's leg in this call.
        leg: LegId,
        /// The transferor's leg in the consultation call.
        replaces: LegId,
    },
    /// A [`Legs::move_media`] finished.
    MediaMoved {
        /// The leg.
        leg: LegId,
        /// What it negotiated on its new port, or why it refused.
        result: Result<(Negotiated, IpAddr), Cause>,
    },
}

/// What call control can do with legs.
pub trait Legs {
    /// Takes an incoming leg on: answers its media offer on `media` (or prepares our
    /// offer when it made none, unless `needs_offer`) and tells the caller it is being
    /// dealt with. On error the leg has already been refused.
    fn accept(
        &mut self,
        leg: LegId,
        media: MediaPort,
        needs_offer: bool,
    ) -> Result<Option<Negotiated>, Cause>;
    /// Starts a new outgoing leg from `from` to `target` with media on `media`.
    /// `Err` when it cannot ring at all (no device reachable).
    fn ring(&mut self, target: &RingTarget, from: &Party, media: MediaPort)
        -> Result<LegId, Cause>;
    /// Tells an incoming leg's caller that the call progresses (ringing, or early
    /// media through the box).
    fn progress(&mut self, leg: LegId, ringing: bool, early_media: bool);
    /// Answers an incoming leg; [`LegEvent::Confirmed`] follows.
    fn answer(&mut self, leg: LegId);
    /// Refuses an incoming leg that is not answered; the leg is gone.
    fn reject(&mut self, leg: LegId, cause: &Cause);
    /// Ends a leg in whatever state (stops ringing, or hangs up); the leg is gone.
    fn hang_up(&mut self, leg: LegId);
    /// Moves an answered leg's media to `media` (another call's port);
    /// [`LegEvent::MediaMoved`] follows.
    fn move_media(&mut self, leg: LegId, media: MediaPort);
    /// Tells the leg that asked for a transfer how it goes.
    fn transfer_status(&mut self, leg: LegId, status: TransferStatus);
}
