//! Feature codes dialled from a phone (`*78` do-not-disturb on, `*21*1002#` forward
//! always, ...): the change is stored, the box answers and plays a confirmation tone,
//! then hangs up. Music on hold: while one side holds, the other hears music.

use std::time::Instant;

use super::{CallContext, CallControl, CallId, Disposition, Hangup, Phase, Side, Sound, Target};
use crate::dialplan::FeatureCode;
use crate::media::sdp::Direction;

impl CallControl {
    /// Carries out `code` for the call's caller; answers with a confirmation tone, or
    /// refuses with the reason the store gave.
    pub(super) fn run_feature(
        &mut self,
        now: Instant,
        id: CallId,
        code: &FeatureCode,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.target = Target::Feature;
        let caller = call.caller.clone();
        match ctx.services.apply_feature(&caller, code) {
            Ok(done) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.callee = done;
                }
                self.answer_caller(now, id);
                ctx.services.play(id, Side::Caller, Sound::Confirmation);
            }
            Err(why) => {
                let reason = format!("Forbidden: {why}");
                self.fail_call(now, id, (403, reason, Disposition::Failed), ctx);
            }
        }
    }

    /// A one-shot sound finished: a feature call ends there.
    pub fn handle_playback_done(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if side != Side::Caller || !matches!(call.target, Target::Feature) {
            return;
        }
        let reason = format!("feature code: {}", call.callee);
        let phase = call.phase;
        if matches!(phase, Phase::Up | Phase::Answering) {
            self.end_call(
                now,
                id,
                Disposition::Answered,
                Some(&reason),
                Some(200),
                Some(Hangup::System),
                ctx,
            );
        }
    }

    /// After `side` renegotiated to `ours` (our direction towards it): when it holds
    /// (a=sendonly or a=inactive: it wants nothing from us), the other side hears
    /// music; when it resumes, the music stops.
    pub(super) fn hold_changed(
        &mut self,
        id: CallId,
        side: Side,
        ours: Direction,
        ctx: &mut CallContext<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // Holding, the peer wants no media: our answer then does not send.
        let holding = !ours.sends();
        let other = side.other();
        match (holding, call.held_by) {
            (true, None) => {
                call.held_by = Some(side);
                ctx.services.play(id, other, Sound::Hold);
            }
            (false, Some(s)) if s == side => {
                call.held_by = None;
                ctx.services.stop_playback(id, other);
            }
            _ => {}
        }
    }
}
