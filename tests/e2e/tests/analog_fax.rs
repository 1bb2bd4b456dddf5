//! Fax/modem pass-through end to end (issue 4): two emulated ports in a call; a fax
//! tone played into port 1's microphone switches the call to pass-through, which
//! `pbxctl ports` shows as call `fax` on both ports (port 1 heard CNG from its phone,
//! port 2 from the far side); a 100 ms burst of the same tone (speech talk-off) does not.
//!
//! A fax on a call from a port to a SIP phone that answered with G.722: pbxd re-INVITEs
//! the SIP leg offering G.711 only (sipp, `tests/sipp/fax_uas_g722.xml`, first answers
//! 491 to test glare, then PCMA), and the fax tone then reaches the phone's RTP socket
//! (this test's own) as clean A-law.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test analog_fax -- --nocapture
//! ```

use std::net::UdpSocket;
use std::thread;
use std::time::Duration;

use pbx_e2e::{goertzel_amplitude, now, start_phone, Pbx};

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

/// One RTP packet's payload type and payload (no CSRCs or extension expected).
fn rtp(pkt: &[u8]) -> Option<(u8, &[u8])> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(pkt[0] & 0x0f);
    let start = 12 + 4 * cc;
    (pkt.len() >= start).then(|| (pkt[1] & 0x7f, &pkt[start..]))
}

/// G.711 A-law to linear (ITU-T G.711).
fn alaw(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a >> 4) & 7;
    let mant = i16::from(a & 0x0f);
    let mag = match seg {
        0 => (mant << 4) + 8,
        s => ((mant << 4) + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        mag
    } else {
        -mag
    }
}

/// The RTP packets arriving at `sock` for `span`: (payload type, payload).
fn receive(sock: &UdpSocket, span: Duration) -> Vec<(u8, Vec<u8>)> {
    let end = now() + span;
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            if let Some((pt, payload)) = rtp(&buf[..n]) {
                out.push((pt, payload.to_vec()));
            }
        }
    }
    out
}

/// The `m=audio` payload types and the `o=` version of an SDP in a SIP message.
fn offer_of(msg: &str) -> (String, u64) {
    let body = msg.split("\r\n\r\n").nth(1).unwrap_or(msg);
    let m = body
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .map(|l| l.trim().split(' ').skip(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let v = body
        .lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split(' ').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (m, v)
}

#[test]
fn a_fax_on_a_g722_sip_leg_reinvites_it_to_g711_and_the_tone_arrives_clean() {
    let pbx = Pbx::builder()
        .extension("1001", "s3cret-1001")
        .arg("--digest-algorithms")
        .arg("md5")
        .start();
    // The SIP phone's RTP address: this socket, written in sipp's SDP.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind RTP socket");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let rtp_port = sock.local_addr().expect("addr").port().to_string();
    let phone = start_phone(
        &pbx,
        "1001",
        "s3cret-1001",
        "fax_uas_g722.xml",
        &["-key", "rtp_port", &rtp_port],
        Duration::from_secs(60),
    );

    pbx.sim("offhook 1");
    let (a, ok) = pbx.sim_until("hear 1 425", Duration::from_secs(2), |a| level(a) > -6.0);
    assert!(ok, "no dial tone on port 1: {a}\n{}", pbx.log());
    pbx.sim("dtmf 1 1001");
    let (line, ok) = port_line_until(&pbx, 1, |l| l.ends_with("connected"));
    assert!(ok, "port 1 not connected: {line}\n{}", pbx.log());
    // Voice: the relay sends the phone G.722 (payload type 9).
    let voice = receive(&sock, Duration::from_millis(600));
    assert!(
        !voice.is_empty() && voice.iter().all(|(pt, _)| *pt == 9),
        "before the fax the phone gets G.722 only: {:?}",
        voice.iter().map(|(pt, _)| pt).collect::<Vec<_>>()
    );

    // CNG from the fax on port 1: pass-through, and a re-INVITE to G.711.
    pbx.sim("tone 1 1100 500");
    let (line, ok) = port_line_until(&pbx, 1, |l| l.ends_with("fax"));
    assert!(ok, "port 1 not in pass-through: {line}\n{}", pbx.log());
    // The first re-INVITE meets 491; the retry comes 2.1-4 s later and gets PCMA.
    let deadline = now() + Duration::from_secs(10);
    let mut switched = false;
    while now() < deadline && !switched {
        switched = receive(&sock, Duration::from_millis(100))
            .iter()
            .any(|(pt, _)| *pt == 8);
    }
    assert!(switched, "no A-law RTP after the fax tone\n{}", pbx.log());

    // The fax's tone now reaches the phone as A-law, clean.
    pbx.sim("tone 1 1100 2000");
    let fax = receive(&sock, Duration::from_millis(2200));
    let pts: Vec<u8> = fax.iter().map(|(pt, _)| *pt).collect();
    assert!(
        pts.iter().all(|pt| *pt == 8),
        "after the switch only A-law: {pts:?}"
    );
    let samples: Vec<i16> = fax
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&b| alaw(b)))
        .collect();
    // The loud 40 ms blocks (the tone, not the silence around it).
    let blocks: Vec<&[i16]> = samples
        .chunks(320)
        .filter(|b| b.len() == 320 && b.iter().map(|&x| i32::from(x).abs()).max() > Some(1000))
        .collect();
    assert!(
        blocks.len() >= 25,
        "about 2 s of tone expected, got {} blocks of 40 ms",
        blocks.len()
    );
    let mut worst = f64::INFINITY;
    for b in &blocks {
        let amp = goertzel_amplitude(b, 8000, 1100.0);
        let tone_power = amp * amp / 2.0;
        let total = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / b.len() as f64;
        let snr = 10.0 * (tone_power / (total - tone_power).max(1e-9)).log10();
        worst = worst.min(snr);
    }
    println!(
        "fax tone through the G.711 leg: {} blocks of 40 ms, worst tone-to-rest ratio {worst:.1} dB",
        blocks.len()
    );
    // G.711 quantisation alone leaves about 35 dB; transcoding through G.722 or a
    // changing jitter buffer would not.
    assert!(worst > 25.0, "the tone arrives distorted: {worst:.1} dB");

    pbx.sim("onhook 1");
    let run = phone.wait();
    assert!(
        run.success(),
        "sipp phone:\n{run}\npbxd log:\n{}",
        pbx.log()
    );
    // Both re-INVITEs offered G.711 only, each with the o= version one up.
    let invites: Vec<String> = run
        .received()
        .into_iter()
        .filter(|m| m.starts_with("INVITE "))
        .collect();
    assert_eq!(invites.len(), 3, "INVITE, re-INVITE, retry: {invites:#?}");
    let offers: Vec<(String, u64)> = invites.iter().map(|m| offer_of(m)).collect();
    for (i, (m, _)) in offers.iter().enumerate().skip(1) {
        let pts: Vec<&str> = m.split(' ').collect();
        assert_eq!(&pts[..2], ["8", "0"], "re-INVITE {i}: {m}");
        assert!(pts.len() <= 3, "re-INVITE {i}: {m}");
        assert!(!invites[i].contains("G722"), "{}", invites[i]);
    }
    assert_eq!(offers[1].1, offers[0].1 + 1);
    assert_eq!(offers[2].1, offers[1].1 + 1);
    assert!(
        pbx.log().contains("switched to G.711"),
        "no switch log line\n{}",
        pbx.log()
    );
    pbx.assert_no_call_left();
}
