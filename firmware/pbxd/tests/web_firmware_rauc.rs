//! The Firmware page's upload against a real pbxd AND a real `rauc service` (the rig of
//! update_rauc.rs): a good signed bundle lands in the inactive slot with the job and the
//! slots visible through the API; a foreign-signed or truncated bundle is refused with
//! RAUC's words and nothing written; while a real call is up (two emulated analog phones,
//! `--hardware sim`) the upload is refused with the policy's message unless forced.
//!
//! With a real 110 call up (port 1 dials 110; with no cloud trunk the emergency route
//! falls back to the emulated GSM module on its pty, which answers) the upload is refused
//! even when forced: 409 with the policy's words, nothing written, the upload removed.
//!
//! Needs root, `rauc`, `dbus-daemon`, `openssl`, `mksquashfs` (else SKIPPED, or a failure
//! with `PBX_REQUIRE_RAUC=1`), and `cargo build -p pbxd --bins`.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod update_support;
mod web_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::Value;
use update_support::rauc_rig::{image, skip, slot_bytes, wall_clock, Rig, COMPATIBLE, SLOT_SIZE};
use web_support::{parse, Daemon, Req, Resp, ROOT_PW};

type Session = (String, String);

/// pbxd with emulated analog ports and the rig's RAUC; never reboots the test machine.
fn start(rig: &Rig) -> Daemon {
    let data = rig.path("pbx-data");
    web_support::start_hw(
        &data,
        "127.0.0.1:0",
        "sim",
        &[
            "--update-backend",
            "rauc",
            "--rauc-dbus-address",
            &rig.address,
            "--reboot-command",
            "true",
            "--no-auto-switch",
        ],
    )
}

/// POST /api/v1/firmware with a binary body (the shared harness sends text).
fn upload(d: &Daemon, s: &Session, query: &str, bundle: &[u8]) -> (u16, Value) {
    let mut head = format!(
        "POST /api/v1/firmware{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
         Cookie: {}\r\nX-CSRF-Token: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        d.https,
        s.0,
        s.1,
        bundle.len()
    )
    .into_bytes();
    head.extend_from_slice(bundle);
    let conn = rustls::ClientConnection::new(
        d.tls.clone(),
        ServerName::try_from(d.server_name.clone()).unwrap(),
    )
    .unwrap();
    let mut tls =
        rustls::StreamOwned::new(conn, TcpStream::connect(("127.0.0.1", d.https)).unwrap());
    let _ = tls.write_all(&head);
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let r: Resp = parse(&raw);
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn firmware(d: &Daemon, s: &Session) -> Value {
    let r = d.https(Req::new("GET", "/api/v1/firmware").cookie(&s.0));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// Polls the job until it leaves `installing`; returns it and every step seen on the way.
fn finished_job(d: &Daemon, s: &Session) -> (Value, Vec<String>) {
    let t0 = wall_clock();
    let mut steps = Vec::new();
    loop {
        let job = firmware(d, s)["job"].clone();
        let msg = job["message"].as_str().unwrap_or("").to_owned();
        if steps.last() != Some(&msg) {
            steps.push(msg);
        }
        if job["state"] != "installing" {
            return (job, steps);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "install hangs: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One command to the virtual phones (`DATA/sim.sock`, line/sim.rs); the answer line.
fn sim(d: &Daemon, command: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(d.data.join("sim.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    writeln!(s, "{command}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert!(!line.starts_with("error"), "sim {command:?}: {line}");
    line.trim().to_owned()
}

/// One command to the emulated mobile network (`DATA/modem.sock`, gsm/sim.rs).
fn modem(d: &Daemon, command: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(d.data.join("modem.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    writeln!(s, "{command}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert!(!line.starts_with("error"), "modem {command:?}: {line}");
    line.trim().to_owned()
}

/// `pbxctl` on the daemon's data directory; its stdout.
fn pbxctl(d: &Daemon, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(&d.data)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "pbxctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Calls in progress as pbxd's health API counts them.
fn calls(d: &Daemon) -> i64 {
    d.http("/api/v1/health").json()["calls"]
        .as_i64()
        .unwrap_or(-1)
}

fn wait_calls(d: &Daemon, want: i64) {
    let t0 = wall_clock();
    while calls(d) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "calls {} != {want}\n{}",
            calls(d),
            d.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_nothing_written(rig: &Rig, what: &str) {
    assert_eq!(
        slot_bytes(rig, "slot-b.img"),
        vec![0; SLOT_SIZE],
        "{what}: slot B"
    );
    assert_eq!(
        slot_bytes(rig, "slot-a.img"),
        vec![0xA5; SLOT_SIZE],
        "{what}: slot A"
    );
    assert_eq!(rig.boot_state().order, "A B", "{what}: boot order");
}

fn leftovers(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_upload_installs_through_real_rauc_and_refuses_bad_bundles_and_busy_times() {
    if skip("web_upload_installs_through_real_rauc_and_refuses_bad_bundles_and_busy_times") {
        return;
    }
    let mut rig = Rig::new(false);
    drop(rig.factory_boot().await);
    let img = image(256 * 1024);
    let good = std::fs::read(rig.bundle("good", COMPATIBLE, "release", &img)).unwrap();
    let foreign = std::fs::read(rig.bundle("foreign", COMPATIBLE, "other", &img)).unwrap();
    let truncated = good[..good.len() / 2].to_vec();

    let d = start(&rig);
    d.setup("root", ROOT_PW);
    let root = d.login("root", ROOT_PW);
    let v = firmware(&d, &root);
    assert_eq!(v["backend"], "rauc");
    assert_eq!(v["status"]["boot_slot"], "A", "{v}");
    assert_eq!(v["status"]["compatible"], COMPATIBLE, "{v}");

    // (b), (c): RAUC's verdict shown as the job's error; nothing written.
    for (bundle, expect, what) in [
        (&foreign, "signature verification failed", "foreign key"),
        (&truncated, "Invalid bundle format", "truncated"),
    ] {
        let (status, v) = upload(&d, &root, "", bundle);
        assert_eq!(status, 202, "{what}: {v}");
        let (job, _) = finished_job(&d, &root);
        assert_eq!(job["state"], "failed", "{what}: {job}");
        let err = job["last_error"].as_str().unwrap_or("");
        eprintln!("{what}: the API shows: {err}");
        assert!(err.contains(expect), "{what}: {err}");
        assert_nothing_written(&rig, what);
        assert_eq!(leftovers(&d.data), 0, "{what}: upload removed");
    }

    // (d) A real call: port 1 (extension 21) dials port 2, which answers.
    sim(&d, "offhook 1");
    std::thread::sleep(Duration::from_millis(300));
    sim(&d, "dtmf 1 22");
    let t0 = wall_clock();
    while !sim(&d, "status 2").contains("ringing=yes") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "port 2 does not ring"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sim(&d, "offhook 2");
    wait_calls(&d, 1);
    let (status, v) = upload(&d, &root, "", &good);
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        v["error"],
        "update refused: 1 call(s) in progress; try again later or force the install"
    );
    assert_nothing_written(&rig, "refused during a call");
    assert_eq!(leftovers(&d.data), 0);
    // Forced, it installs while the call goes on.
    let (status, v) = upload(&d, &root, "?force=true", &good);
    assert_eq!(status, 202, "{v}");
    let (job, steps) = finished_job(&d, &root);
    eprintln!("forced install, steps seen through the API: {steps:?}");
    assert_eq!(job["state"], "installed", "{job}");
    assert_eq!(job["next_slot"], "rootfs.1", "{job}");
    assert_eq!(calls(&d), 1, "the call survived the install");
    sim(&d, "onhook 1");
    sim(&d, "onhook 2");
    wait_calls(&d, 0);

    // (a) Unforced with no call: installed into the inactive slot, visible in the API.
    std::fs::write(rig.path("slot-b.img"), vec![0; SLOT_SIZE]).unwrap();
    let (status, v) = upload(&d, &root, "", &good);
    assert_eq!(status, 202, "{v}");
    let (job, steps) = finished_job(&d, &root);
    eprintln!("install, steps seen through the API: {steps:?}");
    assert_eq!(job["state"], "installed", "{job}");
    assert_eq!(job["percent"], 100);
    assert_eq!(job["last_error"], Value::Null);
    assert_eq!(&slot_bytes(&rig, "slot-b.img")[..img.len()], &img[..]);
    assert_eq!(slot_bytes(&rig, "slot-a.img"), vec![0xA5; SLOT_SIZE]);
    assert_eq!(rig.boot_state().order, "B A");
    let v = firmware(&d, &root);
    let status = &v["status"];
    assert_eq!(status["primary"], "rootfs.1", "{v}");
    assert_eq!(status["operation"], "idle", "{v}");
    let slot_b = status["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rootfs.1")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(slot_b["bundle_version"], "2.0", "{v}");
    assert_eq!(leftovers(&d.data), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_upload_is_refused_during_a_real_emergency_call_even_forced() {
    if skip("web_upload_is_refused_during_a_real_emergency_call_even_forced") {
        return;
    }
    let mut rig = Rig::new(false);
    drop(rig.factory_boot().await);
    let good = std::fs::read(rig.bundle("good", COMPATIBLE, "release", &image(64 * 1024))).unwrap();
    let d = start(&rig);
    d.setup("root", ROOT_PW);
    let root = d.login("root", ROOT_PW);

    // The emulated module registers once it has its PIN (entered while pbxd runs).
    pbxctl(&d, &["gsm", "pin", "1234"]);
    let t0 = wall_clock();
    while !pbxctl(&d, &["gsm", "status"])
        .lines()
        .any(|l| l.starts_with("registration") && l.ends_with("home"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the GSM module never registered: {}",
            pbxctl(&d, &["gsm", "status"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Port 1 dials 110: no cloud trunk, so the module dials it as an emergency call.
    sim(&d, "offhook 1");
    std::thread::sleep(Duration::from_millis(300));
    sim(&d, "dtmf 1 110");
    let t0 = wall_clock();
    let mut call = modem(&d, "call");
    while !call.starts_with("out 110") {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "110 did not go out over GSM: {call}\n{}",
            d.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
        call = modem(&d, "call");
    }
    assert!(call.ends_with("emergency"), "{call}");
    modem(&d, "answer");
    wait_calls(&d, 1);
    assert_eq!(
        d.http("/api/v1/health").json()["emergency_calls"],
        1,
        "the health API counts the emergency call"
    );

    for query in ["", "?force=true"] {
        let (status, v) = upload(&d, &root, query, &good);
        assert_eq!(status, 409, "{query}: {v}");
        let err = v["error"].as_str().unwrap_or("");
        eprintln!("upload{query} during 110: {err}");
        assert!(
            err.contains("an emergency call is in progress"),
            "{query}: {err}"
        );
        assert_nothing_written(&rig, "refused during an emergency call");
        assert_eq!(leftovers(&d.data), 0, "{query}: upload removed");
        assert_ne!(
            firmware(&d, &root)["job"]["state"],
            "installing",
            "{query}: no install started"
        );
    }
    assert!(
        modem(&d, "call").contains("active"),
        "the 110 call is still up"
    );

    // Once the call has ended, the same upload goes through.
    modem(&d, "hangup");
    sim(&d, "onhook 1");
    wait_calls(&d, 0);
    let (status, v) = upload(&d, &root, "", &good);
    assert_eq!(status, 202, "{v}");
    let (job, _) = finished_job(&d, &root);
    assert_eq!(job["state"], "installed", "{job}");
}
