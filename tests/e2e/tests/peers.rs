//! pbxd against real peers other than sipp: a softphone (baresip) and an attacker's
//! extension scanner (SIPVicious svwar).

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use pbx_e2e::{
    free_port, now, require_tool, run_with_timeout, send_signal, KillOnDrop, LogCapture, Pbx,
};

const USER: &str = "1001";
const PASSWORD: &str = "s3cret-1001";

/// Where Debian's baresip keeps its modules.
const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";

/// libre (baresip 1.0.0 in Debian bookworm) gives up on a 401 that offers any digest
/// algorithm other than MD5, even next to an MD5 challenge. pbxd offers MD5 and SHA-256
/// by default, so these tests configure it as an installer with such phones would:
/// `--digest-algorithms md5`.
const LIBRE_COMPATIBLE: [&str; 2] = ["--digest-algorithms", "md5"];

fn libre_hint(log: &str) -> &'static str {
    if log.contains("Function not implemented") {
        "\nhint: \"Function not implemented\" is libre's ENOSYS for a non-MD5 challenge \
         (e.g. SHA-256) anywhere in the 401; see tests/README.md"
    } else {
        ""
    }
}

/// A headless baresip: no audio device, no UI module, one account.
struct Baresip {
    child: KillOnDrop,
    log: LogCapture,
    local: String,
    _dir: tempfile::TempDir,
}

impl Baresip {
    fn start(pbx: &Pbx, password: &str, transport: &str) -> Self {
        let bin = require_tool("baresip", "baresip-core");
        assert!(
            Path::new(BARESIP_MODULES).join("account.so").is_file(),
            "baresip modules missing in {BARESIP_MODULES}: apt-get install baresip-core"
        );
        let dir = tempfile::Builder::new()
            .prefix("baresip-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let local = format!("127.0.0.1:{port}");
        let config = format!(
            "poll_method epoll\n\
             sip_listen {local}\n\
             sip_transports udp,tcp\n\
             module_path {BARESIP_MODULES}\n\
             module g711.so\n\
             module_app account.so\n\
             audio_player aufile,/dev/null\n\
             audio_source aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n"
        );
        std::fs::write(dir.path().join("config"), config).expect("write baresip config");
        let account = format!(
            "<sip:{USER}@{};transport={transport}>;auth_pass={password};regint=60\n",
            pbx.sip_addr()
        );
        std::fs::write(dir.path().join("accounts"), account).expect("write baresip accounts");
        let mut child = Command::new(bin)
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baresip");
        let (log, _lines) = LogCapture::attach(&mut child);
        Baresip {
            child: KillOnDrop(child),
            log,
            local,
            _dir: dir,
        }
    }

    fn wait_output(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = now() + timeout;
        while now() < deadline {
            if pred(&self.log.text()) {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        pred(&self.log.text())
    }

    /// SIGINT makes baresip unregister and quit.
    fn stop(mut self) -> String {
        send_signal(self.child.id(), "INT");
        let deadline = now() + Duration::from_secs(10);
        while now() < deadline {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(100));
        self.log.text()
    }
}

fn baresip_registers_and_unregisters(transport: &str) {
    let pbx = Pbx::builder()
        .extension(USER, PASSWORD)
        .arg(LIBRE_COMPATIBLE[0])
        .arg(LIBRE_COMPATIBLE[1])
        .start();
    let phone = Baresip::start(&pbx, PASSWORD, transport);
    let registered = phone.wait_output(Duration::from_secs(10), |out| {
        out.contains(&format!(
            "{USER}@127.0.0.1: {{0/{}",
            transport.to_uppercase()
        )) && out.contains("200 OK")
    });
    assert!(
        registered,
        "baresip did not register over {transport}:\n{}\npbxd log:\n{}{}",
        phone.log.text(),
        pbx.log(),
        libre_hint(&phone.log.text())
    );
    let local = phone.local.clone();
    let (out, listed) = pbx.wait_registrations(Duration::from_secs(5), |o| o.contains(&local));
    assert!(
        listed,
        "pbxctl registrations does not show baresip at {local}:\n{out}"
    );

    let log = phone.stop();
    let (out, gone) = pbx.wait_registrations(Duration::from_secs(5), |o| !o.contains(&local));
    assert!(
        gone,
        "binding left after baresip unregistered:\n{out}\nbaresip:\n{log}"
    );
}

#[test]
fn baresip_registers_over_udp() {
    baresip_registers_and_unregisters("udp");
}

#[test]
fn baresip_registers_over_tcp() {
    baresip_registers_and_unregisters("tcp");
}

#[test]
fn baresip_with_wrong_password_is_not_registered() {
    let pbx = Pbx::builder()
        .extension(USER, PASSWORD)
        .arg(LIBRE_COMPATIBLE[0])
        .arg(LIBRE_COMPATIBLE[1])
        .start();
    let phone = Baresip::start(&pbx, "wrong-password", "udp");
    let failed = phone.wait_output(Duration::from_secs(10), |out| {
        out.contains("401 Unauthorized") || out.contains("403 Forbidden")
    });
    let local = phone.local.clone();
    let log = phone.stop();
    assert!(
        failed,
        "baresip reported no 401/403:\n{log}{}",
        libre_hint(&log)
    );
    assert!(
        !log.contains("200 OK"),
        "registered with a wrong password:\n{log}"
    );
    let out = pbx.registrations();
    assert!(
        !out.contains(&local),
        "binding for a wrong password:\n{out}"
    );
}

/// svwar classifies an extension as existing when its answer differs from the answer to a
/// made-up one. pbxd challenges every REGISTER alike, so svwar must give up and list nothing.
#[test]
fn svwar_finds_no_extensions() {
    let svwar = require_tool("svwar", "sipvicious");
    let pbx = Pbx::builder()
        .extension("1001", PASSWORD)
        .extension("1005", "other-secret")
        .start();
    for domain in [None, Some("pbx.local")] {
        let mut cmd = Command::new(&svwar);
        cmd.args(["-e1000-1010", "-m", "REGISTER", "-b", "127.0.0.1"])
            .args(["-P", &free_port().to_string()])
            .args(["-p", &pbx.sip_port().to_string()]);
        if let Some(d) = domain {
            cmd.arg(format!("--domain={d}"));
        }
        cmd.arg("127.0.0.1");
        let (status, out, timed_out) = run_with_timeout(cmd, Duration::from_secs(60));
        let ctx = format!(
            "svwar (domain {domain:?}) {status:?} timed out {timed_out}:\n{out}\npbxd log:\n{}",
            pbx.log()
        );
        assert!(!timed_out, "{ctx}");
        assert!(
            out.contains("authentication request for an unknown extension"),
            "svwar did not see unknown extensions challenged like known ones: {ctx}"
        );
        assert!(out.contains("found nothing"), "{ctx}");
        assert!(
            !out.contains("| Extension") && !out.contains("reqauth") && !out.contains("noauth"),
            "svwar listed extensions: {ctx}"
        );
    }
}
