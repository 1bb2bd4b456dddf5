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
//! - Challenged INVITEs: the provider answers the box's INVITE with 407 (SHA-256); pbxd
//!   answers with the trunk's credentials once and the call connects. With a password the
//!   provider does not accept, the second 407 ends the call ("trunk auth failed" in the call
//!   record) and no third INVITE is sent.
//! - TLS + SRTP: pbxd registers at Kamailio's TLS listener (test CA from openssl, trusted
//!   through `DATA/trunk-ca.pem`) with `--srtp mandatory`; farend is baresip with
//!   `srtp-mand`. Calls both ways have two-way audio; the box's offer is RTP/SAVP with an
//!   `AES_CM_128_HMAC_SHA1_80` key and no plain RTP; a plain offer from farend gets 488.
//!   Kamailio relays SDP unchanged, so SRTP runs end to end between pbxd and farend, whose
//!   srtp module decodes only authenticated packets: the heard tones prove the encryption.
//! - Un-REGISTER retry: the provider is stopped, the trunk removed, and the provider
//!   started again after the first un-REGISTER's transaction has timed out (32 s); the
//!   retry after the back-off reaches it.
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
#!ifdef WITH_TLS
enable_tls=yes
loadmodule "tls.so"
modparam("tls", "config", "@TLS_CFG@")
#!endif

modparam("usrloc", "db_mode", 0)
modparam("registrar", "default_expires", 600)
modparam("registrar", "max_expires", 3600)
modparam("auth", "nonce_expire", 300)
modparam("auth", "secret", "trunk-call-secret")
modparam("auth", "algorithm", "@ALG@")

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
#!ifdef WITH_OPEN_FAREND
		# baresip 1.0 answers MD5 only; the SHA-256 provider lets farend in unchallenged.
		if ($fU == "farend") {
			save("location");
			exit;
		}
#!endif
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
	xlog("L_ALERT", "PROVIDER INVITE $ru from $si:$sp from=$fu ppi=$hdr(P-Preferred-Identity) proto=$pr\n");
	if (has_body("application/sdp")) {
		$var(sdp) = "";
		if (search_body("m=audio [0-9]+ RTP/SAVP ")) {
			$var(sdp) = $var(sdp) + " savp";
		}
		if (search_body("m=audio [0-9]+ RTP/AVP ")) {
			$var(sdp) = $var(sdp) + " avp";
		}
		if (search_body("a=crypto:[0-9]+ AES_CM_128_HMAC_SHA1_80 inline:")) {
			$var(sdp) = $var(sdp) + " crypto";
		}
		xlog("L_ALERT", "PROVIDER SDP from=$fU$var(sdp)\n");
	}
#!ifdef WITH_INVITE_AUTH
	# Calls from the box's account must prove its credentials, as many providers ask.
	if ($fU != "farend") {
		if (!pv_proxy_authenticate("provider.test", "@INVITE_PASSWORD@", "0")) {
			xlog("L_ALERT", "PROVIDER CHALLENGED INVITE auth=$hdr(Proxy-Authorization)\n");
			proxy_challenge("provider.test", "1");
			exit;
		}
		xlog("L_ALERT", "PROVIDER AUTHORIZED INVITE $hdr(Proxy-Authorization)\n");
		consume_credentials();
	}
#!endif
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

/// How the provider is set up beyond the plain UDP registrar/proxy.
#[derive(Default)]
struct ProviderOpts {
    /// Challenge INVITEs from the box (407) and check them against this password.
    invite_password: Option<String>,
    /// Digest algorithm of its challenges ("MD5" when unset).
    alg: Option<&'static str>,
    /// A directory with server.crt/server.key: also listen on TLS (`Provider::tls_addr`).
    tls: Option<std::path::PathBuf>,
    /// Its UDP address (a free port when unset), e.g. to start it again where it was.
    addr: Option<SocketAddr>,
}

/// Kamailio as the provider on 127.0.0.2; stopped (SIGTERM) on drop.
struct Provider {
    child: KillOnDrop,
    log: LogCapture,
    addr: SocketAddr,
    /// Its TLS listener, when started with one.
    tls_addr: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Provider {
    fn start_with(opts: &ProviderOpts) -> Provider {
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
            .replace("@SIP_ID@", SIP_ID)
            .replace("@ALG@", opts.alg.unwrap_or("MD5"))
            .replace(
                "@INVITE_PASSWORD@",
                opts.invite_password.as_deref().unwrap_or(""),
            )
            .replace("@TLS_CFG@", &dir.path().join("tls.cfg").to_string_lossy());
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
        let run = dir.path().to_string_lossy().into_owned();
        let addr: SocketAddr = opts.addr.unwrap_or_else(|| {
            format!("{PROVIDER_IP}:{}", free_port())
                .parse()
                .expect("address")
        });
        let mut cmd = Command::new(kamailio);
        if opts.invite_password.is_some() {
            cmd.args(["-A", "WITH_INVITE_AUTH"]);
        }
        if opts.alg.is_some_and(|a| a != "MD5") {
            cmd.args(["-A", "WITH_OPEN_FAREND"]);
        }
        let mut tls_addr = None;
        if let Some(certs) = &opts.tls {
            let tls_cfg = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                 require_certificate = no\nprivate_key = {}\ncertificate = {}\n\
                 [client:default]\nverify_certificate = no\nrequire_certificate = no\n",
                certs.join("server.key").display(),
                certs.join("server.crt").display()
            );
            std::fs::write(dir.path().join("tls.cfg"), tls_cfg).expect("write tls.cfg");
            let a: SocketAddr = format!("{PROVIDER_IP}:{}", free_port())
                .parse()
                .expect("address");
            cmd.args(["-A", "WITH_TLS", "-l", &format!("tls:{a}")]);
            tls_addr = Some(a);
        }
        let mut child = cmd
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
            tls_addr,
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

/// Options of a [`Setup`] beyond the plain one.
#[derive(Default)]
struct SetupOpts {
    provider: ProviderOpts,
    /// More `pbxctl trunk add` options (transport, SRTP).
    trunk: Vec<String>,
    /// Register the trunk at the provider's TLS listener.
    tls: bool,
    /// farend's baresip `mediaenc`.
    far_mediaenc: Option<&'static str>,
}

impl Setup {
    fn start() -> Setup {
        Self::start_with(SetupOpts::default())
    }

    fn start_with(opts: SetupOpts) -> Setup {
        let provider = Provider::start_with(&opts.provider);
        let (min, max) = rtp_port_range();
        let pbx = Pbx::builder()
            .extension(PHONE, PHONE_PW)
            .arg("--digest-algorithms")
            .arg("md5")
            .arg("--rtp-ports")
            .arg(&format!("{min}-{max}"))
            .start();
        if let Some(certs) = &opts.provider.tls {
            // The installer's way to trust a provider's private CA.
            std::fs::copy(certs.join("ca.crt"), pbx.data_dir().join("trunk-ca.pem"))
                .expect("install the test CA");
        }
        let registrar = match (opts.tls, provider.tls_addr) {
            (true, Some(a)) => a,
            _ => provider.addr,
        };
        add_trunk_with(&pbx, registrar, opts.trunk);
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
        let mut far_cfg = PhoneConfig::new("farend", PASSWORD, &[PCMA], FAR_TONE);
        far_cfg.mediaenc = opts.far_mediaenc.map(str::to_owned);
        let far = Phone::start_at(provider.addr, far_cfg);
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

/// `pbxctl trunk add main` towards the provider, password on stdin, with `extra` options.
fn add_trunk_with(pbx: &Pbx, registrar: SocketAddr, extra: Vec<String>) {
    TrunkAdd {
        name: "main",
        registrar: registrar.to_string(),
        domain: DOMAIN,
        user: SIP_ID,
        password: PASSWORD,
        interval: Some(600),
        extra,
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
    wait_cdr(&s.pbx, |l| {
        l.contains("inbound") && l.contains("main") && l.contains("030555123")
    });
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
    wait_cdr(&s.pbx, |l| {
        l.contains("outbound") && l.contains("main") && l.contains(FAR_E164)
    });
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

/// Waits (the record is written as the call ends) for a call record line matching `pred`.
fn wait_cdr(pbx: &Pbx, pred: impl Fn(&str) -> bool) -> String {
    let deadline = now() + Duration::from_secs(10);
    loop {
        let cdr = pbx.ctl(&["cdr", "list", "--csv"]);
        if let Some(l) = cdr.lines().find(|l| pred(l)) {
            return l.to_owned();
        }
        assert!(now() < deadline, "no such call record:\n{cdr}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the provider logged `n` events starting with `prefix`; returns them.
fn wait_events(s: &Setup, prefix: &str, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = now() + timeout;
    loop {
        let got: Vec<String> = s
            .provider
            .events()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            now() < deadline,
            "{n} x {prefix:?} expected, got {got:?}\n{}",
            s.context()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The provider challenges our INVITE with a 407 using `alg`: pbxd answers once with
/// credentials for the trunk's SIP ID and the call connects; the password is never logged.
/// Returns the credentials pbxd sent.
fn invite_challenged_with(alg: &'static str) -> String {
    let s = Setup::start_with(SetupOpts {
        provider: ProviderOpts {
            invite_password: Some(PASSWORD.into()),
            alg: Some(alg),
            ..ProviderOpts::default()
        },
        ..SetupOpts::default()
    });
    let peer = s.call(&s.phone, &s.far, "0211123456");
    assert!(peer.contains(DID), "peer {peer:?}\n{}", s.context());
    let challenged = wait_events(&s, "CHALLENGED INVITE", 1, Duration::from_secs(1));
    assert_eq!(
        challenged.len(),
        1,
        "one 407, then credentials: {challenged:?}"
    );
    let authorized = wait_events(&s, "AUTHORIZED INVITE", 1, Duration::from_secs(1));
    let creds = authorized[0].clone();
    assert!(creds.contains(&format!("username=\"{SIP_ID}\"")), "{creds}");
    assert!(creds.contains("uri=\"sip:"), "{creds}");
    assert!(
        !s.pbx.log().contains(PASSWORD),
        "the password is not logged"
    );
    creds
}

#[test]
fn an_invite_challenged_by_the_provider_is_answered_with_sha256_credentials_and_connects() {
    let creds = invite_challenged_with("SHA-256");
    assert!(creds.contains("algorithm=SHA-256"), "{creds}");
}

/// The same with the provider challenging with MD5 (RFC 2617; still the most common).
#[test]
fn an_invite_challenged_by_the_provider_is_answered_with_md5_credentials_and_connects() {
    let creds = invite_challenged_with("MD5");
    // MD5 is the default when the algorithm is absent (RFC 2617 sec. 3.2.1).
    assert!(
        creds.contains("algorithm=MD5") || !creds.contains("algorithm="),
        "{creds}"
    );
    assert!(!creds.contains("SHA-256"), "{creds}");
}

#[test]
fn a_call_refused_for_wrong_credentials_ends_with_a_reason_and_is_not_retried() {
    let s = Setup::start_with(SetupOpts {
        provider: ProviderOpts {
            invite_password: Some("not-what-the-box-has".into()),
            ..ProviderOpts::default()
        },
        ..SetupOpts::default()
    });
    s.phone.command("dial", "0211123456").expect("dial");
    let closed = s
        .phone
        .wait_event("CALL_CLOSED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the call did not end\n{}", s.context()));
    eprintln!("phone: {}", closed.raw);
    // The first INVITE and the one answered with (wrong) credentials; then nothing more.
    thread::sleep(Duration::from_secs(5));
    let challenged = wait_events(&s, "CHALLENGED INVITE", 2, Duration::from_secs(1));
    assert_eq!(challenged.len(), 2, "{challenged:?}\n{}", s.context());
    assert!(!challenged[0].contains("Digest"), "{challenged:?}");
    assert!(challenged[1].contains("Digest"), "{challenged:?}");
    assert!(
        !s.provider
            .events()
            .iter()
            .any(|e| e.starts_with("AUTHORIZED")),
        "{}",
        s.context()
    );
    let record = wait_cdr(&s.pbx, |l| {
        l.contains("outbound") && l.contains("trunk auth failed")
    });
    eprintln!("call record: {record}");
    assert!(
        s.far
            .wait_event("CALL_INCOMING", Duration::from_secs(1))
            .is_none(),
        "nothing reached farend"
    );
}

/// The test CA and the provider's certificate for its loopback address.
fn certs() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pbx-e2e-kamcerts-")
        .tempdir()
        .expect("temp dir");
    pbx_e2e::trunk::make_certs(dir.path(), PROVIDER_IP);
    dir
}

/// pbxd registers over TLS (the provider's CA trusted through DATA/trunk-ca.pem) with SRTP
/// mandatory; farend insists on SRTP too (baresip `srtp-mand`). Calls both ways carry
/// audio both ways: baresip's srtp module only plays what authenticates under the keys
/// of the `a=crypto` lines, so heard tones prove SRTP on the trunk side.
fn tls_srtp_setup(certs: &tempfile::TempDir, far_mediaenc: Option<&'static str>) -> Setup {
    Setup::start_with(SetupOpts {
        provider: ProviderOpts {
            tls: Some(certs.path().to_path_buf()),
            ..ProviderOpts::default()
        },
        trunk: ["--transport", "tls", "--srtp", "mandatory"]
            .map(str::to_owned)
            .to_vec(),
        tls: true,
        far_mediaenc,
    })
}

#[test]
fn over_tls_with_mandatory_srtp_a_call_to_outside_carries_encrypted_audio() {
    let certs = certs();
    let s = tls_srtp_setup(&certs, Some("srtp-mand"));
    let saved = wait_events(&s, &format!("SAVED {SIP_ID} "), 1, Duration::from_secs(1));
    assert!(saved[0].contains("transport=tls"), "{saved:?}");
    // Outbound: the INVITE arrives over TLS and offers only SRTP.
    s.call(&s.phone, &s.far, "0211123456");
    let invites = wait_events(&s, "INVITE ", 1, Duration::from_secs(1));
    let out = invites
        .iter()
        .find(|e| e.contains("from=sip:+4921112345@"))
        .unwrap_or_else(|| panic!("no INVITE from pbxd: {invites:?}"));
    assert!(out.ends_with("proto=tls"), "{out}");
    // Only SRTP offered: RTP/SAVP with an AES_CM_128_HMAC_SHA1_80 key, no RTP/AVP.
    let sdps = wait_events(&s, "SDP from=+4921112345", 1, Duration::from_secs(1));
    assert_eq!(sdps[0], "SDP from=+4921112345 savp crypto", "{sdps:?}");
}

#[test]
fn over_tls_with_mandatory_srtp_a_call_from_outside_carries_encrypted_audio() {
    let certs = certs();
    let s = tls_srtp_setup(&certs, Some("srtp-mand"));
    // Inbound: farend's SRTP offer reaches the phone through the TLS flow.
    let peer = s.call(&s.far, &s.phone, DID);
    assert!(peer.contains("030555123"), "peer {peer:?}\n{}", s.context());
    let far_sdp = wait_events(&s, "SDP from=farend", 1, Duration::from_secs(1));
    assert!(far_sdp[0].contains("crypto"), "{far_sdp:?}");
}

#[test]
fn mandatory_srtp_refuses_a_plain_rtp_offer_from_the_provider_with_488() {
    let certs = certs();
    let s = tls_srtp_setup(&certs, None);
    s.far.command("dial", DID).expect("dial");
    let closed = s
        .far
        .wait_event("CALL_CLOSED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the call did not end\n{}", s.context()));
    eprintln!("farend: {}", closed.raw);
    assert!(
        closed.raw.contains("488"),
        "{}\n{}",
        closed.raw,
        s.context()
    );
    assert!(
        s.phone
            .wait_event("CALL_INCOMING", Duration::from_secs(1))
            .is_none(),
        "the phone never rang"
    );
}

#[test]
fn an_unregister_lost_while_the_provider_is_down_is_sent_again_when_it_is_back() {
    let Setup {
        provider,
        pbx,
        phone: _phone,
        far: _far,
    } = Setup::start();
    let addr = provider.addr;
    drop(provider);
    pbx.ctl(&["trunk", "remove", "main"]);
    // The first un-REGISTER's transaction gives up after Timer F (32 s); then the
    // client backs off (15-30 s). The provider comes back after the first transaction
    // ended, so only a retry can reach it.
    thread::sleep(Duration::from_secs(36));
    let back = Provider::start_with(&ProviderOpts {
        addr: Some(addr),
        ..ProviderOpts::default()
    });
    let started = now();
    let deadline = started + Duration::from_secs(60);
    loop {
        let events = back.events();
        if let Some(e) = events
            .iter()
            .find(|e| e.starts_with(&format!("SAVED {SIP_ID} ")))
        {
            assert!(e.contains("expires=0"), "{e}");
            eprintln!(
                "un-REGISTER retry answered {:.1} s after the provider came back: {e}",
                (now() - started).as_secs_f64()
            );
            break;
        }
        assert!(
            now() < deadline,
            "no un-REGISTER retry at the restarted provider: {events:?}\n--- pbxd:\n{}\n--- kamailio:\n{}",
            pbx.log(),
            back.log.text()
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Answered: nothing more comes (no loop).
    thread::sleep(Duration::from_secs(3));
    let registers = back
        .events()
        .iter()
        .filter(|e| e.starts_with(&format!("SAVED {SIP_ID} ")))
        .count();
    assert_eq!(registers, 1, "{:?}", back.events());
}
