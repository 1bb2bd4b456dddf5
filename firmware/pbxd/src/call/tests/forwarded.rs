//! Calls an extension forwards to an external number: the outbound leg is the
//! forwarding extension's call (its class, blocked ranges, lock, toll-fraud count,
//! concurrent-call limit and caller ID), the trunk's channels count both legs, and the
//! record names the original caller, the forwarding extension and the target.

use super::*;
use crate::dialplan::OutboundClass;
use crate::registrar::{Flow, Transport};
use crate::store::ForwardTarget;

const PROVIDER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const DID: &str = "+4921155500";
const OFFICE_NUMBER_12: &str = "+4921155512";

/// The office with a registered trunk "cloud"; the DID rings 12, which forwards every
/// call to `target` and may forward out; 12 presents its own account number.
fn forwarding_office(target: &str) -> Rig {
    let mut rig = Rig::new();
    let flow = Flow {
        transport: Transport::Udp,
        remote: SocketAddr::new(PROVIDER, 5060),
        local: SocketAddr::from(([192, 0, 2, 1], 5060)),
    };
    rig.office.trunk = Some(trunk::TrunkTarget::new(
        "cloud",
        "sip.provider.example",
        flow,
    ));
    rig.office.dids.insert(DID.into(), "12".into());
    rig.office
        .caller_ids
        .insert("12".into(), OFFICE_NUMBER_12.into());
    rig.office.forward_out.insert("12".into());
    set_forward(&mut rig, target);
    rig
}

fn set_forward(rig: &mut Rig, target: &str) {
    if let Some(p) = rig.office.profiles.get_mut("12") {
        p.forward_always = Some(ForwardTarget::External(target.into()));
    }
}

/// The provider delivers a call from `caller` to the DID on leg `leg`.
fn from_provider(rig: &mut Rig, leg: LegId, caller: &str) {
    rig.event(LegEvent::IncomingTrunk {
        leg,
        trunk: "cloud".into(),
        called: vec![DID.into()],
        caller: Some(caller.into()),
        name: None,
        reference: format!("in-{leg}"),
        source: PROVIDER,
    });
}

/// The trunk target rung last: (number, clir, identity).
fn last_trunk_target(rig: &Rig) -> (String, bool, Option<String>) {
    match rig.legs.targets.last() {
        Some(RingTarget::Trunk {
            number,
            clir,
            identity,
            ..
        }) => (number.clone(), *clir, identity.clone()),
        other => panic!("last target is not a trunk: {other:?}"),
    }
}

fn detail(r: &CallSummary) -> String {
    r.cause
        .as_ref()
        .and_then(|c| c.detail.clone())
        .unwrap_or_default()
}

#[test]
fn an_inbound_call_forwarded_out_is_recorded_as_the_forwarding_extensions_call() {
    let mut rig = forwarding_office("01701234567");
    from_provider(&mut rig, 1, "+4930123456");
    let [(b, rung)] = rig.rung().try_into().expect("one leg rung");
    assert_eq!(rung, "cloud:+491701234567");
    // The forwarding extension's account number, never the original caller's.
    let (_, clir, identity) = last_trunk_target(&rig);
    assert_eq!(identity.as_deref(), Some(OFFICE_NUMBER_12));
    assert!(!clir);
    rig.answer(b);
    rig.event(LegEvent::Confirmed {
        leg: 1,
        media: None,
    });
    rig.now += Duration::from_secs(30);
    rig.event(LegEvent::HungUp {
        leg: 1,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&1);
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.forwarded_by.as_deref(), Some("12"));
    assert_eq!(
        r.caller, "030123456",
        "the original caller, national format"
    );
    assert_eq!(r.destination.as_deref(), Some("12"));
    assert_eq!(r.normalised.as_deref(), Some("+491701234567"));
    assert_eq!(r.direction, CallDirection::Outbound);
    assert_eq!(r.route.as_deref(), Some("cloud"));
    assert_eq!(r.disposition, Disposition::Answered);
    rig.assert_idle();
}

#[test]
fn a_forward_to_a_blocked_range_is_refused_in_every_spelling_before_the_trunk() {
    for target in [
        "09001234567",
        "+499001234567",
        "00499001234567",
        "0137123456",
    ] {
        let mut rig = forwarding_office(target);
        from_provider(&mut rig, 1, "+4930123456");
        assert!(rig.rung().is_empty(), "{target}: nothing rings");
        assert_eq!(
            rig.legs.cmds.last(),
            Some(&Cmd::Reject(1, CauseKind::Forbidden)),
            "{target}"
        );
        let [r] = rig.records().try_into().expect("one record");
        assert_eq!(r.disposition, Disposition::Blocked, "{target}");
        assert!(
            detail(&r).starts_with("blocked number range"),
            "{target}: {}",
            detail(&r)
        );
        assert_eq!(r.forwarded_by.as_deref(), Some("12"), "{target}");
        rig.assert_idle();
    }
}

#[test]
fn the_forwarding_extensions_outbound_class_applies_not_the_callers() {
    let mut rig = forwarding_office("01701234567");
    if let Some(p) = rig.office.profiles.get_mut("12") {
        p.class = OutboundClass::Local;
    }
    // 11 may call mobiles itself, but its call to 12 is forwarded under 12's class.
    rig.dial(1, "11", "12");
    assert!(rig.rung().is_empty());
    assert_eq!(
        rig.legs.cmds.last(),
        Some(&Cmd::Reject(1, CauseKind::Forbidden))
    );
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(r.disposition, Disposition::Blocked);
    assert!(
        detail(&r).contains("outbound class local"),
        "{}",
        detail(&r)
    );
    rig.assert_idle();
}

#[test]
fn emergency_numbers_are_not_forwarding_targets() {
    for target in ["112", "110"] {
        let mut rig = forwarding_office(target);
        from_provider(&mut rig, 1, "+4930123456");
        assert!(rig.rung().is_empty(), "{target}");
        let [r] = rig.records().try_into().expect("one record");
        assert_eq!(r.disposition, Disposition::Blocked, "{target}");
        assert_eq!(
            detail(&r),
            "emergency numbers cannot be forwarding targets",
            "{target}"
        );
        rig.assert_idle();
    }
}

#[test]
fn the_concurrent_limit_counts_forwarded_calls_against_the_forwarder() {
    let mut rig = forwarding_office("01701234567");
    rig.office.limits.per_user = Some(1);
    // 11 calls 12, which forwards out: 12's one external line is in use.
    rig.dial(1, "11", "12");
    let [(b, _)] = rig.rung().try_into().expect("forwarded out");
    rig.answer(b);
    // 11 has no external call of its own: it may dial out.
    rig.dial(2, "11", "0211987654");
    assert_eq!(rig.rung().len(), 2, "11's own call goes out");
    // 12 has: its own call is refused, and so is a second forward.
    rig.dial(3, "12", "0211987654");
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::Reject(3, CauseKind::Busy)));
    from_provider(&mut rig, 4, "+4930123456");
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::Reject(4, CauseKind::Busy)));
    assert_eq!(rig.rung().len(), 2, "nothing more went out");
    let refused: Vec<String> = rig
        .records()
        .iter()
        .filter(|r| r.disposition == Disposition::Busy)
        .map(detail)
        .collect();
    assert_eq!(
        refused,
        [
            "limit of 1 external calls per user reached",
            "limit of 1 external calls per user reached"
        ]
    );
}

#[test]
fn forwards_count_towards_the_forwarders_per_minute_limit_and_lock_it() {
    let mut rig = forwarding_office("01701234567");
    rig.office.limits.per_minute = Some(2);
    for leg in 1..=2 {
        from_provider(&mut rig, leg, "+4930123456");
        assert_eq!(rig.rung().len() as u64, leg, "forward {leg} goes out");
    }
    from_provider(&mut rig, 3, "+4930123456");
    assert_eq!(rig.rung().len(), 2, "the third forward does not");
    assert_eq!(
        rig.legs.cmds.last(),
        Some(&Cmd::Reject(3, CauseKind::Forbidden))
    );
    assert!(
        rig.office.locked.contains_key("12"),
        "the forwarder is locked"
    );
    assert!(!rig.office.locked.contains_key("11"));
    // Locked: later forwards are refused at once, without counting.
    rig.now += Duration::from_secs(120);
    from_provider(&mut rig, 4, "+4930123456");
    assert_eq!(
        rig.legs.cmds.last(),
        Some(&Cmd::Reject(4, CauseKind::Forbidden))
    );
    let last = rig.records().pop().expect("a record");
    assert!(detail(&last).contains("locked"), "{}", detail(&last));
    assert_eq!(last.forwarded_by.as_deref(), Some("12"));
}

#[test]
fn a_call_forwarded_through_its_own_trunk_takes_two_channels() {
    let mut rig = forwarding_office("01701234567");
    rig.office.limits.per_trunk = Some(3);
    from_provider(&mut rig, 1, "+4930123456");
    assert_eq!(rig.rung().len(), 1);
    // Two channels in use: one more inbound call fits, but its forward does not.
    from_provider(&mut rig, 2, "+4930999999");
    assert_eq!(rig.rung().len(), 1);
    assert_eq!(
        rig.legs.cmds.last(),
        Some(&Cmd::Reject(2, CauseKind::Congestion))
    );
    let [r] = rig.records().try_into().expect("one record");
    assert_eq!(detail(&r), "all 3 channels of trunk cloud busy");
}

#[test]
fn clir_of_the_forwarding_extension_hides_the_forwarded_call() {
    let mut rig = forwarding_office("01701234567");
    if let Some(p) = rig.office.profiles.get_mut("12") {
        p.clir = true;
    }
    from_provider(&mut rig, 1, "+4930123456");
    let (number, clir, identity) = last_trunk_target(&rig);
    assert_eq!(number, "+491701234567");
    assert!(clir);
    assert_eq!(identity.as_deref(), Some(OFFICE_NUMBER_12));
}
