//! The registrar against sipp: each test starts its own pbxd, provisions extensions with
//! pbxctl, and runs one scenario from tests/sipp (exit code 0 = every call went as scripted).

use std::time::Duration;

use pbx_e2e::{normalize_response, Pbx, Sipp, Transport};

const USER: &str = "1001";
const PASSWORD: &str = "s3cret-1001";

fn pbx() -> Pbx {
    Pbx::builder()
        .extension(USER, PASSWORD)
        .extension("1002", "s3cret-1002")
        .start()
}

fn run_ok(pbx: &Pbx, scenario: &str, transport: Transport) {
    Sipp::new(scenario)
        .user(USER, PASSWORD)
        .transport(transport)
        .run(pbx.sip_addr())
        .assert_success(&format!(
            "{scenario} over {transport:?}\npbxd log:\n{}",
            pbx.log()
        ));
}

#[test]
fn register_with_digest_auth_over_udp_and_tcp() {
    let pbx = pbx();
    run_ok(&pbx, "register.xml", Transport::Udp);
    run_ok(&pbx, "register.xml", Transport::Tcp);
    let (out, ok) = pbx.wait_registrations(Duration::from_secs(5), |out| {
        out.contains(USER) && out.contains("sipp-a-1001")
    });
    assert!(
        ok,
        "pbxctl registrations does not list 1001's contact:\n{out}"
    );
}

#[test]
fn challenge_names_realm_and_offers_md5() {
    let pbx = pbx();
    let run = Sipp::new("register.xml")
        .user(USER, PASSWORD)
        .run(pbx.sip_addr());
    run.assert_success("register");
    let challenge = run
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 401"))
        .expect("a 401 was received");
    let auth: Vec<&str> = challenge
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .collect();
    assert!(
        auth.iter().all(|l| l.contains("realm=\"pbx.local\"")),
        "{auth:?}"
    );
    assert!(
        auth.iter()
            .any(|l| !l.contains("algorithm=") || l.contains("algorithm=MD5")),
        "no MD5 challenge: {auth:?}"
    );
}

#[test]
fn wrong_password_and_unknown_user_get_identical_answers() {
    let pbx = pbx();
    // Same length as USER so that nothing but the user part differs.
    let unknown = "1099";
    let wrong = Sipp::new("register_rejected.xml")
        .user(USER, "not-the-password")
        .run(pbx.sip_addr());
    wrong.assert_success("known user, wrong password is rejected");
    let unknown_run = Sipp::new("register_rejected.xml")
        .user(unknown, PASSWORD)
        .run(pbx.sip_addr());
    unknown_run.assert_success("unknown user is rejected");

    let a: Vec<String> = wrong
        .received()
        .iter()
        .map(|m| normalize_response(m, USER))
        .collect();
    let b: Vec<String> = unknown_run
        .received()
        .iter()
        .map(|m| normalize_response(m, unknown))
        .collect();
    assert_eq!(a.len(), 2, "expected a challenge and a rejection: {a:#?}");
    assert_eq!(
        a, b,
        "unknown user and wrong password must be indistinguishable"
    );
}

#[test]
fn refresh_updates_the_binding() {
    let pbx = pbx();
    run_ok(&pbx, "register_refresh.xml", Transport::Udp);
}

#[test]
fn several_contacts_per_aor() {
    let pbx = pbx();
    run_ok(&pbx, "register_multi.xml", Transport::Udp);
}

#[test]
fn unregister_with_expires_zero_and_star() {
    let pbx = pbx();
    run_ok(&pbx, "register_unregister.xml", Transport::Udp);
    let (out, ok) =
        pbx.wait_registrations(Duration::from_secs(5), |out| !out.contains("sipp-u-1001"));
    assert!(ok, "binding still listed after unregister:\n{out}");
}

#[test]
fn query_lists_bindings() {
    let pbx = pbx();
    run_ok(&pbx, "register_query.xml", Transport::Tcp);
}

#[test]
fn too_brief_expires_gets_423_with_min_expires() {
    let pbx = pbx();
    run_ok(&pbx, "register_too_brief.xml", Transport::Udp);
}

#[test]
fn options_gets_200_over_udp_and_tcp() {
    let pbx = pbx();
    run_ok(&pbx, "options.xml", Transport::Udp);
    run_ok(&pbx, "options.xml", Transport::Tcp);
}

/// The smallest Expires we may ask for is 60 s, so this test waits ~65 s.
#[test]
fn binding_expires() {
    let pbx = pbx();
    Sipp::new("register_expiry.xml")
        .user(USER, PASSWORD)
        .timeout(Duration::from_secs(100))
        .run(pbx.sip_addr())
        .assert_success(&format!("expiry\npbxd log:\n{}", pbx.log()));
    let out = pbx.registrations();
    assert!(
        !out.contains("sipp-e-1001"),
        "expired binding listed:\n{out}"
    );
}

#[test]
fn source_is_blocked_after_five_failed_authentications() {
    let pbx = pbx();
    // A correct registration first: normal 401 challenges do not count as failures.
    run_ok(&pbx, "register.xml", Transport::Udp);
    Sipp::new("register_rejected.xml")
        .user(USER, "wrong")
        .calls(5)
        .run(pbx.sip_addr())
        .assert_success("five failed authentications are still answered");
    Sipp::new("register_dropped.xml")
        .user(USER, PASSWORD)
        .run(pbx.sip_addr())
        .assert_success(&format!(
            "after five failures the source's requests are dropped\npbxd log:\n{}",
            pbx.log()
        ));
    let blocks = pbx.ctl(&["blocks", "list"]);
    assert!(blocks.contains("127.0.0.1"), "block not listed:\n{blocks}");

    // Lifting the block while pbxd runs lets the address register again.
    pbx.ctl(&["blocks", "unblock", "127.0.0.1"]);
    run_ok(&pbx, "register.xml", Transport::Udp);
}

#[test]
fn pbxctl_changes_apply_while_pbxd_runs() {
    let pbx = pbx();
    run_ok(&pbx, "register.xml", Transport::Udp);

    let new_password = "n3w-password-1001";
    pbx.ctl(&["extension", "set-password", USER, new_password]);
    Sipp::new("register_rejected.xml")
        .user(USER, PASSWORD)
        .run(pbx.sip_addr())
        .assert_success("the old password is refused after set-password");
    Sipp::new("register.xml")
        .user(USER, new_password)
        .run(pbx.sip_addr())
        .assert_success("the new password is accepted");

    pbx.ctl(&["extension", "remove", USER]);
    Sipp::new("register_rejected.xml")
        .user(USER, new_password)
        .run(pbx.sip_addr())
        .assert_success("a removed extension cannot register");
    let list = pbx.ctl(&["extension", "list"]);
    assert!(
        !list.contains(USER),
        "removed extension still listed:\n{list}"
    );
}

#[test]
fn sigterm_exits_cleanly() {
    let pbx = pbx();
    run_ok(&pbx, "register.xml", Transport::Udp);
    let ready = pbx.time_to_ready();
    assert!(ready < Duration::from_secs(5), "slow start: {ready:?}");
    let status = pbx.terminate(Duration::from_secs(10));
    assert!(status.success(), "pbxd exited with {status} on SIGTERM");
}

/// Bindings live in memory and are written through: a restarted pbxd serves the phones
/// registered before, without waiting for them to register again.
#[test]
fn bindings_survive_a_restart() {
    let pbx = pbx();
    run_ok(&pbx, "register.xml", Transport::Udp);
    let (_, stored) = pbx.wait_registrations(Duration::from_secs(5), |out| out.contains("1001@"));
    assert!(stored, "binding not written through");
    assert!(
        pbx.http_get("/api/v1/health")
            .contains("\"registrations\":1"),
        "{}",
        pbx.http_get("/api/v1/health")
    );
    let pbx = pbx.restart(&[]);
    let health = pbx.http_get("/api/v1/health");
    assert!(
        health.contains("\"registrations\":1"),
        "not restored: {health}\n{}",
        pbx.log()
    );
    assert!(pbx.log().contains("restored=1"), "{}", pbx.log());
}
