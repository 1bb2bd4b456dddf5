//! Call control on its own, with legs that are not SIP: a leg layer that only
//! records the commands it gets (as an analog port or the GSM module would take
//! them) and events made by hand. The SIP scenarios through the whole endpoint are in
//! `sip::ua::tests`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::dialplan::Site;
use crate::media::sdp::{Codec, Direction, Negotiated};
use crate::registrar::{Directory, ExtensionSecrets};
use crate::store::{RingGroup, RingStrategy};

mod forwarded;
mod originate;
mod ringback;

/// What call control told the legs, in order.
#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    Accept(LegId, u16),
    Ring(LegId, String, u16),
    Progress(LegId, bool, bool),
    Answer(LegId),
    Reject(LegId, CauseKind),
    HangUp(LegId),
    Move(LegId, u16),
    Transfer(LegId, TransferStatus),
}

/// Legs that only remember commands. Extensions listed in `absent` cannot be rung.
#[derive(Default)]
struct FakeLegs {
    next: LegId,
    cmds: Vec<Cmd>,
    absent: HashSet<String>,
    /// Live legs (rung or accepted, not yet hung up or rejected).
    live: HashSet<LegId>,
    /// The caller shown on each leg rung, in order.
    shown: Vec<String>,
    /// Every target rung, in order (trunk targets carry caller ID and CLIR).
    targets: Vec<RingTarget>,
}

impl Legs for FakeLegs {
    fn accept(
        &mut self,
        leg: LegId,
        media: MediaPort,
        _needs_offer: bool,
    ) -> Result<Option<Negotiated>, Cause> {
        self.cmds.push(Cmd::Accept(leg, media.port));
        self.live.insert(leg);
        Ok(Some(neg()))
    }
    fn ring(
        &mut self,
        target: &RingTarget,
        from: &Party,
        media: MediaPort,
    ) -> Result<LegId, Cause> {
        let ext = match target {
            RingTarget::Extension(ext) => ext,
            RingTarget::Trunk { trunk, number, .. } => &format!("{}:{number}", trunk.name),
            RingTarget::Gsm { number } => &format!("gsm:{number}"),
        };
        if self.absent.contains(ext) {
            return Err(Cause::new(CauseKind::Unavailable));
        }
        self.next += 1;
        let leg = 100 + self.next;
        self.cmds.push(Cmd::Ring(leg, ext.clone(), media.port));
        self.shown.push(from.number.clone());
        self.targets.push(target.clone());
        self.live.insert(leg);
        Ok(leg)
    }
    fn progress(&mut self, leg: LegId, ringing: bool, early: bool) {
        self.cmds.push(Cmd::Progress(leg, ringing, early));
    }
    fn answer(&mut self, leg: LegId) {
        self.cmds.push(Cmd::Answer(leg));
    }
    fn reject(&mut self, leg: LegId, cause: &Cause) {
        self.cmds.push(Cmd::Reject(leg, cause.kind));
        self.live.remove(&leg);
    }
    fn hang_up(&mut self, leg: LegId) {
        self.cmds.push(Cmd::HangUp(leg));
        self.live.remove(&leg);
    }
    fn move_media(&mut self, leg: LegId, media: MediaPort) {
        self.cmds.push(Cmd::Move(leg, media.port));
    }
    fn transfer_status(&mut self, leg: LegId, status: TransferStatus) {
        self.cmds.push(Cmd::Transfer(leg, status));
    }
}

fn neg() -> Negotiated {
    Negotiated {
        codec: Codec::Pcma,
        pt: 8,
        telephone_event: Some(101),
        remote: SocketAddr::from(([10, 0, 0, 9], 4000)),
        ptime: 20,
        direction: Direction::SendRecv,
        srtp: None,
    }
}

/// Extensions 11..14 (analog-port-like numbers), 14 on do-not-disturb.
struct Office {
    profiles: HashMap<String, ExtensionProfile>,
    groups: HashMap<String, RingGroup>,
    open: HashSet<CallId>,
    sounds: Vec<(CallId, Side, Option<Sound>)>,
    fallbacks: Vec<trunk::EmergencyRoute>,
    limits: trunk::ExternalLimits,
    /// The cloud trunk external calls take, if any.
    trunk: Option<trunk::TrunkTarget>,
    /// The account's numbers (E.164) and where each rings.
    dids: HashMap<String, String>,
    /// The account's number each extension presents.
    caller_ids: HashMap<String, String>,
    /// Extensions allowed to forward to external numbers.
    forward_out: HashSet<String>,
    /// Extensions locked for external calls, with the reason.
    locked: HashMap<String, String>,
}

impl Office {
    fn new() -> Self {
        let mut profiles = HashMap::new();
        for n in ["11", "12", "13", "14"] {
            let mut p = ExtensionProfile::plain(None);
            p.dnd = n == "14";
            profiles.insert(n.to_owned(), p);
        }
        Self {
            profiles,
            groups: HashMap::new(),
            open: HashSet::new(),
            sounds: Vec::new(),
            fallbacks: Vec::new(),
            limits: trunk::ExternalLimits::default(),
            trunk: None,
            dids: HashMap::new(),
            caller_ids: HashMap::new(),
            forward_out: HashSet::new(),
            locked: HashMap::new(),
        }
    }
}

impl Directory for Office {
    fn secrets(&mut self, _: &str) -> Option<ExtensionSecrets> {
        None
    }
}

impl CallDirectory for Office {
    fn extension(&self, n: &str) -> Option<ExtensionProfile> {
        self.profiles.get(n).cloned()
    }
    fn ring_group(&self, n: &str) -> Option<RingGroup> {
        self.groups.get(n).cloned()
    }
    fn is_prefix_of_internal(&self, p: &str) -> bool {
        self.profiles
            .keys()
            .any(|n| n.len() > p.len() && n.starts_with(p))
    }
    fn site(&self) -> Site {
        Site::default()
    }
    fn emergency_fallbacks(&self) -> Vec<trunk::EmergencyRoute> {
        self.fallbacks.clone()
    }
    fn external_limits(&self, _: &str, _: &str) -> trunk::ExternalLimits {
        self.limits
    }
    fn trunk_for(&self, _: &str, _: bool) -> Option<trunk::TrunkTarget> {
        self.trunk.clone()
    }
    fn did_destination(&self, _: &str, e164: &str) -> Option<String> {
        self.dids.get(e164).cloned()
    }
    fn caller_id(&self, _: &str, extension: &str) -> Option<String> {
        self.caller_ids.get(extension).cloned()
    }
    fn external_forwarding_allowed_for(&self, extension: &str) -> bool {
        self.forward_out.contains(extension)
    }
    fn external_locked(&self, extension: &str) -> bool {
        self.locked.contains_key(extension)
    }
    fn lock_external(&mut self, extension: &str, reason: &str) {
        self.locked.insert(extension.to_owned(), reason.to_owned());
    }
}

impl MediaControl for Office {
    fn play(&mut self, call: CallId, side: Side, sound: Sound) {
        self.sounds.push((call, side, Some(sound)));
    }
    fn stop_playback(&mut self, call: CallId, side: Side) {
        self.sounds.push((call, side, None));
    }
    fn open(&mut self, call: CallId) -> Result<(u16, u16), String> {
        self.open.insert(call);
        Ok((30_000, 30_002))
    }
    fn configure(&mut self, _: CallId, _: Side, _: &Negotiated) {}
    fn set_active(&mut self, _: CallId, _: bool) {}
    fn close(&mut self, call: CallId) {
        assert!(self.open.remove(&call), "closed twice or never opened");
    }
}

struct Rig {
    cc: CallControl,
    legs: FakeLegs,
    office: Office,
    now: Instant,
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Rig {
    fn new() -> Self {
        Self {
            cc: CallControl::new(CallConfig {
                ring_timeout: Duration::from_secs(30),
                ..CallConfig::default()
            }),
            legs: FakeLegs::default(),
            office: Office::new(),
            now: epoch(),
        }
    }

    fn event(&mut self, e: LegEvent) {
        self.cc
            .handle_event(self.now, e, &mut self.legs, &mut self.office);
    }

    /// Leg `leg` (extension `from`) dials `to`.
    fn dial(&mut self, leg: LegId, from: &str, to: &str) {
        self.event(LegEvent::Incoming {
            leg,
            caller: from.into(),
            dialled: to.into(),
            reference: format!("ref-{leg}"),
            source: HERE,
        });
    }

    /// `from` on leg `leg` calls `to`, whose first rung leg answers and is confirmed:
    /// the two talk. Returns the answering leg.
    fn connected(&mut self, leg: LegId, from: &str, to: &str) -> LegId {
        self.dial(leg, from, to);
        let (b, _) = self.rung()[0].clone();
        self.answer(b);
        self.event(LegEvent::Confirmed { leg, media: None });
        b
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.cc
            .handle_timeout(self.now, &mut self.legs, &mut self.office);
    }

    fn rung(&self) -> Vec<(LegId, String)> {
        self.legs
            .cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Ring(l, e, _) => Some((*l, e.clone())),
                _ => None,
            })
            .collect()
    }

    fn answer(&mut self, leg: LegId) {
        self.event(LegEvent::Answered {
            leg,
            media: neg(),
            peer: HERE,
        });
    }

    fn records(&mut self) -> Vec<CallSummary> {
        std::iter::from_fn(|| self.cc.poll_ended()).collect()
    }

    /// Nothing of any call is left: calls, legs, media, live legs.
    fn assert_idle(&self) {
        assert!(self.cc.is_empty(), "calls left");
        assert_eq!(self.cc.legs_known(), 0, "legs left");
        assert!(self.office.open.is_empty(), "media left open");
        assert!(
            self.legs.live.is_empty(),
            "legs not ended: {:?}",
            self.legs.live
        );
    }
}

#[test]
fn a_call_between_two_non_sip_legs_rings_answers_and_ends() {
    let mut rig = Rig::new();
    rig.dial(1, "11", "12");
    assert_eq!(rig.legs.cmds[0], Cmd::Accept(1, 30_000));
    let [(b, ext)] = rig.rung().try_into().expect("one leg rung");
    assert_eq!(ext, "12");
    assert!(rig.legs.cmds.contains(&Cmd::Ring(b, "12".into(), 30_002)));
    rig.event(LegEvent::Progress {
        leg: b,
        ringing: true,
        media: None,
    });
    assert!(rig.legs.cmds.contains(&Cmd::Progress(1, true, false)));
    rig.answer(b);
    assert!(rig.legs.cmds.contains(&Cmd::Answer(1)));
    rig.event(LegEvent::Confirmed {
        leg: 1,
        media: None,
    });
    // The callee hangs up: the caller is hung up, the record says who.
    rig.event(LegEvent::HungUp {
        leg: b,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&b);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(1)));
    let r = rig.records();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].disposition, Disposition::Answered);
    assert_eq!(r[0].hangup, Some(Hangup::Callee));
    assert_eq!(r[0].destination.as_deref(), Some("12"));
    rig.assert_idle();
}

#[test]
fn busy_and_unreachable_become_causes_for_the_caller() {
    let mut rig = Rig::new();
    // Do-not-disturb: busy at once, nothing rings.
    rig.dial(1, "11", "14");
    assert!(rig.rung().is_empty());
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::Reject(1, CauseKind::Busy)));
    // Nothing reachable for 13: unavailable.
    rig.legs.absent.insert("13".into());
    rig.dial(2, "11", "13");
    assert_eq!(
        rig.legs.cmds.last(),
        Some(&Cmd::Reject(2, CauseKind::Unavailable))
    );
    // The callee's leg fails busy: the caller hears busy.
    rig.dial(3, "11", "12");
    let (b, _) = rig.rung()[0].clone();
    rig.event(LegEvent::Failed {
        leg: b,
        cause: Cause::new(CauseKind::Busy),
    });
    rig.legs.live.remove(&b);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::Reject(3, CauseKind::Busy)));
    let kinds: Vec<Disposition> = rig.records().iter().map(|r| r.disposition).collect();
    assert_eq!(
        kinds,
        [Disposition::Busy, Disposition::NoAnswer, Disposition::Busy]
    );
    rig.assert_idle();
}

#[test]
fn a_simultaneous_group_stops_the_others_when_one_answers_and_times_out_otherwise() {
    let mut rig = Rig::new();
    rig.office.groups.insert(
        "20".into(),
        RingGroup {
            number: "20".into(),
            name: Some("office".into()),
            strategy: RingStrategy::Simultaneous,
            members: vec!["12".into(), "13".into()],
            ring_secs: 15,
            noanswer_target: None,
        },
    );
    rig.dial(1, "11", "20");
    let rung = rig.rung();
    assert_eq!(rung.len(), 2);
    rig.answer(rung[1].0);
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(rung[0].0)));
    assert!(rig.legs.cmds.contains(&Cmd::Answer(1)));
    rig.event(LegEvent::HungUp {
        leg: 1,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&1);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(rung[1].0)));
    // Nobody answers: after the group's ring time the caller gets unavailable.
    rig.dial(2, "11", "20");
    rig.advance(Duration::from_secs(16));
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Reject(2, CauseKind::Unavailable)));
    rig.records();
    rig.assert_idle();
}

#[test]
fn blind_transfer_replaces_the_transferor_with_the_target() {
    let mut rig = Rig::new();
    let b = rig.connected(1, "11", "12");
    // The callee transfers the caller to 13.
    rig.event(LegEvent::TransferRequested {
        leg: b,
        target: "13".into(),
    });
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Transfer(b, TransferStatus::Accepted)));
    let (t, ext) = rig.rung().last().cloned().expect("target rung");
    assert_eq!(ext, "13");
    // On the callee side's port: the caller keeps its media.
    assert!(rig.legs.cmds.contains(&Cmd::Ring(t, "13".into(), 30_002)));
    rig.answer(t);
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Transfer(b, TransferStatus::Done)));
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(b)));
    rig.event(LegEvent::HungUp {
        leg: 1,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&1);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(t)));
    let r = rig.records();
    assert_eq!(r[0].reason.as_deref(), Some("transferred to 13"));
    assert_eq!(r[0].destination.as_deref(), Some("13"));
    rig.assert_idle();
}

#[test]
fn a_held_call_transferred_to_the_enquiry_party_stops_its_music() {
    // 11 talks to 12, holds (as a hook flash does), calls 13, and hands 12 over to 13.
    let mut rig = Rig::new();
    let b = rig.connected(1, "11", "12");
    let mut held = neg();
    held.direction = Direction::RecvOnly;
    rig.event(LegEvent::Renegotiated {
        leg: 1,
        media: held,
    });
    rig.dial(2, "11", "13");
    let (c, ext) = rig.rung().last().cloned().expect("13 rung");
    assert_eq!(ext, "13");
    rig.answer(c);
    rig.event(LegEvent::Confirmed {
        leg: 2,
        media: None,
    });
    rig.event(LegEvent::ReplaceRequested {
        leg: 1,
        replaces: 2,
    });
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Transfer(1, TransferStatus::Accepted)));
    // 13's media moves to the caller side of call 1, where 11 was.
    assert!(rig.legs.cmds.contains(&Cmd::Move(c, 30_000)));
    rig.event(LegEvent::MediaMoved {
        leg: c,
        result: Ok((neg(), HERE)),
    });
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(1)));
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(2)));
    // 12 heard music while held; it stops once 13 takes 11's place.
    assert_eq!(
        rig.office.sounds,
        [
            (1, Side::Callee, Some(Sound::Hold)),
            (1, Side::Callee, None)
        ]
    );
    let r = rig.records();
    assert_eq!(r.len(), 1, "the enquiry call ended: {r:?}");
    // 12 and 13 talk; 12 hangs up and the call ends cleanly.
    rig.event(LegEvent::HungUp {
        leg: b,
        gone: Gone::Normal,
    });
    rig.legs.live.remove(&b);
    assert_eq!(rig.legs.cmds.last(), Some(&Cmd::HangUp(c)));
    assert_eq!(rig.records().len(), 1, "call 1 ended too");
    rig.legs.live.remove(&1);
    rig.legs.live.remove(&2);
    rig.assert_idle();
}

#[test]
fn hold_plays_music_to_the_other_side() {
    let mut rig = Rig::new();
    rig.dial(1, "11", "12");
    let (b, _) = rig.rung()[0].clone();
    rig.answer(b);
    let mut held = neg();
    held.direction = Direction::RecvOnly;
    rig.event(LegEvent::Renegotiated {
        leg: 1,
        media: held,
    });
    rig.event(LegEvent::Renegotiated {
        leg: 1,
        media: neg(),
    });
    assert_eq!(
        rig.office.sounds,
        [
            (1, Side::Callee, Some(Sound::Hold)),
            (1, Side::Callee, None)
        ]
    );
}

fn trunk_links(state: crate::trunk::TrunkState) -> crate::trunk::TrunkLinks {
    let mut links = crate::trunk::TrunkLinks::default();
    links.upsert(crate::trunk::TrunkLink {
        name: "cloud".into(),
        domain: "sip.provider.example".into(),
        user: "4930123".into(),
        auth: None,
        flow: Some(crate::registrar::Flow {
            transport: crate::registrar::Transport::Udp,
            remote: SocketAddr::from(([203, 0, 113, 5], 5060)),
            local: SocketAddr::from(([192, 0, 2, 1], 5060)),
        }),
        peers: Vec::new(),
        public: None,
        state,
        srtp: None,
    });
    links
}

#[test]
fn emergency_from_a_restricted_port_goes_to_the_gsm_route_when_no_trunk_is_up() {
    let mut rig = Rig::new();
    rig.cc
        .set_trunks(&trunk_links(crate::trunk::TrunkState::Unreachable(
            "no answer".into(),
        )));
    rig.office.fallbacks = vec![trunk::EmergencyRoute::Gsm];
    let p = rig.office.profiles.get_mut("11").expect("11");
    p.class = crate::dialplan::OutboundClass::InternalOnly;
    p.dnd = true;
    // An ordinary external call has no way out.
    rig.dial(1, "11", "0211123456");
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Reject(1, CauseKind::Forbidden)));
    rig.dial(2, "11", "112");
    let [(b, target)] = rig.rung().try_into().expect("one leg rung");
    assert_eq!(target, "gsm:112");
    rig.answer(b);
    rig.event(LegEvent::Confirmed {
        leg: 2,
        media: None,
    });
    rig.legs.live.remove(&2);
    rig.event(LegEvent::HungUp {
        leg: 2,
        gone: Gone::Normal,
    });
    let r = rig.records().pop().expect("record");
    assert_eq!(r.route.as_deref(), Some("gsm"));
    assert_eq!(r.direction, CallDirection::Outbound);
    assert_eq!(r.disposition, Disposition::Answered);
    rig.assert_idle();
}

#[test]
fn the_newest_ordinary_external_call_makes_room_for_an_emergency_call() {
    let mut rig = Rig::new();
    rig.cc
        .set_trunks(&trunk_links(crate::trunk::TrunkState::Registered));
    rig.office.limits.per_trunk = Some(2);
    rig.dial(1, "12", "0211123456");
    let first = rig.rung()[0].0;
    rig.answer(first);
    rig.advance(Duration::from_secs(5));
    rig.dial(2, "13", "0211123457");
    let second = rig.rung()[1].0;
    rig.answer(second);
    // Full: a third ordinary call is refused.
    rig.dial(3, "14", "0211123458");
    assert!(rig
        .legs
        .cmds
        .contains(&Cmd::Reject(3, CauseKind::Congestion)));
    assert_eq!(rig.cc.emergency_len(), 0);
    rig.dial(4, "11", "110");
    // The update policy reads this: no install starts while the call is up.
    assert_eq!(rig.cc.emergency_len(), 1);
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(2)));
    assert!(rig.legs.cmds.contains(&Cmd::HangUp(second)));
    assert!(!rig.legs.cmds.contains(&Cmd::HangUp(1)));
    assert_eq!(rig.rung().last().map(|r| r.1.as_str()), Some("cloud:110"));
    let ended: Vec<_> = rig
        .records()
        .into_iter()
        .map(|r| (r.caller, r.reason))
        .collect();
    assert!(ended.contains(&(
        "13".to_owned(),
        Some("ended to make room for an emergency call".to_owned())
    )));
}
