//! A fax on a call between an analog port and a SIP leg on G.722: the SIP leg is
//! re-INVITEd to G.711 ([`super::fax_g711`]), through the whole endpoint core on a
//! simulated clock.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::message::Message;

use super::tests::{
    callee_request, caller_request, find, is_req, is_status, reply_from, rig_with_port, sdp, Rig,
};
use crate::call::Side;
use crate::line::Hook;
use crate::media::sdp::{Codec, Sdp};

/// The port dials 1002 at 10.0.0.2, which answers with G.722 only.
fn port_calls_g722_phone(rig: &mut Rig) -> Message {
    rig.register("1002", "10.0.0.2");
    rig.port_hook(Hook::OffHook);
    let out = rig.port_dtmf("1002");
    let invite = find(&out, |m| is_req(m, "INVITE")).clone();
    let answer = sdp("10.0.0.2", 5000, "9");
    let out = rig.feed(
        "10.0.0.2",
        &reply_from("10.0.0.2", &invite, 200, "p2", Some(&answer)),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")));
    assert_eq!(last_codec(rig, Side::Callee), Some(Codec::G722));
    invite
}

fn last_codec(rig: &Rig, side: Side) -> Option<Codec> {
    rig.office
        .configured
        .iter()
        .rev()
        .find(|(_, s, _)| *s == side)
        .map(|(_, _, n)| n.codec)
}

fn fax(rig: &mut Rig) -> Vec<(SocketAddr, Message)> {
    rig.ep.handle_port_fax(rig.now, 0, &mut rig.office);
    rig.collect()
}

/// The INVITEs sent, each once (UDP retransmissions dropped).
fn reinvites(out: &[(SocketAddr, Message)]) -> Vec<Message> {
    let mut seen = Vec::new();
    out.iter()
        .filter(|(_, m)| is_req(m, "INVITE"))
        .filter(|(_, m)| {
            let c = cseq(m);
            let new = !seen.contains(&c);
            seen.push(c);
            new
        })
        .map(|(_, m)| m.clone())
        .collect()
}

/// The offer's payload types and its `o=` version.
fn offer_of(m: &Message) -> (String, u64) {
    let body = String::from_utf8_lossy(m.body()).into_owned();
    assert!(Sdp::parse(m.body()).is_ok(), "{body}");
    let mline = body
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap_or_default();
    let pts = mline.split(' ').skip(3).collect::<Vec<_>>().join(" ");
    let version = body
        .lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split(' ').nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (pts, version)
}

fn cseq(m: &Message) -> u32 {
    m.cseq().map(|c| c.seq).unwrap_or(0)
}

#[test]
fn fax_on_a_g722_leg_reinvites_it_to_g711_retrying_after_glare() {
    let mut rig = rig_with_port();
    let invite = port_calls_g722_phone(&mut rig);
    let (_, v0) = offer_of(&invite);

    let out = fax(&mut rig);
    let re = reinvites(&out);
    assert_eq!(re.len(), 1, "{out:#?}");
    let first = re[0].clone();
    assert_eq!(first.call_id().ok(), invite.call_id().ok());
    let (pts, v1) = offer_of(&first);
    assert_eq!(pts, "8 0 101", "A-law, µ-law and telephone-event only");
    assert_eq!(v1, v0 + 1, "o= version goes up by one (RFC 3264 sec. 8)");

    // The phone's own re-INVITE crosses ours: it gets 491 ...
    let mut theirs = callee_request("10.0.0.2", &invite, "p2", "INVITE", 2, "");
    let body = sdp("10.0.0.2", 5000, "9");
    theirs = theirs.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let out = rig.feed("10.0.0.2", &theirs);
    assert!(out.iter().any(|(_, m)| is_status(m, 491)), "{out:#?}");
    // ... and it answers ours with 491 too: nothing is sent at once.
    let out = rig.feed("10.0.0.2", &reply_from("10.0.0.2", &first, 491, "p2", None));
    assert!(reinvites(&out).is_empty(), "{out:#?}");
    assert_eq!(last_codec(&rig, Side::Callee), Some(Codec::G722));
    // We made the Call-ID: the retry comes 2.1–4 s later (RFC 3261 sec. 14.1).
    assert!(reinvites(&rig.advance(Duration::from_millis(2090))).is_empty());
    let out = rig.advance(Duration::from_millis(1920));
    let re = reinvites(&out);
    assert_eq!(re.len(), 1, "{out:#?}");
    let second = re[0].clone();
    assert!(cseq(&second) > cseq(&first));
    let (pts, v2) = offer_of(&second);
    assert_eq!((pts.as_str(), v2), ("8 0 101", v1 + 1));

    // The phone takes A-law: we ACK and the relay's leg runs A-law.
    let out = rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &second,
            200,
            "p2",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    let ack = find(&out, |m| is_req(m, "ACK"));
    assert_eq!(cseq(ack), cseq(&second));
    assert_eq!(last_codec(&rig, Side::Callee), Some(Codec::Pcma));
    assert!(!out.iter().any(|(_, m)| is_req(m, "BYE")));

    // Another fax tone: the leg is on G.711, nothing more is sent.
    assert!(reinvites(&fax(&mut rig)).is_empty());
    assert!(reinvites(&rig.advance(Duration::from_secs(10))).is_empty());

    let mut out = rig.port_hook(Hook::OnHook);
    out.extend(rig.advance(Duration::from_secs(1)));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply_from("10.0.0.2", &bye, 200, "p2", None));
    rig.assert_idle();
}

#[test]
fn a_refused_switch_keeps_the_call_and_is_not_tried_again() {
    let mut rig = rig_with_port();
    rig.port_hook(Hook::OnHook);
    // 1001 calls the port offering G.722 first; the box answers G.722.
    let out = rig.invite_from(
        "1001",
        "10.0.0.1",
        "1005",
        "fx2",
        &sdp("10.0.0.1", 4000, "9 8"),
    );
    assert!(out.iter().any(|(_, m)| is_status(m, 180)));
    let out = rig.port_hook(Hook::OffHook);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ackfx2"));
    assert_eq!(last_codec(&rig, Side::Caller), Some(Codec::G722));

    let out = fax(&mut rig);
    let re = reinvites(&out);
    assert_eq!(re.len(), 1, "{out:#?}");
    assert_eq!(offer_of(&re[0]).0, "8 0 101");
    assert!(re[0].request_uri().is_some_and(|u| u.host() == "10.0.0.1"));
    // The caller cannot do G.711 now: 488. The call goes on as it was.
    let refusal = super::tests::reply(&re[0], 488, "Not Acceptable Here", "t1001", None);
    let out = rig.feed("10.0.0.1", &refusal);
    assert!(!out.iter().any(|(_, m)| is_req(m, "BYE")), "{out:#?}");
    assert_eq!(last_codec(&rig, Side::Caller), Some(Codec::G722));
    assert_eq!(rig.ep.calls().len(), 1);
    // No second attempt, neither by timer nor by another tone.
    assert!(reinvites(&rig.advance(Duration::from_secs(10))).is_empty());
    assert!(reinvites(&fax(&mut rig)).is_empty());

    // A later re-INVITE of the caller is still answered with G.722 (codecs restored).
    let mut theirs = caller_request("INVITE", &ok, 3, "refx2");
    let body = sdp("10.0.0.1", 4000, "9");
    theirs = theirs.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let out = rig.feed("10.0.0.1", &theirs);
    let ok2 = find(&out, |m| is_status(m, 200));
    assert!(String::from_utf8_lossy(ok2.body()).contains("G722"));

    rig.feed("10.0.0.1", &caller_request("BYE", &ok, 4, "byefx2"));
    rig.port_hook(Hook::OnHook);
    rig.assert_idle();
}

#[test]
fn a_leg_already_on_g711_is_left_alone() {
    let mut rig = rig_with_port();
    rig.register("1002", "10.0.0.2");
    rig.port_hook(Hook::OffHook);
    let out = rig.port_dtmf("1002");
    let invite = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &invite,
            200,
            "p2",
            Some(&sdp("10.0.0.2", 5000, "0")),
        ),
    );
    assert_eq!(last_codec(&rig, Side::Callee), Some(Codec::Pcmu));
    assert!(reinvites(&fax(&mut rig)).is_empty());
    assert!(reinvites(&rig.advance(Duration::from_secs(5))).is_empty());
    let mut out = rig.port_hook(Hook::OnHook);
    out.extend(rig.advance(Duration::from_secs(1)));
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply_from("10.0.0.2", &bye, 200, "p2", None));
    rig.assert_idle();
}

#[test]
fn the_trunk_leg_of_a_call_to_a_port_is_switched_too() {
    use crate::trunk::{TrunkAuth, TrunkLink, TrunkState};
    const PROVIDER: &str = "203.0.113.5";
    let mut rig = rig_with_port();
    rig.port_hook(Hook::OnHook);
    rig.ep.trunks_mut().upsert(TrunkLink {
        name: "cloud".into(),
        domain: "sip.provider.example".into(),
        user: "4930123".into(),
        auth: Some(TrunkAuth {
            user: "4930123".into(),
            password: "trunk-secret".into(),
        }),
        flow: Some(super::tests::flow_of(PROVIDER)),
        peers: vec![PROVIDER.parse().expect("ip")],
        public: None,
        state: TrunkState::Registered,
        srtp: None,
    });
    rig.office.dids.insert("+4921112345".into(), "1005".into());
    // The provider calls the port's number offering G.722 first.
    let body = sdp(PROVIDER, 30000, "9 8");
    let invite = format!(
        "INVITE sip:4930123@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PROVIDER}:5060;branch=z9hG4bKfx4\r\n\
         From: <sip:+4930555@sip.provider.example>;tag=pfx4\r\nTo: <sip:+4921112345@sip.provider.example>\r\n\
         Call-ID: fx4\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\nContact: <sip:{PROVIDER}:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    rig.feed(PROVIDER, &invite);
    let out = rig.port_hook(Hook::OffHook);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed(PROVIDER, &caller_request("ACK", &ok, 1, "ackfx4"));
    assert_eq!(last_codec(&rig, Side::Caller), Some(Codec::G722));

    // The fax: the trunk leg gets the G.711-only offer, at the provider.
    let out = fax(&mut rig);
    let re = reinvites(&out);
    assert_eq!(re.len(), 1, "{out:#?}");
    assert_eq!(offer_of(&re[0]).0, "8 0 101");
    assert!(out
        .iter()
        .any(|(to, m)| is_req(m, "INVITE") && to.ip().to_string() == PROVIDER));
    let answer = sdp(PROVIDER, 30000, "8");
    let out = rig.feed(
        PROVIDER,
        &super::tests::reply(&re[0], 200, "OK", "pfx4", Some(&answer)),
    );
    assert!(out.iter().any(|(_, m)| is_req(m, "ACK")), "{out:#?}");
    assert_eq!(last_codec(&rig, Side::Caller), Some(Codec::Pcma));

    rig.feed(PROVIDER, &caller_request("BYE", &ok, 2, "byefx4"));
    rig.port_hook(Hook::OnHook);
    rig.assert_idle();
}
