//! Hardware in the loop on a real board (issue 4): pbxd drives the board's SLICs
//! (`--hardware board --board-file $PBX_HIL_BOARD`) and a test phone wired to port 2 (a
//! voice modem on `$PBX_HIL_PHONE`, see tests/hil/README.md) checks what a user gets:
//! the ports come up, a lifted handset gets dial tone and its DTMF digits dial a SIP
//! phone, and a call to the port rings it with caller ID.
//!
//! The emulator runs the same checks in `line::hil_tests`, `line::flash_hil_tests` and
//! tests/e2e/tests/analog*.rs. Without `PBX_HIL_BOARD` every test here is ignored, so
//! `cargo test`/`cargo nextest` count them as skipped (never as passed);
//! scripts/test.sh prints why. Run on the bench:
//!
//! ```sh
//! cargo build -p pbxd --bins
//! PBX_HIL_BOARD=/etc/pbx/box.board PBX_HIL_PHONE=/dev/ttyACM0 \
//!   cargo test -p pbx-e2e --test hil -- --ignored --test-threads=1 --nocapture
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use pbx_e2e::{Pbx, Phone, PhoneConfig};

const SKIP: &str =
    "hardware in the loop: needs PBX_HIL_BOARD and PBX_HIL_PHONE (tests/hil/README.md)";

/// The bench as the environment describes it.
struct Bench {
    board: PathBuf,
    phone: PathBuf,
}

impl Bench {
    /// The bench, or a failure that says what is missing (these tests run only when
    /// asked for with `--ignored`, so a missing bench is an error, not a pass).
    fn from_env() -> Bench {
        let var = |name: &str| match std::env::var_os(name) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => panic!("{name} is not set: {SKIP}"),
        };
        let bench = Bench {
            board: var("PBX_HIL_BOARD"),
            phone: var("PBX_HIL_PHONE"),
        };
        assert!(
            bench.board.is_file(),
            "PBX_HIL_BOARD={} is no file",
            bench.board.display()
        );
        assert!(
            bench.phone.exists(),
            "PBX_HIL_PHONE={} does not exist",
            bench.phone.display()
        );
        bench
    }

    /// pbxd on the board, ports 21 and 22, SIP extension 1001 for the far end.
    fn pbx(&self) -> Pbx {
        let pbx = Pbx::builder()
            .extension("1001", "s3cret-1001")
            .arg("--digest-algorithms")
            .arg("md5")
            .arg("--hardware")
            .arg("board")
            .arg("--board-file")
            .arg(&self.board.to_string_lossy())
            .start();
        // Both ports up, none faulty.
        let mut ports = String::new();
        for _ in 0..50 {
            ports = pbx.ctl(&["ports"]);
            let idle = ports.lines().filter(|l| l.ends_with("idle")).count();
            if idle >= 2 && !ports.contains("FAULTY") {
                return pbx;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("the board's ports do not come up:\n{ports}\n{}", pbx.log());
    }
}

/// The test phone: a voice modem (FXO side) on a serial line, wired to port 2.
struct Modem {
    tx: File,
    rx: mpsc::Receiver<String>,
}

impl Modem {
    fn open(dev: &PathBuf) -> Modem {
        let ok = Command::new("stty")
            .arg("-F")
            .arg(dev)
            .args(["115200", "raw", "-echo", "-hupcl", "clocal"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "stty cannot set up {}", dev.display());
        let tx = File::options()
            .read(true)
            .write(true)
            .open(dev)
            .unwrap_or_else(|e| panic!("test phone {}: {e}", dev.display()));
        let reader = tx.try_clone().expect("serial handle clones");
        let (line_tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let line = line.trim().to_owned();
                if !line.is_empty() && line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Modem { tx, rx };
        m.at("ATZ", "OK", Duration::from_secs(5));
        // Verbose results, echo off, wait for dial tone before dialling (X4),
        // formatted caller ID (NMBR = ...).
        m.at("ATE0V1X4", "OK", Duration::from_secs(2));
        m.at("AT+VCID=1", "OK", Duration::from_secs(2));
        m
    }

    /// Sends `cmd` and waits for a line containing `want`; returns all lines read.
    fn at(&mut self, cmd: &str, want: &str, timeout: Duration) -> Vec<String> {
        while self.rx.try_recv().is_ok() {}
        write!(self.tx, "{cmd}\r").expect("write to the test phone");
        self.expect(want, timeout)
    }

    fn expect(&mut self, want: &str, timeout: Duration) -> Vec<String> {
        let mut seen = Vec::new();
        let end = pbx_e2e::now() + timeout;
        while let Some(left) = end.checked_duration_since(pbx_e2e::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(want);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("test phone: no {want:?} within {timeout:?}; it said {seen:?}");
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        let _ = write!(self.tx, "ATH\r");
    }
}

#[test]
#[ignore = "hardware in the loop: needs PBX_HIL_BOARD and PBX_HIL_PHONE (tests/hil/README.md)"]
fn hil_off_hook_gets_dial_tone_and_dtmf_dials_a_sip_phone() {
    let bench = Bench::from_env();
    let pbx = bench.pbx();
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new("1001", "s3cret-1001", &["PCMA/8000/1"], 440.0),
    );
    let mut modem = Modem::open(&bench.phone);
    // X4: the modem dials only after it detected dial tone ("NO DIALTONE" otherwise);
    // the digits go out as DTMF and must be decoded by pbxd's detector.
    let said = modem.at("ATDT1001;", "OK", Duration::from_secs(15));
    assert!(!said.iter().any(|l| l.contains("NO DIALTONE")), "{said:?}");
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(15))
            .is_some(),
        "the SIP phone is not called by port 2: {:?}\n{}",
        phone.events(),
        pbx.log()
    );
    modem.at("ATH", "OK", Duration::from_secs(5));
    let cdr = pbx.one_record(&["answered"]);
    assert_eq!(cdr.get(0, "caller"), "22");
    assert_eq!(cdr.get(0, "destination"), "1001");
}

#[test]
#[ignore = "hardware in the loop: needs PBX_HIL_BOARD and PBX_HIL_PHONE (tests/hil/README.md)"]
fn hil_a_call_to_the_port_rings_with_caller_id() {
    let bench = Bench::from_env();
    let pbx = bench.pbx();
    // Voice modems decode Bell 202 caller ID (Telcordia); the port sends that.
    let out = pbx.ctl(&["port", "set", "2", "--cid", "bell202"]);
    assert_eq!(out.trim(), "port 2 changed");
    thread::sleep(Duration::from_millis(2500));
    let mut modem = Modem::open(&bench.phone);
    let phone = Phone::start(
        &pbx,
        PhoneConfig::new("1001", "s3cret-1001", &["PCMA/8000/1"], 440.0),
    );
    phone.command("dial", "22").expect("dial accepted");
    modem.expect("RING", Duration::from_secs(10));
    // Caller ID goes out between the first and the second ring.
    let said = modem.expect("NMBR", Duration::from_secs(10));
    let nmbr = said.last().cloned().unwrap_or_default();
    assert!(
        nmbr.contains("1001"),
        "caller ID on port 2: {nmbr:?} ({said:?})"
    );
    let _ = phone.command("hangup", "");
}
