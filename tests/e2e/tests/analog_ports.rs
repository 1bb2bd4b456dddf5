//! Per-port settings and live state against a running `pbxd --hardware sim` (issue 4):
//! `pbxctl ports` shows what the emulated ports do (hook, linefeed, call), and
//! `pbxctl port set N --country GB` changes port N's tones while pbxd runs.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test analog_ports -- --nocapture
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

/// Polls `pbxctl ports` until port `n`'s line satisfies `want`.
fn port_line_until(pbx: &Pbx, n: u32, want: impl Fn(&str) -> bool) -> (String, bool) {
    // About 5 s: 50 polls 100 ms apart.
    for _ in 0..50 {
        let out = pbx.ctl(&["ports"]);
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&n.to_string()))
            .unwrap_or_default()
            .to_owned();
        if want(&line) {
            return (out, true);
        }
        thread::sleep(Duration::from_millis(100));
    }
    (pbx.ctl(&["ports"]), false)
}

fn cols(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn pbxctl_ports_shows_live_state_and_a_gb_port_plays_gb_dial_tone() {
    let pbx = Pbx::builder().start();
    // Both ports up, on hook, fed forward.
    let (out, ok) = port_line_until(&pbx, 2, |l| l.contains("idle"));
    assert!(ok, "{out}\n{}", pbx.log());
    let (out, ok) = port_line_until(&pbx, 1, |l| {
        cols(l) == ["1", "21", "-", "DE", "v23", "on", "on", "forward", "idle"]
    });
    assert!(ok, "{out}");

    // Lift port 1: off hook, dial tone (German 425 Hz).
    pbx.sim("offhook 1");
    let (out, ok) = port_line_until(&pbx, 1, |l| l.contains(" off ") && l.ends_with("dial tone"));
    assert!(ok, "{out}\n{}", pbx.log());
    let (a, ok) = pbx.sim_until("hear 1 425", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "no 425 Hz on port 1: {a}");
    pbx.sim("onhook 1");

    // Port 1 becomes a British line while pbxd runs.
    let out = pbx.ctl(&["port", "set", "1", "--country", "GB", "--name", "Warehouse"]);
    assert_eq!(out.trim(), "port 1 changed");
    let (out, ok) = port_line_until(&pbx, 1, |l| {
        cols(l)[..6] == ["1", "21", "Warehouse", "GB", "v23", "on"] && l.ends_with("idle")
    });
    assert!(ok, "{out}");
    // Settings are polled every 2 s: wait a poll, then lift the handset.
    thread::sleep(Duration::from_millis(2500));
    pbx.sim("offhook 1");
    // GB dial tone: 350 + 440 Hz, each about half the power (-3 dB), no 425 Hz.
    let (a, ok) = pbx.sim_until("hear 1 350", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "no 350 Hz on the GB port: {a}\n{}", pbx.log());
    let a = pbx.sim("hear 1 440");
    assert!(level(&a) > -6.0, "no 440 Hz on the GB port: {a}");
    let a = pbx.sim("hear 1 425");
    assert!(level(&a) < -20.0, "German 425 Hz on the GB port: {a}");
    // Port 2 stays German.
    pbx.sim("offhook 2");
    let (a, ok) = pbx.sim_until("hear 2 425", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "port 2 lost its German dial tone: {a}");
}

#[test]
fn a_slic_with_a_wrong_id_is_marked_faulty_and_the_other_port_works() {
    let pbx = Pbx::builder().arg("--sim-wrong-chip-id").arg("2").start();
    assert!(pbx.log().contains("port marked faulty"), "{}", pbx.log());
    let (out, ok) = port_line_until(&pbx, 2, |l| {
        l.contains("FAULTY: SLIC does not come up: wrong chip ID 0x00 (expected 0xc3)")
    });
    assert!(ok, "{out}\n{}", pbx.log());
    pbx.sim("offhook 1");
    let (a, ok) = pbx.sim_until("hear 1 425", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "port 1 has no dial tone beside a faulty port 2: {a}");
    let (out, ok) = port_line_until(&pbx, 1, |l| l.ends_with("dial tone"));
    assert!(ok, "{out}");
}
