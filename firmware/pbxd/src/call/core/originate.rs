//! Click-to-dial (issue 6): the box calls the user's own extension first and, once it
//! answers, dials the number for it. The number is routed exactly as if the extension
//! had dialled it (dial plan, outbound class, blocked ranges, limits and toll-fraud
//! protection, emergency routes), and before the phone rings: a refused number never
//! rings it. The user's phone shows the number it is about to call.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use super::{
    failure, Attempt, Call, CallControl, CallId, CallServices, Cause, CauseKind, Dest, Disposition,
    Io, Legs, MediaPort, Party, Phase, RingTarget, Side, Sound, Target,
};
use crate::gsm::legs::GSM_TRUNK;
use crate::media::sdp::Negotiated;

impl CallControl {
    /// Calls `extension` and, when it answers, `number` for it. `Err` when the number
    /// is refused (its reason, as a phone dialling it would be told) or the extension
    /// cannot ring; the attempt is recorded either way.
    pub fn originate(
        &mut self,
        now: Instant,
        extension: &str,
        number: &str,
        legs: &mut dyn Legs,
        env: &mut dyn CallServices,
    ) -> Result<CallId, Cause> {
        let io = &mut Io { legs, env };
        let Some(profile) = io.env.extension(extension).filter(|p| p.enabled) else {
            return Err(Cause::with(
                CauseKind::Forbidden,
                format!("extension {extension} does not exist or is disabled"),
            ));
        };
        let reference = format!("click-to-dial-{}", self.next_call);
        let at = Attempt {
            leg: 0,
            caller: extension,
            dialled: number,
            reference: &reference,
            // Filled in with the phone's address once it answers.
            source: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            trunk: None,
        };
        let dest = match self.resolve(now, extension, &profile, number, &reference, io) {
            Ok(Dest::Pickup(_)) => Err((
                Cause::with(
                    CauseKind::Invalid,
                    "call pickup cannot be dialled from here",
                ),
                Disposition::Failed,
            )),
            Ok(Dest::Internal(n)) if n == extension => Err((
                Cause::with(CauseKind::Invalid, "that is your own extension"),
                Disposition::Failed,
            )),
            d => d,
        };
        let dest = match dest {
            Ok(d) => d,
            Err((cause, disposition)) => {
                self.record_refusal(now, &at, disposition, cause.clone());
                return Err(cause);
            }
        };
        let id = self.next_call;
        let ports = match io.env.open(id) {
            Ok(p) => p,
            Err(e) => {
                let cause = Cause::with(CauseKind::Congestion, format!("media: {e}"));
                self.record_refusal(now, &at, Disposition::Failed, cause.clone());
                return Err(cause);
            }
        };
        // The user's phone shows whom it is about to call (as FRITZ!Box and Yeastar do).
        let shown = Party {
            number: uri_safe(number),
            name: None,
        };
        let media = MediaPort {
            port: ports.0,
            prefer: None,
        };
        let target = RingTarget::Extension(extension.to_owned());
        let a = match io.legs.ring(&target, &shown, media) {
            Ok(leg) => leg,
            Err(cause) => {
                io.env.close(id);
                let cause = Cause {
                    detail: cause.detail.or_else(|| {
                        Some(format!("no phone of extension {extension} is reachable"))
                    }),
                    ..cause
                };
                self.record_refusal(now, &at, failure(cause.clone()).1, cause.clone());
                return Err(cause);
            }
        };
        self.next_call += 1;
        let callee = dest.callee(number);
        // An external call holds its trunk and counts against the user's limits from
        // now on, so that two clicks cannot both pass a limit of one.
        let external = match &dest {
            Dest::Trunk { trunk, number, .. } => Some((trunk.name.clone(), number.clone())),
            Dest::Gsm(number) => Some((GSM_TRUNK.to_owned(), number.clone())),
            _ => None,
        };
        self.legs.insert(a, (id, Side::Caller));
        self.calls.insert(
            id,
            Call {
                id,
                phase: Phase::Originating,
                caller: extension.to_owned(),
                caller_name: if profile.clir { None } else { profile.name },
                dialled: number.to_owned(),
                callee: callee.clone(),
                start: now,
                answered: None,
                source_ip: at.source,
                dest_ip: None,
                reference,
                a,
                a_answered: false,
                b: None,
                ports,
                prefer: None,
                rings: Vec::new(),
                unconfirmed: Vec::new(),
                held_by: None,
                external,
                emergency: false,
                routes: VecDeque::new(),
                inbound: None,
                forwarded_by: None,
                ring_deadline: Some(now + self.cfg.ring_timeout),
                early_media: false,
                target: Target::Extension(callee),
                hops: Vec::new(),
                transfer: None,
                transferred_to: None,
                originated: true,
                pending: Some(dest),
                closing: None,
            },
        );
        Ok(id)
    }

    /// The user's phone answered a click-to-dial call: the number is dialled now.
    pub(super) fn originator_answered(
        &mut self,
        now: Instant,
        id: CallId,
        media: Negotiated,
        peer: IpAddr,
        io: &mut Io<'_, '_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        io.env.configure(id, Side::Caller, &media);
        call.phase = Phase::Ringing;
        call.a_answered = true;
        call.ring_deadline = None;
        call.source_ip = peer;
        call.prefer = Some(media.codec);
        match call.pending.take() {
            Some(dest) => self.dispatch(now, id, dest, io),
            None => {
                let cause = Cause::with(CauseKind::Failed, "nothing to dial");
                self.fail_call(now, id, (cause, Disposition::Failed), io);
            }
        }
        // The number rings: the user hears ringback until it answers or sends early
        // media (a number that failed at once plays its failure tone instead).
        if let Some(call) = self.calls.get(&id) {
            if call.phase == Phase::Ringing && call.closing.is_none() && !call.early_media {
                io.env.play(id, Side::Caller, Sound::Ringback);
            }
        }
    }
}

/// `number` as a SIP URI's user part can carry it (the dial plan has accepted it, so
/// this only drops what a URI would need escaped).
fn uri_safe(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '+' | '*'))
        .collect()
}
