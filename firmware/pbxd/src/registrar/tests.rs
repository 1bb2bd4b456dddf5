//! Registrar scenarios on a simulated clock, with phones played by our own digest
//! client (`pbx_sip::auth::authorize`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::auth::{self, Algorithm, Challenge};
use pbx_sip::message::{parse, HeaderName, Message};

use super::*;

const REALM: &str = "pbx.local";

#[derive(Default)]
struct MapDirectory(HashMap<String, ExtensionSecrets>);

impl MapDirectory {
    fn with(user: &str, password: &str) -> Self {
        let mut d = Self::default();
        d.set(user, password);
        d
    }
    fn set(&mut self, user: &str, password: &str) {
        self.0.insert(
            user.into(),
            ExtensionSecrets {
                ha1_md5: auth::ha1(Algorithm::Md5, user, REALM, password),
                ha1_sha256: auth::ha1(Algorithm::Sha256, user, REALM, password),
                enabled: true,
            },
        );
    }
}

impl Directory for MapDirectory {
    fn secrets(&mut self, user: &str) -> Option<ExtensionSecrets> {
        self.0.get(user).cloned()
    }
}

#[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
fn start() -> Instant {
    Instant::now()
}

const UNIX: u64 = 1_800_000_000;

fn flow(port: u16) -> Flow {
    let remote: SocketAddr = format!("192.0.2.10:{port}").parse().expect("addr");
    Flow {
        transport: Transport::Udp,
        remote,
        local: "192.0.2.1:5060".parse().expect("addr"),
    }
}

/// A REGISTER for `user` with extra header lines (Contact, Expires, Authorization...).
fn register(user: &str, call_id: &str, cseq: u32, extra: &[String]) -> Message {
    let mut s = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{call_id}{cseq};rport\r\n\
         From: <sip:{user}@{REALM}>;tag=ft{cseq}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Max-Forwards: 70\r\n"
    );
    for line in extra {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    parse(s.as_bytes()).expect("test REGISTER parses")
}

fn contact(port: u16) -> String {
    format!("Contact: <sip:1001@192.0.2.10:{port}>")
}

/// The Authorization line answering the first challenge of `resp` (as a phone would).
fn answer(resp: &Message, user: &str, password: &str, nc: u32) -> String {
    let values: Vec<&str> = resp.header_all(&HeaderName::WwwAuthenticate).collect();
    let chal = auth::select_challenge(values).expect("a supported challenge");
    let value = auth::authorize(
        &chal,
        "REGISTER",
        &format!("sip:{REALM}"),
        user,
        password,
        "cn0nce",
        nc,
    )
    .expect("authorize");
    format!("Authorization: {value}")
}

struct Rig {
    reg: Registrar,
    dir: MapDirectory,
    t0: Instant,
    now: Instant,
}

impl Rig {
    fn new() -> Self {
        Self {
            reg: Registrar::new(RegistrarConfig::default(), [9; 32], 42),
            dir: MapDirectory::with("1001", "correct horse"),
            t0: start(),
            now: start(),
        }
        .synced()
    }
    fn synced(mut self) -> Self {
        self.now = self.t0;
        self
    }
    fn send(&mut self, req: &Message, port: u16) -> Message {
        let unix = UNIX + self.elapsed();
        self.reg
            .handle_register(self.now, unix, req, flow(port), &mut self.dir)
    }
    fn elapsed(&self) -> u64 {
        self.now.saturating_duration_since(self.t0).as_secs()
    }
    /// Registers `contact_lines` with the password, answering the challenge.
    fn register_ok(&mut self, call_id: &str, cseq: u32, mut lines: Vec<String>) -> Message {
        let first = self.send(&register("1001", call_id, cseq, &lines), 5062);
        assert_eq!(first.status(), Some(401));
        lines.push(answer(&first, "1001", "correct horse", 1));
        let resp = self.send(&register("1001", call_id, cseq + 1, &lines), 5062);
        assert_eq!(resp.status(), Some(200), "{resp:?}");
        resp
    }
    fn events(&mut self) -> Vec<RegistrarEvent> {
        std::iter::from_fn(|| self.reg.poll_event()).collect()
    }
}

fn contacts_of(resp: &Message) -> Vec<String> {
    resp.header_all(&HeaderName::Contact)
        .map(str::to_owned)
        .collect()
}

#[test]
fn register_without_credentials_is_challenged_with_md5_first_then_sha256() {
    let mut rig = Rig::new();
    let resp = rig.send(&register("1001", "c1", 1, &[contact(5062)]), 5062);
    assert_eq!(resp.status(), Some(401));
    let chals: Vec<Challenge> = resp
        .header_all(&HeaderName::WwwAuthenticate)
        .map(|v| Challenge::parse(v).expect("our challenge parses"))
        .collect();
    assert_eq!(chals.len(), 2);
    assert_eq!(chals[0].algorithm, Algorithm::Md5);
    assert_eq!(chals[1].algorithm, Algorithm::Sha256);
    assert!(chals.iter().all(|c| c.realm == REALM && c.offers_auth()));
    assert!(resp.to_header().expect("To").tag().is_some());
}

#[test]
fn sha256_preference_puts_sha256_first_and_sha256_credentials_work() {
    let mut rig = Rig::new();
    rig.reg = Registrar::new(
        RegistrarConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..RegistrarConfig::default()
        },
        [9; 32],
        42,
    );
    let first = rig.send(&register("1001", "c1", 1, &[contact(5062)]), 5062);
    let top = first
        .header(&HeaderName::WwwAuthenticate)
        .expect("challenge");
    assert!(top.contains("SHA-256"), "{top}");
    let auth_line = answer(&first, "1001", "correct horse", 1);
    assert!(auth_line.contains("SHA-256"));
    let resp = rig.send(
        &register("1001", "c1", 2, &[contact(5062), auth_line]),
        5062,
    );
    assert_eq!(resp.status(), Some(200));
}

#[test]
fn correct_password_binds_the_contact_with_granted_expiry() {
    let mut rig = Rig::new();
    let resp = rig.register_ok("c1", 1, vec![contact(5062), "Expires: 120".into()]);
    assert_eq!(
        contacts_of(&resp),
        vec!["<sip:1001@192.0.2.10:5062>;expires=120"]
    );
    let ev = rig.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, RegistrarEvent::BindingSaved { aor, .. } if aor == "1001@pbx.local")));
    assert!(ev
        .iter()
        .any(|e| matches!(e, RegistrarEvent::AuthSucceeded { .. })));
    let b = rig
        .reg
        .bindings()
        .find(
            "1001@pbx.local",
            &contact_key(&pbx_sip::message::Uri::parse("sip:1001@192.0.2.10:5062").expect("uri")),
        )
        .expect("bound");
    assert_eq!(b.flow.remote, flow(5062).remote);
}

#[test]
fn unknown_user_and_wrong_password_get_identical_answers() {
    let mut rig = Rig::new();
    let known = rig.send(&register("1001", "k", 1, &[contact(5062)]), 5062);
    let unknown = rig.send(&register("9999", "u", 1, &[contact(5062)]), 5062);
    let shape = |m: &Message| {
        (
            m.status(),
            m.reason().map(str::to_owned),
            m.headers().map(|h| h.name().clone()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(shape(&known), shape(&unknown));

    let wrong = answer(&known, "1001", "wrong password", 1);
    let r_known = rig.send(&register("1001", "k", 2, &[contact(5062), wrong]), 5062);
    let guess = answer(&unknown, "9999", "wrong password", 1);
    let r_unknown = rig.send(&register("9999", "u", 2, &[contact(5062), guess]), 5062);
    assert_eq!(r_known.status(), Some(403));
    assert_eq!(shape(&r_known), shape(&r_unknown));
    let failures = rig
        .events()
        .into_iter()
        .filter(|e| matches!(e, RegistrarEvent::AuthFailed { .. }))
        .count();
    assert_eq!(failures, 2);
}

#[test]
fn disabled_extension_fails_like_a_wrong_password() {
    let mut rig = Rig::new();
    if let Some(s) = rig.dir.0.get_mut("1001") {
        s.enabled = false;
    }
    let first = rig.send(&register("1001", "c", 1, &[contact(5062)]), 5062);
    let creds = answer(&first, "1001", "correct horse", 1);
    let resp = rig.send(&register("1001", "c", 2, &[contact(5062), creds]), 5062);
    assert_eq!(resp.status(), Some(403));
}

#[test]
fn password_change_applies_to_the_next_request() {
    let mut rig = Rig::new();
    rig.register_ok("c1", 1, vec![contact(5062)]);
    rig.dir.set("1001", "a new password");
    let first = rig.send(&register("1001", "c1", 3, &[contact(5062)]), 5062);
    let old = answer(&first, "1001", "correct horse", 1);
    let resp = rig.send(&register("1001", "c1", 4, &[contact(5062), old]), 5062);
    assert_eq!(resp.status(), Some(403));
}

#[test]
fn too_brief_interval_gets_423_with_min_expires_and_changes_nothing() {
    let mut rig = Rig::new();
    let first = rig.send(&register("1001", "c", 1, &[contact(5062)]), 5062);
    let creds = answer(&first, "1001", "correct horse", 1);
    let resp = rig.send(
        &register(
            "1001",
            "c",
            2,
            &[contact(5062), "Expires: 30".into(), creds],
        ),
        5062,
    );
    assert_eq!(resp.status(), Some(423));
    assert_eq!(resp.header(&HeaderName::MinExpires), Some("60"));
    assert!(rig.reg.bindings().is_empty());
}

#[test]
fn long_expiry_is_shortened_to_the_maximum() {
    let mut rig = Rig::new();
    let resp = rig.register_ok("c", 1, vec![contact(5062), "Expires: 86400".into()]);
    assert_eq!(
        contacts_of(&resp),
        vec!["<sip:1001@192.0.2.10:5062>;expires=3600"]
    );
}

#[test]
fn contact_expires_parameter_wins_over_the_header() {
    let mut rig = Rig::new();
    let resp = rig.register_ok(
        "c",
        1,
        vec![
            "Contact: <sip:1001@192.0.2.10:5062>;expires=300".into(),
            "Expires: 900".into(),
        ],
    );
    assert_eq!(
        contacts_of(&resp),
        vec!["<sip:1001@192.0.2.10:5062>;expires=300"]
    );
}

#[test]
fn several_contacts_expire_separately_on_the_simulated_clock() {
    let mut rig = Rig::new();
    rig.register_ok(
        "c",
        1,
        vec![
            "Contact: <sip:1001@192.0.2.10:5062>;expires=60".into(),
            "Contact: <sip:1001@192.0.2.11:5062>;expires=120".into(),
        ],
    );
    assert_eq!(rig.reg.bindings().len(), 2);
    rig.events();
    let due = rig.reg.poll_timeout().expect("an expiry is armed");
    assert_eq!(due, rig.now + Duration::from_secs(60));
    rig.now = due;
    rig.reg.handle_timeout(rig.now);
    assert_eq!(rig.reg.bindings().len(), 1);
    let ev = rig.events();
    assert!(matches!(
        ev.as_slice(),
        [RegistrarEvent::BindingRemoved {
            reason: RemovalReason::Expired,
            ..
        }]
    ));
    rig.now += Duration::from_secs(60);
    rig.reg.handle_timeout(rig.now);
    assert!(rig.reg.bindings().is_empty());
    assert_eq!(rig.reg.poll_timeout(), None);
}

#[test]
fn refresh_extends_the_binding() {
    let mut rig = Rig::new();
    rig.register_ok("c", 1, vec![contact(5062), "Expires: 60".into()]);
    rig.now += Duration::from_secs(50);
    rig.register_ok("c", 3, vec![contact(5062), "Expires: 60".into()]);
    rig.now += Duration::from_secs(50);
    rig.reg.handle_timeout(rig.now);
    assert_eq!(
        rig.reg.bindings().len(),
        1,
        "refreshed binding must survive"
    );
    rig.now += Duration::from_secs(11);
    rig.reg.handle_timeout(rig.now);
    assert!(rig.reg.bindings().is_empty());
}

#[test]
fn query_lists_bindings_without_changing_them() {
    let mut rig = Rig::new();
    rig.register_ok("c", 1, vec![contact(5062), "Expires: 600".into()]);
    rig.now += Duration::from_secs(100);
    let resp = rig.register_ok("q", 1, vec![]);
    assert_eq!(
        contacts_of(&resp),
        vec!["<sip:1001@192.0.2.10:5062>;expires=500"]
    );
    assert_eq!(rig.reg.bindings().len(), 1);
}

#[test]
fn expires_zero_removes_one_contact() {
    let mut rig = Rig::new();
    rig.register_ok("c", 1, vec![contact(5062), contact(5063)]);
    assert_eq!(rig.reg.bindings().len(), 2);
    let resp = rig.register_ok("c", 3, vec![contact(5062), "Expires: 0".into()]);
    assert_eq!(contacts_of(&resp).len(), 1);
    assert_eq!(rig.reg.bindings().len(), 1);
}

#[test]
fn star_with_expires_zero_removes_all_and_star_alone_is_refused() {
    let mut rig = Rig::new();
    rig.register_ok("c", 1, vec![contact(5062), contact(5063)]);
    let first = rig.send(&register("1001", "c", 3, &["Contact: *".into()]), 5062);
    let creds = answer(&first, "1001", "correct horse", 1);
    let resp = rig.send(
        &register("1001", "c", 4, &["Contact: *".into(), creds]),
        5062,
    );
    assert_eq!(resp.status(), Some(400));
    assert_eq!(rig.reg.bindings().len(), 2);
    let resp = rig.register_ok("c", 5, vec!["Contact: *".into(), "Expires: 0".into()]);
    assert!(contacts_of(&resp).is_empty());
    assert!(rig.reg.bindings().is_empty());
}

#[test]
fn out_of_order_cseq_on_the_same_call_id_is_refused() {
    let mut rig = Rig::new();
    rig.register_ok("c", 10, vec![contact(5062)]);
    let resp = rig.register_ok_status("c", 3, vec![contact(5062)]);
    assert_eq!(resp.status(), Some(500));
}

impl Rig {
    fn register_ok_status(&mut self, call_id: &str, cseq: u32, mut lines: Vec<String>) -> Message {
        let first = self.send(&register("1001", call_id, cseq, &lines), 5062);
        lines.push(answer(&first, "1001", "correct horse", 1));
        self.send(&register("1001", call_id, cseq + 1, &lines), 5062)
    }
}

#[test]
fn replayed_credentials_are_challenged_again() {
    let mut rig = Rig::new();
    let first = rig.send(&register("1001", "c", 1, &[contact(5062)]), 5062);
    let creds = answer(&first, "1001", "correct horse", 1);
    let ok = rig.send(
        &register("1001", "c", 2, &[contact(5062), creds.clone()]),
        5062,
    );
    assert_eq!(ok.status(), Some(200));
    let again = rig.send(&register("1001", "c", 3, &[contact(5062), creds]), 5062);
    assert_eq!(again.status(), Some(401));
}

#[test]
fn expired_nonce_gets_stale_true() {
    let mut rig = Rig::new();
    let first = rig.send(&register("1001", "c", 1, &[contact(5062)]), 5062);
    let creds = answer(&first, "1001", "correct horse", 1);
    // Nonces live 300 s; the shell's wall clock moves with `now`.
    let resp = rig.reg.handle_register(
        rig.now,
        UNIX + 301,
        &register("1001", "c", 2, &[contact(5062), creds]),
        flow(5062),
        &mut rig.dir,
    );
    assert_eq!(resp.status(), Some(401));
    let chal = resp
        .header(&HeaderName::WwwAuthenticate)
        .expect("challenge");
    assert!(Challenge::parse(chal).expect("parses").stale, "{chal}");
}

#[test]
fn foreign_domain_is_refused_and_user_mismatch_is_forbidden() {
    let mut rig = Rig::new();
    let mut req = register("1001", "c", 1, &[contact(5062)]);
    let raw = String::from_utf8(req.to_bytes()).expect("utf8").replacen(
        "REGISTER sip:pbx.local",
        "REGISTER sip:example.org",
        1,
    );
    req = parse(raw.as_bytes()).expect("parses");
    assert_eq!(rig.send(&req, 5062).status(), Some(403));

    let first = rig.send(&register("1001", "c", 2, &[contact(5062)]), 5062);
    let other = answer(&first, "1002", "whatever pw", 1);
    let resp = rig.send(&register("1001", "c", 3, &[contact(5062), other]), 5062);
    assert_eq!(resp.status(), Some(403));
}

#[test]
fn contacts_per_aor_are_bounded() {
    let mut rig = Rig::new();
    let lines: Vec<String> = (0..10).map(|i| contact(6000 + i)).collect();
    rig.register_ok("c", 1, lines);
    let resp = rig.register_ok_status("c", 3, vec![contact(7000)]);
    assert_eq!(resp.status(), Some(403));
    assert_eq!(rig.reg.bindings().len(), 10);
}

#[test]
fn removed_or_disabled_extensions_lose_their_bindings() {
    let mut rig = Rig::new();
    rig.dir.set("1002", "other password");
    rig.register_ok("c", 1, vec![contact(5062)]);
    assert_eq!(rig.reg.bindings().len(), 1);
    rig.events();
    rig.reg.drop_unknown_users(&mut rig.dir);
    assert_eq!(rig.reg.bindings().len(), 1, "still a valid extension");
    rig.dir.0.remove("1001");
    rig.reg.drop_unknown_users(&mut rig.dir);
    assert!(rig.reg.bindings().is_empty());
    assert!(matches!(
        rig.events().as_slice(),
        [RegistrarEvent::BindingRemoved {
            reason: RemovalReason::ExtensionGone,
            ..
        }]
    ));
}

#[test]
fn md5_only_offers_one_challenge_and_refuses_sha256_answers() {
    let mut rig = Rig::new();
    rig.reg = Registrar::new(
        RegistrarConfig {
            algorithms: vec![Algorithm::Md5],
            ..RegistrarConfig::default()
        },
        [9; 32],
        42,
    );
    let first = rig.send(&register("1001", "c1", 1, &[contact(5062)]), 5062);
    assert_eq!(first.header_all(&HeaderName::WwwAuthenticate).count(), 1);
    // a client answering with SHA-256 anyway gets a fresh challenge, not a 200
    let nonce = Challenge::parse(first.header(&HeaderName::WwwAuthenticate).expect("c"))
        .expect("parses")
        .nonce;
    let sha = auth::authorize(
        &Challenge::parse(&auth::challenge(
            REALM,
            Algorithm::Sha256,
            &nonce,
            None,
            false,
        ))
        .expect("parses"),
        "REGISTER",
        "sip:pbx.local",
        "1001",
        "correct horse",
        "cn",
        1,
    )
    .expect("authorize");
    let resp = rig.send(
        &register(
            "1001",
            "c1",
            2,
            &[contact(5062), format!("Authorization: {sha}")],
        ),
        5062,
    );
    assert_eq!(resp.status(), Some(401));
    let md5 = answer(&first, "1001", "correct horse", 1);
    let resp = rig.send(&register("1001", "c1", 3, &[contact(5062), md5]), 5062);
    assert_eq!(resp.status(), Some(200));
}
