//! SRTP with SDES (RFC 4568, issue 5) through pbxd's relay, against baresip's `srtp`
//! module (libre's own SRTP, an implementation independent of pbxd's) as the far end.
//!
//! Each test starts pbxd (`--srtp` as the test needs), tcpdump on the loopback interface
//! for pbxd's RTP port range, and two headless baresip phones (see `Phone`): 1001 plays a
//! 440 Hz tone, 1002 a 1400 Hz tone, both PCMA. 1001 dials 1002, they talk, 1001 hangs
//! up. Then:
//! - each phone's recording of what it received holds the other's tone (Goertzel), so
//!   keys, protect and unprotect work against a real peer both ways;
//! - on the wire, an SRTP leg's packets (both directions) carry the 10-byte tag and their
//!   payload does not decode to the tone as G.711, while a plain leg's does (so the check
//!   itself can see a tone when there is one).
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test srtp -- --nocapture
//! ```
//!
//! Needs Debian's `baresip-core` (with its `srtp` module), `tcpdump` and root (capture on
//! `lo`).

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use pbx_e2e::{
    require_tool, rtp_port_range, KillOnDrop, LogCapture, Pbx, Phone, PhoneConfig, ToneReport, Wav,
};

const CALLER: &str = "1001";
const CALLER_PW: &str = "s3cret-1001";
const CALLEE: &str = "1002";
const CALLEE_PW: &str = "s3cret-1002";
const CALLER_TONE: f64 = 440.0;
const CALLEE_TONE: f64 = 1400.0;
const PCMA: &str = "PCMA/8000/1";
const TALK: Duration = Duration::from_secs(4);
/// As in audio.rs: the tones are played at peak 8000; heard at a quarter of that.
const HEARD: f64 = 2000.0;
const MIN_HEARD_SECS: f64 = 3.0;
/// 20 ms of PCMA.
const PAYLOAD: usize = 160;
/// AES_CM_128_HMAC_SHA1_80's tag (_32's is 4).
const TAG: usize = 10;

/// tcpdump on `lo` for UDP in `ports`, written to a pcap file; stopped when dropped.
struct Capture {
    child: Option<KillOnDrop>,
    log: LogCapture,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    fn start(ports: (u16, u16)) -> Capture {
        let tcpdump = require_tool("tcpdump", "tcpdump");
        let dir = tempfile::tempdir().expect("temp dir for the capture");
        let path = dir.path().join("rtp.pcap");
        let mut child = Command::new(tcpdump)
            .args(["-i", "lo", "-U", "-n", "-Z", "root", "-w"])
            .arg(&path)
            .arg(format!("udp portrange {}-{}", ports.0, ports.1))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let (log, lines) = LogCapture::attach(&mut child);
        // It prints "listening on lo" once capturing.
        let deadline = pbx_e2e::now() + Duration::from_secs(10);
        loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains("listening on") => break,
                _ if pbx_e2e::now() > deadline => {
                    panic!("tcpdump did not start (needs root):\n{}", log.text())
                }
                _ => {}
            }
        }
        Capture {
            child: Some(KillOnDrop(child)),
            log,
            path,
            _dir: dir,
        }
    }

    /// Stops tcpdump (SIGINT flushes the file) and returns the UDP datagrams it saw.
    fn finish(mut self) -> Vec<Datagram> {
        if let Some(child) = self.child.take() {
            pbx_e2e::send_signal(child.id(), "INT");
            thread::sleep(Duration::from_millis(500));
            drop(child);
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", self.path.display(), self.log.text()));
        parse_pcap(&bytes)
    }
}

/// One captured UDP datagram on loopback.
#[derive(Debug)]
struct Datagram {
    src: u16,
    dst: u16,
    payload: Vec<u8>,
}

/// UDP over IPv4 from a classic pcap file (Ethernet, as tcpdump writes `lo`; or Linux
/// cooked headers).
fn parse_pcap(b: &[u8]) -> Vec<Datagram> {
    assert!(b.len() >= 24, "pcap file too short");
    let le = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a pcap file: magic {m:02x?}"),
    };
    let u32_at = |i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let link = match u32_at(20) {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        l => panic!("unexpected link type {l}"),
    };
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= b.len() {
        let caplen = u32_at(pos + 8) as usize;
        let rec = pos + 16;
        if rec + caplen > b.len() {
            break;
        }
        let frame = &b[rec..rec + caplen];
        pos = rec + caplen;
        let Some(ip) = frame.get(link..) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        out.push(Datagram {
            src: u16::from_be_bytes([udp[0], udp[1]]),
            dst: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

/// G.711 A-law to linear (ITU-T G.711), for reading the wire.
fn alaw(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a >> 4) & 7;
    let mut t = i16::from(a & 0x0f) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        s => (t + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        t
    } else {
        -t
    }
}

/// What one direction of one leg looked like on the wire.
#[derive(Debug)]
struct Wire {
    /// RTP packets (PCMA).
    packets: usize,
    /// Packets of 12 + 160 (+ tag) bytes.
    lengths: Vec<usize>,
    /// The payloads read as PCMA, analysed for the tone that would be there in the clear.
    tone: ToneReport,
}

fn wire(datagrams: &[Datagram], src: u16, dst: Option<u16>, tone: f64, other: f64) -> Wire {
    let rtp: Vec<&Datagram> = datagrams
        .iter()
        .filter(|d| d.src == src && dst.is_none_or(|p| d.dst == p))
        // Version 2, PT 8 (RTCP's packet types 200-204 never match).
        .filter(|d| d.payload.len() > 12 && d.payload[0] >> 6 == 2 && d.payload[1] & 0x7f == 8)
        .collect();
    let mut samples = Vec::new();
    let mut lengths: Vec<usize> = rtp.iter().map(|d| d.payload.len()).collect();
    for d in &rtp {
        samples.extend(d.payload[12..].iter().take(PAYLOAD).map(|&a| alaw(a)));
    }
    lengths.sort_unstable();
    lengths.dedup();
    Wire {
        packets: rtp.len(),
        lengths,
        tone: ToneReport::analyse(
            &Wav {
                rate: 8000,
                samples,
            },
            tone,
            other,
            HEARD,
        ),
    }
}

struct Call {
    pbx: Pbx,
    caller: Phone,
    callee: Phone,
}

impl Call {
    fn context(&self) -> String {
        format!(
            "--- caller:\n{}\n--- callee:\n{}\n--- pbxd:\n{}",
            self.caller.log(),
            self.callee.log(),
            self.pbx.log()
        )
    }
}

fn start(
    srtp: &str,
    caller_enc: Option<&str>,
    callee_enc: Option<&str>,
) -> (Pbx, (u16, u16), Phone, Phone) {
    let (min, max) = rtp_port_range();
    let pbx = Pbx::builder()
        .extension(CALLER, CALLER_PW)
        .extension(CALLEE, CALLEE_PW)
        .arg("--digest-algorithms")
        .arg("md5")
        .arg("--rtp-ports")
        .arg(&format!("{min}-{max}"))
        .arg("--srtp")
        .arg(srtp)
        .start();
    let phone = |user, pw, tone, enc: Option<&str>| {
        let mut cfg = PhoneConfig::new(user, pw, &[PCMA], tone);
        if let Some(e) = enc {
            cfg = cfg.with_mediaenc(e);
        }
        Phone::start(&pbx, cfg)
    };
    let callee = phone(CALLEE, CALLEE_PW, CALLEE_TONE, callee_enc);
    let caller = phone(CALLER, CALLER_PW, CALLER_TONE, caller_enc);
    (pbx, (min, max), caller, callee)
}

/// A call from 1001 to 1002 with the given encryption; asserts audio both ways and, on
/// the wire, which legs are SRTP.
fn srtp_call(srtp: &str, caller_enc: Option<&str>, callee_enc: Option<&str>) {
    let (pbx, ports, caller, callee) = start(srtp, caller_enc, callee_enc);
    let capture = Capture::start(ports);
    let call = Call {
        pbx,
        caller,
        callee,
    };
    if let Err(e) = call.caller.command("dial", CALLEE) {
        panic!("dial refused: {e}\n{}", call.context());
    }
    for (who, phone) in [("caller", &call.caller), ("callee", &call.callee)] {
        for event in ["CALL_ESTABLISHED", "CALL_RTPESTAB"] {
            if phone.wait_event(event, Duration::from_secs(15)).is_none() {
                panic!(
                    "the {who} saw no {event}; events: {:?}\n{}",
                    phone.events(),
                    call.context()
                );
            }
        }
    }
    thread::sleep(TALK);
    if let Err(e) = call.caller.command("hangup", "") {
        panic!("hangup refused: {e}\n{}", call.context());
    }
    for phone in [&call.caller, &call.callee] {
        phone.wait_event("CALL_CLOSED", Duration::from_secs(10));
    }
    let datagrams = capture.finish();

    // Each phone heard the other: keys, protect and unprotect agree with baresip's.
    for (who, phone, own, other) in [
        ("caller", &call.caller, CALLER_TONE, CALLEE_TONE),
        ("callee", &call.callee, CALLEE_TONE, CALLER_TONE),
    ] {
        let got = phone
            .received_audio()
            .unwrap_or_else(|e| panic!("{who}: {e}\n{}", call.context()));
        let report = ToneReport::analyse(&got, other, own, HEARD);
        eprintln!("{who} received {:.1} s: {report:?}", got.seconds());
        assert!(
            report.expected_seconds() >= MIN_HEARD_SECS,
            "the {who} did not hear the other phone's {other} Hz tone for {MIN_HEARD_SECS} s: \
             {report:?}\n{}",
            call.context()
        );
    }

    // The wire: pbxd's port facing each phone, both directions.
    for (who, phone, enc, hears, sends) in [
        ("caller", &call.caller, caller_enc, CALLEE_TONE, CALLER_TONE),
        ("callee", &call.callee, callee_enc, CALLER_TONE, CALLEE_TONE),
    ] {
        let relay: SocketAddr = phone
            .rtp_source()
            .unwrap_or_else(|| panic!("{who}: no RTP source in its log\n{}", call.context()));
        let to_phone = wire(&datagrams, relay.port(), None, hears, sends);
        let from_phone: Vec<Datagram> = datagrams
            .iter()
            .filter(|d| d.dst == relay.port())
            .map(|d| Datagram {
                src: 0,
                dst: d.dst,
                payload: d.payload.clone(),
            })
            .collect();
        let from_phone = wire(&from_phone, 0, Some(relay.port()), sends, hears);
        eprintln!("{who} leg: pbxd->phone {to_phone:?}\n  phone->pbxd {from_phone:?}");
        for (dir, w) in [("pbxd->phone", &to_phone), ("phone->pbxd", &from_phone)] {
            assert!(
                w.packets >= 100,
                "{who} {dir}: only {} RTP packets captured\n{}",
                w.packets,
                call.context()
            );
            if enc.is_some() {
                // The 80-bit tag, or the 32-bit one if the phone preferred that suite.
                assert!(
                    w.lengths == vec![12 + PAYLOAD + TAG] || w.lengths == vec![12 + PAYLOAD + 4],
                    "{who} {dir}: SRTP packets carry a tag: lengths {:?}",
                    w.lengths
                );
                assert!(
                    w.tone.expected_seconds() < 0.5,
                    "{who} {dir}: the tone is readable on the wire of an SRTP leg: {:?}",
                    w.tone
                );
            } else {
                assert_eq!(w.lengths, vec![12 + PAYLOAD], "{who} {dir}: plain RTP");
                assert!(
                    w.tone.expected_seconds() >= MIN_HEARD_SECS,
                    "{who} {dir}: the tone should be readable on a plain leg: {:?}",
                    w.tone
                );
            }
        }
    }
}

#[test]
fn srtp_caller_to_plain_callee() {
    // The caller offers RTP/SAVP; pbxd answers with SRTP and calls 1002 in the clear.
    srtp_call("off", Some("srtp-mand"), None);
}

#[test]
fn srtp_on_both_legs_when_mandatory() {
    // pbxd offers RTP/SAVP to the callee too; each leg has its own keys.
    srtp_call("mandatory", Some("srtp-mand"), Some("srtp-mand"));
}

#[test]
fn optional_offer_is_taken_up_by_a_best_effort_phone() {
    // pbxd offers RTP/AVP with a=crypto; baresip's best-effort mode answers with crypto.
    srtp_call("optional", None, Some("srtp"));
}

#[test]
fn mandatory_refuses_a_plain_caller() {
    let (pbx, _ports, caller, _callee) = start("mandatory", None, None);
    caller.command("dial", CALLEE).expect("dial");
    let closed = caller.wait_event("CALL_CLOSED", Duration::from_secs(15));
    let text = format!("{closed:?} {:?}", caller.events());
    assert!(
        text.contains("488"),
        "the plain caller should get 488: {text}\n--- caller:\n{}\n--- pbxd:\n{}",
        caller.log(),
        pbx.log()
    );
}
