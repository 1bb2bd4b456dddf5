//! GSM calls end to end (issue 7): `pbxd --hardware sim` runs the real serial code
//! against the EC25 emulator on a pty; the tests play the mobile network and the far end
//! through `DATA/modem.sock` (see `firmware/pbxd/src/gsm/sim.rs`) and use a registered
//! baresip phone (or an emulated analog port). Audio goes module PCM (the emulator's in-memory path, or an ALSA PCM with `--modem-pcm`) ↔ the audio
//! bridge ↔ the RTP relay ↔ the phone, both ways.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test gsm_calls -- --nocapture
//! ```
//!
//! "Heard" at the far end is `hear HZ` from the control socket: the level of HZ in the
//! last 200 ms the far end heard, relative to all of it, in dB (0 when the tone is all
//! there is); above -6 dB counts as heard. What the phone heard is its recording.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use pbx_e2e::alsa_file::{file_pcm_asoundrc, tone_bytes};
use pbx_e2e::{Pbx, Phone, PhoneConfig, ToneReport};

const EXT: &str = "1001";
const PW: &str = "s3cret-1001";
/// The phone's microphone.
const PHONE_TONE: f64 = 440.0;
/// The far end's voice.
const FAR_TONE: f64 = 1000.0;
/// Goertzel amplitude that counts as a tone being there (as in audio.rs).
const HEARD: f64 = 2000.0;

fn pbx() -> Pbx {
    Pbx::builder()
        .extension(EXT, PW)
        .arg("--digest-algorithms")
        .arg("md5")
        .ctl(&["gsm", "pin", "1234"])
        .ctl(&["gsm", "confirm-gateway-use"])
        .ctl(&[
            "gsm",
            "route",
            "--inbound",
            EXT,
            "--prefix",
            "8",
            "--policy",
            "fallback",
        ])
        .start()
}

/// One command to the emulated network; the answer line.
fn modem(pbx: &Pbx, command: &str) -> String {
    let path = pbx.data_dir().join("modem.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&path)
        .unwrap_or_else(|e| panic!("connect {}: {e}\n{}", path.display(), pbx.log()));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    writeln!(stream, "{command}").expect("write a modem command");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read the modem answer");
    let line = line.trim().to_owned();
    assert!(!line.starts_with("error"), "modem {command:?}: {line}");
    line
}

/// Polls `modem(command)` until `want` holds; the last answer and whether it held.
fn modem_until(
    pbx: &Pbx,
    command: &str,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> (String, bool) {
    let deadline = pbx_e2e::now() + timeout;
    loop {
        let a = modem(pbx, command);
        if want(&a) {
            return (a, true);
        }
        if pbx_e2e::now() >= deadline {
            return (a, false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the phone has seen `n` events of type `kind`.
fn wait_nth(phone: &Phone, kind: &str, n: usize, timeout: Duration) -> bool {
    let deadline = pbx_e2e::now() + timeout;
    loop {
        if phone.events().iter().filter(|(k, _)| k == kind).count() >= n {
            return true;
        }
        if pbx_e2e::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn level(answer: &str) -> f64 {
    answer
        .strip_prefix("hear=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

/// The module is set up (PIN taken, AT+QDAI sent) and registered.
fn wait_ready(pbx: &Pbx) {
    let (pcm, ok) = modem_until(pbx, "pcm", Duration::from_secs(15), |a| a != "-");
    assert!(
        ok,
        "the PCM interface was never set (AT+QDAI)\n{}",
        pbx.log()
    );
    assert_eq!(pcm, "1,1,0,1,0,0,1,1");
    let deadline = pbx_e2e::now() + Duration::from_secs(15);
    while !pbx
        .ctl(&["gsm", "status"])
        .lines()
        .any(|l| l.starts_with("registration") && l.ends_with("home"))
    {
        assert!(
            pbx_e2e::now() < deadline,
            "the module never registered: {}\n{}",
            pbx.ctl(&["gsm", "status"]),
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The far end hears the phone's tone; the call goes on 3 s more for the phone's
/// recording.
fn assert_far_end_hears_the_phone(pbx: &Pbx) {
    let (heard, ok) = modem_until(
        pbx,
        &format!("hear {PHONE_TONE}"),
        Duration::from_secs(5),
        |a| level(a) > -6.0,
    );
    assert!(
        ok,
        "the far end does not hear the phone: {heard}\n{}",
        pbx.log()
    );
    eprintln!("far end hears the phone's {PHONE_TONE} Hz at {heard}");
    std::thread::sleep(Duration::from_secs(3));
}

/// The phone's recording of its last call has the far end's tone and not its own.
fn assert_phone_heard_the_far_end(phone: &Phone, pbx: &Pbx) {
    let got = phone
        .received_audio()
        .unwrap_or_else(|e| panic!("{e}\n{}", phone.log()));
    let report = ToneReport::analyse(&got, FAR_TONE, PHONE_TONE, HEARD);
    eprintln!("phone received {:.1} s: {report:?}", got.seconds());
    assert!(
        report.expected_seconds() >= 2.0,
        "the phone did not hear the far end's {FAR_TONE} Hz: {report:?}\n{}",
        pbx.log()
    );
    assert!(
        report.unwanted_blocks * 20 <= report.blocks,
        "the phone heard itself: {report:?}"
    );
}

#[test]
fn an_incoming_gsm_call_rings_the_phone_with_caller_id_and_they_talk() {
    let pbx = pbx();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new(EXT, PW, &["PCMA/8000/1"], PHONE_TONE),
    );
    wait_ready(&pbx);
    modem(&pbx, &format!("tone {FAR_TONE}"));
    modem(&pbx, "ring +4930555123");
    // The phone answers at once (baresip's answermode=auto): its call's peer is the
    // caller, in national format.
    let up = phone
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "the phone does not ring: {:?}\n{}",
                phone.events(),
                pbx.log()
            )
        });
    let peer = up.field("param").unwrap_or_default();
    assert_eq!(
        peer, "sip:030555123@pbx.local",
        "caller ID in national format"
    );
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| {
        a.contains("active")
    });
    assert!(
        ok,
        "the module was not answered (ATA): {call}\n{}",
        pbx.log()
    );
    assert_far_end_hears_the_phone(&pbx);
    // The far end hangs up: the phone's call ends.
    modem(&pbx, "hangup");
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some(),
        "the phone's call does not end\n{}",
        pbx.log()
    );
    assert_phone_heard_the_far_end(&phone, &pbx);
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "destination"), EXT);
    pbx.assert_no_call_left();
}

#[test]
fn the_phone_dials_the_gsm_prefix_and_talks_to_the_far_end() {
    let pbx = pbx();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new(EXT, PW, &["PCMA/8000/1"], PHONE_TONE),
    );
    wait_ready(&pbx);
    modem(&pbx, &format!("tone {FAR_TONE}"));
    phone.command("dial", "80301234567").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out 0301234567")
    });
    assert!(
        ok,
        "the module did not dial 0301234567: {call}\n{}",
        pbx.log()
    );
    assert!(!call.contains("emergency"));
    modem(&pbx, "answer");
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "the phone's call is not answered: {:?}\n{}",
        phone.events(),
        pbx.log()
    );
    assert_far_end_hears_the_phone(&pbx);
    phone.command("hangup", "").expect("hangup accepted");
    assert!(phone
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .is_some());
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| a == "none");
    assert!(ok, "the module's call was not hung up (ATH): {call}");
    assert_phone_heard_the_far_end(&phone, &pbx);
    pbx.assert_no_call_left();
}

#[test]
fn with_no_trunk_up_external_calls_and_112_go_out_over_gsm() {
    let pbx = pbx();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new(EXT, PW, &["PCMA/8000/1"], PHONE_TONE),
    );
    wait_ready(&pbx);
    // An ordinary external number, no prefix: no cloud trunk, so GSM (policy fallback).
    phone.command("dial", "0301234567").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out +49301234567")
    });
    assert!(
        ok,
        "the external call did not go out over GSM: {call}\n{}",
        pbx.log()
    );
    modem(&pbx, "busy");
    assert!(wait_nth(&phone, "CALL_CLOSED", 1, Duration::from_secs(10)));
    // 112: the emergency route falls back to the module.
    phone.command("dial", "112").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out 112")
    });
    assert!(ok, "112 did not go out over GSM: {call}\n{}", pbx.log());
    assert!(call.ends_with("emergency"), "{call}");
    modem(&pbx, "answer");
    assert!(phone
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .is_some());
    modem(&pbx, "hangup");
    assert!(
        wait_nth(&phone, "CALL_CLOSED", 2, Duration::from_secs(10)),
        "{:?}",
        phone.events()
    );
    pbx.assert_no_call_left();
}

#[test]
fn an_incoming_gsm_call_rings_an_analog_port_with_caller_id_and_they_talk() {
    let pbx = Pbx::builder()
        .extension(EXT, PW)
        .ctl(&["gsm", "pin", "1234"])
        .ctl(&["gsm", "route", "--inbound", "21", "--policy", "off"])
        .start();
    wait_ready(&pbx);
    modem(&pbx, &format!("tone {FAR_TONE}"));
    modem(&pbx, "ring +4930555123");
    let (status, ok) = pbx.sim_until("status 1", Duration::from_secs(10), |a| {
        a.contains("ringing=yes") && a.contains("cid=030555123")
    });
    assert!(
        ok,
        "port 1 does not ring with the caller ID: {status}\n{}",
        pbx.log()
    );
    pbx.sim("offhook 1");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| {
        a.contains("active")
    });
    assert!(ok, "the module was not answered: {call}\n{}", pbx.log());
    // The far end's voice in the earpiece, the handset's microphone at the far end.
    let (heard, ok) = pbx.sim_until(&format!("hear 1 {FAR_TONE}"), Duration::from_secs(5), |a| {
        level(a) > -6.0
    });
    assert!(
        ok,
        "port 1 does not hear the far end: {heard}\n{}",
        pbx.log()
    );
    pbx.sim("tone 1 600 3000");
    let (heard, ok) = modem_until(&pbx, "hear 600", Duration::from_secs(5), |a| {
        level(a) > -6.0
    });
    assert!(
        ok,
        "the far end does not hear port 1: {heard}\n{}",
        pbx.log()
    );
    pbx.sim("onhook 1");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| a == "none");
    assert!(ok, "the module's call was not hung up: {call}");
    pbx.assert_no_call_left();
}

#[test]
fn mobile_numbers_go_over_gsm_by_their_class_and_others_do_not() {
    let pbx = Pbx::builder()
        .extension(EXT, PW)
        .arg("--digest-algorithms")
        .arg("md5")
        .ctl(&["gsm", "pin", "1234"])
        .ctl(&["gsm", "confirm-gateway-use"])
        .ctl(&["gsm", "route", "--policy", "off", "--mobile", "on"])
        .start();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new(EXT, PW, &["PCMA/8000/1"], PHONE_TONE),
    );
    wait_ready(&pbx);
    // A landline number: not over GSM (policy off), and no trunk: refused.
    phone.command("dial", "0301234567").expect("dial accepted");
    assert!(wait_nth(&phone, "CALL_CLOSED", 1, Duration::from_secs(10)));
    assert_eq!(modem(&pbx, "call"), "none");
    // A mobile number goes out on the module, in E.164.
    phone.command("dial", "01701234567").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out +491701234567")
    });
    assert!(
        ok,
        "the mobile number did not go over GSM: {call}\n{}",
        pbx.log()
    );
    modem(&pbx, "busy");
    assert!(wait_nth(&phone, "CALL_CLOSED", 2, Duration::from_secs(10)));
    pbx.assert_no_call_left();
}

/// GSM settings changed with `pbxctl` while pbxd runs count for the very next call,
/// placed right after the command returned: the installer's gateway confirmation and the
/// GSM prefix are read per call, not from a copy refreshed every few seconds.
#[test]
fn gsm_settings_changed_by_pbxctl_count_for_the_very_next_call() {
    let pbx = Pbx::builder()
        .extension(EXT, PW)
        .arg("--digest-algorithms")
        .arg("md5")
        .ctl(&["gsm", "pin", "1234"])
        .ctl(&["gsm", "route", "--prefix", "8", "--policy", "prefix"])
        .start();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new(EXT, PW, &["PCMA/8000/1"], PHONE_TONE),
    );
    wait_ready(&pbx);
    // Not confirmed yet: the GSM prefix is refused.
    phone.command("dial", "80301234567").expect("dial accepted");
    assert!(wait_nth(&phone, "CALL_CLOSED", 1, Duration::from_secs(10)));
    assert_eq!(modem(&pbx, "call"), "none");

    // Confirmed: the next call goes out over the module.
    pbx.ctl(&["gsm", "confirm-gateway-use"]);
    phone.command("dial", "80301234567").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out 0301234567")
    });
    assert!(
        ok,
        "the call right after the confirmation did not go over GSM: {call}\n{}",
        pbx.log()
    );
    modem(&pbx, "busy");
    assert!(wait_nth(&phone, "CALL_CLOSED", 2, Duration::from_secs(10)));

    // A new prefix: the next call with it goes out, the old prefix no longer does.
    pbx.ctl(&["gsm", "route", "--prefix", "9"]);
    phone.command("dial", "90301234567").expect("dial accepted");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(10), |a| {
        a.starts_with("out 0301234567")
    });
    assert!(
        ok,
        "the call right after the new prefix did not go over GSM: {call}\n{}",
        pbx.log()
    );
    modem(&pbx, "busy");
    assert!(wait_nth(&phone, "CALL_CLOSED", 3, Duration::from_secs(10)));
    phone.command("dial", "80301234567").expect("dial accepted");
    assert!(wait_nth(&phone, "CALL_CLOSED", 4, Duration::from_secs(10)));
    assert_eq!(modem(&pbx, "call"), "none", "the old prefix is gone");
    pbx.assert_no_call_left();
}

/// A real module's voice goes through an ALSA PCM (`--modem-pcm`): here alsa-lib's `file`
/// plugin, named in an asoundrc pbxd loads through `ALSA_CONFIG_PATH`. The far end's
/// voice comes from a file, what the module is given to say goes to one; signalling is
/// still the emulated module's.
#[test]
fn with_modem_pcm_the_call_audio_goes_through_the_alsa_pcm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let says = dir.path().join("module-says.raw");
    let hears = dir.path().join("module-hears.raw");
    // The PCM runs from pbxd's start: a minute of the far end's 1 kHz covers the call.
    std::fs::write(&says, tone_bytes(FAR_TONE, 60.0)).expect("write the far end's voice");
    let rc = dir.path().join("asoundrc");
    std::fs::write(&rc, file_pcm_asoundrc("gsm_module", &hears, &says))
        .expect("write the asoundrc");
    let pbx = Pbx::builder()
        .extension(EXT, PW)
        .arg("--modem-pcm")
        .arg("gsm_module")
        .env("ALSA_CONFIG_PATH", &rc.display().to_string())
        .ctl(&["gsm", "pin", "1234"])
        .ctl(&["gsm", "route", "--inbound", "21", "--policy", "off"])
        .start();
    wait_ready(&pbx);
    assert!(
        pbx.log().contains("GSM module PCM open"),
        "the module's PCM did not open:\n{}",
        pbx.log()
    );
    modem(&pbx, "ring +4930555123");
    let (status, ok) = pbx.sim_until("status 1", Duration::from_secs(10), |a| {
        a.contains("ringing=yes")
    });
    assert!(ok, "port 1 does not ring: {status}\n{}", pbx.log());
    pbx.sim("offhook 1");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| {
        a.contains("active")
    });
    assert!(ok, "the module was not answered: {call}\n{}", pbx.log());
    // The PCM's 1 kHz in the earpiece.
    let (heard, ok) = pbx.sim_until(&format!("hear 1 {FAR_TONE}"), Duration::from_secs(5), |a| {
        level(a) > -6.0
    });
    assert!(
        ok,
        "port 1 does not hear the module's PCM: {heard}\n{}",
        pbx.log()
    );
    // The handset's 600 Hz reaches the PCM (the file grows while the call goes on).
    pbx.sim("tone 1 600 3000");
    std::thread::sleep(Duration::from_secs(3));
    pbx.sim("onhook 1");
    let (call, ok) = modem_until(&pbx, "call", Duration::from_secs(5), |a| a == "none");
    assert!(ok, "the module's call was not hung up: {call}");
    let played: Vec<i16> = std::fs::read(&hears)
        .expect("the PCM's playback file")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let blocks = played
        .chunks_exact(160)
        .filter(|b| pbx_e2e::goertzel_amplitude(b, 8000, 600.0) > HEARD)
        .count();
    assert!(
        blocks >= 50,
        "the module's PCM got {blocks} frames of the handset's 600 Hz ({} frames in all)",
        played.len() / 160
    );
    pbx.assert_no_call_left();
}
