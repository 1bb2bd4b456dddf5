//! Click-to-dial in the call core: the number is routed before the user's phone
//! rings, dialled once it answers, and the user's leg is only ever hung up.

use super::*;

impl Rig {
    fn originate(&mut self, ext: &str, number: &str) -> Result<CallId, Cause> {
        self.cc
            .originate(self.now, ext, number, &mut self.legs, &mut self.office)
    }

    /// Commands sent to `leg`.
    fn cmds_for(&self, leg: LegId) -> Vec<Cmd> {
        self.legs
            .cmds
            .iter()
            .filter(|c| match c {
                Cmd::Accept(l, _)
                | Cmd::Ring(l, _, _)
                | Cmd::Progress(l, _, _)
                | Cmd::Answer(l)
                | Cmd::Reject(l, _)
                | Cmd::HangUp(l)
                | Cmd::Move(l, _)
                | Cmd::Transfer(l, _) => *l == leg,
            })
            .cloned()
            .collect()
    }
}

#[test]
fn a_refused_number_never_rings_the_users_phone() {
    struct Case {
        ext: &'static str,
        number: &'static str,
        kind: CauseKind,
        disposition: Disposition,
        msg: &'static str,
    }
    let cases = [
        Case {
            ext: "11",
            number: "0900123456",
            kind: CauseKind::Forbidden,
            disposition: Disposition::Blocked,
            msg: "premium range",
        },
        Case {
            ext: "11",
            number: "+49900123456",
            kind: CauseKind::Forbidden,
            disposition: Disposition::Blocked,
            msg: "premium range as +49",
        },
        Case {
            ext: "13",
            number: "0211123456",
            kind: CauseKind::Forbidden,
            disposition: Disposition::Blocked,
            msg: "national call from an internal-only extension",
        },
        Case {
            ext: "11",
            number: "19",
            kind: CauseKind::NotFound,
            disposition: Disposition::Failed,
            msg: "no such extension",
        },
        Case {
            ext: "11",
            number: "11",
            kind: CauseKind::Invalid,
            disposition: Disposition::Failed,
            msg: "own extension",
        },
        Case {
            ext: "11",
            number: "*8",
            kind: CauseKind::Invalid,
            disposition: Disposition::Failed,
            msg: "pickup",
        },
    ];
    let mut rig = Rig::new();
    rig.cc
        .set_trunks(&trunk_links(crate::trunk::TrunkState::Registered));
    let p = rig.office.profiles.get_mut("13").expect("13");
    p.class = crate::dialplan::OutboundClass::InternalOnly;
    for c in &cases {
        let err = rig.originate(c.ext, c.number).expect_err(c.msg);
        assert_eq!(err.kind, c.kind, "{}", c.msg);
        assert!(rig.rung().is_empty(), "{}: nothing rings", c.msg);
        let r = rig.records();
        assert_eq!(r.len(), 1, "{}: the attempt is recorded", c.msg);
        assert_eq!(r[0].caller, c.ext, "{}", c.msg);
        assert_eq!(r[0].dialled, c.number, "{}", c.msg);
        assert_eq!(r[0].disposition, c.disposition, "{}", c.msg);
        assert_eq!(r[0].cause.as_ref(), Some(&err), "{}", c.msg);
    }
    // The blocked range names itself, for the web to show.
    let err = rig.originate("11", "0900123456").expect_err("blocked");
    let why = err.detail.unwrap_or_default();
    assert!(why.contains("0900"), "{why}");
    // Unknown or disabled extensions cannot click.
    assert_eq!(
        rig.originate("19", "12").map_err(|e| e.kind),
        Err(CauseKind::Forbidden)
    );
    rig.office.profiles.get_mut("12").expect("12").enabled = false;
    assert_eq!(
        rig.originate("12", "13").map_err(|e| e.kind),
        Err(CauseKind::Forbidden)
    );
    rig.records();
    rig.assert_idle();
}

#[test]
fn the_users_phone_rings_first_then_the_number_and_the_record_is_the_users_call() {
    let mut rig = Rig::new();
    let id = rig.originate("11", "12").expect("allowed");
    // Only the user's own phone rings, on the caller side's port, showing the number.
    let [(a, ext)] = rig.rung().try_into().expect("one leg rung");
    assert_eq!(ext, "11");
    assert!(rig.legs.cmds.contains(&Cmd::Ring(a, "11".into(), 30_000)));
    assert_eq!(rig.legs.shown, ["12"]);
    rig.event(LegEvent::Progress {
        leg: a,
        ringing: true,
        media: None,
    });
    rig.answer(a);
    let rung = rig.rung();
    assert_eq!(rung.len(), 2, "{rung:?}");
    let (b, ext) = rung[1].clone();
    assert_eq!(ext, "12");
    assert!(rig.legs.cmds.contains(&Cmd::Ring(b, "12".into(), 30_002)));
    // The callee sees the user's extension.
    assert_eq!(rig.legs.shown, ["12", "11"]);
    rig.event(LegEvent::Progress {
        leg: b,
        ringing: true,
        media: None,
    });
    rig.advance(Duration::from_secs(3));
    rig.answer(b);
    // The user's leg was ours to place: never accepted, answered, told of progress
    // or refused.
    assert_eq!(
        rig.cmds_for(a),
        [Cmd::Ring(a, "11".into(), 30_000)],
        "{:?}",
        rig.legs.cmds
    );
    assert_eq!(rig.cc.len(), 1);
    rig.advance(Duration::from_secs(10));
    rig.event(LegEvent::HungUp {
        leg: a,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&a);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(b)));
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.id, id);
    assert_eq!(r.caller, "11");
    assert_eq!(r.dialled, "12");
    assert_eq!(r.destination.as_deref(), Some("12"));
    assert_eq!(r.direction, CallDirection::Internal);
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.hangup, Some(Hangup::Caller));
    assert_eq!(r.source_ip, Some(HERE), "the answering phone's address");
    // Answer time is the callee's answer, not the user's.
    let answer = r.answer.expect("answered");
    assert_eq!(answer - r.start, Duration::from_secs(3));
    assert_eq!(r.end - answer, Duration::from_secs(10));
    rig.assert_idle();
}

#[test]
fn an_external_number_goes_out_through_the_trunk_once_the_user_answers() {
    let mut rig = Rig::new();
    rig.cc
        .set_trunks(&trunk_links(crate::trunk::TrunkState::Registered));
    rig.office.limits.per_user = Some(1);
    rig.originate("11", "0211 123456").expect("allowed");
    let [(a, _)] = rig.rung().try_into().expect("the user's phone");
    // The user's one external line is taken while the phone rings.
    let err = rig
        .originate("11", "0211123457")
        .expect_err("over the limit");
    assert_eq!(err.kind, CauseKind::Busy);
    assert_eq!(rig.rung().len(), 1);
    rig.answer(a);
    let (b, target) = rig.rung()[1].clone();
    assert_eq!(target, "cloud:+49211123456");
    rig.answer(b);
    rig.event(LegEvent::HungUp {
        leg: b,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&b);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(a)));
    let records = rig.records();
    let r = records.last().expect("record");
    assert_eq!(r.caller, "11");
    assert_eq!(r.direction, CallDirection::Outbound);
    assert_eq!(r.route.as_deref(), Some("cloud"));
    assert_eq!(r.normalised.as_deref(), Some("+49211123456"));
    assert_eq!(r.destination.as_deref(), Some("+49211123456"));
    assert_eq!(r.hangup, Some(Hangup::Callee));
    rig.assert_idle();
}

#[test]
fn a_user_phone_that_rejects_times_out_or_is_absent_ends_cleanly() {
    let mut rig = Rig::new();
    // Rejected (or busy): nothing else rings, nothing is refused towards the phone.
    rig.originate("11", "12").expect("allowed");
    let (a, _) = rig.rung()[0].clone();
    rig.event(LegEvent::Failed {
        leg: a,
        cause: Cause::new(CauseKind::Declined),
    });
    rig.legs.live.remove(&a);
    assert_eq!(rig.cmds_for(a), [Cmd::Ring(a, "11".into(), 30_000)]);
    assert_eq!(rig.rung().len(), 1);
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::Busy);
    assert_eq!(r.answer, None);
    rig.assert_idle();

    // Not answered in the ring time: the phone stops ringing.
    rig.originate("11", "12").expect("allowed");
    let (a, _) = rig.rung()[1].clone();
    rig.advance(Duration::from_secs(29));
    assert_eq!(rig.cmds_for(a).len(), 1);
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.cmds_for(a).last(), Some(&Cmd::HangUp(a)));
    assert_eq!(rig.rung().len(), 2, "the number was never dialled");
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::NoAnswer);
    rig.assert_idle();

    // No phone of the extension reachable: refused at once.
    rig.legs.absent.insert("11".into());
    let err = rig.originate("11", "12").expect_err("unreachable");
    assert_eq!(err.kind, CauseKind::Unavailable);
    assert!(err.detail.unwrap_or_default().contains("11"));
    assert_eq!(rig.records().len(), 1);
    rig.assert_idle();
}

#[test]
fn a_callee_that_is_busy_hangs_up_the_user_instead_of_refusing() {
    let mut rig = Rig::new();
    rig.originate("11", "12").expect("allowed");
    let (a, _) = rig.rung()[0].clone();
    rig.answer(a);
    let (b, _) = rig.rung()[1].clone();
    rig.event(LegEvent::Failed {
        leg: b,
        cause: Cause::new(CauseKind::Busy),
    });
    rig.legs.live.remove(&b);
    // After the busy tone (call/tests/ringback.rs).
    rig.advance(crate::call::core::FAILURE_TONE);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(a)));
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::Busy);
    assert_eq!(r.destination.as_deref(), Some("12"));
    rig.assert_idle();

    // The user hangs up while the number rings: the callee stops ringing.
    rig.originate("11", "13").expect("allowed");
    let (a, _) = rig.rung()[2].clone();
    rig.answer(a);
    let (b, _) = rig.rung()[3].clone();
    rig.event(LegEvent::HungUp {
        leg: a,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&a);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(b)));
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.answer, None);
    rig.assert_idle();
}
