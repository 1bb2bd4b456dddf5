//! Incoming INVITEs: the caller's leg. The checks that are SIP's business (hops,
//! domain, digest authentication, required extensions, session interval, SDP syntax)
//! happen here; who may call whom is call control's. Then the leg is offered to call
//! control, which accepts it (our SDP answer, 100 Trying), tells it of progress
//! (180/183, reliably with 100rel), answers it (2xx until ACK) or rejects it.

use std::net::IpAddr;
use std::time::Instant;

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Scheme};
use pbx_sip::transaction::TransactionKey;

use super::dialog::{host_of, our_contact, Dialog};
use super::{cause, liveness, prack, CallOutput, Leg, Phase, Role, SipLegs, Uas, ALLOW};
use crate::call::{is_emergency, CallDirection, Cause, CauseKind, Disposition, Gone, LegEvent};
use crate::call::{CallSummary, LegId, MediaPort};
use crate::media::sdp::{self, LocalMedia, Negotiated, Origin, Sdp};
use crate::registrar::{Flow, Transport};

use super::calls::CallContext;

/// Seconds a caller turned away under overload is asked to wait (RFC 3261 sec. 21.5.4).
const OVERLOAD_RETRY_AFTER: u32 = 5;

/// A refusal before any leg exists.
pub(super) struct Early {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) warning: Option<String>,
    /// 420: the option tags we do not support.
    pub(super) unsupported: Option<String>,
    /// 422: our minimum session interval.
    pub(super) min_se: Option<u32>,
    /// 503 under overload: when to try again, seconds.
    pub(super) retry_after: Option<u32>,
    /// Whether the refusal leaves a call record.
    pub(super) record: bool,
}

impl Early {
    pub(super) fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            warning: None,
            unsupported: None,
            min_se: None,
            retry_after: None,
            record: true,
        }
    }

    /// A refusal that leaves no record (malformed or foreign requests).
    fn silent(status: u16, reason: &str) -> Option<Self> {
        let mut e = Self::new(status, reason);
        e.record = false;
        Some(e)
    }
}

impl SipLegs {
    /// Turns load shedding on or off (the shell's measure of how busy it is).
    pub fn set_overloaded(&mut self, on: bool) {
        self.overloaded = on;
    }

    /// Whether new calls are being turned away.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
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
        let Err(Some(early)) = self.new_leg(now, now_unix, &key, req, flow, ctx) else {
            return;
        };
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
        if early.record {
            self.record_refusal(now, req, flow.remote.ip(), &early);
        }
    }

    /// `Err(None)`: answered already (a challenge); `Err(Some)`: refuse with it.
    fn new_leg(
        &mut self,
        now: Instant,
        now_unix: u64,
        key: &TransactionKey,
        req: &Message,
        flow: Flow,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), Option<Early>> {
        let Some(ruri) = req.request_uri() else {
            return Err(Early::silent(400, "Bad Request"));
        };
        let dialled = ruri.user().unwrap_or("").to_owned();
        // Overload: new calls are turned away cheaply (before digest work), except
        // emergency calls, which always get a chance (DOMAIN.md).
        if self.overloaded && !is_emergency(&dialled) {
            let mut e = Early::new(503, "Service Unavailable: overloaded");
            e.retry_after = Some(OVERLOAD_RETRY_AFTER);
            // No record: writing one per refused call would add to the load.
            e.record = false;
            return Err(Some(e));
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            return Err(Early::silent(483, "Too Many Hops"));
        }
        // The provider, known by its registered flow or resolved addresses, is trusted
        // without digest; it addresses us by our Contact, not by our domain.
        let trunk_link = ctx.trunks.by_source(flow.remote);
        let (trunk_srtp, trunk_public) = trunk_link.map_or((None, None), |l| (l.srtp, l.public));
        let trunk = trunk_link.map(|l| l.name.clone());
        if !matches!(ruri.scheme(), Scheme::Sip | Scheme::Sips)
            || (trunk.is_none() && !ctx.registrar.serves_host(ruri.host()))
        {
            return Err(Early::silent(403, "Forbidden: domain not served here"));
        }
        // The caller is the From user, proven by digest (407 like a proxy would).
        let from = req
            .from_header()
            .map_err(|e| Early::silent(400, &format!("Bad Request: {e}")))?;
        let caller = from.uri.user().unwrap_or("").to_owned();
        if trunk.is_some() {
            // Trusted by address.
        } else if let Err(resp) = ctx.registrar.authenticate_request(
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
        if req.header(&HeaderName::Contact).is_none() {
            return Err(Early::silent(400, "Bad Request: INVITE without Contact"));
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
        let tag = self.ids.tag();
        let Some(mut dialog) = Dialog::as_uas(req, &tag, flow) else {
            return Err(Early::silent(400, "Bad Request: cannot form a dialog"));
        };
        // Towards a trunk behind NAT, the provider must reach us at the public address.
        if let Some(public) = trunk_public {
            dialog.local_contact = our_contact(Flow {
                local: public,
                ..flow
            });
        }
        let id = self.new_leg_id();
        let reference = dialog.call_id.clone();
        self.by_server_key.insert(key.clone(), id);
        self.by_dialog.insert((reference.clone(), tag), id);
        let local = trunk_local_media(
            self.local_media(flow.local.ip(), 0, None),
            trunk_srtp,
            trunk_public,
        );
        let origin = Origin::new(self.ids.sdp_session());
        let rseq = self.ids.sdp_session() as u32 & 0x7fff_ffff;
        self.legs.insert(
            id,
            Leg {
                role: Role::Uas(Box::new(Uas {
                    key: key.clone(),
                    invite: req.clone(),
                    flow,
                    trunk_srtp,
                    trunk_public,
                    late_offer: offer.is_none(),
                    offer,
                    sdp: Vec::new(),
                    pending_ok: None,
                    retransmit_at: None,
                    retransmit_every: self.cfg.t1,
                    ack_deadline: None,
                    rel100: prack::wants(req, "100rel"),
                    rseq,
                    reliable: None,
                    answered_reliably: false,
                    session,
                    session_deadline: None,
                })),
                phase: Phase::Early,
                dialog: Some(dialog),
                local,
                origin,
                ping_at: None,
                refer: None,
                reinvite: None,
                public: trunk_public,
            },
        );
        let _ = now;
        let event = match trunk {
            Some(trunk) => {
                let inbound = super::trunk::inbound(req);
                LegEvent::IncomingTrunk {
                    leg: id,
                    trunk,
                    called: inbound.called,
                    caller: inbound.caller,
                    name: inbound.name,
                    reference,
                    source: flow.remote.ip(),
                }
            }
            None => LegEvent::Incoming {
                leg: id,
                caller,
                dialled,
                reference,
                source: flow.remote.ip(),
            },
        };
        self.events.push_back(event);
        Ok(())
    }

    /// Call control takes the leg on: our answer to its offer (or our own offer), 100.
    pub(super) fn accept(
        &mut self,
        now: Instant,
        id: LegId,
        media: MediaPort,
        needs_offer: bool,
    ) -> Result<Option<Negotiated>, Cause> {
        let no_leg = || Cause::new(CauseKind::NoSuchCall);
        let (addr, trunk_srtp, trunk_public) = self
            .legs
            .get(&id)
            .and_then(|l| l.uas())
            .map(|u| (u.flow.local.ip(), u.trunk_srtp, u.trunk_public))
            .ok_or_else(no_leg)?;
        let local = trunk_local_media(
            self.local_media(addr, media.port, media.prefer),
            trunk_srtp,
            trunk_public,
        );
        let leg = self.legs.get_mut(&id).ok_or_else(no_leg)?;
        leg.local = local.clone();
        let Role::Uas(uas) = &mut leg.role else {
            return Err(no_leg());
        };
        let result = match &uas.offer {
            None if needs_offer => Err((
                Cause::with(CauseKind::Unacceptable, "pickup needs an SDP offer"),
                None,
            )),
            None => {
                uas.sdp = sdp::offer(&local, &leg.origin);
                Ok(None)
            }
            Some(offer) => match sdp::answer(offer, &local, &leg.origin) {
                Ok((body, neg)) => {
                    uas.sdp = body;
                    Ok(Some(neg))
                }
                Err(e) => Err((
                    Cause::with(CauseKind::Unacceptable, e.to_string()),
                    Some(sdp::warning_header(&e, &host_of(uas.flow.local.ip()))),
                )),
            },
        };
        match result {
            Ok(neg) => {
                let trying = MessageBuilder::response_to(&uas.invite, 100, "Trying").build();
                let key = uas.key.clone();
                self.out.push_back(CallOutput::Respond {
                    key,
                    response: trying,
                });
                Ok(neg)
            }
            Err((c, warning)) => {
                self.refuse(now, id, &c, warning);
                Err(c)
            }
        }
    }

    /// Tells the caller the call progresses (180, or 183 with our SDP for early media).
    pub(super) fn progress(&mut self, now: Instant, id: LegId, ringing: bool, early_media: bool) {
        let Some(leg) = self.legs.get(&id) else {
            return;
        };
        let (Some(uas), Some(d), Phase::Early) = (leg.uas(), leg.dialog.as_ref(), leg.phase) else {
            return;
        };
        let (code, reason) = if ringing && !early_media {
            (180, "Ringing")
        } else {
            (183, "Session Progress")
        };
        let mut b = MessageBuilder::response_to(&uas.invite, code, reason)
            .set_to_tag(&d.local_tag)
            .header(HeaderName::Contact, d.local_contact.clone());
        b = with_record_route(b, &uas.invite);
        // With a late offer our SDP is an offer, which belongs in the 2xx.
        if early_media && !uas.late_offer {
            b = b.body("application/sdp", uas.sdp.clone());
        }
        let response = b.build();
        self.send_provisional(now, id, response);
    }

    /// Answers the leg: 2xx with our SDP, retransmitted until the ACK.
    pub(super) fn answer(&mut self, now: Instant, id: LegId) {
        let session_headers = self.session_headers(id);
        let (t1, t2) = (self.cfg.t1, self.cfg.t2);
        let _ = t2;
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let Some((tag, contact)) = leg
            .dialog
            .as_ref()
            .map(|d| (d.local_tag.clone(), d.local_contact.clone()))
        else {
            return;
        };
        if leg.phase != Phase::Early {
            return;
        }
        leg.phase = Phase::Answering;
        let Role::Uas(uas) = &mut leg.role else {
            return;
        };
        let mut b = MessageBuilder::response_to(&uas.invite, 200, "OK")
            .set_to_tag(&tag)
            .header(HeaderName::Contact, contact)
            .header(HeaderName::Allow, ALLOW)
            .header(HeaderName::Supported, liveness::SUPPORTED);
        b = with_record_route(b, &uas.invite);
        for (name, value) in session_headers {
            b = b.header(name, value);
        }
        let ok = if uas.answered_reliably {
            b.build()
        } else {
            b.body("application/sdp", uas.sdp.clone()).build()
        };
        uas.reliable = None;
        self.out.push_back(CallOutput::Respond {
            key: uas.key.clone(),
            response: ok.clone(),
        });
        uas.pending_ok = Some(ok);
        if uas.flow.transport == Transport::Udp {
            uas.retransmit_every = t1;
            uas.retransmit_at = Some(now + t1);
        }
        uas.ack_deadline = Some(now + t1 * 64);
        self.session_refreshed(now, id);
    }

    /// Refuses an unanswered incoming leg with `cause`; the leg is gone.
    pub(super) fn refuse(&mut self, now: Instant, id: LegId, c: &Cause, warning: Option<String>) {
        let Some(leg) = self.legs.get(&id) else {
            return;
        };
        let (Some(uas), Some(d)) = (leg.uas(), leg.dialog.as_ref()) else {
            return;
        };
        if leg.phase != Phase::Early {
            self.send_bye(id);
            self.drop_leg(now, id);
            return;
        }
        let (status, phrase) = cause::status_line(c);
        let mut b =
            MessageBuilder::response_to(&uas.invite, status, &phrase).set_to_tag(&d.local_tag);
        if let Some(w) = warning.or_else(|| cause::warning(c)) {
            b = b.header(HeaderName::Other("Warning".into()), w);
        }
        self.out.push_back(CallOutput::Respond {
            key: uas.key.clone(),
            response: b.build(),
        });
        self.drop_leg(now, id);
    }

    /// A CANCEL for the INVITE transaction `invite_key` (already answered 200 by the
    /// endpoint when the INVITE exists). Returns whether the INVITE is known.
    pub fn handle_cancel(&mut self, now: Instant, invite_key: &TransactionKey) -> bool {
        let Some(id) = self.by_server_key.get(invite_key).copied() else {
            return false;
        };
        if self.legs.get(&id).is_some_and(|l| l.phase == Phase::Early) {
            self.refuse(now, id, &Cause::new(CauseKind::Cancelled), None);
            self.events.push_back(LegEvent::HungUp {
                leg: id,
                gone: Gone::Cancelled("cancelled by caller"),
            });
        }
        true
    }

    /// An ACK for our 2xx.
    pub fn handle_ack(&mut self, now: Instant, ack: &Message) {
        let Some(id) = self.dialog_of(ack) else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.phase != Phase::Answering || !leg.dialog.as_ref().is_some_and(|d| d.matches(ack)) {
            return;
        }
        let local = leg.local.clone();
        let Role::Uas(uas) = &mut leg.role else {
            return;
        };
        let mut media = None;
        if uas.late_offer {
            uas.late_offer = false;
            let neg = Sdp::parse(ack.body())
                .ok()
                .and_then(|a| sdp::accept_answer(&local, &a).ok());
            match neg {
                Some(neg) => media = Some(neg),
                None => {
                    // sec. 13.2.1: the ACK must carry the answer; without one there is
                    // no media to relay.
                    uas.pending_ok = None;
                    leg.phase = Phase::Up;
                    self.send_bye(id);
                    let why = "no usable SDP answer in the ACK".to_owned();
                    self.leg_gone(now, id, Gone::Broken(why));
                    return;
                }
            }
        }
        uas.pending_ok = None;
        uas.retransmit_at = None;
        uas.ack_deadline = None;
        leg.phase = Phase::Up;
        self.start_pings(now, id);
        self.events
            .push_back(LegEvent::Confirmed { leg: id, media });
    }

    /// 2xx retransmissions and the ACK deadline of one leg.
    pub(super) fn uas_timeout(&mut self, now: Instant, id: LegId) {
        self.prack_timeout(now, id);
        let t2 = self.cfg.t2;
        let Some(uas) = self.legs.get_mut(&id).and_then(|l| l.uas_mut()) else {
            return;
        };
        if uas.ack_deadline.is_some_and(|t| t <= now) {
            // sec. 13.3.1.4: no ACK within 64*T1 ends the dialog with a BYE.
            uas.ack_deadline = None;
            uas.pending_ok = None;
            self.send_bye(id);
            self.leg_gone(now, id, Gone::Lost("no ACK from caller".into()));
            return;
        }
        if uas.retransmit_at.is_some_and(|t| t <= now) {
            if let Some(ok) = &uas.pending_ok {
                self.out.push_back(CallOutput::Respond {
                    key: uas.key.clone(),
                    response: ok.clone(),
                });
            }
            uas.retransmit_every = (uas.retransmit_every * 2).min(t2);
            uas.retransmit_at = Some(now + uas.retransmit_every);
        }
    }

    /// A record for an INVITE refused before call control saw it.
    fn record_refusal(&mut self, now: Instant, req: &Message, source: IpAddr, early: &Early) {
        let caller = req
            .from_header()
            .ok()
            .and_then(|f| f.uri.user().map(str::to_owned))
            .unwrap_or_default();
        let dialled = req
            .request_uri()
            .and_then(|u| u.user().map(str::to_owned))
            .unwrap_or_default();
        self.refusals.push_back(CallSummary {
            id: 0,
            sip_call_id: req.call_id().unwrap_or("").to_owned(),
            caller,
            caller_name: None,
            dialled,
            normalised: None,
            destination: None,
            direction: CallDirection::Internal,
            route: None,
            source_ip: Some(source),
            dest_ip: None,
            start: now,
            answer: None,
            end: now,
            disposition: Disposition::Failed,
            reason: Some(early.reason.clone()),
            cause: None,
            sip_status: Some(early.status),
            hangup: None,
            forwarded_by: None,
        });
    }
}

/// Our media on a leg from a trunk: the account's SRTP mode instead of the global one, and
/// our public address in the SDP when the registrar told us one.
fn trunk_local_media(
    mut local: LocalMedia,
    srtp: Option<crate::media::SrtpMode>,
    public: Option<std::net::SocketAddr>,
) -> LocalMedia {
    if let Some(mode) = srtp {
        local.srtp = crate::media::sdp::LocalSrtp::new(mode);
    }
    if let Some(p) = public {
        local.addr = p.ip();
    }
    local
}

/// RFC 3261 sec. 12.1.1: responses that set up the dialog carry the INVITE's Record-Route
/// headers, in order, so the caller's route set goes through the proxies that asked
/// (a provider's Kamailio bridging UDP to our TLS flow, for one).
fn with_record_route(mut b: MessageBuilder, invite: &Message) -> MessageBuilder {
    for v in invite.header_all(&HeaderName::RecordRoute) {
        b = b.header(HeaderName::RecordRoute, v.to_owned());
    }
    b
}
