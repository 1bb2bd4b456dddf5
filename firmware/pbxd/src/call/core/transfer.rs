//! Call transfer as phones ask for it: blind (the party names a number) and attended
//! (the party names its consultation call, whose other party takes its place). The
//! transferee keeps its leg and media port; the transferor's side of the call is
//! replaced by the target.

use std::net::IpAddr;
use std::time::Instant;

use super::{
    CallControl, CallId, Cause, CauseKind, End, Hangup, Io, LegId, MediaPort, Negotiated, Party,
    Phase, RingTarget, Side, Transfer,
};
use crate::call::leg::TransferStatus;
use crate::dialplan::{self, Caller, Route};

impl CallControl {
    /// Checks that the call of `leg` can start a transfer now.
    fn transfer_ready(&self, leg: LegId) -> Result<(CallId, Side), Cause> {
        let no_call = || Cause::new(CauseKind::NoSuchCall);
        let &(id, side) = self.legs.get(&leg).ok_or_else(no_call)?;
        let call = self.calls.get(&id).ok_or_else(no_call)?;
        if call.phase != Phase::Up {
            return Err(Cause::new(CauseKind::Pending));
        }
        if call.transfer.is_some() {
            return Err(Cause::with(CauseKind::Pending, "a transfer is in progress"));
        }
        Ok((id, side))
    }

    /// Blind transfer: ring `target` for the transferor's side.
    pub(super) fn blind(&mut self, now: Instant, leg: LegId, target: &str, io: &mut Io<'_, '_>) {
        match self.start_blind(now, leg, target, io) {
            Ok(()) => io.legs.transfer_status(leg, TransferStatus::Accepted),
            Err(cause) => io.legs.transfer_status(leg, TransferStatus::Refused(cause)),
        }
    }

    fn start_blind(
        &mut self,
        now: Instant,
        leg: LegId,
        target: &str,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Cause> {
        let (id, side) = self.transfer_ready(leg)?;
        let call = self
            .calls
            .get_mut(&id)
            .ok_or_else(|| Cause::new(CauseKind::NoSuchCall))?;
        // The transferor's own rights decide where it may transfer to.
        let transferor = call.number(side);
        let profile = io
            .env
            .extension(&transferor)
            .ok_or_else(|| Cause::with(CauseKind::Forbidden, "only extensions can transfer"))?;
        let site = io.env.site();
        let route = {
            let plan = super::PlanView(&*io.env);
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
                return Err(Cause::with(
                    CauseKind::Unacceptable,
                    "transfer only to extensions",
                ))
            }
            Err(r) => return Err(super::refused(&r).0),
        };
        // The target sees the transferee as the caller.
        let from = Party {
            number: call.number(side.other()),
            name: None,
        };
        let media = MediaPort {
            port: call.port(side),
            prefer: (side == Side::Callee).then_some(call.prefer).flatten(),
        };
        let new = io
            .legs
            .ring(&RingTarget::Extension(ext.clone()), &from, media)
            .map_err(|_| Cause::new(CauseKind::Unavailable))?;
        self.legs.insert(new, (id, side));
        call.transfer = Some(Transfer {
            side,
            requester: leg,
            target: ext,
            leg: Some(new),
            moving: None,
            deadline: Some(now + self.cfg.ring_timeout),
            ringback: false,
        });
        self.transfer_ringback(id, side, io);
        Ok(())
    }

    /// The target of a blind transfer answered: it takes the transferor's place.
    pub(super) fn transfer_answered(
        &mut self,
        id: CallId,
        leg: LegId,
        media: Negotiated,
        peer: IpAddr,
        io: &mut Io<'_, '_>,
    ) {
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.take()) else {
            return;
        };
        io.env.configure(id, t.side, &media);
        self.replace_side(id, &t, leg, peer, io);
    }

    /// `new` takes over `t.side` of call `id`; the transferor hears that it worked
    /// and is hung up.
    fn replace_side(
        &mut self,
        id: CallId,
        t: &Transfer,
        new: LegId,
        peer: IpAddr,
        io: &mut Io<'_, '_>,
    ) {
        io.legs.transfer_status(t.requester, TransferStatus::Done);
        io.legs.hang_up(t.requester);
        self.legs.remove(&t.requester);
        self.legs.insert(new, (id, t.side));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match t.side {
            Side::Caller => {
                call.a = new;
                call.a_answered = true;
            }
            Side::Callee => {
                call.b = Some(new);
                call.callee = t.target.clone();
                call.dest_ip = Some(peer);
            }
        }
        call.transferred_to = Some(t.target.clone());
        // The transferor held the call before handing it on (a flash on an analog
        // port, a SIP phone's hold before REFER): its successor does not hold, so the
        // music stops.
        if call.held_by == Some(t.side) {
            call.held_by = None;
            io.env.stop_playback(id, t.side.other());
        } else if t.ringback {
            io.env.stop_playback(id, t.side.other());
        }
    }

    /// The transfer's target could not be reached: the call stays as it was.
    pub(super) fn transfer_failed(&mut self, id: CallId, cause: Cause, io: &mut Io<'_, '_>) {
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.take()) else {
            return;
        };
        if let Some(l) = t.leg {
            self.legs.remove(&l);
        }
        self.transfer_ringback_over(id, t.side, t.ringback, io);
        io.legs
            .transfer_status(t.requester, TransferStatus::Failed(cause));
    }

    /// The target of a blind transfer did not answer in time.
    pub(super) fn transfer_timeout(&mut self, id: CallId, io: &mut Io<'_, '_>) {
        let leg = self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .and_then(|t| t.leg);
        if let Some(l) = leg {
            io.legs.hang_up(l);
        }
        self.transfer_failed(id, Cause::new(CauseKind::NoAnswer), io);
    }

    /// Attended transfer: the transferor's consultation call (the one `replaces` is
    /// in) gives its other party to this call, in place of the transferor.
    pub(super) fn attended(
        &mut self,
        _now: Instant,
        leg: LegId,
        replaces: LegId,
        io: &mut Io<'_, '_>,
    ) {
        match self.start_attended(leg, replaces, io) {
            Ok(()) => io.legs.transfer_status(leg, TransferStatus::Accepted),
            Err(cause) => io.legs.transfer_status(leg, TransferStatus::Refused(cause)),
        }
    }

    fn start_attended(
        &mut self,
        leg: LegId,
        replaces: LegId,
        io: &mut Io<'_, '_>,
    ) -> Result<(), Cause> {
        let (id, side) = self.transfer_ready(leg)?;
        let not_found = || Cause::with(CauseKind::NoSuchCall, "Replaces");
        let &(id2, side2) = self.legs.get(&replaces).ok_or_else(not_found)?;
        if id2 == id {
            return Err(Cause::with(CauseKind::Invalid, "Replaces names this call"));
        }
        let call2 = self.calls.get(&id2).ok_or_else(not_found)?;
        if call2.phase != Phase::Up {
            return Err(not_found());
        }
        let target_side = side2.other();
        let z = call2.leg(target_side).ok_or_else(not_found)?;
        let target = call2.number(target_side);
        let call = self.calls.get_mut(&id).ok_or_else(not_found)?;
        io.legs.move_media(
            z,
            MediaPort {
                port: call.port(side),
                prefer: None,
            },
        );
        call.transfer = Some(Transfer {
            side,
            requester: leg,
            target,
            leg: None,
            moving: Some((z, id2, target_side)),
            deadline: None,
            ringback: false,
        });
        Ok(())
    }

    /// The attended transfer's target answered the move of its media (or refused).
    pub(super) fn moved(
        &mut self,
        now: Instant,
        leg: LegId,
        result: Result<(Negotiated, IpAddr), Cause>,
        io: &mut Io<'_, '_>,
    ) {
        let found = self.calls.values().find_map(|c| {
            let t = c.transfer.as_ref()?;
            let (z, id2, side2) = t.moving?;
            (z == leg).then_some((c.id, id2, side2))
        });
        let Some((id, id2, side2)) = found else {
            return;
        };
        let (media, peer) = match result {
            Ok(x) => x,
            Err(cause) => {
                self.transfer_failed(id, cause, io);
                return;
            }
        };
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.take()) else {
            return;
        };
        io.env.configure(id, t.side, &media);
        self.replace_side(id, &t, leg, peer, io);
        // The consultation call ends: its transferor's leg is hung up; the target's
        // leg lives on in this call.
        let hangup = match side2 {
            Side::Caller => Hangup::Caller,
            Side::Callee => Hangup::Callee,
        };
        let end = End {
            done: Some(leg),
            ..End::answered(Some("transferred (attended)"), Some(hangup))
        };
        self.end_call(now, id2, end, io);
    }
}
