//! pbxd's RAUC backend against a real `rauc service` on a private D-Bus bus: file-backed
//! slots, the `custom` bootloader backend of tests/update/custom-bootloader.sh (boot
//! order and attempts in a file), bundles signed with throw-away keys.
//!
//! Needs root (RAUC loop-mounts the bundle), `rauc`, `dbus-daemon`, `openssl` and
//! `mksquashfs`. Without them each test prints `SKIPPED: ...` and returns; with
//! `PBX_REQUIRE_RAUC=1` (CI) a missing tool fails the test instead.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

mod update_support;
use update_support::ddi_server::{DdiServer, Script};
use update_support::rauc_rig::{
    image, install_good, skip, slot_bytes, wall_clock, BootState, Rig, COMPATIBLE, SLOT_SIZE,
};

use pbxd::update::health::{Check, CheckResult, HealthConfig, Requirement, Verdict};
use pbxd::update::switch::SwitchConfig;
use pbxd::update::task::{run_health_gate, run_switch, GateSinks};
use pbxd::update::{BootStatus, Installer, MarkState, SlotRef, UpdateError};

#[tokio::test]
async fn install_writes_the_inactive_slot_and_switches_the_boot_order() {
    if skip("install_writes_the_inactive_slot_and_switches_the_boot_order") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    let before = installer.status().await.unwrap();
    assert_eq!(before.compatible, COMPATIBLE);
    assert_eq!(before.primary.as_deref(), Some("rootfs.0"));

    let img = install_good(&rig, &installer).await;

    let b = slot_bytes(&rig, "slot-b.img");
    assert_eq!(&b[..img.len()], &img[..], "slot B holds the new image");
    assert_eq!(
        slot_bytes(&rig, "slot-a.img"),
        vec![0xA5; SLOT_SIZE],
        "slot A untouched"
    );
    assert_eq!(
        rig.boot_state(),
        BootState {
            order: "B A".into(),
            a_left: 3,
            b_left: 3
        }
    );
    let after = installer.status().await.unwrap();
    assert_eq!(after.operation, "idle");
    assert_eq!(after.last_error, None);
    assert_eq!(after.primary.as_deref(), Some("rootfs.1"));
    let b = after.slots.iter().find(|s| s.name == "rootfs.1").unwrap();
    assert_eq!(b.bootname.as_deref(), Some("B"));
    assert_eq!(b.state, "inactive");
    assert_eq!(b.bundle_version.as_deref(), Some("2.0"));
    assert_eq!(b.boot_status, Some(BootStatus::Good));
    let a = after.slots.iter().find(|s| s.name == "rootfs.0").unwrap();
    assert_eq!(a.state, "booted");
}

#[tokio::test]
async fn an_installed_update_is_booted_only_once_calls_have_stopped() {
    if skip("an_installed_update_is_booted_only_once_calls_have_stopped") {
        return;
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    install_good(&rig, &installer).await;
    let calls = pbxd::update::CallsUp {
        all: Arc::new(AtomicUsize::new(1)),
        ..Default::default()
    };
    let rebooted = Arc::new(AtomicUsize::new(0));
    let cfg = SwitchConfig {
        quiet: Duration::from_millis(600),
        window: None,
    };
    let watcher = {
        let (calls, rebooted) = (calls.clone(), rebooted.clone());
        async move {
            run_switch(
                &installer,
                cfg,
                Duration::from_millis(100),
                calls,
                time::UtcOffset::UTC,
                move || {
                    rebooted.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await
        }
    };
    let watcher = tokio::spawn(watcher);
    // A call is up: the new slot waits, however long.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rebooted.load(Ordering::SeqCst), 0, "rebooted during a call");
    assert!(!watcher.is_finished());
    // The call ends; after the quiet period the box boots the new slot, once.
    calls.all.store(0, Ordering::SeqCst);
    let slot = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("switched within 10 s")
        .unwrap();
    assert_eq!(slot, "rootfs.1");
    assert_eq!(rebooted.load(Ordering::SeqCst), 1);
    let (booted, _) = rig.boot().await;
    assert_eq!(booted, "B", "the reboot boots the installed slot");
}

fn healthy_reports(checks: &[Check]) -> mpsc::Receiver<(Check, CheckResult)> {
    let (tx, rx) = mpsc::channel(8);
    for c in checks {
        tx.try_send((*c, CheckResult::Passed)).unwrap();
    }
    rx
}

#[tokio::test]
async fn a_healthy_new_slot_is_marked_good_and_stays() {
    if skip("a_healthy_new_slot_is_marked_good_and_stays") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    install_good(&rig, &installer).await;
    let (slot, installer) = rig.boot().await;
    assert_eq!(slot, "B", "the bootloader tries the new slot");
    assert_eq!(rig.boot_state().b_left, 2, "one attempt used");

    let verdict_file = rig.path("health");
    let outcome = run_health_gate(
        &installer,
        HealthConfig {
            limit: Duration::from_secs(10),
            analog_ports: Requirement::NotApplicable,
            trunk: Requirement::NotApplicable,
        },
        healthy_reports(&[Check::Database, Check::SipListening]),
        GateSinks {
            verdict_file: Some(verdict_file.clone()),
        },
        || panic!("a healthy slot must not reboot"),
    )
    .await;
    assert_eq!(outcome.verdict, Verdict::Good);
    assert_eq!(outcome.marked.unwrap().slot, "rootfs.1");
    assert!(!outcome.rebooted);
    assert_eq!(std::fs::read_to_string(&verdict_file).unwrap(), "good\n");
    assert_eq!(
        rig.boot_state(),
        BootState {
            order: "B A".into(),
            a_left: 3,
            b_left: 3
        },
        "marking good restores the attempts"
    );
    let (slot, _) = rig.boot().await;
    assert_eq!(slot, "B", "the good slot keeps booting");
}

#[tokio::test]
async fn an_unhealthy_new_slot_is_marked_bad_and_the_bootloader_falls_back() {
    if skip("an_unhealthy_new_slot_is_marked_bad_and_the_bootloader_falls_back") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    install_good(&rig, &installer).await;
    let (slot, installer) = rig.boot().await;
    assert_eq!(slot, "B");

    let mut reboots = 0;
    let outcome = run_health_gate(
        &installer,
        HealthConfig {
            limit: Duration::from_millis(300),
            analog_ports: Requirement::NotApplicable,
            trunk: Requirement::NotApplicable,
        },
        // SIP never comes up.
        healthy_reports(&[Check::Database]),
        GateSinks {
            verdict_file: Some(rig.path("health")),
        },
        || reboots += 1,
    )
    .await;
    assert!(
        matches!(outcome.verdict, Verdict::Bad(ref f) if f.len() == 1 && f[0].check == Check::SipListening)
    );
    assert_eq!(outcome.marked.unwrap().slot, "rootfs.1");
    assert!(outcome.rebooted);
    assert_eq!(reboots, 1);
    assert_eq!(
        std::fs::read_to_string(rig.path("health")).unwrap(),
        "bad: sip-listening: no result within the limit\n"
    );
    assert_eq!(rig.boot_state().b_left, 0, "slot B is not bootable");
    let (slot, installer) = rig.boot().await;
    assert_eq!(slot, "A", "the bootloader fell back to the old slot");
    let status = installer.status().await.unwrap();
    assert_eq!(status.primary.as_deref(), Some("rootfs.0"));
    let b = status.slots.iter().find(|s| s.name == "rootfs.1").unwrap();
    assert_eq!(b.boot_status, Some(BootStatus::Bad));
    // And the old slot can be marked good again from here, as the gate does on every boot.
    let m = installer
        .mark(MarkState::Good, SlotRef::Booted)
        .await
        .unwrap();
    assert_eq!(m.slot, "rootfs.0");
}

#[tokio::test]
async fn foreign_mismatched_and_damaged_bundles_are_refused_before_writing() {
    if skip("foreign_mismatched_and_damaged_bundles_are_refused_before_writing") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    let img = image(64 * 1024);
    let foreign = rig.bundle("foreign", COMPATIBLE, "other", &img);
    let mismatched = rig.bundle("mismatched", "some-other-board", "release", &img);
    let good = rig.bundle("good", COMPATIBLE, "release", &img);
    let truncated = rig.path("truncated.raucb");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    struct Case<'a> {
        bundle: &'a Path,
        expect: &'a str,
        msg: &'a str,
    }
    let cases = [
        Case {
            bundle: &foreign,
            expect: "signature verification failed",
            msg: "signed by a key not in the keyring",
        },
        Case {
            bundle: &mismatched,
            expect: "Compatible mismatch",
            msg: "for another board",
        },
        Case {
            bundle: &truncated,
            expect: "Invalid bundle format",
            msg: "truncated",
        },
    ];
    for c in cases {
        let err = installer.install(c.bundle, |_| {}).await.expect_err(c.msg);
        let UpdateError::InstallFailed { code, message } = &err else {
            panic!("{}: unexpected error {err:?}", c.msg);
        };
        eprintln!("{}: RAUC said: {message}", c.msg);
        assert_ne!(*code, 0, "{}", c.msg);
        assert!(!message.is_empty(), "{}: RAUC's reason is surfaced", c.msg);
        assert!(message.contains(c.expect), "{}: {message}", c.msg);
        assert_eq!(
            slot_bytes(&rig, "slot-b.img"),
            vec![0; SLOT_SIZE],
            "{}: nothing written",
            c.msg
        );
        assert_eq!(
            slot_bytes(&rig, "slot-a.img"),
            vec![0xA5; SLOT_SIZE],
            "{}",
            c.msg
        );
        assert_eq!(
            rig.boot_state(),
            BootState {
                order: "A B".into(),
                a_left: 3,
                b_left: 3
            },
            "{}: boot order untouched",
            c.msg
        );
        let status = installer.status().await.unwrap();
        assert_eq!(status.last_error.as_deref(), Some(message.as_str()));
    }
    // A missing file is refused by pbxd before RAUC is asked.
    let err = installer
        .install(&rig.path("nope.raucb"), |_| {})
        .await
        .expect_err("missing");
    assert!(matches!(err, UpdateError::Bundle { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_install_mid_write_leaves_the_active_slot_good() {
    if skip("killing_the_install_mid_write_leaves_the_active_slot_good") {
        return;
    }
    // Slot B is a FIFO: RAUC's write blocks once the pipe is full, so the kill lands
    // in the middle of writing the slot, every time.
    let mut rig = Rig::new(true);
    let installer = rig.factory_boot().await;
    let img = image(1 << 20);
    let bundle = rig.bundle("big", COMPATIBLE, "release", &img);
    let fifo = rig.path("slot-b.img");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(fifo).unwrap();
        let mut first = vec![0; 4096];
        f.read_exact(&mut first).unwrap();
        (f, first)
    });
    let install = {
        let installer = installer.clone();
        tokio::spawn(async move { installer.install(&bundle, |_| {}).await })
    };
    let (held_open, first) = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert_eq!(first[..], img[..4096], "RAUC was writing slot B");
    rig.stop_rauc();
    let result = tokio::time::timeout(Duration::from_secs(10), install)
        .await
        .expect("install returns when the service dies")
        .unwrap();
    assert_eq!(result, Err(UpdateError::ServiceGone));
    drop(held_open);

    assert_eq!(
        slot_bytes(&rig, "slot-a.img"),
        vec![0xA5; SLOT_SIZE],
        "slot A untouched"
    );
    let state = rig.boot_state();
    assert_eq!(state.a_left, 3, "slot A still good");
    assert_eq!(state.b_left, 0, "the half-written slot is not bootable");
    assert_eq!(rig.bootloader(&["get-primary"]), "A");
    let (slot, installer) = rig.boot().await;
    assert_eq!(slot, "A");
    let status = installer.status().await.unwrap();
    let a = status.slots.iter().find(|s| s.name == "rootfs.0").unwrap();
    assert_eq!(a.boot_status, Some(BootStatus::Good));
}

struct CtlRun {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pbxctl(rig: &Rig, args: &[&str]) -> CtlRun {
    let out = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(rig.path("pbx-data"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    CtlRun {
        code: out.status.code().expect("pbxctl killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `pbxctl update install BUNDLE EXTRA... --pbxd-http HEALTH --rauc-dbus-address BUS`, off
/// the runtime's worker (pbxctl blocks while RAUC's D-Bus calls run on it).
fn install(rig: &Rig, bundle: &str, bus: &str, health: &str, extra: &[&str]) -> CtlRun {
    let mut args = vec!["update", "install", bundle];
    args.extend_from_slice(extra);
    args.extend(["--pbxd-http", health, "--rauc-dbus-address", bus]);
    tokio::task::block_in_place(|| pbxctl(rig, &args))
}

/// A stand-in for pbxd's plain HTTP port answering the health request with `calls`.
fn fake_pbxd_health(calls: usize) -> std::net::SocketAddr {
    fake_pbxd_health_with(calls, 0)
}

/// Like [`fake_pbxd_health`], with `emergency` of the calls being emergency calls.
fn fake_pbxd_health_with(calls: usize, emergency: usize) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            // Read the whole request head, so closing does not reset the connection.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!(
                "{{\"status\":\"ok\",\"calls\":{calls},\"emergency_calls\":{emergency},\"registrations\":0}}"
            );
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbxctl_update_install_honours_calls_and_window_then_shows_status() {
    if skip("pbxctl_update_install_honours_calls_and_window_then_shows_status") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    let img = image(128 * 1024);
    let bundle = rig.bundle("good", COMPATIBLE, "release", &img);
    let bundle = bundle.to_str().unwrap().to_owned();
    let bus = rig.address.clone();
    let busy = fake_pbxd_health(2).to_string();

    // Two calls up: refused, nothing written.
    let r = install(&rig, &bundle, &bus, &busy, &[]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("2 call(s) in progress"), "{}", r.stderr);
    assert_eq!(slot_bytes(&rig, "slot-b.img"), vec![0; SLOT_SIZE]);

    // Quiet, but outside the window (one that starts two hours from now).
    let now = time::OffsetDateTime::now_utc().time();
    let from = now + time::Duration::hours(2);
    let to = now + time::Duration::hours(3);
    let window = format!(
        "{:02}:{:02}-{:02}:{:02}",
        from.hour(),
        from.minute(),
        to.hour(),
        to.minute()
    );
    let quiet = fake_pbxd_health(0).to_string();
    let r = install(
        &rig,
        &bundle,
        &bus,
        &quiet,
        &["--maintenance-window", &window],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains("outside the maintenance window"),
        "{}",
        r.stderr
    );

    // An emergency call up: refused even when forced, nothing written.
    let emergency = fake_pbxd_health_with(2, 1).to_string();
    let r = install(&rig, &bundle, &bus, &emergency, &["--force"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("emergency"), "{}", r.stderr);
    assert_eq!(slot_bytes(&rig, "slot-b.img"), vec![0; SLOT_SIZE]);

    // Forced while calls are up: installs, with RAUC's progress on stdout.
    let r = install(&rig, &bundle, &bus, &busy, &["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Copying image to rootfs.1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .ends_with("installed; slot rootfs.1 boots at the next restart\n"),
        "{}",
        r.stdout
    );
    assert_eq!(&slot_bytes(&rig, "slot-b.img")[..img.len()], &img[..]);

    let r = tokio::task::block_in_place(|| {
        pbxctl(&rig, &["update", "status", "--rauc-dbus-address", &bus])
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("booted:      A\n"), "{}", r.stdout);
    assert!(r.stdout.contains("next boot:   rootfs.1\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("rootfs.1   B    inactive  good  2.0"),
        "{}",
        r.stdout
    );
    let r = tokio::task::block_in_place(|| {
        pbxctl(
            &rig,
            &["update", "status", "--json", "--rauc-dbus-address", &bus],
        )
    });
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["primary"], "rootfs.1");
    assert_eq!(v["compatible"], COMPATIBLE);

    // A foreign bundle through pbxctl: RAUC's reason on stderr, exit 1.
    let foreign = rig.bundle("foreign", COMPATIBLE, "other", &img);
    let r = tokio::task::block_in_place(|| {
        pbxctl(
            &rig,
            &[
                "update",
                "install",
                foreign.to_str().unwrap(),
                "--pbxd-http",
                &quiet,
                "--rauc-dbus-address",
                &bus,
            ],
        )
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("signature verification failed"),
        "{}",
        r.stderr
    );
    drop(installer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbxd_with_the_rauc_backend_marks_the_new_slot_good_once_healthy() {
    if skip("pbxd_with_the_rauc_backend_marks_the_new_slot_good_once_healthy") {
        return;
    }
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    install_good(&rig, &installer).await;
    let (slot, _) = rig.boot().await;
    assert_eq!(slot, "B");
    assert_eq!(rig.boot_state().b_left, 2);

    let health = rig.path("health");
    let rebooted = rig.path("rebooted");
    let reboot = format!("touch {}", rebooted.display());
    let _pbxd = rig.pbxd(&[
        "--health-limit",
        "30",
        "--health-file",
        health.to_str().unwrap(),
        "--reboot-command",
        &reboot,
    ]);
    let t0 = wall_clock();
    while !health.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no verdict from pbxd"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_to_string(&health).unwrap(), "good\n");
    assert!(!rebooted.exists());
    assert_eq!(
        rig.boot_state(),
        BootState {
            order: "B A".into(),
            a_left: 3,
            b_left: 3
        },
        "pbxd marked slot B good"
    );
}

/// A box whose trunk was registered before the update, and whose provider no longer
/// answers on the new firmware: the trunk check is required, fails by the limit, and the
/// slot is marked bad (the reboot falls back). SIP, the database and (no ports with
/// `--hardware none`) everything else is healthy, so the trunk is the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_registered_before_but_not_after_the_update_marks_the_slot_bad() {
    if skip("a_trunk_registered_before_but_not_after_the_update_marks_the_slot_bad") {
        return;
    }
    use std::io::Write;
    let mut rig = Rig::new(false);
    let installer = rig.factory_boot().await;
    install_good(&rig, &installer).await;
    let (slot, _) = rig.boot().await;
    assert_eq!(slot, "B");

    // The trunk's registrar: a UDP port nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let registrar = silent.local_addr().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(rig.path("pbx-data"))
        .args(["trunk", "add", "cloud", "--registrar", &registrar])
        .args(["--domain", "sip.provider.example", "--user", "4930123"])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"provider-pw\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the previous boot's pbxd wrote: registered, an hour ago.
    {
        let mut store = pbxd::store::Store::open(&rig.path("pbx-data")).unwrap();
        let then = i64::try_from(pbxd::clock::unix_now()).unwrap() - 3600;
        store
            .set_trunk_status(&pbxd::store::TrunkStatusRow {
                name: "cloud".into(),
                state: "registered".into(),
                reason: String::new(),
                registered_until: Some(then + 600),
                public_addr: None,
                since: then,
                updated_at: then,
            })
            .unwrap();
    }

    let health = rig.path("health");
    let rebooted = rig.path("rebooted");
    let reboot = format!("touch {}", rebooted.display());
    let _pbxd = rig.pbxd(&[
        "--hardware",
        "none",
        "--health-limit",
        "10",
        "--health-file",
        health.to_str().unwrap(),
        "--reboot-command",
        &reboot,
    ]);
    let t0 = wall_clock();
    while !health.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no verdict from pbxd"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&health).unwrap(),
        "bad: trunk-registered: no result within the limit\n"
    );
    while !rebooted.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no reboot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbxd_installs_a_hawkbit_deployment_through_rauc_and_reports_success() {
    if skip("pbxd_installs_a_hawkbit_deployment_through_rauc_and_reports_success") {
        return;
    }
    let mut rig = Rig::new(false);
    drop(rig.factory_boot().await);
    let img = image(192 * 1024);
    let bundle = std::fs::read(rig.bundle("good", COMPATIBLE, "release", &img)).unwrap();
    let server = DdiServer::start(Script {
        artifact: bundle,
        // The download breaks once and resumes.
        cut_first_after: Some(40_000),
        ..Script::default()
    });
    let token = rig.path("hawkbit-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let token = token.to_str().unwrap();
    let _pbxd = rig.pbxd(&[
        "--hawkbit-url",
        &server.url(),
        "--hawkbit-controller-id",
        "pbx-1",
        "--hawkbit-token-file",
        token,
    ]);
    let closed = |server: &DdiServer| {
        server.seen().into_iter().find_map(|s| {
            let v: serde_json::Value = serde_json::from_str(&s.body).ok()?;
            (s.path.ends_with("/deploymentBase/8/feedback") && v["status"]["execution"] == "closed")
                .then_some(v)
        })
    };
    let t0 = wall_clock();
    let result = loop {
        if let Some(v) = closed(&server) {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no result: {:?}",
            server.seen()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        result["status"]["result"]["finished"], "success",
        "{result}"
    );
    assert_eq!(&slot_bytes(&rig, "slot-b.img")[..img.len()], &img[..]);
    assert_eq!(rig.boot_state().order, "B A");
    let ranges: Vec<_> = server
        .seen()
        .into_iter()
        .filter_map(|s| s.headers.get("range").cloned())
        .collect();
    assert_eq!(ranges, vec!["bytes=40000-".to_owned()], "resumed once");
    // The downloaded bundle does not stay on the data partition.
    let left: Vec<_> = std::fs::read_dir(rig.path("pbx-data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".raucb"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
