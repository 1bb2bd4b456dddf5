//! The real `pbxctl` binary against temporary data directories.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pbx_sip::auth::{ha1, Algorithm};
use pbxd::store::{
    to_csv_row, AuditCtx, Binding, CallDirection, CallRecord, CdrQuery, Disposition, HangupSide,
    Store,
};

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
        &["cdr", "list"],
        &["ringgroup", "list"],
        &["site", "show"],
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

#[test]
fn call_settings_ring_groups_and_site() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for n in ["101", "102", "103"] {
        ok(
            dir,
            &[
                "extension",
                "add",
                n,
                "--password",
                &format!("password-{n}"),
            ],
        );
    }
    assert_eq!(
        ok(dir, &["extension", "show", "101"]),
        "number:            101\n\
         name:\n\
         status:            enabled\n\
         outbound class:    national\n\
         clir:              off\n\
         dnd:               off\n\
         forward always:    off\n\
         forward busy:      off\n\
         forward no answer: off (20s)\n\
         pickup group:      off\n\
         ring groups:\n"
    );
    assert_eq!(
        ok(
            dir,
            &[
                "extension",
                "set",
                "101",
                "--class",
                "international",
                "--clir",
                "on",
                "--forward-noanswer",
                "102",
                "--noanswer-secs",
                "15",
                "--pickup-group",
                "3"
            ]
        ),
        "call settings of extension 101 changed\n"
    );
    // Options not given keep their value.
    ok(dir, &["extension", "set", "101", "--dnd", "on"]);
    let show = ok(dir, &["extension", "show", "101"]);
    for line in [
        "outbound class:    international\n",
        "clir:              on\n",
        "dnd:               on\n",
        "forward no answer: 102 after 15s\n",
        "pickup group:      3\n",
    ] {
        assert!(show.contains(line), "{line:?} in {show}");
    }

    fails(
        dir,
        &[
            "extension",
            "set",
            "101",
            "--forward-busy",
            "+4917612345678",
        ],
        2,
        "pbxctl: error: forwarding to the external number +4917612345678 is not allowed on \
         this site (allow_external_forwarding is off); allow it with \
         `pbxctl site set --allow-external-forwarding on`\n",
    );
    fails(
        dir,
        &["extension", "set", "101"],
        2,
        "pbxctl: error: nothing to change: give at least one option (see --help)\n",
    );
    fails(
        dir,
        &["extension", "set", "101", "--noanswer-secs", "200"],
        2,
        "pbxctl: error: invalid no-answer time: 200 s is not 5 to 120 s\n",
    );
    fails(
        dir,
        &["extension", "set", "101", "--pickup-group", "0"],
        2,
        "pbxctl: error: invalid pickup group \"0\": must be 1 to 99 or off\n",
    );
    fails(
        dir,
        &["extension", "set", "101", "--forward-always", "150"],
        2,
        "pbxctl: error: invalid forward target: 150 is neither an extension nor a ring group\n",
    );
    fails(
        dir,
        &["extension", "set", "101", "--forward-always", "101"],
        2,
        "pbxctl: error: invalid forward target: 101 cannot forward to itself\n",
    );
    fails(
        dir,
        &["extension", "set", "199", "--dnd", "on"],
        3,
        "pbxctl: error: extension 199 does not exist\n",
    );
    fails(
        dir,
        &["extension", "show", "199"],
        3,
        "pbxctl: error: extension 199 does not exist\n",
    );
    let r = run(dir, &["extension", "set", "101", "--class", "galactic"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("possible values: internal, local, national, international"),
        "{}",
        r.stderr
    );

    // Site settings, and external forwarding once allowed.
    assert_eq!(
        ok(dir, &["site", "show"]),
        "country code:              49\n\
         area code:                 none\n\
         outside-line prefix:       none\n\
         billing tick:              60s\n\
         allow external forwarding: off\n"
    );
    assert_eq!(
        ok(
            dir,
            &[
                "site",
                "set",
                "--area-code",
                "211",
                "--outside-prefix",
                "0",
                "--allow-external-forwarding",
                "on"
            ]
        ),
        "site settings changed\n"
    );
    assert_eq!(
        ok(dir, &["site", "show"]),
        "country code:              49\n\
         area code:                 211\n\
         outside-line prefix:       0\n\
         billing tick:              60s\n\
         allow external forwarding: on\n"
    );
    fails(
        dir,
        &["site", "set", "--country-code", "049"],
        2,
        "pbxctl: error: invalid country code: must not start with 0 (give it without 00 or +)\n",
    );
    fails(
        dir,
        &["site", "set", "--outside-prefix", "9"],
        2,
        "pbxctl: error: invalid outside-line prefix: must be none or 0\n",
    );
    ok(
        dir,
        &[
            "extension",
            "set",
            "101",
            "--forward-busy",
            "+4917612345678",
        ],
    );
    assert!(ok(dir, &["extension", "show", "101"]).contains("forward busy:      +4917612345678\n"));
    ok(dir, &["extension", "set", "101", "--forward-busy", "off"]);
    ok(
        dir,
        &[
            "site",
            "set",
            "--area-code",
            "none",
            "--outside-prefix",
            "none",
        ],
    );
    assert!(ok(dir, &["site", "show"]).contains("area code:                 none\n"));

    // Ring groups.
    assert_eq!(
        ok(
            dir,
            &[
                "ringgroup",
                "add",
                "600",
                "--name",
                "Sales",
                "--strategy",
                "ordered",
                "--members",
                "102, 101",
                "--ring-secs",
                "15",
                "--noanswer",
                "103"
            ]
        ),
        "added ring group 600\n"
    );
    ok(dir, &["ringgroup", "add", "610", "--members", "103"]);
    assert_eq!(
        ok(dir, &["ringgroup", "list"]),
        "NUMBER  NAME   STRATEGY      RING  NOANSWER  MEMBERS\n\
         600     Sales  ordered       15s   103       102,101\n\
         610            simultaneous  20s   -         103\n"
    );
    assert_eq!(
        ok(dir, &["ringgroup", "show", "600"]),
        "number:    600\n\
         name:      Sales\n\
         strategy:  ordered\n\
         ring time: 15s\n\
         no answer: 103\n\
         members:   102,101\n"
    );
    assert!(ok(dir, &["extension", "show", "101"]).ends_with("ring groups:       600\n"));
    fails(
        dir,
        &["ringgroup", "add", "101", "--members", "102"],
        4,
        "pbxctl: error: number 101 is already an extension\n",
    );
    fails(
        dir,
        &["ringgroup", "add", "600", "--members", "102"],
        4,
        "pbxctl: error: ring group 600 already exists\n",
    );
    fails(
        dir,
        &["extension", "add", "600", "--password", "password-600"],
        4,
        "pbxctl: error: number 600 is already a ring group\n",
    );
    fails(
        dir,
        &["ringgroup", "add", "601", "--members", "101,150"],
        3,
        "pbxctl: error: extension 150 does not exist\n",
    );
    fails(
        dir,
        &["ringgroup", "add", "601", "--members", ""],
        2,
        "pbxctl: error: a ring group needs at least one member (--members 101,102)\n",
    );
    fails(
        dir,
        &[
            "ringgroup",
            "add",
            "601",
            "--members",
            "101",
            "--ring-secs",
            "400",
        ],
        2,
        "pbxctl: error: invalid ring time: 400 s is not 5 to 300 s\n",
    );
    // Forwarding to a ring group is fine.
    ok(dir, &["extension", "set", "103", "--forward-always", "600"]);
    assert_eq!(
        ok(
            dir,
            &[
                "ringgroup",
                "set",
                "600",
                "--members",
                "103",
                "--noanswer",
                "off",
                "--name",
                ""
            ]
        ),
        "ring group 600 changed\n"
    );
    assert_eq!(
        ok(dir, &["ringgroup", "show", "600"]),
        "number:    600\n\
         name:\n\
         strategy:  ordered\n\
         ring time: 15s\n\
         no answer: off\n\
         members:   103\n"
    );
    fails(
        dir,
        &["ringgroup", "set", "699", "--ring-secs", "30"],
        3,
        "pbxctl: error: ring group 699 does not exist\n",
    );
    assert_eq!(
        ok(dir, &["ringgroup", "remove", "600"]),
        "removed ring group 600\n"
    );
    fails(
        dir,
        &["ringgroup", "remove", "600"],
        3,
        "pbxctl: error: ring group 600 does not exist\n",
    );
    fails(
        dir,
        &["ringgroup", "show", "600"],
        3,
        "pbxctl: error: ring group 600 does not exist\n",
    );
    // Removing an extension takes it out of its groups.
    ok(dir, &["extension", "remove", "103"]);
    assert_eq!(
        ok(dir, &["ringgroup", "list"]),
        "NUMBER  NAME  STRATEGY      RING  NOANSWER  MEMBERS\n\
         610           simultaneous  20s   -         \n"
    );

    let actions: Vec<String> = Store::open(dir)
        .unwrap()
        .audit_entries(100)
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.action)
        .filter(|a| !a.starts_with("extension.add"))
        .collect();
    assert_eq!(
        actions,
        [
            "extension.call_settings",
            "extension.call_settings",
            "site.set",
            "extension.call_settings",
            "extension.call_settings",
            "site.set",
            "ring_group.add",
            "ring_group.add",
            "extension.call_settings",
            "ring_group.set",
            "ring_group.remove",
            "extension.remove",
        ]
    );
}

fn run_tz(dir: &Path, args: &[&str], tz: &str) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("TZ", tz)
        .output()
        .unwrap();
    Run {
        code: status.code().expect("pbxctl was killed by a signal"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

#[track_caller]
fn ok_utc(dir: &Path, args: &[&str]) -> String {
    let r = run_tz(dir, args, "UTC");
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

#[test]
fn cdr_list_table_csv_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 2025-11-21T04:40:00Z
    const MS0: i64 = 1_763_700_000_000;
    let answered = CallRecord {
        call_id: "a1@192.0.2.10".into(),
        caller: "101".into(),
        caller_name: Some("Reception".into()),
        dialled: "102".into(),
        normalised: None,
        destination: Some("102".into()),
        direction: CallDirection::Internal,
        route: Some("internal".into()),
        source_ip: Some("192.0.2.10".parse().unwrap()),
        dest_ip: Some("192.0.2.11".parse().unwrap()),
        start_ms: MS0,
        answer_ms: Some(MS0 + 3_000),
        end_ms: MS0 + 64_200,
        disposition: Disposition::Answered,
        reason: None,
        sip_status: None,
        hangup: Some(HangupSide::Caller),
        quality_caller: None,
        quality_callee: None,
        forwarded_by: None,
    };
    let blocked = CallRecord {
        call_id: "b2@192.0.2.12".into(),
        caller: "103".into(),
        caller_name: None,
        dialled: "0900123456".into(),
        normalised: Some("+49900123456".into()),
        destination: None,
        direction: CallDirection::Outbound,
        route: None,
        dest_ip: None,
        start_ms: MS0 + 3_600_000,
        answer_ms: None,
        end_ms: MS0 + 3_600_000,
        disposition: Disposition::Blocked,
        reason: Some("blocked range 0900".into()),
        sip_status: Some(403),
        hangup: Some(HangupSide::System),
        ..answered.clone()
    };
    let yesterday = CallRecord {
        call_id: "c3@192.0.2.10".into(),
        start_ms: MS0 - 86_400_000,
        answer_ms: None,
        end_ms: MS0 - 86_400_000 + 20_000,
        disposition: Disposition::NoAnswer,
        reason: Some("408 Request Timeout".into()),
        sip_status: Some(408),
        ..answered.clone()
    };
    {
        let mut store = Store::open(dir).unwrap();
        for r in [&yesterday, &answered, &blocked] {
            store.insert_call_record(r).unwrap();
        }
    }

    let table = "TIME                  CALLER  DIALLED     DESTINATION  RESULT     BILLABLE  REASON\n\
                 2025-11-21T05:40:00Z  103     0900123456               blocked    0:00      blocked range 0900\n\
                 2025-11-21T04:40:00Z  101     102         102          answered   1:02\n\
                 2025-11-20T04:40:00Z  101     102         102          no_answer  0:00      408 Request Timeout\n";
    // Trailing spaces of the padded, empty last column are part of the table format.
    let table = table.replace("1:02\n", "1:02      \n");
    assert_eq!(ok_utc(dir, &["cdr", "list"]), table);

    // Local time follows TZ (a POSIX rule, no tzdata needed): CET in November.
    let r = run_tz(
        dir,
        &["cdr", "list", "--limit", "1"],
        "CET-1CEST,M3.5.0,M10.5.0/3",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("2025-11-21T06:40:00+01:00  103"),
        "{}",
        r.stdout
    );

    let rows = |args: &[&str]| -> Vec<String> {
        ok_utc(dir, args)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        rows(&["cdr", "list", "--since", "2025-11-21"]),
        ["2025-11-21T05:40:00Z 103", "2025-11-21T04:40:00Z 101"]
    );
    assert_eq!(
        rows(&["cdr", "list", "--since", "2025-11-21T06:00:00+01:00"]),
        ["2025-11-21T05:40:00Z 103"]
    );
    assert_eq!(
        rows(&[
            "cdr",
            "list",
            "--since",
            "1763700000",
            "--until",
            "1763700001"
        ]),
        ["2025-11-21T04:40:00Z 101"]
    );
    assert_eq!(
        rows(&["cdr", "list", "--extension", "102"]),
        ["2025-11-21T04:40:00Z 101", "2025-11-20T04:40:00Z 101"]
    );
    assert_eq!(
        rows(&["cdr", "list", "--limit", "1", "--offset", "1"]),
        ["2025-11-21T04:40:00Z 101"]
    );
    // In Berlin, 2025-11-21 starts at 2025-11-20T23:00:00Z.
    let r = run_tz(
        dir,
        &[
            "cdr",
            "list",
            "--since",
            "2025-11-21",
            "--until",
            "2025-11-22",
        ],
        "CET-1CEST,M3.5.0,M10.5.0/3",
    );
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);

    // CSV: every column, UTC, CRLF line ends, billed per the site's tick.
    let stored = Store::open(dir)
        .unwrap()
        .call_records(&CdrQuery::default())
        .unwrap();
    let csv = ok_utc(dir, &["cdr", "list", "--csv"]);
    let mut want = format!("{}\r\n", pbxd::store::cdr_csv_header());
    for r in &stored {
        want.push_str(&to_csv_row(r, 60));
        want.push_str("\r\n");
    }
    assert_eq!(csv, want);
    assert!(csv.contains(",'+49900123456,"), "formula guard: {csv}");
    assert!(csv.contains(",65,62,120,internal,"), "{csv}");
    ok(dir, &["site", "set", "--billing-tick", "1"]);
    assert!(ok_utc(dir, &["cdr", "list", "--csv"]).contains(",65,62,62,internal,"));

    for bad in ["yesterday", "2025-13-01", "2025-11-21 10:00", ""] {
        fails(
            dir,
            &["cdr", "list", "--since", bad],
            2,
            &format!(
                "pbxctl: error: invalid time {bad:?}: give RFC 3339 (2026-11-21T09:00:00+01:00), \
                 a date (2026-11-21) or Unix seconds\n"
            ),
        );
    }
}

/// A forgotten web administrator password is reset from the box's shell, and the
/// account works with the new one (checked against the stored argon2id hash).
#[test]
fn web_user_password_reset_and_enable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let mut store = Store::open(dir).unwrap();
        let by = AuditCtx {
            actor: "test",
            source: "test",
            now_unix: now_unix(),
        };
        let hash = pbxd::web::auth::hash_password("the old passphrase").unwrap();
        store.add_first_admin(&by, "admin", &hash).unwrap();
        store.set_web_user_disabled(&by, "admin", true).unwrap();
    }
    let list = ok(dir, &["web-user", "list"]);
    assert!(
        list.contains("admin") && list.contains("disabled"),
        "{list}"
    );
    assert!(!list.contains("argon2"), "hashes never printed");

    let r = run_with_stdin(
        dir,
        &["web-user", "set-password", "admin", "-"],
        Some("a brand new passphrase\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    ok(dir, &["web-user", "enable", "admin"]);
    let store = Store::open(dir).unwrap();
    let user = store.get_web_user("admin").unwrap().unwrap();
    assert!(!user.disabled);
    assert!(pbxd::web::auth::verify_password(
        "a brand new passphrase",
        &user.password_hash
    ));
    assert!(!pbxd::web::auth::verify_password(
        "the old passphrase",
        &user.password_hash
    ));
    let r = run(
        dir,
        &["web-user", "set-password", "nobody", "a long passphrase"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = run(dir, &["web-user", "set-password", "admin", "short"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let audit = store.audit_entries(100).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "pbxctl" && e.action.contains("password")),
        "the reset is audited: {audit:?}"
    );
}

#[test]
fn numbers_emergency_caller_id_and_toll_fraud_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(
        &dir,
        &["extension", "add", "101", "--password", "hunter2-long"],
    );
    let added = ok(
        &dir,
        &[
            "numbers",
            "add",
            "+4921112345",
            "--trunk",
            "cloud",
            "--to",
            "101",
            "--callers",
            "all",
            "--default",
        ],
    );
    assert_eq!(added, "added number +4921112345\n");
    let list = ok(&dir, &["numbers", "list"]);
    assert!(list.contains("+4921112345  cloud  101    all"), "{list}");
    fails(
        &dir,
        &["numbers", "add", "021112345", "--trunk", "cloud"],
        2,
        "pbxctl: error: invalid number: \"021112345\" must be in E.164 form with +, e.g. +4921112345\n",
    );
    fails(
        &dir,
        &["numbers", "remove", "+4921199999"],
        3,
        "pbxctl: error: +4921199999 is not one of the account's numbers\n",
    );
    let e = ok(
        &dir,
        &[
            "site",
            "emergency",
            "--caller-id",
            "+4921112340",
            "--address",
            "Hauptstr. 1",
        ],
    );
    assert!(
        e.contains("+4921112340") && e.contains("Hauptstr. 1"),
        "{e}"
    );

    // A lock set by the daemon's toll-fraud protection is lifted by an admin.
    fails(
        &dir,
        &["numbers", "unlock", "101"],
        3,
        "pbxctl: error: extension 101 is not locked\n",
    );
    {
        let mut db = Store::open(&dir).unwrap();
        let by = AuditCtx {
            actor: "pbxd",
            source: "toll-fraud protection",
            now_unix: now_unix(),
        };
        assert!(db
            .lock_external(&by, "101", "more than 5 external calls in a minute")
            .unwrap());
    }
    let shown = ok(&dir, &["numbers", "external", "101"]);
    assert!(
        shown.contains("locked:           yes: more than 5"),
        "{shown}"
    );
    assert_eq!(
        ok(&dir, &["numbers", "unlock", "101"]),
        "extension 101 may call external numbers again\n"
    );
    let fraud = ok(&dir, &["numbers", "fraud", "--calls-per-minute", "3"]);
    assert!(fraud.contains("calls_per_minute: 3"), "{fraud}");
    ok(&dir, &["numbers", "remove", "+4921112345"]);
}
