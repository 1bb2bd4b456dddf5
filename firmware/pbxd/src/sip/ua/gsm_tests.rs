//! GSM calls through the whole endpoint core (issue 7): the module's call events in,
//! SIP to the phones and commands for the modem out, on a simulated clock.

use pbx_sip::message::{HeaderName, Message};

use super::tests::*;
use crate::call::trunk::EmergencyRoute;
use crate::call::{Disposition, Hangup};
use crate::gsm::legs::GsmOutput;
use crate::gsm::GsmCallEvent;

fn outputs(rig: &mut Rig) -> Vec<GsmOutput> {
    std::iter::from_fn(|| rig.ep.poll_gsm_output()).collect()
}

fn gsm_event(
    rig: &mut Rig,
    ev: GsmCallEvent,
    dest: Option<&str>,
) -> Vec<(std::net::SocketAddr, Message)> {
    rig.ep.handle_gsm_event(rig.now, ev, dest, &mut rig.office);
    rig.collect()
}

fn incoming(number: &str) -> GsmCallEvent {
    GsmCallEvent::Incoming {
        number: Some(number.into()),
    }
}

fn ended(reason: &str) -> GsmCallEvent {
    GsmCallEvent::Ended {
        reason: reason.into(),
    }
}

/// The PBX's INVITE to a phone, answered by it; returns the phone's BYE for later.
fn phone_bye(fork: &Message, ip: &str) -> String {
    format!(
        "BYE sip:pbx@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bKgb1;rport\r\n\
         From: {};tag=bob\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        fork.header(&HeaderName::To).expect("to"),
        fork.header(&HeaderName::From).expect("from"),
        fork.call_id().expect("call-id"),
    )
}

#[test]
fn an_incoming_gsm_call_rings_the_destination_with_the_caller_and_is_answered_with_ata() {
    let mut rig = Rig::with_gsm();
    rig.office.dids.insert(String::new(), "1002".into());
    rig.register("1002", "10.0.0.2");
    let out = gsm_event(&mut rig, incoming("+4930555"), Some("1002"));
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    // The caller in national format.
    let from = fork.header(&HeaderName::From).expect("from");
    assert!(from.contains("sip:030555@"), "{from}");
    assert!(fork.request_uri().is_some_and(|u| u.host() == "10.0.0.2"));
    rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob", None));
    let outs = outputs(&mut rig);
    assert!(!outs.contains(&GsmOutput::Answer), "{outs:?}");
    assert!(
        outs.iter().any(|o| matches!(o, GsmOutput::Media(Some(_)))),
        "the module's audio goes to the relay: {outs:?}"
    );

    let out = rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    find(&out, |m| is_req(m, "ACK"));
    let outs = outputs(&mut rig);
    assert_eq!(outs, [GsmOutput::Answer]);
    gsm_event(&mut rig, GsmCallEvent::Answered, None);
    // The module's caller configured towards the audio bridge, A-law.
    assert!(rig
        .office
        .configured
        .iter()
        .any(|c| c.2.remote == "127.0.0.1:4100".parse().expect("addr") && c.2.pt == 8));

    // The phone hangs up: ATH.
    let out = rig.feed("10.0.0.2", &phone_bye(&fork, "10.0.0.2"));
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    let outs = outputs(&mut rig);
    assert!(outs.contains(&GsmOutput::HangUp), "{outs:?}");
    assert!(outs.contains(&GsmOutput::Media(None)), "{outs:?}");
    let r = rig.records.last().expect("record");
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.destination.as_deref(), Some("1002"));
    assert_eq!(rig.ep.calls().gsm_calls(), 0);
    rig.assert_idle();
}

#[test]
fn the_gsm_caller_hanging_up_sends_bye_or_cancel() {
    let mut rig = Rig::with_gsm();
    rig.office.dids.insert(String::new(), "1002".into());
    rig.register("1002", "10.0.0.2");
    // Answered, then the far end hangs up: BYE to the phone.
    let out = gsm_event(&mut rig, incoming("+4930555"), Some("1002"));
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed(
        "10.0.0.2",
        &reply(&fork, 200, "OK", "bob", Some(&sdp("10.0.0.2", 5000, "8"))),
    );
    gsm_event(&mut rig, GsmCallEvent::Answered, None);
    let out = gsm_event(&mut rig, ended("remote hang-up"), None);
    let bye = find(&out, |m| is_req(m, "BYE")).clone();
    rig.feed("10.0.0.2", &reply(&bye, 200, "OK", "bob", None));
    assert_eq!(
        rig.records.last().expect("record").hangup,
        Some(Hangup::Caller)
    );
    outputs(&mut rig);

    // Hung up while the phone rings: CANCEL.
    let out = gsm_event(&mut rig, incoming("+4930556"), Some("1002"));
    let fork = find(&out, |m| is_req(m, "INVITE")).clone();
    rig.feed("10.0.0.2", &reply(&fork, 180, "Ringing", "bob2", None));
    let out = gsm_event(&mut rig, ended("remote hang-up"), None);
    let cancel = find(&out, |m| is_req(m, "CANCEL")).clone();
    rig.feed("10.0.0.2", &reply(&cancel, 200, "OK", "bob2", None));
    rig.feed(
        "10.0.0.2",
        &reply(&fork, 487, "Request Terminated", "bob2", None),
    );
    assert_eq!(
        rig.records.last().expect("record").disposition,
        Disposition::Cancelled
    );
    // No destination configured: the module hangs up and no phone rings.
    let out = gsm_event(&mut rig, incoming("+4930557"), None);
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    assert!(outputs(&mut rig).contains(&GsmOutput::HangUp));
    rig.assert_idle();
}

#[test]
fn the_gsm_prefix_dials_the_number_on_the_module_and_the_far_end_answers() {
    let mut rig = Rig::with_gsm();
    rig.office.gsm_prefix = Some("8".into());
    // Without the installer's confirmation, ordinary calls are refused.
    let out = rig.invite("80301234567", "g0");
    assert!(out.iter().any(|(_, m)| is_status(m, 403)), "{out:#?}");
    assert!(outputs(&mut rig).is_empty());

    rig.office.gsm_confirmed = true;
    let out = rig.invite("80301234567", "g1");
    assert!(out.iter().all(|(_, m)| !is_req(m, "INVITE")));
    let outs = outputs(&mut rig);
    let dial = outs
        .iter()
        .find_map(|o| match o {
            GsmOutput::Dial {
                leg,
                number,
                emergency,
            } => Some((*leg, number.clone(), *emergency)),
            _ => None,
        })
        .expect("ATD");
    assert_eq!((dial.1.as_str(), dial.2), ("0301234567", false));
    let out = gsm_event(&mut rig, GsmCallEvent::Alerting, None);
    find(&out, |m| is_status(m, 180));
    let out = gsm_event(&mut rig, GsmCallEvent::Answered, None);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    assert!(String::from_utf8_lossy(ok.body()).contains("PCMA"));
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "ga"));
    let out = rig.feed("10.0.0.1", &caller_request("BYE", &ok, 3, "gb"));
    assert!(out.iter().any(|(_, m)| is_status(m, 200)));
    assert!(outputs(&mut rig).contains(&GsmOutput::HangUp));
    let r = rig.records.last().expect("record");
    assert_eq!(r.route.as_deref(), Some("gsm"));
    assert_eq!(r.disposition, Disposition::Answered);

    // The module refuses (no network): the caller gets a failure, not silence.
    let out = rig.invite("80301234567", "g2");
    assert!(out.iter().all(|(_, m)| !is_status(m, 200)));
    let leg = outputs(&mut rig)
        .into_iter()
        .find_map(|o| match o {
            GsmOutput::Dial { leg, .. } => Some(leg),
            _ => None,
        })
        .expect("ATD");
    rig.ep
        .handle_gsm_dial_failed(rig.now, leg, "no network", &mut rig.office);
    let out = rig.collect();
    assert!(out.iter().any(|(_, m)| is_status(m, 503)), "{out:#?}");
    rig.assert_idle();
}

#[test]
fn trunk_down_sends_external_calls_and_112_over_gsm() {
    let mut rig = Rig::with_gsm();
    rig.office.gsm_confirmed = true;
    rig.office.gsm_fallback = true;
    rig.office.fallbacks = vec![EmergencyRoute::Gsm];
    rig.invite("0211123456", "f1");
    assert!(outputs(&mut rig).iter().any(|o| matches!(o,
        GsmOutput::Dial { number, emergency: false, .. } if number == "+49211123456")));
    let out = gsm_event(&mut rig, ended("busy"), None);
    assert!(out.iter().any(|(_, m)| is_status(m, 486)), "{out:#?}");
    assert_eq!(
        rig.records.last().expect("record").route.as_deref(),
        Some("gsm")
    );

    // 112 with no trunk: the module dials it as an emergency call, confirmation or not.
    rig.office.gsm_confirmed = false;
    let out = rig.invite("112", "f2");
    assert!(out.iter().all(|(_, m)| !is_status(m, 503)));
    assert!(outputs(&mut rig).iter().any(|o| matches!(o,
        GsmOutput::Dial { number, emergency: true, .. } if number == "112")));
    let out = gsm_event(&mut rig, GsmCallEvent::Answered, None);
    let ok = find(&out, |m| is_status(m, 200)).clone();
    rig.feed("10.0.0.1", &caller_request("ACK", &ok, 2, "fa"));
    gsm_event(&mut rig, ended("remote hang-up"), None);
    let r = rig.records.last().expect("record");
    assert_eq!(
        (r.dialled.as_str(), r.route.as_deref()),
        ("112", Some("gsm"))
    );
    rig.assert_idle();
}
