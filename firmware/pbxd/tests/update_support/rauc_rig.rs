//! The real-RAUC rig of the update tests: a private D-Bus bus, `rauc service` with the
//! test system.conf (file-backed slots, the `custom` bootloader of
//! tests/update/custom-bootloader.sh), bundles signed with throw-away keys, and pbxd
//! started against it.
//!
//! Needs root (RAUC loop-mounts the bundle), `rauc`, `dbus-daemon`, `openssl` and
//! `mksquashfs`. Without them [`skip`] prints `SKIPPED: ...`; with `PBX_REQUIRE_RAUC=1`
//! (CI) a missing tool fails the test instead.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pbxd::update::rauc::{Bus, RaucInstaller};
use pbxd::update::{Installer, MarkState, SlotRef};

pub const SLOT_SIZE: usize = 2 << 20;
pub const COMPATIBLE: &str = "pbx-test-board";

/// The rig waits for real processes, so it reads the real clock.
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> Instant {
    Instant::now()
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `None` (after saying why) when this machine cannot run RAUC.
pub fn missing_prerequisite() -> Option<String> {
    for tool in ["rauc", "dbus-daemon", "openssl", "mksquashfs"] {
        if !have(tool) {
            return Some(format!("{tool} not installed"));
        }
    }
    if !is_root() {
        return Some("not root (rauc loop-mounts bundles)".to_owned());
    }
    None
}

pub fn skip(test: &str) -> bool {
    let Some(why) = missing_prerequisite() else {
        return false;
    };
    if std::env::var_os("PBX_REQUIRE_RAUC").is_some() {
        panic!("{test}: {why}, and PBX_REQUIRE_RAUC is set");
    }
    eprintln!("SKIPPED: {test}: {why}");
    true
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The bootloader's state file: boot order and attempts left.
#[derive(Debug, PartialEq, Eq)]
pub struct BootState {
    pub order: String,
    pub a_left: u32,
    pub b_left: u32,
}

/// One private bus, one RAUC service, two slot files, one bootloader state.
pub struct Rig {
    dir: tempfile::TempDir,
    bus: Child,
    rauc: Option<Child>,
    /// The private bus, for `--rauc-dbus-address`.
    pub address: String,
}

pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.cert.pem")),
        dir.join(format!("{name}.key.pem")),
    );
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null()));
    (cert, key)
}

impl Rig {
    /// Sets up the files and the bus; `fifo_slot_b` makes slot B a FIFO so a test can
    /// hold RAUC in the middle of writing it.
    pub fn new(fifo_slot_b: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fill = |src: &str, dst: &str| {
            let text = std::fs::read_to_string(repo_file(src)).unwrap();
            std::fs::write(d.join(dst), text.replace("@DIR@", d.to_str().unwrap())).unwrap();
        };
        fill("tests/update/system.conf.in", "system.conf");
        fill("tests/update/bus.conf.in", "bus.conf");
        std::fs::copy(
            repo_file("tests/update/custom-bootloader.sh"),
            d.join("custom-bootloader.sh"),
        )
        .unwrap();
        std::fs::create_dir(d.join("rauc-data")).unwrap();
        std::fs::create_dir(d.join("mnt")).unwrap();
        std::fs::write(d.join("slot-a.img"), vec![0xA5; SLOT_SIZE]).unwrap();
        if fifo_slot_b {
            run(Command::new("mkfifo").arg(d.join("slot-b.img")));
        } else {
            std::fs::write(d.join("slot-b.img"), vec![0; SLOT_SIZE]).unwrap();
        }
        let (release_cert, _) = key_pair(d, "release");
        std::fs::copy(release_cert, d.join("keyring.pem")).unwrap();
        key_pair(d, "other");
        let bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", d.join("bus.conf").display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            // It warns that it cannot raise its fd limit; nothing to see.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sock = d.join("bus.sock");
        let t0 = wall_clock();
        while !sock.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "dbus-daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Rig {
            address: format!("unix:path={}", sock.display()),
            dir,
            bus,
            rauc: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn bootloader(&self, args: &[&str]) -> String {
        run(Command::new(self.path("custom-bootloader.sh")).args(args))
            .trim()
            .to_owned()
    }

    pub fn boot_state(&self) -> BootState {
        // The script creates its state on first use.
        self.bootloader(&["get-primary"]);
        let text = std::fs::read_to_string(self.path("bootstate")).unwrap();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap()
                .trim_matches('"')
                .to_owned()
        };
        BootState {
            order: get("ORDER"),
            a_left: get("A_LEFT").parse().unwrap(),
            b_left: get("B_LEFT").parse().unwrap(),
        }
    }

    /// Power cycle: stop RAUC, let the bootloader pick a slot (using up one attempt),
    /// start RAUC as booted from it. Returns the bootname and a connected installer.
    pub async fn boot(&mut self) -> (String, RaucInstaller) {
        self.stop_rauc();
        let slot = self.bootloader(&["boot"]);
        let log = std::fs::File::create(self.path(&format!("rauc-{slot}.log"))).unwrap();
        let child = Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={}", self.path("system.conf").display()))
            .arg(format!("--mount={}", self.path("mnt").display()))
            .arg(format!("--override-boot-slot={slot}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.rauc = Some(child);
        let installer = RaucInstaller::connect(&Bus::Address(self.address.clone()))
            .await
            .unwrap();
        let t0 = wall_clock();
        loop {
            match installer.status().await {
                Ok(s) => {
                    assert_eq!(s.boot_slot, slot);
                    break;
                }
                Err(e) if t0.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rauc service not up: {e}; log: {}", self.rauc_log(&slot)),
            }
        }
        (slot, installer)
    }

    /// The first boot from the factory slot A, which the health gate marks good (that
    /// restores the attempt the boot used up).
    pub async fn factory_boot(&mut self) -> RaucInstaller {
        let (slot, installer) = self.boot().await;
        assert_eq!(slot, "A");
        let m = installer
            .mark(MarkState::Good, SlotRef::Booted)
            .await
            .unwrap();
        assert_eq!(m.slot, "rootfs.0");
        assert_eq!(
            self.boot_state(),
            BootState {
                order: "A B".into(),
                a_left: 3,
                b_left: 3
            }
        );
        installer
    }

    pub fn rauc_log(&self, slot: &str) -> String {
        std::fs::read_to_string(self.path(&format!("rauc-{slot}.log"))).unwrap_or_default()
    }

    pub fn stop_rauc(&mut self) {
        if let Some(mut c) = self.rauc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A service killed mid-install leaves its bundle mounted.
        let bundle = self.path("mnt/bundle");
        if bundle.exists() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&bundle)
                .stderr(Stdio::null())
                .status();
        }
    }

    /// A bundle with a `rootfs.img` of `image`, for `compatible`, signed by key pair `signer`.
    /// `plain` format: installing a `verity` bundle needs device-mapper (dm-verity), which
    /// CI's kernel lacks ("Failed to open /dev/mapper/control"); the signature and
    /// compatible checks under test are the same for both formats.
    pub fn bundle(&self, name: &str, compatible: &str, signer: &str, image: &[u8]) -> PathBuf {
        let input = self.path(&format!("{name}-in"));
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("rootfs.img"), image).unwrap();
        std::fs::write(
            input.join("manifest.raucm"),
            format!(
                "[update]\ncompatible={compatible}\nversion=2.0\n\n[bundle]\nformat=plain\n\n\
                 [image.rootfs]\nfilename=rootfs.img\n"
            ),
        )
        .unwrap();
        let out = self.path(&format!("{name}.raucb"));
        run(Command::new("rauc")
            .arg("bundle")
            .arg(format!(
                "--cert={}",
                self.path(&format!("{signer}.cert.pem")).display()
            ))
            .arg(format!(
                "--key={}",
                self.path(&format!("{signer}.key.pem")).display()
            ))
            .arg(&input)
            .arg(&out));
        out
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop_rauc();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// A recognisable image that does not compress (verity bundles must be larger than a
/// block after squashfs): xorshift bytes, so a partial or shifted write shows.
pub fn image(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

pub fn slot_bytes(rig: &Rig, name: &str) -> Vec<u8> {
    std::fs::read(rig.path(name)).unwrap()
}

/// Installs a good bundle from slot A; returns the image written.
pub async fn install_good(rig: &Rig, installer: &RaucInstaller) -> Vec<u8> {
    let img = image(256 * 1024);
    let bundle = rig.bundle("good", COMPATIBLE, "release", &img);
    let mut seen = Vec::new();
    let installed = installer
        .install(&bundle, |p| seen.push(p.clone()))
        .await
        .unwrap_or_else(|e| panic!("install failed: {e}; log: {}", rig.rauc_log("A")));
    assert_eq!(installed.primary.as_deref(), Some("rootfs.1"));
    assert!(
        seen.iter()
            .any(|p| p.message.contains("Copying image to rootfs.1")),
        "progress: {seen:?}"
    );
    img
}

/// Kills the daemon when the test ends, passed or not.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Rig {
    /// pbxd with the RAUC backend on this rig's bus, its data in `pbx-data`, every
    /// listener on a free loopback port, quiet; `extra` are the test's own arguments.
    pub fn pbxd(&self, extra: &[&str]) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_pbxd"))
                .arg("--data-dir")
                .arg(self.path("pbx-data"))
                .args(["--sip-listen", "127.0.0.1:0"])
                .args(["--http-listen", "127.0.0.1:0"])
                .args(["--https-listen", "127.0.0.1:0"])
                .args(["--update-backend", "rauc"])
                .args(["--rauc-dbus-address", &self.address])
                .args(extra)
                .env("PBXD_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}
