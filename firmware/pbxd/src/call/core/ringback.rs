//! Sounds the box plays to a party that waits on a ringing callee it cannot hear:
//! the transferee of a blind transfer (an analog port that hung up while its enquiry
//! rang, a SIP REFER) and the user of click-to-dial. The core only decides which
//! [`Sound`] goes to which side; the media layer renders it from the site country's
//! tone table. Early media from the callee (183 with SDP) replaces the ringback.

use std::time::{Duration, Instant};

use super::{CallControl, CallId, CauseKind, End, Failure, Io, LegId, Negotiated, Side, Sound};

/// How long a failed click-to-dial plays its busy or congestion tone before the box
/// hangs up the user's phone (four cycles of the German busy tone).
pub(crate) const FAILURE_TONE: Duration = Duration::from_secs(4);

impl CallControl {
    /// A blind transfer's target rings: the transferee (the side opposite `side`)
    /// hears ringback instead of music on hold or silence.
    pub(super) fn transfer_ringback(&mut self, id: CallId, side: Side, io: &mut Io<'_, '_>) {
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        t.ringback = true;
        io.env.play(id, side.other(), Sound::Ringback);
    }

    /// The transfer's target rings or sends early media: early media is relayed to
    /// the transferee in place of our ringback.
    pub(super) fn transfer_progress(
        &mut self,
        id: CallId,
        media: Option<&Negotiated>,
        io: &mut Io<'_, '_>,
    ) {
        let Some(neg) = media else {
            return;
        };
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        if !t.ringback {
            return;
        }
        t.ringback = false;
        io.env.configure(id, t.side, neg);
        io.env.stop_playback(id, t.side.other());
    }

    /// A transfer that played ringback ended without its target: the transferee
    /// hears what it heard before (music while held, else the other side again).
    pub(super) fn transfer_ringback_over(
        &mut self,
        id: CallId,
        side: Side,
        ringback: bool,
        io: &mut Io<'_, '_>,
    ) {
        if !ringback {
            return;
        }
        match self.calls.get(&id).map(|c| c.held_by) {
            Some(Some(h)) if h == side => io.env.play(id, side.other(), Sound::Hold),
            Some(_) => io.env.stop_playback(id, side.other()),
            None => {}
        }
    }

    /// A click-to-dial call whose number failed after the user answered: the user
    /// hears the busy or congestion tone for [`FAILURE_TONE`], then the call ends.
    /// Returns the failure when the call should end now instead.
    pub(super) fn failure_tone(
        &mut self,
        now: Instant,
        id: CallId,
        f: Failure,
        io: &mut Io<'_, '_>,
    ) -> Option<Failure> {
        let Some(call) = self.calls.get(&id) else {
            return Some(f);
        };
        if !call.originated || !call.a_answered || call.closing.is_some() {
            return Some(f);
        }
        let sound = match f.0.kind {
            CauseKind::Busy | CauseKind::Declined => Sound::Busy,
            // Nobody answered or the user gave up: nothing to tell, a clear end.
            CauseKind::NoAnswer | CauseKind::Cancelled => return Some(f),
            _ => Sound::Congestion,
        };
        self.stop_rings(id, io);
        let Some(call) = self.calls.get_mut(&id) else {
            return Some(f);
        };
        call.ring_deadline = None;
        call.closing = Some((now + FAILURE_TONE, f));
        io.env.play(id, Side::Caller, sound);
        None
    }

    /// The failure tone is over (or the user hung up on it, `done`): the call ends
    /// with the failure that started the tone.
    pub(super) fn failure_tone_over(
        &mut self,
        now: Instant,
        id: CallId,
        done: Option<LegId>,
        io: &mut Io<'_, '_>,
    ) {
        let Some((_, (cause, disposition))) =
            self.calls.get_mut(&id).and_then(|c| c.closing.take())
        else {
            return;
        };
        let end = End {
            disposition,
            reason: None,
            cause: Some(cause),
            hangup: None,
            done,
        };
        self.end_call(now, id, end, io);
    }
}
