//! Endpoint scenarios: raw bytes in, raw bytes out, on a simulated clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::auth::{self, Algorithm};
use pbx_sip::message::{parse, Frame, HeaderName, Message};
use pbx_sip::transaction::TimerConfig;

use super::*;
use crate::call::{CallDirectory, CallId, ExtensionProfile, MediaControl, Side};
use crate::dialplan::Site;
use crate::media::sdp::Negotiated;
use crate::registrar::{Directory, ExtensionSecrets, Flow, Registrar, RegistrarConfig, Transport};

struct OneUser;

/// Registrar-only test directories: no call profiles and no media.
macro_rules! no_calls {
    ($t:ty) => {
        impl CallDirectory for $t {
            fn extension(&self, _: &str) -> Option<ExtensionProfile> {
                None
            }
            fn ring_group(&self, _: &str) -> Option<crate::store::RingGroup> {
                None
            }
            fn is_prefix_of_internal(&self, _: &str) -> bool {
                false
            }
            fn site(&self) -> Site {
                Site::default()
            }
        }
        impl MediaControl for $t {
            fn open(&mut self, _: CallId) -> Result<(u16, u16), String> {
                Err("no media in this test".into())
            }
            fn configure(&mut self, _: CallId, _: Side, _: &Negotiated) {}
            fn set_active(&mut self, _: CallId, _: bool) {}
            fn close(&mut self, _: CallId) {}
        }
    };
}

no_calls!(OneUser);

impl Directory for OneUser {
    fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets> {
        (user == "1001").then(|| ExtensionSecrets {
            ha1_md5: auth::ha1(Algorithm::Md5, "1001", "pbx.local", "correct horse"),
            ha1_sha256: auth::ha1(Algorithm::Sha256, "1001", "pbx.local", "correct horse"),
            enabled: true,
        })
    }
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn start() -> Instant {
    Instant::now()
}

const UNIX: u64 = 1_800_000_000;

fn flow(ip: &str, transport: Transport) -> Flow {
    Flow {
        transport,
        remote: SocketAddr::new(ip.parse().expect("ip"), 40000),
        local: "192.0.2.1:5060".parse().expect("addr"),
    }
}

fn endpoint() -> Endpoint {
    let reg = Registrar::new(RegistrarConfig::default(), [3; 32], 7);
    Endpoint::new(reg, GuardConfig::default(), TimerConfig::default())
}

fn request(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:pbx.local SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK{branch};rport\r\n\
         From: <sip:1001@pbx.local>;tag=a\r\n\
         To: <sip:1001@pbx.local>\r\n\
         Call-ID: {branch}@test\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// Every datagram the endpoint transmitted, parsed, with its destination.
fn sent(ep: &mut Endpoint) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let EndpointOutput::Transmit { dest, data, .. } = o {
            out.push((dest, parse(&data).expect("our output parses")));
        }
    }
    out
}

fn one_status(ep: &mut Endpoint) -> (u16, String) {
    let out = sent(ep);
    assert_eq!(out.len(), 1, "{out:?}");
    let m = &out[0].1;
    (
        m.status().expect("a response"),
        m.reason().unwrap_or("").to_owned(),
    )
}

#[test]
fn options_is_answered_with_allow_and_via_gets_received_and_rport() {
    let mut ep = endpoint();
    let f = flow("203.0.113.9", Transport::Udp);
    ep.handle_datagram(
        start(),
        UNIX,
        f,
        request("OPTIONS", "o1", "").as_bytes(),
        &mut OneUser,
    );
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    let (dest, resp) = &out[0];
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.header(&HeaderName::Allow), Some(ALLOW));
    let via = resp.top_via().expect("via");
    assert_eq!(via.received(), Some("203.0.113.9"));
    assert_eq!(via.rport(), Some(Some(40000)));
    // behind NAT: the answer goes to the packet's real source, not the Via address
    assert_eq!(*dest, f.remote);
}

#[test]
fn unknown_method_is_501_and_unsupported_known_method_is_405() {
    let mut ep = endpoint();
    let f = flow("192.0.2.20", Transport::Udp);
    ep.handle_datagram(
        start(),
        UNIX,
        f,
        request("FOOBAR", "x1", "").as_bytes(),
        &mut OneUser,
    );
    assert_eq!(one_status(&mut ep).0, 501);
    ep.handle_datagram(
        start(),
        UNIX,
        f,
        request("SUBSCRIBE", "x2", "").as_bytes(),
        &mut OneUser,
    );
    assert_eq!(one_status(&mut ep).0, 405);
}

#[test]
fn malformed_request_gets_400_naming_the_problem() {
    let mut ep = endpoint();
    let f = flow("192.0.2.21", Transport::Udp);
    let bad = request("OPTIONS", "m1", "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    ep.handle_datagram(start(), UNIX, f, bad.as_bytes(), &mut OneUser);
    let (status, reason) = one_status(&mut ep);
    assert_eq!(status, 400);
    assert!(reason.to_ascii_lowercase().contains("cseq"), "{reason}");
}

#[test]
fn bad_sip_version_gets_505() {
    let mut ep = endpoint();
    let f = flow("192.0.2.22", Transport::Udp);
    let bad = request("OPTIONS", "v1", "").replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    ep.handle_datagram(start(), UNIX, f, bad.as_bytes(), &mut OneUser);
    assert_eq!(one_status(&mut ep).0, 505);
}

#[test]
fn garbage_and_oversized_datagrams_are_dropped_without_answer() {
    let mut ep = endpoint();
    let f = flow("192.0.2.23", Transport::Udp);
    ep.handle_datagram(start(), UNIX, f, b"\x00\x01garbage\xff", &mut OneUser);
    ep.handle_datagram(start(), UNIX, f, &vec![b'A'; 70_000], &mut OneUser);
    ep.handle_datagram(start(), UNIX, f, b"\r\n\r\n", &mut OneUser);
    assert!(sent(&mut ep).is_empty());
}

#[test]
fn retransmitted_request_gets_the_same_response_from_the_transaction() {
    let mut ep = endpoint();
    let f = flow("192.0.2.24", Transport::Udp);
    let req = request("REGISTER", "r1", "Contact: <sip:1001@10.0.0.5>\r\n");
    ep.handle_datagram(start(), UNIX, f, req.as_bytes(), &mut OneUser);
    let first = sent(&mut ep);
    ep.handle_datagram(start(), UNIX, f, req.as_bytes(), &mut OneUser);
    let again = sent(&mut ep);
    assert_eq!(first.len(), 1);
    assert_eq!(again.len(), 1);
    assert_eq!(
        first[0].1, again[0].1,
        "same nonce and tag: not re-processed"
    );
}

#[test]
fn transactions_are_freed_after_timer_j() {
    let mut ep = endpoint();
    let t0 = start();
    for i in 0..50 {
        let f = flow("192.0.2.25", Transport::Udp);
        let req = request("OPTIONS", &format!("leak{i}"), "");
        ep.handle_datagram(t0, UNIX, f, req.as_bytes(), &mut OneUser);
    }
    sent(&mut ep);
    assert_eq!(ep.transactions(), 50);
    let mut now = t0;
    while let Some(at) = ep.poll_timeout() {
        now = at;
        ep.handle_timeout(now, &mut OneUser);
    }
    assert_eq!(ep.transactions(), 0);
    assert_eq!(now, t0 + Duration::from_secs(32), "Timer J = 64*T1");
}

#[test]
fn five_wrong_passwords_block_the_source_and_then_it_is_ignored() {
    let mut ep = endpoint();
    let attacker = flow("198.51.100.66", Transport::Udp);
    let t0 = start();
    for i in 0..5 {
        let first = request(
            "REGISTER",
            &format!("bf{i}a"),
            "Contact: <sip:1001@10.0.0.5>\r\n",
        );
        ep.handle_datagram(t0, UNIX, attacker, first.as_bytes(), &mut OneUser);
        let out = sent(&mut ep);
        let chal = out[0]
            .1
            .header(&HeaderName::WwwAuthenticate)
            .expect("challenge");
        let chal = auth::Challenge::parse(chal).expect("parses");
        let creds = auth::authorize(
            &chal,
            "REGISTER",
            "sip:pbx.local",
            "1001",
            &format!("guess{i}"),
            "cn",
            1,
        )
        .expect("authorize");
        let second = request(
            "REGISTER",
            &format!("bf{i}b"),
            &format!("Contact: <sip:1001@10.0.0.5>\r\nAuthorization: {creds}\r\n"),
        );
        ep.handle_datagram(t0, UNIX, attacker, second.as_bytes(), &mut OneUser);
        let mut blocked = false;
        let mut statuses = Vec::new();
        while let Some(o) = ep.poll_output() {
            match o {
                EndpointOutput::Event(EndpointEvent::SourceBlocked(b)) => {
                    assert_eq!(b.ip, attacker.remote.ip());
                    blocked = true;
                }
                EndpointOutput::Transmit { data, .. } => {
                    statuses.push(parse(&data).expect("parses").status())
                }
                _ => {}
            }
        }
        assert_eq!(statuses, vec![Some(403)]);
        assert_eq!(blocked, i == 4, "blocked exactly at the fifth failure");
    }
    // Now even a valid request from that address gets no answer at all...
    ep.handle_datagram(
        t0,
        UNIX,
        attacker,
        request("OPTIONS", "after", "").as_bytes(),
        &mut OneUser,
    );
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.stats().blocked_drops, 1);
    // ...while other sources are served.
    let other = flow("198.51.100.67", Transport::Udp);
    ep.handle_datagram(
        t0,
        UNIX,
        other,
        request("OPTIONS", "other", "").as_bytes(),
        &mut OneUser,
    );
    assert_eq!(one_status(&mut ep).0, 200);
    // An installer lifts the block.
    assert!(ep.lift_block(attacker.remote.ip()));
    ep.handle_datagram(
        t0,
        UNIX,
        attacker,
        request("OPTIONS", "lifted", "").as_bytes(),
        &mut OneUser,
    );
    assert_eq!(one_status(&mut ep).0, 200);
}

#[test]
fn flood_from_one_source_is_rate_limited() {
    let mut ep = endpoint();
    let f = flow("198.51.100.70", Transport::Udp);
    let t0 = start();
    for i in 0..1000 {
        ep.handle_datagram(
            t0,
            UNIX,
            f,
            request("OPTIONS", &format!("fl{i}"), "").as_bytes(),
            &mut OneUser,
        );
    }
    let answered = sent(&mut ep).len();
    assert_eq!(answered, 400, "burst allowance of the default limit");
    assert_eq!(ep.stats().rate_limited, 600);
}

#[test]
fn tcp_keepalive_ping_gets_a_crlf_pong() {
    let mut ep = endpoint();
    let f = flow("192.0.2.30", Transport::Tcp);
    ep.handle_frame(start(), UNIX, f, Ok(Frame::KeepAlive), &mut OneUser);
    match ep.poll_output() {
        Some(EndpointOutput::Transmit { data, dest, .. }) => {
            assert_eq!(data, b"\r\n");
            assert_eq!(dest, f.remote);
        }
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[test]
fn requests_over_tcp_are_answered_on_the_connection() {
    let mut ep = endpoint();
    let f = flow("192.0.2.31", Transport::Tcp);
    let req = parse(
        request("OPTIONS", "t1", "")
            .replace("UDP", "TCP")
            .as_bytes(),
    )
    .expect("parses");
    ep.handle_frame(start(), UNIX, f, Ok(Frame::Message(req)), &mut OneUser);
    let out = sent(&mut ep);
    assert_eq!(out[0].0, f.remote);
    assert_eq!(out[0].1.status(), Some(200));
    // reliable transport: Timer J is zero, nothing lingers
    assert_eq!(ep.transactions(), 0);
}

#[test]
fn directory_is_consulted_per_request() {
    struct Counting(HashMap<String, u32>);
    no_calls!(Counting);
    impl Directory for Counting {
        fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets> {
            *self.0.entry(user.into()).or_default() += 1;
            None
        }
    }
    let mut dir = Counting(HashMap::new());
    let mut ep = endpoint();
    let f = flow("192.0.2.32", Transport::Udp);
    let first = request("REGISTER", "d1", "Contact: <sip:1001@10.0.0.5>\r\n");
    ep.handle_datagram(start(), UNIX, f, first.as_bytes(), &mut dir);
    let out = sent(&mut ep);
    let chal = auth::Challenge::parse(out[0].1.header(&HeaderName::WwwAuthenticate).expect("c"))
        .expect("p");
    let creds =
        auth::authorize(&chal, "REGISTER", "sip:pbx.local", "1001", "pw", "cn", 1).expect("a");
    let second = request(
        "REGISTER",
        "d2",
        &format!("Contact: <sip:1001@10.0.0.5>\r\nAuthorization: {creds}\r\n"),
    );
    ep.handle_datagram(start(), UNIX, f, second.as_bytes(), &mut dir);
    assert_eq!(dir.0.get("1001"), Some(&1));
}

#[test]
fn options_claims_no_extension_we_do_not_implement() {
    let mut ep = endpoint();
    let f = flow("192.0.2.40", Transport::Udp);
    ep.handle_datagram(
        start(),
        UNIX,
        f,
        request("OPTIONS", "sup", "").as_bytes(),
        &mut OneUser,
    );
    let out = sent(&mut ep);
    let resp = &out[0].1;
    assert_eq!(resp.header(&HeaderName::Supported), Some(""));
    assert_eq!(resp.header(&HeaderName::Accept), Some("application/sdp"));
}

#[test]
fn malformed_ack_is_never_answered() {
    let mut ep = endpoint();
    let f = flow("192.0.2.41", Transport::Udp);
    let bad = request("ACK", "ack1", "").replace("CSeq: 1 ACK", "CSeq: 1 INVITE");
    ep.handle_datagram(start(), UNIX, f, bad.as_bytes(), &mut OneUser);
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.stats().malformed, 1);
}

/// Every RFC 4475 torture message through the whole endpoint: nothing panics, every
/// answer parses, and a message the validator rejects gets exactly that status (or no
/// answer at all when it has no usable Via, or is an ACK).
#[test]
fn rfc4475_messages_get_the_validators_answer_through_the_endpoint() {
    use pbx_sip::message::validate_request;
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/rfc4475"
    );
    let entries = std::fs::read_dir(dir).expect("shared/testdata/rfc4475 is beside the repo");
    let mut seen = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("dat") {
            continue;
        }
        seen += 1;
        let data = std::fs::read(&path).expect("read");
        let expected = match parse(&data) {
            Ok(m) if m.is_request() => validate_request(&m).err().map(|r| r.status),
            Ok(_) => None,
            Err(e) => e.rejection().map(|r| r.status),
        };
        let mut ep = endpoint();
        let f = flow("192.0.2.50", Transport::Udp);
        ep.handle_datagram(start(), UNIX, f, &data, &mut OneUser);
        let answers: Vec<u16> = sent(&mut ep)
            .iter()
            .map(|(_, m)| m.status().expect("only responses are sent"))
            .collect();
        let name = path.display();
        match expected {
            Some(status) => assert!(
                answers.is_empty() || answers == [status],
                "{name}: expected {status} or silence, got {answers:?}"
            ),
            None => assert!(
                answers.iter().all(|s| !matches!(s, 400 | 505 | 416 | 513)),
                "{name}: valid message rejected: {answers:?}"
            ),
        }
    }
    assert_eq!(seen, 49, "all RFC 4475 messages are there");
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    const REGISTER: &str = "REGISTER sip:pbx.local SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKp1;rport\r\n\
        From: <sip:1001@pbx.local>;tag=a\r\nTo: <sip:1001@pbx.local>\r\n\
        Call-ID: p1@test\r\nCSeq: 2 REGISTER\r\nMax-Forwards: 70\r\n\
        Contact: <sip:1001@10.0.0.5>;expires=60\r\nExpires: 3600\r\n\
        Authorization: Digest username=\"1001\", realm=\"pbx.local\", nonce=\"00\", \
        uri=\"sip:pbx.local\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\n\
        Content-Length: 0\r\n\r\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut ep = endpoint();
            ep.handle_datagram(start(), UNIX, flow("192.0.2.60", Transport::Udp), &data, &mut OneUser);
            for (_, m) in sent(&mut ep) {
                prop_assert!(m.status().is_some());
            }
        }

        #[test]
        fn mutated_registers_never_panic(
            edits in proptest::collection::vec((0usize..600, any::<u8>()), 1..12),
            cut in 0usize..700,
        ) {
            let mut data = REGISTER.as_bytes().to_vec();
            for (pos, byte) in edits {
                let i = pos % data.len();
                data[i] = byte;
            }
            data.truncate(cut.max(1));
            let mut ep = endpoint();
            let t0 = start();
            let f = flow("192.0.2.61", Transport::Udp);
            ep.handle_datagram(t0, UNIX, f, &data, &mut OneUser);
            ep.handle_frame(t0, UNIX, flow("192.0.2.62", Transport::Tcp), parse(&data).map(Frame::Message), &mut OneUser);
            while let Some(at) = ep.poll_timeout() {
                ep.handle_timeout(at, &mut OneUser);
                if at > t0 + Duration::from_secs(40) { break; }
            }
            for (_, m) in sent(&mut ep) {
                prop_assert!(m.status().is_some());
            }
        }
    }
}

/// The trunk registration client inside the endpoint: its REGISTER goes out as a
/// transmit, the registrar's answers reach it (not the call layer) by Call-ID, and the
/// link and status events follow.
#[test]
fn trunk_register_responses_go_to_the_registration_client() {
    use crate::trunk::clients::TrunkEvent;
    use crate::trunk::register::{RegisterConfig, Registration, Resolved, Target, KEEPALIVE};
    use crate::trunk::{TrunkAuth, TrunkState};
    use pbx_sip::message::{HeaderName, MessageBuilder};

    let mut ep = endpoint();
    let t0 = start();
    let cfg = RegisterConfig {
        name: "main".into(),
        domain: "provider.test".into(),
        user: "4930123".into(),
        auth: Some(TrunkAuth {
            user: "4930123".into(),
            password: "pw".into(),
        }),
        transport: Transport::Udp,
        expires: std::time::Duration::from_secs(600),
        keepalive: KEEPALIVE,
        timers: TimerConfig::default(),
        srtp: crate::media::SrtpMode::Off,
    };
    ep.registrations_mut().insert(Registration::new(cfg, t0, 9));
    ep.pump_registrations();
    assert_eq!(
        ep.poll_trunk_event(),
        Some(TrunkEvent::Resolve("main".into()))
    );
    let registrar: SocketAddr = "198.51.100.5:5060".parse().expect("addr");
    ep.registrations_mut().handle_targets(
        t0,
        "main",
        Ok(Resolved {
            targets: vec![Target {
                remote: registrar,
                local: "192.0.2.1:5060".parse().expect("addr"),
            }],
            peers: vec![registrar.ip()],
        }),
    );
    ep.pump_registrations();
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, registrar);
    let req = out[0].1.clone();
    let ok = MessageBuilder::response_to(&req, 200, "OK")
        .set_to_tag("x")
        .header(
            HeaderName::Contact,
            format!(
                "{};expires=300",
                req.header(&HeaderName::Contact).expect("contact")
            ),
        )
        .build();
    let from = Flow {
        transport: Transport::Udp,
        remote: registrar,
        local: "192.0.2.1:5060".parse().expect("addr"),
    };
    ep.handle_datagram(t0, UNIX, from, &ok.to_bytes(), &mut OneUser);
    let link = ep.trunks().get("main").expect("link").clone();
    assert_eq!(link.state, TrunkState::Registered);
    assert!(link.is_up());
    assert!(ep.trunks().by_source(registrar).is_some());
    assert!(sent(&mut ep).is_empty(), "nothing answered to a response");
    let events: Vec<TrunkEvent> = std::iter::from_fn(|| ep.poll_trunk_event()).collect();
    assert!(events.contains(&TrunkEvent::Changed("main".into())));
    assert_eq!(ep.stats().malformed, 0);
}
