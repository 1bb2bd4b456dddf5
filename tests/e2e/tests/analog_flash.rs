//! Hook flash and call waiting on the daemon's emulated analog ports (issue 4), through
//! the real lines, call control and RTP relay: three ports (extensions 21, 22, 23)
//! scripted through `DATA/sim.sock`.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test analog_flash -- --nocapture
//! ```
//!
//! A SIP caller (baresip) held by port 1 and handed to port 3 while port 3 still rings
//! hears the box's ringback (425 Hz, 1 s on / 4 s off, decoded from its recording) until
//! port 3 answers, then port 3.
//!
//! "Heard" is `hear N HZ`: the level of HZ in the last 200 ms of port N's earpiece
//! relative to all it played, in dB; heard above -6 dB.

use std::time::Duration;

use pbx_e2e::{check_cadence, tone_runs, Pbx, Phone, PhoneConfig};

fn level(answer: &str) -> f64 {
    answer
        .strip_prefix("hear=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

fn hears(pbx: &Pbx, n: u32, hz: u32, timeout: Duration) -> bool {
    pbx.sim_until(&format!("hear {n} {hz}"), timeout, |a| level(a) > -6.0)
        .1
}

fn status_has(pbx: &Pbx, n: u32, what: &str, timeout: Duration) -> bool {
    pbx.sim_until(&format!("status {n}"), timeout, |a| a.contains(what))
        .1
}

fn pbx() -> Pbx {
    let pbx = Pbx::builder()
        .arg("--port-extensions")
        .arg("21,22,23")
        .start();
    assert!(
        pbx.log().contains("simulated analog ports started"),
        "{}",
        pbx.log()
    );
    pbx
}

/// Port `a` calls port `b` (extension 2b), which answers.
fn call(pbx: &Pbx, a: u32, b: u32) {
    pbx.sim(&format!("offhook {a}"));
    assert!(hears(pbx, a, 425, Duration::from_secs(2)), "no dial tone");
    pbx.sim(&format!("dtmf {a} 2{b}"));
    assert!(
        status_has(pbx, b, "ringing=yes", Duration::from_secs(6)),
        "port {b} does not ring\n{}",
        pbx.log()
    );
    pbx.sim(&format!("offhook {b}"));
    std::thread::sleep(Duration::from_millis(300));
}

/// Port `from` plays a tone that port `to` must hear.
fn talk(pbx: &Pbx, from: u32, to: u32, hz: u32) -> bool {
    pbx.sim(&format!("tone {from} {hz} 3000"));
    hears(pbx, to, hz, Duration::from_secs(3))
}

#[test]
fn flash_enquiry_to_a_third_port_then_hang_up_transfers() {
    let pbx = pbx();
    call(&pbx, 1, 2);
    assert!(talk(&pbx, 1, 2, 1000), "ports 1 and 2 do not talk");
    // Flash: special dial tone (425 Hz, interrupted) on port 1; enquiry to port 3.
    pbx.sim("flash 1");
    assert!(
        hears(&pbx, 1, 425, Duration::from_secs(2)),
        "no dial tone after the flash"
    );
    pbx.sim("dtmf 1 23");
    assert!(
        status_has(&pbx, 3, "ringing=yes", Duration::from_secs(6)),
        "port 3 does not ring\n{}",
        pbx.log()
    );
    pbx.sim("offhook 3");
    std::thread::sleep(Duration::from_millis(300));
    assert!(talk(&pbx, 1, 3, 1200), "ports 1 and 3 do not talk");
    // Hang up: ports 2 and 3 talk through the relay, both ways.
    pbx.sim("onhook 1");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        talk(&pbx, 2, 3, 800),
        "port 3 does not hear port 2 after the transfer\n{}",
        pbx.log()
    );
    assert!(
        talk(&pbx, 3, 2, 1400),
        "port 2 does not hear port 3 after the transfer"
    );
    pbx.sim("onhook 2");
    pbx.sim("onhook 3");
}

#[test]
fn call_waiting_shows_the_callers_number_and_flash_takes_the_call() {
    let pbx = pbx();
    call(&pbx, 1, 2);
    // Port 3 calls 21 while port 1 talks: the phone on port 1 decodes type-2 caller ID.
    pbx.sim("offhook 3");
    assert!(hears(&pbx, 3, 425, Duration::from_secs(2)));
    pbx.sim("dtmf 3 21");
    assert!(
        status_has(&pbx, 1, "cid2=23", Duration::from_secs(6)),
        "no type-2 caller ID on port 1: {}\n{}",
        pbx.sim("status 1"),
        pbx.log()
    );
    assert!(
        talk(&pbx, 2, 1, 700),
        "the first call goes on while a call waits"
    );
    pbx.sim("flash 1");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        talk(&pbx, 1, 3, 1000),
        "port 1 does not talk to the waiting caller\n{}",
        pbx.log()
    );
    pbx.sim("onhook 3");
    pbx.sim("onhook 1");
    pbx.sim("onhook 2");
}

#[test]
fn a_us_port_decodes_bell_202_type_2_caller_id_and_the_far_party_hears_no_acknowledgement() {
    let pbx = pbx();
    // Port 1 becomes a US line: Bell 202 caller ID (the country's default).
    let out = pbx.ctl(&["port", "set", "1", "--country", "US"]);
    assert_eq!(out.trim(), "port 1 changed");
    // Settings are polled every 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        pbx.ctl(&["ports"]).contains("bell202"),
        "{}",
        pbx.ctl(&["ports"])
    );
    // Port 2 (German dial tone) calls port 1.
    call(&pbx, 2, 1);
    pbx.sim("offhook 3");
    assert!(hears(&pbx, 3, 425, Duration::from_secs(2)));
    pbx.sim("dtmf 3 21");
    // While the call waits, port 2 (port 1's party) must never hear port 1's DTMF
    // acknowledgement (D: 941 + 1633 Hz): the call is muted from the CAS to the FSK's
    // end. `hear` covers the last 200 ms; poll every 50 ms.
    let mut loudest = f64::NEG_INFINITY;
    let mut decoded = false;
    for _ in 0..120 {
        loudest = loudest.max(level(&pbx.sim("hear 2 1633")));
        if pbx.sim("status 1").contains("cid2=23") {
            decoded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        decoded,
        "no Bell 202 type-2 caller ID on the US port: {}\n{}",
        pbx.sim("status 1"),
        pbx.log()
    );
    for _ in 0..6 {
        loudest = loudest.max(level(&pbx.sim("hear 2 1633")));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        loudest < -20.0,
        "port 2 heard the acknowledgement's 1633 Hz at {loudest} dB"
    );
    // Afterwards the call is heard both ways again.
    assert!(
        talk(&pbx, 2, 1, 700),
        "the first call goes on after the caller ID"
    );
    assert!(talk(&pbx, 1, 2, 1000), "port 2 hears port 1 again");
    pbx.sim("onhook 3");
    pbx.sim("onhook 1");
    pbx.sim("onhook 2");
}

#[test]
fn hanging_up_while_the_enquiry_rings_transfers_to_the_ringing_party() {
    let pbx = pbx();
    call(&pbx, 1, 2);
    // Enquiry to port 3; hang up while it rings.
    pbx.sim("flash 1");
    std::thread::sleep(Duration::from_millis(500));
    pbx.sim("dtmf 1 23");
    assert!(
        status_has(&pbx, 3, "ringing=yes", Duration::from_secs(6)),
        "the enquiry does not ring port 3\n{}",
        pbx.log()
    );
    pbx.sim("onhook 1");
    // Port 3 rings on, now with the held party's number (22), and port 1 stays quiet.
    assert!(
        status_has(&pbx, 3, "cid=22", Duration::from_secs(8)),
        "port 3 does not ring for port 2: {}\n{}",
        pbx.sim("status 3"),
        pbx.log()
    );
    assert!(
        pbx.sim("status 1").contains("ringing=no"),
        "{}",
        pbx.sim("status 1")
    );
    pbx.sim("offhook 3");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        talk(&pbx, 2, 3, 800),
        "port 3 does not hear port 2 after the transfer\n{}",
        pbx.log()
    );
    assert!(talk(&pbx, 3, 2, 1400), "port 2 does not hear port 3");
    pbx.sim("onhook 2");
    pbx.sim("onhook 3");
}

/// The German ringback tone: 425 Hz, 1 s on, 4 s off.
const RINGBACK_HZ: f64 = 425.0;
/// A block holds a tone at this amplitude (a quarter of the tones' peak, as audio.rs).
const HEARD: f64 = 2000.0;

#[test]
fn a_sip_caller_transferred_to_a_ringing_port_hears_ringback_then_the_port() {
    let pbx = Pbx::builder()
        .arg("--port-extensions")
        .arg("21,22,23")
        .extension("1001", "s3cret-1001")
        .arg("--digest-algorithms")
        .arg("md5")
        .start();
    let mut config = PhoneConfig::new("1001", "s3cret-1001", &["PCMA/8000/1"], 440.0);
    // baresip ends the call when its tone file ends.
    config.tone_secs = 60.0;
    let phone = Phone::start(&pbx, config);
    phone.command("dial", "21").expect("dial accepted");
    assert!(
        status_has(&pbx, 1, "ringing=yes", Duration::from_secs(6)),
        "port 1 does not ring\n{}",
        pbx.log()
    );
    pbx.sim("offhook 1");
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "{:?}\n{}",
        phone.events(),
        pbx.log()
    );
    // Enquiry from port 1 to port 3; port 1 hangs up while port 3 rings.
    pbx.sim("flash 1");
    std::thread::sleep(Duration::from_millis(500));
    pbx.sim("dtmf 1 23");
    assert!(
        status_has(&pbx, 3, "ringing=yes", Duration::from_secs(6)),
        "the enquiry does not ring port 3\n{}",
        pbx.log()
    );
    pbx.sim("onhook 1");
    assert!(
        status_has(&pbx, 3, "cid=1001", Duration::from_secs(8)),
        "port 3 does not ring for the SIP caller: {}\n{}",
        pbx.sim("status 3"),
        pbx.log()
    );
    // Two ringback bursts and the gap between them, then port 3 answers and talks.
    std::thread::sleep(Duration::from_millis(7500));
    pbx.sim("offhook 3");
    std::thread::sleep(Duration::from_millis(300));
    pbx.sim("tone 3 1400 3000");
    std::thread::sleep(Duration::from_millis(3300));
    assert!(
        hears(&pbx, 3, 440, Duration::from_secs(2)),
        "port 3 does not hear the SIP caller\n{}",
        pbx.log()
    );
    phone.command("hangup", "").expect("hangup accepted");
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some(),
        "{:?}",
        phone.events()
    );
    pbx.sim("onhook 3");

    let got = phone
        .received_audio()
        .unwrap_or_else(|e| panic!("the SIP caller's recording: {e}\n{}", pbx.log()));
    // Held, it heard music (C major arpeggio, no 425 Hz); after the hang-up, ringback.
    let runs = tone_runs(&got, RINGBACK_HZ, 1400.0, HEARD);
    eprintln!("425 Hz runs (present, s): {runs:?}");
    let bursts = check_cadence(&runs, 1.0, 4.0, 0.3)
        .unwrap_or_else(|e| panic!("ringback to the held caller: {e}\n{}", pbx.log()));
    assert!(bursts >= 2);
    let ringback_end: f64 = {
        let last = runs.iter().rposition(|r| r.0).expect("bursts were found");
        runs[..=last].iter().map(|r| r.1).sum()
    };
    // Then port 3's 1400 Hz, bridged through the relay.
    let port = tone_runs(&got, 1400.0, RINGBACK_HZ, HEARD);
    eprintln!("1400 Hz runs (present, s): {port:?}");
    let mut t = 0.0;
    let mut after = 0.0;
    for (on, secs) in &port {
        if *on && t >= ringback_end {
            after += secs;
        }
        t += secs;
    }
    assert!(
        after >= 2.0,
        "the caller heard port 3's 1400 Hz for {after:.2} s after the ringback\n{}",
        pbx.log()
    );
}
