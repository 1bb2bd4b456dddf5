//! Ringback the box plays itself: to the transferee while a blind transfer's target
//! rings, and to the click-to-dial user while the number rings; early media replaces
//! it; a click-to-dial number that fails gives the user a busy or congestion tone.

use super::*;
use crate::call::core::FAILURE_TONE;

/// 11 (leg 1) calls 12, who answers; 11 holds and hands 12 over to 13 (as an analog
/// port does when it hangs up while its enquiry rings). Returns 12's and 13's legs.
fn held_and_transferred(rig: &mut Rig) -> (LegId, LegId) {
    let b = rig.connected(1, "11", "12");
    let mut held = neg();
    held.direction = Direction::RecvOnly;
    rig.event(LegEvent::Renegotiated {
        leg: 1,
        media: held,
    });
    rig.event(LegEvent::TransferRequested {
        leg: 1,
        target: "13".into(),
    });
    let (t, ext) = rig.rung().last().cloned().expect("target rung");
    assert_eq!(ext, "13");
    (b, t)
}

#[test]
fn the_transferee_hears_ringback_instead_of_music_until_the_target_answers() {
    let mut rig = Rig::new();
    let (_, t) = held_and_transferred(&mut rig);
    let hold = (1, Side::Callee, Some(Sound::Hold));
    let ringback = (1, Side::Callee, Some(Sound::Ringback));
    assert_eq!(rig.office.sounds, [hold, ringback]);
    // Plain ringing (180 without SDP) changes nothing: our ringback goes on.
    rig.event(LegEvent::Progress {
        leg: t,
        ringing: true,
        media: None,
    });
    assert_eq!(rig.office.sounds, [hold, ringback]);
    rig.answer(t);
    assert_eq!(
        rig.office.sounds,
        [hold, ringback, (1, Side::Callee, None)],
        "the two are bridged once the target answers"
    );
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(1)));
}

#[test]
fn early_media_from_the_transfer_target_replaces_the_ringback() {
    let mut rig = Rig::new();
    let (_, t) = held_and_transferred(&mut rig);
    rig.event(LegEvent::Progress {
        leg: t,
        ringing: false,
        media: Some(neg()),
    });
    assert_eq!(
        rig.office.sounds,
        [
            (1, Side::Callee, Some(Sound::Hold)),
            (1, Side::Callee, Some(Sound::Ringback)),
            (1, Side::Callee, None)
        ]
    );
}

#[test]
fn a_failed_transfer_gives_the_held_party_its_music_back() {
    let mut rig = Rig::new();
    let (_, t) = held_and_transferred(&mut rig);
    rig.event(LegEvent::Failed {
        leg: t,
        cause: Cause::new(CauseKind::Busy),
    });
    assert_eq!(
        rig.office.sounds.last(),
        Some(&(1, Side::Callee, Some(Sound::Hold)))
    );
    assert!(rig.legs.cmds.contains(&Cmd::Transfer(
        1,
        TransferStatus::Failed(Cause::new(CauseKind::Busy))
    )));
}

#[test]
fn a_blind_transfer_without_hold_returns_to_the_other_side_when_it_times_out() {
    let mut rig = Rig::new();
    let b = rig.connected(1, "11", "12");
    // 12 transfers 11 to 13 without holding first: 11 hears ringback.
    rig.event(LegEvent::TransferRequested {
        leg: b,
        target: "13".into(),
    });
    assert_eq!(
        rig.office.sounds,
        [(1, Side::Caller, Some(Sound::Ringback))]
    );
    rig.advance(Duration::from_secs(31));
    assert_eq!(
        rig.office.sounds,
        [
            (1, Side::Caller, Some(Sound::Ringback)),
            (1, Side::Caller, None)
        ]
    );
}

/// Click-to-dial from 11 to 12: the user's phone answers; returns its leg and 12's.
fn clicked(rig: &mut Rig) -> (CallId, LegId, LegId) {
    let id = rig.cc_originate("11", "12");
    let (a, _) = rig.rung()[0].clone();
    rig.answer(a);
    let (b, ext) = rig.rung().last().cloned().expect("number rung");
    assert_eq!(ext, "12");
    (id, a, b)
}

impl Rig {
    fn cc_originate(&mut self, ext: &str, number: &str) -> CallId {
        self.cc
            .originate(self.now, ext, number, &mut self.legs, &mut self.office)
            .expect("allowed")
    }
}

#[test]
fn click_to_dial_plays_ringback_to_the_user_until_the_number_answers() {
    let mut rig = Rig::new();
    let (id, _, b) = clicked(&mut rig);
    let ringback = (id, Side::Caller, Some(Sound::Ringback));
    assert_eq!(rig.office.sounds, [ringback]);
    rig.event(LegEvent::Progress {
        leg: b,
        ringing: true,
        media: None,
    });
    assert_eq!(rig.office.sounds, [ringback]);
    rig.answer(b);
    assert_eq!(rig.office.sounds, [ringback, (id, Side::Caller, None)]);
}

#[test]
fn click_to_dial_passes_early_media_instead_of_ringback() {
    let mut rig = Rig::new();
    let (id, _, b) = clicked(&mut rig);
    rig.event(LegEvent::Progress {
        leg: b,
        ringing: false,
        media: Some(neg()),
    });
    let expect = [
        (id, Side::Caller, Some(Sound::Ringback)),
        (id, Side::Caller, None),
    ];
    assert_eq!(rig.office.sounds, expect);
    rig.answer(b);
    assert_eq!(rig.office.sounds, expect, "nothing more to stop");
}

#[test]
fn a_failed_number_gives_the_user_a_busy_or_congestion_tone_then_ends() {
    struct Case {
        cause: CauseKind,
        tone: Option<Sound>,
        disposition: Disposition,
        msg: &'static str,
    }
    let cases = [
        Case {
            cause: CauseKind::Busy,
            tone: Some(Sound::Busy),
            disposition: Disposition::Busy,
            msg: "busy",
        },
        Case {
            cause: CauseKind::Declined,
            tone: Some(Sound::Busy),
            disposition: Disposition::Busy,
            msg: "declined",
        },
        Case {
            cause: CauseKind::Unavailable,
            tone: Some(Sound::Congestion),
            disposition: Disposition::NoAnswer,
            msg: "unreachable",
        },
        Case {
            cause: CauseKind::Congestion,
            tone: Some(Sound::Congestion),
            disposition: Disposition::Failed,
            msg: "congestion",
        },
    ];
    for c in cases {
        let mut rig = Rig::new();
        let (id, a, b) = clicked(&mut rig);
        rig.event(LegEvent::Failed {
            leg: b,
            cause: Cause::new(c.cause),
        });
        rig.legs.live.remove(&b);
        if let Some(tone) = c.tone {
            assert_eq!(
                rig.office.sounds.last(),
                Some(&(id, Side::Caller, Some(tone))),
                "{}",
                c.msg
            );
            assert!(!rig.legs.cmds.contains(&Cmd::HangUp(a)), "{}", c.msg);
            assert!(rig.records().is_empty(), "{}", c.msg);
            rig.advance(FAILURE_TONE - Duration::from_millis(1));
            assert!(!rig.legs.cmds.contains(&Cmd::HangUp(a)), "{}", c.msg);
            rig.advance(Duration::from_millis(1));
        }
        assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(a)), "{}", c.msg);
        rig.legs.live.remove(&a);
        let [r] = rig.records().try_into().expect("one record");
        assert_eq!(r.disposition, c.disposition, "{}", c.msg);
        assert_eq!(r.cause.map(|x| x.kind), Some(c.cause), "{}", c.msg);
        rig.assert_idle();
    }
    // Nobody answers within the ring time: nothing to tell, a clear end.
    let mut rig = Rig::new();
    let (_, a, _) = clicked(&mut rig);
    rig.advance(Duration::from_secs(30));
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(a)));
    assert!(
        !rig.office
            .sounds
            .iter()
            .any(|s| matches!(s.2, Some(Sound::Busy | Sound::Congestion))),
        "{:?}",
        rig.office.sounds
    );
    rig.legs.live.clear();
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::NoAnswer);
    rig.assert_idle();
}

#[test]
fn the_user_hanging_up_on_the_busy_tone_ends_the_call_as_busy() {
    let mut rig = Rig::new();
    let (_, a, b) = clicked(&mut rig);
    rig.event(LegEvent::Failed {
        leg: b,
        cause: Cause::new(CauseKind::Busy),
    });
    rig.legs.live.remove(&b);
    rig.advance(Duration::from_secs(1));
    rig.event(LegEvent::HungUp {
        leg: a,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&a);
    assert!(
        !rig.legs.cmds.contains(&Cmd::HangUp(a)),
        "it hung up itself"
    );
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::Busy);
    assert_eq!(r.end - r.start, Duration::from_secs(1));
    rig.assert_idle();
    assert_eq!(rig.cc.poll_timeout(), None);
}
