//! Calls over the cloud trunk, raw SIP in and out: the provider at 203.0.113.5 (and a
//! second one at 203.0.113.6) is in the endpoint's trunk links as registered, as the
//! registration client would leave it.

use std::time::Duration;

use pbx_sip::auth;
use pbx_sip::message::{HeaderName, Message};

use super::tests::*;
use crate::call::trunk::{EmergencyRoute, ExternalLimits};
use crate::call::{CallDirection, Disposition};
use crate::dialplan::OutboundClass;
use crate::media::sdp::{self, Codec, Direction, LocalMedia, Origin, Sdp};
use crate::store::Severity;
use crate::trunk::{TrunkAuth, TrunkLink, TrunkState};

const PROVIDER: &str = "203.0.113.5";
const PROVIDER_B: &str = "203.0.113.6";

fn link(name: &str, ip: &str, state: TrunkState) -> TrunkLink {
    TrunkLink {
        name: name.into(),
        domain: "sip.provider.example".into(),
        user: "4930123".into(),
        auth: Some(TrunkAuth {
            user: "4930123".into(),
            password: "trunk-secret".into(),
        }),
        flow: Some(flow_of(ip)),
        peers: vec![ip.parse().expect("ip")],
        public: None,
        state,
        srtp: None,
    }
}

fn rig() -> Rig {
    let mut rig = Rig::new();
    rig.ep
        .trunks_mut()
        .upsert(link("cloud", PROVIDER, TrunkState::Registered));
    rig.office.dids.insert("+4921112345".into(), "1002".into());
    rig.office
        .caller_ids
        .insert("1001".into(), "+4921112346".into());
    rig.office.emergency_cid = Some("+4921112340".into());
    rig
}

/// A provider's INVITE to our Contact, `to` as the To user, with `extra` headers.
fn provider_invite(call: &str, ruri_user: &str, to: &str, extra: &str) -> String {
    let body = sdp(PROVIDER, 30000, "8 0");
    format!(
        "INVITE sip:{ruri_user}@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PROVIDER}:5060;branch=z9hG4bK{call}\r\n\
         From: \"Erika Muster\" <sip:+4930555@sip.provider.example>;tag=p{call}\r\nTo: <sip:{to}@sip.provider.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\nContact: <sip:{PROVIDER}:5060>\r\n{extra}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The provider's response to our `req`, with `extra` headers.
fn provider_reply(
    req: &Message,
    status: u16,
    reason: &str,
    extra: &str,
    body: Option<&str>,
) -> String {
    reply(req, status, reason, "prov", body)
        .replace("10.0.0.2:5060>", &format!("{PROVIDER}:5060>"))
        .replacen("Contact:", &format!("{extra}Contact:"), 1)
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.header(&HeaderName::Other(name.into()))
}

#[test]
fn a_call_to_one_of_our_numbers_rings_its_extension_with_the_caller_in_national_format() {
    let mut rig = rig();
    rig.register("1002", "10.0.0.2");
    let out = rig.feed(
        PROVIDER,
        &provider_invite("in1", "4930123", "+4921112345", ""),
    );
    // No challenge for the provider: the phone rings.
    assert!(out.iter().all(|(_, m)| !is_status(m, 407)), "{out:#?}");
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        fork.request_uri().and_then(|u| u.user()),
        Some("1002"),
        "{fork:?}"
    );
    let from = fork.header(&HeaderName::From).expect("from");
    assert!(from.contains("sip:030555@"), "{from}");
    assert!(from.contains("Erika Muster"), "{from}");
    let out = rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &fork,
            200,
            "bob",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    let ok = out
        .iter()
        .find(|(to, m)| is_status(m, 200) && to.ip().to_string() == PROVIDER)
        .map(|(_, m)| m.clone())
        .expect("200 to the provider");
    let bye = format!(
        "BYE sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PROVIDER}:5060;branch=z9hG4bKin1bye\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: in1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ok.header(&HeaderName::From).expect("from"),
        ok.header(&HeaderName::To).expect("to"),
    );
    let ack = bye
        .replace("BYE sip", "ACK sip")
        .replace("2 BYE", "1 ACK")
        .replace("in1bye", "in1ack");
    rig.feed(PROVIDER, &ack);
    let out = rig.feed(PROVIDER, &bye);
    let to_phone = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&to_phone, 200, "OK", "bob", None));
    let r = rig.records.last().expect("record");
    assert_eq!(r.direction, CallDirection::Inbound);
    assert_eq!(r.route.as_deref(), Some("cloud"));
    assert_eq!(r.caller, "030555");
    assert_eq!(r.normalised.as_deref(), Some("+4930555"));
    assert_eq!(r.dialled, "+4921112345");
    assert_eq!(r.disposition, Disposition::Answered);
    rig.assert_idle();
}

#[test]
fn p_called_party_id_and_privacy_are_honoured() {
    let mut rig = rig();
    rig.register("1002", "10.0.0.2");
    let extra = "P-Called-Party-ID: <sip:+4921112345@sip.provider.example>\r\n\
                 P-Asserted-Identity: <sip:+4930999@sip.provider.example>\r\nPrivacy: id\r\n";
    let out = rig.feed(
        PROVIDER,
        &provider_invite("in2", "4930123", "4930123", extra),
    );
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let from = fork.header(&HeaderName::From).expect("from");
    assert!(
        from.contains("anonymous") && !from.contains("30999"),
        "{from}"
    );
    rig.feed("10.0.0.2", &reply_from("10.0.0.2", &fork, 486, "bob", None));
    let r = rig.records.last().expect("record");
    assert_eq!(
        (r.caller.as_str(), r.disposition),
        ("anonymous", Disposition::Busy)
    );
    rig.assert_idle();
}

#[test]
fn unknown_numbers_get_404_and_strangers_are_challenged_and_refused() {
    let mut rig = rig();
    rig.register("1002", "10.0.0.2");
    let out = rig.feed(
        PROVIDER,
        &provider_invite("in3", "4930123", "+4921199999", ""),
    );
    let nf = find(&out, |m| is_status(m, 404));
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    assert!(nf
        .header(&HeaderName::Other("Warning".into()))
        .is_some_and(|w| w.contains("not a number of this office")));
    let r = rig.records.last().expect("record");
    assert_eq!(r.direction, CallDirection::Inbound);
    assert_eq!(r.sip_status, Some(404));

    // The same INVITE from an address that is not the provider's: no call without
    // digest credentials, and wrong ones are refused with 403 (and counted).
    let stranger = provider_invite("in4", "1002", "+4921112345", "")
        .replace(PROVIDER, "198.51.100.66")
        .replace("sip:1002@192.0.2.1:5060", "sip:1002@pbx.local");
    let out = rig.feed("198.51.100.66", &stranger);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(is_status(&out[0].1, 407));
    let with_bad = stranger
        .replace("branch=z9hG4bKin4", "branch=z9hG4bKin4b")
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
        .replace(
            "Max-Forwards",
            "Proxy-Authorization: Digest username=\"+4930555\", realm=\"pbx.local\", nonce=\"x\", uri=\"sip:1002@pbx.local\", response=\"00000000000000000000000000000000\"\r\nMax-Forwards",
        );
    let out = rig.feed("198.51.100.66", &with_bad);
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")), "{out:#?}");
    assert!(
        out.iter()
            .any(|(_, m)| matches!(m.status(), Some(403 | 407))),
        "{out:#?}"
    );
    rig.assert_idle();
}

#[test]
fn outbound_calls_carry_e164_our_number_and_answer_the_providers_challenge_once() {
    let mut rig = rig();
    let out = rig.invite("0211123456", "o1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        inv.request_uri().map(|u| u.to_string()),
        Some("sip:+49211123456@sip.provider.example".into())
    );
    let from = inv.header(&HeaderName::From).expect("from");
    assert!(
        from.contains("sip:+4921112346@sip.provider.example"),
        "{from}"
    );
    assert_eq!(
        header(&inv, "P-Preferred-Identity"),
        Some("<sip:+4921112346@sip.provider.example>")
    );
    assert!(header(&inv, "Privacy").is_none());

    // 407: answered once with the trunk's credentials.
    let chal = "Proxy-Authenticate: Digest realm=\"sip.provider.example\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\n";
    let out = rig.feed(
        PROVIDER,
        &provider_reply(&inv, 407, "Proxy Authentication Required", chal, None),
    );
    let again = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(again.cseq().map(|c| c.seq).ok(), Some(2));
    assert_eq!(again.call_id().ok(), inv.call_id().ok());
    let creds = again
        .header(&HeaderName::ProxyAuthorization)
        .expect("credentials");
    let creds = auth::Credentials::parse(creds).expect("parses");
    let ha1 = auth::ha1(
        auth::Algorithm::Md5,
        "4930123",
        "sip.provider.example",
        "trunk-secret",
    );
    assert!(
        auth::verify(&creds, "INVITE", &ha1),
        "the provider can verify them"
    );
    // A second 407: the credentials are wrong; no third attempt.
    let out = rig.feed(
        PROVIDER,
        &provider_reply(&again, 407, "Proxy Authentication Required", chal, None),
    );
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")), "{out:#?}");
    let refused = find(&out, |m| is_status(m, 500));
    assert!(
        refused
            .reason()
            .is_some_and(|r| r.contains("trunk auth failed")),
        "{refused:?}"
    );
    rig.assert_idle();
}

#[test]
fn clir_hides_the_caller_but_tells_the_provider_who_pays() {
    let mut rig = rig();
    let out = rig.invite("*31#0211123456", "o2");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(header(&inv, "Privacy"), Some("id"));
    let from = inv.header(&HeaderName::From).expect("from");
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>"),
        "{from}"
    );
    assert_eq!(
        header(&inv, "P-Preferred-Identity"),
        Some("<sip:+4921112346@sip.provider.example>")
    );
    rig.feed(PROVIDER, &provider_reply(&inv, 486, "Busy Here", "", None));
    rig.assert_idle();
}

#[test]
fn no_balance_gives_the_reason_and_an_alert_until_a_call_succeeds() {
    let mut rig = rig();
    let out = rig.invite("0211123456", "b1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        PROVIDER,
        &provider_reply(&inv, 402, "Payment Required", "", None),
    );
    let refused = find(&out, |m| is_status(m, 402));
    assert_eq!(
        refused.reason(),
        Some("Payment Required: outgoing calls refused by provider: balance")
    );
    assert_eq!(
        rig.office.alerts.last(),
        Some(&(
            "trunk:cloud:balance".to_owned(),
            Some(Severity::Warning),
            "outgoing calls refused by provider: balance".to_owned()
        ))
    );
    // Same for a 403 whose words say so. No redial: one INVITE per call.
    let out = rig.invite("0211123456", "b2");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        PROVIDER,
        &provider_reply(&inv, 403, "Insufficient Balance", "", None),
    );
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    find(&out, |m| is_status(m, 402));

    // Incoming calls are unaffected.
    rig.register("1002", "10.0.0.2");
    let out = rig.feed(
        PROVIDER,
        &provider_invite("b3", "4930123", "+4921112345", ""),
    );
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply_from("10.0.0.2", &fork, 486, "bob", None));

    // A call that connects clears the alert.
    let out = rig.invite("0211123456", "b4");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed(
        PROVIDER,
        &provider_reply(&inv, 200, "OK", "", Some(&sdp(PROVIDER, 30000, "8"))),
    );
    assert_eq!(
        rig.office.alerts.last(),
        Some(&("trunk:cloud:balance".to_owned(), None, String::new()))
    );
}

#[test]
fn other_refusals_map_to_reasons() {
    let mut rig = rig();
    for (i, (status, reason, want)) in [
        (403, "Forbidden", 403),
        (404, "Not Found", 404),
        (484, "Address Incomplete", 484),
        (486, "Busy Here", 486),
        (503, "Service Unavailable", 503),
    ]
    .into_iter()
    .enumerate()
    {
        let out = rig.invite("0211123456", &format!("r{i}"));
        let inv = find(&out, |m| is_req(m, "INVITE")).clone();
        let out = rig.feed(PROVIDER, &provider_reply(&inv, status, reason, "", None));
        find(&out, |m| is_status(m, want));
        let r = rig.records.last().expect("record");
        assert_eq!(r.sip_status, Some(want), "{status}");
    }
    rig.assert_idle();
}

#[test]
fn blocked_ranges_never_reach_the_provider() {
    let mut rig = rig();
    for (i, n) in ["09001234567", "+49900123456", "0049900123456"]
        .iter()
        .enumerate()
    {
        let out = rig.invite(n, &format!("x{i}"));
        assert!(
            out.iter().all(|(to, _)| to.ip().to_string() != PROVIDER),
            "{n}: {out:#?}"
        );
        find(&out, |m| is_status(m, 403));
    }
    rig.assert_idle();
}

#[test]
fn toll_fraud_locks_an_extension_that_calls_out_too_often_but_never_blocks_emergency() {
    let mut rig = rig();
    rig.office.limits = ExternalLimits {
        per_minute: Some(2),
        ..ExternalLimits::default()
    };
    for i in 0..2 {
        let out = rig.invite("0211123456", &format!("f{i}"));
        let inv = find(&out, |m| is_req(m, "INVITE")).clone();
        rig.feed(PROVIDER, &provider_reply(&inv, 486, "Busy Here", "", None));
    }
    let out = rig.invite("0211123456", "f2");
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    let refused = find(&out, |m| is_status(m, 403));
    assert!(
        refused.reason().is_some_and(|r| r.contains("toll-fraud")),
        "{refused:?}"
    );
    assert!(rig.office.locked.contains("1001"));
    assert!(rig
        .office
        .alerts
        .iter()
        .any(|(k, s, _)| k == "fraud:1001" && *s == Some(Severity::Critical)));
    // Locked: refused at once, even after the minute.
    rig.advance(Duration::from_secs(120));
    let out = rig.invite("0211123456", "f3");
    find(&out, |m| is_status(m, 403));
    // Emergency calls still go out.
    let out = rig.invite("112", "f4");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        inv.request_uri().map(|u| u.to_string()),
        Some("sip:112@sip.provider.example".into())
    );
    rig.feed(PROVIDER, &provider_reply(&inv, 486, "Busy Here", "", None));
}

#[test]
fn emergency_calls_go_out_under_every_restriction_with_the_site_caller_id() {
    let mut rig = rig();
    {
        let p = rig.office.profiles.get_mut("1001").expect("1001");
        p.class = OutboundClass::InternalOnly;
        p.dnd = true;
        p.clir = true;
    }
    rig.office.locked.insert("1001".into());
    rig.office.limits = ExternalLimits {
        per_user: Some(1),
        per_trunk: Some(1),
        per_minute: Some(1),
    };
    // 1003 holds the only channel with an ordinary external call.
    rig.register("1003", "10.0.0.3");
    let out = rig.invite_from(
        "1003",
        "10.0.0.3",
        "0211123456",
        "busy",
        &sdp("10.0.0.3", 4000, "8"),
    );
    let ordinary = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed(
        PROVIDER,
        &provider_reply(&ordinary, 200, "OK", "", Some(&sdp(PROVIDER, 30000, "8"))),
    );
    // The trunk is full, and a second external call is refused.
    let out = rig.invite_from(
        "1002",
        "10.0.0.2",
        "0211123457",
        "full",
        &sdp("10.0.0.2", 4000, "8"),
    );
    find(&out, |m| is_status(m, 503));

    for (i, n) in ["110", "112", "*31#112"].iter().enumerate() {
        let out = rig.invite(n, &format!("sos{i}"));
        // The ordinary call made room (first time only: it is gone afterwards).
        if i == 0 {
            let bye = find(&out, |m| {
                is_req(m, "BYE") && m.call_id().ok() == ordinary.call_id().ok()
            });
            rig.feed(PROVIDER, &provider_reply(bye, 200, "OK", "", None));
        }
        let inv = find(&out, |m| is_req(m, "INVITE")).clone();
        let number = n.trim_start_matches("*31#");
        assert_eq!(
            inv.request_uri().map(|u| u.to_string()),
            Some(format!("sip:{number}@sip.provider.example")),
            "never an area code prefixed"
        );
        assert!(header(&inv, "Privacy").is_none());
        let from = inv.header(&HeaderName::From).expect("from");
        assert!(from.contains("sip:+4921112340@"), "{from}");
        assert_eq!(
            header(&inv, "P-Preferred-Identity"),
            Some("<sip:+4921112340@sip.provider.example>")
        );
        let out = rig.feed(
            PROVIDER,
            &provider_reply(&inv, 200, "OK", "", Some(&sdp(PROVIDER, 30000, "8"))),
        );
        let ok = find(&out, |m| is_status(m, 200)).clone();
        rig.feed(
            "10.0.0.1",
            &caller_request("ACK", &ok, 2, &format!("ack{i}")),
        );
        assert!(rig
            .office
            .alerts
            .iter()
            .any(|(k, s, m)| k == &format!("emergency:sos{i}")
                && *s == Some(Severity::Info)
                && m.contains(number)));
        let out = rig.feed(
            "10.0.0.1",
            &caller_request("BYE", &ok, 3, &format!("bye{i}")),
        );
        let bye = find(&out, |m| is_req(m, "BYE")).clone();
        rig.feed(PROVIDER, &provider_reply(&bye, 200, "OK", "", None));
    }
    let pre = rig
        .records
        .iter()
        .find(|r| r.sip_call_id == "busy")
        .expect("pre-empted call's record");
    assert_eq!(
        pre.reason.as_deref(),
        Some("ended to make room for an emergency call")
    );
    let sos = rig
        .records
        .iter()
        .find(|r| r.sip_call_id == "sos1")
        .expect("record");
    assert_eq!(
        (sos.route.as_deref(), sos.disposition),
        (Some("cloud"), Disposition::Answered)
    );
    rig.assert_idle();
}

#[test]
fn emergency_calls_fall_back_to_the_next_route_when_a_trunk_refuses_or_is_down() {
    let mut rig = rig();
    rig.ep
        .trunks_mut()
        .upsert(link("backup", PROVIDER_B, TrunkState::Registered));
    // Zero balance at the first provider: the second takes the call.
    let out = rig.invite("112", "e1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        PROVIDER,
        &provider_reply(&inv, 402, "Payment Required", "", None),
    );
    let (to, second) = out
        .iter()
        .find(|(_, m)| is_req(m, "INVITE"))
        .cloned()
        .expect("INVITE to the next route");
    assert_eq!(to.ip().to_string(), PROVIDER_B);
    let ok = provider_reply(&second, 200, "OK", "", Some(&sdp(PROVIDER_B, 30000, "8")))
        .replace(&format!("{PROVIDER}:5060>"), &format!("{PROVIDER_B}:5060>"));
    let out = rig.feed(PROVIDER_B, &ok);
    find(&out, |m| is_status(m, 200));
    assert!(rig.office.alerts.iter().any(|(k, s, m)| k == "emergency:e1"
        && *s == Some(Severity::Info)
        && m.contains("backup")));

    // Both trunks unregistered: the GSM route is asked; without a gateway the call
    // fails, and that is critical.
    let mut rig = rig_down();
    rig.office.fallbacks = vec![EmergencyRoute::Gsm];
    let out = rig.invite("112", "e2");
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    find(&out, |m| is_status(m, 480) || is_status(m, 503));
    assert!(rig
        .office
        .alerts
        .iter()
        .any(|(k, s, _)| k == "emergency:e2" && *s == Some(Severity::Critical)));
    let r = rig.records.last().expect("record");
    assert_eq!(r.dialled, "112");
    rig.assert_idle();
}

fn rig_down() -> Rig {
    let mut rig = rig();
    rig.ep.trunks_mut().upsert(link(
        "cloud",
        PROVIDER,
        TrunkState::Unreachable("timeout".into()),
    ));
    rig
}

#[test]
fn telephone_event_takes_the_providers_payload_type_both_ways() {
    let local = LocalMedia {
        addr: "192.0.2.1".parse().expect("ip"),
        port: 20000,
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
        srtp: crate::media::sdp::LocalSrtp::default(),
    };
    let provider = sdp(PROVIDER, 30000, "8").replace("101", "113");
    // Their offer: our answer uses 113.
    let offer = Sdp::parse(provider.as_bytes()).expect("parses");
    let (body, neg) = sdp::answer(&offer, &local, &Origin::new(7)).expect("answer");
    assert_eq!(neg.telephone_event, Some(113));
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("a=rtpmap:113 telephone-event/8000"), "{text}");
    assert!(!text.contains("101"), "{text}");
    // Our offer (101), their answer with 113: we send 113.
    let answer = Sdp::parse(provider.as_bytes()).expect("parses");
    let neg = sdp::accept_answer(&local, &answer).expect("accept");
    assert_eq!(neg.telephone_event, Some(113));
}

#[test]
fn forwarding_out_needs_permission_and_then_goes_through_the_trunk() {
    use crate::store::ForwardTarget;
    let mut rig = rig();
    rig.office
        .profiles
        .get_mut("1002")
        .expect("1002")
        .forward_always = Some(ForwardTarget::External("0211999888".into()));
    let out = rig.invite("1002", "fw1");
    assert!(out.iter().all(|(to, _)| to.ip().to_string() != PROVIDER));
    let refused = find(&out, |m| is_status(m, 403));
    assert!(refused.reason().is_some_and(|r| r.contains("not allowed")));

    rig.office.external_forwarding = true;
    let out = rig.invite("1002", "fw2");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert_eq!(
        inv.request_uri().map(|u| u.to_string()),
        Some("sip:+49211999888@sip.provider.example".into())
    );
    rig.feed(PROVIDER, &provider_reply(&inv, 486, "Busy Here", "", None));
    rig.assert_idle();
}

/// The rig with the trunk's account set to `mode` and, optionally, a public address.
fn rig_with(mode: crate::media::SrtpMode, public: Option<&str>) -> Rig {
    let mut rig = rig();
    let mut l = link("cloud", PROVIDER, TrunkState::Registered);
    l.srtp = Some(mode);
    l.public = public.map(|p| p.parse().expect("addr"));
    rig.ep.trunks_mut().upsert(l);
    rig
}

fn body_of(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

#[test]
fn a_mandatory_srtp_trunk_offers_savp_and_refuses_a_plain_answer() {
    // The box's own --srtp is off (the rig's default): the trunk's mode decides.
    let mut rig = rig_with(crate::media::SrtpMode::Mandatory, None);
    let out = rig.invite("0211123456", "sm1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    let offer = body_of(&inv);
    assert!(offer.contains("RTP/SAVP"), "{offer}");
    assert!(
        offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
        "{offer}"
    );
    // The provider answers plain RTP: not accepted, the call ends on both sides.
    let plain = sdp(PROVIDER, 30000, "8");
    let out = rig.feed(PROVIDER, &provider_reply(&inv, 200, "OK", "", Some(&plain)));
    assert!(
        out.iter()
            .any(|(to, m)| is_req(m, "BYE") && to.ip().to_string() == PROVIDER),
        "the plain answer is hung up: {out:#?}"
    );
    assert!(
        out.iter()
            .all(|(to, m)| !(is_status(m, 200) && to.ip().to_string() == "10.0.0.1")),
        "the caller is not connected: {out:#?}"
    );
    let _ = rig.advance(Duration::from_secs(1));
    assert!(rig
        .records
        .last()
        .is_some_and(|r| r.disposition != Disposition::Answered));
}

#[test]
fn a_mandatory_srtp_trunk_refuses_a_plain_offer_from_the_provider_with_488() {
    let mut rig = rig_with(crate::media::SrtpMode::Mandatory, None);
    rig.register("1002", "10.0.0.2");
    let out = rig.feed(
        PROVIDER,
        &provider_invite("sm2", "4930123", "+4921112345", ""),
    );
    let refused = find(&out, |m| is_status(m, 488));
    assert!(
        header(refused, "Warning").is_some_and(|w| w.contains("SRTP")),
        "{refused:?}"
    );
    assert!(
        out.iter().all(|(_, m)| !is_req(m, "INVITE")),
        "no phone rings: {out:#?}"
    );
}

#[test]
fn an_off_trunk_answers_plain_even_when_the_box_prefers_srtp() {
    // The trunk's mode wins over the global one for the trunk's leg, both ways round.
    let mut rig = rig_with(crate::media::SrtpMode::Off, None);
    let out = rig.invite("0211123456", "so1");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    let offer = body_of(&inv);
    assert!(
        offer.contains("RTP/AVP") && !offer.contains("a=crypto"),
        "{offer}"
    );
}

#[test]
fn answers_to_the_provider_carry_the_public_address_in_contact_and_sdp() {
    let mut rig = rig_with(crate::media::SrtpMode::Off, Some("198.51.100.7:40001"));
    rig.register("1002", "10.0.0.2");
    let out = rig.feed(
        PROVIDER,
        &provider_invite("pub1", "4930123", "+4921112345", ""),
    );
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    let out = rig.feed(
        "10.0.0.2",
        &reply_from(
            "10.0.0.2",
            &fork,
            200,
            "bob",
            Some(&sdp("10.0.0.2", 5000, "8")),
        ),
    );
    let ok = out
        .iter()
        .find(|(to, m)| is_status(m, 200) && to.ip().to_string() == PROVIDER)
        .map(|(_, m)| m.clone())
        .expect("200 to the provider");
    let contact = ok.header(&HeaderName::Contact).expect("contact");
    assert!(contact.contains("198.51.100.7:40001"), "{contact}");
    let answer = body_of(&ok);
    assert!(answer.contains("c=IN IP4 198.51.100.7"), "{answer}");
    // Towards the phone, the private address as before.
    let to_phone = fork.header(&HeaderName::Contact).expect("contact");
    assert!(!to_phone.contains("198.51.100.7"), "{to_phone}");
}

#[test]
fn re_invites_towards_the_trunk_repeat_the_public_contact() {
    // The dialog of an outbound trunk call keeps the Contact our INVITE carried (the
    // public address), so a re-INVITE (transfer, media move) carries it again.
    let mut rig = rig_with(crate::media::SrtpMode::Off, Some("198.51.100.7:40001"));
    let out = rig.invite("0211123456", "pub2");
    let inv = find(&out, |m| is_req(m, "INVITE")).clone();
    assert!(
        inv.header(&HeaderName::Contact)
            .is_some_and(|c| c.contains("198.51.100.7:40001")),
        "{inv:?}"
    );
    let answer = sdp(PROVIDER, 30000, "8");
    let ok = pbx_sip::message::parse(provider_reply(&inv, 200, "OK", "", Some(&answer)).as_bytes())
        .expect("parses");
    let mut d = super::dialog::Dialog::as_uac(&inv, &ok, flow_of(PROVIDER)).expect("dialog");
    let mut ids = super::ids::Ids::new(1);
    let re = d.request(pbx_sip::message::Method::Invite, &mut ids);
    assert_eq!(
        re.header(&HeaderName::Contact),
        inv.header(&HeaderName::Contact)
    );
}
