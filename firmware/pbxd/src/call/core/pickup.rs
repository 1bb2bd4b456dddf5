//! Call pickup: a phone dials a feature code and takes over a call ringing elsewhere,
//! for its pickup group (`*8`) or for a named extension (`**<ext>`).

use std::time::Instant;

use super::{
    Attempt, CallControl, CallId, Cause, CauseKind, Disposition, Io, MediaPort, Phase, Side,
};

impl CallControl {
    /// The picker's leg takes the call ringing at `extension` (directed) or at a
    /// member of the picker's pickup group, the longest-ringing first.
    pub(super) fn pickup(
        &mut self,
        now: Instant,
        at: &Attempt<'_>,
        extension: Option<&str>,
        io: &mut Io<'_, '_>,
    ) {
        let picker = at.caller;
        let group = io.env.extension(picker).and_then(|p| p.pickup_group);
        let rings_for = |ext: &str| match extension {
            Some(e) => e == ext,
            None => group.is_some() && io.env.extension(ext).and_then(|p| p.pickup_group) == group,
        };
        let mut candidates: Vec<(Instant, CallId)> = self
            .calls
            .values()
            .filter(|c| c.phase == Phase::Ringing && c.caller != picker)
            .filter(|c| {
                c.rings
                    .iter()
                    .any(|r| r.failed.is_none() && rings_for(&r.ext))
            })
            .map(|c| (c.start, c.id))
            .collect();
        candidates.sort();
        let Some(call) = candidates.first().and_then(|(_, id)| self.calls.get(id)) else {
            let cause = Cause::with(CauseKind::Unavailable, "no call to pick up");
            io.legs.reject(at.leg, &cause);
            self.record_refusal(now, at, Disposition::Failed, cause);
            return;
        };
        let id = call.id;
        let media = MediaPort {
            port: call.ports.1,
            prefer: call.prefer,
        };
        // The picker's answer must come from its own offer: the call is already
        // connected to the caller's media.
        let neg = match io.legs.accept(at.leg, media, true) {
            Ok(neg) => neg,
            Err(cause) => {
                self.record_refusal(now, at, Disposition::Failed, cause);
                return;
            }
        };
        if let Some(neg) = &neg {
            io.env.configure(id, Side::Callee, neg);
        }
        // The phones that rang stop; the caller and the picker are answered.
        self.stop_rings(id, io);
        self.legs.insert(at.leg, (id, Side::Callee));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.b = Some(at.leg);
        call.callee = picker.to_owned();
        call.dest_ip = Some(at.source);
        call.transferred_to = None;
        self.answer_caller(now, id, io);
        if let Some(call) = self.calls.get_mut(&id) {
            call.unconfirmed.push(at.leg);
        }
        io.legs.answer(at.leg);
    }
}
