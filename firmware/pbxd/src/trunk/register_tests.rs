//! The registration client against a scripted registrar on a simulated clock.

use std::time::{Duration, Instant};

use pbx_sip::auth::{self, Algorithm, Credentials};
use pbx_sip::message::{parse, HeaderName, Message, MessageBuilder};

use super::*;

const PASSWORD: &str = "right-password";

fn cfg() -> RegisterConfig {
    RegisterConfig {
        name: "main".into(),
        domain: "sipconnect.example.net".into(),
        user: "4930123".into(),
        auth: Some(TrunkAuth {
            user: "4930123".into(),
            password: PASSWORD.into(),
        }),
        transport: Transport::Udp,
        expires: Duration::from_secs(600),
        keepalive: KEEPALIVE,
        timers: TimerConfig::default(),
        srtp: crate::media::SrtpMode::Off,
    }
}

fn target(remote: &str) -> Target {
    Target {
        remote: remote.parse().expect("test address"),
        local: "10.0.0.2:5060".parse().expect("test address"),
    }
}

fn resolved(remotes: &[&str]) -> Resolved {
    let targets: Vec<Target> = remotes.iter().map(|r| target(r)).collect();
    Resolved {
        peers: targets.iter().map(|t| t.remote.ip()).collect(),
        targets,
    }
}

/// The client and the outputs it produced so far.
struct Harness {
    reg: Registration,
    now: Instant,
    resolves: usize,
    sent: Vec<(Flow, Message)>,
    keepalives: Vec<Flow>,
    /// Flows the client closed, with how many REGISTERs had been sent by then.
    closes: Vec<(Flow, usize)>,
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn epoch() -> Instant {
    Instant::now()
}

impl Harness {
    fn new(cfg: RegisterConfig) -> Self {
        let now = epoch();
        let mut h = Harness {
            reg: Registration::new(cfg, now, 42),
            now,
            resolves: 0,
            sent: Vec::new(),
            keepalives: Vec::new(),
            closes: Vec::new(),
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(out) = self.reg.poll_output() {
            match out {
                RegisterOutput::Resolve => self.resolves += 1,
                RegisterOutput::Transmit { flow, data } if data == b"\r\n\r\n" => {
                    self.keepalives.push(flow)
                }
                RegisterOutput::Transmit { flow, data } => {
                    let msg = parse(&data).expect("client sends parseable REGISTERs");
                    self.sent.push((flow, msg));
                }
                RegisterOutput::Changed => {}
                RegisterOutput::Close { flow } => self.closes.push((flow, self.sent.len())),
            }
        }
    }

    fn targets(&mut self, remotes: &[&str]) {
        self.reg.handle_targets(self.now, Ok(resolved(remotes)));
        self.drain();
    }

    fn last(&self) -> &Message {
        &self.sent.last().expect("a REGISTER was sent").1
    }

    fn answer(&mut self, resp: Message) {
        assert!(self.reg.handle_response(self.now, &resp));
        self.drain();
    }

    /// Jumps to the next timer and fires it.
    fn step(&mut self) -> Instant {
        let t = self.reg.poll_timeout().expect("a timer is armed");
        assert!(t >= self.now, "timers never go back in time");
        self.now = t;
        self.reg.handle_timeout(self.now);
        self.drain();
        t
    }

    /// Runs timers until `until`, without answering anything.
    fn run_until(&mut self, until: Instant) {
        while self.reg.poll_timeout().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = until;
    }

    fn registers_sent(&self) -> usize {
        self.sent.len()
    }
}

fn reply(req: &Message, status: u16, reason: &str) -> MessageBuilder {
    MessageBuilder::response_to(req, status, reason).set_to_tag("reg1")
}

fn challenge(req: &Message, alg: Algorithm, nonce: &str, stale: bool) -> Message {
    reply(req, 401, "Unauthorized")
        .header(
            HeaderName::WwwAuthenticate,
            auth::challenge("provider", alg, nonce, None, stale),
        )
        .build()
}

fn ok(req: &Message, expires: u32) -> Message {
    let contact = req
        .header(&HeaderName::Contact)
        .expect("Contact")
        .to_owned();
    reply(req, 200, "OK")
        .header(HeaderName::Contact, format!("{contact};expires={expires}"))
        .build()
}

/// The registrar's check of the Authorization header.
fn verify(req: &Message, alg: Algorithm, password: &str) -> bool {
    let Some(value) = req.header(&HeaderName::Authorization) else {
        return false;
    };
    let creds = Credentials::parse(value).expect("well-formed credentials");
    assert_eq!(creds.algorithm, alg);
    let ha1 = auth::ha1(alg, &creds.username, &creds.realm, password);
    auth::verify(&creds, "REGISTER", &ha1)
}

/// Registers through one challenge with `alg`; returns the harness registered.
fn registered(alg: Algorithm) -> Harness {
    registered_with(cfg(), alg)
}

fn registered_with(cfg: RegisterConfig, alg: Algorithm) -> Harness {
    let mut h = Harness::new(cfg);
    assert_eq!(h.resolves, 1, "the client asks for targets first");
    assert!(h.sent.is_empty());
    h.targets(&["192.0.2.10:5060"]);
    assert_eq!(h.registers_sent(), 1);
    assert!(h.last().header(&HeaderName::Authorization).is_none());
    let first = h.last().clone();
    h.answer(challenge(&first, alg, "n1", false));
    assert_eq!(h.registers_sent(), 2);
    let second = h.last().clone();
    assert!(verify(&second, alg, PASSWORD));
    assert_ne!(
        second.cseq().expect("cseq").seq,
        first.cseq().expect("cseq").seq,
        "a new CSeq for the answered request"
    );
    h.answer(ok(&second, 120));
    assert_eq!(h.reg.state(), &TrunkState::Registered);
    h
}

#[test]
fn registers_with_md5_digest_and_fills_the_link() {
    let h = registered(Algorithm::Md5);
    let link = h.reg.link();
    assert!(link.is_up());
    let flow = link.flow.expect("registered flow");
    assert_eq!(flow.remote, "192.0.2.10:5060".parse().expect("addr"));
    assert_eq!(
        link.peers,
        vec!["192.0.2.10".parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(
        h.reg.registered_until(),
        Some(h.now + Duration::from_secs(120))
    );
    let req = h.last();
    assert_eq!(
        req.request_uri().expect("uri").as_str(),
        "sip:sipconnect.example.net"
    );
    assert_eq!(req.header(&HeaderName::Expires), Some("600"));
    assert!(req
        .header(&HeaderName::Contact)
        .expect("contact")
        .contains("sip:4930123@10.0.0.2:5060"));
}

#[test]
fn registers_with_sha256_digest() {
    let h = registered(Algorithm::Sha256);
    assert!(h.reg.link().is_up());
}

#[test]
fn refreshes_at_half_the_granted_expiry_reusing_the_nonce() {
    let mut h = registered(Algorithm::Md5);
    let registered_at = h.now;
    let before = h.registers_sent();
    // Keep-alives fire in between; the refresh is the first REGISTER after them.
    while h.registers_sent() == before {
        h.step();
    }
    assert_eq!(h.now - registered_at, Duration::from_secs(60));
    let refresh = h.last().clone();
    assert!(
        verify(&refresh, Algorithm::Md5, PASSWORD),
        "nc=2 on the cached nonce"
    );
    assert!(refresh
        .header(&HeaderName::Authorization)
        .expect("auth")
        .contains("nc=00000002"));
    h.answer(ok(&refresh, 3600));
    assert_eq!(
        h.reg.registered_until(),
        Some(h.now + Duration::from_secs(3600))
    );
    // A stale nonce on the next refresh is answered once more, silently.
    h.run_until(h.now + Duration::from_secs(1800));
    let stale_req = h.last().clone();
    h.answer(challenge(&stale_req, Algorithm::Md5, "n2", true));
    let again = h.last().clone();
    assert!(verify(&again, Algorithm::Md5, PASSWORD));
    h.answer(ok(&again, 3600));
    assert_eq!(h.reg.state(), &TrunkState::Registered);
}

#[test]
fn a_new_nonce_on_refresh_is_answered_without_declaring_auth_failed() {
    let mut h = registered(Algorithm::Md5);
    h.run_until(h.now + Duration::from_secs(60));
    let refresh = h.last().clone();
    // The registrar forgot its nonce and challenges afresh (stale not set).
    h.answer(challenge(&refresh, Algorithm::Md5, "fresh", false));
    let answered = h.last().clone();
    assert!(verify(&answered, Algorithm::Md5, PASSWORD));
    h.answer(ok(&answered, 120));
    assert_eq!(h.reg.state(), &TrunkState::Registered);
}

#[test]
fn wrong_password_is_auth_failed_without_a_retry_loop() {
    let mut c = cfg();
    c.auth = Some(TrunkAuth {
        user: "4930123".into(),
        password: "wrong".into(),
    });
    let mut h = Harness::new(c);
    h.targets(&["192.0.2.10:5060"]);
    let first = h.last().clone();
    h.answer(challenge(&first, Algorithm::Md5, "n1", false));
    let second = h.last().clone();
    assert!(!verify(&second, Algorithm::Md5, PASSWORD));
    h.answer(challenge(&second, Algorithm::Md5, "n2", false));
    assert_eq!(h.reg.state(), &TrunkState::AuthFailed);
    assert!(!h.reg.link().is_up());
    let failed_at = h.now;
    h.run_until(failed_at + BACKOFF_MAX - Duration::from_secs(1));
    assert_eq!(h.registers_sent(), 2, "no REGISTER for 30 minutes");
    assert_eq!(h.resolves, 1);
    h.run_until(failed_at + BACKOFF_MAX);
    assert_eq!(h.resolves, 2, "one new attempt after 30 minutes");
}

#[test]
fn forbidden_waits_thirty_minutes() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060"]);
    let first = h.last().clone();
    h.answer(reply(&first, 403, "Forbidden").build());
    assert_eq!(h.reg.state(), &TrunkState::Forbidden);
    let at = h.now;
    h.run_until(at + BACKOFF_MAX - Duration::from_millis(1));
    assert_eq!((h.registers_sent(), h.resolves), (1, 1));
    h.run_until(at + BACKOFF_MAX);
    assert_eq!(h.resolves, 2);
    h.targets(&["192.0.2.10:5060"]);
    assert_eq!(h.registers_sent(), 2);
}

#[test]
fn no_answer_fails_over_then_backs_off_with_jitter_up_to_thirty_minutes() {
    let mut h = Harness::new(cfg());
    let mut delays = Vec::new();
    for _round in 0..9 {
        h.targets(&["192.0.2.10:5060", "192.0.2.11:5060"]);
        let start = h.now;
        let resolves = h.resolves;
        while h.resolves == resolves {
            h.step();
        }
        // Timer F on each target: 32 s each, UDP retransmissions in between.
        let to_first: Vec<_> = h
            .sent
            .iter()
            .filter(|(f, _)| f.remote.port() == 5060 && f.remote.ip().to_string() == "192.0.2.10")
            .collect();
        assert!(to_first.len() > 1, "retransmitted over UDP");
        let failed_at = start + Duration::from_secs(64);
        assert!(
            matches!(h.reg.state(), TrunkState::Unreachable(why) if why.contains("192.0.2.11"))
        );
        delays.push(h.now - failed_at);
        h.sent.clear();
    }
    let mut step = BACKOFF_MIN;
    for d in &delays {
        assert!(
            *d >= step / 2 && *d <= step,
            "{d:?} within [{:?}, {step:?}]",
            step / 2
        );
        step = (step * 2).min(BACKOFF_MAX);
    }
    assert!(delays.iter().rev().take(2).all(|d| *d >= BACKOFF_MAX / 2));
}

#[test]
fn server_error_tries_the_next_target_and_success_resets_the_backoff() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060", "192.0.2.11:5060"]);
    let first = h.last().clone();
    h.answer(reply(&first, 503, "Service Unavailable").build());
    let (flow, second) = h.sent.last().cloned().expect("failover");
    assert_eq!(flow.remote, "192.0.2.11:5060".parse().expect("addr"));
    h.answer(challenge(&second, Algorithm::Md5, "n", false));
    let third = h.last().clone();
    h.answer(ok(&third, 300));
    assert!(h.reg.link().is_up());
    assert_eq!(
        h.reg.link().flow.map(|f| f.remote),
        Some("192.0.2.11:5060".parse().expect("addr"))
    );
}

#[test]
fn resolution_failure_is_unreachable_and_retried() {
    let mut h = Harness::new(cfg());
    h.reg
        .handle_targets(h.now, Err("sipconnect.example.net: no such host".into()));
    h.drain();
    assert_eq!(
        h.reg.state(),
        &TrunkState::Unreachable("sipconnect.example.net: no such host".into())
    );
    let at = h.now;
    h.step();
    assert!(h.now - at >= BACKOFF_MIN / 2 && h.now - at <= BACKOFF_MIN);
    assert_eq!(h.resolves, 2);
}

#[test]
fn keepalives_go_to_the_registered_flow_every_25_seconds() {
    let mut h = registered(Algorithm::Md5);
    let at = h.now;
    h.run_until(at + Duration::from_secs(59));
    assert_eq!(h.keepalives.len(), 2);
    h.run_until(at + Duration::from_secs(60));
    let refresh = h.last().clone();
    h.answer(ok(&refresh, 120));
    h.run_until(at + Duration::from_secs(110));
    assert_eq!(h.keepalives.len(), 4, "at 25, 50, 75 and 100 s");
    let flow = h.reg.link().flow.expect("flow");
    assert!(h.keepalives.iter().all(|f| *f == flow));
}

#[test]
fn the_public_address_is_learned_and_registered_as_contact() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060"]);
    let first = h.last().clone();
    h.answer(challenge(&first, Algorithm::Md5, "n", false));
    let second = h.last().clone();
    let via = second.top_via().expect("via");
    let natted = format!("{};received=203.0.113.5;rport=40000", via).replace(";rport;", ";");
    let resp = reply(&second, 200, "OK")
        .set_header(HeaderName::Via, natted)
        .header(
            HeaderName::Contact,
            format!(
                "{};expires=120",
                second.header(&HeaderName::Contact).expect("contact")
            ),
        )
        .build();
    h.answer(resp);
    assert_eq!(
        h.reg.link().public,
        Some("203.0.113.5:40000".parse().expect("addr"))
    );
    assert_eq!(h.registers_sent(), 3, "re-REGISTER with the public Contact");
    let third = h.last().clone();
    assert!(third
        .header(&HeaderName::Contact)
        .expect("contact")
        .contains("@203.0.113.5:40000"));
    let contacts: Vec<&str> = third.header_all(&HeaderName::Contact).collect();
    assert_eq!(
        contacts,
        vec![
            "<sip:4930123@203.0.113.5:40000>",
            "<sip:4930123@10.0.0.2:5060>;expires=0"
        ],
        "the private Contact is removed"
    );
    assert!(verify(&third, Algorithm::Md5, PASSWORD));
    // The same address again: no further REGISTER.
    let via = third.top_via().expect("via");
    let natted = format!("{};received=203.0.113.5;rport=40000", via).replace(";rport;", ";");
    let resp = reply(&third, 200, "OK")
        .set_header(HeaderName::Via, natted)
        .header(
            HeaderName::Contact,
            format!(
                "{};expires=120",
                third.header(&HeaderName::Contact).expect("contact")
            ),
        )
        .build();
    h.answer(resp);
    assert_eq!(h.registers_sent(), 3);
    assert!(h.reg.link().is_up());
}

#[test]
fn interval_too_brief_uses_min_expires() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060"]);
    let first = h.last().clone();
    h.answer(
        reply(&first, 423, "Interval Too Brief")
            .header(HeaderName::MinExpires, "1800")
            .build(),
    );
    assert_eq!(h.last().header(&HeaderName::Expires), Some("1800"));
}

#[test]
fn responses_of_other_dialogs_are_not_claimed() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060"]);
    let other = reply(h.last(), 200, "OK")
        .set_header(HeaderName::CallId, "someone-else")
        .build();
    assert!(!h.reg.handle_response(h.now, &other));
}

/// Removes the trunk; returns the first un-REGISTER sent.
fn unregister(h: &mut Harness) -> Message {
    let before = h.registers_sent();
    assert!(h.reg.unregister(h.now), "a registered client un-REGISTERs");
    h.drain();
    assert_eq!(h.registers_sent(), before + 1, "sent at once");
    h.last().clone()
}

/// Distinct un-REGISTER transactions (UDP retransmissions share the branch).
fn unregister_branches(h: &Harness) -> Vec<String> {
    let mut branches: Vec<String> = Vec::new();
    for (_, m) in &h.sent {
        if m.header(&HeaderName::Expires) == Some("0") {
            let b = m
                .top_via()
                .expect("via")
                .branch()
                .expect("branch")
                .to_owned();
            if !branches.contains(&b) {
                branches.push(b);
            }
        }
    }
    branches
}

#[test]
fn removing_a_registered_trunk_sends_an_unregister_with_the_current_credentials() {
    let mut h = registered(Algorithm::Md5);
    let registered_flow = h.reg.link().flow.expect("registered");
    let last_cseq = h.last().cseq().expect("cseq").seq;
    let msg = unregister(&mut h);
    assert_eq!(
        h.sent.last().expect("sent").0,
        registered_flow,
        "on the registered flow"
    );
    assert_eq!(
        msg.method().map(|m| m.to_string()).as_deref(),
        Some("REGISTER")
    );
    assert_eq!(msg.header(&HeaderName::Expires), Some("0"));
    let contact = msg.header(&HeaderName::Contact).expect("contact");
    assert!(contact.ends_with(";expires=0"), "{contact}");
    assert!(contact.contains("4930123@10.0.0.2:5060"), "{contact}");
    assert_eq!(msg.cseq().expect("cseq").seq, last_cseq + 1);
    assert_eq!(
        msg.call_id().ok(),
        Some(h.reg.call_id()),
        "same registration"
    );
    assert!(
        verify(&msg, Algorithm::Md5, PASSWORD),
        "answered with the nonce in use, so the registrar accepts it at once"
    );
    assert!(!h.reg.link().is_up());
    assert!(!h.reg.finished(), "waits for the answer");
    h.answer(reply(&msg, 200, "OK").build());
    assert!(h.reg.finished());
    assert_eq!(h.reg.poll_timeout(), None, "nothing armed after the 200");
    assert_eq!(unregister_branches(&h).len(), 1);
}

#[test]
fn a_lost_unregister_is_sent_again_after_the_back_off_until_answered() {
    let mut h = registered(Algorithm::Md5);
    let t0 = h.now;
    unregister(&mut h);
    // The registrar is down: Timer F ends the first transaction after 64*T1 = 32 s.
    h.run_until(t0 + Duration::from_secs(33));
    assert_eq!(unregister_branches(&h).len(), 1);
    assert!(!h.reg.finished());
    // The back-off after a registered client's first failure is 15..30 s.
    let retry = h.reg.poll_timeout().expect("the retry is armed");
    let wait = retry - h.now;
    assert!(
        (Duration::from_secs(14)..=Duration::from_secs(31)).contains(&wait),
        "{wait:?}"
    );
    h.step();
    assert_eq!(unregister_branches(&h).len(), 2, "a new transaction");
    assert_eq!(h.reg.unregister_tries(), 2);
    // The registrar is back and answers the second one, first with a new challenge.
    let second = h.last().clone();
    assert_eq!(second.header(&HeaderName::Expires), Some("0"));
    h.answer(challenge(&second, Algorithm::Md5, "n2", false));
    let answered = h.last().clone();
    assert_eq!(answered.header(&HeaderName::Expires), Some("0"));
    assert!(verify(&answered, Algorithm::Md5, PASSWORD));
    h.answer(reply(&answered, 200, "OK").build());
    assert!(h.reg.finished());
    assert_eq!(h.reg.poll_timeout(), None);
}

#[test]
fn the_unregister_gives_up_after_three_tries_and_never_loops() {
    let mut h = registered(Algorithm::Md5);
    let t0 = h.now;
    unregister(&mut h);
    h.run_until(t0 + Duration::from_secs(3600));
    assert_eq!(unregister_branches(&h).len(), UNREGISTER_TRIES as usize);
    assert!(h.reg.finished());
    assert_eq!(h.reg.poll_timeout(), None);
}

#[test]
fn an_unregister_refused_for_good_is_not_retried_but_server_trouble_is() {
    let mut h = registered(Algorithm::Md5);
    let first = unregister(&mut h);
    h.answer(reply(&first, 503, "Service Unavailable").build());
    assert!(!h.reg.finished(), "503 is worth another try");
    h.step();
    let second = h.last().clone();
    assert_eq!(unregister_branches(&h).len(), 2);
    h.answer(reply(&second, 403, "Forbidden").build());
    assert!(h.reg.finished(), "403 is final");
    assert_eq!(h.reg.poll_timeout(), None);
    // Wrong credentials on a fresh challenge: final too, no loop.
    let mut h = registered(Algorithm::Md5);
    let first = unregister(&mut h);
    h.answer(challenge(&first, Algorithm::Md5, "n5", false));
    let answered = h.last().clone();
    h.answer(challenge(&answered, Algorithm::Md5, "n6", false));
    assert!(h.reg.finished());
    assert_eq!(unregister_branches(&h).len(), 2);
}

#[test]
fn an_unregistered_trunk_sends_nothing_when_removed() {
    let mut h = Harness::new(cfg());
    h.targets(&["192.0.2.10:5060"]);
    let sent = h.registers_sent();
    assert!(!h.reg.unregister(h.now), "REGISTER still unanswered");
    h.drain();
    assert_eq!(h.registers_sent(), sent);
    assert!(h.reg.finished());
    assert_eq!(h.reg.poll_timeout(), None);
}

#[test]
fn the_clients_send_the_unregister_on_remove_but_not_on_replace() {
    use super::super::clients::TrunkClients;
    let h = registered(Algorithm::Md5);
    let now = h.now;
    let mut clients = TrunkClients::default();
    clients.insert(h.reg);
    while clients.poll_output().is_some() {}
    // Reconfigured: the new client registers again; no un-REGISTER in between.
    let h2 = registered(Algorithm::Md5);
    clients.insert(h2.reg);
    let replaced: Vec<_> = std::iter::from_fn(|| clients.poll_output()).collect();
    assert!(
        replaced.iter().all(|(_, o)| match o {
            RegisterOutput::Transmit { data, .. } =>
                !String::from_utf8_lossy(data).contains("Expires: 0"),
            _ => true,
        }),
        "{replaced:?}"
    );
    assert!(clients.remove(now, "main"));
    let (name, out) = clients.poll_output().expect("the un-REGISTER");
    assert_eq!(name, "main");
    let RegisterOutput::Transmit { data, .. } = out else {
        panic!("{out:?}");
    };
    assert!(String::from_utf8_lossy(&data).contains("Expires: 0"));
    assert!(clients.get("main").is_none(), "gone for status and calls");
    assert_eq!(clients.leaving().count(), 1, "but still un-REGISTERing");
    // Its answer is routed to it by Call-ID; then it is dropped.
    let req = parse(&data).expect("parses");
    assert!(clients.handle_response(now, &reply(&req, 200, "OK").build()));
    assert_eq!(clients.leaving().count(), 0);
    assert_eq!(clients.poll_timeout(), None);
}

#[test]
fn the_down_alert_follows_the_client_on_a_simulated_clock() {
    use super::super::down_alert::{decide, DownAlert, DOWN_ALERT_AFTER};
    // A registrar that never answers: the client keeps failing over and backing off.
    let mut h = Harness::new(cfg());
    let t0 = h.now;
    h.targets(&["192.0.2.10:5060"]);
    let ask = |h: &Harness, alerted: bool| {
        decide(
            DOWN_ALERT_AFTER,
            "main",
            h.reg.state(),
            h.reg.down_since(),
            alerted,
            "why",
            h.now,
        )
    };
    h.run_until(t0 + Duration::from_secs(119));
    assert_eq!(ask(&h, false), None, "{:?}", h.reg.state());
    h.run_until(t0 + Duration::from_secs(121));
    assert!(matches!(ask(&h, false), Some(DownAlert::Raise(_))));
    // The registrar comes back: the next attempt registers and the alert clears.
    let sent = h.registers_sent();
    while h.registers_sent() == sent {
        // After a back-off the client resolves again before it sends.
        if h.reg.poll_timeout().is_none() {
            h.targets(&["192.0.2.10:5060"]);
        } else {
            h.step();
        }
    }
    let req = h.last().clone();
    h.answer(challenge(&req, Algorithm::Md5, "n9", false));
    let req = h.last().clone();
    h.answer(ok(&req, 600));
    assert_eq!(h.reg.state(), &TrunkState::Registered);
    assert_eq!(ask(&h, true), Some(DownAlert::Clear));
}

fn tcp() -> RegisterConfig {
    RegisterConfig {
        transport: Transport::Tcp,
        ..cfg()
    }
}

#[test]
fn answered_pings_keep_a_stream_flow_registered() {
    let mut h = registered_with(tcp(), Algorithm::Md5);
    let flow = h.reg.link().flow.expect("flow");
    let at = h.now;
    let mut answered = h.registers_sent();
    for i in 1..=4u64 {
        h.run_until(at + Duration::from_secs(25 * i));
        assert_eq!(h.keepalives.len() as u64, i);
        assert_eq!(h.reg.pong_due(), Some(h.now + PONG_TIMEOUT));
        // the pong comes 2 s later
        h.run_until(h.now + Duration::from_secs(2));
        assert!(h.reg.handle_pong(flow.remote));
        assert_eq!(h.reg.pong_due(), None);
        // the refresh (at 60 s) is answered too
        if h.registers_sent() > answered {
            let r = h.last().clone();
            h.answer(ok(&r, 120));
            answered = h.registers_sent();
        }
    }
    assert!(h.closes.is_empty(), "a flow that answers is never closed");
    assert_eq!(h.reg.state(), &TrunkState::Registered);
}

#[test]
fn a_missing_pong_closes_the_flow_and_registers_again_at_once() {
    let mut h = registered_with(tcp(), Algorithm::Md5);
    let flow = h.reg.link().flow.expect("flow");
    let at = h.now;
    let before = h.registers_sent();
    h.run_until(at + Duration::from_secs(25));
    assert_eq!(h.keepalives, vec![flow]);
    // a pong from some other connection does not count
    assert!(!h.reg.handle_pong("192.0.2.99:5060".parse().expect("addr")));
    h.run_until(at + Duration::from_secs(34));
    assert!(
        h.closes.is_empty(),
        "9 s without a pong is still within time"
    );
    h.run_until(at + Duration::from_secs(35));
    assert_eq!(
        h.closes,
        vec![(flow, before)],
        "the dead flow is closed before the new REGISTER"
    );
    assert_eq!(h.registers_sent(), before + 1, "registering again at once");
    let (sent_on, req) = h.sent.last().expect("register").clone();
    assert_eq!(sent_on, flow, "to the same registrar, on a new connection");
    let TrunkState::Unreachable(why) = h.reg.state() else {
        panic!("down while re-registering: {:?}", h.reg.state());
    };
    assert!(why.contains("no keep-alive answer"), "{why}");
    assert!(
        h.reg.link().flow.is_none(),
        "calls cannot use the dead flow"
    );
    assert_eq!(h.reg.down_since(), Some(h.now));
    // the nonce still holds: the new REGISTER carries credentials and is accepted
    assert!(verify(&req, Algorithm::Md5, PASSWORD));
    h.answer(ok(&req, 120));
    assert_eq!(h.reg.state(), &TrunkState::Registered);
    // pings resume on the new flow, with their own deadline
    let again = h.now;
    h.run_until(again + Duration::from_secs(25));
    assert_eq!(h.keepalives.len(), 2);
    assert_eq!(
        h.reg.pong_due(),
        Some(again + Duration::from_secs(25) + PONG_TIMEOUT)
    );
    assert_eq!(h.closes.len(), 1);
}

#[test]
fn udp_keepalives_expect_no_pong() {
    let mut h = registered(Algorithm::Md5);
    let at = h.now;
    h.run_until(at + Duration::from_secs(50));
    assert_eq!(h.keepalives.len(), 2);
    assert_eq!(h.reg.pong_due(), None);
    assert!(h.closes.is_empty());
    assert_eq!(h.reg.state(), &TrunkState::Registered);
}
