//! pbxd registers to a cloud provider through NAT (issue 5, "Registration client"; first
//! test bullet). The provider's registrar is Kamailio 5.6 with digest auth; pbxd is the
//! NATed side this time:
//!
//! ```text
//!  pbxpriv-ID                     pbxnat-ID                          pbxlan-ID
//!  pbxd 192.168.77.2:5060 ---- 192.168.77.1 | 10.77.1.254 ---- Kamailio 10.77.1.1:5060
//!  (default route via .1)      MASQUERADE (UDP ports 40000-49999)   ("provider.test")
//! ```
//!
//! Kamailio logs every REGISTER it receives (with its source and Contact) and every
//! saved binding, so the tests count REGISTERs on the provider's side and see the
//! Contact pbxd registered. `pbxctl trunk status` is checked as the installer sees it.
//!
//! Needs root (or passwordless sudo), iproute2, iptables and kamailio.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test trunk_register -- --nocapture
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use pbx_e2e::trunk::TrunkAdd;
use pbx_e2e::{
    now, require_tool, KillOnDrop, LogCapture, NatLab, NsPbx, LAN_PBX_IP, PRIVATE_PHONE_IP,
    ROUTER_LAN_IP,
};

/// The provider's registrar address (in the LAN namespace, outside the NAT).
const PROVIDER: std::net::Ipv4Addr = LAN_PBX_IP;
const DOMAIN: &str = "provider.test";
const SIP_ID: &str = "4930123";
const PASSWORD: &str = "trunk-pw-77";
/// The office's number, reaching [`PORT_EXT`] behind pbxd (the TLS-behind-NAT call test).
const DID: &str = "+4921112345";
/// Analog port 1 of pbxd's simulated ports.
const PORT_EXT: &str = "21";

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
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
#!ifdef WITH_CALLS
loadmodule "rr.so"
#!endif
#!ifdef WITH_TLS
enable_tls=yes
loadmodule "tls.so"
modparam("tls", "config", "@TLS_CFG@")
#!endif

modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 10)
modparam("registrar", "default_expires", 60)
modparam("registrar", "max_expires", @MAX_EXPIRES@)
modparam("auth", "nonce_expire", 300)
modparam("auth", "secret", "trunk-test-secret")
modparam("auth", "algorithm", "@ALG@")

request_route {
#!ifdef WITH_CALLS
	# A caller on the provider's side reaches the office's number: relayed to the
	# trunk's binding, i.e. down the connection the box registered on.
	if (has_totag()) {
		if (loose_route()) {
			t_relay();
			exit;
		}
		if (is_method("ACK") && t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (is_method("INVITE")) {
		record_route();
		$rU = "@SIP_ID@";
		if (!lookup("location")) {
			sl_send_reply("480", "Not Registered");
			exit;
		}
		xlog("L_ALERT", "PROVIDER ROUTED INVITE to $ru\n");
		t_relay();
		exit;
	}
#!endif
	if (!is_method("REGISTER")) {
		xlog("L_ALERT", "PROVIDER $rm from $si:$sp\n");
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}
	xlog("L_ALERT", "PROVIDER REGISTER from $si:$sp contact=$ct\n");
	if (is_present_hf("Authorization")) {
		xlog("L_ALERT", "PROVIDER AUTH $hdr(Authorization)\n");
	}
	if (!pv_www_authenticate("provider.test", "@PASSWORD@", "0")) {
		www_challenge("provider.test", "1");
		exit;
	}
	consume_credentials();
	if (!save("location")) {
		sl_reply_error();
		exit;
	}
	xlog("L_ALERT", "PROVIDER SAVED from $si:$sp contact=$ct\n");
	xlog("L_ALERT", "PROVIDER PROTO $pr\n");
	exit;
}
"#;

/// Kamailio as the provider's registrar, in the LAN namespace; killed on drop.
struct Provider {
    child: KillOnDrop,
    log: LogCapture,
    _dir: tempfile::TempDir,
}

impl Provider {
    fn start(lab: &NatLab, alg: &str, password: &str, max_expires: u32) -> Provider {
        Self::start_tls(lab, alg, password, max_expires, None)
    }

    /// With `tls` (a directory holding server.crt and server.key): also a TLS listener
    /// on port 5061.
    fn start_tls(
        lab: &NatLab,
        alg: &str,
        password: &str,
        max_expires: u32,
        tls: Option<&Path>,
    ) -> Provider {
        Self::start_full(lab, alg, password, max_expires, tls, false)
    }

    /// [`Provider::start_tls`]; with `calls`, INVITEs are relayed to the trunk's binding.
    fn start_full(
        lab: &NatLab,
        alg: &str,
        password: &str,
        max_expires: u32,
        tls: Option<&Path>,
        calls: bool,
    ) -> Provider {
        let kamailio = require_tool("kamailio", "kamailio");
        let dir = tempfile::Builder::new()
            .prefix("pbx-e2e-kam-")
            .tempdir()
            .expect("temp dir");
        let cfg = CONFIG
            .replace("@ALG@", alg)
            .replace("@PASSWORD@", password)
            .replace("@MAX_EXPIRES@", &max_expires.to_string())
            .replace("@SIP_ID@", SIP_ID)
            .replace("@TLS_CFG@", &dir.path().join("tls.cfg").to_string_lossy());
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
        let run = dir.path().to_string_lossy().into_owned();
        let mut cmd = lab.lan.command(&kamailio, &[]);
        if calls {
            cmd.args(["-A", "WITH_CALLS"]);
        }
        if let Some(certs) = tls {
            let tls_cfg = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                 require_certificate = no\nprivate_key = {}\ncertificate = {}\n",
                certs.join("server.key").display(),
                certs.join("server.crt").display()
            );
            std::fs::write(dir.path().join("tls.cfg"), tls_cfg).expect("write tls.cfg");
            cmd.args(["-A", "WITH_TLS", "-l", &format!("tls:{PROVIDER}:5061")]);
        }
        let mut child = cmd
            .arg("-f")
            .arg(&cfg_path)
            .args([
                "-DD", "-E", "-n", "1", "-m", "64", "-M", "8", "-Y", &run, "-w", &run,
            ])
            .args(["-l", &format!("udp:{PROVIDER}:5060")])
            .args(["-l", &format!("tcp:{PROVIDER}:5060")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kamailio: {e}"));
        let (log, lines) = LogCapture::attach(&mut child);
        let child = KillOnDrop(child);
        // Kamailio is up once it logs its listening sockets.
        let deadline = now() + Duration::from_secs(10);
        while now() < deadline {
            if log.text().contains("PROVIDER") || listening(&log) {
                break;
            }
            let _ = lines.recv_timeout(Duration::from_millis(100));
        }
        assert!(listening(&log), "kamailio did not start:\n{}", log.text());
        Provider {
            child,
            log,
            _dir: dir,
        }
    }

    /// REGISTER requests received so far: (source, contact).
    fn registers(&self) -> Vec<(String, String)> {
        self.lines("PROVIDER REGISTER from ")
    }

    /// Bindings saved so far: (source, contact).
    fn saved(&self) -> Vec<(String, String)> {
        self.lines("PROVIDER SAVED from ")
    }

    fn lines(&self, marker: &str) -> Vec<(String, String)> {
        self.log
            .text()
            .lines()
            .filter_map(|l| l.split(marker).nth(1))
            .map(|rest| {
                let (src, contact) = rest.split_once(" contact=").unwrap_or((rest, ""));
                (src.trim().to_owned(), contact.trim().to_owned())
            })
            .collect()
    }
}

impl Drop for Provider {
    // SIGTERM: Kamailio's main process then stops its workers (SIGKILL would leave them
    // answering on the socket).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
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
    t.contains("INFO: <core>") && t.contains(&format!("{PROVIDER}"))
        || t.contains("using the following addresses")
        || t.contains("Listening on")
}

/// pbxd in the private namespace, behind the NAT.
fn start_pbx(lab: &NatLab) -> NsPbx {
    let sip = SocketAddr::from((PRIVATE_PHONE_IP, 5060));
    let http = SocketAddr::from((lab.private_mgmt(), 8080));
    NsPbx::start_in(&lab.private, sip, http, &[], &[])
}

/// `pbxctl trunk add main ...` with the password on stdin.
fn add_trunk(data_dir: &Path, password: &str) {
    add_trunk_with(data_dir, password, &[]);
}

/// [`add_trunk`] with more options; `--registrar` in `extra` replaces the provider's.
fn add_trunk_with(data_dir: &Path, password: &str, extra: &[&str]) {
    let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let registrar = match extra.iter().position(|a| a == "--registrar") {
        Some(i) if i + 1 < extra.len() => {
            let r = extra.remove(i + 1);
            extra.remove(i);
            r
        }
        _ => PROVIDER.to_string(),
    };
    TrunkAdd {
        name: "main",
        registrar,
        domain: DOMAIN,
        user: SIP_ID,
        password,
        interval: Some(600),
        extra,
    }
    .run(data_dir);
}

fn status(pbx: &NsPbx) -> String {
    pbx.ctl(&["trunk", "status", "main"])
}

/// Polls `pbxctl trunk status` until `pred` holds; panics with the logs otherwise.
fn wait_status(
    pbx: &NsPbx,
    provider: &Provider,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = now() + timeout;
    loop {
        let s = status(pbx);
        if pred(&s) {
            return s;
        }
        if now() >= deadline {
            panic!(
                "trunk status still {s:?} after {timeout:?}\n--- pbxd:\n{}\n--- kamailio:\n{}",
                pbx.log(),
                provider.log.text()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Sets the router's UDP conntrack time-outs (this namespace only).
fn nat_udp_timeout(lab: &NatLab, secs: u32) {
    for key in [
        "nf_conntrack_udp_timeout",
        "nf_conntrack_udp_timeout_stream",
    ] {
        lab.router.run(
            "sh",
            &[
                "-c",
                &format!("echo {secs} > /proc/sys/net/netfilter/{key}"),
            ],
        );
    }
}

/// The port part of `a.b.c.d:port`.
fn port_of(src: &str) -> u16 {
    src.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {src:?}"))
}

#[test]
fn registers_through_nat_with_md5_learns_the_public_address_and_keeps_the_binding() {
    let lab = NatLab::build();
    // The NAT forgets an idle UDP mapping after 30 s; the registrar grants 120 s, so the
    // refresh comes 60 s later: only the 25 s keep-alives can keep the mapping.
    nat_udp_timeout(&lab, 30);
    let provider = Provider::start(&lab, "MD5", PASSWORD, 120);
    let pbx = start_pbx(&lab);
    add_trunk(pbx.data_dir(), PASSWORD);
    let s = wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    println!("{s}");
    // Registered from behind the router, with the public address in Contact.
    let saved = provider.saved();
    let (src, contact) = saved.last().expect("a saved binding").clone();
    assert!(src.starts_with(&format!("{ROUTER_LAN_IP}:")), "{src}");
    assert!(
        contact.contains(&format!("@{src}")),
        "Contact carries the public address {src}: {contact}"
    );
    assert!(s.contains(&format!("public address {src}")), "{s}");
    let regs = provider.registers();
    // Unauthenticated, answered challenge, re-REGISTER with the learned public Contact.
    assert_eq!(regs.len(), 3, "{regs:?}");
    assert!(
        regs[0].1.contains(&PRIVATE_PHONE_IP.to_string()),
        "{regs:?}"
    );

    // The refresh at half the granted 120 s, from the same mapping.
    let initial = provider.saved().len();
    let deadline = now() + Duration::from_secs(75);
    while provider.saved().len() == initial {
        assert!(
            now() < deadline,
            "no refresh within 75 s:\n{}\n{}",
            pbx.log(),
            provider.log.text()
        );
        thread::sleep(Duration::from_millis(500));
    }
    let refreshed = provider.saved();
    let (src2, contact2) = refreshed.last().expect("refresh").clone();
    assert_eq!(
        port_of(&src2),
        port_of(&src),
        "the NAT mapping survived 60 s of no REGISTERs (keep-alives every 25 s)"
    );
    assert_eq!(contact2, contact);
    assert_eq!(
        provider.registers().len(),
        4,
        "refresh reuses the nonce: one request"
    );
    let s = status(&pbx);
    assert!(s.starts_with("main: registered until"), "{s}");
}

#[test]
fn registers_with_sha256_digest() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "SHA-256", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    add_trunk(pbx.data_dir(), PASSWORD);
    wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    let auth: Vec<String> = provider
        .log
        .text()
        .lines()
        .filter_map(|l| l.split("PROVIDER AUTH ").nth(1).map(str::to_owned))
        .collect();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|a| a.contains("algorithm=SHA-256")),
        "{auth:?}"
    );
}

#[test]
fn registers_over_tcp() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    add_trunk_with(pbx.data_dir(), PASSWORD, &["--transport", "tcp"]);
    let s = wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    let text = provider.log.text();
    let protos: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("PROVIDER PROTO ").nth(1))
        .map(str::trim)
        .collect();
    assert!(
        !protos.is_empty() && protos.iter().all(|p| *p == "tcp"),
        "{protos:?}"
    );
    let (src, contact) = provider.saved().last().expect("saved").clone();
    assert!(src.starts_with(&format!("{ROUTER_LAN_IP}:")), "{src}");
    assert!(contact.contains("transport=tcp"), "{contact}");
    assert!(s.contains("public address"), "{s}");
}

/// A test CA and a server certificate for the provider's IP, made with openssl.
fn make_certs(dir: &Path) {
    pbx_e2e::trunk::make_certs(dir, &PROVIDER.to_string());
}

#[test]
fn registers_over_tls_verifying_the_provider_certificate() {
    let lab = NatLab::build();
    let certs = tempfile::Builder::new()
        .prefix("pbx-e2e-certs-")
        .tempdir()
        .expect("temp dir");
    make_certs(certs.path());
    let provider = Provider::start_tls(&lab, "MD5", PASSWORD, 600, Some(certs.path()));
    let pbx = start_pbx(&lab);
    // Without the test CA the certificate is not trusted: no registration.
    add_trunk_with(
        pbx.data_dir(),
        PASSWORD,
        &[
            "--transport",
            "tls",
            "--registrar",
            &format!("{PROVIDER}:5061"),
        ],
    );
    let s = wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: unreachable")
    });
    assert!(
        s.contains("certificate") || s.contains("UnknownIssuer"),
        "{s}"
    );
    assert!(provider.saved().is_empty());
    // With the CA in DATA/trunk-ca.pem (read per connection) the next attempt registers;
    // changing the trunk restarts its client at once.
    std::fs::copy(
        certs.path().join("ca.crt"),
        pbx.data_dir().join("trunk-ca.pem"),
    )
    .expect("install the CA");
    pbx.ctl(&["trunk", "set", "main", "--interval", "300"]);
    wait_status(&pbx, &provider, Duration::from_secs(30), |s| {
        s.starts_with("main: registered until")
    });
    let text = provider.log.text();
    assert!(text.contains("PROVIDER PROTO tls"), "{text}");
}

#[test]
fn wrong_password_is_auth_failed_without_a_retry_loop() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    add_trunk(pbx.data_dir(), "not-the-password");
    let s = wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: auth-failed")
    });
    assert!(s.contains("refused the user name or password"), "{s}");
    assert!(s.contains("next attempt in"), "{s}");
    // Two REGISTERs (plain, then answered); nothing more for a while.
    thread::sleep(Duration::from_secs(10));
    assert_eq!(provider.registers().len(), 2, "{:?}", provider.registers());
    assert!(provider.saved().is_empty());
    assert!(!pbx.log().contains(PASSWORD) && !pbx.log().contains("not-the-password"));
}

#[test]
fn registrar_down_backs_off_and_recovers() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "MD5", PASSWORD, 20);
    let pbx = start_pbx(&lab);
    add_trunk(pbx.data_dir(), PASSWORD);
    wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    drop(provider);
    // Refresh after 10 s; the binding expires after 20 s ("registration expired"), the
    // refresh's Timer F fires 32 s after it was sent, and the back-off starts.
    let s = wait_for(&pbx, Duration::from_secs(60), |s| {
        s.starts_with("main: unreachable") && s.contains("no answer")
    });
    assert!(
        s.contains(&format!("no answer from {PROVIDER}:5060")),
        "{s}"
    );
    let wait: u64 = s
        .split("next attempt in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no back-off in {s:?}"));
    assert!(
        (14..=30).contains(&wait),
        "first back-off 15-30 s, got {wait}: {s}"
    );
    let provider = Provider::start(&lab, "MD5", PASSWORD, 20);
    wait_status(&pbx, &provider, Duration::from_secs(45), |s| {
        s.starts_with("main: registered until")
    });
    // One attempt after the back-off: challenged, answered (maybe a public re-REGISTER).
    assert!(
        provider.registers().len() <= 3,
        "{:?}",
        provider.registers()
    );
}

fn wait_for(pbx: &NsPbx, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = now() + timeout;
    loop {
        let s = status(pbx);
        if pred(&s) {
            return s;
        }
        assert!(
            now() < deadline,
            "trunk status still {s:?} after {timeout:?}\n{}",
            pbx.log()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// dnsmasq as the provider's DNS server (in the LAN namespace), and the private
/// namespace's resolv.conf pointing at it (`ip netns exec` mounts
/// `/etc/netns/NAME/resolv.conf`); both removed on drop.
struct Dns {
    _child: KillOnDrop,
    log: LogCapture,
    resolv_dir: std::path::PathBuf,
}

impl Dns {
    fn start(lab: &NatLab, records: &[String]) -> Dns {
        let dnsmasq = require_tool("dnsmasq", "dnsmasq-base");
        let resolv_dir = Path::new("/etc/netns").join(lab.private.name());
        std::fs::create_dir_all(&resolv_dir).expect("create /etc/netns/NAME (needs root)");
        std::fs::write(
            resolv_dir.join("resolv.conf"),
            format!("nameserver {PROVIDER}\n"),
        )
        .expect("write the namespace's resolv.conf");
        let mut cmd = lab.lan.command(&dnsmasq, &[]);
        cmd.args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--log-queries",
            "--user=root",
            &format!("--listen-address={PROVIDER}"),
        ])
        .args(records)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run dnsmasq");
        let (log, _lines) = LogCapture::attach(&mut child);
        let child = KillOnDrop(child);
        let deadline = now() + Duration::from_secs(5);
        while !log.text().contains("started") && now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(log.text().contains("started"), "dnsmasq:\n{}", log.text());
        Dns {
            _child: child,
            log,
            resolv_dir,
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

#[test]
fn dns_naptr_and_srv_lead_to_the_registrar_with_failover() {
    let lab = NatLab::build();
    // NAPTR -> _sip._udp SRV: the preferred target (priority 10) has nothing listening,
    // the backup (priority 20) is Kamailio.
    let dns = Dns::start(
        &lab,
        &[
            format!("--naptr-record={DOMAIN},10,10,s,SIP+D2U,,_sip._udp.{DOMAIN}"),
            format!("--srv-host=_sip._udp.{DOMAIN},dead.{DOMAIN},5070,10,10"),
            format!("--srv-host=_sip._udp.{DOMAIN},reg.{DOMAIN},5060,20,10"),
            format!("--host-record=dead.{DOMAIN},{PROVIDER}"),
            format!("--host-record=reg.{DOMAIN},{PROVIDER}"),
        ],
    );
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    add_trunk_with(pbx.data_dir(), PASSWORD, &["--registrar", DOMAIN]);
    // Timer F (32 s) on the dead target, then the backup.
    wait_status(&pbx, &provider, Duration::from_secs(60), |s| {
        s.starts_with("main: registered until")
    });
    let queries = dns.log.text();
    for q in ["NAPTR", "SRV", &format!("reg.{DOMAIN}")] {
        assert!(queries.contains(q), "no {q} query:\n{queries}");
    }
    assert!(!provider.saved().is_empty());
}

/// RFC 5626 sec. 4.4.1 on a TCP trunk: Kamailio answers each CRLFCRLF ping with a CRLF
/// pong, so the connection lives on; once the provider side drops everything from that
/// connection (a blackhole: no RST, no FIN, like a NAT box that forgot the mapping),
/// the next ping goes unanswered and within 10 s pbxd closes the flow and registers on
/// a new connection.
#[test]
fn tcp_flow_without_pongs_is_replaced_by_a_new_registration() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    add_trunk_with(pbx.data_dir(), PASSWORD, &["--transport", "tcp"]);
    wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    let (src, _) = provider.saved().last().expect("saved").clone();
    let registers = provider.registers().len();
    // 40 s: one ping at 25 s, answered by Kamailio's pong; an unanswered one would have
    // closed the flow at 35 s.
    thread::sleep(Duration::from_secs(40));
    assert_eq!(
        provider.registers().len(),
        registers,
        "answered pings keep the flow: {:?}\n--- pbxd:\n{}",
        provider.registers(),
        pbx.log()
    );
    assert!(!pbx.log().contains("no keep-alive answer"), "{}", pbx.log());
    assert!(status(&pbx).starts_with("main: registered until"));

    // Blackhole this connection on the provider's side only; new connections get through.
    let port = port_of(&src).to_string();
    let router = ROUTER_LAN_IP.to_string();
    lab.lan.run(
        "iptables",
        &[
            "-I", "INPUT", "-p", "tcp", "-s", &router, "--sport", &port, "-j", "DROP",
        ],
    );
    // The next ping is due within 25 s, its pong 10 s later; then a new connection.
    let deadline = now() + Duration::from_secs(45);
    let moved = loop {
        let saved = provider.saved();
        if let Some((s, _)) = saved.iter().rev().find(|(s, _)| *s != src) {
            break s.clone();
        }
        assert!(
            now() < deadline,
            "no registration on a new connection within 45 s\n--- pbxd:\n{}\n--- kamailio:\n{}",
            pbx.log(),
            provider.log.text()
        );
        thread::sleep(Duration::from_millis(250));
    };
    assert!(moved.starts_with(&format!("{router}:")), "{moved}");
    assert_ne!(port_of(&moved), port_of(&src), "a new connection");
    let log = pbx.log();
    assert!(log.contains("no keep-alive answer"), "{log}");
    assert!(log.contains("trunk connection closed"), "{log}");
    wait_status(&pbx, &provider, Duration::from_secs(10), |s| {
        s.starts_with("main: registered until")
    });
}

/// One command to pbxd's simulated analog ports (`DATA/sim.sock`); its answer line.
fn sim(pbx: &NsPbx, command: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let path = pbx.data_dir().join("sim.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&path)
        .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    writeln!(stream, "{command}").expect("write a sim command");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read the sim answer");
    line.trim().to_owned()
}

/// `pbxctl alerts` as the installer reads it.
fn alerts(pbx: &NsPbx) -> String {
    pbx.ctl(&["alerts"])
}

/// The "trunk down" alert with a site threshold of 30 s (`pbxctl trunk down-alert`):
/// Kamailio stops, the TCP trunk cannot reconnect, the alert appears after the threshold
/// (not before) and is cleared once the provider is back and pbxd has registered again.
#[test]
fn down_alert_after_the_configured_threshold_and_cleared_on_recovery() {
    let lab = NatLab::build();
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    let pbx = start_pbx(&lab);
    // Out of range: a clear refusal, the default stays.
    let refused = Command::new(pbx_e2e::pbxctl_bin())
        .arg("--data-dir")
        .arg(pbx.data_dir())
        .args(["trunk", "down-alert", "10"])
        .output()
        .expect("run pbxctl");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("outside 30 to 3600 s"), "{err}");
    assert!(pbx.ctl(&["trunk", "down-alert"]).contains("after 120 s"));
    let set = pbx.ctl(&["trunk", "down-alert", "30"]);
    assert!(set.contains("after 30 s"), "{set}");
    add_trunk_with(pbx.data_dir(), PASSWORD, &["--transport", "tcp"]);
    wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    drop(provider);
    let down_at = now();
    let s = wait_for(&pbx, Duration::from_secs(15), |s| {
        s.starts_with("main: unreachable")
    });
    println!("{s}");
    // Not before the threshold...
    thread::sleep(Duration::from_secs(20));
    let early = alerts(&pbx);
    assert!(
        !early.contains("trunk:main:down"),
        "raised too early:\n{early}"
    );
    // ...and within a few housekeeping ticks after it.
    let deadline = down_at + Duration::from_secs(50);
    let raised = loop {
        let a = alerts(&pbx);
        if a.contains("trunk:main:down") {
            break a;
        }
        assert!(
            now() < deadline,
            "no trunk down alert 50 s after the provider stopped:\n{a}\n--- pbxd:\n{}",
            pbx.log()
        );
        thread::sleep(Duration::from_millis(500));
    };
    println!(
        "alert raised {} s after the provider stopped:\n{raised}",
        now().duration_since(down_at).as_secs()
    );
    assert!(raised.contains("trunk main is not registered"), "{raised}");
    // The provider is back: the next attempt (after the 15-30 s back-off) registers and
    // the alert is cleared.
    let provider = Provider::start(&lab, "MD5", PASSWORD, 600);
    wait_status(&pbx, &provider, Duration::from_secs(45), |s| {
        s.starts_with("main: registered until")
    });
    let deadline = now() + Duration::from_secs(15);
    while alerts(&pbx).contains("trunk:main:down") {
        assert!(now() < deadline, "alert not cleared:\n{}", alerts(&pbx));
        thread::sleep(Duration::from_millis(500));
    }
    let history = pbx.ctl(&["alerts", "--all"]);
    assert!(
        history
            .lines()
            .any(|l| l.contains("trunk:main:down") && l.contains("cleared")),
        "{history}"
    );
}

/// A TLS trunk behind the NAT: the REGISTER reaches Kamailio from the router's address,
/// pbxd learns that public address (`received`/`rport`) and registers it as its TLS
/// Contact, the keep-alives (answered by Kamailio's pongs over TLS) keep that one
/// connection (no new REGISTER and no reconnect for 40 s), and a call from the
/// provider's side comes in through it and rings an analog phone.
#[test]
fn tls_trunk_behind_nat_learns_the_public_address_keeps_its_flow_and_rings_a_phone_through_it() {
    let lab = NatLab::build();
    let certs = tempfile::Builder::new()
        .prefix("pbx-e2e-certs-")
        .tempdir()
        .expect("temp dir");
    make_certs(certs.path());
    let provider = Provider::start_full(&lab, "MD5", PASSWORD, 600, Some(certs.path()), true);
    let pbx = start_pbx(&lab);
    std::fs::copy(
        certs.path().join("ca.crt"),
        pbx.data_dir().join("trunk-ca.pem"),
    )
    .expect("install the CA");
    add_trunk_with(
        pbx.data_dir(),
        PASSWORD,
        &[
            "--transport",
            "tls",
            "--registrar",
            &format!("{PROVIDER}:5061"),
        ],
    );
    let s = wait_status(&pbx, &provider, Duration::from_secs(20), |s| {
        s.starts_with("main: registered until")
    });
    let (src, contact) = provider.saved().last().expect("a saved binding").clone();
    assert!(src.starts_with(&format!("{ROUTER_LAN_IP}:")), "{src}");
    assert!(
        contact.contains(&format!("@{src}")) && contact.contains("transport=tls"),
        "the TLS Contact carries the public address {src}: {contact}"
    );
    assert!(s.contains(&format!("public address {src}")), "{s}");
    let text = provider.log.text();
    assert!(text.contains("PROVIDER PROTO tls"), "{text}");
    assert!(!text.contains("PROVIDER PROTO udp"), "{text}");
    let registers = provider.registers();
    assert!(
        registers.iter().all(|(from, _)| *from == src),
        "every REGISTER on the one TLS connection: {registers:?}"
    );

    thread::sleep(Duration::from_secs(40));
    assert_eq!(
        provider.registers().len(),
        registers.len(),
        "pings answered over TLS keep the flow: {:?}\n--- pbxd:\n{}",
        provider.registers(),
        pbx.log()
    );
    assert!(!pbx.log().contains("no keep-alive answer"), "{}", pbx.log());
    assert!(
        !pbx.log().contains("trunk connection closed"),
        "{}",
        pbx.log()
    );
    let s = status(&pbx);
    assert!(
        s.starts_with("main: registered until") && s.contains(&format!("public address {src}")),
        "{s}"
    );

    // An inbound call: a caller on the provider's side dials the office's number; Kamailio
    // relays the INVITE down the registered TLS connection (the LAN has no route to the
    // private network, so there is no other way in) and the analog phone on port 1
    // (extension 21, the simulated ports) rings.
    pbx.ctl(&[
        "numbers",
        "add",
        DID,
        "--trunk",
        "main",
        "--to",
        PORT_EXT,
        "--callers",
        "all",
    ]);
    let sipp = require_tool("sipp", "sip-tester");
    let _caller = KillOnDrop(
        lab.lan
            .command(&sipp, &[])
            .args(["-sn", "uac", "-s", DID])
            .arg(format!("{PROVIDER}:5060"))
            .args(["-i", &pbx_e2e::LAN_PHONE_IP.to_string(), "-p", "5070"])
            .args(["-m", "1", "-timeout", "30s", "-nostdin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sipp"),
    );
    let deadline = now() + Duration::from_secs(15);
    while !sim(&pbx, "status 1").contains("ringing=yes") {
        assert!(
            now() < deadline,
            "the phone did not ring\n--- pbxd:\n{}\n--- kamailio:\n{}",
            pbx.log(),
            provider.log.text()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let text = provider.log.text();
    let routed = text
        .lines()
        .find_map(|l| l.split("PROVIDER ROUTED INVITE to ").nth(1))
        .expect("Kamailio routed the INVITE");
    assert!(
        routed.contains(&format!("@{src}")) && routed.contains("transport=tls"),
        "to the public TLS Contact: {routed}"
    );
}
