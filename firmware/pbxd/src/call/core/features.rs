//! Feature codes dialled from a phone (`*78` do-not-disturb on, `*21*1002#` forward
//! always, ...): the change is stored, the box answers and plays a confirmation tone,
//! then hangs up. Music on hold: while one side holds, the other hears music.

use std::time::Instant;

use super::{
    CallControl, CallId, CallServices, Cause, CauseKind, Disposition, End, Hangup, Io, Legs, Phase,
    Side, Sound, Target,
};
use crate::dialplan::FeatureCode;

impl CallControl {
    /// Carries out `code` for the call's caller; answers with a confirmation tone, or
    /// refuses with the reason the store gave.
    pub(super) fn run_feature(
        &mut self,
        now: Instant,
        id: CallId,
        code: &FeatureCode,
        io: &mut Io<'_, '_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.target = Target::Feature;
        let caller = call.caller.clone();
        match io.env.apply_feature(&caller, code) {
            Ok(done) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.callee = done;
                }
                self.answer_caller(now, id, io);
                io.env.play(id, Side::Caller, Sound::Confirmation);
            }
            Err(why) => {
                let cause = Cause::with(CauseKind::Forbidden, why);
                self.fail_call(now, id, (cause, Disposition::Failed), io);
            }
        }
    }

    /// A one-shot sound finished: a feature call ends there.
    pub fn handle_playback_done(
        &mut self,
        now: Instant,
        id: CallId,
        side: Side,
        legs: &mut dyn Legs,
        env: &mut dyn CallServices,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if side != Side::Caller || !matches!(call.target, Target::Feature) {
            return;
        }
        let reason = format!("feature code: {}", call.callee);
        if matches!(call.phase, Phase::Up | Phase::Answering) {
            let io = &mut Io { legs, env };
            let end = End::answered(Some(&reason), Some(Hangup::System));
            self.end_call(now, id, end, io);
        }
    }

    /// After `side` renegotiated: when our answer towards it does not send (it holds
    /// with a=sendonly or a=inactive), the other side hears music; when it resumes,
    /// the music stops.
    pub(super) fn hold_changed(
        &mut self,
        id: CallId,
        side: Side,
        sends: bool,
        io: &mut Io<'_, '_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let other = side.other();
        match (!sends, call.held_by) {
            (true, None) => {
                call.held_by = Some(side);
                io.env.play(id, other, Sound::Hold);
            }
            (false, Some(s)) if s == side => {
                call.held_by = None;
                io.env.stop_playback(id, other);
            }
            _ => {}
        }
    }
}
