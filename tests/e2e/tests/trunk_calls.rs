//! Calls over the cloud trunk with sipp playing the provider (issue 5). Until the
//! registration client lands, pbxd takes the provider as registered through the hidden
//! test flag `--static-trunk`.

use std::time::Duration;

use pbx_e2e::{free_port, Pbx, Sipp};

const CALLER: &str = "1001";
const CALLER_PW: &str = "s3cret-1001";

#[test]
fn an_outbound_call_reaches_the_provider_in_e164_with_the_accounts_number() {
    let provider_port = free_port();
    let trunk = format!(
        "name=cloud,peer=127.0.0.1:{provider_port},domain=sip.provider.example,user=4930123"
    );
    let pbx = Pbx::builder()
        .extension(CALLER, CALLER_PW)
        .arg("--static-trunk")
        .arg(&trunk)
        .start();
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
    // The provider answers the call (a plain UAS on the trunk's address).
    let provider = Sipp::new("call_uas.xml")
        .arg("-p")
        .arg(&provider_port.to_string())
        .timeout(Duration::from_secs(40))
        .spawn(pbx.sip_addr());
    std::thread::sleep(Duration::from_millis(500));
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
    let provider_port = free_port();
    let trunk = format!(
        "name=cloud,peer=127.0.0.1:{provider_port},domain=sip.provider.example,user=4930123"
    );
    let pbx = Pbx::builder()
        .extension(CALLEE, "s3cret-1002")
        .arg("--static-trunk")
        .arg(&trunk)
        .start();
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
    // The provider calls from the trunk's address, without credentials.
    let provider = Sipp::new("trunk_provider_uac.xml")
        .arg("-p")
        .arg(&provider_port.to_string())
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
    let trunk = format!(
        "name=cloud,peer=127.0.0.1:{provider_port},domain=sip.provider.example,user=4930123"
    );
    let pbx = Pbx::builder()
        .extension(CALLER, CALLER_PW)
        .arg("--static-trunk")
        .arg(&trunk)
        .start();
    // The provider listens for a few seconds; nothing may arrive.
    let provider = Sipp::new("call_uas.xml")
        .arg("-p")
        .arg(&provider_port.to_string())
        .timeout(Duration::from_secs(6))
        .spawn(pbx.sip_addr());
    std::thread::sleep(Duration::from_millis(500));
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
    assert!(
        provider.received().is_empty(),
        "the provider got something:\n{provider}"
    );
}
