//! Outgoing legs: the INVITEs we send. An extension is one leg whatever the number of
//! its phones: one INVITE (fork) per registered contact, in parallel; the first to
//! answer wins, the others are cancelled, and a late answer is ACKed and hung up. A
//! trunk call is one INVITE to the trunk.

use std::time::Instant;

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Method, Uri};
use pbx_sip::transaction::TransactionKey;

use super::dialog::{our_contact, our_via, Dialog};
use super::{
    cause, quote, CallOutput, ClientRole, Fork, ForkState, Leg, Phase, Role, SipLegs, Uac, ALLOW,
};
use crate::call::{Cause, CauseKind, LegEvent, LegId, MediaPort, Party, RingTarget};
use crate::media::sdp::{self, Origin, Sdp};
use crate::registrar::{Flow, Registrar};

impl SipLegs {
    /// A new outgoing leg from `from` to `target` with our media on `media`.
    pub(super) fn ring(
        &mut self,
        now: Instant,
        registrar: &Registrar,
        target: &RingTarget,
        from: &Party,
        media: MediaPort,
    ) -> Result<LegId, Cause> {
        let realm = registrar.config().realm.clone();
        let tag = self.ids.tag();
        let from_value = match &from.name {
            Some(n) => format!("\"{}\" <sip:{}@{realm}>;tag={tag}", quote(n), from.number),
            None => format!("<sip:{}@{realm}>;tag={tag}", from.number),
        };
        // (Request-URI, To, flow) per fork, and extra headers.
        let mut extra: Vec<(HeaderName, String)> = Vec::new();
        let mut from_value = from_value;
        let mut trunk_of = None;
        // Towards a trunk, Contact and SDP carry our public address when known, and the
        // offer follows the account's SRTP mode.
        let mut public = None;
        let mut srtp = None;
        let targets: Vec<(Uri, String, Flow)> = match target {
            RingTarget::Extension(ext) => {
                let aor = format!("{ext}@{realm}");
                registrar
                    .bindings()
                    .get(&aor, now)
                    .filter_map(|b| Uri::parse(&b.contact).ok().map(|u| (u, b.flow)))
                    .map(|(u, f)| (u, format!("<sip:{ext}@{realm}>"), f))
                    .collect()
            }
            RingTarget::Trunk {
                trunk,
                number,
                clir,
                identity,
            } => {
                // The account's number for this caller (never one it does not own),
                // else the SIP-ID; the provider takes it from P-Preferred-Identity.
                let user = identity.as_deref().unwrap_or(&trunk.user);
                let host = &trunk.host;
                from_value = match (&from.name, identity) {
                    (Some(n), Some(_)) => format!("\"{}\" <sip:{user}@{host}>;tag={tag}", quote(n)),
                    _ => format!("<sip:{user}@{host}>;tag={tag}"),
                };
                if identity.is_some() {
                    extra.push((
                        HeaderName::Other("P-Preferred-Identity".into()),
                        format!("<sip:{user}@{host}>"),
                    ));
                }
                // CLIR asks the provider to hide the caller (`Privacy: id`, RFC 3323)
                // and sends an anonymous From; the identity still goes in PPI.
                if *clir {
                    from_value =
                        format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={tag}");
                    extra.push((HeaderName::Other("Privacy".into()), "id".into()));
                }
                trunk_of = Some((trunk.name.clone(), trunk.auth.clone()));
                public = trunk.public;
                srtp = trunk.srtp;
                let uri = Uri::sip(Some(number), host, None);
                vec![(uri, format!("<sip:{number}@{host}>"), trunk.flow)]
            }
            RingTarget::Gsm { .. } => {
                return Err(Cause::with(CauseKind::Unavailable, "no GSM gateway"));
            }
        };
        let Some(first) = targets.first() else {
            return Err(Cause::new(CauseKind::Unavailable));
        };
        let id = self.new_leg_id();
        let call_id = self.ids.call_id();
        let mut local = self.local_media(first.2.local.ip(), media.port, media.prefer);
        if let Some(mode) = srtp {
            local.srtp = crate::media::sdp::LocalSrtp::new(mode);
        }
        let origin = Origin::new(self.ids.sdp_session());
        let mut forks = Vec::new();
        for (uri, to, flow) in targets {
            let mut l = local.clone();
            l.addr = public.map_or(flow.local.ip(), |p| p.ip());
            let contact_flow = Flow {
                local: public.unwrap_or(flow.local),
                ..flow
            };
            let mut b = MessageBuilder::request(Method::Invite, uri)
                .header(
                    HeaderName::Via,
                    our_via(flow, &self.ids.branch()).to_string(),
                )
                .header(HeaderName::MaxForwards, "70")
                .header(HeaderName::From, from_value.clone())
                .header(HeaderName::To, to)
                .header(HeaderName::CallId, call_id.clone())
                .header(HeaderName::CSeq, "1 INVITE")
                .header(HeaderName::Contact, our_contact(contact_flow))
                .header(HeaderName::Allow, ALLOW);
            for (name, value) in &extra {
                b = b.header(name.clone(), value.clone());
            }
            let invite = b.body("application/sdp", sdp::offer(&l, &origin)).build();
            let Ok(key) = TransactionKey::for_client_request(&invite) else {
                continue;
            };
            self.by_client_key
                .insert(key.clone(), ClientRole::Fork(id, forks.len()));
            self.out.push_back(CallOutput::Request {
                flow,
                request: invite.clone(),
            });
            forks.push(Fork {
                key,
                invite,
                flow,
                state: ForkState::Calling,
                cancel_pending: false,
                final_status: None,
                final_cause: None,
                trunk: trunk_of.clone(),
                challenged: false,
            });
        }
        if forks.is_empty() {
            return Err(Cause::new(CauseKind::Unavailable));
        }
        self.by_dialog.insert((call_id, tag), id);
        self.legs.insert(
            id,
            Leg {
                role: Role::Uac(Box::new(Uac {
                    forks,
                    ack: None,
                    early_media: false,
                })),
                phase: Phase::Early,
                dialog: None,
                local,
                origin,
                ping_at: None,
                refer: None,
                reinvite: None,
                public,
            },
        );
        Ok(id)
    }

    pub(super) fn fork_provisional(&mut self, id: LegId, i: usize, resp: &Message) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let early_phase = leg.phase == Phase::Early;
        let local = leg.local.clone();
        let Some(uac) = leg.uac_mut() else {
            return;
        };
        let Some(fork) = uac.forks.get_mut(i) else {
            return;
        };
        let mut cancel = false;
        if fork.state == ForkState::Calling {
            fork.state = ForkState::Ringing;
            cancel = fork.cancel_pending;
        }
        if cancel {
            self.cancel_fork(id, i);
            return;
        }
        if !early_phase || fork.state != ForkState::Ringing {
            return;
        }
        let status = resp.status().unwrap_or(180);
        // Early media: the callee's SDP in a 183 (or 180) is taken as its answer.
        let mut media = None;
        if !resp.body().is_empty() && !uac.early_media {
            let mut l = local;
            l.addr = fork.flow.local.ip();
            if let Some(neg) = Sdp::parse(resp.body())
                .ok()
                .and_then(|ans| sdp::accept_answer(&l, &ans).ok())
            {
                uac.early_media = true;
                media = Some(neg);
            }
        }
        self.events.push_back(LegEvent::Progress {
            leg: id,
            ringing: status != 183,
            media,
        });
    }

    pub(super) fn fork_answered(&mut self, now: Instant, id: LegId, i: usize, resp: &Message) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let answered = leg.dialog.clone();
        let local = leg.local.clone();
        let Some(uac) = leg.uac_mut() else {
            return;
        };
        let Some(fork) = uac.forks.get_mut(i) else {
            return;
        };
        let Some(dialog) = Dialog::as_uac(&fork.invite, resp, fork.flow) else {
            return;
        };
        let cseq = fork.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let ack = dialog.ack(cseq, &mut self.ids);
        if let Some(winner) = answered {
            if winner.remote_tag == dialog.remote_tag {
                // A retransmission of the winner's 2xx.
                self.out.push_back(CallOutput::Send {
                    flow: dialog.flow,
                    message: ack,
                });
                return;
            }
            // Another fork won: ACK, then hang this one up.
            fork.state = ForkState::Done;
            let (invite, flow) = (fork.invite.clone(), fork.flow);
            self.ack_and_bye(&invite, resp, flow);
            return;
        }
        let mut l = local;
        l.addr = fork.flow.local.ip();
        let answer = Sdp::parse(resp.body())
            .ok()
            .and_then(|a| sdp::accept_answer(&l, &a).ok());
        let Some(neg) = answer else {
            // A 2xx without a usable answer: complete the handshake, then end it.
            fork.state = ForkState::Done;
            fork.final_status = Some(488);
            let (invite, flow) = (fork.invite.clone(), fork.flow);
            self.ack_and_bye(&invite, resp, flow);
            self.maybe_leg_failed(now, id);
            return;
        };
        fork.state = ForkState::Answered;
        let peer = fork.flow.remote.ip();
        self.out.push_back(CallOutput::Send {
            flow: dialog.flow,
            message: ack.clone(),
        });
        uac.ack = Some(ack);
        let others: Vec<usize> = (0..uac.forks.len()).filter(|j| *j != i).collect();
        leg.dialog = Some(dialog);
        leg.phase = Phase::Up;
        // The other phones stop ringing.
        for j in others {
            self.cancel_fork(id, j);
        }
        self.start_pings(now, id);
        self.events.push_back(LegEvent::Answered {
            leg: id,
            media: neg,
            peer,
        });
    }

    pub(super) fn fork_failed(&mut self, now: Instant, id: LegId, i: usize, status: u16) {
        let Some(fork) = self
            .legs
            .get_mut(&id)
            .and_then(|l| l.uac_mut())
            .and_then(|u| u.forks.get_mut(i))
        else {
            return;
        };
        if fork.state == ForkState::Answered {
            return;
        }
        fork.state = ForkState::Done;
        fork.final_status = Some(status);
        self.maybe_leg_failed(now, id);
    }

    /// When every fork of an unanswered leg has failed: the leg fails with the most
    /// telling answer (sec. 16.7 step 6, simplified: 6xx, then busy, then the lowest
    /// 4xx).
    fn maybe_leg_failed(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.phase != Phase::Early {
            return;
        }
        let Some(uac) = leg.uac_mut() else {
            return;
        };
        if uac.forks.iter().any(|f| f.state != ForkState::Done) {
            return;
        }
        let finals: Vec<u16> = uac.forks.iter().filter_map(|f| f.final_status).collect();
        let best = finals
            .iter()
            .find(|s| **s >= 600)
            .or_else(|| finals.iter().find(|s| **s == 486))
            .or_else(|| {
                finals
                    .iter()
                    .filter(|s| (400..500).contains(*s) && **s != 408 && **s != 487)
                    .min()
            })
            .or_else(|| finals.iter().min())
            .copied();
        let cause = uac
            .forks
            .iter()
            .find(|f| f.final_status == best)
            .and_then(|f| f.final_cause.clone())
            .unwrap_or_else(|| cause::of_status(best.unwrap_or(480)));
        self.drop_leg(now, id);
        self.events.push_back(LegEvent::Failed { leg: id, cause });
    }

    /// Stops an outgoing leg: CANCELs what rings (or hangs up what answered); the leg
    /// is gone.
    pub(super) fn stop_uac(&mut self, now: Instant, id: LegId) {
        let Some((answered, n)) = self.legs.get(&id).map(|l| {
            let n = match &l.role {
                Role::Uac(u) => u.forks.len(),
                Role::Uas(_) => 0,
            };
            (l.dialog.is_some(), n)
        }) else {
            return;
        };
        if answered {
            self.send_bye(id);
        }
        for i in 0..n {
            self.cancel_fork(id, i);
        }
        self.drop_leg(now, id);
    }

    /// CANCELs one fork (sec. 9.1), or notes to do so once it has rung.
    pub(super) fn cancel_fork(&mut self, id: LegId, i: usize) {
        let Some(fork) = self
            .legs
            .get_mut(&id)
            .and_then(|l| l.uac_mut())
            .and_then(|u| u.forks.get_mut(i))
        else {
            return;
        };
        match fork.state {
            ForkState::Calling => fork.cancel_pending = true,
            ForkState::Ringing => {
                fork.state = ForkState::Done;
                fork.final_status.get_or_insert(487);
                let (flow, cancel) = (fork.flow, cancel_for(&fork.invite));
                self.send_other(flow, cancel);
            }
            ForkState::Answered | ForkState::Done => {}
        }
    }

    /// A fork of a gone leg answered: CANCEL it once it rings, end it if it answered
    /// anyway.
    pub(super) fn orphan_response(&mut self, key: &TransactionKey, status: u16, resp: &Message) {
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
    /// ACK it again if it is a leg's winning answer.
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
        let Some(id) = self
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
        let Some(leg) = self.legs.get(&id) else {
            return;
        };
        if let (Some(d), Role::Uac(uac)) = (&leg.dialog, &leg.role) {
            let Some(ack) = &uac.ack else {
                return;
            };
            if Some(d.remote_tag.as_str()) == to_tag.as_deref() {
                self.out.push_back(CallOutput::Send {
                    flow: d.flow,
                    message: ack.clone(),
                });
            }
        }
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
