//! Requests inside a leg's dialog (BYE, re-INVITE/UPDATE, PRACK, REFER, INFO,
//! OPTIONS) and what we send in one (re-INVITE to move media, NOTIFY about a transfer).
//!
//! Hold is answered by the box, not passed on: a re-INVITE is answered from the box's
//! side of the media and call control hears of the new direction. REFER (RFC 3515) is
//! parsed here, with `Replaces` (RFC 3891) resolved to the leg it names; whether and
//! where to transfer is call control's decision, which comes back as a
//! [`TransferStatus`].

use std::time::Instant;

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Method, NameAddr};
use pbx_sip::transaction::TransactionKey;

use super::dialog::host_of;
use super::{cause, CallOutput, ClientRole, Phase, Role, SipLegs, ALLOW};
use crate::call::{Cause, CauseKind, Gone, LegEvent, LegId, MediaPort, TransferStatus};
use crate::media::sdp::{self, Sdp};

/// `Replaces` (RFC 3891): the dialog named by the transferor, from its point of view.
struct Replaces {
    call_id: String,
    to_tag: String,
    from_tag: String,
}

fn parse_replaces(v: &str) -> Option<Replaces> {
    let mut parts = v.split(';');
    let call_id = parts.next()?.trim().to_owned();
    let (mut to_tag, mut from_tag) = (None, None);
    for p in parts {
        match p.trim().split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("to-tag") => to_tag = Some(v.to_owned()),
            Some((k, v)) if k.eq_ignore_ascii_case("from-tag") => from_tag = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(Replaces {
        call_id,
        to_tag: to_tag?,
        from_tag: from_tag?,
    })
}

impl SipLegs {
    /// A request with a To tag on server transaction `key`. Returns false if it
    /// belongs to no dialog of ours (the endpoint answers 481).
    pub fn handle_in_dialog(&mut self, now: Instant, key: &TransactionKey, req: &Message) -> bool {
        let Some(id) = self.dialog_of(req) else {
            return false;
        };
        let Some(method) = req.method().cloned() else {
            return false;
        };
        if method == Method::Ack {
            self.handle_ack(now, req);
            return true;
        }
        let Some(leg) = self.legs.get_mut(&id) else {
            return false;
        };
        let Some(dialog) = leg.dialog.as_mut() else {
            return false;
        };
        if !dialog.matches(req) {
            return false;
        }
        // Ordering per sec. 12.2.2: a lower CSeq than the last is out of order.
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        if cseq <= dialog.remote_cseq {
            self.respond(key, req, 500, "Server Internal Error: CSeq out of order");
            return true;
        }
        dialog.remote_cseq = cseq;
        let phase = leg.phase;
        let reinvite_pending = leg.reinvite.is_some();
        match method {
            Method::Bye => {
                self.respond(key, req, 200, "OK");
                if phase == Phase::Early {
                    // A BYE on the early dialog (sec. 15): the caller gave up.
                    self.refuse(now, id, &Cause::new(CauseKind::Cancelled), None);
                    let gone = Gone::Cancelled("caller hung up while ringing");
                    self.events.push_back(LegEvent::HungUp { leg: id, gone });
                } else {
                    self.leg_gone(now, id, Gone::Normal);
                }
            }
            // Glare (RFC 3261 sec. 14.2): our own re-INVITE on this dialog is pending.
            Method::Invite | Method::Update if reinvite_pending => {
                self.respond(key, req, 491, "Request Pending");
            }
            Method::Invite | Method::Update => {
                let mut resp = self.renegotiate(id, req);
                let uas = self.legs.get(&id).and_then(|l| l.uas()).is_some();
                if uas && resp.status() == Some(200) {
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
            Method::Refer => self.handle_refer(id, key, req),
            Method::Info | Method::Options => self.respond(key, req, 200, "OK"),
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

    fn respond(&mut self, key: &TransactionKey, req: &Message, status: u16, reason: &str) {
        let response = MessageBuilder::response_to(req, status, reason).build();
        self.out.push_back(CallOutput::Respond {
            key: key.clone(),
            response,
        });
    }

    /// Answers a re-INVITE or UPDATE from the box's side of the media; call control
    /// hears of what was negotiated (hold and resume, a new address).
    fn renegotiate(&mut self, id: LegId, req: &Message) -> Message {
        let Some(leg) = self.legs.get_mut(&id) else {
            return MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist")
                .build();
        };
        let Some(d) = leg.dialog.as_ref() else {
            return MessageBuilder::response_to(req, 491, "Request Pending").build();
        };
        let (flow, tag, contact) = (d.flow, d.local_tag.clone(), d.local_contact.clone());
        let local = leg.local_on(flow);
        let mut media = None;
        let body = if req.body().is_empty() {
            // No offer: ours goes in the 2xx, the answer comes in the ACK, which we
            // take as it comes (the relay latches on the peer's packets anyway).
            sdp::offer(&local, &leg.origin)
        } else {
            let offer = match Sdp::parse(req.body()) {
                Ok(o) => o,
                Err(e) => {
                    return MessageBuilder::response_to(req, 400, &format!("Bad Request: {e}"))
                        .build()
                }
            };
            leg.origin.bump();
            match sdp::answer(&offer, &local, &leg.origin) {
                Ok((body, neg)) => {
                    media = Some(neg);
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
        let mut b = MessageBuilder::response_to(req, 200, "OK");
        if matches!(leg.role, Role::Uas(_)) {
            b = b.set_to_tag(&tag);
        }
        let resp = b
            .header(HeaderName::Contact, contact)
            .header(HeaderName::Allow, ALLOW)
            .body("application/sdp", body)
            .build();
        if let Some(media) = media {
            self.events
                .push_back(LegEvent::Renegotiated { leg: id, media });
        }
        resp
    }

    /// A REFER: parsed here, decided by call control (its verdict answers the REFER).
    fn handle_refer(&mut self, id: LegId, key: &TransactionKey, req: &Message) {
        let reply = |s: &mut Self, status, reason: &str| s.respond(key, req, status, reason);
        let Some((phase, refer)) = self.legs.get(&id).map(|l| (l.phase, l.refer.is_some())) else {
            return reply(self, 481, "Call/Transaction Does Not Exist");
        };
        if phase != Phase::Up {
            return reply(self, 491, "Request Pending");
        }
        if refer {
            return reply(self, 491, "Request Pending: a transfer is in progress");
        }
        let refer_to = req
            .header(&HeaderName::Other("Refer-To".into()))
            .map(NameAddr::parse);
        let Some(Ok(refer_to)) = refer_to else {
            return reply(self, 400, "Bad Request: missing or malformed Refer-To");
        };
        let replaces = refer_to
            .uri
            .headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| v.clone());
        let event = match replaces {
            Some(r) => {
                let Some(r) = parse_replaces(&r) else {
                    return reply(self, 400, "Bad Request: malformed Replaces");
                };
                // The dialog named, from the transferor's side: our tag is its to-tag.
                let named = self
                    .by_dialog
                    .get(&(r.call_id.clone(), r.to_tag.clone()))
                    .copied()
                    .filter(|other| {
                        self.legs.get(other).is_some_and(|l| {
                            l.phase == Phase::Up
                                && l.dialog
                                    .as_ref()
                                    .is_some_and(|d| d.remote_tag == r.from_tag)
                        })
                    });
                let Some(named) = named else {
                    return reply(self, 481, "Call/Transaction Does Not Exist: Replaces");
                };
                LegEvent::ReplaceRequested {
                    leg: id,
                    replaces: named,
                }
            }
            None => LegEvent::TransferRequested {
                leg: id,
                target: refer_to.uri.user().unwrap_or("").to_owned(),
            },
        };
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.refer = Some((key.clone(), req.clone()));
        }
        self.events.push_back(event);
    }

    /// Call control's verdict on a transfer a leg asked for, and how it goes.
    pub(super) fn transfer_status(&mut self, id: LegId, status: TransferStatus) {
        match status {
            TransferStatus::Accepted => {
                if let Some((key, req)) = self.legs.get(&id).and_then(|l| l.refer.clone()) {
                    self.respond(&key, &req, 202, "Accepted");
                    self.notify(id, "SIP/2.0 100 Trying", false);
                }
            }
            TransferStatus::Refused(c) => {
                if let Some((key, req)) = self.legs.get_mut(&id).and_then(|l| l.refer.take()) {
                    let (status, phrase) = cause::status_line(&c);
                    self.respond(&key, &req, status, &phrase);
                }
            }
            TransferStatus::Done => {
                self.notify(id, "SIP/2.0 200 OK", true);
            }
            TransferStatus::Failed(c) => {
                let (status, phrase) = cause::status_line(&c);
                self.notify(id, &format!("SIP/2.0 {status} {phrase}"), true);
            }
        }
    }

    /// Tells the transferor how its transfer goes (RFC 3515 sec. 2.4.5).
    fn notify(&mut self, id: LegId, frag: &str, last: bool) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if last {
            leg.refer = None;
        }
        let Some(d) = leg.dialog.as_mut() else {
            return;
        };
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let mut req = d.request(Method::Notify, &mut self.ids);
        req.push_header(HeaderName::Other("Event".into()), "refer");
        req.push_header(HeaderName::Other("Subscription-State".into()), state);
        req.set_header(HeaderName::ContentType, "message/sipfrag;version=2.0");
        req.set_body(format!("{frag}\r\n").into_bytes());
        let flow = d.flow;
        self.send_other(flow, req);
    }

    /// Re-INVITEs an established leg towards another port of ours.
    pub(super) fn move_media(&mut self, id: LegId, media: MediaPort) {
        let local = self.legs.get(&id).and_then(|l| {
            let flow = l.dialog.as_ref()?.flow;
            let mut m = self.local_media(flow.local.ip(), media.port, media.prefer);
            // The leg keeps its address (public towards a trunk) and its SRTP policy
            // and key (the trunk's mode; the relay keeps its counters).
            m.addr = l.local_on(flow).addr;
            m.srtp = l.local.srtp.clone();
            Some(m)
        });
        let Some(local) = local else {
            self.events.push_back(LegEvent::MediaMoved {
                leg: id,
                result: Err(Cause::new(CauseKind::NoSuchCall)),
            });
            return;
        };
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        leg.local = local.clone();
        leg.origin.bump();
        let body = sdp::offer(&local, &leg.origin);
        let Some(d) = leg.dialog.as_mut() else {
            return;
        };
        let mut reinvite = d.request(Method::Invite, &mut self.ids);
        reinvite.set_header(HeaderName::ContentType, "application/sdp");
        reinvite.set_body(body);
        let flow = d.flow;
        let Ok(key) = TransactionKey::for_client_request(&reinvite) else {
            return;
        };
        leg.reinvite = Some(key.clone());
        self.by_client_key.insert(key, ClientRole::ReInvite(id));
        self.out.push_back(CallOutput::Request {
            flow,
            request: reinvite,
        });
    }

    /// The answer to our re-INVITE.
    pub(super) fn reinvite_response(&mut self, key: &TransactionKey, id: LegId, resp: &Message) {
        let Some(status) = resp.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        self.by_client_key.remove(key);
        if status >= 300 {
            self.reinvite_failed(id, status);
            return;
        }
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        leg.reinvite = None;
        let Some(d) = leg.dialog.as_ref() else {
            return;
        };
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or(d.local_cseq);
        let ack = d.ack(cseq, &mut self.ids);
        let flow = d.flow;
        let local = leg.local_on(flow);
        self.out.push_back(CallOutput::Send { flow, message: ack });
        let result = Sdp::parse(resp.body())
            .ok()
            .and_then(|a| sdp::accept_answer(&local, &a).ok())
            .map(|neg| (neg, flow.remote.ip()))
            .ok_or_else(|| Cause::new(CauseKind::Unacceptable));
        self.events
            .push_back(LegEvent::MediaMoved { leg: id, result });
    }

    /// Our re-INVITE was refused (or never answered).
    pub(super) fn reinvite_failed(&mut self, id: LegId, status: u16) {
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.reinvite = None;
        }
        self.events.push_back(LegEvent::MediaMoved {
            leg: id,
            result: Err(cause::of_status(status)),
        });
    }

    /// Ends a leg in any state; the leg is gone.
    pub(super) fn hang_up(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.get(&id) else {
            return;
        };
        match (&leg.role, leg.phase) {
            (Role::Uas(_), Phase::Early) => {
                self.refuse(now, id, &Cause::new(CauseKind::Cancelled), None);
            }
            (Role::Uas(_), _) => {
                self.send_bye(id);
                self.drop_leg(now, id);
            }
            (Role::Uac(_), _) => self.stop_uac(now, id),
        }
    }
}
