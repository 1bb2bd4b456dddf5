//! `pbxctl port set` and `pbxctl ports` (the real binary) against a temporary data
//! directory; the live columns come from the status rows pbxd writes (written here
//! through the store as pbxd would).
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use pbxd::store::{PortStatusRow, Store};

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn cols(out: &str, port: &str) -> Vec<String> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(port))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn port_set_then_ports_shows_settings_and_live_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (code, out, err) = run(
        dir,
        &[
            "port",
            "set",
            "2",
            "--number",
            "31",
            "--name",
            "Lager",
            "--country",
            "us",
            "--call-waiting",
            "off",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "port 2 changed\n");
    // Without pbxd: settings, the country's caller-ID mode, no live state.
    let (code, out, _) = run(dir, &["ports"]);
    assert_eq!(code, 0);
    assert_eq!(
        cols(&out, "2"),
        ["2", "31", "Lager", "US", "bell202", "off", "-", "-", "(pbxd", "not", "running)"]
    );
    // Only the options given change.
    let (code, _, err) = run(dir, &["port", "set", "2", "--cid", "dtmf"]);
    assert_eq!(code, 0, "{err}");
    // pbxd writes live state: port 1 off hook with dial tone, port 2 faulty.
    let mut db = Store::open(dir).unwrap();
    let row = |port: u32, number: &str, faulty: Option<&str>| PortStatusRow {
        port,
        number: number.into(),
        hook: "off".into(),
        linefeed: "forward".into(),
        call: "dial tone".into(),
        faulty: faulty.map(str::to_owned),
        updated_at: 1_763_700_000,
    };
    db.write_port_status(&row(1, "21", None)).unwrap();
    db.write_port_status(&row(2, "31", Some("wrong chip ID 0x00 (expected 0xc3)")))
        .unwrap();
    let (code, out, _) = run(dir, &["ports"]);
    assert_eq!(code, 0);
    assert_eq!(
        cols(&out, "1"),
        ["1", "21", "-", "DE", "v23", "on", "off", "forward", "dial", "tone"]
    );
    assert_eq!(
        cols(&out, "2"),
        [
            "2",
            "31",
            "Lager",
            "US",
            "dtmf",
            "off",
            "-",
            "-",
            "FAULTY:",
            "wrong",
            "chip",
            "ID",
            "0x00",
            "(expected",
            "0xc3)"
        ]
    );
}

#[test]
fn bad_port_settings_exit_2_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &["port", "set", "1", "--country", "XX"],
            "unknown country \"XX\" (one of DE, AT, CH, GB, FR, NL, US)",
        ),
        (
            &["port", "set", "1", "--cid", "fsk"],
            "unknown caller-ID mode \"fsk\" (one of off, bell202, v23, dtmf)",
        ),
        (&["port", "set", "0"], "0 is not a port number (1 to 64)"),
        (
            &["port", "set", "1", "--number", "12a"],
            "only digits 0-9 are allowed",
        ),
    ];
    for (args, msg) in cases {
        let (code, _, err) = run(dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // A number already taken.
    let (code, _, err) = run(dir, &["port", "set", "1", "--number", "21"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(dir, &["port", "set", "2", "--number", "21"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("number 21 is already another port"), "{err}");
}
