//! Calls over the cloud trunk with sipp playing the provider (issue 5). pbxd has a real
//! trunk account (`pbxctl trunk add ... --password-stdin`) whose registrar is the sipp
//! provider on 127.0.0.2 (`trunk_provider_uas.xml` answers REGISTER with 200); the calls
//! start once `pbxctl trunk status` says registered. The provider sits on its own loopback
//! address because pbxd trusts INVITEs by the registrar's resolved IP, and every phone of
//! these tests is on 127.0.0.1. Calls through Kamailio are in trunk_kamailio_call.rs.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_e2e::trunk::TrunkAdd;
use pbx_e2e::{free_port, now, Pbx, Sipp};

const CALLER: &str = "1001";
const CALLER_PW: &str = "s3cret-1001";
/// The provider's own loopback address.
const PROVIDER_IP: &str = "127.0.0.2";

/// `pbxctl trunk add cloud` with the sipp provider at `registrar` as its registrar.
fn add_trunk(pbx: &Pbx, registrar: SocketAddr) {
    TrunkAdd {
        name: "cloud",
        registrar: registrar.to_string(),
        domain: "sip.provider.example",
        user: "4930123",
        password: "provider-pw",
        interval: None,
        extra: Vec::new(),
    }
    .run(pbx.data_dir());
}

/// Waits until `pbxctl trunk status cloud` says registered.
fn wait_registered(pbx: &Pbx) {
    let deadline = now() + Duration::from_secs(20);
    loop {
        let s = pbx.ctl(&["trunk", "status", "cloud"]);
        if s.starts_with("cloud: registered until") {
            return;
        }
        assert!(
            now() < deadline,
            "trunk not registered: {s}\npbxd log:\n{}",
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The sipp provider (registrar and callee) on 127.0.0.2:`port`, for `calls` REGISTERs
/// plus calls.
fn provider(pbx: &Pbx, port: u16, calls: u32, timeout: Duration) -> pbx_e2e::SippHandle {
    Sipp::new("trunk_provider_uas.xml")
        .args_ip_port(port)
        .calls(calls)
        .timeout(timeout)
        .spawn(pbx.sip_addr())
}

/// The provider's address.
fn provider_addr(port: u16) -> SocketAddr {
    format!("{PROVIDER_IP}:{port}").parse().expect("address")
}

trait ProviderArgs {
    fn args_ip_port(self, port: u16) -> Self;
}

impl ProviderArgs for Sipp {
    fn args_ip_port(self, port: u16) -> Self {
        self.arg("-i")
            .arg(PROVIDER_IP)
            .arg("-p")
            .arg(&port.to_string())
    }
}

#[test]
fn an_outbound_call_reaches_the_provider_in_e164_with_the_accounts_number() {
    let provider_port = free_port();
    let pbx = Pbx::builder().extension(CALLER, CALLER_PW).start();
    // The provider takes the REGISTER, then answers the call.
    let provider = provider(&pbx, provider_port, 2, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    add_trunk(&pbx, provider_addr(provider_port));
    wait_registered(&pbx);
    pbx.ctl(&[
        "numbers",
        "add",
        "+4921112345",
        "--trunk",
        "cloud",
        "--to",
        CALLER,
        "--callers",
        "all",
        "--default",
    ]);
    let caller = Sipp::new("call_uac.xml")
        .user(CALLER, CALLER_PW)
        .key("callee", "0211123456")
        .timeout(Duration::from_secs(40))
        .run(pbx.sip_addr());
    let provider = provider.wait();
    caller.assert_success(&format!("caller\npbxd log:\n{}", pbx.log()));
    provider.assert_success("provider");
    let invite = provider
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("the provider got no INVITE:\n{provider}"));
    assert!(
        invite.starts_with("INVITE sip:+49211123456@sip.provider.example SIP/2.0"),
        "{invite}"
    );
    assert!(
        invite.contains("P-Preferred-Identity: <sip:+4921112345@sip.provider.example>"),
        "{invite}"
    );
    assert!(
        invite
            .lines()
            .any(|l| l.starts_with("From:") && l.contains("sip:+4921112345@sip.provider.example")),
        "{invite}"
    );
    let cdr = pbx.ctl(&["cdr", "list", "--csv"]);
    assert!(
        cdr.lines()
            .any(|l| l.contains("outbound") && l.contains("cloud") && l.contains("+49211123456")),
        "{cdr}"
    );
}

#[test]
fn a_call_to_one_of_the_accounts_numbers_rings_its_extension_with_the_caller_in_national_format() {
    const CALLEE: &str = "1002";
    let registrar_port = free_port();
    let pbx = Pbx::builder().extension(CALLEE, "s3cret-1002").start();
    let registrar = provider(&pbx, registrar_port, 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    add_trunk(&pbx, provider_addr(registrar_port));
    wait_registered(&pbx);
    registrar.wait().assert_success("registrar");
    pbx.ctl(&[
        "numbers",
        "add",
        "+4921112345",
        "--trunk",
        "cloud",
        "--to",
        CALLEE,
    ]);
    let callee = Sipp::new("call_callee.xml")
        .user(CALLEE, "s3cret-1002")
        .out_of_call("call_uas.xml")
        .timeout(Duration::from_secs(60))
        .spawn(pbx.sip_addr());
    let (out, ok) = pbx.wait_registrations(Duration::from_secs(10), |o| {
        o.contains(&format!("sipp-callee-{CALLEE}"))
    });
    assert!(ok, "the callee did not register:\n{out}");
    // The provider calls from another port of the registrar's address, without
    // credentials.
    let provider = Sipp::new("trunk_provider_uac.xml")
        .args_ip_port(free_port())
        .key("did", "+4921112345")
        .timeout(Duration::from_secs(40))
        .run(pbx.sip_addr());
    let callee = callee.wait();
    provider.assert_success(&format!("provider\npbxd log:\n{}", pbx.log()));
    callee.assert_success("callee");
    assert!(
        provider
            .received()
            .iter()
            .all(|m| !m.starts_with("SIP/2.0 407")),
        "the provider was challenged:\n{provider}"
    );
    let invite = callee
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("the callee got no INVITE:\n{callee}"));
    assert!(
        invite
            .lines()
            .any(|l| l.starts_with("From:") && l.contains("sip:030555123@")),
        "{invite}"
    );
    let cdr = pbx.ctl(&["cdr", "list", "--csv"]);
    assert!(
        cdr.lines()
            .any(|l| l.contains("inbound") && l.contains("cloud") && l.contains("030555123")),
        "{cdr}"
    );
}

#[test]
fn blocked_ranges_are_refused_before_anything_reaches_the_provider() {
    let provider_port = free_port();
    let pbx = Pbx::builder().extension(CALLER, CALLER_PW).start();
    // The provider takes the REGISTER, then listens; no INVITE may arrive.
    let provider = provider(&pbx, provider_port, 2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(300));
    add_trunk(&pbx, provider_addr(provider_port));
    wait_registered(&pbx);
    for number in ["0900123456", "+49900123456", "0049900123456", "0137123456"] {
        let caller = Sipp::new("call_uac_expect.xml")
            .user(CALLER, CALLER_PW)
            .key("callee", number)
            .global("expect", "403")
            .timeout(Duration::from_secs(20))
            .run(pbx.sip_addr());
        caller.assert_success(&format!("{number} refused with 403"));
    }
    let provider = provider.wait();
    let received = provider.received();
    assert!(
        received.iter().any(|m| m.starts_with("REGISTER ")),
        "{provider}"
    );
    assert!(
        received.iter().all(|m| m.starts_with("REGISTER ")),
        "the provider got more than the REGISTER:\n{provider}"
    );
}
