//! The SIP user agent and call control wired together: the endpoint hands SIP to
//! [`SipCalls`], which lets the user agent turn it into leg events and lets call
//! control act on them through the user agent's legs, until nothing is left to do.
//! Analog ports ([`PortLegs`]) join as legs of their own: commands go to whichever
//! layer owns the leg, and ringing an extension that is a port rings the port. The GSM
//! module's call ([`GsmLegs`]) is one more such leg: [`RingTarget::Gsm`] rings it.

use std::time::Instant;

use pbx_sip::message::Message;
use pbx_sip::transaction::TransactionKey;

use super::{cause, CallOutput, SipLegs};
use crate::call::{
    CallConfig, CallControl, CallId, CallServices, CallSummary, Cause, LegId, Legs, MediaPort,
    Party, RingTarget, Side, TransferStatus,
};
use crate::gsm::legs::{GsmLegs, GsmOutput};
use crate::gsm::GsmCallEvent;
use crate::line::legs::{PortLegs, PortOutput};
use crate::line::HookEvent;
use crate::media::sdp::Negotiated;
use crate::registrar::{Flow, Registrar};
use crate::trunk::TrunkLinks;

/// What the calls need from their surroundings for one input.
pub struct CallContext<'a> {
    /// Digest authentication and the location service.
    pub registrar: &'a mut Registrar,
    /// Extensions, settings and the RTP relay.
    pub services: &'a mut dyn CallServices,
    /// The cloud trunks' links (INVITEs from them are the provider's; calls go out
    /// through them).
    pub trunks: &'a TrunkLinks,
}

/// The user agent's legs as call control commands them, at `now`.
struct SipSide<'a> {
    ua: &'a mut SipLegs,
    ports: Option<&'a mut PortLegs>,
    gsm: Option<&'a mut GsmLegs>,
    registrar: &'a Registrar,
    now: Instant,
}

impl SipSide<'_> {
    /// The ports, if `leg` is theirs.
    fn port(&mut self, leg: LegId) -> Option<&mut PortLegs> {
        self.ports.as_deref_mut().filter(|p| p.owns(leg))
    }

    /// The GSM module, if `leg` is its.
    fn gsm(&mut self, leg: LegId) -> Option<&mut GsmLegs> {
        self.gsm.as_deref_mut().filter(|g| g.owns(leg))
    }
}

impl Legs for SipSide<'_> {
    fn accept(
        &mut self,
        leg: LegId,
        media: MediaPort,
        needs_offer: bool,
    ) -> Result<Option<Negotiated>, Cause> {
        if let Some(g) = self.gsm(leg) {
            return g.accept(leg, media);
        }
        match self.port(leg) {
            Some(p) => p.accept(leg, media),
            None => {
                let r = self.ua.accept(self.now, leg, media, needs_offer);
                if let Ok(Some(n)) = &r {
                    self.ua.note_codec(leg, n.codec);
                }
                r
            }
        }
    }

    fn ring(
        &mut self,
        target: &RingTarget,
        from: &Party,
        media: MediaPort,
    ) -> Result<LegId, Cause> {
        let now = self.now;
        if GsmLegs::serves(target) {
            return match self.gsm.as_deref_mut() {
                Some(g) => g.ring(target, media),
                None => Err(Cause::with(
                    crate::call::CauseKind::Unavailable,
                    "no GSM module",
                )),
            };
        }
        if let (Some(p), RingTarget::Extension(ext)) = (self.ports.as_deref_mut(), target) {
            if p.serves(ext) {
                return p.ring(now, target, from, media);
            }
        }
        self.ua.ring(now, self.registrar, target, from, media)
    }

    fn progress(&mut self, leg: LegId, ringing: bool, early_media: bool) {
        // The module rings its caller by itself.
        if self.gsm(leg).is_some() {
            return;
        }
        let now = self.now;
        match self.port(leg) {
            Some(p) => p.progress(now, leg),
            None => self.ua.progress(now, leg, ringing, early_media),
        }
    }

    fn answer(&mut self, leg: LegId) {
        if let Some(g) = self.gsm(leg) {
            return g.answer(leg);
        }
        let now = self.now;
        match self.port(leg) {
            Some(p) => p.answer(now, leg),
            None => self.ua.answer(now, leg),
        }
    }

    fn reject(&mut self, leg: LegId, cause: &Cause) {
        if let Some(g) = self.gsm(leg) {
            return g.hang_up(leg);
        }
        let now = self.now;
        match self.port(leg) {
            Some(p) => p.reject(now, leg, cause),
            None => self.ua.refuse(now, leg, cause, None),
        }
    }

    fn hang_up(&mut self, leg: LegId) {
        if let Some(g) = self.gsm(leg) {
            return g.hang_up(leg);
        }
        let now = self.now;
        match self.port(leg) {
            Some(p) => p.hang_up(now, leg),
            None => self.ua.hang_up(now, leg),
        }
    }

    fn move_media(&mut self, leg: LegId, media: MediaPort) {
        if let Some(g) = self.gsm(leg) {
            return g.move_media(leg, media);
        }
        match self.port(leg) {
            Some(p) => p.move_media(leg, media),
            None => self.ua.move_media(leg, media),
        }
    }

    fn transfer_status(&mut self, leg: LegId, status: TransferStatus) {
        // The module's caller cannot ask for transfers.
        if self.gsm(leg).is_some() {
            return;
        }
        match self.port(leg) {
            Some(p) => p.transfer_status(leg, status),
            None => self.ua.transfer_status(leg, status),
        }
    }
}

/// SIP calls: the user agent and call control.
#[derive(Debug)]
pub struct SipCalls {
    ua: SipLegs,
    control: CallControl,
    ports: Option<PortLegs>,
    gsm: Option<GsmLegs>,
}

impl SipCalls {
    /// No calls yet; `seed` must be random per process start.
    pub fn new(cfg: CallConfig, seed: u64) -> Self {
        Self {
            ua: SipLegs::new(cfg.clone(), seed),
            control: CallControl::new(cfg),
            ports: None,
            gsm: None,
        }
    }

    /// With the GSM module's call as a leg.
    pub fn with_gsm(mut self, gsm: GsmLegs) -> Self {
        self.gsm = Some(gsm);
        self
    }

    /// A call event from the GSM module; `destination`: where inbound calls ring
    /// (`None`: refused).
    pub fn handle_gsm_event(
        &mut self,
        now: Instant,
        event: GsmCallEvent,
        destination: Option<&str>,
        ctx: &mut CallContext<'_>,
    ) {
        if let Some(g) = self.gsm.as_mut() {
            g.handle_call_event(event, destination);
        }
        self.pump(now, ctx);
    }

    /// The module refused to dial for `leg`.
    pub fn handle_gsm_dial_failed(
        &mut self,
        now: Instant,
        leg: LegId,
        why: &str,
        ctx: &mut CallContext<'_>,
    ) {
        if let Some(g) = self.gsm.as_mut() {
            g.dial_failed(leg, why);
        }
        self.pump(now, ctx);
    }

    /// The next instruction for the modem task.
    pub fn poll_gsm_output(&mut self) -> Option<GsmOutput> {
        self.gsm.as_mut().and_then(GsmLegs::poll_output)
    }

    /// The GSM module's calls in progress (for leak checks).
    pub fn gsm_calls(&self) -> usize {
        self.gsm.as_ref().map_or(0, GsmLegs::calls)
    }

    /// With analog ports as legs.
    pub fn with_ports(mut self, ports: PortLegs) -> Self {
        self.ports = Some(ports);
        self
    }

    /// The analog ports, if any.
    pub fn ports(&self) -> Option<&PortLegs> {
        self.ports.as_ref()
    }

    /// The analog ports, to change their settings.
    pub fn ports_mut(&mut self) -> Option<&mut PortLegs> {
        self.ports.as_mut()
    }

    /// A hook transition on analog port `port`.
    pub fn handle_port_hook(
        &mut self,
        now: Instant,
        port: usize,
        event: HookEvent,
        ctx: &mut CallContext<'_>,
    ) {
        if let Some(p) = self.ports.as_mut() {
            p.handle_hook(now, port, event);
        }
        self.pump(now, ctx);
    }

    /// 20 ms of audio from the phone on analog port `port` (digits are detected in it).
    pub fn handle_port_audio(
        &mut self,
        now: Instant,
        port: usize,
        frame: &[i16],
        ctx: &mut CallContext<'_>,
    ) {
        if let Some(p) = self.ports.as_mut() {
            p.handle_audio(now, port, frame);
        }
        self.pump(now, ctx);
    }

    /// Analog port `port` heard a fax or modem tone on its call (and went to
    /// pass-through): the call's far leg, if it is SIP (a phone or the trunk) on a codec
    /// a fax does not survive, is re-INVITEd to G.711 ([`super::fax_g711`]).
    pub fn handle_port_fax(&mut self, now: Instant, port: usize, ctx: &mut CallContext<'_>) {
        let Some(leg) = self.ports.as_ref().and_then(|p| p.talking_leg(port)) else {
            return;
        };
        let Some(far) = self.control.far_leg(leg) else {
            return;
        };
        let internal = self.ports.as_ref().is_some_and(|p| p.owns(far))
            || self.gsm.as_ref().is_some_and(|g| g.owns(far));
        if !internal {
            self.ua.fax_to_g711(now, far);
        }
        self.pump(now, ctx);
    }

    /// Where SIP leg `leg`'s switch to G.711 for a fax stands.
    pub fn fax_g711(&self, leg: LegId) -> Option<&super::fax_g711::FaxG711> {
        self.ua.fax_g711(leg)
    }

    /// The next instruction for an analog port's shell: (port, output).
    pub fn poll_port_output(&mut self) -> Option<(usize, PortOutput)> {
        self.ports.as_mut().and_then(|p| p.poll_shell())
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.control.len()
    }

    /// Whether no call is live.
    pub fn is_empty(&self) -> bool {
        self.control.is_empty()
    }

    /// Live emergency calls.
    pub fn emergency_len(&self) -> usize {
        self.control.emergency_len()
    }

    /// Sizes of every lookup table of the user agent, then its legs and call
    /// control's (for leak checks: all zero when idle and all transactions ended).
    pub fn table_sizes(&self) -> [usize; 6] {
        let [a, b, c, d, e] = self.ua.table_sizes();
        [a, b, c, d, e, self.control.legs_known()]
    }

    /// Our To tag towards the caller of the INVITE `key` (for the 200 to its CANCEL).
    pub fn caller_tag(&self, key: &TransactionKey) -> Option<String> {
        self.ua.caller_tag(key)
    }

    /// Whether server transaction `key` is the INVITE of a live leg (for CANCEL).
    pub fn knows_invite(&self, key: &TransactionKey) -> bool {
        self.ua.knows_invite(key)
    }

    /// Turns load shedding on or off.
    pub fn set_overloaded(&mut self, on: bool) {
        self.ua.set_overloaded(on);
    }

    /// Whether new calls are being turned away.
    pub fn is_overloaded(&self) -> bool {
        self.ua.is_overloaded()
    }

    /// The next thing for the endpoint to do.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.ua.poll_output()
    }

    /// When [`SipCalls::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ua.poll_timeout(),
            self.control.poll_timeout(),
            self.ports.as_ref().and_then(|p| p.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
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
        self.ua.handle_invite(now, now_unix, key, req, flow, ctx);
        self.pump(now, ctx);
    }

    /// A response to one of our client transactions.
    pub fn handle_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        resp: &Message,
        ctx: &mut CallContext<'_>,
    ) {
        self.ua.handle_response(now, key, resp);
        self.pump(now, ctx);
    }

    /// A 2xx no client transaction matched.
    pub fn handle_stray_response(&mut self, resp: &Message) {
        self.ua.handle_stray_response(resp);
    }

    /// A client transaction of ours timed out or could not be sent.
    pub fn handle_transaction_failure(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        ctx: &mut CallContext<'_>,
    ) {
        self.ua.handle_transaction_failure(now, key);
        self.pump(now, ctx);
    }

    /// A transaction ended.
    pub fn transaction_terminated(&mut self, key: &TransactionKey) {
        self.ua.transaction_terminated(key);
    }

    /// A CANCEL for INVITE transaction `invite_key`; whether that INVITE is known.
    pub fn handle_cancel(
        &mut self,
        now: Instant,
        invite_key: &TransactionKey,
        ctx: &mut CallContext<'_>,
    ) -> bool {
        let known = self.ua.handle_cancel(now, invite_key);
        self.pump(now, ctx);
        known
    }

    /// An ACK outside the INVITE transaction (for our 2xx).
    pub fn handle_ack(&mut self, now: Instant, ack: &Message, ctx: &mut CallContext<'_>) {
        self.ua.handle_ack(now, ack);
        self.pump(now, ctx);
    }

    /// A request in a dialog; false if no dialog of ours has it (the endpoint
    /// answers 481).
    pub fn handle_in_dialog(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Message,
        ctx: &mut CallContext<'_>,
    ) -> bool {
        let known = self.ua.handle_in_dialog(now, key, req);
        self.pump(now, ctx);
        known
    }

    /// The relay saw no media on call `id` for too long.
    pub fn handle_media_timeout(&mut self, now: Instant, id: CallId, ctx: &mut CallContext<'_>) {
        self.control.set_trunks(ctx.trunks);
        let mut legs = SipSide {
            ua: &mut self.ua,
            ports: self.ports.as_mut(),
            gsm: self.gsm.as_mut(),
            registrar: &*ctx.registrar,
            now,
        };
        self.control
            .handle_media_timeout(now, id, &mut legs, &mut *ctx.services);
        self.pump(now, ctx);
    }

    /// Click-to-dial: rings `extension`, then `number` for it once it answers (see
    /// [`CallControl::originate`]). `Err`: refused, and no phone rang.
    pub fn originate(
        &mut self,
        now: Instant,
        extension: &str,
        number: &str,
        ctx: &mut CallContext<'_>,
    ) -> Result<CallId, Cause> {
        self.control.set_trunks(ctx.trunks);
        let mut legs = SipSide {
            ua: &mut self.ua,
            ports: self.ports.as_mut(),
            gsm: self.gsm.as_mut(),
            registrar: &*ctx.registrar,
            now,
        };
        let r = self
            .control
            .originate(now, extension, number, &mut legs, &mut *ctx.services);
        self.pump(now, ctx);
        r
    }

    /// A one-shot sound ended on `side` of call `id`.
    pub fn handle_playback_done(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        ctx: &mut CallContext<'_>,
    ) {
        self.control.set_trunks(ctx.trunks);
        let mut legs = SipSide {
            ua: &mut self.ua,
            ports: self.ports.as_mut(),
            gsm: self.gsm.as_mut(),
            registrar: &*ctx.registrar,
            now,
        };
        self.control
            .handle_playback_done(now, id, side, &mut legs, &mut *ctx.services);
        self.pump(now, ctx);
    }

    /// Fires due timers of both layers.
    pub fn handle_timeout(&mut self, now: Instant, ctx: &mut CallContext<'_>) {
        self.ua.handle_timeout(now);
        if let Some(p) = self.ports.as_mut() {
            p.handle_timeout(now);
        }
        self.pump(now, ctx);
        self.control.set_trunks(ctx.trunks);
        let mut legs = SipSide {
            ua: &mut self.ua,
            ports: self.ports.as_mut(),
            gsm: self.gsm.as_mut(),
            registrar: &*ctx.registrar,
            now,
        };
        self.control
            .handle_timeout(now, &mut legs, &mut *ctx.services);
        self.pump(now, ctx);
    }

    /// Lets call control handle every leg event, then turns its records (and the
    /// user agent's refusals) into outputs.
    fn pump(&mut self, now: Instant, ctx: &mut CallContext<'_>) {
        self.control.set_trunks(ctx.trunks);
        loop {
            let event = match self.ua.poll_event() {
                Some(e) => e,
                None => match self.ports.as_mut().and_then(|p| p.poll_event()) {
                    Some(e) => e,
                    None => match self.gsm.as_mut().and_then(GsmLegs::poll_event) {
                        Some(e) => e,
                        None => break,
                    },
                },
            };
            let mut legs = SipSide {
                ua: &mut self.ua,
                ports: self.ports.as_mut(),
                gsm: self.gsm.as_mut(),
                registrar: &*ctx.registrar,
                now,
            };
            self.control
                .handle_event(now, event, &mut legs, &mut *ctx.services);
        }
        while let Some(record) = self.control.poll_ended() {
            self.ua
                .out
                .push_back(CallOutput::Ended(Box::new(sip_record(record))));
        }
        while let Some(mut record) = self.ua.poll_refusal() {
            record.id = self.control.allocate_id();
            self.ua.out.push_back(CallOutput::Ended(Box::new(record)));
        }
    }
}

/// A call record in SIP's words: the final status the caller got, and the reason
/// with it when call control gave only a cause.
fn sip_record(mut r: CallSummary) -> CallSummary {
    if r.answer.is_some() {
        r.sip_status = Some(200);
    } else if let Some(c) = &r.cause {
        let (status, phrase) = cause::status_line(c);
        r.sip_status = Some(status);
        if r.reason.is_none() {
            r.reason = Some(format!("{status} {phrase}"));
        }
    }
    r
}
