//! Call transfer with REFER (RFC 3515), as IP phones do it: blind (Refer-To names a
//! number) and attended (Refer-To carries `Replaces`, RFC 3891, naming the
//! transferor's consultation call). The transferee keeps its leg and media port; the
//! transferor's side of the call is replaced by the target.

use std::time::Instant;

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Method, NameAddr, Uri};
use pbx_sip::transaction::TransactionKey;

use super::{
    dialog_mut, dialog_ref, CallContext, CallControl, CallId, CallOutput, ClientRole, Fork,
    ForkState, Phase, Side, Transfer, ALLOW,
};
use crate::call::dialog::{our_contact, our_via, Dialog};
use crate::dialplan::{self, Caller, Route};
use crate::media::sdp::{self, Sdp};

impl Side {
    /// The other side of the call.
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
}

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

impl CallControl {
    /// A REFER in an answered call from `side`. Returns the response to it.
    pub(super) fn handle_refer(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        req: &Message,
        ctx: &mut CallContext<'_>,
    ) -> Message {
        let reply = |status, reason: &str| MessageBuilder::response_to(req, status, reason).build();
        let Some(call) = self.calls.get(&id) else {
            return reply(481, "Call/Transaction Does Not Exist");
        };
        if call.phase != Phase::Up {
            return reply(491, "Request Pending");
        }
        if call.transfer.is_some() {
            return reply(491, "Request Pending: a transfer is in progress");
        }
        let refer_to = req
            .header(&HeaderName::Other("Refer-To".into()))
            .map(NameAddr::parse);
        let Some(Ok(refer_to)) = refer_to else {
            return reply(400, "Bad Request: missing or malformed Refer-To");
        };
        let replaces = refer_to
            .uri
            .headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| v.clone());
        let accepted = reply(202, "Accepted");
        match replaces {
            Some(r) => match parse_replaces(&r) {
                Some(r) => self
                    .attended(now, id, side, &r, ctx)
                    .map_or_else(|(status, reason)| reply(status, &reason), |()| accepted),
                None => reply(400, "Bad Request: malformed Replaces"),
            },
            None => {
                let target = refer_to.uri.user().unwrap_or("").to_owned();
                match self.blind(now, id, side, &target, ctx) {
                    Ok(()) => accepted,
                    Err((status, reason)) => reply(status, &reason),
                }
            }
        }
    }

    /// Blind transfer: ring `target` for the transferor's side.
    fn blind(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        target: &str,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), (u16, String)> {
        let Some(call) = self.calls.get(&id) else {
            return Err((481, "Call/Transaction Does Not Exist".into()));
        };
        // The transferor's own rights decide where it may transfer to.
        let transferor = match side {
            Side::Caller => call.caller.clone(),
            Side::Callee => call.callee.clone(),
        };
        let profile = ctx
            .services
            .extension(&transferor)
            .ok_or((403, "Forbidden: only extensions can transfer".to_owned()))?;
        let site = ctx.services.site();
        let route = {
            let plan = super::PlanView(&*ctx.services);
            let who = Caller {
                extension: &transferor,
                class: profile.class,
                clir_permanent: profile.clir,
            };
            dialplan::route(&who, target, &site, &plan)
        };
        let ext = match route {
            Ok(Route::Extension { number }) => number,
            Ok(_) => {
                return Err((
                    488,
                    "Not Acceptable Here: transfer only to extensions".into(),
                ))
            }
            Err(r) => return Err((r.sip_status(), r.reason())),
        };
        let realm = ctx.registrar.config().realm.clone();
        let aor = format!("{ext}@{realm}");
        let contacts: Vec<(Uri, crate::registrar::Flow)> = ctx
            .registrar
            .bindings()
            .get(&aor, now)
            .filter_map(|b| Uri::parse(&b.contact).ok().map(|u| (u, b.flow)))
            .collect();
        if contacts.is_empty() {
            return Err((480, "Temporarily Unavailable".into()));
        }
        // The target sees the transferee as the caller.
        let transferee = match side {
            Side::Caller => call.callee.clone(),
            Side::Callee => call.caller.clone(),
        };
        let local = match side {
            Side::Caller => call.a_local.clone(),
            Side::Callee => call.b_local.clone(),
        };
        let origin = crate::media::sdp::Origin::new(self.ids.sdp_session());
        let call_id = self.ids.call_id();
        let tag = self.ids.tag();
        let from = format!("<sip:{transferee}@{realm}>;tag={tag}");
        let mut forks = Vec::new();
        for (uri, flow) in contacts {
            let mut l = local.clone();
            l.addr = flow.local.ip();
            let invite = MessageBuilder::request(Method::Invite, uri)
                .header(
                    HeaderName::Via,
                    our_via(flow, &self.ids.branch()).to_string(),
                )
                .header(HeaderName::MaxForwards, "70")
                .header(HeaderName::From, from.clone())
                .header(HeaderName::To, format!("<sip:{ext}@{realm}>"))
                .header(HeaderName::CallId, call_id.clone())
                .header(HeaderName::CSeq, "1 INVITE")
                .header(HeaderName::Contact, our_contact(flow))
                .header(HeaderName::Allow, ALLOW)
                .body("application/sdp", sdp::offer(&l, &origin))
                .build();
            let Ok(key) = TransactionKey::for_client_request(&invite) else {
                continue;
            };
            self.by_client_key
                .insert(key.clone(), ClientRole::TransferFork(id, forks.len()));
            self.out.push_back(CallOutput::Request {
                flow,
                request: invite.clone(),
            });
            forks.push(Fork {
                ext: ext.clone(),
                round: 0,
                key,
                invite,
                flow,
                state: ForkState::Calling,
                cancel_pending: false,
                final_status: None,
            });
        }
        self.by_dialog.insert((call_id.clone(), tag), (id, side));
        if let Some(call) = self.calls.get_mut(&id) {
            call.transfer = Some(Transfer {
                side,
                target: ext,
                forks,
                from,
                call_id,
                deadline: Some(now + self.cfg.ring_timeout),
            });
        }
        self.notify(id, side, "SIP/2.0 100 Trying", false);
        Ok(())
    }

    /// A response to one of a blind transfer's INVITEs.
    pub(super) fn transfer_response(
        &mut self,
        now: Instant,
        id: CallId,
        i: usize,
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(status) = resp.status() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(t) = call.transfer.as_mut() else {
            // The transfer is over; a late answer is hung up.
            return;
        };
        let Some(fork) = t.forks.get_mut(i) else {
            return;
        };
        match status {
            100..=199 => {
                let mut cancel = false;
                if fork.state == ForkState::Calling {
                    fork.state = ForkState::Ringing;
                    cancel = fork.cancel_pending;
                }
                if cancel {
                    self.cancel_transfer_fork(id, i);
                }
            }
            200..=299 => {
                if fork.state == ForkState::Done {
                    let (invite, flow) = (fork.invite.clone(), fork.flow);
                    self.ack_and_bye(&invite, resp, flow);
                    return;
                }
                fork.state = ForkState::Answered;
                let side = t.side;
                let target = t.target.clone();
                let (invite, flow) = (fork.invite.clone(), fork.flow);
                self.transfer_answered(now, id, side, &target, &invite, resp, flow, ctx);
            }
            _ => {
                fork.state = ForkState::Done;
                fork.final_status = Some((status, resp.reason().unwrap_or("").to_owned()));
                if t.forks.iter().all(|f| f.state == ForkState::Done) {
                    let frag = format!("SIP/2.0 {status} {}", resp.reason().unwrap_or(""));
                    self.transfer_failed(id, &frag);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transfer_answered(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        target: &str,
        invite: &Message,
        resp: &Message,
        flow: crate::registrar::Flow,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(mut dialog) = Dialog::as_uac(invite, resp, flow) else {
            return;
        };
        let ack = dialog.ack(1, &mut self.ids);
        self.out.push_back(CallOutput::Send {
            flow,
            message: ack.clone(),
        });
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut local = match side {
            Side::Caller => call.a_local.clone(),
            Side::Callee => call.b_local.clone(),
        };
        local.addr = flow.local.ip();
        let neg = Sdp::parse(resp.body())
            .ok()
            .and_then(|a| sdp::accept_answer(&local, &a).ok());
        let Some(neg) = neg else {
            let bye = dialog.request(Method::Bye, &mut self.ids);
            self.send_other(flow, bye);
            self.transfer_failed(id, "SIP/2.0 488 Not Acceptable Here");
            return;
        };
        ctx.services.configure(id, side, &neg);
        // The other phones of the target stop ringing.
        let n = call.transfer.as_ref().map_or(0, |t| t.forks.len());
        for i in 0..n {
            self.cancel_transfer_fork(id, i);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.transfer = None;
        call.transferred_to = Some(target.to_owned());
        if side == Side::Callee {
            call.callee = target.to_owned();
            call.dest_ip = Some(flow.remote.ip());
        }
        self.replace_side(now, id, side, dialog, Some(ack));
    }

    /// The transferor's dialog gives way to `new`: it hears the final NOTIFY and a BYE.
    fn replace_side(
        &mut self,
        _now: Instant,
        id: CallId,
        side: Side,
        new: Dialog,
        ack: Option<Message>,
    ) {
        self.notify(id, side, "SIP/2.0 200 OK", true);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(slot) = dialog_mut(call, side) else {
            return;
        };
        let mut old = std::mem::replace(slot, new.clone());
        match ack {
            Some(a) => {
                call.acks.insert(side, a);
            }
            None => {
                call.acks.remove(&side);
            }
        }
        self.by_dialog
            .remove(&(old.call_id.clone(), old.local_tag.clone()));
        self.by_dialog
            .insert((new.call_id.clone(), new.local_tag.clone()), (id, side));
        let bye = old.request(Method::Bye, &mut self.ids);
        self.send_other(old.flow, bye);
    }

    /// Tells the transferor how its transfer goes (RFC 3515 sec. 2.4.5).
    fn notify(&mut self, id: CallId, side: Side, frag: &str, last: bool) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(d) = dialog_mut(call, side) else {
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

    fn transfer_failed(&mut self, id: CallId, frag: &str) {
        let side = match self.calls.get_mut(&id).and_then(|c| c.transfer.take()) {
            Some(t) => {
                self.by_dialog.remove(&(t.call_id.clone(), tag_of(&t.from)));
                for f in t.forks {
                    self.by_client_key.remove(&f.key);
                }
                t.side
            }
            None => return,
        };
        self.notify(id, side, frag, true);
    }

    pub(super) fn cancel_transfer_fork(&mut self, id: CallId, i: usize) {
        let Some(fork) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.transfer.as_mut())
            .and_then(|t| t.forks.get_mut(i))
        else {
            return;
        };
        if let Some((flow, cancel)) = super::cancel_of(fork) {
            self.send_other(flow, cancel);
        }
    }

    /// The transfer target did not answer in time.
    pub(super) fn transfer_timeout(&mut self, id: CallId) {
        let n = self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .map_or(0, |t| t.forks.len());
        for i in 0..n {
            self.cancel_transfer_fork(id, i);
        }
        self.transfer_failed(id, "SIP/2.0 408 Request Timeout");
    }

    /// Attended transfer: the transferor's consultation call (named by `Replaces`)
    /// gives its other party to this call, in place of the transferor.
    fn attended(
        &mut self,
        _now: Instant,
        id: CallId,
        side: Side,
        r: &Replaces,
        ctx: &mut CallContext<'_>,
    ) -> Result<(), (u16, String)> {
        let not_found = || (481, "Call/Transaction Does Not Exist: Replaces".to_owned());
        let (id2, side2) = *self
            .by_dialog
            .get(&(r.call_id.clone(), r.to_tag.clone()))
            .ok_or_else(not_found)?;
        if id2 == id {
            return Err((400, "Bad Request: Replaces names this call".into()));
        }
        let call2 = self.calls.get(&id2).ok_or_else(not_found)?;
        if call2.phase != Phase::Up
            || dialog_ref(call2, side2).is_none_or(|d| d.remote_tag != r.from_tag)
        {
            return Err(not_found());
        }
        let target_side = side2.other();
        let target = match target_side {
            Side::Caller => call2.caller.clone(),
            Side::Callee => call2.callee.clone(),
        };
        let Some(mut t_dialog) = dialog_ref(call2, target_side).cloned() else {
            return Err(not_found());
        };
        // Re-INVITE the target towards this call's port for the transferor's side.
        let call = self.calls.get_mut(&id).ok_or_else(not_found)?;
        let mut local = match side {
            Side::Caller => call.a_local.clone(),
            Side::Callee => call.b_local.clone(),
        };
        local.addr = t_dialog.flow.local.ip();
        let origin = match side {
            Side::Caller => &mut call.a_origin,
            Side::Callee => &mut call.b_origin,
        };
        origin.bump();
        let body = sdp::offer(&local, origin);
        let mut reinvite = t_dialog.request(Method::Invite, &mut self.ids);
        reinvite.set_header(HeaderName::ContentType, "application/sdp");
        reinvite.set_body(body);
        call.transfer = Some(Transfer {
            side,
            target: target.clone(),
            forks: Vec::new(),
            from: String::new(),
            call_id: String::new(),
            deadline: None,
        });
        // The target's dialog now belongs to this call (its CSeq moved on).
        if let Some(c2) = self.calls.get_mut(&id2) {
            if let Some(d) = dialog_mut(c2, target_side) {
                *d = t_dialog.clone();
            }
        }
        let Ok(key) = TransactionKey::for_client_request(&reinvite) else {
            return Err((500, "Server Internal Error".into()));
        };
        self.by_client_key.insert(
            key,
            ClientRole::ReInvite {
                call: id,
                from_call: id2,
                from_side: target_side,
            },
        );
        self.out.push_back(CallOutput::Request {
            flow: t_dialog.flow,
            request: reinvite,
        });
        self.notify(id, side, "SIP/2.0 100 Trying", false);
        let _ = ctx;
        Ok(())
    }

    /// The answer to the re-INVITE of an attended transfer's target, which is on
    /// `side2` of call `id2`.
    pub(super) fn reinvite_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        (id, id2, side2): (CallId, CallId, Side),
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(status) = resp.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        self.by_client_key.remove(key);
        let Some(t_dialog) = self
            .calls
            .get(&id2)
            .and_then(|c| dialog_ref(c, side2))
            .cloned()
        else {
            self.transfer_failed(id, "SIP/2.0 481 Call/Transaction Does Not Exist");
            return;
        };
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or(t_dialog.local_cseq);
        if status >= 300 {
            let frag = format!("SIP/2.0 {status} {}", resp.reason().unwrap_or(""));
            self.transfer_failed(id, &frag);
            return;
        }
        let ack = t_dialog.ack(cseq, &mut self.ids);
        self.out.push_back(CallOutput::Send {
            flow: t_dialog.flow,
            message: ack,
        });
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(side) = call.transfer.as_ref().map(|t| t.side) else {
            return;
        };
        let mut local = match side {
            Side::Caller => call.a_local.clone(),
            Side::Callee => call.b_local.clone(),
        };
        local.addr = t_dialog.flow.local.ip();
        let Some(neg) = Sdp::parse(resp.body())
            .ok()
            .and_then(|a| sdp::accept_answer(&local, &a).ok())
        else {
            self.transfer_failed(id, "SIP/2.0 488 Not Acceptable Here");
            return;
        };
        ctx.services.configure(id, side, &neg);
        let target = call.transfer.take().map(|t| t.target).unwrap_or_default();
        call.transferred_to = Some(target.clone());
        if side == Side::Callee {
            call.callee = target;
            call.dest_ip = Some(t_dialog.flow.remote.ip());
        }
        // The target's dialog moves into this call; the consultation call then ends
        // with a BYE to the transferor only (`hangup` names the side not to BYE).
        self.replace_side(now, id, side, t_dialog, None);
        let hangup = match side2 {
            Side::Caller => super::Hangup::Caller,
            Side::Callee => super::Hangup::Callee,
        };
        self.end_call(
            now,
            id2,
            super::Disposition::Answered,
            Some("transferred (attended)"),
            Some(200),
            Some(hangup),
            ctx,
        );
    }
}

fn tag_of(name_addr: &str) -> String {
    NameAddr::parse(name_addr)
        .ok()
        .and_then(|n| n.tag().map(str::to_owned))
        .unwrap_or_default()
}
