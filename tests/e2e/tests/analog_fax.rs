//! Fax/modem pass-through end to end (issue 4): two emulated ports in a call; a fax
//! tone played into port 1's microphone switches the call to pass-through, which
//! `pbxctl ports` shows as call `fax` on both ports (port 1 heard CNG from its phone,
//! port 2 from the far side); a 100 ms burst of the same tone (speech talk-off) does not.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test analog_fax -- --nocapture
//! ```

use std::thread;
use std::time::Duration;

use pbx_e2e::Pbx;

fn level(answer: &str) -> f64 {
    answer
        .strip_prefix("hear=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

/// Port `n`'s line in `pbxctl ports`.
fn port_line(pbx: &Pbx, n: u32) -> String {
    pbx.ctl(&["ports"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&n.to_string()))
        .unwrap_or_default()
        .to_owned()
}

/// Polls port `n`'s line until it satisfies `want` (about 6 s).
fn port_line_until(pbx: &Pbx, n: u32, want: impl Fn(&str) -> bool) -> (String, bool) {
    for _ in 0..60 {
        let line = port_line(pbx, n);
        if want(&line) {
            return (line, true);
        }
        thread::sleep(Duration::from_millis(100));
    }
    (port_line(pbx, n), false)
}

#[test]
fn a_fax_tone_switches_the_call_to_pass_through() {
    let pbx = Pbx::builder().start();
    pbx.sim("offhook 1");
    let (a, ok) = pbx.sim_until("hear 1 425", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "no dial tone on port 1: {a}\n{}", pbx.log());
    pbx.sim("dtmf 1 22");
    let (s, ok) = pbx.sim_until("status 2", Duration::from_secs(6), |a| {
        a.contains("ringing=yes")
    });
    assert!(ok, "port 2 does not ring: {s}\n{}", pbx.log());
    pbx.sim("offhook 2");
    for n in [1, 2] {
        let (line, ok) = port_line_until(&pbx, n, |l| l.ends_with("connected"));
        assert!(ok, "port {n} not connected: {line}\n{}", pbx.log());
    }

    // Talk-off: a 100 ms burst of 1100 Hz is speech, the call stays voice.
    pbx.sim("tone 1 1100 100");
    thread::sleep(Duration::from_millis(1000));
    for n in [1, 2] {
        let line = port_line(&pbx, n);
        assert!(
            line.ends_with("connected"),
            "port {n} after a 100 ms burst: {line}"
        );
    }

    // CNG (0.5 s of 1100 Hz) from the fax on port 1.
    pbx.sim("tone 1 1100 500");
    for n in [1, 2] {
        let (line, ok) = port_line_until(&pbx, n, |l| l.ends_with("fax"));
        assert!(ok, "port {n} not in pass-through: {line}\n{}", pbx.log());
    }
    assert!(
        pbx.log().contains("call in pass-through"),
        "no pass-through log line\n{}",
        pbx.log()
    );
    // Audio still flows through the pass-through call.
    pbx.sim("tone 1 1800 2000");
    let (a, ok) = pbx.sim_until("hear 2 1800", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "port 2 does not hear port 1 in pass-through: {a}");

    // The call ends: port 2 is no longer in a fax call.
    pbx.sim("onhook 1");
    let (line, ok) = port_line_until(&pbx, 2, |l| !l.ends_with("fax"));
    assert!(ok, "port 2 still in pass-through after the call: {line}");
    pbx.sim("onhook 2");
    pbx.assert_no_call_left();
}
