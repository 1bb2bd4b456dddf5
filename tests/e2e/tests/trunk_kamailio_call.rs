//! Calls through the provider, both ways, with two-way audio (issue 5, "inbound and
//! outbound calls with two-way audio"). Kamailio 5.6 plays the provider: registrar with
//! digest auth, and proxy that routes by its location table. pbxd registers its trunk
//! account to it like any provider; a baresip phone registered at Kamailio as "farend" is
//! the outside world:
//!
//! ```text
//!  phone 1002 (baresip) --- pbxd 127.0.0.1 ==trunk "main"== Kamailio 127.0.0.2 --- farend (baresip)
//!                                               REGISTER 4930123 (digest)
//! ```
//!
//! - Inbound: farend dials the office's number +4921112345; Kamailio puts the trunk's
//!   SIP-ID in the Request-URI, looks up pbxd's registered Contact and relays (with a
//!   P-Asserted-Identity, as providers do); pbxd rings 1002 with the caller in national
//!   format.
//! - Outbound: 1002 dials 0211123456; pbxd sends `sip:+49211123456@provider.test` with
//!   the account's number in From and P-Preferred-Identity; Kamailio routes it to farend.
//!
//! - Removal: `pbxctl trunk remove` makes pbxd un-REGISTER (Kamailio logs the Contact
//!   with `expires=0`), and a call to the office's number then gets 480 at the provider.
//!
//! In the calls, each phone's recording holds the other's tone (Goertzel), so RTP flows both
//! ways between pbxd's relay and the provider's side. Kamailio record-routes, so ACK and
//! BYE go through it too. Kamailio has its own loopback address because pbxd trusts
//! INVITEs by the registrar's resolved IP, and the phones are on 127.0.0.1.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test trunk_kamailio_call -- --nocapture
//! ```
//!
//! Needs kamailio and baresip-core.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use pbx_e2e::trunk::TrunkAdd;
use pbx_e2e::{
    free_port, now, require_tool, rtp_port_range, KillOnDrop, LogCapture, Pbx, Phone, PhoneConfig,
    ToneReport,
};

const PROVIDER_IP: &str = "127.0.0.2";
const DOMAIN: &str = "provider.test";
const SIP_ID: &str = "4930123";
const PASSWORD: &str = "trunk-pw-77";
/// The office's number at the provider.
const DID: &str = "+4921112345";
/// The outside number farend is reached at.
const FAR_E164: &str = "+49211123456";
/// The caller's number the provider asserts on calls to the office.
const FAR_PAI: &str = "+4930555123";
const PHONE: &str = "1002";
const PHONE_PW: &str = "s3cret-1002";
const PHONE_TONE: f64 = 440.0;
const FAR_TONE: f64 = 1400.0;
const PCMA: &str = "PCMA/8000/1";
const TALK: Duration = Duration::from_secs(4);
/// As in srtp.rs: tones played at peak 8000 are heard above a quarter of that.
const HEARD: f64 = 2000.0;
const MIN_HEARD_SECS: f64 = 3.0;

const CONFIG: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
auto_aliases=no
alias="provider.test"
dns=no
rev_dns=no
use_dns_cache=off

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "default_expires", 600)
modparam("registrar", "max_expires", 3600)
modparam("auth", "nonce_expire", 300)
modparam("auth", "secret", "trunk-call-secret")

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (has_totag()) {
		xlog("L_ALERT", "PROVIDER IN-DIALOG $rm from $si:$sp\n");
		if (loose_route()) {
			t_relay();
			exit;
		}
		if (is_method("ACK")) {
			if (t_check_trans()) {
				t_relay();
			}
			exit;
		}
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (is_method("REGISTER")) {
		if (!pv_www_authenticate("provider.test", "@PASSWORD@", "0")) {
			www_challenge("provider.test", "1");
			exit;
		}
		consume_credentials();
		if (!save("location")) {
			sl_reply_error();
			exit;
		}
		xlog("L_ALERT", "PROVIDER SAVED $tU from $si:$sp contact=$ct\n");
		exit;
	}
	if (!is_method("INVITE")) {
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}
	xlog("L_ALERT", "PROVIDER INVITE $ru from $si:$sp from=$fu ppi=$hdr(P-Preferred-Identity)\n");
	record_route();
	if ($rU == "@DID@") {
		append_hf("P-Asserted-Identity: <sip:@FAR_PAI@@provider.test>\r\n");
		$rU = "@SIP_ID@";
	} else if ($rU == "@FAR_E164@") {
		$rU = "farend";
	} else {
		sl_send_reply("404", "Unknown Number");
		exit;
	}
	if (!lookup("location")) {
		sl_send_reply("480", "Not Registered");
		exit;
	}
	xlog("L_ALERT", "PROVIDER ROUTED to $ru\n");
	t_relay();
	exit;
}
"#;

/// Kamailio as the provider on 127.0.0.2; stopped (SIGTERM) on drop.
struct Provider {
    child: KillOnDrop,
    log: LogCapture,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Provider {
    fn start() -> Provider {
        let kamailio = require_tool("kamailio", "kamailio");
        let dir = tempfile::Builder::new()
            .prefix("pbx-e2e-kamcall-")
            .tempdir()
            .expect("temp dir");
        let cfg = CONFIG
            .replace("@PASSWORD@", PASSWORD)
            .replace("@DID@", DID)
            .replace("@FAR_E164@", FAR_E164)
            .replace("@FAR_PAI@", FAR_PAI)
            .replace("@SIP_ID@", SIP_ID);
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
        let run = dir.path().to_string_lossy().into_owned();
        let addr: SocketAddr = format!("{PROVIDER_IP}:{}", free_port())
            .parse()
            .expect("address");
        let mut child = Command::new(kamailio)
            .arg("-f")
            .arg(&cfg_path)
            .args([
                "-DD", "-E", "-n", "2", "-m", "64", "-M", "8", "-Y", &run, "-w", &run,
            ])
            .args(["-l", &format!("udp:{addr}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kamailio: {e}"));
        let (log, lines) = LogCapture::attach(&mut child);
        let mut child = KillOnDrop(child);
        let deadline = now() + Duration::from_secs(10);
        while now() < deadline && !listening(&log) {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("kamailio exited with {status}:\n{}", log.text());
            }
            let _ = lines.recv_timeout(Duration::from_millis(100));
        }
        assert!(listening(&log), "kamailio did not start:\n{}", log.text());
        Provider {
            child,
            log,
            addr,
            _dir: dir,
        }
    }

    /// The `PROVIDER ...` lines logged so far.
    fn events(&self) -> Vec<String> {
        self.log
            .text()
            .lines()
            .filter_map(|l| l.split("PROVIDER ").nth(1).map(str::to_owned))
            .collect()
    }
}

impl Drop for Provider {
    // SIGTERM: the main process stops its workers (SIGKILL would leave them running).
    fn drop(&mut self) {
        pbx_e2e::send_signal(self.child.id(), "TERM");
        let deadline = now() + Duration::from_secs(5);
        while now() < deadline {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn listening(log: &LogCapture) -> bool {
    let t = log.text();
    t.contains("Listening on") || t.contains("using the following addresses")
}

/// Everything a call needs: the provider, pbxd with its trunk registered and a number,
/// phone 1002 at pbxd and farend at the provider.
struct Setup {
    provider: Provider,
    pbx: Pbx,
    phone: Phone,
    far: Phone,
}

impl Setup {
    fn start() -> Setup {
        let provider = Provider::start();
        let (min, max) = rtp_port_range();
        let pbx = Pbx::builder()
            .extension(PHONE, PHONE_PW)
            .arg("--digest-algorithms")
            .arg("md5")
            .arg("--rtp-ports")
            .arg(&format!("{min}-{max}"))
            .start();
        add_trunk(&pbx, provider.addr);
        pbx.ctl(&[
            "numbers",
            "add",
            DID,
            "--trunk",
            "main",
            "--to",
            PHONE,
            "--callers",
            "all",
            "--default",
        ]);
        let deadline = now() + Duration::from_secs(20);
        loop {
            let s = pbx.ctl(&["trunk", "status", "main"]);
            if s.starts_with("main: registered until") {
                break;
            }
            assert!(
                now() < deadline,
                "trunk not registered: {s}\npbxd:\n{}\nkamailio:\n{}",
                pbx.log(),
                provider.log.text()
            );
            thread::sleep(Duration::from_millis(200));
        }
        let phone = Phone::start(&pbx, PhoneConfig::new(PHONE, PHONE_PW, &[PCMA], PHONE_TONE));
        let far = Phone::start_at(
            provider.addr,
            PhoneConfig::new("farend", PASSWORD, &[PCMA], FAR_TONE),
        );
        Setup {
            provider,
            pbx,
            phone,
            far,
        }
    }

    fn context(&self) -> String {
        format!(
            "--- pbxd:\n{}\n--- kamailio:\n{}\n--- phone:\n{}\n--- farend:\n{}",
            self.pbx.log(),
            self.provider.log.text(),
            self.phone.log(),
            self.far.log()
        )
    }

    /// `caller` dials `number`; both sides answer (auto-answer), talk, `caller` hangs up;
    /// each heard the other's tone. Returns the caller's URI as the callee saw it.
    fn call(&self, caller: &Phone, callee: &Phone, number: &str) -> String {
        if let Err(e) = caller.command("dial", number) {
            panic!("dial refused: {e}\n{}", self.context());
        }
        for (who, p) in [("caller", caller), ("callee", callee)] {
            for event in ["CALL_ESTABLISHED", "CALL_RTPESTAB"] {
                if p.wait_event(event, Duration::from_secs(15)).is_none() {
                    panic!(
                        "the {who} saw no {event}; events: {:?}\n{}",
                        p.events(),
                        self.context()
                    );
                }
            }
        }
        // Auto-answer: the callee's first event is CALL_ESTABLISHED, with the caller.
        let answered = callee
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(1))
            .unwrap_or_else(|| panic!("no CALL_ESTABLISHED\n{}", self.context()));
        thread::sleep(TALK);
        if let Err(e) = caller.command("hangup", "") {
            panic!("hangup refused: {e}\n{}", self.context());
        }
        for p in [caller, callee] {
            assert!(
                p.wait_event("CALL_CLOSED", Duration::from_secs(10))
                    .is_some(),
                "the call did not close on both sides\n{}",
                self.context()
            );
        }
        for (who, p) in [("phone", &self.phone), ("farend", &self.far)] {
            let (own, other) = if who == "phone" {
                (PHONE_TONE, FAR_TONE)
            } else {
                (FAR_TONE, PHONE_TONE)
            };
            let got = p
                .received_audio()
                .unwrap_or_else(|e| panic!("{who}: {e}\n{}", self.context()));
            let report = ToneReport::analyse(&got, other, own, HEARD);
            eprintln!("{who} received {:.1} s: {report:?}", got.seconds());
            assert!(
                report.expected_seconds() >= MIN_HEARD_SECS,
                "{who} did not hear the other side's {other} Hz tone for {MIN_HEARD_SECS} s: \
                 {report:?}\n{}",
                self.context()
            );
        }
        eprintln!("callee's event: {}", answered.raw);
        answered.field("peeruri").unwrap_or_default()
    }
}

/// `pbxctl trunk add main` towards the provider, password on stdin.
fn add_trunk(pbx: &Pbx, registrar: SocketAddr) {
    TrunkAdd {
        name: "main",
        registrar: registrar.to_string(),
        domain: DOMAIN,
        user: SIP_ID,
        password: PASSWORD,
        interval: Some(600),
        extra: Vec::new(),
    }
    .run(pbx.data_dir());
}

#[test]
fn a_call_from_outside_through_the_provider_rings_the_phone_with_two_way_audio() {
    let s = Setup::start();
    let peer = s.call(&s.far, &s.phone, DID);
    // The caller as the provider asserted it, in national format.
    assert!(peer.contains("030555123"), "peer {peer:?}\n{}", s.context());
    let events = s.provider.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("ROUTED to ") && e.contains(&format!("sip:{SIP_ID}@127.0.0.1:"))),
        "Kamailio routed the call to pbxd's registered contact: {events:?}"
    );
    let cdr = s.pbx.ctl(&["cdr", "list", "--csv"]);
    assert!(
        cdr.lines()
            .any(|l| l.contains("inbound") && l.contains("main") && l.contains("030555123")),
        "{cdr}"
    );
}

#[test]
fn a_call_to_an_outside_number_goes_out_through_the_provider_with_two_way_audio() {
    let s = Setup::start();
    let peer = s.call(&s.phone, &s.far, "0211123456");
    // farend sees the office's number.
    assert!(peer.contains(DID), "peer {peer:?}\n{}", s.context());
    let events = s.provider.events();
    let invite = events
        .iter()
        .find(|e| e.starts_with("INVITE ") && e.contains("from=sip:+4921112345@"))
        .unwrap_or_else(|| panic!("no INVITE from pbxd at the provider: {events:?}"));
    assert!(
        invite.starts_with(&format!("INVITE sip:{FAR_E164}@{DOMAIN} ")),
        "{invite}"
    );
    assert!(
        invite.contains(&format!("ppi=<sip:{DID}@{DOMAIN}>")),
        "{invite}"
    );
    let cdr = s.pbx.ctl(&["cdr", "list", "--csv"]);
    assert!(
        cdr.lines()
            .any(|l| l.contains("outbound") && l.contains("main") && l.contains(FAR_E164)),
        "{cdr}"
    );
}

#[test]
fn removing_the_trunk_unregisters_it_so_the_provider_stops_routing_calls_to_the_box() {
    let s = Setup::start();
    s.pbx.ctl(&["trunk", "remove", "main"]);
    // pbxd picks the change up within 5 s and sends Expires: 0 with its Contact.
    let deadline = now() + Duration::from_secs(15);
    let unregistered = |events: &[String]| {
        events
            .iter()
            .any(|e| e.starts_with(&format!("SAVED {SIP_ID} ")) && e.contains("expires=0"))
    };
    while !unregistered(&s.provider.events()) {
        assert!(
            now() < deadline,
            "no un-REGISTER at the provider\n{}",
            s.context()
        );
        thread::sleep(Duration::from_millis(200));
    }
    // The provider has no binding left: a call to the office's number is refused there.
    s.far.command("dial", DID).expect("dial");
    let closed = s
        .far
        .wait_event("CALL_CLOSED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the call did not end\n{}", s.context()));
    eprintln!("farend: {}", closed.raw);
    assert!(
        closed.raw.contains("480") || closed.raw.contains("Not Registered"),
        "{}\n{}",
        closed.raw,
        s.context()
    );
}
