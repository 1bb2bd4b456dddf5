//! The real `pbxctl` binary against temporary data directories.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pbx_sip::auth::{ha1, Algorithm};
use pbxd::store::{AuditCtx, Binding, Store};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with_stdin(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().expect("pbxctl was killed by a signal"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn run(dir: &Path, args: &[&str]) -> Run {
    run_with_stdin(dir, args, None)
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let r = run(dir, args);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

#[track_caller]
fn fails(dir: &Path, args: &[&str], code: i32, stderr: &str) {
    let r = run(dir, args);
    assert_eq!(r.code, code, "{args:?}: stderr {:?}", r.stderr);
    assert_eq!(r.stderr, stderr, "{args:?}");
    assert_eq!(r.stdout, "", "{args:?}");
}

#[test]
fn add_list_set_password_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let r = run(
        &dir,
        &[
            "extension",
            "add",
            "101",
            "--password",
            "hunter2-long",
            "--name",
            "Reception Desk",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "added extension 101\n");
    assert!(
        r.stderr.starts_with("pbxctl: created new database "),
        "{}",
        r.stderr
    );
    ok(
        &dir,
        &["extension", "add", "20", "--password", "password-twenty"],
    );

    let list = ok(&dir, &["extension", "list"]);
    assert_eq!(
        list,
        "NUMBER  NAME            STATUS\n\
         101     Reception Desk  enabled\n\
         20                      enabled\n"
    );
    let ext = Store::open(&dir)
        .unwrap()
        .get_extension("101")
        .unwrap()
        .unwrap();
    assert_eq!(
        ext.ha1_md5,
        ha1(Algorithm::Md5, "101", "pbx.local", "hunter2-long")
    );
    assert!(!list.contains(&ext.ha1_md5) && !list.contains(&ext.ha1_sha256));

    assert_eq!(
        ok(
            &dir,
            &["extension", "set-password", "101", "a-new-password"]
        ),
        "password of extension 101 changed\n"
    );
    let ext = Store::open(&dir)
        .unwrap()
        .get_extension("101")
        .unwrap()
        .unwrap();
    assert_eq!(
        ext.ha1_sha256,
        ha1(Algorithm::Sha256, "101", "pbx.local", "a-new-password")
    );

    assert_eq!(
        ok(&dir, &["extension", "remove", "20"]),
        "removed extension 20\n"
    );
    assert_eq!(
        ok(&dir, &["extension", "list"]),
        "NUMBER  NAME            STATUS\n101     Reception Desk  enabled\n"
    );

    // Every change is in the audit log, attributed to pbxctl, without the passwords.
    let audit = Store::open(&dir).unwrap().audit_entries(10).unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "extension.remove",
            "extension.set_password",
            "extension.add",
            "extension.add"
        ]
    );
    assert!(audit
        .iter()
        .all(|e| e.actor == "pbxctl" && e.source.starts_with("cli")));
    assert!(audit.iter().all(|e| !e.detail.contains("password")));
}

#[test]
fn passwords_can_come_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let r = run_with_stdin(
        dir,
        &["extension", "add", "102", "--password", "-"],
        Some("from-stdin-pw\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run_with_stdin(
        dir,
        &["extension", "add", "103", "--password", "-"],
        Some("crlf-password\r\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let store = Store::open(dir).unwrap();
    assert_eq!(
        store.get_extension("102").unwrap().unwrap().ha1_md5,
        ha1(Algorithm::Md5, "102", "pbx.local", "from-stdin-pw")
    );
    assert_eq!(
        store.get_extension("103").unwrap().unwrap().ha1_md5,
        ha1(Algorithm::Md5, "103", "pbx.local", "crlf-password")
    );

    let r = run_with_stdin(
        dir,
        &["extension", "set-password", "102", "-"],
        Some("changed-via-stdin"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        store.get_extension("102").unwrap().unwrap().ha1_md5,
        ha1(Algorithm::Md5, "102", "pbx.local", "changed-via-stdin")
    );

    let r = run_with_stdin(
        dir,
        &["extension", "add", "104", "--password", "-"],
        Some(""),
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "pbxctl: error: no password on stdin\n")
    );
    let r = run_with_stdin(
        dir,
        &["extension", "add", "104", "--password", "-"],
        Some("short\n"),
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            2,
            "pbxctl: error: invalid password: shorter than 8 characters\n"
        )
    );

    let help = run(dir, &["extension", "add", "--help"]).stdout;
    assert!(
        help.contains("or `-` to read it from standard input"),
        "{help}"
    );
}

#[test]
fn argument_and_value_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &["extension", "add", "101", "--password", "password-101"],
    );

    fails(
        dir,
        &["extension", "add", "101", "--password", "another-password"],
        4,
        "pbxctl: error: extension 101 already exists\n",
    );
    fails(
        dir,
        &["extension", "add", "0101", "--password", "password-0101"],
        2,
        "pbxctl: error: invalid extension number \"0101\": must not start with 0 (outside-line prefix)\n",
    );
    fails(
        dir,
        &["extension", "add", "112", "--password", "password-112"],
        2,
        "pbxctl: error: invalid extension number \"112\": overlaps an emergency number (110, 112, 124124)\n",
    );
    fails(
        dir,
        &["extension", "add", "1x", "--password", "password-1x"],
        2,
        "pbxctl: error: invalid extension number \"1x\": only digits 0-9 are allowed\n",
    );
    fails(
        dir,
        &["extension", "add", "105", "--password", "short"],
        2,
        "pbxctl: error: invalid password: shorter than 8 characters\n",
    );
    fails(
        dir,
        &["extension", "set-password", "101", "short"],
        2,
        "pbxctl: error: invalid password: shorter than 8 characters\n",
    );
    fails(
        dir,
        &[
            "extension",
            "add",
            "106",
            "--password",
            "password-106",
            "--name",
            &"n".repeat(65),
        ],
        2,
        "pbxctl: error: invalid name: longer than 64 characters\n",
    );
    fails(
        dir,
        &["extension", "remove", "199"],
        3,
        "pbxctl: error: extension 199 does not exist\n",
    );
    fails(
        dir,
        &["extension", "set-password", "199", "password-199"],
        3,
        "pbxctl: error: extension 199 does not exist\n",
    );

    // clap's own usage errors exit with 2 too.
    let r = run(dir, &["extension", "add", "107"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--password <PW>"), "{}", r.stderr);
    let r = run(dir, &["blocks", "unblock", "not-an-ip"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("invalid IP address syntax"),
        "{}",
        r.stderr
    );

    // None of the failures changed anything.
    let numbers: Vec<String> = Store::open(dir)
        .unwrap()
        .list_extensions()
        .unwrap()
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["101"]);
}

#[test]
fn unusable_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    fails(
        &file,
        &["extension", "add", "101", "--password", "password-101"],
        5,
        &format!(
            "pbxctl: error: data directory {}: not a directory\n",
            file.display()
        ),
    );

    // Read commands never create a database where there was none (typo in --data-dir).
    let empty = tmp.path().join("empty");
    for args in [
        &["extension", "list"][..],
        &["extension", "remove", "101"],
        &["registrations"],
        &["blocks", "list"],
    ] {
        fails(
            &empty,
            args,
            5,
            &format!(
                "pbxctl: error: no database at {}/pbx.db (check --data-dir; `pbxctl extension add` or pbxd creates it)\n",
                empty.display()
            ),
        );
    }
    assert!(!empty.exists());

    // A corrupt database is reported, not replaced.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("pbx.db"), b"garbage, not a database".repeat(100)).unwrap();
    let r = run(&bad, &["extension", "list"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
}

#[test]
fn schema_from_a_newer_firmware_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    rusqlite::Connection::open(Store::db_path(tmp.path()))
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    fails(
        tmp.path(),
        &["extension", "list"],
        5,
        &format!(
            "pbxctl: error: database schema version 99 is newer than this pbxd ({}); refusing to start\n",
            pbxd::store::SCHEMA_VERSION
        ),
    );
}

#[allow(clippy::disallowed_methods)] // the test compares with pbxctl's own clock
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn registrations_and_blocks_while_the_daemon_has_the_file_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Stands in for a running pbxd: it keeps its connection open throughout.
    let mut daemon = Store::open(dir).unwrap();
    let now = now_unix();
    daemon
        .save_binding(&Binding {
            aor: "sip:101@pbx.local".into(),
            contact: "sip:101@192.0.2.10:5062".into(),
            instance: None,
            call_id: "abc@192.0.2.10".into(),
            cseq: 3,
            expires_at: now + 3600,
            transport: "udp".into(),
            source: "192.0.2.10:5062".parse().unwrap(),
            user_agent: None,
            q_milli: None,
        })
        .unwrap();
    let out = ok(dir, &["registrations"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        "AOR                CONTACT                  SOURCE               EXPIRES"
    );
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &cols[..3],
        [
            "sip:101@pbx.local",
            "sip:101@192.0.2.10:5062",
            "udp:192.0.2.10:5062"
        ]
    );
    let left: i64 = cols[3].strip_suffix('s').unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");

    // Extensions added by pbxctl are visible to the open daemon connection at once.
    ok(
        dir,
        &["extension", "add", "101", "--password", "password-101"],
    );
    assert!(daemon.get_extension("101").unwrap().is_some());

    let by = AuditCtx {
        actor: "pbxd",
        source: "sip",
        now_unix: now,
    };
    daemon
        .add_block(
            &by,
            "198.51.100.7".parse().unwrap(),
            "10 failed REGISTERs",
            now + 600,
        )
        .unwrap();
    let out = ok(dir, &["blocks", "list"]);
    assert!(
        out.starts_with("IP            REMAINING  REASON\n198.51.100.7  "),
        "{out}"
    );
    assert!(out.ends_with("  10 failed REGISTERs\n"), "{out}");
    assert_eq!(
        ok(dir, &["blocks", "unblock", "198.51.100.7"]),
        "unblocked 198.51.100.7\n"
    );
    assert!(!daemon
        .is_blocked("198.51.100.7".parse().unwrap(), now)
        .unwrap());
    fails(
        dir,
        &["blocks", "unblock", "198.51.100.7"],
        3,
        "pbxctl: error: 198.51.100.7 is not blocked\n",
    );
    assert_eq!(ok(dir, &["blocks", "list"]), "IP  REMAINING  REASON\n");
}

#[test]
fn waits_for_a_write_lock_held_by_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    // Another process (pbxd) is in the middle of a write transaction.
    let daemon = rusqlite::Connection::open(Store::db_path(tmp.path())).unwrap();
    daemon.execute_batch("BEGIN IMMEDIATE").unwrap();
    daemon
        .execute(
            "INSERT INTO settings (key, value) VALUES ('probe', 'x')",
            [],
        )
        .unwrap();
    // Reading needs no lock in WAL mode: listing works at once.
    #[allow(clippy::disallowed_methods)] // wall-clock bound on a real subprocess
    let started = std::time::Instant::now();
    assert_eq!(
        ok(tmp.path(), &["extension", "list"]),
        "NUMBER  NAME  STATUS\n"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["extension", "add", "101", "--password", "password-101"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "pbxctl must wait, not fail"
    );
    daemon.execute_batch("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(tmp.path()).unwrap();
    assert!(store.get_extension("101").unwrap().is_some());
    assert_eq!(store.setting("probe").unwrap().as_deref(), Some("x"));
}
