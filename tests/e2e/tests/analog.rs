//! Analog ports end to end (issue 4): `pbxd --hardware sim` runs the real SLIC driver
//! against the emulated chip with a virtual phone on each port; the tests script the
//! phones through `DATA/sim.sock` (`Pbx::sim`) and listen to what their earpieces play.
//! The lines, call control and the RTP relay are the daemon's own: port 1 (extension 21)
//! and port 2 (extension 22) call each other, a SIP phone calls a port, audio goes
//! through the relay both ways.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test analog -- --nocapture
//! ```
//!
//! "Heard" is `hear N HZ` from the control socket: the level of HZ in the last 200 ms of
//! the earpiece relative to everything it played, in dB (0 when the tone is all there
//! is). A tone counts as heard above -6 dB and as absent below -20 dB.

use std::thread;
use std::time::Duration;

use pbx_e2e::{Pbx, Phone, PhoneConfig};

/// The German dial, ringback and busy tone.
const TONE_425: &str = "425";

fn level(answer: &str) -> f64 {
    answer
        .strip_prefix("hear=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

/// Whether port `n` hears `hz` within `timeout`.
fn hears(pbx: &Pbx, n: u32, hz: &str, timeout: Duration) -> bool {
    pbx.sim_until(&format!("hear {n} {hz}"), timeout, |a| level(a) > -6.0)
        .1
}

/// Port `n` rings (a ring burst is seen) within `timeout`; returns the last status.
fn rings(pbx: &Pbx, n: u32, timeout: Duration) -> (String, bool) {
    pbx.sim_until(&format!("status {n}"), timeout, |a| {
        a.contains("ringing=yes")
    })
}

fn pbx() -> Pbx {
    let pbx = Pbx::builder()
        .extension("1001", "s3cret-1001")
        .arg("--digest-algorithms")
        .arg("md5")
        .start();
    assert!(
        pbx.log().contains("simulated analog ports started"),
        "{}",
        pbx.log()
    );
    pbx
}

/// Port 1 dials port 2 by DTMF; port 2 rings with caller ID "21" and answers.
fn port_calls_port(pbx: &Pbx) {
    pbx.sim("offhook 1");
    assert!(
        hears(pbx, 1, TONE_425, Duration::from_secs(2)),
        "no dial tone on port 1\n{}",
        pbx.log()
    );
    pbx.sim("dtmf 1 22");
    let (status, ok) = rings(pbx, 2, Duration::from_secs(6));
    assert!(ok, "port 2 does not ring: {status}\n{}", pbx.log());
    // Caller ID goes out after the first ring, before the second.
    let (status, ok) = pbx.sim_until("status 2", Duration::from_secs(6), |a| a.contains("cid=21"));
    assert!(ok, "port 2 shows no caller ID 21: {status}\n{}", pbx.log());
    // The caller hears ringback meanwhile.
    assert!(
        hears(pbx, 1, TONE_425, Duration::from_secs(5)),
        "no ringback on port 1"
    );
    pbx.sim("offhook 2");
}

#[test]
fn port_calls_port_and_audio_flows_both_ways() {
    let pbx = pbx();
    port_calls_port(&pbx);
    // A tone into each microphone comes out of the other earpiece, not its own.
    pbx.sim("tone 1 1000 3000");
    pbx.sim("tone 2 1500 3000");
    assert!(
        hears(&pbx, 2, "1000", Duration::from_secs(2)),
        "port 2 does not hear port 1\n{}",
        pbx.log()
    );
    assert!(
        hears(&pbx, 1, "1500", Duration::from_secs(2)),
        "port 1 does not hear port 2"
    );
    let own = level(&pbx.sim("hear 1 1000"));
    assert!(
        own < -20.0,
        "port 1 hears itself at {own} dB (echo or crossed legs)"
    );
    assert_eq!(pbx.health_calls(), Some(1), "one call during the call");
    // The caller hangs up: the callee hears busy tone, then hangs up too.
    pbx.sim("onhook 1");
    assert!(
        hears(&pbx, 2, TONE_425, Duration::from_secs(3)),
        "no busy tone on port 2"
    );
    pbx.sim("onhook 2");
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "caller"), "21");
    assert_eq!(cdr.get(0, "destination"), "22");
    assert_eq!(cdr.get(0, "hangup"), "caller");
    pbx.assert_no_call_left();
}

#[test]
fn pulse_dialling_reaches_the_other_port() {
    let pbx = pbx();
    pbx.sim("offhook 1");
    assert!(
        hears(&pbx, 1, TONE_425, Duration::from_secs(2)),
        "no dial tone"
    );
    pbx.sim("pulse 1 22");
    let (status, ok) = rings(&pbx, 2, Duration::from_secs(8));
    assert!(
        ok,
        "port 2 does not ring after pulse dialling: {status}\n{}",
        pbx.log()
    );
    // The caller gives up while it rings: the record says cancelled.
    pbx.sim("onhook 1");
    let cdr = pbx.one_record(&["cancelled"]);
    assert_eq!(cdr.get(0, "dialled"), "22");
    let (status, ok) = pbx.sim_until("status 2", Duration::from_secs(6), |a| {
        a.contains("ringing=no")
    });
    assert!(ok, "port 2 still rings: {status}");
    pbx.assert_no_call_left();
}

#[test]
fn a_sip_phone_calls_a_port_and_they_talk() {
    let pbx = pbx();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new("1001", "s3cret-1001", &["PCMA/8000/1"], 440.0),
    );
    phone.command("dial", "21").expect("dial accepted");
    let (status, ok) = rings(&pbx, 1, Duration::from_secs(6));
    assert!(ok, "port 1 does not ring: {status}\n{}", pbx.log());
    pbx.sim("offhook 1");
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "the SIP phone's call is not answered: {:?}\n{}",
        phone.events(),
        pbx.log()
    );
    // The SIP phone's microphone plays 440 Hz: the port's earpiece hears it.
    assert!(
        hears(&pbx, 1, "440", Duration::from_secs(5)),
        "port 1 does not hear the SIP phone\n{}",
        pbx.log()
    );
    pbx.sim("onhook 1");
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some(),
        "the SIP phone's call does not end"
    );
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), "21");
    assert_eq!(cdr.get(0, "hangup"), "callee");
    pbx.assert_no_call_left();
    thread::sleep(Duration::from_millis(100));
}
