//! pbxd speaks systemd's notify protocol (issue 8: the unit's watchdog): `READY=1` once it
//! serves, `WATCHDOG=1` at half the interval while the SIP loop answers, `STOPPING=1` on
//! SIGTERM. The test plays systemd's side: a datagram socket in `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC`, as `Type=notify` + `WatchdogSec=` set them.
//!
//! ```sh
//! cargo build -p pbxd --bins && cargo test -p pbx-e2e --test systemd
//! ```

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use pbx_e2e::{free_port, now, pbxd_bin, send_signal, KillOnDrop};

/// Collects notify datagrams until `done` says enough or `limit` passes.
fn collect(sock: &UnixDatagram, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let end = now() + limit;
    let mut buf = [0u8; 4096];
    while now() < end && !done(&got) {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            got.extend(text.lines().map(str::to_owned));
        }
    }
    got
}

#[test]
fn pbxd_notifies_ready_pings_the_watchdog_while_sip_answers_and_says_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let child = Command::new(pbxd_bin())
        .arg("--data-dir")
        .arg(&data)
        .arg("--sip-listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--https-listen")
        .arg("127.0.0.1:0")
        .args(["--hardware", "none"])
        .env("NOTIFY_SOCKET", &path)
        // 1 s: pings every 500 ms.
        .env("WATCHDOG_USEC", "1000000")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pbxd");
    let child = KillOnDrop(child);

    let got = collect(&sock, Duration::from_secs(30), |g| {
        g.iter().any(|l| l == "READY=1") && g.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
    });
    assert!(got.iter().any(|l| l == "READY=1"), "no READY=1 in {got:?}");
    assert!(
        got.iter()
            .any(|l| l.starts_with("STATUS=ready: sip=127.0.0.1:")),
        "no status line in {got:?}"
    );
    let pings = got.iter().filter(|l| *l == "WATCHDOG=1").count();
    assert!(pings >= 3, "{pings} watchdog pings in {got:?}");

    send_signal(child.id(), "TERM");
    let got = collect(&sock, Duration::from_secs(20), |g| {
        g.iter().any(|l| l == "STOPPING=1")
    });
    assert!(
        got.iter().any(|l| l == "STOPPING=1"),
        "no STOPPING=1 in {got:?}"
    );
}
