//! Calls from the provider that an extension forwards to an external number (issue 5,
//! DOMAIN.md "Call forwarding ... costs money"), with sipp playing the provider as in
//! trunk_calls.rs: the outbound leg is the forwarding extension's call (its account
//! number as caller ID, its outbound class and blocked ranges), and the call record says
//! forwarded, by whom, to where.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_e2e::trunk::TrunkAdd;
use pbx_e2e::{free_port, now, Pbx, Sipp};

/// The forwarding extension.
const FORWARDER: &str = "1002";
/// The account's number that rings the forwarder, and the one it presents.
const DID: &str = "+4921112345";
/// The account's default number (presented by extensions without a number of their own).
const DEFAULT_NUMBER: &str = "+4921112300";
/// The provider's own loopback address (pbxd trusts INVITEs by the registrar's IP).
const PROVIDER_IP: &str = "127.0.0.2";

fn provider_addr(port: u16) -> SocketAddr {
    format!("{PROVIDER_IP}:{port}").parse().expect("address")
}

/// The sipp provider (registrar and callee) on 127.0.0.2:`port` for `calls` REGISTERs
/// plus INVITEs.
fn provider(pbx: &Pbx, port: u16, calls: u32, timeout: Duration) -> pbx_e2e::SippHandle {
    Sipp::new("trunk_provider_uas.xml")
        .arg("-i")
        .arg(PROVIDER_IP)
        .arg("-p")
        .arg(&port.to_string())
        .calls(calls)
        .timeout(timeout)
        .spawn(pbx.sip_addr())
}

/// The provider calling the DID from another port of its address.
fn provider_calls(pbx: &Pbx, scenario: &str) -> pbx_e2e::SippRun {
    Sipp::new(scenario)
        .arg("-i")
        .arg(PROVIDER_IP)
        .arg("-p")
        .arg(&free_port().to_string())
        .key("did", DID)
        .timeout(Duration::from_secs(40))
        .run(pbx.sip_addr())
}

/// A pbx whose trunk "cloud" is registered at the sipp provider (running for
/// `provider_calls` REGISTERs plus INVITEs, or until `timeout`), whose DID rings the
/// forwarder, and which allows external forwarding.
fn forwarding_pbx(provider_calls: u32, timeout: Duration) -> (Pbx, pbx_e2e::SippHandle) {
    let provider_port = free_port();
    let pbx = Pbx::builder().extension(FORWARDER, "s3cret-1002").start();
    let provider = provider(&pbx, provider_port, provider_calls, timeout);
    std::thread::sleep(Duration::from_millis(300));
    TrunkAdd {
        name: "cloud",
        registrar: provider_addr(provider_port).to_string(),
        domain: "sip.provider.example",
        user: "4930123",
        password: "provider-pw",
        interval: None,
        extra: Vec::new(),
    }
    .run(pbx.data_dir());
    let deadline = now() + Duration::from_secs(20);
    loop {
        let s = pbx.ctl(&["trunk", "status", "cloud"]);
        if s.starts_with("cloud: registered until") {
            break;
        }
        assert!(now() < deadline, "trunk not registered: {s}\n{}", pbx.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    #[rustfmt::skip]
    let numbers: [&[&str]; 2] = [
        &["numbers", "add", DEFAULT_NUMBER, "--trunk", "cloud", "--to", FORWARDER, "--callers", "all", "--default"],
        &["numbers", "add", DID, "--trunk", "cloud", "--to", FORWARDER, "--callers", FORWARDER],
    ];
    for args in numbers {
        pbx.ctl(args);
    }
    pbx.ctl(&["site", "set", "--allow-external-forwarding", "on"]);
    (pbx, provider)
}

#[test]
fn a_provider_call_forwarded_out_goes_back_to_the_provider_as_the_forwarders_call() {
    let (pbx, provider) = forwarding_pbx(2, Duration::from_secs(60));
    pbx.ctl(&[
        "extension",
        "set",
        FORWARDER,
        "--forward-always",
        "0211999888",
    ]);
    let caller = provider_calls(&pbx, "trunk_provider_uac.xml");
    let provider = provider.wait();
    pbx.check("the provider's call, forwarded and answered", &caller);
    provider.assert_success("the provider as forward target");
    let invite = provider
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("the provider got no INVITE:\n{provider}"));
    assert!(
        invite.starts_with("INVITE sip:+49211999888@sip.provider.example SIP/2.0"),
        "{invite}"
    );
    // The forwarder's own number of the account: not the default, not the caller's.
    assert!(
        invite.contains(&format!(
            "P-Preferred-Identity: <sip:{DID}@sip.provider.example>"
        )),
        "{invite}"
    );
    let from = invite
        .lines()
        .find(|l| l.starts_with("From:"))
        .unwrap_or_default();
    assert!(from.contains(&format!("sip:{DID}@")), "{invite}");
    let headers = invite.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !headers.contains("4930555123"),
        "the original caller's number is not presented:\n{invite}"
    );
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "forwarded_by"), FORWARDER, "{cdr:?}");
    assert_eq!(cdr.get(0, "caller"), "030555123", "the original caller");
    assert_eq!(cdr.get(0, "destination"), FORWARDER);
    assert_eq!(cdr.get(0, "normalised"), "'+49211999888");
    assert_eq!(cdr.get(0, "direction"), "outbound");
    assert_eq!(cdr.get(0, "route"), "cloud");
    let table = pbx.ctl(&["cdr", "list"]);
    assert!(
        table.contains("+49211999888 (forwarded by 1002)"),
        "{table}"
    );
}

#[test]
fn a_forward_to_a_blocked_range_is_refused_with_a_reason_and_never_reaches_the_provider() {
    // The provider takes the REGISTER, then listens; no INVITE may arrive.
    let (pbx, provider) = forwarding_pbx(2, Duration::from_secs(15));
    pbx.ctl(&[
        "extension",
        "set",
        FORWARDER,
        "--forward-always",
        "0900123456",
    ]);
    let caller = provider_calls(&pbx, "trunk_provider_uac_refused.xml");
    pbx.check("the provider's call refused with 403", &caller);
    let refusal = caller
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 403"))
        .unwrap_or_default();
    assert!(
        refusal
            .lines()
            .next()
            .is_some_and(|l| l.contains("blocked number range 0900")),
        "{refusal}"
    );
    let cdr = pbx.one_record(&["blocked"]);
    assert_eq!(cdr.get(0, "forwarded_by"), FORWARDER, "{cdr:?}");
    assert_eq!(cdr.get(0, "caller"), "030555123");
    let provider = provider.wait();
    let received = provider.received();
    assert!(
        received.iter().all(|m| m.starts_with("REGISTER ")),
        "the provider got more than the REGISTER:\n{provider}"
    );
}
